//! Rollups: what finished runs add up to, per pipeline and hour (UTC) or calendar day (in the
//! pipeline's time zone). A run is added to its two buckets in the transaction that finishes it,
//! so rollups never rescan history and outlive the pruning of raw runs.
//!
//! A run belongs to the buckets of its tick (`scheduled_for`), or of the moment it was queued
//! when it has no tick: a missed 18:00 run recorded after a night of downtime counts for the day
//! it was due.
//!
//! Durations are kept as histograms with log-scale bins of ratio [`GAMMA`] (as in DDSketch): the
//! bins of any set of buckets add up, and a percentile read from them is within 1 % of the exact
//! one.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::records::Timestamp;

/// How fine a rollup is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    /// Whole UTC hours.
    Hour,
    /// Calendar days in the pipeline's zone.
    Day,
}

impl Grain {
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }
}

/// The periods people ask about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The calendar day in the pipeline's zone, from its midnight.
    Today,
    /// The current hour and the 23 before it.
    Last24h,
    /// The current hour and the 167 before it.
    Last7d,
    /// Today (in the pipeline's zone) and the 29 days before it.
    Last30d,
    /// Today and the 364 days before it.
    Last365d,
}

impl Window {
    /// The grain and the bucket starts `[from, to)` that make up the window at `now`.
    pub fn range(self, now: Timestamp, zone: Tz) -> (Grain, Timestamp, Timestamp) {
        let hours = |n: i64| {
            let this_hour = hour_of(now);
            (
                Grain::Hour,
                this_hour - Duration::hours(n - 1),
                this_hour + Duration::hours(1),
            )
        };
        match self {
            Window::Today => {
                let today = now.with_timezone(&zone).date_naive();
                let tomorrow = today.succ_opt().unwrap_or(today);
                (
                    Grain::Day,
                    start_of_day(today, zone),
                    start_of_day(tomorrow, zone),
                )
            }
            Window::Last24h => hours(24),
            Window::Last7d => hours(24 * 7),
            Window::Last30d | Window::Last365d => {
                let back = if self == Window::Last30d { 29 } else { 364 };
                let today = now.with_timezone(&zone).date_naive();
                let tomorrow = today.succ_opt().unwrap_or(today);
                let first = today
                    .checked_sub_days(chrono::Days::new(back))
                    .unwrap_or(today);
                (
                    Grain::Day,
                    start_of_day(first, zone),
                    start_of_day(tomorrow, zone),
                )
            }
        }
    }
}

/// The start of the UTC hour holding `at`.
pub fn hour_of(at: Timestamp) -> Timestamp {
    at.duration_trunc(Duration::hours(1)).unwrap_or(at)
}

/// The start of the calendar day holding `at` in `zone`.
pub fn day_of(at: Timestamp, zone: Tz) -> Timestamp {
    start_of_day(at.with_timezone(&zone).date_naive(), zone)
}

/// The first instant of `date` in `zone`: midnight, or the end of the gap when the clocks
/// jump forward at midnight (as São Paulo's did until 2019).
fn start_of_day(date: NaiveDate, zone: Tz) -> Timestamp {
    (0..24)
        .filter_map(|hour| date.and_hms_opt(hour, 0, 0))
        .find_map(|local| zone.from_local_datetime(&local).earliest())
        .map_or_else(
            || DateTime::<Utc>::from_naive_utc_and_offset(date.and_time(Default::default()), Utc),
            |t| t.with_timezone(&Utc),
        )
}

/// The two buckets a run belongs to.
pub(crate) fn buckets(at: Timestamp, zone: Tz) -> [(Grain, Timestamp); 2] {
    [(Grain::Hour, hour_of(at)), (Grain::Day, day_of(at, zone))]
}

