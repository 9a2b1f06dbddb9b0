//! `breakglass import`: the record of deployment roles, read from the platform's own
//! code (the admin stack's `.tf` files) or from its API export, never written by hand.
//!
//! This module owns the model the readers produce (stacks with their roles, and
//! everything skipped with its place and reason) and the step from stacks to mappings.
//! The readers are [`spacelift`] and [`tfe`] over [`hcl`] (the evaluator), and
//! [`export`] (Spacelift's JSON); [`write`] merges the result into `.breakglass.toml`,
//! [`check`] is the doctor's second look, and [`trust_statement`] prints the statement
//! a person needs in a platform role's trust policy to assume it.

pub mod check;
pub mod export;
pub mod hcl;
pub mod spacelift;
pub mod tfe;
pub mod trust_statement;
pub mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{MAX_DURATION, MIN_DURATION};

/// The platform whose code is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Spacelift,
    Tfe,
}

impl Platform {
    /// The name used on the command line and in `[import] platform`.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Spacelift => "spacelift",
            Platform::Tfe => "tfe",
        }
    }

    pub fn parse(name: &str) -> Option<Platform> {
        match name {
            "spacelift" => Some(Platform::Spacelift),
            "tfe" => Some(Platform::Tfe),
            _ => None,
        }
    }
}

/// A place in a source file: the path as the user gave it, and the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: PathBuf,
    pub line: Option<usize>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// Something that was not imported, where it is written and why. Never guessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub place: Option<Place>,
    /// What was skipped: `spacelift_aws_integration_attachment.shared` or
    /// `spacelift_stack.app["prod"]: project_root`.
    pub what: String,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Some(p) => write!(f, "{p}: {}: {}", self.what, self.reason),
            None => write!(f, "{}: {}", self.what, self.reason),
        }
    }
}

/// A stack (Spacelift) or workspace (HCP Terraform) with the roles it deploys with.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// Where it is defined: `spacelift_stack.app["prod"]`, or `stack app-prod` in an export.
    pub address: String,
    pub name: String,
    /// The platform's id for it (Spacelift's slug), when known.
    pub id: Option<String>,
    pub place: Option<Place>,
    /// The directory in the repository, normalised (`.` for the root).
    pub project_root: String,
    pub repository: Option<String>,
    pub branch: Option<String>,
    /// The terraform workspace the platform selects, when it names one.
    pub workspace: Option<String>,
    /// The workspace name to use when several stacks share `project_root` and this one
    /// names none: `default` for Spacelift, the workspace's own name for HCP Terraform.
    pub shared_workspace: String,
    /// Spacelift's `manage_state` (None for HCP Terraform).
    pub manage_state: Option<bool>,
    /// The role for writes (`arn`).
    pub arn: Option<String>,
    /// The role for reads (`read_arn`), when it differs.
    pub read_arn: Option<String>,
    pub duration: Option<Duration>,
}

/// What one import read: the stacks and everything skipped.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub stacks: Vec<Stack>,
    pub skipped: Vec<Skipped>,
}

/// One mapping to write: `[stacks."KEY"]` or `[stacks."KEY".workspaces.WS]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub stack: String,
    pub workspace: Option<String>,
    pub arn: Option<String>,
    pub read_arn: Option<String>,
    pub duration: Option<Duration>,
    /// The stacks it comes from, with their places, for the comment above the table.
    pub from: Vec<String>,
    pub manage_state: Option<bool>,
}

impl Mapping {
    /// `[stacks."app".workspaces.prod]`.
    pub fn table(&self) -> String {
        match &self.workspace {
            Some(w) => format!("[stacks.\"{}\".workspaces.{w}]", self.stack),
            None => format!("[stacks.\"{}\"]", self.stack),
        }
    }
}

