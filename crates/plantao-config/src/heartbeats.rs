//! `[[heartbeats]]` and `[pings]` in plantao.toml: the jobs plantao watches but does not run,
//! and how their pings are taken.

use std::ops::Range;
use std::time::Duration;

use chrono_tz::Tz;
use plantao_model::Text;

use crate::cron::parse_cron;
use crate::reader::{self, Cx, Table, Value};
use crate::types::{Expected, Heartbeat, Pings, SelfHeartbeat, Sla};
use crate::{alerts, checks, tz};

pub(crate) const KEYS: &[&str] = &[
    "name",
    "description",
    "period",
    "schedule",
    "timezone",
    "grace",
    "start_deadline",
    "max_duration",
    "min_duration",
    "min_interval",
    "depends_on",
    "tags",
    "ping_key",
    "sla",
    "max_pings_per_minute",
];
pub(crate) const SLA_KEYS: &[&str] = &["uptime", "p95_ms", "window"];
/// The windows an SLA may be told over.
pub(crate) const SLA_WINDOWS: &[&str] = &["24h", "7d", "30d", "365d"];
pub(crate) const PINGS_KEYS: &[&str] = &["key", "body_limit"];
pub(crate) const SELF_KEYS: &[&str] = &["url", "period", "timeout"];
/// As healthchecks.io: a job is down an hour after it was due, unless `grace` says otherwise.
const DEFAULT_GRACE: Duration = Duration::from_secs(3600);
const DEFAULT_BODY_LIMIT: usize = 100 * 1024;

/// `[[heartbeats]]`.
pub(crate) fn read(cx: &mut Cx, v: &Value, zone: Tz) -> checks::Read<Heartbeat> {
    checks::read(
        cx,
        v,
        "heartbeats",
        KEYS,
        |h: &Heartbeat| &h.name,
        |cx, t, depends| {
            let name = alerts::required_name(cx, t, "[[heartbeats]]")?;
            read_one(cx, t, zone, depends, name)
        },
    )
}

/// A pipeline file with `kind = "external"`: a heartbeat written as a pipeline of its own,
/// with `[[heartbeats]]`' keys, named after its file unless `name` says otherwise, and the
/// `[[alerts]]` that watch it.
pub(crate) struct External {
    pub heartbeat: Heartbeat,
    /// Where its name is written (the whole file when it comes from the file's name).
    pub span: Range<usize>,
    pub rules: Vec<alerts::RuleRead>,
    /// The rules its `depends_on` and its rules' name, where they are written.
    pub depends: Vec<(String, Range<usize>)>,
}

/// What a file of kind `external` may hold beside `[[heartbeats]]`' keys.
pub(crate) const EXTERNAL_KEYS: &[&str] = &["kind", "alerts"];

pub(crate) fn read_external(
    cx: &mut Cx,
    t: Table,
    zone: Tz,
    names: &alerts::Names,
) -> Option<External> {
    let keys: Vec<&str> = KEYS.iter().chain(EXTERNAL_KEYS).copied().collect();
    t.check_keys(cx, "in an external pipeline", &keys);
    let (name, span) = match t.get("name") {
        Some(v) => (
            alerts::required_name(cx, t, "an external pipeline")?,
            v.span(),
        ),
        None => {
            let stem = cx
                .source
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !alerts::allowed_name(&stem) {
                cx.error(
                    0..0,
                    format!("`{stem}` is not allowed as a heartbeat's name"),
                    Some("use letters, digits, `-` and `_` (it appears in ping URLs): rename the file or set name = \"…\"".into()),
                );
                return None;
            }
            (stem, t.span())
        }
    };
    let own = alerts::names_list(cx, t, "depends_on");
    let heartbeat = read_one(cx, t, zone, &own, name)?;
    let home = alerts::Home {
        pipeline: &heartbeat.name,
        names: std::collections::BTreeSet::new(),
        heartbeat: true,
    };
    let mut rules = t
        .get("alerts")
        .map(|v| alerts::read_rules(cx, v, names, Some(&home)))
        .unwrap_or_default();
    rules.retain_mut(|r| {
        let crate::Condition::Heartbeat { check, .. } = &mut r.rule.condition else {
            return true;
        };
        if let Some(span) = r.check_span.clone() {
            cx.error(
                span,
                format!(
                    "rule `{}` in an external pipeline's file watches that heartbeat (`{}`)",
                    r.rule.name, heartbeat.name
                ),
                Some("remove `check`, or move the rule to plantao.toml".into()),
            );
            return false;
        }
        *check = Some(heartbeat.name.clone());
        // A heartbeat rule watches its check, not a pipeline.
        r.rule.pipeline = None;
        true
    });
    let depends = own
        .into_iter()
        .chain(rules.iter().flat_map(|r| r.depends.clone()))
        .collect();
    Some(External {
        heartbeat,
        span,
        rules,
        depends,
    })
}

