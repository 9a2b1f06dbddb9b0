//! The marker a break-glass run leaves in the environment of everything it starts, and
//! the rule for a `terraform` started under it.
//!
//! The marker (`BREAKGLASS_SUPERVISED`) names the run's role and project root. A
//! terraform started inside the run (a provisioner's `terraform output`, a shell from
//! `breakglass exec`) passes straight through and inherits the credentials only when
//! its own directory resolves to the same role. Anywhere else it refuses: the
//! inherited credentials are another role's, and using them would be the wrong
//! identity, silently.

use std::path::{Path, PathBuf};

/// The environment variable holding the marker.
pub const NESTED_VAR: &str = "BREAKGLASS_SUPERVISED";

/// What a break-glass run tells its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub role_arn: String,
    pub project_root: PathBuf,
}

impl Marker {
    /// The variable's value: `ROLE_ARN PROJECT_ROOT` (an ARN has no spaces).
    pub fn value(&self) -> String {
        format!("{} {}", self.role_arn, self.project_root.display())
    }

    /// Reads a value written by [`Marker::value`]; `None` for anything else.
    pub fn parse(value: &str) -> Option<Marker> {
        let (arn, root) = value.split_once(' ')?;
        (arn.starts_with("arn:") && !root.is_empty()).then(|| Marker {
            role_arn: arn.to_string(),
            project_root: PathBuf::from(root),
        })
    }
}

/// Why a nested terraform may not inherit the run's credentials.
#[derive(Debug, thiserror::Error)]
#[error("refusing to run terraform in {dir} inside the break-glass run started in {parent_root}\n  that run holds {parent_role}; {dir} {here}\n  outside `breakglass exec`, the shim assumes each directory's own role\n  fix: leave the `breakglass exec` shell (`exit`), then run the command again (or `breakglass -C {dir} exec -- ...` for a shell under this directory's role)")]
pub struct NestedError {
    pub dir: String,
    pub parent_root: String,
    pub parent_role: String,
    /// What this directory maps to, worded for the message.
    pub here: String,
}

/// Checks a nested terraform in `dir`: `Ok` when `roles` (the role and read role this
/// directory resolves to) include the run's role.
pub fn check(
    marker: Option<&Marker>,
    dir: &Path,
    resolved: Result<(String, Option<String>), String>,
) -> Result<(), NestedError> {
    let refuse = |here: String| NestedError {
        dir: dir.display().to_string(),
        parent_root: marker.map_or_else(
            || "another directory".to_string(),
            |m| m.project_root.display().to_string(),
        ),
        parent_role: marker.map_or_else(|| "an unknown role".to_string(), |m| m.role_arn.clone()),
        here,
    };
    let Some(marker) = marker else {
        return Err(refuse(
            "cannot be matched to it (the run's marker is unreadable)".into(),
        ));
    };
    match resolved {
        Ok((arn, read_arn)) => {
            if arn == marker.role_arn || read_arn.as_deref() == Some(marker.role_arn.as_str()) {
                Ok(())
            } else {
                Err(refuse(format!("maps to {arn}")))
            }
        }
        Err(why) => Err(refuse(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Marker {
        Marker {
            role_arn: "arn:aws:iam::111111111111:role/a".into(),
            project_root: PathBuf::from("/p/a b"),
        }
    }

    #[test]
    fn the_marker_round_trips_with_spaces_in_the_path() {
        assert_eq!(Marker::parse(&m().value()), Some(m()));
        assert_eq!(Marker::parse("1"), None);
    }

    #[test]
    fn only_the_same_role_inherits() {
        let dir = Path::new("/p/b");
        let same = Ok((m().role_arn, None));
        assert!(check(Some(&m()), dir, same).is_ok());
        let read = Ok((
            "arn:aws:iam::111111111111:role/w".into(),
            Some(m().role_arn),
        ));
        assert!(check(Some(&m()), dir, read).is_ok());
        let other = Ok(("arn:aws:iam::111111111111:role/b".into(), None));
        let e = check(Some(&m()), dir, other).unwrap_err().to_string();
        assert!(
            e.contains("/p/b")
                && e.contains("/p/a b")
                && e.contains("role/b")
                && e.contains("role/a"),
            "{e}"
        );
        assert!(check(None, dir, Ok((m().role_arn, None))).is_err());
        assert!(check(Some(&m()), dir, Err("has no .breakglass.toml".into())).is_err());
    }
}
