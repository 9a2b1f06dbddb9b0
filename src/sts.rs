//! Kept in one file because the SDK's error shapes and moto's variants are classified in one match, next to the calls that produce them.
//!
//! Talking to STS: the source identity (the standard AWS chain, or `source_profile`),
//! AssumeRole, GetSessionToken and GetCallerIdentity, each bounded in time, and every
//! failure turned into a message that says what to do.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::{PolicyDescriptorType, Tag};

use crate::secret::{Credentials, Secret};

/// The longest the whole credential step may take before it is called unreachable.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("access denied: {caller} may not assume {role}\n  what is missing: the role's trust policy must name {caller} as a principal allowed to sts:AssumeRole, and {caller} needs an identity policy allowing sts:AssumeRole on {role}\n  fix: ask your IAM admins to add both, then run `breakglass doctor` to check")]
    AccessDenied { caller: String, role: String },
    #[error("the source credentials ({source_desc}) were rejected by STS ({code}): they are expired or invalid\n  fix: {fix}")]
    InvalidSource {
        source_desc: String,
        code: String,
        fix: String,
    },
    #[error("no AWS credentials were found for the source identity ({detail})\n  looked in: {places}\n  fix: `aws sso login --profile NAME` and set source_profile = \"NAME\" in .breakglass.toml, or export AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials { places: String, detail: String },
    #[error("no AWS region is set\n  fix: add region = \"eu-west-1\" (your region) to .breakglass.toml, or export AWS_REGION")]
    MissingRegion,
    #[error("cannot reach STS at {endpoint}: {detail}\n  fix: check your network, VPN or proxy (and AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL if you set one), then run the command again")]
    Unreachable { endpoint: String, detail: String },
    #[error("duration = \"{duration}\" is longer than {role} allows: {message}\n  the limit is the role's MaxSessionDuration (1h unless raised, at most 12h), and 1h when the role is chained (assumed from another role's or an MFA session's credentials)\n  fix: set duration = \"1h\" in .breakglass.toml (breakglass refreshes the credentials for as long as terraform runs), or raise the role's MaxSessionDuration")]
    DurationTooLong {
        role: String,
        duration: String,
        message: String,
    },
    #[error("MFA is required (mfa_serial = {serial}) but {why}\n  fix: set BREAKGLASS_MFA_TOKEN=123456 for this run, or mfa_command = \"...\" in .breakglass.toml, or run from a terminal")]
    MfaUnavailable { serial: String, why: String },
    #[error("STS refused {operation} for {role}: {code}: {message}\n  fix: check the role ARN and the [role] settings in .breakglass.toml, then run `breakglass doctor`")]
    Refused {
        operation: String,
        role: String,
        code: String,
        message: String,
    },
}

/// Where the source identity comes from, for messages and for the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// `[role] source_profile`.
    ConfigProfile(String),
    /// `AWS_ACCESS_KEY_ID` in the environment.
    EnvKeys,
    /// `AWS_PROFILE` / `AWS_DEFAULT_PROFILE`.
    EnvProfile(String),
    /// The rest of the standard chain.
    DefaultChain,
}

impl SourceKind {
    /// How the source is chosen by this process's environment and the config.
    pub fn detect(source_profile: Option<&str>, env: &crate::env::Env) -> SourceKind {
        if let Some(p) = source_profile {
            SourceKind::ConfigProfile(p.to_string())
        } else if env.get("AWS_ACCESS_KEY_ID").is_some() {
            SourceKind::EnvKeys
        } else if let Some(p) = env
            .get("AWS_PROFILE")
            .or_else(|| env.get("AWS_DEFAULT_PROFILE"))
        {
            SourceKind::EnvProfile(p.to_string())
        } else {
            SourceKind::DefaultChain
        }
    }

    pub fn describe(&self) -> String {
        match self {
            SourceKind::ConfigProfile(p) => format!("profile `{p}`, from source_profile"),
            SourceKind::EnvKeys => "AWS_ACCESS_KEY_ID in the environment".to_string(),
            SourceKind::EnvProfile(p) => format!("profile `{p}`, from AWS_PROFILE"),
            SourceKind::DefaultChain => "the default AWS credential chain".to_string(),
        }
    }

