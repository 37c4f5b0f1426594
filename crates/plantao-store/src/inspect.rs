//! A look at a database without changing it (no migration, no file created): what
//! `plantao doctor` reports before a release.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{Backend, Timestamp, redact_url, url::backend_of};

/// What a database says of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspected {
    pub backend: Backend,
    /// SQLite's library version or PostgreSQL's server version.
    pub version: String,
    /// How long connecting and the first query took.
    pub latency: Duration,
    /// The migrations applied (0 for a new database).
    pub schema: i64,
    /// The migrations this plantao knows.
    pub known: i64,
    /// The server's clock (PostgreSQL; SQLite runs on this machine's).
    pub clock: Option<Timestamp>,
    /// The SQLite file, which does not exist until plantao first starts.
    pub file: Option<(std::path::PathBuf, bool)>,
}

/// Connects to `url` and reads its version, schema version and clock; the message says what
/// failed.
pub async fn inspect(url: &str) -> Result<Inspected, String> {
    let started = Instant::now();
    match backend_of(url) {
        Some(Backend::Sqlite) => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| format!("{}: {e}", redact_url(url)))?;
            let path = options.get_filename().to_owned();
            let known = i64::try_from(crate::sqlite::connection::MIGRATIONS.len()).unwrap_or(0);
            if !Path::new(&path).exists() {
                let mut mem = SqliteConnectOptions::from_str("sqlite::memory:")
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(&mut mem)
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(Inspected {
                    backend: Backend::Sqlite,
                    version,
                    latency: started.elapsed(),
                    schema: 0,
                    known,
                    clock: None,
                    file: Some((path, false)),
                });
            }
            let mut conn = options
                .read_only(true)
                .busy_timeout(Duration::from_secs(10))
                .connect()
                .await
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let schema: i64 = sqlx::query_scalar("PRAGMA user_version")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| format!("{} is not a database: {e}", path.display()))?;
            let latency = started.elapsed();
            conn.close().await.ok();
            Ok(Inspected {
                backend: Backend::Sqlite,
                version,
                latency,
                schema,
                known,
                clock: None,
                file: Some((path, true)),
            })
        }
        Some(Backend::Postgres) => {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| format!("{}: {e}", redact_url(url)))?;
            let mut conn = tokio::time::timeout(Duration::from_secs(10), options.connect())
                .await
                .map_err(|_| format!("{} did not answer within 10 s", redact_url(url)))?
                .map_err(|e| format!("cannot connect to {}: {e}", redact_url(url)))?;
            let version: String = sqlx::query_scalar("SHOW server_version")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let latency = started.elapsed();
            let clock: Timestamp = sqlx::query_scalar("SELECT now()")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('plantao_schema') IS NOT NULL")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
            let schema: i64 = if exists {
                sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM plantao_schema")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?
            } else {
                0
            };
            conn.close().await.ok();
            Ok(Inspected {
                backend: Backend::Postgres,
                version,
                latency,
                schema,
                known: i64::try_from(crate::postgres::MIGRATIONS.len()).unwrap_or(0),
                clock: Some(clock),
                file: None,
            })
        }
        None => Err(format!(
            "{} is neither sqlite:// nor postgres://",
            redact_url(url)
        )),
    }
}
