//! `GET /metrics` in Prometheus's text format. Each family says in its HELP where it comes
//! from: "(store)" families are read from the store's rollups and survive restarts and
//! pruning, the same on every node; "(process)" families count what this process saw since it
//! started, as Prometheus counters usually do.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{TimeZone, Utc};
use plantao_engine::checks::State as CheckState;
use plantao_engine::checks::prober::ProbeState;
use plantao_engine::telemetry::{BUCKETS, Seconds};
use plantao_model::{AlertState, RunStatus};
use plantao_store::{Grain, Histogram, RunFilter, Summary};

use crate::AppState;
use crate::auth::Viewer;
use crate::error::ApiResult;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}

/// The checks' families: whether each is up, when it was last pinged or checked, its uptime
/// over 24 h, 7 d and 30 d, and its response times; all from the store.
async fn checks(
    state: &AppState,
    config: &plantao_config::Config,
    out: &mut String,
) -> ApiResult<()> {
    if config.heartbeats.is_empty() && config.probes.is_empty() {
        return Ok(());
    }
    let records = state.store.checks().await?;
    let paused = state.store.paused_pipelines().await?;
    let now = Utc::now();
    let names = config
        .heartbeats
        .iter()
        .map(|h| (h.name.as_str(), h.timezone))
        .chain(config.probes.iter().map(|p| (p.name.as_str(), p.timezone)));
    family(
        out,
        "plantao_check_up",
        "gauge",
        "1 while a check is up, 0 while it is late or down; absent while new or paused (store).",
    );
    for h in &config.heartbeats {
        let status =
            plantao_engine::checks::status(h, records.get(&h.name), paused.contains(&h.name), now);
        let up = match status.state {
            CheckState::Up => 1,
            CheckState::Late | CheckState::Down => 0,
            CheckState::New | CheckState::Paused => continue,
        };
        let _ = writeln!(out, "plantao_check_up{{check=\"{}\"}} {up}", label(&h.name));
    }
    for p in config.probes.iter().filter(|p| !paused.contains(&p.name)) {
        let state = records.get(&p.name).and_then(|r| r.state.as_deref());
        let up = match state.and_then(ProbeState::parse) {
            Some(ProbeState::Up) => 1,
            Some(ProbeState::Down) => 0,
            None => continue,
        };
        let _ = writeln!(out, "plantao_check_up{{check=\"{}\"}} {up}", label(&p.name));
    }
    family(
        out,
        "plantao_check_last_ping_timestamp_seconds",
        "gauge",
        "When each check was last pinged (heartbeats) or checked (probes), in seconds since 1970 (store).",
    );
    for (name, r) in &records {
        if let Some(at) = r.last_ping_at {
            let _ = writeln!(
                out,
                "plantao_check_last_ping_timestamp_seconds{{check=\"{}\"}} {}",
                label(name),
                at.timestamp()
            );
        }
    }
    let seen = plantao_engine::checks::uptime::first_seen(state.store.as_ref()).await?;
    let mut uptimes = Vec::new();
    let mut durations = Vec::new();
    for (name, zone) in names {
        let windows = plantao_engine::checks::uptime::windows(
            state.store.as_ref(),
            name,
            zone,
            seen.get(name).copied(),
            now,
        )
        .await?;
        uptimes.push((name, windows));
        durations.push((name, all_time(state, name).await?));
    }
    family(
        out,
        "plantao_check_uptime_ratio",
        "gauge",
        "Share of the window each check was not down, 0–1, by window (24h, 7d, 30d, 365d; store, from its incidents).",
    );
    for (name, windows) in &uptimes {
        for w in windows {
            if let Some(u) = w.uptime_percent {
                let _ = writeln!(
                    out,
                    "plantao_check_uptime_ratio{{check=\"{}\",window=\"{}\"}} {}",
                    label(name),
                    w.window,
                    u / 100.0
                );
            }
        }
    }
    family(
        out,
        "plantao_check_duration_seconds",
        "histogram",
        "How long each check's pings' runs (heartbeats) or checks (probes) took (store; buckets within 1 %).",
    );
    for (name, s) in &durations {
        let h = from_rollup(&s.durations, s.duration_ms_sum);
        seconds(
            out,
            "plantao_check_duration_seconds",
            &format!("check=\"{}\"", label(name)),
            &h,
        );
    }
    Ok(())
}

