//! Finding the real terraform, skipping every file that is this shim, and handing
//! over to it without a loop.
//!
//! Files are compared by device and inode, so trailing slashes, `//`, symlinked and
//! hard-linked shims are all recognised. An inherited guard (`BREAKGLASS_GUARD`) records
//! which binaries the current exec chain has already visited, so two shim tools that
//! hand off to each other (mise or asdf shims, a second copy of breakglass) end in a
//! clear error instead of a loop.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable carrying the loop guard across execs.
pub const GUARD_VAR: &str = "BREAKGLASS_GUARD";
/// Overrides which real terraform is run (a name on PATH or a path).
pub const TERRAFORM_VAR: &str = "BREAKGLASS_TERRAFORM";
/// How many shims one exec chain may pass through before it is called a loop.
const MAX_HOPS: usize = 8;

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file `path` resolves to (symlinks followed).
    pub fn of(path: &Path) -> Option<FileId> {
        std::fs::metadata(path).ok().map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The identity of the running executable.
    pub fn current_exe() -> Option<FileId> {
        std::env::current_exe().ok().and_then(|p| FileId::of(&p))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("no real `{name}` was found on PATH (every match was a breakglass shim or none existed)\n  searched: {searched}\n  fix: install {name}, or set {TERRAFORM_VAR}=/path/to/{name} (or `terraform = \"/path/to/{name}\"` in .breakglass.toml)")]
    NotFound { name: String, searched: String },
    #[error("`{0}` is this breakglass shim, not the real terraform\n  fix: point {TERRAFORM_VAR} or the config's `terraform` key at the real binary")]
    IsShim(PathBuf),
    #[error("`{}` does not exist or is not executable\n  fix: point {TERRAFORM_VAR} or the config's `terraform` key at the real binary", .0.display())]
    BadPath(PathBuf),
    #[error("shim loop: `terraform` went through {hops} shims in one chain of processes\n  something on PATH (a mise/asdf shim or another copy of breakglass) hands `terraform` back to breakglass\n  fix: set {TERRAFORM_VAR}=/path/to/the/real/terraform")]
    Loop { hops: usize },
    #[error("cannot run `{}`: {source}", path.display())]
    Exec {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The binaries this exec chain has visited, carried in `BREAKGLASS_GUARD` as
/// `PID;DEV:INO;DEV:INO...[;dDEPTH]`. Visited binaries are skipped only within one exec
/// chain (same pid). A direct child of the chain (a terraform that runs `terraform`,
/// or a wrapper that runs it without exec) skips nothing, so it finds the same real
/// terraform again, but counts one level deeper: a wrapper that keeps handing
/// `terraform` back to the shim through child processes still ends. Any other process
/// starts afresh.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    visited: Vec<FileId>,
    /// How many direct-child hand-overs led here.
    depth: usize,
}

impl Guard {
    /// Reads the inherited guard, keeping it only if this process continues that chain,
    /// and adds this executable.
    pub fn inherit(value: Option<&OsStr>) -> Guard {
        let mut guard = Guard::default();
        if let Some(text) = value.and_then(OsStr::to_str) {
            let mut parts = text.split(';');
            let pid: Option<u32> = parts.next().and_then(|p| p.parse().ok());
            let ours = std::process::id();
            let parent = std::os::unix::process::parent_id();
            let parts: Vec<&str> = parts.collect();
            let depth = parts
                .iter()
                .find_map(|p| p.strip_prefix('d')?.parse::<usize>().ok())
                .unwrap_or(0);
            if pid == Some(ours) {
                guard.depth = depth;
                guard.visited = parts
                    .iter()
                    .filter_map(|id| {
                        let (dev, ino) = id.split_once(':')?;
                        Some(FileId {
                            dev: dev.parse().ok()?,
                            ino: ino.parse().ok()?,
                        })
                    })
                    .collect();
            } else if pid == Some(parent) {
                guard.depth = depth + 1;
            }
        }
        // This executable, and its sibling (the small shim beside the full binary, or
        // the other way round): neither is ever the real terraform.
        if let Ok(me) = std::env::current_exe() {
            for path in [
                me.clone(),
                me.with_file_name("breakglass"),
                me.with_file_name("breakglass-shim"),
            ] {
                if let Some(id) = FileId::of(&path) {
                    guard.visit(id);
                }
            }
        }
        guard
    }

    fn visit(&mut self, id: FileId) {
        if !self.visited.contains(&id) {
            self.visited.push(id);
        }
    }

    fn contains(&self, id: FileId) -> bool {
        self.visited.contains(&id)
    }

    /// The value to hand on to a process that execs `next` (in this pid, or as a child).
    pub fn hand_on(&self, next: &Path) -> OsString {
        let mut ids = self.visited.clone();
        if let Some(id) = FileId::of(next) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut s = std::process::id().to_string();
        for id in ids {
            s.push_str(&format!(";{}:{}", id.dev, id.ino));
        }
        if self.depth > 0 {
            s.push_str(&format!(";d{}", self.depth));
        }
        OsString::from(s)
    }

    /// Fails when this chain has passed through too many shims.
    pub fn check_hops(&self) -> Result<(), LocateError> {
        let hops = self.visited.len() + self.depth;
        if hops > MAX_HOPS {
            return Err(LocateError::Loop { hops });
        }
        Ok(())
    }
}

/// Where the real terraform's name or path came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// `BREAKGLASS_TERRAFORM`; relative paths are taken from the working directory.
    Env(OsString),
    /// The config's `terraform` key; relative paths are taken from the config's directory.
    Config { value: String, base: PathBuf },
    /// The name the shim was started as.
    Name(String),
}

