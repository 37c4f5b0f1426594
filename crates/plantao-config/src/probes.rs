//! `[[probes]]` in plantao.toml: endpoints, ports, queries and commands checked on an interval.

use std::ops::Range;
use std::time::Duration;

use chrono_tz::Tz;

use crate::reader::{self, Cx, Table, Value};
use crate::steps::{read_expect, read_http_request, read_sql};
use crate::types::{HttpProbe, Probe, ProbeTarget};
use crate::{Connections, alerts, checks};

pub(crate) const KEYS: &[&str] = &[
    "name",
    "description",
    "every",
    "timeout",
    "http",
    "tcp",
    "sql",
    "command",
    "expect",
    "failure_threshold",
    "success_threshold",
    "depends_on",
    "tags",
    "sla",
];
const TARGETS: &[&str] = &["http", "tcp", "sql", "command"];
pub(crate) const HTTP_KEYS: &[&str] = &[
    "method",
    "url",
    "headers",
    "body",
    "verify_tls",
    "follow_redirects",
];
/// An HTTP probe reads what an http step does, and its certificate's days left.
const HTTP_NAMES: &[&str] = &[
    "status",
    "duration_ms",
    "json",
    "body",
    "headers",
    "cert_days_left",
];
const TCP_NAMES: &[&str] = &["duration_ms"];
const SQL_NAMES: &[&str] = &["rows", "duration_ms"];
const COMMAND_NAMES: &[&str] = &["exit_code", "stdout", "duration_ms"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `[[probes]]`.
pub(crate) fn read(
    cx: &mut Cx,
    v: &Value,
    zone: Tz,
    connections: &Connections,
) -> checks::Read<Probe> {
    checks::read(
        cx,
        v,
        "probes",
        KEYS,
        |p: &Probe| &p.name,
        |cx, t, depends| read_one(cx, t, zone, connections, depends),
    )
}

fn read_one(
    cx: &mut Cx,
    t: Table,
    zone: Tz,
    connections: &Connections,
    depends: &[(String, Range<usize>)],
) -> Option<Probe> {
    let name = alerts::required_name(cx, t, "[[probes]]")?;
    let place = format!("probe `{name}`");
    let given: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|k| t.get(k).is_some())
        .collect();
    let kind = match given.as_slice() {
        [one] => *one,
        [] => {
            cx.error(
                t.span(),
                format!("{place} checks nothing"),
                Some("give it one of: http = { url = \"https://…\" }, tcp = \"host:5432\", sql = { connection = \"…\", query = \"select 1\" }, command = \"…\"".into()),
            );
            return None;
        }
        many => {
            cx.error(
                t.span(),
                format!(
                    "{place} has {}: a probe checks one thing",
                    many.join(" and ")
                ),
                Some("make one probe for each".into()),
            );
            return None;
        }
    };
    let v = t.get(kind)?;
    let names = match kind {
        "http" => HTTP_NAMES,
        "tcp" => TCP_NAMES,
        "sql" => SQL_NAMES,
        _ => COMMAND_NAMES,
    };
    let expect = t
        .get("expect")
        .map(|e| read_expect(cx, e, names))
        .unwrap_or_default();
    let timeout = t
        .get("timeout")
        .and_then(|d| at_least_a_second(cx, "timeout", d))
        .unwrap_or(DEFAULT_TIMEOUT);
    let target = match kind {
        "http" => {
            let h = reader::table(cx, "http", v)?;
            h.check_keys(cx, "in a probe's `http`", HTTP_KEYS);
            let mut step = read_http_request(cx, h)?;
            step.timeout = timeout;
            if t.get("expect").is_some() {
                step.expect = expect.clone();
            }
            let flag = |cx: &mut Cx, key: &str| {
                h.get(key)
                    .and_then(|v| reader::boolean(cx, key, v))
                    .unwrap_or(true)
            };
            ProbeTarget::Http(HttpProbe {
                step,
                verify_tls: flag(cx, "verify_tls"),
                follow_redirects: flag(cx, "follow_redirects"),
            })
        }
        "tcp" => {
            let text = reader::text(cx, "tcp", v)?;
            let address = text.expose().to_owned();
            let port_ok = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                cx.error(
                    v.span(),
                    format!("`tcp` must be HOST:PORT, found `{}`", text.shown()),
                    Some("e.g. tcp = \"db.internal:5432\"".into()),
                );
                return None;
            }
            ProbeTarget::Tcp(address)
        }
        "sql" => ProbeTarget::Sql(read_sql(cx, v, connections)?),
        _ => ProbeTarget::Command(reader::text(cx, "command", v)?),
    };
    let every = match t.get("every") {
        Some(e) => at_least_a_second(cx, "every", e)?,
        None => {
            cx.error(
                t.span(),
                format!("{place} has no `every`"),
                Some("every = \"1m\" (at least 1s)".into()),
            );
            return None;
        }
    };
    let threshold = |cx: &mut Cx, key: &str| {
        t.get(key)
            .and_then(|v| reader::integer(cx, key, v, 1..1001))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
    };
    let failure_threshold = threshold(cx, "failure_threshold");
    let success_threshold = threshold(cx, "success_threshold");
    Some(Probe {
        definition_hash: checks::definition_hash(cx, t),
        description: checks::description(cx, t),
        tags: checks::tags(cx, t),
        name,
        every,
        timeout,
        target,
        expect,
        failure_threshold,
        success_threshold,
        depends_on: depends.iter().map(|(n, _)| n.clone()).collect(),
        timezone: zone,
        sla: t
            .get("sla")
            .and_then(|v| crate::heartbeats::read_sla(cx, v)),
    })
}

fn at_least_a_second(cx: &mut Cx, key: &str, v: &Value) -> Option<Duration> {
    let d = reader::duration(cx, key, v)?;
    if d < Duration::from_secs(1) {
        cx.error(
            v.span(),
            format!("`{key}` must be at least 1s"),
            Some(format!("e.g. {key} = \"30s\"")),
        );
        return None;
    }
    Some(d)
}
