//! Recovery for the day the state itself is the casualty: the state object's versions
//! ([`versions`]), putting an older one back through terraform ([`restore`]), and
//! moving the backend to the bucket's replica and back ([`failover`]), with the replica
//! found by [`replica`]. The state's place comes from the backend block ([`location`]),
//! its content is read by [`snapshot`], and S3 is reached under the role by [`s3`].
//!
//! [`marker`] is the SDK-free part that `status`, the prompt and the run's banner use
//! to say "FAILED OVER".

pub mod failover;
pub mod location;
pub mod marker;
pub mod replica;
pub mod restore;
pub mod s3;
pub mod snapshot;
pub mod versions;

/// A state command that cannot go on. Each message says what happened, then what to
/// run.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error("no backend block in the .tf files of {dir}\n  fix: run this in the terraform root directory (or use -C DIR)")]
    NoBackend { dir: String },
    #[error("the state commands work with the s3 backend; this project uses `{kind}` ({file})\n  fix: use your backend's own tools to restore or move the state")]
    NotS3 { kind: String, file: String },
    #[error("the s3 backend in {file} has no literal `{setting}`\n  fix: write {setting} = \"...\" in the backend block (breakglass reads only the block, not -backend-config)")]
    Unset { setting: String, file: String },
    #[error("{op} on {target} failed: {detail}\n  fix: {fix}")]
    S3 {
        op: String,
        target: String,
        detail: String,
        fix: String,
    },
    #[error("{what} is not a terraform state: {why}\n  fix: {fix}")]
    Unreadable {
        what: String,
        why: String,
        fix: String,
    },
    #[error("{0}")]
    Refused(String),
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl StateError {
    /// A refusal: what is wrong, then the `fix:` line.
    pub fn refused(what: impl std::fmt::Display, fix: impl std::fmt::Display) -> StateError {
        StateError::Refused(format!("{what}\n  fix: {fix}"))
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> StateError {
        StateError::Io {
            what: what.into(),
            source,
        }
    }
}

impl From<StateError> for crate::error::Error {
    fn from(e: StateError) -> Self {
        crate::error::Error::Message(e.to_string())
    }
}
