//! The scheduler: turns due ticks into runs in the store, exactly once each (the store's unique
//! key on pipeline and tick), with every tick that does not run recorded as a skipped run with
//! its reason. It only writes; the executor runs what it queues.

pub mod decide;
pub mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use plantao_config::{Concurrency, Config};
use plantao_model::{RunId, RunStatus};
use plantao_store::{
    Applied, NewRun, OpenRuns, Run, RunFilter, StepSelection, Store, StoreError, Write,
};
use tokio::sync::{Notify, mpsc, watch};

use crate::clock::Clock;
use crate::executor::Handoff;
use crate::telemetry::Telemetry;
use crate::writable::Writable;
use decide::{MISSED_RECORD_LIMIT, Outcome, Situation, catch_up, decide, parallel_limit};
pub use timing::Timing;

#[derive(Debug)]
pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: watch::Receiver<Arc<Config>>,
    /// Told when runs were queued.
    pub wake: Arc<Notify>,
    /// Starts due runs on this node directly when it has room (the daemon); without it every
    /// run is queued.
    pub handoff: Option<Handoff>,
    /// Told whether ticks could be written.
    pub writable: Arc<Writable>,
    /// Told of each pass, for the health check.
    pub telemetry: Arc<Telemetry>,
    /// Where the ids of ticks recorded as skipped go (the alert evaluator), if anywhere.
    pub skipped: Option<mpsc::UnboundedSender<RunId>>,
}

/// Tells the health check the scheduler stopped, however it stops (a panic included).
struct Stopped<'a>(&'a Telemetry);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.scheduler_stopped();
    }
}

/// How long before a tick is due the scheduler reads what its decisions need. A pause made
/// within this moment of a tick takes effect from the next tick.
const PREFETCH: chrono::TimeDelta = chrono::TimeDelta::milliseconds(20);

/// What the store says about paused pipelines and open runs.
struct Snapshot {
    paused: BTreeSet<String>,
    open: BTreeMap<String, OpenRuns>,
}

/// Each scheduled pipeline's timing, the last tick handled and its next tick, with the next
/// ticks ordered: finding what is due costs the due pipelines only, however many there are.
struct Agenda {
    entries: BTreeMap<String, Entry>,
    queue: BTreeSet<(DateTime<Utc>, String)>,
}

struct Entry {
    timing: Timing,
    after: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
}

impl Agenda {
    /// Starts each pipeline after its last recorded tick, or at `now` when it has none.
    fn new(config: &Config, last: &BTreeMap<String, DateTime<Utc>>, now: DateTime<Utc>) -> Agenda {
        let mut agenda = Agenda {
            entries: BTreeMap::new(),
            queue: BTreeSet::new(),
        };
        for p in &config.pipelines {
            let timing = Timing::of(p);
            if timing.is_scheduled() {
                let after = last.get(&p.name).copied().unwrap_or(now);
                agenda.set(&p.name, timing, after);
            }
        }
        agenda
    }

    /// Sets a pipeline's last handled tick and queues its next.
    fn set(&mut self, name: &str, timing: Timing, after: DateTime<Utc>) {
        let next = timing.next_after(after);
        if let Some(old) = self.entries.get(name).and_then(|e| e.next) {
            self.queue.remove(&(old, name.to_owned()));
        }
        if let Some(at) = next {
            self.queue.insert((at, name.to_owned()));
        }
        self.entries.insert(
            name.to_owned(),
            Entry {
                timing,
                after,
                next,
            },
        );
    }

