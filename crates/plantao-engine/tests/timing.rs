//! When ticks fall: cron forms, intervals, windows, jitter, and daylight-saving changes at
//! historical transitions. Pure computation on a given instant: nothing sleeps.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeZone, Utc};
use plantao_config::Config;
use plantao_engine::scheduler::Timing;

fn config(pipeline: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("plantao.toml"), "").unwrap();
    std::fs::write(
        dir.path().join("pipelines/p.toml"),
        format!("{pipeline}\n[[steps]]\nname = \"a\"\nrun = \"true\"\n"),
    )
    .unwrap();
    plantao_config::load(&dir.path().join("plantao.toml"), &|_| None)
        .unwrap_or_else(|d| panic!("{d}"))
}

fn timing(pipeline: &str) -> Timing {
    Timing::of(&config(pipeline).pipelines[0])
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn next_n(t: &Timing, from: DateTime<Utc>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = from;
    for _ in 0..n {
        at = t.next_after(at).unwrap();
        out.push(at.format("%Y-%m-%d %H:%M:%S").to_string());
    }
    out
}

#[test]
fn a_daily_schedule_in_sao_paulo_time() {
    let t = timing("schedule = [\"0 12,18,20 * * *\"]\ntimezone = \"America/Sao_Paulo\"");
    // 2026: no daylight saving in Brazil, UTC-3.
    assert_eq!(
        next_n(&t, utc(2026, 11, 22, 14, 0, 0), 4),
        [
            "2026-11-22 15:00:00",
            "2026-11-22 21:00:00",
            "2026-11-22 23:00:00",
            "2026-11-23 15:00:00"
        ]
    );
}

#[test]
fn next_after_is_strictly_after() {
    let t = timing("schedule = \"*/5 * * * *\"");
    assert_eq!(
        t.next_after(utc(2026, 1, 1, 0, 5, 0)),
        Some(utc(2026, 1, 1, 0, 10, 0))
    );
    assert_eq!(
        t.next_after(utc(2026, 1, 1, 0, 4, 59)),
        Some(utc(2026, 1, 1, 0, 5, 0))
    );
}

#[test]
fn six_fields_have_seconds_and_several_schedules_merge() {
    let t = timing("schedule = [\"*/20 * * * * *\", \"0 0 * * *\"]");
    assert_eq!(
        next_n(&t, utc(2026, 1, 1, 23, 59, 30), 3),
        [
            "2026-01-01 23:59:40",
            "2026-01-02 00:00:00",
            "2026-01-02 00:00:20"
        ]
    );
}

#[test]
fn intervals_align_to_the_epoch() {
    let t = timing("every = \"5m\"");
    assert_eq!(
        next_n(&t, utc(2026, 5, 5, 10, 3, 17), 2),
        ["2026-05-05 10:05:00", "2026-05-05 10:10:00"]
    );
    let t = timing("every = \"90s\"");
    // 90 s divides a day, so midnight is a tick.
    assert_eq!(
        next_n(&t, utc(2026, 5, 5, 23, 59, 0), 2),
        ["2026-05-06 00:00:00", "2026-05-06 00:01:30"]
    );
}

#[test]
fn jitter_is_a_fixed_offset_per_pipeline_below_the_bound() {
    let a = config("every = \"1h\"\njitter = \"10m\"");
    let first = Timing::of(&a.pipelines[0])
        .next_after(utc(2026, 3, 3, 10, 0, 0))
        .unwrap();
    // The hourly tick of 10:00, moved by the offset.
    let offset = first - utc(2026, 3, 3, 10, 0, 0);
    assert!(
        offset >= chrono::TimeDelta::zero() && offset < chrono::TimeDelta::minutes(10),
        "{offset}"
    );
    // The same offset every time: after a restart, on another node.
    let again = Timing::of(&config("every = \"1h\"\njitter = \"10m\"").pipelines[0]);
    assert_eq!(again.next_after(utc(2026, 3, 3, 10, 0, 0)), Some(first));
    assert_eq!(
        again.next_after(first),
        Some(first + chrono::TimeDelta::hours(1))
    );
}

#[test]
fn a_window_keeps_ticks_inside_business_hours() {
    let t = timing("every = \"2h\"\nbetween = \"06:30-20:00\"\ntimezone = \"America/Sao_Paulo\"");
    // Ticks every even UTC hour: local 19:00 is inside, 21:00 to 05:00 outside, 07:00 inside.
    assert_eq!(
        next_n(&t, utc(2026, 4, 1, 20, 0, 0), 3),
        [
            "2026-04-01 22:00:00",
            "2026-04-02 10:00:00",
            "2026-04-02 12:00:00"
        ]
    );
    // The boundary pair: 06:30 is inside, 20:00 (the end) outside.
    let edge = timing("every = \"30m\"\nbetween = \"06:30-20:00\"\ntimezone = \"UTC\"");
    assert_eq!(
        next_n(&edge, utc(2026, 4, 1, 19, 0, 0), 2),
        ["2026-04-01 19:30:00", "2026-04-02 06:30:00"]
    );
    let night = timing("every = \"1h\"\nbetween = \"22:00-02:00\"\ntimezone = \"UTC\"");
    assert_eq!(
        next_n(&night, utc(2026, 4, 1, 21, 30, 0), 5),
        [
            "2026-04-01 22:00:00",
            "2026-04-01 23:00:00",
            "2026-04-02 00:00:00",
            "2026-04-02 01:00:00",
            "2026-04-02 22:00:00"
        ]
    );
}

#[test]
fn sao_paulo_spring_forward_2018_runs_a_missing_midnight_once_right_after_the_gap() {
    // 2018-11-04 00:00 did not exist in São Paulo: clocks went from 23:59:59 to 01:00 (-02).
    let t = timing("schedule = \"0 0 * * *\"\ntimezone = \"America/Sao_Paulo\"");
    assert_eq!(
        next_n(&t, utc(2018, 11, 3, 12, 0, 0), 2),
        ["2018-11-04 03:00:00", "2018-11-05 02:00:00"],
        "01:00 -02 (03:00 UTC) on the day of the gap, then midnight -02 again"
    );
    // Its pair: 00:30, also inside the gap, runs once at 01:00 too; 01:30 is untouched.
    let t = timing("schedule = \"30 0,1 * * *\"\ntimezone = \"America/Sao_Paulo\"");
    assert_eq!(
        next_n(&t, utc(2018, 11, 3, 12, 0, 0), 2),
        ["2018-11-04 03:00:00", "2018-11-04 03:30:00"]
    );
}

#[test]
fn sao_paulo_fall_back_2019_runs_the_repeated_hour_once() {
    // 2019-02-17 00:00 (-02) became 2019-02-16 23:00 (-03): 23:00-23:59 happened twice.
    let t = timing("schedule = \"30 23 * * *\"\ntimezone = \"America/Sao_Paulo\"");
    assert_eq!(
        next_n(&t, utc(2019, 2, 16, 12, 0, 0), 2),
        ["2019-02-17 01:30:00", "2019-02-18 02:30:00"],
        "once on the 16th (the first 23:30), then 23:30 -03 on the 17th"
    );
    // Its pair: a schedule every 20 minutes keeps going through both copies of the hour.
    let t = timing("schedule = \"*/20 * * * *\"\ntimezone = \"America/Sao_Paulo\"");
    assert_eq!(
        next_n(&t, utc(2019, 2, 17, 1, 30, 0), 4),
        [
            "2019-02-17 01:40:00",
            "2019-02-17 02:00:00",
            "2019-02-17 02:20:00",
            "2019-02-17 02:40:00"
        ]
    );
}

#[test]
fn lisbon_spring_forward_and_fall_back_2019() {
    let t = timing("schedule = \"30 1 * * *\"\ntimezone = \"Europe/Lisbon\"");
    // 2019-03-31 01:00 WET became 02:00 WEST: 01:30 did not exist, it runs at 02:00 WEST.
    assert_eq!(
        next_n(&t, utc(2019, 3, 30, 12, 0, 0), 2),
        ["2019-03-31 01:00:00", "2019-04-01 00:30:00"]
    );
    // 2019-10-27 02:00 WEST became 01:00 WET: 01:30 happened twice and runs once.
    assert_eq!(
        next_n(&t, utc(2019, 10, 26, 12, 0, 0), 2),
        ["2019-10-27 00:30:00", "2019-10-28 01:30:00"]
    );
}

#[test]
fn ticks_between_two_instants_are_listed_and_capped() {
    let t = timing("every = \"1m\"");
    let list = t.between(utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 10, 0), 100);
    assert_eq!(list.len(), 10);
    assert_eq!(list[9], utc(2026, 1, 1, 0, 10, 0), "the end is included");
    assert_eq!(
        t.between(utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 2, 0, 0, 0), 7)
            .len(),
        7
    );
}

#[test]
fn a_pipeline_without_schedule_has_no_ticks() {
    let t = timing("");
    assert!(!t.is_scheduled());
    assert_eq!(t.next_after(utc(2026, 1, 1, 0, 0, 0)), None);
}

#[test]
fn an_interval_ticks_at_a_fixed_offset_from_the_name_the_same_for_every_caller() {
    let every = std::time::Duration::from_secs(60);
    let a = Timing::interval("site", every);
    let t0 = utc(2026, 12, 1, 12, 0, 0);
    let first = a.next_after(t0).unwrap();
    let second = a.next_after(first).unwrap();
    assert_eq!((second - first).num_seconds(), 60);
    assert!(first > t0 && first <= t0 + chrono::Duration::seconds(60));
    // The same name gives the same ticks; another name (almost always) others.
    assert_eq!(Timing::interval("site", every).next_after(t0), Some(first));
    let other = Timing::interval("db-port", every).next_after(t0).unwrap();
    assert_ne!(other, first);
    // As a jittered pipeline's: `every` with `jitter` equal to it offsets its ticks alike.
    let p = timing("every = \"1m\"\njitter = \"1m\"");
    let q = Timing::interval("p", every);
    assert_eq!(p.next_after(t0), q.next_after(t0));
}
