//! `breakglass recover`: push `errored.tfstate` under the role
//! (`terraform state push errored.tfstate`), in the directory acted on. The file is
//! never deleted or moved.

use std::ffi::OsString;

use crate::context::Context;
use crate::error::Error;
use crate::run::{command_mode, RoleRun, RunSpec};
use crate::supervisor::ChildSpec;

pub fn run(ctx: &Context) -> Result<i32, Error> {
    let state = ctx.workdir.join("errored.tfstate");
    if !state.is_file() {
        return Err(Error::Message(format!(
            "there is no errored.tfstate in {}\n  fix: run `breakglass recover` in the directory where terraform saved it (or use -C DIR)",
            ctx.workdir.display()
        )));
    }
    let guard = crate::terraform::Guard::inherit(ctx.env.os(crate::terraform::GUARD_VAR));
    let terraform = crate::shim::locate_terraform(ctx, "terraform", &guard)?;
    let args: Vec<OsString> = ["state", "push", "errored.tfstate"]
        .iter()
        .map(OsString::from)
        .collect();
    let spec = RunSpec {
        kind: "recover".to_string(),
        read_only: false,
        subcommand: Some("state".to_string()),
        args: args.clone(),
    };
    let role = RoleRun::new(ctx, &command_mode(ctx, "recover"), spec)?;
    let outcome = role.supervise(ChildSpec {
        program: terraform,
        args,
        env: Vec::new(),
        cwd: Some(ctx.workdir.clone()),
    })?;
    if outcome.code == 0 {
        crate::say!(
            "breakglass: pushed {} to the backend. It is left in place: check with `terraform plan`, then delete it yourself.",
            state.display()
        );
    } else {
        crate::say!(
            "breakglass: `terraform state push` failed (exit {}); errored.tfstate is untouched",
            outcome.code
        );
    }
    Ok(outcome.code)
}
