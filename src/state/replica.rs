//! The state's replica: which bucket and region hold the copy (the config's
//! `[state] replica_bucket` / `replica_region`, else the primary bucket's replication
//! configuration), and the finding behind the doctor's `state.replica_current` check,
//! which compares the serial in the replica with the primary's.

use std::path::Path;

use crate::broker::Entry;
use crate::config::StateSettings;

use super::location::{original_backend, Location};
use super::s3::Store;
use super::snapshot::Snapshot;
use super::StateError;

/// Where the replica is, and how breakglass knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub bucket: String,
    pub region: String,
    /// `[state] in .breakglass.toml` or `the replication configuration of s3://B`.
    pub from: String,
}

/// The replica of the primary's state: the config's `[state]` keys first (they need no
/// call to a region that may be down), else the primary bucket's replication
/// configuration. `None` when neither names one.
pub async fn resolve(
    settings: &StateSettings,
    primary: &Store,
) -> Result<Option<Replica>, StateError> {
    let (bucket, from) = match &settings.replica_bucket {
        Some(b) => (
            b.value.clone(),
            format!("[state] replica_bucket in {}", b.origin.file.display()),
        ),
        None => match primary.replication_destination().await? {
            Some(b) => (
                b,
                format!(
                    "the replication configuration of s3://{}",
                    primary.loc.bucket
                ),
            ),
            None => return Ok(None),
        },
    };
    let region = match &settings.replica_region {
        Some(r) => r.value.clone(),
        None => primary.bucket_region(&bucket).await?,
    };
    Ok(Some(Replica {
        bucket,
        region,
        from,
    }))
}

/// Reads and parses the state at `store`, `None` when there is none.
pub async fn read_state(store: &Store) -> Result<Option<Snapshot>, StateError> {
    match store.current().await? {
        None => Ok(None),
        Some(obj) => Snapshot::parse(&obj.bytes)
            .map(Some)
            .map_err(|why| StateError::Unreadable {
                what: store.loc.url(),
                why,
                fix: "look at its versions with `breakglass state versions` and restore a good one"
                    .to_string(),
            }),
    }
}

/// How current the replica is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

/// One finding: the verdict, a line of why and one of how to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub verdict: Verdict,
    pub summary: String,
    pub fix: String,
}

fn check(verdict: Verdict, summary: impl Into<String>, fix: impl Into<String>) -> Finding {
    Finding {
        verdict,
        summary: summary.into(),
        fix: fix.into(),
    }
}

/// Whether the replica holds the primary's current serial. Passes when the serials
/// match, warns when the replica lags (or is ahead: written while failed over), fails
/// when the replica has no state or another lineage, skips when there is no replica.
pub async fn current(
    settings: &StateSettings,
    dir: &Path,
    workspace: &str,
    entry: &Entry,
) -> Finding {
    match compare(settings, dir, workspace, entry).await {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let (summary, fix) = text.split_once("\n  fix: ").unwrap_or((&text, ""));
            check(Verdict::Fail, summary, fix)
        }
    }
}

async fn compare(
    settings: &StateSettings,
    dir: &Path,
    workspace: &str,
    entry: &Entry,
) -> Result<Finding, StateError> {
    let loc = Location::from_backend(&original_backend(dir)?, workspace)?;
    let primary = Store::connect(entry, loc.clone()).await;
    let Some(replica) = resolve(settings, &primary).await? else {
        return Ok(check(
            Verdict::Skip,
            format!("no replica: s3://{} has no replication rule for the state and [state] replica_bucket is not set", loc.bucket),
            "see state.replication",
        ));
    };
    let Some(p) = read_state(&primary).await? else {
        return Ok(check(
            Verdict::Skip,
            format!("no state in {} yet", loc.url()),
            "",
        ));
    };
    let replica_store = Store::connect(entry, loc.moved(&replica.bucket, &replica.region)).await;
    let url = replica_store.loc.url();
    let Some(r) = read_state(&replica_store).await? else {
        return Ok(check(
            Verdict::Fail,
            format!("the replica {url} (from {}) holds no state: a failover would find nothing", replica.from),
            format!("check the replication rule of s3://{} (versioning must be on in both buckets), or copy it once: aws s3 cp {} {url}", loc.bucket, loc.url()),
        ));
    };
    Ok(if r.lineage != p.lineage {
        check(
            Verdict::Fail,
            format!("the replica {url} holds another state (lineage {}, the primary's is {})", r.lineage, p.lineage),
            format!("check which bucket replication writes to, and copy the state once: aws s3 cp {} {url}", loc.url()),
        )
    } else if r.serial == p.serial {
        check(
            Verdict::Pass,
            format!(
                "the replica {url} holds serial {}, as the primary does",
                r.serial
            ),
            "",
        )
    } else if r.serial < p.serial {
        check(
            Verdict::Warn,
            format!("the replica {url} lags: serial {} against the primary's {}", r.serial, p.serial),
            format!("replication is slow or broken: check the rule's status (aws s3api head-object --bucket {} --key {} shows ReplicationStatus)", loc.bucket, loc.key),
        )
    } else {
        check(
            Verdict::Warn,
            format!("the replica {url} is ahead of the primary: serial {} against {} (written while failed over?)", r.serial, p.serial),
            "if this project is failed over, run `breakglass state failback` once the primary is back",
        )
    })
}
