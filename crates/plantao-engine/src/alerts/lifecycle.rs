//! From what a condition says to the writes that move an alert: pending → firing → resolved,
//! reminders, and the notifications each step sends. Pure: the time comes in as `now`, so tests
//! drive it with any clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use plantao_config::{AlertRule, Channel, Config};
use plantao_model::{AlertState, DeliveryState, NotificationEvent, Severity};
use plantao_store::{Alert, AlertChange, Notification, Silence, Suppression, Timestamp, Write};
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

/// What keeps a firing alert from its channels at one moment: the silences in force and the
/// rules that have a firing alert (for `depends_on`).
#[derive(Clone, Debug, Default)]
pub struct Gate {
    pub silences: Vec<Silence>,
    pub firing: BTreeSet<String>,
}

impl Gate {
    /// The gate at `now`, from every silence not yet ended and the open alerts.
    pub fn new(silences: Vec<Silence>, open: &[Alert], now: Timestamp) -> Gate {
        Gate {
            silences: silences.into_iter().filter(|s| s.is_active(now)).collect(),
            firing: open
                .iter()
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| a.rule.clone())
                .collect(),
        }
    }

    /// Why `alert` must not be notified now, if it must not: a silence that matches it, or a
    /// firing alert of a rule its rule or its pipeline depends on.
    pub fn check(&self, config: &Config, alert: &Alert) -> Option<Suppression> {
        if let Some(s) = self.silences.iter().find(|s| s.matches(alert)) {
            return Some(Suppression::Silence { id: s.id });
        }
        let rule = config.alert_rule(&alert.rule);
        let pipeline = alert.pipeline.as_deref().and_then(|p| config.pipeline(p));
        let heartbeat = alert.pipeline.as_deref().and_then(|h| config.heartbeat(h));
        let probe = alert.pipeline.as_deref().and_then(|p| config.probe(p));
        rule.map(|r| &r.depends_on)
            .into_iter()
            .chain(pipeline.map(|p| &p.depends_on))
            .chain(heartbeat.map(|h| &h.depends_on))
            .chain(probe.map(|p| &p.depends_on))
            .flatten()
            .find(|cause| **cause != alert.rule && self.firing.contains(*cause))
            .map(|cause| Suppression::Dependency {
                rule: cause.clone(),
            })
    }
}

