//! What the daemon asks of a backend: leases, the queue, orphans, cancel requests, pauses.

use std::sync::Arc;

use chrono::Duration;
use plantao_model::{RunId, RunStatus, StageStatus, Trigger};
use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

pub async fn nodes_hold_leases_they_renew(fx: &Fixture) {
    let store = fx.open().await;
    let node = |id: &str, kind: &str, start: i64| Node {
        id: id.into(),
        kind: kind.into(),
        host: "host-a".into(),
        pid: 4242,
        started_at: at(start),
        renewed_at: at(start),
        expires_at: at(start) + Duration::seconds(6),
    };
    store
        .register_node(&node("serve-1", "serve", 0))
        .await
        .unwrap();
    store.register_node(&node("run-1", "run", 1)).await.unwrap();
    store
        .renew_node("serve-1", at(2), at(2) + Duration::seconds(6))
        .await
        .unwrap();
    let nodes = store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].id, "serve-1");
    assert_eq!(nodes[0].renewed_at, at(2));
    assert_eq!(nodes[0].expires_at, at(2) + Duration::seconds(6));
    assert_eq!(nodes[1], node("run-1", "run", 1));
    store.remove_node("run-1").await.unwrap();
    let gone = store.renew_node("run-1", at(3), at(4)).await.unwrap_err();
    assert!(
        matches!(gone, StoreError::NotFound(ref w) if w == "node run-1"),
        "{gone:?}"
    );
    assert_eq!(store.nodes().await.unwrap().len(), 1);
}

pub async fn the_queue_is_claimed_oldest_first_and_counted_per_pipeline(fx: &Fixture) {
    let store = fx.open().await;
    let runs: Vec<NewRun> = ["a", "b", "a", "a", "c"]
        .iter()
        .map(|p| new_run(p, Trigger::Manual, None))
        .collect();
    store
        .apply(runs.iter().cloned().map(Write::InsertRun).collect())
        .await
        .unwrap();
    let first = store.claim_next("n1", at(1), &[]).await.unwrap().unwrap();
    assert_eq!(
        (first.id, first.status, first.node.as_deref()),
        (runs[0].id, RunStatus::Running, Some("n1"))
    );
    assert_eq!(first.started_at, Some(at(1)));
    // `a` is at its limit: the next claims pass over it.
    let full = vec!["a".to_owned()];
    assert_eq!(
        store
            .claim_next("n1", at(2), &full)
            .await
            .unwrap()
            .unwrap()
            .id,
        runs[1].id
    );
    assert_eq!(
        store
            .claim_next("n1", at(2), &full)
            .await
            .unwrap()
            .unwrap()
            .id,
        runs[4].id
    );
    assert!(
        store
            .claim_next("n1", at(2), &full)
            .await
            .unwrap()
            .is_none()
    );
    let open = store.open_runs().await.unwrap();
    assert_eq!(
        open.get("a"),
        Some(&OpenRuns {
            queued: 2,
            running: 1
        })
    );
    assert_eq!(
        open.get("b"),
        Some(&OpenRuns {
            queued: 0,
            running: 1
        })
    );
    assert_eq!(open.get("d"), None);
}

