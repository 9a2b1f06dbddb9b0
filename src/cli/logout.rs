//! `breakglass logout`: remove every cached credential and MFA session.

use crate::broker::Broker;
use crate::context::Context;
use crate::error::Error;

pub fn run(ctx: &Context) -> Result<i32, Error> {
    let n = Broker::clear(&ctx.dirs()?)
        .map_err(|e| Error::Message(format!("cannot clear the credential cache: {e}")))?;
    crate::say!("breakglass: removed {n} cached credential file(s)");
    Ok(0)
}
