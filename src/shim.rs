//! The `terraform` shim: read the command line, find the project config, decide the
//! mode, find the real terraform, then either step aside (exec it) or hand the run to
//! the break-glass path.
//!
//! This module is the hot path of every `terraform` the user types. It loads no AWS
//! SDK and starts no async runtime; the break-glass path is passed in by the caller.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::activation;
use crate::config::Project;
use crate::error::Error;
use crate::invocation::Invocation;
use crate::mode::{self, Mode};
use crate::paths::Dirs;
use crate::terraform::{self, Guard, Requested};

/// Everything the break-glass path needs about one `terraform` run.
#[derive(Debug)]
pub struct ShimRun {
    pub invocation: Invocation,
    /// The directory the shim was started in.
    pub cwd: PathBuf,
    /// The directory terraform runs in (`-chdir` applied).
    pub workdir: PathBuf,
    pub project: Option<Project>,
    pub mode: Mode,
    /// The real terraform.
    pub terraform: PathBuf,
    pub guard: Guard,
    pub dirs: Option<Dirs>,
}

/// The basename of `argv[0]`: the name the shim was started as.
pub fn invoked_name(argv0: &OsString) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "terraform".to_string())
}

/// Reads everything the decision needs and finds the real terraform.
pub fn prepare(name: String, args: Vec<OsString>) -> Result<ShimRun, Error> {
    let mut run = read_context(name, args)?;
    let completing = std::env::var_os("COMP_LINE").is_some();
    if !completing && !run.invocation.is_passthrough() {
        run.mode = decide_mode(&run)?;
    }
    run.terraform = locate_terraform(&run)?;
    Ok(run)
}

/// The mode for this project: off inside a break-glass run when this directory maps
/// to the run's own role (it inherits the credentials; any other role is refused),
/// else `BREAKGLASS`, else an activation, else the config.
pub fn decide_mode(run: &ShimRun) -> Result<Mode, Error> {
    if let Some(value) = std::env::var_os(crate::nested::NESTED_VAR) {
        let marker = value.to_str().and_then(crate::nested::Marker::parse);
        let resolved = match &run.project {
            Some(p) => {
                let ws = crate::mapping::current_workspace(
                    &run.workdir,
                    std::env::var("TF_WORKSPACE").ok().as_deref(),
                );
                p.resolve(&run.workdir, &ws)
                    .map(|t| (t.arn, t.read_arn))
                    .map_err(|e| {
                        format!(
                            "maps to no role: {}",
                            e.to_string().lines().next().unwrap_or_default()
                        )
                    })
            }
            None => Err("has no .breakglass.toml at or above it".to_string()),
        };
        crate::nested::check(marker.as_ref(), &run.workdir, resolved)?;
        return Ok(Mode {
            on: false,
            reason: mode::Reason::Nested,
        });
    }
    Ok(mode::decide(
        std::env::var_os(mode::MODE_VAR).as_deref(),
        run.project.as_ref(),
        |p| {
            run.dirs
                .as_ref()
                .and_then(|d| activation::current(d, &p.root))
        },
    )?)
}

/// Reads the command line, the working directory and the project config. The mode
/// starts off and the program is not yet found. A command that passes through in
/// every mode (`version`, `fmt`, completion) reads only the config's `terraform` key,
/// and never fails because of the config.
pub fn read_context(name: String, args: Vec<OsString>) -> Result<ShimRun, Error> {
    let invocation = Invocation::parse(name, args);
    let completing = std::env::var_os("COMP_LINE").is_some();
    let lenient = completing || invocation.is_passthrough();
    read_context_for(invocation, lenient, completing)
}

/// [`read_context`] for a given invocation: `lenient` reads only the `terraform` key
/// (with a warning for a config that does not parse, unless `quiet`).
pub fn read_context_for(
    invocation: Invocation,
    lenient: bool,
    quiet: bool,
) -> Result<ShimRun, Error> {
    let cwd = std::env::current_dir().map_err(Error::Cwd)?;
    let workdir = invocation.workdir(&cwd);
    let project = if lenient {
        Project::discover_passthrough(&workdir, quiet)
    } else {
        Project::discover(&workdir)?
    };
    Ok(ShimRun {
        invocation,
        cwd,
        workdir,
        project,
        mode: Mode {
            on: false,
            reason: mode::Reason::NotEnabled,
        },
        terraform: PathBuf::new(),
        guard: Guard::inherit(std::env::var_os(terraform::GUARD_VAR).as_deref()),
        dirs: Dirs::new(),
    })
}

/// The real terraform: `BREAKGLASS_TERRAFORM`, else the config's `terraform` key, else
/// the name the shim was started as, skipping every file that is a shim.
pub fn locate_terraform(run: &ShimRun) -> Result<PathBuf, Error> {
    let project = run.project.as_ref();
    let requested =
        if let Some(v) = std::env::var_os(terraform::TERRAFORM_VAR).filter(|v| !v.is_empty()) {
            Requested::Env(v)
        } else if let (Some(t), Some(p)) =
            (project.and_then(|p| p.settings.terraform.as_ref()), project)
        {
            Requested::Config {
                value: t.value.clone(),
                base: p.root.clone(),
            }
        } else {
            Requested::Name(run.invocation.name.clone())
        };
    Ok(terraform::locate(
        &requested,
        std::env::var_os("PATH").as_deref(),
        &run.cwd,
        &run.guard,
    )?)
}

/// Runs the shim: exec the real terraform when the mode is off, or call `on` when it
/// is on. Returns the process exit code; on the off path it returns only on failure.
pub fn run(
    argv0: OsString,
    args: Vec<OsString>,
    on: impl FnOnce(ShimRun) -> Result<i32, Error>,
) -> i32 {
    let completing = std::env::var_os("COMP_LINE").is_some();
    let result = prepare(invoked_name(&argv0), args).and_then(|run| {
        if run.mode.on {
            on(run)
        } else {
            Err(terraform::exec(&run.terraform, &run.invocation.args, &run.guard, &[]).into())
        }
    });
    match result {
        Ok(code) => code,
        // Shell completion gets nothing but an exit code: no prompt, no message.
        Err(_) if completing => crate::error::SHIM_FAILURE,
        Err(e) => e.report(),
    }
}

/// The environment variable naming the full `breakglass` binary (default: the
/// `breakglass` file beside the shim executable).
pub const BIN_VAR: &str = "BREAKGLASS_BIN";

/// The small shim's break-glass path: exec the full `breakglass` binary under the same
/// name and arguments; it makes the same decision and runs the break-glass path.
/// Returns only on failure.
pub fn hand_to_full_binary(argv0: &OsString, run: &ShimRun) -> Error {
    let full = match std::env::var_os(BIN_VAR).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::current_exe() {
            Ok(me) => me.with_file_name("breakglass"),
            Err(e) => return Error::Message(format!("cannot find this shim's own path: {e}")),
        },
    };
    if !full.is_file() {
        return Error::Message(format!(
            "break-glass mode is on ({}), but the full breakglass binary is missing at {}\n  fix: reinstall breakglass so that `breakglass` sits beside `breakglass-shim`, or set {BIN_VAR}=/path/to/breakglass",
            run.mode.reason,
            full.display()
        ));
    }
    let mut cmd = std::process::Command::new(&full);
    std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
    cmd.args(&run.invocation.args)
        .env(terraform::GUARD_VAR, run.guard.hand_on(&full));
    let source = std::os::unix::process::CommandExt::exec(&mut cmd);
    terraform::LocateError::Exec { path: full, source }.into()
}
