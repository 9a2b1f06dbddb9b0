//! The HCP Terraform reader on small admin configurations: precedence, a sensitive
//! variable, and a project that cannot be resolved.
use super::*;
use crate::import::hcl::Module;

fn read_text(text: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), text).unwrap();
    read(&Module::load(dir.path()).unwrap().evaluate())
}

const WS: &str = r#"
resource "tfe_project" "p" {
  name = "p"
}
resource "tfe_workspace" "a" {
  name              = "a"
  working_directory = "a"
  project_id        = tfe_project.p.id
}
resource "tfe_workspace" "b" {
  name              = "b"
  working_directory = "b"
}
resource "tfe_variable_set" "project" {
  name = "project"
}
resource "tfe_project_variable_set" "p" {
  variable_set_id = tfe_variable_set.project.id
  project_id      = tfe_project.p.id
}
resource "tfe_variable" "project_run" {
  key             = "TFC_AWS_RUN_ROLE_ARN"
  value           = "arn:aws:iam::111111111111:role/project"
  category        = "env"
  variable_set_id = tfe_variable_set.project.id
}
resource "tfe_variable_set" "global" {
  name   = "global"
  global = true
}
resource "tfe_variable" "global_run" {
  key             = "TFC_AWS_RUN_ROLE_ARN"
  value           = "arn:aws:iam::111111111111:role/global"
  category        = "env"
  variable_set_id = tfe_variable_set.global.id
}
"#;

#[test]
fn precedence_project_over_global_own_over_sets() {
    let inv = read_text(&format!(
        "{WS}{}",
        r#"
resource "tfe_variable" "b_apply" {
  key          = "TFC_AWS_APPLY_ROLE_ARN"
  value        = "arn:aws:iam::111111111111:role/b-apply"
  category     = "env"
  workspace_id = tfe_workspace.b.id
}
resource "tfe_variable" "b_plan_as_terraform" {
  key          = "TFC_AWS_PLAN_ROLE_ARN"
  value        = "arn:aws:iam::111111111111:role/wrong"
  category     = "terraform"
  workspace_id = tfe_workspace.b.id
}
"#
    ));
    let a = &inv.stacks[0];
    assert_eq!(
        a.arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/project")
    );
    assert_eq!(a.read_arn, None);
    let b = &inv.stacks[1];
    assert_eq!(
        b.arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/b-apply")
    );
    assert_eq!(
        b.read_arn.as_deref(),
        Some("arn:aws:iam::111111111111:role/global"),
        "plans fall back to the run role"
    );
    assert!(
        inv.skipped
            .iter()
            .any(|s| s.reason.contains("category = \"terraform\"")),
        "{:#?}",
        inv.skipped
    );
}

#[test]
fn a_sensitive_role_is_skipped_and_an_unknown_project_blocks() {
    let inv = read_text(&format!(
        "{WS}{}",
        r#"
resource "tfe_variable" "b_run" {
  key          = "TFC_AWS_RUN_ROLE_ARN"
  value        = "arn:aws:iam::111111111111:role/secret"
  category     = "env"
  sensitive    = true
  workspace_id = tfe_workspace.b.id
}
resource "tfe_project_variable_set" "unknown" {
  variable_set_id = tfe_variable_set.project.id
  project_id      = data.tfe_project.x.id
}
"#
    ));
    assert!(inv.stacks.is_empty(), "{inv:#?}");
    let text: Vec<String> = inv.skipped.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("tfe_variable.b_run: value: TFC_AWS_RUN_ROLE_ARN is sensitive")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("tfe_workspace.a: not mapped") && t.contains("data source")),
        "{text:#?}"
    );
}
