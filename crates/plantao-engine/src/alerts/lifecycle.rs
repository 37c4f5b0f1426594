//! From what a condition says to the writes that move an alert: pending → firing → resolved,
//! reminders, and the notifications each step sends. Pure: the time comes in as `now`, so tests
//! drive it with any clock.

use std::collections::BTreeMap;
use std::time::Duration;

use plantao_config::{AlertRule, Config};
use plantao_model::{AlertState, DeliveryState, NotificationEvent};
use plantao_store::{Alert, AlertChange, Notification, Timestamp, Write};
use uuid::Uuid;

use super::text;

/// What a rule's condition says for one set of labels at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The rule's labels, the pipeline's name and what else tells alerts of one rule apart.
    pub labels: BTreeMap<String, String>,
    pub pipeline: Option<String>,
    pub verdict: Verdict,
    /// The measured value (a rate, seconds), when there is one.
    pub value: Option<f64>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Clear,
    /// Nothing to judge by: no runs in the window, a missing counter, a division by zero. An
    /// alert is neither opened nor resolved on no data.
    NoData,
}

/// One alert per rule and labels.
pub fn fingerprint(rule: &str, labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{rule}{{{}}}", inner.join(","))
}

/// The writes that follow from `obs` given the open alert of its fingerprint, if any. They go
/// to the store in one batch: an alert and its notifications together or not at all.
pub fn decide(
    config: &Config,
    rule: &AlertRule,
    obs: &Observation,
    open: Option<&Alert>,
    now: Timestamp,
) -> Vec<Write> {
    match (obs.verdict, open) {
        (Verdict::Holds, None) => {
            let mut alert = Alert {
                id: Uuid::now_v7(),
                fingerprint: fingerprint(&rule.name, &obs.labels),
                rule: rule.name.clone(),
                kind: rule.condition.kind().to_owned(),
                pipeline: obs.pipeline.clone(),
                labels: obs.labels.clone(),
                annotations: obs.annotations.clone(),
                severity: rule.severity,
                state: AlertState::Pending,
                value: obs.value,
                message: String::new(),
                runbook: rule.runbook.clone(),
                channels: rule.channels.clone(),
                started_at: now,
                fired_at: None,
                resolved_at: None,
                acknowledged_at: None,
                acknowledged_by: None,
                dismissed: false,
                next_reminder_at: None,
                escalation_level: None,
                next_escalation_at: None,
            };
            alert.message = text::message(rule, &alert, plantao_config::Language::En);
            if !rule.hold.is_zero() {
                return vec![Write::OpenAlert(Box::new(alert))];
            }
            alert.state = AlertState::Firing;
            alert.fired_at = Some(now);
            alert.next_reminder_at = reminder_after(rule, now);
            start_escalation(config, rule, &mut alert, now);
            let mut writes = notify(config, Some(rule), &alert, NotificationEvent::Firing, now);
            writes.insert(0, Write::OpenAlert(Box::new(alert)));
            writes
        }
        (Verdict::Holds, Some(a)) if a.state == AlertState::Pending => {
            if now < a.started_at + to_delta(rule.hold) {
                return Vec::new();
            }
            let mut fired = a.clone();
            fired.annotations.extend(obs.annotations.clone());
            fired.value = obs.value.or(a.value);
            let message = text::message(rule, &fired, plantao_config::Language::En);
            let change = AlertChange::Fire {
                at: now,
                value: fired.value,
                message,
                next_reminder_at: reminder_after(rule, now),
            };
            change.apply(&mut fired).ok();
            let mut writes = vec![Write::ChangeAlert { id: a.id, change }];
            if rule.escalation.is_some() {
                start_escalation(config, rule, &mut fired, now);
                let escalate = AlertChange::Escalate {
                    level: fired.escalation_level,
                    channels: fired.channels.clone(),
                    next: fired.next_escalation_at,
                };
                writes.push(Write::ChangeAlert {
                    id: a.id,
                    change: escalate,
                });
            }
            writes.extend(notify(
                config,
                Some(rule),
                &fired,
                NotificationEvent::Firing,
                now,
            ));
            writes
        }
        (Verdict::Clear, Some(a)) => {
            let change = AlertChange::Resolve {
                at: now,
                value: obs.value,
            };
            let was_firing = a.state == AlertState::Firing;
            let mut resolved = a.clone();
            change.apply(&mut resolved).ok();
            let mut writes = vec![Write::ChangeAlert { id: a.id, change }];
            if was_firing {
                writes.extend(notify(
                    config,
                    Some(rule),
                    &resolved,
                    NotificationEvent::Resolved,
                    now,
                ));
            }
            writes
        }
        _ => Vec::new(),
    }
}

