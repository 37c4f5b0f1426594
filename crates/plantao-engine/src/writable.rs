//! Whether the store accepts writes, as this process last saw it. The lease's renewal (a real
//! write every 2 s), the scheduler's ticks and the executor's claims report what they got; the
//! executor stops claiming while writes are refused, and the health endpoint reports it.
//!
//! Only a write that changed something counts as proof that writes work again: on SQLite an
//! empty transaction commits even on a full disk.

use std::sync::Mutex;

use chrono::Utc;
use plantao_store::{StoreError, Timestamp};

/// Why and since when the store refuses writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub since: Timestamp,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Writable {
    refusal: Mutex<Option<Refusal>>,
}

impl Writable {
    /// Takes note of a write's outcome: a refusal (`StoreError::CannotWrite`) or a success.
    /// Other errors say nothing about writes. Says whether the store refused.
    pub fn saw<T>(&self, result: &Result<T, StoreError>) -> bool {
        match result {
            Ok(_) => {
                self.wrote();
                false
            }
            Err(e) => self.failed(e),
        }
    }

    /// Takes note of a failed write; says whether it was a refusal to write.
    pub fn failed(&self, error: &StoreError) -> bool {
        match error {
            StoreError::CannotWrite(reason) => {
                self.refused(reason);
                true
            }
            _ => false,
        }
    }

    /// A write went through.
    pub fn wrote(&self) {
        let mut refusal = self.lock();
        if let Some(r) = refusal.take() {
            let down = Utc::now() - r.since;
            tracing::warn!(
                after_s = down.num_seconds(),
                "the database writes again: claiming runs and recording ticks again (ticks it could not record are recorded now, as their catch-up policy says)"
            );
        }
    }

    fn refused(&self, reason: &str) {
        let mut refusal = self.lock();
        if refusal.is_none() {
            tracing::error!(
                %reason,
                "the database cannot write (a full disk?): no new runs are claimed, runs in flight wait to record, ticks are recorded once it can write again"
            );
            *refusal = Some(Refusal {
                since: Utc::now(),
                reason: reason.to_owned(),
            });
        }
    }

    /// `None` while writes work.
    pub fn refusal(&self) -> Option<Refusal> {
        self.lock().clone()
    }

    pub fn is_refusing(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Refusal>> {
        self.refusal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
