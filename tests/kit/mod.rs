//! Shared helpers for the operator's-kit tests (doctor, audit, activation, hand-overs):
//! one moto with IAM enforcement on, a sandbox whose ambient identity is alice, the
//! recording fake terraform, and a secret watch that fails a test when any secret
//! (a user's secret key, an assumed role's secret key or session token, the endpoint's
//! token) reaches stderr, or stdout where stdout is not meant to carry it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::support::*;

pub const ACCOUNT: &str = "123456789012";

pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

/// The STS ARN of a session of role `name` (prefix; the session name follows).
pub fn assumed(name: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/{name}/")
}

/// Python that prints the caller's STS ARN (boto3's default chain).
pub const WHO_AM_I: &str = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])";

/// A shell command line that runs `WHO_AM_I` with the test bed's Python.
pub fn who_am_i_sh() -> String {
    format!("{} -c \"{WHO_AM_I}\"", python().display())
}

/// An S3 backend block that works against moto (endpoint from AWS_ENDPOINT_URL).
pub const S3_BACKEND: &str = r#"terraform {
  backend "s3" {
    bucket                      = "tfstate"
    key                         = "p/terraform.tfstate"
    region                      = "us-east-1"
    use_path_style              = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    skip_credentials_validation = true
    use_lockfile                = true
  }
}
"#;

/// One test's world.
pub struct Kit {
    pub moto: Moto,
    pub bed: Bed,
    pub sb: Sandbox,
    secrets: Vec<String>,
    /// Every output seen: (what, text that must hold no secret).
    seen: Vec<(String, Vec<u8>)>,
}

impl Kit {
    /// moto with IAM enforcement on; alice is the ambient identity; the fake terraform
    /// records its arguments and environment.
    pub fn new() -> Kit {
        let moto = Moto::start();
        let bed = moto.setup_enforced();
        let mut sb = Sandbox::new();
        sb.aws_as(&moto, &bed.user("alice"));
        let record = sb.record_path();
        sb.set("AWS_DEFAULT_REGION", "us-east-1")
            .set("USER", "alice")
            .set("FAKE_TF_RECORD", record);
        sb.fake_terraform();
        let secrets = bed.secrets();
        assert!(secrets.iter().all(|s| s.len() >= 16), "{secrets:?}");
        Kit {
            moto,
            bed,
            sb,
            secrets,
            seen: Vec::new(),
        }
    }

    /// A directory `name` under the sandbox holding `files` (name, text).
    pub fn dir(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.sb.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    /// A project `name` with this `.breakglass.toml`.
    pub fn project(&self, name: &str, toml: &str) -> PathBuf {
        self.dir(name, &[(".breakglass.toml", toml)])
    }

    /// `region = "us-east-1"`, `[role] arn = deploy`, with `enabled` as given, then
    /// `extra` (more tables).
    pub fn deploy_toml(enabled: bool, extra: &str) -> String {
        format!(
            "enabled = {enabled}\nregion = \"us-east-1\"\n\n[role]\narn = \"{}\"\n\n{extra}",
            role_arn("deploy")
        )
    }

    /// `breakglass ARGS` in the sandbox; no secret may appear on stdout or stderr.
    pub fn breakglass(&mut self, args: &[&str]) -> Output {
        let cmd = self.sb.breakglass(args);
        self.run(cmd)
    }

    /// `terraform ARGS` through the shim in `dir`, with extra environment.
    pub fn terraform(&mut self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.sb.terraform(dir, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.run(cmd)
    }

    /// Runs `cmd` (stdin closed); no secret may appear on stdout or stderr.
    pub fn run(&mut self, cmd: Command) -> Output {
        let out = self.output(cmd);
        self.watch("stdout", &out.stdout);
        self.watch("stderr", &out.stderr);
        out
    }

    /// Runs `cmd` whose stdout is meant to carry credentials (`env`, `credentials`):
    /// only stderr is watched.
    pub fn run_secret_stdout(&mut self, cmd: Command) -> Output {
        let out = self.output(cmd);
        self.watch("stderr", &out.stderr);
        out
    }

    fn output(&mut self, mut cmd: Command) -> Output {
        let _ = std::fs::remove_file(self.sb.record_path());
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("cannot run the command");
        self.harvest();
        out
    }

    /// Watches the output of a command the test ran itself.
    pub fn observe(&mut self, out: &Output) {
        self.harvest();
        self.watch("stdout", &out.stdout);
        self.watch("stderr", &out.stderr);
    }

    /// Adds a secret to watch for (must be long enough to be one).
    pub fn add_secret(&mut self, s: &str) {
        assert!(s.len() >= 16, "too short to be a secret: {s:?}");
        if !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_string());
        }
    }

