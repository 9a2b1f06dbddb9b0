//! Merges imported mappings into `.breakglass.toml` with `toml_edit`, keeping the
//! user's comments, order and other keys, and records the source in `[import]`.
//!
//! An imported table gets `arn`, `read_arn` (removed when the platform has none: a
//! stale read role would be the wrong identity) and `duration` (when the platform sets
//! one); every other key in it is the user's and stays. New tables go at the end, each
//! with a comment naming the resource it came from. The result is checked by the same
//! loader the shim uses before it replaces the file, so an import can never leave a
//! config that stops every `terraform`.

use std::io::Write;
use std::path::Path;

use toml_edit::{Array, DocumentMut, Item, Key, Table, Value};

use super::{Mapping, Platform};
use crate::config::{format_duration, Project};

/// Where the import came from, as `[import]` records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub platform: Platform,
    /// Sources, relative to the config's directory.
    pub from: Vec<String>,
    pub repository: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: not valid TOML: {message}\n  fix: correct the file (its own error above), then import again")]
    Parse { path: String, message: String },
    #[error(
        "{path}: {message}\n  fix: write it as a table, e.g. [stacks.\"app\"], then import again"
    )]
    Shape { path: String, message: String },
    #[error("cannot write {path}: {message}\n  fix: check the directory's permissions")]
    Io { path: String, message: String },
    #[error("the merged config would not load, so {path} was left as it was: {message}")]
    Invalid { path: String, message: String },
}

/// The highest table position in the document, so new tables go after it.
fn max_position(table: &Table) -> usize {
    let mut max = table.position().unwrap_or(0);
    for (_, item) in table.iter() {
        if let Item::Table(t) = item {
            max = max.max(max_position(t));
        }
    }
    max
}

/// How a new table's header is written.
#[derive(Clone, Copy)]
struct New<'c> {
    /// Not written as a header of its own (only its children are).
    implicit: bool,
    /// The key always in quotes, as the README writes stack globs: `[stacks."app"]`.
    quoted: bool,
    comment: Option<&'c str>,
}

/// The child table `key` of `parent`, created (at position `next`) when missing.
fn child<'a>(
    parent: &'a mut Table,
    key: &str,
    new: New,
    next: &mut usize,
) -> Result<(&'a mut Table, bool), String> {
    let created = !parent.contains_key(key);
    if created {
        let mut t = Table::new();
        t.set_implicit(new.implicit);
        t.set_position(*next);
        *next += 1;
        if let Some(c) = new.comment {
            t.decor_mut().set_prefix(format!("\n{c}"));
        }
        let quoted = Key::parse(&format!("{key:?}"))
            .ok()
            .and_then(|mut k| k.pop())
            .filter(|_| new.quoted)
            .unwrap_or_else(|| Key::new(key));
        parent.insert_formatted(&quoted, Item::Table(t));
    }
    match parent.get_mut(key) {
        Some(Item::Table(t)) => {
            if !new.implicit {
                t.set_implicit(false);
            }
            Ok((t, created))
        }
        _ => Err(format!("`{key}` is not a table")),
    }
}

/// Sets `key` to `v`, keeping the comment around an existing value.
fn set(table: &mut Table, key: &str, v: impl Into<Value>) {
    let mut v = v.into();
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *v.decor_mut() = old.decor().clone();
    }
    table.insert(key, Item::Value(v));
}

/// `existing` (a config's text, possibly empty) with the mappings and the record merged
/// in.
pub fn merge(
    existing: &str,
    path: &str,
    mappings: &[Mapping],
    record: &Record,
) -> Result<String, WriteError> {
    let mut doc: DocumentMut =
        existing
            .parse()
            .map_err(|e: toml_edit::TomlError| WriteError::Parse {
                path: path.to_string(),
                message: e.message().to_string(),
            })?;
    let shape = |message: String| WriteError::Shape {
        path: path.to_string(),
        message,
    };
    let mut next = max_position(doc.as_table()) + 1;
    let root = doc.as_table_mut();
    {
        let hidden = New {
            implicit: true,
            quoted: false,
            comment: None,
        };
        let (stacks, _) = child(root, "stacks", hidden, &mut next).map_err(shape)?;
        for m in mappings {
            let comment = format!("# imported from {}\n", m.from.join(", "));
            let header = New {
                implicit: false,
                quoted: false,
                comment: Some(&comment),
            };
            let stack = New {
                quoted: true,
                ..if m.workspace.is_some() {
                    hidden
                } else {
                    header
                }
            };
            let target = match &m.workspace {
                None => child(stacks, &m.stack, stack, &mut next),
                Some(w) => child(stacks, &m.stack, stack, &mut next)
                    .and_then(|(st, _)| child(st, "workspaces", hidden, &mut next))
                    .and_then(|(ws, _)| child(ws, w, header, &mut next)),
            };
            let (t, _) = target.map_err(|e| shape(format!("{}: {e}", m.table())))?;
            if let Some(arn) = &m.arn {
                set(t, "arn", arn.as_str());
            }
            match &m.read_arn {
                Some(r) => set(t, "read_arn", r.as_str()),
                None => {
                    t.remove("read_arn");
                }
            }
            if let Some(d) = m.duration {
                set(t, "duration", format_duration(d).replace(' ', ""));
            }
        }
    }
    let note = "# where `breakglass import` read the roles; `breakglass doctor` reads it again\n";
    let record_table = New {
        implicit: false,
        quoted: false,
        comment: Some(note),
    };
    let (import, _) = child(root, "import", record_table, &mut next).map_err(shape)?;
    set(import, "platform", record.platform.name());
    let mut from = Array::new();
    for f in &record.from {
        from.push(f.as_str());
    }
    set(import, "from", from);
    match &record.repository {
        Some(r) => set(import, "repository", r.as_str()),
        None => {
            import.remove("repository");
        }
    }
    let text = doc.to_string();
    Ok(if existing.trim().is_empty() {
        text.trim_start().to_string()
    } else {
        text
    })
}

