//! Alerts, the outbox and thresholds on SQLite.

use std::collections::BTreeMap;

use sqlx::Row;
use uuid::Uuid;

use super::SqliteStore;
use super::connection::WriteTx;
use super::rows::{micros, time};
use crate::alerts::{from_doc, from_docs, inserted, to_doc};
use crate::error::{Result, StoreError};
use crate::records::{Applied, Timestamp};
use crate::{Alert, AlertChange, Attempt, Notification, NotificationRecord, Silence};

/// Above every id written as text, for "no `before`".
const AFTER_EVERY_ID: &str = "~";

pub(super) async fn open(tx: &mut WriteTx, a: Box<Alert>) -> Result<Applied> {
    let done = sqlx::query(
        "INSERT INTO alerts (id, fingerprint, open, doc) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(a.id.to_string())
    .bind(&a.fingerprint)
    .bind(a.is_open())
    .bind(to_doc(&a))
    .execute(&mut **tx)
    .await?;
    Ok(inserted(done.rows_affected()))
}

pub(super) async fn change(tx: &mut WriteTx, id: Uuid, change: AlertChange) -> Result<Applied> {
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM alerts WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let doc = doc.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
    let mut alert: Alert = from_doc("alert", &doc)?;
    change.apply(&mut alert)?;
    sqlx::query("UPDATE alerts SET open = ?, doc = ? WHERE id = ?")
        .bind(alert.is_open())
        .bind(to_doc(&alert))
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(Applied::Updated)
}

pub(super) async fn enqueue(tx: &mut WriteTx, n: Box<Notification>) -> Result<Applied> {
    // A notification of an alert this batch failed to open (another node opened it first) is
    // that node's to send.
    let done = sqlx::query(
        "INSERT INTO notifications (id, pending, next_at, group_key, doc)
         SELECT ?, 1, ?, ?, ? WHERE ? IS NULL OR EXISTS (SELECT 1 FROM alerts WHERE id = ?)",
    )
    .bind(n.id.to_string())
    .bind(micros(n.next_at))
    .bind(&n.group)
    .bind(to_doc(&n))
    .bind(n.alert_id.map(|a| a.to_string()))
    .bind(n.alert_id.map(|a| a.to_string()))
    .execute(&mut **tx)
    .await?;
    Ok(inserted(done.rows_affected()))
}

pub(super) async fn attempt(tx: &mut WriteTx, a: Attempt) -> Result<Applied> {
    let id = a.notification_id.to_string();
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM notifications WHERE id = ?")
        .bind(&id)
        .fetch_optional(&mut **tx)
        .await?;
    let doc = doc.ok_or_else(|| StoreError::NotFound(format!("notification {id}")))?;
    let mut n: Notification = from_doc("notification", &doc)?;
    a.apply(&mut n)?;
    sqlx::query(
        "UPDATE notifications SET pending = ?, next_at = ?, claimed_until = NULL, doc = ? WHERE id = ?",
    )
    .bind(n.state == plantao_model::DeliveryState::Pending)
    .bind(micros(n.next_at))
    .bind(to_doc(&n))
    .bind(&id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO attempts (notification_id, at, doc) VALUES (?, ?, ?)")
        .bind(&id)
        .bind(micros(a.at))
        .bind(to_doc(&a))
        .execute(&mut **tx)
        .await?;
    if let (Some(group), Some(at)) = (&n.group, n.delivered_at) {
        sqlx::query(
            "INSERT INTO notification_groups (group_key, last_sent) VALUES (?, ?)
             ON CONFLICT (group_key) DO UPDATE SET last_sent = max(last_sent, excluded.last_sent)",
        )
        .bind(group)
        .bind(micros(at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Inserted)
}

pub(super) async fn defer(tx: &mut WriteTx, ids: &[Uuid], until: Timestamp) -> Result<Applied> {
    for id in ids {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc FROM notifications WHERE id = ? AND pending = 1")
                .bind(id.to_string())
                .fetch_optional(&mut **tx)
                .await?;
        let Some(doc) = doc else { continue };
        let mut n: Notification = from_doc("notification", &doc)?;
        n.next_at = until;
        sqlx::query(
            "UPDATE notifications SET next_at = ?, claimed_until = NULL, doc = ? WHERE id = ?",
        )
        .bind(micros(until))
        .bind(to_doc(&n))
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Updated)
}

pub(super) async fn add_silence(tx: &mut WriteTx, s: &Silence) -> Result<Applied> {
    sqlx::query("INSERT INTO silences (id, ends_at, doc) VALUES (?, ?, ?)")
        .bind(s.id.to_string())
        .bind(micros(s.ends_at))
        .bind(to_doc(s))
        .execute(&mut **tx)
        .await?;
    Ok(Applied::Inserted)
}

pub(super) async fn expire_silence(tx: &mut WriteTx, id: Uuid, at: Timestamp) -> Result<Applied> {
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM silences WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let doc = doc.ok_or_else(|| StoreError::NotFound(format!("silence {id}")))?;
    let mut silence: Silence = from_doc("silence", &doc)?;
    crate::alerts::expire(&mut silence, at)?;
    sqlx::query("UPDATE silences SET ends_at = ?, doc = ? WHERE id = ?")
        .bind(micros(silence.ends_at))
        .bind(to_doc(&silence))
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(Applied::Updated)
}

pub(super) async fn set_threshold(
    tx: &mut WriteTx,
    rule: &str,
    value: Option<f64>,
    at: Timestamp,
) -> Result<Applied> {
    match value {
        Some(v) => {
            sqlx::query(
                "INSERT INTO thresholds (rule, value, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (rule) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(rule)
            .bind(v)
            .bind(micros(at))
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM thresholds WHERE rule = ?")
                .bind(rule)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(Applied::Updated)
}

impl SqliteStore {
    pub(super) async fn open_alerts_now(&self) -> Result<Vec<Alert>> {
        let rows = sqlx::query_scalar("SELECT doc FROM alerts WHERE open = 1 ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        from_docs("alert", rows)
    }

    pub(super) async fn alert_now(&self, id: Uuid) -> Result<Alert> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM alerts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        from_doc(
            "alert",
            &doc.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?,
        )
    }

    pub(super) async fn alert_history_now(
        &self,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Alert>> {
        let rows =
            sqlx::query_scalar("SELECT doc FROM alerts WHERE id < ? ORDER BY id DESC LIMIT ?")
                .bind(before.map_or_else(|| AFTER_EVERY_ID.to_owned(), |b| b.to_string()))
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?;
        from_docs("alert", rows)
    }

    pub(super) async fn claim_notifications_now(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        // Asked twice a second by every dispatcher: a read says whether anything is due before
        // the writer's lock is taken for it.
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM notifications
                            WHERE pending = 1 AND next_at <= ?1 AND (claimed_until IS NULL OR claimed_until < ?1))",
        )
        .bind(micros(now))
        .fetch_one(&self.reader)
        .await?;
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = WriteTx::begin(&self.writer).await?;
        let mut rows = sqlx::query(
            "UPDATE notifications SET claimed_until = ?
             WHERE id IN (SELECT id FROM notifications
                          WHERE pending = 1 AND next_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)
                          ORDER BY next_at LIMIT ?)
             RETURNING group_key, doc",
        )
        .bind(micros(until))
        .bind(micros(now))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let groups: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<Option<String>, _>("group_key").ok().flatten())
            .collect();
        if !groups.is_empty() {
            rows.extend(
                sqlx::query(
                    "UPDATE notifications SET claimed_until = ?
                     WHERE group_key IN (SELECT value FROM json_each(?)) AND pending = 1
                       AND (claimed_until IS NULL OR claimed_until < ?)
                     RETURNING group_key, doc",
                )
                .bind(micros(until))
                .bind(serde_json::json!(groups).to_string())
                .bind(micros(now))
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        tx.commit().await?;
        let mut out: Vec<Notification> = rows
            .iter()
            .map(|r| from_doc("notification", r.try_get::<&str, _>("doc")?))
            .collect::<Result<_>>()?;
        out.sort_by_key(|n| (n.next_at, n.id));
        Ok(out)
    }

    pub(super) async fn notifications_now(
        &self,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM notifications WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before.map_or_else(|| AFTER_EVERY_ID.to_owned(), |b| b.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let notifications: Vec<Notification> = from_docs("notification", rows)?;
        let ids: Vec<String> = notifications.iter().map(|n| n.id.to_string()).collect();
        let attempts: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM attempts WHERE notification_id IN (SELECT value FROM json_each(?))
             ORDER BY at",
        )
        .bind(serde_json::json!(ids).to_string())
        .fetch_all(&self.reader)
        .await?;
        Ok(crate::alerts::with_attempts(
            notifications,
            from_docs("attempt", attempts)?,
        ))
    }

    pub(super) async fn outbox_depth_now(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE pending = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn silences_now(
        &self,
        ended_after: Timestamp,
        limit: u32,
    ) -> Result<Vec<Silence>> {
        let rows = sqlx::query_scalar(
            "SELECT doc FROM silences WHERE ends_at > ? ORDER BY id DESC LIMIT ?",
        )
        .bind(micros(ended_after))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        from_docs("silence", rows)
    }

    pub(super) async fn group_sent_now(
        &self,
        keys: &[String],
    ) -> Result<BTreeMap<String, Timestamp>> {
        let rows = sqlx::query(
            "SELECT group_key, last_sent FROM notification_groups
             WHERE group_key IN (SELECT value FROM json_each(?))",
        )
        .bind(serde_json::json!(keys).to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("group_key")?, time(r.try_get("last_sent")?)?)))
            .collect()
    }

    pub(super) async fn thresholds_now(&self) -> Result<BTreeMap<String, f64>> {
        let rows = sqlx::query("SELECT rule, value FROM thresholds")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("rule")?, r.try_get("value")?)))
            .collect()
    }
}
