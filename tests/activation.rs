//! `breakglass on` / `off` / `status` / `roles` / `init` against moto with IAM
//! enforcement on: a time-boxed activation turns break-glass mode on for a project whose
//! config says `enabled = false`, carries its reason to the audit trail and to STS, and
//! ends by itself or with `off`.

mod kit;
mod support;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kit::*;
use support::*;

const REASON: &str = "INC-42 platform down";

/// Asserts the last shim run passed straight through: the fake terraform ran with
/// alice's own keys and no credential endpoint, and STS saw alice.
fn assert_passed_through(k: &Kit, out: &std::process::Output) {
    assert_ok(out);
    let env = k.recorded_env();
    assert_eq!(
        env.get("AWS_ACCESS_KEY_ID"),
        Some(&k.bed.user("alice").key),
        "terraform sees alice's own keys"
    );
    assert!(
        !env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{env:?}"
    );
    assert_eq!(printed_arn(out), user_arn("alice"));
    assert!(
        !stderr(out).contains("breakglass:"),
        "a pass-through says nothing: {}",
        stderr(out)
    );
}

/// Asserts the last shim run was under the deploy role.
fn assert_under_deploy(k: &Kit, out: &std::process::Output) {
    assert_ok(out);
    let env = k.recorded_env();
    assert!(!env.contains_key("AWS_ACCESS_KEY_ID"), "{env:?}");
    assert!(
        env.contains_key("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{env:?}"
    );
    assert!(
        printed_arn(out).starts_with(&assumed("deploy")),
        "{}",
        stdout(out)
    );
}

fn status_text(k: &mut Kit, proj: &Path) -> String {
    let out = k.breakglass(&["-C", proj.to_str().unwrap(), "status"]);
    assert_ok(&out);
    stdout(&out)
}

fn mode_line(status: &str) -> &str {
    status
        .lines()
        .find(|l| l.starts_with("mode:"))
        .unwrap_or_else(|| panic!("no mode line: {status}"))
}

fn who_am_i_run(k: &mut Kit, proj: &Path) -> std::process::Output {
    let who = who_am_i_sh();
    k.terraform(proj, &["plan"], &[("FAKE_TF_RUN", who.as_str())])
}

#[test]
fn on_turns_the_mode_on_with_its_reason_and_off_ends_it() {
    let mut k = Kit::new();
    // Every request the tools make goes through a recorder, to see the session tag.
    let proxy = RecordingProxy::start(k.moto.port);
    k.sb.set("AWS_ENDPOINT_URL", proxy.endpoint.clone());
    let proj = k.project("proj", &Kit::deploy_toml(false, ""));
    let p = proj.to_str().unwrap();

    // Off: enabled = false.
    assert!(mode_line(&status_text(&mut k, &proj)).contains("off"));
    let out = who_am_i_run(&mut k, &proj);
    assert_passed_through(&k, &out);

    let out = k.breakglass(&["-C", p, "on", "--reason", REASON, "--for", "1h"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("ON") && stderr(&out).contains(REASON),
        "{}",
        stderr(&out)
    );
    let files: Vec<_> = std::fs::read_dir(k.state_dir().join("active"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
    assert!(
        std::fs::read_to_string(proj.join(".breakglass.toml"))
            .unwrap()
            .contains("enabled = false"),
        "the activation lives outside the repo"
    );
    let status = status_text(&mut k, &proj);
    let line = mode_line(&status);
    assert!(line.contains("ON") && line.contains(REASON), "{status}");

    // A run through the shim now assumes the role, with the reason as a session tag.
    let out = who_am_i_run(&mut k, &proj);
    assert_under_deploy(&k, &out);
    let sent = proxy.sent();
    assert!(sent.contains("Action=AssumeRole"), "no AssumeRole seen");
    assert!(
        sent.contains("breakglass-reason") && sent.contains("INC-42_platform_down"),
        "the reason reaches STS as a session tag"
    );
    let log = k.log();
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["reason"], REASON);
    assert_eq!(log[0]["role_arn"], role_arn("deploy"));
    assert_eq!(log[0]["exit_code"], 0);

    // `off` ends it early.
    let out = k.breakglass(&["-C", p, "off"]);
    assert_ok(&out);
    assert!(stderr(&out).contains("ended"), "{}", stderr(&out));
    assert!(mode_line(&status_text(&mut k, &proj)).contains("off"));
    let out = who_am_i_run(&mut k, &proj);
    assert_passed_through(&k, &out);
    assert_eq!(k.log().len(), 1, "a pass-through is not audited");
    let out = k.breakglass(&["-C", p, "off"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("no activation was on"),
        "{}",
        stderr(&out)
    );
    k.finish();
}

/// The `until` (Unix seconds) of the one activation file.
fn activation_until(k: &Kit) -> u64 {
    let files: Vec<_> = std::fs::read_dir(k.state_dir().join("active"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("until = "))
        .unwrap_or_else(|| panic!("no until in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_one_second_activation_expires_by_itself() {
    let mut k = Kit::new();
    let proj = k.project("proj", &Kit::deploy_toml(false, ""));
    let p = proj.to_str().unwrap().to_string();

    // `on --for 1s`, then at once `status`: ON. On a machine so slow that the two took
    // a second, the check proves nothing, so it is tried again.
    let mut started = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let out = k.breakglass(&["-C", &p, "on", "--reason", REASON, "--for", "1s"]);
        assert_ok(&out);
        // It lasts at least the second asked for.
        let until = activation_until(&k);
        assert!(
            Duration::from_secs(until) >= wall + Duration::from_secs(1),
            "until = {until} is less than 1 s after {wall:?}"
        );
        let status = status_text(&mut k, &proj);
        if t0.elapsed() < Duration::from_millis(900) {
            let line = mode_line(&status);
            assert!(line.contains("ON") && line.contains(REASON), "{status}");
            started = Some(t0);
            break;
        }
    }
    let t0 = started.expect("`on` and `status` never ran within a second");

    // ~2 s later it is over: status says off and terraform runs as alice herself.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(t0.elapsed()));
    assert!(mode_line(&status_text(&mut k, &proj)).contains("off"));
    let out = who_am_i_run(&mut k, &proj);
    assert_passed_through(&k, &out);
    assert!(k.log().is_empty());
    k.finish();
}

#[test]
fn on_refuses_an_empty_reason_and_durations_outside_1s_to_24h() {
    let sb = Sandbox::new();
    let proj = sb.root().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::write(proj.join(".breakglass.toml"), Kit::deploy_toml(false, "")).unwrap();
    let p = proj.to_str().unwrap();
    for args in [
        ["--reason", " ", "--for", "1h"],
        ["--reason", REASON, "--for", "25h"],
        ["--reason", REASON, "--for", "0s"],
        ["--reason", REASON, "--for", "soon"],
    ] {
        let mut all = vec!["-C", p, "on"];
        all.extend(args);
        let out = sb.breakglass(&all).output().unwrap();
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("fix:"), "{}", stderr(&out));
    }
    let state = std::path::PathBuf::from(sb.env["XDG_STATE_HOME"].clone());
    assert!(
        std::fs::read_dir(state.join("breakglass/active"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "nothing was activated"
    );
    let out = sb.breakglass(&["-C", p, "status"]).output().unwrap();
    assert!(
        stdout(&out).contains("mode:        off"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn status_names_the_config_the_mode_the_role_and_the_cached_credentials() {
    let mut k = Kit::new();
    let extra = format!("[workspaces.prod]\narn = \"{}\"\n", role_arn("prod"));
    let proj = k.project("proj", &Kit::deploy_toml(true, &extra));
    let config = proj.join(".breakglass.toml");

    let status = status_text(&mut k, &proj);
    assert!(
        status.contains(&format!("config:      {}", config.display())),
        "{status}"
    );
    let mode = mode_line(&status);
    assert!(
        mode.contains("ON") && mode.contains("enabled = true"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "role:        {} (from [role], workspace `default`)",
            role_arn("deploy")
        )),
        "{status}"
    );
    let fake = k.sb.real_dir.join("terraform");
    assert!(
        status.contains(&format!("terraform:   {}", fake.display())),
        "{status}"
    );
    assert!(status.contains("credentials: none cached"), "{status}");
    let out = k.breakglass(&["-C", proj.to_str().unwrap(), "status", "--prompt"]);
    assert_eq!(stdout(&out).trim(), "deploy");

    // After a run, its credentials are cached.
    let out = k.terraform(&proj, &["plan"], &[]);
    assert_ok(&out);
    let status = status_text(&mut k, &proj);
    assert!(status.contains("credentials: cached until"), "{status}");
    let out = k.breakglass(&["-C", proj.to_str().unwrap(), "status", "--prompt"]);
    let prompt = stdout(&out);
    assert!(
        prompt.starts_with("deploy ") && prompt.trim().ends_with('m'),
        "{prompt}"
    );

    // The workspace picks the role.
    let mut cmd = k.sb.breakglass(&["-C", proj.to_str().unwrap(), "status"]);
    cmd.env("TF_WORKSPACE", "prod");
    let out = k.run(cmd);
    assert!(
        stdout(&out).contains(&format!(
            "role:        {} (from [workspaces.prod], workspace `prod`)",
            role_arn("prod")
        )),
        "{}",
        stdout(&out)
    );

    // BREAKGLASS=0 forces it off.
    let mut cmd = k.sb.breakglass(&["-C", proj.to_str().unwrap(), "status"]);
    cmd.env("BREAKGLASS", "0");
    let out = k.run(cmd);
    assert!(mode_line(&stdout(&out)).contains("off"), "{}", stdout(&out));

    // Outside any project.
    let elsewhere = k.dir("elsewhere", &[]);
    let status = status_text(&mut k, &elsewhere);
    assert!(status.contains("config:      none at or above"), "{status}");
    assert!(mode_line(&status).contains("off"), "{status}");
    assert!(status.contains("role:        none"), "{status}");
    k.finish();
}

#[test]
fn roles_json_lists_every_mapping() {
    let sb = Sandbox::new();
    let proj = sb.root().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let toml = format!(
        "region = \"us-east-1\"\n[role]\narn = \"{}\"\nread_arn = \"{}\"\n\n[workspaces.prod]\narn = \"{}\"\n\n[workspaces.staging]\nduration = \"30m\"\n\n[stacks.\"network/*\"]\narn = \"{}\"\n",
        role_arn("deploy"),
        role_arn("read"),
        role_arn("prod"),
        role_arn("network")
    );
    std::fs::write(proj.join(".breakglass.toml"), toml).unwrap();
    let out = sb
        .breakglass(&["-C", proj.to_str().unwrap(), "roles", "--json"])
        .output()
        .unwrap();
    assert_ok(&out);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([
            {"mapping": "[role]", "stack": null, "workspace": null,
             "arn": role_arn("deploy"), "read_arn": role_arn("read")},
            {"mapping": "[workspaces.prod]", "stack": null, "workspace": "prod",
             "arn": role_arn("prod"), "read_arn": null},
            {"mapping": "[workspaces.staging]", "stack": null, "workspace": "staging",
             "arn": null, "read_arn": null},
            {"mapping": "[stacks.\"network/*\"]", "stack": "network/*", "workspace": null,
             "arn": role_arn("network"), "read_arn": null},
        ])
    );
    // The table says the same for people.
    let out = sb
        .breakglass(&["-C", proj.to_str().unwrap(), "roles"])
        .output()
        .unwrap();
    assert_ok(&out);
    let table = stdout(&out);
    for name in ["deploy", "read", "prod", "network"] {
        assert!(table.contains(&role_arn(name)), "{table}");
    }
    assert!(table.contains("(inherits [role])"), "{table}");
}

#[test]
fn init_writes_a_config_that_loads_and_works() {
    let mut k = Kit::new();
    let proj = k.dir("proj", &[("main.tf", S3_BACKEND)]);
    let p = proj.to_str().unwrap();
    let deploy = role_arn("deploy");
    let out = k.breakglass(&["-C", p, "init", "--role", &deploy, "--region", "us-east-1"]);
    assert_ok(&out);
    let config = proj.join(".breakglass.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains(&format!("arn = \"{deploy}\"")), "{text}");
    assert!(text.contains("region = \"us-east-1\""), "{text}");

    let status = status_text(&mut k, &proj);
    assert!(status.contains(&config.display().to_string()), "{status}");
    assert!(mode_line(&status).contains("off"), "not enabled: {status}");
    assert!(
        status.contains(&format!("role:        {deploy}")),
        "{status}"
    );

    // The written config is usable as is: exec assumes its role.
    let who = who_am_i_sh();
    let out = k.breakglass(&["-C", p, "exec", "--", "sh", "-c", &who]);
    assert_ok(&out);
    assert!(printed_arn(&out).starts_with(&assumed("deploy")));

    // It is not overwritten without --force; --enable switches the mode on.
    let out = k.breakglass(&["-C", p, "init", "--role", &deploy, "--enable"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = k.breakglass(&[
        "-C",
        p,
        "init",
        "--role",
        &deploy,
        "--region",
        "us-east-1",
        "--enable",
        "--force",
    ]);
    assert_ok(&out);
    assert!(mode_line(&status_text(&mut k, &proj)).contains("ON"));
    k.finish();
}
