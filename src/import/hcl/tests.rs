//! The evaluator on small modules: what it resolves, what it refuses, and the lines it
//! reports.

use super::*;
use hcl::Value;

fn evaluate(files: &[(&str, &str)]) -> (tempfile::TempDir, Evaluated) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let ev = Module::load(dir.path()).unwrap().evaluate();
    (dir, ev)
}

fn instance<'a>(ev: &'a Evaluated, address: &str) -> &'a Instance {
    ev.instances
        .iter()
        .find(|i| i.address == address)
        .unwrap_or_else(|| panic!("no {address} in {:#?}", ev.instances))
}

#[test]
fn variables_locals_functions_and_references_by_address() {
    let (_d, ev) = evaluate(&[(
        "main.tf",
        r#"
variable "account" {
  default = "123456789012"
}
variable "envs" {
  default = ["prod", "staging"]
}
locals {
  prefix = "arn:aws:iam::${var.account}:role"
  roles  = { for e in var.envs : e => "${local.prefix}/${e}" }
}
resource "x_stack" "s" {
  for_each = toset(var.envs)
  name     = upper(each.key)
  role     = local.roles[each.value]
}
resource "x_link" "l" {
  for_each = x_stack.s
  target   = each.value.id
  name     = x_stack.s[each.key].name
  joined   = join("-", [each.key, "x"])
  fmt      = format("%s/%d", each.key, 7)
}
resource "x_count" "c" {
  count = 2
  index = count.index
}
"#,
    )]);
    let s = instance(&ev, "x_stack.s[\"prod\"]");
    assert_eq!(s.string("name").unwrap().as_deref(), Some("PROD"));
    assert_eq!(
        s.string("role").unwrap().as_deref(),
        Some("arn:aws:iam::123456789012:role/prod")
    );
    let l = instance(&ev, "x_link.l[\"staging\"]");
    assert_eq!(
        l.target("target").unwrap(),
        Some(Target::Address("x_stack.s[\"staging\"]".into()))
    );
    assert_eq!(l.string("name").unwrap().as_deref(), Some("STAGING"));
    assert_eq!(l.string("joined").unwrap().as_deref(), Some("staging-x"));
    assert_eq!(l.string("fmt").unwrap().as_deref(), Some("staging/7"));
    assert_eq!(
        instance(&ev, "x_count.c[1]").number("index").unwrap(),
        Some(1)
    );
    assert!(ev.failed.is_empty(), "{:?}", ev.failed);
}

#[test]
fn for_each_over_a_literal_map_and_a_variable_default() {
    let (_d, ev) = evaluate(&[(
        "main.tf",
        r#"
variable "apps" {
  default = { a = { root = "apps/a" }, b = { root = "apps/b" } }
}
resource "x_stack" "literal" {
  for_each = { one = "1", two = "2" }
  value    = each.value
}
resource "x_stack" "var" {
  for_each = var.apps
  root     = each.value.root
}
"#,
    )]);
    assert_eq!(
        instance(&ev, "x_stack.literal[\"two\"]")
            .string("value")
            .unwrap()
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        instance(&ev, "x_stack.var[\"b\"]")
            .string("root")
            .unwrap()
            .as_deref(),
        Some("apps/b")
    );
}

#[test]
fn what_cannot_be_known_is_unknown_with_the_reason_and_line() {
    let (_d, ev) = evaluate(&[(
        "main.tf",
        r#"# a comment with a { brace
variable "no_default" {}

locals {
  text = <<-EOT
    resource "x_stack" "fake" {
  EOT
}

module "stacks" {
  source = "./stacks"
}

resource "aws_iam_role" "r" {
  name = "r"
}

resource "x_link" "l" {
  from_data   = data.x_thing.t.id
  from_module = module.stacks.id
  from_var    = var.no_default
  computed    = aws_iam_role.r.arn
  missing     = x_stack.nope.id
  partial     = "${x_other.o.id}-suffix"
  bad_func    = replace("a", "b", "c")
}

resource "x_other" "o" {}

resource "x_each" "e" {
  for_each = var.no_default
  name     = each.key
}
"#,
    )]);
    let l = instance(&ev, "x_link.l");
    let reason = |key: &str| match l.field(key) {
        Field::Unknown(s) => s.clone(),
        other => panic!("{key} is known: {other:?}"),
    };
    let s = reason("from_data");
    assert!(s.reason.contains("data source"), "{s}");
    assert_eq!(s.place.as_ref().and_then(|p| p.line), Some(19), "{s}");
    assert!(
        s.to_string().contains("main.tf:19: x_link.l: from_data"),
        "{s}"
    );
    assert!(reason("from_module").reason.contains("module's output"));
    assert!(reason("from_var").reason.contains("has no default"));
    assert!(reason("computed")
        .reason
        .contains("`aws_iam_role.r.arn` is computed by the provider"));
    assert!(reason("missing")
        .reason
        .contains("no resource `x_stack.nope` is defined"));
    assert!(
        reason("bad_func").reason.contains("replace"),
        "{}",
        reason("bad_func")
    );
    // An id inside a larger string is only known to the platform.
    let e = l.string("partial").unwrap_err();
    assert!(e.reason.contains("only the platform knows"), "{e}");
    // A module call is listed, with its line.
    assert_eq!(ev.skipped.len(), 1, "{:?}", ev.skipped);
    assert!(ev.skipped[0]
        .to_string()
        .contains("main.tf:10: module.stacks"));
    // A for_each that cannot be known skips the resource, at the for_each line; the
    // heredoc's text is no block.
    let failed: Vec<_> = ev.failed_of("x_each").collect();
    assert_eq!(failed.len(), 1, "{:?}", ev.failed);
    assert_eq!(failed[0].place.as_ref().and_then(|p| p.line), Some(31));
    assert!(ev.instances.iter().all(|i| i.kind != "x_stack"));
}

#[test]
fn parse_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.tf"), "resource \"x\" {\n").unwrap();
    let err = Module::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("bad.tf") && err.contains("not valid HCL"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(Module::load(empty.path())
        .unwrap_err()
        .to_string()
        .contains("no .tf files"));
    assert_eq!(reference(&Value::from("plain")), None);
}
