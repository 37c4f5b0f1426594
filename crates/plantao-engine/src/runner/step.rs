//! One step of a run: its attempts and the waits between them, each attempt of whatever kind
//! the step is, and the environment a process attempt gets.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use plantao_config::{Action, Step};
use plantao_model::StageStatus;
use plantao_store::{Counter, Output, Stage, Write};

use super::attempt::{self, Attempt, Stop};
use super::log::LiveLog;
use super::{
    RunCx, RunError, Runner, StageReport, backoff, findings, http, outputs, process, sql,
    stop_reason,
};

/// What a step's last attempt left.
pub(super) struct StepEnd {
    pub report: StageReport,
    pub outputs: Vec<(String, String)>,
    /// The `state.KEY` values it reported, for when the run succeeds.
    pub state: Vec<(String, String)>,
    /// The pipeline's deadline cut it.
    pub deadline_hit: bool,
}

/// How often a running stage's log is recorded while it grows.
pub const LOG_FLUSH: Duration = Duration::from_secs(1);

impl Runner {
    /// Every attempt of one step, with the waits between them, and what the last one left.
    pub(super) async fn run_step(
        &self,
        cx: &RunCx<'_>,
        step: &Step,
        earlier: &BTreeMap<String, Vec<(String, String)>>,
        finally: bool,
    ) -> Result<StepEnd, RunError> {
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
                let lag = (started_at - due).max(chrono::TimeDelta::zero());
                #[allow(clippy::cast_precision_loss)]
                self.telemetry
                    .lag(lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
                writes.push(Write::SetLag {
                    id: cx.id,
                    lag_ms: lag.num_milliseconds(),
                });
            }
            cx.observer.stage_started(&step.name, attempt, attempts);
            // The stage is recorded while its process starts, not before: the commit stays off
            // the path from the due instant to the step running.
            let live = LiveLog::new(self.log_limit);
            let (recorded, mut result) = tokio::join!(
                self.record(writes, || cx.shutting_down()),
                self.while_running(
                    &stage,
                    &live,
                    self.attempt(cx, step, attempt, earlier, limit, &live)
                )
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
            let took = clock.elapsed();
            let duration_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
            self.telemetry
                .stage_ended(&cx.plan.pipeline.name, &step.name, took.as_secs_f64());
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
            let place = findings::Place {
                run_id: cx.id,
                pipeline: &cx.plan.pipeline.name,
                step: &step.name,
                attempt,
            };
            let found = findings::scan(&self.config.patterns, &place, &stage.log);
            let mut writes = vec![Write::PutStage(stage)];
            writes.extend(found.into_iter().map(Write::PutFinding));
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
            self.record(writes, || cx.shutting_down()).await?;
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
                return Ok(StepEnd {
                    report,
                    outputs: result.outputs,
                    state: result.state,
                    deadline_hit,
                });
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
                    return Ok(StepEnd {
                        report,
                        outputs: result.outputs,
                        state: result.state,
                        deadline_hit: false,
                    });
                }
            }
            attempt += 1;
        }
    }

    /// Waits for `attempt`, recording the stage's log as it grows every [`LOG_FLUSH`]: what
    /// `plantao logs -f` and the API's followers read. Best effort: a write that fails is
    /// tried again at the next flush, and the stage's final record holds the whole log anyway.
    async fn while_running(
        &self,
        stage: &Stage,
        live: &LiveLog,
        attempt: impl Future<Output = Attempt>,
    ) -> Attempt {
        let mut attempt = std::pin::pin!(attempt);
        let mut flushed = 0;
        let mut every =
            tokio::time::interval_at(tokio::time::Instant::now() + LOG_FLUSH, LOG_FLUSH);
        loop {
            tokio::select! {
                done = &mut attempt => return done,
                _ = every.tick() => {
                    let (total, log) = live.snapshot();
                    if total == flushed {
                        continue;
                    }
                    let mut partial = stage.clone();
                    partial.log = self.redactor().redact(&log).into_owned();
                    if self.store.apply(vec![Write::PutStage(partial)]).await.is_ok() {
                        flushed = total;
                    }
                }
            }
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
        live: &LiveLog,
    ) -> Attempt {
        match &step.action {
            Action::Shell(run) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(run.expose());
                self.process_attempt(cx, step, c, "sh", attempt, earlier, limit, live)
                    .await
            }
            Action::Argv(argv) => {
                let mut c = std::process::Command::new(argv[0].expose());
                c.args(argv[1..].iter().map(|a| a.expose()));
                self.process_attempt(cx, step, c, argv[0].shown(), attempt, earlier, limit, live)
                    .await
            }
            Action::Http(h) => {
                http::run(self.http(), h, limit, cx.cancel.clone(), self.log_limit).await
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
        live: &LiveLog,
    ) -> Attempt {
        let output_file = cx
            .folder
            .join(format!("{}-{}-{attempt}.out", cx.id, step.name));
        command.env("PLANTAO_CONFIG", &self.config_file);
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
        let finished = match process::run(command, limit, cx.cancel.clone(), live.clone()).await {
            Ok(f) => f,
            Err(e) => {
                return Attempt::failed(format!("cannot run `{program}`: {e}"), String::new());
            }
        };
        let mut log = finished.log;
        // Absent when the step reported nothing.
        let written = std::fs::read_to_string(&output_file).ok();
        if written.is_some() {
            let _ = std::fs::remove_file(&output_file);
        }
        let reported = outputs::parse(written.as_deref().unwrap_or_default());
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
            state: reported.state,
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
    env.push((
        "PLANTAO_LAST_SUCCESS_AT".to_owned(),
        cx.prior
            .last_success_at
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default(),
    ));
    if let Some(period) = cx.plan.period {
        env.push(("PLANTAO_PERIOD_START".to_owned(), period.start.to_string()));
        env.push(("PLANTAO_PERIOD_END".to_owned(), period.end.to_string()));
    }
    for entry in &cx.prior.state {
        env.push((
            format!("PLANTAO_STATE_{}", entry.key.to_uppercase()),
            entry.value.clone(),
        ));
    }
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
