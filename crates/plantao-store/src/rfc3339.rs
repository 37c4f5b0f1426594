//! Instants as RFC 3339 text, exactly as chrono's `Serialize` writes them
//! (`2026-12-04T10:00:00.123456Z`: the fraction in 0, 3, 6 or 9 digits, `Z` for UTC), put
//! together in a buffer on the stack. chrono writes through `fmt::Display` a character at a
//! time: serialising a page of 50 runs spent more of its time there than anywhere else.

use chrono::{Datelike, Timelike};
use serde::{Serialize, Serializer};

use crate::records::Timestamp;

/// `#[serde(serialize_with = "rfc3339::serialize")]` on a `Timestamp` field.
pub fn serialize<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match write(at, &mut buf) {
        // Only ASCII digits and separators are written.
        Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or_default()),
        // A year outside 0–9999 or a leap second: chrono's own way.
        None => at.serialize(s),
    }
}

/// `#[serde(serialize_with = "rfc3339::option")]` on an `Option<Timestamp>` field.
pub fn option<S: Serializer>(at: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, s),
        None => s.serialize_none(),
    }
}

/// Writes `at` into `buf` and says how many bytes it took, or `None` for what only chrono's
/// general path writes (a year outside 0–9999, a leap second).
fn write(at: &Timestamp, buf: &mut [u8; 30]) -> Option<usize> {
    // Each field of a `DateTime<Utc>` adds its offset anew; its `NaiveDateTime` is the same
    // instant without one.
    let at = at.naive_utc();
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let nano = at.nanosecond();
    if nano >= 1_000_000_000 {
        return None;
    }
    let mut n = 0;
    digits(buf, &mut n, year, 4);
    let fields = [
        (b'-', at.month()),
        (b'-', at.day()),
        (b'T', at.hour()),
        (b':', at.minute()),
        (b':', at.second()),
    ];
    for (separator, value) in fields {
        buf[n] = separator;
        n += 1;
        digits(buf, &mut n, value, 2);
    }
    let fraction = if nano == 0 {
        None
    } else if nano.is_multiple_of(1_000_000) {
        Some((nano / 1_000_000, 3))
    } else if nano.is_multiple_of(1_000) {
        Some((nano / 1_000, 6))
    } else {
        Some((nano, 9))
    };
    if let Some((value, width)) = fraction {
        buf[n] = b'.';
        n += 1;
        digits(buf, &mut n, value, width);
    }
    buf[n] = b'Z';
    Some(n + 1)
}

/// Writes `value`'s last `width` decimal digits at `buf[*n..]`, zero-padded.
fn digits(buf: &mut [u8; 30], n: &mut usize, value: u32, width: u32) {
    for i in (0..width).rev() {
        buf[*n] = b'0' + u8::try_from(value / 10u32.pow(i) % 10).unwrap_or(0);
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;

    #[derive(Serialize)]
    struct Ours {
        #[serde(serialize_with = "serialize")]
        at: Timestamp,
        #[serde(serialize_with = "option")]
        maybe: Option<Timestamp>,
    }

    #[derive(Serialize)]
    struct Chronos {
        at: Timestamp,
        maybe: Option<Timestamp>,
    }

    fn same(at: Timestamp) {
        for maybe in [Some(at), None] {
            let ours = serde_json::to_string(&Ours { at, maybe }).unwrap();
            let chronos = serde_json::to_string(&Chronos { at, maybe }).unwrap();
            assert_eq!(ours, chronos, "{at:?}");
        }
    }

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc.with_ymd_and_hms(2026, 12, 4, 9, 5, 7).unwrap();
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000,
            1_000_000,
            7_000_000,
            999_000_000,
            123_456_000,
            123_456_789,
        ] {
            same(base + chrono::Duration::nanoseconds(nanos));
        }
        // A spread of instants over the years: each field's every width is met.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros =
                i64::try_from(x % 300_000_000_000_000_000).unwrap() - 62_000_000_000_000_000;
            same(chrono::DateTime::from_timestamp_micros(micros).unwrap());
        }
    }

    #[test]
    fn leaves_the_rare_cases_to_chrono() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let far = Utc.with_ymd_and_hms(12_345, 1, 2, 3, 4, 5).unwrap();
        let early = Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).unwrap();
        let first = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
        let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        for at in [leap, far, early, first, last] {
            same(at);
        }
    }
}
