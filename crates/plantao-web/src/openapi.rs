//! The OpenAPI 3.1 document, generated from the handlers' annotations. A copy is committed as
//! `docs/openapi.json`; a test fails when the two differ.

use axum::Json;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::AppState;
use crate::api;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "plantao",
        description = "Pipelines, runs, metrics and health of a plantao server. Send a token as `Authorization: Bearer TOKEN` (`plantao token create`); roles: viewer reads, operator also triggers, cancels, retries and pauses, admin also manages tokens and reads the audit log. Errors are `{\"error\": {\"code\", \"message\"}}`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        api::health,
        api::list_pipelines,
        api::get_pipeline,
        api::trigger_run,
        api::pause_pipeline,
        api::resume_pipeline,
        api::list_runs,
        api::get_run,
        api::run_log,
        api::cancel_run,
        api::retry_run,
        api::metrics_today,
        api::metrics_history,
        api::metrics_pipeline_runs,
        api::list_tokens,
        api::create_token,
        api::revoke_token,
        api::audit_log,
        crate::prometheus::metrics,
    ),
    modifiers(&Security),
)]
struct Document;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON, pretty-printed with a final newline (as committed).
pub fn document() -> String {
    let mut text = Document::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route(
        "/api/openapi.json",
        get(|| async {
            let value: serde_json::Value = serde_json::from_str(&document()).unwrap_or_default();
            Json(value)
        }),
    )
}
