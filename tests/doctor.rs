//! `breakglass doctor` against moto with IAM enforcement on: the state bucket's
//! versioning and replication as the deployment role sees them, backends that keep the
//! state out of reach, and every mapped role tried as the operator (alice).

mod kit;
mod support;

use kit::*;
use support::*;

#[test]
fn bucket_versioning_fails_until_enabled_and_replication_warns_until_set() {
    let mut k = Kit::new();
    let toml = Kit::deploy_toml(false, "");
    let proj = k.dir(
        "proj",
        &[(".breakglass.toml", &toml), ("main.tf", S3_BACKEND)],
    );

    // The bucket was never versioned.
    let (out, checks) = k.doctor(&proj);
    assert_eq!(code(&out), 1, "doctor must fail: {checks:#?}");
    assert_eq!(status(&checks, "terraform.found"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "config.valid"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "role.assume"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "state.external"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "state.locking"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "state.versioning"), "fail", "{checks:#?}");
    let v = check(&checks, "state.versioning");
    assert!(
        v["summary"].as_str().unwrap().contains("tfstate")
            && v["fix"]
                .as_str()
                .unwrap()
                .contains("put-bucket-versioning --bucket tfstate"),
        "{v}"
    );
    assert_eq!(status(&checks, "state.replication"), "warn", "{checks:#?}");
    // The role (s3:*) reaches the bucket: the other bucket checks ran.
    assert_eq!(status(&checks, "state.access"), "pass", "{checks:#?}");
    let failed: Vec<_> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "only versioning fails: {failed:#?}");
    // The human output says the same.
    let human = k.breakglass(&["-C", proj.to_str().unwrap(), "doctor"]);
    assert_eq!(code(&human), 1);
    assert!(
        stdout(&human)
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("state.versioning")),
        "{}",
        stdout(&human)
    );

    // Versioning on: pass, still no replication.
    k.moto.op(&k.bed, &["versioning", "tfstate", "Enabled"]);
    let (out, checks) = k.doctor(&proj);
    assert_eq!(status(&checks, "state.versioning"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "state.replication"), "warn", "{checks:#?}");
    let r = check(&checks, "state.replication");
    assert!(
        r["fix"]
            .as_str()
            .unwrap()
            .contains("put-bucket-replication"),
        "{r}"
    );
    assert_eq!(code(&out), 0, "nothing fails any more: {checks:#?}");

    // Replication configured: pass.
    k.moto.op(&k.bed, &["replication", "tfstate"]);
    let (out, checks) = k.doctor(&proj);
    assert_eq!(status(&checks, "state.versioning"), "pass", "{checks:#?}");
    assert_eq!(status(&checks, "state.replication"), "pass", "{checks:#?}");
    assert_eq!(code(&out), 0, "{checks:#?}");
    // The probe object is cleaned up; the state itself was never written.
    let listed = k.moto.op(&k.bed, &["list", "tfstate"]);
    assert_eq!(listed["keys"], serde_json::json!([]), "{listed}");
    k.finish();
}

#[test]
fn state_outside_a_bucket_you_control_fails_state_external() {
    let mut k = Kit::new();
    let toml = Kit::deploy_toml(false, "");
    let cases = [
        (
            "nobackend",
            "resource \"null_resource\" \"x\" {}\n",
            "no backend block",
        ),
        (
            "local",
            "terraform {\n  backend \"local\" {\n    path = \"x.tfstate\"\n  }\n}\n",
            "`local` backend",
        ),
        (
            "remote",
            "terraform {\n  backend \"remote\" {\n    organization = \"acme\"\n    workspaces {\n      name = \"prod\"\n    }\n  }\n}\n",
            "`remote` backend",
        ),
    ];
    for (name, tf, says) in cases {
        let proj = k.dir(name, &[(".breakglass.toml", &toml), ("main.tf", tf)]);
        let (out, checks) = k.doctor(&proj);
        assert_eq!(code(&out), 1, "{name}: {checks:#?}");
        let c = check(&checks, "state.external");
        assert_eq!(c["status"], "fail", "{name}: {c}");
        assert!(c["summary"].as_str().unwrap().contains(says), "{name}: {c}");
        assert!(!c["fix"].as_str().unwrap().is_empty(), "{name}: {c}");
        // The role itself is fine: the failure is the backend's.
        assert_eq!(
            status(&checks, "role.assume"),
            "pass",
            "{name}: {checks:#?}"
        );
        assert!(
            checks_with(&checks, "state.versioning").is_empty(),
            "{name}: the bucket checks make no sense here: {checks:#?}"
        );
    }
    // A project without any .tf file has no backend either.
    let empty = k.dir("empty", &[(".breakglass.toml", &toml)]);
    let (out, checks) = k.doctor(&empty);
    assert_eq!(code(&out), 1);
    assert_eq!(status(&checks, "state.external"), "fail", "{checks:#?}");
    k.finish();
}

/// Doctor tries every role ARN in the config as alice: `deploy` passes, `locked` (only
/// the admin may assume it) fails with a message that names both alice and the role.
fn locked_mapping_fails_role_assume(table: &str) {
    let mut k = Kit::new();
    let extra = format!("{table}\narn = \"{}\"\n", role_arn("locked"));
    let toml = Kit::deploy_toml(false, &extra);
    let proj = k.dir(
        "proj",
        &[(".breakglass.toml", &toml), ("main.tf", S3_BACKEND)],
    );
    k.moto.op(&k.bed, &["versioning", "tfstate", "Enabled"]);
    let (out, checks) = k.doctor(&proj);
    assert_eq!(code(&out), 1, "{checks:#?}");
    let roles = checks_with(&checks, "role.assume");
    assert_eq!(roles.len(), 2, "one check per role ARN: {roles:#?}");
    let deploy = roles
        .iter()
        .find(|c| c["summary"].as_str().unwrap().contains(&role_arn("deploy")))
        .unwrap_or_else(|| panic!("no deploy check: {roles:#?}"));
    assert_eq!(deploy["status"], "pass", "{deploy}");
    assert!(
        deploy["summary"]
            .as_str()
            .unwrap()
            .contains(&assumed("deploy")),
        "{deploy}"
    );
    let locked = roles
        .iter()
        .find(|c| c["status"] != "pass")
        .unwrap_or_else(|| panic!("the locked role passed: {roles:#?}"));
    assert_eq!(locked["status"], "fail", "{locked}");
    let text = format!("{} {}", locked["summary"], locked["fix"]);
    assert!(text.contains(&user_arn("alice")), "names alice: {text}");
    assert!(text.contains(&role_arn("locked")), "names the role: {text}");
    assert!(
        !locked["fix"].as_str().unwrap().trim().is_empty(),
        "{locked}"
    );
    // The run's own role (deploy, from [role]) still reaches the bucket.
    assert_eq!(status(&checks, "state.versioning"), "pass", "{checks:#?}");
    let failed: Vec<_> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "only the locked role fails: {failed:#?}");
    k.finish();
}

#[test]
fn a_workspace_mapped_to_a_role_alice_cannot_assume_fails_role_assume() {
    locked_mapping_fails_role_assume("[workspaces.x]");
}

#[test]
fn a_stack_mapped_to_a_role_alice_cannot_assume_fails_role_assume() {
    locked_mapping_fails_role_assume("[stacks.\"y\"]");
}
