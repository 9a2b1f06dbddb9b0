//! Issue "Assume the mapped deployment role": the break-glass path against moto, with
//! IAM enforcement on unless a test says otherwise.
//!
//! Each test has its own sandbox, its own moto and a `CountingProxy` in front of it, so
//! it can count the STS calls a run makes. The fake terraform asks STS who it is
//! (GetCallerIdentity with the environment it was given) and prints the ARN, so the
//! assertions are on the identity terraform actually ran as. Every test checks that no
//! secret (the users' secret keys, the assumed secret keys and session tokens, the MFA
//! session's) ever reaches the shim's stderr or stdout.
//!
//! These projects use `delivery = "env"`, the plain hand-over this issue built: the
//! credentials reach an exec'd terraform as environment variables, so the tests can read
//! the exact keys terraform got. The supervised hand-over (the default) is covered by
//! `tests/supervised.rs`; both share the same credential code.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

const ACCOUNT: &str = "123456789012";
const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

/// What terraform printed on stdout as its STS identity.
const WHO_AM_I: &str = "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])";

/// One test's world: moto (set up), a counting proxy in front of it, a sandbox whose
/// ambient identity is `user`, and a fake terraform that prints its STS identity.
struct World {
    _moto: Moto,
    bed: Bed,
    proxy: CountingProxy,
    sb: Sandbox,
    /// Every secret seen so far (bed, terraform's environment, cache files).
    secrets: Vec<String>,
}

impl World {
    /// IAM enforcement on.
    fn enforced(user: &str) -> World {
        let moto = Moto::start();
        let bed = moto.setup_enforced();
        World::with(moto, bed, user)
    }

    /// IAM enforcement off (only where moto cannot do better; see the callers).
    fn unenforced(user: &str) -> World {
        let moto = Moto::start();
        let bed = moto.setup();
        World::with(moto, bed, user)
    }

    fn with(moto: Moto, bed: Bed, user: &str) -> World {
        let proxy = CountingProxy::start(moto.port);
        let mut sb = Sandbox::new();
        sb.aws_as(&moto, &bed.user(user));
        let record = sb.record_path();
        sb.set("AWS_ENDPOINT_URL", proxy.endpoint.clone())
            // boto3 (the fake's STS client) reads AWS_DEFAULT_REGION, not AWS_REGION.
            .set("AWS_DEFAULT_REGION", "us-east-1")
            .set("USER", "alice")
            .set("FAKE_TF_RECORD", record)
            .set(
                "FAKE_TF_RUN",
                format!("{} -c \"{WHO_AM_I}\"", python().display()),
            );
        sb.fake_terraform();
        let secrets = bed.secrets();
        assert!(
            secrets.iter().all(|s| s.len() >= 16),
            "short secrets in the bed"
        );
        World {
            _moto: moto,
            bed,
            proxy,
            sb,
            secrets,
        }
    }

    /// A project directory `name` under the sandbox with this `.breakglass.toml`.
    fn project(&self, name: &str, toml: &str) -> PathBuf {
        let dir = self.sb.root().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".breakglass.toml"), toml).unwrap();
        dir
    }

    /// The usual project: break-glass on, us-east-1, `[role] arn = deploy`, plus `extra`
    /// lines in `[role]`.
    fn deploy_project(&self, extra: &str) -> PathBuf {
        self.project(
            "proj",
            &format!(
                "enabled = true\nregion = \"us-east-1\"\ndelivery = \"env\"\n[role]\narn = \"{}\"\n{extra}",
                role_arn("deploy")
            ),
        )
    }

    /// `terraform ARGS` in `dir`, counts reset first; checks for leaked secrets.
    fn terraform(&mut self, dir: &Path, args: &[&str]) -> Output {
        let cmd = self.sb.terraform(dir, args);
        self.run(cmd)
    }

    fn run(&mut self, mut cmd: Command) -> Output {
        let _ = std::fs::remove_file(self.sb.record_path());
        let _ = std::fs::remove_file(env_path(&self.sb.record_path()));
        self.proxy.reset();
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .expect("cannot run the shim");
        self.check_secrets(&out);
        out
    }

    /// Asserts that no known secret appears in the output, after adding the ones this
    /// run produced (terraform's environment and the cache files).
    fn check_secrets(&mut self, out: &Output) {
        let env = self.recorded_env();
        for k in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if let Some(v) = env.get(k) {
                assert!(
                    v.len() >= 16,
                    "{k} is too short to be a secret ({} bytes)",
                    v.len()
                );
                self.secrets.push(v.clone());
            }
        }
        self.secrets.extend(cache_secrets(&self.cache_dir()));
        assert_no_secrets(out, &self.secrets);
    }

    /// terraform's recorded environment of the last run (empty if it did not start).
    fn recorded_env(&self) -> BTreeMap<String, String> {
        recorded_env(&self.sb.record_path())
    }

    fn terraform_started(&self) -> bool {
        self.sb.record_path().exists()
    }

    /// `$XDG_CACHE_HOME/breakglass`.
    fn cache_dir(&self) -> PathBuf {
        PathBuf::from(self.sb.env["XDG_CACHE_HOME"].clone()).join("breakglass")
    }

    fn credentials_dir(&self) -> PathBuf {
        self.cache_dir().join("credentials")
    }
}

