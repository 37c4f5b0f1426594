//! `plantao ping` end to end: a real `plantao serve`, the wrapper around real commands, and
//! `plantao checks` reading what the pings left.

#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // the test waits on real processes

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "wrapper-key-0123456789";

struct Served {
    dir: tempfile::TempDir,
    child: std::process::Child,
    url: String,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("plantao.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[pings]\nkey = \"{KEY}\"\n\n\
                 [[heartbeats]]\nname = \"backup\"\nperiod = \"1d\"\ngrace = \"1h\"\nsla = {{ uptime = 99.9 }}\n\n\
                 [[probes]]\nname = \"script\"\nevery = \"1s\"\ncommand = \"true\"\nsla = {{ uptime = 99, window = \"24h\" }}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = plantao(&dir, &["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
            if let Some(after) = log.split("listen=").nth(1)
                && log.contains("plantao is serving")
            {
                break format!("http://{}", after.split_whitespace().next().unwrap());
            }
            assert!(Instant::now() < deadline, "serve did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        };
        Served { dir, child, url }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["ping", "backup", "--url", &self.url];
        all.extend_from_slice(args);
        plantao(&self.dir, &all).output().unwrap()
    }

    fn checks(&self) -> serde_json::Value {
        let out = plantao(&self.dir, &["checks", "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
    }

    fn runs(&self) -> Vec<serde_json::Value> {
        let out = plantao(&self.dir, &["runs", "--json", "--pipeline", "backup"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plantao(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_plantao"));
    c.arg("--config")
        .arg(dir.path().join("plantao.toml"))
        .args(args)
        .env_remove("PLANTAO_CONFIG")
        .env_remove("PLANTAO_URL")
        .env_remove("PLANTAO_PING_KEY");
    c
}

#[test]
fn the_wrapper_reports_a_command_and_passes_its_exit_status_on() {
    let s = Served::start();
    assert_eq!(s.checks()["state"], "new");

    // A command that fails: its output passes through, its status is plantao's, and the run
    // it made failed with that status and the output as its log.
    let out = s.run(&["--", "sh", "-c", "echo copying; echo oops >&2; exit 3"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "copying\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("oops"));
    let checks = s.checks();
    assert_eq!(checks["state"], "down", "{checks}");
    let runs = s.runs();
    assert_eq!(runs.len(), 1, "the start and its end are one run: {runs:?}");
    assert_eq!(runs[0]["status"], "failed");
    let id = runs[0]["id"].as_str().unwrap();
    let shown = plantao(&s.dir, &["show", id, "--json"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("copying") && shown.contains("oops"),
        "{shown}"
    );
    assert!(shown.contains("exited with status 3"), "{shown}");

    // A command that succeeds makes it up again; so does a lone ping.
    let out = s.run(&["--", "true"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(s.checks()["state"], "up");
    let out = s.run(&["--body", "by hand"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.runs().len(), 3);

    // A command that does not exist: 127, and a failure on record.
    let out = s.run(&["--", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run `/no/such/program`"));
    assert_eq!(s.checks()["state"], "down");

    // A wrong key is a clear error, without the key in it; so is a flag around a command.
    let out = s.run(&["--key", "not-the-key-0123456789"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("check the heartbeat's name and key"),
        "{err}"
    );
    assert!(!err.contains("not-the-key"), "{err}");
    let out = s.run(&["--fail", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));

    // A check pauses and resumes like a pipeline.
    let out = plantao(&s.dir, &["pause", "backup"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("paused check backup"));
    assert_eq!(s.checks()["state"], "paused");
    let out = plantao(&s.dir, &["resume", "backup"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(s.checks()["state"], "down");

    // The daemon's log never shows the key.
    let log = std::fs::read_to_string(s.dir.path().join("serve.log")).unwrap();
    assert!(!log.contains(KEY), "{log}");
}

#[test]
fn the_sla_report_says_who_kept_their_targets() {
    let s = Served::start();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = plantao(&s.dir, &["checks", "--json"]).output().unwrap();
        let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if checks[1]["state"] == "up" {
            assert_eq!(checks[1]["kind"], "probe");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the probe never came up: {checks}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let table = plantao(&s.dir, &["checks"]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("script") && table.contains("probe") && table.contains("up"),
        "{table}"
    );
    let md = plantao(&s.dir, &["report", "sla"]).output().unwrap();
    assert!(
        md.status.success(),
        "{}",
        String::from_utf8_lossy(&md.stderr)
    );
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.starts_with("# SLA report"), "{md}");
    assert!(
        md.contains("| script | probe | 24h | 100.000 % | 99.000 % |"),
        "{md}"
    );
    assert!(md.contains("| backup | heartbeat | 30d |"), "{md}");
    let out = s.dir.path().join("sla.json");
    let json = plantao(
        &s.dir,
        &[
            "report",
            "sla",
            "--format",
            "json",
            "--window",
            "7d",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(json.status.success());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    let script = report
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "script")
        .unwrap();
    assert_eq!(
        (script["window"].as_str(), script["met"].as_bool()),
        (Some("7d"), Some(true))
    );
    let bad = plantao(&s.dir, &["report", "sla", "--window", "1y"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--window must be 24h, 7d, 30d or 365d"));
}
