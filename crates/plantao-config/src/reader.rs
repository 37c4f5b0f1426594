//! Reading typed values out of a parsed TOML tree, recording a diagnostic for every mistake and
//! carrying on, so that one pass reports every problem in a file.

use std::ops::Range;
use std::time::Duration;

use plantao_model::{Redactor, Text};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostic, Source};
use crate::duration::parse_duration;
use crate::env::{EnvError, interpolate};
use crate::suggest;

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// What reading one file needs: where it is, where problems go, how to read the environment.
pub(crate) struct Cx<'s> {
    pub source: &'s Source,
    pub diags: &'s mut Vec<Diagnostic>,
    pub env: &'s dyn Fn(&str) -> Option<String>,
    pub redactor: &'s mut Redactor,
}

impl Cx<'_> {
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        let d = self.source.diagnostic(span, message.into(), help);
        self.diags.push(d);
    }
}

/// A TOML table with the span it was written at.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a, 'i> {
    pub table: &'a DeTable<'i>,
    pub span: (usize, usize),
}

impl<'a, 'i> Table<'a, 'i> {
    pub fn new(table: &'a DeTable<'i>, span: Range<usize>) -> Self {
        Table {
            table,
            span: (span.start, span.end),
        }
    }

    pub fn span(&self) -> Range<usize> {
        self.span.0..self.span.1
    }

    pub fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table.get(key)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&'a str, Range<usize>, &'a Value<'i>)> {
        self.table
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
    }

    /// Reports every key not in `known`, with the closest known key as a suggestion.
    pub fn check_keys(&self, cx: &mut Cx, place: &str, known: &[&str]) {
        for (key, span, _) in self.entries() {
            if !known.contains(&key) {
                let close = suggest::closest(key, known.iter().copied(), 1);
                let help = suggest::did_you_mean(&close).or_else(|| {
                    Some(format!(
                        "the keys allowed {place} are: {}",
                        known.join(", ")
                    ))
                });
                cx.error(span, format!("unknown key `{key}` {place}"), help);
            }
        }
    }
}

fn found(v: &DeValue) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(crate) fn wrong_type(cx: &mut Cx, key: &str, v: &Value, expected: &str, example: &str) {
    cx.error(
        v.span(),
        format!("`{key}` must be {expected}, found {}", found(v.get_ref())),
        Some(format!("write it like: {key} = {example}")),
    );
}

/// A string, with `${env:…}` resolved; values from the environment become secrets.
pub(crate) fn text(cx: &mut Cx, key: &str, v: &Value) -> Option<Text> {
    let DeValue::String(raw) = v.get_ref() else {
        wrong_type(cx, key, v, "a string", "\"…\"");
        return None;
    };
    match interpolate(raw, cx.env) {
        Ok((value, false)) => Some(Text::plain(value)),
        Ok((value, true)) => {
            cx.redactor.add(&value);
            Some(Text::from_env(raw.as_ref(), value))
        }
        Err(EnvError::Missing(name)) => {
            cx.error(
                v.span(),
                format!("environment variable `{name}` is not set (used by `{key}`)"),
                Some(format!(
                    "set {name} before starting plantao, or give a default: ${{env:{name}:-value}}"
                )),
            );
            None
        }
        Err(EnvError::BadName(name)) => {
            cx.error(
                v.span(),
                format!("`{name}` is not an environment variable name (in `{key}`)"),
                Some("names are letters, digits and `_`, not starting with a digit".into()),
            );
            None
        }
        Err(EnvError::Unclosed) => {
            cx.error(
                v.span(),
                format!("`${{env:` without its closing `}}` in `{key}`"),
                Some("write ${env:NAME} or ${env:NAME:-default}".into()),
            );
            None
        }
    }
}

/// The reason a value is wrong, unless the value is a secret: then only its template is shown.
pub(crate) fn secret_safe(t: &Text, what: &str, why: String) -> String {
    if t.is_secret() {
        format!(
            "`{}` (from the environment) is not a valid {what}",
            t.shown()
        )
    } else {
        why
    }
}

