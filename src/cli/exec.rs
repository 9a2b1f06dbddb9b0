//! `breakglass exec -- CMD ...`: any command under the role, in the directory acted on
//! (like `git -C`), with the same endpoint, refresh, signals and audit as terraform.

use std::ffi::OsString;

use crate::context::Context;
use crate::error::Error;
use crate::run::{command_mode, RoleRun, RunSpec};
use crate::supervisor::ChildSpec;

pub fn run(ctx: &Context, command: Vec<OsString>) -> Result<i32, Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::Message(
            "no command given\n  fix: breakglass exec -- aws sts get-caller-identity".into(),
        ));
    };
    let path = which::which_in(program, ctx.env.os("PATH"), &ctx.workdir).map_err(|_| {
        Error::Message(format!(
            "`{}` was not found on PATH\n  fix: check the command name",
            program.to_string_lossy()
        ))
    })?;
    let spec = RunSpec {
        kind: "exec".to_string(),
        read_only: false,
        subcommand: Some(program.to_string_lossy().into_owned()),
        args: command.clone(),
    };
    let role = RoleRun::new(ctx, &command_mode(ctx, "exec"), spec)?;
    let outcome = role.supervise(ChildSpec {
        program: path,
        args: args.to_vec(),
        env: Vec::new(),
        cwd: Some(ctx.workdir.clone()),
    })?;
    Ok(outcome.code)
}
