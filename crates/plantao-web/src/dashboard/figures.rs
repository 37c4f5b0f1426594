//! The figures the overview and the pipeline list show for every pipeline at once, read in a
//! few batched passes over the rollups ([`plantao_store::Store::totals`]) rather than one read
//! per pipeline: with 50 pipelines and a million runs, the per-pipeline reads the API makes
//! (with duration histograms, for p95) cost 35–120 ms a page; these pages show no percentile.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use plantao_config::Config;
use plantao_store::{Grain, Summary, Timestamp, Window, day_of};

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

/// Each pipeline's figures over `window` (today in its own zone); pipelines without runs are
/// absent.
pub async fn each(
    state: &AppState,
    config: &Config,
    window: Window,
    now: Timestamp,
) -> ApiResult<BTreeMap<String, Summary>> {
    let mut all = BTreeMap::new();
    for (zone, names) in by_zone(config) {
        let (grain, from, to) = window.range(now, zone);
        all.extend(state.store.totals(&names, grain, from, to).await?);
    }
    Ok(all)
}

/// Every pipeline's runs added up per local day, for the last `days` days (today last), with
/// the first zone's dates as labels.
pub async fn days(
    state: &AppState,
    config: &Config,
    days: u32,
    now: Timestamp,
) -> ApiResult<Vec<(NaiveDate, Summary)>> {
    let mut out: Vec<(NaiveDate, Summary)> = Vec::with_capacity(days as usize);
    for (zone, names) in by_zone(config) {
        for back in (0..days).rev() {
            let start = day_of(now - Duration::days(i64::from(back)), zone);
            let day = start.with_timezone(&zone).date_naive();
            let totals = state
                .store
                .totals(&names, Grain::Day, start, start + Duration::hours(1))
                .await?;
            let i = (days - 1 - back) as usize;
            if out.len() <= i {
                out.push((day, Summary::default()));
            }
            for s in totals.values() {
                out[i].1.merge(s);
            }
        }
    }
    if out.is_empty() {
        let zone = Tz::UTC;
        for back in (0..days).rev() {
            let day = (now - Duration::days(i64::from(back)))
                .with_timezone(&zone)
                .date_naive();
            out.push((day, Summary::default()));
        }
    }
    Ok(out)
}
