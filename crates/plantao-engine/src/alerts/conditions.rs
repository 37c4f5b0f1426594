//! What each kind of rule sees. Run rules (`run_failed`, `stage_failed`, `duration`, `missed`,
//! `pattern`) judge a run that just ended; window rules (`failure_rate`, `expr`) judge a
//! window's rollups; `stuck` judges the open runs. A new kind is a new arm here and in the
//! configuration, nothing else.

use std::collections::BTreeMap;

use plantao_config::{AlertRule, AlertWindow, Condition, DurationLimit, Pipeline};
use plantao_model::{ExprValue, RunStatus, StageStatus, Trigger, Vars};
use plantao_store::{Run, RunDetail, Summary, Timestamp, Window};

use super::lifecycle::{Observation, Verdict};
use super::text::format_number;

/// The labels of an alert of `rule` about `pipeline`.
fn labels(rule: &AlertRule, pipeline: &str) -> BTreeMap<String, String> {
    let mut labels = rule.labels.clone();
    labels.insert("pipeline".into(), pipeline.to_owned());
    labels
}

fn observation(
    rule: &AlertRule,
    pipeline: &str,
    verdict: Verdict,
    value: Option<f64>,
    annotations: BTreeMap<String, String>,
) -> Observation {
    Observation {
        labels: labels(rule, pipeline),
        pipeline: Some(pipeline.to_owned()),
        verdict,
        value,
        annotations,
    }
}

/// Whether `rule` watches `pipeline`.
pub fn watches(rule: &AlertRule, pipeline: &str) -> bool {
    rule.pipeline.as_deref().is_none_or(|p| p == pipeline)
}

