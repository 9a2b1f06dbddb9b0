//! When the night gets worse: a held credential lock, a nested shell in another
//! project, `source_profile` beside exported keys, a config planted by another user, a
//! closed pipe, a broken config, and `-C` for `exec`. Against moto with IAM
//! enforcement on, with the recording fake terraform (the hang-up cases, which need the
//! real terraform and a terminal, are in tests/supervised.rs).

mod kit;
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use breakglass::config::Project;
use kit::*;
use support::*;

/// A config whose MFA code comes from `mfa_command` (which may take its time), with
/// the lock bound `lock_wait`.
fn mfa_toml(mfa_command: &str, lock_wait: &str) -> String {
    format!(
        "enabled = true\nregion = \"us-east-1\"\nlock_wait = \"{lock_wait}\"\n\n[role]\narn = \"{}\"\nmfa_serial = \"arn:aws:iam::{ACCOUNT}:mfa/alice\"\nmfa_command = \"{mfa_command}\"\n",
        role_arn("deploy")
    )
}

#[test]
fn a_held_credential_lock_is_announced_within_a_second_and_bounded() {
    let k = Kit::new();
    // The holder asks mfa_command for a code, which takes a minute: it holds the
    // credential lock all that time, as a person typing a code in another terminal does.
    let dir = k.project("proj", &mfa_toml("sleep 60; echo 123456", "4s"));
    let mut holder = k.sb.terraform(&dir, &["plan"]);
    holder
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut holder = holder.spawn().unwrap();
    // The holder has taken the lock and started mfa_command once the `sleep` runs.
    let lock_dir = k.cache_dir().join("credentials");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let noted = std::fs::read_dir(&lock_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "lock"))
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.ends_with("mfa\n")));
        if noted {
            break;
        }
        assert!(Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }

    let start = Instant::now();
    let mut waiter = k.sb.terraform(&dir, &["plan"]);
    waiter
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut waiter = waiter.spawn().unwrap();
    let lines = BufReader::new(waiter.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut waiting_at = None;
    for line in lines.lines() {
        let line = line.unwrap();
        if line.contains("waiting for another breakglass process") && waiting_at.is_none() {
            waiting_at = Some(start.elapsed());
        }
        seen.push(line);
    }
    let status = waiter.wait().unwrap();
    let took = start.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    let all = seen.join("\n");
    let at = waiting_at.unwrap_or_else(|| panic!("no waiting line: {all}"));
    assert!(
        at < Duration::from_secs(2),
        "the waiting line came after {at:?}: {all}"
    );
    let line = seen
        .iter()
        .find(|l| l.contains("waiting for another"))
        .unwrap();
    assert!(line.contains(&format!("pid {}", holder.id())), "{line}");
    assert!(line.contains("role/deploy"), "{line}");
    assert!(line.contains("waiting for an MFA code"), "{line}");
    assert_eq!(
        seen.iter()
            .filter(|l| l.contains("waiting for another"))
            .count(),
        1,
        "{all}"
    );
    assert_eq!(status.code(), Some(125), "{all}");
    assert!(
        all.contains("gave up after 4s") && all.contains("fix:"),
        "{all}"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[test]
fn a_nested_terraform_in_another_project_refuses_and_in_the_same_one_inherits() {
    let mut k = Kit::new();
    let a = k.project("a", &Kit::deploy_toml(true, ""));
    let b = k.project(
        "b",
        &format!(
            "enabled = true\nregion = \"us-east-1\"\n[role]\narn = \"{}\"\n",
            role_arn("network")
        ),
    );
    // `breakglass exec -- sh` in A, then `cd ../b && terraform plan`.
    let script = format!("cd {} && terraform plan", b.display());
    let out = k.breakglass(&["-C", a.to_str().unwrap(), "exec", "--", "sh", "-c", &script]);
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(
        !k.terraform_ran(),
        "terraform ran under the wrong role: {err}"
    );
    assert!(err.contains(a.to_str().unwrap()), "{err}");
    assert!(err.contains(b.to_str().unwrap()), "{err}");
    assert!(
        err.contains("role/deploy") && err.contains("role/network"),
        "{err}"
    );
    assert!(err.contains("fix:"), "{err}");

    // In A itself the nested terraform inherits the run's credentials.
    let script = format!("cd {} && terraform plan", a.display());
    let out = k.breakglass(&["-C", a.to_str().unwrap(), "exec", "--", "sh", "-c", &script]);
    assert_ok(&out);
    let env = k.recorded_env();
    assert!(
        env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{env:?}"
    );
    k.finish();
}

#[test]
fn exec_with_dash_c_runs_the_command_in_that_directory() {
    let mut k = Kit::new();
    let a = k.project("a", &Kit::deploy_toml(true, ""));
    let out = k.breakglass(&["-C", a.to_str().unwrap(), "exec", "--", "pwd"]);
    assert_ok(&out);
    let printed = stdout(&out);
    assert_eq!(
        Path::new(printed.trim()).canonicalize().unwrap(),
        a.canonicalize().unwrap(),
        "{printed}"
    );
    k.finish();
}

#[test]
fn source_profile_is_used_even_with_other_keys_exported() {
    let mut k = Kit::new();
    let alice = k.bed.user("alice");
    let bob = k.bed.user("bob");
    let aws = k.sb.home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[alice]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            alice.key, alice.secret
        ),
    )
    .unwrap();
    // Bob's keys in the environment: the default chain would pick them first.
    k.sb.set("AWS_ACCESS_KEY_ID", bob.key.clone())
        .set("AWS_SECRET_ACCESS_KEY", bob.secret.clone());
    let dir = k.project(
        "proj",
        &Kit::deploy_toml(true, "").replace("[role]\n", "[role]\nsource_profile = \"alice\"\n"),
    );
    let out = k.terraform(&dir, &["plan"], &[]);
    assert_ok(&out);
    let log = k.log();
    let rec = log.last().unwrap();
    assert_eq!(rec["source_arn"], user_arn("alice"), "{rec}");
    let status = k.breakglass(&["-C", dir.to_str().unwrap(), "status"]);
    assert!(
        stdout(&status).contains("profile `alice`, from source_profile"),
        "{}",
        stdout(&status)
    );
    k.finish();
}

