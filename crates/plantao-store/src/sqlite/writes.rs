//! Each kind of write, as SQLite statements inside the caller's transaction. The writes a run
//! and a ping are made of (runs inserted, started and ended, stages, lags, checks' counts, rollups)
//! go through a [`Writer`], a statement per row: the backend's own writer's, or the handle of
//! sqlx's writer lent inside its transaction ([`lent`]); the rest through sqlx.

use std::sync::LazyLock;

use chrono_tz::Tz;

use super::direct::{Bind, Row, Writer, lend};
use super::{WriteTx, alerts, micros, time, toolkit};
use crate::decode::{RunOptions, found, params_to_json, transition_error};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::rollup::{buckets, run_bins, zone};
use crate::{PING_COUNTED, Rows};
use plantao_model::RunId;

pub(super) async fn apply_one(tx: &mut WriteTx, write: Write) -> Result<Applied> {
    match write {
        Write::InsertRun(r) => lent(tx, |w| insert_runs(w, vec![r]))
            .await
            .map(|mut a| a.pop().unwrap_or(Applied::Duplicate)),
        Write::StartRun { id, at, node } => {
            lent(tx, |w| start_run(w, id, at, node.as_deref())).await
        }
        Write::FinishRun(end) => lent(tx, |w| finish_runs(w, vec![end]))
            .await
            .map(|mut a| a.pop().unwrap_or(Applied::Updated)),
        Write::SetLag { id, lag_ms } => lent(tx, |w| set_lag(w, id, lag_ms)).await,
        Write::RequestCancel { id } => lent(tx, |w| request_cancel(w, id)).await,
        Write::SetPaused { pipeline, paused } => {
            let done = sqlx::query("UPDATE pipelines SET paused = ? WHERE name = ?")
                .bind(paused)
                .bind(&pipeline)
                .execute(&mut **tx)
                .await?;
            found(done.rows_affected(), || format!("pipeline {pipeline}"))
        }
        Write::PutStage(s) => lent(tx, |w| put_stages(w, vec![s]))
            .await
            .map(|mut a| a.pop().unwrap_or(Applied::Updated)),
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
        Write::CountResult(t) => lent(tx, |w| count_result(w, t)).await,
        Write::Ping(p) => lent(tx, |w| count_pings(w, vec![p]))
            .await
            .map(|mut a| a.pop().unwrap_or(Applied::Updated)),
    }
}

/// `work` through the handle of the transaction's connection, lent by sqlx ([`lend`]).
pub(super) async fn lent<T>(
    tx: &mut WriteTx,
    work: impl FnOnce(&mut Writer) -> Result<T>,
) -> Result<T> {
    let mut handle = tx.lock_handle().await?;
    lend(&mut handle, work)
}

/// Groups of rows, in order.
pub(super) fn write_rows(w: &mut Writer, group: Vec<Rows>) -> Result<Vec<Applied>> {
    let mut applied = Vec::new();
    for rows in group {
        applied.extend(match rows {
            Rows::Insert(runs) => insert_runs(w, runs)?,
            Rows::Start(starts) => starts
                .into_iter()
                .map(|(id, at, node)| start_run(w, id, at, node.as_deref()))
                .collect::<Result<_>>()?,
            Rows::Stages(stages) => put_stages(w, stages)?,
            Rows::Finish(ends) => finish_runs(w, ends)?,
            Rows::Lags(lags) => lags
                .into_iter()
                .map(|(id, lag_ms)| set_lag(w, id, lag_ms))
                .collect::<Result<_>>()?,
            Rows::Pings(facts) => count_pings(w, facts)?,
        });
    }
    Ok(applied)
}

const START_RUN: &str = "UPDATE runs SET status = 'running', started_at = ?2, node = ?3
    WHERE id = ?1 AND status = 'queued'";

fn start_run(w: &mut Writer, id: RunId, at: Timestamp, node: Option<&str>) -> Result<Applied> {
    let run = id.to_string();
    let binds = [
        Bind::Text(&run),
        Bind::Int(micros(at)),
        Bind::text_or_null(node),
    ];
    match w.execute(START_RUN, &binds, || format!("run {id}"))? {
        1 => Ok(Applied::Updated),
        _ => Err(refusal(w, id, "started")),
    }
}

fn set_lag(w: &mut Writer, id: RunId, lag_ms: i64) -> Result<Applied> {
    let run = id.to_string();
    let binds = [Bind::Text(&run), Bind::Int(lag_ms)];
    let what = || format!("run {id}");
    found(
        w.execute("UPDATE runs SET lag_ms = ?2 WHERE id = ?1", &binds, what)?,
        what,
    )
}

