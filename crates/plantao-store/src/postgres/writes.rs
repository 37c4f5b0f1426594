//! Each kind of write, as PostgreSQL statements inside the caller's transaction.

use std::sync::LazyLock;

use chrono_tz::Tz;
use sqlx::{Postgres, Row, Transaction};

use super::{alerts, toolkit};
use crate::PING_COUNTED;
use crate::decode::{RunOptions, found, params_to_json, transition_error};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::rollup::{buckets, run_bins, zone};
use plantao_model::RunId;

/// A ping counted into its check's record, bound to (check, at, kind, duration, state,
/// streak); how an existing record changes is [`PING_COUNTED`], as on SQLite.
static PING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO checks (name, pings, last_ping_at, last_ping, last_start_at, last_success_at, last_failure_at, last_duration_ms, state, streak)
                 VALUES ($1, 1, $2::timestamptz, $3::text,
                    CASE WHEN $3 = 'start' THEN $2 END,
                    CASE WHEN $3 = 'success' THEN $2 END,
                    CASE WHEN $3 = 'failure' THEN $2 END,
                    CASE WHEN $3 IN ('success', 'failure') THEN $4 END, $5, $6)
                 {PING_COUNTED}"
    )
});

pub(super) async fn apply_one(
    tx: &mut Transaction<'static, Postgres>,
    write: Write,
) -> Result<Applied> {
    match write {
        Write::InsertRun(r) => Ok(insert_runs(tx, vec![r])
            .await?
            .pop()
            .unwrap_or(Applied::Duplicate)),
        Write::StartRun { id, at, node } => {
            let done = sqlx::query("UPDATE runs SET status = 'running', started_at = $1, node = $2 WHERE id = $3 AND status = 'queued'")
                .bind(at)
                .bind(&node)
                .bind(id.as_uuid())
                .execute(&mut **tx)
                .await?;
            updated(tx, id, done.rows_affected(), "started").await
        }
        Write::FinishRun(end) => {
            let done = sqlx::query(
                "UPDATE runs SET status = $1, finished_at = $2,
                    duration_ms = FLOOR(EXTRACT(EPOCH FROM ($2 - started_at)) * 1000)::BIGINT,
                    reason = COALESCE($3, reason), error_stage = $4, error_message = $5
                 WHERE id = $6 AND status IN ('queued', 'running')",
            )
            .bind(end.status.as_str())
            .bind(end.at)
            .bind(&end.reason)
            .bind(&end.error_stage)
            .bind(&end.error_message)
            .bind(end.id.as_uuid())
            .execute(&mut **tx)
            .await?;
            let result = updated(tx, end.id, done.rows_affected(), "finished").await?;
            sqlx::query("UPDATE stages SET status = 'interrupted', finished_at = $1 WHERE run_id = $2 AND status = 'running'")
                .bind(end.at)
                .bind(end.id.as_uuid())
                .execute(&mut **tx)
                .await?;
            roll_up(tx, end.id).await?;
            Ok(result)
        }
        Write::SetLag { id, lag_ms } => {
            let done = sqlx::query("UPDATE runs SET lag_ms = $1 WHERE id = $2")
                .bind(lag_ms)
                .bind(id.as_uuid())
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("run {id}"))
        }
        Write::RequestCancel { id } => {
            let done = sqlx::query("UPDATE runs SET cancel_requested = TRUE WHERE id = $1 AND status IN ('queued', 'running')")
                .bind(id.as_uuid())
                .execute(&mut **tx)
                .await?;
            updated(tx, id, done.rows_affected(), "cancelled").await
        }
        Write::SetPaused { pipeline, paused } => {
            let done = sqlx::query("UPDATE pipelines SET paused = $1 WHERE name = $2")
                .bind(paused)
                .bind(&pipeline)
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("pipeline {pipeline}"))
        }
        Write::PutStage(s) => {
            sqlx::query(
                "INSERT INTO stages (run_id, step, attempt, status, started_at, finished_at, duration_ms, exit_code, error, log, cpu_user_ms, cpu_system_ms, peak_rss_kb)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (run_id, step, attempt) DO UPDATE SET
                    status = excluded.status, started_at = excluded.started_at, finished_at = excluded.finished_at,
                    duration_ms = excluded.duration_ms, exit_code = excluded.exit_code, error = excluded.error,
                    log = excluded.log, cpu_user_ms = excluded.cpu_user_ms, cpu_system_ms = excluded.cpu_system_ms,
                    peak_rss_kb = excluded.peak_rss_kb",
            )
            .bind(s.run_id.as_uuid())
            .bind(&s.step)
            .bind(i32::try_from(s.attempt).unwrap_or(i32::MAX))
            .bind(s.status.as_str())
            .bind(s.started_at)
            .bind(s.finished_at)
            .bind(s.duration_ms)
            .bind(s.exit_code)
            .bind(&s.error)
            .bind(&s.log)
            .bind(s.cpu_user_ms)
            .bind(s.cpu_system_ms)
            .bind(s.peak_rss_kb)
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, || format!("run {}", s.run_id)))?;
            Ok(Applied::Updated)
        }
        Write::PutCounter(c) => {
            sqlx::query(
                "INSERT INTO counters (run_id, step, name, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run_id, step, name) DO UPDATE SET value = excluded.value",
            )
            .bind(c.run_id.as_uuid())
            .bind(&c.step)
            .bind(&c.name)
            .bind(c.value)
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, || format!("run {}", c.run_id)))?;
            Ok(Applied::Updated)
        }
        Write::PutOutput(o) => {
            sqlx::query(
                "INSERT INTO outputs (run_id, step, key, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run_id, step, key) DO UPDATE SET value = excluded.value",
            )
            .bind(o.run_id.as_uuid())
            .bind(&o.step)
            .bind(&o.key)
            .bind(&o.value)
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, || format!("run {}", o.run_id)))?;
            Ok(Applied::Updated)
        }
        Write::PutFinding(f) => {
            sqlx::query(
                "INSERT INTO findings (run_id, step, attempt, line, pattern, doc)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(f.run_id.as_uuid())
            .bind(&f.step)
            .bind(i64::from(f.attempt))
            .bind(i64::from(f.line))
            .bind(&f.pattern)
            .bind(sqlx::types::Json(&f))
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, || format!("run {}", f.run_id)))?;
            Ok(Applied::Updated)
        }
        Write::CreateToken(t) => {
            let done = sqlx::query(
                "INSERT INTO tokens (name, role, hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&t.name)
            .bind(t.role.as_str())
            .bind(&t.hash)
            .bind(t.created_at)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "a token named {} exists already",
                    t.name
                )));
            }
            Ok(Applied::Inserted)
        }
        Write::RevokeToken { name } => {
            let done = sqlx::query("DELETE FROM tokens WHERE name = $1")
                .bind(&name)
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("token {name}"))
        }
        Write::Audit(a) => {
            sqlx::query(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(a.at)
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.target)
            .bind(&a.detail)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Inserted)
        }
        Write::OpenAlert(a) => alerts::open(tx, a).await,
        Write::ChangeAlert { id, change } => alerts::change(tx, id, change).await,
        Write::Enqueue(n) => alerts::enqueue(tx, n).await,
        Write::Attempt(a) => alerts::attempt(tx, a).await,
        Write::SetThreshold { rule, value, at } => {
            alerts::set_threshold(tx, &rule, value, at).await
        }
        Write::Defer { ids, until } => alerts::defer(tx, &ids, until).await,
        Write::AddSilence(s) => alerts::add_silence(tx, &s).await,
        Write::ExpireSilence { id, at } => alerts::expire_silence(tx, id, at).await,
        Write::SetState {
            pipeline,
            key,
            value,
            at,
            run,
        } => toolkit::set_state(tx, &pipeline, &key, value.as_deref(), at, run).await,
        Write::PutInputs { run, inputs } => toolkit::put_inputs(tx, run, &inputs).await,
        Write::SetLastInputs {
            pipeline,
            run,
            inputs,
        } => toolkit::set_last_inputs(tx, &pipeline, run, &inputs).await,
        Write::Checkpoint(c) => toolkit::checkpoint(tx, &c).await,
        Write::PutBackfill(b) => toolkit::put_backfill(tx, &b).await,
        Write::OpenIncident { check, at, cause } => {
            let done = sqlx::query(
                "INSERT INTO incidents (check_name, started_at, cause) VALUES ($1, $2, $3)
                 ON CONFLICT (check_name) WHERE ended_at IS NULL DO NOTHING",
            )
            .bind(&check)
            .bind(at)
            .bind(&cause)
            .execute(&mut **tx)
            .await?;
            Ok(if done.rows_affected() == 1 {
                Applied::Inserted
            } else {
                Applied::Duplicate
            })
        }
        Write::CloseIncident { check, at } => {
            sqlx::query(
                "UPDATE incidents SET ended_at = $1 WHERE check_name = $2 AND ended_at IS NULL",
            )
            .bind(at)
            .bind(&check)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Updated)
        }
        Write::CountResult(t) => {
            let timezone: Option<String> =
                sqlx::query_scalar("SELECT timezone FROM pipelines WHERE name = $1")
                    .bind(&t.pipeline)
                    .fetch_optional(&mut **tx)
                    .await?;
            add_up(tx, &t, zone(timezone.as_deref().unwrap_or("UTC")), 0, None).await?;
            Ok(Applied::Updated)
        }
        Write::Ping(p) => {
            sqlx::query(sqlx::AssertSqlSafe(PING.as_str()))
                .bind(&p.check)
                .bind(p.at)
                .bind(p.kind.as_str())
                .bind(p.duration_ms)
                .bind(p.state.as_ref().map(|(s, _)| s.as_str()))
                .bind(p.state.as_ref().map(|(_, n)| *n))
                .execute(&mut **tx)
                .await?;
            Ok(Applied::Updated)
        }
    }
}

