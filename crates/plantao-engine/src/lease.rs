//! The lease every process that executes runs holds in the store: registered at start, renewed
//! every [`RENEW_EVERY`], valid for [`LEASE_FOR`]. A run left `running` by a node whose lease
//! expired belongs to a dead process; a live `plantao run` keeps its lease fresh.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use plantao_store::{Node, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::writable::Writable;

pub const RENEW_EVERY: Duration = Duration::from_secs(2);
pub const LEASE_FOR: Duration = Duration::from_secs(6);

#[derive(Debug)]
pub struct Lease {
    id: String,
    store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    renewing: JoinHandle<()>,
    writable: Arc<Writable>,
}

impl Lease {
    /// Registers this process as a node of `kind` (`serve` or `run`) and starts renewing.
    pub async fn acquire(store: Arc<dyn Store>, kind: &str) -> Result<Lease, StoreError> {
        let now = Utc::now();
        let node = Node {
            id: format!("{kind}-{}", uuid::Uuid::now_v7().simple()),
            kind: kind.to_owned(),
            host: hostname(),
            pid: std::process::id(),
            started_at: now,
            renewed_at: now,
            expires_at: now + LEASE_FOR,
        };
        store.register_node(&node).await?;
        let (stop, mut stopped) = watch::channel(false);
        let writable = Arc::new(Writable::default());
        let renewing = tokio::spawn({
            let store = store.clone();
            let node = node.clone();
            let writable = writable.clone();
            async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(RENEW_EVERY) => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                    let now = Utc::now();
                    // Taken for dead while this process lives (a long pause): say so again. Any
                    // other error is a database that is down now and may be back next time.
                    let renewed = store.renew_node(&node.id, now, now + LEASE_FOR).await;
                    writable.saw(&renewed);
                    if let Err(StoreError::NotFound(_)) = renewed {
                        let again = Node {
                            renewed_at: now,
                            expires_at: now + LEASE_FOR,
                            ..node.clone()
                        };
                        let _ = store.register_node(&again).await;
                    }
                }
            }
        });
        Ok(Lease {
            id: node.id,
            store,
            stop,
            renewing,
            writable,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the store accepts writes, as this process last saw it (renewing the lease is a
    /// write every [`RENEW_EVERY`]).
    pub fn writable(&self) -> &Arc<Writable> {
        &self.writable
    }

    /// Stops renewing and removes the node.
    pub async fn release(self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        let _ = self.renewing.await;
        self.store.remove_node(&self.id).await
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
