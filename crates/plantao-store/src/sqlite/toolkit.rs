//! The operations toolkit's records in SQLite: pipelines' state, runs' input files and
//! backfills' checkpoints.

use chrono::NaiveDate;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::rows::{micros, run_id, time};
use super::{WriteTx, direct};
use crate::error::{Result, StoreError};
use crate::records::*;

pub(super) async fn set_state(
    tx: &mut WriteTx,
    pipeline: &str,
    key: &str,
    value: Option<&str>,
    at: Timestamp,
    run: Option<plantao_model::RunId>,
) -> Result<Applied> {
    match value {
        Some(value) => {
            sqlx::query(
                "INSERT INTO pipeline_state (pipeline, key, value, updated_at, run_id) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (pipeline, key) DO UPDATE SET
                    value = excluded.value, updated_at = excluded.updated_at, run_id = excluded.run_id",
            )
            .bind(pipeline)
            .bind(key)
            .bind(value)
            .bind(micros(at))
            .bind(run.map(|r| r.to_string()))
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM pipeline_state WHERE pipeline = ? AND key = ?")
                .bind(pipeline)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(Applied::Updated)
}

pub(super) async fn put_inputs(
    tx: &mut WriteTx,
    run: plantao_model::RunId,
    inputs: &[InputFile],
) -> Result<Applied> {
    for input in inputs {
        sqlx::query(
            "INSERT INTO run_inputs (run_id, path, sha256, bytes) VALUES (?, ?, ?, ?)
             ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes",
        )
        .bind(run.to_string())
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
    tx: &mut WriteTx,
    pipeline: &str,
    run: plantao_model::RunId,
    inputs: &[InputFile],
) -> Result<Applied> {
    sqlx::query("DELETE FROM pipeline_inputs WHERE pipeline = ?")
        .bind(pipeline)
        .execute(&mut **tx)
        .await?;
    for input in inputs {
        sqlx::query(
            "INSERT INTO pipeline_inputs (pipeline, path, sha256, bytes, run_id) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(pipeline)
        .bind(&input.path)
        .bind(&input.sha256)
        .bind(input.bytes)
        .bind(run.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(Applied::Updated)
}

pub(super) async fn checkpoint(tx: &mut WriteTx, c: &Checkpoint) -> Result<Applied> {
    sqlx::query(
        "INSERT INTO checkpoints (pipeline, period_start, period_end, run_id, at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (pipeline, period_start, period_end) DO UPDATE SET run_id = excluded.run_id, at = excluded.at",
    )
    .bind(&c.pipeline)
    .bind(c.period.start.to_string())
    .bind(c.period.end.to_string())
    .bind(c.run_id.to_string())
    .bind(micros(c.at))
    .execute(&mut **tx)
    .await?;
    Ok(Applied::Updated)
}

pub(super) fn state_from_direct_row(row: &direct::Row) -> Result<StateEntry> {
    let text = |i, name: &str| {
        row.text(i)?
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Database(format!("a state entry without its {name}")))
    };
    Ok(StateEntry {
        key: text(0, "key")?,
        value: text(1, "value")?,
        updated_at: time(
            row.int(2)
                .ok_or_else(|| StoreError::Database("a state entry without its time".into()))?,
        )?,
        run_id: row.text(3)?.map(run_id).transpose()?,
    })
}

pub(super) fn input_from_row(row: &SqliteRow) -> Result<InputFile> {
    Ok(InputFile {
        path: row.try_get("path")?,
        sha256: row.try_get("sha256")?,
        bytes: row.try_get("bytes")?,
    })
}

fn date(text: &str) -> Result<NaiveDate> {
    text.parse()
        .map_err(|e| StoreError::Database(format!("unreadable date {text:?}: {e}")))
}

pub(super) fn checkpoint_from_row(row: &SqliteRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        pipeline: row.try_get("pipeline")?,
        period: Period {
            start: date(row.try_get("period_start")?)?,
            end: date(row.try_get("period_end")?)?,
        },
        run_id: run_id(row.try_get("run_id")?)?,
        at: time(row.try_get("at")?)?,
    })
}

pub(super) async fn put_backfill(tx: &mut WriteTx, b: &Backfill) -> Result<Applied> {
    let record =
        serde_json::to_string(b).map_err(|e| StoreError::Database(format!("backfill: {e}")))?;
    sqlx::query(
        "INSERT INTO backfills (id, pipeline, state, created_at, record) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record",
    )
    .bind(b.id.to_string())
    .bind(&b.pipeline)
    .bind(&b.state)
    .bind(micros(b.created_at))
    .bind(record)
    .execute(&mut **tx)
    .await?;
    Ok(Applied::Updated)
}

pub(super) fn backfill_from_row(row: &SqliteRow) -> Result<Backfill> {
    let record: String = row.try_get("record")?;
    serde_json::from_str(&record)
        .map_err(|e| StoreError::Database(format!("unreadable backfill: {e}")))
}
