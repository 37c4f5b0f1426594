//! The executor: claims queued runs from the store and runs them, within the global
//! `max_concurrent_runs` and each pipeline's own limit; closes the runs of dead nodes as
//! interrupted; stops the runs someone asked to stop; and on shutdown lets running steps finish
//! for a grace period before stopping them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use plantao_config::Config;
use plantao_model::{RunId, RunStatus};
use plantao_store::{NewRun, Run, RunEnd, Store, StoreError, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::runner::{Claimed, Plan, Quiet, RunRequest, Runner, Stop};
use crate::scheduler::decide::parallel_limit;
use crate::telemetry::Telemetry;
use crate::writable::Writable;

/// How often the executor looks at the queue, dead nodes and cancel requests when nothing
/// wakes it sooner.
pub const POLL: Duration = Duration::from_millis(500);

/// How often it looks for runs left by dead nodes.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Executor {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: watch::Receiver<Arc<Config>>,
    /// This node's lease id.
    pub node: String,
    pub wake: Arc<Notify>,
    /// This node's run slots, shared with the scheduler's hand-off.
    pub slots: Arc<Slots>,
    /// Runs the scheduler already started on this node, to execute at once.
    pub handed: mpsc::UnboundedReceiver<Run>,
    /// While the store refuses writes, claims are tried once a second and nothing is swept.
    pub writable: Arc<Writable>,
    pub telemetry: Arc<Telemetry>,
    /// Where the ids of runs that end go (the alert evaluator), if anywhere.
    pub ended: Option<mpsc::UnboundedSender<RunId>>,
}

/// How many runs execute on this node, against `max_concurrent_runs`.
#[derive(Debug, Default)]
pub struct Slots {
    used: AtomicUsize,
}

