//! The audit trail: one JSON line per break-glass run (shim, `exec`, `recover`) in
//! `audit.jsonl` under the platform data directory. Appends are single writes under an
//! exclusive lock, so parallel runs never interleave. Argument values that may be
//! secret (`-var`, `-backend-config`, anything secret-looking) are redacted.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};

use crate::paths::{private_dir, private_file, Dirs};

/// What replaces a redacted value.
pub const REDACTED: &str = "<redacted>";

/// One break-glass run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub started: String,
    pub ended: String,
    pub user: String,
    pub host: String,
    /// `terraform`, `exec`, `recover` or a state command (`state restore`, ...).
    pub kind: String,
    pub source_arn: Option<String>,
    pub role_arn: String,
    pub session_name: String,
    pub source_identity: Option<String>,
    pub workspace: String,
    pub project: String,
    pub subcommand: Option<String>,
    pub args: Vec<String>,
    pub reason: Option<String>,
    /// `null` when the run was handed over with `delivery = "env"` (exec'd) or
    /// failed before terraform started.
    pub exit_code: Option<i32>,
    /// The terminal hung up during the run (see `on_hangup`).
    #[serde(default)]
    pub hangup: bool,
}

/// The audit log file.
pub fn log_path(dirs: &Dirs) -> PathBuf {
    dirs.data.join("audit.jsonl")
}

/// Appends one record as a single line.
pub fn append(path: &Path, record: &Record) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = private_file().create(true).append(true).open(path)?;
    // A file made by hand or by an older version is tightened, never trusted wider.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    FileExt::lock_exclusive(&file)?;
    file.write_all(&line)?;
    file.flush()
}

/// Reads every record, skipping lines that do not parse (with a warning).
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(e) => crate::say!(
                "breakglass: warning: {}:{}: skipping an unreadable audit line: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Words that make a `name=value` look secret.
const SECRET_WORDS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "token",
    "key",
    "credential",
    "private",
    "auth",
];

/// True for a value that looks like an AWS access key id or a long opaque secret.
fn looks_secret(value: &str) -> bool {
    let aws_key = value.len() == 20
        && (value.starts_with("AKIA") || value.starts_with("ASIA"))
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let opaque = value.len() >= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+=_-".contains(&b))
        && value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().any(|b| b.is_ascii_uppercase())
        && value.bytes().any(|b| b.is_ascii_lowercase());
    aws_key || opaque
}

/// `name=value` with the value redacted.
fn redact_assignment(assignment: &str) -> String {
    match assignment.split_once('=') {
        Some((name, _)) => format!("{name}={REDACTED}"),
        None => assignment.to_string(),
    }
}

/// The arguments with `-var` and `-backend-config` values, and anything that looks
/// secret, replaced by `<redacted>`.
pub fn redact_args(args: &[OsString]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut next_is_value: Option<&str> = None;
    for arg in args {
        let a = arg.to_string_lossy();
        if let Some(flag) = next_is_value.take() {
            out.push(if flag == "secret" {
                REDACTED.to_string()
            } else if flag == "-backend-config" && !a.contains('=') {
                a.into_owned() // a file path
            } else {
                redact_assignment(&a)
            });
            continue;
        }
        let flag = a.trim_start_matches('-');
        if a.starts_with('-')
            && !a.contains('=')
            && flag != "var"
            && flag != "backend-config"
            && (SECRET_WORDS
                .iter()
                .any(|w| flag.to_ascii_lowercase().contains(w))
                || flag == "p")
        {
            // `--secret-string VALUE`, `--password VALUE`, `-p VALUE`: the next argument.
            next_is_value = Some("secret");
            out.push(a.into_owned());
            continue;
        }
        if a.starts_with('-') && (flag == "var" || flag == "backend-config") && !a.contains('=') {
            next_is_value = Some(if flag == "var" {
                "-var"
            } else {
                "-backend-config"
            });
            out.push(a.into_owned());
            continue;
        }
        if let Some(rest) = a.strip_prefix("-var=").or_else(|| a.strip_prefix("--var=")) {
            out.push(format!("-var={}", redact_assignment(rest)));
            continue;
        }
        if let Some(rest) = a
            .strip_prefix("-backend-config=")
            .or_else(|| a.strip_prefix("--backend-config="))
        {
            out.push(if rest.contains('=') {
                format!("-backend-config={}", redact_assignment(rest))
            } else {
                a.into_owned()
            });
            continue;
        }
        if let Some((name, value)) = a.split_once('=') {
            let lname = name.to_ascii_lowercase();
            if SECRET_WORDS.iter().any(|w| lname.contains(w)) || looks_secret(value) {
                out.push(format!("{name}={REDACTED}"));
                continue;
            }
        }
        out.push(if looks_secret(&a) {
            REDACTED.to_string()
        } else {
            a.into_owned()
        });
    }
    out
}

/// Now, as RFC 3339.
pub fn now() -> String {
    crate::clock::rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(args: &[&str]) -> Vec<String> {
        redact_args(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn var_and_backend_config_values_are_redacted() {
        assert_eq!(
            r(&[
                "apply",
                "-var=db_password=hunter2",
                "-var",
                "region=eu",
                "-auto-approve"
            ]),
            [
                "apply",
                "-var=db_password=<redacted>",
                "-var",
                "region=<redacted>",
                "-auto-approve"
            ]
        );
        assert_eq!(
            r(&[
                "init",
                "-backend-config=access_key=AKIA",
                "-backend-config",
                "prod.hcl"
            ]),
            [
                "init",
                "-backend-config=access_key=<redacted>",
                "-backend-config",
                "prod.hcl"
            ]
        );
        assert_eq!(
            r(&["-chdir=proj", "plan", "-out=plan.bin"]),
            ["-chdir=proj", "plan", "-out=plan.bin"]
        );
        assert_eq!(r(&["x", "AKIAABCDEFGHIJKLMNOP"]), ["x", "<redacted>"]);
        assert_eq!(r(&["TOKEN=abc"]), ["TOKEN=<redacted>"]);
        assert_eq!(
            r(&[
                "aws",
                "secretsmanager",
                "put-secret-value",
                "--secret-string",
                "S3cr3t",
                "-p",
                "pw"
            ]),
            [
                "aws",
                "secretsmanager",
                "put-secret-value",
                "--secret-string",
                "<redacted>",
                "-p",
                "<redacted>"
            ]
        );
    }

    #[test]
    fn appends_are_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/audit.jsonl");
        let rec = Record {
            started: now(),
            ended: now(),
            user: "u".into(),
            host: "h".into(),
            kind: "terraform".into(),
            source_arn: None,
            role_arn: "arn".into(),
            session_name: "s".into(),
            source_identity: None,
            workspace: "default".into(),
            project: "/p".into(),
            subcommand: Some("plan".into()),
            args: vec![],
            reason: None,
            exit_code: Some(0),
            hangup: false,
        };
        append(&path, &rec).unwrap();
        append(&path, &rec).unwrap();
        assert_eq!(read(&path).unwrap(), vec![rec.clone(), rec]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
