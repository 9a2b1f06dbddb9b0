//! `breakglass logout`: remove every cached credential and MFA session (after the
//! team trail's `logout` event, in a project with `[audit]`). It works anywhere, with
//! a broken config or none.

use crate::broker::Broker;
use crate::context::Context;
use crate::error::Error;
use crate::paths::Dirs;

pub fn run(ctx: Option<&Context>) -> Result<i32, Error> {
    // In a project with a team trail, the event goes out before the cache is cleared.
    if let Some(event) = ctx.and_then(|c| crate::trail::CommandEvent::prepare_cached(c, "logout")) {
        event.send(&Default::default());
    }
    let dirs = Dirs::new().ok_or_else(|| {
        Error::Message(
            "cannot find your home directory for breakglass's files\n  fix: set HOME".into(),
        )
    })?;
    let n = Broker::clear(&dirs)
        .map_err(|e| Error::Message(format!("cannot clear the credential cache: {e}")))?;
    crate::say!("breakglass: removed {n} cached credential file(s)");
    Ok(0)
}
