//! Debug logging for the break-glass path and the CLI: off unless `BREAKGLASS_LOG` is
//! set (e.g. `BREAKGLASS_LOG=debug`), and then only to stderr. Secrets are never
//! logged: they live in `Secret`, which prints `***`.

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The variable holding the log level (`error`, `warn`, `info`, `debug`, `trace`).
pub const LOG_VAR: &str = "BREAKGLASS_LOG";

/// Starts logging to stderr when `BREAKGLASS_LOG` is set; does nothing otherwise.
pub fn init(env: &crate::env::Env) {
    let Some(filter) = env.get(LOG_VAR).filter(|f| !f.trim().is_empty()) else {
        return;
    };
    // Only breakglass's own events: the AWS SDK's trace output includes request bodies
    // (an MFA code, an external id), so it is never switched on from here.
    let level = match filter.trim().to_ascii_lowercase().as_str() {
        "error" => Level::ERROR,
        "warn" => Level::WARN,
        "info" => Level::INFO,
        "trace" => Level::TRACE,
        _ => Level::DEBUG,
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(Targets::new().with_target("breakglass", level)),
        )
        .try_init();
}
