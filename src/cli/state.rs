//! `breakglass state versions|restore|failover|failback`: the state commands. Each runs
//! under the mapped role (`versions` under the read role when there is one), terraform
//! itself does every write (`state push`, `init -reconfigure`), and each is audited.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, SHIM_FAILURE};
use crate::run::{self, RoleRun};
use crate::shim::{self, ShimRun};
use crate::state::failover::{self, Failback};
use crate::state::location::{self, Location};
use crate::state::marker::{self, OVERRIDE_FILE};
use crate::state::replica;
use crate::state::restore::{self, Outcome};
use crate::state::s3::Store;
use crate::state::{versions, StateError};
use crate::supervisor::ChildSpec;

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
        StateCommand::Failover => failover(chdir),
        StateCommand::Failback => failback(chdir),
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
    let entry = role.own_credentials(&mut rt)?;
    if failed_over {
        eprintln!("breakglass: FAILED OVER: these are the versions in the replica");
    }
    let result = runtime(&mut rt)?
        .block_on(async { versions::rows(&Store::connect(&entry, loc.clone()).await).await });
    let (rows, more) = match result {
        Ok(x) => x,
        Err(e) => {
            role.finish(SHIM_FAILURE);
            return Err(e.into());
        }
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
    let entry = role.own_credentials(&mut rt)?;
    let planned = runtime(&mut rt)?
        .block_on(async { restore::plan(&Store::connect(&entry, loc).await, version_id).await });
    let plan = match planned {
        Ok(Outcome::Ready(plan)) => plan,
        Ok(Outcome::AlreadyCurrent) => {
            role.finish(0);
            eprintln!("breakglass: version {version_id} is the current state of {url}: nothing to restore");
            return Ok(0);
        }
        Err(e) => {
            role.finish(SHIM_FAILURE);
            return Err(e.into());
        }
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
            Err(e) => {
                role.finish(SHIM_FAILURE);
                return Err(e);
            }
        }
    }
    let file = state_file(&plan.document)?;
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
    eprintln!(
        "breakglass: restored version {version_id} of {url} (serial {} or above)",
        plan.to_serial
    );
    if let Some(r) = &plan.replaced {
        eprintln!("  the replaced version {r} stays in the bucket's history: `breakglass state restore {r}` undoes this");
    }
    eprintln!("  next: `terraform plan` shows what it takes to reach the configuration again");
    Ok(0)
}

