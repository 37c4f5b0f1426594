//! Three `plantao serve` nodes on one PostgreSQL database: ticks run exactly once while nodes
//! are killed and restarted, and a dead node's run is taken over within 10 s.

#![allow(clippy::unwrap_used, clippy::print_stderr)]
#![allow(clippy::disallowed_methods)] // the tests wait on real processes

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

const POSTGRES_ENV: &str = "PLANTAO_TEST_POSTGRES_URL";

/// A database of its own on the test server, dropped at the end; None outside CI when no
/// server is given.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn create(runtime: &tokio::runtime::Runtime) -> Option<Database> {
        let Ok(admin) = std::env::var(POSTGRES_ENV) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{POSTGRES_ENV} must be set in CI"
            );
            eprintln!("skipped: {POSTGRES_ENV} is not set");
            return None;
        };
        let name = format!("plantao_nodes_{}", std::process::id());
        runtime.block_on(async {
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
        });
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(Database { admin, name, url })
    }

    fn drop_now(&self, runtime: &tokio::runtime::Runtime) {
        runtime.block_on(async {
            let mut c = sqlx::PgConnection::connect(&self.admin).await.unwrap();
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
        });
    }
}

struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(url: &str, pipeline: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(
            dir.path().join("plantao.toml"),
            format!("[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"{url}\"\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("pipelines/tick.toml"), pipeline).unwrap();
        Cluster { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plantao.toml")
    }

    fn start(&self, log: &str) -> Child {
        let log_file = std::fs::File::create(self.dir.path().join(log)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_plantao"))
            .arg("--config")
            .arg(self.config())
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        wait_for(
            || {
                std::fs::read_to_string(self.dir.path().join(log))
                    .unwrap_or_default()
                    .contains("plantao is serving")
            },
            "a node to serve",
        );
        child
    }

    fn plantao(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The id a node logged when it started serving.
    fn node_id(&self, log: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(log)).unwrap();
        let id = text
            .split("node=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        id.unwrap_or_else(|| panic!("no node id in {log}"))
            .to_owned()
    }

    /// The lines of every node's log that mention `needle`, for failure messages.
    fn logged(&self, needle: &str) -> String {
        let mut found = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                    if line.contains(needle) {
                        found.push_str(&format!("{}: {line}\n", path.display()));
                    }
                }
            }
        }
        found
    }

    fn runs(&self) -> Vec<serde_json::Value> {
        let text = self.plantao(&["runs", "--json", "--limit", "100000"]);
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &mut Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn three_nodes_run_each_tick_once_while_nodes_are_killed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = Database::create(&runtime) else {
        return;
    };
    let cluster = Cluster::new(
        &db.url,
        "schedule = \"* * * * * *\"\nconcurrency = \"allow\"\nmax_concurrent = 10\n\
         [[steps]]\nname = \"work\"\nrun = \"sleep 0.5\"\n",
    );
    let mut nodes: Vec<Child> = (0..3)
        .map(|i| cluster.start(&format!("node-{i}-0.log")))
        .collect();
    let mut logs: Vec<String> = (0..3).map(|i| format!("node-{i}-0.log")).collect();
    let mut killed = BTreeSet::new();
    let started = Instant::now();
    for round in 1..=6 {
        std::thread::sleep(Duration::from_secs(10));
        let i = round % 3;
        nodes[i].kill().unwrap();
        nodes[i].wait().unwrap();
        killed.insert(cluster.node_id(&logs[i]));
        logs[i] = format!("node-{i}-{round}.log");
        nodes[i] = cluster.start(&logs[i]);
    }
    assert!(started.elapsed() >= Duration::from_secs(60));
    // The killed nodes' runs are closed by the live ones once their leases expire (a node
    // killed a moment ago still looks alive to `plantao status` for up to 6 s).
    wait_for(
        || {
            cluster.runs().iter().all(|r| {
                r["status"] != "running" || r["node"].as_str().is_some_and(|n| !killed.contains(n))
            })
        },
        "the runs of killed nodes to be closed",
    );
    for node in &mut nodes {
        terminate(node);
    }
    let runs = cluster.runs();
    let ticks: Vec<i64> = runs
        .iter()
        .filter_map(|r| r["scheduled_for"].as_str())
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp())
        .collect();
    let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(ticks.len(), distinct.len(), "a tick ran twice");
    let span = distinct.last().unwrap() - distinct.first().unwrap() + 1;
    assert_eq!(
        i64::try_from(distinct.len()).unwrap(),
        span,
        "a second of schedule has no run"
    );
    assert!(span >= 60, "only {span} seconds of ticks");
    for r in &runs {
        let status = r["status"].as_str().unwrap();
        assert!(
            ["succeeded", "interrupted"].contains(&status) || r["reason"] == "missed",
            "{r}\n{}{}",
            cluster.logged(r["id"].as_str().unwrap()),
            cluster.logged(r["node"].as_str().unwrap_or("?"))
        );
    }
    let nodes_used: BTreeSet<&str> = runs.iter().filter_map(|r| r["node"].as_str()).collect();
    assert!(
        nodes_used.len() >= 3,
        "the work did not spread: {nodes_used:?}"
    );
    db.drop_now(&runtime);
}

#[test]
fn a_dead_nodes_run_is_closed_within_ten_seconds() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = Database::create(&runtime) else {
        return;
    };
    let cluster = Cluster::new(&db.url, "[[steps]]\nname = \"long\"\nrun = \"sleep 60\"\n");
    let mut a = cluster.start("a.log");
    let mut b = cluster.start("b.log");
    cluster.plantao(&["trigger", "tick"]);
    wait_for(
        || cluster.runs()[0]["status"] == "running",
        "the run to start",
    );
    let holder = cluster.runs()[0]["node"].as_str().unwrap().to_owned();
    let a_log = std::fs::read_to_string(cluster.dir.path().join("a.log")).unwrap();
    let (victim, survivor) = if a_log.contains(&holder) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    victim.kill().unwrap();
    let killed_at = chrono::Utc::now();
    victim.wait().unwrap();
    wait_for(
        || cluster.runs()[0]["status"] == "interrupted",
        "the run to be closed",
    );
    let closed_at =
        chrono::DateTime::parse_from_rfc3339(cluster.runs()[0]["finished_at"].as_str().unwrap())
            .unwrap();
    let took = closed_at.with_timezone(&chrono::Utc) - killed_at;
    assert!(
        took <= chrono::TimeDelta::seconds(10),
        "closed {took} after the kill"
    );
    terminate(survivor);
    db.drop_now(&runtime);
}
