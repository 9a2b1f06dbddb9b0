//! One readiness check's result, as the doctor reports it: an id, pass/warn/fail/skip,
//! one line of why and one of how to fix. Shared by the doctor and the checks other
//! modules own (the team trail's `audit.sink`).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// One check's result. The ids are part of the spec.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: String,
    pub status: Status,
    pub summary: String,
    pub fix: String,
}
