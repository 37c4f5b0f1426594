//! Heartbeats and probes as a grid, and their incidents.

use askama::Template;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use chrono::{Duration, Utc};
use chrono_tz::Tz;
use plantao_store::Grain;

use super::chart;
use super::session::Visitor;
use super::{Chrome, gate, respond};
use crate::AppState;
use crate::api::check_summaries;
use crate::error::ApiResult;

/// Incidents the page lists.
const INCIDENTS: u32 = 30;

pub struct CheckCard {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub state_class: &'static str,
    pub expected: String,
    pub last: String,
    pub uptime_24h: String,
    pub uptime_30d: String,
    pub problems: Vec<String>,
    pub spark: String,
}

pub struct IncidentRow {
    pub check: String,
    pub started: String,
    pub ended: String,
    pub lasted: String,
    pub cause: String,
}

#[derive(Template)]
#[template(path = "checks.html")]
pub struct ChecksPage {
    pub c: Chrome,
    pub checks: Vec<CheckCard>,
    pub incidents: Vec<IncidentRow>,
}

fn state_class(state: &str) -> &'static str {
    match state {
        "up" => "ok",
        "late" => "warn",
        "down" => "bad",
        "paused" => "skip",
        _ => "none",
    }
}

async fn build(state: &AppState, c: Chrome) -> ApiResult<ChecksPage> {
    let t = c.t;
    let now = Utc::now();
    let mut checks = Vec::new();
    for s in check_summaries(state).await? {
        let zone: Tz = s.timezone.parse().unwrap_or(Tz::UTC);
        let uptime = |w: &str| {
            t.pct100(
                s.uptime
                    .iter()
                    .find(|u| u.window == w)
                    .and_then(|u| u.uptime_percent),
            )
        };
        // One point per hour over the last day: the hour's median response time.
        let hours = state
            .store
            .rollups(&s.name, Grain::Hour, now - Duration::hours(24), now)
            .await?;
        let points: Vec<Option<f64>> = (0..24)
            .map(|h| {
                let start = now - Duration::hours(24 - h);
                hours
                    .iter()
                    .find(|b| b.start <= start && start < b.start + Duration::hours(1))
                    .and_then(|b| b.summary.durations.quantile(0.5))
            })
            .collect();
        checks.push(CheckCard {
            kind: t.word("check_kind", &s.kind).into_owned(),
            state: t.word("check_state", &s.state).into_owned(),
            state_class: state_class(&s.state),
            expected: s.expected.clone(),
            last: s.last_ping_at.map_or_else(
                || t.t("checks.never").into_owned(),
                |at| format!("{} ({})", t.at(at, zone), t.ago(at, now)),
            ),
            uptime_24h: uptime("24h"),
            uptime_30d: uptime("30d"),
            problems: s
                .problems
                .iter()
                .map(|(k, why)| format!("{}: {why}", t.word("problem", k)))
                .collect(),
            spark: chart::sparkline(&t.f("checks.spark", "name", &s.name), &points),
            name: s.name,
        });
    }
    let far = chrono::DateTime::<Utc>::UNIX_EPOCH;
    let incidents = state
        .store
        .incidents(None, far, INCIDENTS)
        .await?
        .iter()
        .map(|i| IncidentRow {
            check: i.check.clone(),
            started: t.at(i.started_at, Tz::UTC),
            ended: i
                .ended_at
                .map_or_else(|| t.t("checks.ongoing").into_owned(), |e| t.at(e, Tz::UTC)),
            lasted: t.ms_i(Some(
                (i.ended_at.unwrap_or(now) - i.started_at).num_milliseconds(),
            )),
            cause: i.cause.clone().unwrap_or_default(),
        })
        .collect();
    Ok(ChecksPage {
        checks,
        incidents,
        c,
    })
}

pub async fn page(v: Visitor, State(state): State<AppState>, uri: Uri) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "checks");
    respond(&v, &uri, build(&state, c).await)
}
