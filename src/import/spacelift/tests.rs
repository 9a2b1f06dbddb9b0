//! The Spacelift reader on small admin stacks: literal ids, module attachments,
//! ambiguity, and a role that cannot be read.
use super::*;
use crate::import::hcl::Module;

fn read_text(text: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.tf"), text).unwrap();
    read(&Module::load(dir.path()).unwrap().evaluate())
}

#[test]
fn literal_ids_module_attachments_and_ambiguity() {
    let inv = read_text(
        r#"
resource "spacelift_stack" "a" {
  name       = "Stack A"
  slug       = "stack-a"
  repository = "infra"
  branch     = "main"
}
resource "spacelift_stack" "b" {
  name         = "b"
  repository   = "infra"
  branch       = "main"
  project_root = "b"
}
resource "spacelift_stack" "c" {
  name         = "c"
  repository   = "infra"
  branch       = "main"
  project_root = "c"
}
resource "spacelift_stack" "none" {
  name       = "none"
  repository = "infra"
  branch     = "main"
}
resource "spacelift_aws_integration" "one" {
  name             = "one"
  role_arn         = "arn:aws:iam::111111111111:role/one"
  duration_seconds = 60
}
resource "spacelift_aws_integration" "two" {
  name     = "two"
  role_arn = "arn:aws:iam::111111111111:role/two"
}
resource "spacelift_aws_integration_attachment" "a" {
  integration_id = spacelift_aws_integration.one.id
  stack_id       = "stack-a"
}
resource "spacelift_aws_integration_attachment" "b" {
  integration_id = spacelift_aws_integration.one.id
  stack_id       = "b"
}
resource "spacelift_aws_integration_attachment" "module" {
  integration_id = spacelift_aws_integration.one.id
  module_id      = "some-module"
}
resource "spacelift_aws_integration_attachment" "c1" {
  integration_id = spacelift_aws_integration.one.id
  stack_id       = spacelift_stack.c.id
}
resource "spacelift_aws_integration_attachment" "c2" {
  integration_id = spacelift_aws_integration.two.id
  stack_id       = spacelift_stack.c.id
}
resource "spacelift_aws_integration_attachment" "other" {
  integration_id = spacelift_aws_integration.two.id
  stack_id       = "not-here"
}
"#,
    );
    let names: Vec<&str> = inv.stacks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Stack A", "b"], "{inv:#?}");
    let a = &inv.stacks[0];
    assert_eq!(a.arn.as_deref(), Some("arn:aws:iam::111111111111:role/one"));
    assert_eq!(a.read_arn, None, "one role for reads and writes");
    assert_eq!(
        a.duration,
        Some(crate::config::MIN_DURATION),
        "never below 15m"
    );
    assert_eq!(a.manage_state, Some(true), "the provider's default");
    let text: Vec<String> = inv.skipped.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    assert!(
        has("spacelift_stack.c: 2 roles are attached for writes"),
        "{text:#?}"
    );
    assert!(has("spacelift_stack.none: no AWS integration"), "{text:#?}");
    assert!(has("\"not-here\" names no spacelift_stack"), "{text:#?}");
    assert!(
        !has("some-module"),
        "a module's attachment is not about stacks: {text:#?}"
    );
}

#[test]
fn an_unreadable_role_leaves_its_stack_out() {
    let inv = read_text(
        r#"
variable "role" {}
resource "spacelift_stack" "s" {
  name       = "s"
  repository = "infra"
  branch     = "main"
}
resource "spacelift_aws_role" "s" {
  stack_id = spacelift_stack.s.id
  role_arn = var.role
}
"#,
    );
    assert!(inv.stacks.is_empty(), "{inv:#?}");
    let text: Vec<String> = inv.skipped.iter().map(ToString::to_string).collect();
    assert!(
        text[0].contains("main.tf:10: spacelift_aws_role.s: role_arn: `var.role` has no default"),
        "{text:#?}"
    );
    assert!(
        text[1].contains("spacelift_stack.s: not mapped"),
        "{text:#?}"
    );
}
