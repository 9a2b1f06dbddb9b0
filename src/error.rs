//! The errors that reach the user, and the exit code they map to.
//!
//! Inside, each module has its own typed error. Here each becomes one message on
//! stderr and the shim's own exit code, which terraform never uses. This module is on
//! the shim's hot path: it names only the hot path's errors; the break-glass path's
//! modules (STS, the broker, the supervisor) convert theirs into [`Error::Role`].

use crate::config::ConfigError;
use crate::mapping::MappingError;
use crate::mode::ModeError;
use crate::nested::NestedError;
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
    Nested(#[from] NestedError),
    /// A failure of the break-glass path: credentials, STS, the cache, the supervisor.
    #[error(transparent)]
    Role(Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot read the current directory: {0}")]
    Cwd(std::io::Error),
    /// A failure already worded for the user: what happened, then what to run.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// Prints the error on stderr and returns the exit code.
    pub fn report(&self) -> i32 {
        crate::say!("breakglass: {self}");
        SHIM_FAILURE
    }
}
