//! The doctor's `audit.sink` check: with the role's probe credentials, write a `doctor`
//! event to the trail (itself an audit record, so no delete permission is needed)
//! and, with a topic, call GetTopicAttributes. A failure names the missing permission.

use std::collections::BTreeMap;

use crate::broker::Entry;
use crate::checks::{Check, Status};
use crate::context::Context;
use crate::run::RoleRun;
use crate::sink::aws::{self, Clients, SinkError};
use crate::sink::event::Event;
use crate::sink::Destination;

const ID: &str = "audit.sink";

fn check(status: Status, summary: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id: ID.to_string(),
        status,
        summary: summary.into(),
        fix: fix.into(),
    }
}

/// Runs `audit.sink` for the project `shim` found. `probe` is the run's role as the
/// doctor assumed it (`None` when it could not be).
pub fn run(rt: &tokio::runtime::Runtime, ctx: &Context, probe: Option<&Entry>) -> Check {
    let Some(dest) = ctx.project.as_ref().and_then(Destination::of) else {
        return check(
            Status::Skip,
            "no [audit] table: break-glass use is recorded on this machine only",
            "add [audit] s3 = \"s3://BUCKET/breakglass/audit/\" (and sns_topic_arn) to .breakglass.toml; see README, Team audit trail",
        );
    };
    let (Some(creds), Ok(role)) = (probe, RoleRun::for_command(ctx, "doctor")) else {
        return check(
            Status::Skip,
            format!(
                "{}: skipped: the role could not be assumed",
                dest.describe()
            ),
            "fix role.assume first",
        );
    };
    let result = rt.block_on(async {
        let bound = dest.timeout.max(std::time::Duration::from_secs(5));
        let clients = Clients::new(&dest, creds, bound).await;
        let mut done = Vec::new();
        if let (Some(s3), Some(loc)) = (&clients.s3, &dest.s3) {
            // The doctor's own session, recorded like any use of the role.
            let mut record = role.audit_record().clone();
            record.started = crate::audit::now();
            record.ended = record.started.clone();
            record.role_arn = creds.role_arn.clone();
            record.session_name = creds.session_name.clone();
            record.source_arn = creds.source_arn.clone();
            let ev = Event::new("doctor", None, &record, &BTreeMap::new(), &loc.prefix);
            let call = aws::put(s3, &loc.bucket, &ev.key, &ev.body);
            match tokio::time::timeout(bound, call).await {
                Ok(Ok(_)) => done.push(format!("wrote s3://{}/{}", loc.bucket, ev.key)),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out(bound)),
            }
        }
        if let (Some(sns), Some(topic)) = (&clients.sns, &dest.topic) {
            match tokio::time::timeout(bound, aws::topic_attributes(sns, topic)).await {
                Ok(Ok(())) => done.push(format!("can see {topic}")),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out(bound)),
            }
        }
        Ok(done)
    });
    match result {
        Ok(done) => check(
            Status::Pass,
            format!("as {}: {}", creds.role_arn, done.join("; ")),
            "",
        ),
        Err(e @ SinkError::Denied { .. }) => {
            let permission = match &e {
                SinkError::Denied { permission, .. } => permission.clone(),
                _ => String::new(),
            };
            check(
                Status::Fail,
                e.to_string(),
                format!(
                    "allow {} {permission} in its policy (README: Team audit trail lists every permission the trail needs)",
                    creds.role_arn
                ),
            )
        }
        Err(e) => check(
            Status::Fail,
            e.to_string(),
            format!(
                "check that {} exists and is reachable from here, then run `breakglass doctor` again",
                dest.describe()
            ),
        ),
    }
}

fn timed_out(bound: std::time::Duration) -> SinkError {
    SinkError::TimedOut(humantime::format_duration(bound).to_string())
}
