//! The alert evaluator. Run rules are judged as soon as a run ends, by the node that ran it;
//! window and `stuck` rules, pending alerts coming of age and reminders every
//! `engine.evaluate_every` (default 15 s) by the one node that holds the [`TASK`] (see `Store::own`), from the
//! rollups and the open runs, never by scanning history. What an evaluation decides goes to the
//! store one alert at a time, each alert's change with its notifications in one transaction;
//! the dispatcher (`crate::notify`) delivers them.

pub mod conditions;
pub mod lifecycle;
pub mod silences;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use plantao_config::{AlertRule, AlertWindow, Condition, Config, DurationLimit};
use plantao_model::{AlertState, RunId, RunStatus};
use plantao_store::{Alert, AlertChange, RunFilter, Store, StoreError, Summary, Timestamp, Write};
use tokio::sync::{Notify, mpsc, watch};

use crate::clock::Clock;
use crate::writable::Writable;
use conditions::{on_open_runs, on_run_end, on_window, watches, window, window_name};
pub(crate) use lifecycle::to_delta;
pub use lifecycle::{Gate, Observation, Verdict, fingerprint};

pub const TASK: &str = "alerts";
/// Successful runs "slower than usual" needs before it judges.
const MIN_USUAL: usize = 5;
/// Open runs a `stuck` rule looks at, per status.
const OPEN_RUNS_LIMIT: u32 = 10_000;
/// Silences read per evaluation (those in force and to come).
const SILENCES_LIMIT: u32 = 10_000;

/// What one rule says about one set of labels, and the alert it concerns.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: String,
    pub observation: Observation,
    /// The alert open for these labels before the evaluation, if any.
    pub open: Option<AlertState>,
}

/// What an evaluation found, and the writes it decided (each batch is one alert).
#[derive(Debug, Default)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub batches: Vec<Vec<Write>>,
}

