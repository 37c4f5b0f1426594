//! `[[maintenance]]` windows in plantao.toml.

use std::ops::Range;

use chrono::{DateTime, Utc};
use toml::de::DeValue;

use crate::reader::{self, Cx, Value};
use crate::types::Maintenance;

pub(crate) const KEYS: &[&str] = &["start", "end", "pipelines", "reason"];

/// The windows; the pipeline names they give go to `refs`, to be checked once pipelines are known.
pub(crate) fn read(
    cx: &mut Cx,
    v: &Value,
    refs: &mut Vec<(String, Range<usize>)>,
) -> Vec<Maintenance> {
    let Some(items) = reader::array(cx, "maintenance", v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(t) = reader::table(cx, "[[maintenance]]", item) else {
            continue;
        };
        t.check_keys(cx, "in [[maintenance]]", KEYS);
        let start = instant(cx, "start", t.get("start"), t.span());
        let end = instant(cx, "end", t.get("end"), t.span());
        let pipelines: Vec<(String, Range<usize>)> = t
            .get("pipelines")
            .map(|p| reader::text_list(cx, "pipelines", p))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, span)| (name.expose().to_owned(), span))
            .collect();
        let reason = t
            .get("reason")
            .and_then(|r| reader::text(cx, "reason", r))
            .map(|r| r.expose().to_owned());
        let (Some(start), Some(end)) = (start, end) else {
            continue;
        };
        if end <= start {
            cx.error(
                t.span(),
                "a maintenance window ends before it starts",
                Some("swap `start` and `end`".into()),
            );
            continue;
        }
        refs.extend(pipelines.iter().cloned());
        out.push(Maintenance {
            start,
            end,
            pipelines: pipelines.into_iter().map(|(n, _)| n).collect(),
            reason,
        });
    }
    out
}

fn instant(
    cx: &mut Cx,
    key: &str,
    v: Option<&Value>,
    table: Range<usize>,
) -> Option<DateTime<Utc>> {
    let Some(v) = v else {
        cx.error(
            table,
            format!("[[maintenance]] has no `{key}`"),
            Some(format!("{key} = 2026-12-24T18:00:00-03:00")),
        );
        return None;
    };
    let text = match v.get_ref() {
        DeValue::Datetime(d) => d.to_string(),
        DeValue::String(s) => s.to_string(),
        _ => {
            reader::wrong_type(
                cx,
                key,
                v,
                "a date and time with its offset",
                "2026-12-24T18:00:00-03:00",
            );
            return None;
        }
    };
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            cx.error(
                v.span(),
                format!("`{key}` = {text} is not a date and time with its offset"),
                Some(format!(
                    "write the zone offset too: {key} = 2026-12-24T18:00:00-03:00"
                )),
            );
            None
        }
    }
}
