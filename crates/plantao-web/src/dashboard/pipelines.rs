//! Pipelines: the list, and one pipeline's schedule, trends, history and "run now" form.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use plantao_config::{Pipeline, TrendSpan};
use plantao_engine::scheduler::Timing;
use plantao_engine::trends::{Direction, Verdict};
use plantao_model::{RunStatus, Trigger};
use plantao_store::{Run, RunFilter, Summary, Timestamp};

use super::chart;
use super::figures;
use super::i18n::Text;
use super::overview::{RunRow, rate_class, run_class, run_row};
use super::session::Visitor;
use super::{Acting, AsOperator, Chrome, done, gate, html, query_of, respond};
use crate::AppState;
use crate::api::{
    PlanView, TrendPer, TriggerRequest, Triggered, find, last_runs, local_days, parse_enum,
    parse_run_id, summary_of, trends_over, trigger,
};
use crate::error::{ApiError, ApiResult};

/// Runs per page of a pipeline's history.
const PAGE: u32 = 25;

pub struct PipelineRow {
    pub name: String,
    pub description: String,
    pub state: String,
    pub state_class: &'static str,
    pub last: String,
    pub next: String,
    pub rate: String,
    pub rate_class: &'static str,
}

#[derive(Template)]
#[template(path = "pipelines.html")]
pub struct List {
    pub c: Chrome,
    pub rows: Vec<PipelineRow>,
}

/// What the list shows of a pipeline.
fn row(
    t: &Text,
    p: &Pipeline,
    paused: bool,
    last: Option<&Run>,
    next: Option<Timestamp>,
    rate: Option<f64>,
) -> PipelineRow {
    let zone = p.timezone;
    let (state, state_class) = if paused {
        (t.t("pipelines.paused").into_owned(), "skip")
    } else {
        match last {
            Some(r) => (t.word("status", r.status).into_owned(), run_class(r.status)),
            None => (t.t("pipelines.never").into_owned(), "none"),
        }
    };
    PipelineRow {
        name: p.name.clone(),
        description: p.description.clone().unwrap_or_default(),
        state,
        state_class,
        last: last.map_or_else(|| "–".to_owned(), |r| t.at(r.queued_at, zone)),
        next: next.map_or_else(|| t.t("pipelines.no_next").into_owned(), |n| t.at(n, zone)),
        rate: t.pct(rate),
        rate_class: rate_class(rate),
    }
}

/// Every pipeline with its last run, next run and success rate over the last 7 calendar days
/// (today included): the rates from the daily rollups, the last runs in one read.
pub async fn list(v: Visitor, State(state): State<AppState>, uri: Uri) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "pipelines");
    let built = async {
        let config = state.config();
        let now = Utc::now();
        let paused = state.store.paused_pipelines().await?;
        let all: Vec<&Pipeline> = config.pipelines.iter().collect();
        let week = figures::added(&local_days(&state, &all, 7, now).await?);
        let latest = state.store.latest_runs().await?;
        let mut rows = Vec::with_capacity(config.pipelines.len());
        for p in &config.pipelines {
            let (next, _) = Timing::of(p).upcoming(&p.name, &config.maintenance, now, 1);
            rows.push(row(
                &c.t,
                p,
                paused.contains(&p.name),
                latest.get(&p.name),
                next.first().copied(),
                week.get(&p.name).and_then(Summary::success_rate),
            ));
        }
        Ok::<_, ApiError>(List { rows, c })
    }
    .await;
    respond(&v, &uri, built)
}

const WEEKDAYS_EN: [&str; 7] = [
    "Sundays",
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
];
const WEEKDAYS_PT: [&str; 7] = [
    "domingos", "segundas", "terças", "quartas", "quintas", "sextas", "sábados",
];

fn list_words(t: &Text, items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {} {last}", rest.join(", "), t.t("sched.and")),
    }
}