/// One periodic evaluation at `now`: window and stuck rules, pending alerts of run rules whose
/// `for` has elapsed, reminders due, and alerts of rules no longer configured (resolved).
pub async fn evaluate(
    store: &dyn Store,
    config: &Config,
    now: Timestamp,
) -> Result<Evaluation, StoreError> {
    let open = store.open_alerts().await?;
    let by_fingerprint: HashMap<&str, &Alert> =
        open.iter().map(|a| (a.fingerprint.as_str(), a)).collect();
    let mut gate = gate(store, &open, now).await?;
    let overrides = store.thresholds().await?;
    let summaries = window_totals(store, config, now).await?;
    let empty = Summary::default();
    let mut open_runs: Option<Vec<plantao_store::Run>> = None;
    // What the store keeps of the checks, read once for the check rules and the incidents.
    let (records, paused) = if config.heartbeats.is_empty() && config.probes.is_empty() {
        (BTreeMap::new(), Vec::new())
    } else {
        (store.checks().await?, store.paused_pipelines().await?)
    };
    let mut out = Evaluation::default();
    // Causes first (rules named by a rule's or a pipeline's `depends_on`): a dependent judged in
    // the same evaluation sees its cause fire.
    let causes: std::collections::HashSet<&str> = config
        .alerts
        .iter()
        .map(|r| &r.depends_on)
        .chain(config.pipelines.iter().map(|p| &p.depends_on))
        .chain(config.heartbeats.iter().map(|h| &h.depends_on))
        .chain(config.probes.iter().map(|p| &p.depends_on))
        .flatten()
        .map(String::as_str)
        .collect();
    let mut rules: Vec<&AlertRule> = config.alerts.iter().collect();
    rules.sort_by_key(|r| !causes.contains(r.name.as_str()));
    for rule in rules {
        let mut observations = Vec::new();
        match &rule.condition {
            Condition::FailureRate { window: w } | Condition::Expr { window: w, .. } => {
                let threshold = overrides.get(&rule.name).copied().or(rule.threshold);
                for p in config.pipelines.iter().filter(|p| watches(rule, &p.name)) {
                    let summary = summaries
                        .get(&(p.name.clone(), window_name(*w)))
                        .unwrap_or(&empty);
                    observations.extend(on_window(rule, p, summary, threshold));
                }
            }
            Condition::Stuck { .. } => {
                if open_runs.is_none() {
                    open_runs = Some(read_open_runs(store).await?);
                }
                let holding = on_open_runs(rule, open_runs.as_deref().unwrap_or_default(), now);
                // An alert whose run is no longer stuck (it ended, or started) resolves.
                for a in open.iter().filter(|a| a.rule == rule.name) {
                    let still = holding
                        .iter()
                        .any(|o| fingerprint(&rule.name, &o.labels) == a.fingerprint);
                    if !still {
                        observations.push(cleared(a));
                    }
                }
                observations.extend(holding);
            }
            Condition::Heartbeat { check, events } => {
                for h in config
                    .heartbeats
                    .iter()
                    .filter(|h| check.as_ref().is_none_or(|c| *c == h.name))
                {
                    let status = crate::checks::status(
                        h,
                        records.get(&h.name),
                        paused.contains(&h.name),
                        now,
                    );
                    observations.extend(on_heartbeat(rule, h, &status, events));
                }
            }
            Condition::Probe { check } => {
                for p in config
                    .probes
                    .iter()
                    .filter(|p| check.as_ref().is_none_or(|c| *c == p.name))
                {
                    observations.push(on_probe(rule, p, records.get(&p.name)));
                }
            }
            // This node's own view, judged in `Evaluator::storage` (an alert about the store cannot
            // wait for the store).
            Condition::Storage => {}
            Condition::RunFailed
            | Condition::StageFailed { .. }
            | Condition::Duration { .. }
            | Condition::Missed
            | Condition::Pattern { .. } => {
                // The condition was last seen holding when a run ended; its `for` may be over.
                observations.extend(
                    open.iter()
                        .filter(|a| a.rule == rule.name && a.state == AlertState::Pending)
                        .map(|a| Observation {
                            verdict: Verdict::Holds,
                            ..cleared(a)
                        }),
                );
            }
        }
        for obs in observations {
            judge(config, rule, obs, &by_fingerprint, &mut gate, now, &mut out);
        }
    }
    settle_gate(&mut gate, &open, &out.batches);
    let incidents =
        crate::checks::uptime::track_heartbeats(store, config, &records, &paused, now).await?;
    if !incidents.is_empty() {
        out.batches.push(incidents);
    }
    for a in &open {
        if config.alert_rule(&a.rule).is_none() {
            out.batches.push(vec![Write::ChangeAlert {
                id: a.id,
                change: AlertChange::Resolve {
                    at: now,
                    value: None,
                },
            }]);
            continue;
        }
        for due in [
            lifecycle::regate(config, a, &gate, now),
            lifecycle::remind(config, a, now),
            lifecycle::escalate(config, a, now),
        ] {
            if !due.is_empty() {
                out.batches.push(due);
            }
        }
    }
    Ok(out)
}

/// The silences in force at `now` and the rules firing among `open`.
async fn gate(store: &dyn Store, open: &[Alert], now: Timestamp) -> Result<Gate, StoreError> {
    let silences = store.silences(now, SILENCES_LIMIT).await?;
    Ok(Gate::new(silences, open, now))
}

/// The rules firing once `batches` are committed: those firing before, but for alerts the
/// batches resolve, and those the batches fire.
fn settle_gate(gate: &mut Gate, open: &[Alert], batches: &[Vec<Write>]) {
    let mut resolved = std::collections::HashSet::new();
    let mut fired = Vec::new();
    for w in batches.iter().flatten() {
        match w {
            Write::ChangeAlert {
                id,
                change: AlertChange::Resolve { .. },
            } => {
                resolved.insert(*id);
            }
            Write::OpenAlert(a) if fires(w) => fired.push(a.rule.clone()),
            Write::ChangeAlert { id, .. } if fires(w) => {
                fired.extend(open.iter().find(|a| a.id == *id).map(|a| a.rule.clone()));
            }
            _ => {}
        }
    }
    gate.firing = open
        .iter()
        .filter(|a| a.state == AlertState::Firing && !resolved.contains(&a.id))
        .map(|a| a.rule.clone())
        .chain(fired)
        .collect();
}

/// Whether `w` makes an alert fire.
fn fires(w: &Write) -> bool {
    match w {
        Write::OpenAlert(a) => a.state == AlertState::Firing,
        Write::ChangeAlert { change, .. } => matches!(change, AlertChange::Fire { .. }),
        _ => false,
    }
}

