//! The HTTP API end to end: a real daemon, a real store (SQLite, and PostgreSQL when its URL is
//! set), real HTTP on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{SECRET, Server, backends};

use plantao_model::{Role, RunId, RunStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

fn id_of(body: &Value) -> RunId {
    body["id"].as_str().unwrap().parse().unwrap()
}

/// Every route, the role it needs (`None`: no token at all), and a request that role may make.
fn routes(run: RunId, alert: Uuid) -> Vec<(Method, String, Option<Role>, Option<Value>)> {
    let get = |path: &str, role| (Method::GET, path.to_owned(), role, None);
    vec![
        get("/api/health", None),
        get("/api/openapi.json", None),
        get("/api/pipelines", Some(Role::Viewer)),
        get("/api/pipelines/quick", Some(Role::Viewer)),
        get("/api/pipelines/quick/trends", Some(Role::Viewer)),
        get("/api/checks", Some(Role::Viewer)),
        get("/api/sla", Some(Role::Viewer)),
        get("/api/runs", Some(Role::Viewer)),
        get(&format!("/api/runs/{run}"), Some(Role::Viewer)),
        get(&format!("/api/runs/{run}/log"), Some(Role::Viewer)),
        get("/api/metrics/today", Some(Role::Viewer)),
        get("/api/metrics/history", Some(Role::Viewer)),
        get("/api/metrics/pipeline-runs", Some(Role::Viewer)),
        get("/metrics", Some(Role::Viewer)),
        (
            Method::POST,
            "/api/pipelines/quick/runs".into(),
            Some(Role::Operator),
            Some(json!({"dry_run": true})),
        ),
        (
            Method::POST,
            "/api/pipelines/quick/pause".into(),
            Some(Role::Operator),
            None,
        ),
        (
            Method::POST,
            "/api/pipelines/quick/resume".into(),
            Some(Role::Operator),
            None,
        ),
        (
            Method::POST,
            format!("/api/runs/{run}/retry"),
            Some(Role::Operator),
            None,
        ),
        (
            Method::POST,
            format!("/api/runs/{run}/cancel"),
            Some(Role::Operator),
            None,
        ),
        get("/api/pipelines/quick/state", Some(Role::Viewer)),
        get("/api/pipelines/quick/backfills", Some(Role::Viewer)),
        (
            Method::POST,
            "/api/pipelines/quick/backfills".into(),
            Some(Role::Operator),
            Some(json!({"from": "2024-01-01", "to": "2024-01-02", "dry_run": true})),
        ),
        (
            Method::PUT,
            "/api/pipelines/quick/state/watermark".into(),
            Some(Role::Admin),
            Some(json!({"value": "2024-01-31"})),
        ),
        get("/api/pipelines/quick/state/watermark", Some(Role::Viewer)),
        (
            Method::DELETE,
            "/api/pipelines/quick/state/watermark".into(),
            Some(Role::Admin),
            None,
        ),
        get("/api/tokens", Some(Role::Admin)),
        (
            Method::POST,
            "/api/tokens".into(),
            Some(Role::Admin),
            Some(json!({"name": "made-by-test", "role": "viewer"})),
        ),
        (
            Method::DELETE,
            "/api/tokens/made-by-test".into(),
            Some(Role::Admin),
            None,
        ),
        get("/api/audit", Some(Role::Admin)),
        get("/api/alerts", Some(Role::Viewer)),
        get("/api/alerts/history", Some(Role::Viewer)),
        get("/api/notifications", Some(Role::Viewer)),
        (
            Method::POST,
            format!("/api/alerts/{alert}/ack"),
            Some(Role::Operator),
            None,
        ),
        (
            Method::POST,
            format!("/api/alerts/{alert}/dismiss"),
            Some(Role::Operator),
            None,
        ),
        (
            Method::POST,
            "/api/channels/hook/test".into(),
            Some(Role::Admin),
            None,
        ),
        get("/api/alert-config", Some(Role::Admin)),
        get("/api/silences", Some(Role::Viewer)),
        (
            Method::POST,
            "/api/silences".into(),
            Some(Role::Admin),
            Some(json!({"matchers": ["pipeline=quick"], "duration": "1h", "comment": "test"})),
        ),
        (
            Method::PUT,
            "/api/alert-config".into(),
            Some(Role::Admin),
            Some(json!({"thresholds": {"quick-failure-rate": 40}})),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_its_role() {
    for backend in backends() {
        // Every write of the walk comes from one address: lift the rate limit.
        let server = Server::start(backend, "writes_per_minute = 100000").await;
        let mut tokens = Vec::new();
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            tokens.push((role, server.token(role.as_str(), role).await));
        }
        let admin = tokens[2].1.clone();
        let (_, queued) = server
            .post("/api/pipelines/quick/runs", &admin, json!({}))
            .await;
        let run = id_of(&queued);
        server.ended(run).await;
        let alert = server.open_alert("quick-failed").await;
        for (method, path, needed, body) in routes(run, alert) {
            let ask = |token: Option<String>| {
                let (method, path, body, server) =
                    (method.clone(), path.clone(), body.clone(), &server);
                async move { server.call(method, &path, token.as_deref(), body).await }
            };
            let (status, answer) = ask(None).await;
            match needed {
                None => assert!(
                    status.is_success(),
                    "{backend} {method} {path}: {status} {answer}"
                ),
                Some(_) => {
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{backend} {method} {path} without a token"
                    );
                    assert_eq!(answer["error"]["code"], "unauthorized");
                }
            }
            let (status, _) = ask(Some("plt_not-a-token".into())).await;
            if needed.is_some() {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{backend} {method} {path} with a bad token"
                );
            }
            for (role, token) in &tokens {
                let (status, answer) = ask(Some(token.clone())).await;
                let allowed = needed.is_none_or(|n| *role >= n);
                if allowed {
                    assert!(
                        status != StatusCode::UNAUTHORIZED
                            && status != StatusCode::FORBIDDEN
                            && !status.is_server_error(),
                        "{backend} {method} {path} as {role}: {status} {answer}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{backend} {method} {path} as {role}: {answer}"
                    );
                    assert_eq!(answer["error"]["code"], "forbidden");
                }
            }
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_read_opens_reads_but_never_writes() {
    let server = Server::start("sqlite", "public_read = true").await;
    let (status, _) = server.call(Method::GET, "/api/pipelines", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::POST,
            "/api/pipelines/quick/runs",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.call(Method::GET, "/api/audit", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_triggered_with_their_steps_listed_in_pages_and_read() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let op = server.token("ci", Role::Operator).await;
        let (status, body) = server
            .post(
                "/api/pipelines/quick/runs",
                &op,
                json!({"params": {"day": "2026-11-01"}, "skip": ["load"]}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let first = id_of(&body);
        assert_eq!(body["url"], format!("/api/runs/{first}"));
        assert_eq!(server.ended(first).await, RunStatus::Succeeded);
        let (status, run) = server.get(&format!("/api/runs/{first}"), &op).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(run["run"]["trigger"], "api");
        assert_eq!(run["run"]["params"]["day"], "2026-11-01");
        let stages: Vec<(&str, &str)> = run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            stages,
            [("extract", "succeeded"), ("load", "skipped")],
            "{run}"
        );
        assert_eq!(run["counters"][0]["name"], "rows");

        let mut ids = vec![first];
        for _ in 0..4 {
            let (_, body) = server
                .post("/api/pipelines/quick/runs", &op, json!({}))
                .await;
            ids.push(id_of(&body));
        }
        for id in &ids {
            server.ended(*id).await;
        }
        // Pages of two, newest first, until the cursor runs out.
        let mut seen = Vec::new();
        let mut path = "/api/runs?pipeline=quick&limit=2".to_owned();
        loop {
            let (status, page) = server.get(&path, &op).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            seen.extend(
                page["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["id"].as_str().unwrap().parse::<RunId>().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/runs?pipeline=quick&limit=2&cursor={cursor}"),
                None => break,
            }
        }
        ids.reverse();
        assert_eq!(seen, ids);
        let (_, page) = server
            .get(
                "/api/runs?status=succeeded&trigger=api&since=2000-01-01T00:00:00Z&limit=100",
                &op,
            )
            .await;
        assert_eq!(page["runs"].as_array().unwrap().len(), 5);
        let (_, page) = server
            .get("/api/runs?until=2000-01-01T00:00:00Z", &op)
            .await;
        assert!(page["runs"].as_array().unwrap().is_empty());

        // What a dry run answers, and what is refused with the reason.
        let (status, plan) = server
            .post(
                "/api/pipelines/quick/runs",
                &op,
                json!({"dry_run": true, "only": ["load"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(plan["steps"][0]["skipped"].as_str().is_some(), "{plan}");
        assert!(plan["steps"][1]["skipped"].is_null(), "{plan}");
        for (path, body, words) in [
            (
                "/api/pipelines/quick/runs",
                json!({"params": {"dya": "x"}}),
                "no parameter `dya`",
            ),
            (
                "/api/pipelines/quick/runs",
                json!({"skip": ["lod"]}),
                "no step `lod`",
            ),
            (
                "/api/pipelines/needs/runs",
                json!({}),
                "needs the parameter `day`",
            ),
            (
                "/api/pipelines/quick/runs",
                json!({"parms": {}}),
                "unknown field `parms`",
            ),
        ] {
            let (status, answer) = server.post(path, &op, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(words),
                "{answer}"
            );
        }
        for (path, status) in [
            ("/api/runs?cursor=nonsense", StatusCode::BAD_REQUEST),
            ("/api/runs?status=great", StatusCode::BAD_REQUEST),
            ("/api/runs?since=yesterday", StatusCode::BAD_REQUEST),
            ("/api/runs?limit=0", StatusCode::BAD_REQUEST),
            ("/api/runs?colour=red", StatusCode::BAD_REQUEST),
            ("/api/runs?pipeline=nope", StatusCode::NOT_FOUND),
            ("/api/runs/not-an-id", StatusCode::BAD_REQUEST),
            (
                "/api/runs/01a201b7-44d4-713a-9d9f-299c6148ca53",
                StatusCode::NOT_FOUND,
            ),
            ("/api/pipelines/nope", StatusCode::NOT_FOUND),
            ("/api/nothing-here", StatusCode::NOT_FOUND),
        ] {
            let (got, answer) = server.get(path, &op).await;
            assert_eq!(got, status, "{path}: {answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{path}: {answer}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_retry_pause_and_the_audit_log() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let op = server.token("night-shift", Role::Operator).await;
        let admin = server.token("boss", Role::Admin).await;
        let (_, body) = server
            .post("/api/pipelines/slow/runs", &op, json!({}))
            .await;
        let slow = id_of(&body);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while server.store.run(slow).await.unwrap().status != RunStatus::Running {
            assert!(std::time::Instant::now() < deadline, "never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, _) = server
            .post(&format!("/api/runs/{slow}/cancel"), &op, json!(null))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(server.ended(slow).await, RunStatus::Cancelled);
        let (status, answer) = server
            .post(&format!("/api/runs/{slow}/cancel"), &op, json!(null))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");

        let (_, body) = server
            .post("/api/pipelines/quick/runs", &op, json!({"skip": ["load"]}))
            .await;
        let quick = id_of(&body);
        server.ended(quick).await;
        let (status, body) = server
            .post(&format!("/api/runs/{quick}/retry"), &op, json!(null))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let again = server.store.run(id_of(&body)).await.unwrap();
        assert_eq!(again.parent, Some(quick));
        assert_eq!(again.selection.skip, ["load"]);

        let (status, body) = server
            .post("/api/pipelines/quick/pause", &op, json!(null))
            .await;
        assert_eq!(
            (status, body["paused"].clone()),
            (StatusCode::OK, json!(true))
        );
        let (_, pipeline) = server.get("/api/pipelines/quick", &op).await;
        assert_eq!(pipeline["paused"], true);
        server
            .post("/api/pipelines/quick/resume", &op, json!(null))
            .await;

        let (status, log) = server.get("/api/audit", &admin).await;
        assert_eq!(status, StatusCode::OK);
        let actions: Vec<(&str, &str)> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
            .collect();
        assert_eq!(
            actions,
            [
                ("night-shift", "pipeline.resume"),
                ("night-shift", "pipeline.pause"),
                ("night-shift", "run.retry"),
                ("night-shift", "run.trigger"),
                ("night-shift", "run.cancel"),
                ("night-shift", "run.trigger"),
                ("test", "token.create"),
                ("test", "token.create"),
            ]
        );
        // Tokens over the API: made, listed without secrets, revoked, then refused.
        let (status, made) = server
            .post(
                "/api/tokens",
                &admin,
                json!({"name": "grafana", "role": "viewer"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let secret = made["token"].as_str().unwrap().to_owned();
        assert_eq!(
            server.get("/api/pipelines", &secret).await.0,
            StatusCode::OK
        );
        let (_, list) = server.get("/api/tokens", &admin).await;
        assert!(!list.to_string().contains(&secret[4..]), "{list}");
        assert_eq!(
            server
                .post(
                    "/api/tokens",
                    &admin,
                    json!({"name": "grafana", "role": "admin"})
                )
                .await
                .0,
            StatusCode::CONFLICT
        );
        assert_eq!(
            server
                .post(
                    "/api/tokens",
                    &admin,
                    json!({"name": "no spaces", "role": "admin"})
                )
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        let (status, _) = server
            .call(Method::DELETE, "/api/tokens/grafana", Some(&admin), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            server.get("/api/pipelines", &secret).await.0,
            StatusCode::UNAUTHORIZED
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_today_history_and_prometheus_add_up() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let op = server.token("ci", Role::Operator).await;
        for _ in 0..3 {
            let (_, body) = server
                .post("/api/pipelines/quick/runs", &op, json!({}))
                .await;
            server.ended(id_of(&body)).await;
        }
        let (status, today) = server.get("/api/metrics/today?pipeline=quick", &op).await;
        assert_eq!(status, StatusCode::OK);
        let day = &today[0];
        assert_eq!(day["runs"], 3);
        assert_eq!(day["by_status"]["succeeded"], 3);
        assert_eq!(day["counters"]["extract.rows"], 30.0);
        assert_eq!(day["counters"]["load.loaded"], 24.0);
        assert_eq!(day["metrics"]["load_rate"], 80.0);
        assert_eq!(day["success_rate"], 1.0);

        let (_, history) = server
            .get("/api/metrics/history?pipeline=quick&days=7", &op)
            .await;
        let days = history.as_array().unwrap();
        assert_eq!(days.len(), 7);
        assert_eq!(days[6]["day"], day["day"]);
        assert_eq!(days[6]["runs"], 3);
        assert!(days[..6].iter().all(|d| d["runs"] == 0));
        assert_eq!(
            server.get("/api/metrics/history?days=400", &op).await.0,
            StatusCode::BAD_REQUEST
        );

        let (_, last) = server.get("/api/metrics/pipeline-runs?limit=2", &op).await;
        assert_eq!(last.as_array().unwrap().len(), 2);
        assert_eq!(last[0]["stages"][0]["counters"]["rows"], 10.0);
        assert_eq!(last[0]["metrics"]["load_rate"], 80.0);

        let (_, (status, text)) = ((), server.get("/metrics", &op).await);
        assert_eq!(status, StatusCode::OK);
        let text = text.as_str().unwrap();
        for line in [
            "plantao_runs_total{pipeline=\"quick\",status=\"succeeded\",trigger=\"api\"} 3",
            "plantao_run_duration_seconds_count{pipeline=\"quick\"} 3",
            "plantao_stage_counter_total{pipeline=\"quick\",stage=\"extract\",name=\"rows\"} 30",
            "plantao_stage_duration_seconds_count{pipeline=\"quick\",stage=\"load\"} 3",
            "plantao_queue_depth 0",
            "plantao_storage_writable 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        assert!(text.contains("plantao_http_requests_total{method=\"POST\",route=\"/api/pipelines/{name}/runs\",status=\"202\"} 3"), "{text}");
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_down_while_the_store_refuses_writes() {
    let server = Server::start("sqlite", "").await;
    let (status, health) = server.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["reachable"], true);
    assert_eq!(health["scheduler"]["running"], true);
    assert_eq!(health["nodes"].as_array().unwrap().len(), 1);
    assert!(health["resident_memory_bytes"].as_u64().unwrap() > 0);
    let writable = server.daemon.as_ref().unwrap().writable().clone();
    writable.failed(&plantao_store::StoreError::CannotWrite(
        "database or disk is full".into(),
    ));
    let (status, health) = server.call(Method::GET, "/api/health", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "down");
    assert_eq!(health["storage"]["writable"], false);
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .contains("cannot write"),
        "{health}"
    );
    writable.wrote();
    assert_eq!(
        server.call(Method::GET, "/api/health", None, None).await.0,
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_json_errors_that_say_what_is_wrong() {
    let server = Server::start("sqlite", "").await;
    let op = server.token("ci", Role::Operator).await;
    let raw = |body: &'static str, content_type: &'static str| {
        server
            .client
            .post(server.url("/api/pipelines/quick/runs"))
            .bearer_auth(&op)
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        (
            raw("{\"params\": ", "application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (raw("{}", "text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            raw("{\"params\": {\"day\": 5}}", "application/json"),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (request, status) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let big = format!("{{\"params\": {{\"day\": \"{}\"}}}}", "x".repeat(70_000));
    let response = server
        .client
        .post(server.url("/api/pipelines/quick/runs"))
        .bearer_auth(&op)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = server
        .client
        .get(server.url("/api/health"))
        .header("x-request-id", "lb-check-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "lb-check-42");
    let (status, body) = server.call(Method::PUT, "/api/runs", Some(&op), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beyond_the_rate_limit_wait() {
    // One write a minute: a burst of five, then 429 with Retry-After.
    let server = Server::start("sqlite", "writes_per_minute = 1").await;
    let op = server.token("ci", Role::Operator).await;
    for _ in 0..5 {
        let (status, body) = server
            .post("/api/pipelines/quick/runs", &op, json!({"dry_run": true}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = server
        .client
        .post(server.url("/api/pipelines/quick/runs"))
        .bearer_auth(&op)
        .json(&json!({"dry_run": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Reads are not limited.
    assert_eq!(server.get("/api/runs", &op).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_holds_a_secret() {
    let server = Server::start("sqlite", "").await;
    let admin = server.token("boss", Role::Admin).await;
    let (_, body) = server
        .post("/api/pipelines/leaky/runs", &admin, json!({}))
        .await;
    let run = id_of(&body);
    server.ended(run).await;
    let (_, log) = server.get(&format!("/api/runs/{run}/log"), &admin).await;
    assert!(log.as_str().unwrap().contains("token="), "{log}");
    let alert = server.open_alert("quick-failed").await;
    for (method, path, _, body) in routes(run, alert) {
        let (_, answer) = server.call(method, &path, Some(&admin), body).await;
        assert!(
            !answer.to_string().contains(SECRET),
            "{path} leaked: {answer}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_log_streams_as_server_sent_events() {
    let server = Server::start("sqlite", "").await;
    let op = server.token("ci", Role::Operator).await;
    let (status, body) = server
        .post("/api/pipelines/chatty/runs", &op, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let run = id_of(&body);
    let mut response = server
        .client
        .get(server.url(&format!("/api/runs/{run}/log?follow=true")))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let mut running_when_first_arrived = None;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), response.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if running_when_first_arrived.is_none() && seen.contains("first") {
            running_when_first_arrived = Some(server.store.run(run).await.unwrap().status);
        }
    }
    // "first" came while the step still slept before "second".
    assert_eq!(
        running_when_first_arrived,
        Some(RunStatus::Running),
        "{seen}"
    );
    let events: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"log"), "{seen}");
    assert!(events.ends_with(&["ended", "end"]), "{seen}");
    assert!(
        seen.contains("second") && seen.contains("\"status\":\"succeeded\""),
        "{seen}"
    );
    server.stop().await;
}

#[test]
fn the_committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == plantao_web::document(),
        "docs/openapi.json differs from the code: run `cargo run -q -p plantao -- openapi > docs/openapi.json` and commit it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_acknowledged_dismissed_and_audited_and_thresholds_change_at_runtime() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let operator = server.token("ops", Role::Operator).await;
        let admin = server.token("boss", Role::Admin).await;
        let alert = server.open_alert("quick-failed").await;

        let (status, active) = server.get("/api/alerts", &operator).await;
        assert_eq!(status, StatusCode::OK, "{active}");
        assert_eq!(active.as_array().unwrap().len(), 1);
        assert_eq!(active[0]["id"], alert.to_string());
        assert_eq!(active[0]["state"], "firing");

        let (status, acked) = server
            .post(&format!("/api/alerts/{alert}/ack"), &operator, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{acked}");
        assert_eq!(acked["acknowledged_by"], "ops");
        assert_eq!(acked["next_reminder_at"], Value::Null);
        let (status, _) = server
            .post(
                &format!("/api/alerts/{alert}/dismiss"),
                &operator,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, active) = server.get("/api/alerts", &operator).await;
        assert_eq!(
            active,
            json!([]),
            "a dismissed alert leaves the active list"
        );
        let (_, all) = server.get("/api/alerts?dismissed=true", &operator).await;
        assert_eq!(all[0]["dismissed"], true);
        let (_, history) = server.get("/api/alerts/history?limit=1", &operator).await;
        assert_eq!(history["alerts"][0]["id"], alert.to_string());
        assert_eq!(
            history["next"],
            alert.to_string(),
            "a full page points at the next"
        );

        let (status, answer) = server
            .post(
                &format!("/api/alerts/{}/ack", Uuid::now_v7()),
                &operator,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        let (status, answer) = server
            .post("/api/alerts/not-an-id/ack", &operator, json!({}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not an alert id")
        );

        let (status, config) = server.get("/api/alert-config", &admin).await;
        assert_eq!(status, StatusCode::OK, "{config}");
        assert_eq!(
            config,
            json!([{"rule": "quick-failure-rate", "kind": "failure_rate", "configured": 50.0, "override": null, "effective": 50.0}])
        );
        let (status, changed) = server
            .call(
                Method::PUT,
                "/api/alert-config",
                Some(&admin),
                Some(json!({"thresholds": {"quick-failure-rate": 12.5}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed[0]["effective"], 12.5);
        assert_eq!(changed[0]["override"], 12.5);
        for (body, why) in [
            (
                json!({"thresholds": {"quick-failed": 3}}),
                "takes no threshold",
            ),
            (json!({"thresholds": {"nope": 3}}), "takes no threshold"),
            (json!({"thresholds": {}}), "is empty"),
        ] {
            let (status, answer) = server
                .call(Method::PUT, "/api/alert-config", Some(&admin), Some(body))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(why),
                "{answer}"
            );
        }
        let (_, restored) = server
            .call(
                Method::PUT,
                "/api/alert-config",
                Some(&admin),
                Some(json!({"thresholds": {"quick-failure-rate": null}})),
            )
            .await;
        assert_eq!(restored[0]["effective"], 50.0);

        let (status, test) = server
            .post("/api/channels/hook/test", &admin, json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{test}");
        assert_eq!(
            test["delivered"], false,
            "nobody listens on the hook's port"
        );
        assert!(
            test["attempt"]["error"]
                .as_str()
                .unwrap()
                .starts_with("cannot connect"),
            "{test}"
        );
        let (status, _) = server
            .post("/api/channels/nope/test", &admin, json!({}))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, log) = server.get("/api/notifications", &operator).await;
        let first = &log["notifications"][0];
        assert_eq!(first["event"], "test");
        assert_eq!(first["state"], "failed", "a test is never retried");
        assert_eq!(first["attempts_log"].as_array().unwrap().len(), 1);

        let (_, audit) = server.get("/api/audit", &admin).await;
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for action in [
            "alert.ack",
            "alert.dismiss",
            "alert_config.set",
            "channel.test",
        ] {
            assert!(
                actions.contains(&action),
                "{action} is audited: {actions:?}"
            );
        }
        let (_, metrics) = server
            .call(Method::GET, "/metrics", Some(&operator), None)
            .await;
        let text = metrics.as_str().unwrap();
        assert!(
            text.contains("plantao_alerts_firing{rule=\"quick-failed\",severity=\"critical\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("plantao_outbox_depth 0\n"), "{text}");
        assert!(
            text.contains("# TYPE plantao_notifications_total counter\n"),
            "{text}"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_are_made_in_advance_listed_expired_and_audited() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let viewer = server.token("eyes", Role::Viewer).await;
        let admin = server.token("boss", Role::Admin).await;
        let (status, made) = server
            .post(
                "/api/silences",
                &admin,
                json!({
                    "matchers": ["pipeline=quick", "severity!=info"],
                    "starts_at": "2099-01-01T02:00:00Z",
                    "duration": "2h",
                    "comment": "database maintenance"
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        assert_eq!(made["ends_at"], "2099-01-01T04:00:00Z");
        assert_eq!(made["author"], "boss");
        assert_eq!(
            made["matchers"][1],
            json!({"name": "severity", "value": "info", "negate": true})
        );
        let id = made["id"].as_str().unwrap().to_owned();

        let (status, listed) = server.get("/api/silences", &viewer).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed.as_array().unwrap().len(), 1, "one to come");
        for (body, why) in [
            (
                json!({"matchers": [], "duration": "1h", "comment": "x"}),
                "at least one matcher",
            ),
            (
                json!({"matchers": ["pipeline"], "duration": "1h", "comment": "x"}),
                "is not a matcher",
            ),
            (
                json!({"matchers": ["pipeline=a"], "comment": "x"}),
                "an end or a duration",
            ),
            (
                json!({"matchers": ["pipeline=a"], "duration": "soon", "comment": "x"}),
                "is not one",
            ),
            (
                json!({"matchers": ["pipeline=a"], "duration": "1h", "comment": ""}),
                "comment",
            ),
            (
                json!({"matchers": ["pipeline=a"], "ends_at": "2001-01-01T00:00:00Z", "comment": "x"}),
                "ended already",
            ),
            (
                json!({"matchers": ["pipeline=a"], "starts_at": "2099-01-02T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z", "comment": "x"}),
                "before it starts",
            ),
        ] {
            let (status, answer) = server.post("/api/silences", &admin, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(why),
                "{why}: {answer}"
            );
        }

        let expire = format!("/api/silences/{id}/expire");
        let (status, answer) = server.post(&expire, &viewer, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        let (status, _) = server.post(&expire, &admin, json!({})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = server.post(&expire, &admin, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "ended already");
        let (status, _) = server
            .post(
                &format!("/api/silences/{}/expire", Uuid::now_v7()),
                &admin,
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, listed) = server.get("/api/silences", &viewer).await;
        assert_eq!(
            listed,
            json!([]),
            "a silence to come that is expired never starts"
        );
        let (_, all) = server.get("/api/silences?all=true", &viewer).await;
        assert_eq!(all[0]["id"], id.as_str());

        let (_, audit) = server.get("/api/audit", &admin).await;
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"silence.add") && actions.contains(&"silence.expire"),
            "{actions:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn state_is_read_by_viewers_and_set_by_admins_with_an_audit_entry() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let viewer = server.token("eyes", Role::Viewer).await;
        let op = server.token("night-shift", Role::Operator).await;
        let admin = server.token("boss", Role::Admin).await;
        let (status, body) = server.get("/api/pipelines/quick/state", &viewer).await;
        assert_eq!((status, body), (StatusCode::OK, json!([])));
        let put = |token: String, key: &'static str, value: Value| {
            let server = &server;
            async move {
                server
                    .call(
                        Method::PUT,
                        &format!("/api/pipelines/quick/state/{key}"),
                        Some(&token),
                        Some(value),
                    )
                    .await
            }
        };
        let (status, _) = put(op.clone(), "watermark", json!({"value": "x"})).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{backend}: operators may not"
        );
        let (status, body) = put(admin.clone(), "WaterMark", json!({"value": "2024-01-31"})).await;
        assert_eq!(status, StatusCode::OK, "{backend}: {body}");
        assert_eq!(body["key"], "watermark");
        let (status, body) = server
            .get("/api/pipelines/quick/state/watermark", &viewer)
            .await;
        assert_eq!(
            (status, body["value"].clone()),
            (StatusCode::OK, json!("2024-01-31"))
        );
        let (status, body) = put(admin.clone(), "bad-key", json!({"value": "1"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a state key"),
            "{body}"
        );
        let (status, _) = put(admin.clone(), "watermark", json!({"valor": "1"})).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{backend}: unknown fields are refused"
        );
        let (status, _) = server.get("/api/pipelines/nope/state", &viewer).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = server
            .call(
                Method::DELETE,
                "/api/pipelines/quick/state/watermark",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = server
            .get("/api/pipelines/quick/state/watermark", &viewer)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, audit) = server.get("/api/audit", &admin).await;
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions[..2], ["state.unset", "state.set"], "{backend}");
        server.stop().await;
    }
}

/// Polls a backfill until it is done.
async fn backfill_done(server: &Server, token: &str, url: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server.get(url, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["state"] == "done" {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_backfill_through_the_api_runs_each_period_once_and_resumes_from_checkpoints() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let op = server.token("night-shift", Role::Operator).await;
        let viewer = server.token("eyes", Role::Viewer).await;
        let span = json!({"from": "2024-01-01", "to": "2024-01-03", "parallel": 2});
        let (status, body) = server
            .post("/api/pipelines/quick/backfills", &op, span.clone())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{backend}: {body}");
        assert_eq!(body["periods"], 3);
        let url = format!(
            "/api/pipelines/quick/backfills/{}",
            body["id"].as_str().unwrap()
        );
        let done = backfill_done(&server, &viewer, &url).await;
        assert_eq!(
            (
                done["succeeded"].clone(),
                done["failed"].clone(),
                done["skipped"].clone()
            ),
            (json!(3), json!(0), json!(0)),
            "{backend}: {done}"
        );
        let (_, runs) = server.get("/api/runs?trigger=backfill", &viewer).await;
        let mut periods: Vec<String> = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["period"]["start"].as_str().unwrap().to_owned())
            .collect();
        periods.sort();
        assert_eq!(
            periods,
            ["2024-01-01", "2024-01-02", "2024-01-03"],
            "{backend}"
        );

        // The same span again: every period has its checkpoint.
        let (_, dry) = server
            .post(
                "/api/pipelines/quick/backfills",
                &op,
                json!({"from": "2024-01-01", "to": "2024-01-04", "dry_run": true}),
            )
            .await;
        let marks: Vec<bool> = dry
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["checkpoint"].as_bool().unwrap())
            .collect();
        assert_eq!(marks, [true, true, true, false], "{backend}: {dry}");
        let (status, body) = server
            .post("/api/pipelines/quick/backfills", &op, span.clone())
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let url = format!(
            "/api/pipelines/quick/backfills/{}",
            body["id"].as_str().unwrap()
        );
        let done = backfill_done(&server, &viewer, &url).await;
        assert_eq!(
            (done["succeeded"].clone(), done["skipped"].clone()),
            (json!(0), json!(3)),
            "{done}"
        );
        let (_, list) = server.get("/api/pipelines/quick/backfills", &viewer).await;
        assert_eq!(list.as_array().unwrap().len(), 2);

        // One at a time per pipeline; mistakes are said.
        let (status, body) = server
            .post(
                "/api/pipelines/slow/backfills",
                &op,
                json!({"from": "2024-01-01", "to": "2024-01-02"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let slow = format!(
            "/api/pipelines/slow/backfills/{}",
            body["id"].as_str().unwrap()
        );
        let (status, body) = server
            .post(
                "/api/pipelines/slow/backfills",
                &op,
                json!({"from": "2024-02-01", "to": "2024-02-02"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        for (request, says) in [
            (
                json!({"from": "2024-02-02", "to": "2024-02-01"}),
                "is after",
            ),
            (
                json!({"from": "2024-01-01", "to": "2024-01-02", "every": "year"}),
                "day, week or month",
            ),
            (
                json!({"from": "2024-01-01", "to": "2024-01-02", "params": {"nope": "1"}}),
                "no parameter `nope`",
            ),
            (
                json!({"from": "2024-01-01", "to": "2024-01-02", "parallel": 0}),
                "from 1 to 64",
            ),
        ] {
            let (status, body) = server
                .post("/api/pipelines/quick/backfills", &op, request)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(says),
                "{body}"
            );
        }
        // Cancelling the slow period in flight ends that backfill's period as failed; the
        // next one starts and is cancelled too.
        for _ in 0..2 {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let run = loop {
                let (_, runs) = server
                    .get("/api/runs?pipeline=slow&status=running", &viewer)
                    .await;
                if let Some(r) = runs["runs"].as_array().unwrap().first() {
                    break r["id"].as_str().unwrap().to_owned();
                }
                assert!(std::time::Instant::now() < deadline, "no slow run started");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let (status, _) = server
                .post(&format!("/api/runs/{run}/cancel"), &op, json!(null))
                .await;
            assert_eq!(status, StatusCode::ACCEPTED);
            let id = RunId::from_uuid(Uuid::parse_str(&run).unwrap());
            server.ended(id).await;
        }
        let done = backfill_done(&server, &viewer, &slow).await;
        assert_eq!(done["failed"], 2, "{done}");
        server.stop().await;
    }
}
