//! `plantao bench alerts`: the three alerting figures of docs/benchmarks.md.
//!
//! 1. One evaluation cycle of many rules (1,000) against a store holding many runs (1,000,000),
//!    read from the rollups.
//! 2. From a failing run's end (as the store records it) to a loopback webhook receiving the
//!    critical alert, through the real daemon: executor, evaluator, outbox, dispatcher.
//! 3. Notifications delivered to a loopback webhook per second, each attempt committed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use plantao_engine::alerts;
use plantao_engine::clock::SystemClock;
use plantao_engine::daemon::Daemon;
use plantao_model::{DeliveryState, NotificationEvent, Trigger};
use plantao_store::{NewRun, Notification, Write};

use crate::commands::apibench::seed;
use crate::commands::bench::{cores, daily_pipelines, percentile, write_config};
use crate::commands::open_store;
use crate::failure::Failure;

pub struct AlertBench {
    pub rules: usize,
    pub runs: usize,
    pub pipelines: usize,
    pub days: u32,
    pub failures: usize,
    pub notifications: usize,
    pub postgres: Option<String>,
    /// A SQLite file to keep for the evaluation: seeded when it holds no runs.
    pub file: Option<std::path::PathBuf>,
}

pub async fn run(args: AlertBench) -> Result<(), Failure> {
    crate::commands::serve::init_logs(crate::cli::LogFormat::Text);
    println!(
        "machine: {} cores; {} backend",
        cores(),
        if args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    evaluation(&args).await?;
    latency(&args).await?;
    throughput(&args).await?;
    Ok(())
}

/// A name part of this run alone: on a PostgreSQL database kept between runs, an alert or a
/// notification another run left behind is not this one's.
fn unique() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    id[id.len() - 8..].to_owned()
}

fn temp() -> Result<tempfile::TempDir, Failure> {
    tempfile::tempdir().map_err(|e| Failure::Usage(format!("no temporary folder: {e}")))
}

fn store_url(args: &AlertBench, dir: &std::path::Path) -> String {
    args.postgres
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("plantao.db").display()))
}

/// `rules` rules over the pipelines, one pipeline each, kinds and windows taking turns. The
/// seeded runs fail one in twenty, all in a fifth of the pipelines: some rules fire.
fn rules(n: usize, pipelines: &[(String, String)]) -> String {
    let windows = ["today", "24h", "7d"];
    let mut out = String::new();
    for i in 0..n {
        let p = &pipelines[i % pipelines.len()].0;
        // Every pipeline gets every kind and window in turn.
        let turn = i / pipelines.len();
        let window = windows[turn % windows.len()];
        let body = match turn % 10 {
            0 => "kind = \"stuck\"\nafter = \"1h\"".to_owned(),
            k if k % 2 == 1 => {
                format!(
                    "kind = \"failure_rate\"\nthreshold = {}\nwindow = \"{window}\"",
                    k + 1
                )
            }
            _ => format!(
                "when = \"s.rows / runs < threshold || failure_rate > 50\"\nthreshold = 100\nwindow = \"{window}\""
            ),
        };
        out.push_str(&format!(
            "\n[[alerts]]\nname = \"r{i:05}\"\npipeline = \"{p}\"\n{body}\n"
        ));
    }
    out
}

async fn evaluation(args: &AlertBench) -> Result<(), Failure> {
    let dir = temp()?;
    let url = match (&args.postgres, &args.file) {
        (Some(pg), _) => pg.clone(),
        (None, Some(file)) => format!("sqlite://{}", file.display()),
        (None, None) => store_url(args, dir.path()),
    };
    let list = daily_pipelines(args.pipelines);
    let config = write_config(
        dir.path(),
        &format!("[storage]\nurl = \"{url}\"\n{}", rules(args.rules, &list)),
        &list,
    )?;
    let store = open_store(&config).await?;
    let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    let seeded = Instant::now();
    let have = store
        .runs(&plantao_store::RunFilter {
            limit: 1,
            ..Default::default()
        })
        .await?;
    if have.is_empty() || args.file.is_none() {
        seed(store.as_ref(), &names, args.runs, args.days).await?;
    }
    println!(
        "\n1. evaluation: {} rules over {} pipelines; {} runs over {} days (ready in {:.1} s)",
        args.rules,
        names.len(),
        args.runs,
        args.days,
        seeded.elapsed().as_secs_f64()
    );
    let mut cycles = Vec::new();
    for cycle in 0..7 {
        let start = Instant::now();
        let evaluation = alerts::evaluate(store.as_ref(), &config, Utc::now()).await?;
        let judged = start.elapsed();
        let committed = Instant::now();
        let batches = evaluation.batches.len();
        let findings = evaluation.findings.len();
        alerts::commit(store.as_ref(), evaluation.batches).await?;
        if cycle == 0 {
            println!(
                "   first cycle: {findings} findings, {batches} alert changes, evaluated in {:.1} ms, committed in {:.1} ms",
                judged.as_secs_f64() * 1000.0,
                committed.elapsed().as_secs_f64() * 1000.0
            );
        } else {
            cycles.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    cycles.sort_by(f64::total_cmp);
    println!(
        "   later cycles (evaluate + commit, {} of them): median {:.1} ms, max {:.1} ms",
        cycles.len(),
        percentile(&cycles, 0.5),
        cycles.last().copied().unwrap_or_default()
    );
    store.close().await;
    Ok(())
}

/// What the loopback webhook received: when, and the body.
type Received = Arc<Mutex<Vec<(DateTime<Utc>, serde_json::Value)>>>;

/// A webhook receiver on loopback (axum), answering 200 to every POST.
async fn receiver() -> Result<(String, Received), Failure> {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let at = Utc::now();
                let value = serde_json::from_slice(&body).unwrap_or_default();
                seen.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((at, value));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::Usage(format!("cannot listen on loopback: {e}")))?;
    let url = format!(
        "http://{}/hook",
        listener
            .local_addr()
            .map_err(|e| Failure::Usage(e.to_string()))?
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, got))
}

