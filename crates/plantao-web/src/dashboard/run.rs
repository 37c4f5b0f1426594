//! One run: its stages on a timeline, their figures and the end of their logs; cancel, retry.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::chart::{self, Span};
use super::overview::{run_class, severity_class, stage_class, value_text, zone_of};
use super::session::Visitor;
use super::{Acting, AsOperator, Chrome, failed, gate, query_of, respond};
use crate::AppState;
use crate::api::{log_text, parse_run_id, view_of};
use crate::error::ApiResult;

/// How much of each stage's log the page shows: the end, where failures are.
const LOG_TAIL: usize = 32 * 1024;

pub struct StageRow {
    pub step: String,
    pub attempt: u32,
    pub status: String,
    pub status_class: &'static str,
    pub started: String,
    pub duration: String,
    pub exit_code: String,
    pub cpu: String,
    pub memory: String,
    pub error: String,
    /// The end of its log, and whether the beginning was left out.
    pub log: String,
    pub cut: bool,
    pub log_size: String,
    pub running: bool,
}

#[derive(Template)]
#[template(path = "run.html")]
pub struct RunPage {
    pub c: Chrome,
    pub id: String,
    pub pipeline: String,
    pub status: String,
    pub status_class: &'static str,
    pub trigger: String,
    pub zone: String,
    pub facts: Vec<(String, String)>,
    pub error: Option<String>,
    pub gantt: String,
    pub stages: Vec<StageRow>,
    pub counters: Vec<(String, String)>,
    pub metrics: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    pub params: Vec<(String, String)>,
    /// (severity class, severity, where: pattern · step · line, the line).
    pub findings: Vec<(&'static str, String, String, String)>,
    pub active: bool,
    pub can_cancel: bool,
}

/// The last `limit` bytes of `log`, cut on a character boundary.
fn tail(log: &str, limit: usize) -> (&str, bool) {
    if log.len() <= limit {
        return (log, false);
    }
    let mut start = log.len() - limit;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    (&log[start..], true)
}

async fn build(state: &AppState, c: Chrome, id: &str) -> ApiResult<RunPage> {
    let t = c.t;
    let id = parse_run_id(id)?;
    let detail = state.store.run_detail(id).await?;
    let zone = zone_of(state, &detail.run.pipeline);
    let logs: Vec<(String, bool, usize)> = detail
        .stages
        .iter()
        .map(|s| {
            let (text, cut) = tail(&s.log, LOG_TAIL);
            (text.to_owned(), cut, s.log.len())
        })
        .collect();
    let view = view_of(&state.config(), detail);
    let run = &view.run;
    let now = Utc::now();
    let origin = run.started_at.unwrap_or(run.queued_at);
    let spans: Vec<Span> = view
        .stages
        .iter()
        .map(|s| {
            let end = s.finished_at.unwrap_or(now);
            Span {
                label: if s.attempt > 1 {
                    format!("{} #{}", s.step, s.attempt)
                } else {
                    s.step.clone()
                },
                from_ms: (s.started_at - origin).num_milliseconds(),
                to_ms: (end - origin).num_milliseconds(),
                class: stage_class(s.status),
                tip: format!(
                    "{} · {} · {}",
                    s.step,
                    t.word("status", s.status),
                    t.ms_i(Some((end - s.started_at).num_milliseconds()))
                ),
            }
        })
        .collect();
    let mut facts = vec![
        (t.t("run.queued").into_owned(), t.at(run.queued_at, zone)),
        (
            t.t("run.started").into_owned(),
            t.at_opt(run.started_at, zone),
        ),
        (
            t.t("run.finished").into_owned(),
            t.at_opt(run.finished_at, zone),
        ),
        (t.t("runs.duration").into_owned(), t.ms_i(run.duration_ms)),
        (
            t.t("run.cpu").into_owned(),
            t.ms_i(Some(
                view.resources.cpu_user_ms + view.resources.cpu_system_ms,
            )),
        ),
        (
            t.t("run.memory").into_owned(),
            t.kib(view.resources.peak_rss_kb),
        ),
    ];
    if let Some(lag) = run.lag_ms {
        facts.push((t.t("run.lag").into_owned(), t.ms_i(Some(lag))));
    }
    if let Some(node) = &run.node {
        facts.push((t.t("run.node").into_owned(), node.clone()));
    }
    if let Some(reason) = &run.reason {
        facts.push((t.t("run.reason").into_owned(), reason.clone()));
    }
    let error = run.error_message.as_ref().map(|m| match &run.error_stage {
        Some(stage) => format!("{stage}: {m}"),
        None => m.clone(),
    });
    let stages = view
        .stages
        .iter()
        .zip(logs)
        .map(|(s, (log, cut, size))| StageRow {
            step: s.step.clone(),
            attempt: s.attempt,
            status: t.word("status", s.status).into_owned(),
            status_class: stage_class(s.status),
            started: t.at(s.started_at, zone),
            duration: t.ms_i(s.duration_ms),
            exit_code: s
                .exit_code
                .map_or_else(|| "–".to_owned(), |c| c.to_string()),
            cpu: match (s.cpu_user_ms, s.cpu_system_ms) {
                (None, None) => "–".to_owned(),
                (u, sys) => t.ms_i(Some(u.unwrap_or(0) + sys.unwrap_or(0))),
            },
            memory: t.kib(s.peak_rss_kb),
            error: s.error.clone().unwrap_or_default(),
            log,
            cut,
            log_size: format!("{} KB", t.num(size as f64 / 1024.0, 1)),
            running: s.finished_at.is_none(),
        })
        .collect();
    Ok(RunPage {
        id: run.id.to_string(),
        pipeline: run.pipeline.clone(),
        status: t.word("status", run.status).into_owned(),
        status_class: run_class(run.status),
        trigger: t.word("trigger", run.trigger).into_owned(),
        zone: zone.name().to_owned(),
        facts,
        error,
        gantt: chart::gantt(&t.t("run.timeline"), &spans),
        stages,
        counters: view
            .counters
            .iter()
            .map(|k| (format!("{}.{}", k.step, k.name), t.num(k.value, 0)))
            .collect(),
        metrics: view
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), value_text(&t, v)))
            .collect(),
        outputs: view
            .outputs
            .iter()
            .map(|o| (format!("{}.{}", o.step, o.key), o.value.clone()))
            .collect(),
        params: run
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        findings: view
            .findings
            .iter()
            .map(|f| {
                (
                    severity_class(f.severity),
                    t.word("severity", f.severity).into_owned(),
                    format!(
                        "{} · {} · {} {}",
                        f.pattern,
                        f.step,
                        t.t("run.line"),
                        f.line
                    ),
                    f.excerpt.clone(),
                )
            })
            .collect(),
        active: !run.status.is_final(),
        can_cancel: !run.status.is_final() && !run.cancel_requested,
        c,
    })
}