    fn fix(&self) -> String {
        match self {
            SourceKind::ConfigProfile(p) | SourceKind::EnvProfile(p) => format!(
                "run `aws sso login --profile {p}` if it uses SSO, or renew its keys in ~/.aws/credentials; check with `aws sts get-caller-identity --profile {p}`"
            ),
            SourceKind::EnvKeys => "export fresh AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or unset them to use your profile; check with `aws sts get-caller-identity`".to_string(),
            SourceKind::DefaultChain => "run `aws sso login` (or `aws configure`), then check with `aws sts get-caller-identity`".to_string(),
        }
    }
}

/// Everything an AssumeRole call sends (serialized into the credential cache key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AssumeParams {
    pub role_arn: String,
    pub session_name: String,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub external_id: Option<String>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub policy_arns: Vec<String>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// An STS client for one source identity and region.
#[derive(Debug, Clone)]
pub struct Sts {
    client: aws_sdk_sts::Client,
    base: SdkConfig,
    pub source: SourceKind,
    pub region: String,
    /// The configured STS endpoint, for messages.
    pub endpoint: Option<String>,
}

/// The STS endpoint, for messages.
pub fn endpoint_description(region: &str, configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
}

/// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, from the environment.
pub fn configured_endpoint(env: &crate::env::Env) -> Option<String> {
    env.get("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(str::to_string)
}

/// The SDK's HTTPS client: hyper with rustls, on ring (the SDK's default client is the
/// same on aws-lc-rs, a much longer build). Every client and credential provider made
/// from the loaded config uses it.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build()
}

