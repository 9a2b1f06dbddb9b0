//! `breakglass state versions|restore|failover|failback` and the doctor's
//! `state.replica_current`, with the real terraform against moto with IAM enforcement
//! on. Alice may only assume roles; the deploy role writes the state bucket, the read
//! role may only get and list.
//!
//! moto does not copy objects to a replication destination: where a test needs the
//! replica to hold the state, it copies the object itself, as replication would.

mod kit;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use kit::*;
use support::*;

const BUCKET: &str = "tfstate";
const REPLICA: &str = "tfstate-replica";
const KEY: &str = "p/terraform.tfstate";

/// The project's resources at each step: what three applies change.
const V1: &str = "resource \"terraform_data\" \"a\" {\n  input = \"one\"\n}\n";
const V2: &str = "resource \"terraform_data\" \"a\" {\n  input = \"two\"\n}\nresource \"terraform_data\" \"b\" {}\n";
const V3: &str = "resource \"terraform_data\" \"a\" {\n  input = \"three\"\n}\nresource \"terraform_data\" \"b\" {}\n";

/// A Kit with the real terraform behind the shim, versioning on in both buckets, and a
/// project (break-glass mode on, the deploy role, `extra` appended to the config) whose
/// `main.tf` holds the S3 backend and `resources`.
fn setup(extra: &str, resources: &str) -> (Kit, PathBuf) {
    testbed();
    let mut k = Kit::new();
    std::fs::remove_file(k.sb.real_dir.join("terraform")).unwrap();
    k.sb.real_terraform();
    k.sb.set("CHECKPOINT_DISABLE", "1");
    for b in [BUCKET, REPLICA] {
        k.moto.op(&k.bed, &["versioning", b, "Enabled"]);
    }
    let toml = Kit::deploy_toml(true, extra);
    let proj = k.dir(
        "proj",
        &[
            (".breakglass.toml", &toml),
            ("main.tf", &main_tf(resources)),
        ],
    );
    let out = tf(&mut k, &proj, &["init", "-input=false", "-no-color"]);
    ok(&out, "terraform init");
    (k, proj)
}

fn main_tf(resources: &str) -> String {
    format!("{S3_BACKEND}\n{resources}")
}

