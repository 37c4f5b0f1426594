//! Runs, stages, counters, ticks and pipelines: the records every backend keeps.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use plantao_model::{RunId, RunStatus, StageStatus, Trigger};
use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

pub async fn migrations_are_idempotent_and_a_newer_schema_is_refused(fx: &Fixture) {
    let store = fx.open().await;
    store
        .apply(vec![Write::InsertRun(new_run("p", Trigger::Manual, None))])
        .await
        .unwrap();
    store.close().await;
    let again = fx.open().await;
    assert_eq!(
        again
            .runs(&RunFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
    again.close().await;

    fx.set_schema_version(99).await;
    let err = open(&fx.url).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                known: 14
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("written by a newer plantao"),
        "{err}"
    );
}

pub async fn a_run_round_trips_field_for_field(fx: &Fixture) {
    let store = fx.open().await;
    let mut run = new_run("biz-reports", Trigger::Scheduled, Some(at(60)));
    run.params = BTreeMap::from([
        ("batch".into(), "40".into()),
        ("nota".into(), "ção $(x)".into()),
    ]);
    run.queued_at = at(60) + Duration::microseconds(123_456);
    run.node = Some("node-a".into());
    store
        .apply(vec![Write::InsertRun(run.clone())])
        .await
        .unwrap();
    let got = store.run(run.id).await.unwrap();
    assert_eq!(got.id, run.id);
    assert_eq!(got.pipeline, "biz-reports");
    assert_eq!(got.trigger, Trigger::Scheduled);
    assert_eq!(got.scheduled_for, Some(at(60)));
    assert_eq!(got.params, run.params);
    assert_eq!(got.status, RunStatus::Queued);
    assert_eq!(got.queued_at, run.queued_at, "microseconds are kept");
    assert_eq!(got.node.as_deref(), Some("node-a"));
    assert_eq!(
        (got.started_at, got.finished_at, got.duration_ms),
        (None, None, None)
    );
}

pub async fn an_unknown_run_is_not_found(fx: &Fixture) {
    let store = fx.open().await;
    let id = RunId::new();
    assert!(matches!(store.run(id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.run_detail(id).await,
        Err(StoreError::NotFound(_))
    ));
    let err = store
        .apply(vec![Write::PutStage(stage(
            id,
            "a",
            1,
            StageStatus::Running,
            0,
        ))])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref what) if what.contains(&id.to_string())),
        "{err:?}"
    );
    let err = store
        .apply(vec![Write::StartRun {
            id,
            at: at(0),
            node: None,
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn a_tick_gets_exactly_one_run(fx: &Fixture) {
    let store = fx.open().await;
    let first = new_run("p", Trigger::Scheduled, Some(at(0)));
    let again = new_run("p", Trigger::Scheduled, Some(at(0)));
    let other_pipeline = new_run("q", Trigger::Scheduled, Some(at(0)));
    let next_tick = new_run("p", Trigger::Scheduled, Some(at(1)));
    let applied = store
        .apply(vec![
            Write::InsertRun(first.clone()),
            Write::InsertRun(again.clone()),
            Write::InsertRun(other_pipeline),
            Write::InsertRun(next_tick),
        ])
        .await
        .unwrap();
    assert_eq!(
        applied,
        [
            Applied::Inserted,
            Applied::Duplicate,
            Applied::Inserted,
            Applied::Inserted
        ]
    );
    // A restart trying the same tick again changes nothing.
    let retry = store
        .apply(vec![Write::InsertRun(new_run(
            "p",
            Trigger::Catchup,
            Some(at(0)),
        ))])
        .await
        .unwrap();
    assert_eq!(retry, [Applied::Duplicate]);
    assert!(matches!(
        store.run(again.id).await,
        Err(StoreError::NotFound(_))
    ));
    // Manual runs have no tick: any number of them.
    let manual = store
        .apply(vec![
            Write::InsertRun(new_run("p", Trigger::Manual, None)),
            Write::InsertRun(new_run("p", Trigger::Manual, None)),
        ])
        .await
        .unwrap();
    assert_eq!(manual, [Applied::Inserted, Applied::Inserted]);
    let all = store
        .runs(&RunFilter {
            pipeline: Some("p".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
}

pub async fn concurrent_nodes_create_a_tick_once(fx: &Fixture) {
    // Eight stores on one database, as eight nodes would be, all racing for the same ticks.
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(Arc::<dyn Store>::from(fx.open().await));
    }
    let mut tasks = Vec::new();
    for store in &stores {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut inserted = 0;
            for tick in 0..20 {
                let r = new_run("race", Trigger::Scheduled, Some(at(tick)));
                if store.apply(vec![Write::InsertRun(r)]).await.unwrap() == [Applied::Inserted] {
                    inserted += 1;
                }
            }
            inserted
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 20);
    let runs = stores[0]
        .runs(&RunFilter {
            pipeline: Some("race".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 20);
}

pub async fn a_run_lives_through_its_stages(fx: &Fixture) {
    let store = fx.open().await;
    let run = new_run("biz-reports", Trigger::Manual, None);
    let id = run.id;
    store
        .apply(vec![
            Write::InsertRun(run),
            Write::StartRun {
                id,
                at: at(1),
                node: Some("n1".into()),
            },
        ])
        .await
        .unwrap();
    let started = store.run(id).await.unwrap();
    assert_eq!(
        (started.status, started.started_at),
        (RunStatus::Running, Some(at(1)))
    );

    // The first attempt of `process` fails, the second succeeds; `sync` runs before.
    let mut sync = stage(id, "sync", 1, StageStatus::Running, 1);
    store
        .apply(vec![Write::PutStage(sync.clone())])
        .await
        .unwrap();
    sync.status = StageStatus::Succeeded;
    sync.finished_at = Some(at(2));
    sync.duration_ms = Some(60_000);
    sync.exit_code = Some(0);
    sync.log = "synced\n".repeat(1000);
    sync.cpu_user_ms = Some(12);
    sync.cpu_system_ms = Some(3);
    sync.peak_rss_kb = Some(4096);
    let mut failed = stage(id, "process", 1, StageStatus::Failed, 2);
    failed.exit_code = Some(3);
    failed.error = Some("exit code 3".into());
    let mut ok = stage(id, "process", 2, StageStatus::Succeeded, 3);
    ok.exit_code = Some(0);
    store
        .apply(vec![
            Write::PutStage(sync.clone()),
            Write::PutCounter(Counter {
                run_id: id,
                step: "sync".into(),
                name: "novos".into(),
                value: 12.0,
            }),
            Write::PutOutput(Output {
                run_id: id,
                step: "sync".into(),
                key: "novos".into(),
                value: "12".into(),
            }),
            Write::PutStage(failed.clone()),
            Write::PutStage(ok.clone()),
            Write::PutCounter(Counter {
                run_id: id,
                step: "process".into(),
                name: "approved".into(),
                value: 0.1,
            }),
            Write::PutCounter(Counter {
                run_id: id,
                step: "process".into(),
                name: "approved".into(),
                value: 40.5,
            }),
            Write::PutOutput(Output {
                run_id: id,
                step: "process".into(),
                key: "note".into(),
                value: "tudo certo ✓".into(),
            }),
        ])
        .await
        .unwrap();

    // Mid-run, a reader sees what has finished so far.
    let mid = store.run_detail(id).await.unwrap();
    assert_eq!(mid.run.status, RunStatus::Running);
    assert_eq!(mid.stages.len(), 3);

    store
        .apply(vec![Write::FinishRun(RunEnd {
            id,
            status: RunStatus::Partial,
            at: at(4) + Duration::milliseconds(250),
            reason: None,
            error_stage: Some("process".into()),
            error_message: Some("exit code 3".into()),
        })])
        .await
        .unwrap();
    let d = store.run_detail(id).await.unwrap();
    assert_eq!(d.run.status, RunStatus::Partial);
    assert_eq!(d.run.finished_at, Some(at(4) + Duration::milliseconds(250)));
    assert_eq!(d.run.duration_ms, Some(3 * 60_000 + 250));
    assert_eq!(d.run.error_stage.as_deref(), Some("process"));
    assert_eq!(d.run.node.as_deref(), Some("n1"));
    assert_eq!(d.stages, vec![sync, failed, ok]);
    let counters: Vec<(&str, &str, f64)> = d
        .counters
        .iter()
        .map(|c| (c.step.as_str(), c.name.as_str(), c.value))
        .collect();
    assert_eq!(
        counters,
        [("process", "approved", 40.5), ("sync", "novos", 12.0)]
    );
    let outputs: Vec<(&str, &str)> = d
        .outputs
        .iter()
        .map(|o| (o.key.as_str(), o.value.as_str()))
        .collect();
    assert_eq!(outputs, [("note", "tudo certo ✓"), ("novos", "12")]);

    // Findings: kept by step, attempt and line; the same one again changes nothing.
    let finding = |step: &str, line, pattern: &str| Finding {
        run_id: id,
        step: step.into(),
        attempt: 1,
        line,
        pattern: pattern.into(),
        severity: plantao_model::Severity::Critical,
        excerpt: format!("linha {line}: Emergência ✓"),
    };
    let (late, early) = (
        finding("sync", 7, "urgent"),
        finding("process", 2, "urgent"),
    );
    store
        .apply(vec![
            Write::PutFinding(late.clone()),
            Write::PutFinding(early.clone()),
            Write::PutFinding(late.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.run_detail(id).await.unwrap().findings, [early, late]);

    // In a list: the same stages without their logs and the same counters, read in one pass;
    // an unknown run is absent.
    let unknown = RunId::new();
    let briefs = store.run_briefs(&[id, unknown]).await.unwrap();
    assert_eq!(briefs.len(), 1);
    let brief = &briefs[&id];
    let no_logs: Vec<_> = d
        .stages
        .iter()
        .map(|s| Stage {
            log: String::new(),
            ..s.clone()
        })
        .collect();
    assert_eq!(brief.stages, no_logs);
    assert_eq!(brief.counters, d.counters);
    assert!(store.run_briefs(&[]).await.unwrap().is_empty());
}

pub async fn transitions_out_of_order_are_conflicts(fx: &Fixture) {
    let store = fx.open().await;
    let run = new_run("p", Trigger::Manual, None);
    let id = run.id;
    let end = |status| {
        Write::FinishRun(RunEnd {
            id,
            status,
            at: at(2),
            reason: None,
            error_stage: None,
            error_message: None,
        })
    };
    store
        .apply(vec![
            Write::InsertRun(run),
            Write::StartRun {
                id,
                at: at(1),
                node: None,
            },
        ])
        .await
        .unwrap();
    let twice = store
        .apply(vec![Write::StartRun {
            id,
            at: at(1),
            node: None,
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(twice, StoreError::Conflict(ref m) if m.contains("is running")),
        "{twice:?}"
    );
    store.apply(vec![end(RunStatus::Succeeded)]).await.unwrap();
    let again = store.apply(vec![end(RunStatus::Failed)]).await.unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict(ref m) if m.contains("is succeeded")),
        "{again:?}"
    );
    assert_eq!(store.run(id).await.unwrap().status, RunStatus::Succeeded);

    // A queued run may end without starting (cancelled before it ran): no duration then.
    let queued = new_run("p", Trigger::Manual, None);
    let qid = queued.id;
    store.apply(vec![Write::InsertRun(queued)]).await.unwrap();
    store
        .apply(vec![Write::FinishRun(RunEnd {
            id: qid,
            status: RunStatus::Cancelled,
            at: at(3),
            reason: Some("cancelled by operator".into()),
            error_stage: None,
            error_message: None,
        })])
        .await
        .unwrap();
    let c = store.run(qid).await.unwrap();
    assert_eq!(
        (c.status, c.duration_ms, c.reason.as_deref()),
        (RunStatus::Cancelled, None, Some("cancelled by operator"))
    );
}

pub async fn a_batch_is_all_or_nothing(fx: &Fixture) {
    let store = fx.open().await;
    let good = new_run("p", Trigger::Manual, None);
    let missing = RunId::new();
    let err = store
        .apply(vec![
            Write::InsertRun(good.clone()),
            Write::PutCounter(Counter {
                run_id: good.id,
                step: "a".into(),
                name: "n".into(),
                value: 1.0,
            }),
            Write::StartRun {
                id: missing,
                at: at(0),
                node: None,
            },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        matches!(store.run(good.id).await, Err(StoreError::NotFound(_))),
        "the batch left a run behind"
    );
    // The store is still usable after a failed batch.
    store
        .apply(vec![Write::InsertRun(good.clone())])
        .await
        .unwrap();
    assert!(store.run_detail(good.id).await.unwrap().counters.is_empty());
}

pub async fn runs_list_newest_first_with_filters_and_pages(fx: &Fixture) {
    let store = fx.open().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let pipeline = if i % 2 == 0 { "even" } else { "odd" };
        let trigger = if i == 6 {
            Trigger::Api
        } else {
            Trigger::Manual
        };
        let r = new_run(pipeline, trigger, None);
        ids.push(r.id);
        store.apply(vec![Write::InsertRun(r)]).await.unwrap();
    }
    store
        .apply(vec![Write::StartRun {
            id: ids[2],
            at: at(1),
            node: None,
        }])
        .await
        .unwrap();
    let list = |f: RunFilter| {
        let store = &store;
        async move {
            store
                .runs(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    let newest: Vec<RunId> = ids.iter().rev().copied().collect();
    assert_eq!(
        list(RunFilter {
            limit: 100,
            ..Default::default()
        })
        .await,
        newest
    );
    assert_eq!(
        list(RunFilter {
            limit: 3,
            ..Default::default()
        })
        .await,
        newest[..3]
    );
    assert_eq!(
        list(RunFilter {
            limit: 3,
            before: Some(newest[2]),
            ..Default::default()
        })
        .await,
        newest[3..6]
    );
    assert_eq!(
        list(RunFilter {
            pipeline: Some("odd".into()),
            limit: 100,
            ..Default::default()
        })
        .await,
        [ids[5], ids[3], ids[1]]
    );
    assert_eq!(
        list(RunFilter {
            status: Some(RunStatus::Running),
            limit: 100,
            ..Default::default()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(RunFilter {
            trigger: Some(Trigger::Api),
            limit: 100,
            ..Default::default()
        })
        .await,
        [ids[6]]
    );
    assert!(
        list(RunFilter {
            pipeline: Some("none".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // The newest run of each pipeline the store knows, in one read; a known pipeline without
    // runs is absent.
    let rec = |name: &str| PipelineRecord {
        name: name.into(),
        definition_hash: "h".into(),
        description: None,
        timezone: "UTC".into(),
    };
    store
        .sync_pipelines(&[rec("even"), rec("odd"), rec("idle")], at(2))
        .await
        .unwrap();
    let latest = store.latest_runs().await.unwrap();
    let got: Vec<(&str, RunId)> = latest.iter().map(|(k, r)| (k.as_str(), r.id)).collect();
    assert_eq!(got, [("even", ids[6]), ("odd", ids[5])]);
    assert_eq!(latest["even"], store.run(ids[6]).await.unwrap());
}

pub async fn pipelines_follow_the_configuration(fx: &Fixture) {
    let store = fx.open().await;
    let rec = |name: &str, hash: &str| PipelineRecord {
        name: name.into(),
        definition_hash: hash.into(),
        description: Some(format!("{name} pipeline")),
        timezone: "UTC".into(),
    };
    store
        .sync_pipelines(&[rec("a", "h1"), rec("b", "h1")], at(0))
        .await
        .unwrap();
    store
        .sync_pipelines(&[rec("a", "h1"), rec("c", "h1")], at(5))
        .await
        .unwrap();
    store
        .sync_pipelines(&[rec("a", "h2"), rec("c", "h1")], at(9))
        .await
        .unwrap();
    let got = store.pipelines().await.unwrap();
    type Row<'a> = (&'a str, &'a str, bool, DateTime<Utc>, DateTime<Utc>);
    let summary: Vec<Row> = got
        .iter()
        .map(|p| {
            (
                p.record.name.as_str(),
                p.record.definition_hash.as_str(),
                p.active,
                p.first_seen,
                p.updated_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a", "h2", true, at(0), at(9)),
            ("b", "h1", false, at(0), at(0)),
            ("c", "h1", true, at(5), at(5)),
        ]
    );
}

pub async fn everything_survives_a_reopen(fx: &Fixture) {
    let store = fx.open().await;
    let run = new_run("p", Trigger::Manual, None);
    let id = run.id;
    store
        .apply(vec![
            Write::InsertRun(run),
            Write::StartRun {
                id,
                at: at(1),
                node: None,
            },
            Write::PutStage(stage(id, "a", 1, StageStatus::Running, 1)),
        ])
        .await
        .unwrap();
    drop(store);
    let reopened = fx.open().await;
    let d = reopened.run_detail(id).await.unwrap();
    assert_eq!(
        d.run.status,
        RunStatus::Running,
        "a run cut off mid-way shows as running"
    );
    assert_eq!(d.stages.len(), 1);
}
