//! The OpenAPI 3.1 document, generated from the handlers' annotations. A copy is committed as
//! `docs/openapi.json`; a test fails when the two differ.

use crate::json::Json;
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
    components(schemas(crate::ErrorBody)),
    paths(
        api::health,
        api::list_pipelines,
        api::get_pipeline,
        api::pipeline_trends,
        api::trigger_run,
        api::pause_pipeline,
        api::resume_pipeline,
        api::start_backfill,
        api::list_backfills,
        api::get_backfill,
        api::list_state,
        api::get_state,
        api::put_state,
        api::delete_state,
        api::list_checks,
        api::get_check,
        api::pause_check,
        api::resume_check,
        api::sla_report,
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
        api::active_alerts,
        api::alert_history,
        api::ack_alert,
        api::dismiss_alert,
        api::notification_log,
        api::test_channel,
        api::get_alert_config,
        api::put_alert_config,
        api::list_silences,
        api::create_silence,
        api::expire_silence,
        crate::prometheus::metrics,
    ),
    modifiers(&Security, &CommonErrors),
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

/// The answers any route may give besides its own: a bad request, no or a weak token, a
/// route that does not exist, and a database that does not answer; writes also a body too
/// large, not JSON, or too many writes.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, HttpMethod, Ref, ResponseBuilder};
        let error = |why: &str| {
            ResponseBuilder::new()
                .description(why)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = path == "/api/health";
            for (method, op) in [
                (HttpMethod::Get, item.get.as_mut()),
                (HttpMethod::Post, item.post.as_mut()),
                (HttpMethod::Delete, item.delete.as_mut()),
                (HttpMethod::Put, item.put.as_mut()),
            ] {
                let Some(op) = op else { continue };
                let mut add = |code: &str, why: &str| {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| error(why).into());
                };
                if !public {
                    add("400", "a malformed parameter, query or body");
                    add("401", "no token, or an unknown or revoked one");
                    add("403", "a token of too low a role");
                    add("404", "no such pipeline, run, token, alert or channel");
                    add("503", "the database cannot write or does not answer");
                }
                if method != HttpMethod::Get {
                    add("413", "a body over 64 KiB");
                    add("415", "a body that is not application/json");
                    add("429", "too many writes: wait for Retry-After seconds");
                }
            }
        }
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
