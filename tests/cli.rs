//! The `breakglass` CLI's surface: `--help` on every command, shell completions,
//! `init` from the backend block it can see, and doctor's warning for a chained role
//! asked for more than an hour.

mod kit;
mod support;

use kit::*;
use support::*;

const COMMANDS: &[&str] = &[
    "status",
    "roles",
    "on",
    "off",
    "exec",
    "env",
    "credentials",
    "install",
    "uninstall",
    "logout",
    "recover",
    "init",
    "doctor",
    "log",
    "import",
    "trust-statement",
    "completions",
    "man",
];

#[test]
fn every_command_has_help() {
    let sb = Sandbox::new();
    for c in COMMANDS {
        let out = sb.breakglass(&[c, "--help"]).output().unwrap();
        assert!(out.status.success(), "{c} --help: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("Usage: breakglass") && text.contains(c),
            "{c}: {text}"
        );
    }
    let out = sb.breakglass(&["--help"]).output().unwrap();
    for c in COMMANDS {
        assert!(stdout(&out).contains(c), "top-level help lacks {c}");
    }
    let out = sb.breakglass(&["--version"]).output().unwrap();
    assert_eq!(
        stdout(&out).trim(),
        format!("breakglass {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    let sb = Sandbox::new();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef breakglass"),
        ("fish", "complete -c breakglass"),
    ] {
        let out = sb.breakglass(&["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
        assert!(
            text.contains("doctor") && text.contains("recover"),
            "{shell} completions lack subcommands"
        );
    }
    // The bash script is valid bash.
    let out = sb.breakglass(&["completions", "bash"]).output().unwrap();
    let script = sb.root().join("bg.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn init_reads_the_region_and_role_from_the_backend_block() {
    let sb = Sandbox::new();
    let dir = sb.root().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        r#"terraform {
  backend "s3" {
    bucket = "tfstate"
    key    = "p/terraform.tfstate"
    region = "eu-west-3"
    assume_role = {
      role_arn = "arn:aws:iam::222222222222:role/deploy"
    }
  }
}
"#,
    )
    .unwrap();
    let out = sb
        .breakglass(&["-C", dir.to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.join(".breakglass.toml")).unwrap();
    assert!(text.contains("region = \"eu-west-3\""), "{text}");
    assert!(
        text.contains("arn = \"arn:aws:iam::222222222222:role/deploy\""),
        "{text}"
    );
    assert!(text.contains("enabled = false"), "{text}");
    // And it is a config the tool reads: roles lists the role.
    let out = sb
        .breakglass(&["-C", dir.to_str().unwrap(), "roles", "--json"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("role/deploy"), "{}", stdout(&out));
}

/// moto ignores MFA codes and its GetSessionToken keys fail under IAM enforcement, so
/// this runs with enforcement OFF: it shows doctor's judgement, not moto's policy.
#[test]
fn doctor_warns_when_a_chained_role_asks_for_more_than_an_hour() {
    let moto = Moto::start();
    let bed = moto.setup();
    let mut sb = Sandbox::new();
    sb.aws_as(&moto, &bed.user("alice"));
    sb.set("BREAKGLASS_MFA_TOKEN", "123456");
    let dir = sb.root().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".breakglass.toml"),
        format!(
            "region = \"us-east-1\"\n[role]\narn = \"{}\"\nduration = \"2h\"\nmfa_serial = \"arn:aws:iam::123456789012:mfa/alice\"\n",
            role_arn("deploy")
        ),
    )
    .unwrap();
    let out = sb
        .breakglass(&["-C", dir.to_str().unwrap(), "doctor", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let role = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "role.assume")
        .cloned()
        .unwrap_or_else(|| panic!("no role.assume: {v}"));
    assert_eq!(role["status"], "warn", "{role}");
    assert!(
        role["summary"]
            .as_str()
            .unwrap()
            .contains("over 1h for a chained role"),
        "{role}"
    );
    assert!(
        role["fix"].as_str().unwrap().contains("duration = \"1h\""),
        "{role}"
    );
}
