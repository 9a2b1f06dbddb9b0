//! Kept in one file because each check reads the results of the ones before it (the assumed role feeds the bucket checks); see the check ids list.
//!
//! `breakglass doctor`: the readiness drill for the seed's preparation list. Each check
//! says pass, warn, fail or skip, with one line of why and one of how to fix.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;

use crate::backend::{self, Backend};
use crate::broker::{Broker, CredentialsError};
use crate::config::Project;
use crate::context::Context;
use crate::run;
use crate::sts::{xml_field, Sts, StsError};

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

/// Runs every check for the project that `run` found.
pub fn run_checks(ctx: &Context) -> Vec<Check> {
    let mut checks = Vec::new();

    // terraform.found
    let guard = crate::terraform::Guard::inherit(ctx.env.os(crate::terraform::GUARD_VAR));
    match crate::shim::locate_terraform(ctx, "terraform", &guard) {
        Ok(path) => {
            let version =
                crate::terraform::version(&path).unwrap_or_else(|| "version unknown".to_string());
            checks.push(check(
                "terraform.found",
                Status::Pass,
                format!("{version} at {}", path.display()),
                "",
            ));
        }
        Err(e) => checks.push(check(
            "terraform.found",
            Status::Fail,
            e.to_string().lines().next().unwrap_or("").to_string(),
            "install terraform (or tofu), or set BREAKGLASS_TERRAFORM=/path/to/terraform",
        )),
    }

    // config.valid
    let Some(project) = ctx.project.as_ref() else {
        checks.push(check(
            "config.valid",
            Status::Fail,
            format!("no .breakglass.toml at or above {}", ctx.workdir.display()),
            "run `breakglass init` in the project",
        ));
        return checks;
    };
    let workspace = ctx.workspace();
    let target = match project.resolve(&ctx.workdir, &workspace) {
        Ok(t) => {
            checks.push(check(
                "config.valid",
                Status::Pass,
                format!(
                    "{} maps {} to {} ({})",
                    project.files[0].display(),
                    ctx.workdir.display(),
                    t.arn,
                    t.matched_by
                ),
                "",
            ));
            Some(t)
        }
        Err(e) => {
            checks.push(check(
                "config.valid",
                Status::Fail,
                e.to_string().lines().next().unwrap_or(""),
                "fix the config as the message says",
            ));
            None
        }
    };

    let rt = match run::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            checks.push(check("role.assume", Status::Fail, e.to_string(), ""));
            return checks;
        }
    };

    // role.assume, one per role ARN in the config
    let dirs = crate::paths::Dirs::new();
    let mut probe = None;
    if let (Some(target), Some(dirs)) = (&target, dirs.as_ref()) {
        for arn in role_arns(project) {
            let mut t = target.clone();
            t.arn = arn.clone();
            t.read_arn = None;
            t.session_name = "breakglass-doctor-{user}".to_string();
            let mut req = crate::policy::request(project, &t, false, None, &ctx.env);
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
                    if chained && t.duration > Duration::from_secs(3600) {
                        checks.push(check(
                            "role.assume",
                            Status::Warn,
                            format!("{arn}: assumed as {who}, but duration = \"{}\" is over 1h for a chained role", crate::config::format_duration(t.duration)),
                            "set duration = \"1h\"; breakglass refreshes the credentials for longer runs",
                        ));
                    } else {
                        checks.push(check(
                            "role.assume",
                            Status::Pass,
                            format!("{arn}: assumed as {who}"),
                            "",
                        ));
                    }
                    if arn == target.arn {
                        probe = Some((entry, sts));
                    }
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
                }
            }
        }
    }

    // inventory.fresh, and state.external for stacks whose state the platform keeps
    for c in crate::import::check::checks(project, &ctx.workdir) {
        use crate::import::check::Status as Is;
        let status = match c.status {
            Is::Pass => Status::Pass,
            Is::Fail => Status::Fail,
            Is::Skip => Status::Skip,
        };
        checks.push(check(c.id, status, c.summary, c.fix));
    }
    // audit.sink: the team trail, written as the run's role.
    checks.push(crate::trail::check::run(
        &rt,
        ctx,
        probe.as_ref().map(|(entry, _)| entry),
    ));

    // state.*
    let backend = match backend::find(&ctx.workdir) {
        Ok(b) => b,
        Err(e) => {
            checks.push(check(
                "state.external",
                Status::Fail,
                e.to_string(),
                "fix the .tf file",
            ));
            return checks;
        }
    };
    let Some(backend) = backend else {
        checks.push(check(
            "state.external",
            Status::Fail,
            format!("no backend block in {}: state is local to one machine", ctx.workdir.display()),
            "add `terraform { backend \"s3\" { bucket = ..., key = ..., region = ..., use_lockfile = true } }`",
        ));
        return checks;
    };
    if let Some(why) = platform_backend(&backend) {
        checks.push(check(
            "state.external",
            Status::Fail,
            format!("{why}: it cannot be reached when the platform is down ({})", backend.file.display()),
            "move the state to a bucket you control, e.g. `backend \"s3\"`, and `terraform init -migrate-state`",
        ));
        return checks;
    }
    checks.push(check(
        "state.external",
        Status::Pass,
        format!("`{}` backend in {}", backend.kind, backend.file.display()),
        "",
    ));
    let locking =
        backend.bool("use_lockfile") == Some(true) || backend.string("dynamodb_table").is_some();
    checks.push(if backend.kind != "s3" {
        check(
            "state.locking",
            Status::Skip,
            format!(
                "only the s3 backend is checked (this is `{}`)",
                backend.kind
            ),
            "",
        )
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
    });
    if backend.kind != "s3" {
        for id in [
            "state.versioning",
            "state.mfa_delete",
            "state.replication",
            "state.encryption",
            "state.public_access",
            "state.access",
            "state.replica_current",
        ] {
            checks.push(check(
                id,
                Status::Skip,
                format!(
                    "only the s3 backend is checked (this is `{}`)",
                    backend.kind
                ),
                "",
            ));
        }
        return checks;
    }
    let Some((entry, sts)) = probe else {
        for id in [
            "state.versioning",
            "state.mfa_delete",
            "state.replication",
            "state.encryption",
            "state.public_access",
            "state.access",
            "state.replica_current",
        ] {
            checks.push(check(
                id,
                Status::Skip,
                "skipped: the role could not be assumed",
                "fix role.assume first",
            ));
        }
        return checks;
    };
    let (Some(bucket), Some(key)) = (backend.string("bucket"), backend.string("key")) else {
        checks.push(check(
            "state.access",
            Status::Fail,
            "the s3 backend has no literal bucket and key",
            "set bucket and key in the backend block",
        ));
        return checks;
    };
    let creds_conf = sts_config(&sts, &backend);
    let s3 = aws_sdk_s3::Client::from_conf(creds_conf);
    checks.extend(rt.block_on(bucket_checks(&s3, bucket, key)));
    let replica = rt.block_on(crate::state::replica::current(
        &project.settings.state,
        &ctx.workdir,
        &workspace,
        &entry,
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

fn sts_config(sts: &Sts, backend: &Backend) -> aws_sdk_s3::Config {
    let base = sts.base_config();
    let mut b = aws_sdk_s3::config::Builder::from(&base);
    if let Some(region) = backend.string("region") {
        b = b.region(aws_sdk_s3::config::Region::new(region.to_string()));
    }
    if backend.bool("use_path_style") == Some(true)
        || backend.bool("force_path_style") == Some(true)
    {
        b = b.force_path_style(true);
    }
    b.build()
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

async fn bucket_checks(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<Check> {
    let mut out = Vec::new();
    let versioning = match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok((
            v.status().map(|s| s.as_str().to_string()),
            v.mfa_delete().map(|m| m.as_str().to_string()),
        )),
        // A bucket whose versioning was never set answers an empty document; some
        // S3-compatible servers (moto) name its root differently, which the SDK refuses.
        // The status is then read from the raw 200 answer.
        Err(e) => match e
            .raw_response()
            .filter(|r| r.status().as_u16() == 200)
            .and_then(|r| r.body().bytes())
        {
            Some(body) => {
                let body = String::from_utf8_lossy(body);
                Ok((xml_field(&body, "Status"), xml_field(&body, "MfaDelete")))
            }
            None => Err(e),
        },
    };
    match versioning {
        Ok((status, mfa_delete)) => {
            let on = status.as_deref() == Some("Enabled");
            out.push(if on {
                check("state.versioning", Status::Pass, format!("versioning is on for s3://{bucket}"), "")
            } else {
                check(
                    "state.versioning",
                    Status::Fail,
                    format!("versioning is off for s3://{bucket}: an overwritten state cannot be recovered"),
                    format!("aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"),
                )
            });
            out.push(if mfa_delete.as_deref() == Some("Enabled") {
                check("state.mfa_delete", Status::Pass, "MFA delete is on", "")
            } else {
                check(
                    "state.mfa_delete",
                    Status::Warn,
                    format!("MFA delete is not enabled or not visible for s3://{bucket} (unknown)"),
                    format!("as the root user: aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled,MFADelete=Enabled --mfa \"SERIAL CODE\""),
                )
            });
        }
        Err(e) => {
            out.push(api_fail(
                "state.versioning",
                "GetBucketVersioning",
                bucket,
                &e,
            ));
            out.push(check(
                "state.mfa_delete",
                Status::Warn,
                "unknown: versioning could not be read",
                "",
            ));
        }
    }
    out.push(setting(
        s3.get_bucket_replication().bucket(bucket).send().await,
        |r| {
            r.replication_configuration()
                .is_some_and(|c| !c.rules().is_empty())
        },
        "ReplicationConfigurationNotFoundError",
        ("state.replication", "GetBucketReplication", bucket),
        format!("s3://{bucket} is replicated"),
        no_replication(bucket),
    ));
    out.push(setting(
        s3.get_bucket_encryption().bucket(bucket).send().await,
        |r| {
            r.server_side_encryption_configuration()
                .is_some_and(|c| !c.rules().is_empty())
        },
        "ServerSideEncryptionConfigurationNotFoundError",
        ("state.encryption", "GetBucketEncryption", bucket),
        format!("default encryption is set on s3://{bucket}"),
        no_encryption(bucket),
    ));
    out.push(setting(
        s3.get_public_access_block().bucket(bucket).send().await,
        |r| {
            r.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            })
        },
        "NoSuchPublicAccessBlockConfiguration",
        ("state.public_access", "GetPublicAccessBlock", bucket),
        "all public access is blocked".to_string(),
        public_open(bucket),
    ));
    out.push(access_check(s3, bucket, key).await);
    out
}

/// Judges one bucket setting: pass when `present` holds, `missing` when it does not or
/// S3 answers `not_found`, and a failure naming the call otherwise.
fn setting<T, E>(
    answer: Result<T, E>,
    present: impl Fn(&T) -> bool,
    not_found: &str,
    (id, op, bucket): (&str, &str, &str),
    pass: String,
    missing: Check,
) -> Check
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match answer {
        Ok(r) if present(&r) => check(id, Status::Pass, pass, ""),
        Ok(_) => missing,
        Err(e) if e.code() == Some(not_found) => missing,
        Err(e) => api_fail(id, op, bucket, &e),
    }
}

