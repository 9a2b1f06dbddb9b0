//! End to end: the supervised run with the real terraform (and the fake one where the
//! client only needs to poll), against moto with IAM enforcement on.
//!
//! Every test has its own sandbox and its own moto. The ambient identity is Alice (who
//! may assume every role but has no S3 rights of her own), and a decoy
//! `~/.aws/credentials` `[default]` holds Carol's keys (no S3 rights either): only the
//! assumed `deploy` role can write the state, so a state object in the bucket proves
//! terraform ran as the role.
//!
//! The project config asks for 15-minute sessions renewed 14m50s before expiry: the
//! refresher renews the role about every 10 s, so a run of half a minute sees several
//! key sets.

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::{python, Bed, Moto, Sandbox};

/// The session length the config asks for (and the most any key set lives).
const SESSION: Duration = Duration::from_secs(15 * 60);

/// The longest any one command of these tests may take before it is killed and the
/// test fails.
const COMMAND_LIMIT: Duration = Duration::from_secs(75);

/// Polls the credential endpoint the way an AWS SDK does, from the variables in its
/// environment, and appends one JSON line per request to OUT:
/// `{"at", "status", "key", "expiration", "exp_epoch", "secret", "token"}`.
/// Runs for SECONDS, or until the file STOP exists (when given).
const POLLER_PY: &str = r#"
import json, os, sys, time, urllib.error, urllib.request
from datetime import datetime

out, seconds = sys.argv[1], float(sys.argv[2])
stop = sys.argv[3] if len(sys.argv) > 3 else None
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
ambient = {k: k in os.environ for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
end = time.time() + seconds
with open(out, "a") as f:
    f.write(json.dumps({"ambient": ambient, "uri": uri}) + "\n")
    while time.time() < end and not (stop and os.path.exists(stop)):
        at = time.time()
        rec = {"at": at}
        try:
            req = urllib.request.Request(uri, headers={"Authorization": token})
            with urllib.request.urlopen(req, timeout=5) as r:
                body = json.load(r)
            rec.update(status=200, key=body["AccessKeyId"], expiration=body["Expiration"],
                       exp_epoch=datetime.fromisoformat(body["Expiration"].replace("Z", "+00:00")).timestamp(),
                       secret=body["SecretAccessKey"], token=body["Token"])
        except urllib.error.HTTPError as e:
            rec.update(status=e.code)
        except Exception as e:
            rec.update(status=0, error=str(e))
        f.write(json.dumps(rec) + "\n")
        f.flush()
        time.sleep(1)
"#;

/// Asks the endpoint named in its environment with no token, wrong tokens and
/// oversized headers, then with the right token, over raw sockets. Writes a JSON
/// object of `{"status", "creds", "body"}` per case to OUT (never the credentials).
const STRANGERS_PY: &str = r#"
import json, os, socket, sys, urllib.parse

out = sys.argv[1]
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
token = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
u = urllib.parse.urlsplit(uri)

def ask(headers):
    head = "GET %s HTTP/1.1\r\nHost: %s\r\n" % (u.path or "/", u.netloc)
    head += "".join("%s: %s\r\n" % h for h in headers)
    head += "Connection: close\r\n\r\n"
    data, error = b"", None
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    try:
        s.sendall(head.encode())
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        error = type(e).__name__
    finally:
        s.close()
    text = data.decode("utf-8", "replace")
    status = int(text.split(" ")[1]) if text.startswith("HTTP/1.") else 0
    body = text.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in text else ""
    creds = "SecretAccessKey" in text
    return {"status": status, "creds": creds, "body": "<credentials>" if creds else body[:300], "error": error}

wrong = ("1" if token[0] == "0" else "0") + token[1:]
results = {
    "host": u.hostname,
    "token_length": len(token),
    "none": ask([]),
    "empty": ask([("Authorization", "")]),
    "wrong": ask([("Authorization", wrong)]),
    "short": ask([("Authorization", token[:-1])]),
    "long": ask([("Authorization", token + "0")]),
    "bearer": ask([("Authorization", "Bearer " + token)]),
    "oversized": ask([("Authorization", token), ("X-Padding", "a" * 65536)]),
    "oversized_no_token": ask([("X-Padding", "a" * 65536)]),
    "right": ask([("Authorization", token)]),
}
with open(out, "w") as f:
    json.dump(results, f)
"#;

/// Runs ARGV in a new pseudo-terminal (the child is a session leader with the pty as
/// its controlling terminal, in the foreground group), copies everything it prints,
/// types one Ctrl-C (0x03) once the file GO exists, and writes
/// `{"code", "output", "sent", "timed_out"}` to OUT when the child has exited.
const PTY_PY: &str = r#"
import json, os, pty, select, signal, sys, time

out, go, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
argv = sys.argv[4:]
pid, fd = pty.fork()
if pid == 0:
    try:
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
buf = bytearray()
sent = 0
timed_out = False
status = None
exited_at = None
deadline = time.monotonic() + limit
while True:
    now = time.monotonic()
    if now > deadline:
        timed_out = True
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    if not sent and os.path.exists(go):
        os.write(fd, b"\x03")
        sent = 1
    if status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status, exited_at = st, now
    elif now - exited_at > 2:
        break
    r, _, _ = select.select([fd], [], [], 0.1)
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        buf += data
if status is None:
    _, status = os.waitpid(pid, 0)
with open(out, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "output": buf.decode("utf-8", "replace"),
               "sent": sent, "timed_out": timed_out}, f)
