//! Probes against real things on loopback: an HTTP server (status, JSON, a slow answer), a
//! closed TCP port, real SQLite (and PostgreSQL) queries, commands; the thresholds with explicit
//! times; and a daemon that finds a probe down and records it.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::{Rig, external};
use plantao_engine::checks::probe::{Outcome, check};
use plantao_engine::checks::prober::{ProbeState, Streak, decide};
use plantao_model::RunStatus;
use plantao_store::{RunFilter, Write};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers `/ok` with JSON, `/slow` after 300 ms, anything else 500.
async fn http_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = match path.as_str() {
                    "/ok" => ("200 OK", r#"{"status":"ok","queue":3}"#),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        ("200 OK", r#"{"status":"ok"}"#)
                    }
                    _ => ("500 Internal Server Error", r#"{"status":"broken"}"#),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    base
}

async fn rig_with(probes: &str) -> Rig {
    let db = tempfile::NamedTempFile::new().unwrap();
    let path = db.path().display().to_string();
    std::mem::forget(db);
    let pg = std::env::var("PLANTAO_TEST_POSTGRES_URL").ok();
    let pg_connection = pg.map_or_else(String::new, |url| {
        format!("[connections.pg]\nurl = \"{url}\"\n")
    });
    Rig::new(
        &format!(
            "[connections.lite]\nurl = \"sqlite://{path}?mode=rwc\"\n{pg_connection}\n{probes}"
        ),
        &[],
    )
    .await
}

async fn outcome(rig: &Rig, name: &str) -> Outcome {
    check(&rig.config, rig.config.probe(name).unwrap()).await
}

#[tokio::test]
async fn probes_hold_real_answers_against_their_conditions() {
    let base = http_server().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let rig = rig_with(&format!(
        "[[probes]]\nname = \"api\"\nevery = \"1m\"\nhttp = {{ url = \"{base}/ok\" }}\nexpect = [\"status == 200\", \"json.status == 'ok'\", \"duration_ms < 5000\"]\n\n\
         [[probes]]\nname = \"broken\"\nevery = \"1m\"\nhttp = {{ url = \"{base}/fail\" }}\nexpect = [\"status == 200\"]\n\n\
         [[probes]]\nname = \"slow\"\nevery = \"1m\"\nhttp = {{ url = \"{base}/slow\" }}\nexpect = [\"duration_ms < 200\"]\n\n\
         [[probes]]\nname = \"slow-but-in-time\"\nevery = \"1m\"\ntimeout = \"1s\"\nhttp = {{ url = \"{base}/slow\" }}\nexpect = [\"duration_ms < 3000\"]\n\n\
         [[probes]]\nname = \"port\"\nevery = \"1m\"\ntcp = \"{base_host}\"\n\n\
         [[probes]]\nname = \"closed\"\nevery = \"1m\"\ntcp = \"{closed}\"\n\n\
         [[probes]]\nname = \"query\"\nevery = \"1m\"\nsql = {{ connection = \"lite\", query = \"select 0 as errors, 'fine' as note\" }}\nexpect = [\"rows[0].errors == 0\"]\n\n\
         [[probes]]\nname = \"query-errors\"\nevery = \"1m\"\nsql = {{ connection = \"lite\", query = \"select 2 as errors\" }}\nexpect = [\"rows[0].errors == 0\"]\n\n\
         [[probes]]\nname = \"script\"\nevery = \"1m\"\ncommand = \"echo ready\"\nexpect = [\"exit_code == 0\", \"stdout.contains('ready')\"]\n\n\
         [[probes]]\nname = \"script-fails\"\nevery = \"1m\"\ncommand = \"echo nope; exit 2\"\n\n\
         [[probes]]\nname = \"hangs\"\nevery = \"1m\"\ntimeout = \"1s\"\ncommand = \"sleep 30\"\n",
        base_host = base.trim_start_matches("http://"),
    ))
    .await;
    let ok = outcome(&rig, "api").await;
    assert!(ok.ok, "{ok:?}");
    assert!(ok.log.contains("\"queue\":3"), "{}", ok.log);

    let broken = outcome(&rig, "broken").await;
    assert!(!broken.ok);
    assert!(
        broken
            .error
            .as_deref()
            .unwrap()
            .contains("expected `status == 200`, but status = 500"),
        "{broken:?}"
    );

    // The duration condition: 300 ms against 200 fails, against 3000 holds.
    let slow = outcome(&rig, "slow").await;
    assert!(!slow.ok && slow.duration_ms >= 300, "{slow:?}");
    assert!(
        slow.error.as_deref().unwrap().contains("duration_ms < 200"),
        "{slow:?}"
    );
    assert!(outcome(&rig, "slow-but-in-time").await.ok);

    assert!(outcome(&rig, "port").await.ok);
    let closed = outcome(&rig, "closed").await;
    assert!(
        !closed.ok && closed.error.as_deref().unwrap().contains("cannot connect"),
        "{closed:?}"
    );

    let query = outcome(&rig, "query").await;
    assert!(query.ok, "{query:?}");
    let errors = outcome(&rig, "query-errors").await;
    assert!(
        errors
            .error
            .as_deref()
            .unwrap()
            .contains("expected `rows[0].errors == 0`, but rows = [{\"errors\":2"),
        "{errors:?}"
    );

    assert!(outcome(&rig, "script").await.ok);
    let fails = outcome(&rig, "script-fails").await;
    assert!(
        fails.error.as_deref().unwrap().contains("exit_code = 2"),
        "{fails:?}"
    );
    let started = Instant::now();
    let hangs = outcome(&rig, "hangs").await;
    assert!(
        !hangs.ok
            && hangs
                .error
                .as_deref()
                .unwrap()
                .contains("no answer within 1000 ms"),
        "{hangs:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout stopped it"
    );
}

#[tokio::test]
async fn a_postgresql_query_is_a_probe_too() {
    let Some(_) = external("PLANTAO_TEST_POSTGRES_URL") else {
        return;
    };
    let rig = rig_with(
        "[[probes]]\nname = \"pg\"\nevery = \"1m\"\nsql = { connection = \"pg\", query = \"select count(*) as n from pg_database\" }\nexpect = [\"rows[0].n >= 1\"]\n",
    )
    .await;
    let o = outcome(&rig, "pg").await;
    assert!(o.ok, "{o:?}");
}

fn result(ok: bool) -> Outcome {
    Outcome {
        ok,
        duration_ms: 12,
        error: (!ok).then(|| "expected `status == 200`, but status = 500".to_owned()),
        log: String::new(),
    }
}

fn kinds(writes: &[Write]) -> Vec<&'static str> {
    writes
        .iter()
        .map(|w| match w {
            Write::CountResult(_) => "count",
            Write::InsertRun(_) => "run",
            Write::PutStage(_) => "stage",
            Write::FinishRun(_) => "finish",
            Write::Ping(_) => "fact",
            _ => "other",
        })
        .collect()
}

