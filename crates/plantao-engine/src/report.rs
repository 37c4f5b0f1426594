//! The daily, weekly and monthly reports a team would otherwise put together by hand: per
//! pipeline its runs, success rate, durations, counter totals, derived metrics and most frequent
//! errors; per check its uptime and incidents; the SLAs; the alerts fired, acknowledged and how
//! long acknowledging took. Runs' figures come from the rollups (they outlive pruning); errors and
//! alerts from the runs and alerts kept for `storage.retention`.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use plantao_config::Config;
use plantao_model::RunStatus;
use plantao_store::{RunFilter, Store, StoreError, Timestamp, Window};
use serde::Serialize;

use crate::checks::uptime;

/// Runs read per pipeline for its most frequent errors (newest first).
const ERROR_RUNS: u32 = 1_000;
/// Alerts read per page while going back through the period.
const ALERT_PAGE: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// The last 24 hours.
    Daily,
    /// The last 7 days.
    Weekly,
    /// The last 30 calendar days, today included, in each pipeline's zone.
    Monthly,
}

impl Period {
    /// The rollup window, its label (as checks and SLAs name windows) and its length.
    pub fn window(self) -> (Window, &'static str, TimeDelta) {
        match self {
            Period::Daily => (Window::Last24h, "24h", TimeDelta::days(1)),
            Period::Weekly => (Window::Last7d, "7d", TimeDelta::days(7)),
            Period::Monthly => (Window::Last30d, "30d", TimeDelta::days(30)),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub period: Period,
    pub from: Timestamp,
    pub to: Timestamp,
    pub pipelines: Vec<PipelineFigures>,
    pub checks: Vec<CheckFigures>,
    pub sla: Vec<uptime::Compliance>,
    pub alerts: AlertFigures,
}

#[derive(Debug, Serialize)]
pub struct PipelineFigures {
    pub pipeline: String,
    pub runs: u64,
    pub succeeded: u64,
    /// Failed, timed out, interrupted or partial.
    pub failed: u64,
    pub skipped: u64,
    pub success_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<i64>,
    /// By `step.counter`.
    pub counters: BTreeMap<String, f64>,
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub top_errors: Vec<ErrorCount>,
}

/// Runs that ended the same way: the stage that failed and what it said.
#[derive(Debug, PartialEq, Serialize)]
pub struct ErrorCount {
    pub stage: Option<String>,
    pub error: String,
    pub runs: u64,
}

#[derive(Debug, Serialize)]
pub struct CheckFigures {
    pub check: String,
    /// `heartbeat` or `probe`.
    pub kind: &'static str,
    pub uptime_percent: Option<f64>,
    pub down_seconds: i64,
    pub incidents: u32,
}

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct AlertFigures {
    /// Alerts that fired in the period.
    pub fired: u64,
    pub by_severity: BTreeMap<String, u64>,
    pub acknowledged: u64,
    /// From firing to acknowledgement, over those acknowledged.
    pub mean_time_to_acknowledge_s: Option<f64>,
    /// The rules that fired most, most first (five at most).
    pub top_rules: Vec<(String, u64)>,
}

/// The report of `period` ending at `now`.
pub async fn build(
    store: &dyn Store,
    config: &Config,
    period: Period,
    now: Timestamp,
) -> Result<Report, StoreError> {
    let (window, label, length) = period.window();
    let from = now - length;
    let mut pipelines = Vec::with_capacity(config.pipelines.len());
    for p in &config.pipelines {
        let s = store.summary(&p.name, window, now, p.timezone).await?;
        let recent = store
            .runs(&RunFilter {
                pipeline: Some(p.name.clone()),
                since: Some(from),
                limit: ERROR_RUNS,
                ..RunFilter::default()
            })
            .await?;
        pipelines.push(PipelineFigures {
            pipeline: p.name.clone(),
            runs: s.runs,
            succeeded: s.count("succeeded"),
            failed: s.failed(),
            skipped: s.count("skipped"),
            success_rate: s.success_rate(),
            p50_ms: capped(s.durations.quantile(0.5), s.duration_ms_max),
            p95_ms: capped(s.durations.quantile(0.95), s.duration_ms_max),
            max_ms: s.duration_ms_max,
            counters: s.counters.iter().map(|(k, v)| (k.clone(), v.sum)).collect(),
            metrics: crate::metric_values(&crate::derived_metrics(p, s.counter_sums())),
            top_errors: top_errors(&recent, 3),
        });
    }
    let seen = uptime::first_seen(store).await?;
    let (mut checks, mut sla) = (Vec::new(), Vec::new());
    let named = config
        .heartbeats
        .iter()
        .map(|h| (h.name.as_str(), "heartbeat", h.timezone, h.sla.as_ref()))
        .chain(
            config
                .probes
                .iter()
                .map(|p| (p.name.as_str(), "probe", p.timezone, p.sla.as_ref())),
        );
    // Each check's windows are read once, for its figures and its SLA alike.
    for (name, kind, zone, target) in named {
        let windows = uptime::windows(store, name, zone, seen.get(name).copied(), now).await?;
        if let Some(w) = windows.iter().find(|w| w.window == label) {
            checks.push(CheckFigures {
                check: name.to_owned(),
                kind,
                uptime_percent: w.uptime_percent,
                down_seconds: w.down_seconds,
                incidents: w.incidents,
            });
            sla.extend(target.map(|s| uptime::compliance(name, kind, s, w)));
        }
    }
    Ok(Report {
        period,
        from,
        to: now,
        pipelines,
        checks,
        sla,
        alerts: alerts_since(store, from, now).await?,
    })
}

/// A percentile from the histogram's bins (each within 1 %) never above the exact maximum.
fn capped(quantile: Option<f64>, max_ms: Option<i64>) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    quantile.map(|q| max_ms.map_or(q, |m| q.min(m as f64)))
}

/// The most frequent ways `runs` failed, `n` at most, most frequent first.
fn top_errors(runs: &[plantao_store::Run], n: usize) -> Vec<ErrorCount> {
    let mut counts: BTreeMap<(Option<String>, String), u64> = BTreeMap::new();
    for r in runs {
        if !matches!(
            r.status,
            RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted | RunStatus::Partial
        ) {
            continue;
        }
        let error = r
            .error_message
            .clone()
            .unwrap_or_else(|| r.status.to_string());
        *counts.entry((r.error_stage.clone(), error)).or_default() += 1;
    }
    let mut all: Vec<ErrorCount> = counts
        .into_iter()
        .map(|((stage, error), runs)| ErrorCount { stage, error, runs })
        .collect();
    all.sort_by_key(|e| std::cmp::Reverse(e.runs));
    all.truncate(n);
    all
}

/// The alerts that fired in `[from, to)`, read back through the history newest first.
async fn alerts_since(
    store: &dyn Store,
    from: Timestamp,
    to: Timestamp,
) -> Result<AlertFigures, StoreError> {
    let mut out = AlertFigures::default();
    let mut rules: BTreeMap<String, u64> = BTreeMap::new();
    let mut waited = Vec::new();
    let mut before = None;
    'pages: loop {
        let page = store.alert_history(before, ALERT_PAGE).await?;
        for a in &page {
            // Ids grow with the start: past the period's start, nothing older fired in it.
            if a.started_at < from && a.fired_at.is_none_or(|f| f < from) {
                break 'pages;
            }
            let Some(fired) = a.fired_at.filter(|f| *f >= from && *f < to) else {
                continue;
            };
            out.fired += 1;
            *out.by_severity.entry(a.severity.to_string()).or_default() += 1;
            *rules.entry(a.rule.clone()).or_default() += 1;
            if let Some(acked) = a.acknowledged_at {
                out.acknowledged += 1;
                waited.push((acked - fired).num_milliseconds());
            }
        }
        match page.last() {
            Some(last) if page.len() == ALERT_PAGE as usize => before = Some(last.id),
            _ => break,
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let mean =
        (!waited.is_empty()).then(|| waited.iter().sum::<i64>() as f64 / waited.len() as f64 / 1e3);
    out.mean_time_to_acknowledge_s = mean;
    let mut top: Vec<(String, u64)> = rules.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);
    out.top_rules = top;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantao_model::{RunId, Trigger};

    fn run(status: RunStatus, stage: &str, error: &str) -> plantao_store::Run {
        plantao_store::Run {
            id: RunId::new(),
            pipeline: "p".into(),
            trigger: Trigger::Scheduled,
            scheduled_for: None,
            params: BTreeMap::new(),
            status,
            reason: None,
            queued_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            duration_ms: None,
            error_stage: Some(stage.into()),
            error_message: Some(error.into()),
            node: None,
            parent: None,
            lag_ms: None,
            cancel_requested: false,
            selection: plantao_store::StepSelection::default(),
            period: None,
            force: false,
        }
    }

    #[test]
    fn top_errors_count_failures_only_most_frequent_first() {
        let runs = [
            run(RunStatus::Failed, "send", "timeout"),
            run(RunStatus::Succeeded, "send", "timeout"),
            run(RunStatus::Partial, "sync", "exit 2"),
            run(RunStatus::Failed, "send", "timeout"),
            run(RunStatus::TimedOut, "process", "over 5m"),
        ];
        let top = top_errors(&runs, 2);
        assert_eq!(
            top[0],
            ErrorCount {
                stage: Some("send".into()),
                error: "timeout".into(),
                runs: 2
            }
        );
        assert_eq!(top.len(), 2);
        assert_eq!(top[1].runs, 1);
    }
}
