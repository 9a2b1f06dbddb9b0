//! The `[audit]` table: where the team audit trail goes (an S3 prefix, an optional SNS
//! topic for alerts) and how long a run may wait for it. Read and checked here, used by
//! `sink`. No AWS SDK: this is part of the config the shim reads.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{overlay, ConfigError, Located, Source};

/// How long a run waits for the team trail by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest wait `timeout` may ask for: the trail must never hold up an emergency.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// `s3://BUCKET/PREFIX/`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl S3Location {
    /// Reads `s3://bucket/prefix/`. A prefix without a trailing `/` gets one, so the
    /// dated keys always sit in a folder of their own.
    pub fn parse(url: &str) -> Result<S3Location, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| "it does not start with s3://".to_string())?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(format!("`{bucket}` is not an S3 bucket name"));
        }
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// The resource ARN covering every key under the prefix (for messages and policies).
    pub fn arn_pattern(&self) -> String {
        format!("arn:aws:s3:::{}/{}*", self.bucket, self.prefix)
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The `[audit]` settings after layering.
#[derive(Debug, Clone, Default)]
pub struct AuditSettings {
    pub s3: Option<Located<S3Location>>,
    pub sns_topic_arn: Option<Located<String>>,
    pub timeout: Option<Located<Duration>>,
}

impl AuditSettings {
    /// True when a trail or an alert is configured.
    pub fn is_configured(&self) -> bool {
        self.s3.is_some() || self.sns_topic_arn.is_some()
    }

    /// The bound on how long a run waits for the trail.
    pub fn timeout(&self) -> Duration {
        self.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |t| t.value)
    }

    pub(super) fn overlay(&mut self, over: AuditSettings) {
        overlay(&mut self.s3, over.s3);
        overlay(&mut self.sns_topic_arn, over.sns_topic_arn);
        overlay(&mut self.timeout, over.timeout);
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    s3: Option<Spanned<String>>,
    sns_topic_arn: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl AuditSettings {
    pub(super) fn from_raw(src: &Source, raw: RawAudit) -> Result<AuditSettings, ConfigError> {
        let s3 = match src.string(raw.s3) {
            None => None,
            Some(url) => {
                let value = S3Location::parse(&url.value).map_err(|why| {
                    url.origin.error(
                        format!("s3 = \"{}\": {why}", url.value),
                        "write the trail's place as s3 = \"s3://BUCKET/breakglass/audit/\"",
                    )
                })?;
                Some(Located {
                    value,
                    origin: url.origin,
                })
            }
        };
        let sns_topic_arn = src.string(raw.sns_topic_arn);
        if let Some(arn) = &sns_topic_arn {
            if topic_region(&arn.value).is_none() {
                return Err(arn.origin.error(
                    format!("`{}` is not an SNS topic ARN", arn.value),
                    "write it as \"arn:aws:sns:eu-west-1:111111111111:breakglass\"",
                ));
            }
        }
        let timeout = src.duration(raw.timeout)?;
        if let Some(t) = &timeout {
            if t.value.is_zero() || t.value > MAX_TIMEOUT {
                return Err(t.origin.error(
                    format!(
                        "timeout = \"{}\" is outside 1ms..30s",
                        super::format_duration(t.value)
                    ),
                    "use a short bound such as \"2s\": the trail must never hold up terraform",
                ));
            }
        }
        Ok(AuditSettings {
            s3,
            sns_topic_arn,
            timeout,
        })
    }
}

/// The region of an SNS topic ARN (`arn:PARTITION:sns:REGION:ACCOUNT:NAME`), or `None`
/// when it is not one.
pub fn topic_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty()
        && parts[5]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then_some(parts[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_split_and_end_in_a_slash() {
        let l = S3Location::parse("s3://tfstate/breakglass/audit/").unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("tfstate", "breakglass/audit/")
        );
        assert_eq!(
            S3Location::parse("s3://tfstate/audit").unwrap().prefix,
            "audit/"
        );
        assert_eq!(S3Location::parse("s3://tfstate").unwrap().prefix, "");
        assert_eq!(
            S3Location::parse("s3://tfstate/a/").unwrap().arn_pattern(),
            "arn:aws:s3:::tfstate/a/*"
        );
        assert!(S3Location::parse("tfstate/audit").is_err());
        assert!(S3Location::parse("s3://Bad_Bucket/x").is_err());
    }

    #[test]
    fn topic_arns_give_their_region() {
        assert_eq!(
            topic_region("arn:aws:sns:us-east-1:111111111111:breakglass"),
            Some("us-east-1")
        );
        assert_eq!(topic_region("arn:aws:sns:us-east-1:1111:x"), None);
        assert_eq!(topic_region("arn:aws:sqs:us-east-1:111111111111:x"), None);
    }
}
