//! The records of alerting: alerts with their lifecycle, and the outbox of notifications with
//! every delivery attempt. Both backends keep each alert and each notification as one JSON
//! document beside the few columns their queries filter on, and change a document only inside a
//! transaction that holds its row, through [`AlertChange::apply`] and [`Attempt::apply`]: so the
//! evaluator and an operator acknowledging at the same moment never undo each other.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use plantao_model::{AlertState, DeliveryState, NotificationEvent, Severity};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::records::Timestamp;

/// A rule that fires for some labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// UUIDv7: newer alerts have greater ids.
    pub id: Uuid,
    /// The rule's name and the labels: at most one open (pending or firing) alert per
    /// fingerprint, so a condition that keeps holding is one alert, not many.
    pub fingerprint: String,
    pub rule: String,
    /// The rule's kind (`run_failed`, `expr`, …).
    pub kind: String,
    pub pipeline: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Details that are not part of its identity: the run, its status, the error.
    pub annotations: BTreeMap<String, String>,
    pub severity: Severity,
    pub state: AlertState,
    /// What was measured when it last changed: a rate, a duration in seconds; none for events.
    pub value: Option<f64>,
    pub message: String,
    /// The suggested action.
    pub runbook: Option<String>,
    /// Where its notifications go.
    pub channels: Vec<String>,
    /// When the condition was first seen holding.
    pub started_at: DateTime<Utc>,
    pub fired_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    /// Hidden from the active list until it resolves and fires again.
    pub dismissed: bool,
    /// The next reminder of a firing, unacknowledged alert.
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// With an escalation policy: the level notified last (0 is the first).
    #[serde(default)]
    pub escalation_level: Option<u32>,
    /// With an escalation policy: when the next level (or the last one's repeat) is due.
    #[serde(default)]
    pub next_escalation_at: Option<DateTime<Utc>>,
    /// Whether its firing went to its channels: only then is its resolution notified.
    #[serde(default = "yes")]
    pub notified: bool,
    /// Why it fires without being notified (a silence, an alert it depends on); none when it
    /// is notified as usual.
    #[serde(default)]
    pub suppressed: Option<Suppression>,
}

fn yes() -> bool {
    true
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.state != AlertState::Resolved
    }

    /// What a silence's matcher compares: `rule`, `kind`, `pipeline`, `severity`, or a label
    /// (`check` is the label of a check's alerts).
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "rule" => Some(&self.rule),
            "kind" => Some(&self.kind),
            "pipeline" => self.pipeline.as_deref(),
            "severity" => Some(self.severity.as_str()),
            label => self.labels.get(label).map(String::as_str),
        }
    }
}

/// Why a firing alert is recorded but not notified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Suppression {
    /// A silence matches it.
    Silence { id: Uuid },
    /// An alert of the rule it depends on (`depends_on`) fires.
    Dependency { rule: String },
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suppression::Silence { id } => write!(f, "silenced by {id}"),
            Suppression::Dependency { rule } => write!(f, "quiet while {rule} fires"),
        }
    }
}

/// A period in which the alerts its matchers all match are recorded but not notified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Silence {
    pub id: Uuid,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    /// Who created it.
    pub author: String,
    pub created_at: DateTime<Utc>,
}

impl Silence {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether every matcher matches `alert` (a silence has at least one).
    pub fn matches(&self, alert: &Alert) -> bool {
        !self.matchers.is_empty() && self.matchers.iter().all(|m| m.matches(alert))
    }
}

/// `name=value` or `name!=value`; `*` in the value stands for any text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    /// `!=`: matches when the field differs or is missing.
    #[serde(default)]
    pub negate: bool,
}