/// A cron schedule in words, for the common shapes (times of day, weekdays, every N minutes);
/// `None` for the others, which the page shows as cron only.
pub fn in_words(t: &Text, cron: &str) -> Option<String> {
    let alias = match cron.trim().to_ascii_lowercase().as_str() {
        "@hourly" => Some("0 * * * *"),
        "@daily" | "@midnight" => Some("0 0 * * *"),
        "@weekly" => Some("0 0 * * 0"),
        _ => None,
    };
    let mut fields: Vec<&str> = alias.unwrap_or(cron).split_whitespace().collect();
    if fields.len() == 6 && fields[0] == "0" {
        fields.remove(0);
    }
    let [minute, hour, dom, month, dow] = fields[..] else {
        return None;
    };
    if dom != "*" || month != "*" {
        return None;
    }
    if let Some(n) = minute.strip_prefix("*/")
        && hour == "*"
        && dow == "*"
    {
        return Some(t.f("sched.every_minutes", "n", n));
    }
    let number = |s: &str| s.parse::<u32>().ok();
    if hour == "*" && dow == "*" {
        return number(minute).map(|m| t.f("sched.hourly", "m", format!("{m:02}")));
    }
    let minutes: Option<Vec<u32>> = minute.split(',').map(number).collect();
    let hours: Option<Vec<u32>> = hour.split(',').map(number).collect();
    let (minutes, hours) = (minutes?, hours?);
    let times: Vec<String> = hours
        .iter()
        .flat_map(|h| minutes.iter().map(move |m| format!("{h:02}:{m:02}")))
        .collect();
    let times = list_words(t, &times);
    if dow == "*" {
        return Some(t.f("sched.daily", "times", times));
    }
    let names = match t.lang {
        super::i18n::Lang::En => WEEKDAYS_EN,
        super::i18n::Lang::PtBr => WEEKDAYS_PT,
    };
    let days: Option<Vec<String>> = dow
        .split(',')
        .map(|d| number(d).map(|d| names[(d % 7) as usize].to_owned()))
        .collect();
    Some(
        t.f("sched.weekly", "days", list_words(t, &days?))
            .replace("{times}", &times),
    )
}

pub struct Trend {
    pub name: String,
    pub last: String,
    pub spark: String,
    /// Its colour class and words: improving, worsening, stable (or rising, falling).
    pub verdict: Option<(&'static str, String)>,
}

pub struct ParamField {
    pub name: String,
    pub required: bool,
    pub default: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "pipeline.html")]
pub struct Detail {
    pub c: Chrome,
    pub p: PipelineRow,
    pub schedules: Vec<(String, String)>,
    pub every: Option<String>,
    pub zone: String,
    pub next: Vec<String>,
    pub day: String,
    pub week_stats: String,
    pub trends_title: String,
    pub trends: Vec<Trend>,
    pub runs: Vec<RunRow>,
    pub filter_status: String,
    pub filter_trigger: String,
    pub statuses: Vec<(String, String)>,
    pub triggers: Vec<(String, String)>,
    pub older: Option<String>,
    pub params: Vec<ParamField>,
    pub steps: Vec<String>,
    pub plan: Option<PlanView>,
    pub active: bool,
}

fn stats_text(t: &Text, s: &crate::api::WindowStats) -> String {
    t.t("pipelines.stats")
        .replace("{runs}", &t.count(s.runs))
        .replace("{rate}", &t.pct(s.success_rate))
        .replace("{mean}", &t.ms(s.mean_duration_ms))
        .replace("{p95}", &t.ms(s.p95_duration_ms))
}

