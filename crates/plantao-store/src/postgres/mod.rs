//! The PostgreSQL backend, for several nodes on one database: unique keys and row locks do the
//! coordination.

mod alerts;
mod rows;
mod toolkit;
mod writes;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use plantao_model::RunId;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Row};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::records::*;
use crate::rollup::{Bucket, Gather, Grain, Histogram, Summary};
use crate::{
    Alert, Backend, Notification, NotificationRecord, Rows, Silence, Step, Store, detached,
    first_id_at, redact_url, steps,
};
use rows::{node_from_row, run_from_row, stage_from_row, token_from_row};
use writes::{apply_one, insert_runs};

pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_nodes.sql"),
    include_str!("migrations/0003_daemon.sql"),
    include_str!("migrations/0004_rollups.sql"),
    include_str!("migrations/0005_open_runs.sql"),
    include_str!("migrations/0006_api.sql"),
    include_str!("migrations/0007_rollups_without_rowid.sql"),
    include_str!("migrations/0008_alerts.sql"),
    include_str!("migrations/0009_alerts_ii.sql"),
    include_str!("migrations/0010_checks.sql"),
    include_str!("migrations/0011_toolkit.sql"),
    include_str!("migrations/0012_findings.sql"),
    include_str!("migrations/0013_rollup_bins.sql"),
    include_str!("migrations/0014_paused_index.sql"),
];
/// Taken while migrating, so nodes starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x0070_6c61_6e74_616f; // "plantao" in ASCII

#[derive(Clone)]
pub(crate) struct PgStore {
    pool: PgPool,
    url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.url)
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let shown = redact_url(url);
        let options =
            PgConnectOptions::from_str(url).map_err(|_| StoreError::BadUrl(shown.clone()))?;
        let unavailable = |e: sqlx::Error| StoreError::Unavailable {
            url: shown.clone(),
            reason: e.to_string(),
        };
        // One direct attempt first: the pool would retry a refused connection until its
        // acquire timeout, and a wrong URL should be said at once.
        sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(unavailable)?
            .close()
            .await
            .map_err(unavailable)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        migrate(&pool).await?;
        Ok(PgStore { pool, url: shown })
    }
}