"#;

/// Runs ARGV in a new pseudo-terminal (the child is the session leader, in the
/// terminal's foreground group, as a job of an interactive shell is), copies what it
/// prints, and once the file GO exists hangs up as a dropped SSH session does: closes
/// the terminal (the kernel sends SIGHUP to the session leader) and sends SIGHUP to the
/// child's whole process group (what the user's shell does for each of its jobs).
/// With a fifth argument OUTFILE (not "-"), the child's stdout and stderr go to that
/// file instead of the terminal, so everything after the hang-up can be read. Writes
/// `{"code", "output", "hung_up", "timed_out"}` to OUT when the child has exited.
const HUP_PY: &str = r#"
import json, os, pty, select, signal, sys, time

out, go, limit, outfile = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
argv = sys.argv[5:]
pid, fd = pty.fork()
if pid == 0:
    try:
        if outfile != "-":
            f = os.open(outfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(f, 1)
            os.dup2(f, 2)
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
buf = bytearray()
hung = False
timed_out = False
status = None
deadline = time.monotonic() + limit
while True:
    if time.monotonic() > deadline:
        timed_out = True
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        break
    if not hung and os.path.exists(go):
        os.close(fd)
        fd = None
        try:
            os.killpg(pid, signal.SIGHUP)
        except ProcessLookupError:
            pass
        hung = True
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
    if fd is None:
        time.sleep(0.1)
        continue
    r, _, _ = select.select([fd], [], [], 0.1)
    if fd in r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        buf += data
with open(out, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "output": buf.decode("utf-8", "replace"),
               "hung_up": hung, "timed_out": timed_out}, f)
"#;

/// A sandbox with moto (IAM enforcement on), Alice's keys in the environment, Carol's
/// keys in a decoy `~/.aws/credentials`, and the endpoint's request log.
struct World {
    sb: Sandbox,
    moto: Moto,
    bed: Bed,
    /// `BREAKGLASS_ENDPOINT_LOG`.
    log: PathBuf,
    /// When the world was made: every key set was issued after this.
    born: SystemTime,
}

/// Which terraform the shim finds.
#[derive(Clone, Copy, PartialEq)]
enum Tf {
    Real,
    Fake,
}

impl World {
    fn new(tf: Tf) -> World {
        let born = SystemTime::now();
        let moto = Moto::start();
        let bed = moto.setup_enforced();
        let mut sb = Sandbox::new();
        sb.aws_as(&moto, &bed.user("alice"));
        let carol = bed.user("carol");
        let aws = sb.home.join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                carol.key, carol.secret
            ),
        )
        .unwrap();
        std::fs::write(aws.join("config"), "[default]\nregion = us-east-1\n").unwrap();
        let log = sb.root().join("endpoint.log");
        sb.set("BREAKGLASS_ENDPOINT_LOG", &log);
        match tf {
            Tf::Real => sb.real_terraform(),
            Tf::Fake => sb.fake_terraform(),
        };
        World {
            sb,
            moto,
            bed,
            log,
            born,
        }
    }

    /// A project directory NAME with `.breakglass.toml` (the deploy role, 15-minute
    /// sessions renewed every ~10 s) and, when given, `main.tf`.
    fn project(&self, name: &str, main_tf: Option<&str>) -> PathBuf {
        let dir = self.sb.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(".breakglass.toml"),
            format!(
                "enabled = true\nregion = \"us-east-1\"\n[role]\narn = \"{}\"\nduration = \"15m\"\nrefresh_before = \"14m50s\"\n",
                self.bed.role("deploy")
            ),
        )
        .unwrap();
        if let Some(text) = main_tf {
            std::fs::write(dir.join("main.tf"), text).unwrap();
        }
        dir
    }

    /// `terraform ARGS` through the shim in `dir`, to the end (at most COMMAND_LIMIT).
    fn tf(&self, dir: &Path, args: &[&str]) -> Output {
        run(self.sb.terraform(dir, args))
    }

    /// The keys in the state bucket.
    fn bucket(&self) -> Vec<String> {
        self.moto.op(&self.bed, &["list", "tfstate"])["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    }

    /// One object of the state bucket.
    fn object(&self, key: &str) -> String {
        self.moto.op(&self.bed, &["get", "tfstate", key])["body"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The endpoint's request log: (time, status, access key id or "-").
    fn endpoint_log(&self) -> Vec<(String, u16, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 3, "bad endpoint log line {l:?}");
                (f[0].to_string(), f[1].parse().unwrap(), f[2].to_string())
            })
            .collect()
    }

    /// Every secret this test could leak: the users' secret keys, and every session
    /// secret and token the credential cache holds.
    fn secrets(&self) -> Vec<String> {
        let mut all = self.bed.secrets();
        collect_cached_secrets(&self.sb.root().join("cache"), &mut all);
        all
    }

    /// Asserts that no secret (and none of `more`) appears in any of `texts`.
    fn assert_no_secrets(&self, texts: &[&str], more: &[String]) {
        let secrets: Vec<String> = self
            .secrets()
            .into_iter()
            .chain(more.iter().cloned())
            .collect();
        assert!(
            secrets.len() > 4,
            "the credential cache held no session secrets"
        );
        for text in texts {
            for s in &secrets {
                assert!(s.len() >= 16, "implausible secret {s:?}");
                assert!(
                    !text.contains(s.as_str()),
                    "a secret leaked into the output:\n{text}"
                );
            }
        }
    }
}

