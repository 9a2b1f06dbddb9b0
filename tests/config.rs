//! Capability: `.breakglass.toml` is found where terraform will run, layered with
//! `.breakglass.local.toml`, checked with errors that point at `file:line:col`, and it
//! (with `BREAKGLASS`) decides the mode; the role mapping picks stack over workspace
//! over `[role]`.
//!
//! The on path's own output will change, so mode-on runs are recognised only by exit
//! 125 with the real terraform not started; the mapping is checked through the library.

mod support;

use std::path::{Path, PathBuf};

use breakglass::config::Project;
use breakglass::mapping::{current_workspace, MatchedBy};
use support::{recorded_args, stderr, write_config, Sandbox};

const ROLE: &str = "[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\n";

/// A sandbox with the recording fake terraform, an unrelated directory to run from,
/// and `proj/`.
fn setup() -> (Sandbox, PathBuf, PathBuf) {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let elsewhere = sb.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let proj = sb.root().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    (sb, elsewhere, proj)
}

/// Runs `terraform ARGS` in `dir`; returns (exit code, stderr, whether the fake ran).
fn tf(sb: &Sandbox, dir: &Path, args: &[&str]) -> (Option<i32>, String, bool) {
    let _ = std::fs::remove_file(sb.record_path());
    let out = sb.terraform(dir, args).output().unwrap();
    (out.status.code(), stderr(&out), sb.record_path().exists())
}

