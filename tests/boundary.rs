//! The shape of the crate, checked: the shim's hot path never reaches the AWS SDK,
//! tokio or hyper, and no module imports another that imports it back (directly or
//! through others).
//!
//! Module dependencies are read from the source: every `crate::NAME` outside the
//! module's test code. A module under `src/cli/` is the `cli` module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules the `terraform` shim binary runs when the mode is off, and what they
/// may import.
const HOT_PATH: &[&str] = &[
    "activation",
    "clock",
    "config",
    "context",
    "env",
    "error",
    "invocation",
    "mapping",
    "mode",
    "nested",
    "out",
    "paths",
    "shim",
    "terraform",
    "terragrunt",
    "trust",
];

/// Crates that must never be named by the hot path.
const HEAVY: &[&str] = &["aws_", "tokio", "hyper", "http_body", "signal_hook"];

/// The source of one module without its comments and its `#[cfg(test)]` code.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::NAME` in `code`.
fn uses(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // `breakglass::` paths in binaries are the same crate seen from outside.
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// module -> the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all
        .iter()
        .filter(|f| !f.starts_with(src.join("bin")))
        .map(|f| module_of(&src, f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        if !modules.contains(&m) {
            continue;
        }
        let deps = uses(&code_of(f))
            .into_iter()
            .filter(|d| modules.contains(d) && *d != m)
            .collect::<BTreeSet<_>>();
        g.entry(m).or_default().extend(deps);
    }
    g
}

#[test]
fn the_hot_path_imports_nothing_from_the_break_glass_path() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph();
    let mut crossings = Vec::new();
    for m in HOT_PATH {
        let deps = g.get(*m).unwrap_or_else(|| panic!("no module {m}"));
        for d in deps {
            if !HOT_PATH.contains(&d.as_str()) {
                crossings.push(format!("{m} -> {d}"));
            }
        }
        let code = code_of(&src.join(format!("{m}.rs")));
        for heavy in HEAVY {
            if code.contains(&format!("use {heavy}")) || code.contains(&format!("{heavy}::")) {
                crossings.push(format!("{m} names {heavy}"));
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "the shim's hot path reaches the break-glass path: {crossings:?}\n  keep these modules free of the SDK side: {HOT_PATH:?}"
    );
    // The shim binary itself names only hot-path modules.
    let shim = std::fs::read_to_string(src.join("bin/breakglass-shim.rs")).unwrap();
    for (i, _) in shim.match_indices("breakglass::") {
        let name: String = shim[i + 12..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        assert!(
            HOT_PATH.contains(&name.as_str()) || name == "say",
            "breakglass-shim.rs uses breakglass::{name}"
        );
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let g = graph();
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}
