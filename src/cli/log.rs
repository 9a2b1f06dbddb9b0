//! `breakglass log [--json] [--since 24h]`: the local audit trail of break-glass runs.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::audit;
use crate::config::parse_duration;
use crate::context::Context;
use crate::error::Error;
use crate::outln;

pub fn run(ctx: &Context, json: bool, since: Option<String>) -> Result<i32, Error> {
    let path = audit::log_path(&ctx.dirs()?);
    let records = audit::read(&path)
        .map_err(|e| Error::Message(format!("cannot read {}: {e}", path.display())))?;
    let cutoff = match since {
        Some(s) => {
            let d = parse_duration(&s).map_err(|e| {
                Error::Message(format!(
                    "--since {s}: {e}\n  fix: use a duration such as 24h"
                ))
            })?;
            Some(SystemTime::now().checked_sub(d).unwrap_or(UNIX_EPOCH))
        }
        None => None,
    };
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
        outln!(
            "{}",
            serde_json::to_string_pretty(&records).unwrap_or_default()
        );
        return Ok(0);
    }
    if records.is_empty() {
        crate::say!(
            "breakglass: no break-glass runs recorded in {}",
            path.display()
        );
    }
    for r in records {
        outln!(
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
    }
    Ok(0)
}
