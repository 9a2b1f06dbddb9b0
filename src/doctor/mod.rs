//! `breakglass doctor`: the readiness drill for the seed's preparation list, as a
//! table of check functions ([`DRILL`]) over what they share ([`Drill`]). Each check
//! says pass, warn, fail or skip, with one line of why and one of how to fix.

mod bucket;
mod role;

use crate::backend::{self, Backend};
use crate::broker::Entry;
use crate::config::Project;
use crate::context::Context;
use crate::mapping::RoleTarget;
use crate::sts::Sts;

pub use crate::checks::{Check, Status};

fn check(id: &str, status: Status, summary: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        id: id.to_string(),
        status,
        summary: summary.into(),
        fix: fix.into(),
    }
}

/// A platform whose state is out of reach when the platform is down.
fn platform_backend(b: &Backend) -> Option<String> {
    match b.kind.as_str() {
        "remote" | "cloud" => Some(format!(
            "the `{}` backend keeps state in Terraform Cloud/Enterprise (host {})",
            b.kind,
            b.string("hostname").unwrap_or("app.terraform.io")
        )),
        "http" => {
            let address = b.string("address").unwrap_or("");
            address
                .contains("spacelift")
                .then(|| format!("the `http` backend points at the platform ({address})"))
        }
        "local" => Some("the `local` backend keeps state on one machine".to_string()),
        _ => None,
    }
}

/// The state bucket's checks, in order: skipped together when the backend is not s3
/// or the role could not be assumed.
const BUCKET_CHECKS: &[&str] = &[
    "state.versioning",
    "state.mfa_delete",
    "state.replication",
    "state.encryption",
    "state.public_access",
    "state.access",
    "state.replica_current",
];

/// What the checks share. Each check reads what the ones before it found, and may end
/// the drill (`done`) when nothing after it can be judged.
struct Drill<'a> {
    ctx: &'a Context,
    project: Option<&'a Project>,
    target: Option<RoleTarget>,
    rt: Option<tokio::runtime::Runtime>,
    /// The run's role as assumed (its credentials and an STS client signing with them).
    probe: Option<(Entry, Sts)>,
    /// The s3 backend block, once state.external found one.
    backend: Option<Backend>,
    done: bool,
}