    fn earliest(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Every tick due at `now`, per pipeline, oldest first; not yet marked handled.
    fn due(&self, now: DateTime<Utc>) -> BTreeMap<String, Vec<DateTime<Utc>>> {
        self.queue
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter_map(|(_, name)| {
                let entry = self.entries.get(name)?;
                let ticks = entry.timing.between(entry.after, now, MISSED_RECORD_LIMIT);
                (!ticks.is_empty()).then(|| (name.clone(), ticks))
            })
            .collect()
    }

    /// Marks the ticks handled. A pipeline with more than [`MISSED_RECORD_LIMIT`] due ticks
    /// (plantao was down for very long) had its oldest ones recorded: the rest are passed over,
    /// with a warning, rather than written one by one.
    fn handled(&mut self, due: &BTreeMap<String, Vec<DateTime<Utc>>>, now: DateTime<Utc>) {
        for (name, ticks) in due {
            let (Some(timing), Some(last)) = (
                self.entries.get(name).map(|e| e.timing.clone()),
                ticks.last(),
            ) else {
                continue;
            };
            let mut after = *last;
            if ticks.len() >= MISSED_RECORD_LIMIT {
                tracing::warn!(pipeline = %name, after = %last, "more missed ticks than are recorded one by one; the rest until now are passed over");
                after = now;
            }
            self.set(name, timing, after);
        }
    }

    /// Each pipeline's last handled tick.
    fn last(&self) -> BTreeMap<String, DateTime<Utc>> {
        self.entries
            .iter()
            .map(|(name, e)| (name.clone(), e.after))
            .collect()
    }
}

impl Scheduler {
    /// Runs until `stop` turns true. Ticks missed while plantao was down are handled first,
    /// by each pipeline's catch-up policy.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let _stopped = Stopped(&self.telemetry);
        let mut config = self.config.borrow().clone();
        let mut agenda = loop {
            match self.store.last_ticks().await {
                Ok(last) => break Agenda::new(&config, &last, self.clock.now()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the last ticks; trying again in 1 s");
                    if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        let mut config_rx = self.config.clone();
        let mut prefetched: Option<Snapshot> = None;
        loop {
            let now = self.clock.now();
            let due = agenda.due(now);
            if !due.is_empty() {
                let snapshot = match prefetched.take() {
                    Some(s) => Ok(s),
                    None => self.snapshot().await,
                };
                let recorded = match snapshot {
                    Ok(snapshot) => self.record(&config, &due, now, snapshot).await,
                    Err(e) => Err(e),
                };
                match recorded {
                    Ok(queued) => {
                        self.writable.wrote();
                        agenda.handled(&due, now);
                        if queued {
                            self.wake.notify_one();
                        }
                    }
                    Err(e) => {
                        // A refusal to write is logged once, when it starts.
                        if !self.writable.failed(&e) {
                            tracing::error!(error = %e, "cannot record ticks; trying again in 1 s");
                        }
                        if wait_or_stop(&mut stop, Duration::from_secs(1)).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            self.telemetry
                .scheduler_pass(self.clock.now(), agenda.earliest());
            let sleep = async {
                match agenda.earliest() {
                    Some(at) => {
                        // Read what the decisions need just before the instant, so that only
                        // the write stands between the due instant and the run.
                        self.clock.sleep_until(at - PREFETCH).await;
                        prefetched = self.snapshot().await.ok();
                        self.clock.sleep_until(at).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                changed = config_rx.changed() => {
                    if changed.is_ok() {
                        config = config_rx.borrow_and_update().clone();
                        // New schedules start from now; the store's unique key keeps any tick
                        // already recorded from being recorded twice.
                        agenda = Agenda::new(&config, &agenda.last(), self.clock.now());
                    }
                }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let paused = self.store.paused_pipelines().await?.into_iter().collect();
        Ok(Snapshot {
            paused,
            open: self.store.open_runs().await?,
        })
    }

    /// Records every due tick in one transaction. Returns whether any run was queued.
    async fn record(
        &self,
        config: &Config,
        due: &BTreeMap<String, Vec<DateTime<Utc>>>,
        now: DateTime<Utc>,
        snapshot: Snapshot,
    ) -> Result<bool, StoreError> {
        let Snapshot { paused, mut open } = snapshot;
        // A run may have ended since the snapshot: where an overlap would skip or limit a
        // tick, look again.
        let busy = due.keys().any(|name| {
            let counts = open.get(name).copied().unwrap_or_default();
            counts.queued + counts.running > 0
                && config
                    .pipeline(name)
                    .is_some_and(|p| p.concurrency != Concurrency::Allow)
        });
        if busy {
            open = self.store.open_runs().await?;
        }
        let mut writes = Vec::new();
        let mut handed = Vec::new();
        let mut skipped = Vec::new();
        let mut queued = false;
        for (name, ticks) in due {
            let Some(p) = config.pipeline(name) else {
                continue;
            };
            for (tick, trigger) in catch_up(p, ticks, now) {
                let situation = Situation {
                    paused: paused.contains(name),
                    maintenance: &config.maintenance,
                    open: open.get(name).copied().unwrap_or_default(),
                };
                let outcome = match trigger {
                    Some(trigger) => decide(p, tick, trigger, situation),
                    None => Outcome::Skip("missed"),
                };
                let mut run = NewRun {
                    id: RunId::new(),
                    pipeline: name.clone(),
                    trigger: trigger.unwrap_or(plantao_model::Trigger::Catchup),
                    scheduled_for: Some(tick),
                    params: BTreeMap::new(),
                    status: RunStatus::Queued,
                    reason: None,
                    queued_at: now,
                    started_at: None,
                    node: None,
                    parent: None,
                    selection: StepSelection::default(),
                    period: None,
                    force: false,
                };
                match outcome {
                    Outcome::Skip(reason) => {
                        run.status = RunStatus::Skipped;
                        run.reason = Some(reason.to_owned());
                        skipped.push((writes.len(), run.id, name, tick, reason));
                    }
                    Outcome::Queue { replace, .. } => {
                        if replace {
                            writes.extend(self.replacing(name).await?);
                        }
                        let counts = open.entry(name.clone()).or_default();
                        let direct = !replace
                            && counts.queued == 0
                            && counts.running < parallel_limit(p)
                            && self.handoff.as_ref().is_some_and(|h| {
                                h.slots.try_take(config.engine.max_concurrent_runs)
                            });
                        if direct {
                            run.status = RunStatus::Running;
                            run.started_at = Some(now);
                            run.node = self.handoff.as_ref().map(|h| h.node.clone());
                            counts.running += 1;
                            // Its index among the writes: only an insert that wins the tick is handed over.
                            handed.push((writes.len(), run.clone()));
                        } else {
                            counts.queued += 1;
                            queued = true;
                        }
                    }
                }
                writes.push(Write::InsertRun(run));
            }
        }
        let applied = self.store.apply(writes).await;
        if let Some(h) = &self.handoff {
            for (index, run) in &handed {
                // Another node may have recorded the tick first: then it runs it, not us.
                let won = applied
                    .as_ref()
                    .is_ok_and(|a| a.get(*index) == Some(&Applied::Inserted));
                // The executor owns the slot from here.
                if !won || h.tx.send(started(run)).is_err() {
                    h.slots.release();
                }
            }
        }
        let applied = applied?;
        for (index, id, pipeline, tick, reason) in skipped {
            tracing::info!(%pipeline, %tick, reason, "tick skipped");
            // Only the node that recorded the tick tells its evaluator.
            if applied.get(index) == Some(&Applied::Inserted)
                && let Some(tx) = &self.skipped
            {
                let _ = tx.send(id);
            }
        }
        Ok(queued)
    }

    /// Asks the running runs of `pipeline` to stop, for `concurrency = "replace"`.
    async fn replacing(&self, pipeline: &str) -> Result<Vec<Write>, StoreError> {
        let running = self
            .store
            .runs(&RunFilter {
                pipeline: Some(pipeline.to_owned()),
                status: Some(RunStatus::Running),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        Ok(running
            .into_iter()
            .map(|r| Write::RequestCancel { id: r.id })
            .collect())
    }
}

/// The stored form of a run the scheduler started itself.
fn started(n: &NewRun) -> Run {
    Run {
        id: n.id,
        pipeline: n.pipeline.clone(),
        trigger: n.trigger,
        scheduled_for: n.scheduled_for,
        params: n.params.clone(),
        status: n.status,
        reason: n.reason.clone(),
        queued_at: n.queued_at,
        started_at: n.started_at,
        finished_at: None,
        duration_ms: None,
        error_stage: None,
        error_message: None,
        node: n.node.clone(),
        parent: n.parent,
        lag_ms: None,
        cancel_requested: false,
        selection: n.selection.clone(),
        period: None,
        force: false,
    }
}

/// Waits `d`, or less if `stop` turns true; says whether it did.
pub(crate) async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}
