//! Which config files breakglass obeys, the way git trusts a repository
//! (`safe.directory`): a `.breakglass.toml` or `.breakglass.local.toml` is read only
//! when it is owned by the user or by root and no one else can write it. Its
//! `terraform` key names a program to run, so a file planted by another user in a
//! parent directory (`/tmp`, a shared mount) must never be obeyed silently.
//!
//! A file that fails the check is ignored with a warning, unless it is listed in the
//! user's own trust list (`breakglass trust PATH` writes it): `trusted.toml` in the
//! user's config directory, `paths = ["/srv/shared/.breakglass.toml", "/srv/shared"]`
//! (a file, its directory, or `"*"` for every file).
//!
//! The hot path pays one `metadata` call it already makes; the list is read only when
//! a file fails the check.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The trust list's file name, in the user's config directory.
pub const LIST_FILE: &str = "trusted.toml";

/// Why a file is not trusted by its owner and mode alone, or `None` when it is.
pub fn untrusted_because(meta: &std::fs::Metadata) -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o777;
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "it is owned by uid {}, not by you (uid {me}) or root",
            meta.uid()
        ));
    }
    if mode & 0o002 != 0 {
        return Some(format!("anyone can write it (mode {mode:o})"));
    }
    if mode & 0o020 != 0 && !is_private_group(meta.gid(), me) {
        return Some(format!(
            "its group (gid {}) can write it (mode {mode:o})",
            meta.gid()
        ));
    }
    None
}

/// True for the user's own private group, as the user-private-group scheme (`umask
/// 002`) makes it: the user's primary group, numbered as the user is. (The group
/// database is not read: that would link the system's name-service code into the
/// static shim.)
fn is_private_group(gid: u32, uid: u32) -> bool {
    // SAFETY: getegid has no preconditions and cannot fail.
    let egid = unsafe { libc::getegid() };
    gid == egid && gid == uid
}

/// The user's trust list file.
pub fn list_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "breakglass").map(|p| p.config_dir().join(LIST_FILE))
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct List {
    #[serde(default)]
    paths: Vec<String>,
}

/// The entries of the trust list; an unreadable or untrusted list trusts nothing.
pub fn listed() -> Vec<String> {
    let Some(path) = list_path() else {
        return Vec::new();
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Vec::new();
    };
    if let Some(why) = untrusted_because(&meta) {
        crate::say!(
            "breakglass: warning: ignoring the trust list {}: {why}",
            path.display()
        );
        return Vec::new();
    }
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| toml::from_str::<List>(&t).ok())
        .map(|l| l.paths)
        .unwrap_or_default()
}

/// True when `entries` trust `file`: the file itself, its directory, or `*`.
pub fn covers(entries: &[String], file: &Path) -> bool {
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = canonical.parent().map(Path::to_path_buf);
    entries.iter().any(|e| {
        if e == "*" {
            return true;
        }
        let entry = Path::new(e);
        let entry_c = std::fs::canonicalize(entry).unwrap_or_else(|_| entry.to_path_buf());
        entry == file || entry_c == canonical || Some(&entry_c) == dir.as_ref()
    })
}

/// True when breakglass may read `file`. Warns once per file when it may not (unless
/// `quiet`: shell completion).
pub fn obeyed(file: &Path, meta: &std::fs::Metadata, quiet: bool) -> bool {
    let Some(why) = untrusted_because(meta) else {
        return true;
    };
    if covers(&listed(), file) {
        return true;
    }
    if !quiet {
        warn_once(file, &why);
    }
    false
}

fn warn_once(file: &Path, why: &str) {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let first = WARNED
        .lock()
        .map(|mut w| {
            let new = !w.iter().any(|p| p == file);
            if new {
                w.push(file.to_path_buf());
            }
            new
        })
        .unwrap_or(true);
    if first {
        let list = list_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| LIST_FILE.to_string());
        crate::say!(
            "breakglass: warning: ignoring {}: {why}; another user could make terraform run anything\n  fix: `chown $(id -un) {0}` and `chmod go-w {0}` if it is yours, or `breakglass trust {0}` to trust it as it is (adds it to {list})",
            file.display()
        );
    }
}

/// Adds `entry` to the user's trust list; returns the list's path. Existing entries
/// are kept.
pub fn add(entry: &str) -> std::io::Result<PathBuf> {
    let path = list_path().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no home directory; set HOME")
    })?;
    let mut list = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| toml::from_str::<List>(&t).ok())
        .unwrap_or_default();
    if !list.paths.iter().any(|p| p == entry) {
        list.paths.push(entry.to_string());
    }
    let body = toml::to_string(&list).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent() {
        crate::paths::private_dir(dir)?;
    }
    let text = format!(
        "# Config files breakglass reads although another user owns them or others can\n# write them (`breakglass trust PATH`). An entry is a file, its directory, or \"*\".\n{body}"
    );
    crate::paths::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writable_by_others_is_untrusted_owned_by_me_is_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(untrusted_because(&std::fs::metadata(&f).unwrap()), None);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o646)).unwrap();
        let why = untrusted_because(&std::fs::metadata(&f).unwrap()).unwrap();
        assert!(why.contains("anyone can write"), "{why}");
    }

    #[test]
    fn list_entries_cover_the_file_its_directory_or_everything() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".breakglass.toml");
        std::fs::write(&f, "").unwrap();
        let d = dir.path().display().to_string();
        assert!(covers(&[d], &f));
        assert!(covers(&[f.display().to_string()], &f));
        assert!(covers(&["*".into()], &f));
        assert!(!covers(&["/elsewhere".into()], &f));
        assert!(!covers(&[], &f));
    }
}