async fn updated(
    tx: &mut Transaction<'static, Postgres>,
    id: RunId,
    rows: u64,
    wanted: &str,
) -> Result<Applied> {
    if rows == 1 {
        return Ok(Applied::Updated);
    }
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_optional(&mut **tx)
        .await?;
    Err(transition_error(&id, current, wanted))
}

/// Rows per multi-row INSERT: 14 parameters each, far below PostgreSQL's limit of 65,535.
const INSERT_ROWS: usize = 200;

/// Inserts runs with as few statements as rows allow; says for each whether it was inserted or
/// its tick had a run already. Runs that start final (skipped ticks, runs that ended as they
/// started) are rolled up.
pub(super) async fn insert_runs(
    tx: &mut Transaction<'static, Postgres>,
    runs: Vec<NewRun>,
) -> Result<Vec<Applied>> {
    let mut applied = Vec::with_capacity(runs.len());
    for chunk in runs.chunks(INSERT_ROWS) {
        let mut params = Vec::with_capacity(chunk.len());
        for r in chunk {
            params.push(
                serde_json::from_str::<serde_json::Value>(&params_to_json(&r.params))
                    .map_err(|e| StoreError::Database(e.to_string()))?,
            );
        }
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO runs (id, pipeline, triggered_by, scheduled_for, params, status, reason, queued_at, started_at, node, parent, selection, finished_at, duration_ms) ",
        );
        q.push_values(chunk.iter().zip(params), |mut row, (r, params)| {
            row.push_bind(r.id.as_uuid())
                .push_bind(r.pipeline.clone())
                .push_bind(r.trigger.as_str())
                .push_bind(r.scheduled_for)
                .push_bind(params)
                .push_bind(r.status.as_str())
                .push_bind(r.reason.clone())
                .push_bind(r.queued_at)
                .push_bind(r.started_at)
                .push_bind(r.node.clone())
                .push_bind(r.parent.map(|p| p.as_uuid()))
                .push_bind(RunOptions::of(r).to_json())
                .push_bind(r.finished_at())
                .push_bind(r.finished_at().map(|_| 0_i64));
        });
        q.push(" ON CONFLICT (pipeline, scheduled_for) WHERE scheduled_for IS NOT NULL DO NOTHING RETURNING id");
        let inserted: std::collections::HashSet<uuid::Uuid> = q
            .build_query_scalar::<uuid::Uuid>()
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        for r in chunk {
            if inserted.contains(&r.id.as_uuid()) {
                if r.status.is_final() {
                    roll_up(tx, r.id).await?;
                }
                applied.push(Applied::Inserted);
            } else {
                applied.push(Applied::Duplicate);
            }
        }
    }
    Ok(applied)
}

