//! `plantao checks`: each heartbeat's and probe's state, and `plantao report sla`: whether each
//! check kept its SLA, as Markdown or JSON.

use std::path::Path;

use chrono::{DateTime, Utc};
use plantao_engine::checks::uptime;

use crate::commands::{load_config, open_store_to_read};
use crate::failure::Failure;
use crate::format;

/// One line of `plantao checks`.
struct Line {
    name: String,
    kind: &'static str,
    state: String,
    due: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    problems: Vec<String>,
    zone: chrono_tz::Tz,
}

pub async fn list(config_path: &Path, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let records = store.checks().await?;
    let paused = store.paused_pipelines().await?;
    let now = Utc::now();
    let mut lines: Vec<Line> = Vec::new();
    for h in &config.heartbeats {
        let r = records.get(&h.name);
        let s = plantao_engine::checks::status(h, r, paused.contains(&h.name), now);
        lines.push(Line {
            name: h.name.clone(),
            kind: "heartbeat",
            state: s.state.as_str().to_owned(),
            due: s.due,
            last: r.and_then(|r| r.last_ping_at),
            problems: s.events.into_values().collect(),
            zone: h.timezone,
        });
    }
    // The open incidents of every check, read once: a down probe's problem is its cause.
    let mut causes: std::collections::HashMap<String, Vec<String>> = Default::default();
    if !config.probes.is_empty() {
        for i in store.incidents(None, now, 10_000).await? {
            if i.ended_at.is_none() {
                causes.entry(i.check).or_default().extend(i.cause);
            }
        }
    }
    for p in &config.probes {
        let r = records.get(&p.name);
        let state = plantao_engine::checks::prober::shown_state(r, paused.contains(&p.name));
        lines.push(Line {
            name: p.name.clone(),
            kind: "probe",
            state: state.to_owned(),
            due: None,
            last: r.and_then(|r| r.last_ping_at),
            problems: causes.remove(&p.name).unwrap_or_default(),
            zone: p.timezone,
        });
    }
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        let out: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "kind": l.kind, "state": l.state, "due": l.due,
                    "last": l.last, "problems": l.problems, "record": records.get(&l.name),
                })
            })
            .collect();
        println!("{}", serde_json::Value::from(out));
        return Ok(());
    }
    if lines.is_empty() {
        println!(
            "no checks: add [[heartbeats]] or [[probes]] to {}",
            config.file.display()
        );
        return Ok(());
    }
    let when = |t: Option<DateTime<Utc>>, zone| {
        t.map_or_else(|| "-".to_owned(), |t| format::time(t, zone))
    };
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.to_owned(),
                l.state.clone(),
                when(l.due, l.zone),
                when(l.last, l.zone),
                l.problems.join("; "),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(
            &["CHECK", "KIND", "STATE", "DUE", "LAST", "PROBLEMS"],
            &rows
        )
    );
    Ok(())
}

/// How `plantao report sla` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Json,
}

pub async fn report_sla(
    config_path: &Path,
    window: Option<&str>,
    format: ReportFormat,
    out: Option<&Path>,
) -> Result<(), Failure> {
    if let Some(w) = window
        && !uptime::WINDOWS.iter().any(|(n, ..)| *n == w)
    {
        return Err(Failure::Usage(format!(
            "--window must be 24h, 7d, 30d or 365d, not `{w}`"
        )));
    }
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let now = Utc::now();
    let report = uptime::sla(store.as_ref(), &config, window, now).await?;
    let text = match format {
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        ReportFormat::Md => markdown(&report, now),
    };
    super::report::write_out(out, &text)
}

fn markdown(report: &[uptime::Compliance], now: DateTime<Utc>) -> String {
    let mut md = format!(
        "# SLA report\n\nAs of {}.\n\n",
        now.format("%Y-%m-%d %H:%M UTC")
    );
    if report.is_empty() {
        md.push_str(
            "No check has an SLA: add `sla = { uptime = 99.9 }` to a heartbeat or a probe.\n",
        );
        return md;
    }
    md.push_str("| check | kind | window | uptime | target | p95 | target | met |\n");
    md.push_str("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |\n");
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3} %"));
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ms"));
    for c in report {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.check,
            c.kind,
            c.window,
            pct(c.uptime_percent),
            pct(c.uptime_target),
            ms(c.p95_ms),
            ms(c.p95_target_ms),
            match c.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "no data",
            }
        ));
    }
    let missed = report.iter().filter(|c| c.met == Some(false)).count();
    md.push_str(&format!(
        "\n{} of {} checks met their SLA.\n",
        report.iter().filter(|c| c.met == Some(true)).count(),
        report.len()
    ));
    if missed > 0 {
        md.push_str(&format!("{missed} missed it.\n"));
    }
    md
}
