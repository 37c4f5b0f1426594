//! Pipelines: what they are, when they run next, how they did; trigger, pause, resume.

use std::collections::BTreeMap;

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use plantao_config::{Action, Pipeline};
use plantao_engine::scheduler::Timing;
use plantao_engine::{Plan, RunRequest};
use plantao_model::{RunId, Trigger};
use plantao_store::{Run, RunFilter, Summary, Window, Write};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};

/// How many fire times a pipeline lists.
const UPCOMING: usize = 5;

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineSummary {
    pub name: String,
    pub description: Option<String>,
    /// Cron expressions, or `every 5m`; empty when it only runs when triggered.
    pub schedule: Vec<String>,
    pub timezone: String,
    pub paused: bool,
    pub tags: Vec<String>,
    pub steps: Vec<String>,
    pub params: Vec<ParamInfo>,
    /// The next fire times (maintenance windows left out).
    pub next: Vec<DateTime<Utc>>,
    pub last_run: Option<Run>,
    pub last_24h: WindowStats,
    pub last_7d: WindowStats,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParamInfo {
    pub name: String,
    pub required: bool,
    pub description: Option<String>,
}

/// What a pipeline's runs add up to over a window, from the rollups.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowStats {
    pub runs: u64,
    pub succeeded: u64,
    /// Failed, timed out, interrupted or partial.
    pub failed: u64,
    pub skipped: u64,
    /// Succeeded among those that ran, 0–1; null when none ran.
    pub success_rate: Option<f64>,
    pub mean_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
}

impl WindowStats {
    pub fn of(s: &Summary) -> Self {
        WindowStats {
            runs: s.runs,
            succeeded: s.count("succeeded"),
            failed: s.failed(),
            skipped: s.count("skipped"),
            success_rate: s.success_rate(),
            mean_duration_ms: s.mean_duration_ms(),
            p95_duration_ms: s.durations.quantile(0.95),
        }
    }
}

/// The pipeline by name, or 404 naming the known ones.
pub(crate) fn find<'c>(config: &'c plantao_config::Config, name: &str) -> ApiResult<&'c Pipeline> {
    config
        .pipeline(name)
        .ok_or_else(|| ApiError::not_found(config.no_such_pipeline(name)))
}

pub(crate) async fn summary_of(
    state: &AppState,
    p: &Pipeline,
    paused: bool,
) -> ApiResult<PipelineSummary> {
    let now = Utc::now();
    let timing = Timing::of(p);
    let config = state.config();
    let (next, _) = timing.upcoming(&p.name, &config.maintenance, now, UPCOMING);
    let last_run = state
        .store
        .runs(&RunFilter {
            pipeline: Some(p.name.clone()),
            limit: 1,
            ..RunFilter::default()
        })
        .await?
        .pop();
    // The last 24 h are the newest hourly buckets of the last 7 days: one read for both.
    let (grain, from, to) = Window::Last7d.range(now, p.timezone);
    let (_, day_from, _) = Window::Last24h.range(now, p.timezone);
    let (mut day, mut week) = (Summary::default(), Summary::default());
    for bucket in state.store.rollups(&p.name, grain, from, to).await? {
        if bucket.start >= day_from {
            day.merge(&bucket.summary);
        }
        week.merge(&bucket.summary);
    }
    let mut schedule: Vec<String> = p.schedules.iter().map(|s| s.text.clone()).collect();
    if let Some(every) = p.every {
        schedule.push(format!("every {}s", every.as_secs()));
    }
    Ok(PipelineSummary {
        name: p.name.clone(),
        description: p.description.clone(),
        schedule,
        timezone: p.timezone.name().to_owned(),
        paused,
        tags: p.tags.clone(),
        steps: p.steps.iter().map(|s| s.name.clone()).collect(),
        params: p
            .params
            .iter()
            .map(|(name, param)| ParamInfo {
                name: name.clone(),
                required: param.required,
                description: param.description.clone(),
            })
            .collect(),
        next,
        last_run,
        last_24h: WindowStats::of(&day),
        last_7d: WindowStats::of(&week),
    })
}

#[utoipa::path(get, path = "/api/pipelines", tag = "pipelines",
    security(("token" = [])),
    responses((status = 200, body = Vec<PipelineSummary>),
              (status = 401, body = crate::ErrorBody)))]
pub async fn list_pipelines(
    _: Viewer,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<PipelineSummary>>> {
    let config = state.config();
    let paused = state.store.paused_pipelines().await?;
    let mut all = Vec::with_capacity(config.pipelines.len());
    for p in &config.pipelines {
        all.push(summary_of(&state, p, paused.contains(&p.name)).await?);
    }
    Ok(Json(all))
}

#[utoipa::path(get, path = "/api/pipelines/{name}", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    responses((status = 200, body = PipelineSummary),
              (status = 404, body = crate::ErrorBody)))]
