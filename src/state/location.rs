//! Where this project's state object is: bucket, key (with terraform's workspace rule),
//! region and how S3 is reached, read from the s3 backend block. While failed over, the
//! override file's block is the one terraform uses; the project's own block is the
//! primary.

use std::path::{Path, PathBuf};

use crate::backend::{self, Backend};

use super::marker::OVERRIDE_FILE;
use super::StateError;

/// The default `workspace_key_prefix` of the s3 backend.
pub const DEFAULT_WORKSPACE_PREFIX: &str = "env:";

/// One state object and how to reach its bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// The object key, workspace applied.
    pub key: String,
    /// The backend's `region` (else the role's region is used).
    pub region: Option<String>,
    /// `use_path_style` (or the older `force_path_style`).
    pub path_style: bool,
    /// `endpoints.s3` (or the older `endpoint`), when the block sets one.
    pub endpoint: Option<String>,
}

/// The key terraform uses for `workspace`: the backend's `key` for `default`, else
/// `PREFIX/WORKSPACE/KEY` (PREFIX is `workspace_key_prefix`, `env:` by default).
pub fn state_key(key: &str, prefix: Option<&str>, workspace: &str) -> String {
    if workspace == "default" {
        key.to_string()
    } else {
        format!(
            "{}/{workspace}/{key}",
            prefix.unwrap_or(DEFAULT_WORKSPACE_PREFIX)
        )
    }
}

impl Location {
    /// The state object of `workspace` under an s3 backend block.
    pub fn from_backend(b: &Backend, workspace: &str) -> Result<Location, StateError> {
        if b.kind != "s3" {
            return Err(StateError::NotS3 {
                kind: b.kind.clone(),
                file: b.file.display().to_string(),
            });
        }
        let literal = |setting: &str| {
            b.string(setting)
                .map(str::to_string)
                .ok_or_else(|| StateError::Unset {
                    setting: setting.to_string(),
                    file: b.file.display().to_string(),
                })
        };
        let bucket = literal("bucket")?;
        let key = literal("key")?;
        Ok(Location {
            bucket,
            key: state_key(&key, b.string("workspace_key_prefix"), workspace),
            region: b.string("region").map(str::to_string),
            path_style: b.bool("use_path_style") == Some(true)
                || b.bool("force_path_style") == Some(true),
            endpoint: b
                .nested("endpoints", "s3")
                .or_else(|| b.string("endpoint"))
                .map(str::to_string),
        })
    }

    /// `s3://BUCKET/KEY`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// The same key in another bucket and region (the replica).
    pub fn moved(&self, bucket: &str, region: &str) -> Location {
        Location {
            bucket: bucket.to_string(),
            region: Some(region.to_string()),
            ..self.clone()
        }
    }
}

/// True for files whose blocks terraform merges over the others (`override.tf`,
/// `*_override.tf`).
fn is_override(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "override.tf" || n.ends_with("_override.tf"))
}

/// The project's own backend block: the first one in the `.tf` files of `dir` that are
/// not override files.
pub fn original_backend(dir: &Path) -> Result<Backend, StateError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| StateError::io(format!("read {}", dir.display()), e))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file() && !is_override(p))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| StateError::io(format!("read {}", file.display()), e))?;
        if let Some(b) = backend::parse(&text, &file)? {
            return Ok(b);
        }
    }
    Err(StateError::NoBackend {
        dir: dir.display().to_string(),
    })
}

/// The override file's backend block, while `dir` is failed over.
pub fn override_backend(dir: &Path) -> Result<Option<Backend>, StateError> {
    let file = dir.join(OVERRIDE_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io(format!("read {}", file.display()), e)),
    };
    Ok(backend::parse(&text, &file)?)
}

/// The backend terraform uses now: the override's while failed over (then `true`),
/// else the project's own.
pub fn effective_backend(dir: &Path) -> Result<(Backend, bool), StateError> {
    match override_backend(dir)? {
        Some(b) => Ok((b, true)),
        None => Ok((original_backend(dir)?, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_keys_follow_terraform() {
        assert_eq!(state_key("p/t.tfstate", None, "default"), "p/t.tfstate");
        assert_eq!(
            state_key("p/t.tfstate", None, "prod"),
            "env:/prod/p/t.tfstate"
        );
        assert_eq!(
            state_key("p/t.tfstate", Some("ws"), "prod"),
            "ws/prod/p/t.tfstate"
        );
    }

    #[test]
    fn location_from_a_block_and_override_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("main.tf"),
            "terraform {\n backend \"s3\" {\n bucket = \"b\"\n key = \"k\"\n region = \"eu-west-1\"\n workspace_key_prefix = \"w\"\n use_path_style = true\n endpoints = { s3 = \"http://x\" }\n }\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(OVERRIDE_FILE),
            "terraform {\n backend \"s3\" {\n bucket = \"r\"\n key = \"k\"\n }\n}\n",
        )
        .unwrap();
        let b = original_backend(dir.path()).unwrap();
        let loc = Location::from_backend(&b, "blue").unwrap();
        assert_eq!(
            loc,
            Location {
                bucket: "b".into(),
                key: "w/blue/k".into(),
                region: Some("eu-west-1".into()),
                path_style: true,
                endpoint: Some("http://x".into()),
            }
        );
        let (now, over) = effective_backend(dir.path()).unwrap();
        assert!(over);
        assert_eq!(now.string("bucket"), Some("r"));
    }
}
