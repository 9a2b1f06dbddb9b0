//! The `terraform` shim: read the command line, find the project config, decide the
//! mode, find the real terraform, then either step aside (exec it) or hand the run to
//! the break-glass path.
//!
//! This module is the hot path of every `terraform` the user types. It loads no AWS
//! SDK and starts no async runtime; the break-glass path is passed in by the caller.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::activation;
use crate::context::{Context, Reading};
use crate::env::Env;
use crate::error::Error;
use crate::invocation::Invocation;
use crate::mode::{self, Mode};
use crate::terraform::{self, Guard, Requested};

/// One `terraform` command line in its context: everything the break-glass path needs.
#[derive(Debug)]
pub struct ShimRun {
    pub ctx: Context,
    pub invocation: Invocation,
    pub mode: Mode,
    /// The real terraform.
    pub terraform: PathBuf,
    pub guard: Guard,
    /// A nested run the small shim leaves to the full binary to check.
    pub hand_over: bool,
}

/// The basename of `argv[0]`: the name the shim was started as.
pub fn invoked_name(argv0: &OsString) -> String {
    Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "terraform".to_string())
}

/// The check of a `terraform` started inside a break-glass run (see [`check_nested`]).
/// The small shim binary passes none: it hands such a run to the full binary, so that
/// the role resolution the check needs is not linked into every `terraform`.
pub type NestedCheck = fn(&Context, bool) -> Result<(), Error>;

/// Reads everything the decision needs and finds the real terraform. A command that
/// passes through in every mode (`version`, `fmt`, completion) reads only the config's
/// `terraform` key, and never fails because of the config.
pub fn prepare(
    name: String,
    args: Vec<OsString>,
    env: Env,
    nested: Option<NestedCheck>,
) -> Result<ShimRun, Error> {
    let invocation = Invocation::parse(name, args);
    let completing = env.is_set("COMP_LINE");
    let passthrough = completing || invocation.is_passthrough();
    let reading = if passthrough {
        Reading::TerraformKeyOnly { quiet: completing }
    } else {
        Reading::Full
    };
    let ctx = Context::new(invocation.chdir.as_deref(), env, reading)?;
    let mut hand_over = false;
    let mode = if passthrough {
        Mode {
            on: false,
            reason: mode::Reason::NotEnabled,
        }
    } else {
        let mode = decide_mode(&ctx)?;
        if mode.reason == mode::Reason::Nested {
            match nested {
                Some(check) => check(&ctx, invocation.is_read_only())?,
                None => hand_over = true,
            }
        }
        mode
    };
    let guard = Guard::inherit(ctx.env.os(terraform::GUARD_VAR));
    let terraform = locate_terraform(&ctx, &invocation.name, &guard)?;
    Ok(ShimRun {
        ctx,
        invocation,
        mode,
        terraform,
        guard,
        hand_over,
    })
}

/// The mode for this context: off inside a break-glass run (a nested run, which
/// [`check_nested`] must allow), else `BREAKGLASS`, else an activation, else the config.
pub fn decide_mode(ctx: &Context) -> Result<Mode, Error> {
    if ctx.env.os(crate::nested::NESTED_VAR).is_some() {
        return Ok(Mode {
            on: false,
            reason: mode::Reason::Nested,
        });
    }
    Ok(mode::decide(
        ctx.env.os(mode::MODE_VAR),
        ctx.project.as_ref(),
        |p| {
            ctx.dirs
                .as_ref()
                .and_then(|d| activation::current(d, &p.root))
        },
    )?)
}

/// A `terraform` inside a break-glass run inherits its credentials only when this
/// directory maps to that run's role; anything else is refused.
///
/// `read_only` is the command's: a nested read-only command may inherit a run of its
/// directory's role or read role; anything else only a run of its role (a read role's
/// credentials would fail it halfway).
pub fn check_nested(ctx: &Context, read_only: bool) -> Result<(), Error> {
    let Some(value) = ctx.env.os(crate::nested::NESTED_VAR) else {
        return Ok(());
    };
    let marker = value.to_str().and_then(crate::nested::Marker::parse);
    let resolved = match &ctx.project {
        Some(_) => ctx
            .target()
            .map(|t| (t.arn, t.read_arn.filter(|_| read_only)))
            .map_err(|e| {
                format!(
                    "maps to no role: {}",
                    e.to_string().lines().next().unwrap_or_default()
                )
            }),
        None => Err("has no .breakglass.toml at or above it".to_string()),
    };
    crate::nested::check(marker.as_ref(), &ctx.workdir, resolved)?;
    Ok(())
}

/// The real terraform: `BREAKGLASS_TERRAFORM`, else the config's `terraform` key, else
/// `name` (the name the shim was started as), skipping every file that is a shim.
pub fn locate_terraform(ctx: &Context, name: &str, guard: &Guard) -> Result<PathBuf, Error> {
    let project = ctx.project.as_ref();
    let requested = if let Some(v) = ctx
        .env
        .os(terraform::TERRAFORM_VAR)
        .filter(|v| !v.is_empty())
    {
        Requested::Env(v.to_os_string())
    } else if let (Some(t), Some(p)) =
        (project.and_then(|p| p.settings.terraform.as_ref()), project)
    {
        Requested::Config {
            value: t.value.clone(),
            base: p.root.clone(),
        }
    } else {
        Requested::Name(name.to_string())
    };
    Ok(terraform::locate(
        &requested,
        ctx.env.os("PATH"),
        &ctx.cwd,
        guard,
    )?)
}

/// Runs the shim: exec the real terraform when the mode is off, or call `on` when it
/// is on. Returns the process exit code; on the off path it returns only on failure.
pub fn run(
    argv0: OsString,
    args: Vec<OsString>,
    env: Env,
    nested: Option<NestedCheck>,
    on: impl FnOnce(ShimRun) -> Result<i32, Error>,
) -> i32 {
    let completing = env.is_set("COMP_LINE");
    let result = prepare(invoked_name(&argv0), args, env, nested).and_then(|run| {
        if run.mode.on || run.hand_over {
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
    let full = match run.ctx.env.os(BIN_VAR).filter(|v| !v.is_empty()) {
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
