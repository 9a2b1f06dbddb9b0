//! `breakglass state failover` and `failback`: switching the backend to the state
//! bucket's replica with an override file and `terraform init -reconfigure`, and back,
//! pushing the replica's state home with `terraform state push`.

use std::path::{Path, PathBuf};

use super::{runtime, state_file, stopped, Cmd};
use crate::error::Error;
use crate::state::failover::{self, Failback};
use crate::state::location::{self, Location};
use crate::state::marker::{self, OVERRIDE_FILE};
use crate::state::replica;
use crate::state::s3::Store;
use crate::state::StateError;

/// `terraform init -reconfigure`, without questions.
const REINIT: &[&str] = &["init", "-reconfigure", "-input=false"];

pub fn failover(cmd: &Cmd) -> Result<i32, Error> {
    let dir = cmd.ctx.workdir.clone();
    if marker::failed_over(&dir) {
        return Err(StateError::refused(
            format!("{} is failed over already ({OVERRIDE_FILE})", dir.display()),
            "terraform uses the replica already; run `breakglass state failback` once the primary is back",
        )
        .into());
    }
    let not_ignored = failover::git_guard(&dir)?;
    let original = location::original_backend(&dir)?;
    let primary_loc = Location::from_backend(&original, &cmd.ctx.workspace())?;
    let settings = cmd.ctx.project()?.settings.state.clone();
    let mut role = cmd.role("state failover", false, REINIT)?;
    let mut rt = None;
    runtime(&mut rt)?;
    let entry = role.own_credentials(&mut rt)?;
    let limit = crate::state::s3::LIMIT.as_secs();
    let found = runtime(&mut rt)?.block_on(async {
        let primary = Store::connect(&entry, primary_loc.clone()).await;
        if settings.replica_bucket.is_none() {
            crate::say!("breakglass: reading the replication configuration of s3://{} (at most {limit} s)", primary_loc.bucket);
        }
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
        crate::say!("breakglass: the replica holds serial {}; asking the primary {} (at most {limit} s)", copy.serial, primary_loc.url());
        let now = replica::read_state(&primary).await;
        Ok((replica, store.loc, copy, now))
    });
    let (replica, replica_loc, copy, primary_now) = match found {
        Ok(x) => x,
        Err(e) => return Err(stopped(role, e)),
    };
    match &primary_now {
        Err(e) => crate::say!(
            "breakglass: the primary {} is out of reach: {}",
            primary_loc.url(),
            e.to_string().lines().next().unwrap_or("")
        ),
        Ok(Some(p)) if p.lineage != copy.lineage => {
            let e = StateError::refused(
                format!("the replica {} holds another state (lineage {}) than the primary (lineage {})", replica_loc.url(), copy.lineage, p.lineage),
                "check which bucket the replication writes to, and [state] replica_bucket",
            );
            return Err(stopped(role, e));
        }
        Ok(Some(p)) if p.serial > copy.serial => crate::say!(
            "breakglass: WARNING: the replica lags: it holds serial {}, the primary {}; the changes after serial {} are not in it",
            copy.serial, p.serial, copy.serial
        ),
        Ok(_) => crate::say!(
            "breakglass: note: the primary {} still answers; failing over anyway",
            primary_loc.url()
        ),
    }
    if let Some(w) = not_ignored {
        crate::say!("breakglass: warning: {w}");
    }
    let header = failover::header(
        &primary_loc,
        &replica,
        &original,
        &crate::audit::now(),
        &crate::identity::Identity::of(&cmd.ctx.env).user,
    );
    let path = marker::override_path(&dir);
    let written = failover::override_text(&original, &replica, &header).and_then(|text| {
        std::fs::write(&path, text)
            .map_err(|e| StateError::io(format!("write {}", path.display()), e))
    });
    if let Err(e) = written {
        return Err(stopped(role, e));
    }
    crate::say!(
        "breakglass: wrote {}: the backend is now s3://{} ({})",
        path.display(),
        replica.bucket,
        replica.region,
    );
    let done = role.supervise(cmd.terraform(&reinit()));
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
    crate::say!("{}", failover::banner(&replica_loc, &replica.from));
    Ok(code)
}

