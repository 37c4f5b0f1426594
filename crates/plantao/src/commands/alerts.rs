//! `plantao alerts` (active, history, ack, dismiss, check) and `plantao channel test`.

use std::path::Path;

use chrono::Utc;
use plantao_engine::alerts::{self, Evaluation, Finding, Verdict};
use plantao_model::AlertState;
use plantao_store::{Alert, Outcome, StoreError};

use crate::commands::control::CLI_ACTOR;
use crate::commands::{load_config, open_store, open_store_to_read};
use crate::failure::Failure;

pub async fn active(config_path: &Path, dismissed: bool, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let mut open = store.open_alerts().await?;
    open.retain(|a| dismissed || !a.dismissed);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&open).unwrap_or_default()
        );
    } else if open.is_empty() {
        println!("no active alerts");
    } else {
        for a in &open {
            print_alert(a);
        }
    }
    Ok(())
}

pub async fn history(config_path: &Path, limit: u32, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let all = store.alert_history(None, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    } else if all.is_empty() {
        println!("no alerts yet");
    } else {
        for a in &all {
            print_alert(a);
        }
    }
    Ok(())
}

fn print_alert(a: &Alert) {
    let state = match (a.state, a.acknowledged_by.as_deref(), a.dismissed) {
        (AlertState::Resolved, ..) => "resolved".to_owned(),
        (_, Some(_), true) => format!("{} (dismissed)", a.state),
        (_, Some(by), false) => format!("{} (acknowledged by {by})", a.state),
        (state, None, _) => state.to_string(),
    };
    let state = match (&a.suppressed, a.state) {
        (Some(why), AlertState::Firing) => format!("{state}, {why}"),
        _ => state,
    };
    let since = a.fired_at.unwrap_or(a.started_at);
    println!(
        "{}  {:<8} {:<28} {}  since {}",
        a.id,
        a.severity.as_str(),
        a.rule,
        state,
        since.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("    {}", a.message);
    if let Some(runbook) = &a.runbook {
        println!("    suggested action: {runbook}");
    }
}

pub async fn acknowledge(config_path: &Path, id: &str, dismiss: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let id: uuid::Uuid = id.parse().map_err(|_| {
        Failure::Usage(format!(
            "`{id}` is not an alert id; `plantao alerts` lists the active ones with their ids"
        ))
    })?;
    let store = open_store(&config).await?;
    match store
        .apply(alerts::acknowledge(id, CLI_ACTOR, dismiss, Utc::now()))
        .await
    {
        Ok(_) => {
            let verb = if dismiss { "dismissed" } else { "acknowledged" };
            println!("alert {id} {verb}: no more reminders");
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Err(Failure::Missing(format!(
            "there is no alert {id}; `plantao alerts history` lists them"
        ))),
        Err(StoreError::Conflict(why)) => Err(Failure::Usage(why)),
        Err(e) => Err(e.into()),
    }
}

/// Evaluates every rule now and prints what each says; with `notify`, records what it decided
/// and delivers the notifications.
pub async fn check(config_path: &Path, notify: bool, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = if notify {
        open_store(&config).await?
    } else {
        open_store_to_read(&config).await?
    };
    let now = Utc::now();
    let mut evaluation: Evaluation = alerts::evaluate(store.as_ref(), &config, now).await?;
    let last = alerts::evaluate_last_runs(store.as_ref(), &config, now).await?;
    evaluation.findings.extend(last.findings);
    evaluation.batches.extend(last.batches);
    if json {
        let rows: Vec<serde_json::Value> = evaluation
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "rule": f.rule,
                    "labels": f.observation.labels,
                    "verdict": verdict(f.observation.verdict),
                    "value": f.observation.value,
                    "alert": f.open,
                    "outcome": outcome(&config, f),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else if evaluation.findings.is_empty() {
        println!(
            "no rule had anything to judge ({} rules; run rules judge each pipeline's last run)",
            config.alerts.len()
        );
    } else {
        for f in &evaluation.findings {
            let labels: Vec<String> = f
                .observation
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let value = f
                .observation
                .value
                .map(|v| format!("  value={}", alerts::text::format_number(v)))
                .unwrap_or_default();
            println!(
                "{:<28} {:<12} {}{value}",
                f.rule,
                outcome(&config, f),
                labels.join(",")
            );
        }
    }
    if notify {
        let queued = alerts::commit(store.as_ref(), evaluation.batches).await?;
        let telemetry = plantao_engine::telemetry::Telemetry::default();
        let clock = plantao_engine::clock::SystemClock;
        let mut tried = 0;
        loop {
            let n =
                plantao_engine::notify::deliver_due(store.as_ref(), &config, &clock, &telemetry)
                    .await?;
            if n == 0 {
                break;
            }
            tried += n;
        }
        let delivered: u64 = telemetry
            .notifications()
            .iter()
            .filter(|((_, result), _)| result == "delivered")
            .map(|(_, n)| n)
            .sum();
        eprintln!(
            "{queued} notifications queued; {delivered} of {tried} attempts delivered (the rest are retried by `plantao serve`)"
        );
    } else if !evaluation.batches.is_empty() {
        eprintln!("nothing recorded or sent: add --notify to act on it");
    }
    Ok(())
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Holds => "holds",
        Verdict::Clear => "clear",
        Verdict::NoData => "no_data",
    }
}

/// What the finding does to its alert, in a word.
fn outcome(config: &plantao_config::Config, f: &Finding) -> &'static str {
    let waits = config
        .alert_rule(&f.rule)
        .is_some_and(|r| !r.hold.is_zero());
    match (f.observation.verdict, f.open) {
        (Verdict::NoData, _) => "no data",
        (Verdict::Holds, None) if waits => "pending",
        (Verdict::Holds, None) => "fires",
        (Verdict::Holds, Some(AlertState::Pending)) => "pending",
        (Verdict::Holds, Some(_)) => "firing",
        (Verdict::Clear, Some(_)) => "resolves",
        (Verdict::Clear, None) => "ok",
    }
}

pub async fn test_channel(config_path: &Path, name: &str) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    let attempt = plantao_engine::notify::test_channel(store.as_ref(), &config, name, CLI_ACTOR)
        .await
        .map_err(|e| match e {
            plantao_engine::notify::TestError::Unknown(why) => Failure::Usage(why),
            plantao_engine::notify::TestError::Store(e) => e.into(),
        })?;
    if attempt.outcome == Outcome::Delivered {
        println!(
            "delivered to `{name}` in {} ms (status {})",
            attempt.took_ms,
            attempt.status.unwrap_or_default()
        );
        Ok(())
    } else {
        Err(Failure::Missing(format!(
            "channel `{name}` did not accept the test: {}",
            attempt.error.unwrap_or_default()
        )))
    }
}