/// Finds the real terraform: a path is taken as is (unless it is this shim); a name is
/// looked up on `path_var`, skipping every file the guard has visited.
pub fn locate(
    requested: &Requested,
    path_var: Option<&OsStr>,
    cwd: &Path,
    guard: &Guard,
) -> Result<PathBuf, LocateError> {
    guard.check_hops()?;
    let (text, base): (OsString, &Path) = match requested {
        Requested::Env(v) => (v.clone(), cwd),
        Requested::Config { value, base } => (OsString::from(value), base.as_path()),
        Requested::Name(n) => (OsString::from(n), cwd),
    };
    let as_path = Path::new(&text);
    if as_path.components().count() > 1 || as_path.is_absolute() {
        let path = base.join(as_path);
        return match FileId::of(&path) {
            None => Err(LocateError::BadPath(path)),
            Some(id) if guard.contains(id) => Err(LocateError::IsShim(path)),
            Some(_) => Ok(path),
        };
    }
    let name = text.to_string_lossy().into_owned();
    let mut searched = Vec::new();
    if let Some(paths) = path_var {
        for dir in std::env::split_paths(paths) {
            searched.push(dir.display().to_string());
        }
    }
    let candidates = which::which_in_all(&text, path_var, cwd).ok();
    for candidate in candidates.into_iter().flatten() {
        match FileId::of(&candidate) {
            Some(id) if !guard.contains(id) => return Ok(candidate),
            _ => continue,
        }
    }
    Err(LocateError::NotFound {
        name,
        searched: if searched.is_empty() {
            "(PATH is empty)".to_string()
        } else {
            searched.join(":")
        },
    })
}

