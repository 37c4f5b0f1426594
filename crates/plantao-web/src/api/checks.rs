//! Checks: the heartbeats plantao watches, their state, what is wrong, their last runs; pause
//! and resume.

use std::collections::BTreeMap;

use crate::json::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use plantao_config::{Config, Expected, Heartbeat, Probe};
use plantao_engine::checks::uptime::{self, Compliance, UptimeWindow};
use plantao_store::{CheckRecord, Incident, PingKind, Run, RunFilter, Summary, Timestamp, Write};
use serde::Serialize;
use utoipa::ToSchema;

use super::pipelines::WindowStats;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;

/// Runs a check's detail lists.
const LAST_RUNS: u32 = 20;
/// Incidents a check's detail lists.
const LAST_INCIDENTS: u32 = 50;

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckSummary {
    pub name: String,
    /// `heartbeat` or `probe`.
    pub kind: String,
    /// A probe's target: `http`, `tcp`, `sql` or `command`.
    pub target: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// `every 3600s`, or the cron schedule (a heartbeat's successes; a probe's checks).
    pub expected: String,
    pub timezone: String,
    pub grace_seconds: u64,
    /// `new`, `up`, `late`, `down` or `paused`.
    pub state: String,
    /// When the next success is (or was) expected.
    pub due: Option<DateTime<Utc>>,
    /// What is wrong (`late`, `down`, `too_short`, `too_long`, `too_often`, `start_missing`),
    /// each with why.
    pub problems: BTreeMap<String, String>,
    pub paused: bool,
    /// Pings counted since it was first pinged.
    pub pings: i64,
    pub last_ping_at: Option<DateTime<Utc>>,
    pub last_ping: Option<PingKind>,
    pub last_start_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    pub last_24h: WindowStats,
    pub last_7d: WindowStats,
    /// Uptime and response times over 24 h, 7 d, 30 d and 365 d.
    pub uptime: Vec<UptimeView>,
}

