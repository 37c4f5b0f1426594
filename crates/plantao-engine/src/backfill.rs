//! Backfills: one run per day, week or month of a span of dates (trigger `backfill`), with the
//! period in the steps' environment, and a checkpoint per finished period so that a backfill
//! that stops halfway resumes where it was.
//!
//! Data flow: [`periods`] cuts the span; [`run`] reads the pipeline's checkpoints
//! once, passes over the periods that have one (unless told to ignore them), and runs the
//! others through the [`Runner`] at most `parallel` at once, waiting `sleep` between starts.
//! A run's success writes its checkpoint in the same transaction as its end (the runner
//! does it), so a kill at any moment loses at most the periods in flight.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{Datelike, Months, NaiveDate};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use plantao_config::Pipeline;
use plantao_model::{RunId, RunStatus, Trigger};
use plantao_store::Period;

use crate::runner::attempt::cancelled;
use crate::runner::{Plan, PlanError, Quiet, RunError, RunRequest, Runner, StopSignal};

/// How long each period is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    Day,
    /// Monday to Sunday.
    Week,
    /// The calendar month.
    Month,
}

impl std::str::FromStr for Every {
    type Err = String;
    fn from_str(s: &str) -> Result<Every, String> {
        match s {
            "day" => Ok(Every::Day),
            "week" => Ok(Every::Week),
            "month" => Ok(Every::Month),
            other => Err(format!("`{other}` is not a period: use day, week or month")),
        }
    }
}

/// The calendar periods (days, weeks from Monday, months) from `from` to `to` (both
/// included), the first and last cut to the span.
pub fn periods(from: NaiveDate, to: NaiveDate, every: Every) -> Vec<Period> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let natural_end = match every {
            Every::Day => start,
            Every::Week => {
                start + chrono::Days::new(6 - u64::from(start.weekday().num_days_from_monday()))
            }
            Every::Month => {
                let first = start.with_day(1).unwrap_or(start);
                first
                    .checked_add_months(Months::new(1))
                    .and_then(|next| next.pred_opt())
                    .unwrap_or(NaiveDate::MAX)
            }
        };
        let end = natural_end.min(to);
        out.push(Period { start, end });
        match end.succ_opt() {
            Some(next) => start = next,
            None => break,
        }
    }
    out
}

/// What a backfill is asked to do.
#[derive(Clone, Debug)]
pub struct BackfillRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub every: Every,
    /// Runs at once (at least 1).
    pub parallel: usize,
    /// Wait between starting one period and the next.
    pub sleep: Duration,
    /// Run periods that have a checkpoint too.
    pub ignore_checkpoint: bool,
    /// Parameters for every run.
    pub params: std::collections::BTreeMap<String, String>,
}

/// What happened to one period.
#[derive(Clone, Debug, PartialEq)]
pub enum PeriodEnd {
    /// It had a checkpoint: nothing ran.
    Checkpointed,
    Ran {
        run: RunId,
        status: RunStatus,
        duration_ms: i64,
        error: Option<String>,
    },
}

/// Follows a backfill as it goes (the CLI draws its progress from it).
pub trait BackfillObserver: Send + Sync {
    fn planned(&self, _total: usize, _checkpointed: usize) {}
    fn started(&self, _period: &Period) {}
    fn ended(&self, _period: &Period, _end: &PeriodEnd) {}
}

/// How a backfill ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackfillSummary {
    pub total: usize,
    pub succeeded: usize,
    /// Ended otherwise (failed, partial, timed out, cancelled, interrupted): no checkpoint.
    pub failed: Vec<(Period, RunId, RunStatus)>,
    /// Passed over: they had a checkpoint.
    pub skipped: usize,
    /// Not started: the backfill was stopped first.
    pub not_started: usize,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("--from {from} is after --to {to}")]
    Backwards { from: NaiveDate, to: NaiveDate },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// The periods of `request` and whether each has a checkpoint (none when checkpoints are
/// ignored): what a dry run shows and a real one acts on.
pub async fn plan(
    store: &dyn plantao_store::Store,
    pipeline: &Pipeline,
    request: &BackfillRequest,
) -> Result<Vec<(Period, bool)>, BackfillError> {
    if request.from > request.to {
        return Err(BackfillError::Backwards {
            from: request.from,
            to: request.to,
        });
    }
    // Checks the parameters once, before anything runs.
    Plan::new(pipeline, &run_request(request, None))?;
    let done: BTreeSet<Period> = if request.ignore_checkpoint {
        BTreeSet::new()
    } else {
        store
            .checkpoints(&pipeline.name)
            .await
            .map_err(RunError::from)?
            .into_iter()
            .map(|c| c.period)
            .collect()
    };
    Ok(periods(request.from, request.to, request.every)
        .into_iter()
        .map(|p| {
            let marked = done.contains(&p);
            (p, marked)
        })
        .collect())
}

