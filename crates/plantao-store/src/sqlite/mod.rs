//! The embedded SQLite backend: one file, WAL mode, one writer connection and a few readers.

mod alerts;
mod checkpoint;
pub(crate) mod connection;
mod direct;
mod rows;
mod toolkit;
mod writes;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use plantao_model::RunId;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use crate::error::{Result, StoreError};
use crate::records::*;
use crate::rollup::{Bucket, Gather, Grain, Histogram, RunsCols, Summary};
use crate::{
    Alert, Backend, Notification, NotificationRecord, Rows, Silence, Step, Store, detached,
    first_id_at, steps,
};
use checkpoint::Checkpointer;
use connection::{BUSY_WAIT, WriteTx, Writers, connect, migrate};
use direct::{Bind, OwnWriter, Readers};
use rows::{
    RUN_COLUMNS, RUN_JSON, RunColumns, briefs_from_json, detail_from_json, micros, node_from_row,
    run_from_json, run_id, runs_from_json, stage_object, time, token_from_row,
};
use uuid::Uuid;
use writes::{apply_one, lent, write_rows};

/// A counters rollup row as read back: its key (a bucket, a pipeline or both), step, name,
/// sum and runs.
type CounterCols<K> = (K, String, String, f64, i64);

#[derive(Clone)]
pub(crate) struct SqliteStore {
    writer: Writers,
    /// The writes of runs and pings (see [`direct`]).
    own: Arc<OwnWriter>,
    reader: SqlitePool,
    /// The reads run on the calling thread (see [`direct`]).
    direct: Arc<Readers>,
    /// The WAL's checkpoints, off the writers' path (see [`checkpoint`]).
    checkpoints: Arc<Checkpointer>,
    path: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path)
    }
}

impl SqliteStore {
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let unavailable = |e: sqlx::Error| StoreError::Unavailable {
            url: url.to_owned(),
            reason: e.to_string(),
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::BadUrl(url.to_owned()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_WAIT)
            .foreign_keys(true)
            .pragma("cache_size", "-512");
        let path = options.get_filename().display().to_string();
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let checkpoints = Arc::new(Checkpointer::start(&path, turn.clone())?);
        let writer = Writers {
            pool: connect(1, options.clone(), Some(checkpoints.clone()))
                .await
                .map_err(unavailable)?,
            turn,
        };
        migrate(&writer).await?;
        let reader = connect(4, options.read_only(true), None)
            .await
            .map_err(unavailable)?;
        Ok(SqliteStore {
            writer,
            reader,
            direct: Arc::new(Readers::new(&path)?),
            own: Arc::new(OwnWriter::new(&path, checkpoints.clone())?),
            checkpoints,
            path,
        })
    }
}

/// What several of [`Store`]'s methods share.
impl SqliteStore {
    /// What [`Store::totals`] adds up, by key: `group` names the columns summed by (the
    /// pipeline, or the pipeline and the bucket) and `key` how a row's JSON carries them (its
    /// shape is `K`'s). Each table answers with one JSON value, not a row at a time: with 50
    /// pipelines' days that is 0.25 ms against 1 ms in SQLite alone, and sqlx hands every row
    /// across threads.
    async fn totals_of<K: serde::de::DeserializeOwned + Ord + Clone>(
        &self,
        pipelines: &[String],
        (grain, from, to): (Grain, Timestamp, Timestamp),
        group: &str,
        key: &str,
    ) -> Result<BTreeMap<K, Summary>> {
        let names = serde_json::json!(pipelines).to_string();
        let (grain, from, to) = (grain.as_str(), micros(from), micros(to));
        let range = "pipeline IN (SELECT value FROM json_each(?1)) AND grain = ?2
                     AND bucket >= ?3 AND bucket < ?4";
        let (runs, counters): (Vec<(K, RunsCols)>, Vec<CounterCols<K>>) =
            json_value(
                &self.reader,
                &format!(
                    "SELECT json_array(
                        (SELECT json_group_array(json_array({key}, json_array(status, triggered_by,
                                runs, timed_runs, duration_ms_sum, duration_ms_max, cpu_ms)))
                         FROM (SELECT {group}, status, triggered_by, SUM(runs) AS runs,
                                SUM(timed_runs) AS timed_runs, SUM(duration_ms_sum) AS duration_ms_sum,
                                MAX(duration_ms_max) AS duration_ms_max, SUM(cpu_ms) AS cpu_ms
                               FROM rollup_runs WHERE {range} GROUP BY {group}, status, triggered_by)),
                        (SELECT json_group_array(json_array({key}, step, name, sum, runs))
                         FROM (SELECT {group}, step, name, SUM(sum) AS sum, SUM(runs) AS runs
                               FROM rollup_counters WHERE {range} GROUP BY {group}, step, name)))"
                ),
                (&names, grain, from, to),
            )
            .await?;
        let runs = runs.into_iter().map(|(k, cols)| (k, cols.into())).collect();
        let counters = counters
            .into_iter()
            .map(|(k, step, name, sum, n)| (k, format!("{step}.{name}"), sum, n))
            .collect();
        Ok(crate::rollup::totals(runs, counters))
    }
}