/// A fake "terraform" that a planted config names: it leaves a mark when it runs.
fn planted(k: &Kit) -> (std::path::PathBuf, std::path::PathBuf) {
    let mark = k.sb.root().join("PLANTED-RAN");
    let evil = k.sb.root().join("evil.sh");
    write_exe(&evil, &format!("#!/bin/sh\ntouch {}\n", mark.display()));
    (evil, mark)
}

#[test]
fn a_config_another_user_owns_is_ignored_and_its_program_never_runs() {
    let mut k = Kit::new();
    let (evil, mark) = planted(&k);
    let top = k.dir("shared", &[]);
    let cfg = top.join(".breakglass.toml");
    std::fs::write(&cfg, format!("terraform = \"{}\"\n", evil.display())).unwrap();
    let work = k.dir("shared/team/app", &[]);
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // Owned by `nobody`, two directories up (CI runs as root).
        std::os::unix::fs::chown(&cfg, Some(65534), Some(65534)).unwrap();
    } else {
        // Without root, the other untrusted kind: anyone can write it.
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let out = k.terraform(&work, &["version"], &[]);
    let err = stderr(&out);
    assert_ok(&out);
    assert!(!mark.exists(), "the planted program ran: {err}");
    assert!(k.terraform_ran(), "the real terraform did not run: {err}");
    assert!(
        err.contains(&format!("ignoring {}", cfg.display())),
        "{err}"
    );
    assert!(err.contains("breakglass trust"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.contains("warning")).count(),
        1,
        "{err}"
    );

    // Shell completion stays silent about it.
    let out = k.terraform(&work, &["version"], &[("COMP_LINE", "terraform ver")]);
    assert!(!stderr(&out).contains("breakglass"), "{}", stderr(&out));

    // World-writable is refused too, whoever owns it.
    if root {
        std::os::unix::fs::chown(&cfg, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
        let out = k.terraform(&work, &["version"], &[]);
        assert!(!mark.exists(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("anyone can write it"),
            "{}",
            stderr(&out)
        );
    }

    // Trusted on purpose, it is obeyed.
    let out = k.breakglass(&["trust", cfg.to_str().unwrap()]);
    assert_ok(&out);
    let out = k.terraform(&work, &["version"], &[]);
    assert_ok(&out);
    assert!(
        mark.exists(),
        "a trusted config was not obeyed: {}",
        stderr(&out)
    );
    k.finish();
}

#[test]
fn a_broken_config_never_blocks_version_or_fmt_but_still_stops_plan() {
    let mut k = Kit::new();
    let dir = k.project("proj", "enabled = true\n[role\narn = \"x\"\n");
    for args in [&["version"][..], &["fmt"][..], &["-help"][..]] {
        let out = k.terraform(&dir, args, &[]);
        let err = stderr(&out);
        assert_ok(&out);
        assert!(k.terraform_ran(), "{args:?}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("breakglass:")).count(),
            1,
            "{args:?}: one warning line: {err}"
        );
        assert!(err.contains(".breakglass.toml:2:"), "{err}");
    }
    let out = k.terraform(&dir, &["plan"], &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(!k.terraform_ran());
    assert!(err.contains(".breakglass.toml:2:"), "file:line:col: {err}");
    // The local trail and a fresh config are still within reach.
    let d = dir.to_str().unwrap();
    assert_ok(&k.breakglass(&["-C", d, "log"]));
    let out = k.breakglass(&["-C", d, "init", "--force", "--region", "eu-west-1"]);
    assert_ok(&out);
    assert!(
        Project::discover(&dir).unwrap().is_some(),
        "{}",
        stderr(&out)
    );
    k.finish();
}

/// Runs `breakglass ARGS` with stdout into a pipe nobody reads (already closed), and
/// through `| head -1`.
fn into_closed_pipes(k: &Kit, args: &[&str]) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out =
        k.sb.breakglass(args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: {err}"
    );
    assert!(
        out.status.code().is_some(),
        "{args:?} died of a signal: {:?}",
        out.status
    );

    let bg = breakglass_bin();
    let line = format!(
        "set -o pipefail; '{}' {} | head -1",
        bg.display(),
        args.join(" ")
    );
    let out = k.sb.command("bash").arg("-c").arg(&line).output().unwrap();
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{line}: {err}"
    );
    assert_eq!(stdout(&out).lines().count(), 1, "{line}");
}

#[test]
fn a_closed_pipe_ends_log_and_roles_quietly() {
    let k = Kit::new();
    // Enough output that the writer is still writing when the reader is gone.
    let mut stacks = String::new();
    for i in 0..3000 {
        stacks.push_str(&format!(
            "[stacks.\"s{i}\"]\narn = \"{}\"\n",
            role_arn("deploy")
        ));
    }
    let dir = k.project("proj", &Kit::deploy_toml(false, &stacks));
    let record = serde_json::json!({
        "started": "2026-11-22T00:00:00Z", "ended": "2026-11-22T00:00:01Z",
        "user": "alice", "host": "h", "kind": "terraform", "source_arn": null,
        "role_arn": role_arn("deploy"), "session_name": "s", "source_identity": null,
        "workspace": "default", "project": "/p", "subcommand": "plan",
        "args": ["plan"], "reason": null, "exit_code": 0
    });
    let audit = k.audit_path();
    std::fs::create_dir_all(audit.parent().unwrap()).unwrap();
    let lines: String = (0..5000).map(|_| format!("{record}\n")).collect();
    std::fs::write(&audit, lines).unwrap();
    std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o600)).unwrap();
    into_closed_pipes(&k, &["log", "--json"]);
    into_closed_pipes(&k, &["-C", dir.to_str().unwrap(), "roles"]);
}
