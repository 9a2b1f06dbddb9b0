//! One Terraform module's `.tf` files, read with a real HCL parser: hcl-rs's own parser
//! (`hcl::edit`, which `hcl::parse` uses) keeps each block's and attribute's byte span,
//! so every place reported is the line the parser found, not a text search.
//!
//! This file owns the reading (variables, locals, resources, module calls); [`eval`]
//! evaluates what the code alone can tell, [`explain`] says why something cannot be
//! known, and [`funcs`] holds the few Terraform functions that are evaluated.

mod eval;
mod explain;
mod funcs;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hcl::edit::structure as ed;
use hcl::edit::Span;
use hcl::Expression;

pub use eval::{reference, Evaluated, Field, Instance, Target};

use super::{ImportError, Place, Skipped};

/// One `.tf` file's text, to turn byte offsets into lines.
struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    fn place(&self, span: Option<Range<usize>>) -> Place {
        let line = span.map(|s| {
            let end = s.start.min(self.text.len());
            self.text.as_bytes()[..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1
        });
        Place {
            file: self.path.clone(),
            line,
        }
    }
}

/// An attribute: key, expression and where it is written.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub key: String,
    pub expr: Expression,
    pub place: Place,
}

/// A `resource "TYPE" "NAME"` block.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub kind: String,
    pub name: String,
    pub place: Place,
    /// The attributes, without the meta-arguments.
    pub attrs: Vec<Attr>,
    pub for_each: Option<Attr>,
    pub count: Option<Attr>,
}

impl Resource {
    pub fn address(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

/// A `variable` block: only its default matters here.
#[derive(Debug, Clone)]
pub(crate) struct Variable {
    pub default: Option<Expression>,
}

/// A Terraform module: its variables, locals and resources.
#[derive(Debug, Clone)]
pub struct Module {
    pub(crate) variables: BTreeMap<String, Variable>,
    pub(crate) locals: Vec<Attr>,
    pub(crate) resources: Vec<Resource>,
    /// What the reader skipped (module calls).
    pub(crate) skipped: Vec<Skipped>,
}

/// Meta-arguments of a resource block, which are no attributes of the resource.
const META: &[&str] = &["depends_on", "provider", "for_each", "count"];

impl Module {
    /// Reads every `.tf` file in `dir` (not its subdirectories, as terraform does).
    pub fn load(dir: &Path) -> Result<Module, ImportError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ImportError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file())
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(ImportError::Nothing {
                path: dir.to_path_buf(),
            });
        }
        let mut module = Module {
            variables: BTreeMap::new(),
            locals: Vec::new(),
            resources: Vec::new(),
            skipped: Vec::new(),
        };
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Read {
                path: path.clone(),
                source,
            })?;
            let body: ed::Body =
                text.parse()
                    .map_err(|e: hcl::edit::parser::Error| ImportError::Parse {
                        path: path.clone(),
                        message: e.to_string().lines().next().unwrap_or("").to_string(),
                    })?;
            let file = SourceFile { path, text };
            module.add(&file, &body);
        }
        Ok(module)
    }

    fn add(&mut self, file: &SourceFile, body: &ed::Body) {
        for block in body.iter().filter_map(ed::Structure::as_block) {
            let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
            match (block.ident.as_str(), labels.as_slice()) {
                ("variable", [name]) => {
                    let default = block
                        .body
                        .get_attribute("default")
                        .map(|a| Expression::from(a.value.clone()));
                    self.variables
                        .insert(name.to_string(), Variable { default });
                }
                ("locals", []) => {
                    self.locals.extend(attributes(file, &block.body));
                }
                ("resource", [kind, name]) => {
                    let mut attrs = attributes(file, &block.body);
                    let take = |attrs: &mut Vec<Attr>, key: &str| {
                        attrs
                            .iter()
                            .position(|a| a.key == key)
                            .map(|i| attrs.remove(i))
                    };
                    let for_each = take(&mut attrs, "for_each");
                    let count = take(&mut attrs, "count");
                    attrs.retain(|a| !META.contains(&a.key.as_str()));
                    self.resources.push(Resource {
                        kind: kind.to_string(),
                        name: name.to_string(),
                        place: file.place(block.span()),
                        attrs,
                        for_each,
                        count,
                    });
                }
                ("module", [name]) => {
                    let source = block
                        .body
                        .get_attribute("source")
                        .and_then(|a| a.value.as_str().map(str::to_string))
                        .unwrap_or_default();
                    self.skipped.push(Skipped {
                        place: Some(file.place(block.span())),
                        what: format!("module.{name}"),
                        reason: format!(
                            "resources inside a module (source \"{source}\") are not read; if it defines stacks, import its directory with another --from"
                        ),
                    });
                }
                _ => {}
            }
        }
    }
}

fn attributes(file: &SourceFile, body: &ed::Body) -> Vec<Attr> {
    body.iter()
        .filter_map(ed::Structure::as_attribute)
        .map(|a| Attr {
            key: a.key.as_str().to_string(),
            expr: Expression::from(a.value.clone()),
            place: file.place(a.span()),
        })
        .collect()
}

#[cfg(test)]
mod tests;
