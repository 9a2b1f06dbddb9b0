//! Which role a run uses: `[role]` defaults, overlaid by the workspace's entry, overlaid
//! by the most specific matching stack, overlaid by that stack's entry for the
//! workspace (`[stacks."app".workspaces.prod]`). The most specific mapping wins, key by
//! key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{format_duration, ConfigError, Located, Project, RoleSettings};
use crate::invocation::normalize;

/// Default `session_name` template.
pub const DEFAULT_SESSION_NAME: &str = "breakglass-{user}";
/// Default role session length.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);
/// Default window before expiry in which credentials are renewed.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(15 * 60);

/// Which mapping supplied the role ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchedBy {
    Default,
    Workspace(String),
    Stack(String),
    /// `[stacks."GLOB".workspaces.NAME]`: (glob, workspace).
    StackWorkspace(String, String),
}

impl std::fmt::Display for MatchedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatchedBy::Default => write!(f, "[role]"),
            MatchedBy::Workspace(w) => write!(f, "[workspaces.{w}]"),
            MatchedBy::Stack(s) => write!(f, "[stacks.\"{s}\"]"),
            MatchedBy::StackWorkspace(s, w) => write!(f, "[stacks.\"{s}\".workspaces.{w}]"),
        }
    }
}

/// The role a run assumes, with every parameter resolved.
#[derive(Debug, Clone)]
pub struct RoleTarget {
    pub arn: String,
    pub read_arn: Option<String>,
    pub session_name: String,
    pub duration: Duration,
    pub refresh_before: Duration,
    pub external_id: Option<String>,
    pub mfa_serial: Option<String>,
    pub mfa_command: Option<String>,
    pub source_profile: Option<String>,
    pub source_identity: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub policy_arns: Vec<String>,
    pub matched_by: MatchedBy,
    pub workspace: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("no role is mapped for {dir} (workspace `{workspace}`) in {file}\n  fix: add `arn = \"arn:aws:iam::ACCOUNT:role/NAME\"` under [role], [workspaces.{workspace}] or a matching [stacks.\"GLOB\"]")]
    NoRole {
        dir: String,
        workspace: String,
        file: String,
    },
}

/// The terraform workspace for `workdir`: `TF_WORKSPACE`, else
/// `environment` in the data directory (`TF_DATA_DIR`, default `.terraform`), else
/// `default`.
pub fn current_workspace(
    workdir: &Path,
    tf_workspace: Option<&str>,
    tf_data_dir: Option<&std::ffi::OsStr>,
) -> String {
    if let Some(ws) = tf_workspace.filter(|w| !w.is_empty()) {
        return ws.to_string();
    }
    let data_dir = tf_data_dir
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".terraform"));
    std::fs::read_to_string(workdir.join(data_dir).join("environment"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

pub use crate::terragrunt::{owning_unit, TERRAGRUNT_CACHE};

/// `workdir` relative to the project root, with `/` separators ("." for the root). A
/// Terragrunt working copy counts as the unit that owns it.
pub fn stack_path(root: &Path, workdir: &Path) -> Option<String> {
    let root = normalize(root);
    let workdir = normalize(workdir);
    let rel = owning_unit(&workdir).strip_prefix(&root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    })
}

/// Among the stack globs that match `stack`, the most specific: an exact path beats a
/// glob, then more literal characters win, then the name (for a stable answer).
fn best_stack<'a, T>(
    stacks: impl Iterator<Item = (&'a String, &'a T)>,
    stack: &str,
) -> Option<(&'a String, &'a T)> {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    stacks
        .filter(|(pattern, _)| {
            let p = pattern.trim_end_matches('/');
            p == stack || glob::Pattern::new(p).is_ok_and(|g| g.matches_with(stack, opts))
        })
        .max_by_key(|(pattern, _)| {
            let literal = pattern
                .chars()
                .filter(|c| !matches!(c, '*' | '?' | '[' | ']'))
                .count();
            (pattern.trim_end_matches('/') == stack, literal)
        })
}

/// Lays a workspace or stack mapping over the roles below it, key by key, except that
/// a mapping that names its own `arn` does not inherit a `read_arn` from below: that
/// read role may well be in another account.
fn overlay_mapping(role: &mut RoleSettings, mapping: &RoleSettings) {
    if mapping.arn.is_some() && mapping.read_arn.is_none() {
        role.read_arn = None;
    }
    role.overlay(mapping.clone());
}

