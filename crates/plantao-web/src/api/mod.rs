//! The JSON API under `/api`.

mod admin;
mod alerts;
mod backfills;
mod checks;
mod health;
pub(crate) mod metrics;
mod pipelines;
mod runs;
mod silences;
mod state;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;
use crate::error::ApiError;

pub(crate) use admin::*;
pub use admin::{CreatedToken, mint};
pub(crate) use alerts::*;
pub(crate) use backfills::*;
pub(crate) use checks::*;
pub(crate) use health::*;
pub(crate) use metrics::*;
pub(crate) use pipelines::*;
pub(crate) use runs::*;
pub(crate) use silences::*;
pub(crate) use state::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/pipelines", get(list_pipelines))
        .route("/api/pipelines/{name}", get(get_pipeline))
        .route("/api/pipelines/{name}/runs", post(trigger_run))
        .route("/api/pipelines/{name}/pause", post(pause_pipeline))
        .route("/api/pipelines/{name}/resume", post(resume_pipeline))
        .route(
            "/api/pipelines/{name}/backfills",
            get(list_backfills).post(start_backfill),
        )
        .route("/api/pipelines/{name}/backfills/{id}", get(get_backfill))
        .route("/api/pipelines/{name}/trends", get(pipeline_trends))
        .route("/api/pipelines/{name}/state", get(list_state))
        .route(
            "/api/pipelines/{name}/state/{key}",
            get(get_state).put(put_state).delete(delete_state),
        )
        .route("/api/checks", get(list_checks))
        .route("/api/checks/{name}", get(get_check))
        .route("/api/checks/{name}/pause", post(pause_check))
        .route("/api/checks/{name}/resume", post(resume_check))
        .route("/api/sla", get(sla_report))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(get_run))
        .route("/api/runs/{id}/log", get(run_log))
        .route("/api/runs/{id}/cancel", post(cancel_run))
        .route("/api/runs/{id}/retry", post(retry_run))
        .route("/api/metrics/today", get(metrics_today))
        .route("/api/metrics/history", get(metrics_history))
        .route("/api/metrics/pipeline-runs", get(metrics_pipeline_runs))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{name}", delete(revoke_token))
        .route("/api/audit", get(audit_log))
        .route("/api/alerts", get(active_alerts))
        .route("/api/alerts/history", get(alert_history))
        .route("/api/alerts/{id}/ack", post(ack_alert))
        .route("/api/alerts/{id}/dismiss", post(dismiss_alert))
        .route("/api/notifications", get(notification_log))
        .route("/api/channels/{name}/test", post(test_channel))
        .route(
            "/api/alert-config",
            get(get_alert_config).put(put_alert_config),
        )
        .route("/api/silences", get(list_silences).post(create_silence))
        .route("/api/silences/{id}/expire", post(expire_silence))
        .method_not_allowed_fallback(not_allowed)
}

async fn not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::method_not_allowed(format!(
        "{} does not answer {method}; /api/openapi.json lists what each route answers",
        uri.path()
    ))
}

/// What the API answers for a path nothing serves.
pub(crate) fn not_found(uri: &axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "there is nothing at {}; /api/openapi.json lists every route",
        uri.path()
    ))
}
