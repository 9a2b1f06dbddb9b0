//! The project's state backend, read with a real HCL parser from its `.tf` files:
//! `terraform { backend "TYPE" { ... } }` or `terraform { cloud { ... } }`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl::{Body, Expression};

/// A backend block, with its literal settings (expressions that are not literals are
/// left out: terraform forbids them in backend blocks anyway).
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// `s3`, `local`, `remote`, `http`, `cloud` (for a `cloud {}` block), ...
    pub kind: String,
    pub settings: BTreeMap<String, Setting>,
    /// The file it was found in.
    pub file: PathBuf,
}

/// A literal setting value.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    String(String),
    Bool(bool),
    Number(String),
    Block(BTreeMap<String, Setting>),
}

impl Backend {
    pub fn string(&self, key: &str) -> Option<&str> {
        match self.settings.get(key) {
            Some(Setting::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.settings.get(key) {
            Some(Setting::Bool(b)) => Some(*b),
            Some(Setting::String(s)) => s.parse().ok(),
            _ => None,
        }
    }

    /// A string inside a nested block or object (`assume_role { role_arn = ... }`).
    pub fn nested(&self, block: &str, key: &str) -> Option<&str> {
        match self.settings.get(block) {
            Some(Setting::Block(m)) => match m.get(key) {
                Some(Setting::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid HCL: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

fn literal(expr: &Expression) -> Option<Setting> {
    match expr {
        Expression::String(s) => Some(Setting::String(s.clone())),
        Expression::Bool(b) => Some(Setting::Bool(*b)),
        Expression::Number(n) => Some(Setting::Number(n.to_string())),
        Expression::Object(obj) => Some(Setting::Block(
            obj.iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        hcl::ObjectKey::Identifier(i) => i.to_string(),
                        hcl::ObjectKey::Expression(Expression::String(s)) => s.clone(),
                        _ => return None,
                    };
                    literal(v).map(|v| (key, v))
                })
                .collect(),
        )),
        Expression::Parenthesis(e) => literal(e),
        _ => None,
    }
}

fn settings(body: &Body) -> BTreeMap<String, Setting> {
    let mut out: BTreeMap<String, Setting> = body
        .attributes()
        .filter_map(|a| literal(a.expr()).map(|v| (a.key().to_string(), v)))
        .collect();
    for block in body.blocks() {
        out.insert(
            block.identifier().to_string(),
            Setting::Block(settings(block.body())),
        );
    }
    out
}

/// The backend in one file's text, if it declares one.
pub fn parse(text: &str, file: &Path) -> Result<Option<Backend>, BackendError> {
    let body: Body = hcl::parse(text).map_err(|e| BackendError::Parse {
        path: file.to_path_buf(),
        message: e.to_string().lines().next().unwrap_or("").to_string(),
    })?;
    for tf in body.blocks().filter(|b| b.identifier() == "terraform") {
        for inner in tf.body().blocks() {
            let kind = match inner.identifier() {
                "backend" => inner.labels().first().map(|l| l.as_str().to_string()),
                "cloud" => Some("cloud".to_string()),
                _ => None,
            };
            if let Some(kind) = kind {
                return Ok(Some(Backend {
                    kind,
                    settings: settings(inner.body()),
                    file: file.to_path_buf(),
                }));
            }
        }
    }
    Ok(None)
}

/// The backend declared by the `.tf` files in `dir` (not its subdirectories, as
/// terraform reads them).
pub fn find(dir: &Path) -> Result<Option<Backend>, BackendError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BackendError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| BackendError::Read {
            path: file.clone(),
            source,
        })?;
        if let Some(b) = parse(&text, &file)? {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_s3_backend() {
        let text = r#"
terraform {
  required_version = ">= 1.5"
  backend "s3" {
    bucket       = "tfstate"
    key          = "net/terraform.tfstate"
    region       = "eu-west-1"
    use_lockfile = true
    assume_role = {
      role_arn = "arn:aws:iam::111111111111:role/deploy"
    }
  }
}
resource "terraform_data" "x" {}
"#;
        let b = parse(text, Path::new("main.tf")).unwrap().unwrap();
        assert_eq!(b.kind, "s3");
        assert_eq!(b.string("bucket"), Some("tfstate"));
        assert_eq!(b.bool("use_lockfile"), Some(true));
        assert_eq!(
            b.nested("assume_role", "role_arn"),
            Some("arn:aws:iam::111111111111:role/deploy")
        );
    }

    #[test]
    fn cloud_blocks_and_no_backend() {
        let b = parse(
            "terraform {\n cloud {\n organization = \"acme\"\n }\n}\n",
            Path::new("a.tf"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.kind, "cloud");
        assert!(
            parse("resource \"terraform_data\" \"x\" {}\n", Path::new("a.tf"))
                .unwrap()
                .is_none()
        );
        assert!(parse("terraform {", Path::new("a.tf")).is_err());
    }
}
