use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use plantao_config::Backoff;

/// The wait before attempt `next` (from 2): `initial × factor^(next-2)`, capped at `max`, then
/// a random point in its upper half, so retries of many runs do not move in lockstep.
pub(crate) fn delay(b: &Backoff, next: u32) -> Duration {
    let exponent = i32::try_from(next.saturating_sub(2)).unwrap_or(i32::MAX);
    let full = b.initial.as_secs_f64() * b.factor.powi(exponent);
    let capped = full.min(b.max.as_secs_f64());
    let jitter = (RandomState::new().hash_one(next) % 1000) as f64 / 1000.0;
    Duration::from_secs_f64(capped * (0.5 + 0.5 * jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter_in_the_upper_half() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(5),
        };
        for (next, full) in [(2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (9, 5.0)] {
            for _ in 0..50 {
                let d = delay(&b, next).as_secs_f64();
                assert!(d >= full / 2.0 && d <= full, "attempt {next}: {d}");
            }
        }
    }
}