/// What each pipeline a window rule watches adds up to over each window the rules use, read
/// from the rollups a window (and, for "today", a time zone) at a time for all pipelines at
/// once: a thousand rules cost a handful of queries.
async fn window_totals(
    store: &dyn Store,
    config: &Config,
    now: Timestamp,
) -> Result<HashMap<(String, &'static str), Summary>, StoreError> {
    // (window, zone) → pipelines; the zone only matters for "today".
    let mut wanted: BTreeMap<(&'static str, &str), (AlertWindow, chrono_tz::Tz, Vec<String>)> =
        BTreeMap::new();
    for rule in &config.alerts {
        let (Condition::FailureRate { window: w } | Condition::Expr { window: w, .. }) =
            &rule.condition
        else {
            continue;
        };
        for p in config.pipelines.iter().filter(|p| watches(rule, &p.name)) {
            let zone = if *w == AlertWindow::Today {
                p.timezone
            } else {
                chrono_tz::Tz::UTC
            };
            let entry = wanted
                .entry((window_name(*w), zone.name()))
                .or_insert_with(|| (*w, zone, Vec::new()));
            if !entry.2.contains(&p.name) {
                entry.2.push(p.name.clone());
            }
        }
    }
    let mut out = HashMap::new();
    for ((name, _), (w, zone, pipelines)) in wanted {
        let (grain, from, to) = window(w).range(now, zone);
        for (pipeline, summary) in store.totals(&pipelines, grain, from, to).await? {
            out.insert((pipeline, name), summary);
        }
    }
    Ok(out)
}

/// What the run rules say about a run that ended.
pub async fn evaluate_run(
    store: &dyn Store,
    config: &Config,
    id: RunId,
    now: Timestamp,
) -> Result<Evaluation, StoreError> {
    let mut out = Evaluation::default();
    if !config.alerts.iter().any(AlertRule::on_run_end) {
        return Ok(out);
    }
    let detail = store.run_detail(id).await?;
    let open = store.open_alerts().await?;
    let by_fingerprint: HashMap<&str, &Alert> =
        open.iter().map(|a| (a.fingerprint.as_str(), a)).collect();
    let mut gate = gate(store, &open, now).await?;
    for rule in config.alerts.iter().filter(|r| r.on_run_end()) {
        let usual = match &rule.condition {
            Condition::Duration {
                limit: DurationLimit::Usual { last, .. },
                stage: None,
            } if watches(rule, &detail.run.pipeline) => {
                usual_p95(store, &detail.run, *last).await?
            }
            _ => None,
        };
        if let Some(obs) = on_run_end(rule, &detail, usual) {
            judge(config, rule, obs, &by_fingerprint, &mut gate, now, &mut out);
        }
    }
    Ok(out)
}

/// What the run rules say about the last finished run of each pipeline: after a restart, a run
/// that ended while no evaluator looked still opens or resolves its alert. An alert already
/// open for it is found by its fingerprint, so nothing fires twice.
pub async fn evaluate_last_runs(
    store: &dyn Store,
    config: &Config,
    now: Timestamp,
) -> Result<Evaluation, StoreError> {
    let mut out = Evaluation::default();
    if !config.alerts.iter().any(AlertRule::on_run_end) {
        return Ok(out);
    }
    for p in &config.pipelines {
        let runs = store
            .runs(&RunFilter {
                pipeline: Some(p.name.clone()),
                limit: 5,
                ..RunFilter::default()
            })
            .await?;
        if let Some(run) = runs.iter().find(|r| r.status.is_final()) {
            let e = evaluate_run(store, config, run.id, now).await?;
            out.findings.extend(e.findings);
            out.batches.extend(e.batches);
        }
    }
    Ok(out)
}

/// The p95 in seconds of the durations of `run`'s pipeline's last `last` successful runs
/// (`run` itself left out); none with fewer than [`MIN_USUAL`] of them.
async fn usual_p95(
    store: &dyn Store,
    run: &plantao_store::Run,
    last: u32,
) -> Result<Option<f64>, StoreError> {
    let runs = store
        .runs(&RunFilter {
            pipeline: Some(run.pipeline.clone()),
            status: Some(RunStatus::Succeeded),
            limit: last + 1,
            ..RunFilter::default()
        })
        .await?;
    let mut ms: Vec<i64> = runs
        .iter()
        .filter(|r| r.id != run.id)
        .filter_map(|r| r.duration_ms)
        .take(last as usize)
        .collect();
    if ms.len() < MIN_USUAL {
        return Ok(None);
    }
    ms.sort_unstable();
    // Nearest rank.
    let rank = (ms.len() * 95).div_ceil(100).max(1) - 1;
    #[allow(clippy::cast_precision_loss)]
    Ok(Some(ms[rank] as f64 / 1000.0))
}

fn judge(
    config: &Config,
    rule: &AlertRule,
    obs: Observation,
    open: &HashMap<&str, &Alert>,
    gate: &mut Gate,
    now: Timestamp,
    out: &mut Evaluation,
) {
    let current = open
        .get(fingerprint(&rule.name, &obs.labels).as_str())
        .copied();
    let writes = lifecycle::decide(config, rule, &obs, current, gate, now);
    if writes.iter().any(fires) {
        gate.firing.insert(rule.name.clone());
    }
    if !writes.is_empty() {
        out.batches.push(writes);
    }
    out.findings.push(Finding {
        rule: rule.name.clone(),
        observation: obs,
        open: current.map(|a| a.state),
    });
}

/// What a heartbeat rule says of heartbeat `h` in `status`: for each of its events, whether it
/// holds (with why) or is clear.
fn on_heartbeat(
    rule: &AlertRule,
    h: &plantao_config::Heartbeat,
    status: &crate::checks::Status,
    events: &[plantao_config::CheckEvent],
) -> Vec<Observation> {
    events
        .iter()
        .map(|e| {
            let mut labels = rule.labels.clone();
            labels.insert("check".into(), h.name.clone());
            labels.insert("event".into(), e.as_str().to_owned());
            let mut annotations = BTreeMap::from([
                ("event".to_owned(), e.as_str().to_owned()),
                ("state".to_owned(), status.state.as_str().to_owned()),
            ]);
            if let Some(due) = status.due {
                annotations.insert("due".into(), due.to_rfc3339());
            }
            let verdict = match status.events.get(e.as_str()) {
                Some(why) => {
                    annotations.insert("why".into(), why.clone());
                    Verdict::Holds
                }
                None => Verdict::Clear,
            };
            Observation {
                labels,
                pipeline: Some(h.name.clone()),
                verdict,
                value: None,
                annotations,
            }
        })
        .collect()
}

/// What a probe rule says of probe `p`: down holds, up clears, never checked is no data.
fn on_probe(
    rule: &AlertRule,
    p: &plantao_config::Probe,
    record: Option<&plantao_store::CheckRecord>,
) -> Observation {
    let mut labels = rule.labels.clone();
    labels.insert("check".into(), p.name.clone());
    let state = record.and_then(|r| r.state.as_deref());
    let mut annotations = BTreeMap::from([("target".to_owned(), p.target.kind().to_owned())]);
    if let Some(at) = record.and_then(|r| r.last_failure_at) {
        annotations.insert("last_failure".into(), at.to_rfc3339());
    }
    if let Some(n) = record.and_then(|r| r.streak) {
        annotations.insert("streak".into(), n.to_string());
    }
    Observation {
        labels,
        pipeline: Some(p.name.clone()),
        verdict: match state {
            Some("down") => Verdict::Holds,
            Some(_) => Verdict::Clear,
            None => Verdict::NoData,
        },
        value: None,
        annotations,
    }
}

/// An observation that clears the open alert `a`.
fn cleared(a: &Alert) -> Observation {
    Observation {
        labels: a.labels.clone(),
        pipeline: a.pipeline.clone(),
        verdict: Verdict::Clear,
        value: None,
        annotations: BTreeMap::new(),
    }
}

async fn read_open_runs(store: &dyn Store) -> Result<Vec<plantao_store::Run>, StoreError> {
    let mut runs = Vec::new();
    for status in [RunStatus::Running, RunStatus::Queued] {
        runs.extend(
            store
                .runs(&RunFilter {
                    status: Some(status),
                    limit: OPEN_RUNS_LIMIT,
                    ..RunFilter::default()
                })
                .await?,
        );
    }
    Ok(runs)
}

/// Commits an evaluation's batches one alert at a time: a batch another node or an operator
/// made stale (a conflict) is dropped alone. Says how many notifications went to the outbox.
pub async fn commit(store: &dyn Store, batches: Vec<Vec<Write>>) -> Result<usize, StoreError> {
    let mut queued = 0;
    for batch in batches {
        let enqueues: Vec<bool> = batch
            .iter()
            .map(|w| matches!(w, Write::Enqueue(_)))
            .collect();
        match store.apply(batch).await {
            Ok(applied) => {
                queued += enqueues
                    .iter()
                    .zip(&applied)
                    .filter(|(e, a)| **e && **a == plantao_store::Applied::Inserted)
                    .count();
            }
            Err(StoreError::Conflict(why)) => tracing::debug!(%why, "alert changed meanwhile"),
            Err(e) => return Err(e),
        }
    }
    Ok(queued)
}

#[derive(Debug)]
pub struct Evaluator {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: watch::Receiver<Arc<Config>>,
    pub node: String,
    /// The runs this node ended.
    pub ended: mpsc::UnboundedReceiver<RunId>,
    /// Rung after notifications were queued.
    pub outbox: Arc<Notify>,
    pub writable: Arc<Writable>,
    pub period: Duration,
}

/// A `storage` alert while the store refuses this node's writes: it lives in memory, its
/// notifications are sent straight away (the outbox is in the store), and all of it is written
/// to the store once writes work again, so the record and the delivery log stay whole.
#[derive(Debug)]
struct Outage {
    alert: Alert,
    notifications: Vec<(plantao_store::Notification, Vec<plantao_store::Attempt>)>,
}

impl Evaluator {
    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.catch_up().await;
        let mut outages: Vec<Outage> = Vec::new();
        let mut next = tokio::time::Instant::now();
        loop {
            let ended = tokio::select! {
                Some(id) = self.ended.recv() => Some(id),
                () = tokio::time::sleep_until(next) => None,
                _ = stop.wait_for(|s| *s) => break,
            };
            match ended {
                Some(id) => {
                    let config = self.config.borrow().clone();
                    let now = self.clock.now();
                    let result = evaluate_run(self.store.as_ref(), &config, id, now).await;
                    self.settle(result, "a run that ended").await;
                }
                None => {
                    next = tokio::time::Instant::now() + self.period;
                    self.storage(&mut outages).await;
                    self.periodic().await;
                }
            }
        }
    }

    /// Judges the `storage` rules by this node's own view of the store: fires (in memory, with
    /// notifications sent at once) while writes are refused, and records everything once they
    /// work again, resolved.
    async fn storage(&self, outages: &mut Vec<Outage>) {
        let config = self.config.borrow().clone();
        let now = self.clock.now();
        match self.writable.refusal() {
            Some(refusal) => {
                for rule in config
                    .alerts
                    .iter()
                    .filter(|r| matches!(r.condition, Condition::Storage))
                {
                    if !outages.iter().any(|o| o.alert.rule == rule.name)
                        && now >= refusal.since + to_delta(rule.hold)
                    {
                        outages.extend(self.outage(&config, rule, &refusal.reason, now));
                    }
                }
                for outage in outages.iter_mut() {
                    for (n, attempts) in &mut outage.notifications {
                        let delivered = attempts
                            .last()
                            .is_some_and(|a| a.outcome == plantao_store::Outcome::Delivered);
                        if !delivered {
                            let a = crate::notify::deliver(&config, self.clock.as_ref(), n).await;
                            attempts.push(a);
                        }
                    }
                }
            }
            None if !outages.is_empty() => {
                for outage in outages.drain(..) {
                    let writes = self.record_outage(&config, outage, now);
                    match commit(self.store.as_ref(), vec![writes]).await {
                        Ok(_) => self.outbox.notify_one(),
                        Err(e) => tracing::error!(error = %e, "cannot record the storage alert"),
                    }
                }
            }
            None => {}
        }
    }

    fn outage(
        &self,
        config: &Config,
        rule: &AlertRule,
        reason: &str,
        now: Timestamp,
    ) -> Option<Outage> {
        let mut labels = rule.labels.clone();
        labels.insert("node".into(), self.node.clone());
        let obs = Observation {
            labels,
            pipeline: None,
            verdict: Verdict::Holds,
            value: None,
            annotations: BTreeMap::from([
                ("node".to_owned(), self.node.clone()),
                ("error".to_owned(), reason.to_owned()),
            ]),
        };
        let mut alert = None;
        let mut notifications = Vec::new();
        // The store is out of reach: no silence or dependency can be read, so none applies.
        let gate = Gate::default();
        let mut writes = lifecycle::decide(config, rule, &obs, None, &gate, now);
        if let Some(Write::OpenAlert(pending)) = writes.first()
            && pending.state == AlertState::Pending
        {
            // Its `for` has passed already (the caller checked): fire it now.
            let pending = (**pending).clone();
            writes = lifecycle::decide(config, rule, &obs, Some(&pending), &gate, now);
            alert = Some(pending);
        }
        for w in writes {
            match w {
                Write::OpenAlert(a) => alert = Some(*a),
                Write::ChangeAlert { change, .. } => {
                    if let Some(a) = alert.as_mut() {
                        change.apply(a).ok();
                    }
                }
                Write::Enqueue(n) => notifications.push((*n, Vec::new())),
                _ => {}
            }
        }
        tracing::error!(rule = %rule.name, node = %self.node, "the store refuses writes: notifying without the outbox");
        Some(Outage {
            alert: alert?,
            notifications,
        })
    }

    /// What an outage leaves in the store once writes work: the alert, resolved; the
    /// notifications sent meanwhile with their attempts; the resolution's notifications.
    fn record_outage(&self, config: &Config, outage: Outage, now: Timestamp) -> Vec<Write> {
        let Outage {
            mut alert,
            notifications,
        } = outage;
        let mut writes = vec![];
        AlertChange::Resolve {
            at: now,
            value: None,
        }
        .apply(&mut alert)
        .ok();
        writes.push(Write::OpenAlert(Box::new(alert.clone())));
        // Each notification as it was queued, then its attempts: one the channel never took
        // stays pending, and the dispatcher carries on with it.
        for (n, attempts) in notifications {
            writes.push(Write::Enqueue(Box::new(n)));
            writes.extend(attempts.into_iter().map(Write::Attempt));
        }
        let rule = config.alert_rule(&alert.rule);
        writes.extend(lifecycle::notify(
            config,
            rule,
            &alert,
            plantao_model::NotificationEvent::Resolved,
            now,
        ));
        writes
    }

    async fn periodic(&self) {
        let now = self.clock.now();
        let until = now + to_delta(self.period + crate::lease::LEASE_FOR);
        match self.store.own(TASK, &self.node, now, until).await {
            Ok(true) => {
                let config = self.config.borrow().clone();
                let result = evaluate(self.store.as_ref(), &config, now).await;
                self.settle(result, "the alert rules").await;
            }
            Ok(false) => {}
            Err(e) if self.writable.failed(&e) => {}
            Err(e) => tracing::error!(error = %e, "cannot take the alert evaluation task"),
        }
    }

    /// After a restart, the last run of each pipeline is judged again (see [`evaluate_last_runs`]).
    async fn catch_up(&self) {
        let config = self.config.borrow().clone();
        let result = evaluate_last_runs(self.store.as_ref(), &config, self.clock.now()).await;
        self.settle(result, "the last runs").await;
    }

    async fn settle(&self, result: Result<Evaluation, StoreError>, what: &str) {
        let outcome = match result {
            Ok(evaluation) => commit(self.store.as_ref(), evaluation.batches).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(0) => {}
            Ok(_) => self.outbox.notify_one(),
            Err(e) if self.writable.failed(&e) => {}
            Err(e) => tracing::error!(error = %e, "cannot evaluate {what}"),
        }
    }
}

/// The writes of `actor` acknowledging (or dismissing) alert `id`, audited.
pub fn acknowledge(id: uuid::Uuid, actor: &str, dismiss: bool, now: Timestamp) -> Vec<Write> {
    vec![
        Write::ChangeAlert {
            id,
            change: AlertChange::Acknowledge {
                by: actor.to_owned(),
                at: now,
                dismiss,
            },
        },
        Write::audit(
            actor,
            if dismiss {
                "alert.dismiss"
            } else {
                "alert.ack"
            },
            &id.to_string(),
            None,
        ),
    ]
}
