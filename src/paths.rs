//! Where breakglass keeps its files, by the platform's conventions (`directories`):
//! `XDG_CACHE_HOME`, `XDG_DATA_HOME` and `XDG_STATE_HOME` are honoured on Linux.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

/// The base directories, resolved once.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Cached credentials and MFA sessions.
    pub cache: PathBuf,
    /// Audit log and the shim directory.
    pub data: PathBuf,
    /// Activations (`breakglass on`).
    pub state: PathBuf,
}

impl Dirs {
    /// The platform's directories for breakglass, or `None` with no home directory.
    pub fn new() -> Option<Dirs> {
        let p = ProjectDirs::from("", "", "breakglass")?;
        Some(Dirs {
            cache: p.cache_dir().to_path_buf(),
            data: p.data_dir().to_path_buf(),
            state: p
                .state_dir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| p.data_dir().join("state")),
        })
    }

    /// The default directory for the `terraform` and `tofu` links.
    pub fn shim_dir(&self) -> PathBuf {
        self.data.join("shims")
    }
}

/// Creates `dir` (and parents) with mode 0700, and tightens it to 0700 if it exists
/// and is ours. Refuses a directory owned by someone else.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by you",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Open options for a file that is created 0600.
pub fn private_file() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.mode(0o600);
    options
}

/// Replaces `path` atomically with `bytes`: a 0600 temporary file beside it, synced,
/// then renamed over it. The directory must exist.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
