//! The project context every command starts from: the working directory, the
//! directory acted on, the project found there, breakglass's own directories, and the
//! environment read once. Terraform's arguments are not part of it: the shim reads them
//! beside it, and a CLI command never has to fake a terraform command line.

use std::path::{Path, PathBuf};

use crate::config::Project;
use crate::env::Env;
use crate::error::Error;
use crate::mapping::{current_workspace, RoleTarget};
use crate::paths::Dirs;

/// Where a command runs, and for which project.
#[derive(Debug, Clone)]
pub struct Context {
    /// The directory the process was started in.
    pub cwd: PathBuf,
    /// The directory acted on (`-chdir` / `-C` applied, symlinks resolved).
    pub workdir: PathBuf,
    /// The project config found at or above `workdir`, if any (and trusted).
    pub project: Option<Project>,
    pub dirs: Option<Dirs>,
    pub env: Env,
}

/// How much of the config a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Every key, checked: a broken config is an error.
    Full,
    /// Only the `terraform` key, for commands that pass through in every mode; a
    /// broken config is a warning (or nothing, when `quiet`).
    TerraformKeyOnly { quiet: bool },
}

impl Context {
    /// The context for `dir` (relative to the working directory; none: the working
    /// directory itself).
    pub fn new(dir: Option<&Path>, env: Env, reading: Reading) -> Result<Context, Error> {
        let cwd = std::env::current_dir().map_err(Error::Cwd)?;
        let workdir = resolve_dir(&cwd, dir);
        let project = match reading {
            Reading::Full => Project::discover(&workdir)?,
            Reading::TerraformKeyOnly { quiet } => Project::discover_passthrough(&workdir, quiet),
        };
        Ok(Context {
            cwd,
            workdir,
            project,
            dirs: Dirs::new(),
            env,
        })
    }

    /// The project, or the error that says a config is needed here.
    pub fn project(&self) -> Result<&Project, Error> {
        self.project.as_ref().ok_or_else(|| {
            Error::Message(format!(
                "no .breakglass.toml was found at or above {}\n  fix: run `breakglass init` there (or use -C DIR)",
                self.workdir.display()
            ))
        })
    }

    /// The terraform workspace of the directory acted on.
    pub fn workspace(&self) -> String {
        current_workspace(
            &self.workdir,
            self.env.get("TF_WORKSPACE"),
            self.env.os("TF_DATA_DIR"),
        )
    }

    /// The role mapped for the directory acted on and its workspace.
    pub fn target(&self) -> Result<RoleTarget, Error> {
        Ok(self.project()?.resolve(&self.workdir, &self.workspace())?)
    }

    /// An error when this process runs inside a break-glass run (a shell from
    /// `breakglass exec`): its AWS environment is that run's role, so assuming a role
    /// from here would use the wrong source identity.
    pub fn outside_a_run(&self) -> Result<(), Error> {
        let Some(value) = self.env.os(crate::nested::NESTED_VAR) else {
            return Ok(());
        };
        let inside = value
            .to_str()
            .and_then(crate::nested::Marker::parse)
            .map(|m| {
                format!(
                    "the break-glass run for {} ({})",
                    m.role_arn,
                    m.project_root.display()
                )
            })
            .unwrap_or_else(|| "a break-glass run".to_string());
        Err(Error::Message(format!(
            "this shell is inside {inside}: its AWS identity is that run's role, not yours\n  fix: leave it (`exit`), then run the command again"
        )))
    }

    /// The base directories, or the error that says what to set.
    pub fn dirs(&self) -> Result<Dirs, Error> {
        self.dirs.clone().ok_or_else(|| {
            Error::Message(
                "cannot find your home directory for breakglass's files\n  fix: set HOME"
                    .to_string(),
            )
        })
    }
}

/// `dir` taken relative to `cwd`, with symlinks and `..` resolved as the kernel would
/// (lexically if it does not exist).
pub fn resolve_dir(cwd: &Path, dir: Option<&Path>) -> PathBuf {
    let dir = match dir {
        Some(d) => cwd.join(d),
        None => cwd.to_path_buf(),
    };
    std::fs::canonicalize(&dir).unwrap_or_else(|_| crate::invocation::normalize(&dir))
}
