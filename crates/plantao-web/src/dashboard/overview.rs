//! The operations center: is everything fine, what failed, what is firing, what runs next.

use askama::Template;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use chrono_tz::Tz;
use plantao_model::RunStatus;
use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use plantao_config::Pipeline;
use plantao_store::{Alert, RunFilter, Summary};

use super::chart::{self, DayBar};
use super::i18n::Text;
use super::session::Visitor;
use super::{Chrome, gate, respond};
use crate::AppState;
use crate::api::{Condition, RunMetrics, health_of, last_runs, local_days};
use crate::error::ApiResult;

/// How many runs the overview lists.
const LAST_RUNS: u32 = 10;

#[derive(Template)]
#[template(path = "overview.html")]
pub struct Overview {
    pub c: Chrome,
    pub status: &'static str,
    pub status_text: String,
    pub reasons: Vec<String>,
    pub nodes: usize,
    pub database: String,
    pub cards: Vec<Card>,
    pub week: String,
    pub alerts: Vec<AlertRow>,
    pub runs: Vec<RunRow>,
    /// A run it shows has not ended: refresh every 2 s rather than 30.
    pub active: bool,
}

/// Today for one pipeline.
pub struct Card {
    pub pipeline: String,
    pub runs: String,
    pub rate: String,
    /// `ok` (≥ 95 %), `warn` (≥ 80 %), `bad`, or `none` when nothing ran.
    pub rate_class: &'static str,
    pub mean: String,
    pub figures: Vec<(String, String)>,
    pub zone: String,
    /// It has a required parameter: "run now" opens its form instead.
    pub needs_params: bool,
}

pub struct AlertRow {
    pub id: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub state: String,
    pub message: String,
    pub runbook: Option<String>,
    pub since: String,
    pub acknowledged: Option<String>,
}

pub struct RunRow {
    pub id: String,
    pub pipeline: String,
    pub at: String,
    pub trigger: String,
    pub status: String,
    pub status_class: &'static str,
    pub duration: String,
    pub counters: String,
    pub stages: Vec<StageRow>,
}

pub struct StageRow {
    pub step: String,
    pub status: String,
    pub status_class: &'static str,
    pub duration: String,
    pub counters: String,
}

/// The colour class of a run status.
pub fn run_class(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "ok",
        RunStatus::Partial => "warn",
        RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted => "bad",
        RunStatus::Queued | RunStatus::Running => "run",
        RunStatus::Cancelled | RunStatus::Skipped => "skip",
    }
}

pub fn stage_class(s: plantao_model::StageStatus) -> &'static str {
    use plantao_model::StageStatus as S;
    match s {
        S::Succeeded => "ok",
        S::Failed | S::TimedOut | S::Interrupted => "bad",
        S::Running => "run",
        S::Cancelled | S::Skipped => "skip",
    }
}

/// Green at 95 % and above, amber at 80 %, red below.
pub fn rate_class(rate: Option<f64>) -> &'static str {
    match rate {
        None => "none",
        Some(r) if r >= 0.95 => "ok",
        Some(r) if r >= 0.80 => "warn",
        Some(_) => "bad",
    }
}

/// A derived metric or counter value as the locale writes it.
pub fn value_text(t: &Text, v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.fract() == 0.0 {
                t.num(x, 0)
            } else if x.abs() <= 1.0 {
                // Rates are 0–1: shown as percentages.
                t.pct(Some(x))
            } else {
                t.num(x, 2)
            }
        }
        serde_json::Value::Null => "–".to_owned(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Today's card of pipeline `p`: its derived metrics first, then its counters, eight at most.
fn card(t: &Text, p: &Pipeline, today: &Summary) -> Card {
    let metrics = plantao_engine::derived_metrics(p, today.counter_sums());
    let mut figures: Vec<(String, String)> = metrics
        .iter()
        .map(|(k, v)| (k.clone(), value_text(t, &v.to_json())))
        .collect();
    figures.extend(
        today
            .counters
            .iter()
            .take(8usize.saturating_sub(figures.len()))
            .map(|(k, v)| (k.clone(), t.num(v.sum, 0))),
    );
    let rate = today.success_rate();
    Card {
        pipeline: p.name.clone(),
        runs: t.count(today.runs),
        rate: t.pct(rate),
        rate_class: rate_class(rate),
        mean: t.ms(today.mean_duration_ms()),
        figures,
        zone: p.timezone.name().to_owned(),
        needs_params: p.params.values().any(|p| p.required && p.default.is_none()),
    }
}

/// The week chart over every pipeline, a bar per local day.
fn week(t: &Text, days: &[(NaiveDate, BTreeMap<String, Summary>)]) -> String {
    let mut bars: Vec<DayBar> = Vec::with_capacity(days.len());
    for (day, each) in days {
        let mut s = Summary::default();
        for one in each.values() {
            s.merge(one);
        }
        let mut bar = DayBar {
            label: t.day(*day),
            succeeded: s.count("succeeded"),
            partial: s.count("partial"),
            failed: s.count("failed") + s.count("timed_out") + s.count("interrupted"),
            runs: s.runs,
            tip: String::new(),
        };
        bar.tip = t
            .t("overview.week_tip")
            .replace("{day}", &bar.label)
            .replace("{runs}", &t.count(bar.runs))
            .replace("{ok}", &t.count(bar.succeeded))
            .replace("{partial}", &t.count(bar.partial))
            .replace("{failed}", &t.count(bar.failed));
        bars.push(bar);
    }
    chart::week(&t.t("overview.week"), &bars)
}

/// The colour class of a severity.
pub fn severity_class(s: plantao_model::Severity) -> &'static str {
    use plantao_model::Severity;
    match s {
        Severity::Critical => "bad",
        Severity::Warning => "warn",
        Severity::Info => "info",
    }
}

