//! The `breakglass` management CLI.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::paths::Dirs;

/// A drop-in `terraform` for the day the deployment platform is down.
///
/// Install it with `breakglass install`, put the printed directory first on PATH,
/// and type `terraform plan` / `terraform apply` as usual. When break-glass mode is on
/// for a project (`.breakglass.toml`), the shim assumes the mapped deployment role and
/// keeps the credentials fresh for the whole run.
#[derive(Debug, Parser)]
#[command(name = "breakglass", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the `terraform` and `tofu` shim links and print the PATH line to add.
    Install {
        /// Directory for the links (default: the platform data directory's `shims`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs the CLI; returns the exit code.
pub fn main(argv0: OsString, args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(std::iter::once(argv0).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Install { dir } => install(dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

fn dirs() -> Result<Dirs, Error> {
    Dirs::new().ok_or_else(|| {
        Error::Message("cannot find your home directory\n  fix: set HOME".to_string())
    })
}

/// The names the shim is installed under.
pub const SHIM_NAMES: &[&str] = &["terraform", "tofu"];

fn install(dir: Option<PathBuf>) -> Result<i32, Error> {
    let dir = match dir {
        Some(d) => d,
        None => dirs()?.shim_dir(),
    };
    let me = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::Message(format!("cannot find breakglass's own path: {e}")))?;
    let small = me.with_file_name("breakglass-shim");
    let target = if small.is_file() { small } else { me };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", dir.display())))?;
    for name in SHIM_NAMES {
        link(&target, &dir.join(name))?;
    }
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    eprintln!(
        "breakglass: linked {} in {} to {}\n  add this line to your shell profile (it is printed on stdout):",
        SHIM_NAMES.join(" and "),
        dir.display(),
        target.display()
    );
    println!("export PATH=\"{}:$PATH\"", dir.display());
    Ok(0)
}

/// Points `link` at `target`, replacing an older breakglass link but never a real file.
fn link(target: &Path, link: &Path) -> Result<(), Error> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        if !meta.file_type().is_symlink() {
            return Err(Error::Message(format!(
                "{} exists and is not a breakglass link\n  fix: choose another directory with `breakglass install --dir DIR`",
                link.display()
            )));
        }
        std::fs::remove_file(link)
            .map_err(|e| Error::Message(format!("cannot replace {}: {e}", link.display())))?;
    }
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", link.display())))
}
