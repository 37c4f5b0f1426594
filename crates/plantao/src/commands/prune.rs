//! `plantao prune`: deletes finished runs (with their stages, logs, counters and outputs),
//! resolved alerts and delivered notifications older than a cutoff, in short batches, as the
//! daemon does by `retention`. Rollups stay: history answers are unchanged.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use plantao_engine::housekeeping::BATCH;

use crate::commands::{load_config, open_store};
use crate::failure::Failure;

pub async fn run(
    config_path: &Path,
    older_than: Option<Duration>,
    dry_run: bool,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let age = older_than.unwrap_or(config.storage.retention);
    let cutoff = Utc::now()
        - chrono::Duration::from_std(age)
            .map_err(|_| Failure::Usage("--older-than is too long".to_owned()))?;
    let store = open_store(&config).await?;
    let counted = store.prunable(cutoff).await?;
    let when = cutoff.format("%Y-%m-%d %H:%M UTC");
    if dry_run {
        println!(
            "would delete, from before {when}: {} runs (with their stages, logs, counters and outputs), {} resolved alerts, {} finished notifications; rollups stay (dry run: nothing deleted)",
            counted.runs, counted.alerts, counted.notifications
        );
        return Ok(());
    }
    let mut rows = 0;
    loop {
        let n = store.prune(cutoff, BATCH).await?;
        rows += n;
        if n < u64::from(BATCH) {
            break;
        }
    }
    let left = store.prunable(cutoff).await?;
    println!(
        "deleted, from before {when}: {} runs, {} resolved alerts, {} finished notifications ({rows} rows); rollups stay",
        counted.runs.saturating_sub(left.runs),
        counted.alerts.saturating_sub(left.alerts),
        counted.notifications.saturating_sub(left.notifications),
    );
    Ok(())
}
