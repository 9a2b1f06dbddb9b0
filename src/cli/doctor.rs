//! `breakglass doctor [--format human|json|junit]`: the readiness drill (see
//! [`crate::doctor`]). Exits 1 when a check fails.

use std::time::{Instant, SystemTime};

use super::doctor_format::{self, DoctorFormat};
use crate::context::Context;
use crate::doctor;
use crate::error::Error;

pub fn run(ctx: &Context, format: DoctorFormat) -> Result<i32, Error> {
    let (started, clock) = (SystemTime::now(), Instant::now());
    let checks = doctor::run_checks(ctx);
    let project = ctx.project.as_ref().map_or(&ctx.workdir, |p| &p.root);
    doctor_format::print(
        format,
        &checks,
        &project.display().to_string(),
        started,
        clock.elapsed(),
    );
    Ok(if doctor::any_failed(&checks) { 1 } else { 0 })
}
