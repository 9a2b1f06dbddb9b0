//! breakglass: a drop-in `terraform` for the day the deployment platform is down.
//!
//! The `terraform` name runs [`shim`]: it reads the command line ([`invocation`]),
//! finds `.breakglass.toml` ([`config`]), decides the [`mode`], finds the real binary
//! ([`terraform`]) and either execs it, or hands the run to [`run`], which assumes the
//! mapped role ([`mapping`]) and runs terraform under it.
//!
//! The `breakglass` name runs the management CLI ([`cli`]).

pub mod activation;
pub mod audit;
pub mod backend;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod doctor;
pub mod error;
pub mod invocation;
pub mod isolation;
pub mod junit;
pub mod logging;
pub mod mapping;
pub mod mode;
pub mod paths;
pub mod run;
pub mod scaffold;
pub mod secret;
pub mod server;
pub mod shim;
pub mod signals;
pub mod sts;
pub mod supervisor;
pub mod terraform;
