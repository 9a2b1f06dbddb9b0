//! Evaluates a module's variables (their defaults), locals and resources as far as the
//! code alone allows, with hcl-rs's evaluator. Locals and resources may refer to each
//! other in any order, so they are evaluated again until nothing changes.
//!
//! A resource instance's `id` is not known before terraform runs; it evaluates to a
//! token naming the instance's address, so `spacelift_stack.app["prod"].id` resolves to
//! that stack by address. Anything else that cannot be known stays unknown, with the
//! reason.

use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate};
use hcl::{Expression, Map, Value};

use super::{explain, funcs, Module, Resource};
use crate::import::{Place, Skipped};

/// Marks a string value that stands for a resource instance's `id`.
const REF: &str = "\u{1}breakglass-ref:";

/// The address a reference token stands for (`spacelift_stack.app["prod"]`).
pub fn reference(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.strip_prefix(REF).filter(|a| !a.contains(REF)),
        _ => None,
    }
}

fn token(address: &str) -> Value {
    Value::String(format!("{REF}{address}"))
}

/// A value, or why it cannot be known.
pub(crate) type Outcome = Result<Value, String>;

/// One instance's evaluated attributes.
type Attrs = BTreeMap<String, Outcome>;

/// A resource's instances, as far as its `for_each` or `count` is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Instances {
    Single(Attrs),
    Keyed(Vec<(String, Attrs)>),
    Counted(Vec<Attrs>),
}

/// Everything evaluated so far; `explain` reads it to say why something is unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct State {
    pub vars: Map<String, Value>,
    pub var_errors: BTreeMap<String, String>,
    pub locals: BTreeMap<String, Outcome>,
    /// Parallel to `Module::resources`.
    pub resources: Vec<Result<Instances, String>>,
}

/// How one attribute of an instance came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// Not set (or `null`): the provider's default applies.
    Absent,
    Known(&'a Value),
    Unknown(&'a Skipped),
}

/// One resource instance with its evaluated attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub kind: String,
    /// `TYPE.NAME`, `TYPE.NAME["key"]` or `TYPE.NAME[0]`.
    pub address: String,
    pub place: Place,
    values: BTreeMap<String, Result<Value, Skipped>>,
}

/// The module evaluated: every resource instance, and the resources whose instances
/// could not be known (by type, so each reader picks its own).
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub instances: Vec<Instance>,
    pub failed: Vec<(String, Skipped)>,
    /// What the reader skipped (module calls).
    pub skipped: Vec<Skipped>,
}

impl Evaluated {
    /// The instances of one resource type.
    pub fn of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Instance> + 'a {
        self.instances.iter().filter(move |i| i.kind == kind)
    }

    /// The resources of one type whose instances could not be known.
    pub fn failed_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Skipped> + 'a {
        self.failed
            .iter()
            .filter(move |(k, _)| k == kind)
            .map(|(_, s)| s)
    }
}