impl Sts {
    /// Loads the source identity's configuration (the standard chain, or the profile)
    /// and checks that it yields credentials at all.
    pub async fn connect(
        source_profile: Option<&str>,
        region: Option<&str>,
        source: SourceKind,
        endpoint: Option<String>,
    ) -> Result<Sts, StsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .timeout_config(timeouts())
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if let Some(p) = source_profile {
            // The profile and nothing else: built explicitly, because the default chain
            // puts AWS_ACCESS_KEY_ID in the environment before any profile.
            loader = loader.profile_name(p).credentials_provider(
                aws_config::profile::ProfileFileCredentialsProvider::builder()
                    .configure(
                        &aws_config::provider_config::ProviderConfig::default()
                            .with_http_client(https_client()),
                    )
                    .profile_name(p)
                    .build(),
            );
        }
        if let Some(r) = region {
            loader = loader.region(Region::new(r.to_string()));
        }
        let base = loader.load().await;
        let region = base
            .region()
            .map(|r| r.to_string())
            .ok_or(StsError::MissingRegion)?;
        let provider = base
            .credentials_provider()
            .ok_or_else(|| no_credentials("no provider is configured".into()))?;
        check_source(&provider, &source).await?;
        let client = aws_sdk_sts::Client::new(&base);
        Ok(Sts {
            client,
            base,
            source,
            region,
            endpoint,
        })
    }

    /// The config this client signs with.
    pub fn base_config(&self) -> SdkConfig {
        self.base.clone()
    }

    /// The source config (region, endpoints, timeouts), signing with `creds`.
    pub fn config_with(&self, creds: &Credentials) -> SdkConfig {
        let creds = creds.for_sdk("breakglass");
        self.base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .build()
    }

    /// The same source config, but signing with `session` (an MFA session, or
    /// assumed-role credentials).
    pub fn with_session(&self, session: &Credentials) -> Sts {
        let conf = aws_sdk_sts::config::Builder::from(&self.config_with(session)).build();
        Sts {
            client: aws_sdk_sts::Client::from_conf(conf),
            base: self.config_with(session),
            source: self.source.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
        }
    }

    /// AssumeRole. On AccessDenied, asks GetCallerIdentity who the caller is, so the
    /// message can name both ARNs.
    pub async fn assume_role(&self, p: &AssumeParams) -> Result<Credentials, StsError> {
        let mut req = self
            .client
            .assume_role()
            .role_arn(&p.role_arn)
            .role_session_name(&p.session_name)
            .duration_seconds(p.duration.as_secs().min(i32::MAX as u64) as i32);
        if let Some(id) = &p.external_id {
            req = req.external_id(id);
        }
        if let Some(si) = &p.source_identity {
            req = req.source_identity(si);
        }
        for (k, v) in &p.tags {
            if let Ok(tag) = Tag::builder().key(k).value(v).build() {
                req = req.tags(tag);
            }
        }
        for arn in &p.policy_arns {
            req = req.policy_arns(PolicyDescriptorType::builder().arn(arn).build());
        }
        match req.send().await {
            Ok(out) => convert(out.credentials(), &p.role_arn),
            Err(err) => Err(self.classify(err, "AssumeRole", &p.role_arn, Some(p)).await),
        }
    }

    /// GetSessionToken with an MFA code: the session later refreshes assume the role from.
    pub async fn mfa_session(
        &self,
        serial: &str,
        code: &str,
        duration: Duration,
    ) -> Result<Credentials, StsError> {
        let out = self
            .client
            .get_session_token()
            .serial_number(serial)
            .token_code(code)
            .duration_seconds(duration.as_secs().min(i32::MAX as u64) as i32)
            .send()
            .await;
        match out {
            Ok(out) => convert(out.credentials(), serial),
            Err(err) => Err(self.classify(err, "GetSessionToken", serial, None).await),
        }
    }

    /// The caller's ARN.
    pub async fn caller_arn(&self) -> Result<String, StsError> {
        match self.client.get_caller_identity().send().await {
            Ok(out) => Ok(out.arn().unwrap_or("unknown").to_string()),
            Err(err) => Err(self
                .classify(err, "GetCallerIdentity", "your identity", None)
                .await),
        }
    }

    async fn classify<E>(
        &self,
        err: SdkError<E, aws_smithy_runtime_api::http::Response>,
        operation: &str,
        role: &str,
        params: Option<&AssumeParams>,
    ) -> StsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (mut code, mut message) = (
            err.code().unwrap_or("").to_string(),
            err.message().unwrap_or("").to_string(),
        );
        if code.is_empty() {
            // Some STS-compatible servers (moto's IAM enforcement among them) wrap the
            // error in `<Errors>`, which the SDK's parser does not look into.
            if let Some(body) = err.raw_response().and_then(|r| r.body().bytes()) {
                let body = String::from_utf8_lossy(body);
                code = crate::quirks::xml_field(&body, "Code").unwrap_or_default();
                message = crate::quirks::xml_field(&body, "Message").unwrap_or_default();
            }
        }
        match (&err, code.as_str()) {
            (SdkError::ServiceError(_), "AccessDenied" | "AccessDeniedException")
                if operation == "AssumeRole" =>
            {
                let caller = match Box::pin(self.caller_arn()).await {
                    Ok(arn) => arn,
                    Err(_) => format!("your source identity ({})", self.source.describe()),
                };
                StsError::AccessDenied {
                    caller,
                    role: role.to_string(),
                }
            }
            (
                SdkError::ServiceError(_),
                "InvalidClientTokenId"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "SignatureDoesNotMatch"
                | "UnrecognizedClientException",
            ) => StsError::InvalidSource {
                source_desc: self.source.describe(),
                code,
                fix: self.source.fix(),
            },
            (SdkError::ServiceError(_), "ValidationError")
                if message.contains("DurationSeconds")
                    || message.contains("MaxSessionDuration") =>
            {
                StsError::DurationTooLong {
                    role: role.to_string(),
                    duration: params
                        .map(|p| crate::config::format_duration(p.duration))
                        .unwrap_or_default(),
                    message,
                }
            }
            (SdkError::ServiceError(_), _) | (SdkError::ResponseError(_), _)
                if !code.is_empty() =>
            {
                StsError::Refused {
                    operation: operation.to_string(),
                    role: role.to_string(),
                    code,
                    message,
                }
            }
            _ => {
                let detail = DisplayErrorContext(&err).to_string();
                if detail.contains("failed to load credentials")
                    || detail.contains("no providers in chain")
                    || detail.contains("identity")
                {
                    no_credentials(detail)
                } else {
                    StsError::Unreachable {
                        endpoint: endpoint_description(&self.region, self.endpoint.as_deref()),
                        detail: short(&detail),
                    }
                }
            }
        }
    }
}

/// The places the standard chain looks in.
pub const CHAIN_PLACES: &str = "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), AWS_PROFILE, the shared credentials file (~/.aws/credentials), the shared config file (~/.aws/config: profiles, SSO, credential_process), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS container endpoint, EC2 instance metadata (IMDS)";

fn no_credentials(detail: String) -> StsError {
    StsError::NoCredentials {
        places: CHAIN_PLACES.to_string(),
        detail: short(&detail),
    }
}