impl Matcher {
    pub fn parse(text: &str) -> std::result::Result<Matcher, String> {
        let (name, value, negate) = match text.split_once("!=") {
            Some((n, v)) => (n, v, true),
            None => match text.split_once('=') {
                Some((n, v)) => (n, v, false),
                None => {
                    return Err(format!(
                        "`{text}` is not a matcher: write name=value or name!=value (e.g. pipeline=billing, severity=warning)"
                    ));
                }
            },
        };
        let name = name.trim();
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(format!(
                "`{name}` in `{text}` is not a field: use rule, kind, pipeline, severity, check or a label's name"
            ));
        }
        Ok(Matcher {
            name: name.to_owned(),
            value: value.trim().to_owned(),
            negate,
        })
    }

    pub fn matches(&self, alert: &Alert) -> bool {
        let equal = alert
            .field(&self.name)
            .is_some_and(|v| glob(&self.value, v));
        equal != self.negate
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.negate { "!=" } else { "=" };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

/// Ends `silence` at `at`: one that has not started never will; one that has ended is a
/// conflict.
pub(crate) fn expire(silence: &mut Silence, at: Timestamp) -> Result<()> {
    if silence.ends_at <= at {
        return Err(StoreError::Conflict(format!(
            "silence {} ended at {} already",
            silence.id,
            silence.ends_at.format("%Y-%m-%d %H:%M:%S UTC")
        )));
    }
    silence.ends_at = at;
    silence.starts_at = silence.starts_at.min(at);
    Ok(())
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One change to an alert, checked against its current state.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertChange {
    /// `pending` → `firing`.
    Fire {
        at: Timestamp,
        value: Option<f64>,
        message: String,
        next_reminder_at: Option<Timestamp>,
    },
    /// `pending` or `firing` → `resolved`.
    Resolve { at: Timestamp, value: Option<f64> },
    /// A reminder went out; the next one is due at `next`.
    Remind { next: Option<Timestamp> },
    /// Escalation reached `level` (none: no level yet): its `channels` join the alert's; the
    /// next step is due at `next`.
    Escalate {
        level: Option<u32>,
        channels: Vec<String>,
        next: Option<Timestamp>,
    },
    /// The alert is (with `Some`) or is no longer (`None`) kept from its channels.
    Suppress { by: Option<Suppression> },
    /// Its firing went to its channels after all (a silence or its cause ended); reminders
    /// start from here.
    Notified { next_reminder_at: Option<Timestamp> },
    /// Stops reminders and escalation; `dismiss` also hides the alert from the active list.
    Acknowledge {
        by: String,
        at: Timestamp,
        dismiss: bool,
    },
}

impl AlertChange {
    pub fn apply(&self, alert: &mut Alert) -> Result<()> {
        let conflict = |what: &str| {
            StoreError::Conflict(format!(
                "alert {} is {}, so it cannot be {what}",
                alert.id, alert.state
            ))
        };
        match self {
            AlertChange::Fire {
                at,
                value,
                message,
                next_reminder_at,
            } => {
                if alert.state != AlertState::Pending {
                    return Err(conflict("fired"));
                }
                alert.state = AlertState::Firing;
                alert.fired_at = Some(*at);
                alert.value = *value;
                alert.message.clone_from(message);
                alert.next_reminder_at = *next_reminder_at;
            }
            AlertChange::Resolve { at, value } => {
                if !alert.is_open() {
                    return Err(conflict("resolved"));
                }
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(*at);
                alert.value = value.or(alert.value);
                alert.next_reminder_at = None;
                alert.next_escalation_at = None;
            }
            AlertChange::Remind { next } => {
                if alert.state != AlertState::Firing || alert.acknowledged_at.is_some() {
                    return Err(conflict("reminded"));
                }
                alert.next_reminder_at = *next;
            }
            AlertChange::Escalate {
                level,
                channels,
                next,
            } => {
                if alert.state != AlertState::Firing || alert.acknowledged_at.is_some() {
                    return Err(conflict("escalated"));
                }
                alert.escalation_level = *level;
                for c in channels {
                    if !alert.channels.contains(c) {
                        alert.channels.push(c.clone());
                    }
                }
                alert.next_escalation_at = *next;
            }
            AlertChange::Suppress { by } => {
                if !alert.is_open() {
                    return Err(conflict("silenced"));
                }
                alert.suppressed.clone_from(by);
            }
            AlertChange::Notified { next_reminder_at } => {
                if alert.state != AlertState::Firing {
                    return Err(conflict("notified"));
                }
                alert.notified = true;
                alert.suppressed = None;
                alert.next_reminder_at = *next_reminder_at;
            }
            AlertChange::Acknowledge { by, at, dismiss } => {
                if !alert.is_open() {
                    return Err(conflict(if *dismiss {
                        "dismissed"
                    } else {
                        "acknowledged"
                    }));
                }
                if alert.acknowledged_at.is_none() {
                    alert.acknowledged_at = Some(*at);
                    alert.acknowledged_by = Some(by.clone());
                }
                alert.dismissed |= dismiss;
                alert.next_reminder_at = None;
                alert.next_escalation_at = None;
            }
        }
        Ok(())
    }
}

/// A message waiting in (or gone through) the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// UUIDv7; also the idempotency key sent with every attempt.
    pub id: Uuid,
    pub alert_id: Option<Uuid>,
    pub channel: String,
    pub event: NotificationEvent,
    pub state: DeliveryState,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due.
    pub next_at: DateTime<Utc>,
    pub attempts: u32,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The text, in the channel's language.
    pub text: String,
    /// The alert as it was when the notification was written.
    pub alert: Option<Alert>,
    /// Notifications of one group (same channel, same grouping labels) that are due together
    /// go out as one message.
    #[serde(default)]
    pub group: Option<String>,
}

/// One try to deliver a notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    pub notification_id: Uuid,
    pub at: DateTime<Utc>,
    /// Milliseconds until the answer (or the failure).
    pub took_ms: i64,
    /// The HTTP status answered, if any.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub outcome: Outcome,
}

