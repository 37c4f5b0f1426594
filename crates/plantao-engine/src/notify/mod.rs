//! The dispatcher: delivers what the outbox holds. Every notification was committed to the
//! store before anyone tried to send it; the dispatcher claims due ones (no other node holds
//! them meanwhile), sends them at once, and records each attempt: delivered, retried later with
//! exponential backoff (1 s, 2 s, 4 s … at most [`MAX_BACKOFF`]), or given up once older than
//! its channel's `max_age`. A crash mid-delivery leaves the claim to lapse and the notification
//! to be sent again with the same idempotency key: delivery is at least once.

pub mod channels;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use plantao_config::Config;
use plantao_model::NotificationEvent;
use plantao_store::{Attempt, Notification, Outcome, Store, StoreError, Timestamp, Write};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::telemetry::Telemetry;
use crate::writable::Writable;

/// The longest wait between two attempts of one notification.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How many notifications one round claims.
const BATCH: u32 = 256;
/// How often the outbox is read when nothing wakes the dispatcher (other nodes' notifications,
/// retries coming due).
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: watch::Receiver<Arc<Config>>,
    /// Rung when something was put in the outbox.
    pub wake: Arc<Notify>,
    pub writable: Arc<Writable>,
    pub telemetry: Arc<Telemetry>,
}

impl Dispatcher {
    /// Runs until `stop` turns true. Deliveries under way finish first (each is bounded by its
    /// channel's timeout), so none is sent without its attempt being recorded.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let delivered = match self.round().await {
                Ok(n) => n,
                Err(e) if self.writable.failed(&e) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    0
                }
            };
            if delivered > 0 && !*stop.borrow() {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }

    async fn round(&self) -> Result<usize, StoreError> {
        let config = self.config.borrow().clone();
        deliver_due(
            self.store.as_ref(),
            &config,
            self.clock.as_ref(),
            &self.telemetry,
        )
        .await
    }
}

