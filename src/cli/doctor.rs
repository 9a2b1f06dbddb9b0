//! `breakglass doctor [--json]`: the readiness drill (see [`crate::doctor`]). Exits 1
//! when a check fails.

use crate::context::Context;
use crate::doctor;
use crate::error::Error;

pub fn run(ctx: &Context, json: bool) -> Result<i32, Error> {
    let checks = doctor::run_checks(ctx);
    if json {
        crate::outln!("{}", serde_json::json!({ "checks": checks }));
    } else {
        doctor::print_human(&checks);
    }
    Ok(if doctor::any_failed(&checks) { 1 } else { 0 })
}
