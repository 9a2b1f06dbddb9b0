//! The state bucket's settings, judged as the role: versioning (and MFA delete),
//! replication, default encryption, public access, and access to the state object and
//! a lock object. moto's answers that the SDK cannot read are read raw
//! ([`crate::quirks`]).

use aws_sdk_s3::error::ProvideErrorMetadata;

use super::{check, Check, Status};
use crate::backend::Backend;
use crate::quirks::xml_field;
use crate::sts::Sts;

/// An S3 client config signing as the role, reaching the bucket the way the backend
/// block says (region, path style).
pub(super) fn sts_config(sts: &Sts, backend: &Backend) -> aws_sdk_s3::Config {
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

/// Every bucket check for `bucket`, with `key` the state object.
pub(super) async fn bucket_checks(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<Check> {
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
