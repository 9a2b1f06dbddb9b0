//! How a break-glass run starts, against moto with IAM enforcement on: the start-time
//! check (`min_remaining`) stops a run whose credentials would expire too soon before
//! terraform starts, and `delivery = "env"` says loudly that it will not refresh.

mod kit;
mod support;

use kit::*;
use support::*;

#[test]
fn credentials_shorter_than_min_remaining_stop_the_run_before_terraform_starts() {
    let mut k = Kit::new();
    // 15-minute sessions cannot satisfy a 20-minute minimum.
    let dir = k.project(
        "proj",
        &format!(
            "enabled = true\nregion = \"us-east-1\"\nmin_remaining = \"20m\"\n[role]\narn = \"{}\"\nduration = \"15m\"\n",
            role_arn("deploy")
        ),
    );
    let out = k.terraform(&dir, &["apply", "-auto-approve"], &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 125, "{err}");
    assert!(err.contains("less than min_remaining"), "{err}");
    assert!(err.contains("fix:"), "{err}");
    assert!(!k.terraform_ran(), "terraform must not start: {err}");

    // The same project with a minimum the session can meet runs.
    std::fs::write(
        dir.join(".breakglass.toml"),
        format!(
            "enabled = true\nregion = \"us-east-1\"\nmin_remaining = \"10m\"\n[role]\narn = \"{}\"\nduration = \"15m\"\n",
            role_arn("deploy")
        ),
    )
    .unwrap();
    let out = k.terraform(&dir, &["apply", "-auto-approve"], &[]);
    assert_ok(&out);
    assert!(k.terraform_ran());
    k.finish();
}

#[test]
fn the_plain_hand_over_warns_that_it_does_not_refresh() {
    let mut k = Kit::new();
    let dir = k.project(
        "proj",
        &format!(
            "enabled = true\nregion = \"us-east-1\"\ndelivery = \"env\"\n[role]\narn = \"{}\"\n",
            role_arn("deploy")
        ),
    );
    let out = k.terraform(&dir, &["plan"], &[]);
    assert_ok(&out);
    let err = stderr(&out);
    assert!(err.contains("will not be refreshed"), "{err}");
    let env = k.recorded_env();
    assert!(
        env.contains_key("AWS_SESSION_TOKEN"),
        "env delivery hands over keys"
    );
    assert!(!env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"));

    // The default (endpoint) hand-over gives terraform no keys at all.
    std::fs::write(dir.join(".breakglass.toml"), Kit::deploy_toml(true, "")).unwrap();
    let out = k.terraform(&dir, &["plan"], &[]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("will not be refreshed"));
    let env = k.recorded_env();
    assert!(!env.contains_key("AWS_SESSION_TOKEN") && !env.contains_key("AWS_ACCESS_KEY_ID"));
    assert!(env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    k.finish();
}

#[test]
fn a_terraform_started_inside_a_break_glass_run_inherits_it() {
    let mut k = Kit::new();
    let dir = k.project("proj", &Kit::deploy_toml(true, ""));
    let nested = k.sb.root().join("nested-record");
    // The fake terraform runs `terraform plan` again through the shim, as a
    // provisioner's `terraform output` would; that one records into `nested`.
    let run = format!(
        "FAKE_TF_RUN= FAKE_TF_RECORD={} terraform plan 2> {}.stderr",
        nested.display(),
        nested.display()
    );
    let out = k.terraform(
        &dir,
        &["apply", "-auto-approve"],
        &[("FAKE_TF_RUN", run.as_str()), ("BREAKGLASS", "1")],
    );
    assert_ok(&out);
    let inner = recorded_env(&nested);
    assert!(
        inner.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "the nested run keeps the endpoint: {inner:?}"
    );
    assert!(!inner.contains_key("AWS_ACCESS_KEY_ID"));
    let inner_err = std::fs::read_to_string(format!("{}.stderr", nested.display())).unwrap();
    assert!(
        !inner_err.contains("breakglass:"),
        "the nested shim steps aside silently: {inner_err}"
    );
    // One run, one audit line: the nested one is part of it.
    assert_eq!(k.log().len(), 1);
    k.finish();
}
