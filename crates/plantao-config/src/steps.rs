//! `[[steps]]` and `[[finally]]` of a pipeline file.

use std::path::Path;
use std::time::Duration;

use plantao_model::Expr;

use crate::reader::{self, Cx, Table, Value};
use crate::types::{Action, Backoff, HttpStep, SqlStep, Step};
use crate::{Connections, expr_span, suggest};

pub(crate) const STEP_KEYS: &[&str] = &[
    "name",
    "run",
    "argv",
    "http",
    "sql",
    "needs",
    "timeout",
    "retries",
    "retry_backoff",
    "continue_on_error",
    "env",
    "working_dir",
];
const ACTIONS: &[&str] = &["run", "argv", "http", "sql"];
pub(crate) const HTTP_KEYS: &[&str] = &["method", "url", "headers", "body", "timeout", "expect"];
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const HTTP_EXPECT_NAMES: &[&str] = &["status", "duration_ms", "json", "body", "headers"];
pub(crate) const SQL_KEYS: &[&str] = &["connection", "query"];
pub(crate) const BACKOFF_KEYS: &[&str] = &["initial", "factor", "max"];

/// Reads an array of step tables; `list` names it (`steps` or `finally`) in messages. The names
/// of steps that have mistakes go to `broken`, so that other checks do not report them again
/// as missing.
pub(crate) fn read_steps(
    cx: &mut Cx,
    list: &str,
    v: &Value,
    dir: &Path,
    connections: &Connections,
    broken: &mut Vec<String>,
) -> Vec<(Step, std::ops::Range<usize>)> {
    let Some(items) = reader::array(cx, list, v) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let place = format!("{list}[{i}]");
            let t = reader::table(cx, &place, item)?;
            let step = read_step(cx, &place, t, dir, connections);
            if step.is_none()
                && let Some(name) = t.get("name").and_then(|n| n.get_ref().as_str())
            {
                broken.push(name.to_owned());
            }
            step.map(|s| (s, item.span()))
        })
        .collect()
}

