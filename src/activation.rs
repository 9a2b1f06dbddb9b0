//! `breakglass on --reason TEXT --for 4h`: a time-boxed switch for one project that
//! lives outside the repo (the state directory) and expires by itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::paths::{private_dir, Dirs};

/// One activation: which project, until when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    pub project: PathBuf,
    /// Seconds since the Unix epoch.
    pub until: u64,
    pub reason: String,
    /// Who switched it on.
    pub user: String,
}

impl Activation {
    pub fn until_rfc3339(&self) -> String {
        crate::clock::rfc3339(self.until_time())
    }

    fn until_time(&self) -> SystemTime {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(self.until))
            .unwrap_or(UNIX_EPOCH)
    }

    /// Time left, or `None` once expired.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        let until = self.until_time();
        until.duration_since(now).ok().filter(|d| !d.is_zero())
    }
}

/// The activation file for a project root.
pub fn file_for(dirs: &Dirs, root: &Path) -> PathBuf {
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let key = hex::encode(&digest[..10]);
    dirs.state.join("active").join(format!("{key}.toml"))
}

/// The project's activation, if there is one that has not expired. An unreadable or
/// expired file counts as none.
pub fn current(dirs: &Dirs, root: &Path) -> Option<Activation> {
    let text = std::fs::read_to_string(file_for(dirs, root)).ok()?;
    let a: Activation = toml::from_str(&text).ok()?;
    (a.project == root && a.remaining(SystemTime::now()).is_some()).then_some(a)
}

/// Records an activation (atomically, 0600 in a 0700 directory).
pub fn activate(dirs: &Dirs, a: &Activation) -> std::io::Result<PathBuf> {
    let path = file_for(dirs, &a.project);
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let text = toml::to_string(a).map_err(std::io::Error::other)?;
    crate::paths::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Ends the project's activation. Returns whether one was there.
pub fn deactivate(dirs: &Dirs, root: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(file_for(dirs, root)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
