//! Capability: a real terraform (v1.15.5, from the test bed) works through the shim
//! with break-glass mode off: `version`, `init` and `apply` of a `terraform_data`
//! resource with the local backend, and an interactive `apply` whose prompt is answered
//! on stdin (stdin reaches terraform, "no" cancels, "yes" applies).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use support::{stderr, stdout, write_config, Sandbox};

const MAIN_TF: &str = r#"
resource "terraform_data" "marker" {
  input = "break glass"
}

output "marker" {
  value = terraform_data.marker.output
}
"#;

/// A sandbox with the real terraform behind the shim and a project `proj/` with a
/// disabled breakglass config (so discovery and parsing happen).
fn setup() -> (Sandbox, PathBuf) {
    support::testbed();
    let mut sb = Sandbox::new();
    sb.real_terraform();
    sb.set("CHECKPOINT_DISABLE", "1");
    let proj = sb.root().join("proj");
    write_config(
        &proj,
        "enabled = false\n\n[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\n",
    );
    std::fs::write(proj.join("main.tf"), MAIN_TF).unwrap();
    (sb, proj)
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

/// `terraform ARGS` through the shim in `dir`, with `input` on stdin.
fn with_stdin(sb: &Sandbox, dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = sb
        .terraform(dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn state(proj: &Path) -> Option<String> {
    std::fs::read_to_string(proj.join("terraform.tfstate")).ok()
}

#[test]
fn version_through_the_shim() {
    let (sb, proj) = setup();
    let out = sb.terraform(&proj, &["version"]).output().unwrap();
    ok(&out, "terraform version");
    assert!(
        stdout(&out).contains("Terraform v1.15.5"),
        "{}",
        stdout(&out)
    );
    // Byte-identical to calling it directly.
    let direct = sb
        .command(sb.real_dir.join("terraform"))
        .arg("version")
        .current_dir(&proj)
        .output()
        .unwrap();
    assert_eq!(out.stdout, direct.stdout);
    assert_eq!(out.stderr, direct.stderr);
}

#[test]
fn init_and_apply_with_the_local_backend() {
    let (sb, proj) = setup();
    let out = sb
        .terraform(&proj, &["init", "-input=false", "-no-color"])
        .output()
        .unwrap();
    ok(&out, "terraform init");
    assert!(
        stdout(&out).contains("Terraform has been successfully initialized"),
        "{}",
        stdout(&out)
    );
    assert_eq!(state(&proj), None);

    let out = sb
        .terraform(&proj, &["apply", "-auto-approve", "-no-color"])
        .output()
        .unwrap();
    ok(&out, "terraform apply");
    assert!(
        stdout(&out).contains("Apply complete! Resources: 1 added"),
        "{}",
        stdout(&out)
    );
    let st = state(&proj).expect("no terraform.tfstate written");
    assert!(
        st.contains("\"terraform_data\"") && st.contains("break glass"),
        "{st}"
    );

    // A second apply from elsewhere with -chdir finds the same state: nothing to do.
    let out = sb
        .terraform(
            sb.root(),
            &["-chdir=proj", "apply", "-auto-approve", "-no-color"],
        )
        .output()
        .unwrap();
    ok(&out, "terraform -chdir=proj apply");
    assert!(
        stdout(&out).contains("Resources: 0 added, 0 changed, 0 destroyed"),
        "{}",
        stdout(&out)
    );
    let out = sb
        .terraform(&proj, &["output", "-raw", "marker"])
        .output()
        .unwrap();
    ok(&out, "terraform output");
    assert_eq!(stdout(&out), "break glass");
}

#[test]
fn an_interactive_apply_answered_no_is_cancelled() {
    let (mut sb, proj) = setup();
    // A person at a terminal, not a pipeline (the prompt is the same either way).
    sb.unset("TF_IN_AUTOMATION");
    let out = sb
        .terraform(&proj, &["init", "-input=false", "-no-color"])
        .output()
        .unwrap();
    ok(&out, "terraform init");

    let out = with_stdin(&sb, &proj, &["apply", "-no-color"], "no\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Do you want to perform these actions?"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("Apply cancelled."),
        "{}",
        stdout(&out)
    );
    assert_eq!(state(&proj), None, "applied despite `no`");

    // The control: `yes` on stdin applies.
    let out = with_stdin(&sb, &proj, &["apply", "-no-color"], "yes\n");
    ok(&out, "terraform apply (yes)");
    assert!(
        stdout(&out).contains("Apply complete! Resources: 1 added"),
        "{}",
        stdout(&out)
    );
    assert!(state(&proj).is_some_and(|s| s.contains("break glass")));
}