fn read_one(
    cx: &mut Cx,
    t: Table,
    zone: Tz,
    depends: &[(String, Range<usize>)],
    name: String,
) -> Option<Heartbeat> {
    let place = format!("heartbeat `{name}`");
    let expect = match (t.get("period"), t.get("schedule")) {
        (Some(p), None) => Expected::Period(positive(cx, "period", p)?),
        (None, Some(s)) => {
            let text = reader::text(cx, "schedule", s)?;
            match parse_cron(text.expose()) {
                Ok(c) => Expected::Schedule(Box::new(c)),
                Err(why) => {
                    cx.error(
                        s.span(),
                        format!(
                            "invalid schedule: {}",
                            reader::secret_safe(&text, "cron schedule", why)
                        ),
                        Some("one cron string, e.g. \"0 3 * * *\" (03:00 every day)".into()),
                    );
                    return None;
                }
            }
        }
        (Some(_), Some(s)) => {
            cx.error(
                s.span(),
                format!("{place} has both `period` and `schedule`"),
                Some("keep one: period = \"1h\" (within an hour of the last success) or schedule = \"0 3 * * *\"".into()),
            );
            return None;
        }
        (None, None) => {
            cx.error(
                t.span(),
                format!("{place} says neither when it is expected (`period`) nor on which schedule (`schedule`)"),
                Some("add period = \"1h\" or schedule = \"0 3 * * *\"".into()),
            );
            return None;
        }
    };
    let timezone = tz::read_zone(cx, t, zone)?;
    let optional = |cx: &mut Cx, key: &str| t.get(key).and_then(|v| positive(cx, key, v));
    let grace = optional(cx, "grace").unwrap_or(DEFAULT_GRACE);
    let start_deadline = optional(cx, "start_deadline");
    let max_duration = optional(cx, "max_duration");
    let min_duration = optional(cx, "min_duration");
    let min_interval = optional(cx, "min_interval");
    if let (Some(min), Some(max), Some(v)) = (min_duration, max_duration, t.get("min_duration"))
        && min >= max
    {
        cx.error(
            v.span(),
            format!("{place}: `min_duration` must be shorter than `max_duration`"),
            Some("a run between the two is normal; make min_duration the shorter".into()),
        );
    }
    let ping_key = match t.get("ping_key") {
        Some(v) => Some(ping_key(cx, "ping_key", v)?),
        None => None,
    };
    let description = checks::description(cx, t);
    let tags = checks::tags(cx, t);
    Some(Heartbeat {
        definition_hash: checks::definition_hash(cx, t),
        name,
        description,
        expect,
        timezone,
        grace,
        start_deadline,
        max_duration,
        min_duration,
        min_interval,
        depends_on: depends.iter().map(|(n, _)| n.clone()).collect(),
        tags,
        ping_key,
        sla: t.get("sla").and_then(|v| read_sla(cx, v)),
        max_pings_per_minute: t
            .get("max_pings_per_minute")
            .and_then(|v| reader::integer(cx, "max_pings_per_minute", v, 1..1_000_001))
            .and_then(|n| u32::try_from(n).ok()),
    })
}

