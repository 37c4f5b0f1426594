//! Heartbeats: pings recorded as runs in a real SQLite store, and the state and alerts told
//! from them at explicit instants (no test sleeps).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::Rig;
use plantao_engine::alerts::{Verdict, evaluate};
use plantao_engine::checks::{self, Ping, Signal, State};
use plantao_model::{RunStatus, StageStatus, Trigger};
use plantao_store::{RunFilter, Store};

const ROOT: &str = r#"
[pings]
key = "0123456789abcdef0123"

[[heartbeats]]
name = "backup"
period = "1h"
grace = "10m"
min_duration = "30s"
max_duration = "20m"
min_interval = "5m"
start_deadline = "5m"

[[heartbeats]]
name = "nightly"
schedule = "0 3 * * *"
timezone = "America/Sao_Paulo"
grace = "30m"

[[alerts]]
name = "heartbeats"
kind = "heartbeat"
events = ["late", "down", "too_short", "too_long", "too_often", "start_missing"]
"#;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn secs(s: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(s)
}

async fn ping(store: &dyn Store, check: &str, signal: Signal, rid: Option<&str>, at: i64) {
    send(store, check, signal, rid, b"", at).await;
}

async fn send(
    store: &dyn Store,
    check: &str,
    signal: Signal,
    rid: Option<&str>,
    body: &[u8],
    at: i64,
) -> checks::Recorded {
    checks::record(
        store,
        Ping {
            check: check.into(),
            signal,
            rid: rid.map(str::to_owned),
            body: body.to_vec(),
            body_size: body.len(),
            at: secs(at),
        },
        100 * 1024,
    )
    .await
    .unwrap()
}

async fn status_at(rig: &Rig, name: &str, at: DateTime<Utc>) -> checks::Status {
    let records = rig.store.checks().await.unwrap();
    checks::status(
        rig.config.heartbeat(name).unwrap(),
        records.get(name),
        false,
        at,
    )
}

