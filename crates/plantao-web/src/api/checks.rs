//! Checks: the heartbeats plantao watches, their state, what is wrong, their last runs; pause
//! and resume.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use plantao_config::{Config, Expected, Heartbeat};
use plantao_store::{CheckRecord, PingKind, Run, RunFilter, Window, Write};
use serde::Serialize;
use utoipa::ToSchema;

use super::pipelines::WindowStats;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;

/// Runs a check's detail lists.
const LAST_RUNS: u32 = 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckSummary {
    pub name: String,
    /// `heartbeat`.
    pub kind: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// `every 3600s`, or the cron schedule.
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDetail {
    #[serde(flatten)]
    pub check: CheckSummary,
    /// Its newest runs (one per start → end pair), newest first.
    pub runs: Vec<Run>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckPaused {
    pub check: String,
    pub paused: bool,
}

fn find<'c>(config: &'c Config, name: &str) -> ApiResult<&'c Heartbeat> {
    config.heartbeat(name).ok_or_else(|| {
        let known: Vec<&str> = config.heartbeats.iter().map(|h| h.name.as_str()).collect();
        ApiError::not_found(format!(
            "there is no check `{name}`; the checks are: {}",
            if known.is_empty() {
                "(none: add [[heartbeats]] to plantao.toml)".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

async fn summary_of(
    state: &AppState,
    h: &Heartbeat,
    record: Option<&CheckRecord>,
    paused: bool,
) -> ApiResult<CheckSummary> {
    let now = Utc::now();
    let status = plantao_engine::checks::status(h, record, paused, now);
    let day = state
        .store
        .summary(&h.name, Window::Last24h, now, h.timezone)
        .await?;
    let week = state
        .store
        .summary(&h.name, Window::Last7d, now, h.timezone)
        .await?;
    let r = record.cloned().unwrap_or_default();
    Ok(CheckSummary {
        name: h.name.clone(),
        kind: "heartbeat".to_owned(),
        description: h.description.clone(),
        tags: h.tags.clone(),
        expected: match &h.expect {
            Expected::Period(p) => format!("every {}s", p.as_secs()),
            Expected::Schedule(s) => s.text.clone(),
        },
        timezone: h.timezone.name().to_owned(),
        grace_seconds: h.grace.as_secs(),
        state: status.state.as_str().to_owned(),
        due: status.due,
        problems: status.events,
        paused,
        pings: r.pings,
        last_ping_at: r.last_ping_at,
        last_ping: r.last_ping,
        last_start_at: r.last_start_at,
        last_success_at: r.last_success_at,
        last_failure_at: r.last_failure_at,
        last_duration_ms: r.last_duration_ms,
        last_24h: WindowStats::of(&day),
        last_7d: WindowStats::of(&week),
    })
}

#[utoipa::path(get, path = "/api/checks", tag = "checks",
    security(("token" = [])),
    responses((status = 200, description = "every heartbeat, by name", body = Vec<CheckSummary>)))]
pub async fn list_checks(
    _: Viewer,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CheckSummary>>> {
    let config = state.config();
    let records = state.store.checks().await?;
    let paused = state.store.paused_pipelines().await?;
    let mut out = Vec::with_capacity(config.heartbeats.len());
    for h in &config.heartbeats {
        let is_paused = paused.contains(&h.name);
        out.push(summary_of(&state, h, records.get(&h.name), is_paused).await?);
    }
    Ok(Json(out))
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
    let h = find(&config, &name)?;
    let records = state.store.checks().await?;
    let paused = state.store.paused_pipelines().await?.contains(&h.name);
    let check = summary_of(&state, h, records.get(&h.name), paused).await?;
    let runs = state
        .store
        .runs(&RunFilter {
            pipeline: Some(h.name.clone()),
            limit: LAST_RUNS,
            ..RunFilter::default()
        })
        .await?;
    Ok(Json(CheckDetail { check, runs }))
}

async fn set_paused(
    state: &AppState,
    actor: &str,
    name: &str,
    paused: bool,
) -> ApiResult<Json<CheckPaused>> {
    let config = state.config();
    let h = find(&config, name)?;
    let action = if paused {
        "check.pause"
    } else {
        "check.resume"
    };
    state
        .store
        .apply(vec![
            Write::SetPaused {
                pipeline: h.name.clone(),
                paused,
            },
            Write::audit(actor, action, &h.name, None),
        ])
        .await?;
    Ok(Json(CheckPaused {
        check: h.name.clone(),
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