fn reinit() -> Vec<&'static std::ffi::OsStr> {
    REINIT.iter().map(std::ffi::OsStr::new).collect()
}

/// Where the override waits while a failback switches back to the primary.
fn aside(dir: &Path) -> PathBuf {
    dir.join(format!(".{OVERRIDE_FILE}.failback"))
}

/// Puts the override back and points terraform at the replica again, after a failback
/// that could not finish.
fn stay_failed_over(cmd: &Cmd, what: &str) -> Error {
    let dir = &cmd.ctx.workdir;
    let back = std::fs::rename(aside(dir), marker::override_path(dir));
    let reinit = back
        .as_ref()
        .ok()
        .map(|_| cmd.under_role("state failback", REINIT));
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

pub fn failback(cmd: &Cmd) -> Result<i32, Error> {
    let dir = cmd.ctx.workdir.clone();
    let Some(over) = location::override_backend(&dir)? else {
        if aside(&dir).exists() {
            return Err(StateError::refused(
                format!(
                    "a failback was interrupted: {} is there, {OVERRIDE_FILE} is not",
                    aside(&dir).display()
                ),
                format!(
                    "rename it back to {OVERRIDE_FILE}, then run `breakglass state failback` again"
                ),
            )
            .into());
        }
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
    let ws = cmd.ctx.workspace();
    let primary_loc = Location::from_backend(&location::original_backend(&dir)?, &ws)?;
    let replica_loc = Location::from_backend(&over, &ws)?;
    let mut role = cmd.role("state failback", false, REINIT)?;
    let mut rt = None;
    runtime(&mut rt)?;
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
        Err(e) => return Err(stopped(role, e)),
    };
    crate::say!(
        "breakglass: the replica holds serial {}, the primary {}: {}",
        copy.serial,
        home.as_ref()
            .map_or("no state".to_string(), |h| h.serial.to_string()),
        match decision {
            Failback::Push => "pushing the replica's state to the primary",
            Failback::NothingNew => "nothing was written during the failover",
        }
    );
    let file = match state_file(&copy.with_serial(copy.serial)) {
        Ok(f) => f,
        Err(e) => return Err(stopped(role, e)),
    };
    if let Err(e) = std::fs::rename(marker::override_path(&dir), aside(&dir)) {
        return Err(stopped(
            role,
            StateError::io(format!("move {OVERRIDE_FILE} aside"), e),
        ));
    }
    let init = role.supervise(cmd.terraform(&reinit()));
    match init {
        Ok(o) if o.code == 0 => {}
        Ok(o) => {
            return Err(stay_failed_over(
                cmd,
                &format!(
                    "`terraform init -reconfigure` for the primary failed (exit {})",
                    o.code
                ),
            ))
        }
        Err(e) => return Err(stay_failed_over(cmd, &e.to_string())),
    }
    if decision == Failback::Push {
        let pushed = cmd
            .role(
                "state failback",
                false,
                &["state", "push", "<replica state>"],
            )
            .and_then(|r| {
                r.supervise(cmd.terraform(&[
                    "state".as_ref(),
                    "push".as_ref(),
                    file.path().as_os_str(),
                ]))
            });
        match pushed {
            Ok(o) if o.code == 0 => {}
            Ok(o) => {
                return Err(stay_failed_over(
                    cmd,
                    &format!(
                        "`terraform state push` to the primary failed (exit {})",
                        o.code
                    ),
                ))
            }
            Err(e) => return Err(stay_failed_over(cmd, &e.to_string())),
        }
    }
    if let Err(e) = std::fs::remove_file(aside(&dir)) {
        crate::say!(
            "breakglass: warning: could not remove {}: {e}; delete it yourself",
            aside(&dir).display()
        );
    }
    crate::say!(
        "breakglass: failed back: the state is home in {} again and {OVERRIDE_FILE} is gone; `terraform plan` should show no changes",
        primary_loc.url()
    );
    Ok(0)
}