/// A pipeline's stored zone name, read back; UTC when it is not one (it was validated when the
/// configuration was loaded, so only a hand-edited database gets here).
pub(crate) fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// Ratio between the bounds of consecutive bins: (1 + α) / (1 − α) with α = 1 %.
pub const GAMMA: f64 = 1.01 / 0.99;

/// Durations in milliseconds, counted in log-scale bins. Bin `-1` holds zero; bin `i ≥ 0`
/// holds the values in (γ^(i−1), γ^i].
///
/// The counts are kept densely, from the lowest bin counted to the highest: a bucket's bins are
/// neighbours (a week of days is a few hundred of them), and adding histograms up is what every
/// answer from the rollups does, so it is an addition of arrays rather than a search per bin.
/// Compared, shown and serialised as its counted bins only (bin → count).
#[derive(Clone, Default)]
pub struct Histogram {
    /// The bin `counts[0]` counts.
    first: i32,
    counts: Vec<u64>,
}

/// The highest bin kept: a duration of i64::MAX milliseconds is bin 2,184, so only a damaged
/// value goes past it (it is counted in this bin instead of costing memory).
const MAX_BIN: i32 = 4096;

impl Histogram {
    /// The bin that counts a duration of `ms`.
    pub fn bin_of(ms: i64) -> i32 {
        if ms <= 0 {
            return -1;
        }
        // Whole numbers of milliseconds below 2^53 are exact as f64; the bin index of a
        // duration of centuries is still far below i32::MAX.
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let bin = ((ms as f64).ln() / GAMMA.ln()).ceil() as i32;
        bin
    }

    /// The value a bin stands for: the middle of its bounds, relatively, so that no value in the
    /// bin is more than α away.
    pub fn value_of(bin: i32) -> f64 {
        if bin < 0 {
            0.0
        } else {
            2.0 * GAMMA.powi(bin) / (GAMMA + 1.0)
        }
    }

    pub fn add(&mut self, bin: i32, count: u64) {
        if count == 0 {
            return;
        }
        let bin = bin.clamp(-1, MAX_BIN);
        self.cover(bin, bin);
        let at = self.index(bin);
        self.counts[at] += count;
    }

    pub fn merge(&mut self, other: &Histogram) {
        let Some(last) = other.last() else { return };
        self.cover(other.first, last);
        let from = self.index(other.first);
        for (mine, theirs) in self.counts[from..].iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The highest bin held, counted or not; `None` when nothing is.
    fn last(&self) -> Option<i32> {
        let len = i32::try_from(self.counts.len()).ok()?;
        (len > 0).then(|| self.first + len - 1)
    }

    /// The position of `bin`, which [`Self::cover`] has made room for.
    fn index(&self, bin: i32) -> usize {
        usize::try_from(bin - self.first).unwrap_or(0)
    }

    /// Makes room for the bins `low..=high`.
    fn cover(&mut self, low: i32, high: i32) {
        let Some(last) = self.last() else {
            self.first = low;
            self.counts = vec![0; usize::try_from(high - low + 1).unwrap_or(1)];
            return;
        };
        if high > last {
            let len = usize::try_from(high - self.first + 1).unwrap_or(0);
            self.counts.resize(len, 0);
        }
        if low < self.first {
            let more = usize::try_from(self.first - low).unwrap_or(0);
            self.counts.splice(0..0, std::iter::repeat_n(0, more));
            self.first = low;
        }
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by nearest rank: the smallest counted value with at least
    /// ⌈q·n⌉ values at or below it. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        // Counts of runs stay far below 2^53.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, count) in self.bins() {
            seen += count;
            if seen >= rank {
                return Some(Self::value_of(bin));
            }
        }
        None
    }

    /// The counted bins and their counts, lowest first.
    pub fn bins(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        (self.first..)
            .zip(self.counts.iter().copied())
            .filter(|&(_, count)| count > 0)
    }
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.bins().eq(other.bins())
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.bins()).finish()
    }
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.bins())
    }
}

