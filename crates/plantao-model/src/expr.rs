//! The one way plantao evaluates user expressions (derived metrics, alert conditions, probe
//! expectations): CEL, through the `cel` crate, with two changes users of a metrics tool expect.
//!
//! - Numbers are floating-point: every integer literal is read as a double, so `7 / 10 * 100`
//!   is 70, never CEL's truncating 0.
//! - Division by zero gives null, and null means "no data": an expression that meets null
//!   (no data yet, a missing counter, a division by zero) evaluates to [`ExprValue::NoData`],
//!   never to an error or a crash.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use cel::common::ast::{CallExpr, Expr as Node, LiteralValue};
use cel::objects::{Key, Map};
use cel::{Context, IdedExpr, Program, Value};

/// The function every `/` is rewritten into.
const DIVIDE: &str = "plantao_divide";

/// A parsed expression, ready to evaluate many times.
#[derive(Clone)]
pub struct Expr {
    source: String,
    tree: IdedExpr,
}

/// Why an expression does not parse: `column` counts characters from 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct ExprError {
    pub column: usize,
    pub message: String,
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprValue {
    Number(f64),
    Bool(bool),
    Text(String),
    /// Null: no data, a missing value, or a division by zero.
    NoData,
}

impl ExprValue {
    /// As JSON: the value itself, or null when there is no data.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ExprValue::Number(n) => serde_json::json!(n),
            ExprValue::Bool(b) => serde_json::json!(b),
            ExprValue::Text(t) => serde_json::json!(t),
            ExprValue::NoData => serde_json::Value::Null,
        }
    }
}

/// A name an expression reads: `threshold`, or `process.approved` (root `process`, field
/// `approved`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub root: String,
    pub field: Option<String>,
}

/// The values an expression may read: plain numbers and groups of numbers (a stage's counters).
#[derive(Clone, Debug, Default)]
pub struct Vars {
    values: HashMap<String, Value>,
}

impl Vars {
    pub fn number(&mut self, name: &str, value: f64) -> &mut Self {
        self.values.insert(name.to_owned(), Value::Float(value));
        self
    }

    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.values
            .insert(name.to_owned(), Value::String(Arc::new(value.to_owned())));
        self
    }

    /// Any JSON value: objects become maps, arrays lists, numbers doubles.
    pub fn json(&mut self, name: &str, value: &serde_json::Value) -> &mut Self {
        self.values.insert(name.to_owned(), from_json(value));
        self
    }

    /// Sets `group.key` to `value`, creating the group when needed.
    pub fn member(&mut self, group: &str, key: &str, value: f64) -> &mut Self {
        let entry = self
            .values
            .entry(group.to_owned())
            .or_insert_with(|| Value::Map(Map::from(HashMap::<Key, Value>::new())));
        if let Value::Map(map) = entry {
            Arc::make_mut(&mut map.map).insert(Key::from(key.to_owned()), Value::Float(value));
        } else {
            *entry = Value::Map(Map::from(HashMap::from([(key.to_owned(), value)])));
        }
        self
    }
}