/// SQLite only uses a partial index (`runs_open`, `runs_open_pipeline`: the runs still queued or
/// running) when a query repeats the index's own condition, `status IN ('queued', 'running')`;
/// the queries on open runs do, so that they never scan the whole history.
#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<Applied>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let steps = steps(writes);
        // Only the writes runs and pings are made of: the backend's own writer, on a blocking
        // thread (the transaction runs to its end even if the caller stops waiting).
        if steps.iter().all(|s| matches!(s, Step::Rows(_))) {
            let group: Vec<Rows> = steps
                .into_iter()
                .filter_map(|s| match s {
                    Step::Rows(rows) => Some(rows),
                    Step::One(_) => None,
                })
                .collect();
            let turn = self.writer.turn().await;
            let own = self.own.clone();
            return tokio::task::spawn_blocking(move || {
                let _turn = turn;
                own.transaction(|w| write_rows(w, group))
            })
            .await
            .map_err(|e| StoreError::Database(format!("the writer's thread failed: {e}")))?;
        }
        let mut tx = WriteTx::begin(&self.writer).await?;
        let mut applied = Vec::new();
        let mut steps = steps.into_iter().peekable();
        while let Some(step) = steps.next() {
            match step {
                Step::One(write) => applied.push(apply_one(&mut tx, write).await?),
                // These rows and those of the steps right after them, with the handle lent
                // once.
                Step::Rows(rows) => {
                    let mut group = vec![rows];
                    while let Some(Step::Rows(rows)) = steps.next_if(|s| matches!(s, Step::Rows(_)))
                    {
                        group.push(rows);
                    }
                    applied.extend(lent(&mut tx, |w| write_rows(w, group)).await?);
                }
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn sync_pipelines(&self, pipelines: &[PipelineRecord], at: Timestamp) -> Result<()> {
        let mut tx = WriteTx::begin(&self.writer).await?;
        sqlx::query("UPDATE pipelines SET active = 0")
            .execute(&mut *tx)
            .await?;
        for p in pipelines {
            sqlx::query(
                "INSERT INTO pipelines (name, definition_hash, description, active, first_seen, updated_at, timezone)
                 VALUES (?, ?, ?, 1, ?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET active = 1, timezone = excluded.timezone,
                    updated_at = CASE WHEN definition_hash = excluded.definition_hash
                                       AND description IS excluded.description THEN updated_at ELSE excluded.updated_at END,
                    definition_hash = excluded.definition_hash, description = excluded.description",
            )
            .bind(&p.name)
            .bind(&p.definition_hash)
            .bind(&p.description)
            .bind(micros(at))
            .bind(micros(at))
            .bind(&p.timezone)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pipelines(&self) -> Result<Vec<StoredPipeline>> {
        let rows = sqlx::query("SELECT * FROM pipelines ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredPipeline {
                    record: PipelineRecord {
                        name: row.try_get("name")?,
                        definition_hash: row.try_get("definition_hash")?,
                        description: row.try_get("description")?,
                        timezone: row.try_get("timezone")?,
                    },
                    active: row.try_get::<i64, _>("active")? != 0,
                    paused: row.try_get::<i64, _>("paused")? != 0,
                    first_seen: time(row.try_get("first_seen")?)?,
                    updated_at: time(row.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    /// Read on the calling thread, through the partial index of paused pipelines: the
    /// scheduler reads it just before each due instant.
    async fn paused_pipelines(&self) -> Result<Vec<String>> {
        self.direct.rows(
            "SELECT name FROM pipelines INDEXED BY pipelines_paused WHERE paused = 1 ORDER BY name",
            &[],
            usize::MAX,
            |row| Ok(row.text(0)?.unwrap_or_default().to_owned()),
        )
    }

    async fn run(&self, id: RunId) -> Result<Run> {
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_JSON} FROM runs WHERE id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
        run_from_json(&json)
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        // A page by id alone (the newest runs, a cursor, a time range) reads no more rows than
        // its limit, and open runs are read through the partial index of open runs (not by
        // walking the whole history backwards): both run on the calling thread. Any other
        // filter may walk far back for its matches, so such a page goes to a reader thread.
        let open = filter.status.is_some_and(|s| !s.is_final());
        let before = filter.before.map(|b| b.to_string());
        let since = filter.since.map(|t| first_id_at(t).to_string());
        let until = filter.until.map(|t| first_id_at(t).to_string());
        if open
            || (filter.pipeline.is_none() && filter.status.is_none() && filter.trigger.is_none())
        {
            let binds = [
                Bind::text_or_null(filter.pipeline.as_deref()),
                Bind::text_or_null(filter.status.map(|s| s.as_str())),
                Bind::text_or_null(filter.trigger.map(|t| t.as_str())),
                Bind::text_or_null(before.as_deref()),
                Bind::Int(i64::from(filter.limit)),
                Bind::text_or_null(since.as_deref()),
                Bind::text_or_null(until.as_deref()),
            ];
            let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
            return self
                .direct
                .rows(
                    &NEWEST_RUNS[usize::from(open)],
                    &binds,
                    limit,
                    RunColumns::from_row,
                )?
                .into_iter()
                .map(RunColumns::into_run)
                .collect();
        }
        let list: String = sqlx::query_scalar(sqlx::AssertSqlSafe(RUNS_PAGE.clone()))
            .bind(&filter.pipeline)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.trigger.map(|t| t.as_str()))
            .bind(before)
            .bind(i64::from(filter.limit))
            .bind(since)
            .bind(until)
            .fetch_one(&self.reader)
            .await?;
        runs_from_json(&list)
    }

    /// A run with everything recorded about it, read in one statement ([`RUN_DETAIL`]) on the
    /// calling thread: one snapshot without a transaction around it.
    async fn run_detail(&self, id: RunId) -> Result<RunDetail> {
        let json = self
            .direct
            .text(&RUN_DETAIL, &[Bind::Text(&id.to_string())])?
            .ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
        detail_from_json(&json)
    }

    async fn latest_runs(&self) -> Result<BTreeMap<String, Run>> {
        let rows: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT {RUN_JSON} FROM runs WHERE runs.pipeline = p.name
                     ORDER BY id DESC LIMIT 1)
             FROM pipelines p"
        )))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .flatten()
            .map(|json| run_from_json(json).map(|r| (r.pipeline.clone(), r)))
            .collect()
    }

    async fn run_briefs(&self, runs: &[RunId]) -> Result<BTreeMap<RunId, RunBrief>> {
        if runs.is_empty() {
            return Ok(BTreeMap::new());
        }
        let ids =
            serde_json::json!(runs.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string();
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(RUN_BRIEFS.as_str()))
            .bind(&ids)
            .fetch_one(&self.reader)
            .await?;
        briefs_from_json(&json)
    }

    async fn claim_next(&self, node: &str, at: Timestamp, full: &[String]) -> Result<Option<Run>> {
        let _turn = self.writer.turn().await;
        let full = serde_json::Value::from(full.to_vec()).to_string();
        let json: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE runs SET status = 'running', started_at = ?1, node = ?2
             WHERE id = (SELECT id FROM runs WHERE status IN ('queued', 'running') AND status = 'queued'
                         AND pipeline NOT IN (SELECT value FROM json_each(?3)) ORDER BY id LIMIT 1)
             RETURNING {RUN_JSON}"
        )))
        .bind(micros(at))
        .bind(node)
        .bind(full)
        .fetch_optional(&self.writer.pool)
        .await?;
        json.as_deref().map(run_from_json).transpose()
    }

    /// Read on the calling thread: the scheduler reads it just before each due instant, and
    /// the partial index bounds it by the runs open.
    async fn open_runs(&self) -> Result<BTreeMap<String, OpenRuns>> {
        let count = |v: Option<i64>| u32::try_from(v.unwrap_or(0)).unwrap_or(u32::MAX);
        self.direct
            .rows(
                "SELECT pipeline, SUM(status = 'queued'), SUM(status = 'running')
                 FROM runs INDEXED BY runs_open_pipeline WHERE status IN ('queued', 'running') GROUP BY pipeline",
                &[],
                usize::MAX,
                |row| {
                    let pipeline = row.text(0)?.unwrap_or_default().to_owned();
                    let open = OpenRuns {
                        queued: count(row.int(1)),
                        running: count(row.int(2)),
                    };
                    Ok((pipeline, open))
                },
            )
            .map(|rows| rows.into_iter().collect())
    }

    async fn last_ticks(&self) -> Result<BTreeMap<String, Timestamp>> {
        let rows = sqlx::query(
            "SELECT pipeline, MAX(scheduled_for) AS last FROM runs WHERE scheduled_for IS NOT NULL GROUP BY pipeline",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("pipeline")?, time(r.try_get("last")?)?)))
            .collect()
    }

    async fn orphaned(&self, now: Timestamp) -> Result<Vec<Run>> {
        let list: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT json_group_array({RUN_JSON} ORDER BY id) FROM (
                SELECT r.* FROM runs r LEFT JOIN nodes n ON n.id = r.node
                WHERE r.status IN ('queued', 'running') AND r.status = 'running'
                  AND r.node IS NOT NULL AND (n.id IS NULL OR n.expires_at < ?))"
        )))
        .bind(micros(now))
        .fetch_one(&self.reader)
        .await?;
        runs_from_json(&list)
    }

    async fn cancel_requests(&self, node: &str) -> Result<Vec<RunId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE status IN ('queued', 'running') AND status = 'running'
               AND node = ? AND cancel_requested = 1",
        )
        .bind(node)
        .fetch_all(&self.reader)
        .await?;
        ids.iter().map(|i| run_id(i)).collect()
    }

    async fn remove_expired_nodes(&self, before: Timestamp) -> Result<Vec<Node>> {
        let _turn = self.writer.turn().await;
        let rows = sqlx::query("DELETE FROM nodes WHERE expires_at < ? RETURNING *")
            .bind(micros(before))
            .fetch_all(&self.writer.pool)
            .await?;
        rows.iter().map(node_from_row).collect()
    }

    async fn register_node(&self, node: &Node) -> Result<()> {
        let _turn = self.writer.turn().await;
        sqlx::query(
            "INSERT INTO nodes (id, kind, host, pid, started_at, renewed_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
        )
        .bind(&node.id)
        .bind(&node.kind)
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(micros(node.started_at))
        .bind(micros(node.renewed_at))
        .bind(micros(node.expires_at))
        .execute(&self.writer.pool)
        .await?;
        Ok(())
    }

    async fn renew_node(&self, id: &str, at: Timestamp, expires_at: Timestamp) -> Result<()> {
        let _turn = self.writer.turn().await;
        let done = sqlx::query("UPDATE nodes SET renewed_at = ?, expires_at = ? WHERE id = ?")
            .bind(micros(at))
            .bind(micros(expires_at))
            .bind(id)
            .execute(&self.writer.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("node {id}")));
        }
        Ok(())
    }

    async fn remove_node(&self, id: &str) -> Result<()> {
        let _turn = self.writer.turn().await;
        sqlx::query("DELETE FROM nodes WHERE id = ?")
            .bind(id)
            .execute(&self.writer.pool)
            .await?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<Node>> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY started_at, id")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(node_from_row).collect()
    }

    async fn rollups(
        &self,
        pipeline: &str,
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Bucket>> {
        type Rows = (Vec<(i64, RunsCols, Histogram)>, Vec<CounterCols<i64>>);
        let binds = [
            Bind::Text(pipeline),
            Bind::Text(grain.as_str()),
            Bind::Int(micros(from)),
            Bind::Int(micros(to)),
        ];
        let json = self.direct.text(&ROLLUPS, &binds)?.unwrap_or_default();
        let (runs, counters): Rows = serde_json::from_str(&json)
            .map_err(|e| StoreError::Database(format!("unreadable rollup rows: {e}")))?;
        let mut gather = Gather::default();
        for (bucket, cols, bins) in runs {
            let at = time(bucket)?;
            gather.bins(at, &cols.0, &bins);
            gather.runs(at, &cols.into());
        }
        for (bucket, step, name, sum, runs) in counters {
            gather.counter(time(bucket)?, format!("{step}.{name}"), sum, runs);
        }
        Ok(gather.finish())
    }

    async fn totals(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<String, Summary>> {
        self.totals_of(pipelines, (grain, from, to), "pipeline", "pipeline")
            .await
    }

    async fn bucket_totals(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<(String, Timestamp), Summary>> {
        let by_micros: BTreeMap<(String, i64), Summary> = self
            .totals_of(
                pipelines,
                (grain, from, to),
                "pipeline, bucket",
                "json_array(pipeline, bucket)",
            )
            .await?;
        by_micros
            .into_iter()
            .map(|((pipeline, bucket), s)| Ok(((pipeline, time(bucket)?), s)))
            .collect()
    }

    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64> {
        let mut tx = WriteTx::begin(&self.writer).await?;
        let done = sqlx::query(
            "DELETE FROM runs WHERE id IN (
                SELECT id FROM runs WHERE id < ? AND status NOT IN ('queued', 'running')
                ORDER BY id LIMIT ?)",
        )
        .bind(first_id_at(before).to_string())
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await?;
        let mut deleted = done.rows_affected();
        // Resolved alerts and notifications done with (their attempts go with them), by id:
        // UUIDv7, so older ids were made earlier and the primary key is the index.
        for sql in [
            "DELETE FROM alerts WHERE id IN (
                SELECT id FROM alerts WHERE id < ? AND open = 0 ORDER BY id LIMIT ?)",
            "DELETE FROM notifications WHERE id IN (
                SELECT id FROM notifications WHERE id < ? AND pending = 0 ORDER BY id LIMIT ?)",
        ] {
            let done = sqlx::query(sql)
                .bind(first_id_at(before).to_string())
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await?;
            deleted += done.rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn prunable(&self, before: Timestamp) -> Result<Prunable> {
        let count = |sql: &'static str| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(first_id_at(before).to_string())
                .fetch_one(&self.reader)
        };
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Prunable {
            runs: n(count(
                "SELECT count(*) FROM runs WHERE id < ? AND status NOT IN ('queued', 'running')",
            )
            .await?),
            alerts: n(count("SELECT count(*) FROM alerts WHERE id < ? AND open = 0").await?),
            notifications: n(count(
                "SELECT count(*) FROM notifications WHERE id < ? AND pending = 0",
            )
            .await?),
        })
    }

    async fn own(&self, task: &str, node: &str, now: Timestamp, until: Timestamp) -> Result<bool> {
        let mut tx = WriteTx::begin(&self.writer).await?;
        let done = sqlx::query(
            "INSERT INTO owners (task, node, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (task) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at
             WHERE owners.node = excluded.node OR owners.expires_at < ?",
        )
        .bind(task)
        .bind(node)
        .bind(micros(until))
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn tokens(&self) -> Result<Vec<Token>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY name")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    entry: AuditEntry {
                        at: time(row.try_get("at")?)?,
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        target: row.try_get("target")?,
                        detail: row.try_get("detail")?,
                    },
                })
            })
            .collect()
    }

    async fn open_alerts(&self) -> Result<Vec<Alert>> {
        self.open_alerts_now().await
    }

    async fn alert(&self, id: Uuid) -> Result<Alert> {
        self.alert_now(id).await
    }

    async fn alert_history(&self, before: Option<Uuid>, limit: u32) -> Result<Vec<Alert>> {
        self.alert_history_now(before, limit).await
    }

    async fn claim_notifications(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        let this = self.clone();
        detached(async move { this.claim_notifications_now(now, until, limit).await }).await
    }

    async fn notifications(
        &self,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>> {
        self.notifications_now(before, limit).await
    }

    async fn outbox_depth(&self) -> Result<u64> {
        self.outbox_depth_now().await
    }

    async fn thresholds(&self) -> Result<BTreeMap<String, f64>> {
        self.thresholds_now().await
    }

    async fn silences(&self, ended_after: Timestamp, limit: u32) -> Result<Vec<Silence>> {
        self.silences_now(ended_after, limit).await
    }

    async fn group_sent(&self, keys: &[String]) -> Result<BTreeMap<String, Timestamp>> {
        self.group_sent_now(keys).await
    }

    /// Read on the calling thread (the runner reads it before a run's first step starts), a
    /// step down the partial index of successes.
    async fn last_success_at(&self, pipeline: &str) -> Result<Option<Timestamp>> {
        let at = self.direct.rows(
            "SELECT max(finished_at) FROM runs INDEXED BY runs_succeeded
             WHERE pipeline = ? AND status = 'succeeded'",
            &[Bind::Text(pipeline)],
            1,
            |row| Ok(row.int(0)),
        )?;
        rows::opt_time(at.into_iter().flatten().next())
    }

    /// Read on the calling thread (the runner reads it before a run's first step starts),
    /// along the table's key.
    async fn state(&self, pipeline: &str) -> Result<Vec<StateEntry>> {
        self.direct.rows(
            "SELECT key, value, updated_at, run_id FROM pipeline_state WHERE pipeline = ? ORDER BY key",
            &[Bind::Text(pipeline)],
            usize::MAX,
            toolkit::state_from_direct_row,
        )
    }

    async fn last_inputs(&self, pipeline: &str) -> Result<Vec<InputFile>> {
        let rows = sqlx::query("SELECT * FROM pipeline_inputs WHERE pipeline = ? ORDER BY path")
            .bind(pipeline)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(toolkit::input_from_row).collect()
    }

    async fn backfills(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<Backfill>> {
        let rows = match pipeline {
            Some(p) => {
                sqlx::query(
                    "SELECT record FROM backfills WHERE pipeline = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                )
                .bind(p)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT record FROM backfills WHERE state = 'running' ORDER BY created_at DESC, id DESC LIMIT ?",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await?
            }
        };
        rows.iter().map(toolkit::backfill_from_row).collect()
    }

    async fn checkpoints(&self, pipeline: &str) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT * FROM checkpoints WHERE pipeline = ? ORDER BY period_start, period_end",
        )
        .bind(pipeline)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(toolkit::checkpoint_from_row).collect()
    }

    async fn checks(&self) -> Result<BTreeMap<String, CheckRecord>> {
        let rows = sqlx::query("SELECT * FROM checks")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| rows::check_from_row(r).map(|c| (c.name.clone(), c)))
            .collect()
    }

    async fn incidents(
        &self,
        check: Option<&str>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT * FROM incidents
             WHERE (?1 IS NULL OR check_name = ?1) AND (ended_at IS NULL OR ended_at >= ?2)
             ORDER BY started_at DESC, id DESC LIMIT ?3",
        )
        .bind(check)
        .bind(micros(since))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::incident_from_row).collect()
    }

    async fn close(&self) {
        let checkpoints = self.checkpoints.clone();
        let _ = tokio::task::spawn_blocking(move || checkpoints.stop()).await;
        self.direct.close();
        self.own.close();
        self.reader.close().await;
        self.writer.pool.close().await;
    }
}

