//! `plantao bench memory`: the resident memory of a `plantao serve` process, idle and after
//! many runs. Figures go to docs/benchmarks.md.

use std::time::Duration;

use crate::commands::bench::{
    cores, daily_pipelines, queue_trivial, serve_node, stop_node, true_program, write_config,
};
use crate::commands::open_store;
use crate::failure::Failure;

/// Resident memory of a `plantao serve` process: idle with `pipelines` pipelines, then after it
/// executed `runs` trivial runs (queued in batches), idle again.
pub async fn run(pipelines: usize, runs: usize) -> Result<(), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    let mut list = daily_pipelines(pipelines);
    list.push((
        "trivial".into(),
        format!(
            "concurrency = \"allow\"\nmax_concurrent = 8\n[[steps]]\nname = \"t\"\nargv = [\"{}\"]\n",
            true_program()
        ),
    ));
    let config = write_config(dir.path(), "", &list)?;
    let (child, _) = serve_node(&dir.path().join("plantao.toml")).await?;
    let pid = child
        .id()
        .ok_or_else(|| Failure::Usage("plantao serve has no pid".into()))?;
    let store = open_store(&config).await?;
    // Settle: the first lease renewals, the first sweeps.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = resident_kib(pid)?;
    println!(
        "machine: {} cores; `plantao serve` with {} pipelines, SQLite",
        cores(),
        pipelines.max(1) + 1
    );
    println!("idle: {}", resident(pid)?);
    let batch = 5_000.min(runs.max(1));
    let mut done = 0;
    while done < runs.max(1) {
        let n = batch.min(runs.max(1) - done);
        queue_trivial(store.as_ref(), n).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if store.open_runs().await?.is_empty() {
                break;
            }
        }
        done += n;
        println!("after {done} runs: {}", resident(pid)?);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = resident_kib(pid)?;
    let peak = status_kib(pid, "VmHWM:")?;
    let shown = resident(pid)?;
    stop_node(child).await;
    store.close().await;
    println!(
        "idle again after {done} runs: {shown} ({:+.1} % from idle); peak {:.1} MiB",
        (after as f64 - idle as f64) / idle as f64 * 100.0,
        peak as f64 / 1024.0
    );
    Ok(())
}

pub(crate) fn resident_kib(pid: u32) -> Result<u64, Failure> {
    status_kib(pid, "VmRSS:")
}

/// Resident memory, and how much of it is the process's own (heap, stacks) and how much its
/// program's and libraries' pages read from disk.
fn resident(pid: u32) -> Result<String, Failure> {
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(format!(
        "{:.1} MiB resident ({:.1} MiB anonymous, {:.1} MiB of program and libraries)",
        mib(resident_kib(pid)?),
        mib(status_kib(pid, "RssAnon:")?),
        mib(status_kib(pid, "RssFile:")?)
    ))
}

/// A `kB` line of /proc/PID/status.
pub(crate) fn status_kib(pid: u32, key: &str) -> Result<u64, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| Failure::Usage(format!("cannot read the memory of process {pid}: {e}")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| Failure::Usage(format!("no {key} in /proc/{pid}/status")))
}
