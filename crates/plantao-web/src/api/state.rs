//! A pipeline's state over HTTP: anyone who reads may look, an admin may change it (audited).

use crate::json::Json;
use axum::extract::State;
use chrono::Utc;
use plantao_model::state_key;
use plantao_store::{StateEntry, Write};
use serde::Deserialize;
use utoipa::ToSchema;

use super::pipelines::find;
use crate::AppState;
use crate::auth::{Admin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};

fn key_of(key: &str) -> ApiResult<String> {
    state_key(key).map_err(ApiError::bad_request)
}

#[utoipa::path(get, path = "/api/pipelines/{name}/state", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name")),
    responses((status = 200, description = "every key, by name", body = Vec<StateEntry>),
              (status = 404, body = crate::ErrorBody)))]
pub async fn list_state(
    _: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<StateEntry>>> {
    let pipeline = find(&state.config(), &name)?.name.clone();
    Ok(Json(state.store.state(&pipeline).await?))
}

#[utoipa::path(get, path = "/api/pipelines/{name}/state/{key}", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name"),
           ("key" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*$",
            description = "the key: letters, digits and `_`, not starting with a digit (any case; kept in lowercase)")),
    responses((status = 200, body = StateEntry),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn get_state(
    _: Viewer,
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<Json<StateEntry>> {
    let pipeline = find(&state.config(), &name)?.name.clone();
    let key = key_of(&key)?;
    state
        .store
        .state(&pipeline)
        .await?
        .into_iter()
        .find(|e| e.key == key)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("{pipeline} has no state key `{key}`")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateValue {
    /// What steps will read as `$PLANTAO_STATE_<KEY>`.
    pub value: String,
}

#[utoipa::path(put, path = "/api/pipelines/{name}/state/{key}", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name"),
           ("key" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*$",
            description = "the key: letters, digits and `_`, not starting with a digit (any case; kept in lowercase)")),
    request_body = StateValue,
    responses((status = 200, description = "set by hand (audited)", body = StateEntry),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn put_state(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
    Body(body): Body<StateValue>,
) -> ApiResult<Json<StateEntry>> {
    let pipeline = find(&state.config(), &name)?.name.clone();
    let key = key_of(&key)?;
    let at = Utc::now();
    state
        .store
        .apply(vec![
            Write::SetState {
                pipeline: pipeline.clone(),
                key: key.clone(),
                value: Some(body.value.clone()),
                at,
                run: None,
            },
            Write::audit(
                &caller.actor,
                "state.set",
                &pipeline,
                Some(format!("key {key}")),
            ),
        ])
        .await?;
    Ok(Json(StateEntry {
        key,
        value: body.value,
        updated_at: at,
        run_id: None,
    }))
}

#[utoipa::path(delete, path = "/api/pipelines/{name}/state/{key}", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name"),
           ("key" = String, Path, pattern = "^[A-Za-z_][A-Za-z0-9_]*$",
            description = "the key: letters, digits and `_`, not starting with a digit (any case; kept in lowercase)")),
    responses((status = 204, description = "removed (audited); steps no longer get it"),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn delete_state(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<axum::http::StatusCode> {
    let pipeline = find(&state.config(), &name)?.name.clone();
    let key = key_of(&key)?;
    state
        .store
        .apply(vec![
            Write::SetState {
                pipeline: pipeline.clone(),
                key: key.clone(),
                value: None,
                at: Utc::now(),
                run: None,
            },
            Write::audit(
                &caller.actor,
                "state.unset",
                &pipeline,
                Some(format!("key {key}")),
            ),
        ])
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
