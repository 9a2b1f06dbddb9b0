//! Terragrunt: terraform started inside a unit's `.terragrunt-cache/<hash>/<hash>/...`
//! maps as the unit that owns the cache, and `breakglass credentials --format
//! terragrunt` prints what Terragrunt's `--auth-provider-cmd` reads. Against moto with
//! IAM enforcement on, as alice (who may only assume roles).

mod kit;
mod support;

use std::io::Write;
use std::process::Stdio;

use kit::*;
use support::*;

/// The config at the repository root: `[role]` is `deploy`, the unit `live/prod/vpc`
/// is mapped to `network`.
fn live_toml() -> String {
    Kit::deploy_toml(
        true,
        &format!(
            "[stacks.\"live/prod/vpc\"]\narn = \"{}\"\n",
            role_arn("network")
        ),
    )
}

#[test]
fn a_run_in_a_terragrunt_cache_assumes_the_role_of_the_unit_that_owns_it() {
    let mut k = Kit::new();
    let repo = k.project("repo", &live_toml());
    // Terragrunt copies the module's source (here with a stray copy of a config that
    // names another role) into the unit's cache and runs terraform in it.
    let copy = repo.join("live/prod/vpc/.terragrunt-cache/a/b");
    let decoy = format!(
        "enabled = true\nregion = \"us-east-1\"\n[role]\narn = \"{}\"\n",
        role_arn("prod")
    );
    write_config(&copy, &decoy);
    let module = copy.join("mod");
    std::fs::create_dir_all(&module).unwrap();
    let who = who_am_i_sh();

    let out = k.terraform(&module, &["plan"], &[("FAKE_TF_RUN", who.as_str())]);
    assert_ok(&out);
    let arn = printed_arn(&out);
    assert!(
        arn.starts_with(&assumed("network")),
        "the unit live/prod/vpc maps to the network role, got {arn}\n{}",
        stderr(&out)
    );
    let env = k.recorded_env();
    // The run's marker names the unit's role and the project.
    assert!(
        env.get("BREAKGLASS_SUPERVISED")
            .is_some_and(|m| m.starts_with(&role_arn("network"))),
        "terraform ran supervised under the network role: {env:?}"
    );

    // A sibling unit's cache maps as that unit: no stack mapping, so [role].
    let sibling = repo.join("live/prod/app/.terragrunt-cache/c/d/mod");
    std::fs::create_dir_all(&sibling).unwrap();
    let out = k.terraform(&sibling, &["plan"], &[("FAKE_TF_RUN", who.as_str())]);
    assert_ok(&out);
    let arn = printed_arn(&out);
    assert!(arn.starts_with(&assumed("deploy")), "{arn}");

    // `status` from inside the cache says where the role comes from.
    let out = k.breakglass(&["-C", module.to_str().unwrap(), "status"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&role_arn("network")) && text.contains("[stacks.\"live/prod/vpc\"]"),
        "{text}"
    );
    assert!(
        text.contains(&repo.join(".breakglass.toml").display().to_string()),
        "the repository's config, not the copy in the cache: {text}"
    );
    k.finish();
}

/// Reads an auth provider command's output the way Terragrunt documents it: the JSON
/// must match the response schema (`awsCredentials` with ACCESS_KEY_ID and
/// SECRET_ACCESS_KEY required, `awsRole`, `envs` of strings, nothing else), and a
/// response with `awsCredentials` sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
/// AWS_SESSION_TOKEN and AWS_SECURITY_TOKEN, plus every `envs` entry, for the
/// commands it runs. Then asks STS who those variables make us.
const TERRAGRUNT_READER: &str = r#"
import json, os, sys
import boto3, jsonschema

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "awsCredentials": {
            "type": "object",
            "properties": {
                "ACCESS_KEY_ID": {"type": "string"},
                "SECRET_ACCESS_KEY": {"type": "string"},
                "SESSION_TOKEN": {"type": "string"},
            },
            "required": ["ACCESS_KEY_ID", "SECRET_ACCESS_KEY"],
            "additionalProperties": False,
        },
        "awsRole": {
            "type": "object",
            "properties": {
                "roleARN": {"type": "string"},
                "roleSessionName": {"type": "string"},
                "webIdentityToken": {"type": "string"},
                "duration": {"type": "integer", "minimum": 0},
            },
            "required": ["roleARN"],
            "additionalProperties": False,
        },
        "envs": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}

resp = json.load(sys.stdin)
jsonschema.validate(resp, SCHEMA)
creds = resp.get("awsCredentials")
if not creds or not creds["ACCESS_KEY_ID"] or not creds["SECRET_ACCESS_KEY"]:
    sys.exit("terragrunt would do nothing: empty ACCESS_KEY_ID or SECRET_ACCESS_KEY")
env = dict(resp.get("envs", {}))
env.update({
    "AWS_ACCESS_KEY_ID": creds["ACCESS_KEY_ID"],
    "AWS_SECRET_ACCESS_KEY": creds["SECRET_ACCESS_KEY"],
    "AWS_SESSION_TOKEN": creds.get("SESSION_TOKEN", ""),
    "AWS_SECURITY_TOKEN": creds.get("SESSION_TOKEN", ""),
})
for k in [k for k in os.environ if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"]:
    del os.environ[k]
os.environ.update(env)
print("region", os.environ.get("AWS_REGION", ""))
print(boto3.client("sts", region_name=os.environ["AWS_REGION"]).get_caller_identity()["Arn"])
"#;

#[test]
fn credentials_in_terragrunt_format_are_read_as_terragrunt_documents_them() {
    let mut k = Kit::new();
    let repo = k.project("repo", &live_toml());
    let unit = repo.join("live/prod/vpc");
    std::fs::create_dir_all(&unit).unwrap();
    let cmd = k.sb.breakglass(&[
        "-C",
        unit.to_str().unwrap(),
        "credentials",
        "--format",
        "terragrunt",
    ]);
    let out = k.run_secret_stdout(cmd);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("not JSON");
    let creds = &doc["awsCredentials"];
    assert!(creds["ACCESS_KEY_ID"].is_string(), "{doc}");
    k.add_secret(creds["SECRET_ACCESS_KEY"].as_str().unwrap());
    k.add_secret(creds["SESSION_TOKEN"].as_str().unwrap());

    let mut reader = k.sb.command(python());
    reader
        .args(["-c", TERRAGRUNT_READER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = reader.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let read = child.wait_with_output().unwrap();
    k.observe(&read);
    assert_ok(&read);
    let text = stdout(&read);
    assert!(text.contains("region us-east-1"), "{text}");
    let arn = printed_arn(&read);
    assert!(
        arn.starts_with(&assumed("network")),
        "the unit's role, through terragrunt's variables: {arn}"
    );

    // The default format is still credential_process's (Version 1).
    let cmd =
        k.sb.breakglass(&["-C", unit.to_str().unwrap(), "credentials"]);
    let out = k.run_secret_stdout(cmd);
    assert_ok(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("not JSON");
    assert_eq!(doc["Version"], 1, "{doc}");
    assert!(
        doc["AccessKeyId"].is_string() && doc["Expiration"].is_string(),
        "{doc}"
    );
    k.finish();
}