/// Secrets must never be printed: every value of `secrets` is absent from stderr and
/// stdout.
fn assert_no_secrets(out: &Output, secrets: &[String]) {
    assert!(!secrets.is_empty(), "no secrets to look for");
    let (err, so) = (stderr(out), stdout(out));
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !err.contains(s.as_str()),
            "a secret ({}...) is on stderr:\n{err}",
            &s[..4]
        );
        assert!(
            !so.contains(s.as_str()),
            "a secret ({}...) is on stdout:\n{so}",
            &s[..4]
        );
    }
}

/// The environment the fake terraform recorded (`$FAKE_TF_RECORD.env`).
fn recorded_env(record: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(env_path(record)) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `$FAKE_TF_RECORD.env`.
fn env_path(record: &Path) -> PathBuf {
    let mut p = record.as_os_str().to_owned();
    p.push(".env");
    PathBuf::from(p)
}

/// The secret strings in every cache file under `dir` (credentials and MFA sessions).
fn cache_secrets(dir: &Path) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("secret_access_key" | "session_token", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for sub in ["credentials", "mfa"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            if let Ok(v) = serde_json::from_slice(&std::fs::read(e.path()).unwrap_or_default()) {
                walk(&v, &mut out);
            }
        }
    }
    out
}

/// The ARN the fake terraform printed (its STS identity).
fn printed_arn(out: &Output) -> String {
    stdout(out)
        .lines()
        .find(|l| l.starts_with("arn:"))
        .unwrap_or_else(|| {
            panic!(
                "terraform printed no ARN\nstdout:\n{}\nstderr:\n{}",
                stdout(out),
                stderr(out)
            )
        })
        .to_string()
}

fn assumed(role: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/breakglass-alice")
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// A shim failure: exit 125, terraform never started.
fn assert_shim_failure(w: &World, out: &Output) {
    assert_eq!(out.status.code(), Some(125), "stderr:\n{}", stderr(out));
    assert!(!w.terraform_started(), "terraform started: {}", stderr(out));
    assert!(
        !stdout(out).contains("fake terraform"),
        "terraform started: {}",
        stdout(out)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The cache entries (`*.json`) in the credentials directory.
fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "json"));
    v.sort();
    v
}

