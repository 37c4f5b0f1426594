//! Metrics in the shapes teams' own dashboards use: today per pipeline, a day-by-day history,
//! and the last runs with their stages. All read from the rollups except the last runs.

use std::collections::BTreeMap;

use crate::json::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use plantao_config::{Pipeline, TrendSpan};
use plantao_model::RunStatus;
use plantao_store::{Grain, RunFilter, Summary, Timestamp, Window, day_of};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::pipelines::find;
use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};

/// A recorded run's derived metrics as JSON values (see [`plantao_engine::run_metrics`]).
pub(crate) fn run_metrics(
    config: &plantao_config::Config,
    pipeline: &str,
    counters: &[plantao_store::Counter],
) -> BTreeMap<String, serde_json::Value> {
    plantao_engine::metric_values(&plantao_engine::run_metrics(config, pipeline, counters))
}

/// One pipeline over one day (or today so far).
#[derive(Debug, Serialize, ToSchema)]
pub struct DayMetrics {
    pub pipeline: String,
    /// The calendar day in the pipeline's zone.
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub timezone: String,
    pub runs: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Sums of the counters, by `step.counter`.
    pub counters: BTreeMap<String, f64>,
    /// The pipeline's derived metrics over the day's summed counters.
    #[schema(value_type = Object)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    pub mean_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
    /// Succeeded among those that ran, 0–1; null when none ran.
    pub success_rate: Option<f64>,
}

fn day_metrics(p: &Pipeline, day: NaiveDate, s: &Summary) -> DayMetrics {
    DayMetrics {
        pipeline: p.name.clone(),
        day,
        timezone: p.timezone.name().to_owned(),
        runs: s.runs,
        by_status: s.by_status.clone(),
        counters: s.counters.iter().map(|(k, v)| (k.clone(), v.sum)).collect(),
        metrics: plantao_engine::metric_values(&plantao_engine::derived_metrics(
            p,
            s.counter_sums(),
        )),
        mean_duration_ms: s.mean_duration_ms(),
        p95_duration_ms: s.durations.quantile(0.95),
        success_rate: s.success_rate(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TodayQuery {
    /// One pipeline; all of them when absent.
    pub pipeline: Option<String>,
}

fn chosen<'c>(
    config: &'c plantao_config::Config,
    name: Option<&str>,
) -> ApiResult<Vec<&'c Pipeline>> {
    match name {
        Some(name) => Ok(vec![find(config, name)?]),
        None => Ok(config.pipelines.iter().collect()),
    }
}

#[utoipa::path(get, path = "/api/metrics/today", tag = "metrics",
    security(("token" = [])),
    params(TodayQuery),
    responses((status = 200, body = Vec<DayMetrics>),
              (status = 404, body = crate::ErrorBody)))]
