//! Backfills through the API: an operator asks for one, the node owning the `backfills` task
//! queues its periods for the executors, and anyone who reads follows its progress.

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use plantao_engine::RunError;
use plantao_engine::backfill::{BackfillError, Every, periods};
use plantao_engine::{Plan, RunRequest};
use plantao_store::{Backfill, Period, StoreError, Write};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

use super::pipelines::find;
use crate::AppState;
use crate::auth::{Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};

/// More periods than this in one backfill is a mistake (a century of days is 36,500).
const MAX_PERIODS: usize = 40_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// The first day (YYYY-MM-DD).
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// The last day, included.
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// `day` (default), `week` (Monday to Sunday) or `month`.
    #[serde(default)]
    pub every: Option<String>,
    /// Periods queued or running at once (1 to 64, default 1).
    #[serde(default)]
    pub parallel: Option<u32>,
    /// Wait between starting one period and the next, e.g. `5s`.
    #[serde(default)]
    pub sleep: Option<String>,
    /// Run the periods that succeeded before, too.
    #[serde(default)]
    pub ignore_checkpoint: bool,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Answer the periods and which have a checkpoint, and start nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlannedPeriod {
    #[serde(flatten)]
    pub period: Period,
    /// Succeeded before: skipped unless `ignore_checkpoint`.
    pub checkpoint: bool,
}

#[utoipa::path(post, path = "/api/pipelines/{name}/backfills", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    request_body = BackfillRequest,
    responses((status = 202, description = "started: the daemon queues its periods", body = Backfill),
              (status = 200, description = "a dry run: the periods", body = Vec<PlannedPeriod>),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody),
              (status = 409, description = "a backfill of this pipeline is running", body = crate::ErrorBody)))]
pub async fn start_backfill(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(request): Body<BackfillRequest>,
) -> ApiResult<Response> {
    let config = state.config();
    let pipeline = find(&config, &name)?;
    if request.from > request.to {
        return Err(ApiError::bad_request(format!(
            "`from` {} is after `to` {}",
            request.from, request.to
        )));
    }
    let every: Every = request
        .every
        .as_deref()
        .unwrap_or("day")
        .parse()
        .map_err(ApiError::bad_request)?;
    let parallel = request.parallel.unwrap_or(1);
    if !(1..=64).contains(&parallel) {
        return Err(ApiError::bad_request("`parallel` must be from 1 to 64"));
    }
    let sleep = match request.sleep.as_deref() {
        None | Some("0") => std::time::Duration::ZERO,
        Some(text) => plantao_config::parse_duration(text)
            .map_err(|e| ApiError::bad_request(format!("`sleep`: {e}")))?,
    };
    let all = periods(request.from, request.to, every);
    if all.len() > MAX_PERIODS {
        return Err(ApiError::bad_request(format!(
            "{} periods is more than {MAX_PERIODS}: split the span, or use a longer `every`",
            all.len()
        )));
    }
    Plan::new(
        pipeline,
        &RunRequest {
            params: request.params.clone(),
            ..RunRequest::default()
        },
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if request.dry_run {
        let asked = plantao_engine::backfill::BackfillRequest {
            from: request.from,
            to: request.to,
            every,
            parallel: 1,
            sleep,
            ignore_checkpoint: request.ignore_checkpoint,
            params: request.params.clone(),
        };
        let planned: Vec<PlannedPeriod> =
            plantao_engine::backfill::plan(state.store.as_ref(), pipeline, &asked)
                .await
                .map_err(|e| match e {
                    BackfillError::Run(RunError::Store(e)) => ApiError::from(e),
                    other => ApiError::bad_request(other.to_string()),
                })?
                .into_iter()
                .map(|(period, checkpoint)| PlannedPeriod { period, checkpoint })
                .collect();
        return Ok((StatusCode::OK, Json(planned)).into_response());
    }
    if let Some(running) = state
        .store
        .backfills(Some(&pipeline.name), 20)
        .await?
        .into_iter()
        .find(|b| b.state == "running")
    {
        return Err(StoreError::Conflict(format!(
            "backfill {} of {} is running: wait for it to end (GET /api/pipelines/{}/backfills/{})",
            running.id, pipeline.name, pipeline.name, running.id
        ))
        .into());
    }
    let backfill = Backfill {
        id: Uuid::now_v7(),
        pipeline: pipeline.name.clone(),
        from: request.from,
        to: request.to,
        every: request.every.unwrap_or_else(|| "day".to_owned()),
        parallel,
        sleep_ms: i64::try_from(sleep.as_millis()).unwrap_or(i64::MAX),
        ignore_checkpoint: request.ignore_checkpoint,
        params: request.params,
        state: "running".to_owned(),
        created_at: Utc::now(),
        created_by: caller.actor.clone(),
        finished_at: None,
        last_start_at: None,
        error: None,
        periods: u32::try_from(all.len()).unwrap_or(u32::MAX),
        succeeded: 0,
        failed: 0,
        skipped: 0,
        in_flight: 0,
    };
    state
        .store
        .apply(vec![
            Write::PutBackfill(Box::new(backfill.clone())),
            Write::audit(
                &caller.actor,
                "backfill.start",
                &pipeline.name,
                Some(format!(
                    "backfill {} from {} to {} by {}",
                    backfill.id, backfill.from, backfill.to, backfill.every
                )),
            ),
        ])
        .await?;
    Ok((StatusCode::ACCEPTED, Json(backfill)).into_response())
}

#[utoipa::path(get, path = "/api/pipelines/{name}/backfills", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    responses((status = 200, description = "its backfills, newest first (at most 50)", body = Vec<Backfill>),
              (status = 404, body = crate::ErrorBody)))]
pub async fn list_backfills(
    _: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Backfill>>> {
    let pipeline = find(&state.config(), &name)?.name.clone();
    Ok(Json(state.store.backfills(Some(&pipeline), 50).await?))
}

#[utoipa::path(get, path = "/api/pipelines/{name}/backfills/{id}", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name"),
           ("id" = Uuid, Path, description = "the backfill's id")),
    responses((status = 200, description = "its progress", body = Backfill),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn get_backfill(
    _: Viewer,
    State(state): State<AppState>,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<Backfill>> {
    let pipeline = find(&state.config(), &name)?.name.clone();
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a backfill id")))?;
    state
        .store
        .backfills(Some(&pipeline), 10_000)
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("backfill {id} of {pipeline}")))
}
