//! Backups that restore: an online, consistent copy of the database taken while `serve` writes
//! (SQLite's `VACUUM INTO`; PostgreSQL's `pg_dump`), checked after writing, and put back into
//! an empty database (or, when told to, over a full one that no live node uses).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use crate::url::{backend_of, split_password};
use crate::{Backend, redact_url};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(String),
    /// A copy that fails its check: the message says what failed.
    #[error("{0}")]
    Damaged(String),
    #[error("{0}")]
    Refused(String),
    #[error("{program} is not installed here: {fix}")]
    MissingTool { program: String, fix: String },
}

type Result<T> = std::result::Result<T, BackupError>;

/// What a copy holds, as its check found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub path: PathBuf,
    pub bytes: u64,
    /// SQLite: the runs in it; PostgreSQL: none (a dump's rows are not counted without
    /// restoring it).
    pub runs: Option<i64>,
}

/// The file extension of a backup of `backend`.
pub fn extension(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "dump",
    }
}

pub fn backend(url: &str) -> Result<Backend> {
    backend_of(url).ok_or_else(|| {
        BackupError::Usage(format!(
            "{} is neither sqlite:// nor postgres://",
            redact_url(url)
        ))
    })
}

/// Copies the database at `url` to `to` (written beside it first, then renamed, so `to` is
/// never a half-written copy), and checks the copy.
pub async fn backup(url: &str, to: &Path) -> Result<Checked> {
    let partial = to.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let backend = backend(url)?;
    let made = match backend {
        Backend::Sqlite => sqlite_copy(url, &partial).await,
        Backend::Postgres => pg_dump(url, &partial).await,
    };
    if let Err(e) = made {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    if let Err(e) = check(backend, &partial).await {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, to)
        .map_err(|e| BackupError::Io(format!("cannot name the backup {}: {e}", to.display())))?;
    check(backend, to).await
}

async fn sqlite_copy(url: &str, to: &Path) -> Result<()> {
    let mut conn = sqlite_connection(url, true).await?;
    // VACUUM INTO reads one consistent snapshot: writers go on meanwhile.
    sqlx::query("VACUUM INTO ?")
        .bind(to.display().to_string())
        .execute(&mut conn)
        .await
        .map_err(|e| BackupError::Io(format!("cannot write {}: {e}", to.display())))?;
    conn.close().await.ok();
    Ok(())
}

async fn sqlite_connection(url: &str, read_only: bool) -> Result<SqliteConnection> {
    SqliteConnectOptions::from_str(url)
        .map_err(|e| BackupError::Usage(format!("{}: {e}", redact_url(url))))?
        .read_only(read_only)
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| BackupError::Io(format!("cannot open {}: {e}", redact_url(url))))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Checks a backup file: SQLite's integrity check and plantao's tables; for a PostgreSQL dump,
/// that `pg_restore` can read its table of contents and finds the runs table in it.
pub async fn check(backend: Backend, file: &Path) -> Result<Checked> {
    let bytes = std::fs::metadata(file)
        .map_err(|e| BackupError::Io(format!("cannot read {}: {e}", file.display())))?
        .len();
    let runs = match backend {
        Backend::Sqlite => {
            let mut conn = sqlite_connection(&sqlite_url(file), true).await?;
            let damaged = |e: sqlx::Error| {
                BackupError::Damaged(format!(
                    "{} is not a readable plantao database: {e}",
                    file.display()
                ))
            };
            let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&mut conn)
                .await
                .map_err(damaged)?;
            if verdict != "ok" {
                return Err(BackupError::Damaged(format!(
                    "{} fails SQLite's integrity check: {verdict}",
                    file.display()
                )));
            }
            let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
                .fetch_one(&mut conn)
                .await
                .map_err(damaged)?;
            conn.close().await.ok();
            Some(runs)
        }
        Backend::Postgres => {
            let out = tool("pg_restore")
                .arg("--list")
                .arg(file)
                .output()
                .await
                .map_err(|e| missing("pg_restore", &e))?;
            let contents = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !contents.contains("TABLE public runs ") {
                return Err(BackupError::Damaged(format!(
                    "{} is not a readable plantao dump: {}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            None
        }
    };
    Ok(Checked {
        path: file.to_owned(),
        bytes,
        runs,
    })
}

fn tool(program: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    cmd
}

fn missing(program: &str, e: &std::io::Error) -> BackupError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BackupError::MissingTool {
            program: program.to_owned(),
            fix: "install PostgreSQL's client programs (Debian: apt install postgresql-client) \
                  or back the database up with your own tooling"
                .to_owned(),
        }
    } else {
        BackupError::Io(format!("cannot run {program}: {e}"))
    }
}

/// Runs a PostgreSQL client tool against `url`, its password in the environment.
async fn pg_tool(program: &str, url: &str, args: &[&std::ffi::OsStr]) -> Result<()> {
    let (bare, password) = split_password(url);
    let mut cmd = tool(program);
    cmd.arg(format!("--dbname={bare}")).args(args);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd.output().await.map_err(|e| missing(program, &e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BackupError::Io(format!(
            "{program} failed on {}: {}",
            redact_url(url),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

async fn pg_dump(url: &str, to: &Path) -> Result<()> {
    pg_tool(
        "pg_dump",
        url,
        &[
            "--format=custom".as_ref(),
            "--file".as_ref(),
            to.as_os_str(),
        ],
    )
    .await
}

/// Puts the backup `from` into the database at `url`. The database must hold no runs and no
/// pipelines unless `force`; never while a node holds a live lease on it (stop `serve` first).
pub async fn restore(url: &str, from: &Path, force: bool) -> Result<Checked> {
    let backend = backend(url)?;
    let checked = check(backend, from).await?;
    let target = crate::open(url)
        .await
        .map_err(|e| BackupError::Io(format!("cannot open {}: {e}", redact_url(url))))?;
    let now = chrono::Utc::now();
    let live: Vec<String> = target
        .nodes()
        .await
        .map_err(|e| BackupError::Io(e.to_string()))?
        .into_iter()
        .filter(|n| n.expires_at > now)
        .map(|n| format!("{} ({} on {}, pid {})", n.id, n.kind, n.host, n.pid))
        .collect();
    if !live.is_empty() {
        target.close().await;
        return Err(BackupError::Refused(format!(
            "the database is in use by {}: stop plantao there first, then restore",
            live.join(", ")
        )));
    }
    let pipelines = target
        .pipelines()
        .await
        .map_err(|e| BackupError::Io(e.to_string()))?
        .len();
    let runs = target
        .runs(&crate::RunFilter {
            limit: 1,
            ..crate::RunFilter::default()
        })
        .await
        .map_err(|e| BackupError::Io(e.to_string()))?
        .len();
    target.close().await;
    if (pipelines > 0 || runs > 0) && !force {
        return Err(BackupError::Refused(format!(
            "{} is not empty (it has {} pipelines{}): restoring would replace what it holds; \
             pass --force to do it anyway",
            redact_url(url),
            pipelines,
            if runs > 0 { " and runs" } else { "" }
        )));
    }
    match backend {
        Backend::Sqlite => sqlite_restore(url, from).await?,
        Backend::Postgres => {
            pg_tool(
                "pg_restore",
                url,
                &[
                    "--clean".as_ref(),
                    "--if-exists".as_ref(),
                    "--no-owner".as_ref(),
                    "--exit-on-error".as_ref(),
                    "--single-transaction".as_ref(),
                    from.as_os_str(),
                ],
            )
            .await?;
        }
    }
    Ok(checked)
}

/// Replaces the SQLite file with the backup: copied beside it, then renamed over it, its
/// write-ahead log and shared memory removed (they belong to the file being replaced).
async fn sqlite_restore(url: &str, from: &Path) -> Result<()> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| BackupError::Usage(format!("{}: {e}", redact_url(url))))?;
    let path = options.get_filename().to_owned();
    let staged = path.with_extension("restoring");
    let io = |what: &str, e: std::io::Error| BackupError::Io(format!("cannot {what}: {e}"));
    std::fs::copy(from, &staged).map_err(|e| io(&format!("write {}", staged.display()), e))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.clone().into_os_string();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(&format!("remove {}", Path::new(&side).display()), e));
            }
            _ => {}
        }
    }
    std::fs::rename(&staged, &path).map_err(|e| io(&format!("replace {}", path.display()), e))?;
    // Opening it again applies any migration this version has that the backup's lacks.
    let reopened = crate::open(url)
        .await
        .map_err(|e| BackupError::Damaged(format!("the restored database does not open: {e}")))?;
    reopened.close().await;
    Ok(())
}
