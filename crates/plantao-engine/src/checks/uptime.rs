//! Uptime, response times and SLA compliance of a check, from what is kept forever: its
//! incidents (down periods) and its hourly and daily rollups. A year of history is a few
//! hundred rows.

use std::collections::{BTreeMap, HashSet};

use chrono::TimeDelta;
use chrono_tz::Tz;
use plantao_config::{Config, Sla};
use plantao_store::{CheckRecord, Incident, Store, StoreError, Summary, Timestamp, Window, Write};
use serde::Serialize;

/// The windows uptime is told over, by name.
pub const WINDOWS: &[(&str, Window, i64)] = &[
    ("24h", Window::Last24h, 1),
    ("7d", Window::Last7d, 7),
    ("30d", Window::Last30d, 30),
    ("365d", Window::Last365d, 365),
];
/// Incidents read for one check's windows (more than a year of them is not expected).
const INCIDENTS_READ: u32 = 10_000;

/// A check over one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UptimeWindow {
    pub window: String,
    /// Share of the window (since the check was first seen) it was not down, in percent; none
    /// when the check is younger than a millisecond.
    pub uptime_percent: Option<f64>,
    pub down_seconds: i64,
    /// Incidents that overlap the window.
    pub incidents: u32,
    /// Results (runs and counted successes) in the window.
    pub results: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// What the window's rollups add up to, for callers that show more of it.
    #[serde(skip)]
    pub summary: Summary,
}

/// How long `incidents` cover `[from, to)`, and how many of them overlap it; an open one
/// lasts until `to`.
pub fn down_within(incidents: &[Incident], from: Timestamp, to: Timestamp) -> (TimeDelta, u32) {
    let mut down = TimeDelta::zero();
    let mut count = 0;
    for i in incidents {
        let start = i.started_at.max(from);
        let end = i.ended_at.unwrap_or(to).min(to);
        if end > start {
            down += end - start;
            count += 1;
        }
    }
    (down, count)
}

/// Check `name`'s figures over each of [`WINDOWS`] at `now`; `first_seen` (when the store first
/// knew it) clips the windows, so a new check is not up for the time before it existed.
pub async fn windows(
    store: &dyn Store,
    name: &str,
    zone: Tz,
    first_seen: Option<Timestamp>,
    now: Timestamp,
) -> Result<Vec<UptimeWindow>, StoreError> {
    let year = now - TimeDelta::days(365);
    let incidents = store.incidents(Some(name), year, INCIDENTS_READ).await?;
    let mut out = Vec::with_capacity(WINDOWS.len());
    for (label, window, days) in WINDOWS {
        let from = (now - TimeDelta::days(*days)).max(first_seen.unwrap_or(now));
        let (down, count) = down_within(&incidents, from, now);
        let length = (now - from).num_milliseconds();
        let down_ms = down.num_milliseconds();
        let summary = store.summary(name, *window, now, zone).await?;
        #[allow(clippy::cast_precision_loss)]
        let uptime = (length > 0).then(|| 100.0 * (length - down_ms).max(0) as f64 / length as f64);
        out.push(UptimeWindow {
            window: (*label).to_owned(),
            uptime_percent: uptime,
            down_seconds: down.num_seconds(),
            incidents: count,
            results: summary.runs,
            p50_ms: summary.durations.quantile(0.5),
            p95_ms: summary.durations.quantile(0.95),
            summary,
        });
    }
    Ok(out)
}

/// The writes that keep heartbeats' incidents in step with their states at `now` (told from
/// `records` and `paused`, as the store has them): one opens when a heartbeat is down (from
/// when it went down), and closes when it is not (at its last success, or now when it was
/// paused).
pub async fn track_heartbeats(
    store: &dyn Store,
    config: &Config,
    records: &BTreeMap<String, CheckRecord>,
    paused: &[String],
    now: Timestamp,
) -> Result<Vec<Write>, StoreError> {
    if config.heartbeats.is_empty() {
        return Ok(Vec::new());
    }
    let open: HashSet<String> = store
        .incidents(None, now, INCIDENTS_READ)
        .await?
        .into_iter()
        .filter(|i| i.ended_at.is_none())
        .map(|i| i.check)
        .collect();
    let mut writes = Vec::new();
    for h in &config.heartbeats {
        let record = records.get(&h.name);
        let status = super::status(h, record, paused.contains(&h.name), now);
        let is_open = open.contains(&h.name);
        match (status.down_since, is_open) {
            (Some(since), false) => writes.push(Write::OpenIncident {
                check: h.name.clone(),
                at: since,
                cause: status.events.get("down").cloned(),
            }),
            (None, true) => writes.push(Write::CloseIncident {
                check: h.name.clone(),
                at: record
                    .and_then(|r| r.last_success_at)
                    .filter(|_| status.state != super::State::Paused)
                    .unwrap_or(now)
                    .min(now),
            }),
            _ => {}
        }
    }
    Ok(writes)
}

/// When each pipeline, heartbeat and probe was first seen by the store.
pub async fn first_seen(store: &dyn Store) -> Result<BTreeMap<String, Timestamp>, StoreError> {
    Ok(store
        .pipelines()
        .await?
        .into_iter()
        .map(|p| (p.record.name, p.first_seen))
        .collect())
}

/// Whether a check kept its SLA over a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Compliance {
    pub check: String,
    /// `heartbeat` or `probe`.
    pub kind: String,
    pub window: String,
    pub uptime_target: Option<f64>,
    pub uptime_percent: Option<f64>,
    pub p95_target_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Every target met; none while a target has no figure yet (no results).
    pub met: Option<bool>,
}

/// The SLA of every check that has one, over `window` (or each SLA's own), at `now`.
pub async fn sla(
    store: &dyn Store,
    config: &Config,
    window: Option<&str>,
    now: Timestamp,
) -> Result<Vec<Compliance>, StoreError> {
    let seen = first_seen(store).await?;
    let checks = config
        .heartbeats
        .iter()
        .filter_map(|h| {
            h.sla
                .as_ref()
                .map(|s| (h.name.as_str(), "heartbeat", h.timezone, s))
        })
        .chain(config.probes.iter().filter_map(|p| {
            p.sla
                .as_ref()
                .map(|s| (p.name.as_str(), "probe", p.timezone, s))
        }));
    let mut out = Vec::new();
    for (name, kind, zone, sla) in checks {
        let label = window.unwrap_or(&sla.window);
        let figures = windows(store, name, zone, seen.get(name).copied(), now).await?;
        if let Some(w) = figures.iter().find(|w| w.window == label) {
            out.push(compliance(name, kind, sla, w));
        }
    }
    Ok(out)
}

/// Whether check `name` (a `heartbeat` or a `probe`) kept `sla` over the window `w`.
pub fn compliance(name: &str, kind: &str, sla: &Sla, w: &UptimeWindow) -> Compliance {
    let uptime_met = sla.uptime.map(|t| w.uptime_percent.map(|u| u >= t));
    let p95_met = sla.p95_ms.map(|t| w.p95_ms.map(|p| p < t));
    let met = [uptime_met, p95_met]
        .into_iter()
        .flatten()
        .try_fold(true, |all, m| m.map(|m| all && m));
    Compliance {
        check: name.to_owned(),
        kind: kind.to_owned(),
        window: w.window.clone(),
        uptime_target: sla.uptime,
        uptime_percent: w.uptime_percent,
        p95_target_ms: sla.p95_ms,
        p95_ms: w.p95_ms,
        met,
    }
}