/// Read back from a rollup row's `bins`: an object from bin to count.
impl<'de> serde::Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bins;
        impl<'de> serde::de::Visitor<'de> for Bins {
            type Value = Histogram;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object from duration bin to count")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Histogram, A::Error> {
                let mut h = Histogram::default();
                while let Some((bin, count)) = map.next_entry::<i32, u64>()? {
                    h.add(bin, count);
                }
                Ok(h)
            }
        }
        d.deserialize_map(Bins)
    }
}

/// The stored histogram (bin → runs, a JSON object; JSONB in PostgreSQL) of one run lasting
/// `duration_ms`: its bin counted once, or none without a duration. Written by [`Histogram`]'s
/// own serialisation, the same shape it is read back from.
pub(crate) fn run_bins(duration_ms: Option<i64>) -> String {
    let mut one = Histogram::default();
    if let Some(ms) = duration_ms {
        one.add(Histogram::bin_of(ms), 1);
    }
    // Serialising a map of numbers cannot fail.
    serde_json::to_string(&one).unwrap_or_else(|_| "{}".to_owned())
}

/// A counter summed over the runs of a window that reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CounterTotal {
    pub sum: f64,
    pub runs: u64,
}

/// What the runs of one or more buckets add up to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Finished runs, skipped ones included.
    pub runs: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_trigger: BTreeMap<String, u64>,
    /// Runs that started, and so have a duration.
    pub timed_runs: u64,
    pub duration_ms_sum: i64,
    pub duration_ms_max: Option<i64>,
    /// Durations of every timed run.
    pub durations: Histogram,
    /// Durations of the successful runs only: what "slower than usual" compares against.
    pub succeeded_durations: Histogram,
    /// CPU time (user and system) of every step.
    pub cpu_ms: i64,
    /// By `step.counter`.
    pub counters: BTreeMap<String, CounterTotal>,
    /// Runs by (status, trigger): what `plantao_runs_total` reports.
    #[serde(skip)]
    pub by_status_trigger: BTreeMap<(String, String), u64>,
}

impl Summary {
    pub fn count(&self, status: &str) -> u64 {
        self.by_status.get(status).copied().unwrap_or(0)
    }

    /// Runs that ran and did not succeed: failed, timed out, interrupted or partly succeeded.
    pub fn failed(&self) -> u64 {
        ["failed", "timed_out", "interrupted", "partial"]
            .iter()
            .map(|s| self.count(s))
            .sum()
    }

    /// Succeeded runs among those that ran (skipped and cancelled ones left out); `None` when
    /// none ran.
    pub fn success_rate(&self) -> Option<f64> {
        let ran = self.runs - self.count("skipped") - self.count("cancelled");
        #[allow(clippy::cast_precision_loss)]
        (ran > 0).then(|| self.count("succeeded") as f64 / ran as f64)
    }