#[test]
fn chdir_finds_the_project_config_from_an_unrelated_directory() {
    let (sb, elsewhere, proj) = setup();
    // An invalid region at line 2, column 10.
    write_config(&proj, "enabled = false\nregion = \"EU West\"\n");

    let (code, err, ran) = tf(&sb, &elsewhere, &["-chdir=../proj", "plan"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(!ran, "terraform ran despite a broken config");
    assert!(err.contains("proj/.breakglass.toml:2:10: "), "{err}");
    assert!(
        err.contains("EU West") && err.contains("\n  fix: "),
        "{err}"
    );

    // An absolute -chdir, too.
    let chdir = format!("-chdir={}", proj.display());
    let (code, err, ran) = tf(&sb, &elsewhere, &[&chdir, "apply"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(!ran);
    assert!(err.contains("proj/.breakglass.toml:2:10: "), "{err}");

    // The control: without -chdir, the unrelated directory has no config.
    let (code, err, ran) = tf(&sb, &elsewhere, &["plan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran);
    assert_eq!(err, "fake terraform stderr\n");
}

#[test]
fn chdir_after_the_subcommand_is_not_a_global_option() {
    let (sb, elsewhere, proj) = setup();
    write_config(&proj, "enabled = false\nregion = \"EU West\"\n");
    let (code, err, ran) = tf(&sb, &elsewhere, &["plan", "-chdir=../proj"]);
    assert_eq!(code, Some(0), "the config in proj/ was read: {err}");
    assert!(ran);
    assert_eq!(
        recorded_args(&sb.record_path()),
        vec![b"plan".to_vec(), b"-chdir=../proj".to_vec()]
    );
    // Nor is the two-word spelling, which terraform does not accept either.
    let (code, err, ran) = tf(&sb, &elsewhere, &["-chdir", "../proj", "plan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran);
}

#[test]
fn the_config_is_found_by_walking_up() {
    let (sb, _, proj) = setup();
    write_config(&proj, &format!("enabled = true\n{ROLE}"));
    let deep = proj.join("stacks/network/vpc");
    std::fs::create_dir_all(&deep).unwrap();
    let (code, err, ran) = tf(&sb, &deep, &["plan"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(!ran, "terraform ran with break-glass mode on");
    // A nearer config wins over the one above it.
    write_config(&proj.join("stacks"), "enabled = false\n");
    let (code, err, ran) = tf(&sb, &deep, &["plan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran);
}

#[test]
fn the_local_file_overrides_the_base() {
    let (mut sb, _, proj) = setup();
    write_config(&proj, &format!("enabled = false\n{ROLE}"));
    let (code, err, ran) = tf(&sb, &proj, &["apply"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran, "control: the base alone keeps the mode off");

    std::fs::write(proj.join(".breakglass.local.toml"), "enabled = true\n").unwrap();
    let (code, err, ran) = tf(&sb, &proj, &["apply"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(!ran, "terraform ran with break-glass mode on");

    // BREAKGLASS=0 forces it off again, whatever the files say.
    for off in ["0", "off", "false", "OFF"] {
        sb.set("BREAKGLASS", off);
        let (code, err, ran) = tf(&sb, &proj, &["apply"]);
        assert_eq!(code, Some(0), "BREAKGLASS={off}: {err}");
        assert!(ran, "BREAKGLASS={off}");
        assert_eq!(err, "fake terraform stderr\n");
    }

    // An error in the local file names the local file.
    sb.unset("BREAKGLASS");
    std::fs::write(proj.join(".breakglass.local.toml"), "\nenabled = \"yes\"\n").unwrap();
    let (code, err, ran) = tf(&sb, &proj, &["apply"]);
    assert_eq!(code, Some(125));
    assert!(!ran);
    assert!(err.contains(".breakglass.local.toml:2:11: "), "{err}");
}

#[test]
fn the_mode_follows_breakglass_then_the_config() {
    let (mut sb, elsewhere, proj) = setup();
    write_config(&proj, &format!("enabled = true\n{ROLE}"));

    // enabled = true: on.
    let (code, _, ran) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(125));
    assert!(!ran);
    // An empty BREAKGLASS is the same as unset.
    sb.set("BREAKGLASS", "");
    let (code, _, ran) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(125));
    assert!(!ran);
    // BREAKGLASS=0: off.
    sb.set("BREAKGLASS", "0");
    let (code, err, ran) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran);
    // No config at all: off, unless BREAKGLASS=1.
    sb.unset("BREAKGLASS");
    let (code, err, ran) = tf(&sb, &elsewhere, &["plan"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(ran);
    for on in ["1", "on", "true", "TRUE"] {
        sb.set("BREAKGLASS", on);
        let (code, _, ran) = tf(&sb, &elsewhere, &["plan"]);
        assert_eq!(code, Some(125), "BREAKGLASS={on}");
        assert!(!ran, "BREAKGLASS={on}");
    }
}

#[test]
fn an_unknown_key_gets_a_did_you_mean() {
    let (sb, _, proj) = setup();
    write_config(&proj, &format!("enabeld = true\n{ROLE}"));
    let (code, err, ran) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(!ran);
    assert!(err.contains("proj/.breakglass.toml:1:1: "), "{err}");
    assert!(err.contains("enabeld"), "{err}");
    assert!(err.contains("did you mean `enabled`"), "{err}");

    // Inside a table too.
    write_config(
        &proj,
        "[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\nsesion_name = \"x\"\n",
    );
    let (code, err, _) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.contains("did you mean `session_name`"), "{err}");

    // Nothing close: told to remove it.
    write_config(&proj, "colour = \"blue\"\n");
    let (code, err, _) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(
        err.contains("remove `colour`") && !err.contains("did you mean"),
        "{err}"
    );
}

#[test]
fn a_bad_value_is_reported_where_it_was_written() {
    let (sb, _, proj) = setup();
    write_config(
        &proj,
        "enabled = false\n\n[workspaces.prod]\narn = \"arn:aws:iam::12345:role/deploy\"\n",
    );
    let (code, err, ran) = tf(&sb, &proj, &["plan"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(!ran, "a broken config must stop even an off-mode run");
    assert!(err.contains(".breakglass.toml:4:7: "), "{err}");
    assert!(err.contains("not an IAM role ARN"), "{err}");
    assert!(err.contains("fix: "), "{err}");
}

// ---------------------------------------------------------------------------------
// The mapping, through the library.

const MAPPED: &str = r#"
enabled = true

[role]
arn = "arn:aws:iam::111111111111:role/default"
read_arn = "arn:aws:iam::111111111111:role/default-read"
duration = "2h"

[workspaces.prod]
arn = "arn:aws:iam::222222222222:role/prod"

[workspaces.staging]
arn = "arn:aws:iam::555555555555:role/staging"

[stacks."network/*"]
arn = "arn:aws:iam::333333333333:role/network"

[stacks."network/core"]
arn = "arn:aws:iam::444444444444:role/core"
duration = "1h"
"#;

fn mapped_project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write_config(&root, MAPPED);
    for d in ["app", "network/vpc", "network/core", "network/vpc/sub"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    (dir, root)
}

/// The ARN for a run in `dir`, discovered from `dir` like the shim does.
fn arn(dir: &Path, tf_workspace: Option<&str>) -> (String, MatchedBy, String) {
    let project = Project::discover(dir).unwrap().expect("no config found");
    let ws = current_workspace(dir, tf_workspace, None);
    let t = project.resolve(dir, &ws).unwrap();
    (t.arn, t.matched_by, ws)
}

#[test]
fn stack_beats_workspace_beats_default() {
    let (_d, root) = mapped_project();
    let (a, m, ws) = arn(&root.join("app"), None);
    assert_eq!(ws, "default");
    assert!(a.ends_with("role/default"), "{a}");
    assert_eq!(m, MatchedBy::Default);

    let (a, m, _) = arn(&root.join("app"), Some("prod"));
    assert!(a.ends_with("role/prod"), "{a}");
    assert_eq!(m, MatchedBy::Workspace("prod".into()));

    let (a, m, _) = arn(&root.join("network/vpc"), Some("prod"));
    assert!(a.ends_with("role/network"), "stack over workspace: {a}");
    assert_eq!(m, MatchedBy::Stack("network/*".into()));

    let (a, _, _) = arn(&root.join("network/core"), Some("prod"));
    assert!(
        a.ends_with("role/core"),
        "the exact stack over the glob: {a}"
    );

    let (a, _, _) = arn(&root.join("network/vpc/sub"), None);
    assert!(a.ends_with("role/default"), "`*` stops at `/`: {a}");

    // Keys the winner does not set come from the layers below it.
    let project = Project::discover(&root.join("network/vpc"))
        .unwrap()
        .unwrap();
    let t = project.resolve(&root.join("network/vpc"), "prod").unwrap();
    assert_eq!(t.duration.as_secs(), 7200);
    // ... except the read role: a mapping that names its own role does not inherit a
    // read role that may be in another account; plan runs as the stack's role.
    assert!(t.arn_for(true).ends_with("role/network"));
    assert!(t.arn_for(false).ends_with("role/network"));
    let t = project.resolve(&root.join("network/core"), "prod").unwrap();
    assert_eq!(t.duration.as_secs(), 3600);
}

#[test]
fn the_workspace_comes_from_tf_workspace_then_the_environment_file() {
    let (_d, root) = mapped_project();
    let app = root.join("app");
    std::fs::create_dir_all(app.join(".terraform")).unwrap();
    std::fs::write(app.join(".terraform/environment"), "staging\n").unwrap();
    let (a, m, ws) = arn(&app, None);
    assert_eq!(ws, "staging");
    assert!(a.ends_with("role/staging"), "{a}");
    assert_eq!(m, MatchedBy::Workspace("staging".into()));
    // TF_WORKSPACE wins over the file.
    let (a, _, ws) = arn(&app, Some("prod"));
    assert_eq!(ws, "prod");
    assert!(a.ends_with("role/prod"), "{a}");
    // An empty TF_WORKSPACE is ignored.
    let (_, _, ws) = arn(&app, Some(""));
    assert_eq!(ws, "staging");
    // A workspace with no entry falls back to [role].
    let (a, m, _) = arn(&app, Some("dev"));
    assert!(a.ends_with("role/default"), "{a}");
    assert_eq!(m, MatchedBy::Default);
}

#[test]
fn the_local_file_overrides_the_mapping_key_by_key() {
    let (_d, root) = mapped_project();
    std::fs::write(
        root.join(".breakglass.local.toml"),
        "[workspaces.prod]\narn = \"arn:aws:iam::999999999999:role/mine\"\n",
    )
    .unwrap();
    let project = Project::load(&root.join(".breakglass.toml")).unwrap();
    assert_eq!(project.files.len(), 2);
    let t = project.resolve(&root.join("app"), "prod").unwrap();
    assert!(t.arn.ends_with("999999999999:role/mine"), "{}", t.arn);
    assert_eq!(
        t.duration.as_secs(),
        7200,
        "the rest still comes from the base"
    );
    let t = project.resolve(&root.join("app"), "staging").unwrap();
    assert!(t.arn.ends_with("role/staging"), "{}", t.arn);
    let t = project.resolve(&root.join("network/vpc"), "prod").unwrap();
    assert!(
        t.arn.ends_with("role/network"),
        "a stack still wins: {}",
        t.arn
    );
}
