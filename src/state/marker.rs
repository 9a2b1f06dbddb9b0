//! Whether a project is failed over to its state replica: the override file that
//! `breakglass state failover` writes is there. No SDK here: `status`, the prompt marker
//! and the banner of every break-glass run ask it.

use std::path::{Path, PathBuf};

/// The file `breakglass state failover` writes in the terraform root directory. An
/// `_override.tf` file's backend block replaces the original block as a whole.
pub const OVERRIDE_FILE: &str = "breakglass_failover_override.tf";

/// The override file for the terraform root `dir`.
pub fn override_path(dir: &Path) -> PathBuf {
    dir.join(OVERRIDE_FILE)
}

/// True while `dir` is failed over to the state replica.
pub fn failed_over(dir: &Path) -> bool {
    override_path(dir).is_file()
}

/// What a break-glass run adds to its banner while failed over.
pub const BANNER_NOTE: &str =
    "FAILED OVER: the state is in the replica (breakglass_failover_override.tf); `breakglass state failback` when the primary is back";
