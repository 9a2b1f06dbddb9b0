//! HCP Terraform and Terraform Enterprise, from the resources of the `tfe` provider by
//! their documented attribute names: `tfe_workspace` (`name`, `working_directory`,
//! `project_id`), `tfe_variable` (`key`, `value`, `category`, `sensitive`,
//! `workspace_id` or `variable_set_id`), `tfe_variable_set` (`global`, `priority`),
//! `tfe_workspace_variable_set` and `tfe_project_variable_set`.
//!
//! Dynamic credentials name the roles in environment variables: plans use
//! `TFC_AWS_PLAN_ROLE_ARN`, else `TFC_AWS_RUN_ROLE_ARN`; applies use
//! `TFC_AWS_APPLY_ROLE_ARN`, else `TFC_AWS_RUN_ROLE_ARN`. The apply role becomes `arn`,
//! a different plan role `read_arn`. Precedence follows HCP Terraform's: a priority
//! variable set, then the workspace's own variable, then sets attached to the
//! workspace, to its project, and global ones. A sensitive value cannot be read: it is
//! skipped, never guessed.

use std::collections::BTreeMap;

use super::hcl::{Evaluated, Instance, Target};
use super::{Inventory, Skipped, Stack};

const RUN: &str = "TFC_AWS_RUN_ROLE_ARN";
const PLAN: &str = "TFC_AWS_PLAN_ROLE_ARN";
const APPLY: &str = "TFC_AWS_APPLY_ROLE_ARN";

/// A role variable's value, or why it cannot be read.
type Value = Result<String, Skipped>;

struct Workspace {
    stack: Stack,
    project: Result<Option<Target>, Skipped>,
    vars: Vec<(String, Value)>,
}

struct VarSet {
    address: String,
    global: Result<bool, Skipped>,
    priority: Result<bool, Skipped>,
    vars: Vec<(String, Value)>,
    workspaces: Vec<Target>,
    projects: Vec<Result<Target, Skipped>>,
}

/// How a variable set reaches a workspace, lowest number first in precedence.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Priority = 0,
    Own = 1,
    WorkspaceSet = 2,
    ProjectSet = 3,
    Global = 4,
}

fn skip(inst: &Instance, key: &str, reason: String) -> Skipped {
    Skipped {
        place: Some(inst.place.clone()),
        what: format!("{}: {key}", inst.address),
        reason,
    }
}

/// True when `target` is a reference to the resource at `address`. A literal id
/// (`ws-...`, `varset-...`) names nothing in this code.
fn points_at(target: &Target, address: &str) -> bool {
    matches!(target, Target::Address(a) if a == address)
}