/// The stages (without their logs) and counters of the runs whose ids `?1` lists (a JSON
/// array), in one statement: one snapshot without a transaction.
static RUN_BRIEFS: LazyLock<String> = LazyLock::new(|| {
    let stage = stage_object("''");
    format!(
        "SELECT json_array(
            (SELECT json_group_array(json_array(run_id, {stage})
                    ORDER BY run_id, started_at, step, attempt)
             FROM stages WHERE run_id IN (SELECT value FROM json_each(?1))),
            (SELECT json_group_array(json_array(run_id, step, name, value)
                    ORDER BY run_id, step, name)
             FROM counters WHERE run_id IN (SELECT value FROM json_each(?1))))"
    )
});

/// Which runs a page holds, newest first, bound to (pipeline, status, trigger, before this id,
/// limit, from this id, before this id): each filter NULL when not asked.
const PAGE_OF_RUNS: &str = "(?1 IS NULL OR pipeline = ?1) AND (?2 IS NULL OR status = ?2)
    AND (?3 IS NULL OR triggered_by = ?3) AND (?4 IS NULL OR id < ?4)
    AND (?6 IS NULL OR id >= ?6) AND (?7 IS NULL OR id < ?7)
    ORDER BY id DESC LIMIT ?5";

/// A page of runs ([`PAGE_OF_RUNS`]) as one JSON array, for sqlx's reader threads.
static RUNS_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT json_group_array({RUN_JSON} ORDER BY id DESC) FROM (SELECT * FROM runs
         WHERE {PAGE_OF_RUNS})"
    )
});

