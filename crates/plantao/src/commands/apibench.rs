//! `plantao bench api`: the store filled with history (by default 1,000,000 runs over 90 days
//! for 50 pipelines), the API and the dashboard served on loopback, and `wrk` asking four API
//! routes and every dashboard page as fast as it can (the pages with the same token, as a
//! bearer). Figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use plantao_model::{Role, RunId, RunStatus, StageStatus, Trigger};
use plantao_store::{Counter, NewRun, RunEnd, Stage, Store, Write};
use plantao_web::AppState;

use crate::commands::bench::{cores, daily_pipelines, write_config};
use crate::commands::open_store;
use crate::failure::Failure;

/// How many runs go in one transaction while seeding.
const SEED_BATCH: usize = 500;

pub struct ApiBench {
    pub runs: usize,
    pub pipelines: usize,
    pub days: u32,
    pub seconds: u32,
    pub connections: u32,
    pub postgres: Option<String>,
    /// Only the routes containing this.
    pub only: Option<String>,
    /// A SQLite file to keep: seeded when it holds no runs, used as it is otherwise.
    pub file: Option<std::path::PathBuf>,
}

pub async fn run(args: ApiBench) -> Result<(), Failure> {
    // The server's warnings and errors (a failed request says why here).
    crate::commands::serve::init_logs(crate::cli::LogFormat::Text);
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| dir.path().join("plantao.db"));
    let url = args
        .postgres
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", file.display()));
    let list = daily_pipelines(args.pipelines);
    let config = Arc::new(write_config(
        dir.path(),
        &format!("[storage]\nurl = \"{url}\"\n"),
        &list,
    )?);
    let store = open_store(&config).await?;
    let names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
    let started = Instant::now();
    let newest = store
        .runs(&plantao_store::RunFilter {
            limit: 1,
            ..Default::default()
        })
        .await?;
    let last = match newest.first() {
        Some(run) if args.file.is_some() => {
            println!("using the runs already in {}", file.display());
            run.id
        }
        _ => seed(store.as_ref(), &names, args.runs, args.days).await?,
    };
    println!(
        "machine: {} cores; {} backend; {} runs over {} days for {} pipelines, seeded in {:.1} s",
        cores(),
        if args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.runs,
        args.days,
        names.len(),
        started.elapsed().as_secs_f64()
    );
    let (created, writes) =
        plantao_web::mint("bench", &format!("bench-{}", RunId::new()), Role::Viewer)
            .map_err(Failure::Usage)?;
    store.apply(writes).await?;
    let served = Served::start(store.clone(), config.clone()).await?;
    let address = served.address;
    let one = &names[names.len() / 2];
    let routes = [
        format!("/api/metrics/today?pipeline={one}"),
        format!("/api/metrics/history?pipeline={one}&days=7"),
        "/api/runs?limit=50".to_owned(),
        format!("/api/runs/{last}"),
        "/".to_owned(),
        "/pipelines".to_owned(),
        format!("/pipelines/{one}"),
        format!("/runs/{last}"),
        "/checks".to_owned(),
        "/alerts".to_owned(),
        "/settings".to_owned(),
    ];
    println!(
        "wrk, {} connections, {} s per route, {} threads:",
        args.connections,
        args.seconds,
        args.connections.clamp(1, 2)
    );
    println!("| route | bytes | requests/s | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let client = plantao_engine::http_client();
    for route in routes
        .into_iter()
        .filter(|r| args.only.as_ref().is_none_or(|o| r.contains(o.as_str())))
    {
        let url = format!("http://{address}{route}");
        let bytes = client
            .get(&url)
            .bearer_auth(&created.token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Failure::Usage(format!("{route}: {e}")))?
            .bytes()
            .await
            .map_err(|e| Failure::Usage(format!("{route}: {e}")))?
            .len();
        let figures = wrk(&Load {
            url,
            token: Some(&created.token),
            connections: args.connections,
            seconds: args.seconds,
            script: None,
        })
        .await?;
        println!(
            "| `{route}` | {bytes} | {:.0} | {:.2} | {:.2} |",
            figures.rate, figures.p50_ms, figures.p99_ms
        );
    }
    served.stop().await;
    store.close().await;
    Ok(())
}

