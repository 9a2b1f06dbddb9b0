//! Whether break-glass mode is on for this run, and why.
//!
//! `BREAKGLASS=1|on|true` forces it on and `BREAKGLASS=0|off|false` forces it off.
//! Otherwise an unexpired `breakglass on` activation for the project turns it on,
//! else the config's `enabled`. No config means off.

use std::ffi::OsStr;

use crate::activation::Activation;
use crate::config::{Origin, Project};

/// The environment variable that forces the mode.
pub const MODE_VAR: &str = "BREAKGLASS";

/// Why the mode is what it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// `BREAKGLASS` in the environment.
    Env(String),
    /// `breakglass on`, until the activation expires.
    Activation(Activation),
    /// A `breakglass` command that always runs under the role (`exec`, `recover`, ...).
    Command(String),
    /// The config's `enabled` key.
    Config(Origin),
    /// Started inside a break-glass run: it already has the role's credentials.
    Nested,
    /// No config file above the working directory.
    NoConfig,
    /// A config without `enabled = true`.
    NotEnabled,
}

/// The decision for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Mode {
    pub on: bool,
    pub reason: Reason,
}

#[derive(Debug, thiserror::Error)]
#[error("{MODE_VAR}={0} is not understood\n  fix: use {MODE_VAR}=1 (on, also `on`/`true`) or {MODE_VAR}=0 (off, also `off`/`false`), or unset it")]
pub struct ModeError(pub String);

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Env(v) => write!(f, "{MODE_VAR}={v} in the environment"),
            Reason::Activation(a) => write!(
                f,
                "`breakglass on` until {} ({})",
                a.until_rfc3339(),
                a.reason
            ),
            Reason::Command(c) => write!(f, "`breakglass {c}`"),
            Reason::Config(o) => write!(f, "enabled = true at {o}"),
            Reason::Nested => write!(f, "inside a break-glass run: the credentials are inherited"),
            Reason::NoConfig => write!(f, "no .breakglass.toml above the working directory"),
            Reason::NotEnabled => write!(f, "the config does not set enabled = true"),
        }
    }
}

/// Decides the mode from the `BREAKGLASS` value, the project's activation and config.
pub fn decide(
    env: Option<&OsStr>,
    project: Option<&Project>,
    activation: impl FnOnce(&Project) -> Option<Activation>,
) -> Result<Mode, ModeError> {
    if let Some(raw) = env.filter(|v| !v.is_empty()) {
        let text = raw.to_string_lossy();
        let on = match text.to_ascii_lowercase().as_str() {
            "1" | "on" | "true" | "yes" => true,
            "0" | "off" | "false" | "no" => false,
            _ => return Err(ModeError(text.into_owned())),
        };
        return Ok(Mode {
            on,
            reason: Reason::Env(text.into_owned()),
        });
    }
    let Some(project) = project else {
        return Ok(Mode {
            on: false,
            reason: Reason::NoConfig,
        });
    };
    if let Some(active) = activation(project) {
        return Ok(Mode {
            on: true,
            reason: Reason::Activation(active),
        });
    }
    Ok(match &project.settings.enabled {
        Some(e) if e.value => Mode {
            on: true,
            reason: Reason::Config(e.origin.clone()),
        },
        _ => Mode {
            on: false,
            reason: Reason::NotEnabled,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(text: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(crate::config::CONFIG_FILE);
        std::fs::write(&p, text).unwrap();
        let project = Project::load(&p).unwrap();
        (dir, project)
    }

    #[test]
    fn env_forces_either_way() {
        let (_d, on) = project("enabled = true\n");
        let m = decide(Some(OsStr::new("0")), Some(&on), |_| None).unwrap();
        assert!(!m.on);
        let m = decide(Some(OsStr::new("ON")), None, |_| None).unwrap();
        assert!(m.on);
        assert!(decide(Some(OsStr::new("maybe")), None, |_| None).is_err());
    }

    #[test]
    fn config_then_default_off() {
        let (_d, on) = project("enabled = true\n");
        assert!(decide(None, Some(&on), |_| None).unwrap().on);
        let (_d, off) = project("enabled = false\n");
        assert_eq!(
            decide(None, Some(&off), |_| None).unwrap().reason,
            Reason::NotEnabled
        );
        assert_eq!(
            decide(None, None, |_| None).unwrap().reason,
            Reason::NoConfig
        );
        // An empty BREAKGLASS is the same as unset.
        assert!(
            decide(Some(OsStr::new("")), Some(&on), |_| None)
                .unwrap()
                .on
        );
    }
}
