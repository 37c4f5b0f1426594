//! When a pipeline's ticks fall: its cron schedules and its interval, in its time zone, moved by
//! its fixed jitter, kept inside its daily window.
//!
//! - Cron follows the usual rules across daylight-saving changes: a time that does not exist
//!   (in the spring-forward gap) runs once, right after the gap; a time that happens twice (in
//!   the repeated autumn hour) runs once, the first time. Schedules whose hour field is `*`
//!   (every hour or more often) follow real time instead, through both copies of the hour.
//! - `every` ticks are aligned to multiples of the interval since 1970-01-01 00:00 UTC, so
//!   `every = "5m"` fires at :00, :05, :10… and a restart never moves them.
//! - `jitter` adds a fixed offset in [0, jitter), derived from the pipeline's name: the same on
//!   every node and after every restart.

use chrono::{DateTime, LocalResult, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use plantao_config::Pipeline;

/// How far ahead the next tick is searched for (a window or a schedule that never matches).
const SEARCH_LIMIT: usize = 100_000;

#[derive(Clone, Debug)]
struct CronTicks {
    cron: Cron,
    /// The hour field is a wildcard: follow real time through daylight-saving changes.
    hourly: bool,
}

#[derive(Clone, Debug)]
pub struct Timing {
    crons: Vec<CronTicks>,
    every: Option<TimeDelta>,
    zone: Tz,
    offset: TimeDelta,
    window: Option<(NaiveTime, NaiveTime)>,
}

impl Timing {
    pub fn of(p: &Pipeline) -> Timing {
        let offset = p
            .jitter
            .map_or(TimeDelta::zero(), |j| fixed_offset(&p.name, j));
        Timing {
            crons: p
                .schedules
                .iter()
                .map(|s| CronTicks {
                    cron: s.cron.clone(),
                    hourly: hour_is_wildcard(&s.text),
                })
                .collect(),
            every: p
                .every
                .and_then(|e| TimeDelta::from_std(e).ok())
                .filter(|e| *e > TimeDelta::zero()),
            zone: p.timezone,
            offset,
            window: p.between,
        }
    }

    /// Ticks every `every` (multiples of it since 1970) moved by a fixed offset within it,
    /// derived from `name`: when a probe is checked. The same on every node and after every
    /// restart, and probes of one interval spread over it.
    pub fn interval(name: &str, every: std::time::Duration) -> Timing {
        Timing {
            crons: Vec::new(),
            every: TimeDelta::from_std(every)
                .ok()
                .filter(|e| *e > TimeDelta::zero()),
            zone: Tz::UTC,
            offset: fixed_offset(name, every),
            window: None,
        }
    }

    /// The ticks of one cron schedule in `zone`: when a heartbeat on it is expected.
    pub fn cron(schedule: &plantao_config::CronSchedule, zone: Tz) -> Timing {
        Timing {
            crons: vec![CronTicks {
                cron: schedule.cron.clone(),
                hourly: hour_is_wildcard(&schedule.text),
            }],
            every: None,
            zone,
            offset: TimeDelta::zero(),
            window: None,
        }
    }

    /// Whether the pipeline has any schedule at all.
    pub fn is_scheduled(&self) -> bool {
        !self.crons.is_empty() || self.every.is_some()
    }

    /// The first tick strictly after `t`.
    /// The next `count` ticks after `from` that will run, leaving out those in `maintenance`
    /// windows; also how many were left out. Stops looking after 10,000 left out.
    pub fn upcoming(
        &self,
        pipeline: &str,
        maintenance: &[plantao_config::Maintenance],
        from: DateTime<Utc>,
        count: usize,
    ) -> (Vec<DateTime<Utc>>, usize) {
        let mut at = from;
        let mut ticks = Vec::with_capacity(count);
        let mut passed_over = 0;
        while ticks.len() < count {
            let Some(next) = self.next_after(at) else {
                break;
            };
            at = next;
            if maintenance.iter().any(|m| m.covers(pipeline, next)) {
                passed_over += 1;
                if passed_over > 10_000 {
                    break;
                }
            } else {
                ticks.push(next);
            }
        }
        (ticks, passed_over)
    }

    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = t - self.offset;
        for _ in 0..SEARCH_LIMIT {
            let base = self.base_after(from)?;
            if self.in_window(base + self.offset) {
                return Some(base + self.offset);
            }
            from = base;
        }
        None
    }

    /// The ticks in (`from`, `to`], oldest first, at most `limit` of them.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        while out.len() < limit {
            match self.next_after(at) {
                Some(next) if next <= to => {
                    out.push(next);
                    at = next;
                }
                _ => break,
            }
        }
        out
    }

    fn base_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from_crons = self
            .crons
            .iter()
            .filter_map(|c| self.cron_after(c, t))
            .min();
        let from_every = self.every.map(|e| {
            let step = e.num_milliseconds().max(1);
            let now = t.timestamp_millis();
            let next = (now.div_euclid(step) + 1) * step;
            DateTime::from_timestamp_millis(next).unwrap_or(t)
        });
        match (from_crons, from_every) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn cron_after(&self, c: &CronTicks, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if c.hourly {
            let local = t.with_timezone(&self.zone);
            return c
                .cron
                .find_next_occurrence(&local, false)
                .ok()
                .map(|d| d.with_timezone(&Utc));
        }
        // Walk the wall-clock times that match (read as UTC, which has no gaps nor repeats),
        // then place each in the zone.
        let mut wall = Utc.from_utc_datetime(&t.with_timezone(&self.zone).naive_local());
        for _ in 0..SEARCH_LIMIT {
            wall = c.cron.find_next_occurrence(&wall, false).ok()?;
            let at = match self.zone.from_local_datetime(&wall.naive_utc()) {
                LocalResult::Single(x) => x.with_timezone(&Utc),
                LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
                LocalResult::None => self.gap_end(wall.naive_utc()),
            };
            if at > t {
                return Some(at);
            }
        }
        None
    }

    /// The instant a spring-forward gap that swallows the wall time `wall` ends.
    fn gap_end(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        // Gaps are at most a few hours: find the first second after which the wall clock
        // reads later than `wall`.
        let offset = |u: DateTime<Utc>| u.with_timezone(&self.zone).naive_local();
        let mut low = Utc.from_utc_datetime(&wall) - TimeDelta::hours(26);
        let mut high = Utc.from_utc_datetime(&wall) + TimeDelta::hours(26);
        while high - low > TimeDelta::seconds(1) {
            let mid = low + (high - low) / 2;
            if offset(mid) >= wall {
                high = mid
            } else {
                low = mid
            }
        }
        high
    }

    fn in_window(&self, t: DateTime<Utc>) -> bool {
        let Some((start, end)) = self.window else {
            return true;
        };
        let time = t.with_timezone(&self.zone).time();
        if start < end {
            time >= start && time < end
        } else {
            time >= start || time < end
        }
    }
}

/// Whether a cron's hour field is `*` or `*/n` (aliases: only `@hourly`).
fn hour_is_wildcard(text: &str) -> bool {
    if text.starts_with('@') {
        return text.eq_ignore_ascii_case("@hourly");
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hour = if fields.len() == 6 {
        fields.get(2)
    } else {
        fields.get(1)
    };
    hour.is_some_and(|h| h.starts_with('*'))
}

/// A stable hash (the same in every process and version), for the jitter offset.
/// An offset in [0, `span`) derived from `name`.
fn fixed_offset(name: &str, span: std::time::Duration) -> TimeDelta {
    let ms = u128::from(fnv1a(name.as_bytes())) % span.as_millis().max(1);
    TimeDelta::milliseconds(i64::try_from(ms).unwrap_or(0))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