/// The API served on a loopback port of the system's choosing, without a daemon.
pub(crate) struct Served {
    pub address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub async fn start(
        store: Arc<dyn Store>,
        config: Arc<plantao_config::Config>,
    ) -> Result<Served, Failure> {
        let (_tx, rx) = tokio::sync::watch::channel(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Failure::Usage(format!("cannot listen on loopback: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(plantao_web::launch(
            listener,
            AppState::new(store, rx, None),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Served {
            address,
            stop,
            server,
        })
    }

    /// Stops serving once the requests in flight are answered.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// Runs of `names` spread evenly over the last `days` days, each with one stage and one
/// counter, ended as their transaction commits (so the rollups hold them); returns the id of
/// the newest.
pub(crate) async fn seed(
    store: &dyn Store,
    names: &[String],
    runs: usize,
    days: u32,
) -> Result<RunId, Failure> {
    let now = Utc::now();
    let span_ms = i64::from(days.max(1)) * 86_400_000;
    let step_ms = (span_ms / i64::try_from(runs.max(1)).unwrap_or(1)).max(1);
    let start = now - Duration::milliseconds(span_ms);
    let mut last = RunId::new();
    let mut i = 0;
    while i < runs {
        let mut writes = Vec::with_capacity(SEED_BATCH * 4);
        for k in i..(i + SEED_BATCH).min(runs) {
            let at = start + Duration::milliseconds(step_ms * i64::try_from(k).unwrap_or(0));
            let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
            let id = RunId::from_millis(millis, 0);
            let pipeline = &names[k % names.len()];
            let failed = k % 20 == 0;
            let took = Duration::milliseconds(200 + i64::try_from(k % 997).unwrap_or(0) * 13);
            writes.push(Write::InsertRun(NewRun {
                id,
                status: RunStatus::Running,
                started_at: Some(at),
                ..NewRun::queued(pipeline, Trigger::Scheduled, at)
            }));
            writes.push(Write::PutStage(Stage {
                run_id: id,
                step: "s".into(),
                attempt: 1,
                status: if failed {
                    StageStatus::Failed
                } else {
                    StageStatus::Succeeded
                },
                started_at: at,
                finished_at: Some(at + took),
                duration_ms: Some(took.num_milliseconds()),
                exit_code: Some(i32::from(failed)),
                error: None,
                log: "rows read: 120\nrows written: 118\n".into(),
                cpu_user_ms: Some(12),
                cpu_system_ms: Some(3),
                peak_rss_kb: Some(20_480),
            }));
            writes.push(Write::PutCounter(Counter {
                run_id: id,
                step: "s".into(),
                name: "rows".into(),
                value: 118.0,
            }));
            writes.push(Write::FinishRun(RunEnd {
                id,
                status: if failed {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                },
                at: at + took,
                reason: None,
                error_stage: failed.then(|| "s".to_owned()),
                error_message: None,
            }));
            last = id;
        }
        store.apply(writes).await?;
        i += SEED_BATCH;
    }
    Ok(last)
}

/// What `wrk` measured.
pub(crate) struct Figures {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests it completed.
    pub requests: u64,
}

/// How `wrk` loads a URL: with a bearer token, `connections` open for `seconds`, and a Lua
/// script that makes each request, when given.
pub(crate) struct Load<'a> {
    pub url: String,
    pub token: Option<&'a str>,
    pub connections: u32,
    pub seconds: u32,
    pub script: Option<&'a std::path::Path>,
}

pub(crate) async fn wrk(load: &Load<'_>) -> Result<Figures, Failure> {
    let url = load.url.as_str();
    let mut command = tokio::process::Command::new("wrk");
    // wrk needs a connection per thread: one connection measures a page alone.
    command.args([
        &format!("-t{}", load.connections.clamp(1, 2)),
        &format!("-c{}", load.connections),
        &format!("-d{}s", load.seconds.max(1)),
        "--latency",
    ]);
    if let Some(token) = load.token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(script) = load.script {
        command.arg("-s").arg(script);
    }
    let out = command.arg(url).output().await.map_err(|e| {
        Failure::Usage(format!(
            "cannot start wrk ({e}): install it first (Debian: apt-get install wrk)"
        ))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("Non-2xx") {
        return Err(Failure::Usage(format!(
            "wrk on {url} did not get only 2xx answers:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Failure::Usage(format!("no rate in wrk's answer:\n{text}")))?;
    let percentile = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| millis(v.trim()))
            .ok_or_else(|| Failure::Usage(format!("no {p} latency in wrk's answer:\n{text}")))
    };
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .ok_or_else(|| Failure::Usage(format!("no request count in wrk's answer:\n{text}")))?;
    Ok(Figures {
        rate,
        p50_ms: percentile("50%")?,
        p99_ms: percentile("99%")?,
        requests,
    })
}

/// wrk's durations: `812.00us`, `1.25ms`, `2.01s`.
fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        _ => return None,
    })
}
