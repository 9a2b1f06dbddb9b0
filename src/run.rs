//! One run under the role, shared by the shim's break-glass path, `exec`, `recover`
//! and the state commands: resolve the role for the context, get credentials, run the
//! child supervised (or hand it the plain variables), and record it in the audit trail.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::audit::{self, redact_args, Record};
use crate::broker::{Broker, Entry};
use crate::config::{format_duration, Delivery, OnHangup};
use crate::context::Context;
use crate::error::Error;
use crate::identity::Identity;
use crate::mode::{Mode, Reason};
use crate::nested::Marker;
use crate::shim::ShimRun;
use crate::supervisor::{self, ChildSpec, Outcome, Policy};
use crate::terraform;

/// Default `min_remaining`: a run does not start with credentials that expire sooner
/// and cannot be renewed.
pub const DEFAULT_MIN_REMAINING: Duration = Duration::from_secs(5 * 60);

/// The reason for this run: the `breakglass on --reason`, else `BREAKGLASS_REASON`.
pub fn reason(ctx: &Context, mode: &Mode) -> Option<String> {
    match &mode.reason {
        Reason::Activation(a) => Some(a.reason.clone()),
        _ => ctx.env.get("BREAKGLASS_REASON").map(str::to_string),
    }
}

/// The mode of a `breakglass` command that always runs under the role (`exec`,
/// `recover`, `env`, ...): on, because of the activation if there is one (its reason
/// goes to STS), else because of the command.
pub fn command_mode(ctx: &Context, command: &str) -> Mode {
    let activation = ctx
        .project
        .as_ref()
        .zip(ctx.dirs.as_ref())
        .and_then(|(p, d)| crate::activation::current(d, &p.root));
    Mode {
        on: true,
        reason: match activation {
            Some(a) => Reason::Activation(a),
            None => Reason::Command(command.to_string()),
        },
    }
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
    crate::say!(
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

/// What a role run is, for the role choice and the audit trail.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// `terraform`, `exec`, `recover`, `state restore`, ...
    pub kind: String,
    /// Uses the read role when there is one.
    pub read_only: bool,
    /// The terraform subcommand, if any.
    pub subcommand: Option<String>,
    /// The arguments, as typed (redacted for the record).
    pub args: Vec<OsString>,
}

/// One run under the role: everything `terraform`, `exec` and `recover` share.
#[derive(Debug)]
pub struct RoleRun {
    pub broker: Arc<Broker>,
    pub delivery: Delivery,
    pub policy: Policy,
    /// Where terraform runs: `errored.tfstate` is looked for here.
    pub workdir: PathBuf,
    /// The audit record, completed when the run ends.
    audit: Record,
    audit_log: PathBuf,
    /// The team audit trail (`[audit]`), when the project has one.
    trail: Option<crate::sink::Trail>,
    /// The banner was printed (work done under the role before the child, by
    /// `own_credentials`, shares it).
    announced: bool,
    /// The team trail's start event went out.
    start_posted: bool,
}

impl RoleRun {
    /// Resolves the role for a run in `ctx` and prepares its credential broker.
    pub fn new(ctx: &Context, mode: &Mode, spec: RunSpec) -> Result<RoleRun, Error> {
        ctx.outside_a_run()?;
        let target = ctx.target()?;
        let project = ctx.project()?;
        let dirs = ctx.dirs()?;
        let reason = reason(ctx, mode);
        let req = crate::policy::request(
            project,
            &target,
            spec.read_only,
            reason.as_deref(),
            &ctx.env,
        );
        let s = &project.settings;
        let who = Identity::of(&ctx.env);
        let audit = Record {
            started: String::new(),
            ended: String::new(),
            user: who.user,
            host: who.host,
            kind: spec.kind,
            source_arn: None,
            role_arn: req.params.role_arn.clone(),
            session_name: req.params.session_name.clone(),
            source_identity: req.params.source_identity.clone(),
            workspace: target.workspace.clone(),
            project: project.root.display().to_string(),
            subcommand: spec.subcommand,
            args: redact_args(&spec.args),
            reason,
            exit_code: None,
            hangup: false,
        };
        let policy = Policy {
            min_remaining: s
                .min_remaining
                .as_ref()
                .map_or(DEFAULT_MIN_REMAINING, |m| m.value),
            on_hangup: s.on_hangup.as_ref().map_or(OnHangup::Finish, |h| h.value),
            marker: Marker {
                role_arn: req.params.role_arn.clone(),
                project_root: project.root.clone(),
            },
        };
        Ok(RoleRun {
            broker: Arc::new(Broker::new(req, &dirs)),
            delivery: s.delivery.as_ref().map_or(Delivery::Endpoint, |d| d.value),
            policy,
            workdir: ctx.workdir.clone(),
            audit,
            audit_log: audit::log_path(&dirs),
            trail: crate::sink::Trail::for_project(project, &dirs),
            announced: false,
            start_posted: false,
        })
    }

    /// A run for a `breakglass` command that is not a child process (`on`, `off`,
    /// `log --team`, the doctor's probe): the role of the directory acted on.
    pub fn for_command(ctx: &Context, kind: &str) -> Result<RoleRun, Error> {
        let spec = RunSpec {
            kind: kind.to_string(),
            read_only: false,
            subcommand: None,
            args: Vec::new(),
        };
        RoleRun::new(ctx, &command_mode(ctx, kind), spec)
    }

    /// The run's audit record as it stands (for events of commands such as `on`).
    pub fn audit_record(&self) -> &Record {
        &self.audit
    }

    /// Credentials for work breakglass does itself under the role (reading the state
    /// bucket), announced like a run's; a refused attempt is recorded. Finish with
    /// `supervise` or `finish`.
    pub fn own_credentials(
        &mut self,
        rt: &mut Option<tokio::runtime::Runtime>,
    ) -> Result<Entry, Error> {
        let entry = self.credentials(rt)?;
        self.post_start(&entry);
        Ok(entry)
    }

    /// The team trail's start event (once), sent in the background.
    fn post_start(&mut self, entry: &Entry) {
        if self.start_posted {
            return;
        }
        self.start_posted = true;
        if let Some(trail) = &mut self.trail {
            trail.post(
                crate::sink::event::START,
                &self.audit,
                &Default::default(),
                Some(entry),
            );
        }
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
            crate::say!(
                "breakglass: warning: could not write the audit trail {}: {e}",
                self.audit_log.display()
            );
        }
        // The team trail's end event is built from this same local record, so every
        // field it carries (exit code, hang-up, ...) reaches the trail too. No exit
        // code means terraform is about to be exec'd: a hand-over, with no end to come.
        if let Some(trail) = &mut self.trail {
            let kind = match exit_code {
                Some(_) => crate::sink::event::END,
                None => crate::sink::event::HANDOVER,
            };
            let fresh = self.broker.cached();
            trail.post(kind, &self.audit, &Default::default(), fresh.as_ref());
            trail.wait();
        }
    }

    /// Runs `child` under the role, supervised (endpoint, refresh, signals), records
    /// the run in the audit trail, and prints the recovery steps if terraform left an
    /// `errored.tfstate`.
    pub fn supervise(mut self, child: ChildSpec) -> Result<Outcome, Error> {
        let mut rt = None;
        let entry = self.credentials(&mut rt)?;
        // Sent in the background while terraform runs.
        self.post_start(&entry);
        let runtime = match rt {
            Some(r) => r,
            None => runtime()?,
        };
        let broker = Arc::clone(&self.broker);
        let result = runtime.block_on(supervisor::supervise(broker, entry, child, &self.policy));
        runtime.shutdown_timeout(Duration::from_millis(200));
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                self.record(Some(crate::error::SHIM_FAILURE));
                return Err(e.into());
            }
        };
        self.audit.hangup = outcome.hangup;
        self.record(Some(outcome.code));
        if outcome.code != 0 {
            if let Some(path) = supervisor::errored_state(&self.workdir, outcome.started) {
                crate::say!("{}", supervisor::recovery_text(&path));
            }
        }
        Ok(outcome)
    }

    /// The plain hand-over (`delivery = "env"`): exec `program` with the credentials in
    /// its environment. The audit line is written before the exec, without an exit
    /// code. Returns only on failure.
    pub fn exec_with_env(
        mut self,
        program: &Path,
        args: &[OsString],
        guard: &terraform::Guard,
    ) -> Error {
        let mut rt = None;
        let entry = match self.credentials(&mut rt) {
            Ok(x) => x,
            Err(e) => return e,
        };
        // Nothing renews these credentials: the start-time check matters most here.
        let left = entry.credentials.remaining(SystemTime::now());
        if left < self.policy.min_remaining {
            self.record(Some(crate::error::SHIM_FAILURE));
            return supervisor::SupervisorError::TooShort {
                role: entry.role_arn.clone(),
                left: format_duration(left),
                at: crate::clock::rfc3339(entry.credentials.expires_at()),
                min: format_duration(self.policy.min_remaining),
            }
            .into();
        }
        crate::say!(
            "breakglass: warning: delivery = \"env\": these credentials will not be refreshed; anything still running at {} will fail",
            crate::clock::rfc3339(entry.credentials.expires_at())
        );
        self.record(None);
        let env =
            crate::isolation::env_delivery(&entry.credentials, &entry.region, &self.policy.marker);
        // No supervisor stays to hear a hang-up: terraform ignores it and runs to the end
        // (an ignored disposition survives exec).
        // SAFETY: signal takes plain values; nothing else runs in this process now.
        unsafe {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
        terraform::exec(program, args, guard, &env).into()
    }
}

/// The break-glass path for the `terraform` name.
pub fn break_glass(run: ShimRun) -> Result<i32, Error> {
    crate::logging::init(&run.ctx.env);
    let spec = RunSpec {
        kind: "terraform".to_string(),
        read_only: run.invocation.is_read_only(),
        subcommand: run.invocation.subcommand().map(str::to_string),
        args: run.invocation.args.clone(),
    };
    let role = RoleRun::new(&run.ctx, &run.mode, spec)?;
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
                cwd: None,
            };
            Ok(role.supervise(child)?.code)
        }
    }
}