pub async fn nodes_never_claim_the_same_run(fx: &Fixture) {
    let first = fx.open().await;
    let runs: Vec<NewRun> = (0..40)
        .map(|i| new_run(&format!("p{}", i % 5), Trigger::Manual, None))
        .collect();
    first
        .apply(runs.iter().cloned().map(Write::InsertRun).collect())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let store: Arc<dyn Store> = fx.open().await.into();
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{n}");
            let mut mine = Vec::new();
            while let Some(run) = store.claim_next(&node, at(1), &[]).await.unwrap() {
                assert_eq!(run.node.as_deref(), Some(node.as_str()));
                mine.push(run.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed.sort();
    let mut expected: Vec<RunId> = runs.iter().map(|r| r.id).collect();
    expected.sort();
    assert_eq!(claimed, expected, "every run claimed exactly once");
}

pub async fn runs_of_dead_nodes_are_found_and_closed_as_interrupted(fx: &Fixture) {
    let store = fx.open().await;
    let node = |id: &str, expires: i64| Node {
        id: id.into(),
        kind: "serve".into(),
        host: "h".into(),
        pid: 1,
        started_at: at(0),
        renewed_at: at(0),
        expires_at: at(expires),
    };
    store.register_node(&node("alive", 10)).await.unwrap();
    store.register_node(&node("expired", 2)).await.unwrap();
    let mut ids = Vec::new();
    for n in ["alive", "expired", "vanished"] {
        let r = new_run("p", Trigger::Manual, None);
        ids.push(r.id);
        store
            .apply(vec![
                Write::InsertRun(r.clone()),
                Write::StartRun {
                    id: r.id,
                    at: at(1),
                    node: Some(n.into()),
                },
                Write::PutStage(stage(r.id, "s", 1, StageStatus::Running, 1)),
            ])
            .await
            .unwrap();
    }
    // A heartbeat's run, opened by its `/start` ping: no node runs it, so none can die under it.
    let pinged = new_run("hb", Trigger::External, None);
    store
        .apply(vec![
            Write::InsertRun(pinged.clone()),
            Write::StartRun {
                id: pinged.id,
                at: at(1),
                node: None,
            },
        ])
        .await
        .unwrap();
    let orphaned: Vec<RunId> = store
        .orphaned(at(5))
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        orphaned,
        [ids[1], ids[2]],
        "neither the run of the live node nor a run without a node is an orphan"
    );
    // One minute before its expiry, the expired node was still alive.
    assert_eq!(store.orphaned(at(1)).await.unwrap().len(), 1);
    store
        .apply(vec![Write::FinishRun(RunEnd {
            id: ids[1],
            status: RunStatus::Interrupted,
            at: at(6),
            reason: Some("its node stopped".into()),
            error_stage: None,
            error_message: None,
        })])
        .await
        .unwrap();
    let d = store.run_detail(ids[1]).await.unwrap();
    assert_eq!(d.run.status, RunStatus::Interrupted);
    assert_eq!(
        d.stages[0].status,
        StageStatus::Interrupted,
        "its running stage is closed too"
    );
    assert_eq!(d.stages[0].finished_at, Some(at(6)));
    let removed = store.remove_expired_nodes(at(5)).await.unwrap();
    assert_eq!(
        removed.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["expired"]
    );
    assert_eq!(store.nodes().await.unwrap().len(), 1);
}

pub async fn a_run_can_be_asked_to_stop(fx: &Fixture) {
    let store = fx.open().await;
    let mine = new_run("p", Trigger::Manual, None);
    let other = new_run("p", Trigger::Manual, None);
    for (r, node) in [(&mine, "me"), (&other, "you")] {
        store
            .apply(vec![
                Write::InsertRun(r.clone()),
                Write::StartRun {
                    id: r.id,
                    at: at(1),
                    node: Some(node.into()),
                },
            ])
            .await
            .unwrap();
    }
    assert!(store.cancel_requests("me").await.unwrap().is_empty());
    store
        .apply(vec![Write::RequestCancel { id: mine.id }])
        .await
        .unwrap();
    assert_eq!(store.cancel_requests("me").await.unwrap(), [mine.id]);
    assert!(store.cancel_requests("you").await.unwrap().is_empty());
    assert!(store.run(mine.id).await.unwrap().cancel_requested);
    store
        .apply(vec![Write::FinishRun(RunEnd {
            id: mine.id,
            status: RunStatus::Cancelled,
            at: at(2),
            reason: None,
            error_stage: None,
            error_message: None,
        })])
        .await
        .unwrap();
    let late = store
        .apply(vec![Write::RequestCancel { id: mine.id }])
        .await
        .unwrap_err();
    assert!(matches!(late, StoreError::Conflict(_)), "{late:?}");
}

pub async fn pipelines_pause_and_resume(fx: &Fixture) {
    let store = fx.open().await;
    let rec = PipelineRecord {
        name: "p".into(),
        definition_hash: "h".into(),
        description: None,
        timezone: "UTC".into(),
    };
    store
        .sync_pipelines(std::slice::from_ref(&rec), at(0))
        .await
        .unwrap();
    store
        .apply(vec![Write::SetPaused {
            pipeline: "p".into(),
            paused: true,
        }])
        .await
        .unwrap();
    assert!(store.pipelines().await.unwrap()[0].paused);
    assert_eq!(store.paused_pipelines().await.unwrap(), ["p"]);
    // A new configuration does not undo an operator's pause.
    store.sync_pipelines(&[rec], at(1)).await.unwrap();
    assert!(store.pipelines().await.unwrap()[0].paused);
    store
        .apply(vec![Write::SetPaused {
            pipeline: "p".into(),
            paused: false,
        }])
        .await
        .unwrap();
    assert!(!store.pipelines().await.unwrap()[0].paused);
    assert!(store.paused_pipelines().await.unwrap().is_empty());
    let err = store
        .apply(vec![Write::SetPaused {
            pipeline: "nope".into(),
            paused: true,
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref w) if w == "pipeline nope"),
        "{err:?}"
    );
}

pub async fn ticks_remember_the_latest_and_lags_are_kept(fx: &Fixture) {
    let store = fx.open().await;
    let mut late = new_run("p", Trigger::Scheduled, Some(at(10)));
    late.status = RunStatus::Skipped;
    late.reason = Some("overlap".into());
    let parent = new_run("p", Trigger::Scheduled, Some(at(5)));
    let mut child = new_run("q", Trigger::Chained, None);
    child.parent = Some(parent.id);
    store
        .apply(vec![
            Write::InsertRun(parent.clone()),
            Write::InsertRun(late),
            Write::InsertRun(new_run("q", Trigger::Scheduled, Some(at(3)))),
            Write::InsertRun(child.clone()),
            Write::SetLag {
                id: parent.id,
                lag_ms: 3,
            },
        ])
        .await
        .unwrap();
    let ticks = store.last_ticks().await.unwrap();
    assert_eq!(ticks.get("p"), Some(&at(10)));
    assert_eq!(ticks.get("q"), Some(&at(3)));
    assert_eq!(store.run(parent.id).await.unwrap().lag_ms, Some(3));
    assert_eq!(store.run(child.id).await.unwrap().parent, Some(parent.id));
}