/// A page of runs ([`PAGE_OF_RUNS`]) stepped a row at a time on the calling thread (see
/// [`direct`]): no JSON to build and read back, and no sort for `json_group_array`'s order. The
/// second reads only open runs: SQLite uses the partial indexes on open runs only when a query
/// repeats their condition.
static NEWEST_RUNS: LazyLock<[String; 2]> = LazyLock::new(|| {
    ["", "status IN ('queued', 'running') AND"]
        .map(|open| format!("SELECT {RUN_COLUMNS} FROM runs WHERE {open} {PAGE_OF_RUNS}"))
});

/// A run with everything recorded about it, in one statement (one snapshot, no transaction),
/// bound to its id: the run ([`RUN_JSON`]), its stages ([`stage_object`]), counters, outputs,
/// inputs and findings.
static RUN_DETAIL: LazyLock<String> = LazyLock::new(|| {
    let stage = stage_object("log");
    format!(
        "SELECT json_object('run', {RUN_JSON},
            'stages', (SELECT json_group_array({stage} ORDER BY started_at, step, attempt)
                       FROM stages WHERE run_id = runs.id),
            'counters', (SELECT json_group_array(json_array(step, name, value)
                             ORDER BY step, name) FROM counters WHERE run_id = runs.id),
            'outputs', (SELECT json_group_array(json_array(step, key, value)
                            ORDER BY step, key) FROM outputs WHERE run_id = runs.id),
            'inputs', (SELECT json_group_array(json_array(path, sha256, bytes) ORDER BY path)
                       FROM run_inputs WHERE run_id = runs.id),
            'findings', (SELECT json_group_array(doc ORDER BY step, attempt, line, pattern)
                         FROM findings WHERE run_id = runs.id))
         FROM runs WHERE id = ?1"
    )
});

