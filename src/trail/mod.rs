//! The team trail's commands, which need a role run: the events of `on`, `off` and
//! `logout`, `breakglass log --flush`, the team view (`log --team`) and the doctor's
//! `audit.sink` check. The delivery itself (events, queue, S3/SNS) is [`crate::sink`].

pub mod check;
pub mod team;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::audit::Record;
use crate::broker::Entry;
use crate::context::Context;
use crate::error::Error;
use crate::run::{self, RoleRun};
use crate::sink::{Destination, Trail};

/// An event of a command (`on`, `off`, `logout`), prepared while its credentials can
/// be had: `off` prepares before the activation ends, `logout` before the cache is
/// cleared.
pub struct CommandEvent {
    kind: String,
    trail: Trail,
    record: Record,
    creds: Option<Entry>,
}

impl CommandEvent {
    /// For `on` and `off`: credentials like any run (cached, else STS; a prompt only
    /// when MFA needs a code). `None` when the project has no `[audit]`.
    pub fn prepare(ctx: &Context, kind: &str) -> Option<CommandEvent> {
        Self::prepare_with(ctx, kind, |role| {
            run::obtain(&role.broker, &mut None).map(|(entry, _)| entry)
        })
    }

    /// For `logout`: only credentials already cached; no prompt, no STS call.
    pub fn prepare_cached(ctx: &Context, kind: &str) -> Option<CommandEvent> {
        Self::prepare_with(ctx, kind, |role| {
            role.broker
                .cached_any()
                .ok_or_else(|| Error::Message("no cached credentials for the role".to_string()))
        })
    }

    fn prepare_with(
        ctx: &Context,
        kind: &str,
        creds: impl FnOnce(&RoleRun) -> Result<Entry, Error>,
    ) -> Option<CommandEvent> {
        let project = ctx.project.as_ref()?;
        Destination::of(project)?;
        let role = match RoleRun::for_command(ctx, kind) {
            Ok(r) => r,
            Err(e) => {
                crate::say!("breakglass: warning: the `{kind}` event was not recorded in the team audit trail: {e}");
                return None;
            }
        };
        let trail = Trail::for_project(project, &ctx.dirs().ok()?)?;
        let creds = match creds(&role) {
            Ok(c) => Some(c),
            Err(e) => {
                crate::say!(
                    "breakglass: the `{kind}` event for the team audit trail is queued in {}: no role credentials ({})\n  the next break-glass run or `breakglass log --flush` sends it",
                    trail.queue.dir().display(),
                    e.to_string().lines().next().unwrap_or("")
                );
                None
            }
        };
        let mut record = role.audit_record().clone();
        record.source_arn = creds.as_ref().and_then(|c| c.source_arn.clone());
        Some(CommandEvent {
            kind: kind.to_string(),
            trail,
            record,
            creds,
        })
    }

    /// Writes the event (and `on`'s alert), waiting at most the bound.
    pub fn send(mut self, extra: &BTreeMap<String, Value>) {
        let now = crate::audit::now();
        self.record.started = now.clone();
        self.record.ended = now;
        self.trail
            .post(&self.kind, &self.record, extra, self.creds.as_ref());
        self.trail.wait();
    }
}

/// How long `breakglass log --flush` waits for the queue.
const FLUSH_LIMIT: Duration = Duration::from_secs(60);

/// `breakglass log --flush`: sends the project's queued events and alerts now.
pub fn flush(ctx: &Context) -> Result<i32, Error> {
    let project = ctx.project()?;
    let dirs = ctx.dirs()?;
    let Some(mut trail) = Trail::for_project(project, &dirs) else {
        return Err(Error::Message(format!(
            "{} has no [audit] table, so there is no team audit trail to send to\n  fix: add [audit] s3 = \"s3://BUCKET/breakglass/audit/\" to .breakglass.toml (README: Team audit trail)",
            project.files[0].display()
        )));
    };
    let queued = trail.queue.paths().len();
    if queued == 0 {
        crate::say!(
            "breakglass: nothing is queued for {}",
            trail.dest.describe()
        );
        return Ok(0);
    }
    let role = RoleRun::for_command(ctx, "flush")?;
    let (creds, _) = run::obtain(&role.broker, &mut None)?;
    let progress = trail.flush_all(&creds, FLUSH_LIMIT);
    let left = trail.queue.paths().len();
    crate::say!(
        "breakglass: sent {} queued event(s) to {} ({} object(s), {} alert(s)); {left} left",
        progress.flushed,
        trail.dest.describe(),
        progress.objects,
        progress.alerts,
    );
    if left > 0 {
        let why = progress
            .error
            .map_or_else(|| "no answer in time".to_string(), |e| e.to_string());
        return Err(Error::Message(format!(
            "{left} event(s) are still queued in {}: {why}\n  fix: {}",
            trail.queue.dir().display(),
            crate::sink::fix_for(&why)
        )));
    }
    Ok(0)
}
