//! Which signals the supervisor forwards to terraform.
//!
//! Terraform runs in the shim's process group, with the terminal untouched, so a Ctrl-C
//! typed at the terminal already reaches terraform from the kernel: forwarding it too
//! would make terraform see two interrupts and abort ("Two interrupts received").
//! A SIGINT that only the shim received (no terminal, stdin not a tty, the shim not in
//! the terminal's foreground group: CI, `timeout`, a parent process) is forwarded once.
//! SIGTERM and SIGHUP are always forwarded once. The shim never sends SIGKILL.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The signals the supervisor listens for.
pub struct Listener {
    int: Signal,
    term: Signal,
    hup: Signal,
    /// Whether the terminal delivers SIGINT to terraform itself.
    terminal_delivers_sigint: bool,
}

/// A signal that reached the shim, and whether to pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signal: i32,
    pub forward: bool,
}

/// True when stdin is a terminal whose foreground process group is ours: a Ctrl-C
/// there is delivered by the kernel to every process of the group, terraform included.
pub fn terminal_delivers_sigint() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp take no pointers and have no preconditions.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Whether a signal the shim received should be sent on to terraform.
pub fn should_forward(signal: i32, terminal_delivers_sigint: bool) -> bool {
    match signal {
        libc::SIGINT => !terminal_delivers_sigint,
        libc::SIGTERM | libc::SIGHUP => true,
        _ => false,
    }
}

impl Listener {
    /// Installs the handlers. Call before starting terraform, so that no signal is lost
    /// and the shim is never killed by one while terraform runs.
    pub fn install() -> std::io::Result<Listener> {
        Ok(Listener {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            terminal_delivers_sigint: terminal_delivers_sigint(),
        })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Received {
        let signal = tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
        };
        Received {
            signal,
            forward: should_forward(signal, self.terminal_delivers_sigint),
        }
    }
}

/// Sends `signal` to the process `pid` (never SIGKILL).
pub fn send(pid: u32, signal: i32) {
    if signal == libc::SIGKILL {
        return;
    }
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill takes plain integers; a stale pid at worst returns ESRCH.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_ctrl_c_is_not_forwarded_twice() {
        assert!(!should_forward(libc::SIGINT, true));
        assert!(should_forward(libc::SIGINT, false));
        assert!(should_forward(libc::SIGTERM, true));
        assert!(should_forward(libc::SIGHUP, true));
        assert!(!should_forward(libc::SIGKILL, false));
    }
}
