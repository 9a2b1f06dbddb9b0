//! The doctor's second look at the platform, from the source `[import]` recorded:
//! `inventory.fresh` reads it again and fails when a stack there has no mapping or a
//! mapped role differs; `state.external` fails for each Spacelift stack at or below the
//! directory whose state Spacelift manages (`manage_state`, true by default), which is
//! out of reach while Spacelift is down.

use std::path::{Path, PathBuf};

use super::{mappings, read, repository_root, Inventory, Mapping, Platform};
use crate::config::{ImportRecord, Project};
use crate::mapping::{stack_path, MatchedBy};

pub use crate::checks::{Check, Status};

fn check(
    id: &'static str,
    status: Status,
    summary: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        id: id.to_string(),
        status,
        summary: summary.into(),
        fix: fix.into(),
    }
}

/// The command that imports again, runnable from any directory.
fn import_command(project: &Project, record: &ImportRecord) -> String {
    let mut cmd = format!(
        "breakglass -C {} import {}",
        project.root.display(),
        record.platform.value
    );
    for f in &record.from.value {
        cmd.push_str(&format!(" --from {f}"));
    }
    if let Some(r) = &record.repository {
        cmd.push_str(&format!(" --repository {}", r.value));
    }
    cmd.push_str(" --write");
    cmd
}

/// `inventory.fresh` and the managed-state `state.external` checks for `workdir`.
pub fn checks(project: &Project, workdir: &Path) -> Vec<Check> {
    let Some(record) = &project.settings.import else {
        return vec![check(
            "inventory.fresh",
            Status::Skip,
            "no [import] recorded: the roles in the config are kept by hand",
            "breakglass import spacelift|tfe --from ADMIN_STACK_DIR --write keeps them from the platform's own code",
        )];
    };
    let again = import_command(project, record);
    let Some(platform) = Platform::parse(&record.platform.value) else {
        return vec![check(
            "inventory.fresh",
            Status::Fail,
            format!(
                "[import] platform = {:?} is not known",
                record.platform.value
            ),
            again,
        )];
    };
    let from: Vec<PathBuf> = record
        .from
        .value
        .iter()
        .map(|f| project.root.join(f))
        .collect();
    let inv = match read(
        platform,
        &from,
        record.repository.as_ref().map(|r| r.value.as_str()),
    ) {
        Ok(inv) => inv,
        Err(e) => {
            let text = e.to_string();
            return vec![check(
                "inventory.fresh",
                Status::Fail,
                format!(
                    "cannot read the recorded import source again: {}",
                    text.lines().next().unwrap_or("")
                ),
                format!("restore it, or import from where it is now: {again}"),
            )];
        }
    };
    let mut out = vec![fresh(project, &inv, &again)];
    if platform == Platform::Spacelift {
        out.extend(managed_state(project, workdir, &inv));
    }
    out
}

fn fresh(project: &Project, inv: &Inventory, again: &str) -> Check {
    let repo = repository_root(&project.root);
    let (maps, skipped) = mappings(&inv.stacks, &repo, &project.root);
    let mut missing = Vec::new();
    let mut differ = Vec::new();
    for m in &maps {
        match compare(project, m) {
            Ok(()) => {}
            Err(Problem::Missing) => missing.push(format!("{} ({})", names(inv, m), m.table())),
            Err(Problem::Differs(why)) => differ.push(format!("{}: {why}", m.table())),
        }
    }
    let skipped_note = match skipped.len() + inv.skipped.len() {
        0 => String::new(),
        n => format!(" ({n} item(s) skipped on import; `breakglass import` lists them)"),
    };
    if missing.is_empty() && differ.is_empty() {
        return check(
            "inventory.fresh",
            Status::Pass,
            format!(
                "the {} mapping(s) from the platform's code match the config{skipped_note}",
                maps.len()
            ),
            "",
        );
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("no mapping for {}", missing.join(", ")));
    }
    if !differ.is_empty() {
        parts.push(format!("role differs for {}", differ.join("; ")));
    }
    check(
        "inventory.fresh",
        Status::Fail,
        format!(
            "the platform's code changed since the import: {}",
            parts.join("; ")
        ),
        format!("import again: {again}"),
    )
}

/// The stack names behind a mapping: "stack `ops` (spacelift_stack.ops)".
fn names(inv: &Inventory, m: &Mapping) -> String {
    let list: Vec<String> = inv
        .stacks
        .iter()
        .filter(|s| {
            m.from
                .iter()
                .any(|f| *f == s.address || f.starts_with(&format!("{} (", s.address)))
        })
        .map(|s| format!("stack `{}` ({})", s.name, s.address))
        .collect();
    list.join(" and ")
}

enum Problem {
    Missing,
    Differs(String),
}

/// What a run in the mapping's directory and workspace would assume, against the
/// platform's roles.
fn compare(project: &Project, m: &Mapping) -> Result<(), Problem> {
    let dir = if m.stack == "." {
        project.root.clone()
    } else {
        project.root.join(&m.stack)
    };
    let workspace = m.workspace.as_deref().unwrap_or("default");
    let target = project
        .resolve(&dir, workspace)
        .map_err(|_| Problem::Missing)?;
    if !matches!(
        target.matched_by,
        MatchedBy::Stack(_) | MatchedBy::StackWorkspace(..)
    ) {
        return Err(Problem::Missing);
    }
    if let Some(arn) = &m.arn {
        if &target.arn != arn {
            return Err(Problem::Differs(format!(
                "arn is {}, the platform has {arn}",
                target.arn
            )));
        }
    }
    let expected_read = m.read_arn.as_ref().or(m.arn.as_ref());
    let actual_read = target.read_arn.as_ref().unwrap_or(&target.arn);
    if let Some(r) = expected_read {
        if actual_read != r {
            return Err(Problem::Differs(format!(
                "reads use {actual_read}, the platform has {r}"
            )));
        }
    }
    Ok(())
}

/// A failing `state.external` for each Spacelift stack at or below `workdir` whose
/// state Spacelift manages.
fn managed_state(project: &Project, workdir: &Path, inv: &Inventory) -> Vec<Check> {
    let Some(here) = stack_path(&project.root, workdir) else {
        return Vec::new();
    };
    let repo = repository_root(&project.root);
    inv.stacks
        .iter()
        .filter(|s| s.manage_state == Some(true))
        .filter(|s| {
            super::stack_key(&s.project_root, &repo, &project.root).is_some_and(|k| {
                here == "." || k == here || k.starts_with(&format!("{here}/"))
            })
        })
        .map(|s| {
            let id = s.id.as_deref().unwrap_or("STACK_ID");
            check(
                "state.external",
                Status::Fail,
                format!(
                    "Spacelift manages the state of stack `{}` ({}{}): it cannot be reached while Spacelift is down",
                    s.name,
                    s.address,
                    s.place.as_ref().map(|p| format!(", {p}")).unwrap_or_default()
                ),
                format!(
                    "move it to S3 on a good day: add `backend \"s3\" {{ bucket, key, region, use_lockfile = true }}` to the stack's code; save the state with `spacectl stack state pull --id {id} -o terraform.tfstate` (needs terraform_external_state_access = true); run `terraform init` and `terraform state push terraform.tfstate` under the deployment role; then set manage_state = false on the stack"
                ),
            )
        })
        .collect()
}