/// A reminder when one is due: the alert fires, nobody acknowledged it, its rule repeats.
pub fn remind(config: &Config, alert: &Alert, now: Timestamp) -> Vec<Write> {
    let due = alert.state == AlertState::Firing
        && alert.acknowledged_at.is_none()
        && alert.next_reminder_at.is_some_and(|at| at <= now);
    if !due {
        return Vec::new();
    }
    let rule = config.alert_rule(&alert.rule);
    let next = rule.and_then(|r| reminder_after(r, now));
    let mut writes = notify(config, rule, alert, NotificationEvent::Reminder, now);
    writes.insert(
        0,
        Write::ChangeAlert {
            id: alert.id,
            change: AlertChange::Remind { next },
        },
    );
    writes
}

/// With an escalation policy, at firing: the levels due at once (`after = "0s"`) become the
/// alert's channels, and the next level's time is set.
fn start_escalation(config: &Config, rule: &AlertRule, alert: &mut Alert, now: Timestamp) {
    let Some(policy) = rule
        .escalation
        .as_deref()
        .and_then(|p| config.escalation(p))
    else {
        return;
    };
    for (i, level) in policy.levels.iter().enumerate() {
        if !level.after.is_zero() {
            alert.next_escalation_at = Some(now + to_delta(level.after));
            return;
        }
        alert.escalation_level = u32::try_from(i).ok();
        for c in &level.channels {
            if !alert.channels.contains(c) {
                alert.channels.push(c.clone());
            }
        }
    }
    alert.next_escalation_at = policy.repeat.map(|r| now + to_delta(r));
}

/// The next escalation step when it is due: the next level's channels are notified (and join
/// the alert's), or, past the last level, the last level again every `repeat`. Audited.
pub fn escalate(config: &Config, alert: &Alert, now: Timestamp) -> Vec<Write> {
    let due = alert.state == AlertState::Firing
        && alert.acknowledged_at.is_none()
        && alert.next_escalation_at.is_some_and(|at| at <= now);
    let rule = config.alert_rule(&alert.rule);
    let policy = rule
        .and_then(|r| r.escalation.as_deref())
        .and_then(|p| config.escalation(p));
    let (true, Some(policy), Some(fired)) = (due, policy, alert.fired_at) else {
        return Vec::new();
    };
    let next_level = alert
        .escalation_level
        .map_or(0, |l| l as usize + 1)
        .min(policy.levels.len());
    let (level, event) = if next_level < policy.levels.len() {
        (next_level, NotificationEvent::Firing)
    } else {
        (policy.levels.len() - 1, NotificationEvent::Reminder)
    };
    let next = match policy.levels.get(level + 1) {
        Some(after) => Some(fired + to_delta(after.after)),
        None => policy.repeat.map(|r| now + to_delta(r)),
    };
    let channels = policy.levels[level].channels.clone();
    let mut escalated = alert.clone();
    let change = AlertChange::Escalate {
        level: u32::try_from(level).ok(),
        channels: channels.clone(),
        next,
    };
    change.apply(&mut escalated).ok();
    let mut writes = vec![
        Write::ChangeAlert {
            id: alert.id,
            change,
        },
        Write::audit(
            "plantao",
            "alert.escalate",
            &alert.id.to_string(),
            Some(format!("level {}: {}", level + 1, channels.join(", "))),
        ),
    ];
    writes.extend(notify_to(config, rule, &escalated, event, now, &channels));
    writes
}

/// A notification of `alert` for each of its channels that the configuration still has.
pub fn notify(
    config: &Config,
    rule: Option<&AlertRule>,
    alert: &Alert,
    event: NotificationEvent,
    now: Timestamp,
) -> Vec<Write> {
    notify_to(config, rule, alert, event, now, &alert.channels)
}

/// A notification of `alert` for each of `channels` that the configuration still has.
fn notify_to(
    config: &Config,
    rule: Option<&AlertRule>,
    alert: &Alert,
    event: NotificationEvent,
    now: Timestamp,
    channels: &[String],
) -> Vec<Write> {
    channels
        .iter()
        .filter_map(|name| config.channel(name))
        .map(|channel| {
            Write::Enqueue(Box::new(Notification {
                id: Uuid::now_v7(),
                alert_id: Some(alert.id),
                channel: channel.name.clone(),
                event,
                state: DeliveryState::Pending,
                created_at: now,
                next_at: now,
                attempts: 0,
                delivered_at: None,
                last_error: None,
                text: text::notification(rule, alert, event, channel.language),
                alert: Some(alert.clone()),
            }))
        })
        .collect()
}

fn reminder_after(rule: &AlertRule, now: Timestamp) -> Option<Timestamp> {
    rule.repeat_interval.map(|every| now + to_delta(every))
}

pub(crate) fn to_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}