/// What `name`'s runs add up to over all of its daily rollups.
async fn all_time(state: &AppState, name: &str) -> ApiResult<Summary> {
    let far = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
    let until = Utc::now() + chrono::Duration::days(2);
    let mut total = Summary::default();
    for bucket in state.store.rollups(name, Grain::Day, far, until).await? {
        total.merge(&bucket.summary);
    }
    Ok(total)
}

/// A label value, escaped as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A histogram of seconds from [`Seconds`] buckets.
fn seconds(out: &mut String, name: &str, labels: &str, h: &Seconds) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, le) in BUCKETS.iter().enumerate() {
        cumulative += h.counts[i];
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

/// The rollup's duration histogram (milliseconds, fine log bins) in [`BUCKETS`]: each bin is
/// counted under the first bound at or above its value (within 1 %).
fn from_rollup(durations: &Histogram, sum_ms: i64) -> Seconds {
    let mut h = Seconds::default();
    for (bin, count) in durations.bins() {
        let secs = Histogram::value_of(bin) / 1e3;
        let i = BUCKETS.partition_point(|&le| le < secs);
        h.counts[i] += count;
        h.count += count;
    }
    #[allow(clippy::cast_precision_loss)]
    {
        h.sum = sum_ms as f64 / 1e3;
    }
    h
}

#[utoipa::path(get, path = "/metrics", tag = "metrics",
    security(("token" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(_: Viewer, State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let config = state.config();
    let mut out = String::with_capacity(16 * 1024);
    let mut totals: Vec<(String, Summary)> = Vec::with_capacity(config.pipelines.len());
    for p in &config.pipelines {
        totals.push((p.name.clone(), all_time(&state, &p.name).await?));
    }

    family(
        &mut out,
        "plantao_runs_total",
        "counter",
        "Runs that ended, by pipeline, status and trigger (store).",
    );
    for (name, s) in &totals {
        for ((status, trigger), n) in &s.by_status_trigger {
            let _ = writeln!(
                out,
                "plantao_runs_total{{pipeline=\"{}\",status=\"{status}\",trigger=\"{trigger}\"}} {n}",
                label(name)
            );
        }
    }
    family(
        &mut out,
        "plantao_run_duration_seconds",
        "histogram",
        "Durations of the runs that started, by pipeline (store; buckets within 1 %).",
    );
    for (name, s) in &totals {
        let h = from_rollup(&s.durations, s.duration_ms_sum);
        seconds(
            &mut out,
            "plantao_run_duration_seconds",
            &format!("pipeline=\"{}\"", label(name)),
            &h,
        );
    }
    family(
        &mut out,
        "plantao_stage_counter_total",
        "counter",
        "Sums of the counters steps reported, by pipeline, stage and name (store).",
    );
    for (name, s) in &totals {
        for (stage, counter, sum) in s.counter_sums() {
            let _ = writeln!(
                out,
                "plantao_stage_counter_total{{pipeline=\"{}\",stage=\"{}\",name=\"{}\"}} {sum}",
                label(name),
                label(stage),
                label(counter)
            );
        }
    }
    family(
        &mut out,
        "plantao_pipeline_last_success_timestamp_seconds",
        "gauge",
        "When the pipeline's last successful run was queued, in Unix seconds (store).",
    );
    for p in &config.pipelines {
        let last = state
            .store
            .runs(&RunFilter {
                pipeline: Some(p.name.clone()),
                status: Some(RunStatus::Succeeded),
                limit: 1,
                ..RunFilter::default()
            })
            .await?;
        if let Some(run) = last.first() {
            let at = run.finished_at.unwrap_or(run.queued_at);
            let _ = writeln!(
                out,
                "plantao_pipeline_last_success_timestamp_seconds{{pipeline=\"{}\"}} {}",
                label(&p.name),
                at.timestamp()
            );
        }
    }
    let open = state.store.open_runs().await?;
    family(
        &mut out,
        "plantao_queue_depth",
        "gauge",
        "Runs waiting in the queue (store).",
    );
    let _ = writeln!(
        out,
        "plantao_queue_depth {}",
        open.values().map(|o| u64::from(o.queued)).sum::<u64>()
    );
    family(
        &mut out,
        "plantao_running_runs",
        "gauge",
        "Runs running on any node (store).",
    );
    let _ = writeln!(
        out,
        "plantao_running_runs {}",
        open.values().map(|o| u64::from(o.running)).sum::<u64>()
    );

    checks(&state, &config, &mut out).await?;
    family(
        &mut out,
        "plantao_alerts_firing",
        "gauge",
        "Alerts firing, by rule and severity (store).",
    );
    let mut firing: BTreeMap<(String, String), u64> = BTreeMap::new();
    for a in state.store.open_alerts().await? {
        if a.state == AlertState::Firing {
            *firing.entry((a.rule, a.severity.to_string())).or_default() += 1;
        }
    }
    for ((rule, severity), n) in &firing {
        let _ = writeln!(
            out,
            "plantao_alerts_firing{{rule=\"{}\",severity=\"{severity}\"}} {n}",
            label(rule)
        );
    }
    family(
        &mut out,
        "plantao_outbox_depth",
        "gauge",
        "Notifications waiting for delivery, on every node (store).",
    );
    let _ = writeln!(
        out,
        "plantao_outbox_depth {}",
        state.store.outbox_depth().await?
    );

    if let Some(vitals) = &state.vitals {
        family(
            &mut out,
            "plantao_stage_duration_seconds",
            "histogram",
            "Durations of the stages this process ran, by pipeline and stage (process).",
        );
        for ((pipeline, stage), h) in vitals.telemetry.stages() {
            seconds(
                &mut out,
                "plantao_stage_duration_seconds",
                &format!(
                    "pipeline=\"{}\",stage=\"{}\"",
                    label(&pipeline),
                    label(&stage)
                ),
                &h,
            );
        }
        family(
            &mut out,
            "plantao_scheduling_lag_seconds",
            "histogram",
            "From a tick's due instant to its first step starting, for the ticks this process ran (process).",
        );
        seconds(
            &mut out,
            "plantao_scheduling_lag_seconds",
            "",
            &vitals.telemetry.lags(),
        );
        family(
            &mut out,
            "plantao_notifications_total",
            "counter",
            "Delivery attempts this process made, by channel and result: delivered or failed (process).",
        );
        for ((channel, result), n) in vitals.telemetry.notifications() {
            let _ = writeln!(
                out,
                "plantao_notifications_total{{channel=\"{}\",result=\"{result}\"}} {n}",
                label(&channel)
            );
        }
        family(
            &mut out,
            "plantao_storage_writable",
            "gauge",
            "1 while the database accepts this node's writes, 0 while it refuses them (process).",
        );
        let _ = writeln!(
            out,
            "plantao_storage_writable {}",
            u8::from(!vitals.writable.is_refusing())
        );
    }
    family(
        &mut out,
        "plantao_http_requests_total",
        "counter",
        "HTTP requests answered, by method, route and status (process).",
    );
    for ((method, route, status), n) in state.http.counts() {
        let _ = writeln!(
            out,
            "plantao_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(&route)
        );
    }
    family(
        &mut out,
        "plantao_http_request_duration_seconds",
        "histogram",
        "Time to answer HTTP requests, by method and route (process).",
    );
    for ((method, route), h) in state.http.durations() {
        seconds(
            &mut out,
            "plantao_http_request_duration_seconds",
            &format!("method=\"{method}\",route=\"{}\"", label(&route)),
            &h,
        );
    }
    family(
        &mut out,
        "plantao_process_start_time_seconds",
        "gauge",
        "When this process started, in Unix seconds (process).",
    );
    let _ = writeln!(
        out,
        "plantao_process_start_time_seconds {}",
        state.started_at.timestamp()
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    ))
}
