//! `examples/biz-reports` end to end: its configuration validates as committed, and `plantao
//! serve` on it, with the example's stand-ins for the app, the Evolution API and Slack on
//! loopback, runs shifts (retrying the overloaded AI), sends the families' messages, finds the
//! alarming words, tells the team of them, of the report stuck in review and of a worker that
//! failed, and sends the day's report to Slack. Only the addresses, the databases and the
//! secrets come from the environment, as the example's comments tell a team to do.

#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // the test waits on real processes

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use biz_reports_standins::{Message, Options, Standins};
use serde_json::Value;

const PING_KEY: &str = "test-ping-key-0123456789";
const COORDINATOR: &str = "5511955550199";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/biz-reports")
}

#[test]
fn the_committed_configuration_validates() {
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .arg("--config")
        .arg(example().join("plantao.toml"))
        .arg("validate")
        .env_remove("PLANTAO_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("4 pipelines, 8 alert rules, 2 channels, 2 heartbeats, 2 probes, 1 pattern"),
        "{text}"
    );
}

/// The stand-ins (on their own runtime), a folder for the databases and the environment every
/// `plantao` command of the test gets.
struct Demo {
    dir: tempfile::TempDir,
    standins: Standins,
    env: Vec<(String, String)>,
    _runtime: tokio::runtime::Runtime,
}