/// Adds a run that just finished to its hourly and daily rollups.
async fn roll_up(tx: &mut Transaction<'static, Postgres>, id: RunId) -> Result<()> {
    let row = sqlx::query(
        "SELECT r.pipeline, r.status, r.triggered_by, COALESCE(r.scheduled_for, r.queued_at) AS at,
                r.duration_ms,
                (SELECT timezone FROM pipelines WHERE name = r.pipeline) AS timezone,
                (SELECT COALESCE(SUM(COALESCE(cpu_user_ms, 0) + COALESCE(cpu_system_ms, 0)), 0)::BIGINT
                   FROM stages WHERE run_id = r.id) AS cpu_ms
         FROM runs r WHERE r.id = $1",
    )
    .bind(id.as_uuid())
    .fetch_one(&mut **tx)
    .await?;
    let pipeline: String = row.try_get("pipeline")?;
    let status: String = row.try_get("status")?;
    let duration: Option<i64> = row.try_get("duration_ms")?;
    let tz = zone(row.try_get::<Option<&str>, _>("timezone")?.unwrap_or("UTC"));
    add_up(
        tx,
        &Tally {
            pipeline,
            status: crate::decode::parse(&status)?,
            trigger: crate::decode::parse(row.try_get::<&str, _>("triggered_by")?)?,
            at: row.try_get("at")?,
            duration_ms: duration,
        },
        tz,
        row.try_get::<i64, _>("cpu_ms")?,
        Some(id),
    )
    .await
}

