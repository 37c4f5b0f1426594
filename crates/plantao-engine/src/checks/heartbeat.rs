//! A heartbeat's state at an instant: a pure function of its definition, what the store keeps of
//! its pings ([`CheckRecord`]), whether it is paused, and the time. Nothing here reads a clock.
//!
//! As in healthchecks.io: a heartbeat that was never pinged is `new` and never goes down; after
//! a success it is `up` until the next success is due (the period after it, or the schedule's
//! next time), `late` from then until the grace has passed too, `down` after that; a failure
//! makes it `down` at once. The next success makes it `up` again.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use plantao_config::{CheckEvent, Expected, Heartbeat};
use plantao_store::{CheckRecord, Timestamp};
use serde::Serialize;

use crate::clock::shown;
use crate::scheduler::timing::Timing;

/// Where a heartbeat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Never pinged (or only started).
    New,
    Up,
    /// Past its expected time, within the grace.
    Late,
    /// Past the grace, or its last report was a failure.
    Down,
    Paused,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Up => "up",
            State::Late => "late",
            State::Down => "down",
            State::Paused => "paused",
        }
    }
}

/// A heartbeat's state at an instant, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    /// When the next success is (or was) expected.
    pub due: Option<Timestamp>,
    /// Since when it is down: its failure, or the end of the grace after it was due.
    pub down_since: Option<Timestamp>,
    /// What a heartbeat rule may fire on, each with a sentence saying why.
    pub events: BTreeMap<String, String>,
}

impl Status {
    pub fn has(&self, event: CheckEvent) -> bool {
        self.events.contains_key(event.as_str())
    }
}

/// `h`'s status at `now`, from what its pings left in the store (`None`: never pinged).
pub fn status(h: &Heartbeat, record: Option<&CheckRecord>, paused: bool, now: Timestamp) -> Status {
    let mut out = Status {
        state: State::New,
        due: None,
        down_since: None,
        events: BTreeMap::new(),
    };
    if paused {
        out.state = State::Paused;
        return out;
    }
    let Some(r) = record else {
        return out;
    };
    let last_end = later(r.last_success_at, r.last_failure_at);
    if let Some(success) = r.last_success_at {
        let due = expected_after(h, success);
        out.due = due;
        out.state = match due {
            Some(due) if now > due + delta(h.grace) => State::Down,
            Some(due) if now > due => State::Late,
            _ => State::Up,
        };
        if let Some(due) = due {
            match out.state {
                State::Down => {
                    out.down_since = Some(due + delta(h.grace));
                    say(
                        &mut out,
                        CheckEvent::Down,
                        format!(
                            "no success since {} (expected by {}, grace {})",
                            shown(success),
                            shown(due),
                            words(h.grace)
                        ),
                    );
                }
                State::Late => say(
                    &mut out,
                    CheckEvent::Late,
                    format!(
                        "no success since {} (expected by {})",
                        shown(success),
                        shown(due)
                    ),
                ),
                _ => {}
            }
            if let Some(deadline) = h.start_deadline {
                let started = r.last_start_at.is_some_and(|s| s > success);
                if !started && now > due + delta(deadline) {
                    say(
                        &mut out,
                        CheckEvent::StartMissing,
                        format!(
                            "no start within {} of {}, when it was expected",
                            words(deadline),
                            shown(due)
                        ),
                    );
                }
            }
        }
        if let (Some(min), Some(previous)) = (h.min_interval, r.previous_success_at)
            && success - previous < delta(min)
        {
            say(
                &mut out,
                CheckEvent::TooOften,
                format!(
                    "two successes {} apart ({} and {}), under min_interval {}",
                    words_ms((success - previous).num_milliseconds()),
                    shown(previous),
                    shown(success),
                    words(min)
                ),
            );
        }
    }
    if let Some(failure) = r.last_failure_at
        && r.last_success_at.is_none_or(|s| failure > s)
    {
        out.events.remove(CheckEvent::Late.as_str());
        out.state = State::Down;
        out.down_since = Some(failure);
        say(
            &mut out,
            CheckEvent::Down,
            format!("it reported a failure at {}", shown(failure)),
        );
    }
    if let (Some(ms), Some(_)) = (r.last_duration_ms, last_end) {
        if let Some(max) = h.max_duration
            && ms > millis(max)
        {
            say(
                &mut out,
                CheckEvent::TooLong,
                format!(
                    "its last run took {}, over max_duration {}",
                    words_ms(ms),
                    words(max)
                ),
            );
        }
        if let Some(min) = h.min_duration
            && ms < millis(min)
        {
            say(
                &mut out,
                CheckEvent::TooShort,
                format!(
                    "its last run took {}, under min_duration {}",
                    words_ms(ms),
                    words(min)
                ),
            );
        }
    }
    // A start that has not ended, open longer than max_duration.
    if let (Some(start), Some(max)) = (r.last_start_at, h.max_duration)
        && last_end.is_none_or(|e| start > e)
        && now - start > delta(max)
    {
        say(
            &mut out,
            CheckEvent::TooLong,
            format!(
                "started at {} and still running after max_duration {}",
                shown(start),
                words(max)
            ),
        );
    }
    out
}

/// When the success after `success` is expected.
pub fn expected_after(h: &Heartbeat, success: Timestamp) -> Option<Timestamp> {
    match &h.expect {
        Expected::Period(p) => Some(success + delta(*p)),
        Expected::Schedule(s) => Timing::cron(s, h.timezone).next_after(success),
    }
}

fn say(out: &mut Status, event: CheckEvent, why: String) {
    out.events.entry(event.as_str().to_owned()).or_insert(why);
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn delta(d: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn words(d: std::time::Duration) -> String {
    words_ms(millis(d))
}

/// `1h 5m`, `30s`, `250ms`.
fn words_ms(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    parts.join(" ")
}
