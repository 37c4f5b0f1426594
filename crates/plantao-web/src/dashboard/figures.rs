//! The figures the overview and the pipeline list show for every pipeline at once, read from
//! the daily rollups in one pass ([`plantao_store::Store::bucket_totals`]) rather than one
//! read per pipeline (or one per day): with 50 pipelines and a million runs, the per-pipeline
//! reads the API makes (hourly buckets with duration histograms, for p95) cost 35–120 ms a
//! page, and even batched, 168 hourly buckets of 50 pipelines are ~11 ms; these pages show no
//! percentile, and their windows are calendar days in each pipeline's zone.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use plantao_config::Pipeline;
use plantao_store::{Grain, Summary, Timestamp, day_of};

use crate::AppState;
use crate::error::ApiResult;

/// Each of `pipelines`' runs per local day (its own zone's), for the last `days` days, today
/// last, from the daily rollups (today's bucket grows as runs end), all in one read. Pipelines
/// without runs on a day are absent from it; the dates are the first pipeline's zone's.
pub async fn days(
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

/// Every pipeline's runs over the days `days` gives, added up.
pub fn added(days: &[(NaiveDate, BTreeMap<String, Summary>)]) -> BTreeMap<String, Summary> {
    let mut all: BTreeMap<String, Summary> = BTreeMap::new();
    for (_, day) in days {
        for (name, s) in day {
            all.entry(name.clone()).or_default().merge(s);
        }
    }
    all
}
