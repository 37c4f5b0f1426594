//! Alerts, their acknowledgement, the delivery log, channel tests and runtime thresholds.

use std::collections::BTreeMap;

use crate::json::Json;
use axum::extract::State;
use chrono::Utc;
use plantao_config::Condition;
use plantao_store::{Alert, Attempt, NotificationRecord, Outcome, Write};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Admin, Operator, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path, Query};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActiveQuery {
    /// Also list the dismissed ones (default false).
    pub dismissed: Option<bool>,
}

#[utoipa::path(get, path = "/api/alerts", tag = "alerts",
    security(("token" = [])),
    params(ActiveQuery),
    responses((status = 200, description = "pending and firing alerts, oldest first; dismissed ones only when asked", body = Vec<Alert>)))]
pub async fn active_alerts(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<ActiveQuery>,
) -> ApiResult<Json<Vec<Alert>>> {
    let with_dismissed = q.dismissed.unwrap_or(false);
    let mut alerts = state.store.open_alerts().await?;
    alerts.retain(|a| with_dismissed || !a.dismissed);
    Ok(Json(alerts))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Older than this id, for the next page (`next` of the previous answer).
    pub before: Option<Uuid>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl PageQuery {
    fn limit(&self) -> ApiResult<u32> {
        let limit = self.limit.unwrap_or(50);
        if (1..=500).contains(&limit) {
            Ok(limit)
        } else {
            Err(ApiError::bad_request("`limit` must be between 1 and 500"))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertPage {
    /// Newest first.
    pub alerts: Vec<Alert>,
    /// Pass it as `before` for the next page; absent on the last page.
    pub next: Option<Uuid>,
}

#[utoipa::path(get, path = "/api/alerts/history", tag = "alerts",
    security(("token" = [])),
    params(PageQuery),
    responses((status = 200, description = "every alert, resolved ones included, newest first", body = AlertPage)))]
pub async fn alert_history(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<AlertPage>> {
    let limit = q.limit()?;
    let alerts = state.store.alert_history(q.before, limit).await?;
    let next = (alerts.len() == limit as usize)
        .then(|| alerts.last().map(|a| a.id))
        .flatten();
    Ok(Json(AlertPage { alerts, next }))
}

fn alert_id(text: &str) -> ApiResult<Uuid> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("`{text}` is not an alert id (a UUID)")))
}

/// Acknowledges alert `id` (and hides it from the active list when `dismiss`).
pub(crate) async fn acknowledge(
    state: &AppState,
    actor: &str,
    id: &str,
    dismiss: bool,
) -> ApiResult<Alert> {
    let id = alert_id(id)?;
    let writes = plantao_engine::alerts::acknowledge(id, actor, dismiss, Utc::now());
    state.store.apply(writes).await?;
    Ok(state.store.alert(id).await?)
}

#[utoipa::path(post, path = "/api/alerts/{id}/ack", tag = "alerts",
    security(("token" = [])),
    params(("id" = Uuid, Path, description = "the alert's id")),
    responses((status = 200, description = "acknowledged: no more reminders", body = Alert),
              (status = 404, body = crate::ErrorBody),
              (status = 409, description = "the alert is resolved", body = crate::ErrorBody)))]
pub async fn ack_alert(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Alert>> {
    acknowledge(&state, &caller.actor, &id, false)
        .await
        .map(Json)
}

#[utoipa::path(post, path = "/api/alerts/{id}/dismiss", tag = "alerts",
    security(("token" = [])),
    params(("id" = Uuid, Path, description = "the alert's id")),
    responses((status = 200, description = "acknowledged and hidden from the active list until it resolves and fires again", body = Alert),
              (status = 404, body = crate::ErrorBody),
              (status = 409, description = "the alert is resolved", body = crate::ErrorBody)))]
pub async fn dismiss_alert(
    Operator(caller): Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Alert>> {
    acknowledge(&state, &caller.actor, &id, true)
        .await
        .map(Json)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    /// Newest first, each with its attempts.
    pub notifications: Vec<NotificationRecord>,
    /// Pass it as `before` for the next page; absent on the last page.
    pub next: Option<Uuid>,
}

#[utoipa::path(get, path = "/api/notifications", tag = "alerts",
    security(("token" = [])),
    params(PageQuery),
    responses((status = 200, description = "the delivery log: every notification and every attempt (time, status, error)", body = NotificationPage)))]
