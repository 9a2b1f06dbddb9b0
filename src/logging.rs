//! Debug logging for the break-glass path and the CLI: off unless `BREAKGLASS_LOG` is
//! set (e.g. `BREAKGLASS_LOG=debug`), and then only to stderr. Secrets are never
//! logged: they live in `Secret`, which prints `***`.

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
        l @ ("error" | "warn" | "info" | "debug" | "trace") => l.to_string(),
        _ => "debug".to_string(),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "off,breakglass={level}"
        )))
        .with_writer(std::io::stderr)
        .try_init();
}
