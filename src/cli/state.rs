//! `breakglass state versions|restore|failover|failback`: the state commands. Each runs
//! under the mapped role (`versions` under the read role when there is one), terraform
//! itself does every write (`state push`, `init -reconfigure`), and each is audited.
//! The failover pair lives in [`switch`].

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use crate::context::Context;
use crate::error::{Error, SHIM_FAILURE};
use crate::run::{command_mode, RoleRun, RunSpec};
use crate::state::location::{self, Location};
use crate::state::replica;
use crate::state::restore::{self, Outcome};
use crate::state::s3::Store;
use crate::state::{versions, StateError};
use crate::supervisor::ChildSpec;
use crate::terraform::{Guard, GUARD_VAR};

mod switch;

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// List the state object's versions, newest first (under the read role when there is one).
    Versions {
        #[arg(long)]
        json: bool,
    },
    /// Put an older version back through `terraform state push` (terraform takes the lock).
    Restore {
        /// A version id from `breakglass state versions`.
        #[arg(value_name = "VERSION_ID")]
        version_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Point the backend at the state bucket's replica (when the primary region is down).
    Failover,
    /// Bring the replica's state home to the primary bucket and end the failover.
    Failback,
}

/// Runs one state command; returns the exit code.
pub fn run(ctx: &Context, command: StateCommand) -> Result<i32, Error> {
    let cmd = Cmd::new(ctx)?;
    match command {
        StateCommand::Versions { json } => list(&cmd, json),
        StateCommand::Restore { version_id, yes } => restore(&cmd, &version_id, yes),
        StateCommand::Failover => switch::failover(&cmd),
        StateCommand::Failback => switch::failback(&cmd),
    }
}

/// Where a state command runs: the context and the real terraform.
struct Cmd<'a> {
    ctx: &'a Context,
    terraform: PathBuf,
}

impl<'a> Cmd<'a> {
    fn new(ctx: &'a Context) -> Result<Cmd<'a>, Error> {
        let guard = Guard::inherit(ctx.env.os(GUARD_VAR));
        Ok(Cmd {
            ctx,
            terraform: crate::shim::locate_terraform(ctx, "terraform", &guard)?,
        })
    }

    /// A run under the role, recorded as `kind` with `args` (the write role unless
    /// `read_only`).
    fn role(&self, kind: &str, read_only: bool, args: &[&str]) -> Result<RoleRun, Error> {
        let spec = RunSpec {
            kind: kind.to_string(),
            read_only,
            subcommand: args.first().map(|a| a.to_string()),
            args: args.iter().map(OsString::from).collect(),
        };
        RoleRun::new(self.ctx, &command_mode(self.ctx, kind), spec)
    }

    /// The real terraform with `args`, in the directory acted on.
    fn terraform(&self, args: &[&std::ffi::OsStr]) -> ChildSpec {
        ChildSpec {
            program: self.terraform.clone(),
            args: args.iter().map(|a| a.to_os_string()).collect(),
            env: Vec::new(),
            cwd: Some(self.ctx.workdir.clone()),
        }
    }

    /// Runs `terraform ARGS` under the role, recorded as `kind`; returns its exit code.
    fn under_role(&self, kind: &str, args: &[&str]) -> Result<i32, Error> {
        let role = self.role(kind, false, args)?;
        let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        Ok(role.supervise(self.terraform(&os))?.code)
    }
}

/// The runtime, made on first use.
fn runtime(rt: &mut Option<tokio::runtime::Runtime>) -> Result<&tokio::runtime::Runtime, Error> {
    match rt {
        Some(r) => Ok(r),
        None => Ok(rt.insert(crate::run::runtime()?)),
    }
}

/// Records a state command that stopped after it got its credentials, and returns the
/// error.
fn stopped(role: RoleRun, e: impl Into<Error>) -> Error {
    role.finish(SHIM_FAILURE);
    e.into()
}

/// Prints on stdout (a closed pipe ends the command quietly).
fn print(text: &str) {
    crate::out::stdout_bytes(text.as_bytes());
}

fn list(cmd: &Cmd, json: bool) -> Result<i32, Error> {
    let (backend, failed_over) = location::effective_backend(&cmd.ctx.workdir)?;
    let loc = Location::from_backend(&backend, &cmd.ctx.workspace())?;
    // Reading versions is read-only: the read role when there is one.
    let mut role = cmd.role("state versions", true, &["state", "versions"])?;
    let mut rt = None;
    runtime(&mut rt)?;
    let entry = role.own_credentials(&mut rt)?;
    if failed_over {
        crate::say!("breakglass: FAILED OVER: these are the versions in the replica");
    }
    let result = runtime(&mut rt)?
        .block_on(async { versions::rows(&Store::connect(&entry, loc.clone()).await).await });
    let (rows, more) = match result {
        Ok(x) => x,
        Err(e) => return Err(stopped(role, e)),
    };
    role.finish(0);
    if json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        ));
    } else if rows.is_empty() {
        crate::say!(
            "breakglass: {} has no versions (no state written yet?)",
            loc.url()
        );
    } else {
        crate::say!("breakglass: versions of {}, newest first", loc.url());
        print(&versions::table(&rows));
    }
    if more {
        crate::say!(
            "breakglass: older versions exist beyond these {}: `aws s3api list-object-versions --bucket {} --prefix {}` lists them; `breakglass state restore ID` takes any id",
            rows.len(),
            loc.bucket,
            loc.key
        );
    }
    Ok(0)
}