async fn migrate(pool: &PgPool) -> Result<()> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS plantao_schema (version BIGINT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    let found: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM plantao_schema")
        .fetch_one(&mut *tx)
        .await?;
    if found > known {
        return Err(StoreError::NewerSchema { found, known });
    }
    for (version, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM plantao_schema")
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO plantao_schema (version) VALUES ($1)")
            .bind(i64::try_from(version + 1).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
/// Work that must run to its end once begun (see [`detached`]).
impl PgStore {
    async fn apply_now(&self, writes: Vec<Write>) -> Result<Vec<Applied>> {
        let mut tx = self.pool.begin().await?;
        let mut applied = Vec::with_capacity(writes.len());
        for step in steps(writes) {
            match step {
                Step::Rows(Rows::Insert(runs)) => {
                    applied.extend(insert_runs(&mut tx, runs).await?);
                }
                other => {
                    for write in other.writes() {
                        applied.push(apply_one(&mut tx, write).await?);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn sync_pipelines_now(&self, pipelines: &[PipelineRecord], at: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let names: Vec<&str> = pipelines.iter().map(|p| p.name.as_str()).collect();
        sqlx::query("UPDATE pipelines SET active = FALSE WHERE NOT (name = ANY($1))")
            .bind(&names)
            .execute(&mut *tx)
            .await?;
        for p in pipelines {
            sqlx::query(
                "INSERT INTO pipelines (name, definition_hash, description, active, first_seen, updated_at, timezone)
                 VALUES ($1, $2, $3, TRUE, $4, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET active = TRUE, timezone = excluded.timezone,
                    updated_at = CASE WHEN pipelines.definition_hash = excluded.definition_hash
                                       AND pipelines.description IS NOT DISTINCT FROM excluded.description
                                      THEN pipelines.updated_at ELSE excluded.updated_at END,
                    definition_hash = excluded.definition_hash, description = excluded.description",
            )
            .bind(&p.name)
            .bind(&p.definition_hash)
            .bind(&p.description)
            .bind(at)
            .bind(&p.timezone)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn run_briefs_now(&self, runs: &[RunId]) -> Result<BTreeMap<RunId, RunBrief>> {
        if runs.is_empty() {
            return Ok(BTreeMap::new());
        }
        let ids: Vec<Uuid> = runs.iter().map(|r| r.as_uuid()).collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let stages = sqlx::query(
            "SELECT run_id, step, attempt, status, started_at, finished_at, duration_ms, exit_code,
                    error, '' AS log, cpu_user_ms, cpu_system_ms, peak_rss_kb
             FROM stages WHERE run_id = ANY($1)
             ORDER BY run_id, started_at, step, attempt",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let counters = sqlx::query(
            "SELECT run_id, step, name, value FROM counters WHERE run_id = ANY($1)
             ORDER BY run_id, step, name",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: BTreeMap<RunId, RunBrief> = BTreeMap::new();
        for row in &stages {
            let stage = stage_from_row(row)?;
            out.entry(stage.run_id).or_default().stages.push(stage);
        }
        for r in &counters {
            let counter = Counter {
                run_id: RunId::from_uuid(r.try_get("run_id")?),
                step: r.try_get("step")?,
                name: r.try_get("name")?,
                value: r.try_get("value")?,
            };
            out.entry(counter.run_id)
                .or_default()
                .counters
                .push(counter);
        }
        Ok(out)
    }

    async fn run_detail_now(&self, id: RunId) -> Result<RunDetail> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let key = id.as_uuid();
        let row = sqlx::query("SELECT * FROM runs WHERE id = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
        let run = run_from_row(&row)?;
        let stages = sqlx::query(
            "SELECT * FROM stages WHERE run_id = $1 ORDER BY started_at, step, attempt",
        )
        .bind(key)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(stage_from_row)
        .collect::<Result<_>>()?;
        let counters = sqlx::query(
            "SELECT step, name, value FROM counters WHERE run_id = $1 ORDER BY step, name",
        )
        .bind(key)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(Counter {
                run_id: id,
                step: r.try_get("step")?,
                name: r.try_get("name")?,
                value: r.try_get("value")?,
            })
        })
        .collect::<Result<_>>()?;
        let outputs = sqlx::query(
            "SELECT step, key, value FROM outputs WHERE run_id = $1 ORDER BY step, key",
        )
        .bind(key)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(Output {
                run_id: id,
                step: r.try_get("step")?,
                key: r.try_get("key")?,
                value: r.try_get("value")?,
            })
        })
        .collect::<Result<_>>()?;
        let inputs = sqlx::query("SELECT * FROM run_inputs WHERE run_id = $1 ORDER BY path")
            .bind(key)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(toolkit::input_from_row)
            .collect::<Result<_>>()?;
        let findings: Vec<sqlx::types::Json<Finding>> = sqlx::query_scalar(
            "SELECT doc FROM findings WHERE run_id = $1 ORDER BY step, attempt, line, pattern",
        )
        .bind(key)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RunDetail {
            run,
            stages,
            counters,
            outputs,
            inputs,
            findings: findings.into_iter().map(|f| f.0).collect(),
        })
    }

    /// The rows of the runs and counters rollups that [`Store::totals`] adds up, summed by
    /// pipeline, or by pipeline and bucket when `by_bucket`: read in one transaction, run to
    /// its end even if the caller stops waiting (see [`detached`]).
    async fn totals_rows(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
        by_bucket: bool,
    ) -> Result<(Vec<PgRow>, Vec<PgRow>)> {
        let key = if by_bucket {
            "pipeline, bucket"
        } else {
            "pipeline"
        };
        let runs = format!(
            "SELECT {key}, status, triggered_by, SUM(runs)::BIGINT AS runs,
                    SUM(timed_runs)::BIGINT AS timed_runs,
                    SUM(duration_ms_sum)::BIGINT AS duration_ms_sum,
                    MAX(duration_ms_max) AS duration_ms_max, SUM(cpu_ms)::BIGINT AS cpu_ms
             FROM rollup_runs
             WHERE pipeline = ANY($1) AND grain = $2 AND bucket >= $3 AND bucket < $4
             GROUP BY {key}, status, triggered_by"
        );
        let counters = format!(
            "SELECT {key}, step, name, SUM(sum) AS sum, SUM(runs)::BIGINT AS runs
             FROM rollup_counters
             WHERE pipeline = ANY($1) AND grain = $2 AND bucket >= $3 AND bucket < $4
             GROUP BY {key}, step, name"
        );
        let pool = self.pool.clone();
        let pipelines = pipelines.to_vec();
        detached(async move {
            let mut tx = pool.begin().await?;
            let mut read = Vec::with_capacity(2);
            for sql in [runs, counters] {
                read.push(
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&pipelines)
                        .bind(grain.as_str())
                        .bind(from)
                        .bind(to)
                        .fetch_all(&mut *tx)
                        .await?,
                );
            }
            tx.commit().await?;
            let counters = read.pop().unwrap_or_default();
            Ok((read.pop().unwrap_or_default(), counters))
        })
        .await
    }

    async fn rollups_now(
        &self,
        pipeline: &str,
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Bucket>> {
        let mut tx = self.pool.begin().await?;
        let key = (pipeline, grain.as_str(), from, to);
        let runs = rollup_rows(&mut tx, "rollup_runs", key).await?;
        let counters = rollup_rows(&mut tx, "rollup_counters", key).await?;
        let mut gather = Gather::default();
        for row in &runs {
            let bucket = row.try_get("bucket")?;
            let bins: sqlx::types::Json<Histogram> = row.try_get("bins")?;
            gather.bins(bucket, row.try_get("status")?, &bins);
            gather.runs(bucket, &crate::decode::runs_row(row)?);
        }
        for row in &counters {
            let step: &str = row.try_get("step")?;
            let name: &str = row.try_get("name")?;
            gather.counter(
                row.try_get("bucket")?,
                format!("{step}.{name}"),
                row.try_get("sum")?,
                row.try_get("runs")?,
            );
        }
        tx.commit().await?;
        Ok(gather.finish())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<Applied>> {
        let this = self.clone();
        detached(async move { this.apply_now(writes).await }).await
    }

    async fn sync_pipelines(&self, pipelines: &[PipelineRecord], at: Timestamp) -> Result<()> {
        let this = self.clone();
        let pipelines = pipelines.to_vec();
        detached(async move { this.sync_pipelines_now(&pipelines, at).await }).await
    }

    async fn pipelines(&self) -> Result<Vec<StoredPipeline>> {
        let rows = sqlx::query("SELECT * FROM pipelines ORDER BY name")
            .fetch_all(&self.pool)
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
                    active: row.try_get("active")?,
                    paused: row.try_get("paused")?,
                    first_seen: row.try_get("first_seen")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn paused_pipelines(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM pipelines WHERE paused ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn run(&self, id: RunId) -> Result<Run> {
        let row = sqlx::query("SELECT * FROM runs WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("run {id}")))?;
        run_from_row(&row)
    }

    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let rows = sqlx::query(
            "SELECT * FROM runs
             WHERE ($1::TEXT IS NULL OR pipeline = $1) AND ($2::TEXT IS NULL OR status = $2)
               AND ($3::TEXT IS NULL OR triggered_by = $3) AND ($4::UUID IS NULL OR id < $4)
               AND ($6::UUID IS NULL OR id >= $6) AND ($7::UUID IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $5",
        )
        .bind(&filter.pipeline)
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.trigger.map(|t| t.as_str()))
        .bind(filter.before.map(|b| b.as_uuid()))
        .bind(i64::from(filter.limit))
        .bind(filter.since.map(|t| first_id_at(t).as_uuid()))
        .bind(filter.until.map(|t| first_id_at(t).as_uuid()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn run_detail(&self, id: RunId) -> Result<RunDetail> {
        let this = self.clone();
        detached(async move { this.run_detail_now(id).await }).await
    }

    async fn latest_runs(&self) -> Result<BTreeMap<String, Run>> {
        let rows = sqlx::query(
            "SELECT r.* FROM pipelines p CROSS JOIN LATERAL
                (SELECT * FROM runs WHERE runs.pipeline = p.name ORDER BY id DESC LIMIT 1) r",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| run_from_row(row).map(|r| (r.pipeline.clone(), r)))
            .collect()
    }

    async fn run_briefs(&self, runs: &[RunId]) -> Result<BTreeMap<RunId, RunBrief>> {
        let this = self.clone();
        let runs = runs.to_vec();
        detached(async move { this.run_briefs_now(&runs).await }).await
    }

    async fn claim_next(&self, node: &str, at: Timestamp, full: &[String]) -> Result<Option<Run>> {
        let row = sqlx::query(
            "UPDATE runs SET status = 'running', started_at = $1, node = $2
             WHERE id = (SELECT id FROM runs WHERE status = 'queued' AND NOT (pipeline = ANY($3))
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind(at)
        .bind(node)
        .bind(full)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn open_runs(&self) -> Result<BTreeMap<String, OpenRuns>> {
        let rows = sqlx::query(
            "SELECT pipeline, COUNT(*) FILTER (WHERE status = 'queued') AS queued,
                    COUNT(*) FILTER (WHERE status = 'running') AS running
             FROM runs WHERE status IN ('queued', 'running') GROUP BY pipeline",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let count = |c: &str| -> Result<u32> {
                    Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(u32::MAX))
                };
                Ok((
                    r.try_get("pipeline")?,
                    OpenRuns {
                        queued: count("queued")?,
                        running: count("running")?,
                    },
                ))
            })
            .collect()
    }

    async fn last_ticks(&self) -> Result<BTreeMap<String, Timestamp>> {
        let rows = sqlx::query(
            "SELECT pipeline, MAX(scheduled_for) AS last FROM runs WHERE scheduled_for IS NOT NULL GROUP BY pipeline",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("pipeline")?, r.try_get("last")?)))
            .collect()
    }

    async fn orphaned(&self, now: Timestamp) -> Result<Vec<Run>> {
        let rows = sqlx::query(
            "SELECT r.* FROM runs r LEFT JOIN nodes n ON n.id = r.node
             WHERE r.status = 'running' AND r.node IS NOT NULL
               AND (n.id IS NULL OR n.expires_at < $1) ORDER BY r.id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn cancel_requests(&self, node: &str) -> Result<Vec<RunId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE node = $1 AND status = 'running' AND cancel_requested",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(RunId::from_uuid).collect())
    }

    async fn remove_expired_nodes(&self, before: Timestamp) -> Result<Vec<Node>> {
        let rows = sqlx::query("DELETE FROM nodes WHERE expires_at < $1 RETURNING *")
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_from_row).collect()
    }

    async fn register_node(&self, node: &Node) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, kind, host, pid, started_at, renewed_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
        )
        .bind(&node.id)
        .bind(&node.kind)
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(node.started_at)
        .bind(node.renewed_at)
        .bind(node.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn renew_node(&self, id: &str, at: Timestamp, expires_at: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE nodes SET renewed_at = $1, expires_at = $2 WHERE id = $3")
            .bind(at)
            .bind(expires_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("node {id}")));
        }
        Ok(())
    }

    async fn remove_node(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<Node>> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY started_at, id")
            .fetch_all(&self.pool)
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
        let this = self.clone();
        let pipeline = pipeline.to_owned();
        detached(async move { this.rollups_now(&pipeline, grain, from, to).await }).await
    }

    async fn totals(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<String, Summary>> {
        let (runs, counters) = self.totals_rows(pipelines, grain, from, to, false).await?;
        crate::decode::totals_from_rows(&runs, &counters, |r| Ok(r.try_get("pipeline")?))
    }

    async fn bucket_totals(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<(String, Timestamp), Summary>> {
        let (runs, counters) = self.totals_rows(pipelines, grain, from, to, true).await?;
        crate::decode::totals_from_rows(&runs, &counters, |r| {
            Ok((r.try_get("pipeline")?, r.try_get("bucket")?))
        })
    }

    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM runs WHERE id IN (
                SELECT id FROM runs WHERE id < $1 AND status NOT IN ('queued', 'running')
                ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(first_id_at(before).as_uuid())
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        let mut deleted = done.rows_affected();
        // Resolved alerts and notifications done with (their attempts go with them), by id:
        // UUIDv7, so older ids were made earlier and the primary key is the index.
        for sql in [
            "DELETE FROM alerts WHERE id IN (
                SELECT id FROM alerts WHERE id < $1 AND NOT open
                ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
            "DELETE FROM notifications WHERE id IN (
                SELECT id FROM notifications WHERE id < $1 AND NOT pending
                ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)",
        ] {
            let done = sqlx::query(sql)
                .bind(first_id_at(before).as_uuid())
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }

    async fn prunable(&self, before: Timestamp) -> Result<Prunable> {
        let count = |sql: &'static str| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(first_id_at(before).as_uuid())
                .fetch_one(&self.pool)
        };
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Prunable {
            runs: n(count(
                "SELECT count(*) FROM runs WHERE id < $1 AND status NOT IN ('queued', 'running')",
            )
            .await?),
            alerts: n(count("SELECT count(*) FROM alerts WHERE id < $1 AND NOT open").await?),
            notifications: n(count(
                "SELECT count(*) FROM notifications WHERE id < $1 AND NOT pending",
            )
            .await?),
        })
    }

    async fn own(&self, task: &str, node: &str, now: Timestamp, until: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO owners (task, node, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (task) DO UPDATE SET node = excluded.node, expires_at = excluded.expires_at
             WHERE owners.node = excluded.node OR owners.expires_at < $4",
        )
        .bind(task)
        .bind(node)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn tokens(&self) -> Result<Vec<Token>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    entry: AuditEntry {
                        at: row.try_get("at")?,
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

    async fn last_success_at(&self, pipeline: &str) -> Result<Option<Timestamp>> {
        Ok(sqlx::query_scalar(
            "SELECT max(finished_at) FROM runs WHERE pipeline = $1 AND status = 'succeeded'",
        )
        .bind(pipeline)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn state(&self, pipeline: &str) -> Result<Vec<StateEntry>> {
        let rows = sqlx::query("SELECT * FROM pipeline_state WHERE pipeline = $1 ORDER BY key")
            .bind(pipeline)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(toolkit::state_from_row).collect()
    }

    async fn last_inputs(&self, pipeline: &str) -> Result<Vec<InputFile>> {
        let rows = sqlx::query("SELECT * FROM pipeline_inputs WHERE pipeline = $1 ORDER BY path")
            .bind(pipeline)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(toolkit::input_from_row).collect()
    }

    async fn backfills(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<Backfill>> {
        let rows = match pipeline {
            Some(p) => {
                sqlx::query(
                    "SELECT record FROM backfills WHERE pipeline = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(p)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT record FROM backfills WHERE state = 'running' ORDER BY created_at DESC, id DESC LIMIT $1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(toolkit::backfill_from_row).collect()
    }

    async fn checkpoints(&self, pipeline: &str) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT * FROM checkpoints WHERE pipeline = $1 ORDER BY period_start, period_end",
        )
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(toolkit::checkpoint_from_row).collect()
    }

    async fn checks(&self) -> Result<BTreeMap<String, CheckRecord>> {
        let rows = sqlx::query("SELECT * FROM checks")
            .fetch_all(&self.pool)
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
             WHERE ($1::text IS NULL OR check_name = $1::text) AND (ended_at IS NULL OR ended_at >= $2)
             ORDER BY started_at DESC, id DESC LIMIT $3",
        )
        .bind(check)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rows::incident_from_row).collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The rows of one rollup table for a pipeline, a grain and bucket starts in `[from, to)`.
async fn rollup_rows(
    conn: &mut sqlx::PgConnection,
    table: &str,
    key: (&str, &str, Timestamp, Timestamp),
) -> Result<Vec<PgRow>> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM {table} WHERE pipeline = $1 AND grain = $2 AND bucket >= $3 AND bucket < $4"
    )))
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .bind(key.3)
    .fetch_all(conn)
    .await?)
}