/// What an attempt leaves the notification as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "result", content = "retry_at")]
pub enum Outcome {
    Delivered,
    /// Tried again at the given time.
    Retry(DateTime<Utc>),
    /// Too old to try again: given up.
    GaveUp,
}

impl Attempt {
    pub fn apply(&self, n: &mut Notification) -> Result<()> {
        if n.state != DeliveryState::Pending {
            return Err(StoreError::Conflict(format!(
                "notification {} is {} already",
                n.id, n.state
            )));
        }
        n.attempts += 1;
        n.last_error.clone_from(&self.error);
        match self.outcome {
            Outcome::Delivered => {
                n.state = DeliveryState::Delivered;
                n.delivered_at = Some(self.at);
            }
            Outcome::Retry(at) => n.next_at = at,
            Outcome::GaveUp => n.state = DeliveryState::Failed,
        }
        Ok(())
    }
}

/// A notification with its attempts, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NotificationRecord {
    #[serde(flatten)]
    pub notification: Notification,
    pub attempts_log: Vec<Attempt>,
}

pub(crate) fn to_doc<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(format!("unreadable {what}: {e}")))
}

pub(crate) fn from_docs<T: serde::de::DeserializeOwned>(
    what: &str,
    docs: Vec<String>,
) -> Result<Vec<T>> {
    docs.iter().map(|d| from_doc(what, d)).collect()
}

/// What an `INSERT … ON CONFLICT DO NOTHING` (or a conditional insert) did.
pub(crate) fn inserted(rows: u64) -> crate::Applied {
    if rows == 1 {
        crate::Applied::Inserted
    } else {
        crate::Applied::Duplicate
    }
}

/// Each notification with its attempts (given oldest first, for any of them).
pub(crate) fn with_attempts(
    notifications: Vec<Notification>,
    attempts: Vec<Attempt>,
) -> Vec<NotificationRecord> {
    let mut by_id: BTreeMap<Uuid, Vec<Attempt>> = BTreeMap::new();
    for a in attempts {
        by_id.entry(a.notification_id).or_default().push(a);
    }
    notifications
        .into_iter()
        .map(|n| NotificationRecord {
            attempts_log: by_id.remove(&n.id).unwrap_or_default(),
            notification: n,
        })
        .collect()
}
