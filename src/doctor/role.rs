//! `role.assume`: every role the config names, assumed as the doctor (never cached),
//! with the run's own role kept for the checks after it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{check, Check, Drill, Status};
use crate::broker::{Broker, CredentialsError, Entry};
use crate::config::Project;
use crate::mapping::RoleTarget;
use crate::run;
use crate::sts::{Sts, StsError};

/// `role.assume`, one per role ARN in the config; keeps the run's own role as the probe.
pub(super) fn assume_all(d: &mut Drill<'_>) -> Vec<Check> {
    if let Err(e) = d.ctx.outside_a_run() {
        d.done = true;
        let text = e.to_string();
        let (summary, fix) = text.split_once("\n  fix: ").unwrap_or((&text, ""));
        return vec![check("role.assume", Status::Fail, summary, fix)];
    }
    let rt = match run::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            d.done = true;
            return vec![check("role.assume", Status::Fail, e.to_string(), "")];
        }
    };
    let mut checks = Vec::new();
    if let (Some(project), Some(target), Some(dirs)) = (d.project, &d.target, d.ctx.dirs.as_ref()) {
        for arn in role_arns(project) {
            let mut t = target.clone();
            t.arn = arn.clone();
            t.read_arn = None;
            t.session_name = "breakglass-doctor-{user}".to_string();
            let (c, probe) = assume(&rt, project, &t, dirs, &d.ctx.env);
            checks.extend(c);
            if arn == target.arn {
                d.probe = probe;
            }
        }
    }
    d.rt = Some(rt);
    checks
}

/// Assumes one role as the doctor: its checks, and the role if it could be assumed.
fn assume(
    rt: &tokio::runtime::Runtime,
    project: &Project,
    t: &RoleTarget,
    dirs: &crate::paths::Dirs,
    env: &crate::env::Env,
) -> (Vec<Check>, Option<(Entry, Sts)>) {
    let arn = &t.arn;
    let mut checks = Vec::new();
    let mut req = crate::policy::request(project, t, false, None, env);
    let result = match rt.block_on(Broker::new(req.clone(), dirs).probe()) {
        Err(CredentialsError::Sts(StsError::DurationTooLong { message, .. })) => {
            checks.push(check(
                "role.assume",
                Status::Warn,
                format!("{arn}: duration = \"{}\" is over the role's maximum ({message})", crate::config::format_duration(t.duration)),
                "set duration = \"1h\" (breakglass refreshes for longer runs) or raise the role's MaxSessionDuration",
            ));
            req.params.duration = crate::config::MIN_DURATION;
            rt.block_on(Broker::new(req.clone(), dirs).probe())
        }
        other => other,
    };
    match result {
        Ok((entry, sts)) => {
            let who = rt
                .block_on(sts.caller_arn())
                .unwrap_or_else(|e| format!("(GetCallerIdentity failed: {e})"));
            let chained = t.mfa_serial.is_some()
                || entry
                    .source_arn
                    .as_deref()
                    .is_some_and(|a| a.contains(":assumed-role/"));
            checks.push(if chained && t.duration > Duration::from_secs(3600) {
                check(
                    "role.assume",
                    Status::Warn,
                    format!("{arn}: assumed as {who}, but duration = \"{}\" is over 1h for a chained role", crate::config::format_duration(t.duration)),
                    "set duration = \"1h\"; breakglass refreshes the credentials for longer runs",
                )
            } else {
                check(
                    "role.assume",
                    Status::Pass,
                    format!("{arn}: assumed as {who}"),
                    "",
                )
            });
            (checks, Some((entry, sts)))
        }
        Err(e) => {
            let text = e.to_string();
            let mut lines = text.lines();
            let summary = lines.next().unwrap_or("").to_string();
            let mut fix = lines.map(str::trim).collect::<Vec<_>>().join(" ");
            if let CredentialsError::Sts(StsError::AccessDenied { caller, role }) = &e {
                fix = format!(
                    "{fix}; {}",
                    crate::import::trust_statement::access_denied_hint(caller, role)
                );
            }
            checks.push(check("role.assume", Status::Fail, summary, fix));
            (checks, None)
        }
    }
}

/// Every role ARN the config names.
fn role_arns(project: &Project) -> Vec<String> {
    let s = &project.settings;
    let mut arns = BTreeSet::new();
    let roles = std::iter::once(&s.role)
        .chain(s.workspaces.values())
        .chain(s.stacks.values())
        .chain(s.stack_workspaces.values().flat_map(|per| per.values()));
    for r in roles {
        for a in [&r.arn, &r.read_arn].into_iter().flatten() {
            arns.insert(a.value.clone());
        }
    }
    arns.into_iter().collect()
}
