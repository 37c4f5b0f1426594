//! `plantao stats`: what each pipeline's runs add up to today, over the last 24 hours and the
//! last 7 days — read from the rollups, so it answers at once and still answers after the raw
//! runs were pruned.

use std::path::Path;

use chrono::Utc;
use plantao_store::{Summary, Window};

use crate::commands::{find_pipeline, load_config, open_store_to_read};
use crate::failure::Failure;
use crate::format;

const WINDOWS: [(Window, &str); 3] = [
    (Window::Today, "today"),
    (Window::Last24h, "24h"),
    (Window::Last7d, "7d"),
];

pub async fn run(config_path: &Path, pipeline: Option<&str>, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let pipelines = match pipeline {
        Some(name) => vec![find_pipeline(&config, name)?],
        None => config.pipelines.iter().collect(),
    };
    let store = open_store_to_read(&config).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut out = serde_json::Map::new();
    for p in &pipelines {
        let mut windows = serde_json::Map::new();
        for (window, label) in WINDOWS {
            let s = store.summary(&p.name, window, now, p.timezone).await?;
            let metrics = plantao_engine::derived_metrics(p, s.counter_sums());
            if json {
                windows.insert(label.into(), window_json(&s, &metrics));
                continue;
            }
            rows.push(row(&p.name, label, &s));
            if pipeline.is_some() {
                notes.extend(details(label, &s, &metrics));
            }
        }
        out.insert(p.name.clone(), windows.into());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!(
            "{}",
            format::table(
                &[
                    "pipeline", "window", "runs", "ok", "failed", "skipped", "success", "p50",
                    "p95", "max"
                ],
                &rows
            )
        );
        if !notes.is_empty() {
            println!("\n{}", notes.join("\n"));
        }
    }
    Ok(())
}

fn row(pipeline: &str, window: &str, s: &Summary) -> Vec<String> {
    let ms = |v: Option<f64>| {
        // Durations are whole milliseconds; the estimate only adds sub-millisecond noise.
        #[allow(clippy::cast_possible_truncation)]
        v.map_or_else(|| "-".into(), |v| format::duration_ms(v.round() as i64))
    };
    vec![
        pipeline.into(),
        window.into(),
        s.runs.to_string(),
        s.count("succeeded").to_string(),
        s.failed().to_string(),
        s.count("skipped").to_string(),
        s.success_rate()
            .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
        ms(s.durations.quantile(0.5)),
        ms(s.durations.quantile(0.95)),
        ms(s.duration_ms_max.map(|v| v as f64)),
    ]
}

/// A window's counter sums and derived metrics, one line each, below the table.
fn details(
    window: &str,
    s: &Summary,
    metrics: &[(String, plantao_model::ExprValue)],
) -> Vec<String> {
    let mut lines = Vec::new();
    let counters: Vec<(String, f64)> = s.counters.iter().map(|(k, t)| (k.clone(), t.sum)).collect();
    if !counters.is_empty() {
        lines.push(format!(
            "{window:>5} counters: {}",
            format::counters(&counters)
        ));
    }
    if !metrics.is_empty() && s.runs > 0 {
        let shown: Vec<String> = metrics
            .iter()
            .map(|(name, v)| format!("{name}={}", format::metric(v)))
            .collect();
        lines.push(format!("{window:>5} metrics:  {}", shown.join(" ")));
    }
    lines
}

fn window_json(s: &Summary, metrics: &[(String, plantao_model::ExprValue)]) -> serde_json::Value {
    serde_json::json!({
        "runs": s.runs,
        "by_status": s.by_status,
        "by_trigger": s.by_trigger,
        "success_rate": s.success_rate(),
        "duration_ms": {
            "mean": s.mean_duration_ms(),
            "p50": s.durations.quantile(0.5),
            "p95": s.durations.quantile(0.95),
            "p99": s.durations.quantile(0.99),
            "max": s.duration_ms_max,
        },
        "cpu_ms": s.cpu_ms,
        "counters": s.counters,
        "metrics": metrics.iter().map(|(name, v)| (name.clone(), v.to_json())).collect::<serde_json::Map<_, _>>(),
    })
}
