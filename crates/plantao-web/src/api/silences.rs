//! Silences: listed by anyone who reads, created and ended by admins (audited).

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use plantao_engine::alerts::silences::{self, SilenceRequest};
use plantao_store::Silence;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Admin, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};

/// How many silences a list answers at most.
const LIST_LIMIT: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SilenceQuery {
    /// Also the ones that have ended (default false: in force and to come).
    pub all: Option<bool>,
}

#[utoipa::path(get, path = "/api/silences", tag = "alerts",
    security(("token" = [])),
    params(SilenceQuery),
    responses((status = 200, description = "silences in force and to come (all of them with all=true), newest first", body = Vec<Silence>)))]
pub async fn list_silences(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<SilenceQuery>,
) -> ApiResult<Json<Vec<Silence>>> {
    let since = if q.all.unwrap_or(false) {
        DateTime::<Utc>::UNIX_EPOCH
    } else {
        Utc::now()
    };
    Ok(Json(state.store.silences(since, LIST_LIMIT).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// `name=value` or `name!=value` over rule, kind, pipeline, severity, check or a label; `*`
    /// stands for any text. All must match.
    pub matchers: Vec<String>,
    /// Default: now. A later start silences in advance.
    pub starts_at: Option<DateTime<Utc>>,
    /// The end; or give `duration` instead.
    pub ends_at: Option<DateTime<Utc>>,
    /// From the start: `2h`, `90m`.
    pub duration: Option<String>,
    /// Why.
    pub comment: String,
}

#[utoipa::path(post, path = "/api/silences", tag = "alerts",
    security(("token" = [])),
    request_body = NewSilence,
    responses((status = 201, description = "stored; the next evaluation applies it", body = Silence),
              (status = 400, description = "a matcher, the period or the comment is wrong", body = crate::ErrorBody)))]
pub async fn create_silence(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Body(new): Body<NewSilence>,
) -> ApiResult<(StatusCode, Json<Silence>)> {
    let request = SilenceRequest {
        matchers: new.matchers,
        starts_at: new.starts_at,
        ends_at: new.ends_at,
        duration: new.duration,
        comment: new.comment,
    };
    let silence = add_silence(&state, &caller.actor, &request).await?;
    Ok((StatusCode::CREATED, Json(silence)))
}

/// Stores the silence `request` asks for, as `actor`'s.
pub(crate) async fn add_silence(
    state: &AppState,
    actor: &str,
    request: &SilenceRequest,
) -> ApiResult<Silence> {
    let (silence, writes) =
        silences::add(request, actor, Utc::now()).map_err(ApiError::bad_request)?;
    state.store.apply(writes).await?;
    Ok(silence)
}

#[utoipa::path(post, path = "/api/silences/{id}/expire", tag = "alerts",
    security(("token" = [])),
    params(("id" = Uuid, Path, description = "the silence's id")),
    responses((status = 204, description = "ended now (one still to come never starts)"),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody),
              (status = 409, description = "it has ended already", body = crate::ErrorBody)))]
pub async fn expire_silence(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    end_silence(&state, &caller.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends silence `id` now.
pub(crate) async fn end_silence(state: &AppState, actor: &str, id: &str) -> ApiResult<()> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not a silence id (a UUID)")))?;
    state
        .store
        .apply(silences::expire(id, actor, Utc::now()))
        .await?;
    Ok(())
}
