//! S3 under the role, for the state commands: the state object's current content, one
//! of its versions, the list of its versions, and a bucket's replication destination
//! and region. Every call is bounded in time: a bucket in a region that is down must
//! not hang the command that is meant to get around it.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::broker::Entry;

use super::location::Location;
use super::StateError;

/// How many entries one ListObjectVersions page asks for.
pub const PAGE: i32 = 100;

/// The longest one S3 call may take, retries included.
pub const LIMIT: Duration = Duration::from_secs(20);

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(LIMIT)
        .read_timeout(Duration::from_secs(10))
        .build()
}

/// An S3 client signing with the role's credentials, in `region`, reaching S3 the way
/// the backend block says (path style, endpoint) or the environment does
/// (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`).
pub async fn client(entry: &Entry, region: &str, loc: &Location) -> aws_sdk_s3::Client {
    let c = &entry.credentials;
    let creds = c.for_sdk("breakglass");
    let base = aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::sts::https_client())
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(creds))
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let mut b = aws_sdk_s3::config::Builder::from(&base).force_path_style(loc.path_style);
    if let Some(endpoint) = &loc.endpoint {
        b = b.endpoint_url(endpoint);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// One object version's content.
#[derive(Debug, Clone)]
pub struct Object {
    pub version_id: Option<String>,
    pub bytes: Vec<u8>,
}

/// One entry of the version list.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub version_id: String,
    pub last_modified: String,
    pub size: i64,
    pub latest: bool,
}

/// A page of versions of exactly one key, newest first.
#[derive(Debug, Clone)]
pub struct VersionPage {
    pub versions: Vec<VersionInfo>,
    /// Older versions of the key exist beyond this page.
    pub more: bool,
}

/// What went wrong in one S3 call, in a line.
pub fn detail<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::TimeoutError(_) => "no answer in time (is the bucket's region down?)".to_string(),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            "no answer in time (is the bucket's region down?)".to_string()
        }
        SdkError::DispatchFailure(_) => format!(
            "cannot reach S3 ({})",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ),
        _ => match (e.code(), e.message()) {
            (Some(code), m) => format!("{code} {}", m.unwrap_or("")).trim().to_string(),
            _ => match e.raw_response() {
                Some(r) => format!("HTTP {}", r.status().as_u16()),
                None => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            },
        },
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// The state object at one location, under the role.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_s3::Client,
    pub loc: Location,
}

impl Store {
    /// A store for `loc`, in its region (else the role's).
    pub async fn connect(entry: &Entry, loc: Location) -> Store {
        let region = loc.region.clone().unwrap_or_else(|| entry.region.clone());
        Store {
            client: client(entry, &region, &loc).await,
            loc,
        }
    }

    fn failed(&self, op: &str, detail: String, fix: impl Into<String>) -> StateError {
        StateError::S3 {
            op: op.to_string(),
            target: self.loc.url(),
            detail,
            fix: fix.into(),
        }
    }

    /// The fix for a failed read of the state bucket.
    pub fn read_fix(&self) -> String {
        format!(
            "check that the role may read s3://{} (s3:GetObject, s3:GetObjectVersion, s3:ListBucketVersions); if its region is down, `breakglass state failover`",
            self.loc.bucket
        )
    }

    async fn get(&self, version: Option<&str>) -> Result<Option<Object>, StateError> {
        let op = if version.is_some() {
            "GetObject (version)"
        } else {
            "GetObject"
        };
        let answer = self
            .client
            .get_object()
            .bucket(&self.loc.bucket)
            .key(&self.loc.key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e)
                if status(&e) == Some(404)
                    || matches!(e.code(), Some("NoSuchVersion" | "InvalidArgument")) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(self.failed(op, detail(&e), self.read_fix())),
        };
        let version_id = out.version_id().map(str::to_string);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.failed(op, format!("reading the body: {e}"), self.read_fix()))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object { version_id, bytes }))
    }

    /// The current state object, or `None` when there is none (never written, or a
    /// delete marker on top).
    pub async fn current(&self) -> Result<Option<Object>, StateError> {
        self.get(None).await
    }

    /// One version of the state object, or `None` when the key has no such version.
    pub async fn version(&self, id: &str) -> Result<Option<Object>, StateError> {
        self.get(Some(id)).await
    }

    /// The newest versions of exactly the state key: one page. The `.tflock` object's
    /// versions share the prefix and are left out, and so are delete markers.
    pub async fn versions(&self) -> Result<VersionPage, StateError> {
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.loc.bucket)
            .prefix(&self.loc.key)
            .max_keys(PAGE)
            .send()
            .await
            .map_err(|e| self.failed("ListObjectVersions", detail(&e), self.read_fix()))?;
        let versions: Vec<VersionInfo> = out
            .versions()
            .iter()
            .filter(|v| v.key() == Some(self.loc.key.as_str()))
            .filter_map(|v| {
                Some(VersionInfo {
                    version_id: v.version_id()?.to_string(),
                    last_modified: v
                        .last_modified()
                        .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                        .unwrap_or_default(),
                    size: v.size().unwrap_or(0),
                    latest: v.is_latest() == Some(true),
                })
            })
            .collect();
        // Versions come in key order, newest first within a key: the page stopped
        // inside the state key only if the next marker is still that key.
        let more = out.is_truncated() == Some(true)
            && out.next_key_marker() == Some(self.loc.key.as_str());
        Ok(VersionPage { versions, more })
    }

    /// The bucket the state key is replicated to: the first enabled rule of the
    /// bucket's replication configuration whose prefix covers the key. `None` when the
    /// bucket has no replication for it.
    pub async fn replication_destination(&self) -> Result<Option<String>, StateError> {
        let answer = self
            .client
            .get_bucket_replication()
            .bucket(&self.loc.bucket)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) if e.code() == Some("ReplicationConfigurationNotFoundError") => return Ok(None),
            Err(e) => {
                return Err(StateError::S3 {
                    op: "GetBucketReplication".to_string(),
                    target: format!("s3://{}", self.loc.bucket),
                    detail: detail(&e),
                    fix: "the primary may be down: set [state] replica_bucket = \"NAME\" and replica_region = \"REGION\" in .breakglass.toml".to_string(),
                })
            }
        };
        let Some(conf) = out.replication_configuration() else {
            return Ok(None);
        };
        for rule in conf.rules() {
            if rule.status().as_str() != "Enabled" {
                continue;
            }
            #[allow(deprecated)]
            let prefix = rule
                .filter()
                .and_then(|f| f.prefix().or_else(|| f.and().and_then(|a| a.prefix())))
                .or(rule.prefix())
                .unwrap_or("");
            if !self.loc.key.starts_with(prefix) {
                continue;
            }
            if let Some(dest) = rule.destination().map(|d| d.bucket()) {
                // arn:PARTITION:s3:::NAME
                let name = dest.rsplit(":::").next().unwrap_or(dest);
                return Ok(Some(name.to_string()));
            }
        }
        Ok(None)
    }

    /// The region `bucket` lives in (GetBucketLocation; an empty answer is
    /// us-east-1, `EU` is eu-west-1).
    pub async fn bucket_region(&self, bucket: &str) -> Result<String, StateError> {
        let out = self
            .client
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| StateError::S3 {
                op: "GetBucketLocation".to_string(),
                target: format!("s3://{bucket}"),
                detail: detail(&e),
                fix: format!("set [state] replica_region = \"REGION\" (the region of {bucket}) in .breakglass.toml"),
            })?;
        Ok(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(r) => r.to_string(),
        })
    }
}
