//! Debug logging for the break-glass path and the CLI: off unless `BREAKGLASS_LOG` is
//! set (e.g. `BREAKGLASS_LOG=debug`), and then only to stderr. Secrets are never
//! logged: they live in `Secret`, which prints `***`.

/// The variable holding the log filter (`tracing_subscriber::EnvFilter` syntax).
pub const LOG_VAR: &str = "BREAKGLASS_LOG";

/// Starts logging to stderr when `BREAKGLASS_LOG` is set; does nothing otherwise.
pub fn init() {
    let Some(filter) = std::env::var(LOG_VAR).ok().filter(|f| !f.trim().is_empty()) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
