//! What happens around every request: a request id (returned in `x-request-id`), rate limits
//! on writes, a time limit, one log line, and the HTTP figures `/metrics` reports.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plantao_engine::telemetry::Seconds;

use crate::AppState;
use crate::auth::hash_secret;
use crate::error::ApiError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How long a request may take before it is answered 503 (streams only need to start by then).
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Requests counted since this process started, by (method, route, status), and their
/// durations by (method, route).
#[derive(Debug, Default)]
pub struct HttpStats {
    counts: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<(String, String), Seconds>>,
}

impl HttpStats {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        self.durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((method.to_owned(), route.to_owned()))
            .or_default()
            .observe(seconds);
    }

    pub fn counts(&self) -> BTreeMap<(String, String, u16), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn durations(&self) -> BTreeMap<(String, String), Seconds> {
        self.durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A request id the client sent is kept when it is short and plain; otherwise a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned)
}

/// The buckets a write is taken from: its token's and its client's.
fn write_keys(req: &Request) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        keys.push(format!("addr:{}", addr.ip()));
    }
    if let Some(value) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        keys.push(format!("token:{}", &hash_secret(value)[..16]));
    }
    keys
}

pub async fn around(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let path = crate::ping::hide_key(req.uri().path());
    // One busy worker host must not be throttled: pings have no per-address limit.
    let is_write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !path.starts_with("/ping/");
    let limited = if is_write {
        state.limiter.take(&write_keys(&req), started).err()
    } else {
        None
    };
    let mut response = match limited {
        Some(retry_after) => ApiError::rate_limited(retry_after).into_response(),
        None => match tokio::time::timeout(TIME_LIMIT, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::timeout(format!(
                "the request took longer than {} s; try again",
                TIME_LIMIT.as_secs()
            ))
            .into_response(),
        },
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.http.record(method.as_str(), &route, status, seconds);
    if status >= 500 {
        tracing::warn!(request_id = %id, method = %method, path = %path, status, ms = seconds * 1e3, "request failed");
    } else {
        tracing::debug!(request_id = %id, method = %method, path = %path, status, ms = seconds * 1e3, "request");
    }
    response
}
