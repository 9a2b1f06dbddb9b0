//! `breakglass doctor --format human|json|junit`: the same checks printed for people,
//! for scripts, or as JUnit XML for CI (one test case per check, named by its id; a
//! warning passes with a note, a failure fails, a skip is skipped).

use std::time::{Duration, SystemTime};

use crate::doctor::{self, Check, Status};
use crate::junit::{Case, Outcome, Suite};

/// How `doctor` prints its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorFormat {
    /// One line per check, with how to fix it.
    Human,
    /// `{"checks":[{"id","status","summary","fix"}]}`.
    Json,
    /// JUnit XML, for CI test reports.
    Junit,
}

/// Prints `checks` on stdout in `format`.
pub fn print(
    format: DoctorFormat,
    checks: &[Check],
    project: &str,
    started: SystemTime,
    time: Duration,
) {
    match format {
        DoctorFormat::Human => doctor::print_human(checks),
        DoctorFormat::Json => crate::outln!("{}", serde_json::json!({ "checks": checks })),
        DoctorFormat::Junit => {
            crate::out::stdout_bytes(junit(checks, project, started, time).to_xml().as_bytes())
        }
    }
}

/// The checks as one JUnit test suite.
pub fn junit(checks: &[Check], project: &str, started: SystemTime, time: Duration) -> Suite {
    let detail = |c: &Check| {
        if c.fix.is_empty() {
            c.summary.clone()
        } else {
            format!("{}\nfix: {}", c.summary, c.fix)
        }
    };
    let cases = checks
        .iter()
        .map(|c| {
            let (outcome, note) = match c.status {
                Status::Pass => (Outcome::Passed, Some(c.summary.clone())),
                Status::Warn => (Outcome::Passed, Some(format!("WARN: {}", detail(c)))),
                Status::Fail => (
                    Outcome::Failed {
                        message: c.summary.clone(),
                        text: detail(c),
                    },
                    None,
                ),
                Status::Skip => (
                    Outcome::Skipped {
                        message: c.summary.clone(),
                    },
                    None,
                ),
            };
            Case {
                classname: "breakglass.doctor".to_string(),
                name: c.id.clone(),
                outcome,
                system_out: note,
            }
        })
        .collect();
    Suite {
        name: "breakglass doctor".to_string(),
        timestamp: started,
        time,
        properties: vec![("project".to_string(), project.to_string())],
        cases,
    }
}
