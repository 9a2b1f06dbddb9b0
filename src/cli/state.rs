//! `breakglass state versions|restore|failover|failback`: the state commands. Each runs
//! under the mapped role (`versions` under the read role when there is one), terraform
//! itself does every write (`state push`, `init -reconfigure`), and each is audited.
//! The failover pair lives in [`switch`].

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use crate::error::{Error, SHIM_FAILURE};
use crate::run::{self, RoleRun};
use crate::shim::{self, ShimRun};
use crate::state::location::{self, Location};
use crate::state::replica;
use crate::state::restore::{self, Outcome};
use crate::state::s3::Store;
use crate::state::{versions, StateError};
use crate::supervisor::ChildSpec;

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
pub fn run(chdir: Option<PathBuf>, command: StateCommand) -> Result<i32, Error> {
    match command {
        StateCommand::Versions { json } => list(chdir, json),
        StateCommand::Restore { version_id, yes } => restore(chdir, &version_id, yes),
        StateCommand::Failover => switch::failover(chdir),
        StateCommand::Failback => switch::failback(chdir),
    }
}

/// The runtime, made on first use.
fn runtime(rt: &mut Option<tokio::runtime::Runtime>) -> Result<&tokio::runtime::Runtime, Error> {
    match rt {
        Some(r) => Ok(r),
        None => Ok(rt.insert(run::runtime()?)),
    }
}

/// A context under the role, as for `terraform ARGS`, with the real terraform found.
fn context(chdir: Option<PathBuf>, args: &[&str], command: &str) -> Result<ShimRun, Error> {
    let mut run = super::role_context(chdir, args, command)?;
    run.terraform = shim::locate_terraform(&run)?;
    Ok(run)
}

/// The terraform workspace the mapping resolved.
fn workspace(run: &ShimRun) -> Result<String, Error> {
    Ok(run::target(run)?.workspace)
}

/// The real terraform with `args`, in the project directory.
fn terraform(run: &ShimRun, args: &[&std::ffi::OsStr]) -> ChildSpec {
    let mut chdir = OsString::from("-chdir=");
    chdir.push(&run.workdir);
    ChildSpec {
        program: run.terraform.clone(),
        args: std::iter::once(chdir)
            .chain(args.iter().map(|a| a.to_os_string()))
            .collect(),
        env: Vec::new(),
    }
}

/// Runs `terraform ARGS` under the role, audited as `kind`; returns its exit code.
fn under_role(run: &ShimRun, kind: &str, args: &[&str]) -> Result<i32, Error> {
    let role = RoleRun::new(run, kind)?.audit_as(args);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    Ok(role.supervise(terraform(run, &args))?.code)
}

/// Records a state command that stopped after it got its credentials, and returns the
/// error.
fn stopped(role: RoleRun, e: impl Into<Error>) -> Error {
    role.finish(SHIM_FAILURE);
    e.into()
}

/// Prints on stdout, ignoring a closed pipe.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn list(chdir: Option<PathBuf>, json: bool) -> Result<i32, Error> {
    // `state pull` is read-only: the read role when there is one.
    let run = context(chdir, &["state", "pull"], "state versions")?;
    let (backend, failed_over) = location::effective_backend(&run.workdir)?;
    let loc = Location::from_backend(&backend, &workspace(&run)?)?;
    let mut role = RoleRun::new(&run, "state versions")?.audit_as(&["state", "versions"]);
    let mut rt = None;
    runtime(&mut rt)?;
    let entry = role.own_credentials(&mut rt)?;
    if failed_over {
        eprintln!("breakglass: FAILED OVER: these are the versions in the replica");
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
        eprintln!(
            "breakglass: {} has no versions (no state written yet?)",
            loc.url()
        );
    } else {
        eprintln!("breakglass: versions of {}, newest first", loc.url());
        print(&versions::table(&rows));
    }
    if more {
        eprintln!(
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
    eprint!("  type `yes` to go on: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::Message(format!("cannot read the answer: {e}")))?;
    Ok(line.trim() == "yes")
}

/// A private temporary file holding a state document for `terraform state push`.
fn state_file(bytes: &[u8]) -> Result<tempfile::NamedTempFile, Error> {
    let mut f = tempfile::Builder::new()
        .prefix("breakglass-state-")
        .suffix(".tfstate")
        .tempfile()
        .map_err(|e| StateError::io("create a temporary state file", e))?;
    f.write_all(bytes)
        .and_then(|_| f.flush())
        .map_err(|e| StateError::io("write a temporary state file", e))?;
    Ok(f)
}

fn restore(chdir: Option<PathBuf>, version_id: &str, yes: bool) -> Result<i32, Error> {
    let run = context(chdir, &["state", "push"], "state restore")?;
    let (backend, _) = location::effective_backend(&run.workdir)?;
    let loc = Location::from_backend(&backend, &workspace(&run)?)?;
    let url = loc.url();
    let mut role = RoleRun::new(&run, "state restore")?.audit_as(&["state", "restore", version_id]);
    let mut rt = None;
    runtime(&mut rt)?;
    let entry = role.own_credentials(&mut rt)?;
    let store = runtime(&mut rt)?.block_on(Store::connect(&entry, loc));
    let planned = runtime(&mut rt)?.block_on(restore::plan(&store, version_id));
    let plan = match planned {
        Ok(Outcome::Ready(plan)) => plan,
        Ok(Outcome::AlreadyCurrent) => {
            role.finish(0);
            eprintln!("breakglass: version {version_id} is the current state of {url}: nothing to restore");
            return Ok(0);
        }
        Err(e) => return Err(stopped(role, e)),
    };
    eprint!("breakglass: {}", plan.summary(&url));
    if !yes {
        match confirm("restored") {
            Ok(true) => {}
            Ok(false) => {
                role.finish(1);
                eprintln!("breakglass: not restored");
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
        .supervise(terraform(
            &run,
            &["state".as_ref(), "push".as_ref(), file.path().as_os_str()],
        ))?
        .code;
    if code != 0 {
        eprintln!(
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
    eprintln!("breakglass: restored version {version_id} of {url}; the state is now serial {now}");
    if let Some(r) = &plan.replaced {
        eprintln!("  undo: `breakglass state restore {r}`");
    }
    eprintln!("  next: `terraform plan` shows what it takes to reach the configuration again");
    Ok(0)
}