/// The first line of `terraform version` (e.g. `Terraform v1.15.5`), if it runs.
pub fn version(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .arg("version")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// Replaces this process with `program`, arguments untouched, with the guard handed on.
/// Returns only on failure.
pub fn exec(
    program: &Path,
    args: &[OsString],
    guard: &Guard,
    env: &[(OsString, Option<OsString>)],
) -> LocateError {
    let mut cmd = Command::new(program);
    cmd.args(args).env(GUARD_VAR, guard.hand_on(program));
    for (key, value) in env {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let source = cmd.exec();
    LocateError::Exec {
        path: program.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn skips_visited_files_however_they_are_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let shims = dir.path().join("shims");
        let real = dir.path().join("real");
        std::fs::create_dir_all(&shims).unwrap();
        std::fs::create_dir_all(&real).unwrap();
        let shim = exe(&shims, "terraform");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::hard_link(&shim, other.join("terraform")).unwrap();
        let linked = dir.path().join("linked");
        std::fs::create_dir_all(&linked).unwrap();
        symlink(&shim, linked.join("terraform")).unwrap();
        let real_tf = exe(&real, "terraform");

        let mut guard = Guard::default();
        guard.visit(FileId::of(&shim).unwrap());
        let path = std::env::join_paths([
            shims.clone(),
            PathBuf::from(format!("{}/", shims.display())),
            PathBuf::from(format!("{}//shims", dir.path().display())),
            other.clone(),
            linked.clone(),
            real.clone(),
        ])
        .unwrap();
        let found = locate(
            &Requested::Name("terraform".into()),
            Some(&path),
            dir.path(),
            &guard,
        )
        .unwrap();
        assert_eq!(FileId::of(&found), FileId::of(&real_tf));

        let only_shims = std::env::join_paths([shims, other, linked]).unwrap();
        let err = locate(
            &Requested::Name("terraform".into()),
            Some(&only_shims),
            dir.path(),
            &guard,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LocateError::NotFound { .. }), "{msg}");
        assert!(
            msg.contains("searched:") && msg.contains("BREAKGLASS_TERRAFORM"),
            "{msg}"
        );
    }

    #[test]
    fn a_path_that_is_the_shim_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let shim = exe(dir.path(), "terraform");
        let mut guard = Guard::default();
        guard.visit(FileId::of(&shim).unwrap());
        let err = locate(
            &Requested::Env(shim.clone().into()),
            None,
            dir.path(),
            &guard,
        )
        .unwrap_err();
        assert!(matches!(err, LocateError::IsShim(_)));
        let err = locate(
            &Requested::Env("./missing/tf".into()),
            None,
            dir.path(),
            &guard,
        )
        .unwrap_err();
        assert!(matches!(err, LocateError::BadPath(_)));
    }

    #[test]
    fn guard_is_kept_only_within_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let a = exe(dir.path(), "a");
        let mut guard = Guard::default();
        guard.visit(FileId::of(&a).unwrap());
        let value = guard.hand_on(&a);
        // Same pid (an exec chain): the visited files carry over.
        let inherited = Guard::inherit(Some(&value));
        assert!(inherited.contains(FileId::of(&a).unwrap()));
        // Another pid (a terraform started by a provisioner, say): a fresh guard.
        let stale = OsString::from(format!(
            "1;{}",
            value.to_str().unwrap().split_once(';').unwrap().1
        ));
        assert!(!Guard::inherit(Some(&stale)).contains(FileId::of(&a).unwrap()));
        // The direct parent's chain (terraform running `terraform`): nothing is skipped,
        // so the same real terraform is found again, but the depth is counted.
        let from_parent = OsString::from(format!(
            "{};{}",
            std::os::unix::process::parent_id(),
            value.to_str().unwrap().split_once(';').unwrap().1
        ));
        let child = Guard::inherit(Some(&from_parent));
        assert!(!child.contains(FileId::of(&a).unwrap()));
        assert_eq!(child.depth, 1);
        let mut deep = Guard::inherit(Some(&child.hand_on(&a)));
        assert_eq!(deep.depth, 1, "an exec keeps the depth");
        deep.depth = MAX_HOPS;
        assert!(matches!(deep.check_hops(), Err(LocateError::Loop { .. })));
        // Garbage is ignored.
        assert!(!Guard::inherit(Some(OsStr::new("x;;:"))).contains(FileId::of(&a).unwrap()));
    }
}
