//! `breakglass install` and `uninstall`: the `terraform` and `tofu` links to the shim,
//! and the PATH line to add.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::outln;
use crate::paths::Dirs;

/// The names the shim is installed under.
pub const SHIM_NAMES: &[&str] = &["terraform", "tofu"];

fn shim_dir(dir: Option<PathBuf>) -> Result<PathBuf, Error> {
    match dir {
        Some(d) => Ok(d),
        None => Dirs::new().map(|d| d.shim_dir()).ok_or_else(|| {
            Error::Message(
                "cannot find your home directory for breakglass's files\n  fix: set HOME, or pass --dir DIR".to_string(),
            )
        }),
    }
}

pub fn install(dir: Option<PathBuf>, print_dir: bool) -> Result<i32, Error> {
    let dir = shim_dir(dir)?;
    let me = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::Message(format!("cannot find breakglass's own path: {e}")))?;
    let small = me.with_file_name("breakglass-shim");
    let target = if small.is_file() { small } else { me };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", dir.display())))?;
    for name in SHIM_NAMES {
        link(&target, &dir.join(name))?;
    }
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    if print_dir {
        outln!("{}", dir.display());
        return Ok(0);
    }
    crate::say!(
        "breakglass: linked {} in {} to {}\n  add this line to your shell profile (it is printed on stdout):",
        SHIM_NAMES.join(" and "),
        dir.display(),
        target.display()
    );
    outln!("export PATH=\"{}:$PATH\"", dir.display());
    Ok(0)
}

/// True when `path` is a symlink to a breakglass binary.
fn is_our_link(path: &Path) -> bool {
    std::fs::read_link(path).is_ok_and(|t| {
        t.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("breakglass"))
    })
}

/// Points `link` at `target`, replacing an older breakglass link but never anything else.
fn link(target: &Path, link: &Path) -> Result<(), Error> {
    if std::fs::symlink_metadata(link).is_ok() {
        if !is_our_link(link) {
            return Err(Error::Message(format!(
                "{} exists and is not a breakglass link\n  fix: choose another directory with `breakglass install --dir DIR`",
                link.display()
            )));
        }
        std::fs::remove_file(link)
            .map_err(|e| Error::Message(format!("cannot replace {}: {e}", link.display())))?;
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", link.display())))
}

pub fn uninstall(dir: Option<PathBuf>) -> Result<i32, Error> {
    let dir = shim_dir(dir)?;
    let mut removed = 0;
    for name in SHIM_NAMES {
        let p = dir.join(name);
        if is_our_link(&p) {
            std::fs::remove_file(&p)
                .map_err(|e| Error::Message(format!("cannot remove {}: {e}", p.display())))?;
            removed += 1;
        }
    }
    crate::say!(
        "breakglass: removed {removed} shim link(s) from {}; remove it from PATH in your shell profile too",
        dir.display()
    );
    Ok(0)
}