async fn runs_of(store: &dyn Store, check: &str) -> Vec<plantao_store::Run> {
    store
        .runs(&RunFilter {
            pipeline: Some(check.into()),
            limit: 100,
            ..RunFilter::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn late_within_the_grace_and_down_after_it() {
    let rig = Rig::new(ROOT, &[]).await;
    assert_eq!(status_at(&rig, "backup", secs(0)).await.state, State::New);
    ping(rig.store.as_ref(), "backup", Signal::Success, None, 0).await;
    // Due an hour after the success, down ten minutes after that.
    let at = |s: i64| secs(3600 + s);
    assert_eq!(status_at(&rig, "backup", at(0)).await.state, State::Up);
    assert_eq!(status_at(&rig, "backup", at(1)).await.state, State::Late);
    let late = status_at(&rig, "backup", at(600 - 1)).await;
    assert_eq!(late.state, State::Late);
    assert!(late.events.contains_key("late"), "{late:?}");
    let down = status_at(&rig, "backup", at(600 + 1)).await;
    assert_eq!(down.state, State::Down);
    assert!(down.events.contains_key("down") && !down.events.contains_key("late"));
    assert_eq!(down.due, Some(at(0)));
    // The next success makes it up again.
    ping(
        rig.store.as_ref(),
        "backup",
        Signal::Success,
        None,
        3600 + 700,
    )
    .await;
    assert_eq!(status_at(&rig, "backup", at(701)).await.state, State::Up);
}

#[tokio::test]
async fn a_failure_is_down_at_once_and_a_success_clears_it() {
    let rig = Rig::new(ROOT, &[]).await;
    ping(rig.store.as_ref(), "backup", Signal::Success, None, 0).await;
    // Pinged a quarter of a second past 12:10: the reason says the second, in UTC.
    checks::record(
        rig.store.as_ref(),
        Ping {
            check: "backup".into(),
            signal: Signal::Exit(3),
            rid: None,
            body: Vec::new(),
            body_size: 0,
            at: secs(600) + Duration::milliseconds(250),
        },
        1024,
    )
    .await
    .unwrap();
    let s = status_at(&rig, "backup", secs(601)).await;
    assert_eq!(s.state, State::Down);
    assert_eq!(
        s.events["down"], "it reported a failure at 2026-12-01 12:10:00 UTC",
        "{s:?}"
    );
    ping(rig.store.as_ref(), "backup", Signal::Exit(0), None, 1200).await;
    assert_eq!(status_at(&rig, "backup", secs(1201)).await.state, State::Up);
    let runs = runs_of(rig.store.as_ref(), "backup").await;
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Succeeded
        ]
    );
    assert!(runs.iter().all(|r| r.trigger == Trigger::External));
    let failed = rig.store.run_detail(runs[1].id).await.unwrap();
    assert_eq!(failed.stages[0].exit_code, Some(3));
    assert_eq!(failed.stages[0].status, StageStatus::Failed);
    assert_eq!(
        failed.run.error_message.as_deref(),
        Some("exited with status 3")
    );
}

#[tokio::test]
async fn a_start_and_its_end_are_one_run_and_rids_pair_overlapping_runs() {
    let rig = Rig::new(ROOT, &[]).await;
    let s = rig.store.as_ref();
    ping(s, "backup", Signal::Start, Some("a"), 0).await;
    ping(s, "backup", Signal::Start, Some("b"), 10).await;
    // b ends first, after 50 s; a after 120 s, failing.
    let b = send(s, "backup", Signal::Success, Some("b"), b"b done", 60).await;
    let a = send(s, "backup", Signal::Fail, Some("a"), b"a broke", 120).await;
    assert!(a.ended && b.ended && a.run != b.run);
    let a = s.run_detail(a.run).await.unwrap();
    let b = s.run_detail(b.run).await.unwrap();
    assert_eq!(
        (b.run.status, b.run.duration_ms),
        (RunStatus::Succeeded, Some(50_000))
    );
    assert_eq!(
        (a.run.status, a.run.duration_ms),
        (RunStatus::Failed, Some(120_000))
    );
    assert_eq!(a.run.params["rid"], "a");
    assert_eq!(a.stages[0].log, "a broke");
    assert_eq!(b.stages[0].log, "b done");
    // An end without a start: a run of zero duration.
    let lone = send(s, "backup", Signal::Success, None, b"", 200).await;
    let lone = s.run(lone.run).await.unwrap();
    assert_eq!(lone.duration_ms, Some(0));
    assert_eq!(runs_of(s, "backup").await.len(), 3);
}

#[tokio::test]
async fn min_duration_just_under_and_just_over() {
    let rig = Rig::new(ROOT, &[]).await;
    let s = rig.store.as_ref();
    ping(s, "backup", Signal::Start, None, 0).await;
    ping(s, "backup", Signal::Success, None, 29).await;
    let short = status_at(&rig, "backup", secs(30)).await;
    assert!(
        short.events["too_short"].contains("under min_duration 30s"),
        "{short:?}"
    );
    ping(s, "backup", Signal::Start, None, 1000).await;
    ping(s, "backup", Signal::Success, None, 1031).await;
    let fine = status_at(&rig, "backup", secs(1032)).await;
    assert!(!fine.events.contains_key("too_short"), "{fine:?}");
}

#[tokio::test]
async fn too_long_while_running_and_after_ending_too_often_and_a_missing_start() {
    let rig = Rig::new(ROOT, &[]).await;
    let s = rig.store.as_ref();
    ping(s, "backup", Signal::Success, None, 0).await;
    ping(s, "backup", Signal::Start, None, 100).await;
    // max_duration 20 m: open 19 m is fine, 21 m is too long.
    assert!(
        !status_at(&rig, "backup", secs(100 + 19 * 60))
            .await
            .has(plantao_config::CheckEvent::TooLong)
    );
    let long = status_at(&rig, "backup", secs(100 + 21 * 60)).await;
    assert!(
        long.events["too_long"].contains("still running"),
        "{long:?}"
    );
    ping(s, "backup", Signal::Success, None, 100 + 22 * 60).await;
    let ended = status_at(&rig, "backup", secs(100 + 22 * 60 + 1)).await;
    assert!(ended.events["too_long"].contains("took 22m"), "{ended:?}");
    // Two successes 1h20 apart are fine; two a minute apart are too often (min_interval 5 m).
    assert!(!ended.events.contains_key("too_often"));
    ping(s, "backup", Signal::Success, None, 100 + 23 * 60).await;
    let often = status_at(&rig, "backup", secs(100 + 23 * 60 + 1)).await;
    assert!(often.events.contains_key("too_often"), "{often:?}");
    // start_deadline 5 m: due an hour after the last success; no start 4 m after is fine, 6 m
    // after is missing.
    let due = secs(100 + 23 * 60 + 3600);
    let before = status_at(&rig, "backup", due + Duration::minutes(4)).await;
    assert!(!before.events.contains_key("start_missing"), "{before:?}");
    let after = status_at(&rig, "backup", due + Duration::minutes(6)).await;
    assert!(after.events.contains_key("start_missing"), "{after:?}");
}

#[tokio::test]
async fn a_schedule_in_its_zone_sets_when_it_is_due() {
    let rig = Rig::new(ROOT, &[]).await;
    // 12:00 UTC is 09:00 in São Paulo: the next 03:00 there is 06:00 UTC tomorrow.
    ping(rig.store.as_ref(), "nightly", Signal::Success, None, 0).await;
    let due = Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap();
    let s = status_at(&rig, "nightly", due).await;
    assert_eq!((s.state, s.due), (State::Up, Some(due)));
    let late = due + Duration::minutes(29);
    assert_eq!(status_at(&rig, "nightly", late).await.state, State::Late);
    let down = due + Duration::minutes(31);
    assert_eq!(status_at(&rig, "nightly", down).await.state, State::Down);
}

#[tokio::test]
async fn bodies_are_kept_up_to_the_limit_and_cut_past_it() {
    let at_limit = "x".repeat(1000);
    assert_eq!(
        checks::ping::bounded(at_limit.as_bytes(), 1000, 1000),
        at_limit
    );
    // The route reads a little past the limit and counts the rest.
    let over = checks::ping::bounded("x".repeat(1004).as_bytes(), 5000, 1000);
    assert!(over.starts_with(&at_limit));
    assert!(
        over.ends_with("[plantao: body cut at 1000 bytes, 4000 more not kept]"),
        "{over}"
    );
    // Never inside a character: "é" is two bytes.
    let cut = checks::ping::bounded("aé".as_bytes(), 3, 2);
    assert!(cut.starts_with("a\n"), "{cut}");
    assert!(cut.ends_with("2 more not kept]"), "{cut}");
}

#[tokio::test]
async fn a_log_ping_joins_the_open_run_or_stands_alone() {
    let rig = Rig::new(ROOT, &[]).await;
    let s = rig.store.as_ref();
    let alone = send(s, "backup", Signal::Log, None, b"just saying", 0).await;
    let alone = s.run_detail(alone.run).await.unwrap();
    assert_eq!(alone.run.status, RunStatus::Skipped);
    assert_eq!(alone.run.reason.as_deref(), Some("log"));
    assert_eq!(alone.stages[0].log, "just saying");
    let started = send(s, "backup", Signal::Start, None, b"", 10).await;
    send(s, "backup", Signal::Log, None, b"half way", 20).await;
    send(s, "backup", Signal::Log, None, b"almost", 30).await;
    let ended = send(s, "backup", Signal::Success, None, b"done", 40).await;
    assert_eq!(started.run, ended.run);
    let detail = s.run_detail(ended.run).await.unwrap();
    let logs: Vec<(&str, u32, &str)> = detail
        .stages
        .iter()
        .map(|st| (st.step.as_str(), st.attempt, st.log.as_str()))
        .collect();
    assert_eq!(
        logs,
        // By start: the run's stage starts with the run.
        [
            ("ping", 1, "done"),
            ("log", 1, "half way"),
            ("log", 2, "almost")
        ]
    );
    // A log says neither success nor failure: the heartbeat is still new... until the success.
    assert_eq!(status_at(&rig, "backup", secs(41)).await.state, State::Up);
}

#[tokio::test]
async fn a_heartbeat_rule_fires_on_late_then_down_and_resolves_on_the_next_success() {
    let rig = Rig::new(ROOT, &[]).await;
    let s = rig.store.as_ref();
    ping(s, "backup", Signal::Success, None, 0).await;
    let verdicts = |e: &plantao_engine::alerts::Evaluation| -> Vec<(String, String, Verdict)> {
        e.findings
            .iter()
            .filter(|f| f.observation.labels["check"] == "backup")
            .filter(|f| f.observation.verdict == Verdict::Holds)
            .map(|f| {
                (
                    f.observation.labels["event"].clone(),
                    f.observation.annotations["why"].clone(),
                    f.observation.verdict,
                )
            })
            .collect()
    };
    let late = evaluate(s, &rig.config, secs(3600 + 60)).await.unwrap();
    let held = verdicts(&late);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].0, "late");
    plantao_engine::alerts::commit(s, late.batches)
        .await
        .unwrap();
    let down = evaluate(s, &rig.config, secs(3600 + 700)).await.unwrap();
    assert_eq!(verdicts(&down)[0].0, "down");
    plantao_engine::alerts::commit(s, down.batches)
        .await
        .unwrap();
    // Late resolved; down open, and start_missing (no start 5 min after it was due) too.
    let open = s.open_alerts().await.unwrap();
    let events: Vec<&str> = open.iter().map(|a| a.labels["event"].as_str()).collect();
    assert_eq!(events, ["down", "start_missing"], "{open:?}");
    assert_eq!(open[0].pipeline.as_deref(), Some("backup"));
    assert!(
        open[0]
            .message
            .starts_with("Heartbeat backup: no success since"),
        "{}",
        open[0].message
    );
    // Down since the grace ended (due 13:00, grace 10 min): an incident from 13:10 on.
    let incidents = s.incidents(Some("backup"), secs(0), 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        (incidents[0].started_at, incidents[0].ended_at),
        (secs(3600 + 600), None)
    );
    ping(s, "backup", Signal::Success, None, 3600 + 800).await;
    let up = evaluate(s, &rig.config, secs(3600 + 801)).await.unwrap();
    plantao_engine::alerts::commit(s, up.batches).await.unwrap();
    assert!(s.open_alerts().await.unwrap().is_empty());
    // It ended with the success: 200 s down.
    let incidents = s.incidents(Some("backup"), secs(0), 10).await.unwrap();
    assert_eq!(incidents[0].ended_at, Some(secs(3600 + 800)));
    let (down_s, count) = checks::uptime::down_within(&incidents, secs(0), secs(7200));
    assert_eq!((down_s.num_seconds(), count), (200, 1));
    let windows =
        checks::uptime::windows(s, "backup", chrono_tz::Tz::UTC, Some(secs(0)), secs(7200))
            .await
            .unwrap();
    let day = &windows[0];
    assert_eq!((day.window.as_str(), day.down_seconds), ("24h", 200));
    let expected = 100.0 * (7200.0 - 200.0) / 7200.0;
    assert!(
        (day.uptime_percent.unwrap() - expected).abs() < 1e-9,
        "{day:?}"
    );
    // The nightly heartbeat was never pinged: new, and nothing fires for it.
    assert!(
        down.findings
            .iter()
            .filter(|f| f.observation.labels["check"] == "nightly")
            .all(|f| f.observation.verdict == Verdict::Clear)
    );
}