/// Asks on the terminal; refuses when stdin is not one.
fn confirm(what: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Message(format!(
            "not {what}: stdin is not a terminal, so nobody can confirm\n  fix: read the summary above, then run the command again with --yes"
        )));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "  type `yes` to go on: ");
    let _ = err.flush();
    drop(err);
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Message(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

/// A private temporary file holding a state document for `terraform state push`: 0600
/// in a 0700 directory of its own (a state often holds secrets). Removed on drop.
pub(crate) struct StateFile {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl StateFile {
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

fn state_file(bytes: &[u8]) -> Result<StateFile, Error> {
    let dir = tempfile::Builder::new()
        .prefix("breakglass-state-")
        .tempdir()
        .map_err(|e| StateError::io("create a temporary state directory", e))?;
    let path = dir.path().join("pushed.tfstate");
    let mut f = crate::paths::private_file()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| StateError::io("create a temporary state file", e))?;
    f.write_all(bytes)
        .and_then(|_| f.flush())
        .map_err(|e| StateError::io("write a temporary state file", e))?;
    Ok(StateFile { _dir: dir, path })
}

fn restore(cmd: &Cmd, version_id: &str, yes: bool) -> Result<i32, Error> {
    let (backend, _) = location::effective_backend(&cmd.ctx.workdir)?;
    let loc = Location::from_backend(&backend, &cmd.ctx.workspace())?;
    let url = loc.url();
    let mut role = cmd.role("state restore", false, &["state", "restore", version_id])?;
    let mut rt = None;
    runtime(&mut rt)?;
    let entry = role.own_credentials(&mut rt)?;
    let store = runtime(&mut rt)?.block_on(Store::connect(&entry, loc));
    let planned = runtime(&mut rt)?.block_on(restore::plan(&store, version_id));
    let plan = match planned {
        Ok(Outcome::Ready(plan)) => plan,
        Ok(Outcome::AlreadyCurrent) => {
            role.finish(0);
            crate::say!("breakglass: version {version_id} is the current state of {url}: nothing to restore");
            return Ok(0);
        }
        Err(e) => return Err(stopped(role, e)),
    };
    crate::say!("breakglass: {}", plan.summary(&url).trim_end());
    if !yes {
        match confirm("restored") {
            Ok(true) => {}
            Ok(false) => {
                role.finish(1);
                crate::say!("breakglass: not restored");
                return Ok(1);
            }
            Err(e) => return Err(stopped(role, e)),
        }
    }
    let file = match state_file(&plan.document) {
        Ok(f) => f,
        Err(e) => return Err(stopped(role, e)),
    };
    let code = role
        .supervise(cmd.terraform(&["state".as_ref(), "push".as_ref(), file.path().as_os_str()]))?
        .code;
    if code != 0 {
        crate::say!(
            "breakglass: `terraform state push` failed (exit {code}); the state is as it was"
        );
        return Ok(code);
    }
    // terraform adds one to the serial when what it writes differs from what it read.
    let now = runtime(&mut rt)?
        .block_on(replica::read_state(&store))
        .ok()
        .flatten()
        .map_or_else(|| "?".to_string(), |s| s.serial.to_string());
    crate::say!(
        "breakglass: restored version {version_id} of {url}; the state is now serial {now}"
    );
    if let Some(r) = &plan.replaced {
        crate::say!("  undo: `breakglass state restore {r}`");
    }
    crate::say!("  next: `terraform plan` shows what it takes to reach the configuration again");
    Ok(0)
}
