//! The keys of a pipeline that only the daemon reads: the window and jitter of its ticks, its
//! limits on waiting and parallel runs, and the pipelines it starts.

use std::time::Duration;

use chrono::NaiveTime;

use crate::reader::{self, Cx, Table};

pub(crate) const KEYS: &[&str] = &[
    "jitter",
    "between",
    "queue_limit",
    "max_concurrent",
    "catchup_limit",
    "retry_interrupted",
    "on_success",
    "on_failure",
];

pub(crate) struct DaemonKeys {
    pub jitter: Option<Duration>,
    pub between: Option<(NaiveTime, NaiveTime)>,
    pub queue_limit: u32,
    pub max_concurrent: u32,
    pub catchup_limit: u32,
    pub retry_interrupted: bool,
    pub on_success: Vec<(String, std::ops::Range<usize>)>,
    pub on_failure: Vec<(String, std::ops::Range<usize>)>,
}

pub(crate) fn read(cx: &mut Cx, t: Table) -> DaemonKeys {
    let count = |cx: &mut Cx, key: &str, default: u32| {
        t.get(key)
            .and_then(|v| reader::integer(cx, key, v, 1..100_001))
            .map_or(default, |n| u32::try_from(n).unwrap_or(default))
    };
    let names = |cx: &mut Cx, key: &str| {
        t.get(key)
            .map(|v| reader::text_list(cx, key, v))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, span)| (name.expose().to_owned(), span))
            .collect()
    };
    DaemonKeys {
        jitter: t.get("jitter").and_then(|v| reader::duration(cx, "jitter", v)),
        between: t.get("between").and_then(|v| {
            let text = reader::text(cx, "between", v)?;
            match parse_window(text.expose()) {
                Ok(w) => Some(w),
                Err(why) => {
                    cx.error(
                        v.span(),
                        format!("`between` is not a daily window: {why}"),
                        Some("write it as \"HH:MM-HH:MM\" in the pipeline's time zone, e.g. \"06:30-20:00\" (\"22:00-06:00\" wraps midnight)".into()),
                    );
                    None
                }
            }
        }),
        queue_limit: count(cx, "queue_limit", 1),
        max_concurrent: count(cx, "max_concurrent", 1),
        catchup_limit: count(cx, "catchup_limit", 10),
        retry_interrupted: t
            .get("retry_interrupted")
            .and_then(|v| reader::boolean(cx, "retry_interrupted", v))
            .unwrap_or(false),
        on_success: names(cx, "on_success"),
        on_failure: names(cx, "on_failure"),
    }
}

fn parse_window(text: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}` has no `-`"))?;
    let time = |s: &str| {
        NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map_err(|_| format!("`{}` is not a time like 06:30", s.trim()))
    };
    let (start, end) = (time(a)?, time(b)?);
    if start == end {
        return Err("the window starts where it ends".into());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_may_wrap() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert_eq!(parse_window("06:30-20:00"), Ok((t(6, 30), t(20, 0))));
        assert_eq!(parse_window("22:00 - 06:00"), Ok((t(22, 0), t(6, 0))));
        assert!(parse_window("6h-20h").is_err());
        assert!(parse_window("08:00-08:00").is_err());
    }
}
