//! Capability: the shim never loops back into itself.
//!
//! A PATH holding only shims (the same directory spelled several ways, symlinks, a
//! hard-linked copy), or a version-manager wrapper that hands `terraform` back to the
//! shim (with `exec`, or as a child process), ends quickly in exit 125 with a message,
//! instead of spinning forever. A terraform legitimately started by terraform (a
//! provisioner running `terraform output`) still works: the guard only counts along one
//! chain of execs.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use support::{recorded_args, run_with_timeout, stderr, write_exe, Sandbox};

/// Fail fast: a loop must end well within this.
const FAST: Duration = Duration::from_secs(2);
/// Safety net: a test that loops is killed (with its whole process group) after this.
const KILL_AFTER: Duration = Duration::from_secs(20);

/// Runs `terraform ARGS` through the shim in the sandbox root, killing it on a hang.
fn run(sb: &Sandbox, args: &[&str]) -> (Output, Duration) {
    let mut cmd = sb.terraform(sb.root(), args);
    let (out, took) = run_with_timeout(&mut cmd, KILL_AFTER);
    let out = out.unwrap_or_else(|| {
        panic!("`terraform {args:?}` was still running after {KILL_AFTER:?}: a loop")
    });
    (out, took)
}

fn mkdir(p: PathBuf) -> PathBuf {
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A version-manager style `terraform` wrapper (tfenv, asdf, a hand-written one): it
/// runs the first `terraform` on PATH that is not in its own directory, and appends a
/// line to `$WRAPPER_LOG` each time it runs. With `exec_it`, it execs it (asdf and mise
/// do); without, it runs it as a child and exits with its status.
fn wrapper(dir: &Path, exec_it: bool) -> PathBuf {
    let run = if exec_it {
        r#"exec "$d/terraform" "$@""#
    } else {
        r#""$d/terraform" "$@"; exit $?"#
    };
    let text = format!(
        r#"#!/bin/sh
echo "wrapper $$" >> "$WRAPPER_LOG"
self_dir=${{0%/*}}
IFS=:
for d in $PATH; do
  [ "$d" = "$self_dir" ] && continue
  if [ -x "$d/terraform" ]; then
    IFS=' '
    {run}
  fi
done
echo "wrapper: no terraform found" >&2
exit 127
"#
    );
    let p = dir.join("terraform");
    write_exe(&p, &text);
    p
}

fn log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_path_of_only_shims_fails_fast() {
    let mut sb = Sandbox::new();
    let root = sb.root().to_path_buf();
    // The same shim directory, spelled three ways.
    let shims = sb.shims.clone();
    let trailing = PathBuf::from(format!("{}//", shims.display()));
    let dotted = PathBuf::from(format!("{}/./", shims.display()));
    // Another directory with a symlink to the shim binary.
    let linked = mkdir(root.join("linked"));
    std::os::unix::fs::symlink(support::shim_bin(), linked.join("terraform")).unwrap();
    // A second copy of breakglass, reached through a hard link.
    let copy = mkdir(root.join("opt/breakglass")).join("breakglass-shim");
    std::fs::copy(support::shim_bin(), &copy).unwrap();
    let hard = mkdir(root.join("hard"));
    std::fs::hard_link(&copy, hard.join("terraform")).unwrap();
    let path = std::env::join_paths([&shims, &trailing, &dotted, &linked, &hard]).unwrap();
    sb.set("PATH", &path);

    let (out, took) = run(&sb, &["plan"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(took < FAST, "took {took:?}");
    let err = stderr(&out);
    assert!(
        err.contains("no real `terraform` was found") && err.contains("breakglass shim"),
        "{err}"
    );
    assert!(
        err.contains(&hard.display().to_string()),
        "lists the PATH: {err}"
    );
    assert!(err.contains("BREAKGLASS_TERRAFORM"), "{err}");

    // The control: with a real terraform after them all, it is found.
    let real = mkdir(root.join("real-last"));
    write_exe(&real.join("terraform"), support::FAKE_TERRAFORM);
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push(real);
    sb.set("PATH", std::env::join_paths(dirs).unwrap());
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let (out, _) = run(&sb, &["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"plan".to_vec()]);
}

#[test]
fn an_exec_hand_off_back_to_the_shim_ends_in_an_error() {
    // PATH: the shim, then a wrapper. The shim skips itself and runs the wrapper; the
    // wrapper skips itself and execs the shim again; without the guard this goes round
    // forever in one process.
    let mut sb = Sandbox::new();
    let wrap = mkdir(sb.root().join("wrap"));
    wrapper(&wrap, true);
    let log = sb.root().join("wrapper.log");
    sb.set("WRAPPER_LOG", &log);
    sb.set("PATH", std::env::join_paths([&sb.shims, &wrap]).unwrap());

    let (out, took) = run(&sb, &["plan"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(took < FAST, "took {took:?}");
    assert!(
        stderr(&out).contains("BREAKGLASS_TERRAFORM"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        log_lines(&log),
        1,
        "the shim must stop at its first re-entry"
    );
}

#[test]
fn a_child_process_hand_off_back_to_the_shim_ends_in_an_error() {
    // The same, but the wrapper runs terraform as a child instead of exec'ing it: each
    // round is a new process, so a per-process guard alone would nest forever.
    let mut sb = Sandbox::new();
    let wrap = mkdir(sb.root().join("wrap"));
    wrapper(&wrap, false);
    let log = sb.root().join("wrapper.log");
    sb.set("WRAPPER_LOG", &log);
    sb.set("PATH", std::env::join_paths([&sb.shims, &wrap]).unwrap());

    let (out, took) = run(&sb, &["apply"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(took < FAST, "took {took:?}");
    let err = stderr(&out);
    assert!(err.contains("shim loop"), "{err}");
    assert!(err.contains("BREAKGLASS_TERRAFORM"), "{err}");
    assert!(log_lines(&log) <= 10, "ran {} rounds", log_lines(&log));
}

#[test]
fn a_wrapper_before_the_shim_still_reaches_the_real_terraform() {
    // mise/asdf-style: the version manager's `terraform` comes first on PATH and hands
    // over to the next `terraform`, which is the shim; the shim must find the real one
    // after it, not the wrapper again.
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let wrap = mkdir(sb.root().join("wrap"));
    let wrapper_exe = wrapper(&wrap, true);
    let log = sb.root().join("wrapper.log");
    sb.set("WRAPPER_LOG", &log);
    sb.set(
        "PATH",
        std::env::join_paths([&wrap, &sb.shims, &sb.real_dir]).unwrap(),
    );
    let mut cmd = sb.command(&wrapper_exe);
    cmd.args(["plan", "-no-color"]);
    let (out, took) = run_with_timeout(&mut cmd, KILL_AFTER);
    let out = out.expect("the hand-off looped");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(took < FAST, "took {took:?}");
    assert_eq!(
        recorded_args(&sb.record_path()),
        vec![b"plan".to_vec(), b"-no-color".to_vec()]
    );
    assert_eq!(out.stdout, b"fake terraform stdout\n");
}

/// The guard value the fake terraform saw, from its recorded environment.
fn recorded_guard(record: &Path) -> String {
    let env = std::fs::read_to_string(format!("{}.env", record.display())).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("BREAKGLASS_GUARD="))
        .expect("no BREAKGLASS_GUARD in the fake's environment")
        .to_string()
}

fn nested_terraform_works(run_nested: &str) {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    let outer = sb.record_path();
    let nested = PathBuf::from(format!("{}.nested", outer.display()));
    sb.set("FAKE_TF_RECORD", &outer);
    // The nested run records elsewhere and runs nothing further.
    sb.set(
        "FAKE_TF_RUN",
        format!(
            "export FAKE_TF_RECORD=\"$FAKE_TF_RECORD.nested\"; unset FAKE_TF_RUN; {run_nested}"
        ),
    );
    let (out, _) = run(&sb, &["apply", "-auto-approve"]);
    assert!(
        out.status.success(),
        "the nested terraform failed: {}",
        stderr(&out)
    );
    assert_eq!(
        recorded_args(&outer),
        vec![b"apply".to_vec(), b"-auto-approve".to_vec()]
    );
    assert_eq!(recorded_args(&nested), vec![b"version".to_vec()]);
    assert_ne!(
        recorded_guard(&outer),
        recorded_guard(&nested),
        "the nested terraform did not go through the shim"
    );
    assert_eq!(
        out.stdout, b"fake terraform stdout\nfake terraform stdout\n",
        "both ran"
    );
}

#[test]
fn terraform_run_by_terraform_through_a_shell_works() {
    // The shell forks: the nested shim is a grandchild of the outer terraform.
    nested_terraform_works("terraform version");
}

#[test]
fn terraform_run_directly_by_terraform_works() {
    // The shell execs (as bash does for `bash -c 'terraform output'`, and as any program
    // starting `terraform` itself does): the nested shim is a direct child of terraform.
    nested_terraform_works("exec terraform version");
}

#[test]
fn a_stale_guard_in_the_environment_is_ignored() {
    // A BREAKGLASS_GUARD exported into a shell (or left by an unrelated process) that
    // names the real terraform must not hide it.
    let mut sb = Sandbox::new();
    let fake = sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let m = std::fs::metadata(&fake).unwrap();
    let shim = std::fs::metadata(support::shim_bin()).unwrap();
    sb.set(
        "BREAKGLASS_GUARD",
        format!("1;{}:{};{}:{}", shim.dev(), shim.ino(), m.dev(), m.ino()),
    );
    let (out, _) = run(&sb, &["plan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"plan".to_vec()]);
}
