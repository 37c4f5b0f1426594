//! What becomes of each tick: a queued run, or a skipped one with the reason. Pure functions
//! over what the store says, so every rule is tested without waiting for time to pass.

use chrono::{DateTime, TimeDelta, Utc};
use plantao_config::{Catchup, Concurrency, Maintenance, Pipeline};
use plantao_model::Trigger;
use plantao_store::OpenRuns;

/// A tick this much late or more, when it is handled, was missed: the catch-up policy decides.
pub const LATE_GRACE: TimeDelta = TimeDelta::seconds(5);

/// At most this many missed ticks of one pipeline are recorded one by one.
pub const MISSED_RECORD_LIMIT: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Queue a run with this trigger; `replace` asks the running runs to stop first.
    Queue { trigger: Trigger, replace: bool },
    /// Record the tick as a skipped run with this reason.
    Skip(&'static str),
}

/// Splits ticks handled at `now` into on time and missed, then applies the catch-up policy to
/// the missed ones: `none` runs none, `latest` the latest, `all` the latest `catchup_limit`.
pub fn catch_up(
    p: &Pipeline,
    ticks: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Option<Trigger>)> {
    let (missed, on_time): (Vec<_>, Vec<_>) = ticks.iter().partition(|t| now - **t >= LATE_GRACE);
    let run_from = match p.catchup {
        Catchup::None => missed.len(),
        Catchup::Latest => missed.len().saturating_sub(1),
        Catchup::All => missed.len().saturating_sub(p.catchup_limit as usize),
    };
    missed
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, (i >= run_from).then_some(Trigger::Catchup)))
        .chain(on_time.into_iter().map(|t| (t, Some(Trigger::Scheduled))))
        .collect()
}

/// What the store says about a pipeline when its tick comes.
#[derive(Clone, Copy, Debug)]
pub struct Situation<'a> {
    pub paused: bool,
    pub maintenance: &'a [Maintenance],
    /// Runs queued and running now, counting those this batch already queued.
    pub open: OpenRuns,
}

/// The outcome of one tick that is to run (`trigger`), given the situation.
pub fn decide(p: &Pipeline, tick: DateTime<Utc>, trigger: Trigger, s: Situation<'_>) -> Outcome {
    if s.maintenance.iter().any(|m| m.covers(&p.name, tick)) {
        return Outcome::Skip("maintenance");
    }
    if s.paused {
        return Outcome::Skip("paused");
    }
    let queue = Outcome::Queue {
        trigger,
        replace: false,
    };
    // Missed ticks run one after the other, whatever the overlap policy.
    if trigger == Trigger::Catchup {
        return queue;
    }
    let busy = s.open.queued + s.open.running > 0;
    match p.concurrency {
        Concurrency::Skip if busy => Outcome::Skip("overlap"),
        Concurrency::Queue if s.open.queued >= p.queue_limit => Outcome::Skip("queue_full"),
        Concurrency::Replace if busy => Outcome::Queue {
            trigger,
            replace: true,
        },
        _ => queue,
    }
}

/// How many runs of `p` may run at once.
pub fn parallel_limit(p: &Pipeline) -> u32 {
    match p.concurrency {
        Concurrency::Allow => p.max_concurrent,
        _ => 1,
    }
}