    pub fn mean_duration_ms(&self) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)]
        (self.timed_runs > 0).then(|| self.duration_ms_sum as f64 / self.timed_runs as f64)
    }

    /// Adds a row of the runs rollup (its bucket aside).
    pub(crate) fn add_runs(&mut self, row: &RunsRow) {
        let runs = u64::try_from(row.runs).unwrap_or(0);
        self.runs += runs;
        *self
            .by_status_trigger
            .entry((row.status.clone(), row.trigger.clone()))
            .or_default() += runs;
        *self.by_status.entry(row.status.clone()).or_default() += runs;
        *self.by_trigger.entry(row.trigger.clone()).or_default() += runs;
        self.timed_runs += u64::try_from(row.timed_runs).unwrap_or(0);
        self.duration_ms_sum += row.duration_ms_sum;
        self.duration_ms_max = self.duration_ms_max.max(row.duration_ms_max);
        self.cpu_ms += row.cpu_ms;
    }

    /// Adds a row of the counters rollup: `key` is `step.counter`.
    pub(crate) fn add_counter(&mut self, key: String, sum: f64, runs: i64) {
        let total = self.counters.entry(key).or_default();
        total.sum += sum;
        total.runs += u64::try_from(runs).unwrap_or(0);
    }

    /// Adds another summary to this one (buckets to a window).
    pub fn merge(&mut self, other: &Summary) {
        self.runs += other.runs;
        for (k, v) in &other.by_status {
            *self.by_status.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.by_trigger {
            *self.by_trigger.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.by_status_trigger {
            *self.by_status_trigger.entry(k.clone()).or_default() += v;
        }
        self.timed_runs += other.timed_runs;
        self.duration_ms_sum += other.duration_ms_sum;
        self.duration_ms_max = self.duration_ms_max.max(other.duration_ms_max);
        self.durations.merge(&other.durations);
        self.succeeded_durations.merge(&other.succeeded_durations);
        self.cpu_ms += other.cpu_ms;
        for (k, v) in &other.counters {
            let total = self.counters.entry(k.clone()).or_default();
            total.sum += v.sum;
            total.runs += v.runs;
        }
    }

    /// The summed counters as (step, counter, sum): what derived metrics are computed from.
    pub fn counter_sums(&self) -> impl Iterator<Item = (&str, &str, f64)> {
        self.counters.iter().filter_map(|(key, total)| {
            let (step, name) = key.split_once('.')?;
            Some((step, name, total.sum))
        })
    }
}

/// One bucket of a pipeline's rollup.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub start: Timestamp,
    pub summary: Summary,
}

/// Per key (a pipeline, or a pipeline and a bucket), what rows of the runs and counters rollups
/// add up to (see `Store::totals`): `runs` as (key, row), `counters` as (key, `step.counter`,
/// sum, runs).
pub(crate) fn totals<K: Ord + Clone>(
    runs: Vec<(K, RunsRow)>,
    counters: Vec<(K, String, f64, i64)>,
) -> BTreeMap<K, Summary> {
    let mut out: BTreeMap<K, Summary> = BTreeMap::new();
    for (key, row) in &runs {
        out.entry(key.clone()).or_default().add_runs(row);
    }
    for (key, name, sum, n) in counters {
        out.entry(key).or_default().add_counter(name, sum, n);
    }
    out
}

/// Rows read back from a backend's rollup tables, gathered into buckets.
#[derive(Default)]
pub(crate) struct Gather {
    buckets: BTreeMap<Timestamp, Summary>,
}

/// One row of the runs rollup (its bucket aside).
pub(crate) struct RunsRow {
    pub status: String,
    pub trigger: String,
    pub runs: i64,
    pub timed_runs: i64,
    pub duration_ms_sum: i64,
    pub duration_ms_max: Option<i64>,
    pub cpu_ms: i64,
}

/// A runs rollup row's columns after its bucket or key, as the SQLite backend reads them:
/// status, trigger, runs, timed runs, duration sum, duration max, CPU.
pub(crate) type RunsCols = (String, String, i64, i64, i64, Option<i64>, i64);

impl From<RunsCols> for RunsRow {
    fn from((status, trigger, runs, timed_runs, sum, max, cpu_ms): RunsCols) -> Self {
        RunsRow {
            status,
            trigger,
            runs,
            timed_runs,
            duration_ms_sum: sum,
            duration_ms_max: max,
            cpu_ms,
        }
    }
}

impl Gather {
    pub(crate) fn runs(&mut self, bucket: Timestamp, row: &RunsRow) {
        self.buckets.entry(bucket).or_default().add_runs(row);
    }

    /// Adds a runs row's histogram (`bins`) to its bucket's, and to the succeeded runs' one
    /// when the row's `status` is `succeeded`.
    pub(crate) fn bins(&mut self, bucket: Timestamp, status: &str, bins: &Histogram) {
        let s = self.buckets.entry(bucket).or_default();
        s.durations.merge(bins);
        if status == "succeeded" {
            s.succeeded_durations.merge(bins);
        }
    }

