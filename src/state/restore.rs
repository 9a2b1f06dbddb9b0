//! `breakglass state restore VERSION_ID`: what restoring an older version would change
//! (serial from and to, resource addresses added and removed) and the document to hand
//! to `terraform state push`, which takes and releases the lock itself. A version from
//! another lineage is refused.

use super::s3::Store;
use super::snapshot::Snapshot;
use super::StateError;

/// A restore that is ready to push.
#[derive(Debug, Clone)]
pub struct Plan {
    pub version_id: String,
    /// The serial the version was written with.
    pub version_serial: u64,
    /// The current state's serial (`None`: no current state, e.g. a delete marker).
    pub from_serial: Option<u64>,
    /// The serial the pushed document carries: one above the current one.
    pub to_serial: u64,
    /// The current version's id: it stays in the bucket's history.
    pub replaced: Option<String>,
    /// Addresses in the version but not in the current state.
    pub added: Vec<String>,
    /// Addresses in the current state but not in the version.
    pub removed: Vec<String>,
    /// The version's document with `to_serial`.
    pub document: Vec<u8>,
}

/// What `plan` found.
#[derive(Debug)]
pub enum Outcome {
    Ready(Box<Plan>),
    /// The version asked for is the current state already.
    AlreadyCurrent,
}

/// Fetches the version and the current state and plans the restore.
pub async fn plan(store: &Store, version_id: &str) -> Result<Outcome, StateError> {
    let url = store.loc.url();
    let Some(version) = store.version(version_id).await? else {
        return Err(StateError::refused(
            format!("{url} has no version {version_id}"),
            "pick one from `breakglass state versions`",
        ));
    };
    let old = Snapshot::parse(&version.bytes).map_err(|why| StateError::Unreadable {
        what: format!("version {version_id} of {url}"),
        why,
        fix: "pick another version from `breakglass state versions`".to_string(),
    })?;
    let current = match store.current().await? {
        Some(obj) => {
            if obj.version_id.as_deref() == Some(version_id) {
                return Ok(Outcome::AlreadyCurrent);
            }
            let snap = Snapshot::parse(&obj.bytes).ok();
            Some((obj.version_id, snap))
        }
        None => None,
    };
    let (replaced, cur) = match current {
        Some((id, snap)) => (id, snap),
        None => (None, None),
    };
    if let Some(cur) = &cur {
        if cur.lineage != old.lineage {
            return Err(StateError::refused(
                format!(
                    "version {version_id} belongs to another state: its lineage is {}, the current state's is {}; terraform would refuse it, and pushing it by force would replace this project's state with another one",
                    old.lineage, cur.lineage
                ),
                "pick a version with the current lineage from `breakglass state versions`",
            ));
        }
    }
    let from_serial = cur.as_ref().map(|c| c.serial);
    let to_serial = from_serial.map_or(old.serial, |s| s + 1).max(old.serial);
    let (now, then) = (
        cur.as_ref().map(Snapshot::addresses).unwrap_or_default(),
        old.addresses(),
    );
    Ok(Outcome::Ready(Box::new(Plan {
        version_id: version_id.to_string(),
        version_serial: old.serial,
        from_serial,
        to_serial,
        replaced,
        added: then.difference(&now).cloned().collect(),
        removed: now.difference(&then).cloned().collect(),
        document: old.with_serial(to_serial),
    })))
}

impl Plan {
    /// The summary shown before asking.
    pub fn summary(&self, url: &str) -> String {
        let mut s = format!(
            "restore {url} to version {} (written with serial {})\n  serial: {} -> {}\n",
            self.version_id,
            self.version_serial,
            match (self.from_serial, &self.replaced) {
                (Some(s), _) => s.to_string(),
                (None, Some(_)) => "unreadable (the current state is not valid JSON)".to_string(),
                (None, None) => "none (there is no current state)".to_string(),
            },
            self.to_serial
        );
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_string()
            } else {
                v.join(", ")
            }
        };
        s.push_str(&format!("  adds:    {}\n", list(&self.added)));
        s.push_str(&format!("  removes: {}\n", list(&self.removed)));
        if let Some(r) = &self.replaced {
            s.push_str(&format!(
                "  the current version {r} stays in the bucket's history: `breakglass state restore {r}` undoes this restore\n"
            ));
        }
        s
    }
}
