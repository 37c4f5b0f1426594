//! Runs: listed newest first with a cursor, read in full, their logs; cancel and retry.

use std::collections::BTreeMap;

use crate::json::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use plantao_engine::follow::{LogFollower, Piece};
use plantao_model::{RunId, RunStatus, StageStatus, Trigger};
use plantao_store::{
    Counter, Finding, InputFile, NewRun, Output, Run, RunDetail, RunFilter, Write,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::metrics::run_metrics;
use crate::api::pipelines::{Queued, find};
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    pub pipeline: Option<String>,
    /// queued, running, succeeded, partial, failed, timed_out, cancelled, interrupted, skipped
    pub status: Option<String>,
    /// scheduled, manual, api, catchup, backfill, external, probe, chained
    pub trigger: Option<String>,
    /// Queued at or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Queued before (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// 1 to 1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub runs: Vec<Run>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn parse_enum<T: std::str::FromStr>(
    name: &str,
    value: Option<&str>,
) -> ApiResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.parse()
                .map_err(|e: T::Err| ApiError::bad_request(format!("`{name}`: {e}")))
        })
        .transpose()
}

fn parse_time(name: &str, value: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "`{name}` must be an RFC 3339 time such as 2026-11-22T08:00:00Z ({e})"
                    ))
                })
        })
        .transpose()
}

/// Cursors are the last run's id behind a prefix: opaque to clients, a key to the store.
const CURSOR_PREFIX: &str = "r1.";

fn cursor_of(id: RunId) -> String {
    format!("{CURSOR_PREFIX}{}", id.as_uuid().simple())
}

fn parse_cursor(cursor: &str) -> ApiResult<RunId> {
    cursor
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
        .map(RunId::from_uuid)
        .ok_or_else(|| {
            ApiError::bad_request(
                "`cursor` is not one this API gave: pass `next_cursor` from the previous page as it is",
            )
        })
}

