//! `breakglass env` and `breakglass credentials`: the role's credentials handed over
//! as `export` lines (the seed's manual procedure) or as JSON (`credential_process`,
//! or Terragrunt's `--auth-provider-cmd`).
//! Never refreshed; the secrets go to stdout by design.

use crate::broker::{Broker, Entry};
use crate::context::Context;
use crate::error::Error;
use crate::outln;
use crate::run::command_mode;

/// Credentials for the role of the directory acted on (cached if possible).
fn obtain(ctx: &Context, command: &str) -> Result<Entry, Error> {
    ctx.outside_a_run()?;
    let target = ctx.target()?;
    let reason = crate::run::reason(ctx, &command_mode(ctx, command));
    let broker = Broker::new(
        crate::policy::request(ctx.project()?, &target, false, reason.as_deref(), &ctx.env),
        &ctx.dirs()?,
    );
    let mut rt = None;
    Ok(crate::run::obtain(&broker, &mut rt)?.0)
}

/// Single-quotes a value for POSIX shells.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub fn env(ctx: &Context) -> Result<i32, Error> {
    let entry = obtain(ctx, "env")?;
    let c = &entry.credentials;
    crate::say!(
        "breakglass: credentials for {} until {}; they are NOT refreshed: prefer `terraform` through the shim or `breakglass exec`",
        entry.role_arn,
        crate::clock::rfc3339(c.expires_at())
    );
    outln!("unset AWS_PROFILE");
    outln!("unset AWS_DEFAULT_PROFILE");
    outln!("export AWS_ACCESS_KEY_ID={}", sh_quote(&c.access_key_id));
    outln!(
        "export AWS_SECRET_ACCESS_KEY={}",
        sh_quote(c.secret_access_key.expose())
    );
    outln!(
        "export AWS_SESSION_TOKEN={}",
        sh_quote(c.session_token.expose())
    );
    outln!("export AWS_REGION={}", sh_quote(&entry.region));
    outln!("export AWS_DEFAULT_REGION={}", sh_quote(&entry.region));
    Ok(0)
}

pub fn credentials(
    ctx: &Context,
    format: super::credentials::CredentialsFormat,
) -> Result<i32, Error> {
    let entry = obtain(ctx, "credentials")?;
    outln!("{}", super::credentials::document(format, &entry));
    Ok(0)
}
