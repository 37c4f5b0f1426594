//! `plantao bench burst` and `plantao bench spread`: many pipelines due at once, or spread over
//! each minute, from the due instant to each step's own process running (`date +%s%N` prints
//! the moment it ran). Figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use plantao_engine::clock::SystemClock;
use plantao_engine::daemon::Daemon;
use plantao_store::{RunFilter, Store};

use crate::commands::bench::{cores, percentile, stamped_lags, write_config};
use crate::commands::open_store;
use crate::failure::Failure;

const STAMP: &str = "[[steps]]\nname = \"stamp\"\nargv = [\"date\", \"+%s%N\"]\n";

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Usage(e.to_string())
}

/// `pipelines` pipelines due on the same second.
pub async fn burst(pipelines: usize) -> Result<(), Failure> {
    let n = pipelines.max(1);
    let bare = bare_spawns(n).await?;
    let dir = tempfile::tempdir().map_err(fail)?;
    // Due on a whole second at least 3 s away: time to load the configuration and start.
    let due = next_second(Utc::now() + chrono::Duration::seconds(3));
    let schedule = format!(
        "schedule = \"{} {} {} * * *\"\nconcurrency = \"allow\"\n",
        due.second(),
        due.minute(),
        due.hour()
    );
    let list: Vec<(String, String)> = (0..n)
        .map(|i| (format!("b{i:05}"), format!("{schedule}{STAMP}")))
        .collect();
    let root = format!("[engine]\nmax_concurrent_runs = {n}\n");
    let config = Arc::new(write_config(dir.path(), &root, &list)?);
    let store = open_store(&config).await?;
    let daemon = Daemon::start(config.clone(), store.clone(), Arc::new(SystemClock)).await?;
    // Watch the store from just before the due instant until every tick is a run.
    let until_due = (due - Utc::now() - chrono::Duration::milliseconds(50))
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(until_due).await;
    let recorded = loop {
        let ticks = store.last_ticks().await?;
        if ticks.values().filter(|t| **t == due).count() >= n {
            break Utc::now();
        }
        if Utc::now() - due > chrono::Duration::seconds(60) {
            return Err(fail("the ticks were not all recorded within a minute"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let runs = wait_all_ended(store.as_ref(), n).await?;
    daemon.shut_down().await?;
    let mut lags = stamped_lags(store.as_ref(), &runs).await?;
    store.close().await;
    if lags.len() < n {
        return Err(fail(format!(
            "only {} of {n} steps printed when they ran",
            lags.len()
        )));
    }
    lags.sort_by(f64::total_cmp);
    let last = lags[lags.len() - 1];
    println!(
        "machine: {} cores; {n} pipelines due on the same second, `date` as their step",
        cores()
    );
    println!(
        "every tick recorded as a run: {:.1} ms after the due instant (all {n} in one transaction)",
        (recorded - due).num_microseconds().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "step processes started: first {:.1} ms, median {:.1} ms, last {last:.1} ms after the due instant",
        lags[0],
        percentile(&lags, 0.5)
    );
    println!(
        "starting {n} `date` processes at once, bare: the last ran {bare:.1} ms after the first spawn; plantao's last: {:.2}× that",
        last / bare
    );
    Ok(())
}

/// Whether any run has ended.
async fn any_ended(store: &dyn Store) -> Result<bool, Failure> {
    let runs = store
        .runs(&RunFilter {
            status: Some(plantao_model::RunStatus::Succeeded),
            limit: 1,
            ..Default::default()
        })
        .await?;
    Ok(!runs.is_empty())
}

/// `pipelines` pipelines every minute, each at its own moment of the minute (`jitter`), for
/// `seconds`, and longer (up to a minute) until one tick has run: with few pipelines a short
/// stretch of the minute may hold none (the smoke run in CI met one such stretch).
pub async fn spread(pipelines: usize, seconds: u64) -> Result<(), Failure> {
    let n = pipelines.max(1);
    let dir = tempfile::tempdir().map_err(fail)?;
    let list: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("s{i:05}"),
                format!("every = \"1m\"\njitter = \"60s\"\n{STAMP}"),
            )
        })
        .collect();
    let config = Arc::new(write_config(dir.path(), "", &list)?);
    let store = open_store(&config).await?;
    let daemon = Daemon::start(config.clone(), store.clone(), Arc::new(SystemClock)).await?;
    tokio::time::sleep(Duration::from_secs(seconds.max(1))).await;
    let deadline = Instant::now() + Duration::from_secs(65);
    while Instant::now() < deadline && !any_ended(store.as_ref()).await? {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.shut_down().await?;
    let runs = store
        .runs(&RunFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await?;
    let mut lags = stamped_lags(store.as_ref(), &runs).await?;
    let mut recorded: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.lag_ms)
        .map(|l| l as f64)
        .collect();
    recorded.sort_by(f64::total_cmp);
    store.close().await;
    if lags.is_empty() || recorded.is_empty() {
        return Err(fail("no tick ran during the benchmark"));
    }
    lags.sort_by(f64::total_cmp);
    println!(
        "machine: {} cores; {n} pipelines every minute, spread over it by jitter; {} ticks in {seconds} s",
        cores(),
        lags.len()
    );
    println!(
        "due instant → step process running: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1]
    );
    println!(
        "of which before the spawn (due instant → stage recorded as starting, whole ms): p50 {} ms, p99 {} ms",
        percentile(&recorded, 0.5),
        percentile(&recorded, 0.99)
    );
    Ok(())
}

fn next_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let whole = t.with_nanosecond(0).unwrap_or(t);
    whole + chrono::Duration::seconds(1)
}

/// Starts `n` `date +%s%N` processes at once (each spawned without waiting for the others) and
/// says when the last one ran, in ms after the first spawn.
async fn bare_spawns(n: usize) -> Result<f64, Failure> {
    let start = Utc::now();
    let children: Vec<_> = (0..n)
        .map(|_| {
            tokio::process::Command::new("date")
                .arg("+%s%N")
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(fail)
        })
        .collect::<Result<_, _>>()?;
    let mut last = 0_i64;
    for child in children {
        let out = child.wait_with_output().await.map_err(fail)?;
        let ns: i64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        last = last.max(ns);
    }
    let start_ns = start.timestamp_nanos_opt().unwrap_or(0);
    Ok((last - start_ns) as f64 / 1e6)
}

/// Waits (a minute at most) until `n` runs have ended; returns them. Polls the small per-pipeline
/// counts, so the watching costs little next to what it watches.
async fn wait_all_ended(store: &dyn Store, n: usize) -> Result<Vec<plantao_store::Run>, Failure> {
    let started = Instant::now();
    loop {
        if store.open_runs().await?.is_empty() {
            let runs = store
                .runs(&RunFilter {
                    limit: 1_000_000,
                    ..Default::default()
                })
                .await?;
            if runs.len() >= n {
                return Ok(runs);
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(fail("the runs did not all end within a minute"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
