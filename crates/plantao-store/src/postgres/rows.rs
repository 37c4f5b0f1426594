//! Turning PostgreSQL's rows back into records.

use plantao_model::RunId;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::decode::{RunOptions, params_from_json, parse};
use crate::error::{Result, StoreError};
use crate::records::*;

pub(super) fn run_from_row(row: &PgRow) -> Result<Run> {
    let params: serde_json::Value = row.try_get("params")?;
    let options = RunOptions::from_json(
        row.try_get::<Option<serde_json::Value>, _>("selection")?
            .map(|v| v.to_string())
            .as_deref(),
    )?;
    Ok(Run {
        id: RunId::from_uuid(row.try_get::<Uuid, _>("id")?),
        pipeline: row.try_get("pipeline")?,
        trigger: parse(row.try_get("triggered_by")?)?,
        scheduled_for: row.try_get("scheduled_for")?,
        params: params_from_json(&params.to_string())?,
        status: parse(row.try_get("status")?)?,
        reason: row.try_get("reason")?,
        queued_at: row.try_get("queued_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        error_stage: row.try_get("error_stage")?,
        error_message: row.try_get("error_message")?,
        node: row.try_get("node")?,
        parent: row
            .try_get::<Option<Uuid>, _>("parent")?
            .map(RunId::from_uuid),
        lag_ms: row.try_get("lag_ms")?,
        cancel_requested: row.try_get("cancel_requested")?,
        selection: options.selection,
        period: options.period,
        force: options.force,
    })
}

pub(super) fn token_from_row(row: &PgRow) -> Result<Token> {
    Ok(Token {
        name: row.try_get("name")?,
        role: parse(row.try_get("role")?)?,
        hash: row.try_get("hash")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn node_from_row(row: &PgRow) -> Result<Node> {
    let pid: i64 = row.try_get("pid")?;
    Ok(Node {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        host: row.try_get("host")?,
        pid: u32::try_from(pid).map_err(|_| StoreError::Database(format!("bad pid {pid}")))?,
        started_at: row.try_get("started_at")?,
        renewed_at: row.try_get("renewed_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub(super) fn stage_from_row(row: &PgRow) -> Result<Stage> {
    let attempt: i32 = row.try_get("attempt")?;
    Ok(Stage {
        run_id: RunId::from_uuid(row.try_get::<Uuid, _>("run_id")?),
        step: row.try_get("step")?,
        attempt: u32::try_from(attempt)
            .map_err(|_| StoreError::Database(format!("bad attempt {attempt}")))?,
        status: parse(row.try_get("status")?)?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        exit_code: row.try_get("exit_code")?,
        error: row.try_get("error")?,
        log: row.try_get("log")?,
        cpu_user_ms: row.try_get("cpu_user_ms")?,
        cpu_system_ms: row.try_get("cpu_system_ms")?,
        peak_rss_kb: row.try_get("peak_rss_kb")?,
    })
}

pub(super) fn check_from_row(row: &PgRow) -> Result<CheckRecord> {
    Ok(CheckRecord {
        name: row.try_get("name")?,
        pings: row.try_get("pings")?,
        last_ping_at: row.try_get("last_ping_at")?,
        last_ping: row
            .try_get::<Option<String>, _>("last_ping")?
            .as_deref()
            .and_then(PingKind::parse),
        last_start_at: row.try_get("last_start_at")?,
        last_success_at: row.try_get("last_success_at")?,
        previous_success_at: row.try_get("previous_success_at")?,
        last_failure_at: row.try_get("last_failure_at")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        state: row.try_get("state")?,
        streak: row.try_get("streak")?,
    })
}

pub(super) fn incident_from_row(row: &PgRow) -> Result<Incident> {
    Ok(Incident {
        id: row.try_get("id")?,
        check: row.try_get("check_name")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        cause: row.try_get("cause")?,
    })
}