/// Where a rule's alerts go: its channels; with none (and no escalation), `[routing]`'s,
/// `info_channels` for info alerts.
pub fn route(config: &Config, rule: &AlertRule) -> Vec<String> {
    if !rule.channels.is_empty() || rule.escalation.is_some() {
        return rule.channels.clone();
    }
    if rule.severity == Severity::Info {
        config.routing.info_channels.clone()
    } else {
        config.routing.channels.clone()
    }
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
    gate: &Gate,
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
                channels: route(config, rule),
                started_at: now,
                fired_at: None,
                resolved_at: None,
                acknowledged_at: None,
                acknowledged_by: None,
                dismissed: false,
                next_reminder_at: None,
                escalation_level: None,
                next_escalation_at: None,
                notified: false,
                suppressed: None,
            };
            alert.message = text::message(rule, &alert, plantao_config::Language::En);
            if !rule.hold.is_zero() {
                return vec![Write::OpenAlert(Box::new(alert))];
            }
            alert.state = AlertState::Firing;
            alert.fired_at = Some(now);
            alert.suppressed = gate.check(config, &alert);
            if alert.suppressed.is_some() {
                return vec![Write::OpenAlert(Box::new(alert))];
            }
            alert.notified = true;
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
                next_reminder_at: None,
            };
            change.apply(&mut fired).ok();
            let mut writes = vec![Write::ChangeAlert { id: a.id, change }];
            match gate.check(config, &fired) {
                Some(by) => writes.push(Write::ChangeAlert {
                    id: a.id,
                    change: AlertChange::Suppress { by: Some(by) },
                }),
                None => writes.extend(notify_firing(config, rule, &fired, now)),
            }
            writes
        }
        (Verdict::Clear, Some(a)) => {
            let change = AlertChange::Resolve {
                at: now,
                value: obs.value,
            };
            // Only an alert whose firing was notified has its resolution notified, and always
            // then: a silence or a cause firing since never swallows it.
            let was_notified = a.state == AlertState::Firing && a.notified;
            let mut resolved = a.clone();
            change.apply(&mut resolved).ok();
            let mut writes = vec![Write::ChangeAlert { id: a.id, change }];
            if was_notified {
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

/// A firing alert going to its channels: it is marked notified, its reminders and escalation
/// start, and its channels hear of it (the change is `fired`'s, already applied to it).
fn notify_firing(config: &Config, rule: &AlertRule, fired: &Alert, now: Timestamp) -> Vec<Write> {
    let mut fired = fired.clone();
    let notified = AlertChange::Notified {
        next_reminder_at: reminder_after(rule, now),
    };
    notified.apply(&mut fired).ok();
    let mut writes = vec![Write::ChangeAlert {
        id: fired.id,
        change: notified,
    }];
    if rule.escalation.is_some() {
        start_escalation(config, rule, &mut fired, now);
        writes.push(Write::ChangeAlert {
            id: fired.id,
            change: AlertChange::Escalate {
                level: fired.escalation_level,
                channels: fired.channels.clone(),
                next: fired.next_escalation_at,
            },
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

/// When what keeps a firing alert quiet changes: it is kept quiet for the new reason, or, once
/// nothing does, notified then (when it never was) — a dependent still firing after its cause
/// resolved, an alert whose silence ended.
pub fn regate(config: &Config, alert: &Alert, gate: &Gate, now: Timestamp) -> Vec<Write> {
    if alert.state != AlertState::Firing {
        return Vec::new();
    }
    let by = gate.check(config, alert);
    if by == alert.suppressed {
        return Vec::new();
    }
    match (by, config.alert_rule(&alert.rule)) {
        (None, Some(rule)) if !alert.notified => notify_firing(config, rule, alert, now),
        (by, _) => vec![Write::ChangeAlert {
            id: alert.id,
            change: AlertChange::Suppress { by },
        }],
    }
}

/// A reminder when one is due: the alert fires, nobody acknowledged it, its rule repeats.
pub fn remind(config: &Config, alert: &Alert, now: Timestamp) -> Vec<Write> {
    let due = alert.state == AlertState::Firing
        && alert.suppressed.is_none()
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
        && alert.suppressed.is_none()
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

/// A notification of `alert` for each of `channels` that the configuration still has. Critical
/// alerts go at once; others wait `group_wait` in their group (see [`group_key`]).
fn notify_to(
    config: &Config,
    rule: Option<&AlertRule>,
    alert: &Alert,
    event: NotificationEvent,
    now: Timestamp,
    channels: &[String],
) -> Vec<Write> {
    let grouped = alert.severity != Severity::Critical;
    channels
        .iter()
        .filter_map(|name| config.channel(name))
        .map(|channel| {
            let group = grouped.then(|| group_key(config, rule, channel, alert));
            let next_at = if grouped {
                now + to_delta(config.routing.group_wait)
            } else {
                now
            };
            Write::Enqueue(Box::new(Notification {
                id: Uuid::now_v7(),
                alert_id: Some(alert.id),
                channel: channel.name.clone(),
                event,
                state: DeliveryState::Pending,
                created_at: now,
                next_at,
                attempts: 0,
                delivered_at: None,
                last_error: None,
                text: text::notification(rule, channel, alert, event),
                alert: Some(alert.clone()),
                group,
            }))
        })
        .collect()
}

/// The group of `alert`'s notifications on `channel`: the channel and the values of the
/// rule's `group_by` (or `[routing]`'s) fields, e.g. `team-slack/rule=slow-runs`.
pub fn group_key(
    config: &Config,
    rule: Option<&AlertRule>,
    channel: &Channel,
    alert: &Alert,
) -> String {
    let fields = rule
        .and_then(|r| r.group_by.as_ref())
        .unwrap_or(&config.routing.group_by);
    let values: Vec<String> = fields
        .iter()
        .map(|f| format!("{f}={}", alert.field(f).unwrap_or_default()))
        .collect();
    format!("{}/{}", channel.name, values.join(","))
}

fn reminder_after(rule: &AlertRule, now: Timestamp) -> Option<Timestamp> {
    rule.repeat_interval.map(|every| now + to_delta(every))
}

pub(crate) fn to_delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}