/// What a run rule says about a run that ended (or a tick recorded as skipped); nothing when
/// the run does not bear on it (a stage that did not run). `usual` is, for "slower than usual",
/// the p95 in seconds of the pipeline's last successful runs, when there were enough.
pub fn on_run_end(rule: &AlertRule, detail: &RunDetail, usual: Option<f64>) -> Option<Observation> {
    let run = &detail.run;
    if !watches(rule, &run.pipeline) {
        return None;
    }
    let mut notes = BTreeMap::from([
        ("run".to_owned(), run.id.to_string()),
        ("status".to_owned(), run.status.to_string()),
    ]);
    match &rule.condition {
        Condition::RunFailed => {
            let verdict = match run.status {
                RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted => Verdict::Holds,
                RunStatus::Succeeded => Verdict::Clear,
                _ => return None,
            };
            if let Some(stage) = &run.error_stage {
                notes.insert("stage".into(), stage.clone());
            }
            if let Some(error) = run.error_message.as_ref().or(run.reason.as_ref()) {
                notes.insert("error".into(), error.clone());
            }
            Some(observation(rule, &run.pipeline, verdict, None, notes))
        }
        Condition::StageFailed { stage } => {
            let last = detail.stages.iter().rfind(|s| &s.step == stage)?;
            let verdict = match last.status {
                StageStatus::Failed | StageStatus::TimedOut => Verdict::Holds,
                StageStatus::Succeeded => Verdict::Clear,
                _ => return None,
            };
            notes.insert("stage".into(), stage.clone());
            notes.insert("status".into(), last.status.to_string());
            if let Some(error) = &last.error {
                notes.insert("error".into(), error.clone());
            }
            Some(observation(rule, &run.pipeline, verdict, None, notes))
        }
        Condition::Duration { stage, limit } => {
            let ms = match stage {
                Some(name) => {
                    notes.insert("stage".into(), name.clone());
                    detail
                        .stages
                        .iter()
                        .rfind(|s| &s.step == name)?
                        .duration_ms?
                }
                None => run.duration_ms?,
            };
            #[allow(clippy::cast_precision_loss)]
            let seconds = ms as f64 / 1000.0;
            let max = match limit {
                DurationLimit::Max(max) => {
                    notes.insert(
                        "max".into(),
                        format!("{} s", format_number(max.as_secs_f64())),
                    );
                    max.as_secs_f64()
                }
                DurationLimit::Usual { factor, last } => {
                    let Some(p95) = usual else {
                        let obs =
                            observation(rule, &run.pipeline, Verdict::NoData, Some(seconds), notes);
                        return Some(obs);
                    };
                    let max = factor * p95;
                    notes.insert(
                        "max".into(),
                        format!(
                            "{} s ({} × the p95 of the last {last} successful runs)",
                            format_number(max),
                            format_number(*factor)
                        ),
                    );
                    max
                }
            };
            let verdict = if seconds > max {
                Verdict::Holds
            } else {
                Verdict::Clear
            };
            Some(observation(
                rule,
                &run.pipeline,
                verdict,
                Some(seconds),
                notes,
            ))
        }
        Condition::Missed => {
            if !matches!(run.trigger, Trigger::Scheduled | Trigger::Catchup) {
                return None;
            }
            let verdict = match (run.status, run.reason.as_deref()) {
                (RunStatus::Skipped, Some("paused"))
                | (RunStatus::Queued | RunStatus::Running, _) => {
                    return None;
                }
                (RunStatus::Skipped, reason) => {
                    notes.insert("reason".into(), reason.unwrap_or("?").to_owned());
                    Verdict::Holds
                }
                _ => Verdict::Clear,
            };
            if let Some(tick) = run.scheduled_for {
                notes.insert("tick".into(), crate::clock::shown(tick).to_string());
            }
            Some(observation(rule, &run.pipeline, verdict, None, notes))
        }
        Condition::Pattern { pattern } => {
            if !run.status.is_final() || run.status == RunStatus::Skipped {
                return None;
            }
            let hits: Vec<_> = detail
                .findings
                .iter()
                .filter(|f| pattern.as_ref().is_none_or(|p| *p == f.pattern))
                .collect();
            let verdict = match hits.first() {
                Some(first) => {
                    notes.insert("pattern".into(), first.pattern.clone());
                    notes.insert("stage".into(), first.step.clone());
                    notes.insert("line".into(), first.line.to_string());
                    notes.insert("excerpt".into(), first.excerpt.clone());
                    Verdict::Holds
                }
                None => Verdict::Clear,
            };
            #[allow(clippy::cast_precision_loss)]
            let count = hits.len() as f64;
            Some(observation(
                rule,
                &run.pipeline,
                verdict,
                Some(count),
                notes,
            ))
        }
        _ => None,
    }
}

/// The store's window for a rule's window.
pub fn window(w: AlertWindow) -> Window {
    match w {
        AlertWindow::Today => Window::Today,
        AlertWindow::Hours24 => Window::Last24h,
        AlertWindow::Days7 => Window::Last7d,
    }
}

pub fn window_name(w: AlertWindow) -> &'static str {
    match w {
        AlertWindow::Today => "today",
        AlertWindow::Hours24 => "24h",
        AlertWindow::Days7 => "7d",
    }
}

