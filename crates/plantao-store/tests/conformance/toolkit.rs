//! The operations toolkit's records: pipelines' state, runs' input files, backfill checkpoints
//! and the options a queued run keeps.

use chrono::NaiveDate;
use plantao_model::Trigger;
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
