//! The break-glass path of one `terraform` run: resolve the role for this directory and
//! workspace, get credentials, and run terraform under them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::audit::{self, redact_args, Record};
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
pub fn request(
    project: &Project,
    target: &RoleTarget,
    read_only: bool,
    reason: Option<&str>,
) -> Request {
    let mut tags = target.tags.clone();
    if let Some(reason) = reason {
        // CloudTrail shows session tags: the reason travels with every call.
        tags.insert(REASON_TAG.to_string(), tag_value(reason));
    }
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
            tags,
            policy_arns: target.policy_arns.clone(),
        },
        region: project.settings.region.as_ref().map(|r| r.value.clone()),
        source_profile: target.source_profile.clone(),
        mfa_serial: target.mfa_serial.clone(),
        mfa_command: target.mfa_command.clone(),
        refresh_before: effective_window(target),
    }
}

/// The session tag that carries the reason for a break-glass run.
pub const REASON_TAG: &str = "breakglass-reason";

/// A session tag value: at most 256 characters of letters, digits and `_.:/=+-@`.
/// Spaces, which STS allows, become `_` too: the SDK form-encodes them as `%20`, and
/// STS-compatible servers that re-encode the form to check the signature (moto) then
/// reject every AssumeRole whose reason has a space.
pub fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

/// The reason for this run: the `breakglass on --reason`, else `BREAKGLASS_REASON`.
pub fn reason(run: &ShimRun) -> Option<String> {
    match &run.mode.reason {
        crate::mode::Reason::Activation(a) => Some(a.reason.clone()),
        _ => std::env::var("BREAKGLASS_REASON")
            .ok()
            .filter(|r| !r.trim().is_empty()),
    }
}

/// The refresh window actually used: the configured one, floored at 6 minutes so that
/// clients are never handed credentials in their last 5 minutes while a refresh is
/// still possible; a window as long as the session, or longer, becomes the session less
/// a minute.
pub fn effective_window(target: &RoleTarget) -> Duration {
    window_for(target.duration, target.refresh_before)
}

/// [`effective_window`] for a session of `duration` and a configured `refresh_before`.
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
            "cannot find your home directory for breakglass's files\n  fix: set HOME".to_string(),
        )
    })
}

/// A tokio runtime for the break-glass path only (never started when the mode is off).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    // One thread: the endpoint, the refresher, the signals and the wait on terraform
    // are all I/O, and starting no worker threads keeps the start-up short.
    tokio::runtime::Builder::new_current_thread()
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

/// The one line on stderr that says which role the run uses (and, while the project
/// is failed over to its state replica, says so).
pub fn announce(entry: &Entry, cached: bool, failed_over: bool) {
    let left = entry.credentials.remaining(SystemTime::now());
    eprintln!(
        "breakglass: as {} (session {}), credentials until {} ({} left{}){}",
        entry.role_arn,
        entry.session_name,
        crate::clock::rfc3339(entry.credentials.expires_at()),
        format_duration(left),
        if cached { ", cached" } else { "" },
        if failed_over {
            format!(". {}", crate::state::marker::BANNER_NOTE)
        } else {
            String::new()
        }
    );
}

/// One run under the role: everything `terraform`, `exec` and `recover` share.
#[derive(Debug)]
pub struct RoleRun {
    pub broker: Arc<Broker>,
    pub delivery: Delivery,
    pub min_remaining: Duration,
    /// Where terraform runs: `errored.tfstate` is looked for here.
    pub workdir: std::path::PathBuf,
    /// The audit record, completed when the run ends.
    audit: Record,
    audit_log: std::path::PathBuf,
    /// The banner was printed (work done under the role before the child, by
    /// `own_credentials`, shares it).
    announced: bool,
}

impl RoleRun {
    /// Resolves the role for a run and prepares its credential broker. `kind` names
    /// the run in the audit trail: `terraform`, `exec` or `recover`.
    pub fn new(run: &ShimRun, kind: &str) -> Result<RoleRun, Error> {
        let target = target(run)?;
        let project = project(run)?;
        let dirs = dirs(run.dirs.as_ref())?;
        let reason = reason(run);
        let req = request(
            project,
            &target,
            run.invocation.is_read_only(),
            reason.as_deref(),
        );
        let s = &project.settings;
        let audit = Record {
            started: String::new(),
            ended: String::new(),
            user: crate::credentials::local_user(),
            host: crate::credentials::host_name(),
            kind: kind.to_string(),
            source_arn: None,
            role_arn: req.params.role_arn.clone(),
            session_name: req.params.session_name.clone(),
            source_identity: req.params.source_identity.clone(),
            workspace: target.workspace.clone(),
            project: project.root.display().to_string(),
            subcommand: run.invocation.subcommand().map(str::to_string),
            args: redact_args(&run.invocation.args),
            reason,
            exit_code: None,
        };
        Ok(RoleRun {
            broker: Arc::new(Broker::new(req, &dirs)),
            delivery: s.delivery.as_ref().map_or(Delivery::Endpoint, |d| d.value),
            min_remaining: s
                .min_remaining
                .as_ref()
                .map_or(DEFAULT_MIN_REMAINING, |m| m.value),
            workdir: run.workdir.clone(),
            audit,
            audit_log: audit::log_path(&dirs),
            announced: false,
        })
    }

