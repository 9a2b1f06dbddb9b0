//! The break-glass path of one `terraform` run: resolve the role for this directory and
//! workspace, get credentials, and run terraform under them.

use crate::error::Error;
use crate::mapping::{current_workspace, RoleTarget};
use crate::shim::ShimRun;

/// Resolves the mapped role for a shim run.
pub fn target(run: &ShimRun) -> Result<RoleTarget, Error> {
    let Some(project) = &run.project else {
        return Err(Error::Message(format!(
            "break-glass mode is on ({}), but no .breakglass.toml was found at or above {}\n  fix: run `breakglass init` there, or unset BREAKGLASS",
            run.mode.reason,
            run.workdir.display()
        )));
    };
    let workspace = current_workspace(&run.workdir, std::env::var("TF_WORKSPACE").ok().as_deref());
    Ok(project.resolve(&run.workdir, &workspace)?)
}

/// The break-glass path for the `terraform` name.
pub fn break_glass(run: ShimRun) -> Result<i32, Error> {
    let target = target(&run)?;
    let arn = target.arn_for(run.invocation.is_read_only());
    Err(Error::Message(format!(
        "break-glass mode is on ({}): would assume {arn} (from {}, workspace `{}`), but credentials are not built yet",
        run.mode.reason, target.matched_by, target.workspace
    )))
}
