//! `plantao serve` without its front door: this node's lease, the scheduler, the executor, the
//! housekeeper, the alert evaluator and the notification dispatcher, a configuration that can be replaced while running, and a graceful stop.

use std::sync::Arc;

use plantao_config::Config;
use plantao_store::{Store, StoreError};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::alerts::Evaluator;
use crate::clock::Clock;
use crate::executor::{Executor, Handoff, Slots};
use crate::housekeeping::Housekeeper;
use crate::lease::Lease;
use crate::notify::Dispatcher;
use crate::scheduler::Scheduler;
use crate::telemetry::Telemetry;
use crate::writable::Writable;

#[derive(Debug)]
pub struct Daemon {
    lease: Lease,
    telemetry: Arc<Telemetry>,
    config: watch::Sender<Arc<Config>>,
    stop_scheduler: watch::Sender<bool>,
    stop_executor: watch::Sender<bool>,
    stop_housekeeper: watch::Sender<bool>,
    stop_alerts: watch::Sender<bool>,
    scheduler: JoinHandle<()>,
    executor: JoinHandle<()>,
    housekeeper: JoinHandle<()>,
    evaluator: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    self_heartbeat: JoinHandle<()>,
    prober: JoinHandle<()>,
    backfiller: JoinHandle<()>,
    outbox: Arc<Notify>,
    ended: mpsc::UnboundedSender<plantao_model::RunId>,
}

impl Daemon {
    pub async fn start(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Daemon, StoreError> {
        let lease = Lease::acquire(store.clone(), "serve").await?;
        let telemetry = Arc::new(Telemetry::default());
        let (config_tx, config_rx) = watch::channel(config);
        let (stop_scheduler, scheduler_stop) = watch::channel(false);
        let (stop_executor, executor_stop) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let slots = Arc::new(Slots::default());
        let (handoff_tx, handed) = mpsc::unbounded_channel();
        let handoff = Handoff {
            node: lease.id().to_owned(),
            slots: slots.clone(),
            tx: handoff_tx,
        };
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let scheduler = Scheduler {
            store: store.clone(),
            clock: clock.clone(),
            config: config_rx.clone(),
            wake: wake.clone(),
            handoff: Some(handoff),
            writable: lease.writable().clone(),
            telemetry: telemetry.clone(),
            skipped: Some(ended_tx.clone()),
        };
        let (stop_housekeeper, housekeeper_stop) = watch::channel(false);
        let housekeeper = Housekeeper {
            store: store.clone(),
            clock: clock.clone(),
            config: config_rx.clone(),
            node: lease.id().to_owned(),
            writable: lease.writable().clone(),
        };
        let period = config_rx.borrow().engine.evaluate_every;
        let outbox = Arc::new(Notify::new());
        let (stop_alerts, alerts_stop) = watch::channel(false);
        let evaluator = Evaluator {
            store: store.clone(),
            clock: clock.clone(),
            config: config_rx.clone(),
            node: lease.id().to_owned(),
            ended,
            outbox: outbox.clone(),
            writable: lease.writable().clone(),
            period,
        };
        let dispatcher = Dispatcher {
            store: store.clone(),
            clock: clock.clone(),
            config: config_rx.clone(),
            wake: outbox.clone(),
            writable: lease.writable().clone(),
            telemetry: telemetry.clone(),
        };
        let prober = crate::checks::prober::Prober {
            store: store.clone(),
            clock: clock.clone(),
            config: config_rx.clone(),
            node: lease.id().to_owned(),
            writable: lease.writable().clone(),
        };
        let backfiller = crate::backfill::Backfiller {
            store: store.clone(),
            clock: clock.clone(),
            config: config_rx.clone(),
            node: lease.id().to_owned(),
            writable: lease.writable().clone(),
        };
        let outward = crate::checks::outward::SelfHeartbeat {
            config: config_rx.clone(),
            writable: lease.writable().clone(),
        };
        let executor = Executor {
            store,
            clock,
            config: config_rx,
            node: lease.id().to_owned(),
            wake,
            slots,
            handed,
            writable: lease.writable().clone(),
            telemetry: telemetry.clone(),
            ended: Some(ended_tx.clone()),
        };
        Ok(Daemon {
            lease,
            telemetry,
            config: config_tx,
            scheduler: tokio::spawn(scheduler.run(scheduler_stop)),
            executor: tokio::spawn(executor.run(executor_stop)),
            housekeeper: tokio::spawn(housekeeper.run(housekeeper_stop.clone())),
            evaluator: tokio::spawn(evaluator.run(alerts_stop.clone())),
            self_heartbeat: tokio::spawn(outward.run(alerts_stop.clone())),
            prober: tokio::spawn(prober.run(alerts_stop.clone())),
            backfiller: tokio::spawn(backfiller.run(housekeeper_stop.clone())),
            dispatcher: tokio::spawn(dispatcher.run(alerts_stop)),
            outbox,
            ended: ended_tx,
            stop_alerts,
            stop_scheduler,
            stop_executor,
            stop_housekeeper,
        })
    }

    pub fn node(&self) -> &str {
        self.lease.id()
    }

    /// Whether the store accepts writes, as this node last saw it.
    pub fn writable(&self) -> &Arc<Writable> {
        self.lease.writable()
    }

    /// What this process counted since it started, and the scheduler's pulse.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// Rings the dispatcher: something was put in the outbox.
    pub fn outbox(&self) -> &Arc<Notify> {
        &self.outbox
    }

    /// Where a run that ended elsewhere in this process (a heartbeat's ping) is announced, so
    /// that the run rules judge it at once.
    pub fn ended(&self) -> &mpsc::UnboundedSender<plantao_model::RunId> {
        &self.ended
    }

    /// Applies a new configuration: new schedules start, removed pipelines stop being
    /// scheduled, running runs finish on the definition they started with.
    pub fn reload(&self, config: Arc<Config>) {
        self.config.send_replace(config);
    }

    /// Stops scheduling and claiming, gives running runs the configured grace, stops the rest
    /// (they end interrupted), and releases the lease.
    pub async fn shut_down(self) -> Result<(), StoreError> {
        // The scheduler first: once it has stopped, no run can be handed to the executor after
        // the executor has closed its hand-off.
        self.stop_housekeeper.send_replace(true);
        self.stop_scheduler.send_replace(true);
        let _ = self.scheduler.await;
        let _ = self.housekeeper.await;
        self.stop_executor.send_replace(true);
        let _ = self.executor.await;
        // After the executor: the runs that ended last are judged, their notifications queued
        // (and delivered by the next start if not now).
        self.stop_alerts.send_replace(true);
        let _ = self.evaluator.await;
        let _ = self.dispatcher.await;
        let _ = self.self_heartbeat.await;
        let _ = self.prober.await;
        let _ = self.backfiller.await;
        self.lease.release().await
    }
}
