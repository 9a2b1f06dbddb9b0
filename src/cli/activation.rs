//! `breakglass on --reason TEXT [--for 4h]` and `breakglass off`: switch break-glass
//! mode on for a project until a time, with a reason, and end it early.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::activation::{self, Activation};
use crate::config::{format_duration, parse_duration};
use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::trail::CommandEvent;

/// The longest activation `breakglass on` accepts.
const MAX_ACTIVATION: Duration = Duration::from_secs(24 * 3600);

pub fn on(ctx: &Context, reason: &str, duration: &str) -> Result<i32, Error> {
    let project = ctx.project()?;
    if reason.trim().is_empty() {
        return Err(Error::Message(
            "--reason is empty\n  fix: say why, e.g. --reason \"INC-123 platform down, hotfix\""
                .into(),
        ));
    }
    let d = parse_duration(duration).map_err(|e| {
        Error::Message(format!(
            "--for {duration}: {e}\n  fix: use a duration such as 30m or 4h"
        ))
    })?;
    if d.is_zero() || d > MAX_ACTIVATION {
        return Err(Error::Message(format!(
            "--for {duration} is outside 1s..24h\n  fix: use a duration such as 30m or 4h"
        )));
    }
    let until = SystemTime::now() + d;
    let a = Activation {
        project: project.root.clone(),
        // Rounded up to the second: truncating could cut up to a second off, so a
        // short activation (`--for 1s`) could be over before `on` even returned.
        until: until
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .unwrap_or(0),
        reason: reason.to_string(),
        user: Identity::of(&ctx.env).user,
    };
    activation::activate(&ctx.dirs()?, &a)
        .map_err(|e| Error::Message(format!("cannot record the activation: {e}")))?;
    crate::say!(
        "breakglass: break-glass mode ON for {} until {} ({})\n  reason: {reason}\n  end it early with `breakglass off`",
        project.root.display(),
        a.until_rfc3339(),
        format_duration(d)
    );
    // The team trail and its alert: under the activation just recorded.
    if let Some(event) = CommandEvent::prepare(ctx, "on") {
        let mut extra = std::collections::BTreeMap::new();
        extra.insert("until".to_string(), a.until_rfc3339().into());
        event.send(&extra);
    }
    Ok(0)
}

pub fn off(ctx: &Context) -> Result<i32, Error> {
    let project = ctx.project()?;
    // Credentials for the team trail while the activation (and its reason) still holds.
    let event = CommandEvent::prepare(ctx, "off");
    let was = activation::deactivate(&ctx.dirs()?, &project.root)
        .map_err(|e| Error::Message(format!("cannot end the activation: {e}")))?;
    crate::say!(
        "breakglass: {} for {}",
        if was {
            "break-glass activation ended"
        } else {
            "no activation was on"
        },
        project.root.display()
    );
    if let Some(event) = event {
        event.send(&Default::default());
    }
    Ok(0)
}