/// One check (or family of checks with one id prefix).
type CheckFn = fn(&mut Drill<'_>) -> Vec<Check>;

/// The drill, in order. The ids are part of the spec.
const DRILL: &[(&str, CheckFn)] = &[
    ("terraform.found", terraform_found),
    ("config.valid", config_valid),
    ("role.assume", role::assume_all),
    ("inventory.fresh", inventory),
    ("audit.sink", audit_sink),
    ("state.external", state_external),
    ("state.locking", state_locking),
    ("state.* (bucket)", state_bucket),
];

/// Runs every check for the project of `ctx`.
pub fn run_checks(ctx: &Context) -> Vec<Check> {
    let mut drill = Drill {
        ctx,
        project: ctx.project.as_ref(),
        target: None,
        rt: None,
        probe: None,
        backend: None,
        done: false,
    };
    let mut checks = Vec::new();
    for (_, run) in DRILL {
        if drill.done {
            break;
        }
        checks.extend(run(&mut drill));
    }
    checks
}

fn terraform_found(d: &mut Drill<'_>) -> Vec<Check> {
    let guard = crate::terraform::Guard::inherit(d.ctx.env.os(crate::terraform::GUARD_VAR));
    vec![
        match crate::shim::locate_terraform(d.ctx, "terraform", &guard) {
            Ok(path) => {
                let version = crate::terraform::version(&path)
                    .unwrap_or_else(|| "version unknown".to_string());
                check(
                    "terraform.found",
                    Status::Pass,
                    format!("{version} at {}", path.display()),
                    "",
                )
            }
            Err(e) => check(
                "terraform.found",
                Status::Fail,
                e.to_string().lines().next().unwrap_or("").to_string(),
                "install terraform (or tofu), or set BREAKGLASS_TERRAFORM=/path/to/terraform",
            ),
        },
    ]
}

fn config_valid(d: &mut Drill<'_>) -> Vec<Check> {
    let Some(project) = d.project else {
        d.done = true;
        return vec![check(
            "config.valid",
            Status::Fail,
            format!(
                "no .breakglass.toml at or above {}",
                d.ctx.workdir.display()
            ),
            "run `breakglass init` in the project",
        )];
    };
    match project.resolve(&d.ctx.workdir, &d.ctx.workspace()) {
        Ok(t) => {
            let c = check(
                "config.valid",
                Status::Pass,
                format!(
                    "{} maps {} to {} ({})",
                    project.files[0].display(),
                    d.ctx.workdir.display(),
                    t.arn,
                    t.matched_by
                ),
                "",
            );
            d.target = Some(t);
            vec![c]
        }
        Err(e) => vec![check(
            "config.valid",
            Status::Fail,
            e.to_string().lines().next().unwrap_or(""),
            "fix the config as the message says",
        )],
    }
}

/// `inventory.fresh` (the mappings against the platform's code recorded in
/// `[import]`), and `state.external` for the stacks whose state the platform keeps.
fn inventory(d: &mut Drill<'_>) -> Vec<Check> {
    let Some(project) = d.project else {
        return Vec::new();
    };
    crate::import::check::checks(project, &d.ctx.workdir)
}

/// `audit.sink`: the team trail, written as the run's role.
fn audit_sink(d: &mut Drill<'_>) -> Vec<Check> {
    let Some(rt) = d.rt.as_ref() else {
        return Vec::new();
    };
    vec![crate::trail::check::run(
        rt,
        d.ctx,
        d.probe.as_ref().map(|(entry, _)| entry),
    )]
}

fn state_external(d: &mut Drill<'_>) -> Vec<Check> {
    d.done = true;
    let backend = match backend::find(&d.ctx.workdir) {
        Ok(Some(b)) => b,
        Ok(None) => return vec![check(
            "state.external",
            Status::Fail,
            format!("no backend block in {}: state is local to one machine", d.ctx.workdir.display()),
            "add `terraform { backend \"s3\" { bucket = ..., key = ..., region = ..., use_lockfile = true } }`",
        )],
        Err(e) => {
            return vec![check(
                "state.external",
                Status::Fail,
                e.to_string(),
                "fix the .tf file",
            )]
        }
    };
    if let Some(why) = platform_backend(&backend) {
        return vec![check(
            "state.external",
            Status::Fail,
            format!("{why}: it cannot be reached when the platform is down ({})", backend.file.display()),
            "move the state to a bucket you control, e.g. `backend \"s3\"`, and `terraform init -migrate-state`",
        )];
    }
    let c = check(
        "state.external",
        Status::Pass,
        format!("`{}` backend in {}", backend.kind, backend.file.display()),
        "",
    );
    d.backend = Some(backend);
    d.done = false;
    vec![c]
}

fn state_locking(d: &mut Drill<'_>) -> Vec<Check> {
    let Some(backend) = &d.backend else {
        return Vec::new();
    };
    let locking =
        backend.bool("use_lockfile") == Some(true) || backend.string("dynamodb_table").is_some();
    vec![if backend.kind != "s3" {
        only_s3("state.locking", backend)
    } else if locking {
        check(
            "state.locking",
            Status::Pass,
            "state locking is on (use_lockfile or dynamodb_table)",
            "",
        )
    } else {
        check(
            "state.locking",
            Status::Fail,
            "state locking is off: two runs can corrupt the state",
            "add `use_lockfile = true` to the s3 backend block",
        )
    }]
}

fn only_s3(id: &str, backend: &Backend) -> Check {
    check(
        id,
        Status::Skip,
        format!(
            "only the s3 backend is checked (this is `{}`)",
            backend.kind
        ),
        "",
    )
}

/// The bucket's settings, access, and the replica, as the role.
fn state_bucket(d: &mut Drill<'_>) -> Vec<Check> {
    let (Some(backend), Some(rt)) = (&d.backend, &d.rt) else {
        return Vec::new();
    };
    if backend.kind != "s3" {
        return BUCKET_CHECKS
            .iter()
            .map(|id| only_s3(id, backend))
            .collect();
    }
    let Some((entry, sts)) = &d.probe else {
        return BUCKET_CHECKS
            .iter()
            .map(|id| {
                check(
                    id,
                    Status::Skip,
                    "skipped: the role could not be assumed",
                    "fix role.assume first",
                )
            })
            .collect();
    };
    let (Some(bucket_name), Some(key)) = (backend.string("bucket"), backend.string("key")) else {
        return vec![check(
            "state.access",
            Status::Fail,
            "the s3 backend has no literal bucket and key",
            "set bucket and key in the backend block",
        )];
    };
    let s3 = aws_sdk_s3::Client::from_conf(bucket::sts_config(sts, backend));
    let mut checks = rt.block_on(bucket::bucket_checks(&s3, bucket_name, key));
    let Some(project) = d.project else {
        return checks;
    };
    let replica = rt.block_on(crate::state::replica::current(
        &project.settings.state,
        &d.ctx.workdir,
        &d.ctx.workspace(),
        entry,
    ));
    use crate::state::replica::Verdict;
    let status = match replica.verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Warn => Status::Warn,
        Verdict::Fail => Status::Fail,
        Verdict::Skip => Status::Skip,
    };
    checks.push(check(
        "state.replica_current",
        status,
        replica.summary,
        replica.fix,
    ));
    checks
}

/// Prints the checks for people.
pub fn print_human(checks: &[Check]) {
    for c in checks {
        let tag = match c.status {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        crate::outln!("{tag:<5} {:<20} {}", c.id, c.summary);
        if !c.fix.is_empty() && c.status != Status::Pass {
            crate::outln!("      {:<20} fix: {}", "", c.fix);
        }
    }
}

/// True when any check failed.
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn platform_backends_are_out_of_reach() {
        let b = |text: &str| backend::parse(text, Path::new("x.tf")).unwrap().unwrap();
        assert!(platform_backend(&b(
            "terraform {\n backend \"remote\" {\n organization = \"a\"\n }\n}\n"
        ))
        .is_some());
        assert!(platform_backend(&b("terraform {\n backend \"local\" {}\n}\n")).is_some());
        assert!(platform_backend(&b("terraform {\n backend \"http\" {\n address = \"https://app.spacelift.io/state\"\n }\n}\n")).is_some());
        assert!(platform_backend(&b(
            "terraform {\n backend \"s3\" {\n bucket = \"b\"\n }\n}\n"
        ))
        .is_none());
    }
}
