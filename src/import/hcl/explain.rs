//! Why an expression cannot be evaluated, in the user's terms: the first reference in
//! it that cannot be followed (a data source, a module output, a variable without a
//! default, an attribute the provider computes, ...).

use hcl::eval::{Context, Evaluate};
use hcl::expr::{Operation, Traversal, TraversalOperator};
use hcl::{Expression, ObjectKey, Template};

use super::eval::State;
use super::Module;

/// The reason `expr` fails, from its first reference that cannot be followed; None
/// when every reference can (then the evaluator's own message is used).
pub(crate) fn why(
    expr: &Expression,
    ctx: &Context,
    module: &Module,
    state: &State,
) -> Option<String> {
    let mut refs = Vec::new();
    collect(expr, &mut refs);
    refs.into_iter()
        .find_map(|(root, ops)| first_break(&root, &ops, ctx, module, state))
}

/// Every reference (root variable and the operators after it) in `expr`.
fn collect(expr: &Expression, out: &mut Vec<(String, Vec<TraversalOperator>)>) {
    match expr {
        Expression::Variable(v) => out.push((v.as_str().to_string(), Vec::new())),
        Expression::Traversal(t) => collect_traversal(t, out),
        Expression::Array(items) => items.iter().for_each(|e| collect(e, out)),
        Expression::Object(obj) => {
            for (k, v) in obj {
                if let ObjectKey::Expression(k) = k {
                    collect(k, out);
                }
                collect(v, out);
            }
        }
        Expression::TemplateExpr(t) => {
            if let Ok(template) = Template::from_expr(t) {
                for element in template.elements() {
                    if let hcl::template::Element::Interpolation(i) = element {
                        collect(&i.expr, out);
                    }
                }
            }
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|e| collect(e, out)),
        Expression::Parenthesis(e) => collect(e, out),
        Expression::Conditional(c) => {
            collect(&c.cond_expr, out);
            collect(&c.true_expr, out);
            collect(&c.false_expr, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => collect(&u.expr, out),
            Operation::Binary(b) => {
                collect(&b.lhs_expr, out);
                collect(&b.rhs_expr, out);
            }
        },
        // Only the collection: the loop's own variables are not in this context.
        Expression::ForExpr(f) => collect(&f.collection_expr, out),
        _ => {}
    }
}

fn collect_traversal(t: &Traversal, out: &mut Vec<(String, Vec<TraversalOperator>)>) {
    for op in &t.operators {
        if let TraversalOperator::Index(i) = op {
            collect(i, out);
        }
    }
    match &t.expr {
        Expression::Variable(v) => out.push((v.as_str().to_string(), t.operators.clone())),
        other => collect(other, out),
    }
}

/// Follows `root` and its operators one step at a time; at the first step that fails,
/// says why.
fn first_break(
    root: &str,
    ops: &[TraversalOperator],
    ctx: &Context,
    module: &Module,
    state: &State,
) -> Option<String> {
    let expr_of = |n: usize| -> Expression {
        let var = Expression::Variable(hcl::Identifier::sanitized(root).into());
        if n == 0 {
            var
        } else {
            Expression::Traversal(Box::new(Traversal::new(var, ops[..n].to_vec())))
        }
    };
    let step = (0..=ops.len()).find(|n| expr_of(*n).evaluate(ctx).is_err())?;
    let text = expr_of(ops.len()).to_string();
    let attr = |n: usize| match ops.get(n) {
        Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_string()),
        _ => None,
    };
    Some(match (root, step) {
        ("data", _) => format!("`{text}` is a data source, read only when terraform runs"),
        ("module", _) => format!("`{text}` is a module's output; modules are not evaluated"),
        ("var", 1) => {
            let name = attr(0).unwrap_or_default();
            match module.variables.get(&name) {
                None => format!("variable `{name}` is not declared"),
                Some(v) if v.default.is_none() => format!(
                    "`var.{name}` has no default: its value comes from outside the code (tfvars, TF_VAR_{name}, the platform)"
                ),
                Some(_) => match state.var_errors.get(&name) {
                    Some(e) => format!("the default of `var.{name}` cannot be evaluated: {e}"),
                    None => format!("`{text}` cannot be evaluated"),
                },
            }
        }
        ("local", 1) => {
            let name = attr(0).unwrap_or_default();
            match state.locals.get(&name) {
                Some(Err(reason)) => format!("`local.{name}`: {reason}"),
                _ => format!("local `{name}` is not defined"),
            }
        }
        ("each", _) | ("count", _) | ("self", _) | ("path", _) | ("terraform", _) => {
            format!("`{text}` cannot be evaluated here")
        }
        (kind, 0) => match attr(0) {
            Some(name) => format!("no resource `{kind}.{name}` is defined in this code"),
            None => format!("`{kind}` is not known here"),
        },
        (kind, 1) => {
            let name = attr(0).unwrap_or_default();
            match module
                .resources
                .iter()
                .position(|r| r.kind == kind && r.name == name)
            {
                None => format!("no resource `{kind}.{name}` is defined in this code"),
                Some(i) => match state.resources.get(i) {
                    Some(Err(reason)) => format!("`{kind}.{name}`: {reason}"),
                    _ => format!("`{text}` cannot be evaluated"),
                },
            }
        }
        (kind, n) => {
            let name = attr(0).unwrap_or_default();
            let resource = module
                .resources
                .iter()
                .zip(&state.resources)
                .find(|(r, _)| r.kind == kind && r.name == name);
            let failed = ops.get(n - 1);
            match (resource, failed) {
                (Some((r, _)), Some(TraversalOperator::GetAttr(a))) => {
                    let a = a.as_str();
                    match r.attrs.iter().find(|x| x.key == a) {
                        Some(_) => match attribute_reason(state, module, kind, &name, a) {
                            Some(reason) => format!("`{kind}.{name}.{a}`: {reason}"),
                            None => format!("`{text}` cannot be evaluated"),
                        },
                        None => format!(
                            "`{kind}.{name}.{a}` is computed by the provider: known only after terraform applies"
                        ),
                    }
                }
                (
                    Some(_),
                    Some(TraversalOperator::Index(_) | TraversalOperator::LegacyIndex(_)),
                ) => {
                    format!("`{text}`: no instance of `{kind}.{name}` with that key")
                }
                _ => format!("`{text}` cannot be evaluated"),
            }
        }
    })
}

/// Why an attribute of a resource is unknown (from its first instance that failed).
fn attribute_reason(
    state: &State,
    module: &Module,
    kind: &str,
    name: &str,
    attr: &str,
) -> Option<String> {
    use super::eval::Instances;
    let i = module
        .resources
        .iter()
        .position(|r| r.kind == kind && r.name == name)?;
    let instances = state.resources.get(i)?.as_ref().ok()?;
    let all: Vec<&std::collections::BTreeMap<String, super::eval::Outcome>> = match instances {
        Instances::Single(a) => vec![a],
        Instances::Keyed(l) => l.iter().map(|(_, a)| a).collect(),
        Instances::Counted(l) => l.iter().collect(),
    };
    all.into_iter()
        .find_map(|a| a.get(attr).and_then(|v| v.as_ref().err().cloned()))
}
