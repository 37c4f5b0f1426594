//! Each kind of write, as SQLite statements inside the caller's transaction.

use sqlx::Row;

use chrono_tz::Tz;

use super::{WriteTx, alerts, micros, time, toolkit};
use crate::PING_COUNTED;
use crate::decode::{RunOptions, found, params_to_json, transition_error};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::rollup::{Grain, buckets, run_bins, zone};
use plantao_model::RunId;

pub(super) async fn apply_one(tx: &mut WriteTx, write: Write) -> Result<Applied> {
    match write {
        Write::InsertRun(r) => Ok(insert_runs(tx, vec![r])
            .await?
            .pop()
            .unwrap_or(Applied::Duplicate)),
        Write::StartRun { id, at, node } => {
            let done = sqlx::query("UPDATE runs SET status = 'running', started_at = ?, node = ? WHERE id = ? AND status = 'queued'")
                .bind(micros(at))
                .bind(&node)
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
            updated(tx, id, done.rows_affected(), "started").await
        }
        Write::FinishRun(end) => Ok(finish_runs(tx, vec![end])
            .await?
            .pop()
            .unwrap_or(Applied::Updated)),
        Write::SetLag { id, lag_ms } => {
            let done = sqlx::query("UPDATE runs SET lag_ms = ? WHERE id = ?")
                .bind(lag_ms)
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("run {id}"))
        }
        Write::RequestCancel { id } => {
            let done = sqlx::query("UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status IN ('queued', 'running')")
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
            updated(tx, id, done.rows_affected(), "cancelled").await
        }
        Write::SetPaused { pipeline, paused } => {
            let done = sqlx::query("UPDATE pipelines SET paused = ? WHERE name = ?")
                .bind(paused)
                .bind(&pipeline)
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("pipeline {pipeline}"))
        }
        Write::PutStage(s) => Ok(put_stages(tx, vec![s])
            .await?
            .pop()
            .unwrap_or(Applied::Updated)),
        Write::PutCounter(c) => {
            sqlx::query(
                "INSERT INTO counters (run_id, step, name, value) VALUES (?, ?, ?, ?)
                 ON CONFLICT (run_id, step, name) DO UPDATE SET value = excluded.value",
            )
            .bind(c.run_id.to_string())
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
                "INSERT INTO outputs (run_id, step, key, value) VALUES (?, ?, ?, ?)
                 ON CONFLICT (run_id, step, key) DO UPDATE SET value = excluded.value",
            )
            .bind(o.run_id.to_string())
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
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(f.run_id.to_string())
            .bind(&f.step)
            .bind(i64::from(f.attempt))
            .bind(i64::from(f.line))
            .bind(&f.pattern)
            .bind(serde_json::to_string(&f).unwrap_or_default())
            .execute(&mut **tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, || format!("run {}", f.run_id)))?;
            Ok(Applied::Updated)
        }
        Write::CreateToken(t) => {
            let done = sqlx::query(
                "INSERT INTO tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&t.name)
            .bind(t.role.as_str())
            .bind(&t.hash)
            .bind(micros(t.created_at))
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
            let done = sqlx::query("DELETE FROM tokens WHERE name = ?")
                .bind(&name)
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("token {name}"))
        }
        Write::Audit(a) => {
            sqlx::query(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(micros(a.at))
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
                "INSERT INTO incidents (check_name, started_at, cause) VALUES (?, ?, ?)
                 ON CONFLICT (check_name) WHERE ended_at IS NULL DO NOTHING",
            )
            .bind(&check)
            .bind(micros(at))
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
                "UPDATE incidents SET ended_at = ? WHERE check_name = ? AND ended_at IS NULL",
            )
            .bind(micros(at))
            .bind(&check)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Updated)
        }
        Write::CountResult(t) => {
            let timezone: Option<String> =
                sqlx::query_scalar("SELECT timezone FROM pipelines WHERE name = ?")
                    .bind(&t.pipeline)
                    .fetch_optional(&mut **tx)
                    .await?;
            let share = Share {
                tally: t,
                tz: zone(timezone.as_deref().unwrap_or("UTC")),
                cpu_ms: 0,
                counters_of: None,
            };
            add_up(tx, &[share]).await?;
            Ok(Applied::Updated)
        }
        Write::Ping(p) => Ok(count_pings(tx, vec![p])
            .await?
            .pop()
            .unwrap_or(Applied::Updated)),
    }
}

/// `Updated` when the UPDATE touched the run, else why it did not.
async fn updated(tx: &mut WriteTx, id: RunId, rows: u64, wanted: &str) -> Result<Applied> {
    if rows == 1 {
        return Ok(Applied::Updated);
    }
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM runs WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Err(transition_error(&id, current, wanted))
}