    pub(crate) fn counter(&mut self, bucket: Timestamp, key: String, sum: f64, runs: i64) {
        self.buckets
            .entry(bucket)
            .or_default()
            .add_counter(key, sum, runs);
    }

    pub(crate) fn finish(self) -> Vec<Bucket> {
        self.buckets
            .into_iter()
            .map(|(start, summary)| Bucket { start, summary })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_bins_are_within_one_percent() {
        // A spread of durations from 1 ms to about 3 hours, with many repeats.
        let values: Vec<i64> = (0..20_000_i64)
            .map(|i| 1 + (i * 7919 % 20_000) * (i % 97 + 1) * 5)
            .collect();
        let mut h = Histogram::default();
        for &v in &values {
            h.add(Histogram::bin_of(v), 1);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for q in [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0] {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
            #[allow(clippy::cast_precision_loss)]
            let exact = sorted[rank - 1] as f64;
            let estimate = h.quantile(q).unwrap();
            assert!(
                (estimate - exact).abs() <= exact * 0.01 + 1e-9,
                "q={q}: {estimate} vs {exact}"
            );
        }
    }

    #[test]
    fn histograms_add_up_across_ranges_and_read_back_as_stored() {
        let mut low = Histogram::default();
        low.add(-1, 2);
        low.add(3, 1);
        let mut high = Histogram::default();
        high.add(500, 4);
        high.add(3, 1);
        // Added in either order, with room for bins never counted, they are the same.
        let mut a = low.clone();
        a.merge(&high);
        let mut b = high.clone();
        b.merge(&low);
        b.merge(&Histogram::default());
        assert_eq!(a, b);
        assert_eq!(a.bins().collect::<Vec<_>>(), [(-1, 2), (3, 2), (500, 4)]);
        assert_eq!(a.count(), 8);
        assert_eq!(a.quantile(0.5), Some(Histogram::value_of(3)));
        assert_eq!(a.quantile(0.75), Some(Histogram::value_of(500)));

        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"-1":2,"3":2,"500":4}"#);
        assert_eq!(serde_json::from_str::<Histogram>(&json).unwrap(), a);
        // A damaged bin costs no memory: it counts in the highest bin kept.
        let odd: Histogram = serde_json::from_str(r#"{"2000000000":1}"#).unwrap();
        assert_eq!(odd.bins().collect::<Vec<_>>(), [(MAX_BIN, 1)]);
        assert!(serde_json::from_str::<Histogram>(r#"{"x":1}"#).is_err());
    }

    #[test]
    fn zero_and_empty() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.add(Histogram::bin_of(0), 3);
        assert_eq!(h.quantile(0.99), Some(0.0));
    }

    #[test]
    fn days_start_at_local_midnight_or_after_the_gap() {
        let sp: Tz = "America/Sao_Paulo".parse().unwrap();
        // 2018-11-04: clocks jumped from 00:00 to 01:00 in São Paulo.
        let at = "2018-11-04T15:00:00Z".parse::<Timestamp>().unwrap();
        assert_eq!(day_of(at, sp).to_rfc3339(), "2018-11-04T03:00:00+00:00");
        let at = "2019-06-01T02:30:00Z".parse::<Timestamp>().unwrap();
        assert_eq!(day_of(at, sp).to_rfc3339(), "2019-05-31T03:00:00+00:00");
        let (grain, from, to) = Window::Today.range(at, sp);
        assert_eq!(grain, Grain::Day);
        assert_eq!((to - from).num_hours(), 24);
        let (grain, from, to) = Window::Last7d.range(at, sp);
        assert_eq!(grain, Grain::Hour);
        assert_eq!((to - from).num_hours(), 168);
        assert_eq!(from.to_rfc3339(), "2019-05-25T03:00:00+00:00");
    }
}