const CANCEL_RUN: &str = "UPDATE runs SET cancel_requested = 1
    WHERE id = ?1 AND status IN ('queued', 'running')";

fn request_cancel(w: &mut Writer, id: RunId) -> Result<Applied> {
    let run = id.to_string();
    match w.execute(CANCEL_RUN, &[Bind::Text(&run)], || format!("run {id}"))? {
        1 => Ok(Applied::Updated),
        _ => Err(refusal(w, id, "cancelled")),
    }
}

const STATUS_OF: &str = "SELECT status FROM runs WHERE id = ?1";

/// Why a run's transition to `wanted` touched no row: it is not there, or not in a state that
/// allows it.
fn refusal(w: &mut Writer, id: RunId, wanted: &str) -> StoreError {
    let run = id.to_string();
    match w.text(STATUS_OF, &[Bind::Text(&run)]) {
        Ok(status) => transition_error(&id, status, wanted),
        Err(e) => e,
    }
}

const INSERT_RUN: &str = "INSERT INTO runs (id, pipeline, triggered_by, scheduled_for, params,
        status, reason, queued_at, started_at, node, parent, selection, finished_at, duration_ms)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
    ON CONFLICT (pipeline, scheduled_for) WHERE scheduled_for IS NOT NULL DO NOTHING";

/// Inserts runs; says for each whether it was inserted or its tick had a run already. Runs
/// that start final (skipped ticks, runs that ended as they started) are rolled up.
pub(super) fn insert_runs(w: &mut Writer, runs: Vec<NewRun>) -> Result<Vec<Applied>> {
    let mut applied = Vec::with_capacity(runs.len());
    let mut ended = Vec::new();
    for r in &runs {
        let id = r.id.to_string();
        let params = params_to_json(&r.params);
        let parent = r.parent.map(|p| p.to_string());
        let options = RunOptions::of(r).to_json().map(|v| v.to_string());
        let finished = r.finished_at().map(micros);
        let binds = [
            Bind::Text(&id),
            Bind::Text(&r.pipeline),
            Bind::Text(r.trigger.as_str()),
            Bind::int_or_null(r.scheduled_for.map(micros)),
            Bind::Text(&params),
            Bind::Text(r.status.as_str()),
            Bind::text_or_null(r.reason.as_deref()),
            Bind::Int(micros(r.queued_at)),
            Bind::int_or_null(r.started_at.map(micros)),
            Bind::text_or_null(r.node.as_deref()),
            Bind::text_or_null(parent.as_deref()),
            Bind::text_or_null(options.as_deref()),
            Bind::int_or_null(finished),
            Bind::int_or_null(finished.map(|_| 0)),
        ];
        if w.execute(INSERT_RUN, &binds, || format!("the parent of run {}", r.id))? == 1 {
            if r.status.is_final() {
                ended.push(r.id);
            }
            applied.push(Applied::Inserted);
        } else {
            applied.push(Applied::Duplicate);
        }
    }
    roll_up(w, &ended)?;
    Ok(applied)
}

const INTERRUPT_STAGES: &str = "UPDATE stages SET status = 'interrupted', finished_at = ?2
    WHERE run_id = ?1 AND status = 'running'";

/// Ends a run and answers what its rollups are told from.
static FINISH_RUN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE runs SET status = ?2, finished_at = ?3,
            duration_ms = CASE WHEN started_at IS NULL THEN NULL ELSE (?3 - started_at) / 1000 END,
            reason = COALESCE(?4, reason), error_stage = ?5, error_message = ?6
         WHERE id = ?1 AND status IN ('queued', 'running')
         RETURNING {SHARE_OF_RUN}"
    )
});

/// Ends runs (the pings that arrive together end theirs in one batch): each run's stages still
/// running (interrupted), the run, then their rollups. A run that is not open is refused, and so
/// is a run ended twice.
pub(super) fn finish_runs(w: &mut Writer, ends: Vec<RunEnd>) -> Result<Vec<Applied>> {
    let mut shares = Vec::with_capacity(ends.len());
    for e in &ends {
        let id = e.id.to_string();
        let binds = [Bind::Text(&id), Bind::Int(micros(e.at))];
        w.execute(INTERRUPT_STAGES, &binds, || format!("run {}", e.id))?;
        let binds = [
            Bind::Text(&id),
            Bind::Text(e.status.as_str()),
            Bind::Int(micros(e.at)),
            Bind::text_or_null(e.reason.as_deref()),
            Bind::text_or_null(e.error_stage.as_deref()),
            Bind::text_or_null(e.error_message.as_deref()),
        ];
        match w.rows(FINISH_RUN.as_str(), &binds, share_of)?.pop() {
            Some(share) => shares.push(share),
            None => return Err(refusal(w, e.id, "finished")),
        }
    }
    add_up(w, &shares)?;
    Ok(vec![Applied::Updated; ends.len()])
}

