//! Where the conformance suite gets its databases: SQLite in a temp file always; PostgreSQL
//! when PLANTAO_TEST_POSTGRES_URL names a server, in a database of its own per test, dropped
//! at the end.

// Test support: a skipped backend is said on stderr.
#![allow(clippy::print_stderr)]

use std::future::Future;
use std::pin::Pin;

use plantao_store::{Backend, Store};
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "PLANTAO_TEST_POSTGRES_URL";

pub struct Fixture {
    pub backend: Backend,
    pub url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// None when the backend is not available here (PostgreSQL without its URL, outside CI).
    pub async fn new(backend: Backend) -> Option<Fixture> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("plantao.db").display());
                Some(Fixture {
                    backend,
                    url,
                    admin: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let Ok(admin) = std::env::var(POSTGRES_ENV) else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "{POSTGRES_ENV} must be set in CI: scripts/test starts a server and sets it"
                    );
                    eprintln!("skipped: {POSTGRES_ENV} is not set");
                    return None;
                };
                let name = format!("plantao_test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let url = with_database(&admin, &name);
                Some(Fixture {
                    backend,
                    url,
                    admin: Some((admin, name)),
                    _dir: None,
                })
            }
        }
    }

    pub async fn open(&self) -> Box<dyn Store> {
        plantao_store::open(&self.url).await.unwrap()
    }

    /// Writes a schema version by hand, as a newer plantao would have.
    pub async fn set_schema_version(&self, version: i64) {
        self.execute(
            &format!("PRAGMA user_version = {version}"),
            &format!("UPDATE plantao_schema SET version = {version}"),
        )
        .await;
    }

    /// Runs SQL on the database by hand, bypassing the store: `sqlite` or `postgres`, whichever
    /// is this fixture's backend.
    pub async fn execute(&self, sqlite: &str, postgres: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
            }
        }
    }

    pub async fn cleanup(self) {
        if let Some((admin, name)) = &self.admin {
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
    }
}

/// The admin URL with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_and_path = &base[scheme_end..];
    let host = host_and_path.split('/').next().unwrap_or("");
    let mut out = format!("{}{host}/{name}", &base[..scheme_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs each named test once per backend, in a fresh database, cleaning up even on failure.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::harness::run_one(plantao_store::Backend::Sqlite, |fx| Box::pin(super::$name(fx))).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::harness::run_one(plantao_store::Backend::Postgres, |fx| Box::pin(super::$name(fx))).await;
                }
            )+
        }
    };
}

pub async fn run_one<F>(backend: Backend, test: F)
where
    F: for<'a> FnOnce(&'a Fixture) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
{
    use futures::FutureExt;
    let Some(fx) = Fixture::new(backend).await else {
        return;
    };
    let outcome = std::panic::AssertUnwindSafe(test(&fx)).catch_unwind().await;
    fx.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