/// `sla = { uptime = 99.9, p95_ms = 200, window = "30d" }`.
pub(crate) fn read_sla(cx: &mut Cx, v: &Value) -> Option<Sla> {
    let t = reader::table(cx, "sla", v)?;
    t.check_keys(cx, "in `sla`", SLA_KEYS);
    let uptime = t
        .get("uptime")
        .and_then(|u| reader::number(cx, "uptime", u));
    if let (Some(u), Some(v)) = (uptime, t.get("uptime"))
        && !(0.0..=100.0).contains(&u)
    {
        cx.error(
            v.span(),
            format!("`uptime` is a percentage, found {u}"),
            Some("e.g. uptime = 99.9".into()),
        );
        return None;
    }
    let p95_ms = t
        .get("p95_ms")
        .and_then(|p| reader::number(cx, "p95_ms", p));
    if uptime.is_none() && p95_ms.is_none() {
        cx.error(
            t.span(),
            "`sla` promises nothing",
            Some("give uptime = 99.9 (percent) or p95_ms = 200, or both".into()),
        );
        return None;
    }
    let window = match t.get("window") {
        Some(w) => {
            let text = reader::text(cx, "window", w)?.expose().to_owned();
            if !SLA_WINDOWS.contains(&text.as_str()) {
                alerts::unknown(cx, w, "SLA window", &text, SLA_WINDOWS);
                return None;
            }
            text
        }
        None => "30d".to_owned(),
    };
    Some(Sla {
        uptime,
        p95_ms,
        window,
    })
}

fn positive(cx: &mut Cx, key: &str, v: &Value) -> Option<Duration> {
    let d = reader::duration(cx, key, v)?;
    if d < Duration::from_secs(1) {
        cx.error(
            v.span(),
            format!("`{key}` must be at least 1s"),
            Some(format!("e.g. {key} = \"5m\"")),
        );
        return None;
    }
    Some(d)
}

/// `[pings]`.
pub(crate) fn read_pings(cx: &mut Cx, t: Table) -> Pings {
    t.check_keys(cx, "in [pings]", PINGS_KEYS);
    let mut pings = Pings::default();
    if let Some(v) = t.get("key") {
        pings.key = ping_key(cx, "key", v);
    }
    if let Some(n) = t
        .get("body_limit")
        .and_then(|v| reader::integer(cx, "body_limit", v, 0..10_000_001))
    {
        pings.body_limit = usize::try_from(n).unwrap_or(DEFAULT_BODY_LIMIT);
    }
    pings
}

/// `[self_heartbeat]`.
pub(crate) fn read_self(cx: &mut Cx, t: Table) -> Option<SelfHeartbeat> {
    t.check_keys(cx, "in [self_heartbeat]", SELF_KEYS);
    let v = alerts::required(
        cx,
        t,
        "url",
        "[self_heartbeat]",
        "\"https://hc-ping.com/…\"",
    )?;
    let url = reader::text(cx, "url", v)?;
    if !(url.expose().starts_with("http://") || url.expose().starts_with("https://")) {
        cx.error(
            v.span(),
            "`url` in [self_heartbeat] must start with http:// or https://",
            Some("the URL of a dead-man's switch, e.g. url = \"${env:SELF_PING_URL}\"".into()),
        );
        return None;
    }
    let period = t
        .get("period")
        .and_then(|v| positive(cx, "period", v))
        .unwrap_or(Duration::from_secs(60));
    let timeout = t
        .get("timeout")
        .and_then(|v| positive(cx, "timeout", v))
        .unwrap_or(Duration::from_secs(10));
    Some(SelfHeartbeat {
        url,
        period,
        timeout,
    })
}

impl Default for Pings {
    fn default() -> Pings {
        Pings {
            key: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// A ping key: at least 16 characters of a URL's path segment (letters, digits, `-`, `_`),
/// hard to guess.
fn ping_key(cx: &mut Cx, key: &str, v: &Value) -> Option<Text> {
    let text = reader::text(cx, key, v)?;
    let value = text.expose();
    let ok = value.len() >= 16
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        let shown = if text.is_secret() {
            format!("the value of {}", text.shown())
        } else {
            format!("`{value}`")
        };
        cx.error(
            v.span(),
            format!("{shown} is not a usable ping key: it must be at least 16 letters, digits, `-` or `_`"),
            Some("make one with `openssl rand -hex 16`, keep it in the environment: key = \"${env:PLANTAO_PING_KEY}\"".into()),
        );
        return None;
    }
    Some(text)
}