fn failover(chdir: Option<PathBuf>) -> Result<i32, Error> {
    let run = context(chdir, &["init"], "state failover")?;
    let dir = run.workdir.clone();
    if marker::failed_over(&dir) {
        return Err(StateError::refused(
            format!("{} is failed over already ({OVERRIDE_FILE})", dir.display()),
            "terraform uses the replica already; run `breakglass state failback` once the primary is back",
        )
        .into());
    }
    let not_ignored = failover::git_guard(&dir)?;
    let original = location::original_backend(&dir)?;
    let primary_loc = Location::from_backend(&original, &workspace(&run)?)?;
    let settings = run::project(&run)?.settings.state.clone();
    let mut role = RoleRun::new(&run, "state failover")?.audit_as(&["init", "-reconfigure"]);
    let mut rt = None;
    let entry = role.own_credentials(&mut rt)?;
    let found = runtime(&mut rt)?.block_on(async {
        let primary = Store::connect(&entry, primary_loc.clone()).await;
        let Some(replica) = replica::resolve(&settings, &primary).await? else {
            return Err(StateError::refused(
                format!("no replica is known for s3://{}: it has no replication rule for the state", primary_loc.bucket),
                "set [state] replica_bucket = \"NAME\" and replica_region = \"REGION\" in .breakglass.toml",
            ));
        };
        let store = Store::connect(&entry, primary_loc.moved(&replica.bucket, &replica.region)).await;
        let Some(copy) = replica::read_state(&store).await? else {
            return Err(StateError::refused(
                format!("the replica {} holds no state: terraform would start from nothing and plan to create everything", store.loc.url()),
                "check the replica bucket and key (replication may never have run); a failover needs the state there",
            ));
        };
        let now = replica::read_state(&primary).await;
        Ok((replica, store.loc, copy, now))
    });
    let (replica, replica_loc, copy, primary_now) = match found {
        Ok(x) => x,
        Err(e) => {
            role.finish(SHIM_FAILURE);
            return Err(e.into());
        }
    };
    match &primary_now {
        Err(e) => eprintln!(
            "breakglass: the primary {} is out of reach: {}",
            primary_loc.url(),
            e.to_string().lines().next().unwrap_or("")
        ),
        Ok(Some(p)) if p.lineage != copy.lineage => {
            role.finish(SHIM_FAILURE);
            return Err(StateError::refused(
                format!("the replica {} holds another state (lineage {}) than the primary (lineage {})", replica_loc.url(), copy.lineage, p.lineage),
                "check which bucket the replication writes to, and [state] replica_bucket",
            )
            .into());
        }
        Ok(Some(p)) if p.serial > copy.serial => eprintln!(
            "breakglass: WARNING: the replica lags: it holds serial {}, the primary {}; the changes after serial {} are not in it",
            copy.serial, p.serial, copy.serial
        ),
        Ok(_) => eprintln!(
            "breakglass: note: the primary {} still answers; failing over anyway",
            primary_loc.url()
        ),
    }
    if let Some(w) = not_ignored {
        eprintln!("breakglass: warning: {w}");
    }
    let header = failover::header(
        &primary_loc,
        &replica,
        &original,
        &crate::audit::now(),
        &crate::credentials::local_user(),
    );
    let text = failover::override_text(&original, &replica, &header)?;
    let path = marker::override_path(&dir);
    std::fs::write(&path, text)
        .map_err(|e| StateError::io(format!("write {}", path.display()), e))?;
    eprintln!(
        "breakglass: wrote {}: the backend is now s3://{} ({}), serial {} there",
        path.display(),
        replica.bucket,
        replica.region,
        copy.serial
    );
    let done = role.supervise(terraform(
        &run,
        &[
            "init".as_ref(),
            "-reconfigure".as_ref(),
            "-input=false".as_ref(),
        ],
    ));
    let code = match done {
        Ok(o) if o.code == 0 => 0,
        other => {
            let _ = std::fs::remove_file(&path);
            let why = match &other {
                Ok(o) => format!("exit {}", o.code),
                Err(e) => e.to_string(),
            };
            return Err(Error::Message(format!(
                "`terraform init -reconfigure` failed ({why}): the failover did not happen, and {OVERRIDE_FILE} was removed\n  fix: read terraform's message above, then run `breakglass state failover` again"
            )));
        }
    };
    eprintln!("{}", failover::banner(&replica_loc, &replica.from));
    Ok(code)
}

/// Where the override waits while a failback switches back to the primary.
fn aside(dir: &Path) -> PathBuf {
    dir.join(format!(".{OVERRIDE_FILE}.failback"))
}

/// Puts the override back and points terraform at the replica again, after a failback
/// that could not finish.
fn stay_failed_over(run: &ShimRun, what: &str) -> Error {
    let dir = &run.workdir;
    let back = std::fs::rename(aside(dir), marker::override_path(dir));
    let reinit = back.as_ref().ok().map(|_| {
        under_role(
            run,
            "state failback",
            &["init", "-reconfigure", "-input=false"],
        )
    });
    let state = match (back, reinit) {
        (Ok(()), Some(Ok(0))) => "the project is still failed over to the replica".to_string(),
        (Err(e), _) => format!(
            "{} could not be put back ({e}): rename {} to {OVERRIDE_FILE}, then run `terraform init -reconfigure`",
            OVERRIDE_FILE,
            aside(dir).display()
        ),
        _ => format!("{OVERRIDE_FILE} is back, but `terraform init -reconfigure` failed: run it again"),
    };
    Error::Message(format!(
        "{what}; {state}\n  fix: read terraform's message above, then run `breakglass state failback` again"
    ))
}

