//! `breakglass import spacelift|tfe`, `trust-statement` and the doctor's second look at
//! the platform, on fixtures written here from the providers' documented attribute
//! names: a Spacelift admin stack (network with a read and a write integration, app as
//! two stacks on one project_root in workspaces prod and staging made by for_each over
//! a map, legacy through spacelift_aws_role, and an attachment nobody can resolve), its
//! JSON export, and an HCP Terraform admin configuration. The real runs use the real
//! terraform against moto with IAM enforcement on.

mod kit;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kit::*;
use support::*;

const CONFIG: &str = r#"# our break-glass config: hand-written, keep this comment
enabled = true
region = "us-east-1"

[role]
arn = "arn:aws:iam::123456789012:role/deploy" # the default for everything else
"#;

const STACKS_TF: &str = r#"variable "account" {
  default = "123456789012"
}

locals {
  repository = "infra"
  # one stack per workspace, on the same project_root
  apps = {
    prod    = "prod"
    staging = "deploy"
  }
}

resource "spacelift_stack" "network" {
  name         = "network"
  repository   = local.repository
  branch       = "main"
  project_root = "network"
  manage_state = false
}

resource "spacelift_stack" "app" {
  for_each            = local.apps
  name                = "app-${each.key}"
  repository          = local.repository
  branch              = "main"
  project_root        = "app"
  terraform_workspace = each.key
}

resource "spacelift_stack" "legacy" {
  name         = "legacy"
  repository   = local.repository
  branch       = "main"
  project_root = "legacy"
}
"#;

const INTEGRATIONS_TF: &str = r#"resource "spacelift_aws_integration" "network_write" {
  name             = "network-write"
  role_arn         = "arn:aws:iam::${var.account}:role/network"
  duration_seconds = 3600
}

resource "spacelift_aws_integration" "network_read" {
  name     = "network-read"
  role_arn = "arn:aws:iam::${var.account}:role/read"
}

resource "spacelift_aws_integration_attachment" "network_write" {
  integration_id = spacelift_aws_integration.network_write.id
  stack_id       = spacelift_stack.network.id
  read           = false
}

resource "spacelift_aws_integration_attachment" "network_read" {
  integration_id = spacelift_aws_integration.network_read.id
  stack_id       = spacelift_stack.network.id
  write          = false
}

resource "spacelift_aws_integration" "app" {
  for_each = local.apps
  name     = "app-${each.key}"
  role_arn = "arn:aws:iam::${var.account}:role/${each.value}"
}

resource "spacelift_aws_integration_attachment" "app" {
  for_each       = local.apps
  integration_id = spacelift_aws_integration.app[each.key].id
  stack_id       = spacelift_stack.app[each.key].id
}

resource "spacelift_aws_role" "legacy" {
  stack_id = spacelift_stack.legacy.id
  role_arn = "arn:aws:iam::${var.account}:role/deploy"
}

data "spacelift_stack" "shared" {
  stack_id = "shared-services"
}

resource "spacelift_aws_integration_attachment" "shared" {
  integration_id = spacelift_aws_integration.network_read.id
  stack_id       = data.spacelift_stack.shared.id
}
"#;

/// A fourth stack, added after the import.
const OPS_TF: &str = r#"resource "spacelift_stack" "ops" {
  name         = "ops"
  repository   = "infra"
  branch       = "main"
  project_root = "ops"
}

resource "spacelift_aws_role" "ops" {
  stack_id = "ops"
  role_arn = "arn:aws:iam::123456789012:role/deploy"
}
"#;

