//! The README's one-command demo, `shell/demo.sh`, run end to end: moto, the deploy
//! role, doctor, `terraform init/plan/apply` through the shim as Alice, the audit log,
//! and where the state went. It uses the test binaries (`BREAKGLASS_BIN_DIR`) instead
//! of a release build.

mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use support::*;

#[test]
fn the_demo_runs_the_whole_story_and_exits_zero() {
    // The demo builds the test bed itself when it is missing; this only fails early
    // with the usual message when it cannot be found.
    let bed = testbed();
    let bin_dir = breakglass_bin().parent().unwrap().to_path_buf();
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(repo().join("shell/demo.sh"))
        .env("BREAKGLASS_BIN_DIR", &bin_dir)
        .env("BREAKGLASS_TESTBED", &bed)
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run bash shell/demo.sh");
    let text = stdout(&out);
    let err = stderr(&out);
    let ctx = format!(
        "exit {:?} after {:?}\nstdout:\n{text}\nstderr:\n{err}",
        out.status.code(),
        started.elapsed()
    );
    assert!(out.status.success(), "the demo failed: {ctx}");

    // Every section, in order.
    let mut at = 0;
    for n in 1..=8 {
        let header = format!("=== {n}/8 ");
        let i = text[at..]
            .find(&header)
            .unwrap_or_else(|| panic!("section {n} missing or out of order: {ctx}"));
        at += i + header.len();
    }

    // Doctor ran and found nothing failing.
    assert!(text.contains("pass  role.assume"), "{ctx}");
    assert!(text.contains("pass  state.versioning"), "{ctx}");
    assert!(!text.lines().any(|l| l.starts_with("FAIL ")), "{ctx}");

    // terraform ran under the role through the shim, and the apply completed.
    assert!(
        err.contains("breakglass: as arn:aws:iam::123456789012:role/deploy"),
        "{ctx}"
    );
    assert!(
        text.contains("Terraform has been successfully initialized!"),
        "{ctx}"
    );
    assert!(
        text.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{ctx}"
    );
    assert!(
        text.contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed."),
        "{ctx}"
    );

    // The audit trail has the apply, under the deploy role, with exit 0.
    let apply_line = text
        .lines()
        .find(|l| l.contains("  terraform exit ") && l.contains("apply -input=false -auto-approve"))
        .unwrap_or_else(|| panic!("no audit line for the apply: {ctx}"));
    assert!(apply_line.contains("exit 0"), "{apply_line}");
    assert!(
        apply_line.contains("arn:aws:iam::123456789012:role/deploy"),
        "{apply_line}"
    );
    assert!(
        apply_line.contains("reason: INC-1234/demo:platform-down"),
        "{apply_line}"
    );
    for sub in ["init", "plan"] {
        assert!(
            text.lines().any(|l| l.contains("  terraform exit ")
                && l.contains("exit 0")
                && l.contains(sub)),
            "no audit line for {sub}: {ctx}"
        );
    }

    // Where the state went: the S3 key, listed from moto.
    assert!(
        text.contains("state: s3://tfstate/demo/terraform.tfstate"),
        "{ctx}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim() == "s3://tfstate/demo/terraform.tfstate"),
        "the object list does not show the state: {ctx}"
    );
    assert!(text.contains("holds: terraform_data.hotfix"), "{ctx}");

    // It cleaned up after itself and never printed a secret key.
    assert!(text.contains("=== Done in "), "{ctx}");
    let tmp = text
        .lines()
        .find_map(|l| l.strip_prefix("demo: cleaning up: stopping moto, removing "))
        .unwrap_or_else(|| panic!("no clean-up line: {ctx}"));
    assert!(!std::path::Path::new(tmp).exists(), "{tmp} was not removed");
    assert!(!text.contains("SecretAccessKey") && !err.contains("SecretAccessKey"));
}
