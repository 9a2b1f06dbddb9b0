//! The `terraform` shim executable. `breakglass install` links `terraform` and `tofu`
//! to it. It stays small on purpose: when break-glass mode is off it execs the real
//! terraform without ever loading the AWS SDK; when it is on, it execs the full
//! `breakglass` binary beside it under the same name and arguments.

use std::ffi::OsString;

fn main() {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_else(|| OsString::from("terraform"));
    let args: Vec<OsString> = argv.collect();
    if breakglass::shim::invoked_name(&argv0).starts_with("breakglass") {
        breakglass::say!(
            "breakglass: breakglass-shim is the `terraform` shim and runs only under that name\n  fix: run `breakglass install` and put the printed directory first on PATH"
        );
        std::process::exit(breakglass::error::SHIM_FAILURE);
    }
    let env = breakglass::env::Env::capture();
    let code = breakglass::shim::run(argv0.clone(), args, env, None, |run| {
        Err(breakglass::shim::hand_to_full_binary(&argv0, &run))
    });
    std::process::exit(code);
}