/// A check over one window: from its incidents (uptime) and rollups (results, p50, p95).
#[derive(Debug, Serialize, ToSchema)]
pub struct UptimeView {
    /// `24h`, `7d`, `30d` or `365d`.
    pub window: String,
    /// Percent of the window (since the check was first seen) it was not down.
    pub uptime_percent: Option<f64>,
    pub down_seconds: i64,
    pub incidents: u32,
    pub results: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

impl From<UptimeWindow> for UptimeView {
    fn from(w: UptimeWindow) -> Self {
        UptimeView {
            window: w.window,
            uptime_percent: w.uptime_percent,
            down_seconds: w.down_seconds,
            incidents: w.incidents,
            results: w.results,
            p50_ms: w.p50_ms,
            p95_ms: w.p95_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDetail {
    #[serde(flatten)]
    pub check: CheckSummary,
    /// Its newest runs, newest first: a heartbeat's start → end pairs; a probe's failures and
    /// changes of state.
    pub runs: Vec<Run>,
    /// Its down periods, newest first.
    pub incidents: Vec<Incident>,
}

/// Whether a check kept its SLA over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaView {
    pub check: String,
    pub kind: String,
    pub window: String,
    pub uptime_target: Option<f64>,
    pub uptime_percent: Option<f64>,
    pub p95_target_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Every target met; null while a target has no figure yet.
    pub met: Option<bool>,
}

impl From<Compliance> for SlaView {
    fn from(c: Compliance) -> Self {
        SlaView {
            check: c.check,
            kind: c.kind,
            window: c.window,
            uptime_target: c.uptime_target,
            uptime_percent: c.uptime_percent,
            p95_target_ms: c.p95_target_ms,
            p95_ms: c.p95_ms,
            met: c.met,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckPaused {
    pub check: String,
    pub paused: bool,
}

/// A heartbeat or a probe.
#[derive(Clone, Copy)]
enum Check<'c> {
    Heartbeat(&'c Heartbeat),
    Probe(&'c Probe),
}

impl Check<'_> {
    fn name(&self) -> &str {
        match self {
            Check::Heartbeat(h) => &h.name,
            Check::Probe(p) => &p.name,
        }
    }
}

/// Every check, by name.
fn all(config: &Config) -> Vec<Check<'_>> {
    let mut out: Vec<Check> = config
        .heartbeats
        .iter()
        .map(Check::Heartbeat)
        .chain(config.probes.iter().map(Check::Probe))
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    out
}

fn find<'c>(config: &'c Config, name: &str) -> ApiResult<Check<'c>> {
    all(config)
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| {
            let known: Vec<String> = all(config).iter().map(|c| c.name().to_owned()).collect();
            ApiError::not_found(format!(
                "there is no check `{name}`; the checks are: {}",
                if known.is_empty() {
                    "(none: add [[heartbeats]] or [[probes]] to plantao.toml)".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })
}

async fn summary_of(
    state: &AppState,
    check: Check<'_>,
    record: Option<&CheckRecord>,
    paused: bool,
    first_seen: Option<Timestamp>,
) -> ApiResult<CheckSummary> {
    let now = Utc::now();
    let (kind, target, description, tags, expected, zone) = match check {
        Check::Heartbeat(h) => (
            "heartbeat",
            None,
            h.description.clone(),
            h.tags.clone(),
            match &h.expect {
                Expected::Period(p) => format!("every {}s", p.as_secs()),
                Expected::Schedule(s) => s.text.clone(),
            },
            h.timezone,
        ),
        Check::Probe(p) => (
            "probe",
            Some(p.target.kind().to_owned()),
            p.description.clone(),
            p.tags.clone(),
            format!("every {}s", p.every.as_secs()),
            p.timezone,
        ),
    };
    let (now_state, due, problems, grace) = match check {
        Check::Heartbeat(h) => {
            let status = plantao_engine::checks::status(h, record, paused, now);
            (
                status.state.as_str().to_owned(),
                status.due,
                status.events,
                h.grace.as_secs(),
            )
        }
        Check::Probe(_) => (
            plantao_engine::checks::prober::shown_state(record, paused).to_owned(),
            None,
            BTreeMap::new(),
            0,
        ),
    };
    let name = check.name();
    let windows = uptime::windows(state.store.as_ref(), name, zone, first_seen, now).await?;
    // The uptime windows read the 24 h and 7 d rollups already.
    let stats = |label: &str| {
        windows.iter().find(|w| w.window == label).map_or_else(
            || WindowStats::of(&Summary::default()),
            |w| WindowStats::of(&w.summary),
        )
    };
    let (last_24h, last_7d) = (stats("24h"), stats("7d"));
    let r = record.cloned().unwrap_or_default();
    Ok(CheckSummary {
        name: name.to_owned(),
        kind: kind.to_owned(),
        target,
        description,
        tags,
        expected,
        timezone: zone.name().to_owned(),
        grace_seconds: grace,
        state: now_state,
        due,
        problems,
        paused,
        pings: r.pings,
        last_ping_at: r.last_ping_at,
        last_ping: r.last_ping,
        last_start_at: r.last_start_at,
        last_success_at: r.last_success_at,
        last_failure_at: r.last_failure_at,
        last_duration_ms: r.last_duration_ms,
        last_24h,
        last_7d,
        uptime: windows.into_iter().map(UptimeView::from).collect(),
    })
}

#[utoipa::path(get, path = "/api/checks", tag = "checks",
    security(("token" = [])),
    responses((status = 200, description = "every heartbeat, by name", body = Vec<CheckSummary>)))]
pub async fn list_checks(
    _: Viewer,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CheckSummary>>> {
    Ok(Json(check_summaries(&state).await?))
}

/// Every heartbeat and probe, by name.
pub(crate) async fn check_summaries(state: &AppState) -> ApiResult<Vec<CheckSummary>> {
    let config = state.config();
    let records = state.store.checks().await?;
    let paused = state.store.paused_pipelines().await?;
    let seen = uptime::first_seen(state.store.as_ref()).await?;
    let mut out = Vec::new();
    for c in all(&config) {
        let name = c.name();
        let is_paused = paused.iter().any(|p| p == name);
        out.push(
            summary_of(
                state,
                c,
                records.get(name),
                is_paused,
                seen.get(name).copied(),
            )
            .await?,
        );
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/checks/{name}", tag = "checks",
    security(("token" = [])),
    params(("name" = String, Path, description = "the heartbeat's name")),
    responses((status = 200, body = CheckDetail),
              (status = 404, body = crate::ErrorBody)))]
pub async fn get_check(
    _: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CheckDetail>> {
    let config = state.config();
    let c = find(&config, &name)?;
    let records = state.store.checks().await?;
    let paused = state.store.paused_pipelines().await?.contains(&name);
    let seen = uptime::first_seen(state.store.as_ref()).await?;
    let check = summary_of(
        &state,
        c,
        records.get(&name),
        paused,
        seen.get(&name).copied(),
    )
    .await?;
    let runs = state
        .store
        .runs(&RunFilter {
            pipeline: Some(name.clone()),
            limit: LAST_RUNS,
            ..RunFilter::default()
        })
        .await?;
    let far = chrono::DateTime::<Utc>::UNIX_EPOCH;
    let incidents = state
        .store
        .incidents(Some(&name), far, LAST_INCIDENTS)
        .await?;
    Ok(Json(CheckDetail {
        check,
        runs,
        incidents,
    }))
}

async fn set_paused(
    state: &AppState,
    actor: &str,
    name: &str,
    paused: bool,
) -> ApiResult<Json<CheckPaused>> {
    let config = state.config();
    let name = find(&config, name)?.name().to_owned();
    let action = if paused {
        "check.pause"
    } else {
        "check.resume"
    };
    state
        .store
        .apply(vec![
            Write::SetPaused {
                pipeline: name.clone(),
                paused,
            },
            Write::audit(actor, action, &name, None),
        ])
        .await?;
    Ok(Json(CheckPaused {
        check: name,
        paused,
    }))
}

#[utoipa::path(post, path = "/api/checks/{name}/pause", tag = "checks",
    security(("token" = [])),
    params(("name" = String, Path, description = "the heartbeat's name")),
    responses((status = 200, description = "its state is `paused` until resumed: nothing fires for it, and its open alerts resolve", body = CheckPaused),
              (status = 404, body = crate::ErrorBody)))]
pub async fn pause_check(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CheckPaused>> {
    set_paused(&state, &caller.actor, &name, true).await
}

#[utoipa::path(post, path = "/api/checks/{name}/resume", tag = "checks",
    security(("token" = [])),
    params(("name" = String, Path, description = "the heartbeat's name")),
    responses((status = 200, body = CheckPaused),
              (status = 404, body = crate::ErrorBody)))]
pub async fn resume_check(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<CheckPaused>> {
    set_paused(&state, &caller.actor, &name, false).await
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct SlaQuery {
    /// `24h`, `7d`, `30d` or `365d`; each check's own SLA window when left out.
    pub window: Option<String>,
}

#[utoipa::path(get, path = "/api/sla", tag = "checks",
    security(("token" = [])),
    params(SlaQuery),
    responses((status = 200, description = "each check that has an SLA: its targets, its figures, whether it met them", body = Vec<SlaView>),
              (status = 400, body = crate::ErrorBody)))]
pub async fn sla_report(
    _: Viewer,
    State(state): State<AppState>,
    crate::extract::Query(q): crate::extract::Query<SlaQuery>,
) -> ApiResult<Json<Vec<SlaView>>> {
    if let Some(w) = &q.window
        && !uptime::WINDOWS.iter().any(|(n, ..)| n == w)
    {
        return Err(ApiError::bad_request(format!(
            "window must be 24h, 7d, 30d or 365d, not `{w}`"
        )));
    }
    let config = state.config();
    let report = uptime::sla(
        state.store.as_ref(),
        &config,
        q.window.as_deref(),
        Utc::now(),
    )
    .await?;
    Ok(Json(report.into_iter().map(SlaView::from).collect()))
}