/// Merges into the config at `path` (created when missing) and replaces it atomically,
/// after checking the result loads.
pub fn write_config(path: &Path, mappings: &[Mapping], record: &Record) -> Result<(), WriteError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| WriteError::Io {
        path: shown.clone(),
        message: e.to_string(),
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let merged = merge(&existing, &shown, mappings, record)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".breakglass.toml.")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(merged.as_bytes()).map_err(io)?;
    tmp.flush().map_err(io)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(io)?;
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    }
    if let Err(e) = Project::load(tmp.path()) {
        return Err(WriteError::Invalid {
            path: shown,
            message: e.to_string(),
        });
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn mapping(stack: &str, ws: Option<&str>, arn: &str, read: Option<&str>) -> Mapping {
        Mapping {
            stack: stack.into(),
            workspace: ws.map(str::to_string),
            arn: Some(arn.into()),
            read_arn: read.map(str::to_string),
            duration: Some(Duration::from_secs(3600)),
            from: vec![format!("spacelift_stack.{stack} (admin/main.tf:1)")],
            manage_state: Some(false),
        }
    }

    #[test]
    fn keeps_comments_order_and_other_keys() {
        let existing = "# our break-glass config\nregion = \"us-east-1\" # the only region\n\n[role]\narn = \"arn:aws:iam::111111111111:role/deploy\"\n\n[stacks.\"network\"]\n# hand-written: keep\nexternal_id = \"xyz123\"\nread_arn = \"arn:aws:iam::111111111111:role/stale\"\narn = \"arn:aws:iam::111111111111:role/old\" # was here\n";
        let record = Record {
            platform: Platform::Spacelift,
            from: vec!["admin".into()],
            repository: None,
        };
        let out = merge(
            existing,
            "x",
            &[
                mapping("network", None, "arn:aws:iam::111111111111:role/net", None),
                mapping(
                    "app",
                    Some("prod"),
                    "arn:aws:iam::111111111111:role/prod",
                    Some("arn:aws:iam::111111111111:role/read"),
                ),
            ],
            &record,
        )
        .unwrap();
        assert!(
            out.starts_with("# our break-glass config\nregion = \"us-east-1\" # the only region\n"),
            "{out}"
        );
        assert!(
            out.contains("# hand-written: keep\nexternal_id = \"xyz123\"\n"),
            "{out}"
        );
        assert!(
            out.contains("arn = \"arn:aws:iam::111111111111:role/net\" # was here"),
            "{out}"
        );
        assert!(!out.contains("role/stale"), "{out}");
        assert!(out.contains("[stacks.\"app\".workspaces.prod]"), "{out}");
        assert!(
            !out.contains("[stacks.\"app\"]\n"),
            "no empty stack table: {out}"
        );
        assert!(
            out.contains("# imported from spacelift_stack.app (admin/main.tf:1)"),
            "{out}"
        );
        assert!(
            out.find("[role]") < out.find("[stacks.\"app\""),
            "new tables at the end: {out}"
        );
        assert!(
            out.contains("[import]\nplatform = \"spacelift\"\nfrom = [\"admin\"]"),
            "{out}"
        );
        // Importing again changes nothing.
        let again = merge(
            &out,
            "x",
            &[
                mapping("network", None, "arn:aws:iam::111111111111:role/net", None),
                mapping(
                    "app",
                    Some("prod"),
                    "arn:aws:iam::111111111111:role/prod",
                    Some("arn:aws:iam::111111111111:role/read"),
                ),
            ],
            &record,
        )
        .unwrap();
        assert_eq!(again, out);
    }
}
