//! Which signals the supervisor forwards to terraform.
//!
//! Terraform runs in the shim's process group, with the terminal untouched, so a Ctrl-C
//! typed at the terminal already reaches terraform from the kernel: forwarding it too
//! would make terraform see two interrupts and abort ("Two interrupts received").
//! The kernel marks the signals it generates itself (`si_code` `SI_KERNEL`), so the
//! shim can tell a typed Ctrl-C from a SIGINT another process sent: only the latter
//! (CI, `timeout --foreground`, a parent process, `kill -INT PID`) is forwarded, once.
//! Where the origin is not reported, the shim falls back to asking whether it is in
//! the terminal's foreground process group. SIGTERM is always forwarded once. SIGHUP
//! is never forwarded as it is: terraform ignores it (see the supervisor) and the
//! config's `on_hangup` decides. Unless the shim is its terminal's foreground job,
//! terraform runs in its own process group and gets every interrupt from the shim. The
//! shim never sends SIGKILL.

use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::origin::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use signal_hook_tokio::SignalsInfo;

/// The signals the supervisor listens for.
pub struct Listener {
    signals: SignalsInfo<WithOrigin>,
}

/// Who generated a signal, as far as the kernel says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The kernel itself: for SIGINT, a Ctrl-C typed at the terminal, delivered to the
    /// whole foreground process group (terraform included).
    Kernel,
    /// Another process, with kill(2) or the like.
    Process,
    /// Not reported.
    Unknown,
}

/// A signal that reached the shim, and who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signal: i32,
    pub sender: Sender,
}

/// True when this process is in the foreground process group of its controlling
/// terminal: a Ctrl-C there is delivered by the kernel to every process of the group,
/// terraform included. Asked at each signal (a job can move with `fg` and `bg`).
pub fn terminal_delivers_sigint() -> bool {
    let Ok(tty) = std::fs::File::open("/dev/tty") else {
        return false;
    };
    // SAFETY: tcgetpgrp and getpgrp take no pointers; the descriptor is open for the
    // duration of the call.
    unsafe { libc::tcgetpgrp(std::os::fd::AsRawFd::as_raw_fd(&tty)) == libc::getpgrp() }
}

/// Whether a signal the shim received should be sent on to terraform as it is.
/// `shares_group` is false when terraform runs in its own process group (no
/// terminal): then nothing reaches it but what the shim sends. SIGHUP is never
/// forwarded as it is (terraform stops gracefully only on SIGINT and SIGTERM): the
/// supervisor's hang-up rule handles it.
pub fn should_forward(
    signal: i32,
    sender: Sender,
    shares_group: bool,
    terminal_delivers_sigint: impl FnOnce() -> bool,
) -> bool {
    match signal {
        SIGINT if !shares_group => true,
        SIGINT => match sender {
            Sender::Kernel => false,
            Sender::Process => true,
            Sender::Unknown => !terminal_delivers_sigint(),
        },
        SIGTERM => true,
        _ => false,
    }
}

impl Listener {
    /// Installs the handlers. Call before starting terraform, so that no signal is lost
    /// and the shim is never killed by one while terraform runs.
    /// A SIGHUP that is already ignored (`nohup`) stays ignored: the user asked for
    /// the run to outlive the terminal.
    pub fn install() -> std::io::Result<Listener> {
        let signals = if hangup_ignored() {
            SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM])?
        } else {
            SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])?
        };
        Ok(Listener { signals })
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Received {
        match self.signals.next().await {
            Some(origin) => {
                let sender = match origin.cause {
                    Cause::Kernel => Sender::Kernel,
                    Cause::Sent(_) => Sender::Process,
                    _ => Sender::Unknown,
                };
                Received {
                    signal: origin.signal,
                    sender,
                }
            }
            // The handlers are gone: nothing more will come.
            None => std::future::pending().await,
        }
    }
}

/// True when this process started with SIGHUP ignored (`nohup`).
fn hangup_ignored() -> bool {
    // SAFETY: sigaction with a null new action only reads the current disposition
    // into `old`, a zeroed sigaction owned by this frame.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
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
    fn a_typed_ctrl_c_is_not_forwarded_a_sent_one_is() {
        assert!(!should_forward(
            SIGINT,
            Sender::Kernel,
            true,
            || unreachable!()
        ));
        assert!(should_forward(
            SIGINT,
            Sender::Process,
            true,
            || unreachable!()
        ));
        // Origin unknown: the terminal decides.
        assert!(!should_forward(SIGINT, Sender::Unknown, true, || true));
        assert!(should_forward(SIGINT, Sender::Unknown, true, || false));
        assert!(should_forward(SIGTERM, Sender::Kernel, true, || true));
        assert!(!should_forward(
            libc::SIGKILL,
            Sender::Process,
            true,
            || false
        ));
    }

    #[test]
    fn a_hang_up_is_never_forwarded_as_it_is() {
        assert!(!should_forward(SIGHUP, Sender::Process, true, || false));
        assert!(!should_forward(SIGHUP, Sender::Kernel, false, || false));
    }

    #[test]
    fn in_its_own_group_terraform_gets_every_interrupt_from_the_shim() {
        assert!(should_forward(SIGINT, Sender::Kernel, false, || true));
        assert!(should_forward(SIGTERM, Sender::Process, false, || true));
    }
}