/// The role can read the state object and write and delete a lock object. It uses a
/// probe key beside the state, never the state or its real lock.
async fn access_check(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Check {
    let read = match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => "can read the state".to_string(),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            "finds no state object yet".to_string()
        }
        Err(e) => return api_fail("state.access", "HeadObject (state)", bucket, &e),
    };
    let probe = format!("{key}.breakglass-doctor-probe.tflock");
    if let Err(e) = s3
        .put_object()
        .bucket(bucket)
        .key(&probe)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
        .send()
        .await
    {
        return api_fail("state.access", "PutObject (lock probe)", bucket, &e);
    }
    if let Err(e) = s3.delete_object().bucket(bucket).key(&probe).send().await {
        return api_fail("state.access", "DeleteObject (lock probe)", bucket, &e);
    }
    check(
        "state.access",
        Status::Pass,
        format!("the role {read} and can write and delete a lock object in s3://{bucket}"),
        "",
    )
}

fn no_replication(bucket: &str) -> Check {
    check(
        "state.replication",
        Status::Warn,
        format!("s3://{bucket} is not replicated to another region"),
        format!("aws s3api put-bucket-replication --bucket {bucket} --replication-configuration file://replication.json"),
    )
}

fn no_encryption(bucket: &str) -> Check {
    check(
        "state.encryption",
        Status::Warn,
        format!("no default encryption configuration is visible on s3://{bucket}"),
        format!("aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\"}}}}]}}'"),
    )
}

fn public_open(bucket: &str) -> Check {
    check(
        "state.public_access",
        Status::Warn,
        format!("public access is not fully blocked on s3://{bucket}"),
        format!("aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true"),
    )
}

fn api_fail<E: ProvideErrorMetadata + std::error::Error>(
    id: &str,
    op: &str,
    bucket: &str,
    e: &E,
) -> Check {
    let detail = match (e.code(), e.message()) {
        (Some(code), message) => format!("{code} {}", message.unwrap_or("")),
        (None, _) => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    };
    check(
        id,
        Status::Fail,
        format!("{op} on s3://{bucket} failed: {}", detail.trim()),
        "give the deployment role read access to the bucket's configuration (s3:GetBucket*, s3:GetObject, s3:PutObject, s3:DeleteObject)",
    )
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
