//! Writing to stdout and stderr without ever panicking.
//!
//! `println!` and `eprintln!` panic when the write fails: a closed pipe
//! (`breakglass log --json | head -1`) or a terminal that hung up mid-apply (EIO). A
//! panic there would end the shim in the middle of terraform's run. Here a failed write
//! to stderr is ignored (a run that must finish goes on without its messages), and a
//! failed write to stdout ends the command quietly, as ripgrep does: exit 0 for a closed
//! pipe, 1 for any other failure.

use std::fmt;
use std::io::Write;

/// Writes one line to stderr; a failure is ignored.
pub fn stderr_line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Writes one line to stdout; a failure ends the process quietly.
pub fn stdout_line(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        stdout_failed(&e);
    }
}

/// Writes bytes to stdout and flushes; a failure ends the process quietly.
pub fn stdout_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

/// The end of a command whose stdout went away.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    stderr_line(format_args!("breakglass: cannot write to stdout: {e}"));
    std::process::exit(1);
}

/// `eprintln!` that never panics: one line on stderr, ignored if it cannot be written.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::stderr_line(format_args!($($arg)*))
    };
}

/// `println!` that never panics: one line on stdout; a closed stdout ends the command
/// quietly.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::stdout_line(format_args!($($arg)*))
    };
}
