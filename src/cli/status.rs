//! `breakglass status [--prompt]`: which config applies, whether the mode is on and
//! why, the role, the identity source, the real terraform and the cached credentials.

use std::time::SystemTime;

use crate::broker::Broker;
use crate::config::format_duration;
use crate::context::Context;
use crate::error::Error;
use crate::outln;

pub fn run(ctx: &Context, prompt: bool) -> Result<i32, Error> {
    // Inside a break-glass run for another role, say so instead of failing.
    let mut refused = None;
    let decided =
        crate::shim::check_nested(ctx, false).and_then(|()| crate::shim::decide_mode(ctx));
    let mode = match decided {
        Ok(m) => m,
        Err(crate::error::Error::Nested(e)) => {
            if prompt {
                return Ok(0);
            }
            refused = Some(format!(
                "refused here: inside the break-glass run for {} ({}); `exit` it first",
                e.parent_role, e.parent_root
            ));
            crate::mode::Mode {
                on: false,
                reason: crate::mode::Reason::Nested,
            }
        }
        Err(e) => return Err(e),
    };
    let target = ctx.project.as_ref().map(|_| ctx.target());
    let cached = match (&target, ctx.project.as_ref(), ctx.dirs.as_ref()) {
        (Some(Ok(t)), Some(p), Some(d)) => {
            let reason = crate::run::reason(ctx, &mode);
            Broker::new(
                crate::policy::request(p, t, false, reason.as_deref(), &ctx.env),
                d,
            )
            .cached_any()
        }
        _ => None,
    };
    let failed_over = crate::state::marker::failed_over(&ctx.workdir);
    if prompt {
        let over = if failed_over { " FAILED OVER" } else { "" };
        if let Some(Ok(t)) = &target {
            let name = t.arn.rsplit('/').next().unwrap_or(&t.arn);
            match &cached {
                Some(e) => outln!(
                    "{name} {}m{over}",
                    e.credentials.remaining(SystemTime::now()).as_secs() / 60
                ),
                None => outln!("{name}{over}"),
            }
        }
        return Ok(0);
    }
    match &ctx.project {
        Some(p) => outln!(
            "config:      {}",
            p.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
        None => outln!("config:      none at or above {}", ctx.workdir.display()),
    }
    match &refused {
        Some(why) => outln!("mode:        {why}"),
        None => outln!(
            "mode:        {} ({})",
            if mode.on { "ON" } else { "off" },
            mode.reason
        ),
    }
    match &target {
        Some(Ok(t)) => {
            outln!(
                "role:        {} (from {}, workspace `{}`)",
                t.arn,
                t.matched_by,
                t.workspace
            );
            if let Some(r) = &t.read_arn {
                outln!("read role:   {r} (plan, show, output, state list/pull/show)");
            }
            outln!(
                "source:      {}",
                crate::sts::SourceKind::detect(t.source_profile.as_deref(), &ctx.env).describe()
            );
        }
        Some(Err(e)) => outln!("role:        none: {e}"),
        None => outln!("role:        none (no config)"),
    }
    let guard = crate::terraform::Guard::inherit(ctx.env.os(crate::terraform::GUARD_VAR));
    match crate::shim::locate_terraform(ctx, "terraform", &guard) {
        Ok(path) => {
            let version = crate::terraform::version(&path).unwrap_or_default();
            outln!("terraform:   {} ({version})", path.display());
        }
        Err(e) => outln!(
            "terraform:   not found: {}",
            e.to_string().lines().next().unwrap_or("")
        ),
    }
    if failed_over {
        outln!("state:       {}", crate::state::marker::BANNER_NOTE);
    }
    match &cached {
        Some(e) => outln!(
            "credentials: cached until {} ({} left)",
            crate::clock::rfc3339(e.credentials.expires_at()),
            format_duration(e.credentials.remaining(SystemTime::now()))
        ),
        None => outln!("credentials: none cached"),
    }
    Ok(0)
}