impl Project {
    /// Resolves the role for a run in `workdir` and `workspace`.
    pub fn resolve(&self, workdir: &Path, workspace: &str) -> Result<RoleTarget, MappingError> {
        let s = &self.settings;
        let mut role = s.role.clone();
        let mut matched_by = MatchedBy::Default;
        if let Some(ws) = s.workspaces.get(workspace) {
            if ws.arn.is_some() {
                matched_by = MatchedBy::Workspace(workspace.to_string());
            }
            overlay_mapping(&mut role, ws);
        }
        if let Some(stack) = stack_path(&self.root, workdir) {
            if let Some((pattern, st)) = best_stack(s.stacks.iter(), &stack) {
                if st.arn.is_some() {
                    matched_by = MatchedBy::Stack(pattern.clone());
                }
                overlay_mapping(&mut role, st);
            }
            let in_workspace = s
                .stack_workspaces
                .iter()
                .filter_map(|(pattern, per)| per.get(workspace).map(|r| (pattern, r)));
            if let Some((pattern, st)) = best_stack(in_workspace, &stack) {
                if st.arn.is_some() {
                    matched_by = MatchedBy::StackWorkspace(pattern.clone(), workspace.to_string());
                }
                overlay_mapping(&mut role, st);
            }
        }
        let Some(arn) = role.arn.clone() else {
            return Err(MappingError::NoRole {
                dir: workdir.display().to_string(),
                workspace: workspace.to_string(),
                file: self.files[0].display().to_string(),
            });
        };
        let duration = role.duration.as_ref().map_or(DEFAULT_DURATION, |d| d.value);
        let refresh_before = match &role.refresh_before {
            Some(r) if r.value >= duration => {
                return Err(r
                    .origin
                    .error(
                        format!(
                            "refresh_before = \"{}\" is not shorter than duration = \"{}\"",
                            format_duration(r.value),
                            format_duration(duration)
                        ),
                        "make refresh_before shorter than duration, e.g. \"15m\" for \"1h\"",
                    )
                    .into())
            }
            Some(r) => r.value,
            None => DEFAULT_REFRESH_BEFORE.min(duration / 2),
        };
        let value = |l: Option<Located<String>>| l.map(|l| l.value);
        let mut tags: BTreeMap<String, String> =
            role.tags.into_iter().map(|(k, v)| (k, v.value)).collect();
        tags.insert("breakglass".to_string(), "true".to_string());
        Ok(RoleTarget {
            arn: arn.value,
            read_arn: value(role.read_arn),
            session_name: value(role.session_name)
                .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
            duration,
            refresh_before,
            external_id: value(role.external_id),
            mfa_serial: value(role.mfa_serial),
            mfa_command: value(role.mfa_command),
            source_profile: value(role.source_profile),
            source_identity: value(role.source_identity),
            tags,
            policy_arns: role.policy_arns.map(|p| p.value).unwrap_or_default(),
            matched_by,
            workspace: workspace.to_string(),
        })
    }
}

impl RoleTarget {
    /// The ARN to assume for this command: `read_arn` for read-only commands when set.
    pub fn arn_for(&self, read_only: bool) -> &str {
        match (&self.read_arn, read_only) {
            (Some(read), true) => read,
            _ => &self.arn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CONFIG_FILE;

    const CONFIG: &str = r#"
[role]
arn = "arn:aws:iam::111111111111:role/default"
duration = "2h"

[workspaces.prod]
arn = "arn:aws:iam::222222222222:role/prod"

[stacks."network/*"]
arn = "arn:aws:iam::333333333333:role/network"

[stacks."network/core"]
arn = "arn:aws:iam::444444444444:role/core"
"#;

    fn project() -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, CONFIG).unwrap();
        let project = Project::load(&p).unwrap();
        (dir, project)
    }

    #[test]
    fn stack_over_workspace_over_default() {
        let (dir, p) = project();
        let root = dir.path();
        let t = p.resolve(root, "default").unwrap();
        assert!(t.arn.ends_with("role/default"));
        assert_eq!(t.matched_by, MatchedBy::Default);
        let t = p.resolve(root, "prod").unwrap();
        assert!(t.arn.ends_with("role/prod"));
        assert_eq!(
            t.duration,
            Duration::from_secs(7200),
            "keys not set by the workspace come from [role]"
        );
        let t = p.resolve(&root.join("network/vpc"), "prod").unwrap();
        assert!(t.arn.ends_with("role/network"));
        assert_eq!(t.matched_by, MatchedBy::Stack("network/*".into()));
        let t = p.resolve(&root.join("network/core"), "prod").unwrap();
        assert!(t.arn.ends_with("role/core"), "an exact stack beats a glob");
        let t = p.resolve(&root.join("network/vpc/sub"), "default").unwrap();
        assert!(t.arn.ends_with("role/default"), "`*` does not cross `/`");
        let t = p
            .resolve(&root.join("app/../network/./vpc"), "default")
            .unwrap();
        assert!(t.arn.ends_with("role/network"));
    }