/// The pipeline's duration (a day's mean, or each run's), then (ten of) its derived metrics and
/// counters over its `[trends]` days or runs, each with what its trend says.
async fn trends(state: &AppState, t: &Text, p: &Pipeline) -> ApiResult<Vec<Trend>> {
    let over = trends_over(state, p, p.trends.over).await?;
    let days: Vec<NaiveDate> = match over.per {
        TrendPer::Day => over.days.clone(),
        TrendPer::Run => over
            .runs
            .iter()
            .filter_map(|r| r.finished_at)
            .map(|at| at.with_timezone(&p.timezone).date_naive())
            .collect(),
    };
    let range = format!(
        "{}–{}",
        days.first().map(|d| t.day(*d)).unwrap_or_default(),
        days.last().map(|d| t.day(*d)).unwrap_or_default()
    );
    let duration = t
        .t(match over.per {
            TrendPer::Day => "pipelines.mean_duration",
            TrendPer::Run => "pipelines.run_duration",
        })
        .into_owned();
    let mut out = vec![Trend {
        last: t.ms(over.durations.last().copied().flatten()),
        spark: chart::sparkline(&format!("{duration} · {range}"), &over.durations),
        name: duration,
        verdict: None,
    }];
    for trend in over.trends.into_iter().take(10) {
        let last = trend.values.iter().rev().find_map(|v| *v);
        let verdict = trend
            .verdict
            .map(|v| match v {
                Verdict::Improving => ("ok", "trend.improving"),
                Verdict::Worsening => ("bad", "trend.worsening"),
                Verdict::Stable => ("none", "trend.stable"),
            })
            .or_else(|| {
                trend.direction.map(|d| match d {
                    Direction::Rising => ("none", "trend.rising"),
                    Direction::Falling => ("none", "trend.falling"),
                    Direction::Stable => ("none", "trend.stable"),
                })
            })
            .map(|(class, key)| (class, t.t(key).into_owned()));
        out.push(Trend {
            last: last.map_or_else(
                || "–".to_owned(),
                |v| {
                    if v.fract() == 0.0 {
                        t.num(v, 0)
                    } else {
                        t.num(v, 2)
                    }
                },
            ),
            spark: chart::sparkline(&format!("{} · {range}", trend.name), &trend.values),
            name: trend.name,
            verdict,
        });
    }
    Ok(out)
}