impl Demo {
    fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let standins = runtime
            .block_on(biz_reports_standins::start(Options {
                app: any,
                evolution: any,
                slack: any,
                database: dir.path().join("app.db"),
                app_token: "test-app-token".into(),
                evolution_key: "test-evolution-key".into(),
                seed: 7,
                // The second shift's first try meets an overloaded AI.
                flaky_every: 2,
            }))
            .unwrap();
        let bin = Path::new(env!("CARGO_BIN_EXE_plantao")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let env = [
            ("BIZ_LISTEN", "127.0.0.1:0".to_owned()),
            (
                "PLANTAO_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("plantao.db").display()),
            ),
            (
                "BIZ_APP_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("app.db").display()),
            ),
            ("BIZ_APP_URL", format!("http://{}", standins.app)),
            ("BIZ_APP_TOKEN", "test-app-token".into()),
            (
                "SLACK_WEBHOOK_URL",
                format!("http://{}/services/T0BIZ/B0OPS/ops", standins.slack),
            ),
            ("EVOLUTION_URL", format!("http://{}", standins.evolution)),
            ("EVOLUTION_API_KEY", "test-evolution-key".into()),
            ("COORDINATOR_PHONE", COORDINATOR.into()),
            ("PLANTAO_PING_KEY", PING_KEY.into()),
            (
                "BIZ_REPORTS_DIR",
                dir.path().join("reports").display().to_string(),
            ),
            ("PATH", path),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec();
        Demo {
            dir,
            standins,
            env,
            _runtime: runtime,
        }
    }

    fn plantao(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plantao"));
        c.arg("--config")
            .arg(example().join("plantao.toml"))
            .args(args)
            .env_remove("PLANTAO_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.plantao(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "plantao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn serve(&self) -> Child {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        self.plantao(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The finished runs of `pipeline` that the test asked for, oldest first.
    fn finished(&self, pipeline: &str) -> Vec<Value> {
        let mut runs: Vec<Value> = self
            .json(&["runs", "--json", "--pipeline", pipeline, "--limit", "100"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["trigger"] == "manual" && r["finished_at"].is_string())
            .cloned()
            .collect();
        runs.reverse();
        runs
    }

    /// Triggers `pipeline` and waits for its run to finish.
    fn run(&self, pipeline: &str) -> Value {
        let before = self.finished(pipeline).len();
        let out = self.output(&["trigger", pipeline]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut runs = Vec::new();
        wait_for(
            || {
                runs = self.finished(pipeline);
                runs.len() > before
            },
            &format!("a run of {pipeline} to finish"),
        );
        let id = runs[before]["id"].as_str().unwrap().to_owned();
        self.json(&["show", &id, "--json"])
    }

    fn messages(&self, service: &str, to: &str) -> Vec<Message> {
        self.standins
            .messages()
            .into_iter()
            .filter(|m| m.service == service && m.to == to)
            .collect()
    }

    /// Waits until the team's Slack channel has received a message holding every one of
    /// `words`, and answers it.
    fn slack_message(&self, words: &[&str]) -> String {
        let mut found = None;
        wait_for(
            || {
                found = self
                    .messages("slack", "T0BIZ/B0OPS/ops")
                    .into_iter()
                    .find(|m| words.iter().all(|w| m.text.contains(w)));
                found.is_some()
            },
            &format!("a Slack message with {words:?}"),
        );
        found.unwrap().text
    }
}

/// Waits for a condition; five minutes is ten times what the slowest one here needs (a probe
/// on a one-minute interval, then the alert's evaluation).
fn wait_for(mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ok() {
        assert!(Instant::now() < deadline, "waited 5 minutes for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn counter(run: &Value, step: &str, name: &str) -> f64 {
    run["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == step && c["name"] == name)
        .unwrap_or_else(|| panic!("no counter {step}.{name} in {run}"))["value"]
        .as_f64()
        .unwrap()
}

fn attempts(run: &Value, step: &str) -> Vec<Value> {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == step)
        .cloned()
        .collect()
}

#[test]
fn the_example_runs_its_shifts_and_tells_the_team() {
    let demo = Demo::start();
    let mut serve = demo.serve();
    wait_for(
        || demo.log().contains("plantao is serving"),
        "serve to start",
    );
    let address = demo
        .log()
        .split("listen=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    // Their ticks are skipped from now on, whatever the hour: only the test's runs run.
    for pipeline in [
        "shift-reports",
        "review-timeout",
        "daily-report",
        "weekly-report",
    ] {
        let out = demo.output(&["pause", pipeline]);
        assert!(out.status.success(), "{out:?}");
    }

    // Two shifts: every number adds up, and the families get exactly the messages sent.
    let shifts = [demo.run("shift-reports"), demo.run("shift-reports")];
    let mut sent = 0.0;
    for run in &shifts {
        assert_eq!(run["run"]["status"], "succeeded", "{run}");
        let new = counter(run, "sync", "new");
        let (approved, failed) = (
            counter(run, "process", "approved"),
            counter(run, "process", "failed"),
        );
        assert!((6.0..=12.0).contains(&new), "{run}");
        assert_eq!(approved + failed, new, "{run}");
        let held = counter(run, "process", "held");
        sent += counter(run, "send", "sent");
        assert_eq!(
            counter(run, "send", "sent") + counter(run, "send", "send_failed"),
            approved - held,
            "{run}"
        );
        let rate = run["metrics"]["approval_rate"].as_f64().unwrap();
        assert!((rate - approved / (approved + failed) * 100.0).abs() < 1e-9);
        let fallback = counter(run, "process", "fallback");
        let rate = run["metrics"]["fallback_rate"].as_f64().unwrap();
        assert!((rate - fallback / approved * 100.0).abs() < 1e-9);
    }
    let families: Vec<Message> = demo
        .standins
        .messages()
        .into_iter()
        .filter(|m| m.service == "whatsapp" && m.text.starts_with("Olá, família de"))
        .collect();
    assert_eq!(families.len() as f64, sent);
    assert!(
        !demo
            .messages("slack", "T0BIZ/B0REVIEW/reviewers")
            .is_empty(),
        "the reviewers were told"
    );

    // The first shift's note of a fall or a fever is a finding of the process step.
    let findings = shifts[0]["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{}", shifts[0]);
    for f in findings {
        assert_eq!(f["pattern"], "alarming-words");
        assert_eq!(f["step"], "process");
        assert!(
            f["excerpt"].as_str().unwrap().contains("held for a nurse"),
            "{f}"
        );
    }

    // The second shift's process step met the overloaded AI once, and its retry went through.
    let tries = attempts(&shifts[1], "process");
    assert_eq!(tries.len(), 2, "{}", shifts[1]);
    assert_eq!(tries[0]["status"], "failed");
    assert!(
        tries[0]["log"].as_str().unwrap().contains("503"),
        "{}",
        tries[0]
    );
    assert_eq!(tries[1]["status"], "succeeded");

    // The team hears of the alarming words and of the morning's report nobody reviewed.
    demo.slack_message(&["[CRÍTICO]", "alarming-words", "held for a nurse"]);
    demo.slack_message(&[
        "[CRÍTICO]",
        "reports-stuck-in-review",
        "a última verificação falhou",
    ]);

    // The workers report with the wrapper: one ([[heartbeats]] in plantao.toml) succeeds, the
    // other (a pipeline file of kind "external") fails and goes down.
    let url = format!("http://{address}");
    let ping = |name: &str, command: &[&str]| {
        let mut args = vec!["ping", name, "--url", &url, "--key", PING_KEY, "--"];
        args.extend_from_slice(command);
        let mut c = demo.plantao(&args);
        c.current_dir(example());
        c.output().unwrap()
    };
    let ok = ping("shift-notes-worker", &["./workers/shift-notes.sh"]);
    assert!(ok.status.success(), "{ok:?}");
    let refused = ping(
        "family-replies-worker",
        &[
            "sh",
            "-c",
            "echo 'Evolution answered 401 Unauthorized' >&2; exit 1",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    demo.slack_message(&["[CRÍTICO]", "worker-down", "family-replies-worker"]);
    let checks = demo.json(&["checks", "--json"]);
    let state = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state("shift-notes-worker"), "up", "{checks}");
    assert_eq!(state("family-replies-worker"), "down", "{checks}");

    // The midnight report, run now: a step running `plantao report`, sent to Slack.
    let report = demo.run("daily-report");
    assert_eq!(report["run"]["status"], "succeeded", "{report}");
    let synced: f64 = shifts.iter().map(|r| counter(r, "sync", "new")).sum();
    let text = demo.slack_message(&["Relatório diário", &format!("sync.new {synced}")]);
    assert!(text.contains("- alarming-words: 1"), "{text}");
    assert!(text.contains("(crítico "), "{text}");

    // Friday's report: to Slack, and a page kept in the reports folder.
    let weekly = demo.run("weekly-report");
    assert_eq!(weekly["run"]["status"], "succeeded", "{weekly}");
    demo.slack_message(&["Relatório semanal", &format!("sync.new {synced}")]);
    let pages: Vec<PathBuf> = std::fs::read_dir(demo.dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pages.len(), 1, "{pages:?}");
    let page = std::fs::read_to_string(&pages[0]).unwrap();
    assert!(
        page.contains("<html") && page.contains("shift-reports"),
        "{page}"
    );

    // Nothing of the secrets in the log, the messages or the API's answers.
    let said: String = demo
        .standins
        .messages()
        .iter()
        .map(|m| m.text.clone())
        .chain([demo.log(), shifts[0].to_string(), shifts[1].to_string()])
        .collect();
    for secret in ["test-app-token", "test-evolution-key", PING_KEY] {
        assert!(!said.contains(secret), "{secret} was shown");
    }

    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(serve.wait().unwrap().success(), "{}", demo.log());
}