impl Expr {
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        if source.trim().is_empty() {
            return Err(ExprError {
                column: 1,
                message: "the expression is empty".into(),
            });
        }
        let program = Program::compile(source).map_err(|errors| {
            let first = errors.errors.into_iter().next();
            ExprError {
                column: first
                    .as_ref()
                    .map_or(1, |e| usize::try_from(e.pos.1).unwrap_or(0) + 1),
                message: first.map_or_else(|| "does not parse".into(), |e| e.msg),
            }
        })?;
        let mut tree = program.expression().clone();
        rewrite(&mut tree);
        Ok(Expr {
            source: source.to_owned(),
            tree,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every variable the expression reads, sorted, each once.
    pub fn references(&self) -> Vec<Reference> {
        let mut out = Vec::new();
        collect_references(&self.tree, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Evaluates, turning every failure into [`ExprValue::NoData`].
    pub fn eval(&self, vars: &Vars) -> ExprValue {
        self.try_eval(vars).unwrap_or(ExprValue::NoData)
    }

    /// Evaluates, keeping the reason of a failure. Validation uses this with sample values to
    /// find expressions that could never work (a string compared with a number, an unknown
    /// function).
    pub fn try_eval(&self, vars: &Vars) -> Result<ExprValue, String> {
        let mut context = Context::default();
        for (name, value) in &vars.values {
            context.add_variable_from_value(name.clone(), value.clone());
        }
        context
            .add_function(DIVIDE, divide)
            .map_err(|e| e.to_string())?;
        match Value::resolve(&self.tree, &context) {
            Ok(Value::Float(x)) if x.is_finite() => Ok(ExprValue::Number(x)),
            Ok(Value::Float(_)) | Ok(Value::Null) => Ok(ExprValue::NoData),
            Ok(Value::Int(x)) => Ok(ExprValue::Number(x as f64)),
            Ok(Value::UInt(x)) => Ok(ExprValue::Number(x as f64)),
            Ok(Value::Bool(b)) => Ok(ExprValue::Bool(b)),
            Ok(Value::String(s)) => Ok(ExprValue::Text(s.to_string())),
            Ok(other) => Err(format!(
                "gives a {:?}, but only numbers, booleans and strings are supported",
                other.type_of()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn from_json(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n.as_f64().map_or(Value::Null, Value::Float),
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(items) => Value::List(Arc::new(items.iter().map(from_json).collect())),
        J::Object(map) => Value::Map(Map::from(
            map.iter()
                .map(|(k, v)| (Key::from(k.clone()), from_json(v)))
                .collect::<HashMap<Key, Value>>(),
        )),
    }
}

fn divide(a: Value, b: Value) -> Value {
    match (number(&a), number(&b)) {
        (Some(n), Some(d)) if d != 0.0 => Value::Float(n / d),
        _ => Value::Null,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Float(x) => Some(*x),
        Value::Int(x) => Some(*x as f64),
        Value::UInt(x) => Some(*x as f64),
        _ => None,
    }
}

/// Integer literals become doubles; `a / b` becomes a call that gives null for `b == 0`.
fn rewrite(node: &mut IdedExpr) {
    match &mut node.expr {
        Node::Literal(LiteralValue::Int(i)) => {
            let x = *i.inner() as f64;
            node.expr = Node::Literal(LiteralValue::Double(x.into()));
        }
        Node::Literal(LiteralValue::UInt(u)) => {
            let x = *u.inner() as f64;
            node.expr = Node::Literal(LiteralValue::Double(x.into()));
        }
        Node::Call(call) => {
            if let Some(target) = call.target.as_mut() {
                rewrite(target);
            }
            call.args.iter_mut().for_each(rewrite);
            if call.func_name == "_/_" && call.target.is_none() && call.args.len() == 2 {
                *call = CallExpr {
                    func_name: DIVIDE.into(),
                    target: None,
                    args: std::mem::take(&mut call.args),
                };
            }
        }
        Node::List(list) => list.elements.iter_mut().for_each(rewrite),
        Node::Select(select) => rewrite(&mut select.operand),
        Node::Comprehension(c) => {
            rewrite(&mut c.iter_range);
            rewrite(&mut c.accu_init);
            rewrite(&mut c.loop_cond);
            rewrite(&mut c.loop_step);
            rewrite(&mut c.result);
        }
        Node::Map(_) | Node::Struct(_) | Node::Ident(_) | Node::Literal(_) | Node::Unspecified => {}
    }
}

fn collect_references(node: &IdedExpr, out: &mut Vec<Reference>) {
    match &node.expr {
        Node::Ident(name) => out.push(Reference {
            root: name.clone(),
            field: None,
        }),
        Node::Select(select) => match &select.operand.expr {
            Node::Ident(root) => out.push(Reference {
                root: root.clone(),
                field: Some(select.field.clone()),
            }),
            _ => collect_references(&select.operand, out),
        },
        Node::Call(call) => {
            if let Some(target) = &call.target {
                collect_references(target, out);
            }
            call.args.iter().for_each(|a| collect_references(a, out));
        }
        Node::List(list) => list
            .elements
            .iter()
            .for_each(|e| collect_references(e, out)),
        Node::Comprehension(_)
        | Node::Map(_)
        | Node::Struct(_)
        | Node::Literal(_)
        | Node::Unspecified => {}
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, vars: &Vars) -> ExprValue {
        Expr::parse(src).unwrap().eval(vars)
    }

    #[test]
    fn integer_literals_divide_as_numbers() {
        assert_eq!(
            eval("7 / 10 * 100", &Vars::default()),
            ExprValue::Number(70.0)
        );
        assert_eq!(eval("1 + 2u", &Vars::default()), ExprValue::Number(3.0));
    }

    #[test]
    fn approval_rate_from_counters() {
        let mut v = Vars::default();
        v.member("process", "approved", 40.0)
            .member("process", "failed", 10.0);
        let e = "process.approved / (process.approved + process.failed) * 100";
        assert_eq!(eval(e, &v), ExprValue::Number(80.0));
    }

    #[test]
    fn division_by_zero_is_no_data_even_inside_a_comparison() {
        let mut v = Vars::default();
        v.member("s", "a", 0.0).member("s", "b", 0.0);
        assert_eq!(eval("s.a / s.b", &v), ExprValue::NoData);
        assert_eq!(eval("s.a / s.b * 100 < 70", &v), ExprValue::NoData);
        assert_eq!(eval("1 / 0", &Vars::default()), ExprValue::NoData);
    }

    #[test]
    fn missing_values_are_no_data() {
        let v = Vars::default();
        assert_eq!(eval("process.approved > 1", &v), ExprValue::NoData);
        assert_eq!(eval("threshold", &v), ExprValue::NoData);
    }

    #[test]
    fn thresholds_compare_exactly_at_the_boundary() {
        let mut v = Vars::default();
        v.number("rate", 69.9).number("threshold", 70.0);
        assert_eq!(eval("rate < threshold", &v), ExprValue::Bool(true));
        v.number("rate", 70.0);
        assert_eq!(eval("rate < threshold", &v), ExprValue::Bool(false));
    }

    #[test]
    fn parse_errors_say_where() {
        let err = Expr::parse("process.approved / (process.failed").unwrap_err();
        assert!(err.column > 1, "{err:?}");
        assert!(Expr::parse("  ").is_err());
    }

    #[test]
    fn references_list_roots_and_fields_once() {
        let e = Expr::parse("a.x / (a.x + b.y) * 100 < threshold").unwrap();
        let refs: Vec<String> = e
            .references()
            .into_iter()
            .map(|r| match r.field {
                Some(f) => format!("{}.{f}", r.root),
                None => r.root,
            })
            .collect();
        assert_eq!(refs, ["a.x", "b.y", "threshold"]);
    }

    #[test]
    fn json_documents_are_readable() {
        let mut v = Vars::default();
        let doc = serde_json::json!({"status": "ok", "checks": [{"errors": 0}], "latency": 12});
        v.json("json", &doc).number("status", 200.0);
        let t = |src: &str| Expr::parse(src).unwrap().eval(&v);
        assert_eq!(
            t("json.status == 'ok' && status == 200"),
            ExprValue::Bool(true)
        );
        assert_eq!(t("json.checks[0].errors == 0"), ExprValue::Bool(true));
        assert_eq!(t("json.latency / 4"), ExprValue::Number(3.0));
        assert_eq!(t("json.missing == 1"), ExprValue::NoData);
    }

    #[test]
    fn type_errors_surface_in_try_eval() {
        let mut v = Vars::default();
        v.number("x", 1.0);
        assert!(Expr::parse("x + 'a'").unwrap().try_eval(&v).is_err());
        assert_eq!(
            Expr::parse("x == 1").unwrap().try_eval(&v),
            Ok(ExprValue::Bool(true))
        );
    }
}
