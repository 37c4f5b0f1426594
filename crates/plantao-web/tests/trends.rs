//! Trends end to end: a week of history written to a real store (SQLite, and PostgreSQL when
//! its URL is set), read back over HTTP by the API and the pipeline's page.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, Utc};
use common::{Server, backends};
use plantao_model::{Role, RunStatus, Trigger};
use plantao_store::{Counter, NewRun, RunEnd, Write};
use reqwest::StatusCode;

/// A finished run of `quick` at `at` with its two counters.
fn run_at(at: chrono::DateTime<Utc>, rows: f64, loaded: f64) -> Vec<Write> {
    let new = NewRun::queued("quick", Trigger::Scheduled, at);
    let id = new.id;
    let counter = |step: &str, name: &str, value| {
        Write::PutCounter(Counter {
            run_id: id,
            step: step.into(),
            name: name.into(),
            value,
        })
    };
    vec![
        Write::InsertRun(new),
        Write::StartRun { id, at, node: None },
        counter("extract", "rows", rows),
        counter("load", "loaded", loaded),
        Write::FinishRun(RunEnd {
            id,
            status: RunStatus::Succeeded,
            at: at + Duration::seconds(1),
            reason: None,
            error_stage: None,
            error_message: None,
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_say_which_counters_and_metrics_improve_or_worsen() {
    for backend in backends() {
        let server = Server::start(backend, "").await;
        let viewer = server.token("v", Role::Viewer).await;
        // Six days back to yesterday: rows grow 100 → 150 (lower is better: worsening), loaded
        // stays 80 (stable), so load_rate falls 80 % → 53 % (higher is better: worsening).
        let now = Utc::now();
        let mut writes = Vec::new();
        // Oldest first, as they would have run: the store's newest runs are the last recorded.
        for back in (1..=6_i64).rev() {
            let rows = 100.0 + 10.0 * (6 - back) as f64;
            writes.extend(run_at(now - Duration::days(back), rows, 80.0));
        }
        server.store.apply(writes).await.unwrap();

        let (status, body) = server.get("/api/pipelines/quick/trends", &viewer).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["per"], "day");
        assert_eq!(body["days"].as_array().unwrap().len(), 7);
        let trend = |name: &str| {
            body["trends"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {body}"))
                .clone()
        };
        let rate = trend("load_rate");
        assert_eq!(rate["kind"], "metric");
        assert_eq!(
            (rate["direction"].as_str(), rate["verdict"].as_str()),
            (Some("falling"), Some("worsening"))
        );
        assert_eq!(
            rate["values"][6],
            serde_json::Value::Null,
            "nothing ran today"
        );
        assert_eq!(rate["values"][5], 80.0 / 150.0 * 100.0);
        let rows = trend("extract.rows");
        assert_eq!(
            (rows["direction"].as_str(), rows["verdict"].as_str()),
            (Some("rising"), Some("worsening"))
        );
        assert!((rows["slope"].as_f64().unwrap() - 10.0).abs() < 1e-9);
        let loaded = trend("load.loaded");
        assert_eq!(loaded["direction"], "stable");
        assert_eq!(
            loaded["verdict"],
            serde_json::Value::Null,
            "no better way is set for it"
        );

        let (status, _) = server.get("/api/pipelines/nope/trends", &viewer).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (_, page) = server.get("/pipelines/quick", &viewer).await;
        let page = page.as_str().unwrap();
        assert!(page.contains("Trends (7 days)"), "{page}");
        assert!(
            page.contains("<span class=\"pill bad\">worsening</span>"),
            "{page}"
        );
        assert!(
            page.contains("<span class=\"pill none\">stable</span>"),
            "{page}"
        );
        // Over runs instead: the last four that succeeded, each its own value; a failed run
        // since (its counters half written) is left out.
        let mut failed = run_at(now - Duration::minutes(30), 999.0, 0.0);
        if let Some(Write::FinishRun(end)) = failed.last_mut() {
            end.status = RunStatus::Failed;
        }
        server.store.apply(failed).await.unwrap();
        let (status, body) = server
            .get("/api/pipelines/quick/trends?runs=4", &viewer)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["per"], "run");
        assert_eq!(body["runs"].as_array().unwrap().len(), 4, "{body}");
        assert!(body["days"].as_array().unwrap().is_empty());
        let rows = body["trends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "extract.rows")
            .unwrap()
            .clone();
        assert_eq!(
            rows["values"],
            serde_json::json!([120.0, 130.0, 140.0, 150.0])
        );
        assert!((rows["slope"].as_f64().unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(rows["verdict"], "worsening");
        for bad in ["runs=4&days=7", "runs=2", "days=400"] {
            let (status, body) = server
                .get(&format!("/api/pipelines/quick/trends?{bad}"), &viewer)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        }

        server.stop().await;
    }
}
