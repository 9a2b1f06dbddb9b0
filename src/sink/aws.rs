//! The team trail's AWS calls, signed with the role's credentials: PutObject with
//! `If-None-Match: *` (a 412 means the event is already there), SNS Publish and
//! GetTopicAttributes, and the listing and reading of the trail for `log --team`.
//! Every failure is classified so that a message can name the missing permission.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::event::Alert;
use super::Destination;
use crate::broker::Entry;

/// A failed call to the trail or the topic.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("{operation} on {target} was denied ({code}): the role needs {permission}")]
    Denied {
        operation: &'static str,
        target: String,
        code: String,
        permission: String,
    },
    #[error("{operation} on {target} failed: {detail}")]
    Failed {
        operation: &'static str,
        target: String,
        detail: String,
    },
    #[error("no answer within {0}")]
    TimedOut(String),
}

/// S3 and SNS clients for one destination, signing as the role.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: Option<aws_sdk_s3::Client>,
    pub sns: Option<aws_sdk_sns::Client>,
}

impl Clients {
    /// Clients for `dest`, signing with `creds`, each call bounded by `bound`. The
    /// endpoints, CA bundle and the like come from the environment and the AWS config
    /// files as for any AWS tool; the identity never does.
    pub async fn new(dest: &Destination, creds: &Entry, bound: Duration) -> Clients {
        let c = &creds.credentials;
        let provider = c.for_sdk("breakglass-role");
        let base = |region: String| {
            aws_config::defaults(BehaviorVersion::latest())
                .http_client(crate::sts::https_client())
                .region(Region::new(region))
                .credentials_provider(SharedCredentialsProvider::new(provider.clone()))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(bound.min(Duration::from_secs(2)))
                        .operation_attempt_timeout(bound)
                        .operation_timeout(bound)
                        .build(),
                )
                .retry_config(RetryConfig::standard().with_max_attempts(2))
                .load()
        };
        let s3 = match &dest.s3 {
            Some(_) => Some(aws_sdk_s3::Client::new(&base(creds.region.clone()).await)),
            None => None,
        };
        let sns = match dest.topic_region() {
            Some(region) => {
                let conf = aws_sdk_sns::config::Builder::from(&base(region.to_string()).await)
                    .interceptor(crate::quirks::FormSpaces)
                    .build();
                Some(aws_sdk_sns::Client::from_conf(conf))
            }
            None => None,
        };
        Clients { s3, sns }
    }
}

/// How a PutObject ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Written,
    /// 412: an earlier try already wrote it.
    AlreadyThere,
}

/// Writes one event object, never over an existing one.
pub async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &str,
) -> Result<Put, SinkError> {
    let sent = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .if_none_match("*")
        .content_type("application/json")
        .body(aws_sdk_s3::primitives::ByteStream::from(
            body.as_bytes().to_vec(),
        ))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(Put::Written),
        Err(e) if status(&e) == Some(412) => Ok(Put::AlreadyThere),
        Err(e) => Err(classify(
            e,
            "PutObject",
            format!("s3://{bucket}/{key}"),
            format!("s3:PutObject on arn:aws:s3:::{bucket}/{}*", key_folder(key)),
        )),
    }
}

/// The part of `key` before the date folder, for permission messages.
fn key_folder(key: &str) -> &str {
    // `<prefix><date>/<file>`: drop the last two parts.
    let mut parts = key.rsplitn(3, '/');
    let (_, _) = (parts.next(), parts.next());
    match parts.next() {
        Some(prefix) if !prefix.is_empty() => &key[..prefix.len() + 1],
        _ => "",
    }
}

/// Publishes an alert. On a FIFO topic the event id deduplicates retries.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic: &str,
    alert: &Alert,
    event_id: &str,
) -> Result<(), SinkError> {
    let mut req = sns
        .publish()
        .topic_arn(topic)
        .subject(&alert.subject)
        .message(&alert.message);
    if topic.ends_with(".fifo") {
        req = req
            .message_group_id("breakglass")
            .message_deduplication_id(event_id);
    }
    req.send().await.map(|_| ()).map_err(|e| {
        classify(
            e,
            "Publish",
            topic.to_string(),
            format!("sns:Publish on {topic}"),
        )
    })
}

/// GetTopicAttributes: the topic exists and the role may see it.
pub async fn topic_attributes(sns: &aws_sdk_sns::Client, topic: &str) -> Result<(), SinkError> {
    sns.get_topic_attributes()
        .topic_arn(topic)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            classify(
                e,
                "GetTopicAttributes",
                topic.to_string(),
                format!("sns:GetTopicAttributes and sns:Publish on {topic}"),
            )
        })
}

/// Every key under `prefix`.
pub async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, SinkError> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| {
                classify(
                    e,
                    "ListObjectsV2",
                    format!("s3://{bucket}/{prefix}"),
                    format!("s3:ListBucket on arn:aws:s3:::{bucket}"),
                )
            })?;
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => return Ok(keys),
        }
    }
}

/// One object's body.
pub async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, SinkError> {
    let folder = key_folder(key).to_string();
    let failed = |detail: String| SinkError::Failed {
        operation: "GetObject",
        target: format!("s3://{bucket}/{key}"),
        detail,
    };
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            classify(
                e,
                "GetObject",
                format!("s3://{bucket}/{key}"),
                format!("s3:GetObject on arn:aws:s3:::{bucket}/{folder}*"),
            )
        })?;
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(bytes.into_bytes().to_vec())
}

fn status<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Denied (403, AccessDenied, ...) with the permission to grant, or a plain failure.
fn classify<E>(
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
    operation: &'static str,
    target: String,
    permission: String,
) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut code = e.code().unwrap_or("").to_string();
    if code.is_empty() {
        // moto's IAM enforcement wraps errors in `<Errors>`, which the SDK does not read.
        if let Some(body) = e.raw_response().and_then(|r| r.body().bytes()) {
            code = crate::quirks::xml_field(&String::from_utf8_lossy(body), "Code")
                .unwrap_or_default();
        }
    }
    let denied = status(&e) == Some(403)
        || code.contains("AccessDenied")
        || code == "AuthorizationError"
        || code == "Forbidden";
    if denied {
        return SinkError::Denied {
            operation,
            target,
            code: if code.is_empty() {
                "403".to_string()
            } else {
                code
            },
            permission,
        };
    }
    let detail = match (e.code(), e.message()) {
        (Some(c), m) => format!("{c} {}", m.unwrap_or("")).trim().to_string(),
        _ if !code.is_empty() => code,
        _ => DisplayErrorContext(&e).to_string(),
    };
    SinkError::Failed {
        operation,
        target,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_of_a_key_is_its_prefix() {
        assert_eq!(
            key_folder("breakglass/audit/2026-11-22/053012.123Z-ab.json"),
            "breakglass/audit/"
        );
        assert_eq!(key_folder("2026-11-22/053012.123Z-ab.json"), "");
    }
}