pub(crate) fn parse_run_id(id: &str) -> ApiResult<RunId> {
    id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{id}` is not a run id; run ids look like 019a6b3c-5d2e-7f00-8a1b-2c3d4e5f6a7b"
        ))
    })
}

#[utoipa::path(get, path = "/api/runs", tag = "runs",
    security(("token" = [])),
    params(RunsQuery),
    responses((status = 200, body = RunPage),
              (status = 400, body = crate::ErrorBody)))]
pub async fn list_runs(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> ApiResult<Json<RunPage>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIMIT}"
        )));
    }
    // A pipeline that left the configuration still has its runs in the store.
    if let Some(name) = &q.pipeline {
        let config = state.config();
        let known = config.pipeline(name).is_some()
            || state
                .store
                .pipelines()
                .await?
                .iter()
                .any(|p| &p.record.name == name);
        if !known {
            return Err(ApiError::not_found(config.no_such_pipeline(name)));
        }
    }
    let filter = RunFilter {
        pipeline: q.pipeline.clone(),
        status: parse_enum::<RunStatus>("status", q.status.as_deref())?,
        trigger: parse_enum::<Trigger>("trigger", q.trigger.as_deref())?,
        before: q.cursor.as_deref().map(parse_cursor).transpose()?,
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        limit: limit + 1,
    };
    let mut runs = state.store.runs(&filter).await?;
    let next_cursor = if runs.len() > limit as usize {
        runs.truncate(limit as usize);
        runs.last().map(|r| cursor_of(r.id))
    } else {
        None
    };
    Ok(Json(RunPage { runs, next_cursor }))
}

/// One attempt of one step, without its log (`/api/runs/{id}/log` has it).
#[derive(Debug, Serialize, ToSchema)]
pub struct StageView {
    pub step: String,
    pub attempt: u32,
    pub status: StageStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub log_bytes: usize,
    pub cpu_user_ms: Option<i64>,
    pub cpu_system_ms: Option<i64>,
    pub peak_rss_kb: Option<i64>,
}

/// What the run's steps used, added up (peak memory: the largest).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Resources {
    pub cpu_user_ms: i64,
    pub cpu_system_ms: i64,
    pub peak_rss_kb: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    pub run: Run,
    pub stages: Vec<StageView>,
    pub counters: Vec<Counter>,
    pub outputs: Vec<Output>,
    /// The pipeline's input files as the run found them (with `inputs` in its definition).
    pub inputs: Vec<InputFile>,
    /// Lines of its logs that matched a `[[patterns]]` entry.
    pub findings: Vec<Finding>,
    /// The pipeline's derived metrics over this run's counters.
    #[schema(value_type = Object)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub resources: Resources,
}

#[utoipa::path(get, path = "/api/runs/{id}", tag = "runs",
    security(("token" = [])),
    params(("id" = RunId, Path, description = "the run's id")),
    responses((status = 200, body = RunView),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn get_run(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunView>> {
    let detail = state.store.run_detail(parse_run_id(&id)?).await?;
    Ok(Json(view_of(&state.config(), detail)))
}

/// A run's record as the API shows it: logs left out (their sizes kept), resources added up.
pub(crate) fn view_of(config: &plantao_config::Config, detail: RunDetail) -> RunView {
    let metrics = run_metrics(config, &detail.run.pipeline, &detail.counters);
    let mut resources = Resources::default();
    for s in &detail.stages {
        resources.cpu_user_ms += s.cpu_user_ms.unwrap_or(0);
        resources.cpu_system_ms += s.cpu_system_ms.unwrap_or(0);
        resources.peak_rss_kb = resources.peak_rss_kb.max(s.peak_rss_kb);
    }
    let stages = detail
        .stages
        .into_iter()
        .map(|s| StageView {
            log_bytes: s.log.len(),
            step: s.step,
            attempt: s.attempt,
            status: s.status,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: s.duration_ms,
            exit_code: s.exit_code,
            error: s.error,
            cpu_user_ms: s.cpu_user_ms,
            cpu_system_ms: s.cpu_system_ms,
            peak_rss_kb: s.peak_rss_kb,
        })
        .collect();
    RunView {
        run: detail.run,
        stages,
        counters: detail.counters,
        outputs: detail.outputs,
        inputs: detail.inputs,
        findings: detail.findings,
        metrics,
        resources,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Only this step's log.
    pub stage: Option<String>,
    /// Stream the logs as Server-Sent Events while the run goes on: `log` events with new
    /// text, `restart` when a stage's log was cut and is sent whole, `ended` when a stage ends,
    /// and a last `end` event with the run's final status.
    pub follow: Option<bool>,
}

#[utoipa::path(get, path = "/api/runs/{id}/log", tag = "runs",
    security(("token" = [])),
    params(("id" = RunId, Path, description = "the run's id"), LogQuery),
    responses((status = 200, description = "the stages' logs, each after a `== step (attempt n) ==` line; with `follow=true`, Server-Sent Events (`text/event-stream`)", content(
                (String = "text/plain"),
                (LogEvent = "text/event-stream"),
              )),
              (status = 404, body = crate::ErrorBody)))]
pub async fn run_log(
    _: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Response> {
    let run_id = parse_run_id(&id)?;
    let detail = state.store.run_detail(run_id).await?;
    if q.follow == Some(true) {
        return Ok(follow(state, run_id, q.stage).into_response());
    }
    let text = log_text(&detail, q.stage.as_deref())?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// A run's logs (or one stage's), each attempt after a `== step (attempt n) ==` line.
pub(crate) fn log_text(detail: &RunDetail, stage: Option<&str>) -> ApiResult<String> {
    let id = detail.run.id;
    if let Some(stage) = stage
        && !detail.stages.iter().any(|s| s.step == stage)
    {
        let known: Vec<&str> = detail.stages.iter().map(|s| s.step.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "run {id} has no stage `{stage}`; its stages are: {}",
            known.join(", ")
        )));
    }
    let mut text = String::new();
    for s in detail
        .stages
        .iter()
        .filter(|s| stage.is_none_or(|name| s.step == name))
    {
        text.push_str(&format!("== {} (attempt {}) ==\n", s.step, s.attempt));
        text.push_str(&s.log);
        if !s.log.is_empty() && !s.log.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(text)
}

/// How often a follower looks at the store (the runner records a running log every second).
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The run's logs as events, until the run has ended and everything was sent. A store that
/// does not answer ends the stream with an `error` event.
fn follow(
    state: AppState,
    id: RunId,
    stage: Option<String>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    struct Follow {
        state: AppState,
        id: RunId,
        follower: LogFollower,
        queue: std::collections::VecDeque<Event>,
        done: bool,
        first: bool,
    }
    let start = Follow {
        state,
        id,
        follower: LogFollower::new(stage),
        queue: std::collections::VecDeque::new(),
        done: false,
        first: true,
    };
    let stream = futures::stream::unfold(start, |mut f| async move {
        loop {
            if let Some(event) = f.queue.pop_front() {
                return Some((Ok(event), f));
            }
            if f.done {
                return None;
            }
            if !f.first {
                tokio::time::sleep(FOLLOW_POLL).await;
            }
            f.first = false;
            match f.state.store.run_detail(f.id).await {
                Ok(detail) => {
                    for piece in f.follower.advance(&detail.stages) {
                        let name = match piece {
                            Piece::Text { .. } => "log",
                            Piece::Restart { .. } => "restart",
                            Piece::Ended { .. } => "ended",
                        };
                        f.queue.push_back(json_event(name, &piece));
                    }
                    if detail.run.status.is_final() {
                        f.queue.push_back(json_event(
                            "end",
                            &serde_json::json!({"id": f.id, "status": detail.run.status}),
                        ));
                        f.done = true;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, run = %f.id, "a log follower lost the store");
                    f.queue.push_back(json_event(
                        "error",
                        &serde_json::json!({"message": "the database did not answer; follow again"}),
                    ));
                    f.done = true;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One event of a followed log, as sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogEvent {
    /// `log`, `restart`, `ended`, `end` or `error`.
    pub event: String,
    /// A JSON object: a piece of a stage's log (`step`, `attempt`, `text`), a stage's end
    /// (`status`), the run's end (`id`, `status`) or what went wrong (`message`).
    pub data: String,
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    let e = LogEvent {
        event: name.to_owned(),
        data: serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()),
    };
    Event::default().event(e.event).data(e.data)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelAsked {
    pub id: RunId,
    /// The node running it stops it within a second or so.
    pub cancel_requested: bool,
}

#[utoipa::path(post, path = "/api/runs/{id}/cancel", tag = "runs",
    security(("token" = [])),
    params(("id" = RunId, Path, description = "the run's id")),
    responses((status = 202, body = CancelAsked),
              (status = 404, body = crate::ErrorBody),
              (status = 409, description = "the run has ended", body = crate::ErrorBody)))]
pub async fn cancel_run(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<CancelAsked>)> {
    let id = parse_run_id(&id)?;
    cancel(&state, &caller.actor, id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelAsked {
            id,
            cancel_requested: true,
        }),
    ))
}

/// Asks the node running run `id` to stop it.
pub(crate) async fn cancel(state: &AppState, actor: &str, id: RunId) -> ApiResult<()> {
    let run = state.store.run(id).await?;
    state
        .store
        .apply(vec![
            Write::RequestCancel { id },
            Write::audit(actor, "run.cancel", &id.to_string(), Some(run.pipeline)),
        ])
        .await?;
    Ok(())
}

#[utoipa::path(post, path = "/api/runs/{id}/retry", tag = "runs",
    security(("token" = [])),
    params(("id" = RunId, Path, description = "the run's id")),
    responses((status = 202, description = "a new run with the same parameters and steps, queued", body = Queued),
              (status = 404, body = crate::ErrorBody),
              (status = 409, description = "the run has not ended", body = crate::ErrorBody)))]
pub async fn retry_run(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    let queued = retry(&state, &caller.actor, parse_run_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// Queues a new run with the parameters and steps of run `id`, which has ended.
pub(crate) async fn retry(state: &AppState, actor: &str, id: RunId) -> ApiResult<Queued> {
    let old = state.store.run(id).await?;
    if !old.status.is_final() {
        return Err(ApiError::from(plantao_store::StoreError::Conflict(
            format!(
                "run {id} is {}; only a run that ended can be retried",
                old.status
            ),
        )));
    }
    let config = state.config();
    let p = find(&config, &old.pipeline)?;
    let run = NewRun {
        params: old.params,
        selection: old.selection,
        parent: Some(id),
        ..NewRun::queued(&p.name, Trigger::Api, Utc::now())
    };
    let new_id = run.id;
    state
        .store
        .apply(vec![
            Write::InsertRun(run),
            Write::audit(
                actor,
                "run.retry",
                &id.to_string(),
                Some(format!("as run {new_id}")),
            ),
        ])
        .await?;
    Ok(Queued {
        id: new_id,
        pipeline: p.name.clone(),
        url: format!("/api/runs/{new_id}"),
    })
}
