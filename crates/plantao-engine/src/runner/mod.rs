//! The runner: executes one run of a pipeline, step by step (or as a graph), and writes every
//! state change to the store as it happens, so that a crash mid-run leaves the run `running`
//! with its finished stages recorded.

pub(crate) mod attempt;
mod backoff;
pub(crate) mod cert;
mod findings;
pub(crate) mod http;
mod inputs;
mod log;
mod outputs;
mod plan;
mod process;
mod report;
pub(crate) mod sql;
mod step;
pub(crate) mod sys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use std::sync::atomic::AtomicBool;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use plantao_config::{Config, Pipeline, Step};
use plantao_model::{ExprValue, Redactor, RunId, RunStatus, StageStatus, Trigger, Vars};
use plantao_store::{
    Checkpoint, InputFile, NewRun, RunEnd, Stage, StateEntry, Store, StoreError, Timestamp, Write,
};

use crate::telemetry::Telemetry;
use tokio::sync::watch;

pub use attempt::{Stop, StopSignal};
pub use log::DEFAULT_LOG_LIMIT;
pub use plan::{Plan, PlanError, Planned, RunRequest};
pub use report::{Observer, Quiet, RunReport, StageReport};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare the folder for steps' output files {path}: {error}")]
    Folder { path: PathBuf, error: String },
}

/// The folder holding this process's `$PLANTAO_OUTPUT` files, made once. Each attempt's file is
/// named after its run, step and attempt, is only created if the step writes to it, and is
/// removed once read: no file or folder is made per run (on ext4, creating inodes amid many
/// recently deleted ones showed as the largest cost of a burst of runs).
fn outputs_folder() -> Result<&'static Path, RunError> {
    static FOLDER: OnceLock<Result<PathBuf, (PathBuf, String)>> = OnceLock::new();
    let made = FOLDER.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("plantao-{}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map(|()| path.clone())
            .map_err(|e| (path, e.to_string()))
    });
    match made {
        Ok(path) => Ok(path),
        Err((path, error)) => Err(RunError::Folder {
            path: path.clone(),
            error: error.clone(),
        }),
    }
}

/// Executes runs for one process (`node`), recording them in `store`.
#[derive(Debug)]
pub struct Runner {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    node: Option<String>,
    /// Built on the first HTTP step: a daemon without HTTP steps never loads TLS roots.
    log_limit: usize,
    telemetry: Arc<Telemetry>,
    /// The configuration file, absolute: steps get it as `PLANTAO_CONFIG`, so a `plantao`
    /// command run as a step (a backup, a report) reads the same configuration.
    config_file: PathBuf,
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
    /// The run's own stop signal, also in `finally` steps (whose `cancel` never fires): a
    /// record waiting for a database that cannot write gives up on a shutdown.
    give_up: StopSignal,
    observer: &'a dyn Observer,
    prior: Prior,
}

/// What a run's steps are told of the pipeline's earlier runs.
#[derive(Clone, Default)]
struct Prior {
    state: Vec<StateEntry>,
    last_success_at: Option<Timestamp>,
}

impl RunCx<'_> {
    fn shutting_down(&self) -> bool {
        *self.give_up.borrow() == Some(Stop::Shutdown)
    }
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
    /// The `state.KEY` values its steps reported, a later one replacing an earlier.
    state: Vec<(String, String)>,
}

impl Runner {
    pub fn new(config: Arc<Config>, store: Arc<dyn Store>, node: Option<String>) -> Self {
        let config_file = std::fs::canonicalize(&config.file).unwrap_or(config.file.clone());
        Runner {
            config,
            store,
            node,
            log_limit: DEFAULT_LOG_LIMIT,
            telemetry: Arc::default(),
            config_file,
        }
    }

