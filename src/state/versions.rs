//! `breakglass state versions`: the state object's versions, newest first, each with
//! the `serial`, `lineage`, terraform version and resource count read from its JSON.
//! Only the listed page is read.

use serde::Serialize;

use super::s3::{Store, VersionInfo};
use super::snapshot::Snapshot;
use super::StateError;

/// How many versions are fetched at once.
const PARALLEL: usize = 8;

/// One version, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub version_id: String,
    pub last_modified: String,
    pub size: i64,
    pub serial: Option<u64>,
    pub lineage: Option<String>,
    pub terraform_version: Option<String>,
    pub resources: Option<usize>,
    pub latest: bool,
}

/// The listed page of versions, each read and parsed; `true` when older versions
/// exist beyond it.
pub async fn rows(store: &Store) -> Result<(Vec<Row>, bool), StateError> {
    let page = store.versions().await?;
    let mut rows = Vec::with_capacity(page.versions.len());
    for chunk in page.versions.chunks(PARALLEL) {
        let mut reads = tokio::task::JoinSet::new();
        for (i, v) in chunk.iter().enumerate() {
            let (store, v) = (store.clone(), v.clone());
            reads.spawn(async move { (i, row(&store, &v).await) });
        }
        let mut done: Vec<(usize, Result<Row, StateError>)> = reads.join_all().await;
        done.sort_by_key(|(i, _)| *i);
        for (_, r) in done {
            rows.push(r?);
        }
    }
    Ok((rows, page.more))
}

async fn row(store: &Store, v: &VersionInfo) -> Result<Row, StateError> {
    let parsed = store
        .version(&v.version_id)
        .await?
        .and_then(|o| Snapshot::parse(&o.bytes).ok());
    Ok(Row {
        version_id: v.version_id.clone(),
        last_modified: v.last_modified.clone(),
        size: v.size,
        serial: parsed.as_ref().map(|s| s.serial),
        lineage: parsed.as_ref().map(|s| s.lineage.clone()),
        terraform_version: parsed.as_ref().map(|s| s.terraform_version.clone()),
        resources: parsed.as_ref().map(Snapshot::resources),
        latest: v.latest,
    })
}

/// The table people read.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<34} {:<22} {:>9} {:>7} {:<38} {:<10} {:>9}\n",
        "VERSION", "LAST MODIFIED", "SIZE", "SERIAL", "LINEAGE", "TERRAFORM", "RESOURCES"
    );
    let opt = |v: Option<String>| v.unwrap_or_else(|| "?".to_string());
    for r in rows {
        out.push_str(&format!(
            "{:<34} {:<22} {:>9} {:>7} {:<38} {:<10} {:>9}{}\n",
            r.version_id,
            r.last_modified,
            r.size,
            opt(r.serial.map(|s| s.to_string())),
            opt(r.lineage.clone()),
            opt(r.terraform_version.clone()),
            opt(r.resources.map(|n| n.to_string())),
            if r.latest { "  (current)" } else { "" }
        ));
    }
    out
}
