//! The figures the overview and the pipeline list show for every pipeline at once, read from
//! the daily rollups in a few batched passes ([`plantao_store::Store::totals`]) rather than one
//! read per pipeline: with 50 pipelines and a million runs, the per-pipeline reads the API makes
//! (hourly buckets with duration histograms, for p95) cost 35–120 ms a page, and even batched,
//! 168 hourly buckets of 50 pipelines are ~11 ms; these pages show no percentile, and their
//! windows are calendar days in each pipeline's zone.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use plantao_config::Config;
use plantao_store::{Grain, Summary, Timestamp, day_of};

use crate::AppState;
use crate::error::ApiResult;

/// The configured pipelines' names, grouped by their zone ("today" and days are local).
fn by_zone(config: &Config) -> Vec<(Tz, Vec<String>)> {
    let mut zones: BTreeMap<&str, (Tz, Vec<String>)> = BTreeMap::new();
    for p in &config.pipelines {
        zones
            .entry(p.timezone.name())
            .or_insert_with(|| (p.timezone, Vec::new()))
            .1
            .push(p.name.clone());
    }
    zones.into_values().collect()
}

/// Each pipeline's runs per local day (its own zone's), for the last `days` days, today last,
/// from the daily rollups (today's bucket grows as runs end): one small read per day and zone.
/// Pipelines without runs on a day are absent from it; the dates are the first zone's.
pub async fn days(
    state: &AppState,
    config: &Config,
    days: u32,
    now: Timestamp,
) -> ApiResult<Vec<(NaiveDate, BTreeMap<String, Summary>)>> {
    let mut out: Vec<(NaiveDate, BTreeMap<String, Summary>)> = (0..days)
        .rev()
        .map(|back| {
            let day = (now - Duration::days(i64::from(back))).date_naive();
            (day, BTreeMap::new())
        })
        .collect();
    for (k, (zone, names)) in by_zone(config).into_iter().enumerate() {
        for (i, back) in (0..days).rev().enumerate() {
            let start = day_of(now - Duration::days(i64::from(back)), zone);
            if k == 0 {
                out[i].0 = start.with_timezone(&zone).date_naive();
            }
            let totals = state
                .store
                .totals(&names, Grain::Day, start, start + Duration::hours(1))
                .await?;
            out[i].1.extend(totals);
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
