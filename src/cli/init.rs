//! `breakglass init`: write a commented `.breakglass.toml` in the directory acted on,
//! from flags or from the backend block (see [`crate::scaffold`]).

use crate::context::Context;
use crate::error::Error;
use crate::scaffold::InitOptions;

pub fn run(ctx: &Context, opts: InitOptions) -> Result<i32, Error> {
    crate::scaffold::init(&ctx.workdir, opts)
}