async fn wait(what: &str, mut done: impl FnMut() -> bool) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() > deadline {
            return Err(Failure::Usage(format!("waited 60 s for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn latency(args: &AlertBench) -> Result<(), Failure> {
    let dir = temp()?;
    let (hook, got) = receiver().await?;
    let root = format!(
        "[storage]\nurl = \"{}\"\n[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{hook}\"\n",
        store_url(args, dir.path())
    );
    let flaky = "[params.code]\ndefault = \"1\"\n\
        [[steps]]\nname = \"s\"\nrun = \"exit $PLANTAO_PARAM_CODE\"\n\
        [[alerts]]\nname = \"flaky-failed\"\nkind = \"run_failed\"\nseverity = \"critical\"\nchannels = [\"hook\"]\n";
    let pipeline = format!("flaky-{}", unique());
    let config = Arc::new(write_config(
        dir.path(),
        &root,
        &[(pipeline.clone(), flaky.to_owned())],
    )?);
    let store = open_store(&config).await?;
    let daemon = Daemon::start(config.clone(), store.clone(), Arc::new(SystemClock)).await?;
    let count = |event: &str| {
        got.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, b)| b["event"] == event)
            .count()
    };
    let mut millis = Vec::new();
    for i in 0..args.failures.max(1) {
        for (code, event) in [("1", "firing"), ("0", "resolved")] {
            let mut run = NewRun::queued(&pipeline, Trigger::Manual, Utc::now());
            run.params.insert("code".into(), code.into());
            store.apply(vec![Write::InsertRun(run)]).await?;
            wait(&format!("the {event} notification"), || count(event) > i).await?;
        }
        let (arrived, body) = got
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, b)| b["event"] == "firing")
            .nth(i)
            .cloned()
            .unwrap_or_default();
        let run: plantao_model::RunId = body["alert"]["annotations"]["run"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| Failure::Usage("a firing without its run".into()))?;
        if let Some(ended) = store.run(run).await?.finished_at {
            millis.push((arrived - ended).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    daemon.shut_down().await?;
    store.close().await;
    millis.sort_by(f64::total_cmp);
    println!(
        "\n2. from a failing run's end to the webhook receiving the critical alert ({} failures): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        millis.len(),
        percentile(&millis, 0.5),
        percentile(&millis, 0.99),
        millis.last().copied().unwrap_or_default()
    );
    Ok(())
}

async fn throughput(args: &AlertBench) -> Result<(), Failure> {
    let dir = temp()?;
    let (hook, got) = receiver().await?;
    let channel = format!("hook-{}", unique());
    let root = format!(
        "[storage]\nurl = \"{}\"\n[[channels]]\nname = \"{channel}\"\nkind = \"webhook\"\nurl = \"{hook}\"\nsecret = \"bench\"\n",
        store_url(args, dir.path())
    );
    let config = write_config(dir.path(), &root, &[])?;
    let store = open_store(&config).await?;
    let now = Utc::now();
    let queued: Vec<Write> = (0..args.notifications)
        .map(|i| {
            Write::Enqueue(Box::new(Notification {
                id: uuid::Uuid::now_v7(),
                alert_id: None,
                channel: channel.clone(),
                event: NotificationEvent::Firing,
                state: DeliveryState::Pending,
                created_at: now,
                next_at: now,
                attempts: 0,
                delivered_at: None,
                last_error: None,
                text: format!("[WARNING] FIRING · bench\nnotification {i}"),
                alert: None,
                group: None,
            }))
        })
        .collect();
    for chunk in queued.chunks(1000) {
        store.apply(chunk.to_vec()).await?;
    }
    let telemetry = plantao_engine::telemetry::Telemetry::default();
    let start = Instant::now();
    let received = || got.lock().unwrap_or_else(|e| e.into_inner()).len();
    while received() < args.notifications {
        if start.elapsed() > Duration::from_secs(300) {
            return Err(Failure::Usage(format!(
                "the receiver got {} of {} notifications in 5 minutes",
                received(),
                args.notifications
            )));
        }
        plantao_engine::notify::deliver_due(store.as_ref(), &config, &SystemClock, &telemetry)
            .await?;
    }
    let took = start.elapsed().as_secs_f64();
    let received = received();
    store.close().await;
    println!(
        "\n3. {} notifications delivered to a loopback webhook in {took:.2} s: {:.0} per second ({received} received, every attempt committed)",
        args.notifications,
        args.notifications as f64 / took
    );
    Ok(())
}