/// Counts the HTTP requests it is sent, answering each 200.
async fn counting_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ping/self", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            if buf[..n].starts_with(b"GET /ping/self ") {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK")
                .await;
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_daemon_pings_its_own_dead_mans_switch_every_period() {
    let (url, count) = counting_receiver().await;
    let rig = Rig::new(
        &format!("[self_heartbeat]\nurl = \"{url}\"\nperiod = \"1s\"\n"),
        &[],
    )
    .await;
    let daemon = plantao_engine::daemon::Daemon::start(
        rig.config.clone(),
        rig.store.clone(),
        std::sync::Arc::new(plantao_engine::clock::SystemClock),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 3 self pings in 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    daemon.shut_down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_arriving_together_are_one_batch_and_pair_their_starts_and_ends() {
    let rig = Rig::new(ROOT, &[]).await;
    let recorder = checks::Recorder::start(rig.store.clone());
    let at = |s: i64| secs(s);
    let send = |signal: Signal, rid: String, s: i64, body: &'static str| {
        let recorder = recorder.clone();
        async move {
            recorder
                .record(
                    Ping {
                        check: "backup".into(),
                        signal,
                        rid: Some(rid),
                        body: body.as_bytes().to_vec(),
                        body_size: body.len(),
                        at: at(s),
                    },
                    1024,
                )
                .await
                .unwrap()
        }
    };
    // 40 overlapping runs: their starts all at once, then their ends all at once (some in the
    // same batch as starts of others), and a log for each in between.
    let rids: Vec<String> = (0..40)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let starts: Vec<_> = rids
        .iter()
        .map(|r| send(Signal::Start, r.clone(), 0, ""))
        .collect();
    let started = futures::future::join_all(starts).await;
    let logs: Vec<_> = rids
        .iter()
        .map(|r| send(Signal::Log, r.clone(), 5, "half way"))
        .collect();
    futures::future::join_all(logs).await;
    let ends: Vec<_> = rids
        .iter()
        .enumerate()
        .map(|(i, r)| {
            send(
                if i % 2 == 0 {
                    Signal::Success
                } else {
                    Signal::Exit(2)
                },
                r.clone(),
                10,
                "done",
            )
        })
        .collect();
    let ended = futures::future::join_all(ends).await;
    for (s, e) in started.iter().zip(&ended) {
        assert_eq!(s.run, e.run, "each end ended its own start");
    }
    let runs = runs_of(rig.store.as_ref(), "backup").await;
    assert_eq!(runs.len(), 40);
    assert!(
        runs.iter().all(|r| r.duration_ms == Some(10_000)),
        "{runs:?}"
    );
    assert_eq!(
        runs.iter()
            .filter(|r| r.status == RunStatus::Failed)
            .count(),
        20
    );
    let one = rig.store.run_detail(ended[3].run).await.unwrap();
    let steps: Vec<&str> = one.stages.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["ping", "log"]);
    let record = &rig.store.checks().await.unwrap()["backup"];
    assert_eq!(record.pings, 120);
}
