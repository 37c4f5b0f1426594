//! Turning SQLite's rows back into records: times (microseconds), ids, and each record's
//! columns. Runs come as one JSON object each (see [`RUN_JSON`]).

use std::collections::BTreeMap;

use chrono::DateTime;
use plantao_model::RunId;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::direct;
use crate::decode::{RunOptions, parse};
use crate::error::{Result, StoreError};
use crate::records::*;

pub(super) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(super) fn time(us: i64) -> Result<Timestamp> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Database(format!("time out of range: {us}")))
}

pub(super) fn opt_time(us: Option<i64>) -> Result<Option<Timestamp>> {
    us.map(time).transpose()
}

pub(super) fn run_id(text: &str) -> Result<RunId> {
    Uuid::parse_str(text)
        .map(RunId::from_uuid)
        .map_err(|e| StoreError::Database(format!("unreadable run id {text:?}: {e}")))
}

pub(super) fn token_from_row(row: &SqliteRow) -> Result<Token> {
    Ok(Token {
        name: row.try_get("name")?,
        role: parse(row.try_get("role")?)?,
        hash: row.try_get("hash")?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

/// A run as one JSON array, built by SQLite: a page of runs crosses from the connection's
/// thread as one value instead of a value per column per row (a third more pages a second
/// measured with `plantao bench api`). An array rather than an object: without a key per column
/// a page is half the JSON to build and to read. Its columns are [`RunColumns`]' fields, in
/// their order; every read of runs goes through both.
pub(super) const RUN_JSON: &str =
    "json_array(id, pipeline, triggered_by, scheduled_for, json(params), status, reason,
    queued_at, started_at, finished_at, duration_ms, error_stage, error_message, node, parent,
    lag_ms, cancel_requested, json(selection))";

/// A run's columns as a statement stepped row by row answers them ([`RunColumns::from_row`]):
/// [`RUN_JSON`]'s, in its order.
pub(super) const RUN_COLUMNS: &str =
    "id, pipeline, triggered_by, scheduled_for, params, status, reason, queued_at, started_at,
    finished_at, duration_ms, error_stage, error_message, node, parent, lag_ms, cancel_requested,
    selection";

#[derive(serde::Deserialize)]
pub(super) struct RunColumns {
    id: String,
    pipeline: String,
    triggered_by: String,
    scheduled_for: Option<i64>,
    params: BTreeMap<String, String>,
    status: String,
    reason: Option<String>,
    queued_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    duration_ms: Option<i64>,
    error_stage: Option<String>,
    error_message: Option<String>,
    node: Option<String>,
    parent: Option<String>,
    lag_ms: Option<i64>,
    cancel_requested: i64,
    selection: Option<RunOptions>,
}

pub(super) fn run_from_json(json: &str) -> Result<Run> {
    serde_json::from_str::<RunColumns>(json)
        .map_err(|e| StoreError::Database(format!("unreadable run: {e}")))?
        .into_run()
}

pub(super) fn runs_from_json(json: &str) -> Result<Vec<Run>> {
    serde_json::from_str::<Vec<RunColumns>>(json)
        .map_err(|e| StoreError::Database(format!("unreadable runs: {e}")))?
        .into_iter()
        .map(RunColumns::into_run)
        .collect()
}

impl RunColumns {
    /// A row of [`RUN_COLUMNS`].
    pub(super) fn from_row(row: &direct::Row) -> Result<RunColumns> {
        let text = |i| Ok::<_, StoreError>(row.text(i)?.map(str::to_owned));
        let needed = |i, name: &str| {
            text(i)?.ok_or_else(|| StoreError::Database(format!("a run without its {name}")))
        };
        let unreadable =
            |e: serde_json::Error| StoreError::Database(format!("unreadable run: {e}"));
        Ok(RunColumns {
            id: needed(0, "id")?,
            pipeline: needed(1, "pipeline")?,
            triggered_by: needed(2, "trigger")?,
            scheduled_for: row.int(3),
            params: serde_json::from_str(row.text(4)?.unwrap_or("{}")).map_err(unreadable)?,
            status: needed(5, "status")?,
            reason: text(6)?,
            queued_at: row
                .int(7)
                .ok_or_else(|| StoreError::Database("a run without its queued_at".into()))?,
            started_at: row.int(8),
            finished_at: row.int(9),
            duration_ms: row.int(10),
            error_stage: text(11)?,
            error_message: text(12)?,
            node: text(13)?,
            parent: text(14)?,
            lag_ms: row.int(15),
            cancel_requested: row.int(16).unwrap_or(0),
            selection: row
                .text(17)?
                .map(serde_json::from_str)
                .transpose()
                .map_err(unreadable)?,
        })
    }

    pub(super) fn into_run(self) -> Result<Run> {
        let options = self.selection.unwrap_or_default();
        Ok(Run {
            id: run_id(&self.id)?,
            pipeline: self.pipeline,
            trigger: parse(&self.triggered_by)?,
            scheduled_for: opt_time(self.scheduled_for)?,
            params: self.params,
            status: parse(&self.status)?,
            reason: self.reason,
            queued_at: time(self.queued_at)?,
            started_at: opt_time(self.started_at)?,
            finished_at: opt_time(self.finished_at)?,
            duration_ms: self.duration_ms,
            error_stage: self.error_stage,
            error_message: self.error_message,
            node: self.node,
            parent: self.parent.as_deref().map(run_id).transpose()?,
            lag_ms: self.lag_ms,
            cancel_requested: self.cancel_requested != 0,
            selection: options.selection,
            period: options.period,
            force: options.force,
        })
    }
}

/// A stage's columns as one JSON object ([`StageColumns`]), its log given by `log` (the
/// column, or `''` where logs are left out).
pub(super) fn stage_object(log: &str) -> String {
    format!(
        "json_object('step', step, 'attempt', attempt, 'status', status,
            'started_at', started_at, 'finished_at', finished_at, 'duration_ms', duration_ms,
            'exit_code', exit_code, 'error', error, 'log', {log}, 'cpu_user_ms', cpu_user_ms,
            'cpu_system_ms', cpu_system_ms, 'peak_rss_kb', peak_rss_kb)"
    )
}

#[derive(serde::Deserialize)]
struct StageColumns {
    step: String,
    attempt: u32,
    status: String,
    started_at: i64,
    finished_at: Option<i64>,
    duration_ms: Option<i64>,
    exit_code: Option<i32>,
    error: Option<String>,
    log: String,
    cpu_user_ms: Option<i64>,
    cpu_system_ms: Option<i64>,
    peak_rss_kb: Option<i64>,
}

impl StageColumns {
    fn into_stage(self, run_id: RunId) -> Result<Stage> {
        Ok(Stage {
            run_id,
            step: self.step,
            attempt: self.attempt,
            status: parse(&self.status)?,
            started_at: time(self.started_at)?,
            finished_at: opt_time(self.finished_at)?,
            duration_ms: self.duration_ms,
            exit_code: self.exit_code,
            error: self.error,
            log: self.log,
            cpu_user_ms: self.cpu_user_ms,
            cpu_system_ms: self.cpu_system_ms,
            peak_rss_kb: self.peak_rss_kb,
        })
    }
}

/// What the run detail's statement answers: the run, its stages, and its counters,
/// outputs and inputs as arrays of columns, its findings as their documents.
#[derive(serde::Deserialize)]
struct DetailColumns {
    run: RunColumns,
    stages: Vec<StageColumns>,
    counters: Vec<(String, String, f64)>,
    outputs: Vec<(String, String, String)>,
    inputs: Vec<(String, String, i64)>,
    findings: Vec<String>,
}

pub(super) fn detail_from_json(json: &str) -> Result<RunDetail> {
    let d: DetailColumns = serde_json::from_str(json)
        .map_err(|e| StoreError::Database(format!("unreadable run: {e}")))?;
    let run = d.run.into_run()?;
    let id = run.id;
    Ok(RunDetail {
        stages: d
            .stages
            .into_iter()
            .map(|s| s.into_stage(id))
            .collect::<Result<_>>()?,
        counters: d
            .counters
            .into_iter()
            .map(|(step, name, value)| Counter {
                run_id: id,
                step,
                name,
                value,
            })
            .collect(),
        outputs: d
            .outputs
            .into_iter()
            .map(|(step, key, value)| Output {
                run_id: id,
                step,
                key,
                value,
            })
            .collect(),
        inputs: d
            .inputs
            .into_iter()
            .map(|(path, sha256, bytes)| InputFile {
                path,
                sha256,
                bytes,
            })
            .collect(),
        findings: d
            .findings
            .iter()
            .map(|doc| crate::decode::finding(doc))
            .collect::<Result<_>>()?,
        run,
    })
}

/// What the run briefs' statement answers: each stage ([`stage_object`], without its log) and
/// each counter beside its run's id.
type BriefColumns = (
    Vec<(String, StageColumns)>,
    Vec<(String, String, String, f64)>,
);

pub(super) fn briefs_from_json(json: &str) -> Result<BTreeMap<RunId, RunBrief>> {
    let (stages, counters): BriefColumns = serde_json::from_str(json)
        .map_err(|e| StoreError::Database(format!("unreadable runs' stages: {e}")))?;
    let mut out: BTreeMap<RunId, RunBrief> = BTreeMap::new();
    for (id, stage) in stages {
        let id = run_id(&id)?;
        out.entry(id)
            .or_default()
            .stages
            .push(stage.into_stage(id)?);
    }
    for (id, step, name, value) in counters {
        let run_id = run_id(&id)?;
        out.entry(run_id).or_default().counters.push(Counter {
            run_id,
            step,
            name,
            value,
        });
    }
    Ok(out)
}

pub(super) fn node_from_row(row: &SqliteRow) -> Result<Node> {
    let pid: i64 = row.try_get("pid")?;
    Ok(Node {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        host: row.try_get("host")?,
        pid: u32::try_from(pid).map_err(|_| StoreError::Database(format!("bad pid {pid}")))?,
        started_at: time(row.try_get("started_at")?)?,
        renewed_at: time(row.try_get("renewed_at")?)?,
        expires_at: time(row.try_get("expires_at")?)?,
    })
}

pub(super) fn check_from_row(row: &SqliteRow) -> Result<CheckRecord> {
    let at = |name: &str| -> Result<Option<Timestamp>> { opt_time(row.try_get(name)?) };
    Ok(CheckRecord {
        name: row.try_get("name")?,
        pings: row.try_get("pings")?,
        last_ping_at: at("last_ping_at")?,
        last_ping: row
            .try_get::<Option<String>, _>("last_ping")?
            .as_deref()
            .and_then(PingKind::parse),
        last_start_at: at("last_start_at")?,
        last_success_at: at("last_success_at")?,
        previous_success_at: at("previous_success_at")?,
        last_failure_at: at("last_failure_at")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        state: row.try_get("state")?,
        streak: row.try_get("streak")?,
    })
}

pub(super) fn incident_from_row(row: &SqliteRow) -> Result<Incident> {
    Ok(Incident {
        id: row.try_get("id")?,
        check: row.try_get("check_name")?,
        started_at: time(row.try_get("started_at")?)?,
        ended_at: opt_time(row.try_get("ended_at")?)?,
        cause: row.try_get("cause")?,
    })
}
