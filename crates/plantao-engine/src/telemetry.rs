//! What this process has seen since it started, for the metrics endpoint and the health check:
//! stage durations and scheduling lags as histograms, and the scheduler's pulse. Everything here
//! is process-lifetime (it starts empty at each start); what must outlive a restart is read
//! from the store instead.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use plantao_store::Timestamp;

/// Upper bounds, in seconds, of the histogram buckets (Prometheus `le`), from a few
/// milliseconds (lags) to an hour (long stages).
pub const BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 1800.0, 3600.0,
];

/// Observations in [`BUCKETS`] (each count is for its bucket alone; the last is above them all).
#[derive(Clone, Debug, PartialEq)]
pub struct Seconds {
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Default for Seconds {
    fn default() -> Self {
        Seconds {
            counts: vec![0; BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Seconds {
    pub fn observe(&mut self, seconds: f64) {
        let i = BUCKETS.partition_point(|&le| le < seconds);
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// Shared by the scheduler, the runners and the HTTP server of one process.
#[derive(Debug, Default)]
pub struct Telemetry {
    stages: Mutex<BTreeMap<(String, String), Seconds>>,
    lag: Mutex<Seconds>,
    /// Delivery attempts by (channel, `delivered` | `failed`).
    notifications: Mutex<BTreeMap<(String, String), u64>>,
    /// Unix milliseconds of the scheduler's last pass; 0 before the first.
    last_pass: AtomicI64,
    /// Unix milliseconds of the next tick the scheduler waits for; `i64::MAX` when none.
    next_due: AtomicI64,
    scheduler_stopped: AtomicBool,
}

/// How the scheduler is doing, as the health check reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pulse {
    pub last_pass: Option<Timestamp>,
    pub next_due: Option<Timestamp>,
    pub stopped: bool,
}

impl Telemetry {
    pub fn stage_ended(&self, pipeline: &str, step: &str, seconds: f64) {
        let mut stages = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        match stages.get_mut(&(pipeline.to_owned(), step.to_owned())) {
            Some(h) => h.observe(seconds),
            None => {
                let mut h = Seconds::default();
                h.observe(seconds);
                stages.insert((pipeline.to_owned(), step.to_owned()), h);
            }
        }
    }

    /// Counts one delivery attempt on `channel`: `result` is `delivered` or `failed`.
    pub fn notification(&self, channel: &str, result: &str) {
        let mut counts = self.notifications.lock().unwrap_or_else(|e| e.into_inner());
        *counts
            .entry((channel.to_owned(), result.to_owned()))
            .or_default() += 1;
    }

    /// Delivery attempts since this process started, by (channel, result).
    pub fn notifications(&self) -> BTreeMap<(String, String), u64> {
        self.notifications
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn lag(&self, seconds: f64) {
        self.lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(seconds);
    }

    /// Stage durations by (pipeline, step).
    pub fn stages(&self) -> BTreeMap<(String, String), Seconds> {
        self.stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn lags(&self) -> Seconds {
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The scheduler passed at `now` and next waits for `next`.
    pub fn scheduler_pass(&self, now: Timestamp, next: Option<Timestamp>) {
        self.last_pass
            .store(now.timestamp_millis(), Ordering::Relaxed);
        self.next_due.store(
            next.map_or(i64::MAX, |t| t.timestamp_millis()),
            Ordering::Relaxed,
        );
    }

    pub fn scheduler_stopped(&self) {
        self.scheduler_stopped.store(true, Ordering::Relaxed);
    }

    pub fn pulse(&self) -> Pulse {
        let at = |ms: i64| Timestamp::from_timestamp_millis(ms);
        let last = self.last_pass.load(Ordering::Relaxed);
        let next = self.next_due.load(Ordering::Relaxed);
        Pulse {
            last_pass: (last != 0).then(|| at(last)).flatten(),
            next_due: (next != i64::MAX && last != 0).then(|| at(next)).flatten(),
            stopped: self.scheduler_stopped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Seconds::default();
        h.observe(0.001);
        h.observe(0.0015);
        h.observe(7200.0);
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[1], 1);
        assert_eq!(h.counts[BUCKETS.len()], 1);
        assert_eq!(h.count, 3);
        assert!((h.sum - 7200.0025).abs() < 1e-9);
    }
}