pub async fn metrics_today(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<TodayQuery>,
) -> ApiResult<Json<Vec<DayMetrics>>> {
    let config = state.config();
    let now = Utc::now();
    let mut all = Vec::new();
    for p in chosen(&config, q.pipeline.as_deref())? {
        let s = state
            .store
            .summary(&p.name, Window::Today, now, p.timezone)
            .await?;
        all.push(day_metrics(
            p,
            now.with_timezone(&p.timezone).date_naive(),
            &s,
        ));
    }
    Ok(Json(all))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// One pipeline; all of them when absent.
    pub pipeline: Option<String>,
    /// How many days back, today included: 1 to 366, default 7.
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

#[utoipa::path(get, path = "/api/metrics/history", tag = "metrics",
    security(("token" = [])),
    params(HistoryQuery),
    responses((status = 200, description = "per pipeline, one entry per day, oldest first (days without runs included)", body = Vec<DayMetrics>),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn metrics_history(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<DayMetrics>>> {
    let days = q.days.unwrap_or(7);
    if !(1..=366).contains(&days) {
        return Err(ApiError::bad_request("`days` must be between 1 and 366"));
    }
    Ok(Json(history(&state, q.pipeline.as_deref(), days).await?))
}

/// The last `days` days (today included) of one pipeline or every one, oldest first per
/// pipeline, days without runs included.
pub(crate) async fn history(
    state: &AppState,
    pipeline: Option<&str>,
    days: u32,
) -> ApiResult<Vec<DayMetrics>> {
    let config = state.config();
    let now = Utc::now();
    let mut all = Vec::new();
    for p in chosen(&config, pipeline)? {
        let today = day_of(now, p.timezone);
        // A day is 23 to 25 hours: start a day early and keep the last `days` local dates.
        let from = today - Duration::hours(24 * i64::from(days));
        let buckets = state
            .store
            .rollups(&p.name, Grain::Day, from, now + Duration::hours(1))
            .await?;
        let by_day: BTreeMap<NaiveDate, &Summary> = buckets
            .iter()
            .map(|b| (local_date(b.start, p), &b.summary))
            .collect();
        let last = now.with_timezone(&p.timezone).date_naive();
        let empty = Summary::default();
        for back in (0..days).rev() {
            let Some(day) = last.checked_sub_days(chrono::Days::new(u64::from(back))) else {
                continue;
            };
            all.push(day_metrics(
                p,
                day,
                by_day.get(&day).copied().unwrap_or(&empty),
            ));
        }
    }
    Ok(all)
}

fn local_date(start: DateTime<Utc>, p: &Pipeline) -> NaiveDate {
    start.with_timezone(&p.timezone).date_naive()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LastRunsQuery {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    pub pipeline: Option<String>,
}

/// A run with each stage's counters and duration.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunMetrics {
    pub id: plantao_model::RunId,
    pub pipeline: String,
    pub trigger: plantao_model::Trigger,
    pub status: plantao_model::RunStatus,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub stages: Vec<StageMetrics>,
    #[schema(value_type = Object)]
    pub metrics: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StageMetrics {
    pub step: String,
    pub status: plantao_model::StageStatus,
    pub duration_ms: Option<i64>,
    pub counters: BTreeMap<String, f64>,
}

#[utoipa::path(get, path = "/api/metrics/pipeline-runs", tag = "metrics",
    security(("token" = [])),
    params(LastRunsQuery),
    responses((status = 200, description = "the last runs, newest first", body = Vec<RunMetrics>),
              (status = 400, body = crate::ErrorBody)))]
pub async fn metrics_pipeline_runs(
    _: Viewer,
    State(state): State<AppState>,
    Query(q): Query<LastRunsQuery>,
) -> ApiResult<Json<Vec<RunMetrics>>> {
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 100"));
    }
    let config = state.config();
    if let Some(name) = &q.pipeline {
        find(&config, name)?;
    }
    let filter = RunFilter {
        pipeline: q.pipeline.clone(),
        limit,
        ..RunFilter::default()
    };
    Ok(Json(last_runs(&state, &filter).await?))
}

/// The runs `filter` picks, each with its stages' counters and durations.
pub(crate) async fn last_runs(state: &AppState, filter: &RunFilter) -> ApiResult<Vec<RunMetrics>> {
    let config = state.config();
    let runs = state.store.runs(filter).await?;
    let ids: Vec<plantao_model::RunId> = runs.iter().map(|r| r.id).collect();
    let mut briefs = state.store.run_briefs(&ids).await?;
    let mut all = Vec::with_capacity(runs.len());
    for run in runs {
        let detail = briefs.remove(&run.id).unwrap_or_default();
        // The last attempt of each step speaks for it.
        let mut stages: Vec<StageMetrics> = Vec::new();
        for s in &detail.stages {
            let counters = detail
                .counters
                .iter()
                .filter(|c| c.step == s.step)
                .map(|c| (c.name.clone(), c.value))
                .collect();
            let stage = StageMetrics {
                step: s.step.clone(),
                status: s.status,
                duration_ms: s.duration_ms,
                counters,
            };
            match stages.iter_mut().find(|x| x.step == s.step) {
                Some(existing) => *existing = stage,
                None => stages.push(stage),
            }
        }
        let metrics = run_metrics(&config, &run.pipeline, &detail.counters);
        all.push(RunMetrics {
            id: run.id,
            pipeline: run.pipeline,
            trigger: run.trigger,
            status: run.status,
            queued_at: run.queued_at,
            started_at: run.started_at,
            duration_ms: run.duration_ms,
            stages,
            metrics,
        });
    }
    Ok(all)
}

/// Each of `pipelines`' runs per local day (its own zone's), for the last `days` days, today
/// last, from the daily rollups (today's bucket grows as runs end), all in one read
/// ([`plantao_store::Store::bucket_totals`]) rather than one per pipeline or per day: with 50
/// pipelines and a million runs those cost the dashboard's pages 4–6 ms, and reading hourly
/// buckets with duration histograms far more. No percentiles: the histograms are not read.
/// Pipelines without runs on a day are absent from it; the dates are the first pipeline's
/// zone's.
pub(crate) async fn local_days(
    state: &AppState,
    pipelines: &[&Pipeline],
    days: u32,
    now: Timestamp,
) -> ApiResult<Vec<(NaiveDate, BTreeMap<String, Summary>)>> {
    let zones: BTreeMap<&str, Tz> = pipelines
        .iter()
        .map(|p| (p.name.as_str(), p.timezone))
        .collect();
    let local_today = |zone: Tz| now.with_timezone(&zone).date_naive();
    let first_zone = pipelines.first().map_or(Tz::UTC, |p| p.timezone);
    let mut out: Vec<(NaiveDate, BTreeMap<String, Summary>)> = (0..days)
        .rev()
        .map(|ago| {
            let day = local_today(first_zone) - Duration::days(i64::from(ago));
            (day, BTreeMap::new())
        })
        .collect();
    let span = Duration::days(i64::from(days.saturating_sub(1)));
    let from = pipelines
        .iter()
        .map(|p| day_of(now - span, p.timezone))
        .min()
        .unwrap_or(now);
    let names: Vec<String> = pipelines.iter().map(|p| p.name.clone()).collect();
    let buckets = state
        .store
        .bucket_totals(&names, Grain::Day, from, now + Duration::hours(1))
        .await?;
    for ((name, start), summary) in buckets {
        let zone = zones.get(name.as_str()).copied().unwrap_or(Tz::UTC);
        let ago = (local_today(zone) - start.with_timezone(&zone).date_naive()).num_days();
        if let Ok(ago) = u32::try_from(ago)
            && ago < days
        {
            out[(days - 1 - ago) as usize].1.insert(name, summary);
        }
    }
    Ok(out)
}

/// What each value of a trend stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrendPer {
    /// A calendar day in the pipeline's zone: its runs' counters summed (from the rollups).
    Day,
    /// A run that succeeded or ended partial: its counters.
    Run,
}

