//! Connections to the SQLite file: opening it while other programs do, write transactions that
//! never leave one open behind, and the migrations.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};

use super::checkpoint::Checkpointer;
use crate::error::{Result, StoreError};

/// Applied in order; `PRAGMA user_version` counts those applied.
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

/// How long opening the file may wait for other programs opening it at the same moment; the
/// same as the busy timeout every statement waits.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Opens a pool, waiting while another program holds the file. SQLite does not call the busy
/// handler for a connection's first statements while another connection switches a new file to
/// WAL mode: it answers "database is locked" at once. So a `plantao run` started beside a daemon
/// that is creating the file would fail; retrying for as long as the busy timeout is what every
/// other statement gets.
///
/// A writer's connections leave their checkpoints to `checkpoints` (see [`Checkpointer`]).
pub(super) async fn connect(
    size: u32,
    options: SqliteConnectOptions,
    checkpoints: Option<Arc<Checkpointer>>,
) -> std::result::Result<SqlitePool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    loop {
        let mut pool = SqlitePoolOptions::new().max_connections(size);
        if let Some(checkpoints) = checkpoints.clone() {
            pool = pool.after_connect(move |conn, _| {
                let checkpoints = checkpoints.clone();
                Box::pin(async move {
                    let mut handle = conn.lock_handle().await?;
                    checkpoints
                        .watch(handle.as_raw_handle())
                        .map_err(|e| sqlx::Error::Configuration(e.to_string().into()))
                })
            });
        }
        let opened = pool.connect_with(options.clone()).await;
        match opened {
            Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            opened => return opened,
        }
    }
}

/// SQLITE_BUSY and its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT).
fn is_busy(e: &sqlx::Error) -> bool {
    let code = e
        .as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i32>().ok());
    code.is_some_and(|c| c & 0xff == 5)
}

/// sqlx's writer connection, and the turn to write in this process: it and the backend's own
/// writer ([`super::direct::OwnWriter`]) take it for each transaction, so neither waits for the
/// other in SQLite's busy handler (which sleeps a millisecond and more between tries). So does
/// each statement that writes outside a transaction (claiming a run, a node's lease).
#[derive(Clone)]
pub(crate) struct Writers {
    pub(super) pool: SqlitePool,
    pub(super) turn: Arc<tokio::sync::Mutex<()>>,
}

impl Writers {
    pub(super) async fn turn(&self) -> OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }
}

/// A write transaction on the writer connection, begun with `BEGIN IMMEDIATE` so that a
/// writer waits its turn (busy timeout) instead of failing when it would upgrade. Unless it
/// commits, its connection is closed when it is dropped instead of going back to the pool: after
/// a failed statement or COMMIT (a full disk, an I/O error) SQLite may have rolled back by
/// itself, a ROLLBACK then fails, and the driver would count a transaction open forever (every
/// later write failing). Closing is the one way to be sure nothing stays open.
pub(crate) struct WriteTx {
    conn: PoolConnection<Sqlite>,
    committed: bool,
    /// Held until the transaction ends.
    _turn: OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(super) async fn begin(writers: &Writers) -> Result<WriteTx> {
        let turn = writers.turn().await;
        let mut conn = writers.pool.acquire().await?;
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        Ok(WriteTx {
            conn,
            committed: false,
            _turn: turn,
        })
    }

    pub(super) async fn commit(mut self) -> Result<()> {
        sqlx::raw_sql("COMMIT").execute(&mut *self.conn).await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

pub(super) async fn migrate(writers: &Writers) -> Result<()> {
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let mut tx = WriteTx::begin(writers).await?;
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
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
        let set = format!("PRAGMA user_version = {}", version + 1);
        sqlx::raw_sql(sqlx::AssertSqlSafe(set))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
