//! The hand-overs to other tools, against moto with IAM enforcement on: `exec` runs
//! any command as the role, `credentials` is a `credential_process` botocore accepts,
//! `env` prints exports a shell can eval, and `logout` forgets the cached credentials.
//! The role's secrets appear only on the stdout of `env` and `credentials`.

mod kit;
mod support;

use std::path::Path;

use kit::*;
use serde_json::Value;
use support::*;

/// A project whose config does NOT switch break-glass mode on: the hand-overs always
/// run under the role.
fn project(k: &Kit) -> std::path::PathBuf {
    k.project("proj", &Kit::deploy_toml(false, ""))
}

/// `breakglass -C DIR credentials`, parsed and checked as credential_process JSON; its
/// secrets are added to the watch list.
fn credentials(k: &mut Kit, dir: &Path) -> Value {
    let cmd =
        k.sb.breakglass(&["-C", dir.to_str().unwrap(), "credentials"]);
    let out = k.run_secret_stdout(cmd);
    assert_ok(&out);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("credentials printed no JSON ({e}): {}", stderr(&out)));
    let obj = doc.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
    );
    assert_eq!(doc["Version"], 1);
    let id = doc["AccessKeyId"].as_str().unwrap();
    assert!(id.starts_with("ASIA"), "temporary credentials: {id}");
    k.add_secret(doc["SecretAccessKey"].as_str().unwrap());
    k.add_secret(doc["SessionToken"].as_str().unwrap());
    let exp = doc["Expiration"].as_str().unwrap();
    assert!(
        exp.len() >= 20 && exp.as_bytes()[10] == b'T' && exp.ends_with('Z'),
        "RFC 3339 UTC: {exp}"
    );
    assert_eq!(stdout(&out).lines().count(), 1, "one JSON document only");
    doc
}

#[test]
fn exec_runs_a_command_as_the_role_and_hands_back_its_exit_code() {
    let mut k = Kit::new();
    let proj = project(&k);
    let p = proj.to_str().unwrap();

    // alice's own keys are in the environment; the command does not see them.
    let script = format!("test -z \"$AWS_ACCESS_KEY_ID\" && {}", who_am_i_sh());
    let out = k.breakglass(&["-C", p, "exec", "--", "sh", "-c", &script]);
    assert_ok(&out);
    assert!(
        printed_arn(&out).starts_with(&assumed("deploy")),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(&format!("breakglass: as {}", role_arn("deploy"))),
        "{}",
        stderr(&out)
    );

    let out = k.breakglass(&["-C", p, "exec", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));

    let out = k.breakglass(&["-C", p, "exec", "--", "no-such-program-here"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // Both runs are in the audit trail.
    let log = k.log();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(log.iter().all(|r| r["kind"] == "exec"), "{log:#?}");
    assert!(
        log.iter().all(|r| r["role_arn"] == role_arn("deploy")),
        "{log:#?}"
    );
    assert_eq!(log[0]["exit_code"], 0);
    assert_eq!(log[1]["exit_code"], 7);
    k.finish();
}

#[test]
fn credentials_is_a_credential_process_botocore_accepts() {
    let mut k = Kit::new();
    let proj = project(&k);
    let first = credentials(&mut k, &proj);
    // A second call is served from the cache.
    let second = credentials(&mut k, &proj);
    assert_eq!(first["AccessKeyId"], second["AccessKeyId"]);

    let aws = k.sb.home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile bg]\ncredential_process = {} -C {} credentials\nregion = us-east-1\n",
            breakglass_bin().display(),
            proj.display()
        ),
    )
    .unwrap();
    let script = "import boto3; print(boto3.Session(profile_name='bg').client('sts').get_caller_identity()['Arn'])";

    // 1. alice's keys in the environment (breakglass, started by botocore, needs
    //    them); the profile is named explicitly, so botocore uses credential_process.
    let mut cmd = k.sb.command(python());
    cmd.args(["-c", script]);
    let out = k.run(cmd);
    assert_ok(&out);
    assert!(
        printed_arn(&out).starts_with(&assumed("deploy")),
        "{}",
        stdout(&out)
    );

    // 2. No keys in the environment at all: alice's are only in the shared credentials
    //    file, which breakglass reads as its source identity.
    std::fs::write(
        aws.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            k.bed.user("alice").key,
            k.bed.user("alice").secret
        ),
    )
    .unwrap();
    let mut cmd = k.sb.command(python());
    cmd.args(["-c", script])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let out = k.run(cmd);
    assert_ok(&out);
    assert!(
        printed_arn(&out).starts_with(&assumed("deploy")),
        "{}",
        stdout(&out)
    );
    // Without the profile, the same Python is alice herself: the profile made the
    // difference.
    let mut cmd = k.sb.command(python());
    cmd.args(["-c", WHO_AM_I])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let out = k.run(cmd);
    assert_ok(&out);
    assert_eq!(printed_arn(&out), user_arn("alice"));
    k.finish();
}