pub async fn get_pipeline(
    _: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineSummary>> {
    let config = state.config();
    let p = find(&config, &name)?;
    let paused = state.store.paused_pipelines().await?;
    Ok(Json(summary_of(&state, p, paused.contains(&p.name)).await?))
}

/// What to run. Every field may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Values for the pipeline's parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Steps not to run.
    #[serde(default)]
    pub skip: Vec<String>,
    /// Run only these steps.
    #[serde(default)]
    pub only: Vec<String>,
    /// Answer the plan and run nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Run even when the pipeline's `inputs` are unchanged since its last success.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub id: RunId,
    pub pipeline: String,
    /// Where to follow it.
    pub url: String,
}

/// What a run would do (a dry run).
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub pipeline: String,
    pub params: BTreeMap<String, String>,
    pub steps: Vec<PlannedStep>,
    pub finally: Vec<PlannedStep>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedStep {
    pub name: String,
    /// `shell`, `argv`, `http` or `sql`.
    pub kind: String,
    /// Steps that must end first.
    pub after: Vec<String>,
    /// Why it will not run, when it will not.
    pub skipped: Option<String>,
}

fn plan_view(plan: &Plan<'_>) -> PlanView {
    let list = |planned: &[plantao_engine::Planned<'_>]| {
        planned
            .iter()
            .map(|s| PlannedStep {
                name: s.step.name.clone(),
                kind: match s.step.action {
                    Action::Shell(_) => "shell",
                    Action::Argv(_) => "argv",
                    Action::Http(_) => "http",
                    Action::Sql(_) => "sql",
                }
                .to_owned(),
                after: s
                    .after
                    .iter()
                    .map(|&i| planned[i].step.name.clone())
                    .collect(),
                skipped: s.skipped.map(str::to_owned),
            })
            .collect()
    };
    PlanView {
        pipeline: plan.pipeline.name.clone(),
        params: plan.recorded_params.clone(),
        steps: list(&plan.steps),
        finally: list(&plan.finally),
    }
}

#[utoipa::path(post, path = "/api/pipelines/{name}/runs", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    request_body = TriggerRequest,
    responses((status = 202, description = "queued", body = Queued),
              (status = 200, description = "a dry run: the plan", body = PlanView),
              (status = 400, description = "an unknown parameter or step, a missing parameter", body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn trigger_run(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(request): Body<TriggerRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(
        match trigger(&state, &caller.actor, &name, request).await? {
            Triggered::Plan(plan) => (StatusCode::OK, Json(plan)).into_response(),
            Triggered::Queued(queued) => (StatusCode::ACCEPTED, Json(queued)).into_response(),
        },
    )
}

/// What a trigger did: planned (a dry run) or queued.
pub(crate) enum Triggered {
    Plan(PlanView),
    Queued(Queued),
}

/// Plans a run of pipeline `name` as `actor` asked, and queues it unless it is a dry run.
pub(crate) async fn trigger(
    state: &AppState,
    actor: &str,
    name: &str,
    request: TriggerRequest,
) -> ApiResult<Triggered> {
    let config = state.config();
    let p = find(&config, name)?;
    let plan = Plan::new(
        p,
        &RunRequest {
            params: request.params,
            skip: request.skip,
            only: request.only,
            force: request.force,
            period: None,
        },
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if request.dry_run {
        return Ok(Triggered::Plan(plan_view(&plan)));
    }
    let run = plan.queued(Trigger::Api, Utc::now());
    let id = run.id;
    state
        .store
        .apply(vec![
            Write::InsertRun(run),
            Write::audit(actor, "run.trigger", &p.name, Some(format!("run {id}"))),
        ])
        .await?;
    Ok(Triggered::Queued(Queued {
        id,
        pipeline: p.name.clone(),
        url: format!("/api/runs/{id}"),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Paused {
    pub pipeline: String,
    pub paused: bool,
}

async fn set_paused(
    state: &AppState,
    actor: &str,
    name: &str,
    paused: bool,
) -> ApiResult<Json<Paused>> {
    let config = state.config();
    let p = find(&config, name)?;
    let action = if paused {
        "pipeline.pause"
    } else {
        "pipeline.resume"
    };
    state
        .store
        .apply(vec![
            Write::SetPaused {
                pipeline: p.name.clone(),
                paused,
            },
            Write::audit(actor, action, &p.name, None),
        ])
        .await?;
    Ok(Json(Paused {
        pipeline: p.name.clone(),
        paused,
    }))
}

#[utoipa::path(post, path = "/api/pipelines/{name}/pause", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    responses((status = 200, description = "its ticks are recorded as skipped (reason `paused`) until resumed", body = Paused),
              (status = 404, body = crate::ErrorBody)))]
pub async fn pause_pipeline(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Paused>> {
    set_paused(&state, &caller.actor, &name, true).await
}

#[utoipa::path(post, path = "/api/pipelines/{name}/resume", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    responses((status = 200, body = Paused),
              (status = 404, body = crate::ErrorBody)))]
pub async fn resume_pipeline(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Paused>> {
    set_paused(&state, &caller.actor, &name, false).await
}