    #[test]
    fn a_stack_in_a_workspace_is_the_most_specific_of_all() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        let a = "arn:aws:iam::111111111111:role";
        let text = format!("[role]\narn = \"{a}/default\"\nread_arn = \"{a}/read\"\n[workspaces.prod]\narn = \"{a}/ws-prod\"\n[stacks.\"app*\"]\narn = \"{a}/app-any\"\n[stacks.\"app\".workspaces.prod]\narn = \"{a}/app-prod\"\nread_arn = \"{a}/app-prod-read\"\n[stacks.\"app\".workspaces.staging]\narn = \"{a}/app-staging\"\n");
        std::fs::write(&p, text).unwrap();
        let (project, app) = (Project::load(&p).unwrap(), dir.path().join("app"));
        let t = project.resolve(&app, "prod").unwrap();
        assert!(
            t.arn_for(false).ends_with("role/app-prod")
                && t.arn_for(true).ends_with("role/app-prod-read")
        );
        let by = MatchedBy::StackWorkspace("app".into(), "prod".into());
        assert_eq!(
            (&t.matched_by, by.to_string().as_str()),
            (&by, "[stacks.\"app\".workspaces.prod]")
        );
        let t = project.resolve(&app, "staging").unwrap();
        assert!(
            t.arn.ends_with("role/app-staging") && t.read_arn.is_none(),
            "no inherited read role"
        );
        // Another workspace falls back to the glob: a workspace-only table hides nothing.
        assert!(project
            .resolve(&app, "dev")
            .unwrap()
            .arn
            .ends_with("role/app-any"));
        let other = project.resolve(&dir.path().join("other"), "prod").unwrap();
        assert!(other.arn.ends_with("role/ws-prod"));
    }

    #[test]
    fn a_terragrunt_working_copy_maps_as_its_unit() {
        let (dir, p) = project();
        let root = dir.path();
        let cache = root.join("network/vpc/.terragrunt-cache/Xa1/Yb2/modules/vpc");
        assert_eq!(owning_unit(&cache), root.join("network/vpc"));
        assert_eq!(stack_path(root, &cache).as_deref(), Some("network/vpc"));
        let t = p.resolve(&cache, "default").unwrap();
        assert!(t.arn.ends_with("role/network"), "{}", t.arn);
        assert_eq!(t.matched_by, MatchedBy::Stack("network/*".into()));
        // A cache at the project root belongs to the root; a cache inside a cache to
        // the outermost unit.
        let top = root.join(".terragrunt-cache/a/b");
        assert_eq!(stack_path(root, &top).as_deref(), Some("."));
        let nested = root.join("network/core/.terragrunt-cache/a/b/x/.terragrunt-cache/c/d");
        assert_eq!(stack_path(root, &nested).as_deref(), Some("network/core"));
        // A directory merely named like the cache's contents is its own.
        assert_eq!(
            owning_unit(&root.join("network/vpc")),
            root.join("network/vpc")
        );
    }

    #[test]
    fn workspace_from_env_then_file_then_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(current_workspace(dir.path(), None, None), "default");
        std::fs::create_dir(dir.path().join(".terraform")).unwrap();
        std::fs::write(dir.path().join(".terraform/environment"), "staging").unwrap();
        assert_eq!(current_workspace(dir.path(), None, None), "staging");
        assert_eq!(current_workspace(dir.path(), Some("prod"), None), "prod");
    }

    #[test]
    fn refresh_window_must_be_shorter_than_duration() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, "[role]\narn = \"arn:aws:iam::111111111111:role/a\"\nduration = \"15m\"\nrefresh_before = \"20m\"\n").unwrap();
        let err = Project::load(&p)
            .unwrap()
            .resolve(dir.path(), "default")
            .unwrap_err();
        assert!(err.to_string().contains(":4:18:"), "{err}");
    }

    #[test]
    fn default_refresh_window_fits_short_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(
            &p,
            "[role]\narn = \"arn:aws:iam::111111111111:role/a\"\nduration = \"15m\"\n",
        )
        .unwrap();
        let t = Project::load(&p)
            .unwrap()
            .resolve(dir.path(), "default")
            .unwrap();
        assert_eq!(t.refresh_before, Duration::from_secs(450));
        assert_eq!(t.tags.get("breakglass").map(String::as_str), Some("true"));
    }

    #[test]
    fn no_role_is_an_error_that_says_where_to_add_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, "enabled = true\n").unwrap();
        let err = Project::load(&p)
            .unwrap()
            .resolve(dir.path(), "default")
            .unwrap_err();
        assert!(err.to_string().contains("[role]"), "{err}");
    }

    #[test]
    fn a_mapping_with_its_own_arn_does_not_inherit_the_read_role() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, "[role]\narn = \"arn:aws:iam::111111111111:role/w\"\nread_arn = \"arn:aws:iam::111111111111:role/r\"\n[stacks.\"net\"]\narn = \"arn:aws:iam::333333333333:role/w\"\n[workspaces.x]\nduration = \"2h\"\n").unwrap();
        let project = Project::load(&p).unwrap();
        let t = project.resolve(&dir.path().join("net"), "default").unwrap();
        assert_eq!(t.arn_for(true), "arn:aws:iam::333333333333:role/w");
        // A mapping that does not name a role keeps the read role.
        let t = project.resolve(dir.path(), "x").unwrap();
        assert!(t.arn_for(true).ends_with("role/r"));
    }

    #[test]
    fn read_arn_only_for_read_only_commands() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(CONFIG_FILE);
        std::fs::write(&p, "[role]\narn = \"arn:aws:iam::111111111111:role/w\"\nread_arn = \"arn:aws:iam::111111111111:role/r\"\n").unwrap();
        let t = Project::load(&p)
            .unwrap()
            .resolve(dir.path(), "default")
            .unwrap();
        assert!(t.arn_for(true).ends_with("role/r"));
        assert!(t.arn_for(false).ends_with("role/w"));
    }
}
