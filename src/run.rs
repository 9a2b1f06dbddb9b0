//! The break-glass path of one `terraform` run: resolve the role for this directory and
//! workspace, get credentials, and run terraform under them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Delivery;
use crate::config::{format_duration, Project};
use crate::credentials::{clean_sts_name, expand_template, Broker, Entry, Request};
use crate::error::Error;
use crate::mapping::{current_workspace, RoleTarget};
use crate::paths::Dirs;
use crate::shim::ShimRun;
use crate::sts::AssumeParams;
use crate::supervisor::{self, ChildSpec, Outcome, CLIENT_WINDOW};
use crate::terraform;

/// Default `min_remaining`: a run does not start with credentials that expire sooner
/// and cannot be renewed.
pub const DEFAULT_MIN_REMAINING: Duration = Duration::from_secs(5 * 60);

/// The project, or the error that says break-glass mode needs one.
pub fn project(run: &ShimRun) -> Result<&Project, Error> {
    run.project.as_ref().ok_or_else(|| {
        Error::Message(format!(
            "break-glass mode is on ({}), but no .breakglass.toml was found at or above {}\n  fix: run `breakglass init` there, or unset BREAKGLASS",
            run.mode.reason,
            run.workdir.display()
        ))
    })
}

/// Resolves the mapped role for a shim run.
pub fn target(run: &ShimRun) -> Result<RoleTarget, Error> {
    let workspace = current_workspace(&run.workdir, std::env::var("TF_WORKSPACE").ok().as_deref());
    Ok(project(run)?.resolve(&run.workdir, &workspace)?)
}

/// The STS request for a role target: which ARN (read or write), the session name and
/// source identity filled in and cleaned.
pub fn request(project: &Project, target: &RoleTarget, read_only: bool) -> Request {
    Request {
        params: AssumeParams {
            role_arn: target.arn_for(read_only).to_string(),
            session_name: clean_sts_name(&expand_template(&target.session_name, &target.workspace)),
            duration: target.duration,
            external_id: target.external_id.clone(),
            source_identity: target
                .source_identity
                .as_deref()
                .map(|s| clean_sts_name(&expand_template(s, &target.workspace))),
            tags: target.tags.clone(),
            policy_arns: target.policy_arns.clone(),
        },
        region: project.settings.region.as_ref().map(|r| r.value.clone()),
        source_profile: target.source_profile.clone(),
        mfa_serial: target.mfa_serial.clone(),
        mfa_command: target.mfa_command.clone(),
        refresh_before: effective_window(target),
    }
}

/// The refresh window actually used: at least 6 minutes, so that clients are never
/// handed credentials in their last 5 minutes while a refresh is still possible, and
/// shorter than the session.
pub fn effective_window(target: &RoleTarget) -> Duration {
    window_for(target.duration, target.refresh_before)
}

/// [`effective_window`] for a session of `duration` and a configured `refresh_before`:
/// the configured window (floored at 6 minutes) whenever it is shorter than the
/// session; a window as long as the session, or longer, becomes the session less a
/// minute.
pub fn window_for(duration: Duration, refresh_before: Duration) -> Duration {
    let wanted = refresh_before.max(CLIENT_WINDOW + Duration::from_secs(60));
    if wanted < duration {
        wanted
    } else {
        duration.saturating_sub(Duration::from_secs(60))
    }
}

/// The base directories, or the error that says what to set.
pub fn dirs(run_dirs: Option<&Dirs>) -> Result<Dirs, Error> {
    run_dirs.cloned().or_else(Dirs::new).ok_or_else(|| {
        Error::Message(
            "cannot find your home directory for the credential cache\n  fix: set HOME".to_string(),
        )
    })
}

/// A tokio runtime for the break-glass path only.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Message(format!("cannot start the async runtime: {e}")))
}

/// Credentials for `broker`: the warm cache without any runtime, else STS.
pub fn obtain(
    broker: &Broker,
    rt: &mut Option<tokio::runtime::Runtime>,
) -> Result<(Entry, bool), Error> {
    if let Some(entry) = broker.cached() {
        return Ok((entry, true));
    }
    let runtime = match rt {
        Some(r) => r,
        None => rt.insert(runtime()?),
    };
    Ok(runtime.block_on(broker.obtain(true))?)
}

