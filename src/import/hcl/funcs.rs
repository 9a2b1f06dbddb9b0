//! The Terraform functions the evaluator knows, enough for the shapes admin stacks use
//! to build stacks and role ARNs: `toset`, `tolist`, `tomap`, `merge`, `concat`,
//! `keys`, `values`, `lookup`, `lower`, `upper`, `trimspace`, `join` and `format`
//! (`%s`, `%d`, `%v`, `%%`). Any other function leaves its value unknown.

use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::{Map, Value};

/// A function's Rust implementation.
type Func = fn(FuncArgs) -> Result<Value, String>;

/// How a function is called: its fixed parameters, then any number of anything.
enum Params {
    /// One value of any type.
    One,
    /// Any number of values.
    Many,
    /// One string.
    Text,
    /// A value, a string, then any number of values (`lookup`).
    Lookup,
    /// A string, then any number of values (`join`, `format`).
    TextThenMany,
}

/// Every known function, with how it is called.
const FUNCS: &[(&str, Params, Func)] = &[
    ("toset", Params::One, toset),
    ("tolist", Params::One, identity),
    ("tomap", Params::One, identity),
    ("merge", Params::Many, merge),
    ("concat", Params::Many, concat),
    ("keys", Params::One, keys),
    ("values", Params::One, values),
    ("lookup", Params::Lookup, lookup),
    ("lower", Params::Text, lower),
    ("upper", Params::Text, upper),
    ("trimspace", Params::Text, trimspace),
    ("join", Params::TextThenMany, join),
    ("format", Params::TextThenMany, format),
];

/// A context holding the known functions.
pub(crate) fn context() -> Context<'static> {
    let mut ctx = Context::new();
    for (name, params, f) in FUNCS {
        let b = FuncDef::builder();
        let b = match params {
            Params::One => b.param(ParamType::Any),
            Params::Many => b.variadic_param(ParamType::Any),
            Params::Text => b.param(ParamType::String),
            Params::Lookup => b
                .param(ParamType::Any)
                .param(ParamType::String)
                .variadic_param(ParamType::Any),
            Params::TextThenMany => b.param(ParamType::String).variadic_param(ParamType::Any),
        };
        ctx.declare_func(*name, b.build(*f));
    }
    ctx
}

fn identity(args: FuncArgs) -> Result<Value, String> {
    Ok(args.into_values().into_iter().next().unwrap_or(Value::Null))
}

fn toset(args: FuncArgs) -> Result<Value, String> {
    match args.into_values().into_iter().next() {
        Some(Value::Array(items)) => {
            let mut out: Vec<Value> = Vec::new();
            for v in items {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }
        Some(other) => Err(format!("toset needs a list, not `{other}`")),
        None => Err("toset needs a list".into()),
    }
}

fn objects(args: FuncArgs) -> Result<Vec<Map<String, Value>>, String> {
    args.into_values()
        .into_iter()
        .map(|v| match v {
            Value::Object(m) => Ok(m),
            other => Err(format!("expected a map, not `{other}`")),
        })
        .collect()
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = Map::new();
    for m in objects(args)? {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

fn concat(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for v in args.into_values() {
        match v {
            Value::Array(items) => out.extend(items),
            other => return Err(format!("concat needs lists, not `{other}`")),
        }
    }
    Ok(Value::Array(out))
}

/// A map's entries in lexical key order, as Terraform returns them.
fn sorted(args: FuncArgs) -> Result<Vec<(String, Value)>, String> {
    let mut entries: Vec<(String, Value)> = objects(args)?.into_iter().flatten().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(
        sorted(args)?
            .into_iter()
            .map(|(k, _)| Value::String(k))
            .collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(
        sorted(args)?.into_iter().map(|(_, v)| v).collect(),
    ))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    let mut it = args.into_values().into_iter();
    let (map, key, default) = (it.next(), it.next(), it.next());
    let (Some(Value::Object(map)), Some(Value::String(key))) = (map, key) else {
        return Err("lookup needs a map and a key".into());
    };
    match (map.get(&key), default) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(format!("no key `{key}` and no default")),
    }
}

fn string_arg(args: FuncArgs) -> String {
    match args.into_values().into_iter().next() {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

fn lower(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(string_arg(args).to_lowercase()))
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(string_arg(args).to_uppercase()))
}

fn trimspace(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(string_arg(args).trim().to_string()))
}

/// A scalar as Terraform turns it into a string.
fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("`{other}` is not a string")),
    }
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let mut it = args.into_values().into_iter();
    let sep = it
        .next()
        .as_ref()
        .map(text)
        .transpose()?
        .unwrap_or_default();
    let mut parts = Vec::new();
    for v in it {
        match v {
            Value::Array(items) => {
                for i in &items {
                    parts.push(text(i)?);
                }
            }
            other => return Err(format!("join needs lists, not `{other}`")),
        }
    }
    Ok(Value::String(parts.join(&sep)))
}

fn format(args: FuncArgs) -> Result<Value, String> {
    let mut it = args.into_values().into_iter();
    let spec = it
        .next()
        .as_ref()
        .map(text)
        .transpose()?
        .unwrap_or_default();
    let mut out = String::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'd' | 'v') => {
                let v = it.next().ok_or("format has more verbs than arguments")?;
                out.push_str(&text(&v)?);
            }
            other => {
                return Err(format!(
                    "format verb %{} is not evaluated",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(Value::String(out))
}