fn tf(k: &mut Kit, dir: &Path, args: &[&str]) -> Output {
    k.terraform(dir, args, &[])
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

/// Writes `resources` into main.tf and applies.
fn apply(k: &mut Kit, proj: &Path, resources: &str) -> Output {
    std::fs::write(proj.join("main.tf"), main_tf(resources)).unwrap();
    let out = tf(
        k,
        proj,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    ok(&out, "terraform apply");
    out
}

fn bg(k: &mut Kit, proj: &Path, args: &[&str]) -> Output {
    let mut all = vec!["-C", proj.to_str().unwrap()];
    all.extend_from_slice(args);
    k.breakglass(&all)
}

/// `breakglass state versions --json`, parsed.
fn versions(k: &mut Kit, proj: &Path) -> Vec<Value> {
    let out = bg(k, proj, &["state", "versions", "--json"]);
    ok(&out, "state versions --json");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
    v.as_array().expect("not an array").clone()
}

/// The current state object in `bucket`, read as the admin (`None`: none).
fn object(k: &Kit, bucket: &str) -> Option<Value> {
    let listed = k.moto.op(&k.bed, &["list", bucket]);
    if !listed["keys"].as_array().unwrap().iter().any(|x| x == KEY) {
        return None;
    }
    let body = k.moto.op(&k.bed, &["get", bucket, KEY]);
    Some(serde_json::from_str(body["body"].as_str().unwrap()).unwrap())
}

fn serial(state: &Value) -> u64 {
    state["serial"].as_u64().expect("no serial")
}

/// `terraform state pull` through the shim, parsed.
fn pull(k: &mut Kit, proj: &Path) -> Value {
    let out = tf(k, proj, &["state", "pull"]);
    ok(&out, "terraform state pull");
    serde_json::from_slice(&out.stdout).expect("state pull printed no JSON")
}

/// The resource names and `input`s in a state document.
fn inputs(state: &Value) -> Vec<(String, Value)> {
    let mut v: Vec<_> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                // terraform_data's `input` is dynamic: {"type", "value"}.
                r["instances"][0]["attributes"]["input"]["value"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// `plan -detailed-exitcode`'s exit code (0: no changes, 2: changes).
fn plan(k: &mut Kit, proj: &Path, extra: &[&str]) -> i32 {
    let mut args = vec!["plan", "-detailed-exitcode", "-input=false", "-no-color"];
    args.extend_from_slice(extra);
    let out = tf(k, proj, &args);
    assert!(
        matches!(code(&out), 0 | 2),
        "plan failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    code(&out)
}

/// The keys in `bucket` now (current objects only).
fn keys(k: &Kit, bucket: &str) -> Vec<String> {
    k.moto.op(&k.bed, &["list", bucket])["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Puts `state` as a new version of the state object in `bucket`, as the admin.
fn put(k: &Kit, bucket: &str, state: &Value) {
    let file = k.sb.root().join("put.tfstate");
    std::fs::write(&file, serde_json::to_vec_pretty(state).unwrap()).unwrap();
    k.moto
        .op(&k.bed, &["put", bucket, KEY, file.to_str().unwrap()]);
}

#[test]
fn versions_lists_three_applies_with_rising_serials_and_one_lineage() {
    // The read role lists and reads the versions (it may only get and list).
    let extra = format!("read_arn = \"{}\"\n", role_arn("read"));
    let (mut k, proj) = setup(&extra, V1);
    for v in [V1, V2, V3] {
        apply(&mut k, &proj, v);
    }
    let rows = versions(&mut k, &proj);
    assert_eq!(rows.len(), 3, "three applies, three versions: {rows:#?}");
    for r in &rows {
        for key in [
            "version_id",
            "last_modified",
            "size",
            "serial",
            "lineage",
            "terraform_version",
            "resources",
            "latest",
        ] {
            assert!(r.get(key).is_some(), "no {key}: {r}");
        }
        assert_eq!(r["terraform_version"], "1.15.5", "{r}");
        assert!(r["size"].as_i64().unwrap() > 0, "{r}");
    }
    // Newest first: serials fall down the list, the first is the current one.
    let serials: Vec<u64> = rows.iter().map(|r| r["serial"].as_u64().unwrap()).collect();
    assert!(
        serials.windows(2).all(|w| w[0] > w[1]),
        "serials must rise with time: {serials:?}"
    );
    assert_eq!(serials[0], serial(&object(&k, BUCKET).unwrap()));
    assert_eq!(
        rows.iter()
            .map(|r| r["latest"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [true, false, false]
    );
    let lineage = &rows[0]["lineage"];
    assert!(lineage.as_str().is_some_and(|l| !l.is_empty()));
    assert!(rows.iter().all(|r| &r["lineage"] == lineage), "{rows:#?}");
    assert_eq!(
        rows.iter()
            .map(|r| r["resources"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 2, 1]
    );
    // The human table shows the same versions.
    let out = bg(&mut k, &proj, &["state", "versions"]);
    ok(&out, "state versions");
    for r in &rows {
        assert!(
            stdout(&out).contains(r["version_id"].as_str().unwrap()),
            "{}",
            stdout(&out)
        );
    }
    // It ran as the read role, and is in the audit trail.
    let log = k.log();
    let entry = log
        .iter()
        .rev()
        .find(|e| e["kind"] == "state versions")
        .unwrap_or_else(|| panic!("no `state versions` entry: {log:#?}"));
    assert_eq!(entry["role_arn"], role_arn("read"), "{entry}");
    assert_eq!(entry["exit_code"], 0, "{entry}");
    k.finish();
}

#[test]
fn restoring_the_first_version_goes_through_terraform_and_is_audited() {
    let (mut k, proj) = setup("", V1);
    for v in [V1, V2, V3] {
        apply(&mut k, &proj, v);
    }
    let rows = versions(&mut k, &proj);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let first = rows[2]["version_id"].as_str().unwrap().to_string();
    let latest = rows[0]["serial"].as_u64().unwrap();

    // No terminal and no --yes: refused, nothing written.
    let out = bg(&mut k, &proj, &["state", "restore", &first]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(serial(&object(&k, BUCKET).unwrap()), latest);

    let out = bg(&mut k, &proj, &["state", "restore", &first, "--yes"]);
    ok(&out, "state restore --yes");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("serial: {latest} -> {}", latest + 1)),
        "{err}"
    );
    assert!(err.contains("removes: terraform_data.b"), "{err}");
    assert!(err.contains("stays in the bucket's history"), "{err}");

    // terraform sees the first version's resources, with a serial above the latest.
    let now = pull(&mut k, &proj);
    assert!(serial(&now) > latest, "serial {} <= {latest}", serial(&now));
    assert_eq!(
        inputs(&now),
        [("a".to_string(), Value::from("one"))],
        "{now:#}"
    );
    assert_eq!(now["lineage"], rows[0]["lineage"]);
    // The configuration (V3) is one change away again.
    assert_eq!(plan(&mut k, &proj, &[]), 2);
    // terraform released its lock.
    let left = keys(&k, BUCKET);
    assert!(left.iter().all(|x| !x.ends_with(".tflock")), "{left:?}");
    // The restore is its own audit entry, with the version id.
    let log = k.log();
    let entry = log
        .iter()
        .find(|e| e["kind"] == "state restore" && e["exit_code"] == 0)
        .unwrap_or_else(|| panic!("no `state restore` entry: {log:#?}"));
    assert!(
        entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == first.as_str()),
        "{entry}"
    );
    assert_eq!(entry["role_arn"], role_arn("deploy"), "{entry}");
    k.finish();
}

#[test]
fn a_version_from_another_lineage_is_refused() {
    let (mut k, proj) = setup("", V1);
    apply(&mut k, &proj, V1);
    let ours = object(&k, BUCKET).unwrap();
    // Another state was once written to this key, then ours put back on top.
    let mut theirs = ours.clone();
    theirs["lineage"] = Value::from("00000000-0000-0000-0000-000000000000");
    theirs["serial"] = Value::from(serial(&ours) + 5);
    put(&k, BUCKET, &theirs);
    put(&k, BUCKET, &ours);
    let rows = versions(&mut k, &proj);
    let other = rows
        .iter()
        .find(|r| r["lineage"] == theirs["lineage"])
        .unwrap_or_else(|| panic!("no version of the other lineage: {rows:#?}"));
    let id = other["version_id"].as_str().unwrap();

    let out = bg(&mut k, &proj, &["state", "restore", id, "--yes"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("lineage") && err.contains("fix:"), "{err}");
    assert_eq!(object(&k, BUCKET).unwrap(), ours, "the state was touched");
    k.finish();
}

/// The failover world: the config names the replica (the primary's replication
/// configuration is out of reach when the primary is), one apply, the state copied to
/// the replica (moto does not replicate), then the primary denied to the role.
fn failed_over_world() -> (Kit, PathBuf, u64) {
    let extra =
        format!("[state]\nreplica_bucket = \"{REPLICA}\"\nreplica_region = \"us-east-1\"\n");
    let (mut k, proj) = setup(&extra, V1);
    apply(&mut k, &proj, V1);
    let before = serial(&object(&k, BUCKET).unwrap());
    // What replication would have done.
    k.moto.op(&k.bed, &["copy", BUCKET, KEY, REPLICA]);
    // The primary's region is "down": a bucket policy denies the role everything.
    k.moto.op(&k.bed, &["deny-bucket", BUCKET]);
    let out = tf(&mut k, &proj, &["state", "pull"]);
    assert!(!out.status.success(), "the primary must be out of reach");

    let out = bg(&mut k, &proj, &["state", "failover"]);
    ok(&out, "state failover");
    assert!(stderr(&out).contains("FAILED OVER"), "{}", stderr(&out));
    let over = std::fs::read_to_string(proj.join("breakglass_failover_override.tf")).unwrap();
    assert!(
        over.contains(REPLICA) && over.contains("use_lockfile"),
        "{over}"
    );
    (k, proj, before)
}

#[test]
fn failover_writes_the_replica_and_failback_brings_the_state_home() {
    let (mut k, proj, before) = failed_over_world();
    // Every surface says so.
    let status = bg(&mut k, &proj, &["status"]);
    assert!(
        stdout(&status).contains("FAILED OVER"),
        "{}",
        stdout(&status)
    );
    let marker = bg(&mut k, &proj, &["status", "--prompt"]);
    assert!(
        stdout(&marker).contains("FAILED OVER"),
        "{}",
        stdout(&marker)
    );

    // terraform apply writes the replica.
    let out = apply(&mut k, &proj, V2);
    assert!(stderr(&out).contains("FAILED OVER"), "{}", stderr(&out));
    let replica = object(&k, REPLICA).unwrap();
    assert!(serial(&replica) > before);
    assert_eq!(inputs(&replica).len(), 2, "{replica:#}");
    assert!(keys(&k, REPLICA).iter().all(|x| !x.ends_with(".tflock")));

    // The primary's region is back.
    k.moto.op(&k.bed, &["undeny-bucket", BUCKET]);
    assert_eq!(serial(&object(&k, BUCKET).unwrap()), before);
    let out = bg(&mut k, &proj, &["state", "failback"]);
    ok(&out, "state failback");
    let home = object(&k, BUCKET).unwrap();
    assert!(
        serial(&home) >= serial(&replica) && serial(&home) > before,
        "primary {} replica {} before {before}",
        serial(&home),
        serial(&replica)
    );
    assert_eq!(inputs(&home), inputs(&replica));
    assert!(!proj.join("breakglass_failover_override.tf").exists());
    assert!(!stdout(&bg(&mut k, &proj, &["status"])).contains("FAILED OVER"));
    assert_eq!(plan(&mut k, &proj, &[]), 0, "no changes after the failback");
    // Both switches and the push are in the audit trail.
    let kinds: Vec<_> = k.log().iter().map(|e| e["kind"].clone()).collect();
    assert!(kinds.iter().any(|x| x == "state failover"), "{kinds:?}");
    assert!(kinds.iter().any(|x| x == "state failback"), "{kinds:?}");
    k.finish();
}

#[test]
fn failback_refuses_when_the_primary_was_written_after_the_failover() {
    let (mut k, proj, before) = failed_over_world();
    apply(&mut k, &proj, V2);
    let replica = object(&k, REPLICA).unwrap();
    // Someone wrote the primary after the failover, with a newer serial.
    k.moto.op(&k.bed, &["undeny-bucket", BUCKET]);
    let mut newer = object(&k, BUCKET).unwrap();
    newer["serial"] = Value::from(serial(&replica) + 3);
    put(&k, BUCKET, &newer);

    let out = bg(&mut k, &proj, &["state", "failback"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("written after the failover") && err.contains("fix:"),
        "{err}"
    );
    // Nothing moved: still failed over, both states as they were.
    assert!(proj.join("breakglass_failover_override.tf").exists());
    assert_eq!(object(&k, BUCKET).unwrap(), newer);
    assert_eq!(object(&k, REPLICA).unwrap(), replica);
    assert!(serial(&newer) > before);
    let out = tf(&mut k, &proj, &["state", "pull"]);
    ok(&out, "state pull (still the replica)");
    k.finish();
}

#[test]
fn doctor_replica_current_passes_when_serials_match_and_warns_when_the_replica_lags() {
    let mut k = Kit::new();
    let toml = Kit::deploy_toml(false, "");
    let proj = k.dir(
        "proj",
        &[(".breakglass.toml", &toml), ("main.tf", S3_BACKEND)],
    );
    for b in [BUCKET, REPLICA] {
        k.moto.op(&k.bed, &["versioning", b, "Enabled"]);
    }
    // The replica comes from the bucket's replication configuration.
    k.moto.op(&k.bed, &["replication", BUCKET]);
    let state = serde_json::json!({
        "version": 4, "terraform_version": "1.15.5", "serial": 4,
        "lineage": "7d3f4c2a-1111-2222-3333-444455556666", "outputs": {}, "resources": [],
        "check_results": null
    });
    put(&k, BUCKET, &state);
    // moto does not replicate: the copy is made here.
    k.moto.op(&k.bed, &["copy", BUCKET, KEY, REPLICA]);
    let (_, checks) = k.doctor(&proj);
    let c = check(&checks, "state.replica_current");
    assert_eq!(c["status"], "pass", "{c}");
    assert!(c["summary"].as_str().unwrap().contains(REPLICA), "{c}");

    // The primary moves on; the replica does not.
    let mut next = state.clone();
    next["serial"] = Value::from(5);
    put(&k, BUCKET, &next);
    let (_, checks) = k.doctor(&proj);
    let c = check(&checks, "state.replica_current");
    assert_eq!(c["status"], "warn", "{c}");
    let summary = c["summary"].as_str().unwrap();
    assert!(
        summary.contains("lags") && summary.contains('4') && summary.contains('5'),
        "{c}"
    );
    k.finish();
}