    /// Records the run in the audit trail under the breakglass command that made it
    /// (`state restore VERSION_ID`) instead of terraform's arguments.
    pub fn audit_as(mut self, args: &[&str]) -> RoleRun {
        self.audit.subcommand = args.first().map(|a| a.to_string());
        self.audit.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Credentials for work breakglass does itself under the role (reading the state
    /// bucket), announced like a run's; a refused attempt is recorded. Finish with
    /// `supervise` or `finish`.
    pub fn own_credentials(
        &mut self,
        rt: &mut Option<tokio::runtime::Runtime>,
    ) -> Result<Entry, Error> {
        self.credentials(rt)
    }

    /// Records work done without a child (after `own_credentials`) with its exit code.
    pub fn finish(mut self, exit_code: i32) {
        self.record(Some(exit_code));
    }

    /// Credentials for the run, announced on stderr. A refused attempt is recorded in
    /// the audit trail too, with the shim's exit code.
    fn credentials(&mut self, rt: &mut Option<tokio::runtime::Runtime>) -> Result<Entry, Error> {
        if !self.announced {
            self.audit.started = audit::now();
        }
        match obtain(&self.broker, rt) {
            Ok((entry, cached)) => {
                if !self.announced {
                    let over = crate::state::marker::failed_over(&self.workdir);
                    announce(&entry, cached, over);
                    self.announced = true;
                }
                self.audit.source_arn = entry.source_arn.clone();
                Ok(entry)
            }
            Err(e) => {
                self.record(Some(crate::error::SHIM_FAILURE));
                Err(e)
            }
        }
    }

    fn record(&mut self, exit_code: Option<i32>) {
        self.audit.ended = audit::now();
        self.audit.exit_code = exit_code;
        if let Err(e) = audit::append(&self.audit_log, &self.audit) {
            eprintln!(
                "breakglass: warning: could not write the audit trail {}: {e}",
                self.audit_log.display()
            );
        }
    }

    /// Runs `child` under the role, supervised (endpoint, refresh, signals), records
    /// the run in the audit trail, and prints the recovery steps if terraform left an
    /// `errored.tfstate`.
    pub fn supervise(mut self, child: ChildSpec) -> Result<Outcome, Error> {
        let mut rt = None;
        let entry = self.credentials(&mut rt)?;
        let runtime = match rt {
            Some(r) => r,
            None => runtime()?,
        };
        let min_remaining = self.min_remaining;
        let broker = Arc::clone(&self.broker);
        let result = runtime.block_on(supervisor::supervise(broker, entry, child, min_remaining));
        runtime.shutdown_timeout(Duration::from_millis(200));
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                self.record(Some(crate::error::SHIM_FAILURE));
                return Err(e.into());
            }
        };
        self.record(Some(outcome.code));
        if outcome.code != 0 {
            if let Some(path) = supervisor::errored_state(&self.workdir, outcome.started) {
                eprintln!("{}", supervisor::recovery_text(&path));
            }
        }
        Ok(outcome)
    }

    /// The plain hand-over (`delivery = "env"`): exec `program` with the credentials in
    /// its environment. The audit line is written before the exec, without an exit
    /// code. Returns only on failure.
    pub fn exec_with_env(
        mut self,
        program: &std::path::Path,
        args: &[std::ffi::OsString],
        guard: &terraform::Guard,
    ) -> Error {
        let mut rt = None;
        let entry = match self.credentials(&mut rt) {
            Ok(x) => x,
            Err(e) => return e,
        };
        // Nothing renews these credentials: the start-time check matters most here.
        let left = entry.credentials.remaining(SystemTime::now());
        if left < self.min_remaining {
            self.record(Some(crate::error::SHIM_FAILURE));
            return supervisor::SupervisorError::TooShort {
                role: entry.role_arn.clone(),
                left: format_duration(left),
                at: crate::clock::rfc3339(entry.credentials.expires_at()),
                min: format_duration(self.min_remaining),
            }
            .into();
        }
        eprintln!(
            "breakglass: warning: delivery = \"env\": these credentials will not be refreshed; anything still running at {} will fail",
            crate::clock::rfc3339(entry.credentials.expires_at())
        );
        self.record(None);
        let env = crate::isolation::env_delivery(&entry.credentials, &entry.region);
        terraform::exec(program, args, guard, &env).into()
    }
}

/// The break-glass path for the `terraform` name.
pub fn break_glass(run: ShimRun) -> Result<i32, Error> {
    crate::logging::init();
    let role = RoleRun::new(&run, "terraform")?;
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

    #[test]
    fn tag_values_keep_sts_characters_and_replace_the_rest() {
        assert_eq!(
            tag_value("INC-42 platform down, see #ops"),
            "INC-42_platform_down__see__ops"
        );
        assert_eq!(tag_value("a/b:c=d@e+f.g_h"), "a/b:c=d@e+f.g_h");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

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
