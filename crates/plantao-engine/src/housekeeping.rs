//! Periodic work one node does for all: today, pruning raw runs older than the retention. The
//! node holding the [`TASK`] in the store does it (see `Store::own`); every node asks every
//! [`RENEW_EVERY`], so when the owner dies another takes over once its hold lapses
//! ([`LEASE_FOR`]).
//!
//! Pruning deletes [`BATCH`] runs per transaction and lets other writers in between, so a
//! backlog of millions of runs never holds the database while ticks are due.

use std::sync::Arc;
use std::time::Duration;

use plantao_config::Config;
use plantao_store::{Store, StoreError, Timestamp};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::lease::{LEASE_FOR, RENEW_EVERY};
use crate::writable::Writable;

pub const TASK: &str = "housekeeping";
/// How often the owner prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Runs deleted per transaction.
pub const BATCH: u32 = 200;

#[derive(Debug)]
pub struct Housekeeper {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: watch::Receiver<Arc<Config>>,
    pub node: String,
    /// A refusal to write is the daemon's to report, once.
    pub writable: Arc<Writable>,
}

impl Housekeeper {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut last_prune: Option<tokio::time::Instant> = None;
        loop {
            match self.hold().await {
                Ok(true) if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) => {
                    last_prune = Some(tokio::time::Instant::now());
                    let retention = self.config.borrow().storage.retention;
                    match self.prune(retention, &stop).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(runs = n, ?retention, "pruned runs past the retention")
                        }
                        Err(e) if self.writable.failed(&e) => {}
                        Err(e) => tracing::error!(error = %e, "cannot prune old runs"),
                    }
                }
                Ok(true) => {}
                Ok(false) => last_prune = None,
                Err(e) if self.writable.failed(&e) => {}
                Err(e) => tracing::error!(error = %e, "cannot take the housekeeping task"),
            }
            tokio::select! {
                () = tokio::time::sleep(RENEW_EVERY) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    /// Takes or keeps the task; true when this node holds it.
    async fn hold(&self) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(LEASE_FOR).unwrap_or_default();
        self.store.own(TASK, &self.node, now, until).await
    }

    /// Deletes the runs queued before now − `retention`, batch after batch, while this node
    /// still holds the task; says how many.
    async fn prune(
        &self,
        retention: Duration,
        stop: &watch::Receiver<bool>,
    ) -> Result<u64, StoreError> {
        let cutoff: Timestamp =
            self.clock.now() - chrono::Duration::from_std(retention).unwrap_or_default();
        let mut total = 0;
        let mut held_at = tokio::time::Instant::now();
        loop {
            let n = self.store.prune(cutoff, BATCH).await?;
            total += n;
            if n < u64::from(BATCH) || *stop.borrow() {
                return Ok(total);
            }
            if held_at.elapsed() >= RENEW_EVERY {
                held_at = tokio::time::Instant::now();
                if !self.hold().await? {
                    return Ok(total);
                }
            }
            tokio::task::yield_now().await;
        }
    }
}
