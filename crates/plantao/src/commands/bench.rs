//! `plantao bench steps`: what plantao adds to each step, next to what spawning the step's
//! program costs by itself. Figures go to docs/benchmarks.md.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plantao_engine::{Plan, Quiet, RunRequest, Runner};
use plantao_model::{RunStatus, Trigger};
use tokio::sync::watch;

use crate::commands::{load_config, open_store};
use crate::failure::Failure;

pub async fn steps(runs: usize, steps: usize, postgres: Option<&str>) -> Result<(), Failure> {
    let runs = runs.max(1);
    let steps = steps.max(1);
    let spawn = median(&time_shell_loop(runs, steps)?);
    println!(
        "machine: {} cores; {runs} runs of {steps} sequential `true` steps (medians)",
        cores()
    );
    println!(
        "spawning `true` {steps} times from a shell loop: {:.2} ms ({:.3} ms per spawn)",
        ms(spawn),
        ms(spawn) / steps as f64
    );
    let dir = tempfile::tempdir()
        .map_err(|e| Failure::Usage(format!("cannot make a temp folder: {e}")))?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut backends = vec![("sqlite", sqlite)];
    if let Some(url) = postgres {
        backends.push(("postgres", url.to_owned()));
    }
    for (name, url) in backends {
        let whole = median(&time_pipeline(dir.path(), &url, runs, steps).await?);
        let per_step = (ms(whole) - ms(spawn)) / steps as f64;
        println!(
            "{name}: run of {steps} steps {:.2} ms; plantao's overhead per step beyond the spawn: {per_step:.3} ms",
            ms(whole)
        );
    }
    Ok(())
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() / 2]
}

pub(crate) fn true_program() -> &'static str {
    if std::path::Path::new("/usr/bin/true").exists() {
        "/usr/bin/true"
    } else {
        "/bin/true"
    }
}

fn time_shell_loop(runs: usize, steps: usize) -> Result<Vec<Duration>, Failure> {
    let script = format!(
        "i=0; while [ $i -lt {steps} ]; do {}; i=$((i+1)); done",
        true_program()
    );
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .status()
                .map_err(|e| Failure::Usage(format!("cannot run sh: {e}")))?;
            if !status.success() {
                return Err(Failure::Usage("the shell loop failed".into()));
            }
            Ok(start.elapsed())
        })
        .collect()
}

async fn time_pipeline(
    dir: &std::path::Path,
    url: &str,
    runs: usize,
    steps: usize,
) -> Result<Vec<Duration>, Failure> {
    let folder = dir.join(format!("cfg-{}", url.split("://").next().unwrap_or("x")));
    let mut pipeline = String::new();
    for i in 0..steps {
        let _ = write!(
            pipeline,
            "[[steps]]\nname = \"s{i}\"\nargv = [\"{}\"]\n\n",
            true_program()
        );
    }
    let root = format!("[storage]\nurl = \"{url}\"\n");
    let config = Arc::new(write_config(&folder, &root, &[("bench".into(), pipeline)])?);
    let store = open_store(&config).await?;
    let runner = Runner::new(config.clone(), store.clone(), None);
    let pipeline = config
        .pipeline("bench")
        .ok_or_else(|| Failure::Usage("no bench pipeline".into()))?;
    let plan =
        Plan::new(pipeline, &RunRequest::default()).map_err(|e| Failure::Usage(e.to_string()))?;
    let (_keep, cancel) = watch::channel(None);
    // One run to warm up caches and connections, not counted.
    runner
        .run(&plan, Trigger::Manual, cancel.clone(), &Quiet)
        .await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let report = runner
            .run(&plan, Trigger::Manual, cancel.clone(), &Quiet)
            .await?;
        times.push(start.elapsed());
        if report.status != RunStatus::Succeeded {
            return Err(Failure::Usage(format!(
                "a benchmark run ended {}",
                report.status
            )));
        }
    }
    store.close().await;
    Ok(times)
}

