//! The ping routes, with healthchecks.io's slug URLs so that existing wrappers work:
//! `GET|POST|HEAD /ping/{key}/{slug}` (success), then `/start`, `/fail`, `/log` or
//! `/{exit_status}` after it, and `?rid=<uuid>` to pair the start and the end of overlapping
//! runs. A wrong key or an unknown slug is 404, alike, so neither can be guessed from answers.
//! Bodies are read up to `[pings] body_limit` and the rest is counted and dropped: a large body
//! is cut, never refused. Pings need no token and no per-address rate limit; a heartbeat may
//! set its own (`max_pings_per_minute`).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use plantao_engine::checks::{Ping, Signal};
use serde::Deserialize;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ping/{key}/{slug}", get(success).post(success))
        .route("/ping/{key}/{slug}/{signal}", get(signal).post(signal))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

#[derive(Debug, Deserialize)]
pub struct PingQuery {
    rid: Option<String>,
}

async fn success(
    State(state): State<AppState>,
    Path((key, slug)): Path<(String, String)>,
    Query(query): Query<PingQuery>,
    body: Body,
) -> Response {
    take(state, &key, slug, Signal::Success, query, body).await
}

async fn signal(
    State(state): State<AppState>,
    Path((key, slug, signal)): Path<(String, String, String)>,
    Query(query): Query<PingQuery>,
    body: Body,
) -> Response {
    let signal = match signal.as_str() {
        "start" => Signal::Start,
        "fail" => Signal::Fail,
        "log" => Signal::Log,
        code => match code.parse::<u8>() {
            Ok(c) => Signal::Exit(c),
            Err(_) => return answer(StatusCode::NOT_FOUND, "not found"),
        },
    };
    take(state, &key, slug, signal, query, body).await
}

async fn take(
    state: AppState,
    key: &str,
    slug: String,
    signal: Signal,
    query: PingQuery,
    body: Body,
) -> Response {
    let config = state.config();
    let Some(heartbeat) = config.heartbeat(&slug).filter(|h| {
        h.key(&config.pings)
            .is_some_and(|k| same(k.expose().as_bytes(), key.as_bytes()))
    }) else {
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    if let Some(limit) = heartbeat.max_pings_per_minute {
        let keys = [format!("check:{slug}")];
        if let Err(wait) = state
            .ping_limiter
            .take_at(&keys, std::time::Instant::now(), limit)
        {
            let mut refused = (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many pings: at most {limit} a minute for this check; ping again in {wait} s"),
            )
                .into_response();
            if let Ok(v) = axum::http::HeaderValue::from_str(&wait.to_string()) {
                refused
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
            return refused;
        }
    }
    if let Some(rid) = &query.rid
        && uuid::Uuid::parse_str(rid).is_err()
    {
        return answer(
            StatusCode::BAD_REQUEST,
            "invalid uuid format: rid must be a UUID, e.g. from `uuidgen`",
        );
    }
    let (body, body_size) = read_bounded(body, config.pings.body_limit).await;
    let ping = Ping {
        check: slug,
        signal,
        rid: query.rid,
        body,
        body_size,
        at: chrono::Utc::now(),
    };
    match state.pings.record(ping, config.pings.body_limit).await {
        Ok(recorded) => {
            if recorded.ended
                && let Some(v) = &state.vitals
            {
                // The evaluator may be gone on shutdown; the run is judged at the next start.
                let _ = v.ended.send(recorded.run);
            }
            answer(StatusCode::OK, "OK")
        }
        Err(e) => {
            if let Some(v) = &state.vitals {
                v.writable.failed(&e);
            }
            tracing::warn!(error = %e, "cannot record a ping");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ping could not be recorded (the database refuses writes); ping again",
            )
        }
    }
}

/// The body's first `limit` bytes (and a few more, to cut on a character's boundary), and the
/// whole body's size; the rest is read and dropped, so the sender is not cut off mid-request.
async fn read_bounded(body: Body, limit: usize) -> (Vec<u8>, usize) {
    let mut kept = Vec::new();
    let mut size = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        size += chunk.len();
        let room = (limit + 4).saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    (kept, size)
}

/// Compares in time that does not depend on where the two differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn answer(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// A ping URL or path as it may be logged or printed: its key is a secret.
pub fn hide_key(url: &str) -> String {
    let path_at = url.find("://").map_or(0, |i| {
        url[i + 3..].find('/').map_or(url.len(), |j| i + 3 + j)
    });
    let (base, path) = url.split_at(path_at);
    match path.strip_prefix("/ping/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, after)) => format!("{base}/ping/…/{after}"),
            None => format!("{base}/ping/…"),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::hide_key;

    #[test]
    fn the_key_is_hidden_in_paths_and_urls_and_nothing_else_changes() {
        assert_eq!(
            hide_key("/ping/secret-key/backup/start"),
            "/ping/…/backup/start"
        );
        assert_eq!(hide_key("/ping/secret-key"), "/ping/…");
        assert_eq!(
            hide_key("http://ops:8077/ping/secret-key/backup?rid=1"),
            "http://ops:8077/ping/…/backup?rid=1"
        );
        assert_eq!(hide_key("/api/runs"), "/api/runs");
        assert_eq!(
            hide_key("http://ops:8077/api/ping/x"),
            "http://ops:8077/api/ping/x"
        );
    }
}