/// Reads the workspaces and their roles from an evaluated admin configuration.
pub fn read(ev: &Evaluated) -> Inventory {
    let mut skipped: Vec<Skipped> = ["tfe_workspace", "tfe_variable", "tfe_variable_set"]
        .iter()
        .chain(&["tfe_workspace_variable_set", "tfe_project_variable_set"])
        .flat_map(|k| ev.failed_of(k).cloned())
        .collect();
    let mut workspaces = Vec::new();
    for inst in ev.of("tfe_workspace") {
        let name = match inst.string("name") {
            Ok(Some(n)) => n,
            Ok(None) => {
                skipped.push(skip(inst, "name", "`name` is not set".into()));
                continue;
            }
            Err(s) => {
                skipped.push(s);
                continue;
            }
        };
        let dir = match inst.string("working_directory") {
            Ok(d) => d.unwrap_or_default(),
            Err(s) => {
                skipped.push(s);
                continue;
            }
        };
        workspaces.push(Workspace {
            stack: Stack {
                address: inst.address.clone(),
                name: name.clone(),
                id: None,
                place: Some(inst.place.clone()),
                project_root: dir,
                repository: None,
                branch: None,
                workspace: None,
                shared_workspace: name,
                manage_state: None,
                arn: None,
                read_arn: None,
                duration: None,
            },
            project: inst.target("project_id"),
            vars: Vec::new(),
        });
    }
    let mut sets: Vec<VarSet> = ev
        .of("tfe_variable_set")
        .map(|inst| VarSet {
            address: inst.address.clone(),
            global: inst.boolean("global").map(|g| g.unwrap_or(false)),
            priority: inst.boolean("priority").map(|p| p.unwrap_or(false)),
            vars: Vec::new(),
            workspaces: Vec::new(),
            projects: Vec::new(),
        })
        .collect();
    for inst in ev.of("tfe_variable") {
        let Some((key, value)) = role_variable(inst, &mut skipped) else {
            continue;
        };
        if let Ok(Some(t)) = inst.target("workspace_id") {
            match workspaces
                .iter_mut()
                .find(|w| points_at(&t, &w.stack.address))
            {
                Some(w) => w.vars.push((key, value)),
                None => skipped.push(skip(
                    inst,
                    "workspace_id",
                    "names no tfe_workspace in this code".into(),
                )),
            }
        } else if let Ok(Some(t)) = inst.target("variable_set_id") {
            match sets.iter_mut().find(|s| points_at(&t, &s.address)) {
                Some(s) => s.vars.push((key, value)),
                None => skipped.push(skip(
                    inst,
                    "variable_set_id",
                    "names no tfe_variable_set in this code".into(),
                )),
            }
        } else {
            let why = inst
                .target("workspace_id")
                .err()
                .or_else(|| inst.target("variable_set_id").err())
                .unwrap_or_else(|| {
                    skip(
                        inst,
                        "workspace_id",
                        "neither workspace_id nor variable_set_id is set".into(),
                    )
                });
            skipped.push(why);
        }
    }
    for inst in ev.of("tfe_workspace_variable_set") {
        match (inst.target("variable_set_id"), inst.target("workspace_id")) {
            (Ok(Some(s)), Ok(Some(w))) => {
                match sets.iter_mut().find(|x| points_at(&s, &x.address)) {
                    Some(set) => set.workspaces.push(w),
                    None => skipped.push(skip(
                        inst,
                        "variable_set_id",
                        "names no tfe_variable_set in this code".into(),
                    )),
                }
            }
            (Err(e), _) | (_, Err(e)) => skipped.push(e),
            _ => skipped.push(skip(
                inst,
                "workspace_id",
                "variable_set_id and workspace_id must both be set".into(),
            )),
        }
    }
    for inst in ev.of("tfe_project_variable_set") {
        match inst.target("variable_set_id") {
            Ok(Some(s)) => match sets.iter_mut().find(|x| points_at(&s, &x.address)) {
                Some(set) => set.projects.push(match inst.target("project_id") {
                    Ok(Some(p)) => Ok(p),
                    Ok(None) => Err(skip(inst, "project_id", "`project_id` is not set".into())),
                    Err(e) => Err(e),
                }),
                None => skipped.push(skip(
                    inst,
                    "variable_set_id",
                    "names no tfe_variable_set in this code".into(),
                )),
            },
            Ok(None) => skipped.push(skip(
                inst,
                "variable_set_id",
                "`variable_set_id` is not set".into(),
            )),
            Err(e) => skipped.push(e),
        }
    }
    let mut stacks = Vec::new();
    for w in workspaces {
        let lookup = |key: &str| resolve(&w, &sets, key);
        let pick = |primary: Option<Value>, fallback: Option<Value>| primary.or(fallback);
        let apply = pick(lookup(APPLY), lookup(RUN));
        let plan = pick(lookup(PLAN), lookup(RUN));
        let mut stack = w.stack;
        match (apply.transpose(), plan.transpose()) {
            (Err(e), _) | (_, Err(e)) => {
                skipped.push(Skipped {
                    place: stack.place.clone(),
                    what: stack.address.clone(),
                    reason: format!("not mapped: its role cannot be read ({e})"),
                });
            }
            (Ok(None), Ok(None)) => skipped.push(Skipped {
                place: stack.place.clone(),
                what: stack.address.clone(),
                reason: format!("none of {RUN}, {PLAN}, {APPLY} is set for it"),
            }),
            (Ok(apply), Ok(plan)) => {
                stack.read_arn = plan.filter(|p| Some(p) != apply.as_ref());
                stack.arn = apply;
                stacks.push(stack);
            }
        }
    }
    Inventory { stacks, skipped }
}