/// Writes a configuration (`root` as plantao.toml, each pipeline as pipelines/NAME.toml) into
/// `dir` and loads it.
pub(crate) fn write_config(
    dir: &std::path::Path,
    root: &str,
    pipelines: &[(String, String)],
) -> Result<plantao_config::Config, Failure> {
    let fail =
        |e: std::io::Error| Failure::Usage(format!("cannot write the benchmark's files: {e}"));
    std::fs::create_dir_all(dir.join("pipelines")).map_err(fail)?;
    // Any free port: a benchmark must not collide with a plantao serving on this machine.
    std::fs::write(
        dir.join("plantao.toml"),
        format!("[server]\nlisten = \"127.0.0.1:0\"\n{root}"),
    )
    .map_err(fail)?;
    for (name, text) in pipelines {
        std::fs::write(dir.join(format!("pipelines/{name}.toml")), text).map_err(fail)?;
    }
    load_config(&dir.join("plantao.toml"))
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn lag(seconds: u64, old_runs: usize) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    // The step is `date` itself, run directly: the time it prints is when its process ran.
    let step = "schedule = \"* * * * * *\"\nconcurrency = \"allow\"\nmax_concurrent = 4\n\
                [[steps]]\nname = \"stamp\"\nargv = [\"date\", \"+%s%N\"]\n";
    let config = Arc::new(write_config(
        dir.path(),
        "",
        &[("every-second".into(), step.into())],
    )?);
    // What starting `date` costs by itself: from just before the spawn to the time it prints.
    let mut floor = Vec::new();
    for _ in 0..20 {
        let before = chrono::Utc::now();
        let out = std::process::Command::new("date")
            .arg("+%s%N")
            .output()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let printed: i64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if let Some(b) = before.timestamp_nanos_opt() {
            floor.push((printed - b) as f64 / 1e6);
        }
    }
    floor.sort_by(f64::total_cmp);
    let store = open_store(&config).await?;
    add_old_runs(store.as_ref(), old_runs).await?;
    let clock = Arc::new(plantao_engine::clock::SystemClock);
    let daemon =
        plantao_engine::daemon::Daemon::start(config.clone(), store.clone(), clock).await?;
    tokio::time::sleep(Duration::from_secs(seconds.max(2))).await;
    daemon.shut_down().await?;
    let runs = store
        .runs(&plantao_store::RunFilter {
            pipeline: Some("every-second".into()),
            limit: 100_000,
            ..Default::default()
        })
        .await?;
    if old_runs > 0 {
        let left = store
            .runs(&plantao_store::RunFilter {
                pipeline: Some("history".into()),
                limit: 1_000_000,
                ..Default::default()
            })
            .await?
            .len();
        println!(
            "meanwhile the daemon pruned {} of {old_runs} runs past the retention ({left} left)",
            old_runs - left
        );
    }
    let mut recorded: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.lag_ms)
        .map(|l| l as f64)
        .collect();
    let mut lags = stamped_lags(store.as_ref(), &runs).await?;
    store.close().await;
    if lags.is_empty() {
        return Err(Failure::Usage("no tick ran during the benchmark".into()));
    }
    lags.sort_by(f64::total_cmp);
    recorded.sort_by(f64::total_cmp);
    println!(
        "machine: {} cores; {} ticks of a pipeline due every second; due instant → the step (`date`) running",
        cores(),
        lags.len()
    );
    println!(
        "lag: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1]
    );
    println!(
        "of which starting `date` alone (spawn → it prints the time, measured apart): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&floor, 0.5),
        percentile(&floor, 0.99)
    );
    println!(
        "as recorded on the runs (due instant → stage recorded as starting, whole ms): p50 {} ms, p99 {} ms",
        percentile(&recorded, 0.5),
        percentile(&recorded, 0.99)
    );
    Ok(())
}

