//! The audit trail of break-glass runs through the shim, against moto with IAM
//! enforcement on: one entry per run with the role the run really used, terraform's
//! exit code and redacted arguments; parallel runs leave whole lines; the file is
//! private.

mod kit;
mod support;

use std::collections::BTreeSet;
use std::process::Stdio;

use kit::*;
use serde_json::Value;
use support::*;

/// break-glass mode on, `[role]` deploy, `[workspaces.prod]` prod.
fn audited_project(k: &Kit) -> std::path::PathBuf {
    let extra = format!("[workspaces.prod]\narn = \"{}\"\n", role_arn("prod"));
    k.project("proj", &Kit::deploy_toml(true, &extra))
}

#[test]
fn each_run_is_one_entry_with_its_role_exit_code_and_redacted_args() {
    let mut k = Kit::new();
    let proj = audited_project(&k);
    assert!(k.log().is_empty(), "no runs yet");

    // 1. default workspace: deploy.
    let out = k.terraform(&proj, &["plan", "-input=false"], &[]);
    assert_ok(&out);
    assert!(k.terraform_ran());
    // 2. TF_WORKSPACE=prod: prod, with a secret -var.
    let out = k.terraform(
        &proj,
        &["apply", "-var=db_password=hunter2", "-auto-approve"],
        &[("TF_WORKSPACE", "prod")],
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&role_arn("prod")),
        "the run announces its role: {}",
        stderr(&out)
    );
    // terraform itself got the value unchanged.
    let args = recorded_args(&k.sb.record_path());
    assert!(
        args.contains(&b"-var=db_password=hunter2".to_vec()),
        "{args:?}"
    );
    // 3. terraform fails with 3: the shim hands 3 back and the log records it.
    let out = k.terraform(&proj, &["plan"], &[("FAKE_TF_EXIT", "3")]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // 4. The mode forced off: no break-glass run, no entry.
    let out = k.terraform(&proj, &["plan"], &[("BREAKGLASS", "0")]);
    assert_ok(&out);
    assert!(k.terraform_ran());

    let log = k.log();
    assert_eq!(log.len(), 3, "one entry per break-glass run: {log:#?}");
    let roles: Vec<&str> = log
        .iter()
        .map(|r| r["role_arn"].as_str().unwrap())
        .collect();
    let deploy = role_arn("deploy");
    let prod = role_arn("prod");
    assert_eq!(roles, [deploy.as_str(), prod.as_str(), deploy.as_str()]);
    let workspaces: Vec<&str> = log
        .iter()
        .map(|r| r["workspace"].as_str().unwrap())
        .collect();
    assert_eq!(workspaces, ["default", "prod", "default"]);
    let codes: Vec<&Value> = log.iter().map(|r| &r["exit_code"]).collect();
    assert_eq!(codes, [&Value::from(0), &Value::from(0), &Value::from(3)]);
    let subcommands: Vec<&str> = log
        .iter()
        .map(|r| r["subcommand"].as_str().unwrap())
        .collect();
    assert_eq!(subcommands, ["plan", "apply", "plan"]);
    for r in &log {
        assert_eq!(r["kind"], "terraform", "{r}");
        assert_eq!(r["source_arn"], user_arn("alice"), "{r}");
        assert_eq!(r["project"], proj.to_str().unwrap(), "{r}");
        assert!(!r["started"].as_str().unwrap().is_empty(), "{r}");
        assert!(!r["ended"].as_str().unwrap().is_empty(), "{r}");
    }
    assert_eq!(
        log[1]["args"],
        serde_json::json!(["apply", "-var=db_password=<redacted>", "-auto-approve"])
    );

    // The secret value is nowhere in the file, the redaction marker is.
    let path = k.audit_path();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert_eq!(text.lines().count(), 3);
    assert_eq!(mode(&path), 0o600, "the audit file is private");
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    // The human listing shows the runs too.
    let out = k.breakglass(&["log"]);
    assert_ok(&out);
    let human = stdout(&out);
    assert_eq!(human.lines().count(), 3, "{human}");
    assert!(
        human.contains("exit 3") && !human.contains("hunter2"),
        "{human}"
    );
    k.finish();
}

#[test]
fn parallel_runs_leave_one_whole_json_line_each() {
    const N: usize = 8;
    let mut k = Kit::new();
    let proj = audited_project(&k);
    // A long argument per run makes each line several kilobytes.
    let pad = "p".repeat(8 * 1024);
    let mut children = Vec::new();
    for i in 0..N {
        let mut cmd = k.sb.terraform(
            &proj,
            &[
                "plan",
                &format!("-target=null_resource.r{i}"),
                &format!("-var=db_password=hunter{i}"),
                &format!("-lock-timeout={pad}{i}"),
            ],
        );
        cmd.env_remove("FAKE_TF_RECORD")
            .env("FAKE_TF_EXIT", (i % 3).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(cmd.spawn().expect("cannot start the shim"));
    }
    let mut codes = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        k.observe(&out);
        codes.push(code(&out));
    }
    assert_eq!(codes, (0..N).map(|i| (i % 3) as i32).collect::<Vec<_>>());

    let path = k.audit_path();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), N, "one line per run");
    let mut targets = BTreeSet::new();
    for line in &lines {
        let r: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {line:.200}"));
        let args: Vec<&str> = r["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let target = args[1].strip_prefix("-target=null_resource.r").unwrap();
        let i: usize = target.parse().unwrap();
        assert!(targets.insert(i), "run {i} logged twice");
        assert_eq!(r["exit_code"], (i % 3) as i64, "{line:.300}");
        assert_eq!(args[2], "-var=db_password=<redacted>");
        assert!(args[3].ends_with(&format!("{pad}{i}")));
    }
    assert_eq!(targets, (0..N).collect());
    assert!(!text.contains("hunter"), "the -var values are redacted");
    assert_eq!(k.log().len(), N);
    assert_eq!(mode(&path), 0o600);
    k.finish();
}