/// A `tfe_variable` that names a role (`TFC_AWS_*_ROLE_ARN`, category `env`): its key
/// and value. Sensitive and unreadable values are recorded as skipped.
fn role_variable(inst: &Instance, skipped: &mut Vec<Skipped>) -> Option<(String, Value)> {
    let key = match inst.string("key") {
        Ok(Some(k)) => k,
        Ok(None) => return None,
        Err(s) => {
            skipped.push(s);
            return None;
        }
    };
    if ![RUN, PLAN, APPLY].contains(&key.as_str()) {
        return None;
    }
    match inst.string("category") {
        Ok(Some(c)) if c == "env" => {}
        Ok(c) => {
            skipped.push(skip(
                inst,
                "category",
                format!(
                    "{key} with category = {:?}: HCP Terraform reads it only as an environment variable (category = \"env\")",
                    c.unwrap_or_default()
                ),
            ));
            return None;
        }
        Err(s) => {
            skipped.push(s);
            return None;
        }
    }
    let value = match inst.boolean("sensitive") {
        Ok(Some(true)) => {
            let s = skip(
                inst,
                "value",
                format!("{key} is sensitive: its value cannot be read, so it is not guessed"),
            );
            skipped.push(s.clone());
            Err(s)
        }
        Err(s) => Err(s),
        Ok(_) => match inst.string("value") {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(skip(inst, "value", "`value` is not set".into())),
            Err(s) => {
                skipped.push(s.clone());
                Err(s)
            }
        },
    };
    Some((key, value))
}

/// The value of `key` for a workspace by HCP Terraform's precedence: None when no
/// level sets it; an error when the deciding level cannot be read or disagrees.
fn resolve(w: &Workspace, sets: &[VarSet], key: &str) -> Option<Value> {
    let mut by_level: BTreeMap<Level, Vec<(String, Value)>> = BTreeMap::new();
    for (_, v) in w.vars.iter().filter(|(k, _)| k == key) {
        by_level
            .entry(Level::Own)
            .or_default()
            .push((w.stack.address.clone(), v.clone()));
    }
    for set in sets {
        let Some((_, value)) = set.vars.iter().find(|(k, _)| k == key) else {
            continue;
        };
        // A set whose reach cannot be told decides nothing safely: it goes first, as
        // the error, so the workspace is skipped with the reason.
        let (level, value) = match level(w, set) {
            Ok(Some(l)) => (l, value.clone()),
            Ok(None) => continue,
            Err(e) => (Level::Priority, Err(e)),
        };
        by_level
            .entry(level)
            .or_default()
            .push((set.address.clone(), value));
    }
    let (_, found) = by_level.into_iter().next()?;
    let mut values: Vec<(String, String)> = Vec::new();
    for (from, v) in found {
        match v {
            Err(e) => return Some(Err(e)),
            Ok(v) => {
                if !values.iter().any(|(_, x)| *x == v) {
                    values.push((from, v));
                }
            }
        }
    }
    if values.len() > 1 {
        let from: Vec<&str> = values.iter().map(|(f, _)| f.as_str()).collect();
        return Some(Err(Skipped {
            place: w.stack.place.clone(),
            what: format!("{}: {key}", w.stack.address),
            reason: format!(
                "{} set different values at the same precedence",
                from.join(" and ")
            ),
        }));
    }
    values.pop().map(|(_, v)| Ok(v))
}

/// How `set` reaches `w`, if it does.
fn level(w: &Workspace, set: &VarSet) -> Result<Option<Level>, Skipped> {
    let on_workspace = set
        .workspaces
        .iter()
        .any(|t| points_at(t, &w.stack.address));
    let mut on_project = false;
    for p in &set.projects {
        let p = p.clone()?;
        let ws_project = w.project.clone()?;
        on_project |= match (&p, ws_project) {
            (Target::Address(a), Some(Target::Address(b))) => *a == b,
            (Target::Literal(a), Some(Target::Literal(b))) => *a == b,
            _ => false,
        };
    }
    let global = set.global.clone()?;
    let reaches = on_workspace || on_project || global;
    if !reaches {
        return Ok(None);
    }
    Ok(Some(if set.priority.clone()? {
        Level::Priority
    } else if on_workspace {
        Level::WorkspaceSet
    } else if on_project {
        Level::ProjectSet
    } else {
        Level::Global
    }))
}

#[cfg(test)]
mod tests;