/// A run a trend's value comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendRun {
    pub id: plantao_model::RunId,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

/// A pipeline's counters and derived metrics over its last days or runs: each one's values, the
/// line fitted through them and what it says.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendsView {
    pub pipeline: String,
    pub timezone: String,
    pub per: TrendPer,
    /// With `per = day`: the days, oldest first, today last (in the pipeline's zone); each
    /// trend's `values` follow them.
    pub days: Vec<NaiveDate>,
    /// With `per = run`: the runs, oldest first; each trend's `values` follow them.
    pub runs: Vec<TrendRun>,
    /// A fitted change within this share of the mean is `stable`.
    pub tolerance_percent: f64,
    /// Derived metrics first, then counters (`step.counter`).
    pub trends: Vec<plantao_engine::trends::Trend>,
}

/// The query's bounds are `TrendSpan::DAYS` and `TrendSpan::RUNS` (an attribute takes only
/// literals).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrendsQuery {
    /// One value a day over the last `days`, instead of the pipeline's `[trends]`.
    #[param(minimum = 3, maximum = 366)]
    pub days: Option<u32>,
    /// One value a run over the last `runs` that succeeded or ended partial.
    #[param(minimum = 3, maximum = 1000)]
    pub runs: Option<u32>,
}

/// Pipeline `p`'s trends over `span`, with the days or runs their values stand for and each
/// one's mean (a day's) or whole (a run's) duration.
pub(crate) struct TrendSeries {
    pub per: TrendPer,
    pub days: Vec<NaiveDate>,
    pub runs: Vec<plantao_store::Run>,
    pub durations: Vec<Option<f64>>,
    pub trends: Vec<plantao_engine::trends::Trend>,
}

