//! Where an MFA code comes from: `BREAKGLASS_MFA_TOKEN`, `mfa_command`, or a prompt on
//! the controlling terminal, and how long the MFA session it starts lasts.

use std::io::{BufRead, Write};
use std::time::Duration;

use crate::sts::StsError;

/// How long an MFA session lasts (STS's maximum for GetSessionToken with an IAM user).
pub const MFA_SESSION: Duration = Duration::from_secs(12 * 3600);
/// An MFA session with less than this left is not used to start a run.
pub const MFA_MIN_LEFT: Duration = Duration::from_secs(15 * 60);
/// The environment variable holding a one-time MFA code.
pub const MFA_TOKEN_VAR: &str = "BREAKGLASS_MFA_TOKEN";

/// The MFA code: `BREAKGLASS_MFA_TOKEN`, else `mfa_command`'s output, else a prompt on
/// the controlling terminal (never stdin, which belongs to terraform).
pub fn code(
    serial: &str,
    token: Option<&str>,
    command: Option<&str>,
    interactive: bool,
) -> Result<String, StsError> {
    let unavailable = |why: String| StsError::MfaUnavailable {
        serial: serial.to_string(),
        why,
    };
    if interactive {
        if let Some(code) = token.map(str::trim).filter(|c| !c.is_empty()) {
            return Ok(code.to_string());
        }
    }
    if let Some(cmd) = command {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| unavailable(format!("mfa_command could not run: {e}")))?;
        let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || code.is_empty() {
            return Err(unavailable(format!(
                "mfa_command failed ({}) or printed no code",
                out.status
            )));
        }
        return Ok(code);
    }
    if !interactive {
        return Err(unavailable(
            "the MFA session expired during the run and there is no way to ask for a new code without interrupting terraform".to_string(),
        ));
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| unavailable("there is no terminal to ask for a code".to_string()))?;
    let mut writer = &tty;
    let _ = write!(writer, "breakglass: MFA code for {serial}: ");
    let _ = writer.flush();
    let mut line = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut line)
        .map_err(|e| unavailable(format!("reading the code failed: {e}")))?;
    let code = line.trim().to_string();
    if code.is_empty() {
        return Err(unavailable("no code was entered".to_string()));
    }
    Ok(code)
}
