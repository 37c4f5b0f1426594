//! `plantao bench probes`: a `plantao serve` process with many HTTP probes against a loopback
//! server (run by this command), its CPU share and resident memory over a measured stretch.
//! Figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;

use crate::commands::bench::{cores, serve_node, stop_node, write_config};
use crate::commands::memory::{resident_kib, status_kib};
use crate::commands::open_store_to_read;
use crate::failure::Failure;

pub struct ProbeBench {
    pub probes: usize,
    pub every: u32,
    pub seconds: u32,
}

pub async fn run(args: ProbeBench) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::Usage(e.to_string());
    let hits = Arc::new(AtomicU64::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/health",
        get(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { r#"{"status":"ok"}"# }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(fail)?;
    let target = listener.local_addr().map_err(fail)?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().map_err(fail)?;
    let n = args.probes.max(1);
    let mut root = String::new();
    for i in 0..n {
        root.push_str(&format!(
            "[[probes]]\nname = \"p{i}\"\nevery = \"{}s\"\nhttp = {{ url = \"http://{target}/health\" }}\nexpect = [\"status == 200\", \"json.status == 'ok'\"]\n",
            args.every.max(1)
        ));
    }
    let config = write_config(dir.path(), &root, &[])?;
    let (child, _) = serve_node(&dir.path().join("plantao.toml")).await?;
    let pid = child
        .id()
        .ok_or_else(|| Failure::Usage("plantao serve has no pid".into()))?;
    // One whole interval first: every probe has run once, its state recorded.
    tokio::time::sleep(Duration::from_secs(u64::from(args.every.max(1)) + 2)).await;
    let (cpu0, hits0, t0) = (
        cpu_ticks(pid)?,
        hits.load(Ordering::Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(u64::from(args.seconds.max(1)))).await;
    let (cpu1, hits1, elapsed) = (cpu_ticks(pid)?, hits.load(Ordering::Relaxed), t0.elapsed());
    let rss = resident_kib(pid)?;
    let peak = status_kib(pid, "VmHWM:")?;
    stop_node(child).await;
    let store = open_store_to_read(&config).await?;
    let up = store
        .checks()
        .await?
        .values()
        .filter(|c| c.state.as_deref() == Some("up"))
        .count();
    store.close().await;
    // Clock ticks are 1/100 s on Linux.
    #[allow(clippy::cast_precision_loss)]
    let share = (cpu1 - cpu0) as f64 / 100.0 / elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = (hits1 - hits0) as f64 / elapsed.as_secs_f64();
    println!(
        "machine: {} cores; `plantao serve` with {n} HTTP probes every {} s against a loopback server, SQLite",
        cores(),
        args.every
    );
    #[allow(clippy::cast_precision_loss)]
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "over {:.0} s: {rate:.0} checks/s, CPU {:.1} % of one core, resident {:.1} MiB (peak {:.1} MiB); {up} of {n} probes up",
        elapsed.as_secs_f64(),
        share * 100.0,
        mib(rss),
        mib(peak)
    );
    Ok(())
}

/// User and system CPU time of process `pid`, in clock ticks (/proc/PID/stat, fields 14–15).
fn cpu_ticks(pid: u32) -> Result<u64, Failure> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Failure::Usage(format!("cannot read process {pid}'s CPU time: {e}")))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Ok(get(11) + get(12))
}
