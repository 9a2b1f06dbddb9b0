//! The environment, read once: a snapshot of the variables breakglass looks at, taken
//! when a process starts and handed on in the [`crate::context::Context`]. Nothing else
//! reads the process environment (the AWS SDK aside, which reads its own).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// The variables breakglass reads: every `AWS_*`, `BREAKGLASS*` and `TF_*`, and these.
const ALSO: &[&str] = &["PATH", "USER", "LOGNAME", "COMP_LINE", "HOME"];

/// A snapshot of the environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
}

impl Env {
    /// Takes the snapshot.
    pub fn capture() -> Env {
        Env::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))))
    }

    /// A snapshot of these pairs (only the variables breakglass reads are kept).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, OsString)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .filter(|(k, _)| {
                    k.starts_with("AWS_")
                        || k.starts_with("BREAKGLASS")
                        || k.starts_with("TF_")
                        || ALSO.contains(&k.as_str())
                })
                .collect(),
        }
    }

    /// The raw value, set or not (an empty value counts as set).
    pub fn os(&self, key: &str) -> Option<&OsStr> {
        self.vars.get(key).map(OsString::as_os_str)
    }

    /// The value as text, `None` when unset, empty or not UTF-8.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.os(key)
            .and_then(OsStr::to_str)
            .filter(|v| !v.is_empty())
    }

    /// True when the variable is set at all.
    pub fn is_set(&self, key: &str) -> bool {
        self.vars.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_variables_breakglass_reads_are_kept_and_empty_is_unset_for_get() {
        let env = Env::from_pairs([
            ("AWS_PROFILE".to_string(), OsString::from("ops")),
            ("TF_WORKSPACE".to_string(), OsString::from("")),
            ("EDITOR".to_string(), OsString::from("vi")),
        ]);
        assert_eq!(env.get("AWS_PROFILE"), Some("ops"));
        assert_eq!(env.get("TF_WORKSPACE"), None);
        assert!(env.is_set("TF_WORKSPACE"));
        assert!(!env.is_set("EDITOR"));
    }
}
