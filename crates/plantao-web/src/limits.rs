//! Rate limits on writes: a token bucket per token and per client address, so that one
//! runaway script cannot flood the queue. Reads are not limited.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Limiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets untouched this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(600);

impl Limiter {
    pub fn new(per_minute: u32) -> Self {
        Limiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Takes one write from each key's bucket at `now`; when one is empty, nothing is taken and
    /// the answer is how many seconds until it holds a write again.
    pub fn take(&self, keys: &[String], now: Instant) -> Result<(), u64> {
        self.take_at(keys, now, self.per_minute)
    }

    /// As [`Limiter::take`], with buckets that fill at `per_minute` (in bursts of a tenth of
    /// it, at least 5): for limits that differ by key, such as each heartbeat's own.
    pub fn take_at(&self, keys: &[String], now: Instant, per_minute: u32) -> Result<(), u64> {
        let per_minute = per_minute.max(1);
        let rate = f64::from(per_minute) / 60.0;
        let burst = f64::from((per_minute / 10).max(5));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < IDLE);
        }
        let mut wait: f64 = 0.0;
        for key in keys {
            let b = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: burst,
                at: now,
            });
            b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
            b.at = now;
            if b.tokens < 1.0 {
                wait = wait.max((1.0 - b.tokens) / rate);
            }
        }
        if wait > 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Err(wait.ceil() as u64);
        }
        for key in keys {
            if let Some(b) = buckets.get_mut(key) {
                b.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_writes_wait_for_the_refill() {
        let limiter = Limiter::new(60);
        let t0 = Instant::now();
        let key = vec!["token:ci".to_owned()];
        for _ in 0..6 {
            assert_eq!(limiter.take(&key, t0), Ok(()));
        }
        assert_eq!(limiter.take(&key, t0), Err(1));
        assert_eq!(limiter.take(&key, t0 + Duration::from_millis(1500)), Ok(()));
        // Another key has its own bucket.
        assert_eq!(limiter.take(&["addr:10.0.0.1".to_owned()], t0), Ok(()));
    }

    #[test]
    fn every_key_must_have_room() {
        let limiter = Limiter::new(60);
        let t0 = Instant::now();
        let both = vec!["token:a".to_owned(), "addr:1".to_owned()];
        for _ in 0..6 {
            assert_eq!(limiter.take(&both, t0), Ok(()));
        }
        assert!(limiter.take(&["addr:1".to_owned()], t0).is_err());
        assert!(limiter.take(&["token:b".to_owned()], t0).is_ok());
    }
}