/// Adds `t` to its hourly and daily rollups (in `tz`), with `cpu_ms` and, when `counters_of`
/// names its run, that run's counters.
async fn add_up(
    tx: &mut Transaction<'static, Postgres>,
    t: &Tally,
    tz: Tz,
    cpu_ms: i64,
    counters_of: Option<RunId>,
) -> Result<()> {
    // Both buckets (the hour and the local day) in each statement: one round trip, not two.
    let [(hour, in_hour), (day, in_day)] = buckets(t.at, tz);
    let duration = t.duration_ms;
    // `bins` holds at most the run's one bin, which the update adds to the bucket's histogram.
    sqlx::query(
        "INSERT INTO rollup_runs AS r (pipeline, grain, bucket, status, triggered_by, runs, timed_runs, duration_ms_sum, duration_ms_max, cpu_ms, bins)
         VALUES ($1, $2, $3, $6, $7, 1, $8, $9, $10, $11, $12::jsonb), ($1, $4, $5, $6, $7, 1, $8, $9, $10, $11, $12::jsonb)
         ON CONFLICT (pipeline, grain, bucket, status, triggered_by) DO UPDATE SET
            runs = r.runs + 1, timed_runs = r.timed_runs + excluded.timed_runs,
            duration_ms_sum = r.duration_ms_sum + excluded.duration_ms_sum,
            duration_ms_max = GREATEST(r.duration_ms_max, excluded.duration_ms_max),
            cpu_ms = r.cpu_ms + excluded.cpu_ms,
            bins = r.bins || COALESCE((SELECT jsonb_object_agg(e.key, COALESCE((r.bins ->> e.key)::bigint, 0) + e.value::bigint)
                                       FROM jsonb_each_text(excluded.bins) e), '{}')",
    )
    .bind(&t.pipeline)
    .bind(hour.as_str())
    .bind(in_hour)
    .bind(day.as_str())
    .bind(in_day)
    .bind(t.status.as_str())
    .bind(t.trigger.as_str())
    .bind(i64::from(duration.is_some()))
    .bind(duration.unwrap_or(0))
    .bind(duration)
    .bind(cpu_ms)
    .bind(run_bins(duration))
    .execute(&mut **tx)
    .await?;
    if let Some(id) = counters_of {
        sqlx::query(
            "INSERT INTO rollup_counters AS c (pipeline, grain, bucket, step, name, sum, runs)
             SELECT $1::text, $2::text, $3::timestamptz, step, name, value, 1 FROM counters WHERE run_id = $6
             UNION ALL
             SELECT $1::text, $4::text, $5::timestamptz, step, name, value, 1 FROM counters WHERE run_id = $6
             ON CONFLICT (pipeline, grain, bucket, step, name) DO UPDATE SET
                sum = c.sum + excluded.sum, runs = c.runs + 1",
        )
        .bind(&t.pipeline)
        .bind(hour.as_str())
        .bind(in_hour)
        .bind(day.as_str())
        .bind(in_day)
        .bind(id.as_uuid())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