/// The command runs in a new session: no controlling terminal, so `/dev/tty` cannot
/// be opened.
fn no_terminal(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------

#[test]
fn alice_runs_terraform_as_the_deploy_role_and_as_herself_when_off() {
    let mut w = World::enforced("alice");
    let dir = w.deploy_project("");
    let out = w.terraform(&dir, &["apply", "-auto-approve"]);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), assumed("deploy"));
    assert_eq!(w.proxy.assume_role(), 1, "{:?}", w.proxy.counts());
    let err = stderr(&out);
    let announce: Vec<&str> = err
        .lines()
        // The plain hand-over also warns that it does not refresh; that line aside,
        // the shim says one thing.
        .filter(|l| l.starts_with("breakglass:") && !l.contains("delivery = \"env\""))
        .collect();
    assert_eq!(announce.len(), 1, "{err}");
    assert!(
        announce[0].starts_with(&format!(
            "breakglass: as {} (session breakglass-alice), credentials until ",
            role_arn("deploy")
        )) && announce[0].ends_with(" left)"),
        "{err}"
    );
    let env = w.recorded_env();
    let alice = w.bed.user("alice");
    assert_ne!(env["AWS_ACCESS_KEY_ID"], alice.key);
    assert!(!env["AWS_SESSION_TOKEN"].is_empty());
    assert_eq!(env["AWS_REGION"], "us-east-1");

    // Off: terraform runs with Alice's own identity, and no role is assumed.
    w.sb.set("BREAKGLASS", "0");
    let out = w.terraform(&dir, &["apply", "-auto-approve"]);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), alice.arn);
    assert_eq!(w.proxy.assume_role(), 0);
    assert_eq!(w.recorded_env()["AWS_ACCESS_KEY_ID"], alice.key);
    assert!(!stderr(&out).contains("breakglass:"), "{}", stderr(&out));
}