/// For each scheduled run whose first step printed the time it started (`date +%s%N`), the
/// milliseconds from its due instant to that moment.
pub(crate) async fn stamped_lags(
    store: &dyn plantao_store::Store,
    runs: &[plantao_store::Run],
) -> Result<Vec<f64>, Failure> {
    let mut lags = Vec::new();
    for run in runs {
        let Some(due_ns) = run.scheduled_for.and_then(|d| d.timestamp_nanos_opt()) else {
            continue;
        };
        let detail = store.run_detail(run.id).await?;
        if let Some(ns) = detail
            .stages
            .first()
            .and_then(|s| s.log.trim().parse::<i64>().ok())
        {
            lags.push((ns - due_ns) as f64 / 1e6);
        }
    }
    Ok(lags)
}

/// Records `n` finished runs queued 100 days ago, past the default retention of 90 days: the
/// daemon prunes them while it is measured.
async fn add_old_runs(store: &dyn plantao_store::Store, n: usize) -> Result<(), Failure> {
    let old = chrono::Utc::now() - chrono::Duration::days(100);
    let ms = u64::try_from(old.timestamp_millis()).unwrap_or(0);
    let mut made = 0_u64;
    while made < n as u64 {
        let chunk = (n as u64 - made).min(5_000);
        let writes = (made..made + chunk)
            .map(|i| {
                plantao_store::Write::InsertRun(plantao_store::NewRun {
                    id: plantao_model::RunId::from_millis(ms, i),
                    status: RunStatus::Skipped,
                    reason: Some("missed".into()),
                    ..plantao_store::NewRun::queued("history", Trigger::Scheduled, old)
                })
            })
            .collect();
        store.apply(writes).await?;
        made += chunk;
    }
    Ok(())
}

/// `n` pipelines (at least one), each due once a day at its own minute: a configuration of
/// that size that does nothing while measured.
pub(crate) fn daily_pipelines(n: usize) -> Vec<(String, String)> {
    (0..n.max(1))
        .map(|i| {
            (
                format!("p{i:04}"),
                format!(
                    "schedule = \"{} {} * * *\"\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
                    i % 60,
                    i % 24
                ),
            )
        })
        .collect()
}

pub async fn startup(pipelines: usize, runs: usize) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    let list = daily_pipelines(pipelines);
    write_config(dir.path(), "", &list)?;
    let config = dir.path().join("plantao.toml");
    let mut times = Vec::new();
    // The first start creates the database and is not counted.
    for i in 0..=runs.max(1) {
        let start = Instant::now();
        let (child, _) = serve_node(&config).await?;
        let ready = start.elapsed();
        stop_node(child).await;
        if i > 0 {
            times.push(ready);
        }
    }
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "machine: {} cores; `plantao serve` with {pipelines} pipelines, {} starts",
        cores(),
        ms.len()
    );
    println!(
        "start to serving: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        percentile(&ms, 0.5),
        ms[0],
        ms[ms.len() - 1]
    );
    Ok(())
}

/// Stops a `plantao serve` child gracefully, as a service manager would.
pub(crate) async fn stop_node(mut child: tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
    let _ = child.wait().await;
}

/// A `plantao serve` child process on `config`, once it logs that it serves.
pub(crate) async fn serve_node(
    config: &std::path::Path,
) -> Result<(tokio::process::Child, String), Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure::Usage(e.to_string()))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Usage(format!("cannot start plantao serve: {e}")))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| Failure::Usage("no stderr".into()))?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(node) = line
            .split("node=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            let node = node.to_owned();
            // Keep reading the log so the node never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, node));
        }
    }
    Err(Failure::Usage(
        "plantao serve stopped before serving".into(),
    ))
}