async fn build(
    state: &AppState,
    c: Chrome,
    name: &str,
    query: &HashMap<String, String>,
    plan: Option<PlanView>,
) -> ApiResult<Detail> {
    let t = c.t;
    let config = state.config();
    let p = find(&config, name)?;
    let paused = state.store.paused_pipelines().await?.contains(&p.name);
    let summary = summary_of(state, p, paused).await?;
    let zone = p.timezone;
    // The filter form sends an empty field for "any".
    let pick = |key: &str| query.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let status = parse_enum::<RunStatus>("status", pick("status"))?;
    let trigger = parse_enum::<Trigger>("trigger", pick("trigger"))?;
    let before = pick("before").map(parse_run_id).transpose()?;
    let mut runs = last_runs(
        state,
        &RunFilter {
            pipeline: Some(p.name.clone()),
            status,
            trigger,
            before,
            limit: PAGE + 1,
            ..RunFilter::default()
        },
    )
    .await?;
    let older = (runs.len() > PAGE as usize).then(|| {
        runs.truncate(PAGE as usize);
        let mut q: Vec<(&str, String)> = vec![("before", runs[runs.len() - 1].id.to_string())];
        if let Some(s) = status {
            q.push(("status", s.to_string()));
        }
        if let Some(tr) = trigger {
            q.push(("trigger", tr.to_string()));
        }
        format!(
            "/pipelines/{}?{}",
            p.name,
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    });
    let active = runs.iter().any(|r| !r.status.is_final());
    Ok(Detail {
        p: row(
            &t,
            p,
            paused,
            summary.last_run.as_ref(),
            summary.next.first().copied(),
            summary.last_7d.success_rate,
        ),
        schedules: p
            .schedules
            .iter()
            .map(|s| {
                (
                    in_words(&t, &s.text).unwrap_or_else(|| t.t("sched.custom").into_owned()),
                    s.text.clone(),
                )
            })
            .collect(),
        every: p
            .every
            .map(|e| t.f("sched.every", "d", t.ms(Some(e.as_secs_f64() * 1e3)))),
        zone: zone.name().to_owned(),
        next: summary.next.iter().map(|n| t.at(*n, zone)).collect(),
        day: stats_text(&t, &summary.last_24h),
        week_stats: stats_text(&t, &summary.last_7d),
        trends_title: match p.trends.over {
            TrendSpan::Days(n) => t.f("pipelines.trends", "days", n),
            TrendSpan::Runs(n) => t.f("pipelines.trends_runs", "runs", n),
        },
        trends: trends(state, &t, p).await?,
        runs: runs.iter().map(|r| run_row(&t, zone, r)).collect(),
        filter_status: status.map(|s| s.to_string()).unwrap_or_default(),
        filter_trigger: trigger.map(|s| s.to_string()).unwrap_or_default(),
        statuses: RunStatus::ALL
            .iter()
            .map(|s| (s.to_string(), t.word("status", s).into_owned()))
            .collect(),
        triggers: Trigger::ALL
            .iter()
            .map(|s| (s.to_string(), t.word("trigger", s).into_owned()))
            .collect(),
        older,
        params: p
            .params
            .iter()
            .map(|(name, param)| ParamField {
                name: name.clone(),
                required: param.required && param.default.is_none(),
                default: param
                    .default
                    .as_ref()
                    .map(|d| d.shown().to_owned())
                    .unwrap_or_default(),
                description: param.description.clone().unwrap_or_default(),
            })
            .collect(),
        steps: p.steps.iter().map(|s| s.name.clone()).collect(),
        plan,
        active,
        c,
    })
}

pub async fn detail(
    v: Visitor,
    State(state): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(to) = gate(&v, &state, &uri) {
        return to;
    }
    let c = Chrome::new(&v, &uri, "pipelines");
    respond(
        &v,
        &uri,
        build(&state, c, &name, &query_of(&uri), None).await,
    )
}

/// The "run now" form: parameters as `param.NAME`, steps to skip as `skip.NAME`, `dry_run` and
/// `force` checkboxes. A dry run shows the plan on the pipeline's page; a run goes back to the
/// page the form was on, saying which run was queued.
pub async fn run_now(
    State(state): State<AppState>,
    Path(name): Path<String>,
    a: Acting<AsOperator>,
) -> Response {
    let mut request = TriggerRequest::default();
    for (k, value) in &a.form {
        if let Some(param) = k.strip_prefix("param.") {
            if !value.is_empty() {
                request.params.insert(param.to_owned(), value.clone());
            }
        } else if let Some(step) = k.strip_prefix("skip.") {
            request.skip.push(step.to_owned());
        }
    }
    request.skip.sort();
    request.dry_run = a.form.contains_key("dry_run");
    request.force = a.form.contains_key("force");
    match trigger(&state, &a.who, &name, request).await {
        Ok(Triggered::Queued(q)) => done(&a.form, "run_queued", Some(("run", &q.id.to_string()))),
        Ok(Triggered::Plan(plan)) => {
            let page_uri: Uri = format!("/pipelines/{name}").parse().unwrap_or_default();
            let c = Chrome::new(&a.v, &page_uri, "pipelines");
            match build(&state, c, &name, &HashMap::new(), Some(plan)).await {
                Ok(page) => html(&page),
                Err(e) => a.failed(&e),
            }
        }
        Err(e) => a.failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::i18n::Lang;

    #[test]
    fn common_schedules_read_as_words_in_both_languages() {
        let en = Text::new(Lang::En);
        let pt = Text::new(Lang::PtBr);
        assert_eq!(
            in_words(&en, "0 12,18,20 * * *").unwrap(),
            "every day at 12:00, 18:00 and 20:00"
        );
        assert_eq!(
            in_words(&pt, "0 12,18,20 * * *").unwrap(),
            "todo dia às 12:00, 18:00 e 20:00"
        );
        assert_eq!(in_words(&en, "0 17 * * 5").unwrap(), "on Fridays at 17:00");
        assert_eq!(in_words(&pt, "*/5 * * * *").unwrap(), "a cada 5 minutos");
        assert_eq!(in_words(&en, "@hourly").unwrap(), "every hour at minute 00");
        assert_eq!(in_words(&en, "0 0 1 * *"), None);
    }
}
