//! Backfills: one run per day, week or month of a span of dates (trigger `backfill`), with the
//! period in the steps' environment, and a checkpoint per finished period so that a backfill
//! that stops halfway resumes where it was.
//!
//! Data flow: [`periods`] cuts the span; [`Backfill::run`] reads the pipeline's checkpoints
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
    runner: &Runner,
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
        runner
            .store()
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
    let planned = plan(runner, pipeline, request).await?;
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
