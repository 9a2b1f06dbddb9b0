//! `breakglass init`: write a commented `.breakglass.toml` in the directory acted on,
//! from flags or from the backend block (see [`crate::scaffold`]).

use crate::context::Context;
use crate::error::Error;

pub fn run(
    ctx: &Context,
    role: Option<String>,
    read_role: Option<String>,
    region: Option<String>,
    enable: bool,
    force: bool,
) -> Result<i32, Error> {
    crate::scaffold::init(&ctx.workdir, role, read_role, region, enable, force)
}
