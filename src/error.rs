//! The errors that reach the user, and the exit code they map to.
//!
//! Inside, each module has its own typed error. Here each becomes one message on
//! stderr and the shim's own exit code, which terraform never uses.

use crate::cache::CacheError;
use crate::config::ConfigError;
use crate::credentials::CredentialsError;
use crate::mapping::MappingError;
use crate::mode::ModeError;
use crate::sts::StsError;
use crate::terraform::LocateError;

/// The exit code of the shim's own failures, before terraform starts: config,
/// credentials, no terraform found, a shim loop. Terraform exits 0, 1 or 2 (and a
/// process killed by signal N gives 128+N), so 125 is never terraform's.
pub const SHIM_FAILURE: i32 = 125;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Mapping(#[from] MappingError),
    #[error(transparent)]
    Mode(#[from] ModeError),
    #[error(transparent)]
    Locate(#[from] LocateError),
    #[error(transparent)]
    Sts(#[from] StsError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Supervisor(#[from] crate::supervisor::SupervisorError),
    #[error(transparent)]
    Nested(#[from] crate::nested::NestedError),
    /// Another process held the credential lock past the bound.
    #[error("{0}")]
    Lock(String),
    #[error("cannot read the current directory: {0}")]
    Cwd(std::io::Error),
    /// A failure already worded for the user: what happened, then what to run.
    #[error("{0}")]
    Message(String),
}

impl From<CredentialsError> for Error {
    fn from(e: CredentialsError) -> Self {
        match e {
            CredentialsError::Sts(e) => Error::Sts(e),
            CredentialsError::Cache(e) => Error::Cache(e),
            e @ CredentialsError::LockTimeout { .. } => Error::Lock(e.to_string()),
        }
    }
}

impl Error {
    /// Prints the error on stderr and returns the exit code.
    pub fn report(&self) -> i32 {
        crate::say!("breakglass: {self}");
        SHIM_FAILURE
    }
}
