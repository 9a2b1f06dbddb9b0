//! Spacelift, from the resources of its Terraform provider, by their documented
//! attribute names: `spacelift_stack` (`name`, `project_root`, `repository`,
//! `branch`, `terraform_workspace`, `manage_state`, `slug`), `spacelift_aws_integration`
//! (`role_arn`, `duration_seconds`), `spacelift_aws_integration_attachment`
//! (`integration_id`, `stack_id`, `read` and `write`, both true by default) and the
//! legacy `spacelift_aws_role` / `spacelift_stack_aws_role` (`role_arn`, `stack_id`,
//! `duration_seconds`).
//!
//! The write role becomes `arn`, a different read role `read_arn`, and the write
//! integration's `duration_seconds` the session `duration` (never below 15m; the
//! provider's default is 900 seconds, as Spacelift's API reports it too).

use std::collections::BTreeMap;

use super::hcl::{Evaluated, Instance, Target};
use super::{duration_from_seconds, Inventory, Skipped, Stack};

const STACK: &str = "spacelift_stack";
const INTEGRATION: &str = "spacelift_aws_integration";
const ATTACHMENT: &str = "spacelift_aws_integration_attachment";
const LEGACY: &[&str] = &["spacelift_aws_role", "spacelift_stack_aws_role"];
/// `spacelift_aws_integration`'s documented default `duration_seconds`.
const DEFAULT_DURATION_SECONDS: u64 = 900;

/// A role attached to a stack, for reads, writes or both.
#[derive(Debug, Clone)]
pub(crate) struct Attached {
    pub role_arn: String,
    pub read: bool,
    pub write: bool,
    pub duration_seconds: Option<u64>,
}

/// A stack being assembled from its resource and everything attached to it.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub stack: Stack,
    /// The literal ids that name it: its slug (or a name that already is one), or the
    /// export's id.
    pub ids: Vec<String>,
    pub attached: Vec<Attached>,
    /// Attachments of this stack that could not be read: the stack is not mapped.
    pub blockers: Vec<Skipped>,
}

impl Draft {
    pub fn new(stack: Stack, ids: Vec<String>) -> Draft {
        Draft {
            stack,
            ids,
            attached: Vec::new(),
            blockers: Vec::new(),
        }
    }
}