pub async fn failover(postgres: &str, runs: usize) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    let pipeline = "[[steps]]\nname = \"hold\"\nrun = \"sleep 60\"\n";
    let root = format!("[storage]\nurl = \"{postgres}\"\n");
    let config = write_config(
        dir.path(),
        &root,
        &[("failover-bench".into(), pipeline.into())],
    )?;
    let config_path = dir.path().join("plantao.toml");
    let store = open_store(&config).await?;
    let mut nodes = vec![
        serve_node(&config_path).await?,
        serve_node(&config_path).await?,
    ];
    let mut took = Vec::new();
    for _ in 0..runs.max(1) {
        let id = plantao_model::RunId::new();
        store
            .apply(vec![plantao_store::Write::InsertRun(
                plantao_store::NewRun {
                    id,
                    ..plantao_store::NewRun::queued(
                        "failover-bench",
                        Trigger::Manual,
                        chrono::Utc::now(),
                    )
                },
            )])
            .await?;
        let holder = loop {
            let run = store.run(id).await?;
            if let Some(node) = run.node.filter(|_| run.status == RunStatus::Running) {
                break node;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let i = nodes
            .iter()
            .position(|(_, n)| *n == holder)
            .ok_or_else(|| Failure::Usage("unknown node".into()))?;
        let (mut victim, _) = nodes.swap_remove(i);
        let killed = chrono::Utc::now();
        victim
            .kill()
            .await
            .map_err(|e| Failure::Usage(format!("cannot kill a node: {e}")))?;
        let closed = loop {
            let run = store.run(id).await?;
            if run.status.is_final() {
                break run.finished_at.unwrap_or_else(chrono::Utc::now);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        took.push((closed - killed).num_milliseconds() as f64 / 1000.0);
        nodes.push(serve_node(&config_path).await?);
    }
    for (child, _) in nodes {
        stop_node(child).await;
    }
    store.close().await;
    took.sort_by(f64::total_cmp);
    println!(
        "machine: {} cores; two nodes on PostgreSQL; {} kills of the node holding a run",
        cores(),
        took.len()
    );
    println!(
        "SIGKILL → run closed by the other node: median {:.2} s, max {:.2} s",
        percentile(&took, 0.5),
        took[took.len() - 1]
    );
    Ok(())
}

pub async fn throughput(
    runs: usize,
    parallel: usize,
    postgres: Option<&str>,
) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    let url = match postgres {
        Some(u) => u.to_owned(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let parallel = parallel.max(1);
    let root = format!("[storage]\nurl = \"{url}\"\n[engine]\nmax_concurrent_runs = {parallel}\n");
    let pipeline = format!(
        "concurrency = \"allow\"\nmax_concurrent = {parallel}\n[[steps]]\nname = \"t\"\nargv = [\"{}\"]\n",
        true_program()
    );
    let config = Arc::new(write_config(
        dir.path(),
        &root,
        &[("trivial".into(), pipeline)],
    )?);
    let store = open_store(&config).await?;
    queue_trivial(store.as_ref(), runs.max(1)).await?;
    let start = Instant::now();
    let daemon = plantao_engine::daemon::Daemon::start(
        config.clone(),
        store.clone(),
        Arc::new(plantao_engine::clock::SystemClock),
    )
    .await?;
    loop {
        let open = store.open_runs().await?;
        if open.values().all(|o| o.queued == 0 && o.running == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    daemon.shut_down().await?;
    let succeeded = store
        .runs(&plantao_store::RunFilter {
            status: Some(RunStatus::Succeeded),
            limit: 1_000_000,
            ..Default::default()
        })
        .await?
        .len();
    store.close().await;
    println!(
        "machine: {} cores; {} trivial runs (one `true` step each), {} at once, {}",
        cores(),
        runs.max(1),
        parallel.max(1),
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "{succeeded} succeeded in {:.2} s: {:.0} runs/s end to end, history persisted",
        took.as_secs_f64(),
        succeeded as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// Queues `n` runs of the `trivial` pipeline in one transaction.
pub(crate) async fn queue_trivial(
    store: &dyn plantao_store::Store,
    n: usize,
) -> Result<(), Failure> {
    let now = chrono::Utc::now();
    let writes = (0..n)
        .map(|_| {
            plantao_store::Write::InsertRun(plantao_store::NewRun::queued(
                "trivial",
                Trigger::Api,
                now,
            ))
        })
        .collect();
    store.apply(writes).await?;
    Ok(())
}
