//! Terragrunt's working copies: terraform runs in
//! `UNIT/.terragrunt-cache/<hash>/<hash>/<module path>`, and such a directory belongs
//! to the unit that owns the `.terragrunt-cache`, for finding the config and for the
//! stack mappings. On the shim's hot path: plain path arithmetic.

use std::path::Path;

/// The directory Terragrunt keeps each unit's working copies in (its default download
/// directory).
pub const TERRAGRUNT_CACHE: &str = ".terragrunt-cache";

/// The directory a run belongs to: for a Terragrunt working copy, the unit that owns
/// the outermost `.terragrunt-cache` (the directory holding it); any other directory
/// is its own.
pub fn owning_unit(dir: &Path) -> &Path {
    dir.ancestors()
        .filter(|d| d.file_name().is_some_and(|n| n == TERRAGRUNT_CACHE))
        .last()
        .and_then(Path::parent)
        .unwrap_or(dir)
}