fn run_request(request: &BackfillRequest, period: Option<Period>) -> RunRequest {
    RunRequest {
        params: request.params.clone(),
        period,
        ..RunRequest::default()
    }
}

/// Runs a backfill to its end, or until `stop` asks (the runs in flight are then stopped as
/// the signal says, and the periods not started are counted as such).
pub async fn run(
    runner: &Runner,
    pipeline: &Pipeline,
    request: &BackfillRequest,
    stop: StopSignal,
    observer: &dyn BackfillObserver,
) -> Result<BackfillSummary, BackfillError> {
    let clock = Instant::now();
    let planned = plan(runner.store().as_ref(), pipeline, request).await?;
    let mut summary = BackfillSummary {
        total: planned.len(),
        ..BackfillSummary::default()
    };
    let checkpointed = planned.iter().filter(|(_, marked)| *marked).count();
    observer.planned(planned.len(), checkpointed);
    let mut todo = Vec::new();
    for (period, marked) in planned {
        if marked {
            summary.skipped += 1;
            observer.ended(&period, &PeriodEnd::Checkpointed);
        } else {
            todo.push(period);
        }
    }
    let parallel = request.parallel.max(1);
    let mut queue = todo.into_iter().peekable();
    let mut running = FuturesUnordered::new();
    let mut next_start = tokio::time::Instant::now();
    loop {
        let can_start =
            running.len() < parallel && stop.borrow().is_none() && queue.peek().is_some();
        if can_start && tokio::time::Instant::now() >= next_start {
            if let Some(period) = queue.next() {
                observer.started(&period);
                let stop = stop.clone();
                running.push(async move {
                    let plan = Plan::new(pipeline, &run_request(request, Some(period)))?;
                    let report = runner.run(&plan, Trigger::Backfill, stop, &Quiet).await?;
                    Ok::<_, BackfillError>((period, report))
                });
                next_start = tokio::time::Instant::now() + request.sleep;
            }
            continue;
        }
        if running.is_empty() && !can_start {
            break;
        }
        tokio::select! {
            Some(done) = running.next() => {
                let (period, report) = done?;
                let end = PeriodEnd::Ran {
                    run: report.run_id,
                    status: report.status,
                    duration_ms: report.duration_ms,
                    error: report.error_message.clone(),
                };
                if report.status == RunStatus::Succeeded {
                    summary.succeeded += 1;
                } else {
                    summary.failed.push((period, report.run_id, report.status));
                }
                observer.ended(&period, &end);
            }
            () = tokio::time::sleep_until(next_start), if can_start => {}
            () = cancelled(stop.clone()), if can_start => {}
        }
    }
    summary.not_started = queue.count();
    summary.elapsed = clock.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn shown(ps: &[Period]) -> Vec<String> {
        ps.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn months_are_calendar_months_cut_to_the_span() {
        assert_eq!(
            shown(&periods(d("2024-01-15"), d("2024-03-10"), Every::Month)),
            [
                "2024-01-15..2024-01-31",
                "2024-02-01..2024-02-29",
                "2024-03-01..2024-03-10"
            ]
        );
        assert_eq!(
            periods(d("2022-01-01"), d("2025-12-31"), Every::Month).len(),
            48
        );
    }

    #[test]
    fn weeks_run_monday_to_sunday_and_days_one_by_one() {
        // 2024-01-03 is a Wednesday.
        assert_eq!(
            shown(&periods(d("2024-01-03"), d("2024-01-15"), Every::Week)),
            [
                "2024-01-03..2024-01-07",
                "2024-01-08..2024-01-14",
                "2024-01-15..2024-01-15"
            ]
        );
        assert_eq!(
            periods(d("2024-02-27"), d("2024-03-01"), Every::Day).len(),
            4,
            "a leap day is a day"
        );
        assert!(periods(d("2024-02-02"), d("2024-02-01"), Every::Day).is_empty());
    }

    #[test]
    fn every_is_read_from_its_name() {
        assert_eq!("week".parse::<Every>(), Ok(Every::Week));
        assert!(
            "fortnight"
                .parse::<Every>()
                .unwrap_err()
                .contains("day, week or month")
        );
    }
}

/// The store task whose owner drives the backfills asked for through the API.
pub const TASK: &str = "backfills";
/// How often the owner looks at them: a period starts at most this long after the previous
/// one ended (the CLI starts the next at once).
pub const DRIVE_EVERY: Duration = Duration::from_millis(500);

/// The daemon's side of backfills: each [`DRIVE_EVERY`], the node owning [`TASK`] queues the
/// next periods of every running backfill (at most `parallel` queued or running, `sleep`
/// apart) for any node's executor, and records how far each got.
#[derive(Debug)]
pub struct Backfiller {
    pub store: std::sync::Arc<dyn plantao_store::Store>,
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    pub config: tokio::sync::watch::Receiver<std::sync::Arc<plantao_config::Config>>,
    pub node: String,
    pub writable: std::sync::Arc<crate::writable::Writable>,
}

impl Backfiller {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.drive().await {
                Ok(()) => {}
                Err(e) if self.writable.failed(&e) => {}
                Err(e) => tracing::error!(error = %e, "cannot drive the backfills"),
            }
            tokio::select! {
                () = tokio::time::sleep(DRIVE_EVERY) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    /// One look at every running backfill, when this node owns the task.
    pub async fn drive(&self) -> Result<(), plantao_store::StoreError> {
        let now = self.clock.now();
        let hold = chrono::Duration::from_std(crate::lease::LEASE_FOR).unwrap_or_default();
        if !self.store.own(TASK, &self.node, now, now + hold).await? {
            return Ok(());
        }
        let config = self.config.borrow().clone();
        for mut backfill in self.store.backfills(None, 100).await? {
            let marks = self.store.checkpoints(&backfill.pipeline).await?;
            let runs = self
                .store
                .runs(&plantao_store::RunFilter {
                    pipeline: Some(backfill.pipeline.clone()),
                    trigger: Some(Trigger::Backfill),
                    since: Some(backfill.created_at),
                    limit: backfill.periods.saturating_add(1_000),
                    ..plantao_store::RunFilter::default()
                })
                .await?;
            let pipeline = config.pipeline(&backfill.pipeline);
            let writes = advance(&mut backfill, pipeline, &marks, &runs, now);
            self.store.apply(writes).await?;
        }
        Ok(())
    }
}

/// Moves `backfill` on at `now`, given its pipeline (none when it left the configuration),
/// the pipeline's checkpoints and the backfill runs queued since it was asked for (newest
/// first): the runs to queue and its new record, to commit together.
pub fn advance(
    backfill: &mut plantao_store::Backfill,
    pipeline: Option<&Pipeline>,
    marks: &[plantao_store::Checkpoint],
    runs: &[plantao_store::Run],
    now: plantao_store::Timestamp,
) -> Vec<plantao_store::Write> {
    use plantao_store::Write;
    let mut writes = Vec::new();
    let stop = |b: &mut plantao_store::Backfill, why: String| {
        b.state = "done".to_owned();
        b.error = Some(why);
        b.finished_at = Some(now);
    };
    let every = backfill.every.parse::<Every>();
    match (pipeline, every) {
        (None, _) => stop(
            backfill,
            format!("pipeline `{}` left the configuration", backfill.pipeline),
        ),
        (_, Err(e)) => stop(backfill, e),
        (Some(pipeline), Ok(every)) => {
            let all = periods(backfill.from, backfill.to, every);
            let before: BTreeSet<Period> = if backfill.ignore_checkpoint {
                BTreeSet::new()
            } else {
                marks
                    .iter()
                    .filter(|c| c.at < backfill.created_at)
                    .map(|c| c.period)
                    .collect()
            };
            let mut latest: std::collections::BTreeMap<Period, RunStatus> =
                std::collections::BTreeMap::new();
            for run in runs {
                if let Some(p) = run.period {
                    latest.entry(p).or_insert(run.status);
                }
            }
            let count = |f: &dyn Fn(RunStatus) -> bool| {
                u32::try_from(latest.values().filter(|s| f(**s)).count()).unwrap_or(u32::MAX)
            };
            backfill.succeeded = count(&|s| s == RunStatus::Succeeded);
            backfill.failed = count(&|s| s.is_final() && s != RunStatus::Succeeded);
            let mut in_flight = count(&|s| !s.is_final());
            backfill.skipped = u32::try_from(
                all.iter()
                    .filter(|p| before.contains(p) && !latest.contains_key(p))
                    .count(),
            )
            .unwrap_or(u32::MAX);
            let mut todo = all
                .iter()
                .filter(|p| !before.contains(p) && !latest.contains_key(p))
                .peekable();
            let sleep = chrono::Duration::milliseconds(backfill.sleep_ms);
            while in_flight < backfill.parallel.max(1)
                && backfill.last_start_at.is_none_or(|t| now >= t + sleep)
                && let Some(period) = todo.next()
            {
                let request = RunRequest {
                    params: backfill.params.clone(),
                    period: Some(*period),
                    ..RunRequest::default()
                };
                match Plan::new(pipeline, &request) {
                    Ok(plan) => {
                        writes.push(Write::InsertRun(plan.queued(Trigger::Backfill, now)));
                        in_flight += 1;
                        backfill.last_start_at = Some(now);
                    }
                    Err(e) => {
                        stop(backfill, e.to_string());
                        break;
                    }
                }
            }
            backfill.in_flight = in_flight;
            if backfill.state == "running" && todo.peek().is_none() && in_flight == 0 {
                backfill.state = "done".to_owned();
                backfill.finished_at = Some(now);
            }
        }
    }
    writes.push(Write::PutBackfill(Box::new(backfill.clone())));
    writes
}