/// Rows per multi-row INSERT: 11 parameters each, far below SQLite's limit of 32,766.
const INSERT_ROWS: usize = 200;

/// Inserts runs with as few statements as rows allow; says for each whether it was inserted or
/// its tick had a run already. Runs that start final (skipped ticks) are rolled up.
pub(super) async fn insert_runs(tx: &mut WriteTx, runs: Vec<NewRun>) -> Result<Vec<Applied>> {
    let mut applied = Vec::with_capacity(runs.len());
    for chunk in runs.chunks(INSERT_ROWS) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO runs (id, pipeline, triggered_by, scheduled_for, params, status, reason, queued_at, started_at, node, parent, selection) ",
        );
        q.push_values(chunk, |mut row, r| {
            row.push_bind(r.id.to_string())
                .push_bind(r.pipeline.clone())
                .push_bind(r.trigger.as_str())
                .push_bind(r.scheduled_for.map(micros))
                .push_bind(params_to_json(&r.params))
                .push_bind(r.status.as_str())
                .push_bind(r.reason.clone())
                .push_bind(micros(r.queued_at))
                .push_bind(r.started_at.map(micros))
                .push_bind(r.node.clone())
                .push_bind(r.parent.map(|p| p.to_string()))
                .push_bind(RunOptions::of(r).to_json().map(|v| v.to_string()));
        });
        q.push(" ON CONFLICT (pipeline, scheduled_for) WHERE scheduled_for IS NOT NULL DO NOTHING RETURNING id");
        let inserted: std::collections::HashSet<String> = q
            .build_query_scalar::<String>()
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        for r in chunk {
            if inserted.contains(&r.id.to_string()) {
                if r.status.is_final() {
                    roll_up(tx, &[r.id]).await?;
                }
                applied.push(Applied::Inserted);
            } else {
                applied.push(Applied::Duplicate);
            }
        }
    }
    Ok(applied)
}

/// Rows per multi-row statement of the bulk writes below: at most 13 parameters a row (a
/// stage), far below SQLite's limit of 32,766.
const BULK_ROWS: usize = 200;

/// Ends runs (the pings that arrive together end theirs in one batch) in a few statements:
/// the runs, their stages still running (interrupted), and their rollups. A run that is not
/// open is refused as one by one, and so is a run ended twice.
pub(super) async fn finish_runs(tx: &mut WriteTx, ends: Vec<RunEnd>) -> Result<Vec<Applied>> {
    let mut seen = std::collections::HashSet::new();
    if !ends.iter().all(|e| seen.insert(e.id)) {
        let mut applied = Vec::with_capacity(ends.len());
        for end in ends {
            applied.extend(Box::pin(finish_runs(tx, vec![end])).await?);
        }
        return Ok(applied);
    }
    for chunk in ends.chunks(BULK_ROWS) {
        let mut q = sqlx::QueryBuilder::new(
            "WITH v(id, status, at, reason, error_stage, error_message) AS (",
        );
        q.push_values(chunk, |mut row, e| {
            row.push_bind(e.id.to_string())
                .push_bind(e.status.as_str())
                .push_bind(micros(e.at))
                .push_bind(e.reason.clone())
                .push_bind(e.error_stage.clone())
                .push_bind(e.error_message.clone());
        });
        q.push(
            ") UPDATE runs SET status = v.status, finished_at = v.at,
                duration_ms = CASE WHEN runs.started_at IS NULL THEN NULL ELSE (v.at - runs.started_at) / 1000 END,
                reason = COALESCE(v.reason, runs.reason), error_stage = v.error_stage, error_message = v.error_message
             FROM v WHERE runs.id = v.id AND runs.status IN ('queued', 'running')
             RETURNING runs.id",
        );
        let done: std::collections::HashSet<String> = q
            .build_query_scalar::<String>()
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        if let Some(e) = chunk.iter().find(|e| !done.contains(&e.id.to_string())) {
            updated(tx, e.id, 0, "finished").await?;
        }
        let mut q = sqlx::QueryBuilder::new("WITH v(id, at) AS (");
        q.push_values(chunk, |mut row, e| {
            row.push_bind(e.id.to_string()).push_bind(micros(e.at));
        });
        q.push(
            ") UPDATE stages SET status = 'interrupted', finished_at = v.at
             FROM v WHERE stages.run_id = v.id AND stages.status = 'running'",
        );
        q.build().execute(&mut **tx).await?;
        let ids: Vec<RunId> = chunk.iter().map(|e| e.id).collect();
        roll_up(tx, &ids).await?;
    }
    Ok(vec![Applied::Updated; ends.len()])
}

