//! The operations toolkit's records in PostgreSQL: pipelines' state, runs' input files and
//! backfills' checkpoints.

use plantao_model::RunId;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::records::*;

type Tx = Transaction<'static, Postgres>;

pub(super) async fn set_state(
    tx: &mut Tx,
    pipeline: &str,
    key: &str,
    value: Option<&str>,
    at: Timestamp,
    run: Option<RunId>,
) -> Result<Applied> {
    match value {
        Some(value) => {
            sqlx::query(
                "INSERT INTO pipeline_state (pipeline, key, value, updated_at, run_id) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (pipeline, key) DO UPDATE SET
                    value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
            )
            .bind(pipeline)
            .bind(key)
            .bind(value)
            .bind(at)
            .bind(run.map(|r| r.as_uuid()))
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM pipeline_state WHERE pipeline = $1 AND key = $2")
                .bind(pipeline)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(Applied::Updated)
}

pub(super) async fn put_inputs(tx: &mut Tx, run: RunId, inputs: &[InputFile]) -> Result<Applied> {
    for input in inputs {
        sqlx::query(
            "INSERT INTO run_inputs (run_id, path, sha256, bytes) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes",
        )
        .bind(run.as_uuid())
        .bind(&input.path)
        .bind(&input.sha256)
        .bind(input.bytes)
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, || format!("run {run}")))?;
    }
    Ok(Applied::Updated)
}

pub(super) async fn set_last_inputs(
    tx: &mut Tx,
    pipeline: &str,
    run: RunId,
    inputs: &[InputFile],
) -> Result<Applied> {
    sqlx::query("DELETE FROM pipeline_inputs WHERE pipeline = $1")
        .bind(pipeline)
        .execute(&mut **tx)
        .await?;
    for input in inputs {
        sqlx::query(
            "INSERT INTO pipeline_inputs (pipeline, path, sha256, bytes, run_id) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(pipeline)
        .bind(&input.path)
        .bind(&input.sha256)
        .bind(input.bytes)
        .bind(run.as_uuid())
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Updated)
}

pub(super) async fn checkpoint(tx: &mut Tx, c: &Checkpoint) -> Result<Applied> {
    sqlx::query(
        "INSERT INTO checkpoints (pipeline, period_start, period_end, run_id, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (pipeline, period_start, period_end) DO UPDATE SET run_id = excluded.run_id, at = excluded.at",
    )
    .bind(&c.pipeline)
    .bind(c.period.start)
    .bind(c.period.end)
    .bind(c.run_id.as_uuid())
    .bind(c.at)
    .execute(&mut **tx)
    .await?;
    Ok(Applied::Updated)
}

pub(super) fn state_from_row(row: &PgRow) -> Result<StateEntry> {
    Ok(StateEntry {
        key: row.try_get("key")?,
        value: row.try_get("value")?,
        updated_at: row.try_get("updated_at")?,
        run_id: row
            .try_get::<Option<Uuid>, _>("run_id")?
            .map(RunId::from_uuid),
    })
}

pub(super) fn input_from_row(row: &PgRow) -> Result<InputFile> {
    Ok(InputFile {
        path: row.try_get("path")?,
        sha256: row.try_get("sha256")?,
        bytes: row.try_get("bytes")?,
    })
}

pub(super) fn checkpoint_from_row(row: &PgRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        pipeline: row.try_get("pipeline")?,
        period: Period {
            start: row.try_get("period_start")?,
            end: row.try_get("period_end")?,
        },
        run_id: RunId::from_uuid(row.try_get("run_id")?),
        at: row.try_get("at")?,
    })
}

pub(super) async fn put_backfill(tx: &mut Tx, b: &Backfill) -> Result<Applied> {
    let record =
        serde_json::to_value(b).map_err(|e| StoreError::Database(format!("backfill: {e}")))?;
    sqlx::query(
        "INSERT INTO backfills (id, pipeline, state, created_at, record) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record",
    )
    .bind(b.id)
    .bind(&b.pipeline)
    .bind(&b.state)
    .bind(b.created_at)
    .bind(record)
    .execute(&mut **tx)
    .await?;
    Ok(Applied::Updated)
}

pub(super) fn backfill_from_row(row: &PgRow) -> Result<Backfill> {
    let record: serde_json::Value = row.try_get("record")?;
    serde_json::from_value(record)
        .map_err(|e| StoreError::Database(format!("unreadable backfill: {e}")))
}
