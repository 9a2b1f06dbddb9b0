//! `breakglass trust [PATH]`: obey a config file that another user owns or that others
//! can write (see [`crate::trust`]), by adding it to the user's trust list.

use std::path::PathBuf;

use crate::context::Context;
use crate::error::Error;

/// Adds `path` (default: the config that applies to the directory acted on) to the
/// trust list.
pub fn run(ctx: &Context, path: Option<PathBuf>) -> Result<i32, Error> {
    let file = match path {
        Some(p) => ctx.cwd.join(p),
        None => crate::config::find_config(&ctx.workdir).ok_or_else(|| {
            Error::Message(format!(
                "no .breakglass.toml at or above {}\n  fix: name the file: `breakglass trust PATH`",
                ctx.workdir.display()
            ))
        })?,
    };
    let file = std::fs::canonicalize(&file).map_err(|e| {
        Error::Message(format!(
            "cannot read {}: {e}\n  fix: name an existing config file or directory",
            file.display()
        ))
    })?;
    let list = crate::trust::add(&file.display().to_string()).map_err(|e| {
        Error::Message(format!(
            "cannot write the trust list: {e}\n  fix: check that your config directory is yours and writable"
        ))
    })?;
    crate::say!(
        "breakglass: trusting {} (listed in {}); remove the line there to stop",
        file.display(),
        list.display()
    );
    Ok(0)
}