const PUT_STAGE: &str = "INSERT INTO stages (run_id, step, attempt, status, started_at,
        finished_at, duration_ms, exit_code, error, log, cpu_user_ms, cpu_system_ms, peak_rss_kb)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
    ON CONFLICT (run_id, step, attempt) DO UPDATE SET
        status = excluded.status, started_at = excluded.started_at,
        finished_at = excluded.finished_at, duration_ms = excluded.duration_ms,
        exit_code = excluded.exit_code, error = excluded.error, log = excluded.log,
        cpu_user_ms = excluded.cpu_user_ms, cpu_system_ms = excluded.cpu_system_ms,
        peak_rss_kb = excluded.peak_rss_kb";

/// Records stages (each one's start or end).
pub(super) fn put_stages(w: &mut Writer, stages: Vec<Stage>) -> Result<Vec<Applied>> {
    for s in &stages {
        let run = s.run_id.to_string();
        let binds = [
            Bind::Text(&run),
            Bind::Text(&s.step),
            Bind::Int(i64::from(s.attempt)),
            Bind::Text(s.status.as_str()),
            Bind::Int(micros(s.started_at)),
            Bind::int_or_null(s.finished_at.map(micros)),
            Bind::int_or_null(s.duration_ms),
            Bind::int_or_null(s.exit_code.map(i64::from)),
            Bind::text_or_null(s.error.as_deref()),
            Bind::Text(&s.log),
            Bind::int_or_null(s.cpu_user_ms),
            Bind::int_or_null(s.cpu_system_ms),
            Bind::int_or_null(s.peak_rss_kb),
        ];
        w.execute(PUT_STAGE, &binds, || format!("run {}", s.run_id))?;
    }
    Ok(vec![Applied::Updated; stages.len()])
}

/// A ping (or probe result) counted into its check's record: [`PING_COUNTED`] says how.
static COUNT_PING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO checks (name, pings, last_ping_at, last_ping, last_start_at, last_success_at,
            last_failure_at, last_duration_ms, state, streak)
         VALUES (?1, 1, ?2, ?3, CASE WHEN ?3 = 'start' THEN ?2 END,
            CASE WHEN ?3 = 'success' THEN ?2 END, CASE WHEN ?3 = 'failure' THEN ?2 END,
            CASE WHEN ?3 IN ('success', 'failure') THEN ?4 END, ?5, ?6) {PING_COUNTED}"
    )
});

/// Counts pings (and probe results) into their checks' records, in arrival order.
pub(super) fn count_pings(w: &mut Writer, facts: Vec<PingFact>) -> Result<Vec<Applied>> {
    for p in &facts {
        let binds = [
            Bind::Text(&p.check),
            Bind::Int(micros(p.at)),
            Bind::Text(p.kind.as_str()),
            Bind::int_or_null(p.duration_ms),
            Bind::text_or_null(p.state.as_ref().map(|(s, _)| s.as_str())),
            Bind::int_or_null(p.state.as_ref().map(|(_, n)| *n)),
        ];
        w.execute(COUNT_PING.as_str(), &binds, || format!("check {}", p.check))?;
    }
    Ok(vec![Applied::Updated; facts.len()])
}

const TIMEZONE_OF: &str = "SELECT timezone FROM pipelines WHERE name = ?1";

/// A probe's result counted into its rollups.
fn count_result(w: &mut Writer, tally: Tally) -> Result<Applied> {
    let timezone = w.text(TIMEZONE_OF, &[Bind::Text(&tally.pipeline)])?;
    let share = Share {
        tz: zone(timezone.as_deref().unwrap_or("UTC")),
        tally,
        cpu_ms: 0,
        counters_of: None,
    };
    add_up(w, &[share])?;
    Ok(Applied::Updated)
}

/// What a run's rollups are told from, for a row of `runs`, as [`share_of`] reads it.
const SHARE_OF_RUN: &str = "pipeline, status, triggered_by, COALESCE(scheduled_for, queued_at),
    duration_ms, (SELECT timezone FROM pipelines WHERE name = runs.pipeline),
    (SELECT COALESCE(SUM(COALESCE(cpu_user_ms, 0) + COALESCE(cpu_system_ms, 0)), 0)
       FROM stages WHERE run_id = runs.id),
    EXISTS (SELECT 1 FROM counters WHERE run_id = runs.id), id";