/// Records stages (each one's start or end) in multi-row statements.
pub(super) async fn put_stages(tx: &mut WriteTx, stages: Vec<Stage>) -> Result<Vec<Applied>> {
    for chunk in stages.chunks(BULK_ROWS) {
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO stages (run_id, step, attempt, status, started_at, finished_at, duration_ms, exit_code, error, log, cpu_user_ms, cpu_system_ms, peak_rss_kb) ",
        );
        q.push_values(chunk, |mut row, s| {
            row.push_bind(s.run_id.to_string())
                .push_bind(s.step.clone())
                .push_bind(i64::from(s.attempt))
                .push_bind(s.status.as_str())
                .push_bind(micros(s.started_at))
                .push_bind(s.finished_at.map(micros))
                .push_bind(s.duration_ms)
                .push_bind(s.exit_code)
                .push_bind(s.error.clone())
                .push_bind(s.log.clone())
                .push_bind(s.cpu_user_ms)
                .push_bind(s.cpu_system_ms)
                .push_bind(s.peak_rss_kb);
        });
        q.push(
            " ON CONFLICT (run_id, step, attempt) DO UPDATE SET
                status = excluded.status, started_at = excluded.started_at, finished_at = excluded.finished_at,
                duration_ms = excluded.duration_ms, exit_code = excluded.exit_code, error = excluded.error,
                log = excluded.log, cpu_user_ms = excluded.cpu_user_ms, cpu_system_ms = excluded.cpu_system_ms,
                peak_rss_kb = excluded.peak_rss_kb",
        );
        q.build().execute(&mut **tx).await.map_err(|e| {
            StoreError::from_sqlx(e, || match chunk {
                [one] => format!("run {}", one.run_id),
                many => format!(
                    "a run of {} stages (the first's: {})",
                    many.len(),
                    many[0].run_id
                ),
            })
        })?;
    }
    Ok(vec![Applied::Updated; stages.len()])
}

/// Counts pings (and probe results) into their checks' records, in arrival order, in
/// multi-row statements.
pub(super) async fn count_pings(tx: &mut WriteTx, facts: Vec<PingFact>) -> Result<Vec<Applied>> {
    for (n, chunk) in facts.chunks(BULK_ROWS).enumerate() {
        let mut q =
            sqlx::QueryBuilder::new("WITH v(seq, name, at, kind, duration, state, streak) AS (");
        q.push_values(chunk.iter().enumerate(), |mut row, (i, p)| {
            row.push_bind(i64::try_from(n * BULK_ROWS + i).unwrap_or(i64::MAX))
                .push_bind(p.check.clone())
                .push_bind(micros(p.at))
                .push_bind(p.kind.as_str())
                .push_bind(p.duration_ms)
                .push_bind(p.state.as_ref().map(|(s, _)| s.clone()))
                .push_bind(p.state.as_ref().map(|(_, n)| *n));
        });
        // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
        q.push(
            ") INSERT INTO checks (name, pings, last_ping_at, last_ping, last_start_at, last_success_at, last_failure_at, last_duration_ms, state, streak)
             SELECT name, 1, at, kind,
                CASE WHEN kind = 'start' THEN at END,
                CASE WHEN kind = 'success' THEN at END,
                CASE WHEN kind = 'failure' THEN at END,
                CASE WHEN kind IN ('success', 'failure') THEN duration END, state, streak
             FROM v WHERE true ORDER BY seq ",
        );
        q.push(PING_COUNTED);
        q.build().execute(&mut **tx).await?;
    }
    Ok(vec![Applied::Updated; facts.len()])
}

/// Adds runs that just finished to their hourly and daily rollups, read together.
async fn roll_up(tx: &mut WriteTx, ids: &[RunId]) -> Result<()> {
    let mut q = sqlx::QueryBuilder::new(
        "SELECT r.id, r.pipeline, r.status, r.triggered_by, COALESCE(r.scheduled_for, r.queued_at) AS at,
                r.duration_ms,
                (SELECT timezone FROM pipelines WHERE name = r.pipeline) AS timezone,
                (SELECT COALESCE(SUM(COALESCE(cpu_user_ms, 0) + COALESCE(cpu_system_ms, 0)), 0)
                   FROM stages WHERE run_id = r.id) AS cpu_ms,
                EXISTS (SELECT 1 FROM counters WHERE run_id = r.id) AS counted
         FROM runs r WHERE r.id IN (",
    );
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id.to_string());
    }
    q.push(")");
    let rows = q.build().fetch_all(&mut **tx).await?;
    if rows.len() != ids.len() {
        return Err(StoreError::NotFound(format!(
            "{} of the runs to roll up",
            ids.len() - rows.len()
        )));
    }
    let mut shares = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        shares.push(Share {
            tally: Tally {
                pipeline: row.try_get("pipeline")?,
                status: crate::decode::parse(row.try_get::<&str, _>("status")?)?,
                trigger: crate::decode::parse(row.try_get::<&str, _>("triggered_by")?)?,
                at: time(row.try_get("at")?)?,
                duration_ms: row.try_get("duration_ms")?,
            },
            tz: zone(row.try_get::<Option<&str>, _>("timezone")?.unwrap_or("UTC")),
            cpu_ms: row.try_get("cpu_ms")?,
            // A run without counters (a ping's) costs no statement for them.
            counters_of: row.try_get::<bool, _>("counted")?.then_some(id),
        });
    }
    add_up(tx, &shares).await
}