#[test]
fn a_second_run_reuses_the_cached_credentials_without_sts() {
    let mut w = World::enforced("alice");
    let dir = w.deploy_project("");
    let first = w.terraform(&dir, &["apply"]);
    assert_ok(&first);
    assert_eq!(w.proxy.assume_role(), 1);
    let key1 = w.recorded_env()["AWS_ACCESS_KEY_ID"].clone();
    assert!(!stderr(&first).contains(", cached)"), "{}", stderr(&first));

    let second = w.terraform(&dir, &["apply"]);
    assert_ok(&second);
    assert_eq!(printed_arn(&second), assumed("deploy"));
    assert_eq!(w.recorded_env()["AWS_ACCESS_KEY_ID"], key1);
    assert_eq!(w.proxy.assume_role(), 0, "{:?}", w.proxy.counts());
    assert_eq!(w.proxy.get_session_token(), 0);
    assert!(
        stderr(&second).contains(" left, cached)"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn credentials_within_refresh_before_of_expiry_are_renewed() {
    let mut w = World::enforced("alice");
    // 15 minutes, renewed with less than 14m58s left: usable from the cache for 2 s.
    let dir = w.deploy_project("duration = \"15m\"\nrefresh_before = \"14m58s\"\n");
    let first = w.terraform(&dir, &["apply"]);
    assert_ok(&first);
    assert_eq!(w.proxy.assume_role(), 1);
    let key1 = w.recorded_env()["AWS_ACCESS_KEY_ID"].clone();
    std::thread::sleep(Duration::from_secs(3));

    let second = w.terraform(&dir, &["apply"]);
    assert_ok(&second);
    assert_eq!(printed_arn(&second), assumed("deploy"));
    assert_eq!(w.proxy.assume_role(), 1, "{:?}", w.proxy.counts());
    let key2 = w.recorded_env()["AWS_ACCESS_KEY_ID"].clone();
    assert_ne!(key1, key2);
    assert!(!stderr(&second).contains("cached"), "{}", stderr(&second));
}

#[test]
fn bob_is_denied_with_both_arns_and_terraform_never_starts() {
    let mut w = World::enforced("bob");
    let dir = w.deploy_project("");
    let out = w.terraform(&dir, &["apply"]);
    assert_shim_failure(&w, &out);
    let err = stderr(&out);
    assert!(err.contains("access denied"), "{err}");
    assert!(
        err.contains(&format!(
            "arn:aws:iam::{ACCOUNT}:user/bob may not assume {}",
            role_arn("deploy")
        )),
        "{err}"
    );
    assert!(err.contains("breakglass doctor"), "{err}");
    assert!(cache_entries(&w.credentials_dir()).is_empty());
}

#[test]
fn unknown_keys_get_the_invalid_credentials_message() {
    let mut w = World::enforced("alice");
    let bogus_secret = "bogusSecretKeyNobodyHas0123456789abcdef".to_string();
    w.sb.set("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        .set("AWS_SECRET_ACCESS_KEY", bogus_secret.clone());
    w.secrets.push(bogus_secret);
    let dir = w.deploy_project("");
    let out = w.terraform(&dir, &["apply"]);
    assert_shim_failure(&w, &out);
    let err = stderr(&out);
    assert!(
        err.contains("were rejected by STS (InvalidClientTokenId)"),
        "{err}"
    );
    assert!(err.contains("expired or invalid"), "{err}");
    assert!(
        err.contains("AWS_ACCESS_KEY_ID in the environment"),
        "{err}"
    );
}

#[test]
fn workspaces_and_stacks_pick_their_roles() {
    let mut w = World::enforced("alice");
    let root = w.project(
        "infra",
        &format!(
            r#"enabled = true
region = "us-east-1"
delivery = "env"
[role]
arn = "{}"
[workspaces.prod]
arn = "{}"
[stacks."network/*"]
arn = "{}"
"#,
            role_arn("deploy"),
            role_arn("prod"),
            role_arn("network")
        ),
    );
    let app = root.join("app");
    let vpc = root.join("network/vpc");
    let selected = root.join("selected");
    for d in [&app, &vpc, &selected] {
        std::fs::create_dir_all(d).unwrap();
    }
    // `terraform workspace select prod` writes this file.
    std::fs::create_dir_all(selected.join(".terraform")).unwrap();
    std::fs::write(selected.join(".terraform/environment"), "prod\n").unwrap();

    let cases: [(&Path, Option<&str>, &str); 5] = [
        (&app, None, "deploy"),
        (&app, Some("prod"), "prod"),
        (&selected, None, "prod"),
        (&vpc, None, "network"),
        // The stack is more specific than the workspace.
        (&vpc, Some("prod"), "network"),
    ];
    for (dir, ws, role) in cases {
        match ws {
            Some(ws) => w.sb.set("TF_WORKSPACE", ws),
            None => w.sb.unset("TF_WORKSPACE"),
        };
        let out = w.terraform(dir, &["apply"]);
        assert_ok(&out);
        assert_eq!(printed_arn(&out), assumed(role), "{} {ws:?}", dir.display());
        assert!(
            stderr(&out).contains(&format!("breakglass: as {} ", role_arn(role))),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn plan_uses_the_read_role_and_apply_the_write_role() {
    let mut w = World::enforced("alice");
    let dir = w.deploy_project(&format!("read_arn = \"{}\"\n", role_arn("read")));
    for (args, role) in [
        (&["plan"][..], "read"),
        (&["apply", "-auto-approve"], "deploy"),
        (&["show"], "read"),
        (&["destroy"], "deploy"),
    ] {
        let out = w.terraform(&dir, args);
        assert_ok(&out);
        assert_eq!(printed_arn(&out), assumed(role), "{args:?}");
        // The fake got the arguments unchanged.
        let recorded = recorded_args(&w.sb.record_path());
        assert_eq!(
            recorded,
            args.iter()
                .map(|a| a.as_bytes().to_vec())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn cache_files_are_private_and_a_tampered_one_is_ignored_with_a_warning() {
    let mut w = World::enforced("alice");
    let dir = w.deploy_project("");
    assert_ok(&w.terraform(&dir, &["apply"]));
    let creds = w.credentials_dir();
    assert_eq!(mode(&creds), 0o700);
    assert_eq!(mode(&w.cache_dir()), 0o700);
    let entries = cache_entries(&creds);
    assert_eq!(entries.len(), 1, "{entries:?}");
    for f in std::fs::read_dir(&creds).unwrap().flatten() {
        assert_eq!(mode(&f.path()), 0o600, "{}", f.path().display());
    }
    let entry = &entries[0];
    let key1 = w.recorded_env()["AWS_ACCESS_KEY_ID"].clone();
    assert!(std::fs::read_to_string(entry).unwrap().contains(&key1));

    // Garbage (still 0600): ignored with a warning, fresh credentials replace it.
    std::fs::write(entry, b"{\"credentials\": garbage").unwrap();
    assert_eq!(mode(entry), 0o600);
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    let err = stderr(&out);
    // One warning, naming the file.
    let warning = format!(
        "breakglass: warning: ignoring corrupt cache file {}",
        entry.display()
    );
    assert_eq!(err.matches(&warning).count(), 1, "{err}");
    assert_eq!(printed_arn(&out), assumed("deploy"));
    assert_eq!(w.proxy.assume_role(), 1);
    let key2 = w.recorded_env()["AWS_ACCESS_KEY_ID"].clone();
    assert_ne!(key1, key2);
    assert_eq!(mode(entry), 0o600);
    serde_json::from_slice::<serde_json::Value>(&std::fs::read(entry).unwrap())
        .expect("the entry was rewritten");

    // Readable by others: not trusted either.
    std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    assert_eq!(
        stderr(&out).matches("it is readable by others").count(),
        1,
        "{}",
        stderr(&out)
    );
    assert_eq!(w.proxy.assume_role(), 1);
    assert_eq!(mode(entry), 0o600);

    // And the rewritten entry serves the next run.
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("ignoring"), "{}", stderr(&out));
    assert_eq!(w.proxy.assume_role(), 0);
}

#[test]
fn two_shims_started_together_make_one_assume_role_call() {
    let mut w = World::enforced("alice");
    let dir = w.deploy_project("");
    w.proxy.reset();
    let records: Vec<PathBuf> = (0..2)
        .map(|i| w.sb.root().join(format!("record{i}")))
        .collect();
    let children: Vec<_> = records
        .iter()
        .map(|r| {
            let mut cmd = w.sb.terraform(&dir, &["apply"]);
            cmd.env("FAKE_TF_RECORD", r)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut keys = Vec::new();
    for (out, r) in outs.iter().zip(&records) {
        assert_ok(out);
        assert_eq!(printed_arn(out), assumed("deploy"));
        let env = recorded_env(r);
        w.secrets.push(env["AWS_SECRET_ACCESS_KEY"].clone());
        w.secrets.push(env["AWS_SESSION_TOKEN"].clone());
        keys.push(env["AWS_ACCESS_KEY_ID"].clone());
    }
    for out in &outs {
        w.check_secrets(out);
    }
    assert_eq!(w.proxy.assume_role(), 1, "{:?}", w.proxy.counts());
    assert_eq!(keys[0], keys[1]);
    // One of them waited for the other and took its credentials from the cache.
    let cached = outs
        .iter()
        .filter(|o| stderr(o).contains(", cached)"))
        .count();
    assert_eq!(cached, 1, "{}\n{}", stderr(&outs[0]), stderr(&outs[1]));
}

// moto accepts any MFA code, and the keys its GetSessionToken returns are not known
// to its IAM enforcement (every call signed with them is rejected), so the MFA flow
// runs with IAM enforcement OFF: what this test shows is the sequence and number of
// STS calls and that the MFA session is reused, not moto's authorisation.
#[test]
fn mfa_session_is_made_once_and_reused_without_a_prompt() {
    let mut w = World::unenforced("alice");
    let dir = w.deploy_project(&format!("mfa_serial = \"{MFA_SERIAL}\"\n"));

    w.sb.set("BREAKGLASS_MFA_TOKEN", "123456");
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), assumed("deploy"));
    assert_eq!(w.proxy.get_session_token(), 1, "{:?}", w.proxy.counts());
    assert_eq!(w.proxy.assume_role(), 1, "{:?}", w.proxy.counts());
    assert!(!w.recorded_env().contains_key("BREAKGLASS_MFA_TOKEN"));
    assert!(!cache_entries(&w.cache_dir().join("mfa")).is_empty());
    assert_eq!(mode(&w.cache_dir().join("mfa")), 0o700);

    // New role credentials from the cached MFA session: no code, no terminal, no stdin.
    std::fs::remove_dir_all(w.credentials_dir()).unwrap();
    w.sb.unset("BREAKGLASS_MFA_TOKEN");
    let mut cmd = w.sb.terraform(&dir, &["apply"]);
    no_terminal(&mut cmd);
    let out = w.run(cmd);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), assumed("deploy"));
    assert_eq!(w.proxy.get_session_token(), 0, "{:?}", w.proxy.counts());
    assert_eq!(w.proxy.assume_role(), 1, "{:?}", w.proxy.counts());
    assert!(!stderr(&out).contains("MFA code"), "{}", stderr(&out));

    // No MFA session, no code, no terminal: a clear error, before terraform.
    std::fs::remove_dir_all(w.cache_dir()).unwrap();
    let mut cmd = w.sb.terraform(&dir, &["apply"]);
    no_terminal(&mut cmd);
    let out = w.run(cmd);
    assert_shim_failure(&w, &out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("MFA is required (mfa_serial = {MFA_SERIAL})")),
        "{err}"
    );
    assert!(err.contains("no terminal"), "{err}");
    assert!(err.contains("BREAKGLASS_MFA_TOKEN"), "{err}");
    assert_eq!(w.proxy.get_session_token(), 0);
    assert_eq!(w.proxy.assume_role(), 0);
}

#[test]
fn a_missing_region_is_reported() {
    let mut w = World::enforced("alice");
    w.sb.unset("AWS_REGION").unset("AWS_DEFAULT_REGION");
    let dir = w.project(
        "proj",
        &format!(
            "enabled = true\ndelivery = \"env\"\n[role]\narn = \"{}\"\n",
            role_arn("deploy")
        ),
    );
    let out = w.terraform(&dir, &["apply"]);
    assert_shim_failure(&w, &out);
    let err = stderr(&out);
    assert!(err.contains("no AWS region is set"), "{err}");
    assert!(err.contains("region = "), "{err}");
    assert_eq!(w.proxy.assume_role(), 0);

    // The environment's region is enough.
    w.sb.set("AWS_REGION", "us-east-1");
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), assumed("deploy"));
}

#[test]
fn an_unreachable_sts_fails_fast_with_a_network_message() {
    let mut w = World::enforced("alice");
    let closed = free_port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    w.sb.set("AWS_ENDPOINT_URL", endpoint.clone());
    let dir = w.deploy_project("");
    let started = Instant::now();
    let out = w.terraform(&dir, &["apply"]);
    let took = started.elapsed();
    assert_shim_failure(&w, &out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach STS at {endpoint}")),
        "{err}"
    );
    assert!(err.contains("check your network"), "{err}");
    eprintln!("unreachable STS reported after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_silent_sts_is_given_up_within_the_time_limit() {
    let mut w = World::enforced("alice");
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    w.sb.set("AWS_ENDPOINT_URL", endpoint.clone());
    let dir = w.deploy_project("");
    let started = Instant::now();
    let out = w.terraform(&dir, &["apply"]);
    let took = started.elapsed();
    assert_shim_failure(&w, &out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach STS at {endpoint}")),
        "{err}"
    );
    assert!(!held.lock().unwrap().is_empty(), "the shim never connected");
    // The credential step gives up after at most 15 s (TOTAL_TIMEOUT).
    eprintln!("silent STS reported after {took:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn ambient_aws_profile_is_not_passed_to_terraform() {
    let mut w = World::enforced("alice");
    // A decoy profile with Carol's keys; Alice's keys in the environment are the source.
    let aws = w.sb.home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let carol = w.bed.user("carol");
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[decoy]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            carol.key, carol.secret
        ),
    )
    .unwrap();
    std::fs::write(aws.join("config"), "[profile decoy]\nregion = us-east-1\n").unwrap();
    w.sb.set("AWS_PROFILE", "decoy")
        .set("AWS_DEFAULT_PROFILE", "decoy");
    let dir = w.deploy_project("");
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), assumed("deploy"));
    let env = w.recorded_env();
    assert!(!env.is_empty());
    assert!(
        !env.contains_key("AWS_PROFILE"),
        "{:?}",
        env.get("AWS_PROFILE")
    );
    assert!(!env.contains_key("AWS_DEFAULT_PROFILE"));
    assert_ne!(env["AWS_ACCESS_KEY_ID"], carol.key);
    assert_ne!(env["AWS_ACCESS_KEY_ID"], w.bed.user("alice").key);
    // Off, the profile reaches terraform as the user set it.
    w.sb.set("BREAKGLASS", "0");
    let out = w.terraform(&dir, &["apply"]);
    assert_ok(&out);
    assert_eq!(w.recorded_env()["AWS_PROFILE"], "decoy");
}