pub async fn notification_log(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<NotificationPage>> {
    let limit = q.limit()?;
    let notifications = state.store.notifications(q.before, limit).await?;
    let next = (notifications.len() == limit as usize)
        .then(|| notifications.last().map(|n| n.notification.id))
        .flatten();
    Ok(Json(NotificationPage {
        notifications,
        next,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelTest {
    pub delivered: bool,
    pub attempt: Attempt,
}

#[utoipa::path(post, path = "/api/channels/{name}/test", tag = "alerts",
    security(("token" = [])),
    params(("name" = String, Path, description = "the channel's name")),
    responses((status = 200, description = "sent now (not through the queue, never retried); `delivered` says whether the channel accepted it", body = ChannelTest),
              (status = 404, body = crate::ErrorBody)))]
pub async fn test_channel(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ChannelTest>> {
    let config = state.config.borrow().clone();
    let attempt =
        plantao_engine::notify::test_channel(state.store.as_ref(), &config, &name, &caller.actor)
            .await
            .map_err(|e| match e {
                plantao_engine::notify::TestError::Unknown(why) => ApiError::not_found(why),
                plantao_engine::notify::TestError::Store(e) => e.into(),
            })?;
    Ok(Json(ChannelTest {
        delivered: attempt.outcome == Outcome::Delivered,
        attempt,
    }))
}

/// A rule's threshold: as configured, as overridden, and the one in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Threshold {
    pub rule: String,
    pub kind: String,
    pub configured: Option<f64>,
    #[serde(rename = "override")]
    pub overridden: Option<f64>,
    /// What the next evaluation compares against.
    pub effective: Option<f64>,
}

/// The rules that take a threshold (`failure_rate`, `expr`).
pub(crate) fn thresholds(state: &AppState, overrides: &BTreeMap<String, f64>) -> Vec<Threshold> {
    state
        .config
        .borrow()
        .alerts
        .iter()
        .filter(|r| {
            matches!(
                r.condition,
                Condition::FailureRate { .. } | Condition::Expr { .. }
            )
        })
        .map(|r| {
            let overridden = overrides.get(&r.name).copied();
            Threshold {
                rule: r.name.clone(),
                kind: r.condition.kind().to_owned(),
                configured: r.threshold,
                overridden,
                effective: overridden.or(r.threshold),
            }
        })
        .collect()
}

#[utoipa::path(get, path = "/api/alert-config", tag = "alerts",
    security(("token" = [])),
    responses((status = 200, description = "the threshold of every rule that takes one", body = Vec<Threshold>)))]
pub async fn get_alert_config(
    _: Admin,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Threshold>>> {
    let overrides = state.store.thresholds().await?;
    Ok(Json(thresholds(&state, &overrides)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdChanges {
    /// By rule name: the new threshold, or null to go back to the configured one.
    pub thresholds: BTreeMap<String, Option<f64>>,
}

#[utoipa::path(put, path = "/api/alert-config", tag = "alerts",
    security(("token" = [])),
    request_body = ThresholdChanges,
    responses((status = 200, description = "stored; the next evaluation uses them, no restart", body = Vec<Threshold>),
              (status = 400, description = "an unknown rule, a rule without a threshold, or not a finite number", body = crate::ErrorBody)))]
pub async fn put_alert_config(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Body(changes): Body<ThresholdChanges>,
) -> ApiResult<Json<Vec<Threshold>>> {
    set_thresholds(&state, &caller.actor, &changes).await?;
    let overrides = state.store.thresholds().await?;
    Ok(Json(thresholds(&state, &overrides)))
}

/// Stores the runtime overrides `changes` gives, audited as `actor`'s.
pub(crate) async fn set_thresholds(
    state: &AppState,
    actor: &str,
    changes: &ThresholdChanges,
) -> ApiResult<()> {
    let known: Vec<String> = thresholds(state, &BTreeMap::new())
        .into_iter()
        .map(|t| t.rule)
        .collect();
    if changes.thresholds.is_empty() {
        return Err(ApiError::bad_request(
            "`thresholds` is empty: give {\"rule\": number} (or null to restore the configured one)",
        ));
    }
    let now = Utc::now();
    let mut writes = Vec::new();
    for (rule, value) in &changes.thresholds {
        if !known.contains(rule) {
            return Err(ApiError::bad_request(format!(
                "rule `{rule}` takes no threshold here; the rules with one are: {}",
                if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        if value.is_some_and(|v| !v.is_finite()) {
            return Err(ApiError::bad_request(format!(
                "the threshold of `{rule}` must be a finite number"
            )));
        }
        writes.push(Write::SetThreshold {
            rule: rule.clone(),
            value: *value,
            at: now,
        });
        let detail = value.map_or_else(|| "restored".to_owned(), |v| v.to_string());
        writes.push(Write::audit(actor, "alert_config.set", rule, Some(detail)));
    }
    state.store.apply(writes).await?;
    Ok(())
}
