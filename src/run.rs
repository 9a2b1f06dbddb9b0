//! The break-glass path of one `terraform` run: resolve the role for this directory and
//! workspace, get credentials, and run terraform under them.

use std::time::SystemTime;

use crate::config::{format_duration, Project};
use crate::credentials::{clean_sts_name, expand_template, Broker, Entry, Request};
use crate::error::Error;
use crate::mapping::{current_workspace, RoleTarget};
use crate::paths::Dirs;
use crate::shim::ShimRun;
use crate::sts::AssumeParams;
use crate::terraform;

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
        refresh_before: target.refresh_before,
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

/// The break-glass path for the `terraform` name.
pub fn break_glass(run: ShimRun) -> Result<i32, Error> {
    let target = target(&run)?;
    let project = project(&run)?;
    let dirs = dirs(run.dirs.as_ref())?;
    let broker = Broker::new(
        request(project, &target, run.invocation.is_read_only()),
        &dirs,
    );
    let mut rt = None;
    let (entry, cached) = obtain(&broker, &mut rt)?;
    announce(&entry, cached);
    let env = crate::isolation::env_delivery(&entry.credentials, &entry.region);
    Err(terraform::exec(&run.terraform, &run.invocation.args, &run.guard, &env).into())
}
