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
pub mod broker;
pub mod cache;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod doctor;
pub mod env;
pub mod error;
pub mod identity;
pub mod import;
pub mod invocation;
pub mod isolation;
pub mod junit;
pub mod logging;
pub mod mapping;
pub mod mfa;
pub mod mode;
pub mod nested;
pub mod out;
pub mod paths;
pub mod policy;
pub mod quirks;
pub mod run;
pub mod scaffold;
pub mod secret;
pub mod server;
pub mod shim;
pub mod signals;
pub mod sink;
pub mod state;
pub mod sts;
pub mod supervisor;
pub mod terraform;
pub mod terragrunt;
pub mod trail;
pub mod trust;