    /// Learns the secrets the last run produced: terraform's environment and the
    /// credential cache.
    pub fn harvest(&mut self) {
        let env = self.recorded_env();
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        ] {
            if let Some(v) = env.get(k) {
                if v.len() >= 16 {
                    let v = v.clone();
                    self.add_secret(&v);
                }
            }
        }
        for s in cache_secrets(&self.cache_dir()) {
            self.add_secret(&s);
        }
    }

    /// Checks one output now against every secret known so far, and keeps it for
    /// `finish`.
    fn watch(&mut self, what: &str, bytes: &[u8]) {
        assert_no_secret(what, bytes, &self.secrets);
        self.seen.push((what.to_string(), bytes.to_vec()));
    }

    /// Re-checks every output of the test against every secret learned since.
    pub fn finish(mut self) {
        self.harvest();
        for (what, bytes) in &self.seen {
            assert_no_secret(what, bytes, &self.secrets);
        }
    }

    /// The fake terraform's environment in its last run (empty if it did not run).
    pub fn recorded_env(&self) -> BTreeMap<String, String> {
        recorded_env(&self.sb.record_path())
    }

    /// True when the fake terraform ran in the last command.
    pub fn terraform_ran(&self) -> bool {
        self.sb.record_path().exists()
    }

    fn xdg(&self, var: &str) -> PathBuf {
        PathBuf::from(self.sb.env[var].clone()).join("breakglass")
    }

    /// `$XDG_CACHE_HOME/breakglass`.
    pub fn cache_dir(&self) -> PathBuf {
        self.xdg("XDG_CACHE_HOME")
    }

    /// `$XDG_DATA_HOME/breakglass/audit.jsonl`.
    pub fn audit_path(&self) -> PathBuf {
        self.xdg("XDG_DATA_HOME").join("audit.jsonl")
    }

    /// `$XDG_STATE_HOME/breakglass`.
    pub fn state_dir(&self) -> PathBuf {
        self.xdg("XDG_STATE_HOME")
    }

    /// `breakglass log --json`, parsed; it must succeed and warn about nothing.
    pub fn log(&mut self) -> Vec<Value> {
        let out = self.breakglass(&["log", "--json"]);
        assert_ok(&out);
        assert!(
            !stderr(&out).contains("warning"),
            "log warned: {}",
            stderr(&out)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("log --json is not JSON");
        v.as_array().expect("log --json is not an array").clone()
    }

    /// `breakglass -C DIR doctor --json`: the output and its checks.
    pub fn doctor(&mut self, dir: &Path) -> (Output, Vec<Value>) {
        let out = self.breakglass(&["-C", dir.to_str().unwrap(), "doctor", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor --json printed no JSON ({e}): {}\n{}",
                stdout(&out),
                stderr(&out)
            )
        });
        let checks = v["checks"].as_array().expect("no checks array").clone();
        for c in &checks {
            for k in ["id", "status", "summary", "fix"] {
                assert!(c[k].is_string(), "check without {k}: {c}");
            }
            let s = c["status"].as_str().unwrap();
            assert!(["pass", "warn", "fail", "skip"].contains(&s), "{c}");
        }
        (out, checks)
    }
}

/// The checks with `id`.
pub fn checks_with<'a>(checks: &'a [Value], id: &str) -> Vec<&'a Value> {
    checks.iter().filter(|c| c["id"] == id).collect()
}

/// The one check with `id`.
pub fn check<'a>(checks: &'a [Value], id: &str) -> &'a Value {
    let found = checks_with(checks, id);
    assert_eq!(found.len(), 1, "expected one `{id}` check in {checks:#?}");
    found[0]
}

/// The status of the one check with `id`.
pub fn status<'a>(checks: &'a [Value], id: &str) -> &'a str {
    check(checks, id)["status"].as_str().unwrap()
}

pub fn assert_no_secret(what: &str, bytes: &[u8], secrets: &[String]) {
    let text = String::from_utf8_lossy(bytes);
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret appeared on {what}:\n{text}"
        );
    }
}

pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "failed ({:?})\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// The exit code (panics on a signal).
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}\n{}", out.status, stderr(out)))
}

/// The environment the fake terraform recorded (`env` output; one line a variable).
pub fn recorded_env(record: &Path) -> BTreeMap<String, String> {
    let mut p = record.as_os_str().to_owned();
    p.push(".env");
    let Ok(text) = std::fs::read_to_string(PathBuf::from(p)) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every secret string in the credential cache's JSON files.
pub fn cache_secrets(dir: &Path) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if matches!(k.as_str(), "secret_access_key" | "session_token") {
                        if let Some(s) = x.as_str() {
                            out.push(s.to_string());
                        }
                    }
                    walk(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for sub in ["credentials", "mfa"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap()) {
                    walk(&v, &mut out);
                }
            }
        }
    }
    out.retain(|s| s.len() >= 16);
    out
}

/// The cached credential files (`*.json`) under the cache's `credentials` directory.
pub fn cached_files(cache_dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(cache_dir.join("credentials")) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A file's permission bits.
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The last line of stdout that looks like an ARN.
pub fn printed_arn(out: &Output) -> String {
    stdout(out)
        .lines()
        .rev()
        .find(|l| l.starts_with("arn:"))
        .unwrap_or_else(|| {
            panic!(
                "no ARN printed\nstdout: {}\nstderr: {}",
                stdout(out),
                stderr(out)
            )
        })
        .to_string()
}

/// A loopback TCP proxy in front of `upstream` that keeps every byte the clients sent
/// (to see what reached STS). Point `AWS_ENDPOINT_URL` at `endpoint`.
pub struct RecordingProxy {
    pub endpoint: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl RecordingProxy {
    pub fn start(upstream: u16) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let sent = s.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        sent.lock().unwrap().extend_from_slice(&buf[..n]);
                        if server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        RecordingProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            sent,
        }
    }

    /// Everything the clients sent so far, as text.
    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}