/// A run's (or a probe result's) part of its hourly and daily rollups.
struct Share {
    tally: Tally,
    /// The zone its day is in.
    tz: Tz,
    cpu_ms: i64,
    /// The run whose counters are added too.
    counters_of: Option<String>,
}

/// Adds `shares` to their hourly and daily rollups. Each statement takes every share's two
/// buckets (the hour and the local day): a statement is a round trip to SQLite's thread, which
/// costs more than the SQL. SQLite applies the rows of one statement in turn, so two shares of
/// one bucket each add their own.
async fn add_up(tx: &mut WriteTx, shares: &[Share]) -> Result<()> {
    for chunk in shares.chunks(BULK_ROWS / 2) {
        let rows: Vec<(&Share, Grain, i64)> = chunk
            .iter()
            .flat_map(|s| buckets(s.tally.at, s.tz).map(|(grain, at)| (s, grain, micros(at))))
            .collect();
        // A row's `bins` holds at most one bin (its run's), which the update adds to the
        // bucket's histogram: `json_each` of it is that one entry.
        let mut q = sqlx::QueryBuilder::new(
            "INSERT INTO rollup_runs (pipeline, grain, bucket, status, triggered_by, runs, timed_runs, duration_ms_sum, duration_ms_max, cpu_ms, bins) ",
        );
        q.push_values(&rows, |mut row, (s, grain, bucket)| {
            let duration = s.tally.duration_ms;
            row.push_bind(s.tally.pipeline.clone())
                .push_bind(grain.as_str())
                .push_bind(*bucket)
                .push_bind(s.tally.status.as_str())
                .push_bind(s.tally.trigger.as_str())
                .push("1")
                .push_bind(i64::from(duration.is_some()))
                .push_bind(duration.unwrap_or(0))
                .push_bind(duration)
                .push_bind(s.cpu_ms)
                .push_bind(run_bins(duration));
        });
        q.push(
            " ON CONFLICT (pipeline, grain, bucket, status, triggered_by) DO UPDATE SET
                runs = runs + 1, timed_runs = timed_runs + excluded.timed_runs,
                duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum,
                duration_ms_max = MAX(COALESCE(duration_ms_max, excluded.duration_ms_max), COALESCE(excluded.duration_ms_max, duration_ms_max)),
                cpu_ms = cpu_ms + excluded.cpu_ms,
                bins = COALESCE((SELECT json_set(rollup_runs.bins, '$.\"' || e.key || '\"',
                                    COALESCE(rollup_runs.bins ->> ('$.\"' || e.key || '\"'), 0) + e.value)
                                 FROM json_each(excluded.bins) e), bins)",
        );
        q.build().execute(&mut **tx).await?;
        let counted: Vec<(&str, &(&Share, Grain, i64))> = rows
            .iter()
            .filter_map(|r| r.0.counters_of.as_deref().map(|id| (id, r)))
            .collect();
        if !counted.is_empty() {
            let mut q = sqlx::QueryBuilder::new("WITH v(run_id, pipeline, grain, bucket) AS (");
            q.push_values(&counted, |mut row, (id, (s, grain, bucket))| {
                row.push_bind(*id)
                    .push_bind(s.tally.pipeline.clone())
                    .push_bind(grain.as_str())
                    .push_bind(*bucket);
            });
            // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
            q.push(
                ") INSERT INTO rollup_counters (pipeline, grain, bucket, step, name, sum, runs)
                 SELECT v.pipeline, v.grain, v.bucket, c.step, c.name, c.value, 1
                 FROM v JOIN counters c ON c.run_id = v.run_id WHERE true
                 ON CONFLICT (pipeline, grain, bucket, step, name) DO UPDATE SET
                    sum = sum + excluded.sum, runs = runs + 1",
            );
            q.build().execute(&mut **tx).await?;
        }
    }
    Ok(())
}