/// A source could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}\n  fix: pass the admin stack's directory or a JSON export with --from", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid HCL: {message}\n  fix: check the file with `terraform validate`", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: not a Spacelift export: {message}\n  fix: save the export with `spacectl api \"$(breakglass import spacelift --print-query)\" > FILE.json`", path.display())]
    Export { path: PathBuf, message: String },
    #[error("{}: no .tf files and not a JSON export\n  fix: pass the directory that holds the admin stack's .tf files", path.display())]
    Nothing { path: PathBuf },
    #[error("{}: a JSON export is read only for spacelift\n  fix: pass the directory of .tf files that manage the HCP Terraform workspaces", path.display())]
    NotForTfe { path: PathBuf },
}

/// Reads every source (a directory of `.tf` files, or a Spacelift JSON export), keeps
/// only `repository` when given, and returns the stacks and what was skipped.
pub fn read(
    platform: Platform,
    from: &[PathBuf],
    repository: Option<&str>,
) -> Result<Inventory, ImportError> {
    let mut inv = Inventory::default();
    for path in from {
        let part = if path.is_dir() {
            let module = hcl::Module::load(path)?;
            let evaluated = module.evaluate();
            let mut part = match platform {
                Platform::Spacelift => spacelift::read(&evaluated),
                Platform::Tfe => tfe::read(&evaluated),
            };
            part.skipped.splice(0..0, evaluated.skipped);
            part
        } else if platform == Platform::Tfe {
            return Err(ImportError::NotForTfe { path: path.clone() });
        } else {
            export::read(path)?
        };
        inv.stacks.extend(part.stacks);
        inv.skipped.extend(part.skipped);
    }
    if let Some(repo) = repository {
        inv.stacks.retain(|s| {
            s.repository
                .as_deref()
                .is_some_and(|r| same_repository(r, repo))
        });
    }
    Ok(inv)
}

/// `acme/infra` and `infra` name the same repository (Spacelift's `repository` has no
/// owner part).
fn same_repository(a: &str, b: &str) -> bool {
    let tail = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    a == b || tail(a) == tail(b)
}

/// The repositories the stacks come from.
pub fn repositories(inv: &Inventory) -> BTreeSet<String> {
    inv.stacks
        .iter()
        .filter_map(|s| s.repository.clone())
        .collect()
}

/// `project_root` as a mapping key: relative to `config_dir` (which is taken to be in
/// the repository at `repo_root`), `/`-separated, `.` for the root. None when it lies
/// outside the config's directory.
pub fn stack_key(project_root: &str, repo_root: &Path, config_dir: &Path) -> Option<String> {
    let root = project_root.trim().trim_start_matches('/');
    crate::mapping::stack_path(config_dir, &repo_root.join(root))
}

/// The repository's root for a config in `config_dir`: the nearest directory at or
/// above it holding `.git`, else the config's directory itself.
pub fn repository_root(config_dir: &Path) -> PathBuf {
    config_dir
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(config_dir)
        .to_path_buf()
}

/// Spacelift's `duration_seconds` as a session length STS grants: never below 15m.
pub fn duration_from_seconds(seconds: u64) -> Duration {
    Duration::from_secs(seconds).clamp(MIN_DURATION, MAX_DURATION)
}

