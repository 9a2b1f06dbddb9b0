//! The credential cache: one JSON file per set of inputs, 0600 in a 0700 directory,
//! replaced atomically, guarded by a cross-process lock so that shims started together
//! make one STS call (and one MFA prompt).
//!
//! A file that is corrupt, owned by someone else or readable by others is ignored with
//! a warning: it never crashes the shim and is never trusted.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::paths::{private_dir, private_file};

/// A cache directory (`<cache>/credentials` or `<cache>/mfa`).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Held while a cache entry is checked and renewed; released on drop. The lock file
/// says who holds it (pid, role, what it is doing), for the processes that wait.
#[derive(Debug)]
pub struct EntryLock {
    file: File,
    role: String,
}

/// What a lock holder is doing, as waiters are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Asking STS.
    Assuming,
    /// Waiting for an MFA code (a prompt or `mfa_command`).
    MfaCode,
}

impl EntryLock {
    /// Records what the holder is doing now, for waiters to read.
    pub fn note(&self, what: Holding) {
        use std::os::unix::fs::FileExt as _;
        let text = format!(
            "{}\n{}\n{}\n",
            std::process::id(),
            self.role,
            match what {
                Holding::Assuming => "assuming",
                Holding::MfaCode => "mfa",
            }
        );
        let _ = self.file.set_len(0);
        let _ = self.file.write_at(text.as_bytes(), 0);
    }
}

/// The holder of a lock, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub role: Option<String>,
    pub mfa: bool,
}

impl Holder {
    fn read(file: &File) -> Holder {
        use std::os::unix::fs::FileExt as _;
        let mut buf = [0u8; 4096];
        let n = file.read_at(&mut buf, 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        let mut lines = text.lines();
        Holder {
            pid: lines.next().and_then(|l| l.trim().parse().ok()),
            role: lines.next().map(str::to_string).filter(|r| !r.is_empty()),
            mfa: lines.next() == Some("mfa"),
        }
    }

    /// "pid 123" or "pid unknown".
    pub fn describe(&self) -> String {
        match self.pid {
            Some(p) => format!("pid {p}"),
            None => "pid unknown".to_string(),
        }
    }
}

/// How long a lock is waited for, and who is told.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// Give up after this long.
    pub bound: std::time::Duration,
    /// Print the one waiting line after a second.
    pub tell: bool,
}

/// A lock that could not be had in time.
#[derive(Debug)]
pub enum LockFailure {
    Io(CacheError),
    TimedOut(Holder),
}

/// How long a waiter waits before it says what it waits for.
const TELL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
#[error("cannot use the credential cache at {}: {source}\n  fix: check that directory's owner and permissions, or remove it (`breakglass logout`)", dir.display())]
pub struct CacheError {
    pub dir: PathBuf,
    pub source: std::io::Error,
}

/// The cache key for a set of inputs: the hex SHA-256 of their JSON.
pub fn key_of(inputs: &impl Serialize) -> String {
    let json = serde_json::to_vec(inputs).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..16])
}

/// A warning on stderr (the shim's only channel).
pub fn warn(message: &str) {
    crate::say!("breakglass: warning: {message}");
}

