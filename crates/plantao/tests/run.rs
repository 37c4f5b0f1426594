//! `plantao run`, `runs`, `show` and `logs` end to end: the real binary on a copy of the
//! quickstart, with its SQLite file in a temp folder.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Quickstart {
    dir: tempfile::TempDir,
}

impl Quickstart {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart");
        copy(&src, dir.path());
        Quickstart { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("plantao.toml")
    }

    fn plantao(&self, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plantao"));
        cmd.arg("--config")
            .arg(self.config())
            .args(args)
            .env_remove("PLANTAO_CONFIG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let (code, out, err) = self.plantao(args, &[]);
        assert!(code == 0 || code == 3 || code == 1, "{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else if entry
            .file_name()
            .to_string_lossy()
            .starts_with("plantao.db")
        {
            continue;
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn a_successful_run_shows_each_stage_and_a_summary() {
    let q = Quickstart::new();
    let (code, out, err) = q.plantao(&["run", "biz-reports"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.starts_with("▶ biz-reports  run "), "{out}");
    for line in [
        "  · sync started",
        "  ✓ sync succeeded in ",
        "novos=12",
        "approved=36 failed=4",
        "sent=34 send_failed=2",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(
        out.contains("metrics: approval_rate=90 delivery_rate=94.44"),
        "{out}"
    );
    let last = out.lines().last().unwrap();
    assert!(
        last.starts_with("run ") && last.contains(" succeeded in "),
        "{last}"
    );
    assert!(
        q.dir.path().join("plantao.db").exists(),
        "the SQLite default is created beside the config"
    );
}

#[test]
fn exit_codes_follow_the_outcome() {
    let q = Quickstart::new();
    assert_eq!(q.plantao(&["run", "nightly-ingest"], &[]).0, 3, "partial");
    let (code, _, _) = q.plantao(
        &["run", "smoke"],
        &[("SMOKE_URL", "http://127.0.0.1:1/health")],
    );
    assert_eq!(code, 1, "failed");
    let (code, _, err) = q.plantao(&["run", "biz-report"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains(
            "there is no pipeline `biz-report`; the pipelines are: biz-reports, clinic-scrape"
        ),
        "{err}"
    );
    let (code, _, err) = q.plantao(&["run", "biz-reports", "--param", "size=3"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("has no parameter `size`; its parameters are: batch"),
        "{err}"
    );
    let (code, _, err) = q.plantao(&["run", "biz-reports", "--skip", "nope"], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn json_output_has_the_run_stages_counters_and_metrics() {
    let q = Quickstart::new();
    let v = q.json(&["run", "biz-reports", "--json", "--param", "batch=20"]);
    assert_eq!(v["run"]["status"], "succeeded");
    assert_eq!(v["run"]["trigger"], "manual");
    assert_eq!(v["run"]["params"]["batch"], "20");
    assert_eq!(v["stages"].as_array().unwrap().len(), 4);
    assert_eq!(v["stages"][1]["step"], "process");
    assert_eq!(v["stages"][1]["exit_code"], 0);
    assert!(v["stages"][1]["cpu_user_ms"].is_number());
    assert_eq!(v["metrics"]["approval_rate"], 90.0);
    let counters = v["counters"].as_array().unwrap();
    assert!(
        counters
            .iter()
            .any(|c| c["step"] == "process" && c["name"] == "approved" && c["value"] == 18.0)
    );

    let id = v["run"]["id"].as_str().unwrap().to_owned();
    let runs = q.json(&["runs", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["id"], id.as_str());
    let shown = q.json(&["show", &id, "--json"]);
    assert_eq!(shown["run"], v["run"]);
    assert_eq!(shown["metrics"]["approval_rate"], 90.0);
}

#[test]
fn runs_show_and_logs_find_a_run_again() {
    let q = Quickstart::new();
    q.plantao(&["run", "nightly-ingest"], &[]);
    let (code, out, _) = q.plantao(&["runs", "--pipeline", "nightly-ingest"], &[]);
    assert_eq!(code, 0);
    let row = out.lines().nth(1).unwrap();
    assert!(
        row.contains("nightly-ingest") && row.contains("manual") && row.contains("partial"),
        "{out}"
    );
    let id = row.split_whitespace().next().unwrap();
    let (code, out, _) = q.plantao(&["show", id], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("error     archive: exit code 4"), "{out}");
    assert!(
        out.contains("archive volume is full"),
        "log tail shown: {out}"
    );
    assert!(out.contains("rows=1250"), "{out}");
    let (code, out, _) = q.plantao(&["logs", id, "--stage", "unlock"], &[]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "== unlock (attempt 1, succeeded) ==\nreleased the ingest lock\n"
    );
    let (code, _, err) = q.plantao(&["logs", id, "--stage", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("has no stage `nope`"), "{err}");
    let (code, _, err) = q.plantao(&["show", "01a2003c-0000-7000-8000-000000000000"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
    let (code, _, _) = q.plantao(&["runs", "--status", "done"], &[]);
    assert_eq!(code, 2);
}

#[test]
fn a_dry_run_prints_the_plan_and_records_nothing() {
    let q = Quickstart::new();
    let (code, out, _) = q.plantao(
        &["run", "biz-reports", "--dry-run", "--skip", "notify"],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.contains("1. sync  run: ./sync.sh"), "{out}");
    assert!(
        out.contains("3. notify  run: ./notify.sh\n     skipped: named by --skip"),
        "{out}"
    );
    assert!(
        !q.dir.path().join("plantao.db").exists(),
        "a dry run opened the store"
    );
}

#[test]
fn a_planted_secret_stays_out_of_every_output() {
    let q = Quickstart::new();
    let secret = "planted-fake-secret-c0ffee";
    std::fs::write(
        q.dir.path().join("pipelines/leaky.toml"),
        "[env]\nAPI_TOKEN = \"${env:API_TOKEN}\"\n[[steps]]\nname = \"leak\"\nrun = \"echo using $API_TOKEN; echo token=$API_TOKEN >> $PLANTAO_OUTPUT\"\n\n\
         [[steps]]\nname = \"call\"\nhttp = { url = \"http://127.0.0.1:1/?token=${env:API_TOKEN}\" }\n",
    )
    .unwrap();
    let envs = [("API_TOKEN", secret)];
    let (code, out, err) = q.plantao(&["run", "leaky"], &envs);
    assert_eq!(code, 1);
    let (_, plan, _) = q.plantao(&["run", "leaky", "--dry-run"], &envs);
    let (_, runs, _) = q.plantao(&["runs", "--json"], &envs);
    let id = serde_json::from_str::<serde_json::Value>(&runs).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, show, _) = q.plantao(&["show", &id], &envs);
    let (_, show_json, _) = q.plantao(&["show", &id, "--json"], &envs);
    let (_, logs, _) = q.plantao(&["logs", &id], &envs);
    assert!(logs.contains("using ***"), "{logs}");
    assert!(
        show.contains("for url (***)"),
        "the failed request's error is shown, redacted: {show}"
    );
    for text in [&out, &err, &plan, &runs, &show, &show_json, &logs] {
        assert!(!text.contains(secret), "leaked:\n{text}");
    }
}

#[test]
fn an_unreachable_database_is_named_with_its_password_hidden() {
    let q = Quickstart::new();
    let config = std::fs::read_to_string(q.config()).unwrap();
    std::fs::write(
        q.config(),
        format!(
            "{config}\n[storage]\nurl = \"postgres://plantao:hunter2-pw@127.0.0.1:1/plantao\"\n"
        ),
    )
    .unwrap();
    let (code, _, err) = q.plantao(&["run", "biz-reports"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the database at postgres://plantao:***@127.0.0.1:1/plantao"),
        "{err}"
    );
    assert!(!err.contains("hunter2-pw"));
}

#[test]
fn stats_add_up_the_runs_of_today_and_recompute_metrics_from_the_sums() {
    let q = Quickstart::new();
    q.json(&["run", "biz-reports", "--json"]);
    q.json(&["run", "biz-reports", "--json"]);
    let ingest = q.json(&["run", "nightly-ingest", "--json"]);
    let v = q.json(&["stats", "--json"]);
    for window in ["today", "24h", "7d"] {
        let biz = &v["biz-reports"][window];
        assert_eq!(biz["runs"], 2, "{window}: {biz}");
        assert_eq!(biz["by_status"]["succeeded"], 2);
        assert_eq!(biz["by_trigger"]["manual"], 2);
        assert_eq!(biz["success_rate"], 1.0);
        assert_eq!(biz["counters"]["process.approved"]["sum"], 72.0);
        assert_eq!(
            biz["metrics"]["approval_rate"], 90.0,
            "from the summed counters"
        );
        assert!(biz["duration_ms"]["p95"].is_number());
    }
    let status = ingest["run"]["status"].as_str().unwrap();
    assert_eq!(v["nightly-ingest"]["today"]["by_status"][status], 1);
    assert_eq!(v["clinic-scrape"]["7d"]["runs"], 0);

    let (code, out, err) = q.plantao(&["stats", "biz-reports"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("biz-reports  today   2     2"), "{out}");
    assert!(out.contains("today metrics:  approval_rate=90"), "{out}");
    let (code, _, err) = q.plantao(&["stats", "nope"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("there is no pipeline `nope`"), "{err}");
}

#[test]
#[allow(clippy::disallowed_methods)] // waits for a real process to start its run
fn logs_follow_a_running_stage_until_the_run_ends() {
    let q = Quickstart::new();
    std::fs::write(
        q.dir.path().join("pipelines/chatty.toml"),
        "[[steps]]\nname = \"talk\"\nrun = \"echo first; sleep 4; echo second\"\n",
    )
    .unwrap();
    let mut run = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .arg("--config")
        .arg(q.config())
        .args(["run", "chatty"])
        .env_remove("PLANTAO_CONFIG")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        let runs = q.json(&["runs", "--json"]);
        if let Some(id) = runs
            .as_array()
            .unwrap()
            .first()
            .and_then(|r| r["id"].as_str())
        {
            break id.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let (code, out, err) = q.plantao(&["logs", "-f", &id], &[]);
    assert_eq!(code, 0, "{err}");
    let first = out.find("first").unwrap_or_else(|| panic!("{out}"));
    let second = out.find("second").unwrap_or_else(|| panic!("{out}"));
    assert!(first < second, "{out}");
    assert!(out.starts_with("== talk (attempt 1) =="), "{out}");
    assert!(out.contains("ended succeeded"), "{out}");
    assert!(run.wait().unwrap().success());
}