#[test]
fn env_prints_exports_that_make_a_shell_the_role() {
    let mut k = Kit::new();
    let proj = project(&k);
    let p = proj.to_str().unwrap();
    let cmd = k.sb.breakglass(&["-C", p, "env"]);
    let out = k.run_secret_stdout(cmd);
    assert_ok(&out);
    assert!(stderr(&out).contains("NOT refreshed"), "{}", stderr(&out));
    let text = stdout(&out);
    let mut vars = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("export ") {
            let (k, v) = rest.split_once('=').unwrap();
            vars.insert(k.to_string(), v.trim_matches('\'').to_string());
        } else {
            assert!(line.starts_with("unset "), "unexpected line: {line}");
        }
    }
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        assert!(vars.contains_key(var), "{var} missing: {text}");
    }
    assert!(vars["AWS_ACCESS_KEY_ID"].starts_with("ASIA"));
    assert_eq!(vars["AWS_REGION"], "us-east-1");
    k.add_secret(&vars["AWS_SECRET_ACCESS_KEY"]);
    k.add_secret(&vars["AWS_SESSION_TOKEN"]);

    // eval'd in sh (which starts with alice's keys), the exports make boto3 the role.
    let script = format!(
        "eval \"$('{}' -C '{}' env)\" && {}",
        breakglass_bin().display(),
        p,
        who_am_i_sh()
    );
    let mut cmd = k.sb.command("/bin/sh");
    cmd.args(["-c", &script]);
    let out = k.run(cmd);
    assert_ok(&out);
    assert!(
        printed_arn(&out).starts_with(&assumed("deploy")),
        "{}",
        stdout(&out)
    );
    k.finish();
}

#[test]
fn logout_removes_the_cached_credentials_and_the_next_run_assumes_again() {
    let mut k = Kit::new();
    let proj = k.project("proj", &Kit::deploy_toml(true, ""));

    let out = k.terraform(&proj, &["plan"], &[]);
    assert_ok(&out);
    assert!(!stderr(&out).contains(", cached)"), "{}", stderr(&out));
    let out = k.terraform(&proj, &["plan"], &[]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(", cached)"),
        "the second run uses the cache: {}",
        stderr(&out)
    );
    let before = credentials(&mut k, &proj);
    assert!(!cached_files(&k.cache_dir()).is_empty());

    let out = k.breakglass(&["logout"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("removed") && !stderr(&out).contains("removed 0"),
        "{}",
        stderr(&out)
    );
    assert!(
        cached_files(&k.cache_dir()).is_empty(),
        "{:?}",
        cached_files(&k.cache_dir())
    );
    let status = k.breakglass(&["-C", proj.to_str().unwrap(), "status"]);
    assert!(
        stdout(&status).contains("credentials: none cached"),
        "{}",
        stdout(&status)
    );

    // A new AssumeRole: a different access key, and the shim is not "cached".
    let after = credentials(&mut k, &proj);
    assert_ne!(before["AccessKeyId"], after["AccessKeyId"]);
    let out = k.breakglass(&["logout"]);
    assert_ok(&out);
    let out = k.terraform(&proj, &["plan"], &[]);
    assert_ok(&out);
    assert!(!stderr(&out).contains(", cached)"), "{}", stderr(&out));
    k.finish();
}

/// The secret watch the other tests rely on does catch a leak: `credentials` run as if
/// its stdout were an ordinary one.
#[test]
#[should_panic(expected = "a secret appeared on stdout")]
fn the_secret_watch_catches_credentials_on_a_watched_stream() {
    let mut k = Kit::new();
    let proj = project(&k);
    let out = k.breakglass(&["-C", proj.to_str().unwrap(), "credentials"]);
    assert_ok(&out);
}
