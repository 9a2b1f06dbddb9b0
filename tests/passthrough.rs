//! Capability: the `terraform` shim is invisible when break-glass mode is off.
//!
//! Through the shim, the real terraform gets exactly the arguments typed, its exit
//! status, stdout and stderr come back unchanged, shell completion and the commands that
//! never need credentials pass through in every mode, the real binary is found by name,
//! by `BREAKGLASS_TERRAFORM` or by the config's `terraform` key, and the shim's own
//! failures (a bad `BREAKGLASS` value, no real terraform) exit 125 with a message
//! saying what to do.

mod support;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

use support::{recorded_args, stderr, write_config, Sandbox};

/// Runs `terraform ARGS` twice in `dir`: through the shim and by calling the fake
/// directly, with the same environment. Returns (shim, direct).
fn shim_and_direct(sb: &Sandbox, dir: &Path, args: &[&OsStr]) -> (Output, Output) {
    let through = sb
        .command(sb.shims.join("terraform"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let direct = sb
        .command(sb.real_dir.join("terraform"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (through, direct)
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Asserts the two runs are indistinguishable: status, stdout and stderr.
fn assert_same(through: &Output, direct: &Output) {
    assert_eq!(
        through.status.into_raw(),
        direct.status.into_raw(),
        "exit status differs; shim stderr: {}",
        stderr(through)
    );
    assert_eq!(through.stdout, direct.stdout, "stdout differs");
    assert_eq!(
        through.stderr,
        direct.stderr,
        "stderr differs: shim printed {:?}",
        stderr(through)
    );
}

#[test]
fn arguments_reach_terraform_byte_for_byte() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    std::fs::create_dir_all(sb.root().join("sub dir")).unwrap();
    let args: Vec<&OsStr> = vec![
        OsStr::new("-chdir=sub dir"),
        OsStr::new("plan"),
        OsStr::new(""),
        OsStr::new("an argument  with spaces "),
        OsStr::from_bytes(b"-var=name=\xff\xfe\x80not-utf8"),
        OsStr::new("--"),
        OsStr::new("-chdir=after-the-subcommand"),
        OsStr::new("'quoted' \"and\" $dollar `tick` \\ back\nnewline"),
    ];
    let out = sb
        .command(sb.shims.join("terraform"))
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got = recorded_args(&sb.record_path());
    let want: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    assert_eq!(got, want);
}

#[test]
fn no_arguments_at_all() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let out = sb.terraform(sb.root(), &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), Vec::<Vec<u8>>::new());
}

#[test]
fn exit_codes_come_back_unchanged() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    for code in [0, 1, 2, 3, 255] {
        sb.set("FAKE_TF_EXIT", code.to_string());
        let out = sb.terraform(sb.root(), &["plan"]).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    }
}

#[test]
fn a_signal_death_stays_a_signal_death() {
    // Off, the shim execs terraform: the process the caller waits for *is* terraform,
    // so a terraform killed by a signal is seen as killed by that signal (not 128+N).
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    for (name, number) in [("TERM", libc::SIGTERM), ("INT", libc::SIGINT)] {
        sb.set("FAKE_TF_SIGNAL", name);
        let (through, direct) = shim_and_direct(&sb, sb.root(), &[OsStr::new("apply")]);
        assert_eq!(direct.status.signal(), Some(number), "the fake did not die");
        assert_eq!(
            through.status.signal(),
            Some(number),
            "{name}: {:?}, stderr: {}",
            through.status,
            stderr(&through)
        );
        assert_eq!(through.status.code(), None);
    }
}

#[test]
fn output_is_identical_with_no_config() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_EXIT", "2");
    let args = os(&["plan", "-out=tfplan"]);
    let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let (through, direct) = shim_and_direct(&sb, sb.root(), &args);
    assert_eq!(direct.stdout, b"fake terraform stdout\n");
    assert_eq!(direct.stderr, b"fake terraform stderr\n");
    assert_same(&through, &direct);
}

