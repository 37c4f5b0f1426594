//! `plantao trigger`, `pause`, `resume` and `next`: talking to the daemon through the store.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use plantao_engine::scheduler::Timing;
use plantao_engine::{Plan, RunRequest};
use plantao_model::Trigger;
use plantao_store::{StoreError, Write};

use crate::commands::{find_pipeline, load_config, open_store};
use crate::failure::Failure;

pub async fn trigger(
    config_path: &Path,
    pipeline: &str,
    params: Vec<(String, String)>,
    force: bool,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let p = find_pipeline(&config, pipeline)?;
    let request = RunRequest {
        params: params.into_iter().collect::<BTreeMap<_, _>>(),
        force,
        ..Default::default()
    };
    let plan = Plan::new(p, &request).map_err(|e| Failure::Usage(e.to_string()))?;
    let store = open_store(&config).await?;
    let run = plan.queued(Trigger::Manual, Utc::now());
    let id = run.id;
    store
        .apply(vec![
            Write::InsertRun(run),
            Write::audit(CLI_ACTOR, "run.trigger", &p.name, Some(format!("run {id}"))),
        ])
        .await?;
    println!(
        "queued run {id} of {}: `plantao show {id}` follows it",
        p.name
    );
    Ok(())
}

/// What commands on this machine are recorded as in the audit log.
pub const CLI_ACTOR: &str = "cli";

/// Pauses or resumes a pipeline, or a check (a heartbeat or a probe) by its name.
pub async fn set_paused(config_path: &Path, pipeline: &str, paused: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let is_check = config.heartbeat(pipeline).is_some() || config.probe(pipeline).is_some();
    let name = if is_check {
        pipeline.to_owned()
    } else {
        find_pipeline(&config, pipeline)?.name.clone()
    };
    let what = if is_check { "check" } else { "pipeline" };
    let action = format!("{what}.{}", if paused { "pause" } else { "resume" });
    let store = open_store(&config).await?;
    match store
        .apply(vec![
            Write::SetPaused {
                pipeline: name.clone(),
                paused,
            },
            Write::audit(CLI_ACTOR, &action, &name, None),
        ])
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound(what)) => {
            return Err(Failure::Missing(format!("{what} not found")));
        }
        Err(e) => return Err(e.into()),
    }
    match (paused, is_check) {
        (true, false) => println!(
            "paused {name}: its ticks are recorded as skipped (reason `paused`) until `plantao resume {name}`"
        ),
        (true, true) => {
            println!("paused check {name}: nothing fires for it until `plantao resume {name}`")
        }
        (false, _) => println!("resumed {name}"),
    }
    Ok(())
}

pub async fn next(config_path: &Path, pipeline: &str, count: usize) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let p = find_pipeline(&config, pipeline)?;
    let timing = Timing::of(p);
    if !timing.is_scheduled() {
        println!("{} has no schedule: it runs when triggered", p.name);
        return Ok(());
    }
    let store = open_store(&config).await?;
    if store
        .pipelines()
        .await?
        .iter()
        .any(|s| s.record.name == p.name && s.paused)
    {
        println!(
            "{} is paused: none of these runs until `plantao resume {}`",
            p.name, p.name
        );
    }
    let (ticks, passed_over) =
        timing.upcoming(&p.name, &config.maintenance, Utc::now(), count.max(1));
    for next in ticks {
        println!(
            "{}   {}",
            next.with_timezone(&p.timezone)
                .format("%Y-%m-%d %H:%M:%S %Z"),
            next.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    if passed_over > 0 {
        println!("({passed_over} ticks in maintenance windows are not listed)");
    }
    Ok(())
}
