//! A pipeline written as TOML in a temp folder, its config loaded, a SQLite store beside it,
//! and a runner: what each runner test starts from.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use plantao_config::Config;
use plantao_engine::{Plan, Quiet, RunReport, RunRequest, Runner};
use plantao_model::Trigger;
use plantao_store::{RunDetail, Store};
use tokio::sync::watch;

pub struct Bed {
    pub dir: tempfile::TempDir,
    /// Files the steps write, for the test to read.
    pub scratch: Option<tempfile::TempDir>,
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub runner: Runner,
}

impl Bed {
    /// `pipeline` is the text of `pipelines/p.toml`; `root` is added to `plantao.toml`.
    pub async fn new(pipeline: &str, root: &str, env: &[(&str, &str)]) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
        std::fs::write(dir.path().join("pipelines/p.toml"), pipeline).unwrap();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config =
            plantao_config::load(&dir.path().join("plantao.toml"), &|n| env.get(n).cloned())
                .unwrap_or_else(|d| panic!("{d}"));
        let config = Arc::new(config);
        let store: Arc<dyn Store> = plantao_store::open(config.storage.url.expose())
            .await
            .unwrap()
            .into();
        let runner = Runner::new(config.clone(), store.clone(), Some("test-node".into()));
        Bed {
            dir,
            scratch: None,
            config,
            store,
            runner,
        }
    }

    pub async fn simple(pipeline: &str) -> Bed {
        Bed::new(pipeline, "", &[]).await
    }

    /// A pipeline whose text names files in the bed's folder.
    pub async fn in_folder(pipeline: impl FnOnce(&std::path::Path) -> String) -> Bed {
        let folder = tempfile::tempdir().unwrap();
        let text = pipeline(folder.path());
        let mut bed = Bed::new(&text, "", &[]).await;
        bed.scratch = Some(folder);
        bed
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn run_with(&self, request: RunRequest) -> RunReport {
        let (_keep, cancel) = watch::channel(None);
        let plan = Plan::new(self.config.pipeline("p").unwrap(), &request).unwrap();
        self.runner
            .run(&plan, Trigger::Manual, cancel, &Quiet)
            .await
            .unwrap()
    }

    pub async fn run(&self) -> RunReport {
        self.run_with(RunRequest::default()).await
    }

    pub async fn detail(&self, report: &RunReport) -> RunDetail {
        self.store.run_detail(report.run_id).await.unwrap()
    }
}

/// A URL from the environment for an external database, or None outside CI when unset.
pub fn external(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{var} must be set in CI: scripts/test starts the server"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// Each stage's step and status, in report order.
pub fn stage_statuses(report: &RunReport) -> Vec<(String, plantao_model::StageStatus)> {
    report
        .stages
        .iter()
        .map(|s| (s.step.clone(), s.status))
        .collect()
}

/// A configuration written to a temp folder (`plantao.toml` and `pipelines/NAME.toml`), loaded,
/// its store opened and its pipelines recorded there: what daemon and alerting tests start from.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
}

impl Rig {
    pub async fn new(root: &str, pipelines: &[(&str, &str)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
        for (name, text) in pipelines {
            std::fs::write(dir.path().join(format!("pipelines/{name}.toml")), text).unwrap();
        }
        let config = Arc::new(
            plantao_config::load(&dir.path().join("plantao.toml"), &|_| None)
                .unwrap_or_else(|d| panic!("{d}")),
        );
        let store: Arc<dyn Store> = plantao_store::open(config.storage.url.expose())
            .await
            .unwrap()
            .into();
        plantao_engine::sync_pipelines(store.as_ref(), &config, chrono::Utc::now())
            .await
            .unwrap();
        Rig { dir, config, store }
    }
}

/// A database of its own on the PostgreSQL server of PLANTAO_TEST_POSTGRES_URL (set in CI).
pub async fn postgres_database(tag: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = external("PLANTAO_TEST_POSTGRES_URL")?;
    let name = format!("plantao_{tag}_{}", std::process::id());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// Drops a database made by [`postgres_database`], its connections closed by force.
pub async fn drop_database(url: &str) {
    use sqlx::Connection;
    let admin = std::env::var("PLANTAO_TEST_POSTGRES_URL").unwrap();
    let name = url.rsplit_once('/').unwrap().1;
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .unwrap();
}
