//! `breakglass roles [--json]`: the inventory of every role in the config, with its
//! stack and workspace.

use crate::config::RoleSettings;
use crate::context::Context;
use crate::error::Error;
use crate::outln;

#[derive(serde::Serialize)]
struct RoleRow {
    mapping: String,
    stack: Option<String>,
    workspace: Option<String>,
    arn: Option<String>,
    read_arn: Option<String>,
}

fn row(
    mapping: String,
    stack: Option<String>,
    workspace: Option<String>,
    r: &RoleSettings,
) -> RoleRow {
    RoleRow {
        mapping,
        stack,
        workspace,
        arn: r.arn.as_ref().map(|a| a.value.clone()),
        read_arn: r.read_arn.as_ref().map(|a| a.value.clone()),
    }
}

pub fn run(ctx: &Context, json: bool) -> Result<i32, Error> {
    let s = &ctx.project()?.settings;
    let mut rows = vec![row("[role]".into(), None, None, &s.role)];
    for (w, r) in &s.workspaces {
        rows.push(row(format!("[workspaces.{w}]"), None, Some(w.clone()), r));
    }
    for (st, r) in &s.stacks {
        rows.push(row(format!("[stacks.\"{st}\"]"), Some(st.clone()), None, r));
    }
    for (st, per) in &s.stack_workspaces {
        for (w, r) in per {
            let mapping = format!("[stacks.\"{st}\".workspaces.{w}]");
            rows.push(row(mapping, Some(st.clone()), Some(w.clone()), r));
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(0);
    }
    outln!("{:<36} {:<14} {:<12} ROLE", "MAPPING", "STACK", "WORKSPACE");
    for r in rows {
        outln!(
            "{:<36} {:<14} {:<12} {}{}",
            r.mapping,
            r.stack.unwrap_or_else(|| "*".into()),
            r.workspace.unwrap_or_else(|| "*".into()),
            r.arn.unwrap_or_else(|| "(inherits [role])".into()),
            r.read_arn
                .map(|a| format!("  (read: {a})"))
                .unwrap_or_default()
        );
    }
    Ok(0)
}
