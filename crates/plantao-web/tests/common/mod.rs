//! A real plantao behind real HTTP: a daemon on a store (a SQLite file, or a database of its
//! own on the PostgreSQL server named by PLANTAO_TEST_POSTGRES_URL), the API on a loopback port
//! chosen by the system, and a client. Ready once `/api/health` answers, never after a sleep.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plantao_config::Config;
use plantao_engine::clock::SystemClock;
use plantao_engine::daemon::Daemon;
use plantao_model::{AlertState, Role, RunId, RunStatus, Severity};
use plantao_store::{Alert, Store, Write};
use plantao_web::{AppState, Vitals};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "PLANTAO_TEST_POSTGRES_URL";
/// What the secret environment variable holds; no answer may contain it.
pub const SECRET: &str = "s3cr3t-planted-8f2c";

/// The backends a test runs on: SQLite always, PostgreSQL when its URL is set (always in CI).
pub fn backends() -> Vec<&'static str> {
    match std::env::var(POSTGRES_ENV) {
        Ok(_) => vec!["sqlite", "postgres"],
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{POSTGRES_ENV} must be set in CI"
            );
            vec!["sqlite"]
        }
    }
}

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub daemon: Option<Daemon>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

/// The pipelines every test has: `quick` (two steps with counters and a derived metric),
/// `slow` (sleeps until cancelled), `chatty` (says something, waits 8 s, says more), `needs` (a required parameter) and `leaky` (a step that
/// prints the secret, which the runner stores redacted).
const PIPELINES: &[(&str, &str)] = &[
    (
        "quick",
        "description = \"two quick steps\"\n\
         [params.day]\ndefault = \"today\"\n\
         [[steps]]\nname = \"extract\"\nrun = \"echo rows=10 >> $PLANTAO_OUTPUT\"\n\
         [[steps]]\nname = \"load\"\nrun = \"echo loaded=8 >> $PLANTAO_OUTPUT\"\n\
         [metrics]\nload_rate = \"load.loaded / extract.rows * 100\"\n\
         [trends]\ndays = 7\nhigher_is_better = [\"load_rate\"]\nlower_is_better = [\"extract.rows\"]\n",
    ),
    ("slow", "[[steps]]\nname = \"wait\"\nrun = \"sleep 60\"\n"),
    (
        "chatty",
        "[[steps]]\nname = \"talk\"\nrun = \"echo first; sleep 8; echo second\"\n",
    ),
    (
        "needs",
        "[params.day]\nrequired = true\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
    ),
    (
        "leaky",
        "[[steps]]\nname = \"say\"\nrun = \"echo token=$TOKEN; echo fail=1 >> $PLANTAO_OUTPUT\"\nenv = { TOKEN = \"${env:PLANTED}\" }\n",
    ),
];

/// A channel nobody listens on (port 9, discard: refused), signed with the planted secret, and
/// two rules on `quick`.
const ALERTING: &str = "[[channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\ntimeout = \"2s\"\nsecret = \"${env:PLANTED}\"\n\n\
    [[alerts]]\nname = \"quick-failed\"\nkind = \"run_failed\"\npipeline = \"quick\"\nchannels = [\"hook\"]\n\n\
    [[alerts]]\nname = \"quick-failure-rate\"\nkind = \"failure_rate\"\npipeline = \"quick\"\nthreshold = 50\n";

impl Server {
    pub async fn start(backend: &str, server_toml: &str) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let (url, postgres) = match backend {
            "sqlite" => (
                format!("sqlite://{}", dir.path().join("p.db").display()),
                None,
            ),
            _ => {
                let (url, admin, name) = postgres_database().await;
                (url, Some((admin, name)))
            }
        };
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        for (name, text) in PIPELINES {
            std::fs::write(dir.path().join(format!("pipelines/{name}.toml")), text).unwrap();
        }
        let root = dir.path().join("plantao.toml");
        std::fs::write(
            &root,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n{server_toml}\n[storage]\nurl = \"{url}\"\n{ALERTING}"
            ),
        )
        .unwrap();
        let config = Arc::new(load(&root));
        let store: Arc<dyn Store> = plantao_store::open(&url).await.unwrap().into();
        plantao_engine::sync_pipelines(store.as_ref(), &config, chrono::Utc::now())
            .await
            .unwrap();
        let daemon = Daemon::start(config.clone(), store.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let (_tx, rx) = tokio::sync::watch::channel(config);
        let state = AppState::new(
            store.clone(),
            rx,
            Some(Vitals {
                node: daemon.node().to_owned(),
                writable: daemon.writable().clone(),
                telemetry: daemon.telemetry().clone(),
                ended: daemon.ended().clone(),
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(plantao_web::launch(listener, state, async move {
            let _ = stopped.await;
            drop(_tx);
        }));
        let server = Server {
            base,
            client: reqwest::Client::new(),
            store,
            daemon: Some(daemon),
            stop: Some(stop),
            served: Some(served),
            postgres,
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(self.url("/api/health")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "the API never became healthy");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new token of `role`, made as `plantao token create` makes it.
    pub async fn token(&self, name: &str, role: Role) -> String {
        let (created, writes) = plantao_web::mint("test", name, role).unwrap();
        self.store.apply(writes).await.unwrap();
        created.token
    }

    /// Sends a request; the answer's status and body (JSON when it is JSON, else a string).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Waits (up to 30 s) until the run has ended; its final status.
    pub async fn ended(&self, id: RunId) -> RunStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run = self.store.run(id).await.unwrap();
            if run.status.is_final() {
                return run.status;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} is still {}",
                run.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An open alert written straight to the store, as the evaluator writes one.
    pub async fn open_alert(&self, rule: &str) -> uuid::Uuid {
        let alert = Alert {
            id: uuid::Uuid::now_v7(),
            fingerprint: format!("{rule}{{pipeline=quick}}"),
            rule: rule.to_owned(),
            kind: "run_failed".into(),
            pipeline: Some("quick".into()),
            labels: BTreeMap::from([("pipeline".to_owned(), "quick".to_owned())]),
            annotations: BTreeMap::new(),
            severity: Severity::Critical,
            state: AlertState::Firing,
            value: None,
            message: "quick failed".into(),
            runbook: None,
            channels: vec!["hook".into()],
            started_at: chrono::Utc::now(),
            fired_at: Some(chrono::Utc::now()),
            resolved_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            dismissed: false,
            next_reminder_at: None,
            escalation_level: None,
            next_escalation_at: None,
            notified: true,
            suppressed: None,
        };
        self.store
            .apply(vec![Write::OpenAlert(Box::new(alert.clone()))])
            .await
            .unwrap();
        alert.id
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        if let Some(daemon) = self.daemon.take() {
            daemon.shut_down().await.unwrap();
        }
        self.store.close().await;
        if let Some((admin, name)) = self.postgres.take() {
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await
            .unwrap();
        }
    }
}

fn load(path: &Path) -> Config {
    plantao_config::load(path, &|name| (name == "PLANTED").then(|| SECRET.to_owned())).unwrap()
}

/// A database of its own on the test server: (url, admin url, name).
async fn postgres_database() -> (String, String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let admin = std::env::var(POSTGRES_ENV).unwrap();
    let name = format!(
        "plantao_web_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    (format!("{base}/{name}"), admin, name)
}