/// Warns about a cache file once per process: the warm check and the re-check under
/// the lock read the same file, and one warning is enough.
fn warn_once(path: &Path, message: &str) {
    static WARNED: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let first = WARNED
        .lock()
        .map(|mut w| w.insert(path.to_path_buf()))
        .unwrap_or(true);
    if first {
        warn(message);
    }
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn err(&self, source: std::io::Error) -> CacheError {
        CacheError {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Takes the entry's lock for `role`, waiting for another process that holds it:
    /// after a second it says once (when `wait.tell`) who holds it and whether that
    /// process waits for an MFA code; after `wait.bound` it gives up.
    pub fn lock(&self, key: &str, role: &str, wait: Wait) -> Result<EntryLock, LockFailure> {
        private_dir(&self.dir).map_err(|e| LockFailure::Io(self.err(e)))?;
        let file = private_file()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.dir.join(format!("{key}.lock")))
            .map_err(|e| LockFailure::Io(self.err(e)))?;
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            match FileExt::try_lock_exclusive(&file) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == fs4::lock_contended_error().raw_os_error() => {}
                Err(e) => return Err(LockFailure::Io(self.err(e))),
            }
            let waited = start.elapsed();
            if waited >= wait.bound {
                return Err(LockFailure::TimedOut(Holder::read(&file)));
            }
            if wait.tell && !told && waited >= TELL_AFTER {
                told = true;
                let holder = Holder::read(&file);
                crate::say!(
                    "breakglass: waiting for another breakglass process ({}) that is getting credentials for {}{} (giving up after {})",
                    holder.describe(),
                    holder.role.as_deref().unwrap_or(role),
                    if holder.mfa { ": it is waiting for an MFA code" } else { "" },
                    crate::config::format_duration(wait.bound)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let lock = EntryLock {
            file,
            role: role.to_string(),
        };
        lock.note(Holding::Assuming);
        Ok(lock)
    }

    /// Reads an entry. Missing gives `None`; an untrustworthy file gives `None` and a
    /// warning.
    pub fn read<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let path = self.path(key);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => return None,
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            warn_once(
                &path,
                &format!(
                    "ignoring cache file {}: it is owned by uid {}, not by you",
                    path.display(),
                    meta.uid()
                ),
            );
            return None;
        }
        if meta.permissions().mode() & 0o077 != 0 {
            warn_once(&path, &format!(
                "ignoring cache file {}: it is readable by others (mode {:o}); run `breakglass logout`",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(_) => {
                warn_once(
                    &path,
                    &format!(
                        "ignoring corrupt cache file {}; fresh credentials will replace it",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    /// Writes an entry atomically (a 0600 temporary file renamed over the old one).
    pub fn write<T: Serialize>(&self, key: &str, value: &T) -> Result<(), CacheError> {
        private_dir(&self.dir).map_err(|e| self.err(e))?;
        let json = serde_json::to_vec(value).map_err(|e| self.err(std::io::Error::other(e)))?;
        crate::paths::write_atomic(&self.path(key), &json).map_err(|e| self.err(e))
    }

    /// Removes every entry. Returns how many files went.
    pub fn clear(&self) -> std::io::Result<usize> {
        let mut n = 0;
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    // Lock files stay: another process may hold one right now, and a
                    // new file would let two processes hold "the" lock.
                    if e.path().extension().is_some_and(|x| x == "json") {
                        std::fs::remove_file(e.path())?;
                        n += 1;
                    }
                }
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl From<CacheError> for crate::error::Error {
    fn from(e: CacheError) -> Self {
        crate::error::Error::Role(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_private_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        cache.write("k", &vec![1, 2, 3]).unwrap();
        assert_eq!(cache.read::<Vec<i32>>("k"), Some(vec![1, 2, 3]));
        let file_mode = std::fs::metadata(dir.path().join("c/k.json"))
            .unwrap()
            .permissions()
            .mode();
        let dir_mode = std::fs::metadata(dir.path().join("c"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(file_mode & 0o777, 0o600);
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn untrusted_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        cache.write("k", &5).unwrap();
        std::fs::write(dir.path().join("k.json"), b"{garbage").unwrap();
        assert_eq!(cache.read::<i32>("k"), None);
        cache.write("k", &5).unwrap();
        std::fs::set_permissions(
            dir.path().join("k.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(cache.read::<i32>("k"), None);
    }

    #[test]
    fn keys_depend_on_every_input() {
        assert_ne!(key_of(&("a", 1)), key_of(&("a", 2)));
        assert_eq!(key_of(&("a", 1)), key_of(&("a", 1)));
    }
}
