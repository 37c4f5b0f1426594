//! The operations toolkit's records: pipelines' state, runs' input files, backfill checkpoints
//! and the options a queued run keeps.

use chrono::NaiveDate;
use plantao_model::Trigger;
use plantao_store::backup;
use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

fn input(path: &str, sha: &str) -> InputFile {
    InputFile {
        path: path.into(),
        sha256: sha.repeat(64),
        bytes: 10,
    }
}

pub async fn pipeline_state_is_set_replaced_and_removed(fx: &Fixture) {
    let store = fx.open().await;
    let run = new_run("ingest", Trigger::Manual, None);
    let id = run.id;
    store
        .apply(vec![
            Write::InsertRun(run),
            Write::SetState {
                pipeline: "ingest".into(),
                key: "watermark".into(),
                value: Some("2024-01-01".into()),
                at: at(1),
                run: Some(id),
            },
            Write::SetState {
                pipeline: "ingest".into(),
                key: "cursor".into(),
                value: Some("a\nb".into()),
                at: at(1),
                run: None,
            },
            Write::SetState {
                pipeline: "other".into(),
                key: "watermark".into(),
                value: Some("x".into()),
                at: at(1),
                run: None,
            },
        ])
        .await
        .unwrap();
    let set = store.state("ingest").await.unwrap();
    assert_eq!(
        set.iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.updated_at, e.run_id))
            .collect::<Vec<_>>(),
        [
            ("cursor", "a\nb", at(1), None),
            ("watermark", "2024-01-01", at(1), Some(id)),
        ]
    );
    store
        .apply(vec![
            Write::SetState {
                pipeline: "ingest".into(),
                key: "watermark".into(),
                value: Some("2024-02-01".into()),
                at: at(2),
                run: None,
            },
            Write::SetState {
                pipeline: "ingest".into(),
                key: "cursor".into(),
                value: None,
                at: at(2),
                run: None,
            },
        ])
        .await
        .unwrap();
    let state = store.state("ingest").await.unwrap();
    assert_eq!(
        state,
        vec![StateEntry {
            key: "watermark".into(),
            value: "2024-02-01".into(),
            updated_at: at(2),
            run_id: None,
        }]
    );
    assert_eq!(store.state("other").await.unwrap()[0].value, "x");
    assert!(store.state("nobody").await.unwrap().is_empty());
}

