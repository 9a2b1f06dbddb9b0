//! `breakglass credentials --format process|terragrunt`: the role's credentials as the
//! JSON another tool reads. `process` is the AWS SDKs' `credential_process` document
//! (Version 1); `terragrunt` is what Terragrunt's `--auth-provider-cmd` reads. Neither
//! is refreshed: terraform through the shim (or `breakglass exec`) is.

use crate::broker::Entry;

/// Which tool reads the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CredentialsFormat {
    /// `credential_process` JSON (Version 1), for `~/.aws/config`.
    Process,
    /// Terragrunt's `--auth-provider-cmd` JSON (`awsCredentials` and `envs`).
    Terragrunt,
}

/// The document for `format`. It holds the secret key and the session token: it is
/// meant for stdout only.
pub fn document(format: CredentialsFormat, entry: &Entry) -> serde_json::Value {
    let c = &entry.credentials;
    match format {
        CredentialsFormat::Process => serde_json::json!({
            "Version": 1,
            "AccessKeyId": c.access_key_id,
            "SecretAccessKey": c.secret_access_key.expose(),
            "SessionToken": c.session_token.expose(),
            "Expiration": crate::clock::rfc3339(c.expires_at()),
        }),
        CredentialsFormat::Terragrunt => serde_json::json!({
            "awsCredentials": {
                "ACCESS_KEY_ID": c.access_key_id,
                "SECRET_ACCESS_KEY": c.secret_access_key.expose(),
                "SESSION_TOKEN": c.session_token.expose(),
            },
            "envs": {
                "AWS_REGION": entry.region,
                "AWS_DEFAULT_REGION": entry.region,
            },
        }),
    }
}