/// Turns stacks into mappings. A stack that names a workspace gets a
/// stack-and-workspace mapping; so does every stack on a `project_root` that several
/// stacks share. Two stacks that land on the same mapping with different roles are
/// skipped, both, with the reason.
pub fn mappings(
    stacks: &[Stack],
    repo_root: &Path,
    config_dir: &Path,
) -> (Vec<Mapping>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let mut by_key: BTreeMap<String, Vec<&Stack>> = BTreeMap::new();
    for s in stacks {
        match stack_key(&s.project_root, repo_root, config_dir) {
            Some(key) => by_key.entry(key).or_default().push(s),
            None => skipped.push(Skipped {
                place: s.place.clone(),
                what: s.address.clone(),
                reason: format!(
                    "project_root `{}` is outside the config's directory {}",
                    s.project_root,
                    config_dir.display()
                ),
            }),
        }
    }
    // (stack key, workspace) -> the mapping and the stacks that land on it
    type Landing<'a> = (Mapping, Vec<&'a Stack>);
    let mut out: BTreeMap<(String, Option<String>), Landing> = BTreeMap::new();
    for (key, group) in &by_key {
        let shared = group.len() > 1;
        for s in group {
            let workspace = match (&s.workspace, shared) {
                (Some(w), _) => Some(w.clone()),
                (None, true) => Some(s.shared_workspace.clone()),
                (None, false) => None,
            };
            let from = match &s.place {
                Some(p) => format!("{} ({p})", s.address),
                None => s.address.clone(),
            };
            let entry = out
                .entry((key.clone(), workspace.clone()))
                .or_insert_with(|| {
                    (
                        Mapping {
                            stack: key.clone(),
                            workspace,
                            arn: s.arn.clone(),
                            read_arn: s.read_arn.clone(),
                            duration: s.duration,
                            from: Vec::new(),
                            manage_state: s.manage_state,
                        },
                        Vec::new(),
                    )
                });
            entry.0.from.push(from);
            entry.1.push(s);
        }
    }
    let mut mappings = Vec::new();
    for ((key, workspace), (mapping, group)) in out {
        let first = group[0];
        let differ = group
            .iter()
            .any(|s| s.arn != first.arn || s.read_arn != first.read_arn);
        if differ {
            let names: Vec<&str> = group.iter().map(|s| s.address.as_str()).collect();
            for s in &group {
                skipped.push(Skipped {
                    place: s.place.clone(),
                    what: s.address.clone(),
                    reason: format!(
                        "{} share project_root `{key}`{} with different roles; give each its own terraform_workspace",
                        names.join(" and "),
                        workspace
                            .as_deref()
                            .map(|w| format!(" and workspace `{w}`"))
                            .unwrap_or_default()
                    ),
                });
            }
            continue;
        }
        mappings.push(mapping);
    }
    (mappings, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(address: &str, root: &str, ws: Option<&str>, arn: &str) -> Stack {
        Stack {
            address: address.into(),
            name: address.into(),
            id: None,
            place: None,
            project_root: root.into(),
            repository: Some("infra".into()),
            branch: None,
            workspace: ws.map(str::to_string),
            shared_workspace: "default".into(),
            manage_state: Some(true),
            arn: Some(arn.into()),
            read_arn: None,
            duration: None,
        }
    }

    #[test]
    fn keys_are_relative_to_the_config_directory() {
        let repo = Path::new("/r");
        assert_eq!(stack_key("", repo, repo).as_deref(), Some("."));
        assert_eq!(stack_key("./net/", repo, repo).as_deref(), Some("net"));
        assert_eq!(stack_key("/a/b", repo, repo).as_deref(), Some("a/b"));
        assert_eq!(
            stack_key("infra/app", repo, Path::new("/r/infra")).as_deref(),
            Some("app")
        );
        assert_eq!(stack_key("other", repo, Path::new("/r/infra")), None);
        assert_eq!(duration_from_seconds(60), MIN_DURATION);
        assert_eq!(duration_from_seconds(3600), Duration::from_secs(3600));
    }

    #[test]
    fn shared_roots_get_workspace_mappings_and_conflicts_are_skipped() {
        let repo = Path::new("/r");
        let stacks = vec![
            stack("a", "app", Some("prod"), "arn:p"),
            stack("b", "app", Some("staging"), "arn:s"),
            stack("c", "net", None, "arn:n"),
            stack("d", "dup", None, "arn:1"),
            stack("e", "dup", None, "arn:2"),
            stack("f", "solo", Some("prod"), "arn:x"),
        ];
        let (mappings, skipped) = mappings(&stacks, repo, repo);
        let tables: Vec<String> = mappings.iter().map(Mapping::table).collect();
        assert_eq!(
            tables,
            [
                "[stacks.\"app\".workspaces.prod]",
                "[stacks.\"app\".workspaces.staging]",
                "[stacks.\"net\"]",
                "[stacks.\"solo\".workspaces.prod]",
            ]
        );
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0]
            .reason
            .contains("d and e share project_root `dup`"));
        assert!(same_repository("acme/infra", "infra"));
    }
}