impl Instance {
    pub fn field(&self, key: &str) -> Field<'_> {
        match self.values.get(key) {
            None | Some(Ok(Value::Null)) => Field::Absent,
            Some(Ok(v)) => Field::Known(v),
            Some(Err(s)) => Field::Unknown(s),
        }
    }

    fn unknown(&self, key: &str, reason: String) -> Skipped {
        Skipped {
            place: Some(self.place.clone()),
            what: format!("{}: {key}", self.address),
            reason,
        }
    }

    /// A string attribute. A resource's `id` inside a larger string is unknown.
    pub fn string(&self, key: &str) -> Result<Option<String>, Skipped> {
        match self.field(key) {
            Field::Absent => Ok(None),
            Field::Unknown(s) => Err(s.clone()),
            Field::Known(Value::String(s)) if s.contains(REF) => Err(self.unknown(
                key,
                "uses a resource's id, which only the platform knows".to_string(),
            )),
            Field::Known(Value::String(s)) => Ok(Some(s.clone())),
            Field::Known(Value::Number(n)) => Ok(Some(n.to_string())),
            Field::Known(Value::Bool(b)) => Ok(Some(b.to_string())),
            Field::Known(other) => Err(self.unknown(key, format!("`{other}` is not a string"))),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, Skipped> {
        match self.field(key) {
            Field::Absent => Ok(None),
            Field::Unknown(s) => Err(s.clone()),
            Field::Known(Value::Bool(b)) => Ok(Some(*b)),
            Field::Known(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Field::Known(other) => Err(self.unknown(key, format!("`{other}` is not a bool"))),
        }
    }

    pub fn number(&self, key: &str) -> Result<Option<u64>, Skipped> {
        match self.field(key) {
            Field::Absent => Ok(None),
            Field::Unknown(s) => Err(s.clone()),
            Field::Known(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Field::Known(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
            Field::Known(other) => {
                Err(self.unknown(key, format!("`{other}` is not a whole number")))
            }
        }
    }

    /// What an `*_id` attribute points at: a resource in this code (by address), or a
    /// literal id.
    pub fn target(&self, key: &str) -> Result<Option<Target>, Skipped> {
        if let Field::Known(v) = self.field(key) {
            if let Some(address) = reference(v) {
                return Ok(Some(Target::Address(address.to_string())));
            }
        }
        Ok(self.string(key)?.map(Target::Literal))
    }
}

/// Where an `*_id` attribute points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A resource in this code: `spacelift_stack.app["prod"]`.
    Address(String),
    /// A literal id or slug.
    Literal(String),
}

impl Module {
    /// Evaluates everything the code alone can tell.
    pub fn evaluate(&self) -> Evaluated {
        let mut state = State::default();
        let base = funcs::context();
        for (name, var) in &self.variables {
            if let Some(default) = &var.default {
                match default.evaluate(&base) {
                    Ok(v) => {
                        state.vars.insert(name.clone(), v);
                    }
                    Err(e) => {
                        state.var_errors.insert(name.clone(), e.kind().to_string());
                    }
                }
            }
        }
        let rounds = self.locals.len() + self.resources.len() + 2;
        for _ in 0..rounds {
            let ctx = self.context(&state);
            let mut next = state.clone();
            for local in &self.locals {
                let value = self.eval(&local.expr, &ctx, &state);
                next.locals.insert(local.key.clone(), value);
            }
            next.resources = self
                .resources
                .iter()
                .map(|r| self.instances(r, &ctx, &state))
                .collect();
            if next == state {
                break;
            }
            state = next;
        }
        self.collect(&state)
    }

    /// Evaluates one expression; on failure, says why in the user's terms.
    pub(crate) fn eval(&self, expr: &Expression, ctx: &Context, state: &State) -> Outcome {
        expr.evaluate(ctx).map_err(|e| {
            explain::why(expr, ctx, self, state)
                .unwrap_or_else(|| format!("`{expr}` cannot be evaluated: {}", e.kind()))
        })
    }

    /// The context for a round: functions, `var`, `local` and every known resource.
    fn context(&self, state: &State) -> Context<'static> {
        let mut ctx = funcs::context();
        ctx.declare_var("var", Value::Object(state.vars.clone()));
        let locals: Map<String, Value> = state
            .locals
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|v| (k.clone(), v.clone())))
            .collect();
        ctx.declare_var("local", Value::Object(locals));
        let mut types: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for (r, s) in self.resources.iter().zip(&state.resources) {
            if let Ok(instances) = s {
                let address = r.address();
                let value = match instances {
                    Instances::Single(attrs) => object(&address, attrs),
                    Instances::Keyed(list) => Value::Object(
                        list.iter()
                            .map(|(k, attrs)| (k.clone(), object(&keyed(&address, k), attrs)))
                            .collect(),
                    ),
                    Instances::Counted(list) => Value::Array(
                        list.iter()
                            .enumerate()
                            .map(|(i, attrs)| object(&format!("{address}[{i}]"), attrs))
                            .collect(),
                    ),
                };
                types
                    .entry(r.kind.as_str())
                    .or_default()
                    .insert(r.name.clone(), value);
            }
        }
        for (kind, map) in types {
            ctx.declare_var(kind, Value::Object(map));
        }
        ctx
    }

    /// A resource's instances and their attributes, in this round's context.
    fn instances(
        &self,
        r: &Resource,
        ctx: &Context<'static>,
        state: &State,
    ) -> Result<Instances, String> {
        let attrs = |ctx: &Context| -> Attrs {
            r.attrs
                .iter()
                .map(|a| (a.key.clone(), self.eval(&a.expr, ctx, state)))
                .collect()
        };
        match (&r.for_each, &r.count) {
            (Some(_), Some(_)) => Err("sets both for_each and count".to_string()),
            (Some(fe), None) => {
                let pairs: Vec<(String, Value)> = match self.eval(&fe.expr, ctx, state)? {
                    Value::Object(map) => map.into_iter().collect(),
                    Value::Array(items) => items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => Ok((s.clone(), Value::String(s))),
                            other => {
                                Err(format!("for_each over a set needs strings, not `{other}`"))
                            }
                        })
                        .collect::<Result<_, _>>()?,
                    other => {
                        return Err(format!(
                            "for_each must be a map or a set of strings, not `{other}`"
                        ))
                    }
                };
                let mut out = Vec::new();
                for (key, value) in pairs {
                    let mut inner = ctx.clone();
                    let mut each = Map::new();
                    each.insert("key".to_string(), Value::String(key.clone()));
                    each.insert("value".to_string(), value);
                    inner.declare_var("each", Value::Object(each));
                    out.push((key, attrs(&inner)));
                }
                Ok(Instances::Keyed(out))
            }
            (None, Some(c)) => {
                let n = match self.eval(&c.expr, ctx, state)? {
                    Value::Number(n) => n
                        .as_u64()
                        .ok_or_else(|| format!("count = {n} is not a whole number"))?,
                    other => return Err(format!("count must be a number, not `{other}`")),
                };
                let mut out = Vec::new();
                for i in 0..n {
                    let mut inner = ctx.clone();
                    let mut count = Map::new();
                    count.insert("index".to_string(), Value::from(i));
                    inner.declare_var("count", Value::Object(count));
                    out.push(attrs(&inner));
                }
                Ok(Instances::Counted(out))
            }
            (None, None) => Ok(Instances::Single(attrs(ctx))),
        }
    }

    /// Flattens the final state into instances and failures.
    fn collect(&self, state: &State) -> Evaluated {
        let mut out = Evaluated {
            skipped: self.skipped.clone(),
            ..Evaluated::default()
        };
        for (r, s) in self.resources.iter().zip(&state.resources) {
            let address = r.address();
            let list: Vec<(String, &Attrs)> = match s {
                Ok(Instances::Single(a)) => vec![(address.clone(), a)],
                Ok(Instances::Keyed(l)) => l.iter().map(|(k, a)| (keyed(&address, k), a)).collect(),
                Ok(Instances::Counted(l)) => l
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (format!("{address}[{i}]"), a))
                    .collect(),
                Err(reason) => {
                    let place = r
                        .for_each
                        .as_ref()
                        .or(r.count.as_ref())
                        .map_or_else(|| r.place.clone(), |a| a.place.clone());
                    out.failed.push((
                        r.kind.clone(),
                        Skipped {
                            place: Some(place),
                            what: address.clone(),
                            reason: reason.clone(),
                        },
                    ));
                    continue;
                }
            };
            for (address, attrs) in list {
                let values = r
                    .attrs
                    .iter()
                    .filter_map(|a| {
                        let v = attrs.get(&a.key)?.clone().map_err(|reason| Skipped {
                            place: Some(a.place.clone()),
                            what: format!("{address}: {}", a.key),
                            reason,
                        });
                        Some((a.key.clone(), v))
                    })
                    .collect();
                out.instances.push(Instance {
                    kind: r.kind.clone(),
                    address,
                    place: r.place.clone(),
                    values,
                });
            }
        }
        out
    }
}

/// `TYPE.NAME["key"]`.
fn keyed(address: &str, key: &str) -> String {
    format!("{address}[{key:?}]")
}

/// An instance as other expressions see it: its known attributes, and `id`.
fn object(address: &str, attrs: &Attrs) -> Value {
    let mut map: Map<String, Value> = attrs
        .iter()
        .filter_map(|(k, v)| v.as_ref().ok().map(|v| (k.clone(), v.clone())))
        .collect();
    map.entry("id".to_string())
        .or_insert_with(|| token(address));
    Value::Object(map)
}