#[test]
fn output_is_identical_with_a_disabled_config() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_EXIT", "1");
    let proj = sb.root().join("proj");
    write_config(
        &proj,
        "enabled = false\n\n[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\n",
    );
    let deep = proj.join("stacks/network");
    std::fs::create_dir_all(&deep).unwrap();
    for dir in [&proj, &deep] {
        let (through, direct) = shim_and_direct(&sb, dir, &[OsStr::new("apply")]);
        assert_same(&through, &direct);
    }
}

#[test]
fn shell_completion_is_pure_pass_through_even_when_forced_on() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let proj = sb.root().join("proj");
    write_config(
        &proj,
        "enabled = true\n\n[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\n",
    );
    sb.set("BREAKGLASS", "1")
        .set("COMP_LINE", "terraform pl")
        .set("COMP_POINT", "12");
    let (through, direct) = shim_and_direct(&sb, &proj, &[OsStr::new("plan")]);
    assert_same(&through, &direct);
    assert_eq!(recorded_args(&sb.record_path()), vec![b"plan".to_vec()]);

    // Even a value the shim would refuse is not its business while completing.
    sb.set("BREAKGLASS", "maybe");
    let (through, direct) = shim_and_direct(&sb, &proj, &[OsStr::new("apply")]);
    assert_same(&through, &direct);
}

#[test]
fn commands_without_credentials_pass_through_when_on() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let proj = sb.root().join("proj");
    write_config(
        &proj,
        "enabled = true\n\n[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\n",
    );
    sb.set("BREAKGLASS", "1");
    for args in [
        &["version"][..],
        &["-version"],
        &["fmt"],
        &["fmt", "-recursive", "-check"],
        &["-help"],
        &["plan", "-help"],
        &["-chdir=.", "version"],
    ] {
        let _ = std::fs::remove_file(sb.record_path());
        let args = os(args);
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let (through, direct) = shim_and_direct(&sb, &proj, &args);
        assert_same(&through, &direct);
        let want: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        assert_eq!(recorded_args(&sb.record_path()), want);
    }

    // The control: a command that needs credentials does not pass through.
    let _ = std::fs::remove_file(sb.record_path());
    let out = sb.terraform(&proj, &["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        !sb.record_path().exists(),
        "terraform ran in break-glass mode"
    );
}

