//! Alerts, the outbox and thresholds on PostgreSQL. Documents are changed under the row's lock
//! (`FOR UPDATE`); notifications are claimed with `FOR UPDATE SKIP LOCKED`, so two nodes never
//! hold the same one.

use std::collections::BTreeMap;

use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::PgStore;
use crate::alerts::{from_doc, from_docs, inserted, to_doc, with_attempts};
use crate::error::{Result, StoreError};
use crate::records::{Applied, Timestamp};
use crate::{Alert, AlertChange, Attempt, Notification, NotificationRecord, Silence};

type Tx = Transaction<'static, Postgres>;

pub(super) async fn open(tx: &mut Tx, a: Box<Alert>) -> Result<Applied> {
    let done = sqlx::query(
        "INSERT INTO alerts (id, fingerprint, open, doc) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(a.id)
    .bind(&a.fingerprint)
    .bind(a.is_open())
    .bind(to_doc(&a))
    .execute(&mut **tx)
    .await?;
    Ok(inserted(done.rows_affected()))
}

pub(super) async fn change(tx: &mut Tx, id: Uuid, change: AlertChange) -> Result<Applied> {
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM alerts WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let doc = doc.ok_or_else(|| StoreError::NotFound(format!("alert {id}")))?;
    let mut alert: Alert = from_doc("alert", &doc)?;
    change.apply(&mut alert)?;
    sqlx::query("UPDATE alerts SET open = $1, doc = $2 WHERE id = $3")
        .bind(alert.is_open())
        .bind(to_doc(&alert))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(Applied::Updated)
}

pub(super) async fn enqueue(tx: &mut Tx, n: Box<Notification>) -> Result<Applied> {
    // A notification of an alert this batch failed to open (another node opened it first) is
    // that node's to send.
    let done = sqlx::query(
        "INSERT INTO notifications (id, pending, next_at, doc, group_key)
         SELECT $1, TRUE, $2, $3, $5 WHERE $4::uuid IS NULL OR EXISTS (SELECT 1 FROM alerts WHERE id = $4)",
    )
    .bind(n.id)
    .bind(n.next_at)
    .bind(to_doc(&n))
    .bind(n.alert_id)
    .bind(&n.group)
    .execute(&mut **tx)
    .await?;
    Ok(inserted(done.rows_affected()))
}

pub(super) async fn attempt(tx: &mut Tx, a: Attempt) -> Result<Applied> {
    let id = a.notification_id;
    let doc: Option<String> =
        sqlx::query_scalar("SELECT doc FROM notifications WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let doc = doc.ok_or_else(|| StoreError::NotFound(format!("notification {id}")))?;
    let mut n: Notification = from_doc("notification", &doc)?;
    a.apply(&mut n)?;
    sqlx::query(
        "UPDATE notifications SET pending = $1, next_at = $2, claimed_until = NULL, doc = $3 WHERE id = $4",
    )
    .bind(n.state == plantao_model::DeliveryState::Pending)
    .bind(n.next_at)
    .bind(to_doc(&n))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO attempts (notification_id, at, doc) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(a.at)
        .bind(to_doc(&a))
        .execute(&mut **tx)
        .await?;
    if let (Some(group), Some(at)) = (&n.group, n.delivered_at) {
        sqlx::query(
            "INSERT INTO notification_groups (group_key, last_sent) VALUES ($1, $2)
             ON CONFLICT (group_key) DO UPDATE
             SET last_sent = GREATEST(notification_groups.last_sent, excluded.last_sent)",
        )
        .bind(group)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Inserted)
}

pub(super) async fn defer(tx: &mut Tx, ids: &[Uuid], until: Timestamp) -> Result<Applied> {
    let docs: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, doc FROM notifications WHERE id = ANY($1) AND pending FOR UPDATE",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for (id, doc) in docs {
        let mut n: Notification = from_doc("notification", &doc)?;
        n.next_at = until;
        sqlx::query(
            "UPDATE notifications SET next_at = $1, claimed_until = NULL, doc = $2 WHERE id = $3",
        )
        .bind(until)
        .bind(to_doc(&n))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Updated)
}

pub(super) async fn add_silence(tx: &mut Tx, s: &Silence) -> Result<Applied> {
    sqlx::query("INSERT INTO silences (id, ends_at, doc) VALUES ($1, $2, $3)")
        .bind(s.id)
        .bind(s.ends_at)
        .bind(to_doc(s))
        .execute(&mut **tx)
        .await?;
    Ok(Applied::Inserted)
}

pub(super) async fn expire_silence(tx: &mut Tx, id: Uuid, at: Timestamp) -> Result<Applied> {
    let doc: Option<String> =
        sqlx::query_scalar("SELECT doc FROM silences WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let doc = doc.ok_or_else(|| StoreError::NotFound(format!("silence {id}")))?;
    let mut silence: Silence = from_doc("silence", &doc)?;
    crate::alerts::expire(&mut silence, at)?;
    sqlx::query("UPDATE silences SET ends_at = $1, doc = $2 WHERE id = $3")
        .bind(silence.ends_at)
        .bind(to_doc(&silence))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(Applied::Updated)
}

pub(super) async fn set_threshold(
    tx: &mut Tx,
    rule: &str,
    value: Option<f64>,
    at: Timestamp,
) -> Result<Applied> {
    match value {
        Some(v) => {
            sqlx::query(
                "INSERT INTO thresholds (rule, value, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (rule) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(rule)
            .bind(v)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM thresholds WHERE rule = $1")
                .bind(rule)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(Applied::Updated)
}

impl PgStore {
    pub(super) async fn open_alerts_now(&self) -> Result<Vec<Alert>> {
        let rows = sqlx::query_scalar("SELECT doc FROM alerts WHERE open ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        from_docs("alert", rows)
    }

    pub(super) async fn alert_now(&self, id: Uuid) -> Result<Alert> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
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
            sqlx::query_scalar("SELECT doc FROM alerts WHERE id < $1 ORDER BY id DESC LIMIT $2")
                .bind(before.unwrap_or(Uuid::max()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        from_docs("alert", rows)
    }

    pub(super) async fn claim_notifications_now(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let mut tx = self.pool.begin().await?;
        let mut rows = sqlx::query(
            "UPDATE notifications SET claimed_until = $1
             WHERE id IN (SELECT id FROM notifications
                          WHERE pending AND next_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)
                          ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING group_key, doc",
        )
        .bind(until)
        .bind(now)
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
                    "UPDATE notifications SET claimed_until = $1
                     WHERE id IN (SELECT id FROM notifications
                                  WHERE group_key = ANY($2) AND pending
                                    AND (claimed_until IS NULL OR claimed_until < $3)
                                  FOR UPDATE SKIP LOCKED)
                     RETURNING group_key, doc",
                )
                .bind(until)
                .bind(&groups)
                .bind(now)
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
            "SELECT doc FROM notifications WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(Uuid::max()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let notifications: Vec<Notification> = from_docs("notification", rows)?;
        let ids: Vec<Uuid> = notifications.iter().map(|n| n.id).collect();
        let attempts: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM attempts WHERE notification_id = ANY($1) ORDER BY at",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(with_attempts(
            notifications,
            from_docs("attempt", attempts)?,
        ))
    }

    pub(super) async fn outbox_depth_now(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE pending")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn silences_now(
        &self,
        ended_after: Timestamp,
        limit: u32,
    ) -> Result<Vec<Silence>> {
        let rows = sqlx::query_scalar(
            "SELECT doc FROM silences WHERE ends_at > $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(ended_after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        from_docs("silence", rows)
    }

    pub(super) async fn group_sent_now(
        &self,
        keys: &[String],
    ) -> Result<BTreeMap<String, Timestamp>> {
        let rows: Vec<(String, Timestamp)> = sqlx::query_as(
            "SELECT group_key, last_sent FROM notification_groups WHERE group_key = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    pub(super) async fn thresholds_now(&self) -> Result<BTreeMap<String, f64>> {
        let rows = sqlx::query("SELECT rule, value FROM thresholds")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("rule")?, r.try_get("value")?)))
            .collect()
    }
}
