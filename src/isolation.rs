//! The environment terraform runs in: exactly the assumed role, whatever the user's
//! environment holds. Every variable that would make an AWS SDK choose another
//! identity is removed; endpoints, CA bundles and the region are kept.

use std::ffi::OsString;

use crate::nested::Marker;

/// Variables that select an identity; removed from terraform's environment.
pub const IDENTITY_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_SSO_SESSION",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "BREAKGLASS_MFA_TOKEN",
];

pub use crate::nested::NESTED_VAR;

/// One change to terraform's environment: set, or remove with `None`.
pub type EnvChange = (OsString, Option<OsString>);

/// The changes every hand-over makes: identity variables removed, the nested-run
/// marker set.
fn base_changes(marker: &Marker) -> Vec<EnvChange> {
    let mut env: Vec<EnvChange> = IDENTITY_VARS
        .iter()
        .map(|k| (OsString::from(k), None))
        .collect();
    env.push(set(NESTED_VAR, marker.value()));
    env
}

fn set(k: &str, v: impl Into<OsString>) -> EnvChange {
    (OsString::from(k), Some(v.into()))
}

/// The plain hand-over (`delivery = "env"`): static variables, never refreshed.
pub fn env_delivery(
    creds: &crate::secret::Credentials,
    region: &str,
    marker: &Marker,
) -> Vec<EnvChange> {
    let mut env = base_changes(marker);
    env.push(set("AWS_ACCESS_KEY_ID", &creds.access_key_id));
    env.push(set(
        "AWS_SECRET_ACCESS_KEY",
        creds.secret_access_key.expose(),
    ));
    env.push(set("AWS_SESSION_TOKEN", creds.session_token.expose()));
    env.push(set("AWS_REGION", region));
    env.push(set("AWS_DEFAULT_REGION", region));
    env
}

/// The supervised hand-over: the loopback credential endpoint, and generated shared
/// config and credentials files (region only, no profiles), so that a `[default]`
/// profile with static keys cannot outrank the endpoint in the SDK's chain.
pub fn endpoint_delivery(
    endpoint_env: &[(String, String)],
    region: &str,
    run_dir: &std::path::Path,
    marker: &Marker,
) -> std::io::Result<Vec<EnvChange>> {
    let config = run_dir.join("config");
    let credentials = run_dir.join("credentials");
    std::fs::write(&config, format!("[default]\nregion = {region}\n"))?;
    std::fs::write(&credentials, "")?;
    let mut env = base_changes(marker);
    for (k, v) in endpoint_env {
        env.push(set(k, v));
    }
    env.push(set("AWS_CONFIG_FILE", config));
    env.push(set("AWS_SHARED_CREDENTIALS_FILE", credentials));
    env.push(set("AWS_REGION", region));
    env.push(set("AWS_DEFAULT_REGION", region));
    // Nothing falls through to instance metadata.
    env.push(set("AWS_EC2_METADATA_DISABLED", "true"));
    Ok(env)
}
