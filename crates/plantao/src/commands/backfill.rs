//! `plantao backfill`: one run per period of a span of dates, here and now, resuming from the
//! checkpoints of an earlier try.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use plantao_engine::backfill::{self, BackfillObserver, BackfillRequest, PeriodEnd};
use plantao_engine::{Lease, Runner};
use plantao_model::RunStatus;
use plantao_store::Period;

use crate::cli::BackfillArgs;
use crate::commands::{find_pipeline, load_config, open_store};
use crate::failure::Failure;
use crate::format;

pub async fn run(config_path: &Path, args: BackfillArgs) -> Result<(), Failure> {
    let config = Arc::new(load_config(config_path)?);
    let pipeline = find_pipeline(&config, &args.pipeline)?;
    let request = BackfillRequest {
        from: args.from,
        to: args.to,
        every: args.every,
        parallel: usize::from(args.parallel),
        sleep: args.sleep,
        ignore_checkpoint: args.ignore_checkpoint,
        params: args.params.iter().cloned().collect(),
    };
    let store = open_store(&config).await?;
    if args.dry_run {
        let planned = backfill::plan(store.as_ref(), pipeline, &request)
            .await
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let done = planned.iter().filter(|(_, marked)| *marked).count();
        println!(
            "backfill of {} (dry run: nothing runs): {} periods, {} with a checkpoint (skipped{})",
            pipeline.name,
            planned.len(),
            done,
            if args.ignore_checkpoint {
                ""
            } else {
                "; --ignore-checkpoint runs them too"
            }
        );
        for (period, marked) in planned {
            println!(
                "  {period}  {}",
                if marked { "skip: checkpoint" } else { "run" }
            );
        }
        return Ok(());
    }
    let lease = Lease::acquire(store.clone(), "backfill").await?;
    let runner = Runner::new(config.clone(), store.clone(), Some(lease.id().to_owned()));
    // Ctrl-C also starts nothing more; the periods it cancels keep no checkpoint.
    let stop = crate::commands::stop_on_ctrl_c();
    let progress = Progress::new(std::io::stdout().is_terminal());
    let summary = backfill::run(&runner, pipeline, &request, stop, &progress).await;
    progress.clear();
    lease.release().await?;
    let summary = summary.map_err(|e| match e {
        backfill::BackfillError::Run(e) => Failure::Run(e),
        other => Failure::Usage(other.to_string()),
    })?;
    println!(
        "backfill of {}: {} periods — {} succeeded, {} failed, {} skipped (checkpoint){} in {}",
        pipeline.name,
        summary.total,
        summary.succeeded,
        summary.failed.len(),
        summary.skipped,
        if summary.not_started > 0 {
            format!(", {} not started", summary.not_started)
        } else {
            String::new()
        },
        format::duration_ms(i64::try_from(summary.elapsed.as_millis()).unwrap_or(i64::MAX)),
    );
    for (period, run, status) in &summary.failed {
        println!("  {period} {status}: `plantao show {run}`");
    }
    if !summary.failed.is_empty() || summary.not_started > 0 {
        println!(
            "run the same command again to retry what did not succeed: finished periods are skipped"
        );
        return Err(Failure::Ended(RunStatus::Failed));
    }
    Ok(())
}

/// A progress bar with an ETA on a terminal; a line per period otherwise.
struct Progress {
    terminal: bool,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    done: usize,
    failed: usize,
    /// Periods that ran (for the ETA: checkpointed ones took no time).
    ran: usize,
    started: Option<Instant>,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Progress {
            terminal,
            state: Mutex::new(Counts::default()),
        }
    }

    fn draw(&self, c: &Counts) {
        if !self.terminal {
            return;
        }
        const WIDTH: usize = 30;
        let filled = (c.done * WIDTH).checked_div(c.total).unwrap_or(WIDTH);
        let eta = match (c.started, c.ran) {
            (Some(t), ran) if ran > 0 && c.done < c.total => {
                let per = t.elapsed() / u32::try_from(ran).unwrap_or(u32::MAX);
                let left = per * u32::try_from(c.total - c.done).unwrap_or(u32::MAX);
                format!(
                    ", ETA {}",
                    format::duration_ms(i64::try_from(left.as_millis()).unwrap_or(i64::MAX))
                )
            }
            _ => String::new(),
        };
        print!(
            "\r\x1b[2K[{}{}] {}/{} periods, {} failed{eta}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            c.done,
            c.total,
            c.failed
        );
        let _ = std::io::stdout().flush();
    }

    fn clear(&self) {
        if self.terminal {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }
}

impl BackfillObserver for Progress {
    fn planned(&self, total: usize, _checkpointed: usize) {
        let mut c = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.total = total;
        c.started = Some(Instant::now());
        self.draw(&c);
    }

    fn ended(&self, period: &Period, end: &PeriodEnd) {
        let mut c = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.done += 1;
        if let PeriodEnd::Ran {
            run,
            status,
            duration_ms,
            error,
        } = end
        {
            c.ran += 1;
            if *status != RunStatus::Succeeded {
                c.failed += 1;
            }
            if self.terminal {
                if *status != RunStatus::Succeeded {
                    print!("\r\x1b[2K");
                    println!("{period} {status} (run {run})");
                }
            } else {
                let why = error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                println!(
                    "{}/{} {period} {status} in {} (run {run}){why}",
                    c.done,
                    c.total,
                    format::duration_ms(*duration_ms)
                );
            }
        } else if !self.terminal {
            println!("{}/{} {period} skipped: checkpoint", c.done, c.total);
        }
        self.draw(&c);
    }
}
