//! The ping routes and the checks API end to end: a real daemon, a real store (SQLite, and
//! PostgreSQL when its URL is set), real HTTP on loopback, the URLs healthchecks.io's wrappers
//! use.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, backends};
use plantao_model::{Role, RunStatus};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const KEY: &str = "k3y-0123456789abcdef";

/// Two heartbeats, a small body limit, and a rule on every run that fails (heartbeats' too).
const CHECKS: &str = "\n[pings]\nkey = \"k3y-0123456789abcdef\"\nbody_limit = 1000\n\n\
    [[heartbeats]]\nname = \"backup\"\nperiod = \"1h\"\ngrace = \"10m\"\ntags = [\"nightly\"]\n\n\
    [[heartbeats]]\nname = \"mailer\"\nperiod = \"5m\"\nping_key = \"its-own-key-0123456789\"\n\n\
    [[alerts]]\nname = \"any-failed\"\nkind = \"run_failed\"\n\n";

async fn ping(s: &Server, method: Method, path: &str, body: &str) -> (StatusCode, String) {
    let response = s
        .client
        .request(method, s.url(path))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn check(s: &Server, token: &str, name: &str) -> Value {
    let (status, body) = s.get(&format!("/api/checks/{name}"), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn pings_make_runs_and_the_checks_api_tells_their_state() {
    for backend in backends() {
        let s = Server::start(backend, CHECKS).await;
        let viewer = s.token("v", Role::Viewer).await;
        let operator = s.token("o", Role::Operator).await;
        // A wrong key and an unknown slug look alike; a heartbeat's own key is not another's.
        for path in [
            "/ping/wrong-key-0123456789/backup",
            &format!("/ping/{KEY}/nope"),
            &format!("/ping/{KEY}/mailer"),
            &format!("/ping/{KEY}/backup/sometimes"),
            &format!("/ping/{KEY}/backup/256"),
        ] {
            let (status, text) = ping(&s, Method::GET, path, "").await;
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::NOT_FOUND, "not found"),
                "{path}"
            );
        }
        assert_eq!(check(&s, &viewer, "backup").await["state"], "new");

        // start → success with a body: one run, its duration, its log.
        let (status, text) = ping(&s, Method::GET, &format!("/ping/{KEY}/backup/start"), "").await;
        assert_eq!((status, text.as_str()), (StatusCode::OK, "OK"));
        let (status, _) = ping(
            &s,
            Method::POST,
            &format!("/ping/{KEY}/backup"),
            "copied 3 files",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let detail = check(&s, &viewer, "backup").await;
        assert_eq!(detail["state"], "up", "{detail}");
        assert_eq!(detail["pings"], 2);
        assert_eq!(detail["runs"].as_array().unwrap().len(), 1);
        let run = &detail["runs"][0];
        assert_eq!(
            (run["status"].as_str(), run["trigger"].as_str()),
            (Some("succeeded"), Some("external"))
        );
        let id: plantao_model::RunId = run["id"].as_str().unwrap().parse().unwrap();
        let stored = s.store.run_detail(id).await.unwrap();
        assert_eq!(stored.stages[0].log, "copied 3 files");

        // HEAD pings too; its own key works for mailer.
        let (status, _) = ping(&s, Method::HEAD, "/ping/its-own-key-0123456789/mailer", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(check(&s, &viewer, "mailer").await["state"], "up");

        // An exit status: 0 succeeds, anything else fails — and the run rule fires at once.
        let (status, _) = ping(&s, Method::POST, &format!("/ping/{KEY}/backup/0"), "").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = ping(
            &s,
            Method::POST,
            &format!("/ping/{KEY}/backup/7"),
            "disk full",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let detail = check(&s, &viewer, "backup").await;
        assert_eq!(detail["state"], "down", "{detail}");
        assert!(
            detail["problems"]["down"]
                .as_str()
                .unwrap()
                .contains("reported a failure")
        );
        assert_eq!(detail["runs"][0]["status"], "failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, alerts) = s.get("/api/alerts", &viewer).await;
            let fired = alerts
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["rule"] == "any-failed" && a["pipeline"] == "backup");
            if fired {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no alert for the failed ping: {alerts}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Overlapping runs paired by rid; a rid that is not a UUID is refused.
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        for path in [
            format!("/ping/{KEY}/backup/start?rid={a}"),
            format!("/ping/{KEY}/backup/start?rid={b}"),
            format!("/ping/{KEY}/backup/log?rid={a}"),
            format!("/ping/{KEY}/backup/fail?rid={b}"),
            format!("/ping/{KEY}/backup?rid={a}"),
        ] {
            let (status, _) = ping(&s, Method::POST, &path, &format!("from {path}")).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        let (status, text) = ping(&s, Method::GET, &format!("/ping/{KEY}/backup?rid=12"), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        let detail = check(&s, &viewer, "backup").await;
        let runs = detail["runs"].as_array().unwrap();
        let of = |rid: uuid::Uuid| {
            runs.iter()
                .find(|r| r["params"]["rid"] == rid.to_string())
                .unwrap()["status"]
                .clone()
        };
        assert_eq!(
            (of(a), of(b)),
            (Value::from("succeeded"), Value::from("failed"))
        );
        assert_eq!(detail["state"], "up");

        // A body over the limit is cut and marked, not refused.
        let big = "y".repeat(5000);
        let (status, _) = ping(&s, Method::POST, &format!("/ping/{KEY}/backup"), &big).await;
        assert_eq!(status, StatusCode::OK);
        let newest = check(&s, &viewer, "backup").await["runs"][0]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let log = &s.store.run_detail(newest).await.unwrap().stages[0].log;
        assert!(log.starts_with(&"y".repeat(1000)), "{}", log.len());
        assert!(
            log.ends_with("[plantao: body cut at 1000 bytes, 4000 more not kept]"),
            "{log}"
        );
        assert_eq!(
            s.store.run(newest).await.unwrap().status,
            RunStatus::Succeeded
        );

        // The list, pause and resume (operators only), and /metrics.
        let (status, list) = s.get("/api/checks", &viewer).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["backup", "mailer"]);
        assert!(!list.to_string().contains(KEY) && !list.to_string().contains("its-own-key"));
        let (status, _) = s
            .post("/api/checks/backup/pause", &viewer, Value::Null)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = s
            .call(
                Method::POST,
                "/api/checks/backup/pause",
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(check(&s, &viewer, "backup").await["state"], "paused");
        let (status, _) = s
            .call(
                Method::POST,
                "/api/checks/backup/resume",
                Some(&operator),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(check(&s, &viewer, "backup").await["state"], "up");
        let (status, body) = s.get("/api/checks/nope", &viewer).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body.to_string().contains("the checks are: backup, mailer"),
            "{body}"
        );
        let (_, metrics) = s.get("/metrics", &viewer).await;
        let metrics = metrics.as_str().unwrap().to_owned();
        assert!(
            metrics.contains("plantao_check_up{check=\"backup\"} 1"),
            "{metrics}"
        );
        assert!(metrics.contains("plantao_check_last_ping_timestamp_seconds{check=\"mailer\"}"));
        s.stop().await;
    }
}

const PROBES: &str = "\n[[probes]]\nname = \"script\"\nevery = \"1s\"\ncommand = \"echo ready\"\nexpect = [\"stdout.contains('ready')\"]\nsla = { uptime = 99.5, window = \"24h\" }\n\n\
    [[probes]]\nname = \"never\"\nevery = \"1s\"\ncommand = \"exit 4\"\nsla = { uptime = 99.5, p95_ms = 60000 }\n\n";

#[tokio::test]
async fn probes_are_checks_with_uptime_incidents_and_an_sla() {
    for backend in backends() {
        let s = Server::start(backend, PROBES).await;
        let viewer = s.token("v", Role::Viewer).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let (script, never) = loop {
            let script = check(&s, &viewer, "script").await;
            let never = check(&s, &viewer, "never").await;
            if script["state"] == "up" && never["state"] == "down" {
                break (script, never);
            }
            assert!(Instant::now() < deadline, "{script}\n{never}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            (script["kind"].as_str(), script["target"].as_str()),
            (Some("probe"), Some("command"))
        );
        let windows: Vec<&str> = script["uptime"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["window"].as_str().unwrap())
            .collect();
        assert_eq!(windows, ["24h", "7d", "30d", "365d"]);
        assert_eq!(script["uptime"][0]["uptime_percent"], 100.0);
        // The failing probe: down since its first check, an open incident with the cause.
        let incident = &never["incidents"][0];
        assert!(incident["ended_at"].is_null(), "{never}");
        assert!(
            incident["cause"]
                .as_str()
                .unwrap()
                .contains("exit_code = 4"),
            "{never}"
        );
        assert!(
            never["uptime"][0]["uptime_percent"].as_f64().unwrap() < 99.5,
            "{never}"
        );
        assert_eq!(never["runs"][0]["trigger"], "probe");

        let (status, sla) = s.get("/api/sla", &viewer).await;
        assert_eq!(status, StatusCode::OK, "{sla}");
        let of = |name: &str| {
            sla.as_array()
                .unwrap()
                .iter()
                .find(|c| c["check"] == name)
                .unwrap()
                .clone()
        };
        assert_eq!(
            (
                of("script")["window"].as_str(),
                of("script")["met"].as_bool()
            ),
            (Some("24h"), Some(true))
        );
        assert_eq!(
            (of("never")["window"].as_str(), of("never")["met"].as_bool()),
            (Some("30d"), Some(false))
        );
        let (status, body) = s.get("/api/sla?window=1y", &viewer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (_, metrics) = s.get("/metrics", &viewer).await;
        let metrics = metrics.as_str().unwrap().to_owned();
        assert!(
            metrics.contains("plantao_check_up{check=\"never\"} 0"),
            "{metrics}"
        );
        assert!(
            metrics.contains("plantao_check_up{check=\"script\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("plantao_check_uptime_ratio{check=\"script\",window=\"24h\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("plantao_check_duration_seconds_count{check=\"script\"}"),
            "{metrics}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_heartbeat_may_limit_its_own_pings_and_others_are_not_limited() {
    let config = format!(
        "{CHECKS}[[heartbeats]]\nname = \"noisy\"\nperiod = \"1m\"\nmax_pings_per_minute = 1\n\n"
    );
    let s = Server::start("sqlite", &config).await;
    // One a minute comes in bursts of 5: the sixth within the minute is refused, saying when to
    // retry.
    for i in 0..5 {
        let (status, _) = ping(&s, Method::GET, &format!("/ping/{KEY}/noisy"), "").await;
        assert_eq!(status, StatusCode::OK, "ping {i}");
    }
    let refused = s
        .client
        .get(s.url(&format!("/ping/{KEY}/noisy")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(refused.text().await.unwrap().contains("at most 1 a minute"));
    // A heartbeat without a limit takes a busy worker's pings, however many.
    for _ in 0..50 {
        let (status, _) = ping(&s, Method::POST, &format!("/ping/{KEY}/backup"), "").await;
        assert_eq!(status, StatusCode::OK);
    }
    s.stop().await;
}
