//! plantao over HTTP: the dashboard at `/`, the JSON API under `/api` with its OpenAPI document,
//! Prometheus metrics at `/metrics`, and the health check at `/api/health`. Handlers are thin:
//! they check the caller's role (by the extractor they take), parse, ask the store or the
//! engine, and answer; the dashboard's pages call the same functions as the API's handlers. The
//! web layer sees only the store's interface, never a backend.

// utoipa's path macro spells out the IntoParams types it names.
#[allow(unused_qualifications)]
mod api;
pub mod auth;
pub mod dashboard;
mod error;
mod extract;
mod json;
mod limits;
mod middleware;
mod openapi;
mod ping;
mod prometheus;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use plantao_config::Config;
use plantao_engine::telemetry::Telemetry;
use plantao_engine::writable::Writable;
use plantao_store::{Store, Timestamp};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use api::{CreatedToken, mint};
pub use error::{ApiError, ErrorBody};
pub use openapi::document;
pub use ping::hide_key;

/// What a node running the daemon tells the API about itself.
#[derive(Clone, Debug)]
pub struct Vitals {
    pub node: String,
    pub writable: Arc<Writable>,
    pub telemetry: Arc<Telemetry>,
    /// Where runs that pings end are announced to the alert evaluator.
    pub ended: tokio::sync::mpsc::UnboundedSender<plantao_model::RunId>,
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: watch::Receiver<Arc<Config>>,
    pub(crate) vitals: Option<Vitals>,
    pub(crate) started: Instant,
    pub(crate) started_at: Timestamp,
    pub(crate) http: Arc<middleware::HttpStats>,
    pub(crate) limiter: Arc<limits::Limiter>,
    /// Each heartbeat's own ping limit (`max_pings_per_minute`), where it has one.
    pub(crate) ping_limiter: Arc<limits::Limiter>,
    /// Writes the pings that arrive together in one transaction.
    pub(crate) pings: plantao_engine::checks::Recorder,
    pub(crate) tokens: Arc<auth::Tokens>,
}

impl AppState {
    /// `config` follows reloads; `vitals` is absent when no daemon runs in this process. Called
    /// inside a Tokio runtime: it starts the ping writer.
    pub fn new(
        store: Arc<dyn Store>,
        config: watch::Receiver<Arc<Config>>,
        vitals: Option<Vitals>,
    ) -> Self {
        let per_minute = config.borrow().server.writes_per_minute;
        AppState {
            config,
            vitals,
            started: Instant::now(),
            started_at: chrono::Utc::now(),
            http: Arc::default(),
            limiter: Arc::new(limits::Limiter::new(per_minute)),
            ping_limiter: Arc::new(limits::Limiter::new(1)),
            pings: plantao_engine::checks::Recorder::start(store.clone()),
            store,
            tokens: Arc::default(),
        }
    }

    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    pub(crate) fn public_read(&self) -> bool {
        self.config.borrow().server.public_read
    }
}

/// Every route, with its middleware.
pub fn router(state: AppState) -> Router {
    api::routes()
        .merge(dashboard::routes())
        .merge(ping::routes())
        .merge(prometheus::routes())
        .merge(openapi::routes())
        .fallback(dashboard::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::around,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn launch(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