/// Adds every `secret_access_key` and `session_token` under `dir`'s JSON files.
fn collect_cached_secrets(dir: &Path, out: &mut Vec<String>) {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("secret_access_key" | "session_token", Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_cached_secrets(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap_or_default()) {
                walk(&v, out);
            }
        }
    }
}

/// Runs `cmd` to the end with its output captured; fails the test after COMMAND_LIMIT.
fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    let child = spawn_captured(&mut cmd);
    finish(child, COMMAND_LIMIT)
}

/// A running child whose stdout and stderr are read on threads.
struct Running {
    child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

fn spawn_captured(cmd: &mut Command) -> Running {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the command");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    Running { child, out, err }
}

/// Waits for `r` to end (killing it and failing after `limit`).
fn finish(mut r: Running, limit: Duration) -> Output {
    let status = wait_for(&mut r.child, limit);
    Output {
        status,
        stdout: r.out.join().unwrap(),
        stderr: r.err.join().unwrap(),
    }
}

fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `cond` holds, failing with `what` after `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Everything a command printed, for failure messages.
fn shown(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// `terraform { backend "s3" }` for moto (the endpoint comes from AWS_ENDPOINT_URL),
/// locking with a lock file in the bucket, followed by `resources`.
fn main_tf(key: &str, resources: &str) -> String {
    format!(
        r#"terraform {{
  backend "s3" {{
    bucket                      = "tfstate"
    key                         = "{key}"
    region                      = "us-east-1"
    use_path_style              = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    skip_credentials_validation = true
    use_lockfile                = true
  }}
}}

{resources}
"#
    )
}

/// A `terraform_data` resource created on every apply by running `script` (a shell
/// script file) from a local-exec provisioner.
fn exec_resource(script: &Path) -> String {
    format!(
        r#"resource "terraform_data" "work" {{
  triggers_replace = [timestamp()]
  provisioner "local-exec" {{
    command = "sh {}"
  }}
}}"#,
        script.display()
    )
}

/// Writes the shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("set -e\n{body}\n")).unwrap();
    p
}

/// Writes one of the Python helpers into the sandbox and returns its path.
fn helper(w: &World, name: &str, source: &str) -> PathBuf {
    let p = w.sb.root().join(name);
    std::fs::write(&p, source).unwrap();
    p
}

/// The poller's records: the header line, then one per request.
struct Polled {
    header: Value,
    records: Vec<Value>,
}

impl Polled {
    fn read(path: &Path) -> Polled {
        let text = std::fs::read_to_string(path).expect("the poller did not run");
        let mut lines = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap());
        let header = lines.next().expect("the poller wrote nothing");
        Polled {
            header,
            records: lines.collect(),
        }
    }

    /// The distinct access key ids, in the order first seen.
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for r in &self.records {
            if let Some(k) = r["key"].as_str() {
                if !keys.iter().any(|x| x == k) {
                    keys.push(k.to_string());
                }
            }
        }
        keys
    }

    /// The secrets and tokens the poller received.
    fn secrets(&self) -> Vec<String> {
        let mut s = Vec::new();
        for r in &self.records {
            for f in ["secret", "token"] {
                if let Some(v) = r[f].as_str() {
                    s.push(v.to_string());
                }
            }
        }
        s.sort();
        s.dedup();
        s
    }

    /// Every answer was 200, with an Expiration later than the time of the request
    /// and no later than `latest` (seconds since the epoch).
    fn assert_all_valid(&self, latest: f64) {
        assert!(!self.records.is_empty(), "the poller made no request");
        for r in &self.records {
            assert_eq!(r["status"], 200, "a request got no credentials: {r}");
            let at = r["at"].as_f64().unwrap();
            let exp = r["exp_epoch"].as_f64().unwrap();
            assert!(
                exp > at,
                "Expiration {} was not in the future when received at {at}",
                r["expiration"]
            );
            assert!(
                exp <= latest,
                "Expiration {} is later than the real expiry could be ({latest})",
                r["expiration"]
            );
        }
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn lock_keys(keys: &[String]) -> Vec<&String> {
    keys.iter().filter(|k| k.ends_with(".tflock")).collect()
}

// ---------------------------------------------------------------------------------

/// Case 1: Through the shim, terraform writes its state as the assumed role, whatever the
/// environment (Alice's keys) and `~/.aws/credentials` (Carol's) hold; without the
/// shim the same commands are refused.
#[test]
fn isolated_run_writes_state_as_the_role() {
    let w = World::new(Tf::Real);
    let envdump = w.sb.root().join("tf-env");
    let dir = w.project("proj", None);
    let sh = script(&dir, "dump.sh", &format!("env > {}", envdump.display()));
    std::fs::write(
        dir.join("main.tf"),
        main_tf("iso/terraform.tfstate", &exec_resource(&sh)),
    )
    .unwrap();

    let init = w.tf(&dir, &["init", "-input=false", "-no-color"]);
    assert!(
        init.status.success(),
        "init through the shim: {}",
        shown(&init)
    );
    let apply = w.tf(
        &dir,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(
        apply.status.code(),
        Some(0),
        "apply through the shim: {}",
        shown(&apply)
    );
    assert!(text(&apply.stderr).contains("breakglass: as arn:aws:iam::123456789012:role/deploy"));

    let keys = w.bucket();
    assert!(
        keys.contains(&"iso/terraform.tfstate".to_string()),
        "{keys:?}"
    );
    assert!(lock_keys(&keys).is_empty(), "a lock was left: {keys:?}");
    let state = w.object("iso/terraform.tfstate");
    assert!(state.contains("terraform_data"), "{state}");

    // terraform read its credentials from the endpoint, and saw none of the ambient
    // identity: no static keys, no profile, not the user's credentials file.
    let served = w.endpoint_log();
    assert!(served.iter().any(|(_, s, _)| *s == 200), "{served:?}");
    assert!(served.iter().all(|(_, s, _)| *s == 200), "{served:?}");
    let env = std::fs::read_to_string(&envdump).unwrap();
    for var in [
        "AWS_ACCESS_KEY_ID=",
        "AWS_SECRET_ACCESS_KEY=",
        "AWS_SESSION_TOKEN=",
        "AWS_PROFILE=",
    ] {
        assert!(
            !env.lines().any(|l| l.starts_with(var)),
            "{var} reached terraform"
        );
    }
    assert!(env.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:"));
    let creds_file = env
        .lines()
        .find_map(|l| l.strip_prefix("AWS_SHARED_CREDENTIALS_FILE="))
        .expect("no AWS_SHARED_CREDENTIALS_FILE");
    assert_ne!(Path::new(creds_file), w.sb.home.join(".aws/credentials"));
    assert!(!env.contains(&w.bed.user("alice").key));
    assert!(!env.contains(&w.bed.user("carol").key));

    // The same commands without the shim run as Alice (the environment outranks the
    // decoy file) and are refused by S3: in a fresh directory, and in the one the shim
    // just used, whose state they leave untouched.
    let off = w.project("off", None);
    std::fs::write(
        off.join("main.tf"),
        main_tf("off/terraform.tfstate", &exec_resource(&sh)),
    )
    .unwrap();
    let before = w.object("iso/terraform.tfstate");
    for d in [&off, &dir] {
        for args in [
            &["init", "-input=false", "-no-color"][..],
            &["apply", "-auto-approve", "-input=false", "-no-color"],
        ] {
            let mut cmd = w.sb.terraform(d, args);
            cmd.env("BREAKGLASS", "0");
            let o = run(cmd);
            assert_eq!(
                o.status.code(),
                Some(1),
                "ran without the role: {}",
                shown(&o)
            );
            let err = text(&o.stderr);
            assert!(
                err.contains("AccessDenied") || err.contains("403"),
                "{args:?} without the shim should be refused by S3: {}",
                shown(&o)
            );
            assert!(!err.contains("breakglass:"), "{err}");
        }
    }
    assert!(!w.bucket().iter().any(|k| k.starts_with("off/")));
    assert_eq!(w.object("iso/terraform.tfstate"), before);

    w.assert_no_secrets(
        &[
            &text(&init.stderr),
            &text(&apply.stderr),
            &text(&apply.stdout),
        ],
        &[],
    );
}

/// Case 2: An apply that outlives several refresh cycles: its local-exec child polls the
/// endpoint for 35 s and is handed at least three key sets, every Expiration in the
/// future and never past the real expiry, and the state is written at the end.
#[test]
fn long_apply_is_served_renewed_credentials() {
    let w = World::new(Tf::Real);
    let poller = helper(&w, "poller.py", POLLER_PY);
    let polled = w.sb.root().join("polled.jsonl");
    let dir = w.project("proj", None);
    let sh = script(
        &dir,
        "poll.sh",
        &format!(
            "{} {} {} 35",
            python().display(),
            poller.display(),
            polled.display()
        ),
    );
    std::fs::write(
        dir.join("main.tf"),
        main_tf("long/terraform.tfstate", &exec_resource(&sh)),
    )
    .unwrap();

    let init = w.tf(&dir, &["init", "-input=false", "-no-color"]);
    assert!(init.status.success(), "{}", shown(&init));
    let started = Instant::now();
    let apply = w.tf(
        &dir,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", shown(&apply));
    assert!(started.elapsed() >= Duration::from_secs(35));

    let p = Polled::read(&polled);
    // local-exec inherited terraform's environment: the endpoint, no ambient keys.
    assert_eq!(
        p.header["ambient"]["AWS_ACCESS_KEY_ID"], false,
        "{}",
        p.header
    );
    assert!(p.records.len() >= 25, "{} requests", p.records.len());
    // Every key set was issued after the world was made, so each really expires no
    // earlier than that plus the session length.
    p.assert_all_valid(epoch(w.born + SESSION));
    let keys = p.keys();
    assert!(
        keys.len() >= 3,
        "only {} key sets in 35 s: {keys:?}",
        keys.len()
    );
    // The newest set's real expiry is in the cache: nothing was advertised past it.
    let cached = cached_expiry(&w.sb);
    for r in &p.records {
        if r["key"].as_str() == Some(cached.0.as_str()) {
            assert!(r["exp_epoch"].as_f64().unwrap() <= cached.1 as f64, "{r}");
        }
    }
    // The endpoint's own log agrees.
    let logged: Vec<String> = w.endpoint_log().into_iter().map(|(_, _, k)| k).collect();
    for k in &keys {
        assert!(logged.contains(k), "{k} not in the endpoint log");
    }

    let state = w.object("long/terraform.tfstate");
    assert!(state.contains("terraform_data"), "{state}");
    assert!(lock_keys(&w.bucket()).is_empty());
    w.assert_no_secrets(
        &[
            &text(&init.stderr),
            &text(&apply.stderr),
            &text(&apply.stdout),
        ],
        &p.secrets(),
    );
}

/// The access key id and real expiry (epoch seconds) of the cached role credentials.
fn cached_expiry(sb: &Sandbox) -> (String, u64) {
    let dir = sb.root().join("cache/breakglass/credentials");
    let mut found = None;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            let c = &v["credentials"];
            found = Some((
                c["access_key_id"].as_str().unwrap().to_string(),
                c["expiration"].as_u64().unwrap(),
            ));
        }
    }
    found.expect("no cached credentials")
}

/// Case 3: A client of a (fake) terraform polling the endpoint for 20 s sees the keys
/// rotate, and every Expiration it gets is in the future.
#[test]
fn client_sees_rotation() {
    let mut w = World::new(Tf::Fake);
    let poller = helper(&w, "poller.py", POLLER_PY);
    let polled = w.sb.root().join("polled.jsonl");
    w.sb.set(
        "FAKE_TF_RUN",
        format!(
            "{} {} {} 20",
            python().display(),
            poller.display(),
            polled.display()
        ),
    );
    let dir = w.project("proj", None);
    let out = w.tf(&dir, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let p = Polled::read(&polled);
    assert!(p.records.len() >= 15, "{} requests", p.records.len());
    p.assert_all_valid(epoch(w.born + SESSION));
    let keys = p.keys();
    assert!(keys.len() >= 2, "the keys never rotated: {keys:?}");
    // Each key set is served for a while, then never again.
    let order: Vec<&str> = p.records.iter().filter_map(|r| r["key"].as_str()).collect();
    let mut runs = order.clone();
    runs.dedup();
    assert_eq!(runs.len(), keys.len(), "a key set came back: {order:?}");
    w.assert_no_secrets(&[&text(&out.stderr), &text(&out.stdout)], &p.secrets());
}

/// A project whose apply holds the state lock while a local-exec touches STARTED and
/// sleeps `seconds`.
fn sleeping_project(w: &World, name: &str, seconds: u32) -> (PathBuf, PathBuf) {
    let dir = w.project(name, None);
    let started = dir.join("STARTED");
    let sh = script(
        &dir,
        "sleep.sh",
        &format!("touch {}\nsleep {seconds}", started.display()),
    );
    std::fs::write(
        dir.join("main.tf"),
        main_tf(&format!("{name}/terraform.tfstate"), &exec_resource(&sh)),
    )
    .unwrap();
    let init = w.tf(&dir, &["init", "-input=false", "-no-color"]);
    assert!(init.status.success(), "{}", shown(&init));
    (dir, started)
}

/// Case 4: One Ctrl-C typed at a terminal during a real apply: terraform gets exactly one
/// interrupt (the kernel delivers it; the shim does not add a second), stops cleanly,
/// releases its lock, and its exit status is the shim's.
#[test]
fn ctrl_c_at_a_terminal_interrupts_once() {
    let w = World::new(Tf::Real);
    let (dir, started) = sleeping_project(&w, "ctrlc", 20);
    let driver = helper(&w, "pty_driver.py", PTY_PY);
    let r = apply_under_driver(&w, &dir, &started, &driver, "GO", &["60"]);
    let output = r["output"].as_str().unwrap();
    eprintln!("--- terminal\n{output}\n--- exit code {}", r["code"]);
    assert_eq!(r["timed_out"], false, "{output}");
    assert_eq!(r["sent"], 1);
    assert!(output.contains("breakglass: as "), "{output}");
    assert_eq!(output.matches("Interrupt received").count(), 1, "{output}");
    assert!(!output.contains("Two interrupts received"), "{output}");
    assert_eq!(
        r["code"], 1,
        "the shim's status is not terraform's: {output}"
    );
    let after = w.bucket();
    assert!(lock_keys(&after).is_empty(), "a lock was left: {after:?}");
    w.assert_no_secrets(&[output], &[]);
}

/// Case 5: SIGTERM to the shim (no terminal): forwarded once, terraform stops cleanly as
/// after one interrupt, releases its lock, and the shim exits with terraform's status.
#[test]
fn sigterm_is_forwarded_once() {
    let w = World::new(Tf::Real);
    let (dir, started) = sleeping_project(&w, "term", 20);
    let mut cmd = w.sb.terraform(
        &dir,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    cmd.stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let running = spawn_captured(&mut cmd);
    let pid = running.child.id() as libc::pid_t;

    wait_until("the local-exec to start", Duration::from_secs(45), || {
        started.exists()
    });
    let during = w.bucket();
    assert_eq!(
        lock_keys(&during).len(),
        1,
        "the apply holds no lock: {during:?}"
    );
    // SAFETY: kill takes plain integers; the pid is our own running child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = finish(running, COMMAND_LIMIT);
    eprintln!("{}", shown(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        all.matches("Interrupt received").count(),
        1,
        "{}",
        shown(&out)
    );
    assert!(!all.contains("Two interrupts received"), "{}", shown(&out));
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let after = w.bucket();
    assert!(lock_keys(&after).is_empty(), "a lock was left: {after:?}");
    w.assert_no_secrets(&[&text(&out.stderr), &text(&out.stdout)], &[]);
}

/// Case 6: `plan -detailed-exitcode` hands terraform's exit codes back: 2 with changes,
/// 0 without (after the apply).
#[test]
fn detailed_exit_codes_pass_through() {
    let w = World::new(Tf::Real);
    let dir = w.project(
        "codes",
        Some(&main_tf(
            "codes/terraform.tfstate",
            r#"resource "terraform_data" "x" {
  input = "one"
}"#,
        )),
    );
    let init = w.tf(&dir, &["init", "-input=false", "-no-color"]);
    assert!(init.status.success(), "{}", shown(&init));
    let plan = w.tf(
        &dir,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(plan.status.code(), Some(2), "{}", shown(&plan));
    assert!(
        text(&plan.stderr).contains("breakglass: as "),
        "{}",
        shown(&plan)
    );
    let apply = w.tf(
        &dir,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(apply.status.code(), Some(0), "{}", shown(&apply));
    let plan = w.tf(
        &dir,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", shown(&plan));
    // An invalid configuration is terraform's 1, not the shim's 125.
    std::fs::write(dir.join("broken.tf"), "resource \"terraform_data\" {\n").unwrap();
    let broken = w.tf(
        &dir,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(broken.status.code(), Some(1), "{}", shown(&broken));
    w.assert_no_secrets(&[&text(&plan.stderr), &text(&apply.stderr)], &[]);
}

/// Case 7: STS goes away in the middle of a run: the endpoint keeps serving the still-valid
/// credentials, the failure is reported once, and renewal resumes when STS is back.
#[test]
fn sts_outage_keeps_serving_and_recovers() {
    let mut w = World::new(Tf::Fake);
    let poller = helper(&w, "poller.py", POLLER_PY);
    let polled = w.sb.root().join("polled.jsonl");
    let stop = w.sb.root().join("STOP");
    w.sb.set(
        "FAKE_TF_RUN",
        format!(
            "{} {} {} 70 {}",
            python().display(),
            poller.display(),
            polled.display(),
            stop.display()
        ),
    );
    let dir = w.project("proj", None);
    let mut cmd = w.sb.terraform(&dir, &["apply"]);
    cmd.stdin(Stdio::null());
    let running = spawn_captured(&mut cmd);

    // Once the client has its first credentials, STS goes away for 18 s: past the first
    // renewal (~10 s after the start) and at least two retries (1 s, then 2 s apart),
    // so the same failure happens several times and is reported once.
    let first_key = || {
        std::fs::read_to_string(&polled)
            .ok()
            .and_then(|t| t.lines().nth(1).map(str::to_string))
    };
    wait_until("the first request", Duration::from_secs(30), || {
        first_key().is_some()
    });
    w.moto.stop();
    let down = SystemTime::now();
    std::thread::sleep(Duration::from_secs(18));
    // moto forgets everything when it stops: Alice's source keys are gone. Set the
    // users and roles up again WITHOUT IAM enforcement, so that moto accepts the old
    // (now unknown) keys' signatures and renewal can succeed.
    let old_secrets = w.bed.secrets();
    w.moto.restart();
    let up = SystemTime::now();
    w.bed = w.moto.setup();

    // Renewal resumes: a key set never served before the restart appears.
    let before: Vec<String> = w.endpoint_log().into_iter().map(|(_, _, k)| k).collect();
    wait_until(
        "renewed credentials after STS came back",
        Duration::from_secs(40),
        || {
            w.endpoint_log()
                .iter()
                .any(|(_, s, k)| *s == 200 && !before.contains(k))
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&stop, "").unwrap();
    let out = finish(running, COMMAND_LIMIT);
    eprintln!("{}", shown(&out));
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));

    let err = text(&out.stderr);
    assert_eq!(
        err.matches("could not renew").count(),
        1,
        "one warning for one kind of failure: {err}"
    );
    assert!(err.contains("still valid until"), "{err}");
    assert!(err.contains("credentials renewed for"), "{err}");

    let p = Polled::read(&polled);
    // Served throughout, with a valid Expiration, even while STS was down.
    for r in &p.records {
        assert_eq!(r["status"], 200, "a request got no credentials: {r}");
        assert!(
            r["exp_epoch"].as_f64().unwrap() > r["at"].as_f64().unwrap(),
            "{r}"
        );
    }
    let down_s = epoch(down);
    let up_s = epoch(up);
    let during: Vec<&Value> = p
        .records
        .iter()
        .filter(|r| {
            let at = r["at"].as_f64().unwrap();
            at > down_s + 1.0 && at < up_s
        })
        .collect();
    assert!(during.len() >= 10, "too few requests while STS was down");
    // No renewal could happen while STS was down: one key set throughout, the one
    // served before it went away.
    let last_before = p
        .records
        .iter()
        .rev()
        .filter(|r| r["at"].as_f64().unwrap() < down_s)
        .find_map(|r| r["key"].as_str())
        .expect("nothing served before STS went away");
    for r in &during {
        assert_eq!(r["key"].as_str(), Some(last_before), "{r}");
    }
    let keys = p.keys();
    let after_restart: Vec<&str> = p
        .records
        .iter()
        .filter(|r| r["at"].as_f64().unwrap() > up_s)
        .filter_map(|r| r["key"].as_str())
        .filter(|k| during.iter().all(|d| d["key"].as_str() != Some(k)))
        .collect();
    assert!(
        !after_restart.is_empty(),
        "no new key after the restart: {keys:?}"
    );
    let more: Vec<String> = p.secrets().into_iter().chain(old_secrets).collect();
    w.assert_no_secrets(&[&err, &text(&out.stdout)], &more);
}

/// Case 8: The endpoint hands credentials only to the holder of the run's token.
#[test]
fn endpoint_refuses_strangers() {
    let mut w = World::new(Tf::Fake);
    let script = helper(&w, "strangers.py", STRANGERS_PY);
    let result = w.sb.root().join("strangers.json");
    w.sb.set(
        "FAKE_TF_RUN",
        format!(
            "{} {} {}",
            python().display(),
            script.display(),
            result.display()
        ),
    );
    let dir = w.project("proj", None);
    let out = w.tf(&dir, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", shown(&out));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(r["host"], "127.0.0.1", "{r}");
    assert_eq!(r["token_length"], 64, "{r}");
    for (case, allowed) in [
        ("none", &[401][..]),
        ("empty", &[401]),
        ("wrong", &[403]),
        ("short", &[403]),
        ("long", &[403]),
        ("bearer", &[403]),
        ("oversized", &[431, 0]),
        ("oversized_no_token", &[431, 0]),
    ] {
        let c = &r[case];
        assert_eq!(c["creds"], false, "{case} got credentials");
        let status = c["status"].as_u64().unwrap() as u16;
        assert!(allowed.contains(&status), "{case}: {c}");
        if status == 401 || status == 403 {
            assert!(
                c["body"].as_str().unwrap().contains("Message"),
                "{case}: {c}"
            );
        }
    }
    assert_eq!(r["right"]["status"], 200, "{r}");
    assert_eq!(r["right"]["creds"], true, "{r}");

    // The log saw the refusals and the one request that got credentials.
    let log = w.endpoint_log();
    let statuses: Vec<u16> = log.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 2, "{log:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 403).count(), 4, "{log:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{log:?}");
    assert!(
        log.iter().all(|(_, s, k)| (*s == 200) == (k != "-")),
        "{log:?}"
    );
    w.assert_no_secrets(&[&text(&out.stderr), &text(&out.stdout)], &[]);
}

/// Forces an `errored.tfstate`: the role loses its S3 rights while the apply's
/// local-exec sleeps, so terraform cannot write the state at the end.
fn force_errored_state(w: &World) -> (PathBuf, Output) {
    let (dir, started) = sleeping_project(w, "errored", 8);
    let mut cmd = w.sb.terraform(
        &dir,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    cmd.stdin(Stdio::null());
    let running = spawn_captured(&mut cmd);
    wait_until("the local-exec to start", Duration::from_secs(45), || {
        started.exists()
    });
    // moto evaluates the role's policies on every request: the session credentials
    // terraform already holds lose their S3 rights at once.
    w.moto.op(&w.bed, &["deny-role", "deploy"]);
    let out = finish(running, COMMAND_LIMIT);
    eprintln!("{}", shown(&out));
    (dir, out)
}

/// Case 9: terraform cannot write its state: it leaves `errored.tfstate`, which the shim
/// neither moves nor deletes, and the shim prints how to recover.
#[test]
fn errored_state_gets_recovery_advice() {
    let w = World::new(Tf::Real);
    let (dir, out) = force_errored_state(&w);
    assert_ne!(out.status.code(), Some(0), "{}", shown(&out));
    assert_ne!(out.status.code(), Some(125), "{}", shown(&out));
    let errored = dir.join("errored.tfstate");
    assert!(errored.is_file(), "no errored.tfstate: {}", shown(&out));
    let saved = std::fs::read_to_string(&errored).unwrap();
    assert!(saved.contains("terraform_data"), "{saved}");
    let err = text(&out.stderr);
    assert!(err.contains("breakglass recover"), "{err}");
    assert!(
        err.contains("terraform state push errored.tfstate"),
        "{err}"
    );
    assert!(err.contains(&errored.display().to_string()), "{err}");
    // The remote state does not know the resource.
    if w.bucket()
        .contains(&"errored/terraform.tfstate".to_string())
    {
        assert!(!w
            .object("errored/terraform.tfstate")
            .contains("terraform_data"));
    }
    w.assert_no_secrets(&[&err, &text(&out.stdout)], &[]);
}

/// Case 9b: `breakglass recover` pushes the saved state under the role once it may again.
#[test]

fn recover_pushes_the_errored_state() {
    let w = World::new(Tf::Real);
    let (dir, out) = force_errored_state(&w);
    assert!(dir.join("errored.tfstate").is_file(), "{}", shown(&out));
    w.moto.op(&w.bed, &["allow-role", "deploy"]);
    // The lock terraform could not release goes first (step 2 of the advice): its ID is
    // in the lock file.
    for key in w.bucket() {
        if key.ends_with(".tflock") {
            let id = serde_json::from_str::<Value>(&w.object(&key)).unwrap()["ID"]
                .as_str()
                .unwrap()
                .to_string();
            let unlock = w.tf(&dir, &["force-unlock", "-force", &id]);
            assert!(unlock.status.success(), "{}", shown(&unlock));
        }
    }
    let mut cmd = w.sb.breakglass(&["recover"]);
    cmd.current_dir(&dir);
    let recover = run(cmd);
    assert_eq!(recover.status.code(), Some(0), "{}", shown(&recover));
    let state = w.object("errored/terraform.tfstate");
    assert!(state.contains("terraform_data"), "{state}");
    w.assert_no_secrets(&[&text(&recover.stderr), &text(&recover.stdout)], &[]);
}

/// Runs `terraform apply` of `dir` through the shim under a pty `driver` (called as
/// `driver RESULT GO ARGS... shim apply ...`), checks that the apply holds its lock
/// once the local-exec has started, then creates the file `go` (the driver's cue) and
/// returns the driver's JSON once everything has ended (no secret on its stderr).
fn apply_under_driver(
    w: &World,
    dir: &Path,
    started: &Path,
    driver: &Path,
    go: &str,
    args: &[&str],
) -> Value {
    let result = w.sb.root().join(format!("{go}.json"));
    let go = w.sb.root().join(go);
    let mut cmd = w.sb.command(python());
    cmd.current_dir(dir)
        .arg(driver)
        .arg(&result)
        .arg(&go)
        .args(args)
        .arg(w.sb.shims.join("terraform"))
        .args(["apply", "-auto-approve", "-input=false", "-no-color"]);
    cmd.stdin(Stdio::null());
    let running = spawn_captured(&mut cmd);
    wait_until("the local-exec to start", Duration::from_secs(45), || {
        started.exists()
    });
    let during = w.bucket();
    assert_eq!(
        lock_keys(&during).len(),
        1,
        "the apply holds no lock: {during:?}"
    );
    std::fs::write(&go, "").unwrap();
    let driven = finish(running, COMMAND_LIMIT);
    assert!(driven.status.success(), "pty driver: {}", shown(&driven));
    w.assert_no_secrets(&[&text(&driven.stderr)], &[]);
    serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap()
}

/// Runs `terraform apply` of `dir` through the shim in a pseudo-terminal that hangs up
/// once the local-exec has started. Returns the driver's JSON and, when `capture`, what
/// the run wrote to its stdout and stderr (a file instead of the terminal).
fn apply_and_hang_up(w: &World, dir: &Path, started: &Path, capture: bool) -> (Value, String) {
    let driver = helper(w, "hup_driver.py", HUP_PY);
    let outfile = w.sb.root().join("hup.out");
    let out_arg = if capture {
        outfile.display().to_string()
    } else {
        "-".to_string()
    };
    let r = apply_under_driver(w, dir, started, &driver, "HANGUP", &["70", &out_arg]);
    assert_eq!(r["timed_out"], false, "{r}");
    assert_eq!(r["hung_up"], true, "{r}");
    let captured = std::fs::read_to_string(&outfile).unwrap_or_default();
    (r, captured)
}

/// The last audit record of the sandbox.
fn last_audit(w: &World) -> Value {
    let text = std::fs::read_to_string(w.sb.root().join("data/breakglass/audit.jsonl"))
        .expect("no audit trail");
    serde_json::from_str(text.lines().last().expect("an empty audit trail")).unwrap()
}

/// Case 9: the terminal hangs up mid-apply (the pty closes, then the shell's SIGHUP to
/// the job). Terraform ignores the hang-up, keeps writing to the dead terminal, and
/// finishes; the shim stays up serving credentials, so the state holds the new
/// resource, no lock is left, and the audit trail has the exit code and the hang-up.
#[test]
fn a_hang_up_mid_apply_lets_the_apply_finish_and_release_its_lock() {
    let w = World::new(Tf::Real);
    let (dir, started) = sleeping_project(&w, "hup", 8);
    let (r, _) = apply_and_hang_up(&w, &dir, &started, false);
    eprintln!("--- terminal until the hang-up\n{}", r["output"]);
    assert_eq!(r["code"], 0, "the apply did not finish: {r}");
    let after = w.bucket();
    assert!(lock_keys(&after).is_empty(), "a lock was left: {after:?}");
    let state: Value = serde_json::from_str(&w.object("hup/terraform.tfstate")).unwrap();
    let resources = state["resources"].as_array().unwrap();
    assert!(
        resources.iter().any(|r| r["type"] == "terraform_data"),
        "the state does not hold the resource: {state}"
    );
    let rec = last_audit(&w);
    assert_eq!(rec["exit_code"], 0, "{rec}");
    assert_eq!(rec["hangup"], true, "{rec}");
}

/// Case 10: with `on_hangup = "stop"`, a hang-up becomes exactly one interrupt:
/// terraform stops gracefully, the state stays consistent and no lock is left.
#[test]
fn with_on_hangup_stop_a_hang_up_is_one_graceful_interrupt() {
    let w = World::new(Tf::Real);
    let (dir, started) = sleeping_project(&w, "hupstop", 20);
    let toml = dir.join(".breakglass.toml");
    let mut cfg = std::fs::read_to_string(&toml).unwrap();
    cfg = cfg.replacen("[role]", "on_hangup = \"stop\"\n[role]", 1);
    std::fs::write(&toml, cfg).unwrap();
    let (r, output) = apply_and_hang_up(&w, &dir, &started, true);
    eprintln!("--- the run's output\n{output}");
    assert!(output.contains("terminal hung up"), "{output}");
    assert_eq!(output.matches("Interrupt received").count(), 1, "{output}");
    assert!(!output.contains("Two interrupts received"), "{output}");
    assert_eq!(r["code"], 1, "{r}");
    let after = w.bucket();
    assert!(lock_keys(&after).is_empty(), "a lock was left: {after:?}");
    let rec = last_audit(&w);
    assert_eq!(rec["hangup"], true, "{rec}");
    assert_eq!(rec["exit_code"], 1, "{rec}");
    // The state is whole: terraform reads it back without complaint.
    let pull = w.tf(&dir, &["state", "pull"]);
    assert!(pull.status.success(), "{}", shown(&pull));
    serde_json::from_slice::<Value>(&pull.stdout).expect("the state is not JSON");
}