fn reason(writes: &[Write]) -> Option<String> {
    writes.iter().find_map(|w| match w {
        Write::FinishRun(end) => end.reason.clone(),
        _ => None,
    })
}

#[tokio::test]
async fn thresholds_count_results_in_a_row_and_only_failures_and_changes_are_runs() {
    let rig = rig_with(
        "[[probes]]\nname = \"site\"\nevery = \"1m\"\ntcp = \"127.0.0.1:1\"\nfailure_threshold = 2\nsuccess_threshold = 2\n",
    )
    .await;
    let p = rig.config.probe("site").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let mut s = Streak::default();
    // Two successes: the second reaches the threshold, up (a change: a run).
    assert_eq!(
        kinds(&decide(p, &mut s, at, &result(true))),
        ["count", "fact"]
    );
    let up = decide(p, &mut s, at, &result(true));
    assert_eq!(
        (s.state, reason(&up).as_deref()),
        (Some(ProbeState::Up), Some("up"))
    );
    // A success that changes nothing is only counted.
    assert_eq!(
        kinds(&decide(p, &mut s, at, &result(true))),
        ["count", "fact"]
    );
    // One failure under the threshold is a run but no change; the second is down.
    let first = decide(p, &mut s, at, &result(false));
    assert_eq!(kinds(&first), ["run", "stage", "finish", "fact"]);
    assert_eq!((s.state, reason(&first)), (Some(ProbeState::Up), None));
    let down = decide(p, &mut s, at, &result(false));
    assert_eq!(
        (s.state, reason(&down).as_deref()),
        (Some(ProbeState::Down), Some("down"))
    );
    // One success is not enough to be up again (success_threshold 2).
    decide(p, &mut s, at, &result(true));
    assert_eq!(s.state, Some(ProbeState::Down));
    decide(p, &mut s, at, &result(true));
    assert_eq!(s.state, Some(ProbeState::Up));
}

