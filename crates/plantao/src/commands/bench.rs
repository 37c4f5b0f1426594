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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn true_program() -> &'static str {
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
    let pipelines = folder.join("pipelines");
    std::fs::create_dir_all(&pipelines).map_err(|e| Failure::Usage(e.to_string()))?;
    std::fs::write(
        folder.join("plantao.toml"),
        format!("[storage]\nurl = \"{url}\"\n"),
    )
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let mut pipeline = String::new();
    for i in 0..steps {
        let _ = write!(
            pipeline,
            "[[steps]]\nname = \"s{i}\"\nargv = [\"{}\"]\n\n",
            true_program()
        );
    }
    std::fs::write(pipelines.join("bench.toml"), pipeline)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let config = Arc::new(load_config(&folder.join("plantao.toml"))?);
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