/// True when `name` is already a slug (lowercase letters, digits and dashes), so it is
/// the stack's id exactly.
fn slug_shaped(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads the stacks and their roles from an evaluated admin stack.
pub fn read(ev: &Evaluated) -> Inventory {
    let mut skipped: Vec<Skipped> = [STACK, INTEGRATION, ATTACHMENT]
        .iter()
        .chain(LEGACY)
        .flat_map(|k| ev.failed_of(k).cloned())
        .collect();
    let mut drafts = Vec::new();
    for inst in ev.of(STACK) {
        match draft(inst) {
            Ok(d) => drafts.push(d),
            Err(s) => skipped.push(s),
        }
    }
    let mut integrations: BTreeMap<String, Result<(String, Option<u64>), Skipped>> =
        BTreeMap::new();
    for inst in ev.of(INTEGRATION) {
        let role = inst.string("role_arn").and_then(|r| {
            r.ok_or_else(|| missing(inst, "role_arn")).and_then(|r| {
                let seconds = inst.number("duration_seconds")?;
                Ok((r, Some(seconds.unwrap_or(DEFAULT_DURATION_SECONDS))))
            })
        });
        integrations.insert(inst.address.clone(), role);
    }
    for inst in ev.of(ATTACHMENT) {
        let Some(i) = stack_of(inst, &drafts, &mut skipped) else {
            continue;
        };
        let role = match inst.target("integration_id") {
            Ok(Some(Target::Address(a))) => match integrations.get(&a) {
                Some(r) => r.clone(),
                None => Err(unknown(
                    inst,
                    "integration_id",
                    format!("`{a}` is not a spacelift_aws_integration"),
                )),
            },
            Ok(Some(Target::Literal(id))) => Err(unknown(
                inst,
                "integration_id",
                format!("\"{id}\" names no spacelift_aws_integration in this code"),
            )),
            Ok(None) => Err(missing(inst, "integration_id")),
            Err(s) => Err(s),
        };
        let attached = role.and_then(|(role_arn, duration_seconds)| {
            Ok(Attached {
                role_arn,
                read: inst.boolean("read")?.unwrap_or(true),
                write: inst.boolean("write")?.unwrap_or(true),
                duration_seconds,
            })
        });
        match attached {
            Ok(a) => drafts[i].attached.push(a),
            Err(s) => drafts[i].blockers.push(s),
        }
    }
    for inst in LEGACY.iter().flat_map(|k| ev.of(k)) {
        let Some(i) = stack_of(inst, &drafts, &mut skipped) else {
            continue;
        };
        let attached = inst.string("role_arn").and_then(|r| {
            Ok(Attached {
                role_arn: r.ok_or_else(|| missing(inst, "role_arn"))?,
                read: true,
                write: true,
                duration_seconds: inst.number("duration_seconds")?,
            })
        });
        match attached {
            Ok(a) => drafts[i].attached.push(a),
            Err(s) => drafts[i].blockers.push(s),
        }
    }
    finish(drafts, skipped)
}

fn missing(inst: &Instance, key: &str) -> Skipped {
    unknown(inst, key, format!("`{key}` is not set"))
}

fn unknown(inst: &Instance, key: &str, reason: String) -> Skipped {
    Skipped {
        place: Some(inst.place.clone()),
        what: format!("{}: {key}", inst.address),
        reason,
    }
}

/// A `spacelift_stack` instance as a draft, or why it cannot be read.
fn draft(inst: &Instance) -> Result<Draft, Skipped> {
    let name = inst.string("name")?.ok_or_else(|| missing(inst, "name"))?;
    let slug = inst.string("slug")?;
    let workspace = inst
        .string("terraform_workspace")?
        .filter(|w| !w.is_empty());
    let ids = match slug {
        Some(s) => vec![s],
        None if slug_shaped(&name) => vec![name.clone()],
        None => Vec::new(),
    };
    let stack = Stack {
        address: inst.address.clone(),
        name: name.clone(),
        id: ids.first().cloned(),
        place: Some(inst.place.clone()),
        project_root: inst.string("project_root")?.unwrap_or_default(),
        repository: inst.string("repository")?,
        branch: inst.string("branch").ok().flatten(),
        workspace,
        shared_workspace: "default".to_string(),
        manage_state: Some(inst.boolean("manage_state")?.unwrap_or(true)),
        arn: None,
        read_arn: None,
        duration: None,
    };
    Ok(Draft::new(stack, ids))
}

/// The draft an attachment's `stack_id` names; None (with the reason recorded) when it
/// names none, and quietly None for a module's attachment.
fn stack_of(inst: &Instance, drafts: &[Draft], skipped: &mut Vec<Skipped>) -> Option<usize> {
    let target = match inst.target("stack_id") {
        Ok(Some(t)) => t,
        Ok(None) => {
            if !matches!(inst.field("module_id"), super::hcl::Field::Absent) {
                return None;
            }
            skipped.push(missing(inst, "stack_id"));
            return None;
        }
        Err(s) => {
            skipped.push(s);
            return None;
        }
    };
    let found = drafts.iter().position(|d| match &target {
        Target::Address(a) => &d.stack.address == a,
        Target::Literal(id) => d.ids.contains(id),
    });
    if found.is_none() {
        let named = match &target {
            Target::Address(a) => format!("`{a}`"),
            Target::Literal(id) => format!("\"{id}\""),
        };
        skipped.push(unknown(
            inst,
            "stack_id",
            format!("{named} names no spacelift_stack in this code"),
        ));
    }
    found
}

/// Turns drafts into stacks: one write role and at most one other read role each.
/// Anything ambiguous or unreadable leaves the stack out, with the reason.
pub(crate) fn finish(drafts: Vec<Draft>, mut skipped: Vec<Skipped>) -> Inventory {
    let mut stacks = Vec::new();
    for d in drafts {
        let mut stack = d.stack;
        let skip = |skipped: &mut Vec<Skipped>, reason: String| {
            skipped.push(Skipped {
                place: stack.place.clone(),
                what: stack.address.clone(),
                reason,
            })
        };
        if !d.blockers.is_empty() {
            let first = d.blockers[0].to_string();
            skipped.extend(d.blockers);
            skip(
                &mut skipped,
                format!("not mapped: a role attached to it cannot be read ({first})"),
            );
            continue;
        }
        let distinct = |pick: fn(&Attached) -> bool| {
            let mut arns: Vec<&Attached> = Vec::new();
            for a in d.attached.iter().filter(|a| pick(a)) {
                if !arns.iter().any(|x| x.role_arn == a.role_arn) {
                    arns.push(a);
                }
            }
            arns
        };
        let writes = distinct(|a| a.write);
        let reads = distinct(|a| a.read);
        for (list, what) in [(&writes, "writes"), (&reads, "reads")] {
            if list.len() > 1 {
                let arns: Vec<&str> = list.iter().map(|a| a.role_arn.as_str()).collect();
                skip(
                    &mut skipped,
                    format!(
                        "{} roles are attached for {what} ({}); breakglass does not pick one",
                        arns.len(),
                        arns.join(", ")
                    ),
                );
            }
        }
        if writes.len() > 1 || reads.len() > 1 {
            continue;
        }
        if writes.is_empty() && reads.is_empty() {
            skip(
                &mut skipped,
                "no AWS integration or spacelift_aws_role is attached to it".to_string(),
            );
            continue;
        }
        stack.arn = writes.first().map(|a| a.role_arn.clone());
        stack.read_arn = reads
            .first()
            .map(|a| a.role_arn.clone())
            .filter(|r| Some(r) != stack.arn.as_ref());
        stack.duration = writes
            .first()
            .and_then(|a| a.duration_seconds)
            .map(duration_from_seconds);
        stacks.push(stack);
    }
    Inventory { stacks, skipped }
}

#[cfg(test)]
mod tests;