fn share_of(row: &Row) -> Result<Share> {
    let text = |i| {
        row.text(i)?
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Database(format!("a run to roll up without column {i}")))
    };
    Ok(Share {
        tally: Tally {
            pipeline: text(0)?,
            status: crate::decode::parse(&text(1)?)?,
            trigger: crate::decode::parse(&text(2)?)?,
            at: time(row.int(3).unwrap_or(0))?,
            duration_ms: row.int(4),
        },
        tz: zone(row.text(5)?.unwrap_or("UTC")),
        cpu_ms: row.int(6).unwrap_or(0),
        // A run without counters (a ping's) costs no statement for them.
        counters_of: if row.int(7) == Some(1) {
            Some(text(8)?)
        } else {
            None
        },
    })
}

static RUN_TO_ROLL_UP: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SHARE_OF_RUN} FROM runs WHERE id = ?1"));

/// Adds runs that were inserted final to their hourly and daily rollups.
fn roll_up(w: &mut Writer, ids: &[RunId]) -> Result<()> {
    let mut shares = Vec::with_capacity(ids.len());
    for id in ids {
        let run = id.to_string();
        let share = w
            .rows(RUN_TO_ROLL_UP.as_str(), &[Bind::Text(&run)], share_of)?
            .pop();
        shares.push(share.ok_or_else(|| StoreError::NotFound(format!("run {id} to roll up")))?);
    }
    add_up(w, &shares)
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

/// A share of one bucket added to its rollup row. A row's `bins` holds at most one bin (its
/// run's), which the update adds to the bucket's histogram: `json_each` of it is that one entry.
const ADD_UP_RUNS: &str = "INSERT INTO rollup_runs (pipeline, grain, bucket, status, triggered_by,
        runs, timed_runs, duration_ms_sum, duration_ms_max, cpu_ms, bins)
    VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT (pipeline, grain, bucket, status, triggered_by) DO UPDATE SET
        runs = runs + 1, timed_runs = timed_runs + excluded.timed_runs,
        duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum,
        duration_ms_max = MAX(COALESCE(duration_ms_max, excluded.duration_ms_max),
                              COALESCE(excluded.duration_ms_max, duration_ms_max)),
        cpu_ms = cpu_ms + excluded.cpu_ms,
        bins = COALESCE((SELECT json_set(rollup_runs.bins, '$.\"' || e.key || '\"',
                            COALESCE(rollup_runs.bins ->> ('$.\"' || e.key || '\"'), 0) + e.value)
                         FROM json_each(excluded.bins) e), bins)";

/// A run's counters added to one bucket's.
const ADD_UP_COUNTERS: &str = "INSERT INTO rollup_counters (pipeline, grain, bucket, step, name,
        sum, runs)
    SELECT ?2, ?3, ?4, step, name, value, 1 FROM counters WHERE run_id = ?1
    ON CONFLICT (pipeline, grain, bucket, step, name) DO UPDATE SET
        sum = sum + excluded.sum, runs = runs + 1";

/// Adds `shares` to their hourly and daily rollups, one bucket after the other: two shares of
/// one bucket each add their own.
fn add_up(w: &mut Writer, shares: &[Share]) -> Result<()> {
    for s in shares {
        let duration = s.tally.duration_ms;
        let bins = run_bins(duration);
        for (grain, at) in buckets(s.tally.at, s.tz) {
            let bucket = micros(at);
            let binds = [
                Bind::Text(&s.tally.pipeline),
                Bind::Text(grain.as_str()),
                Bind::Int(bucket),
                Bind::Text(s.tally.status.as_str()),
                Bind::Text(s.tally.trigger.as_str()),
                Bind::Int(i64::from(duration.is_some())),
                Bind::Int(duration.unwrap_or(0)),
                Bind::int_or_null(duration),
                Bind::Int(s.cpu_ms),
                Bind::Text(&bins),
            ];
            w.execute(ADD_UP_RUNS, &binds, || {
                format!("pipeline {}", s.tally.pipeline)
            })?;
            if let Some(run) = &s.counters_of {
                let binds = [
                    Bind::Text(run),
                    Bind::Text(&s.tally.pipeline),
                    Bind::Text(grain.as_str()),
                    Bind::Int(bucket),
                ];
                w.execute(ADD_UP_COUNTERS, &binds, || format!("run {run}"))?;
            }
        }
    }
    Ok(())
}
