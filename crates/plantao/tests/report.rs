//! `plantao report daily|weekly|monthly` end to end: runs recorded by the real binary in a
//! SQLite file, the report read back in each format and language, and sent to a real HTTP
//! receiver on loopback (and kept in the outbox when the receiver is gone).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

const PIPELINE: &str = r#"
description = "Shift reports"
[[steps]]
name = "process"
run = "echo approved=40 >> $PLANTAO_OUTPUT; echo failed=10 >> $PLANTAO_OUTPUT; test \"$PLANTAO_PARAM_FAIL\" != yes"
[params.fail]
default = "no"
[metrics]
approval_rate = "process.approved / (process.approved + process.failed) * 100"
"#;

fn setup(channel_url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plantao.toml"),
        format!(
            "[defaults]\ntimezone = \"America/Sao_Paulo\"\n[[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"{channel_url}\"\ntimeout = \"5s\"\nlanguage = \"pt-BR\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/reports.toml"), PIPELINE).unwrap();
    dir
}

fn plantao(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .arg("--config")
        .arg(dir.join("plantao.toml"))
        .args(args)
        .env_remove("PLANTAO_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Answers one HTTP request with 200 and hands back what it received.
fn receive_one(listener: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            assert!(n > 0, "the connection closed early");
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&got).into_owned()
    })
}

#[test]
fn reports_add_up_the_runs_in_every_format_and_language_and_are_sent_or_kept() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let dir = setup(&url);
    assert_eq!(plantao(dir.path(), &["run", "reports"]).0, 0);
    assert_eq!(plantao(dir.path(), &["run", "reports"]).0, 0);
    assert_eq!(
        plantao(dir.path(), &["run", "reports", "-p", "fail=yes"]).0,
        1
    );

    let (code, json, err) = plantao(dir.path(), &["report", "daily", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    let p = &r["pipelines"][0];
    assert_eq!(
        (p["runs"].as_u64(), p["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(p["counters"]["process.approved"], 120.0);
    assert_eq!(p["metrics"]["approval_rate"], 80.0);
    assert_eq!(p["top_errors"][0]["stage"], "process");
    assert_eq!(p["top_errors"][0]["runs"], 1);
    assert!(p["p95_ms"].as_f64().unwrap() <= p["max_ms"].as_f64().unwrap());
    assert_eq!(r["alerts"]["fired"], 0);

    let (_, md, _) = plantao(dir.path(), &["report", "weekly"]);
    assert!(md.starts_with("# Weekly report\n"), "{md}");
    // The period in the team's zone (the configuration's default), not in UTC.
    let to = md
        .split(" to ")
        .nth(1)
        .and_then(|rest| rest.split_once(" (America/Sao_Paulo)."))
        .map(|(to, _)| to)
        .unwrap_or_else(|| panic!("no period in the team's zone: {md}"));
    let to = chrono::NaiveDateTime::parse_from_str(to, "%Y-%m-%d %H:%M").unwrap();
    let now = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .naive_local();
    assert!((now - to).num_minutes().abs() <= 5, "{to} against {now}");
    assert!(md.contains("| reports | 3 | 66.7 % | 1 |"), "{md}");
    assert!(md.contains("approval_rate 80"), "{md}");
    let (_, pt, _) = plantao(dir.path(), &["report", "monthly", "--language", "pt-BR"]);
    assert!(pt.starts_with("# Relatório mensal\n"), "{pt}");
    assert!(pt.contains("| reports | 3 | 66,7 % | 1 |"), "{pt}");
    let html = dir.path().join("r.html");
    let (code, printed, _) = plantao(
        dir.path(),
        &[
            "report",
            "daily",
            "--format",
            "html",
            "--out",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!((code, printed.as_str()), (0, ""));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("<td>reports</td>"));
    let (code, _, err) = plantao(dir.path(), &["report", "daily", "--language", "fr"]);
    assert_eq!(code, 2);
    assert!(err.contains("en or pt-BR"), "{err}");

    // Sent through the channel, in its language, as the receiver gets it.
    let received = receive_one(listener);
    let (code, out, err) = plantao(dir.path(), &["report", "daily", "--send", "ops"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "sent to `ops`\n");
    let request = received.join().unwrap();
    assert!(
        request.contains("Relat\\u00f3rio di\\u00e1rio") || request.contains("Relatório diário"),
        "{request}"
    );
    assert!(request.contains("\"event\":\"report\""), "{request}");
    assert!(
        request.contains("- reports: execu"),
        "a line per row, not a table: {request}"
    );
    assert!(!request.contains("| --- |"), "{request}");

    // With the receiver gone, the report waits in the outbox for the daemon.
    let (code, _, err) = plantao(dir.path(), &["report", "daily", "--send", "ops"]);
    assert_eq!(code, 1);
    assert!(err.contains("waits in the outbox"), "{err}");
    let db = format!("sqlite://{}", dir.path().join("plantao.db").display());
    let pending: i64 = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
            .await
            .unwrap();
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE pending = 1")
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(pending, 1, "the refused report is kept for the dispatcher");
    let (code, _, err) = plantao(dir.path(), &["report", "daily", "--send", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("the channels are: ops"), "{err}");
    // `channel test` tells the two apart the same way: refused 1, not a channel 2.
    let (code, _, err) = plantao(dir.path(), &["channel", "test", "ops"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did not accept the test"), "{err}");
    let (code, _, err) = plantao(dir.path(), &["channel", "test", "nope"]);
    assert_eq!(code, 2, "{err}");
    let (_, audit, _) = plantao(dir.path(), &["audit"]);
    assert!(audit.contains("report.send"), "{audit}");
    assert!(audit.contains("refused, to be retried"), "{audit}");
}