/// One round of delivery: claims what is due, delivers it at once, records the attempts; says
/// how many notifications it tried. The notifications of one group go out as one message —
/// unless the group had one within `group_interval`, then they wait until it is over.
pub async fn deliver_due(
    store: &dyn Store,
    config: &Config,
    clock: &dyn Clock,
    telemetry: &Telemetry,
) -> Result<usize, StoreError> {
    let now = clock.now();
    let hold = config
        .channels
        .iter()
        .map(|c| c.timeout)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(30);
    let until = now + crate::alerts::to_delta(hold);
    let due = store.claim_notifications(now, until, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut singles = Vec::new();
    let mut groups: BTreeMap<String, Vec<Notification>> = BTreeMap::new();
    for n in due {
        match n.group.clone() {
            Some(key) => groups.entry(key).or_default().push(n),
            None => singles.push(n),
        }
    }
    let mut writes = Vec::new();
    if !groups.is_empty() {
        let keys: Vec<String> = groups.keys().cloned().collect();
        let sent = store.group_sent(&keys).await?;
        let interval = crate::alerts::to_delta(config.routing.group_interval);
        groups.retain(|key, members| match sent.get(key) {
            Some(last) if *last + interval > now => {
                writes.push(Write::Defer {
                    ids: members.iter().map(|n| n.id).collect(),
                    until: *last + interval,
                });
                false
            }
            _ => true,
        });
    }
    let (alone, grouped) = futures::join!(
        join_all(singles.iter().map(|n| deliver(config, clock, n))),
        join_all(groups.values().map(|m| deliver_group(config, clock, m))),
    );
    let attempts: Vec<Attempt> = alone
        .into_iter()
        .chain(grouped.into_iter().flatten())
        .collect();
    // One count per message sent, by its first notification.
    let messages: Vec<&Notification> = singles
        .iter()
        .chain(groups.values().filter_map(|m| m.first()))
        .collect();
    for n in &messages {
        let delivered = attempts
            .iter()
            .any(|a| a.notification_id == n.id && a.outcome == Outcome::Delivered);
        let result = if delivered { "delivered" } else { "failed" };
        telemetry.notification(&n.channel, result);
    }
    let count = attempts.len();
    writes.extend(attempts.into_iter().map(Write::Attempt));
    if let Err(e) = store.apply(writes.clone()).await {
        // One attempt another node recorded first (its claim lapsed) must not lose the rest.
        if !matches!(e, StoreError::Conflict(_)) {
            return Err(e);
        }
        for w in writes {
            match store.apply(vec![w]).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    tracing::debug!(
        messages = messages.len(),
        notifications = count,
        "delivered a round"
    );
    Ok(count)
}

/// One message for the notifications of a group (claimed together, oldest first): each of them
/// gets the attempt's outcome. A group of one is sent as it is.
async fn deliver_group(
    config: &Config,
    clock: &dyn Clock,
    members: &[Notification],
) -> Vec<Attempt> {
    let Some(first) = members.first() else {
        return Vec::new();
    };
    if members.len() == 1 {
        return vec![deliver(config, clock, first).await];
    }
    let language = config
        .channel(&first.channel)
        .map_or(plantao_config::Language::En, |c| c.language);
    let message = Notification {
        text: crate::alerts::text::group(members, language),
        alert: None,
        ..first.clone()
    };
    let attempt = deliver_as(config, clock, &message, members).await;
    members
        .iter()
        .map(|m| Attempt {
            notification_id: m.id,
            ..attempt.clone()
        })
        .collect()
}

/// One attempt at `n`, and what it leaves it as.
pub async fn deliver(config: &Config, clock: &dyn Clock, n: &Notification) -> Attempt {
    deliver_as(config, clock, n, &[]).await
}

/// One attempt at `n`, standing for `members` when it is a group's message.
async fn deliver_as(
    config: &Config,
    clock: &dyn Clock,
    n: &Notification,
    members: &[Notification],
) -> Attempt {
    let started = Instant::now();
    let at = clock.now();
    let result = match config.channel(&n.channel) {
        Some(channel) => channels::send(crate::http_client(), channel, n, members).await,
        None => Err(channels::Failure {
            status: None,
            error: format!("channel `{}` is no longer in the configuration", n.channel),
        }),
    };
    let took_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match result {
        Ok(status) => Attempt {
            notification_id: n.id,
            at,
            took_ms,
            status: Some(status),
            error: None,
            outcome: Outcome::Delivered,
        },
        Err(f) => {
            let error = config.redactor.redact(&f.error).into_owned();
            let max_age = config
                .channel(&n.channel)
                .map_or(Duration::ZERO, |c| c.max_age);
            let outcome = next_try(n, clock.now(), max_age);
            tracing::warn!(notification = %n.id, channel = %n.channel, attempt = n.attempts + 1, %error, ?outcome, "notification not delivered");
            Attempt {
                notification_id: n.id,
                at,
                took_ms,
                status: f.status,
                error: Some(error),
                outcome,
            }
        }
    }
}

/// After a failed attempt: the next try, or giving up once the notification is `max_age` old.
pub fn next_try(n: &Notification, now: Timestamp, max_age: Duration) -> Outcome {
    let wait = Duration::from_secs(1u64 << n.attempts.min(16)).min(MAX_BACKOFF);
    let next = now + crate::alerts::to_delta(wait);
    if next > n.created_at + crate::alerts::to_delta(max_age) {
        Outcome::GaveUp
    } else {
        Outcome::Retry(next)
    }
}

/// Sends a test message through channel `name` now, records it in the delivery log (never
/// retried: a test says how the channel is right now) and audits it. The attempt tells whether
/// it was delivered.
pub async fn test_channel(
    store: &dyn Store,
    config: &Config,
    name: &str,
    actor: &str,
) -> Result<Attempt, TestError> {
    let message = |c: &plantao_config::Channel| crate::alerts::text::test_message(name, c.language);
    send_now(store, config, name, NotificationEvent::Test, message, actor).await
}

/// Sends `text` (a report) through channel `name` now and audits it. It goes through the outbox
/// like any notification: when the channel refuses it, it stays pending and the daemon's
/// dispatcher retries it, so a channel that is down loses nothing.
pub async fn send_report(
    store: &dyn Store,
    config: &Config,
    name: &str,
    text: String,
    actor: &str,
) -> Result<Attempt, TestError> {
    send_now(
        store,
        config,
        name,
        NotificationEvent::Report,
        |_| text,
        actor,
    )
    .await
}

/// One notification of `event` (a test or a report) through channel `name`, delivered once now
/// and recorded with the attempt and an audit entry; when refused, a report is retried later by
/// the dispatcher and a test given up.
async fn send_now(
    store: &dyn Store,
    config: &Config,
    name: &str,
    event: NotificationEvent,
    text: impl FnOnce(&plantao_config::Channel) -> String,
    actor: &str,
) -> Result<Attempt, TestError> {
    let (action, retry) = match event {
        NotificationEvent::Test => ("channel.test", false),
        _ => ("report.send", true),
    };
    let channel = config.channel(name).ok_or_else(|| {
        let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
        TestError::Unknown(if known.is_empty() {
            format!("there is no channel `{name}`: define one with [[channels]] in plantao.toml")
        } else {
            format!(
                "there is no channel `{name}`; the channels are: {}",
                known.join(", ")
            )
        })
    })?;
    let now = chrono::Utc::now();
    let n = Notification {
        id: uuid::Uuid::now_v7(),
        alert_id: None,
        channel: name.to_owned(),
        event,
        state: plantao_model::DeliveryState::Pending,
        created_at: now,
        next_at: now,
        attempts: 0,
        delivered_at: None,
        last_error: None,
        text: text(channel),
        alert: None,
        group: None,
    };
    let mut attempt = deliver(config, &crate::clock::SystemClock, &n).await;
    if attempt.outcome != Outcome::Delivered && !retry {
        attempt.outcome = Outcome::GaveUp;
    }
    let result = match attempt.outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry(_) => "refused, to be retried",
        Outcome::GaveUp => "failed",
    };
    store
        .apply(vec![
            Write::Enqueue(Box::new(n)),
            Write::Attempt(attempt.clone()),
            Write::audit(actor, action, name, Some(result.to_owned())),
        ])
        .await?;
    Ok(attempt)
}

#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("{0}")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
