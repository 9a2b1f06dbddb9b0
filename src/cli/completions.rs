//! `breakglass completions SHELL`: shell completion scripts from the clap definitions.

use clap::CommandFactory;

use crate::error::Error;

pub fn run(shell: clap_complete::Shell) -> Result<i32, Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "breakglass", &mut script);
    crate::out::stdout_bytes(&script);
    Ok(0)
}
