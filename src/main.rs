//! `breakglass`: the management CLI, or the `terraform` shim when started under
//! another name (a `terraform` or `tofu` link). This file only dispatches.

use std::ffi::OsString;

fn main() {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_else(|| OsString::from("breakglass"));
    let args: Vec<OsString> = argv.collect();
    let env = breakglass::env::Env::capture();
    let code = if breakglass::shim::invoked_name(&argv0).starts_with("breakglass") {
        breakglass::cli::main(argv0, args, env)
    } else {
        breakglass::shim::run(
            argv0,
            args,
            env,
            Some(breakglass::shim::check_nested),
            breakglass::run::break_glass,
        )
    };
    std::process::exit(code);
}
