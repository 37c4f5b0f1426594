//! `plantao runs`, `plantao show`, `plantao logs`: finding runs again.

use std::collections::BTreeMap;
use std::path::Path;

use chrono_tz::Tz;
use plantao_model::{ExprValue, RunId};
use plantao_store::{RunDetail, RunFilter};

use crate::cli::RunsArgs;
use crate::commands::{load_config, open_store_to_read};
use crate::failure::Failure;
use crate::format;

/// How many lines of each stage's log `show` prints.
const TAIL_LINES: usize = 10;

pub async fn list(config_path: &Path, args: RunsArgs) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let runs = store
        .runs(&RunFilter {
            pipeline: args.pipeline.clone(),
            status: args.status,
            limit: args.limit.clamp(1, 10_000),
            ..RunFilter::default()
        })
        .await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_default()
        );
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs recorded yet: `plantao run PIPELINE` runs one");
        return Ok(());
    }
    let zone = config.defaults.timezone;
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.pipeline.clone(),
                r.trigger.to_string(),
                r.status.to_string(),
                format::time(
                    r.scheduled_for.or(r.started_at).unwrap_or(r.queued_at),
                    zone,
                ),
                r.duration_ms.map(format::duration_ms).unwrap_or_default(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "run",
        "pipeline",
        "trigger",
        "status",
        "due or started",
        "duration",
        "reason",
    ];
    println!("{}", format::table(&header, &rows));
    Ok(())
}

fn parse_id(text: &str) -> Result<RunId, Failure> {
    text.parse()
        .map_err(|e: plantao_model::ParseRunIdError| Failure::Usage(e.to_string()))
}

/// A run with its stages, counters, outputs, findings and derived metrics, as `--json` prints
/// it.
pub fn print_detail_json(detail: &RunDetail, metrics: &[(String, ExprValue)]) {
    let metrics: BTreeMap<&str, serde_json::Value> = metrics
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_json()))
        .collect();
    let out = serde_json::json!({ "run": detail.run, "stages": detail.stages, "counters": detail.counters,
        "outputs": detail.outputs, "inputs": detail.inputs, "findings": detail.findings,
        "metrics": metrics });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