fn short(s: &str) -> String {
    // DisplayErrorContext ends with a Debug dump in parentheses; the prose before it is
    // what a person can act on.
    let s = s.split(" (").next().unwrap_or(s).replace('\n', " ");
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// Resolves the source credentials once, so a missing or broken identity is reported
/// as such instead of as an STS failure.
async fn check_source(
    provider: &SharedCredentialsProvider,
    source: &SourceKind,
) -> Result<(), StsError> {
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(e @ CredentialsError::CredentialsNotLoaded(_)) => {
            Err(no_credentials(DisplayErrorContext(&e).to_string()))
        }
        Err(CredentialsError::ProviderTimedOut(_)) => Err(StsError::Unreachable {
            endpoint: "the credential provider".to_string(),
            detail: format!("no answer within {} s", TOTAL_TIMEOUT.as_secs()),
        }),
        Err(e) => Err(StsError::InvalidSource {
            source_desc: source.describe(),
            code: short(&DisplayErrorContext(&e).to_string()),
            fix: source.fix(),
        }),
    }
}

fn convert(
    c: Option<&aws_sdk_sts::types::Credentials>,
    what: &str,
) -> Result<Credentials, StsError> {
    let c = c.ok_or_else(|| StsError::Refused {
        operation: "AssumeRole".to_string(),
        role: what.to_string(),
        code: "NoCredentials".to_string(),
        message: "STS answered without credentials".to_string(),
    })?;
    let secs = c.expiration().secs();
    let expiration = if secs > 0 {
        secs as u64
    } else {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    Ok(Credentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: Secret::new(c.secret_access_key()),
        session_token: Secret::new(c.session_token()),
        expiration,
    })
}

impl From<StsError> for crate::error::Error {
    fn from(e: StsError) -> Self {
        crate::error::Error::Role(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn sts() -> Sts {
        let base = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        Sts {
            client: aws_sdk_sts::Client::new(&base),
            base,
            source: SourceKind::EnvKeys,
            region: "us-east-1".into(),
            endpoint: None,
        }
    }

    /// A service error as the SDK hands it over: parsed metadata (if any) and the raw body.
    fn service_error(
        code: Option<&str>,
        message: &str,
        body: &str,
    ) -> SdkError<AssumeRoleError, Response> {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(c) = code {
            meta = meta.code(c);
        }
        let status = StatusCode::try_from(403).unwrap();
        SdkError::service_error(
            AssumeRoleError::generic(meta.build()),
            Response::new(status, SdkBody::from(body.to_string())),
        )
    }

    fn params() -> AssumeParams {
        AssumeParams {
            role_arn: "arn:aws:iam::111111111111:role/deploy".into(),
            session_name: "s".into(),
            duration: Duration::from_secs(4 * 3600),
            external_id: None,
            source_identity: None,
            tags: BTreeMap::new(),
            policy_arns: vec![],
        }
    }

    fn classify(err: SdkError<AssumeRoleError, Response>) -> StsError {
        let p = params();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(sts().classify(err, "AssumeRole", &p.role_arn, Some(&p)))
    }

    #[test]
    fn a_duration_over_the_role_maximum_says_so_and_gives_the_limit() {
        let e = classify(service_error(
            Some("ValidationError"),
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            "",
        ));
        let text = e.to_string();
        assert!(matches!(e, StsError::DurationTooLong { .. }), "{text}");
        assert!(
            text.contains("duration = \"4h\"") && text.contains("MaxSessionDuration"),
            "{text}"
        );
        assert!(text.contains("1h when the role is chained"), "{text}");
    }

    #[test]
    fn rejected_source_keys_say_what_to_renew() {
        let e = classify(service_error(
            Some("ExpiredToken"),
            "The security token included in the request is expired",
            "",
        ));
        let text = e.to_string();
        assert!(matches!(e, StsError::InvalidSource { .. }), "{text}");
        assert!(
            text.contains("AWS_ACCESS_KEY_ID in the environment")
                && text.contains("fix: export fresh"),
            "{text}"
        );
    }

    #[test]
    fn codes_the_sdk_could_not_parse_are_read_from_the_body() {
        // moto's IAM enforcement wraps the error in <Errors>.
        let body = "<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>";
        let e = classify(service_error(None, "", body));
        assert!(
            matches!(&e, StsError::InvalidSource { code, .. } if code == "InvalidClientTokenId"),
            "{e}"
        );
    }

    #[test]
    fn other_refusals_name_the_code_and_the_role() {
        let e = classify(service_error(
            Some("RegionDisabledException"),
            "STS is not activated in this region",
            "",
        ));
        let text = e.to_string();
        assert!(
            text.contains("RegionDisabledException") && text.contains("role/deploy"),
            "{text}"
        );
    }
}