pub async fn page(
    v: Visitor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "pipelines");
    respond(&v, &uri, build(&state, c, &id).await)
}

/// The whole log (or one stage's, `?stage=`), as plain text.
pub async fn log(
    v: Visitor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let query = query_of(&uri);
    let text = async {
        let detail = state.store.run_detail(parse_run_id(&id)?).await?;
        log_text(&detail, query.get("stage").map(String::as_str))
    }
    .await;
    match text {
        Ok(text) => ([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => failed(&v, &uri, &e),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: Acting<AsOperator>,
) -> Response {
    let result = async { crate::api::cancel(&state, &a.who, parse_run_id(&id)?).await }.await;
    a.finish(result, "cancel_asked")
}

/// Retried: to the new run's page.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    a: Acting<AsOperator>,
) -> Response {
    match async { crate::api::retry(&state, &a.who, parse_run_id(&id)?).await }.await {
        Ok(q) => super::see_other(&format!("/runs/{}?notice=run_queued&run={}", q.id, q.id)),
        Err(e) => a.failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_cuts_on_a_character_boundary() {
        let log = "é".repeat(10);
        let (t, cut) = tail(&log, 5);
        assert!(cut);
        assert_eq!(t, "éé");
        assert_eq!(tail("short", 10), ("short", false));
    }
}