fn failback(chdir: Option<PathBuf>) -> Result<i32, Error> {
    let run = context(chdir, &["init"], "state failback")?;
    let dir = run.workdir.clone();
    let Some(over) = location::override_backend(&dir)? else {
        return Err(StateError::refused(
            format!(
                "{} is not failed over: there is no {OVERRIDE_FILE}",
                dir.display()
            ),
            "nothing to do; `breakglass status` shows the state of the project",
        )
        .into());
    };
    failover::git_guard(&dir)?;
    let ws = workspace(&run)?;
    let primary_loc = Location::from_backend(&location::original_backend(&dir)?, &ws)?;
    let replica_loc = Location::from_backend(&over, &ws)?;
    let mut role = RoleRun::new(&run, "state failback")?.audit_as(&["init", "-reconfigure"]);
    let mut rt = None;
    let entry = role.own_credentials(&mut rt)?;
    let read = runtime(&mut rt)?.block_on(async {
        let replica = Store::connect(&entry, replica_loc.clone()).await;
        let Some(copy) = replica::read_state(&replica).await? else {
            return Err(StateError::refused(
                format!("the replica {} holds no state", replica_loc.url()),
                format!("nothing to bring home: to end the failover, delete {OVERRIDE_FILE} and run `terraform init -reconfigure`"),
            ));
        };
        let primary = Store::connect(&entry, primary_loc.clone()).await;
        let home = replica::read_state(&primary).await.map_err(|e| {
            StateError::refused(
                format!("the primary {} is still out of reach: {}", primary_loc.url(), e.to_string().lines().next().unwrap_or("")),
                "stay failed over; run `breakglass state failback` again when the primary's region is back",
            )
        })?;
        let decision = failover::decide(home.as_ref(), &copy, &primary_loc.url(), &replica_loc.url())?;
        Ok((copy, home, decision))
    });
    let (copy, home, decision) = match read {
        Ok(x) => x,
        Err(e) => {
            role.finish(SHIM_FAILURE);
            return Err(e.into());
        }
    };
    eprintln!(
        "breakglass: the replica holds serial {}, the primary {}: {}",
        copy.serial,
        home.as_ref()
            .map_or("no state".to_string(), |h| h.serial.to_string()),
        match decision {
            Failback::Push => "pushing the replica's state to the primary",
            Failback::NothingNew => "nothing was written during the failover",
        }
    );
    let file = state_file(&copy.with_serial(copy.serial))?;
    std::fs::rename(marker::override_path(&dir), aside(&dir))
        .map_err(|e| StateError::io(format!("move {OVERRIDE_FILE} aside"), e))?;
    let init = role.supervise(terraform(
        &run,
        &[
            "init".as_ref(),
            "-reconfigure".as_ref(),
            "-input=false".as_ref(),
        ],
    ));
    match init {
        Ok(o) if o.code == 0 => {}
        Ok(o) => {
            return Err(stay_failed_over(
                &run,
                &format!(
                    "`terraform init -reconfigure` for the primary failed (exit {})",
                    o.code
                ),
            ))
        }
        Err(e) => return Err(stay_failed_over(&run, &e.to_string())),
    }
    if decision == Failback::Push {
        let path = file.path().to_string_lossy().into_owned();
        let pushed = RoleRun::new(&run, "state failback").and_then(|r| {
            Ok(r.audit_as(&["state", "push", "<replica state>"])
                .supervise(terraform(
                    &run,
                    &["state".as_ref(), "push".as_ref(), path.as_ref()],
                ))?)
        });
        match pushed {
            Ok(o) if o.code == 0 => {}
            Ok(o) => {
                return Err(stay_failed_over(
                    &run,
                    &format!(
                        "`terraform state push` to the primary failed (exit {})",
                        o.code
                    ),
                ))
            }
            Err(e) => return Err(stay_failed_over(&run, &e.to_string())),
        }
    }
    if let Err(e) = std::fs::remove_file(aside(&dir)) {
        eprintln!(
            "breakglass: warning: could not remove {}: {e}; delete it yourself",
            aside(&dir).display()
        );
    }
    eprintln!(
        "breakglass: failed back: the state is home in {} again and {OVERRIDE_FILE} is gone; `terraform plan` should show no changes",
        primary_loc.url()
    );
    Ok(0)
}
