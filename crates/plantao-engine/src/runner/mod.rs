//! The runner: executes one run of a pipeline, step by step (or as a graph), and writes every
//! state change to the store as it happens, so that a crash mid-run leaves the run `running`
//! with its finished stages recorded.

mod attempt;
mod backoff;
mod http;
mod log;
mod outputs;
mod plan;
mod process;
mod report;
mod sql;
mod sys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use plantao_config::{Action, Config, Step};
use plantao_model::{Redactor, RunId, RunStatus, StageStatus, Trigger, Vars};
use plantao_store::{Counter, NewRun, Output, RunEnd, Stage, Store, StoreError, Timestamp, Write};
use tokio::sync::watch;

use attempt::Attempt;
pub use attempt::{Stop, StopSignal};
pub use log::DEFAULT_LOG_LIMIT;
pub use plan::{Plan, PlanError, Planned, RunRequest};
pub use report::{Observer, Quiet, RunReport, StageReport};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare the run's folder {path}: {error}")]
    Folder {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Executes runs for one process (`node`), recording them in `store`.
#[derive(Debug)]
pub struct Runner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    node: Option<String>,
    http: reqwest::Client,
    log_limit: usize,
}

/// Where a step's stages go and what it may read, for one run.
struct RunCx<'a> {
    id: RunId,
    trigger: Trigger,
    scheduled_for: Option<Timestamp>,
    /// A tick's lag is recorded with its first stage.
    lag_pending: AtomicBool,
    plan: &'a Plan<'a>,
    folder: PathBuf,
    deadline: Option<Instant>,
    cancel: StopSignal,
    observer: &'a dyn Observer,
}

/// A run that exists already and is `running` on this node.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: RunId,
    pub trigger: Trigger,
    pub scheduled_for: Option<Timestamp>,
}

/// How a list of steps ended.
#[derive(Default)]
struct ListEnd {
    reports: Vec<StageReport>,
    /// The first stage that failed and stopped the list.
    stopped_by: Option<StageReport>,
    /// The first stage that failed at all (continue_on_error included).
    first_failure: Option<StageReport>,
    deadline_hit: bool,
}

