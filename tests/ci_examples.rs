//! The scheduled readiness drill in `examples/ci/`: the GitHub Actions workflow and
//! the GitLab CI job are valid YAML (read with PyYAML from the test bed), run on a
//! schedule, run only commands that exist (every `breakglass ...` line is accepted by
//! this build's parser; the install script is in this repository), and hand the
//! doctor's JUnit report to the CI's test report.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::*;

/// Reads a YAML file and prints it as JSON, with every `breakglass` command line
/// found in its shell steps (split as the shell would), where their stdout goes, and
/// every script run with bash.
const READ_YAML: &str = r##"
import json, shlex, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
OPS = {"&&", "||", "|", ";", ">", ">>", "<", "&"}
def shell_texts(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("run", "script", "before_script", "after_script"):
                yield from ([v] if isinstance(v, str) else v)
            else:
                yield from shell_texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from shell_texts(v)
commands, scripts, redirects = [], [], []
for text in shell_texts(doc):
    for line in text.splitlines():
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        lex.commenters = "#"
        tokens = list(lex)
        start = True
        for i, t in enumerate(tokens):
            if t in OPS:
                start = True
                continue
            if start and t == "breakglass":
                args = []
                for j, a in enumerate(tokens[i + 1:], i + 1):
                    if a in OPS:
                        if a == ">" and j + 1 < len(tokens):
                            redirects.append(tokens[j + 1])
                        break
                    args.append(a)
                commands.append(args)
            if start and t == "bash" and i + 1 < len(tokens):
                scripts.append(tokens[i + 1])
            start = False
print(json.dumps({"doc": doc, "commands": commands, "scripts": scripts,
                  "redirects": redirects}, default=str))
"##;

fn read(name: &str) -> Value {
    let path = repo().join("examples/ci").join(name);
    let out = std::process::Command::new(python())
        .args(["-c", READ_YAML])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid YAML: {}",
        path.display(),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every `breakglass ARGS` in the file is accepted by this build's parser (checked
/// with `--help` appended, which validates the command, its flags and their values
/// and then prints the help instead of running), the drill runs the doctor with the
/// JUnit format, and every script run with bash is this repository's.
fn check_commands(v: &Value) -> String {
    let commands = v["commands"].as_array().unwrap();
    assert!(!commands.is_empty(), "no breakglass command: {v:#}");
    for c in commands {
        let args: Vec<&str> = c
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let out = std::process::Command::new(breakglass_bin())
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`breakglass {}` is not a valid command: {}",
            args.join(" "),
            stderr(&out)
        );
    }
    assert!(
        commands
            .iter()
            .any(|c| c[0] == "doctor" && c.to_string().contains("\"--format\",\"junit\"")),
        "the drill runs `breakglass doctor --format junit`: {commands:?}"
    );
    let scripts = v["scripts"].as_array().unwrap();
    assert!(!scripts.is_empty(), "breakglass is installed by a script");
    for s in scripts {
        let s = s.as_str().unwrap();
        let rel = &s[s
            .find("shell/")
            .unwrap_or_else(|| panic!("{s} is not in shell/"))..];
        assert!(
            repo().join(rel).is_file(),
            "{s}: no {rel} in this repository"
        );
    }
    let redirects = v["redirects"].as_array().unwrap();
    assert_eq!(redirects.len(), 1, "{redirects:?}");
    redirects[0].as_str().unwrap().to_string()
}

#[test]
fn the_parser_behind_the_check_refuses_what_does_not_exist() {
    // The check above would pass anything if `--help` skipped validation.
    for bad in [
        &["doctor", "--format", "yaml", "--help"][..],
        &["doctr", "--help"][..],
        &["doctor", "--junit", "--help"][..],
    ] {
        let out = std::process::Command::new(breakglass_bin())
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?} was accepted");
    }
}

#[test]
fn github_actions_workflow_runs_the_drill_on_a_schedule() {
    let v = read("github-actions-breakglass-drill.yml");
    let doc = &v["doc"];
    // PyYAML (YAML 1.1) reads the key `on` as true; GitHub reads it as "on".
    let on = if doc["on"].is_null() {
        &doc["true"]
    } else {
        &doc["on"]
    };
    let cron = on["schedule"][0]["cron"].as_str().expect("a cron schedule");
    assert_eq!(cron.split_whitespace().count(), 5, "{cron}");
    let report = check_commands(&v);
    let steps = doc["jobs"]["drill"]["steps"].as_array().unwrap();
    let publish = steps
        .iter()
        .find(|s| s["with"]["report_paths"].is_string())
        .expect("a step publishes the JUnit report");
    assert_eq!(publish["with"]["report_paths"], report.as_str());
    assert_eq!(
        publish["if"], "always()",
        "the report is published when the drill fails"
    );
    assert!(
        steps.iter().all(|s| s["continue-on-error"].is_null()),
        "a failing check must fail the workflow"
    );
}

#[test]
fn gitlab_ci_job_runs_the_drill_on_a_schedule() {
    let v = read("gitlab-ci-breakglass-drill.yml");
    let job = &v["doc"]["breakglass-drill"];
    let rules = job["rules"].to_string();
    assert!(
        rules.contains("$CI_PIPELINE_SOURCE == \\\"schedule\\\""),
        "{rules}"
    );
    let report = check_commands(&v);
    assert_eq!(job["artifacts"]["reports"]["junit"], report.as_str());
    assert_eq!(job["artifacts"]["when"], "always");
    assert!(
        job["allow_failure"].is_null(),
        "a failing check must fail the job"
    );
}

#[test]
fn the_examples_are_the_ones_readme_names() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for f in std::fs::read_dir(repo().join("examples/ci")).unwrap() {
        let name = PathBuf::from(f.unwrap().file_name());
        let name = name.to_str().unwrap();
        assert!(
            readme.contains(&format!("examples/ci/{name}")),
            "README does not mention examples/ci/{name}"
        );
    }
}