/// The same stacks as `spacectl api` saves them with `--print-query`'s query.
const EXPORT_JSON: &str = r#"{"data": {
  "stacks": [
    {"id": "network", "name": "network", "repository": "infra", "branch": "main", "projectRoot": "network",
     "managesStateFile": false, "vendorConfig": {"__typename": "StackConfigVendorTerraform", "workspace": null},
     "attachedAwsIntegrations": [
       {"integrationId": "01NETWRITE", "read": false, "write": true},
       {"integrationId": "01NETREAD", "read": true, "write": false}],
     "integrations": {"aws": {"assumedRoleArn": null, "durationSeconds": null}}},
    {"id": "app-prod", "name": "app-prod", "repository": "infra", "branch": "main", "projectRoot": "app",
     "managesStateFile": true, "vendorConfig": {"__typename": "StackConfigVendorTerraform", "workspace": "prod"},
     "attachedAwsIntegrations": [{"integrationId": "01APPPROD", "read": true, "write": true}],
     "integrations": {"aws": {"assumedRoleArn": null, "durationSeconds": null}}},
    {"id": "app-staging", "name": "app-staging", "repository": "infra", "branch": "main", "projectRoot": "app",
     "managesStateFile": true, "vendorConfig": {"__typename": "StackConfigVendorTerraform", "workspace": "staging"},
     "attachedAwsIntegrations": [{"integrationId": "01APPSTAGING", "read": true, "write": true}],
     "integrations": {"aws": {"assumedRoleArn": null, "durationSeconds": null}}},
    {"id": "legacy", "name": "legacy", "repository": "infra", "branch": "main", "projectRoot": "legacy",
     "managesStateFile": true, "vendorConfig": {"__typename": "StackConfigVendorTerraform", "workspace": null},
     "attachedAwsIntegrations": [],
     "integrations": {"aws": {"assumedRoleArn": "arn:aws:iam::123456789012:role/deploy", "durationSeconds": null}}},
    {"id": "website", "name": "website", "repository": "web", "branch": "main", "projectRoot": "site",
     "managesStateFile": false, "vendorConfig": {"__typename": "StackConfigVendorTerraform", "workspace": null},
     "attachedAwsIntegrations": [{"integrationId": "01APPPROD", "read": true, "write": true}],
     "integrations": {"aws": {"assumedRoleArn": null, "durationSeconds": null}}}
  ],
  "awsIntegrations": [
    {"id": "01NETWRITE", "name": "network-write", "roleArn": "arn:aws:iam::123456789012:role/network", "durationSeconds": 3600},
    {"id": "01NETREAD", "name": "network-read", "roleArn": "arn:aws:iam::123456789012:role/read", "durationSeconds": 900},
    {"id": "01APPPROD", "name": "app-prod", "roleArn": "arn:aws:iam::123456789012:role/prod", "durationSeconds": 900},
    {"id": "01APPSTAGING", "name": "app-staging", "roleArn": "arn:aws:iam::123456789012:role/deploy", "durationSeconds": 900}
  ]}}"#;

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` is not in the fixture"))
        + 1
}

/// The project: the config, the admin stack, and the stacks' own code.
fn project(root: &Path) -> PathBuf {
    let proj = root.join("proj");
    for (file, text) in [
        (".breakglass.toml", CONFIG),
        ("admin/stacks.tf", STACKS_TF),
        ("admin/integrations.tf", INTEGRATIONS_TF),
    ] {
        let p = proj.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    proj
}

fn toml_of(text: &str) -> toml::Value {
    toml::from_str(text).unwrap_or_else(|e| panic!("not TOML ({e}):\n{text}"))
}

fn str_at<'a>(v: &'a toml::Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str()
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

/// Asserts the imported stacks: every role where the platform has it.
fn assert_spacelift_stacks(v: &toml::Value) {
    assert_eq!(
        str_at(v, &["stacks", "network", "arn"]),
        Some(role_arn("network").as_str()),
        "{v:#?}"
    );
    assert_eq!(
        str_at(v, &["stacks", "network", "read_arn"]),
        Some(role_arn("read").as_str()),
        "{v:#?}"
    );
    assert_eq!(
        str_at(v, &["stacks", "network", "duration"]),
        Some("1h"),
        "{v:#?}"
    );
    assert_eq!(
        str_at(v, &["stacks", "app", "workspaces", "prod", "arn"]),
        Some(role_arn("prod").as_str()),
        "{v:#?}"
    );
    assert_eq!(
        str_at(v, &["stacks", "app", "workspaces", "staging", "arn"]),
        Some(role_arn("deploy").as_str()),
        "{v:#?}"
    );
    assert_eq!(
        str_at(v, &["stacks", "legacy", "arn"]),
        Some(role_arn("deploy").as_str()),
        "{v:#?}"
    );
    assert!(
        v["stacks"]["app"].get("arn").is_none(),
        "app is mapped per workspace only: {v:#?}"
    );
    assert!(
        v["stacks"]["app"]["workspaces"]["prod"]
            .get("read_arn")
            .is_none(),
        "{v:#?}"
    );
    assert_eq!(v["stacks"].as_table().unwrap().len(), 3, "{v:#?}");
}

#[test]
fn spacelift_import_writes_every_mapping_keeps_the_comment_and_reports_what_it_skipped() {
    let sb = Sandbox::new();
    let proj = project(sb.root());
    let p = proj.to_str().unwrap();

    // Without --write: the TOML on stdout, the file untouched.
    let out = sb
        .breakglass(&["-C", p, "import", "spacelift", "--from", "admin"])
        .output()
        .unwrap();
    ok(&out, "import");
    assert_spacelift_stacks(&toml_of(&stdout(&out)));
    assert_eq!(
        std::fs::read_to_string(proj.join(".breakglass.toml")).unwrap(),
        CONFIG
    );

    let out = sb
        .breakglass(&["-C", p, "import", "spacelift", "--from", "admin", "--write"])
        .output()
        .unwrap();
    ok(&out, "import --write");
    assert!(
        stdout(&out).is_empty(),
        "--write prints nothing on stdout: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    let line = line_of(INTEGRATIONS_TF, "data.spacelift_stack.shared.id");
    let place = format!("/proj/admin/integrations.tf:{line}: spacelift_aws_integration_attachment.shared: stack_id:");
    assert!(
        err.contains(&place),
        "reports the unresolvable reference at {place}:\n{err}"
    );
    assert!(err.contains("data source"), "{err}");
    assert!(err.contains("1 item(s) skipped"), "only that one: {err}");
    assert!(err.contains("wrote 4 mapping(s)"), "{err}");

    let written = std::fs::read_to_string(proj.join(".breakglass.toml")).unwrap();
    assert!(
        written.starts_with(CONFIG),
        "the user's part is kept as it was:\n{written}"
    );
    assert!(written.contains("# our break-glass config: hand-written, keep this comment"));
    let v = toml_of(&written);
    assert_spacelift_stacks(&v);
    assert_eq!(str_at(&v, &["import", "platform"]), Some("spacelift"));
    assert_eq!(
        v["import"]["from"],
        toml::Value::Array(vec!["admin".into()])
    );
    assert!(
        written.contains("# imported from spacelift_stack.app[\"prod\"] ("),
        "each table says where it came from:\n{written}"
    );

    // A second import changes nothing.
    let out = sb
        .breakglass(&["-C", p, "import", "spacelift", "--from", "admin", "--write"])
        .output()
        .unwrap();
    ok(&out, "import --write again");
    assert_eq!(
        std::fs::read_to_string(proj.join(".breakglass.toml")).unwrap(),
        written
    );

    // `roles --json`: flat rows, stack and workspace both set for app's.
    let out = sb
        .breakglass(&["-C", p, "roles", "--json"])
        .output()
        .unwrap();
    ok(&out, "roles --json");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prod = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["mapping"] == "[stacks.\"app\".workspaces.prod]")
        .unwrap_or_else(|| panic!("no prod row: {rows:#}"));
    assert_eq!(prod["stack"], "app");
    assert_eq!(prod["workspace"], "prod");
    assert_eq!(prod["arn"], role_arn("prod"));
    assert_eq!(
        rows.as_array().unwrap().len(),
        5,
        "[role] + 4 mappings: {rows:#}"
    );

    // `status` in app/ names the stack-and-workspace mapping.
    std::fs::create_dir_all(proj.join("app")).unwrap();
    let out = sb
        .breakglass(&["-C", proj.join("app").to_str().unwrap(), "status"])
        .env("TF_WORKSPACE", "prod")
        .output()
        .unwrap();
    ok(&out, "status");
    assert!(
        stdout(&out).contains(&format!(
            "{} (from [stacks.\"app\".workspaces.prod], workspace `prod`)",
            role_arn("prod")
        )),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_json_export_gives_the_same_config() {
    let sb = Sandbox::new();
    let proj = project(sb.root());
    std::fs::write(proj.join("spacelift.json"), EXPORT_JSON).unwrap();
    let p = proj.to_str().unwrap();

    let out = sb
        .breakglass(&["import", "spacelift", "--print-query"])
        .output()
        .unwrap();
    ok(&out, "--print-query");
    for field in [
        "stacks",
        "projectRoot",
        "managesStateFile",
        "attachedAwsIntegrations",
        "integrationId",
        "awsIntegrations",
        "roleArn",
        "durationSeconds",
        "workspace",
    ] {
        assert!(
            stdout(&out).contains(field),
            "the query asks for {field}: {}",
            stdout(&out)
        );
    }

    let from_code = sb
        .breakglass(&["-C", p, "import", "spacelift", "--from", "admin"])
        .output()
        .unwrap();
    ok(&from_code, "import from code");
    let from_export = sb
        .breakglass(&[
            "-C",
            p,
            "import",
            "spacelift",
            "--from",
            "spacelift.json",
            "--repository",
            "infra",
        ])
        .output()
        .unwrap();
    ok(&from_export, "import from the export");
    let code = toml_of(&stdout(&from_code));
    let export = toml_of(&stdout(&from_export));
    assert_spacelift_stacks(&export);
    assert_eq!(
        code["stacks"], export["stacks"],
        "same stacks from the code and the export"
    );
    assert_eq!(str_at(&export, &["import", "repository"]), Some("infra"));
    assert!(
        !stderr(&from_export).contains("warning"),
        "{}",
        stderr(&from_export)
    );

    // Without --repository the other repository's stack comes in, with a warning.
    let out = sb
        .breakglass(&["-C", p, "import", "spacelift", "--from", "spacelift.json"])
        .output()
        .unwrap();
    ok(&out, "import from the export, every repository");
    assert!(
        stderr(&out).contains("2 repositories (infra, web)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--repository"), "{}", stderr(&out));
    assert_eq!(
        str_at(&toml_of(&stdout(&out)), &["stacks", "site", "arn"]),
        Some(role_arn("prod").as_str())
    );
}

#[test]
fn hcp_terraform_workspaces_map_to_their_plan_and_apply_roles() {
    let sb = Sandbox::new();
    let admin = sb.root().join("proj/tfe-admin");
    std::fs::create_dir_all(&admin).unwrap();
    let tf = r#"resource "tfe_project" "platform" {
  name         = "platform"
  organization = "acme"
}

resource "tfe_workspace" "network" {
  name              = "network"
  organization      = "acme"
  project_id        = tfe_project.platform.id
  working_directory = "network"
}

resource "tfe_workspace" "app" {
  name              = "app"
  organization      = "acme"
  project_id        = tfe_project.platform.id
  working_directory = "app"
}

resource "tfe_variable" "network_plan" {
  key          = "TFC_AWS_PLAN_ROLE_ARN"
  value        = "arn:aws:iam::123456789012:role/read"
  category     = "env"
  workspace_id = tfe_workspace.network.id
}

resource "tfe_variable" "network_apply" {
  key          = "TFC_AWS_APPLY_ROLE_ARN"
  value        = "arn:aws:iam::123456789012:role/network"
  category     = "env"
  workspace_id = tfe_workspace.network.id
}

resource "tfe_variable" "network_run" {
  key          = "TFC_AWS_RUN_ROLE_ARN"
  value        = "arn:aws:iam::123456789012:role/unused"
  category     = "env"
  sensitive    = true
  workspace_id = tfe_workspace.network.id
}

resource "tfe_variable_set" "aws" {
  name         = "aws"
  organization = "acme"
}

resource "tfe_variable" "aws_run" {
  key             = "TFC_AWS_RUN_ROLE_ARN"
  value           = "arn:aws:iam::123456789012:role/prod"
  category        = "env"
  variable_set_id = tfe_variable_set.aws.id
}

resource "tfe_variable" "aws_provider_auth" {
  key             = "TFC_AWS_PROVIDER_AUTH"
  value           = "true"
  category        = "env"
  variable_set_id = tfe_variable_set.aws.id
}

resource "tfe_workspace_variable_set" "app" {
  variable_set_id = tfe_variable_set.aws.id
  workspace_id    = tfe_workspace.app.id
}
"#;
    std::fs::write(admin.join("main.tf"), tf).unwrap();
    let proj = sb.root().join("proj");
    let out = sb
        .breakglass(&[
            "-C",
            proj.to_str().unwrap(),
            "import",
            "tfe",
            "--from",
            "tfe-admin",
        ])
        .output()
        .unwrap();
    ok(&out, "import tfe");
    let v = toml_of(&stdout(&out));
    assert_eq!(
        str_at(&v, &["stacks", "network", "arn"]),
        Some(role_arn("network").as_str()),
        "{v:#?}"
    );
    assert_eq!(
        str_at(&v, &["stacks", "network", "read_arn"]),
        Some(role_arn("read").as_str()),
        "{v:#?}"
    );
    assert_eq!(
        str_at(&v, &["stacks", "app", "arn"]),
        Some(role_arn("prod").as_str()),
        "the set's run role: {v:#?}"
    );
    assert!(
        v["stacks"]["app"].get("read_arn").is_none(),
        "plans use the run role too: {v:#?}"
    );
    assert_eq!(str_at(&v, &["import", "platform"]), Some("tfe"));
    let err = stderr(&out);
    let line = line_of(tf, "\"network_run\"");
    assert!(
        err.contains(&format!("tfe-admin/main.tf:{line}: tfe_variable.network_run: value: TFC_AWS_RUN_ROLE_ARN is sensitive")),
        "the sensitive variable is reported, with its place:\n{err}"
    );
    assert!(!stdout(&out).contains("role/unused"), "never guessed");
}

/// `terraform ARGS` through the shim, bounded in time; no secret may be printed.
fn tf(k: &mut Kit, dir: &Path, args: &[&str]) -> Output {
    let mut cmd: Command = k.sb.terraform(dir, args);
    let (out, took) = run_with_timeout(&mut cmd, Duration::from_secs(150));
    let out = out.unwrap_or_else(|| panic!("terraform {args:?} did not finish in {took:?}"));
    k.observe(&out);
    ok(&out, &format!("terraform {args:?} in {}", dir.display()));
    out
}

/// A stack's code: the S3 backend at `key`, and a resource whose local-exec writes the
/// caller's STS identity to `who`.
fn stack_tf(key: &str, who: &Path) -> String {
    let script = who.with_extension("sh");
    std::fs::write(
        &script,
        format!(
            "{} -c \"{WHO_AM_I}\" > {}\n",
            python().display(),
            who.display()
        ),
    )
    .unwrap();
    S3_BACKEND.replace("p/terraform.tfstate", key)
        + &format!(
            r#"
resource "terraform_data" "who" {{
  triggers_replace = [timestamp()]
  provisioner "local-exec" {{
    command = "sh {}"
  }}
}}
"#,
            script.display()
        )
}

/// The audit trail's last run: its role ARN and workspace.
fn last_run(k: &mut Kit) -> (String, String) {
    let log = k.log();
    let last = log.last().expect("no run recorded");
    (
        last["role_arn"].as_str().unwrap_or_default().to_string(),
        last["workspace"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn real_runs_assume_the_imported_roles() {
    let mut k = Kit::new();
    std::fs::remove_file(k.sb.real_dir.join("terraform")).unwrap();
    k.sb.real_terraform();
    k.sb.set("CHECKPOINT_DISABLE", "1");
    let proj = project(k.sb.root());
    let p = proj.to_str().unwrap().to_string();
    let out = k.breakglass(&[
        "-C",
        &p,
        "import",
        "spacelift",
        "--from",
        "admin",
        "--write",
    ]);
    ok(&out, "import --write");

    // network/: plan assumes the read role, apply the write role.
    let network = proj.join("network");
    std::fs::create_dir_all(&network).unwrap();
    let who = k.sb.root().join("who-network");
    std::fs::write(
        network.join("main.tf"),
        stack_tf("network/terraform.tfstate", &who),
    )
    .unwrap();
    tf(&mut k, &network, &["init", "-input=false", "-no-color"]);
    assert_eq!(
        last_run(&mut k).0,
        role_arn("network"),
        "init writes: the write role"
    );
    tf(
        &mut k,
        &network,
        &["plan", "-lock=false", "-input=false", "-no-color"],
    );
    assert_eq!(
        last_run(&mut k).0,
        role_arn("read"),
        "plan: the read-only integration's role"
    );
    assert!(!who.exists(), "a plan runs no provisioner");
    tf(
        &mut k,
        &network,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(
        last_run(&mut k).0,
        role_arn("network"),
        "apply: the write integration's role"
    );
    let arn = std::fs::read_to_string(&who).unwrap();
    assert!(
        arn.trim().starts_with(&assumed("network")),
        "terraform ran as {arn}"
    );
    let keys = k.moto.op(&k.bed, &["list", "tfstate"]);
    assert!(
        keys.to_string().contains("network/terraform.tfstate"),
        "{keys}"
    );

    // app/: after a real `terraform workspace new prod`, the run assumes prod's role.
    let app = proj.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let who = k.sb.root().join("who-app");
    std::fs::write(app.join("main.tf"), stack_tf("app/terraform.tfstate", &who)).unwrap();
    tf(&mut k, &app, &["init", "-input=false", "-no-color"]);
    assert_eq!(
        last_run(&mut k),
        (role_arn("deploy"), "default".to_string()),
        "no mapping for app in `default`: [role]"
    );
    tf(&mut k, &app, &["workspace", "new", "prod", "-no-color"]);
    assert_eq!(
        std::fs::read_to_string(app.join(".terraform/environment"))
            .unwrap()
            .trim(),
        "prod"
    );
    tf(
        &mut k,
        &app,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(last_run(&mut k), (role_arn("prod"), "prod".to_string()));
    let arn = std::fs::read_to_string(&who).unwrap();
    assert!(
        arn.trim().starts_with(&assumed("prod")),
        "terraform ran as {arn}"
    );
    let keys = k.moto.op(&k.bed, &["list", "tfstate"]);
    assert!(
        keys.to_string().contains("env:/prod/app/terraform.tfstate"),
        "{keys}"
    );
    k.finish();
}

#[test]
fn doctor_rereads_the_platform_and_knows_whose_state_it_keeps() {
    let mut k = Kit::new();
    let proj = project(k.sb.root());
    let p = proj.to_str().unwrap().to_string();
    let network = proj.join("network");
    let app = proj.join("app");
    for dir in [&network, &app] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("main.tf"), S3_BACKEND).unwrap();
    }
    let out = k.breakglass(&[
        "-C",
        &p,
        "import",
        "spacelift",
        "--from",
        "admin",
        "--write",
    ]);
    ok(&out, "import --write");

    // Right after the import: fresh. network keeps its state in S3 (manage_state = false).
    let (_, checks) = k.doctor(&network);
    assert_eq!(status(&checks, "inventory.fresh"), "pass", "{checks:#?}");
    let external = checks_with(&checks, "state.external");
    assert!(
        external.iter().all(|c| c["status"] == "pass"),
        "{external:#?}"
    );
    assert_eq!(external.len(), 1, "{external:#?}");

    // app's two stacks leave their state to Spacelift (manage_state defaults to true).
    let (out, checks) = k.doctor(&app);
    assert_eq!(code(&out), 1, "{checks:#?}");
    let managed: Vec<_> = checks_with(&checks, "state.external")
        .into_iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(managed.len(), 2, "one per stack: {managed:#?}");
    for (c, name) in managed.iter().zip(["app-prod", "app-staging"]) {
        let summary = c["summary"].as_str().unwrap();
        assert!(
            summary.contains(&format!("stack `{name}`"))
                && summary.contains("Spacelift manages the state"),
            "{c}"
        );
        let fix = c["fix"].as_str().unwrap();
        assert!(
            fix.contains("backend \"s3\"")
                && fix.contains("terraform state push")
                && fix.contains("manage_state = false"),
            "{c}"
        );
    }

    // A fourth stack in the admin stack: no mapping, named.
    std::fs::write(proj.join("admin/ops.tf"), OPS_TF).unwrap();
    let (out, checks) = k.doctor(&network);
    assert_eq!(code(&out), 1, "{checks:#?}");
    let fresh = check(&checks, "inventory.fresh");
    assert_eq!(fresh["status"], "fail", "{fresh}");
    let summary = fresh["summary"].as_str().unwrap();
    assert!(
        summary.contains("stack `ops`") && summary.contains("[stacks.\"ops\"]"),
        "{fresh}"
    );
    assert!(!summary.contains("network"), "only the new stack: {fresh}");
    assert!(
        fresh["fix"].as_str().unwrap().contains(&format!(
            "breakglass -C {p} import spacelift --from admin --write"
        )),
        "{fresh}"
    );
    // A role changed on the platform: named too.
    std::fs::write(
        proj.join("admin/integrations.tf"),
        INTEGRATIONS_TF.replace("role/${each.value}", "role/${each.value}-v2"),
    )
    .unwrap();
    let (_, checks) = k.doctor(&network);
    let summary = check(&checks, "inventory.fresh")["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        summary.contains("[stacks.\"app\".workspaces.prod]: arn is")
            && summary.contains("role/prod-v2"),
        "{summary}"
    );
    k.finish();
}

#[test]
fn trust_statement_lets_the_principal_assume_the_role() {
    let mut k = Kit::new();
    k.moto.op(&k.bed, &["versioning", "tfstate", "Enabled"]);
    let toml = format!(
        "region = \"us-east-1\"\n\n[role]\narn = \"{}\"\n",
        role_arn("locked")
    );
    let proj = k.dir(
        "proj",
        &[(".breakglass.toml", &toml), ("main.tf", S3_BACKEND)],
    );

    // The platform's role trusts only its admin: role.assume fails and points here.
    let (_, checks) = k.doctor(&proj);
    let assume = check(&checks, "role.assume");
    assert_eq!(assume["status"], "fail", "{assume}");
    let fix = assume["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "breakglass trust-statement --principal {} --role {}",
            user_arn("alice"),
            role_arn("locked")
        )),
        "{assume}"
    );
    assert!(fix.contains("separate break-glass role"), "{assume}");

    let out = k.breakglass(&[
        "trust-statement",
        "--principal",
        &user_arn("alice"),
        "--role",
        &role_arn("locked"),
    ]);
    ok(&out, "trust-statement");
    let statement: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the statement is JSON");
    assert_eq!(statement["Principal"]["AWS"], user_arn("alice"));
    assert!(
        stderr(&out).contains("update-assume-role-policy --role-name locked"),
        "{}",
        stderr(&out)
    );

    // Put in the role's trust policy, it lets alice in. (moto treats a statement whose
    // principal does not match as a Deny, so here it replaces the admin's statement
    // instead of standing beside it as it would in IAM; see moto_admin.py.)
    k.moto
        .op(&k.bed, &["set-trust", "locked", &statement.to_string()]);
    let (_, checks) = k.doctor(&proj);
    let assume = check(&checks, "role.assume");
    assert_eq!(assume["status"], "pass", "{assume}");
    assert!(
        assume["summary"]
            .as_str()
            .unwrap()
            .contains(&assumed("locked")),
        "{assume}"
    );

    // A malformed principal is refused with the way to find the right one.
    let out = k.breakglass(&["trust-statement", "--principal", "alice"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("get-caller-identity"),
        "{}",
        stderr(&out)
    );
    k.finish();
}