#[test]
fn an_unknown_breakglass_value_is_refused() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    sb.set("BREAKGLASS", "maybe");
    let out = sb.terraform(sb.root(), &["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(err.contains("BREAKGLASS=maybe"), "{err}");
    assert!(
        err.contains("BREAKGLASS=0"),
        "the message says how to fix it: {err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!sb.record_path().exists(), "terraform ran anyway");
}

#[test]
fn breakglass_terraform_names_the_real_binary() {
    let mut sb = Sandbox::new();
    // Nothing called `terraform` on PATH but the shim.
    let tools = sb.root().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    support::write_exe(&tools.join("tf-1.9"), support::FAKE_TERRAFORM);
    sb.set("FAKE_TF_RECORD", sb.record_path());

    let out = sb.terraform(sb.root(), &["plan"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(125),
        "control: no terraform on PATH"
    );

    // An absolute path.
    sb.set("BREAKGLASS_TERRAFORM", tools.join("tf-1.9"));
    let out = sb.terraform(sb.root(), &["plan", "-x"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        recorded_args(&sb.record_path()),
        vec![b"plan".to_vec(), b"-x".to_vec()]
    );

    // A relative path, taken from the working directory.
    std::fs::remove_file(sb.record_path()).unwrap();
    sb.set("BREAKGLASS_TERRAFORM", "tools/tf-1.9");
    let out = sb.terraform(sb.root(), &["apply"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"apply".to_vec()]);

    // A name, looked up on PATH.
    std::fs::remove_file(sb.record_path()).unwrap();
    support::write_exe(
        &sb.real_dir.join("terraform-pinned"),
        support::FAKE_TERRAFORM,
    );
    sb.set("BREAKGLASS_TERRAFORM", "terraform-pinned");
    let out = sb.terraform(sb.root(), &["init"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"init".to_vec()]);

    // A path that is not there is an error that says so.
    sb.set("BREAKGLASS_TERRAFORM", tools.join("missing"));
    let out = sb.terraform(sb.root(), &["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("missing"), "{}", stderr(&out));
}

#[test]
fn breakglass_terraform_pointing_at_the_shim_is_refused() {
    let mut sb = Sandbox::new();
    sb.fake_terraform();
    sb.set("BREAKGLASS_TERRAFORM", sb.shims.join("terraform"));
    let out = sb.terraform(sb.root(), &["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("is this breakglass shim"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_config_terraform_key_is_honoured() {
    let mut sb = Sandbox::new();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    let proj = sb.root().join("proj");
    let sub = proj.join("stacks/app");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(proj.join("bin")).unwrap();

    // A name on PATH.
    support::write_exe(&sb.real_dir.join("terraform-1.9"), support::FAKE_TERRAFORM);
    write_config(&proj, "enabled = false\nterraform = \"terraform-1.9\"\n");
    let out = sb.terraform(&sub, &["plan"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"plan".to_vec()]);

    // A relative path: from the config's directory, not from where terraform runs.
    std::fs::remove_file(sb.record_path()).unwrap();
    support::write_exe(&proj.join("bin/terraform"), support::FAKE_TERRAFORM);
    write_config(&proj, "enabled = false\nterraform = \"bin/terraform\"\n");
    let out = sb.terraform(&sub, &["apply"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"apply".to_vec()]);

    // BREAKGLASS_TERRAFORM wins over the config.
    std::fs::remove_file(sb.record_path()).unwrap();
    write_config(&proj, "terraform = \"bin/missing\"\n");
    sb.set("BREAKGLASS_TERRAFORM", sb.real_dir.join("terraform-1.9"));
    let out = sb.terraform(&sub, &["show"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(recorded_args(&sb.record_path()), vec![b"show".to_vec()]);

    // And without it, the config's missing path is an error naming the path.
    sb.unset("BREAKGLASS_TERRAFORM");
    let out = sb.terraform(&sub, &["show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains(&format!("{}", proj.join("bin/missing").display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_tofu_link_runs_tofu() {
    let mut sb = Sandbox::new();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    // A `terraform` that must not be chosen, and the `tofu` that must.
    support::write_exe(&sb.real_dir.join("terraform"), "#!/bin/sh\nexit 42\n");
    support::write_exe(&sb.real_dir.join("tofu"), support::FAKE_TERRAFORM);
    let out = sb
        .command(sb.shims.join("tofu"))
        .args(["plan", "-lock=false"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert_eq!(
        recorded_args(&sb.record_path()),
        vec![b"plan".to_vec(), b"-lock=false".to_vec()]
    );
}

#[test]
fn no_real_terraform_is_a_clear_error() {
    let mut sb = Sandbox::new();
    sb.set("FAKE_TF_RECORD", sb.record_path());
    // Only the shim directory and an empty directory: no system terraform can sneak in.
    let path = std::env::join_paths([&sb.shims, &sb.real_dir]).unwrap();
    sb.set("PATH", path);
    let out = sb.terraform(sb.root(), &["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(err.contains("no real `terraform`"), "{err}");
    let searched = format!("{}:{}", sb.shims.display(), sb.real_dir.display());
    assert!(err.contains(&searched), "lists the PATH searched: {err}");
    assert!(err.contains("BREAKGLASS_TERRAFORM="), "{err}");
    assert!(out.stdout.is_empty());

    // Same for `tofu`, which names tofu.
    let out = sb
        .command(sb.shims.join("tofu"))
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("no real `tofu`"), "{}", stderr(&out));
}
