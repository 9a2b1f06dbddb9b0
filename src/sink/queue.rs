//! The local queue of team-trail events not yet delivered: one 0600 JSON file per
//! event in a 0700 directory per destination, under the state directory
//! (`$XDG_STATE_HOME/breakglass/audit-queue/<destination>/`).
//!
//! Every event is queued before it is sent and removed only once S3 has it (a 412 on
//! retry counts: it was already there), so delivery is at least once and a crash at
//! any point loses nothing. Each entry is locked while it is being delivered, so two
//! processes flushing together never send it twice; an entry is rewritten by atomic
//! replacement, and a process that locked the replaced file sees that and skips it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use super::event::{Alert, Event};
use crate::paths::{private_dir, Dirs};

/// What is still to be done for one event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub event_id: String,
    pub event: String,
    /// The object key still to write; `None` once written, or with no `s3` configured.
    pub key: Option<String>,
    /// The JSON document (the same bytes on every try).
    pub body: String,
    /// The alert still to publish; `None` once published, or when the event does not page.
    pub alert: Option<Alert>,
    /// The project the event came from (for messages).
    pub project: String,
}

impl Pending {
    pub fn new(event: &Event, has_trail: bool, has_topic: bool, project: &str) -> Pending {
        Pending {
            event_id: event.id.clone(),
            event: event.kind.clone(),
            key: has_trail.then(|| event.key.clone()),
            body: event.body.clone(),
            alert: event.alert.clone().filter(|_| has_topic),
            project: project.to_string(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.key.is_none() && self.alert.is_none()
    }
}

/// The queue for one destination.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
}

/// One entry, locked by this process until dropped.
#[derive(Debug)]
pub struct Held {
    path: PathBuf,
    _file: File,
    pub pending: Pending,
}

/// The top of every queue directory.
pub fn root(dirs: &Dirs) -> PathBuf {
    dirs.state.join("audit-queue")
}

impl Queue {
    /// The queue for the destination named `id` (a hash of its bucket, prefix and topic).
    pub fn new(dirs: &Dirs, id: &str) -> Queue {
        Queue {
            dir: root(dirs).join(id),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues an event and returns it locked: it is on disk, 0600, before any attempt
    /// to send it.
    pub fn add(&self, pending: Pending, at_key: &str) -> std::io::Result<Held> {
        if let Some(parent) = self.dir.parent() {
            private_dir(parent)?;
        }
        private_dir(&self.dir)?;
        // The file name sorts in time order: `<date>_<time>Z-<id>.json`.
        let path = self.dir.join(at_key.replace('/', "_"));
        let text = serde_json::to_vec(&pending).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&text)?;
        // Locked before it can be seen, so no other process takes it while we send it.
        FileExt::try_lock_exclusive(tmp.as_file())?;
        let file = tmp.persist(&path).map_err(|e| e.error)?;
        Ok(Held {
            path,
            _file: file,
            pending,
        })
    }

    /// The queued entries' paths, oldest first.
    pub fn paths(&self) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        out.sort();
        out
    }

    /// Takes the entry at `path` if no other process holds it and it is still the file
    /// at that path. An entry that is not ours, or readable by others, or unreadable is
    /// left alone with a warning.
    pub fn take(&self, path: &Path) -> Option<Held> {
        let mut file = File::open(path).ok()?;
        FileExt::try_lock_exclusive(&file).ok()?;
        let held = file.metadata().ok()?;
        let now = std::fs::metadata(path).ok()?;
        if (held.dev(), held.ino()) != (now.dev(), now.ino()) {
            return None; // replaced or removed while we waited: someone else has it
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if held.uid() != uid || held.permissions().mode() & 0o077 != 0 {
            crate::say!(
                "breakglass: warning: ignoring queued audit event {}: it is not yours or others can read it",
                path.display()
            );
            return None;
        }
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        match serde_json::from_str::<Pending>(&text) {
            Ok(pending) => Some(Held {
                path: path.to_path_buf(),
                _file: file,
                pending,
            }),
            Err(e) => {
                crate::say!(
                    "breakglass: warning: ignoring unreadable queued audit event {}: {e}",
                    path.display()
                );
                None
            }
        }
    }
}

impl Held {
    /// Records progress: removes the entry once everything is done, else replaces it
    /// with what is left (atomically). The lock goes with `self`.
    pub fn save(self) -> std::io::Result<()> {
        if self.pending.is_done() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let text = serde_json::to_vec(&self.pending).map_err(std::io::Error::other)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&text)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str) -> Pending {
        Pending {
            event_id: id.into(),
            event: "start".into(),
            key: Some(format!("p/{id}.json")),
            body: "{}".into(),
            alert: None,
            project: "/p".into(),
        }
    }

    #[test]
    fn entries_are_private_locked_and_removed_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue {
            dir: dir.path().join("audit-queue/x"),
        };
        let held = q
            .add(pending("a"), "2026-01-01/000000.000Z-a.json")
            .unwrap();
        let path = held.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(q.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Held by us: nobody else can take it.
        assert!(q.take(&path).is_none());
        drop(held);
        let mut again = q.take(&path).expect("free once released");
        assert_eq!(again.pending.event_id, "a");
        again.pending.key = None;
        again.save().unwrap();
        assert!(q.paths().is_empty());
    }

    #[test]
    fn progress_is_kept_and_a_replaced_entry_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue {
            dir: dir.path().join("q"),
        };
        let mut p = pending("b");
        p.alert = Some(Alert {
            subject: "s".into(),
            message: "m".into(),
        });
        let path = q
            .add(p, "2026-01-01/000000.000Z-b.json")
            .unwrap()
            .path()
            .to_path_buf();
        let stale = File::open(&path).unwrap();
        let mut held = q.take(&path).unwrap();
        held.pending.key = None;
        held.save().unwrap();
        // The old file is gone from the path: its lock holder would skip it.
        let now = std::fs::metadata(&path).unwrap();
        assert_ne!(stale.metadata().unwrap().ino(), now.ino());
        let left = q.take(&path).unwrap();
        assert!(left.pending.key.is_none() && left.pending.alert.is_some());
    }
}