    /// Where stage durations and scheduling lags are counted (by default, nowhere shared).
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Where it records runs.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn http(&self) -> &reqwest::Client {
        crate::http_client()
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
                selection: plan.selection.clone(),
                period: plan.period,
                force: plan.force,
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
        let folder = outputs_folder()?.to_owned();
        let pipeline = &plan.pipeline.name;
        let (state, last_success_at) = tokio::join!(
            self.store.state(pipeline),
            self.store.last_success_at(pipeline)
        );
        let prior = Prior {
            state: state?,
            last_success_at: last_success_at?,
        };
        let inputs = match &plan.pipeline.inputs {
            None => None,
            Some(patterns) => match self.look_at_inputs(plan, run, patterns).await? {
                Ok(found) => Some(found),
                Err(early) => return Ok(early.into_report(plan, clock)),
            },
        };
        let cx = RunCx {
            id: run.id,
            trigger: run.trigger,
            scheduled_for: run.scheduled_for,
            lag_pending: AtomicBool::new(run.scheduled_for.is_some()),
            plan,
            folder,
            deadline: plan.pipeline.timeout.map(|t| clock + t),
            cancel: stop.clone(),
            give_up: stop.clone(),
            observer,
            prior,
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
        if status == RunStatus::Succeeded {
            writes.extend(succeeded(plan, run.id, inputs, &main.state, &cleanup.state));
        }
        writes.extend(chained(plan, run.id, status));
        // A cancelled run still waits to record that it ended; only a shutdown gives up (the
        // next start then closes the run as interrupted).
        self.record(writes, || *stop.borrow() == Some(Stop::Shutdown))
            .await?;
        let mut stages = main.reports;
        stages.extend(cleanup.reports);
        // The counters of each step's last attempt.
        let counters = stages.iter().flat_map(|s| {
            s.counters
                .iter()
                .map(|(name, value)| (s.step.as_str(), name.as_str(), *value))
        });
        let metrics = derived_metrics(plan.pipeline, counters);
        Ok(RunReport {
            run_id: run.id,
            pipeline: plan.pipeline.name.clone(),
            status,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            stages,
            metrics,
            error_stage,
            error_message,
            reason: None,
        })
    }

    /// Hashes the pipeline's input files and records them with the run. A run that has
    /// nothing to do (the files are as the last success found them, and it is not forced) or
    /// whose files cannot be read ends here, without a step.
    async fn look_at_inputs(
        &self,
        plan: &Plan<'_>,
        run: &Claimed,
        patterns: &plantao_config::Inputs,
    ) -> Result<Result<Vec<InputFile>, EarlyEnd>, RunError> {
        let patterns = patterns.clone();
        let hashed = tokio::task::spawn_blocking(move || inputs::hash(&patterns))
            .await
            .unwrap_or_else(|e| Err(format!("hashing the input files failed: {e}")));
        let found = match hashed {
            Ok(found) => found,
            Err(message) => {
                let end = EarlyEnd {
                    id: run.id,
                    status: RunStatus::Failed,
                    reason: None,
                    message,
                };
                self.record(vec![end.finish()], || false).await?;
                return Ok(Err(end));
            }
        };
        let last = self.store.last_inputs(&plan.pipeline.name).await?;
        let mut writes = vec![Write::PutInputs {
            run: run.id,
            inputs: found.clone(),
        }];
        if !plan.force && inputs::unchanged(&found, &last) {
            let end = EarlyEnd {
                id: run.id,
                status: RunStatus::Skipped,
                reason: Some(INPUTS_UNCHANGED.to_owned()),
                message: format!(
                    "its {} input file(s) are unchanged since the last successful run; --force runs it anyway",
                    found.len()
                ),
            };
            writes.push(end.finish());
            self.record(writes, || false).await?;
            return Ok(Err(end));
        }
        self.record(writes, || false).await?;
        Ok(Ok(found))
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
            let step::StepEnd {
                report,
                outputs: step_outputs,
                state,
                deadline_hit,
            } = outcome?;
            done[i] = true;
            outputs.insert(list[i].step.name.clone(), step_outputs);
            for (key, value) in state {
                outputs::set(&mut end.state, key, value);
            }
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
        self.record(
            vec![Write::PutStage(Stage {
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
            })],
            || cx.shutting_down(),
        )
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
}

impl Runner {
    /// Commits `writes`. While the database cannot write (a full disk), tries again every
    /// second: a run in flight waits to record its progress rather than lose it, until
    /// `give_up` says so (a shutdown).
    async fn record(
        &self,
        writes: Vec<Write>,
        give_up: impl Fn() -> bool,
    ) -> Result<(), StoreError> {
        let mut said = false;
        loop {
            match self.store.apply(writes.clone()).await {
                Err(StoreError::CannotWrite(reason)) if !give_up() => {
                    if !said {
                        tracing::warn!(%reason, "a run waits to record its progress until the database can write");
                        said = true;
                    }
                    tokio::time::sleep(RECORD_RETRY).await;
                }
                done => return done.map(drop),
            }
        }
    }
}

/// The reason a run that had nothing to do is skipped with.
pub const INPUTS_UNCHANGED: &str = "inputs_unchanged";

/// A run that ends before its first step.
struct EarlyEnd {
    id: RunId,
    status: RunStatus,
    reason: Option<String>,
    message: String,
}

impl EarlyEnd {
    fn finish(&self) -> Write {
        Write::FinishRun(RunEnd {
            id: self.id,
            status: self.status,
            at: Utc::now(),
            reason: self.reason.clone(),
            error_stage: None,
            error_message: (self.status != RunStatus::Skipped).then(|| self.message.clone()),
        })
    }

    fn into_report(self, plan: &Plan<'_>, clock: Instant) -> RunReport {
        let skipped = self.status == RunStatus::Skipped;
        RunReport {
            run_id: self.id,
            pipeline: plan.pipeline.name.clone(),
            status: self.status,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            stages: Vec::new(),
            metrics: Vec::new(),
            error_stage: None,
            error_message: (!skipped).then(|| self.message.clone()),
            reason: skipped.then_some(self.message),
        }
    }
}

/// What a success commits with it: the state its steps set, its inputs as what the next runs
/// compare theirs with, its backfill period as done.
fn succeeded(
    plan: &Plan<'_>,
    run: RunId,
    inputs: Option<Vec<InputFile>>,
    main: &[(String, String)],
    cleanup: &[(String, String)],
) -> Vec<Write> {
    let now = Utc::now();
    let pipeline = &plan.pipeline.name;
    let mut state = main.to_vec();
    for (key, value) in cleanup {
        outputs::set(&mut state, key.clone(), value.clone());
    }
    let mut writes: Vec<Write> = state
        .into_iter()
        .map(|(key, value)| Write::SetState {
            pipeline: pipeline.clone(),
            key,
            value: Some(value),
            at: now,
            run: Some(run),
        })
        .collect();
    if let Some(inputs) = inputs {
        writes.push(Write::SetLastInputs {
            pipeline: pipeline.clone(),
            run,
            inputs,
        });
    }
    if let Some(period) = plan.period {
        writes.push(Write::Checkpoint(Checkpoint {
            pipeline: pipeline.clone(),
            period,
            run_id: run,
            at: now,
        }));
    }
    writes
}

/// How often a run retries a record the database refused for want of space.
const RECORD_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A pipeline's derived metrics over counters given as (step, counter, value).
pub fn derived_metrics<'a>(
    pipeline: &Pipeline,
    counters: impl IntoIterator<Item = (&'a str, &'a str, f64)>,
) -> Vec<(String, ExprValue)> {
    let mut vars = Vars::default();
    for (step, name, value) in counters {
        vars.member(step, name, value);
    }
    pipeline
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.expr.eval(&vars)))
        .collect()
}

