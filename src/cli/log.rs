//! `breakglass log`: this machine's audit trail, the team's (`--team`, from S3), or
//! sending the queued team-trail events now (`--flush`).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit;
use crate::config::parse_duration;
use crate::context::Context;
use crate::error::Error;

/// What `log` was asked for.
pub struct LogArgs {
    pub json: bool,
    pub since: Option<String>,
    pub team: bool,
    pub flush: bool,
}

pub fn run(ctx: &Context, a: LogArgs) -> Result<i32, Error> {
    let since = a.since.as_deref().map(since_duration).transpose()?;
    if a.flush {
        return crate::trail::flush(ctx);
    }
    if a.team {
        return crate::trail::team::show(ctx, since, a.json);
    }
    local(ctx, a.json, since)
}

fn since_duration(s: &str) -> Result<Duration, Error> {
    parse_duration(s).map_err(|e| {
        Error::Message(format!(
            "--since {s}: {e}\n  fix: use a duration such as 24h"
        ))
    })
}

/// This machine's `audit.jsonl`.
fn local(ctx: &Context, json: bool, since: Option<Duration>) -> Result<i32, Error> {
    let path = audit::log_path(&ctx.dirs()?);
    let records = audit::read(&path)
        .map_err(|e| Error::Message(format!("cannot read {}: {e}", path.display())))?;
    let cutoff = since.map(|d| SystemTime::now().checked_sub(d).unwrap_or(UNIX_EPOCH));
    let records: Vec<_> = records
        .into_iter()
        .filter(
            |r| match (cutoff, crate::clock::parse_rfc3339(&r.started)) {
                (Some(c), Some(t)) => t >= c,
                _ => true,
            },
        )
        .collect();
    if json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    if records.is_empty() {
        crate::say!(
            "breakglass: no break-glass runs recorded in {}",
            path.display()
        );
    }
    for r in records {
        let line = format!(
            "{}  {:<9} exit {:<4} {}@{}  {}  {} {}{}",
            r.started,
            r.kind,
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            r.user,
            r.host,
            r.role_arn,
            r.project,
            r.args.join(" "),
            r.reason
                .map(|x| format!("  reason: {x}"))
                .unwrap_or_default()
        );
        // A closed pipe (`| head`) ends the listing quietly.
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(0)
}
