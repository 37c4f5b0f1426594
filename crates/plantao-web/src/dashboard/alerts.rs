//! Alerts: the active ones, the history, silences and the notification delivery log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use plantao_engine::alerts::silences::{self, SilenceRequest};

use super::overview::{AlertRow, alert_row};
use super::session::Visitor;
use super::{Acting, AsAdmin, AsOperator, Chrome, gate, respond};
use crate::AppState;
use crate::api::{acknowledge, add_silence, end_silence};
use crate::error::ApiResult;

/// How many entries of the history and of the delivery log the page lists.
const LIST: u32 = 50;

pub struct SilenceRow {
    pub id: String,
    pub matchers: String,
    pub period: String,
    pub comment: String,
    pub author: String,
    pub active: bool,
}

pub struct DeliveryRow {
    pub at: String,
    pub channel: String,
    pub event: String,
    pub state: String,
    pub state_class: &'static str,
    pub attempts: u32,
    pub error: String,
}

pub struct HistoryRow {
    pub severity: String,
    pub severity_class: &'static str,
    pub rule: String,
    pub message: String,
    pub started: String,
    pub resolved: String,
    pub acked: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub c: Chrome,
    pub alerts: Vec<AlertRow>,
    pub dismissed: Vec<AlertRow>,
    pub history: Vec<HistoryRow>,
    pub silences: Vec<SilenceRow>,
    pub deliveries: Vec<DeliveryRow>,
}

async fn build(state: &AppState, c: Chrome) -> ApiResult<AlertsPage> {
    let t = c.t;
    let now = Utc::now();
    let open = state.store.open_alerts().await?;
    let (dismissed, active): (Vec<_>, Vec<_>) = open.iter().partition(|a| a.dismissed);
    let history = state.store.alert_history(None, LIST).await?;
    let silences = state.store.silences(now, LIST).await?;
    let deliveries = state.store.notifications(None, LIST).await?;
    let at = |x: DateTime<Utc>| t.at(x, Tz::UTC);
    Ok(AlertsPage {
        alerts: active.iter().map(|a| alert_row(&t, a)).collect(),
        dismissed: dismissed.iter().map(|a| alert_row(&t, a)).collect(),
        history: history
            .iter()
            .map(|a| {
                let row = alert_row(&t, a);
                HistoryRow {
                    severity: row.severity,
                    severity_class: row.severity_class,
                    rule: a.rule.clone(),
                    message: a.message.clone(),
                    started: at(a.started_at),
                    resolved: a.resolved_at.map_or_else(|| "–".to_owned(), at),
                    acked: a.acknowledged_by.clone().unwrap_or_else(|| "–".to_owned()),
                }
            })
            .collect(),
        silences: silences
            .iter()
            .map(|s| SilenceRow {
                id: s.id.to_string(),
                matchers: silences::describe(&s.matchers),
                period: format!("{} → {}", at(s.starts_at), at(s.ends_at)),
                comment: s.comment.clone(),
                author: s.author.clone(),
                active: s.is_active(now),
            })
            .collect(),
        deliveries: deliveries
            .iter()
            .map(|n| {
                let n = &n.notification;
                DeliveryRow {
                    at: at(n.delivered_at.unwrap_or(n.created_at)),
                    channel: n.channel.clone(),
                    event: t.word("event", n.event).into_owned(),
                    state: t.word("delivery", n.state).into_owned(),
                    state_class: match n.state {
                        plantao_model::DeliveryState::Delivered => "ok",
                        plantao_model::DeliveryState::Pending => "run",
                        plantao_model::DeliveryState::Failed => "bad",
                    },
                    attempts: n.attempts,
                    error: n.last_error.clone().unwrap_or_default(),
                }
            })
            .collect(),
        c,
    })
}

pub async fn page(v: Visitor, State(state): State<AppState>, uri: Uri) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "alerts");
    respond(&v, &uri, build(&state, c).await)
}

pub async fn ack(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: Acting<AsOperator>,
) -> Response {
    a.finish(acknowledge(&state, &a.who, &id, false).await, "acked")
}

pub async fn dismiss(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: Acting<AsOperator>,
) -> Response {
    a.finish(acknowledge(&state, &a.who, &id, true).await, "dismissed")
}

/// A new silence: matchers one per line (or separated by commas), a duration, a comment.
pub async fn silence(State(state): State<AppState>, a: Acting<AsAdmin>) -> Response {
    let request = SilenceRequest {
        matchers: a
            .field("matchers")
            .split(['\n', ','])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
        duration: Some(a.field("duration").trim().to_owned()).filter(|d| !d.is_empty()),
        comment: a.field("comment").trim().to_owned(),
        ..SilenceRequest::default()
    };
    a.finish(add_silence(&state, &a.who, &request).await, "silenced")
}

pub async fn expire(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: Acting<AsAdmin>,
) -> Response {
    a.finish(end_silence(&state, &a.who, &id).await, "expired")
}