/// Derived metrics as JSON values: a number, a boolean, a text, or null for no data.
pub fn metric_values(values: &[(String, ExprValue)]) -> BTreeMap<String, serde_json::Value> {
    values
        .iter()
        .map(|(name, v)| (name.clone(), v.to_json()))
        .collect()
}

/// A recorded run's derived metrics, from its pipeline's current definition; none when the
/// pipeline left the configuration.
pub fn run_metrics(
    config: &Config,
    pipeline: &str,
    counters: &[plantao_store::Counter],
) -> Vec<(String, ExprValue)> {
    config.pipeline(pipeline).map_or_else(Vec::new, |p| {
        derived_metrics(
            p,
            counters
                .iter()
                .map(|c| (c.step.as_str(), c.name.as_str(), c.value)),
        )
    })
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
                parent: Some(parent),
                ..NewRun::queued(pipeline, Trigger::Chained, now)
            })
        })
        .collect()
}

/// The bytes free and in all on the filesystem holding `path`.
pub fn disk_space(path: &Path) -> std::io::Result<(u64, u64)> {
    sys::statvfs(path)
}

/// Whether `connection` answers a trivial query within `limit`; the error says why not.
pub async fn check_connection(
    connection: &plantao_config::Connection,
    limit: std::time::Duration,
) -> Result<(), String> {
    match tokio::time::timeout(limit, sql::rows_json(connection, "SELECT 1")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}