pub(crate) fn boolean(cx: &mut Cx, key: &str, v: &Value) -> Option<bool> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            wrong_type(cx, key, v, "true or false", "true");
            None
        }
    }
}

/// A whole number within `range`.
pub(crate) fn integer(cx: &mut Cx, key: &str, v: &Value, range: Range<i64>) -> Option<i64> {
    let DeValue::Integer(i) = v.get_ref() else {
        wrong_type(
            cx,
            key,
            v,
            "a whole number",
            &range.start.max(1).to_string(),
        );
        return None;
    };
    let digits = i.as_str().replace('_', "");
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(d) => (true, d.to_owned()),
        None => (false, digits.trim_start_matches('+').to_owned()),
    };
    let magnitude = i64::from_str_radix(&digits, i.radix()).ok();
    match magnitude.map(|m| if negative { -m } else { m }) {
        Some(n) if range.contains(&n) => Some(n),
        _ => {
            cx.error(
                v.span(),
                format!(
                    "`{key}` must be between {} and {}",
                    range.start,
                    range.end - 1
                ),
                None,
            );
            None
        }
    }
}

/// A number, integer or float.
pub(crate) fn number(cx: &mut Cx, key: &str, v: &Value) -> Option<f64> {
    let parsed = match v.get_ref() {
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().replace('_', "").parse().ok(),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    };
    if parsed.is_none() {
        wrong_type(cx, key, v, "a number", "70");
    }
    parsed
}

pub(crate) fn duration(cx: &mut Cx, key: &str, v: &Value) -> Option<Duration> {
    let t = text(cx, key, v)?;
    match parse_duration(t.expose()) {
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            cx.error(v.span(), format!("`{key}` must be longer than zero"), None);
            None
        }
        Err(why) => {
            cx.error(
                v.span(),
                format!(
                    "`{key}` is not a valid duration: {}",
                    secret_safe(&t, "duration", why)
                ),
                Some(
                    "use whole numbers with units ms, s, m, h, d, e.g. \"90s\", \"5m\", \"1h30m\""
                        .into(),
                ),
            );
            None
        }
    }
}

pub(crate) fn table<'a, 'i>(cx: &mut Cx, key: &str, v: &'a Value<'i>) -> Option<Table<'a, 'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(Table::new(t, v.span())),
        _ => {
            wrong_type(cx, key, v, "a table", "{ … }");
            None
        }
    }
}

pub(crate) fn array<'a, 'i>(cx: &mut Cx, key: &str, v: &'a Value<'i>) -> Option<&'a [Value<'i>]> {
    match v.get_ref() {
        DeValue::Array(a) => Some(a.as_ref()),
        _ => {
            wrong_type(cx, key, v, "an array", "[ … ]");
            None
        }
    }
}

/// A list of strings; a single string is taken as a list of one.
pub(crate) fn text_list(cx: &mut Cx, key: &str, v: &Value) -> Vec<(Text, Range<usize>)> {
    match v.get_ref() {
        DeValue::String(_) => text(cx, key, v)
            .map(|t| (t, v.span()))
            .into_iter()
            .collect(),
        DeValue::Array(items) => items
            .iter()
            .filter_map(|item| text(cx, key, item).map(|t| (t, item.span())))
            .collect(),
        _ => {
            wrong_type(cx, key, v, "a string or an array of strings", "[\"…\"]");
            Vec::new()
        }
    }
}

/// A table of strings (environment, headers), in file order.
pub(crate) fn text_map(cx: &mut Cx, key: &str, v: &Value) -> Vec<(String, Text)> {
    let Some(t) = table(cx, key, v) else {
        return Vec::new();
    };
    t.entries()
        .filter_map(|(name, _, value)| {
            let shown = format!("{key}.{name}");
            text(cx, &shown, value).map(|text| (name.to_owned(), text))
        })
        .collect()
}