pub async fn inputs_are_kept_per_run_and_the_last_success_is_replaced(fx: &Fixture) {
    let store = fx.open().await;
    let first = new_run("ingest", Trigger::Manual, None);
    let second = new_run("ingest", Trigger::Manual, None);
    let (a, b) = (first.id, second.id);
    store
        .apply(vec![
            Write::InsertRun(first),
            Write::InsertRun(second),
            Write::PutInputs {
                run: a,
                inputs: vec![input("b.csv", "1"), input("a.xlsx", "2")],
            },
            Write::SetLastInputs {
                pipeline: "ingest".into(),
                run: a,
                inputs: vec![input("b.csv", "1"), input("a.xlsx", "2")],
            },
            Write::PutInputs {
                run: b,
                inputs: vec![input("a.xlsx", "3")],
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store.run_detail(a).await.unwrap().inputs,
        vec![input("a.xlsx", "2"), input("b.csv", "1")]
    );
    assert_eq!(
        store.last_inputs("ingest").await.unwrap(),
        vec![input("a.xlsx", "2"), input("b.csv", "1")]
    );
    store
        .apply(vec![Write::SetLastInputs {
            pipeline: "ingest".into(),
            run: b,
            inputs: vec![input("a.xlsx", "3")],
        }])
        .await
        .unwrap();
    assert_eq!(
        store.last_inputs("ingest").await.unwrap(),
        vec![input("a.xlsx", "3")]
    );
    // Inputs of a run that does not exist are refused with the batch.
    let ghost = new_run("ingest", Trigger::Manual, None).id;
    assert!(
        store
            .apply(vec![Write::PutInputs {
                run: ghost,
                inputs: vec![input("a.xlsx", "4")],
            }])
            .await
            .is_err()
    );
}

pub async fn checkpoints_and_run_options_round_trip(fx: &Fixture) {
    let store = fx.open().await;
    let period = Period {
        start: day("2024-01-01"),
        end: day("2024-01-31"),
    };
    let run = NewRun {
        period: Some(period),
        force: true,
        ..new_run("ingest", Trigger::Backfill, None)
    };
    let id = run.id;
    store.apply(vec![Write::InsertRun(run)]).await.unwrap();
    let stored = store.run(id).await.unwrap();
    assert_eq!(stored.period, Some(period));
    assert!(stored.force);
    let claimed = store.claim_next("n1", at(1), &[]).await.unwrap().unwrap();
    assert_eq!((claimed.period, claimed.force), (Some(period), true));
    let later = Period {
        start: day("2024-02-01"),
        end: day("2024-02-29"),
    };
    for (p, minute) in [(later, 2), (period, 3), (period, 4)] {
        store
            .apply(vec![Write::Checkpoint(Checkpoint {
                pipeline: "ingest".into(),
                period: p,
                run_id: id,
                at: at(minute),
            })])
            .await
            .unwrap();
    }
    let marks = store.checkpoints("ingest").await.unwrap();
    assert_eq!(
        marks.iter().map(|c| (c.period, c.at)).collect::<Vec<_>>(),
        vec![(period, at(4)), (later, at(2))]
    );
    assert!(store.checkpoints("other").await.unwrap().is_empty());
}

/// Everything a run has, to compare two databases by.
async fn everything(store: &dyn Store) -> Vec<RunDetail> {
    let runs = store
        .runs(&RunFilter {
            limit: 10_000,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for r in runs {
        out.push(store.run_detail(r.id).await.unwrap());
    }
    out
}

fn finished_run(pipeline: &str, i: i64) -> Vec<Write> {
    let run = new_run(pipeline, Trigger::Manual, None);
    let id = run.id;
    vec![
        Write::InsertRun(run),
        Write::StartRun {
            id,
            at: at(i),
            node: None,
        },
        Write::PutStage(stage(
            id,
            "load",
            1,
            plantao_model::StageStatus::Succeeded,
            i,
        )),
        Write::PutCounter(Counter {
            run_id: id,
            step: "load".into(),
            name: "rows".into(),
            value: 40.0 + i as f64,
        }),
        Write::FinishRun(RunEnd {
            id,
            status: plantao_model::RunStatus::Succeeded,
            at: at(i + 1),
            reason: None,
            error_stage: None,
            error_message: None,
        }),
    ]
}

pub async fn a_backup_taken_while_writing_restores_into_an_empty_database(fx: &Fixture) {
    let store: std::sync::Arc<dyn Store> = fx.open().await.into();
    store
        .sync_pipelines(
            &[PipelineRecord {
                name: "ingest".into(),
                definition_hash: "h".into(),
                description: None,
                timezone: "America/Sao_Paulo".into(),
            }],
            at(0),
        )
        .await
        .unwrap();
    for i in 0..20 {
        store.apply(finished_run("ingest", i)).await.unwrap();
    }
    // Writes go on while the copy is made.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 20..60 {
                store.apply(finished_run("ingest", i)).await.unwrap();
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(format!("copy.{}", backup::extension(fx.backend)));
    let checked = backup::backup(&fx.url, &file).await.unwrap();
    writer.await.unwrap();
    assert!(checked.bytes > 0);
    if let Some(runs) = checked.runs {
        assert!((20..=60).contains(&runs), "{runs}");
    }

    let Some(target) = Fixture::new(fx.backend).await else {
        return;
    };
    let restored = backup::restore(&target.url, &file, false).await;
    let copy = target.open().await;
    let result = async {
        restored.unwrap();
        let source = everything(store.as_ref()).await;
        let copied = everything(copy.as_ref()).await;
        assert!(copied.len() >= 20, "{}", copied.len());
        for run in &copied {
            let same = source.iter().find(|s| s.run.id == run.run.id).unwrap();
            assert_eq!(
                run, same,
                "a run is copied whole: stages, counters, outputs"
            );
        }
        assert_eq!(copy.pipelines().await.unwrap().len(), 1);
        // Over a database that holds something: refused unless forced.
        let again = backup::restore(&target.url, &file, false)
            .await
            .unwrap_err();
        assert!(again.to_string().contains("pass --force"), "{again}");
        backup::restore(&target.url, &file, true).await.unwrap();
        // A live node on it: refused even when forced (opened anew: on SQLite the forced
        // restore replaced the file under `copy`, as it would under a running serve).
        let live = target.open().await;
        live.register_node(&Node {
            id: "n1".into(),
            kind: "serve".into(),
            host: "h".into(),
            pid: 1,
            started_at: chrono::Utc::now(),
            renewed_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
        })
        .await
        .unwrap();
        let busy = backup::restore(&target.url, &file, true).await.unwrap_err();
        assert!(
            busy.to_string().contains("stop plantao there first"),
            "{busy}"
        );
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await;
    copy.close().await;
    target.cleanup().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

pub async fn a_damaged_backup_is_refused_before_anything_changes(fx: &Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir
        .path()
        .join(format!("junk.{}", backup::extension(fx.backend)));
    std::fs::write(&file, "not a database at all").unwrap();
    let err = backup::restore(&fx.url, &file, true).await.unwrap_err();
    assert!(err.to_string().contains("not a readable plantao"), "{err}");
}

pub async fn the_last_success_is_the_latest_succeeded_finish(fx: &Fixture) {
    let store = fx.open().await;
    assert_eq!(store.last_success_at("ingest").await.unwrap(), None);
    store.apply(finished_run("ingest", 5)).await.unwrap();
    store.apply(finished_run("ingest", 1)).await.unwrap();
    store.apply(finished_run("other", 9)).await.unwrap();
    let failed = new_run("ingest", Trigger::Manual, None);
    let id = failed.id;
    store
        .apply(vec![
            Write::InsertRun(failed),
            Write::FinishRun(RunEnd {
                id,
                status: plantao_model::RunStatus::Failed,
                at: at(20),
                reason: None,
                error_stage: None,
                error_message: None,
            }),
            Write::InsertRun(new_run("ingest", Trigger::Manual, None)),
        ])
        .await
        .unwrap();
    assert_eq!(store.last_success_at("ingest").await.unwrap(), Some(at(6)));
}
