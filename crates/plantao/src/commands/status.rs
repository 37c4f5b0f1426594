//! `plantao status`: what an operator checks first in the morning — the nodes and their leases,
//! what runs where, the queue, and each pipeline's next tick and last run.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use plantao_engine::scheduler::Timing;
use plantao_model::RunStatus;
use plantao_store::RunFilter;

use crate::commands::{load_config, open_store_to_read};
use crate::failure::Failure;
use crate::format;

pub async fn run(config_path: &Path, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let now = Utc::now();
    let nodes = store.nodes().await?;
    let open = store.open_runs().await?;
    let running = store
        .runs(&RunFilter {
            status: Some(RunStatus::Running),
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for r in &running {
        *per_node
            .entry(r.node.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let paused: Vec<String> = store
        .pipelines()
        .await?
        .into_iter()
        .filter(|p| p.paused)
        .map(|p| p.record.name)
        .collect();
    let mut pipelines = Vec::new();
    let mut latest = store.latest_runs().await?;
    for p in &config.pipelines {
        let last = latest.remove(&p.name);
        let next = Timing::of(p).next_after(now);
        pipelines.push((p, paused.contains(&p.name), next, last));
    }
    let queued: u32 = open.values().map(|o| o.queued).sum();
    if json {
        let out = serde_json::json!({
            "nodes": nodes.iter().map(|n| serde_json::json!({
                "node": n, "alive": n.expires_at > now, "running": per_node.get(&n.id).copied().unwrap_or(0),
            })).collect::<Vec<_>>(),
            "queued": queued,
            "running": running.len(),
            "pipelines": pipelines.iter().map(|(p, paused, next, last)| serde_json::json!({
                "name": p.name, "paused": paused, "next_tick": next, "last_run": last,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    let ago = |t: chrono::DateTime<Utc>| format::duration_ms((now - t).num_milliseconds());
    if nodes.is_empty() {
        println!("nodes: none is running (start one with `plantao serve`)");
    } else {
        let rows: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                vec![
                    n.id.clone(),
                    n.kind.clone(),
                    format!("{}:{}", n.host, n.pid),
                    ago(n.started_at),
                    format!(
                        "{} ago{}",
                        ago(n.renewed_at),
                        if n.expires_at < now { " (expired)" } else { "" }
                    ),
                    per_node.get(&n.id).copied().unwrap_or(0).to_string(),
                ]
            })
            .collect();
        println!(
            "{}",
            format::table(
                &["node", "kind", "host:pid", "up", "renewed", "running"],
                &rows
            )
        );
    }
    println!("\nqueue: {queued} queued, {} running\n", running.len());
    let zone = config.defaults.timezone;
    let rows: Vec<Vec<String>> = pipelines
        .iter()
        .map(|(p, paused, next, last)| {
            vec![
                p.name.clone(),
                if *paused {
                    "paused".into()
                } else {
                    "active".into()
                },
                next.map(|t| format::time(t, p.timezone))
                    .unwrap_or_else(|| "on demand".into()),
                last.as_ref()
                    .map(|r| {
                        format!(
                            "{} at {}",
                            r.status,
                            format::time(r.started_at.unwrap_or(r.queued_at), zone)
                        )
                    })
                    .unwrap_or_else(|| "none yet".into()),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(&["pipeline", "state", "next tick", "last run"], &rows)
    );
    Ok(())
}