/// A pipeline's rollups at a grain, bucket starts in `[?3, ?4)`, in one statement: the runs
/// rows (bucket, columns, histogram) and the counters rows.
static ROLLUPS: LazyLock<String> = LazyLock::new(|| {
    let range = "WHERE pipeline = ?1 AND grain = ?2 AND bucket >= ?3 AND bucket < ?4";
    format!(
        "SELECT json_array(
            (SELECT json_group_array(json_array(bucket, json_array(status, triggered_by,
                    runs, timed_runs, duration_ms_sum, duration_ms_max, cpu_ms), json(bins)))
             FROM rollup_runs {range}),
            (SELECT json_group_array(json_array(bucket, step, name, sum, runs))
             FROM rollup_counters {range}))"
    )
});

/// The one JSON value `sql` answers, bound to `(?1, ?2, ?3, ?4)`: rollup rows gathered by
/// SQLite with `json_group_array`, several tables' in one statement. One value crosses from
/// SQLite's thread instead of a row at a time, and one statement reads one snapshot, so no
/// transaction (two more round trips) is needed around it.
async fn json_value<T: serde::de::DeserializeOwned>(
    pool: &SqlitePool,
    sql: &str,
    binds: (&str, &str, i64, i64),
) -> Result<T> {
    let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(binds.0)
        .bind(binds.1)
        .bind(binds.2)
        .bind(binds.3)
        .fetch_one(pool)
        .await?;
    serde_json::from_str(&json)
        .map_err(|e| StoreError::Database(format!("unreadable rollup rows: {e}")))
}