/// The one line on stderr that says which role the run uses.
pub fn announce(entry: &Entry, cached: bool) {
    let left = entry.credentials.remaining(SystemTime::now());
    eprintln!(
        "breakglass: as {} (session {}), credentials until {} ({} left{})",
        entry.role_arn,
        entry.session_name,
        crate::clock::rfc3339(entry.credentials.expires_at()),
        format_duration(left),
        if cached { ", cached" } else { "" }
    );
}

/// One run under the role: everything `terraform`, `exec` and `recover` share.
#[derive(Debug)]
pub struct RoleRun {
    pub broker: Broker,
    pub delivery: Delivery,
    pub min_remaining: Duration,
    /// Where terraform runs: `errored.tfstate` is looked for here.
    pub workdir: std::path::PathBuf,
}

impl RoleRun {
    /// Resolves the role for a shim run and prepares its credential broker.
    pub fn new(run: &ShimRun) -> Result<RoleRun, Error> {
        let target = target(run)?;
        let project = project(run)?;
        let dirs = dirs(run.dirs.as_ref())?;
        let broker = Broker::new(
            request(project, &target, run.invocation.is_read_only()),
            &dirs,
        );
        let s = &project.settings;
        Ok(RoleRun {
            broker,
            delivery: s.delivery.as_ref().map_or(Delivery::Endpoint, |d| d.value),
            min_remaining: s
                .min_remaining
                .as_ref()
                .map_or(DEFAULT_MIN_REMAINING, |m| m.value),
            workdir: run.workdir.clone(),
        })
    }

    /// Runs `child` under the role, supervised (endpoint, refresh, signals), and
    /// prints the recovery steps if terraform left an `errored.tfstate`.
    pub fn supervise(self, child: ChildSpec) -> Result<Outcome, Error> {
        let mut rt = None;
        let (entry, cached) = obtain(&self.broker, &mut rt)?;
        announce(&entry, cached);
        let runtime = match rt {
            Some(r) => r,
            None => runtime()?,
        };
        let broker = Arc::new(self.broker);
        let outcome = runtime.block_on(supervisor::supervise(
            broker,
            entry,
            child,
            self.min_remaining,
        ))?;
        runtime.shutdown_timeout(Duration::from_millis(200));
        if outcome.code != 0 {
            if let Some(path) = supervisor::errored_state(&self.workdir, outcome.started) {
                eprintln!("{}", supervisor::recovery_text(&path));
            }
        }
        Ok(outcome)
    }

    /// The plain hand-over (`delivery = "env"`): exec `program` with the credentials in
    /// its environment. Returns only on failure.
    pub fn exec_with_env(
        self,
        program: &std::path::Path,
        args: &[std::ffi::OsString],
        guard: &terraform::Guard,
    ) -> Error {
        let mut rt = None;
        let (entry, cached) = match obtain(&self.broker, &mut rt) {
            Ok(x) => x,
            Err(e) => return e,
        };
        announce(&entry, cached);
        eprintln!(
            "breakglass: warning: delivery = \"env\": these credentials will not be refreshed; anything still running at {} will fail",
            crate::clock::rfc3339(entry.credentials.expires_at())
        );
        let env = crate::isolation::env_delivery(&entry.credentials, &entry.region);
        terraform::exec(program, args, guard, &env).into()
    }
}

/// The break-glass path for the `terraform` name.
pub fn break_glass(run: ShimRun) -> Result<i32, Error> {
    let role = RoleRun::new(&run)?;
    match role.delivery {
        Delivery::Env => Err(role.exec_with_env(&run.terraform, &run.invocation.args, &run.guard)),
        Delivery::Endpoint => {
            let child = ChildSpec {
                program: run.terraform.clone(),
                args: run.invocation.args.clone(),
                env: vec![(
                    terraform::GUARD_VAR.into(),
                    Some(run.guard.hand_on(&run.terraform)),
                )],
            };
            Ok(role.supervise(child)?.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 60;

    fn d(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn refresh_window_is_the_configured_one_when_shorter_than_the_session() {
        assert_eq!(window_for(d(60 * M), d(15 * M)), d(15 * M));
        // 15-minute sessions renewed 14m50s before expiry: a renewal every ~10 s.
        assert_eq!(window_for(d(15 * M), d(14 * M + 50)), d(14 * M + 50));
        // Floored at 6 minutes.
        assert_eq!(window_for(d(60 * M), d(M)), d(6 * M));
        // As long as the session, or longer: the session less a minute.
        assert_eq!(window_for(d(15 * M), d(15 * M)), d(14 * M));
        assert_eq!(window_for(d(15 * M), d(20 * M)), d(14 * M));
    }
}
