//! `breakglass man DIR`: writes the manual pages (section 1) for `breakglass` and each
//! of its commands, generated from the same clap definitions as `--help`.

use std::path::Path;

use clap::CommandFactory;

use crate::error::Error;

/// Writes `breakglass.1` and `breakglass-COMMAND.1` for every command into `dir`
/// (created if missing), and names the directory on stderr.
pub fn write(dir: &Path) -> Result<i32, Error> {
    let fail = |what: &str, e: std::io::Error| {
        Error::Message(format!(
            "cannot {what} {}: {e}\n  fix: choose a directory you can write, e.g. `breakglass man ~/.local/share/man/man1`",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("create", e))?;
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    generate(cmd, dir).map_err(|e| fail("write the pages in", e))?;
    let read = if dir.file_name().is_some_and(|n| n == "man1") {
        format!(
            "man -M {} breakglass",
            dir.parent().unwrap_or(dir).display()
        )
    } else {
        format!("man {}", dir.join("breakglass.1").display())
    };
    crate::say!(
        "breakglass: wrote breakglass.1 and breakglass-COMMAND.1 in {}\n  read them with `{read}`",
        dir.display()
    );
    Ok(0)
}

/// One page for `cmd`, then one for each of its visible subcommands.
fn generate(cmd: clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        generate(sub, dir)?;
    }
    clap_mangen::Man::new(cmd)
        .source(format!("breakglass {}", env!("CARGO_PKG_VERSION")))
        .manual("breakglass manual")
        .generate_to(dir)?;
    Ok(())
}