impl Runner {
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, node: Option<String>) -> Self {
        // One TLS provider for the process; a second install is a no-op error worth ignoring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("plantao/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Runner {
            config,
            store,
            node,
            http,
            log_limit: DEFAULT_LOG_LIMIT,
        }
    }

    /// Bounds each stage's stored log (default [`DEFAULT_LOG_LIMIT`]).
    pub fn with_log_limit(mut self, limit: usize) -> Self {
        self.log_limit = limit;
        self
    }

    fn redactor(&self) -> &Redactor {
        &self.config.redactor
    }

    /// Creates the run (status `running`, on this node) and executes it to its end. A stop
    /// asked for on `stop` kills the running steps; `finally` steps still run.
    pub async fn run(
        &self,
        plan: &Plan<'_>,
        trigger: Trigger,
        stop: StopSignal,
        observer: &dyn Observer,
    ) -> Result<RunReport, RunError> {
        let id = RunId::new();
        let started = Utc::now();
        self.store
            .apply(vec![Write::InsertRun(NewRun {
                id,
                pipeline: plan.pipeline.name.clone(),
                trigger,
                scheduled_for: None,
                params: plan.recorded_params.clone(),
                status: RunStatus::Running,
                reason: None,
                queued_at: started,
                started_at: Some(started),
                node: self.node.clone(),
                parent: None,
            })])
            .await?;
        self.execute(
            plan,
            &Claimed {
                id,
                trigger,
                scheduled_for: None,
            },
            stop,
            observer,
        )
        .await
    }

    /// Executes a run that is already `running` on this node (claimed from the queue).
    pub async fn execute(
        &self,
        plan: &Plan<'_>,
        run: &Claimed,
        stop: StopSignal,
        observer: &dyn Observer,
    ) -> Result<RunReport, RunError> {
        let clock = Instant::now();
        observer.run_started(run.id, &plan.pipeline.name);
        let folder = std::env::temp_dir().join(format!("plantao-{}", run.id));
        std::fs::create_dir_all(&folder).map_err(|error| RunError::Folder {
            path: folder.clone(),
            error,
        })?;
        let cx = RunCx {
            id: run.id,
            trigger: run.trigger,
            scheduled_for: run.scheduled_for,
            lag_pending: AtomicBool::new(run.scheduled_for.is_some()),
            plan,
            folder,
            deadline: plan.pipeline.timeout.map(|t| clock + t),
            cancel: stop.clone(),
            observer,
        };
        let main = self.run_list(&cx, &plan.steps, false).await;
        // `finally` runs whatever happened: no pipeline deadline, no stop.
        let (_never, calm) = watch::channel(None);
        let finally_cx = RunCx {
            deadline: None,
            cancel: calm,
            ..cx
        };
        let cleanup = self.run_list(&finally_cx, &plan.finally, true).await;
        let _ = std::fs::remove_dir_all(&finally_cx.folder);
        let stopped = *stop.borrow();
        let main = main?;
        let cleanup = cleanup?;
        let status = match stopped {
            Some(Stop::Cancel) => RunStatus::Cancelled,
            Some(Stop::Shutdown) => RunStatus::Interrupted,
            None if main.deadline_hit
                || main
                    .stopped_by
                    .as_ref()
                    .is_some_and(|s| s.status == StageStatus::TimedOut) =>
            {
                RunStatus::TimedOut
            }
            None if main.stopped_by.is_some() => RunStatus::Failed,
            None if main.first_failure.is_some() => RunStatus::Partial,
            None => RunStatus::Succeeded,
        };
        let error_stage = main.first_failure.as_ref().map(|s| s.step.clone());
        let error_message = if main.deadline_hit && main.stopped_by.is_none() {
            plan.pipeline
                .timeout
                .map(|t| format!("the pipeline's timeout of {} s passed", t.as_secs()))
        } else {
            main.first_failure.as_ref().and_then(|s| s.error.clone())
        };
        let reason = stopped.map(|s| stop_reason(s).to_owned());
        let mut writes = vec![Write::FinishRun(RunEnd {
            id: run.id,
            status,
            at: Utc::now(),
            reason,
            error_stage: error_stage.clone(),
            error_message: error_message.clone(),
        })];
        writes.extend(chained(plan, run.id, status));
        self.store.apply(writes).await?;
        let mut stages = main.reports;
        stages.extend(cleanup.reports);
        let metrics = derived_metrics(plan, &stages);
        Ok(RunReport {
            run_id: run.id,
            pipeline: plan.pipeline.name.clone(),
            status,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            stages,
            metrics,
            error_stage,
            error_message,
        })
    }

    /// Runs a list of steps in plan order, each as soon as the steps it comes after have ended,
    /// at most `max_parallel_steps` at once. A failure (without `continue_on_error`) starts
    /// nothing more: the steps not started are recorded as skipped.
    async fn run_list(
        &self,
        cx: &RunCx<'_>,
        list: &[Planned<'_>],
        finally: bool,
    ) -> Result<ListEnd, RunError> {
        let mut end = ListEnd::default();
        let mut done: Vec<bool> = vec![false; list.len()];
        let mut started: Vec<bool> = vec![false; list.len()];
        let mut stop: Option<&'static str> = None;
        let mut running = FuturesUnordered::new();
        let mut outputs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let limit = cx.plan.pipeline.max_parallel_steps;
        loop {
            if !finally && !end.deadline_hit && cx.deadline.is_some_and(|d| Instant::now() >= d) {
                end.deadline_hit = true;
                stop = stop.or(Some("the pipeline's timeout passed before it started"));
            }
            if stop.is_none() && cx.cancel.borrow().is_some() {
                stop = Some("the run was cancelled before it started");
            }
            let mut progressed = false;
            for (i, planned) in list.iter().enumerate() {
                if started[i] || !planned.after.iter().all(|&j| done[j]) {
                    continue;
                }
                let why_not = planned.skipped.or(stop);
                if let Some(reason) = why_not {
                    started[i] = true;
                    done[i] = true;
                    progressed = true;
                    end.reports.push(
                        self.record_skipped(cx, planned.step, reason, finally)
                            .await?,
                    );
                } else if running.len() < limit {
                    started[i] = true;
                    let snapshot = outputs.clone();
                    running.push(async move {
                        (i, self.run_step(cx, planned.step, &snapshot, finally).await)
                    });
                }
            }
            if progressed {
                continue;
            }
            let Some((i, outcome)) = running.next().await else {
                break;
            };
            let (report, step_outputs, deadline_hit) = outcome?;
            done[i] = true;
            outputs.insert(list[i].step.name.clone(), step_outputs);
            end.deadline_hit |= deadline_hit;
            if report.status != StageStatus::Succeeded {
                if end.first_failure.is_none() {
                    end.first_failure = Some(report.clone());
                }
                if !list[i].step.continue_on_error && end.stopped_by.is_none() && !finally {
                    end.stopped_by = Some(report.clone());
                    stop = Some("an earlier step failed");
                }
            }
            if deadline_hit {
                stop = stop.or(Some("the pipeline's timeout passed"));
            }
            end.reports.push(report);
        }
        Ok(end)
    }

    async fn record_skipped(
        &self,
        cx: &RunCx<'_>,
        step: &Step,
        reason: &str,
        finally: bool,
    ) -> Result<StageReport, RunError> {
        let now = Utc::now();
        self.store
            .apply(vec![Write::PutStage(Stage {
                run_id: cx.id,
                step: step.name.clone(),
                attempt: 1,
                status: StageStatus::Skipped,
                started_at: now,
                finished_at: Some(now),
                duration_ms: Some(0),
                exit_code: None,
                error: Some(reason.to_owned()),
                log: String::new(),
                cpu_user_ms: None,
                cpu_system_ms: None,
                peak_rss_kb: None,
            })])
            .await?;
        let report = StageReport {
            step: step.name.clone(),
            attempt: 1,
            attempts: 1,
            status: StageStatus::Skipped,
            duration_ms: 0,
            exit_code: None,
            error: Some(reason.to_owned()),
            counters: Vec::new(),
            finally,
        };
        cx.observer.stage_finished(&report);
        Ok(report)
    }

    /// Every attempt of one step, with the waits between them. Returns the last attempt's
    /// report, its outputs, and whether the pipeline's deadline cut it.
    async fn run_step(
        &self,
        cx: &RunCx<'_>,
        step: &Step,
        earlier: &BTreeMap<String, Vec<(String, String)>>,
        finally: bool,
    ) -> Result<(StageReport, Vec<(String, String)>, bool), RunError> {
        let attempts = step.retries + 1;
        let mut attempt = 1;
        loop {
            let remaining = cx
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            let limit = match (step.timeout, remaining) {
                (Some(s), Some(r)) => Some(s.min(r)),
                (s, r) => s.or(r),
            };
            let deadline_binds = remaining.is_some_and(|r| step.timeout.is_none_or(|s| r < s));
            let started_at = Utc::now();
            let clock = Instant::now();
            let mut stage = Stage {
                run_id: cx.id,
                step: step.name.clone(),
                attempt,
                status: StageStatus::Running,
                started_at,
                finished_at: None,
                duration_ms: None,
                exit_code: None,
                error: None,
                log: String::new(),
                cpu_user_ms: None,
                cpu_system_ms: None,
                peak_rss_kb: None,
            };
            let mut writes = vec![Write::PutStage(stage.clone())];
            if let Some(due) = cx.scheduled_for
                && cx.lag_pending.swap(false, Ordering::Relaxed)
            {
                let lag_ms = (started_at - due).num_milliseconds().max(0);
                writes.push(Write::SetLag { id: cx.id, lag_ms });
            }
            cx.observer.stage_started(&step.name, attempt, attempts);
            // The stage is recorded while its process starts, not before: the commit stays off
            // the path from the due instant to the step running.
            let (recorded, mut result) = tokio::join!(
                self.store.apply(writes),
                self.attempt(cx, step, attempt, earlier, limit)
            );
            recorded?;
            if result.status() == StageStatus::Cancelled
                && let Some(why) = *cx.cancel.borrow()
            {
                result.error = Some(stop_reason(why).to_owned());
                if why == Stop::Shutdown {
                    result.status = Some(StageStatus::Interrupted);
                }
            }
            let status = result.status();
            let duration_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
            stage.status = status;
            stage.finished_at = Some(Utc::now());
            stage.duration_ms = Some(duration_ms);
            stage.exit_code = result.exit_code;
            // An error message may quote a URL or a command that holds a secret.
            let error = result
                .error
                .as_deref()
                .map(|e| self.redactor().redact(e).into_owned());
            stage.error = error.clone();
            stage.log = self.redactor().redact(&result.log).into_owned();
            stage.cpu_user_ms = result.cpu_user_ms;
            stage.cpu_system_ms = result.cpu_system_ms;
            stage.peak_rss_kb = result.peak_rss_kb;
            let mut writes = vec![Write::PutStage(stage)];
            writes.extend(result.counters.iter().map(|(name, value)| {
                Write::PutCounter(Counter {
                    run_id: cx.id,
                    step: step.name.clone(),
                    name: name.clone(),
                    value: *value,
                })
            }));
            writes.extend(result.outputs.iter().map(|(key, value)| {
                // Stored redacted; later steps still receive the value itself.
                let value = self.redactor().redact(value).into_owned();
                Write::PutOutput(Output {
                    run_id: cx.id,
                    step: step.name.clone(),
                    key: key.clone(),
                    value,
                })
            }));
            self.store.apply(writes).await?;
            let report = StageReport {
                step: step.name.clone(),
                attempt,
                attempts,
                status,
                duration_ms,
                exit_code: result.exit_code,
                error: error.clone(),
                counters: result.counters.clone(),
                finally,
            };
            let deadline_hit = status == StageStatus::TimedOut && deadline_binds;
            let last = status == StageStatus::Succeeded
                || status == StageStatus::Cancelled
                || status == StageStatus::Interrupted
                || deadline_hit
                || attempt == attempts;
            if last {
                cx.observer.stage_finished(&report);
                return Ok((report, result.outputs, deadline_hit));
            }
            let delay = backoff::delay(&step.retry_backoff, attempt + 1);
            let error = error.as_deref().unwrap_or("failed");
            cx.observer.retrying(&step.name, attempt, error, delay);
            let wait = tokio::time::sleep(match remaining {
                Some(r) => delay.min(r),
                None => delay,
            });
            tokio::select! {
                () = wait => {}
                () = attempt::cancelled(cx.cancel.clone()) => {
                    cx.observer.stage_finished(&report);
                    return Ok((report, result.outputs, false));
                }
            }
            attempt += 1;
        }
    }

    /// One attempt, of whatever kind the step is.
    async fn attempt(
        &self,
        cx: &RunCx<'_>,
        step: &Step,
        attempt: u32,
        earlier: &BTreeMap<String, Vec<(String, String)>>,
        limit: Option<Duration>,
    ) -> Attempt {
        match &step.action {
            Action::Shell(run) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(run.expose());
                self.process_attempt(cx, step, c, "sh", attempt, earlier, limit)
                    .await
            }
            Action::Argv(argv) => {
                let mut c = std::process::Command::new(argv[0].expose());
                c.args(argv[1..].iter().map(|a| a.expose()));
                self.process_attempt(cx, step, c, argv[0].shown(), attempt, earlier, limit)
                    .await
            }
            Action::Http(h) => {
                http::run(&self.http, h, limit, cx.cancel.clone(), self.log_limit).await
            }
            Action::Sql(q) => match self.config.connections.get(&q.connection) {
                Some(conn) => {
                    sql::run(
                        conn,
                        &q.connection,
                        q.query.expose(),
                        limit,
                        cx.cancel.clone(),
                    )
                    .await
                }
                None => Attempt::failed(
                    format!("unknown connection `{}`", q.connection),
                    String::new(),
                ),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn process_attempt(
        &self,
        cx: &RunCx<'_>,
        step: &Step,
        mut command: std::process::Command,
        program: &str,
        attempt: u32,
        earlier: &BTreeMap<String, Vec<(String, String)>>,
        limit: Option<Duration>,
    ) -> Attempt {
        let output_file = cx.folder.join(format!("{}-{attempt}.out", step.name));
        if let Err(e) = std::fs::write(&output_file, b"") {
            return Attempt::failed(
                format!("cannot create {}: {e}", output_file.display()),
                String::new(),
            );
        }
        for (k, v) in step_env(cx, step, attempt, earlier, &output_file) {
            command.env(k, v);
        }
        if let Some(dir) = step
            .working_dir
            .as_ref()
            .or(cx.plan.pipeline.working_dir.as_ref())
        {
            command.current_dir(dir);
        }
        let finished = match process::run(command, limit, cx.cancel.clone(), self.log_limit).await {
            Ok(f) => f,
            Err(e) => {
                return Attempt::failed(format!("cannot run `{program}`: {e}"), String::new());
            }
        };
        let mut log = finished.log;
        let reported = outputs::parse(&std::fs::read_to_string(&output_file).unwrap_or_default());
        for w in &reported.warnings {
            log.push_str(&format!("\n[plantao] warning: {w}"));
        }
        let r = finished.reaped;
        let (status, error) = match (finished.stopped, r.code, r.signal) {
            (Some(process::Stopped::TimedOut), _, _) => (
                StageStatus::TimedOut,
                Some(format!(
                    "timed out after {} s; its process group was stopped",
                    limit.map_or(0, |l| l.as_secs())
                )),
            ),
            (Some(process::Stopped::Cancelled), _, _) => {
                (StageStatus::Cancelled, Some("cancelled".to_owned()))
            }
            (None, Some(0), _) => (StageStatus::Succeeded, None),
            (None, Some(code), _) => (StageStatus::Failed, Some(format!("exit code {code}"))),
            (None, None, Some(sig)) => {
                (StageStatus::Failed, Some(format!("killed by signal {sig}")))
            }
            (None, None, None) => (
                StageStatus::Failed,
                Some("ended without an exit code".to_owned()),
            ),
        };
        Attempt {
            status: Some(status),
            exit_code: r.code,
            error,
            log,
            counters: reported.counters(),
            outputs: reported.outputs,
            cpu_user_ms: Some(r.cpu_user_ms),
            cpu_system_ms: Some(r.cpu_system_ms),
            peak_rss_kb: Some(r.peak_rss_kb),
        }
    }
}

/// The environment of one attempt: the pipeline's and the step's `env`, then plantao's own
/// variables. Parameters and outputs travel only here, never inside a shell string.
fn step_env(
    cx: &RunCx<'_>,
    step: &Step,
    attempt: u32,
    earlier: &BTreeMap<String, Vec<(String, String)>>,
    output_file: &Path,
) -> Vec<(String, String)> {
    let pipeline = cx.plan.pipeline;
    let mut env: Vec<(String, String)> = pipeline
        .env
        .iter()
        .chain(&step.env)
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect();
    env.extend([
        ("PLANTAO_RUN_ID".to_owned(), cx.id.to_string()),
        ("PLANTAO_PIPELINE".to_owned(), pipeline.name.clone()),
        ("PLANTAO_STEP".to_owned(), step.name.clone()),
        ("PLANTAO_ATTEMPT".to_owned(), attempt.to_string()),
        ("PLANTAO_TRIGGER".to_owned(), cx.trigger.to_string()),
        (
            "PLANTAO_SCHEDULED_FOR".to_owned(),
            cx.scheduled_for
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                .unwrap_or_default(),
        ),
        (
            "PLANTAO_OUTPUT".to_owned(),
            output_file.display().to_string(),
        ),
    ]);
    for (name, value) in &cx.plan.params {
        env.push((
            format!("PLANTAO_PARAM_{}", name.to_uppercase()),
            value.clone(),
        ));
    }
    for (from, values) in earlier {
        for (key, value) in values {
            env.push((
                format!(
                    "PLANTAO_OUTPUT_{}_{}",
                    from.to_uppercase(),
                    key.to_uppercase()
                ),
                value.clone(),
            ));
        }
    }
    env
}

/// The pipeline's derived metrics over the counters of the run's final attempts.
fn derived_metrics(
    plan: &Plan<'_>,
    stages: &[StageReport],
) -> Vec<(String, plantao_model::ExprValue)> {
    let mut vars = Vars::default();
    for s in stages {
        for (name, value) in &s.counters {
            vars.member(&s.step, name, *value);
        }
    }
    plan.pipeline
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.expr.eval(&vars)))
        .collect()
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::Cancel => "cancelled",
        Stop::Shutdown => "plantao was shutting down",
    }
}

/// The runs a finished run starts: `on_success` after a success; `on_failure` after a failure,
/// a partial success or a timeout. A cancelled or interrupted run starts nothing.
fn chained(plan: &Plan<'_>, parent: RunId, status: RunStatus) -> Vec<Write> {
    let next = match status {
        RunStatus::Succeeded => &plan.pipeline.on_success,
        RunStatus::Failed | RunStatus::Partial | RunStatus::TimedOut => &plan.pipeline.on_failure,
        _ => return Vec::new(),
    };
    let now = Utc::now();
    next.iter()
        .map(|pipeline| {
            Write::InsertRun(NewRun {
                id: RunId::new(),
                pipeline: pipeline.clone(),
                trigger: Trigger::Chained,
                scheduled_for: None,
                params: BTreeMap::new(),
                status: RunStatus::Queued,
                reason: None,
                queued_at: now,
                started_at: None,
                node: None,
                parent: Some(parent),
            })
        })
        .collect()
}