pub(crate) async fn trends_over(
    state: &AppState,
    p: &Pipeline,
    span: TrendSpan,
) -> ApiResult<TrendSeries> {
    match span {
        TrendSpan::Days(n) => {
            let (days, summaries): (Vec<NaiveDate>, Vec<Summary>) =
                local_days(state, &[p], n, Utc::now())
                    .await?
                    .into_iter()
                    .map(|(day, mut each)| (day, each.remove(&p.name).unwrap_or_default()))
                    .unzip();
            Ok(TrendSeries {
                per: TrendPer::Day,
                durations: summaries.iter().map(Summary::mean_duration_ms).collect(),
                trends: plantao_engine::trends::of_days(p, &summaries),
                days,
                runs: Vec::new(),
            })
        }
        TrendSpan::Runs(n) => {
            let mut runs = Vec::new();
            for status in [RunStatus::Succeeded, RunStatus::Partial] {
                let filter = RunFilter {
                    pipeline: Some(p.name.clone()),
                    status: Some(status),
                    limit: n,
                    ..RunFilter::default()
                };
                runs.extend(state.store.runs(&filter).await?);
            }
            runs.sort_by_key(|r| (r.finished_at, r.id));
            let runs = runs.split_off(runs.len().saturating_sub(n as usize));
            let ids: Vec<plantao_model::RunId> = runs.iter().map(|r| r.id).collect();
            let mut briefs = state.store.run_briefs(&ids).await?;
            let counters: Vec<Vec<plantao_store::Counter>> = ids
                .iter()
                .map(|id| briefs.remove(id).map(|b| b.counters).unwrap_or_default())
                .collect();
            #[allow(clippy::cast_precision_loss)]
            let durations = runs
                .iter()
                .map(|r| r.duration_ms.map(|d| d as f64))
                .collect();
            Ok(TrendSeries {
                per: TrendPer::Run,
                durations,
                trends: plantao_engine::trends::of_runs(p, &counters),
                days: Vec::new(),
                runs,
            })
        }
    }
}

/// `key` outside `range`, said as the configuration says it.
fn out_of(range: std::ops::RangeInclusive<u32>, key: &str) -> ApiError {
    ApiError::bad_request(format!(
        "`{key}` must be between {} and {}",
        range.start(),
        range.end()
    ))
}

#[utoipa::path(get, path = "/api/pipelines/{name}/trends", tag = "pipelines",
    security(("token" = [])),
    params(("name" = String, Path, description = "the pipeline's name"), TrendsQuery),
    responses((status = 200, description = "each counter and derived metric: improving, worsening or stable", body = TrendsView),
              (status = 400, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn pipeline_trends(
    _: Viewer,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<TrendsQuery>,
) -> ApiResult<Json<TrendsView>> {
    let config = state.config();
    let p = find(&config, &name)?;
    let span = match (q.days, q.runs) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give `days` or `runs`, not both: a trend is over days or over runs",
            ));
        }
        (Some(d), None) if TrendSpan::DAYS.contains(&d) => TrendSpan::Days(d),
        (None, Some(r)) if TrendSpan::RUNS.contains(&r) => TrendSpan::Runs(r),
        (Some(_), None) => return Err(out_of(TrendSpan::DAYS, "days")),
        (None, Some(_)) => return Err(out_of(TrendSpan::RUNS, "runs")),
        (None, None) => p.trends.over,
    };
    let t = trends_over(&state, p, span).await?;
    Ok(Json(TrendsView {
        pipeline: p.name.clone(),
        timezone: p.timezone.name().to_owned(),
        per: t.per,
        days: t.days,
        runs: t
            .runs
            .iter()
            .map(|r| TrendRun {
                id: r.id,
                finished_at: r.finished_at,
            })
            .collect(),
        tolerance_percent: p.trends.tolerance_percent,
        trends: t.trends,
    }))
}
