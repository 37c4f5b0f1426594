//! `plantao bench pings`: heartbeats pinged over loopback by `wrk` as fast as it can, each ping
//! a success written to the store (a run, its stage, the check's counts, the rollups), then the
//! store read back to show every ping that got an answer was persisted. Figures go to
//! docs/benchmarks.md.

use std::sync::Arc;

use crate::commands::apibench::{Load, Served, wrk};
use crate::commands::bench::{cores, write_config};
use crate::commands::open_store;
use crate::failure::Failure;

const KEY: &str = "bench-ping-key-0123456789";

pub struct PingBench {
    pub checks: usize,
    pub seconds: u32,
    pub connections: u32,
    pub postgres: Option<String>,
}

pub async fn run(args: PingBench) -> Result<(), Failure> {
    crate::commands::serve::init_logs(crate::cli::LogFormat::Text);
    let dir = tempfile::tempdir().map_err(|e| Failure::Usage(e.to_string()))?;
    let url = args
        .postgres
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("plantao.db").display()));
    let n = args.checks.max(1);
    let mut root = format!("[storage]\nurl = \"{url}\"\n[pings]\nkey = \"{KEY}\"\n");
    for i in 0..n {
        root.push_str(&format!(
            "[[heartbeats]]\nname = \"hb-{i}\"\nperiod = \"1h\"\n"
        ));
    }
    let config = Arc::new(write_config(dir.path(), &root, &[])?);
    let store = open_store(&config).await?;
    let before: i64 = store.checks().await?.values().map(|c| c.pings).sum();
    let served = Served::start(store.clone(), config.clone()).await?;
    let address = served.address;
    // Each request pings the next heartbeat in turn.
    let script = dir.path().join("pings.lua");
    std::fs::write(
        &script,
        format!(
            "local i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", \"/ping/{KEY}/hb-\" .. (i % {n}))\nend\n"
        ),
    )
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let figures = wrk(&Load {
        url: format!("http://{address}/"),
        token: None,
        connections: args.connections,
        seconds: args.seconds,
        script: Some(&script),
    })
    .await?;
    served.stop().await;
    let after: i64 = store.checks().await?.values().map(|c| c.pings).sum();
    store.close().await;
    let persisted = u64::try_from(after - before).unwrap_or(0);
    println!(
        "machine: {} cores; {} backend; {n} heartbeats pinged in turn by wrk (2 threads, {} connections, {} s)",
        cores(),
        if args.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        args.connections,
        args.seconds
    );
    println!(
        "pings: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms; answered {}, persisted {persisted}",
        figures.rate, figures.p50_ms, figures.p99_ms, figures.requests
    );
    if persisted < figures.requests {
        return Err(Failure::Usage(format!(
            "{} pings were answered but only {persisted} are in the store",
            figures.requests
        )));
    }
    Ok(())
}