#[tokio::test]
async fn a_daemon_probes_on_the_interval_and_records_a_probe_going_down() {
    let base = http_server().await;
    let rig = rig_with(&format!(
        "[[probes]]\nname = \"bad\"\nevery = \"1s\"\nhttp = {{ url = \"{base}/fail\" }}\nfailure_threshold = 2\n\n\
         [[probes]]\nname = \"good\"\nevery = \"1s\"\nhttp = {{ url = \"{base}/ok\" }}\n\n\
         [[alerts]]\nname = \"probe-down\"\nkind = \"probe\"\n"
    ))
    .await;
    let daemon = plantao_engine::daemon::Daemon::start(
        rig.config.clone(),
        rig.store.clone(),
        std::sync::Arc::new(plantao_engine::clock::SystemClock),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let checks = loop {
        let checks = rig.store.checks().await.unwrap();
        let good_counted = checks.get("good").is_some_and(|c| c.pings >= 3);
        if checks.get("bad").and_then(|c| c.state.as_deref()) == Some("down") && good_counted {
            break checks;
        }
        assert!(
            Instant::now() < deadline,
            "not down within 30 s: {checks:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    daemon.shut_down().await.unwrap();
    assert_eq!(checks["good"].state.as_deref(), Some("up"));
    // The bad probe's failures are runs, the one that took it down says so; the good one's
    // successes are counted, with one run when it first came up.
    let runs = |name: &str| {
        let store = rig.store.clone();
        let name = name.to_owned();
        async move {
            store
                .runs(&RunFilter {
                    pipeline: Some(name),
                    limit: 100,
                    ..RunFilter::default()
                })
                .await
                .unwrap()
        }
    };
    let bad = runs("bad").await;
    assert!(
        bad.len() >= 2 && bad.iter().all(|r| r.status == RunStatus::Failed),
        "{bad:?}"
    );
    assert!(bad.iter().any(|r| r.reason.as_deref() == Some("down")));
    let incidents = rig
        .store
        .incidents(None, Utc::now() - chrono::TimeDelta::hours(1), 10)
        .await
        .unwrap();
    let open: Vec<(&str, bool)> = incidents
        .iter()
        .map(|i| (i.check.as_str(), i.ended_at.is_none()))
        .collect();
    assert_eq!(open, [("bad", true)]);
    assert!(
        incidents[0]
            .cause
            .as_deref()
            .unwrap()
            .contains("status = 500"),
        "{incidents:?}"
    );
    let good = runs("good").await;
    assert_eq!(good.len(), 1, "{good:?}");
    let day = rig
        .store
        .summary(
            "good",
            plantao_store::Window::Last24h,
            Utc::now(),
            chrono_tz::Tz::UTC,
        )
        .await
        .unwrap();
    assert!(day.count("succeeded") >= 3, "{day:?}");
    // The probe rule fires for the bad one only.
    let e = plantao_engine::alerts::evaluate(rig.store.as_ref(), &rig.config, Utc::now())
        .await
        .unwrap();
    let holding: Vec<&str> = e
        .findings
        .iter()
        .filter(|f| f.observation.verdict == plantao_engine::alerts::Verdict::Holds)
        .map(|f| f.observation.labels["check"].as_str())
        .collect();
    assert_eq!(holding, ["bad"]);
}

/// An HTTPS server on loopback with a self-signed certificate valid until midnight (UTC) five
/// days from now.
async fn tls_server() -> String {
    use chrono::Datelike;
    use tokio_rustls::rustls::{self, pki_types};
    let end = Utc::now().date_naive() + chrono::Days::new(5);
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = "{\"status\":\"ok\"}";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn a_certificate_that_expires_in_five_days_is_seen_and_judged() {
    let base = tls_server().await;
    let rig = rig_with(&format!(
        "[[probes]]\nname = \"soon\"\nevery = \"1m\"\nhttp = {{ url = \"{base}/\", verify_tls = false }}\nexpect = [\"status == 200\", \"cert_days_left > 14\"]\n\n\
         [[probes]]\nname = \"enough\"\nevery = \"1m\"\nhttp = {{ url = \"{base}/\", verify_tls = false }}\nexpect = [\"cert_days_left > 3\"]\n\n\
         [[probes]]\nname = \"verified\"\nevery = \"1m\"\nhttp = {{ url = \"{base}/\" }}\n\n\
         [[probes]]\nname = \"plain\"\nevery = \"1m\"\nhttp = {{ url = \"{}/ok\" }}\nexpect = [\"cert_days_left > 3\"]\n",
        http_server().await
    ))
    .await;
    // Midnight five days from now: between four and five days left (shown with two decimals,
    // so 5.00 just after midnight).
    let soon = outcome(&rig, "soon").await;
    let error = soon.error.clone().unwrap_or_default();
    let left: f64 = error
        .strip_prefix("expected `cert_days_left > 14`, but cert_days_left = ")
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    assert!(!soon.ok && (4.0..=5.0).contains(&left), "{soon:?}");
    assert!(outcome(&rig, "enough").await.ok);
    // A self-signed certificate is refused when it is verified.
    let verified = outcome(&rig, "verified").await;
    assert!(
        !verified.ok
            && verified
                .error
                .as_deref()
                .unwrap()
                .contains("request failed"),
        "{verified:?}"
    );
    // Over plain HTTP there is no certificate to read: the condition fails, saying why.
    let plain = outcome(&rig, "plain").await;
    assert!(
        plain
            .error
            .as_deref()
            .unwrap()
            .contains("cert_days_left = absent"),
        "{plain:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_check_each_probe_once_per_interval() {
    let Some(url) = common::postgres_database("probes_two_nodes").await else {
        return;
    };
    let base = http_server().await;
    let rig = Rig::new(
        &format!(
            "[storage]\nurl = \"{url}\"\n\n[[probes]]\nname = \"api\"\nevery = \"1s\"\nhttp = {{ url = \"{base}/ok\" }}\n"
        ),
        &[],
    )
    .await;
    let second: std::sync::Arc<dyn plantao_store::Store> =
        plantao_store::open(&url).await.unwrap().into();
    let clock = || std::sync::Arc::new(plantao_engine::clock::SystemClock);
    let one = plantao_engine::daemon::Daemon::start(rig.config.clone(), rig.store.clone(), clock())
        .await
        .unwrap();
    let two = plantao_engine::daemon::Daemon::start(rig.config.clone(), second.clone(), clock())
        .await
        .unwrap();
    let pings = || async {
        rig.store
            .checks()
            .await
            .unwrap()
            .get("api")
            .map_or(0, |c| c.pings)
    };
    // Wait for the first check, then count the checks over six seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pings().await == 0 {
        assert!(Instant::now() < deadline, "no check within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = pings().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let counted = pings().await - first;
    one.shut_down().await.unwrap();
    two.shut_down().await.unwrap();
    rig.store.close().await;
    second.close().await;
    common::drop_database(&url).await;
    // One check a second by one node: 6 (give or take the edges), never 12.
    assert!(
        (5..=7).contains(&counted),
        "{counted} checks in 6 s by two nodes"
    );
}