impl Slots {
    /// Takes a slot when fewer than `limit` are taken.
    pub fn try_take(&self, limit: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn release(&self) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// What the scheduler needs to start a due run on this node itself, skipping the queue: the
/// shortest path from the due instant to the step running.
#[derive(Debug, Clone)]
pub struct Handoff {
    pub node: String,
    pub slots: Arc<Slots>,
    pub tx: mpsc::UnboundedSender<Run>,
}

struct Running {
    stop: watch::Sender<Option<Stop>>,
}

impl Executor {
    fn runner(&self, config: &Arc<Config>) -> Runner {
        Runner::new(config.clone(), self.store.clone(), Some(self.node.clone()))
            .with_telemetry(self.telemetry.clone())
    }

    /// Runs until `stop` turns true, then shuts down gracefully.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut config = self.config.borrow().clone();
        let mut runner = Arc::new(self.runner(&config));
        let mut config_rx = self.config.clone();
        let mut running: HashMap<RunId, Running> = HashMap::new();
        let mut tasks: JoinSet<RunId> = JoinSet::new();
        let mut last_sweep: Option<std::time::Instant> = None;
        // Whether to read the store this time round: cancel requests and the queue. Not after
        // each hand-off or each run that ends (a burst of a thousand would read it a thousand
        // times), unless the queue may still hold runs for the slot just freed.
        let mut look = true;
        let mut queue_may_hold = true;
        loop {
            let refusing = self.writable.is_refusing();
            let second_passed = last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
            if second_passed {
                last_sweep = Some(std::time::Instant::now());
                if !refusing && let Err(e) = self.sweep(&config).await {
                    tracing::error!(error = %e, "cannot look for runs of dead nodes");
                }
            }
            if look {
                if let Err(e) = self.stop_requested(&running).await {
                    tracing::error!(error = %e, "cannot read cancel requests");
                }
                queue_may_hold = true;
            }
            if queue_may_hold && (!refusing || second_passed) {
                match self.claim(&config, &runner, &mut running, &mut tasks).await {
                    Ok(more) => queue_may_hold = more,
                    Err(e) if self.writable.failed(&e) => {}
                    Err(e) => tracing::error!(error = %e, "cannot claim queued runs"),
                }
            }
            look = false;
            tokio::select! {
                () = self.wake.notified() => look = true,
                () = tokio::time::sleep(POLL) => look = true,
                Some(run) = self.handed.recv() => {
                    self.launch(run, &config, &runner, &mut running, &mut tasks);
                }
                Some(done) = tasks.join_next() => {
                    self.slots.release();
                    if let Ok(id) = done {
                        running.remove(&id);
                        self.ended(id);
                    }
                }
                changed = config_rx.changed() => {
                    if changed.is_ok() {
                        // Runs in flight keep the definition they started with.
                        config = config_rx.borrow_and_update().clone();
                        runner = Arc::new(self.runner(&config));
                        look = true;
                    }
                }
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        // Runs the scheduler handed over in the last instant never started.
        self.handed.close();
        while let Ok(run) = self.handed.try_recv() {
            self.slots.release();
            let reason = Some("plantao was shutting down before it started".to_owned());
            if let Err(e) = close(
                self.store.as_ref(),
                run.id,
                RunStatus::Interrupted,
                reason,
                None,
            )
            .await
            {
                tracing::error!(run = %run.id, error = %e, "cannot close a run that never started");
            }
        }
        self.shut_down(&config, running, tasks).await;
    }

    /// Starts as many queued runs as the limits allow, oldest first. Says whether the queue may
    /// still hold runs this node could start once a slot frees.
    async fn claim(
        &self,
        config: &Arc<Config>,
        runner: &Arc<Runner>,
        running: &mut HashMap<RunId, Running>,
        tasks: &mut JoinSet<RunId>,
    ) -> Result<bool, StoreError> {
        if self.slots.used() >= config.engine.max_concurrent_runs {
            return Ok(true);
        }
        let mut open = self.store.open_runs().await?;
        if open.values().all(|o| o.queued == 0) {
            return Ok(false);
        }
        // Pipelines at their own limit, across every node.
        let at_limit = |name: &str, running: u32| {
            config
                .pipeline(name)
                .is_some_and(|p| running >= parallel_limit(p))
        };
        let mut full: Vec<String> = open
            .iter()
            .filter(|(name, o)| at_limit(name, o.running))
            .map(|(name, _)| name.clone())
            .collect();
        while self.slots.try_take(config.engine.max_concurrent_runs) {
            let run = match self.store.claim_next(&self.node, Utc::now(), &full).await {
                Ok(Some(run)) => {
                    self.writable.wrote();
                    run
                }
                Ok(None) => {
                    self.slots.release();
                    // Runs wait behind their pipeline's limit: a run that ends may free it.
                    return Ok(open
                        .iter()
                        .any(|(name, o)| o.queued > 0 && full.contains(name)));
                }
                Err(e) => {
                    self.slots.release();
                    return Err(e);
                }
            };
            let counts = open.entry(run.pipeline.clone()).or_default();
            counts.running += 1;
            if at_limit(&run.pipeline, counts.running) {
                full.push(run.pipeline.clone());
            }
            self.launch(run, config, runner, running, tasks);
        }
        Ok(true)
    }

    /// Tells the alert evaluator that a run ended.
    fn ended(&self, id: RunId) {
        if let Some(tx) = &self.ended {
            // The evaluator is gone only while the daemon stops.
            let _ = tx.send(id);
        }
    }

    /// Executes a run that is `running` on this node and holds a slot.
    fn launch(
        &self,
        run: Run,
        config: &Arc<Config>,
        runner: &Arc<Runner>,
        running: &mut HashMap<RunId, Running>,
        tasks: &mut JoinSet<RunId>,
    ) {
        let (stop_tx, stop_rx) = watch::channel(run.cancel_requested.then_some(Stop::Cancel));
        running.insert(run.id, Running { stop: stop_tx });
        let (config, runner, store) = (config.clone(), runner.clone(), self.store.clone());
        tasks.spawn(async move {
            let id = run.id;
            execute(&config, &runner, store.as_ref(), run, stop_rx).await;
            id
        });
    }

    /// Closes, as interrupted, the runs whose node died (its lease expired); queues them again
    /// where the pipeline says `retry_interrupted`. Only the lease decides: a process id or a
    /// host name can be shared by containers, so neither is taken as proof of death.
    async fn sweep(&self, config: &Config) -> Result<(), StoreError> {
        let now = self.clock.now();
        let long_gone = now - chrono::TimeDelta::minutes(10);
        if self
            .store
            .nodes()
            .await?
            .iter()
            .any(|n| n.expires_at < long_gone)
        {
            self.store.remove_expired_nodes(long_gone).await?;
        }
        // This node is alive whatever its lease says: after the database refused writes for a
        // while, its lease may have lapsed before its next renewal.
        let orphans = self.store.orphaned(now).await?;
        for run in orphans
            .into_iter()
            .filter(|r| r.node.as_deref() != Some(self.node.as_str()))
        {
            let mut writes = vec![Write::FinishRun(RunEnd {
                id: run.id,
                status: RunStatus::Interrupted,
                at: now,
                reason: Some(format!(
                    "its node ({}) stopped before the run ended",
                    run.node.as_deref().unwrap_or("?")
                )),
                error_stage: None,
                error_message: None,
            })];
            if config
                .pipeline(&run.pipeline)
                .is_some_and(|p| p.retry_interrupted)
            {
                writes.push(Write::InsertRun(NewRun {
                    params: run.params.clone(),
                    reason: Some(format!("retry of interrupted run {}", run.id)),
                    parent: Some(run.id),
                    ..NewRun::queued(&run.pipeline, run.trigger, now)
                }));
            }
            match self.store.apply(writes).await {
                Ok(_) => {
                    tracing::warn!(run = %run.id, pipeline = %run.pipeline, "run interrupted: its node stopped");
                    self.ended(run.id);
                    self.wake.notify_one();
                }
                // Another node closed it first.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn stop_requested(&self, running: &HashMap<RunId, Running>) -> Result<(), StoreError> {
        if running.is_empty() {
            return Ok(());
        }
        for id in self.store.cancel_requests(&self.node).await? {
            if let Some(r) = running.get(&id) {
                r.stop
                    .send_if_modified(|s| s.replace(Stop::Cancel).is_none());
            }
        }
        Ok(())
    }

    /// Waits up to `shutdown_grace` for the running runs, then stops them (they end
    /// interrupted) and waits for them to record it.
    async fn shut_down(
        &self,
        config: &Config,
        running: HashMap<RunId, Running>,
        mut tasks: JoinSet<RunId>,
    ) {
        if tasks.is_empty() {
            return;
        }
        tracing::info!(runs = tasks.len(), grace = ?config.engine.shutdown_grace, "waiting for running runs");
        let drained = tokio::time::timeout(config.engine.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                runs = tasks.len(),
                "grace period over: stopping the runs still going"
            );
            for r in running.values() {
                r.stop
                    .send_if_modified(|s| s.replace(Stop::Shutdown).is_none());
            }
            while tasks.join_next().await.is_some() {}
        }
    }
}

/// Runs one claimed run to its end. A run that cannot start (its pipeline left the
/// configuration, its parameters no longer fit) ends failed with the reason.
async fn execute(
    config: &Config,
    runner: &Runner,
    store: &dyn Store,
    run: Run,
    stop: watch::Receiver<Option<Stop>>,
) {
    let planned = match config.pipeline(&run.pipeline) {
        Some(pipeline) => Plan::new(
            pipeline,
            &RunRequest {
                params: run.params.clone(),
                skip: run.selection.skip.clone(),
                only: run.selection.only.clone(),
                force: run.force,
                period: run.period,
            },
        )
        .map_err(|e| e.to_string()),
        None => Err("the pipeline is no longer in the configuration".to_owned()),
    };
    let outcome = match planned {
        Ok(plan) => {
            let claimed = Claimed {
                id: run.id,
                trigger: run.trigger,
                scheduled_for: run.scheduled_for,
            };
            tracing::info!(run = %run.id, pipeline = %run.pipeline, trigger = %run.trigger, "run started");
            runner
                .execute(&plan, &claimed, stop, &Quiet)
                .await
                .map(|r| r.status)
                .map_err(|e| e.to_string())
        }
        Err(why) => close(store, run.id, RunStatus::Failed, None, Some(why))
            .await
            .map(|()| RunStatus::Failed)
            .map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(status) => tracing::info!(run = %run.id, pipeline = %run.pipeline, %status, "run ended"),
        Err(e) => {
            tracing::error!(run = %run.id, pipeline = %run.pipeline, error = %e, "run could not be recorded")
        }
    }
}

/// Ends an open run that will not execute; one that ended meanwhile is left as it is.
async fn close(
    store: &dyn Store,
    id: RunId,
    status: RunStatus,
    reason: Option<String>,
    error_message: Option<String>,
) -> Result<(), StoreError> {
    let end = RunEnd {
        id,
        status,
        at: Utc::now(),
        reason,
        error_stage: None,
        error_message,
    };
    match store.apply(vec![Write::FinishRun(end)]).await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