pub fn alert_row(t: &Text, a: &Alert) -> AlertRow {
    AlertRow {
        id: a.id.to_string(),
        severity: t.word("severity", a.severity).into_owned(),
        severity_class: severity_class(a.severity),
        state: t.word("alert_state", a.state).into_owned(),
        message: a.message.clone(),
        runbook: a.runbook.clone(),
        since: t.at(a.fired_at.unwrap_or(a.started_at), Tz::UTC),
        acknowledged: a
            .acknowledged_by
            .as_ref()
            .map(|by| t.f("alerts.acked_by", "who", by)),
    }
}

fn counters_text(t: &Text, counters: impl Iterator<Item = (String, f64)>) -> String {
    counters
        .map(|(k, v)| format!("{k} {}", t.num(v, 0)))
        .collect::<Vec<_>>()
        .join(" · ")
}

pub fn run_row(t: &Text, zone: Tz, r: &RunMetrics) -> RunRow {
    RunRow {
        id: r.id.to_string(),
        pipeline: r.pipeline.clone(),
        at: t.at(r.started_at.unwrap_or(r.queued_at), zone),
        trigger: t.word("trigger", r.trigger).into_owned(),
        status: t.word("status", r.status).into_owned(),
        status_class: run_class(r.status),
        duration: t.ms_i(r.duration_ms),
        counters: counters_text(
            t,
            r.stages.iter().flat_map(|s| {
                s.counters
                    .iter()
                    .map(|(k, v)| (format!("{}.{k}", s.step), *v))
            }),
        ),
        stages: r
            .stages
            .iter()
            .map(|s| StageRow {
                step: s.step.clone(),
                status: t.word("status", s.status).into_owned(),
                status_class: stage_class(s.status),
                duration: t.ms_i(s.duration_ms),
                counters: counters_text(t, s.counters.iter().map(|(k, v)| (k.clone(), *v))),
            })
            .collect(),
    }
}

/// The zone a pipeline's runs are shown in: its own; a heartbeat's; for a probe, or a name no
/// longer configured, the configuration's default (as the team's clock), so one list of runs
/// does not mix zones for no reason.
pub fn zone_of(state: &AppState, pipeline: &str) -> Tz {
    let config = state.config();
    config
        .pipeline(pipeline)
        .map(|p| p.timezone)
        .or_else(|| config.heartbeat(pipeline).map(|h| h.timezone))
        .unwrap_or(config.defaults.timezone)
}

async fn build(state: &AppState, c: Chrome) -> ApiResult<Overview> {
    let t = c.t;
    let health = health_of(state).await;
    let config = state.config();
    let now = Utc::now();
    let all: Vec<&Pipeline> = config.pipelines.iter().collect();
    let days = local_days(state, &all, 7, now).await?;
    let none = Summary::default();
    let today = days.last().map(|(_, each)| each);
    let cards = config
        .pipelines
        .iter()
        .map(|p| card(&t, p, today.and_then(|d| d.get(&p.name)).unwrap_or(&none)))
        .collect();
    let week = week(&t, &days);
    let mut alerts = state.store.open_alerts().await?;
    alerts.retain(|a| !a.dismissed);
    alerts.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.started_at.cmp(&a.started_at))
    });
    let runs = last_runs(
        state,
        &RunFilter {
            limit: LAST_RUNS,
            ..RunFilter::default()
        },
    )
    .await?;
    let active = runs.iter().any(|r| !r.status.is_final());
    let (status, key) = match health.status {
        Condition::Ok => ("ok", "overview.online"),
        Condition::Degraded => ("warn", "overview.degraded"),
        Condition::Down => ("bad", "overview.down"),
    };
    Ok(Overview {
        status,
        status_text: t.t(key).into_owned(),
        reasons: health.reasons,
        nodes: health.nodes.len(),
        database: format!(
            "{} · {} ms",
            health.database.backend,
            t.num(health.database.latency_ms, 1)
        ),
        cards,
        week,
        alerts: alerts.iter().map(|a| alert_row(&t, a)).collect(),
        runs: runs
            .iter()
            .map(|r| run_row(&t, zone_of(state, &r.pipeline), r))
            .collect(),
        active,
        c,
    })
}

pub async fn page(v: Visitor, State(state): State<AppState>, uri: Uri) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "overview");
    respond(&v, &uri, build(&state, c).await)
}
