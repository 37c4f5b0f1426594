//! HTTP and SQL steps against real servers on loopback: a small HTTP server in the test, a
//! SQLite file, and the PostgreSQL and MariaDB servers that scripts/test starts.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::time::Duration;

use common::{Bed, external};
use plantao_model::{RunStatus, StageStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers `/ok` with JSON, `/down` with 503, `/slow` after 30 s; returns its base URL.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut request = Vec::new();
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let auth_ok = text.to_lowercase().contains("authorization: bearer t0ken");
                let (status, body) = match path.as_str() {
                    "/ok" if auth_ok => (
                        "200 OK",
                        r#"{"status":"ok","queue":3,"latency":12.5,"name":"api"}"#.to_owned(),
                    ),
                    "/ok" => ("401 Unauthorized", "{}".to_owned()),
                    "/down" => ("503 Service Unavailable", "maintenance".to_owned()),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        ("200 OK", "late".to_owned())
                    }
                    _ => ("404 Not Found", "no".to_owned()),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn http_pipeline(url: &str, path: &str, expect: &str, timeout: &str) -> String {
    format!(
        "[[steps]]\nname = \"check\"\nhttp = {{ url = \"{url}{path}\", headers = {{ Authorization = \"Bearer t0ken\" }}, timeout = \"{timeout}\", expect = [{expect}] }}\n"
    )
}

#[tokio::test]
async fn http_step_passes_its_expectations_and_counts_json_numbers() {
    let url = server().await;
    let bed = Bed::simple(&http_pipeline(
        &url,
        "/ok",
        "\"status == 200\", \"json.status == 'ok'\", \"json.queue < 10\"",
        "5s",
    ))
    .await;
    let report = bed.run().await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{:?}",
        report.stages[0].error
    );
    let d = bed.detail(&report).await;
    assert!(
        d.stages[0]
            .log
            .starts_with(&format!("GET {url}/ok → 200 OK in ")),
        "{}",
        d.stages[0].log
    );
    let counters: Vec<(&str, f64)> = d
        .counters
        .iter()
        .map(|c| (c.name.as_str(), c.value))
        .collect();
    assert_eq!(counters, [("latency", 12.5), ("queue", 3.0)]);
}

#[tokio::test]
async fn a_failed_expectation_names_the_condition_and_the_actual_values() {
    let url = server().await;
    let bed = Bed::simple(&http_pipeline(
        &url,
        "/down",
        "\"status == 200\", \"duration_ms < 60000\"",
        "5s",
    ))
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.stages[0].error.clone().unwrap();
    assert_eq!(error, "expected `status == 200`, but status = 503");
    let d = bed.detail(&report).await;
    assert!(
        d.stages[0].log.contains("maintenance"),
        "{}",
        d.stages[0].log
    );
}

#[tokio::test]
async fn the_default_expectation_is_a_status_under_400() {
    let url = server().await;
    let bed = Bed::simple(&format!(
        "[[steps]]\nname = \"check\"\nhttp = {{ url = \"{url}/missing\" }}\n"
    ))
    .await;
    let report = bed.run().await;
    assert_eq!(
        report.stages[0].error.as_deref(),
        Some("expected `status < 400`, but status = 404")
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let url = server().await;
    let bed = Bed::simple(&http_pipeline(&url, "/slow", "\"status == 200\"", "300ms")).await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::TimedOut);
    assert_eq!(report.stages[0].status, StageStatus::TimedOut);
}

#[tokio::test]
async fn a_refused_connection_fails_with_the_reason() {
    let bed = Bed::simple(&http_pipeline(
        "http://127.0.0.1:1",
        "/",
        "\"status == 200\"",
        "5s",
    ))
    .await;
    let report = bed.run().await;
    let error = report.stages[0].error.clone().unwrap();
    assert!(error.contains("Connection refused"), "{error}");
}

fn sql_pipeline(query: &str) -> String {
    format!("[[steps]]\nname = \"q\"\nsql = {{ connection = \"db\", query = \"{query}\" }}\n")
}

#[tokio::test]
async fn sql_step_on_sqlite_reads_the_first_row() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE reports (id INTEGER, state TEXT); INSERT INTO reports VALUES (1,'ok'),(2,'ok'),(3,'stuck');")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let bed = Bed::new(
        &sql_pipeline("select count(*) as total, sum(state = 'stuck') as stuck, 0.5 as ratio, 'fine' as note from reports"),
        &format!("[connections.db]\nurl = \"{url}\"\n"),
        &[],
    )
    .await;
    let report = bed.run().await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{:?}",
        report.stages[0].error
    );
    assert_eq!(
        report.stages[0].counters,
        [
            ("total".into(), 3.0),
            ("stuck".into(), 1.0),
            ("ratio".into(), 0.5)
        ]
    );
    let d = bed.detail(&report).await;
    assert!(
        d.outputs
            .iter()
            .any(|o| o.key == "note" && o.value == "fine")
    );
    assert!(
        d.stages[0]
            .log
            .contains("total | stuck | ratio | note\n3 | 1 | 0.5 | fine"),
        "{}",
        d.stages[0].log
    );
}

#[tokio::test]
async fn sql_step_with_a_broken_query_fails_with_the_database_message() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let bed = Bed::new(
        &sql_pipeline("select * from nowhere"),
        &format!("[connections.db]\nurl = \"{url}\"\n"),
        &[],
    )
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.stages[0].error.clone().unwrap();
    assert!(
        error.contains("query on `db` failed") && error.contains("no such table: nowhere"),
        "{error}"
    );
}

#[tokio::test]
async fn sql_step_on_postgres() {
    let Some(url) = external("PLANTAO_TEST_POSTGRES_URL") else {
        return;
    };
    let bed = Bed::new(
        &sql_pipeline("select 7::bigint as n, 3::int as small, 1.5::float8 as f, 12.30::numeric as money, 'ok' as s, '1 day'::interval as span"),
        "[connections.db]\nurl = \"${env:DB}\"\n",
        &[("DB", &url)],
    )
    .await;
    let report = bed.run().await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{:?}",
        report.stages[0].error
    );
    assert_eq!(
        report.stages[0].counters,
        [
            ("n".into(), 7.0),
            ("small".into(), 3.0),
            ("f".into(), 1.5),
            ("money".into(), 12.3)
        ]
    );
    let d = bed.detail(&report).await;
    assert!(
        d.stages[0]
            .log
            .contains("column `span` of type INTERVAL is not read as a counter"),
        "{}",
        d.stages[0].log
    );
}

#[tokio::test]
async fn sql_step_on_mariadb() {
    let Some(url) = external("PLANTAO_TEST_MYSQL_URL") else {
        return;
    };
    let bed = Bed::new(
        &sql_pipeline("select count(*) as n, sum(x) as total, avg(x) as mean, 'ok' as s from (select 1 as x union all select 2) t"),
        "[connections.db]\nurl = \"${env:DB}\"\n",
        &[("DB", &url)],
    )
    .await;
    let report = bed.run().await;
    assert_eq!(
        report.status,
        RunStatus::Succeeded,
        "{:?}",
        report.stages[0].error
    );
    assert_eq!(
        report.stages[0].counters,
        [
            ("n".into(), 2.0),
            ("total".into(), 3.0),
            ("mean".into(), 1.5)
        ]
    );
}
