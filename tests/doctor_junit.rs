//! `breakglass doctor --format junit`, read by a JUnit library (Python's junitparser,
//! pinned in the test bed) the way a CI system reads it: one test case per check, named
//! by the check id; a failed check fails, a warning passes with a note, a skip is
//! skipped; the exit code is the human output's. Against moto with IAM enforcement on.

mod kit;
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use kit::*;
use support::*;

/// Prints the report as junitparser sees it, as JSON.
const READ_JUNIT: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromstring(sys.stdin.buffer.read())
suites = []
for suite in xml:
    cases = []
    for case in suite:
        failure = [r for r in case.result if isinstance(r, Failure)]
        cases.append({
            "name": case.name,
            "classname": case.classname,
            "passed": case.is_passed,
            "skipped": case.is_skipped,
            "failure": failure[0].message if failure else None,
            "failure_text": failure[0].text if failure else None,
            "out": case.system_out,
        })
    suites.append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                   "errors": suite.errors, "skipped": suite.skipped,
                   "properties": {p.name: p.value for p in suite.properties()}, "cases": cases})
print(json.dumps({"tests": xml.tests, "failures": xml.failures, "suites": suites}))
"#;

fn junitparser(k: &mut Kit, xml: &[u8]) -> Value {
    let mut child =
        k.sb.command(python())
            .args(["-c", READ_JUNIT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    child.stdin.take().unwrap().write_all(xml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).expect("the reader printed no JSON")
}

fn junit(k: &mut Kit, dir: &Path) -> (Output, Value) {
    let out = k.breakglass(&["-C", dir.to_str().unwrap(), "doctor", "--format", "junit"]);
    let report = junitparser(k, &out.stdout);
    (out, report)
}

/// The JUnit report says what `--json` says, check by check.
fn assert_matches(report: &Value, checks: &[Value], project: &Path) {
    let suites = report["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 1, "{report:#}");
    let suite = &suites[0];
    assert_eq!(suite["name"], "breakglass doctor");
    assert_eq!(
        suite["properties"]["project"].as_str(),
        Some(project.to_str().unwrap()),
        "{suite:#}"
    );
    let cases = suite["cases"].as_array().unwrap();
    assert_eq!(cases.len(), checks.len(), "one case per check: {report:#}");
    let count = |s: &str| checks.iter().filter(|c| c["status"] == s).count();
    assert_eq!(suite["tests"], checks.len());
    assert_eq!(suite["failures"], count("fail"), "{suite:#}");
    assert_eq!(suite["skipped"], count("skip"), "{suite:#}");
    assert_eq!(suite["errors"], 0);
    assert_eq!(report["failures"], count("fail"));
    for (case, c) in cases.iter().zip(checks) {
        assert_eq!(case["name"], c["id"], "named by the check id: {case}");
        assert_eq!(case["classname"], "breakglass.doctor");
        let summary = c["summary"].as_str().unwrap();
        let fix = c["fix"].as_str().unwrap();
        match c["status"].as_str().unwrap() {
            "pass" => {
                assert_eq!(case["passed"], true, "{case} {c}");
                assert_eq!(case["out"], summary, "{case}");
            }
            "warn" => {
                assert_eq!(case["passed"], true, "a warning passes: {case} {c}");
                let out = case["out"].as_str().unwrap();
                assert!(
                    out.starts_with("WARN: ") && out.contains(summary) && out.contains(fix),
                    "with a note saying why and how to fix: {case} {c}"
                );
            }
            "fail" => {
                assert_eq!(case["passed"], false, "{case}");
                assert_eq!(case["failure"], summary, "{case}");
                assert!(
                    case["failure_text"].as_str().unwrap().contains(fix),
                    "{case}"
                );
            }
            "skip" => assert_eq!(case["skipped"], true, "{case} {c}"),
            s => panic!("status {s}"),
        }
    }
}

#[test]
fn junit_report_has_one_case_per_check_and_fails_like_the_drill() {
    let mut k = Kit::new();
    let toml = Kit::deploy_toml(false, "");
    let proj = k.dir(
        "proj",
        &[(".breakglass.toml", &toml), ("main.tf", S3_BACKEND)],
    );

    // The bucket was never versioned: state.versioning fails, replication warns.
    let (_, checks) = k.doctor(&proj);
    let (out, report) = junit(&mut k, &proj);
    assert_eq!(code(&out), 1, "a failing check fails the pipeline");
    assert_matches(&report, &checks, &proj);
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    let by_id = |id: &str| {
        cases
            .iter()
            .find(|c| c["name"] == id)
            .unwrap_or_else(|| panic!("no case {id}: {cases:#?}"))
    };
    assert_eq!(by_id("state.versioning")["passed"], false);
    assert!(by_id("state.versioning")["failure_text"]
        .as_str()
        .unwrap()
        .contains("put-bucket-versioning"));
    assert_eq!(by_id("state.replication")["passed"], true);
    assert_eq!(by_id("role.assume")["passed"], true);

    // Versioning on: nothing fails, exit 0, and no failure in the report.
    k.moto.op(&k.bed, &["versioning", "tfstate", "Enabled"]);
    let (_, checks) = k.doctor(&proj);
    let (out, report) = junit(&mut k, &proj);
    assert_eq!(code(&out), 0, "{report:#}");
    assert_eq!(report["failures"], 0);
    assert_matches(&report, &checks, &proj);
    k.finish();
}

#[test]
fn junit_report_without_a_config_fails_on_config_valid() {
    let mut k = Kit::new();
    let dir = k.dir("empty", &[("main.tf", "")]);
    let (out, report) = junit(&mut k, &dir);
    assert_eq!(code(&out), 1);
    let cases = report["suites"][0]["cases"].as_array().unwrap();
    let config = cases.iter().find(|c| c["name"] == "config.valid").unwrap();
    assert_eq!(config["passed"], false, "{config}");
    assert!(
        config["failure_text"]
            .as_str()
            .unwrap()
            .contains("breakglass init"),
        "{config}"
    );
    // `--json` and `--format` together are refused by the parser.
    let out = k.breakglass(&[
        "-C",
        dir.to_str().unwrap(),
        "doctor",
        "--json",
        "--format",
        "junit",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    k.finish();
}