fn read_step(
    cx: &mut Cx,
    place: &str,
    t: Table,
    dir: &Path,
    connections: &Connections,
) -> Option<Step> {
    t.check_keys(cx, &format!("in a step ({place})"), STEP_KEYS);
    let name = match t.get("name") {
        Some(v) => {
            let name = reader::text(cx, "name", v)?.expose().to_owned();
            if !plantao_model::is_identifier(&name) {
                cx.error(
                    v.span(),
                    format!("step name `{name}` is not allowed"),
                    Some(
                        "step names are used in metric expressions and environment variables: \
                         use letters, digits and `_`, starting with a letter (e.g. `sync_primecare`)"
                            .into(),
                    ),
                );
                return None;
            }
            name
        }
        None => {
            cx.error(
                t.span(),
                format!("{place} has no `name`"),
                Some("give every step a name: name = \"sync\"".into()),
            );
            return None;
        }
    };
    let action = read_action(cx, &name, t, connections);
    let needs = t
        .get("needs")
        .map(|v| {
            reader::text_list(cx, "needs", v)
                .into_iter()
                .map(|(n, _)| n.expose().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let timeout = t
        .get("timeout")
        .and_then(|v| reader::duration(cx, "timeout", v));
    let retries = t
        .get("retries")
        .and_then(|v| reader::integer(cx, "retries", v, 0..101))
        .map_or(0, |n| u32::try_from(n).unwrap_or(0));
    let retry_backoff = t
        .get("retry_backoff")
        .and_then(|v| read_backoff(cx, v))
        .unwrap_or_default();
    let continue_on_error = t
        .get("continue_on_error")
        .and_then(|v| reader::boolean(cx, "continue_on_error", v))
        .unwrap_or(false);
    let env = t
        .get("env")
        .map(|v| reader::text_map(cx, "env", v))
        .unwrap_or_default();
    let working_dir = t
        .get("working_dir")
        .and_then(|v| reader::text(cx, "working_dir", v))
        .map(|w| dir.join(w.expose()));
    Some(Step {
        name,
        action: action?,
        needs,
        timeout,
        retries,
        retry_backoff,
        continue_on_error,
        env,
        working_dir,
    })
}

fn read_action(cx: &mut Cx, name: &str, t: Table, connections: &Connections) -> Option<Action> {
    let given: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|k| t.get(k).is_some())
        .collect();
    let key = match given.as_slice() {
        [one] => *one,
        [] => {
            cx.error(
                t.span(),
                format!("step `{name}` has nothing to do"),
                Some("give it exactly one of: run = \"command\", argv = [\"program\", \"arg\"], http = { url = \"…\" }, sql = { connection = \"…\", query = \"…\" }".into()),
            );
            return None;
        }
        many => {
            cx.error(
                t.span(),
                format!(
                    "step `{name}` has {}: a step does exactly one thing",
                    many.join(" and ")
                ),
                Some("split it into several steps, one action each".into()),
            );
            return None;
        }
    };
    let v = t.get(key)?;
    match key {
        "run" => reader::text(cx, "run", v).map(Action::Shell),
        "argv" => {
            let argv = reader::text_list(cx, "argv", v);
            if argv.is_empty() {
                cx.error(
                    v.span(),
                    "`argv` is empty",
                    Some("argv = [\"program\", \"arg\"]".into()),
                );
                return None;
            }
            Some(Action::Argv(argv.into_iter().map(|(t, _)| t).collect()))
        }
        "http" => read_http(cx, v).map(Action::Http),
        _ => read_sql(cx, v, connections).map(Action::Sql),
    }
}

fn read_http(cx: &mut Cx, v: &Value) -> Option<HttpStep> {
    let t = reader::table(cx, "http", v)?;
    t.check_keys(cx, "in `http`", HTTP_KEYS);
    let mut step = read_http_request(cx, t)?;
    step.timeout = t
        .get("timeout")
        .and_then(|d| reader::duration(cx, "timeout", d))
        .unwrap_or(Duration::from_secs(30));
    if let Some(e) = t.get("expect") {
        step.expect = read_expect(cx, e, HTTP_EXPECT_NAMES);
    }
    Some(step)
}

/// An `http` table's request: `method`, `url`, `headers`, `body`; the answer is expected
/// under 400 and given 30 s unless the caller says otherwise.
pub(crate) fn read_http_request(cx: &mut Cx, t: Table) -> Option<HttpStep> {
    let method = match t.get("method") {
        Some(m) => {
            let text = reader::text(cx, "method", m)?.expose().to_ascii_uppercase();
            if !HTTP_METHODS.contains(&text.as_str()) {
                cx.error(
                    m.span(),
                    format!("`{text}` is not an HTTP method"),
                    Some(format!("use one of {}", HTTP_METHODS.join(", "))),
                );
                return None;
            }
            text
        }
        None => "GET".to_owned(),
    };
    let url = match t.get("url") {
        Some(u) => {
            let url = reader::text(cx, "url", u)?;
            let e = url.expose();
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                cx.error(
                    u.span(),
                    format!(
                        "`url` must start with http:// or https://, found `{}`",
                        url.shown()
                    ),
                    None,
                );
                return None;
            }
            url
        }
        None => {
            cx.error(
                t.span(),
                "`http` has no `url`",
                Some("http = { url = \"https://…\" }".into()),
            );
            return None;
        }
    };
    let headers = t
        .get("headers")
        .map(|h| reader::text_map(cx, "headers", h))
        .unwrap_or_default();
    let body = t.get("body").and_then(|b| reader::text(cx, "body", b));
    Some(HttpStep {
        method,
        url,
        headers,
        body,
        timeout: Duration::from_secs(30),
        expect: vec![Expr::parse("status < 400").ok()?],
    })
}

/// Conditions (`expect = ["status == 200"]`), each reading only `names`.
pub(crate) fn read_expect(cx: &mut Cx, v: &Value, names: &[&str]) -> Vec<Expr> {
    let mut expect = Vec::new();
    for (text, span) in reader::text_list(cx, "expect", v) {
        if let Some(expr) = parse_expr(cx, "expect", text.expose(), span, |root| {
            names.contains(&root).then_some(()).ok_or_else(|| {
                let close = suggest::closest(root, names.iter().copied(), 1);
                suggest::did_you_mean(&close)
                    .unwrap_or_else(|| format!("conditions read {}", names.join(", ")))
            })
        }) {
            expect.push(expr);
        }
    }
    expect
}

pub(crate) fn read_sql(cx: &mut Cx, v: &Value, connections: &Connections) -> Option<SqlStep> {
    let t = reader::table(cx, "sql", v)?;
    t.check_keys(cx, "in `sql`", SQL_KEYS);
    let Some(c) = t.get("connection") else {
        cx.error(
            t.span(),
            "`sql` has no `connection`",
            Some("name a connection from [connections] in plantao.toml".into()),
        );
        return None;
    };
    let connection = reader::text(cx, "connection", c)?.expose().to_owned();
    if !connections.contains(&connection) {
        let close = suggest::closest(&connection, connections.iter().map(String::as_str), 1);
        let help = suggest::did_you_mean(&close).unwrap_or_else(|| {
            format!(
                "add it to plantao.toml as [connections.{connection}] with a url, or use one of: {}",
                if connections.is_empty() {
                    "(none defined)".to_owned()
                } else {
                    connections.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            )
        });
        cx.error(
            c.span(),
            format!("unknown connection `{connection}`"),
            Some(help),
        );
        return None;
    }
    let Some(q) = t.get("query") else {
        cx.error(
            t.span(),
            "`sql` has no `query`",
            Some("query = \"select count(*) as n from …\"".into()),
        );
        return None;
    };
    let query = reader::text(cx, "query", q)?;
    Some(SqlStep { connection, query })
}

fn read_backoff(cx: &mut Cx, v: &Value) -> Option<Backoff> {
    let default = Backoff::default();
    if let toml::de::DeValue::String(_) = v.get_ref() {
        let initial = reader::duration(cx, "retry_backoff", v)?;
        return Some(Backoff {
            initial,
            max: default.max.max(initial),
            ..default
        });
    }
    let t = reader::table(cx, "retry_backoff", v)?;
    t.check_keys(cx, "in `retry_backoff`", BACKOFF_KEYS);
    let initial = t
        .get("initial")
        .and_then(|d| reader::duration(cx, "initial", d))
        .unwrap_or(default.initial);
    let max = t
        .get("max")
        .and_then(|d| reader::duration(cx, "max", d))
        .unwrap_or(default.max);
    let factor = match t.get("factor") {
        Some(f) => {
            let x = reader::number(cx, "factor", f)?;
            if !(1.0..=10.0).contains(&x) {
                cx.error(f.span(), "`factor` must be between 1 and 10", None);
                return None;
            }
            x
        }
        None => default.factor,
    };
    if max < initial {
        cx.error(
            t.span(),
            "`max` is shorter than `initial` in `retry_backoff`",
            None,
        );
        return None;
    }
    Some(Backoff {
        initial,
        factor,
        max,
    })
}

/// Parses an expression written as the string at `span`, checking each name it reads with
/// `check_root` (which says what would fix an unknown one).
pub(crate) fn parse_expr(
    cx: &mut Cx,
    key: &str,
    source: &str,
    span: std::ops::Range<usize>,
    check_root: impl Fn(&str) -> Result<(), String>,
) -> Option<Expr> {
    match Expr::parse(source) {
        Ok(expr) => {
            let mut ok = true;
            let mut roots: Vec<String> = expr.references().into_iter().map(|r| r.root).collect();
            roots.dedup();
            for root in roots {
                if let Err(help) = check_root(&root) {
                    cx.error(
                        expr_span(cx, &span, source, &root),
                        format!("`{key}` reads `{root}`, which is not defined here"),
                        Some(help),
                    );
                    ok = false;
                }
            }
            ok.then_some(expr)
        }
        Err(e) => {
            let caret = format!("{}\n  {:>width$}", source, "^", width = e.column);
            cx.error(
                crate::expr_column_span(cx, &span, source, e.column),
                format!("`{key}` does not parse: {}", e.message),
                Some(format!("the expression, and where it breaks:\n  {caret}")),
            );
            None
        }
    }
}