pub async fn show(config_path: &Path, run: &str, json: bool) -> Result<(), Failure> {
    let id = parse_id(run)?;
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let detail = store.run_detail(id).await.map_err(not_found)?;
    let metrics = plantao_engine::run_metrics(&config, &detail.run.pipeline, &detail.counters);
    if json {
        print_detail_json(&detail, &metrics);
        return Ok(());
    }
    let zone: Tz = config
        .pipeline(&detail.run.pipeline)
        .map_or(config.defaults.timezone, |p| p.timezone);
    let r = &detail.run;
    println!("run {}  {}  {}", r.id, r.pipeline, r.status);
    println!("  trigger   {}", r.trigger);
    if let Some(p) = r.period {
        println!("  period    {} to {}", p.start, p.end);
    }
    if r.force {
        println!("  forced    runs even with unchanged inputs");
    }
    if let Some(s) = r.scheduled_for {
        println!("  scheduled {}", format::time(s, zone));
    }
    println!("  queued    {}", format::time(r.queued_at, zone));
    if let Some(s) = r.started_at {
        println!("  started   {}", format::time(s, zone));
    }
    if let Some(f) = r.finished_at {
        println!("  finished  {}", format::time(f, zone));
    }
    if let Some(d) = r.duration_ms {
        println!("  duration  {}", format::duration_ms(d));
    }
    if let Some(lag) = r.lag_ms {
        println!("  lag       {lag} ms from the tick to its first step");
    }
    if let Some(parent) = r.parent {
        println!("  parent    {parent}");
    }
    if let Some(n) = &r.node {
        println!("  node      {n}");
    }
    for (k, v) in &r.params {
        println!("  param     {k}={v}");
    }
    if let Some(reason) = &r.reason {
        println!("  reason    {reason}");
    }
    if let (Some(stage), Some(message)) = (&r.error_stage, &r.error_message) {
        println!("  error     {stage}: {message}");
    }
    println!();
    let rows: Vec<Vec<String>> = detail
        .stages
        .iter()
        .map(|s| {
            let counters: Vec<(String, f64)> = detail
                .counters
                .iter()
                .filter(|c| c.step == s.step)
                .map(|c| (c.name.clone(), c.value))
                .collect();
            vec![
                s.step.clone(),
                s.attempt.to_string(),
                s.status.to_string(),
                s.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                s.duration_ms.map(format::duration_ms).unwrap_or_default(),
                match (s.cpu_user_ms, s.cpu_system_ms) {
                    (Some(u), Some(sy)) => format!("{u}+{sy} ms"),
                    _ => String::new(),
                },
                s.peak_rss_kb
                    .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                    .unwrap_or_default(),
                format::counters(&counters),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(
            &[
                "stage",
                "attempt",
                "status",
                "exit",
                "duration",
                "cpu user+sys",
                "peak rss",
                "counters"
            ],
            &rows
        )
    );
    if !metrics.is_empty() {
        let m: Vec<String> = metrics
            .iter()
            .map(|(k, v)| format!("{k}={}", format::metric(v)))
            .collect();
        println!("\nmetrics: {}", m.join(" "));
    }
    let text_outputs: Vec<String> = detail
        .outputs
        .iter()
        .filter(|o| {
            !detail
                .counters
                .iter()
                .any(|c| c.step == o.step && c.name == o.key)
        })
        .map(|o| format!("{}.{}={}", o.step, o.key, o.value))
        .collect();
    if !text_outputs.is_empty() {
        println!("outputs: {}", text_outputs.join(" "));
    }
    if !detail.inputs.is_empty() {
        println!("inputs:");
        for i in &detail.inputs {
            println!("  {}  {}  {} bytes", i.sha256, i.path, i.bytes);
        }
    }
    if !detail.findings.is_empty() {
        println!("findings:");
        for f in &detail.findings {
            println!(
                "  {:<8} {} ({}, attempt {}, line {}): {}",
                f.severity, f.pattern, f.step, f.attempt, f.line, f.excerpt
            );
        }
    }
    for s in &detail.stages {
        let error = s
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        println!(
            "\n── {} (attempt {}, {}{error})",
            s.step, s.attempt, s.status
        );
        let lines: Vec<&str> = s.log.lines().collect();
        let from = lines.len().saturating_sub(TAIL_LINES);
        if from > 0 {
            println!(
                "   … {from} earlier lines: plantao logs {} --stage {}",
                r.id, s.step
            );
        }
        for line in &lines[from..] {
            println!("   {line}");
        }
    }
    Ok(())
}

pub async fn logs(config_path: &Path, run: &str, stage: Option<&str>) -> Result<(), Failure> {
    let id = parse_id(run)?;
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let detail = store.run_detail(id).await.map_err(not_found)?;
    let stages: Vec<_> = detail
        .stages
        .iter()
        .filter(|s| stage.is_none_or(|name| s.step == name))
        .collect();
    if stages.is_empty()
        && let Some(name) = stage
    {
        let known: Vec<&str> = detail.stages.iter().map(|s| s.step.as_str()).collect();
        return Err(Failure::Usage(format!(
            "run {id} has no stage `{name}`; its stages are: {}",
            known.join(", ")
        )));
    }
    for s in stages {
        println!("== {} (attempt {}, {}) ==", s.step, s.attempt, s.status);
        print!("{}", s.log);
        if !s.log.is_empty() && !s.log.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

/// Prints a run's logs as they grow, until the run has ended; exits like `plantao run` would
/// for the run's final status.
pub async fn follow_logs(
    config_path: &Path,
    run: &str,
    stage: Option<String>,
) -> Result<(), Failure> {
    use plantao_engine::follow::{LogFollower, Piece};
    use std::io::Write as _;
    let id = parse_id(run)?;
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let mut follower = LogFollower::new(stage);
    let mut current: Option<(String, u32)> = None;
    loop {
        let detail = store.run_detail(id).await.map_err(not_found)?;
        let mut out = std::io::stdout().lock();
        for piece in follower.advance(&detail.stages) {
            match piece {
                Piece::Text {
                    step,
                    attempt,
                    text,
                }
                | Piece::Restart {
                    step,
                    attempt,
                    text,
                } => {
                    let here = Some((step.clone(), attempt));
                    if current != here {
                        let _ = writeln!(out, "== {step} (attempt {attempt}) ==");
                        current = here;
                    }
                    let _ = write!(out, "{text}");
                }
                Piece::Ended {
                    step,
                    attempt,
                    status,
                } => {
                    let _ = writeln!(out, "\n== {step} (attempt {attempt}) ended {status} ==");
                    current = None;
                }
            }
        }
        let _ = out.flush();
        drop(out);
        if detail.run.status.is_final() {
            println!("run {id} ended {}", detail.run.status);
            return match detail.run.status {
                plantao_model::RunStatus::Succeeded => Ok(()),
                other => Err(Failure::Ended(other)),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn not_found(e: plantao_store::StoreError) -> Failure {
    match e {
        plantao_store::StoreError::NotFound(what) => Failure::Missing(format!(
            "{what} not found: `plantao runs` lists the recorded runs"
        )),
        other => Failure::Store(other),
    }
}