/// What a window rule says about `pipeline` given the window's summary. `threshold` is the
/// rule's, or its runtime override.
pub fn on_window(
    rule: &AlertRule,
    pipeline: &Pipeline,
    summary: &Summary,
    threshold: Option<f64>,
) -> Option<Observation> {
    let mut notes = BTreeMap::new();
    if let Some(t) = threshold {
        notes.insert("threshold".to_owned(), format_number(t));
    }
    let (w, verdict, value) = match &rule.condition {
        Condition::FailureRate { window } => match (failure_rate(summary), threshold) {
            (Some(rate), Some(t)) => {
                let verdict = if rate > t {
                    Verdict::Holds
                } else {
                    Verdict::Clear
                };
                (*window, verdict, Some(rate))
            }
            _ => (*window, Verdict::NoData, None),
        },
        Condition::Expr { when, window } => {
            let (vars, numbers) = window_vars(pipeline, summary, threshold);
            notes.insert("when".into(), when.source().to_owned());
            // The numbers it reads (metrics, run counts, `step.counter` sums), the threshold
            // aside: shown, and the first is its value.
            let read: Vec<String> = when
                .references()
                .into_iter()
                .filter(|r| r.root != "threshold")
                .map(|r| match r.field {
                    Some(field) => format!("{}.{field}", r.root),
                    None => r.root,
                })
                .collect();
            let shown: Vec<String> = read
                .iter()
                .filter_map(|name| numbers.get(name).map(|v| format!("{name} = {v}")))
                .collect();
            notes.insert("values".into(), shown.join(", "));
            let value = read
                .first()
                .and_then(|name| numbers.get(name))
                .and_then(|v| v.parse().ok());
            match when.eval(&vars) {
                ExprValue::Bool(true) => (*window, Verdict::Holds, value),
                ExprValue::Bool(false) => (*window, Verdict::Clear, value),
                _ => (*window, Verdict::NoData, None),
            }
        }
        _ => return None,
    };
    notes.insert("window".to_owned(), window_name(w).to_owned());
    Some(observation(rule, &pipeline.name, verdict, value, notes))
}

/// Failed runs among those that ran, in percent; none when none ran.
fn failure_rate(s: &Summary) -> Option<f64> {
    s.success_rate().map(|ok| (1.0 - ok) * 100.0)
}

/// What a window expression reads, and the plain numbers among them as text (for messages).
fn window_vars(
    pipeline: &Pipeline,
    s: &Summary,
    threshold: Option<f64>,
) -> (Vars, BTreeMap<String, String>) {
    let mut vars = Vars::default();
    let mut shown = BTreeMap::new();
    let mut number = |vars: &mut Vars, name: &str, value: Option<f64>| {
        if let Some(v) = value {
            vars.number(name, v);
            shown.insert(name.to_owned(), format_number(v));
        }
    };
    #[allow(clippy::cast_precision_loss)]
    {
        number(&mut vars, "runs", Some(s.runs as f64));
        number(&mut vars, "succeeded", Some(s.count("succeeded") as f64));
        number(&mut vars, "failed", Some(s.failed() as f64));
    }
    number(
        &mut vars,
        "success_rate",
        s.success_rate().map(|r| r * 100.0),
    );
    number(&mut vars, "failure_rate", failure_rate(s));
    number(&mut vars, "threshold", threshold);
    for (name, value) in crate::derived_metrics(pipeline, s.counter_sums()) {
        if let ExprValue::Number(v) = value {
            number(&mut vars, &name, Some(v));
        }
    }
    for (step, name, value) in s.counter_sums() {
        vars.member(step, name, value);
        shown.insert(format!("{step}.{name}"), format_number(value));
    }
    (vars, shown)
}

/// What a `stuck` rule says about each open run it watches: holds for those open longer than
/// its limit. Alerts of runs no longer stuck are resolved by the caller.
pub fn on_open_runs(rule: &AlertRule, runs: &[Run], now: Timestamp) -> Vec<Observation> {
    let Condition::Stuck { after } = &rule.condition else {
        return Vec::new();
    };
    let limit = super::lifecycle::to_delta(*after);
    runs.iter()
        .filter(|r| watches(rule, &r.pipeline))
        .filter_map(|r| {
            let since = if r.status == RunStatus::Running {
                r.started_at.unwrap_or(r.queued_at)
            } else {
                r.queued_at
            };
            (now - since > limit).then(|| {
                let mut obs = observation(
                    rule,
                    &r.pipeline,
                    Verdict::Holds,
                    #[allow(clippy::cast_precision_loss)]
                    Some((now - since).num_seconds() as f64),
                    BTreeMap::from([
                        ("run".to_owned(), r.id.to_string()),
                        ("status".to_owned(), r.status.to_string()),
                        (
                            "after".to_owned(),
                            super::text::humanize_seconds(
                                i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                            ),
                        ),
                    ]),
                );
                obs.labels.insert("run".into(), r.id.to_string());
                obs
            })
        })
        .collect()
}
