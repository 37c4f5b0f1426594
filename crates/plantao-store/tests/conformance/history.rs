//! History that lasts: rollups added up as runs finish, pruning of raw runs, and single-owner
//! tasks.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use plantao_model::{RunId, RunStatus, Trigger};
use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

fn sao_paulo() -> Tz {
    "America/Sao_Paulo".parse().unwrap()
}

/// A run id made at `t`, as if the run had been queued then (the tail is a counter, so ids made
/// at one instant stay distinct and ordered).
fn id_at(t: DateTime<Utc>, n: u64) -> RunId {
    RunId::from_millis(u64::try_from(t.timestamp_millis()).unwrap(), n)
}

async fn sync(store: &dyn Store, zone: &str) {
    let rec = PipelineRecord {
        name: "report".into(),
        definition_hash: "h".into(),
        description: None,
        timezone: zone.into(),
    };
    store
        .sync_pipelines(std::slice::from_ref(&rec), at(0))
        .await
        .unwrap();
}

/// One run of `report`, due at `due`, that lasted `ms` milliseconds and ended `status`, with
/// its counters.
fn finished(
    n: u64,
    due: DateTime<Utc>,
    ms: i64,
    status: RunStatus,
    counters: &[(&str, &str, f64)],
) -> Vec<Write> {
    let id = id_at(due, n);
    let mut writes = vec![
        Write::InsertRun(NewRun {
            id,
            scheduled_for: Some(due),
            queued_at: due,
            ..new_run("report", Trigger::Scheduled, None)
        }),
        Write::StartRun {
            id,
            at: due,
            node: Some("n1".into()),
        },
        Write::PutStage(Stage {
            cpu_user_ms: Some(7),
            cpu_system_ms: Some(3),
            ..stage(id, "send", 1, plantao_model::StageStatus::Succeeded, 0)
        }),
    ];
    writes.extend(counters.iter().map(|(step, name, value)| {
        Write::PutCounter(Counter {
            run_id: id,
            step: (*step).into(),
            name: (*name).into(),
            value: *value,
        })
    }));
    writes.push(Write::FinishRun(RunEnd {
        id,
        status,
        at: due + Duration::milliseconds(ms),
        reason: None,
        error_stage: None,
        error_message: None,
    }));
    writes
}

pub async fn finished_runs_add_up_by_hour_and_by_local_day(fx: &Fixture) {
    let store = fx.open().await;
    sync(store.as_ref(), "America/Sao_Paulo").await;
    // 2026-03-01 12:00 UTC is 09:00 in São Paulo (UTC−3); 02:30 UTC the next day is still
    // 23:30 of March 1st there.
    let morning = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let late = Utc.with_ymd_and_hms(2026, 3, 2, 2, 30, 0).unwrap();
    let mut writes = Vec::new();
    writes.extend(finished(
        1,
        morning,
        1_000,
        RunStatus::Succeeded,
        &[("send", "sent", 90.0), ("send", "total", 100.0)],
    ));
    writes.extend(finished(
        2,
        morning + Duration::minutes(20),
        3_000,
        RunStatus::Failed,
        &[("send", "sent", 10.0), ("send", "total", 50.0)],
    ));
    writes.extend(finished(
        3,
        late,
        2_000,
        RunStatus::Succeeded,
        &[("send", "total", 5.0)],
    ));
    writes.push(Write::InsertRun(NewRun {
        id: id_at(late, 4),
        status: RunStatus::Skipped,
        reason: Some("missed".into()),
        scheduled_for: Some(late + Duration::minutes(5)),
        queued_at: late + Duration::hours(3),
        ..new_run("report", Trigger::Scheduled, None)
    }));
    store.apply(writes).await.unwrap();

    let hours = store
        .rollups("report", Grain::Hour, morning, late + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|b| (b.start, b.summary.runs))
            .collect::<Vec<_>>(),
        [
            (morning, 2),
            (Utc.with_ymd_and_hms(2026, 3, 2, 2, 0, 0).unwrap(), 2)
        ]
    );
    let first = &hours[0].summary;
    assert_eq!(first.count("succeeded"), 1);
    assert_eq!(first.count("failed"), 1);
    assert_eq!(first.by_trigger["scheduled"], 2);
    assert_eq!(
        (first.timed_runs, first.duration_ms_sum),
        (2, 4_000),
        "{first:?}"
    );
    assert_eq!(first.duration_ms_max, Some(3_000));
    assert_eq!(first.cpu_ms, 20);
    assert_eq!(
        first.counters["send.sent"],
        CounterTotal {
            sum: 100.0,
            runs: 2
        }
    );
    assert_eq!(hours[1].summary.count("skipped"), 1);
    assert_eq!(
        hours[1].summary.timed_runs, 1,
        "a skipped run has no duration"
    );

    // One local day holds all four; its bucket starts at São Paulo's midnight.
    let local_midnight = Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap();
    let days = store
        .rollups(
            "report",
            Grain::Day,
            local_midnight - Duration::days(3),
            local_midnight + Duration::days(3),
        )
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].start, local_midnight);
    assert_eq!(days[0].summary.runs, 4);
    assert_eq!(days[0].summary.counters["send.total"].sum, 155.0);

    // Windows: "today" at 23:50 local holds the day; 24 h at 03:10 UTC slides over hours.
    let now = late + Duration::minutes(20);
    let today = store
        .summary("report", Window::Today, now, sao_paulo())
        .await
        .unwrap();
    assert_eq!(today, days[0].summary);
    assert_eq!(today.success_rate(), Some(2.0 / 3.0));
    let day_after = store
        .summary(
            "report",
            Window::Today,
            now + Duration::hours(1),
            sao_paulo(),
        )
        .await
        .unwrap();
    assert_eq!(
        day_after.runs, 0,
        "after local midnight, today starts empty"
    );
    let last_24h = store
        .summary("report", Window::Last24h, now, sao_paulo())
        .await
        .unwrap();
    assert_eq!(last_24h.runs, 4);
    let later = store
        .summary(
            "report",
            Window::Last24h,
            morning + Duration::hours(24),
            sao_paulo(),
        )
        .await
        .unwrap();
    assert_eq!(later.runs, 2, "the morning hour slid out of the last 24 h");
    let week = store
        .summary(
            "report",
            Window::Last7d,
            morning + Duration::days(6),
            sao_paulo(),
        )
        .await
        .unwrap();
    assert_eq!(week.runs, 4);

    // The same windows for several pipelines at once, without duration histograms.
    for (window, at) in [
        (Window::Today, now),
        (Window::Last24h, now),
        (Window::Last7d, now),
    ] {
        let (grain, from, to) = window.range(at, sao_paulo());
        let names = ["report".to_owned(), "other".to_owned()];
        let totals = store.totals(&names, grain, from, to).await.unwrap();
        assert_eq!(totals.len(), 1, "a pipeline without runs is absent");
        let whole = store
            .summary("report", window, at, sao_paulo())
            .await
            .unwrap();
        assert_eq!(
            totals["report"],
            Summary {
                durations: Histogram::default(),
                succeeded_durations: Histogram::default(),
                ..whole
            },
            "{window:?}"
        );
        // And bucket by bucket: each one as `rollups` reads it, histograms aside.
        let by_bucket = store.bucket_totals(&names, grain, from, to).await.unwrap();
        let buckets = store.rollups("report", grain, from, to).await.unwrap();
        assert!(!buckets.is_empty(), "{window:?}");
        assert_eq!(by_bucket.len(), buckets.len(), "{window:?}");
        for bucket in buckets {
            assert_eq!(
                by_bucket[&("report".to_owned(), bucket.start)],
                Summary {
                    durations: Histogram::default(),
                    succeeded_durations: Histogram::default(),
                    ..bucket.summary
                },
                "{window:?} at {}",
                bucket.start
            );
        }
    }
}

pub async fn percentiles_from_rollups_match_and_outlive_pruning(fx: &Fixture) {
    let store = fx.open().await;
    sync(store.as_ref(), "UTC").await;
    let start = Utc::now() - Duration::days(200);
    // 1,500 runs over two days, lasting from 1 ms to about 40 minutes, unevenly spread.
    let mut durations = Vec::new();
    let mut writes = Vec::new();
    for n in 0..1_500_i64 {
        let ms = 1 + (n * 7_919 % 1_500) * (n % 37 + 1) * (n % 3 * 20 + 1);
        durations.push(ms);
        let status = if n % 10 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        writes.extend(finished(
            u64::try_from(n).unwrap(),
            start + Duration::minutes(2 * n),
            ms,
            status,
            &[("load", "rows", 2.0)],
        ));
    }
    for chunk in writes.chunks(600) {
        store.apply(chunk.to_vec()).await.unwrap();
    }
    let ask = |grain| {
        let store = &store;
        async move {
            store
                .rollups("report", grain, start - Duration::days(2), Utc::now())
                .await
                .unwrap()
        }
    };
    let mut total = Summary::default();
    for bucket in ask(Grain::Hour).await {
        total.merge(&bucket.summary);
    }
    durations.sort_unstable();
    for q in [0.5, 0.9, 0.95, 0.99] {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let exact = durations[((q * durations.len() as f64).ceil() as usize).max(1) - 1] as f64;
        let estimate = total.durations.quantile(q).unwrap();
        assert!(
            (estimate - exact).abs() <= exact * 0.02,
            "p{}: {estimate} from rollups, {exact} exact",
            q * 100.0
        );
    }
    assert_eq!(total.runs, 1_500);
    assert_eq!(total.succeeded_durations.count(), 1_350);
    assert_eq!(total.counters["load.rows"].sum, 3_000.0);

    let hours_before = ask(Grain::Hour).await;
    let days_before = ask(Grain::Day).await;
    let mut pruned = 0;
    loop {
        let n = store.prune(Utc::now(), 400).await.unwrap();
        pruned += n;
        if n < 400 {
            break;
        }
    }
    assert_eq!(pruned, 1_500);
    let left = store
        .runs(&RunFilter {
            limit: 10,
            ..RunFilter::default()
        })
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(ask(Grain::Hour).await, hours_before);
    assert_eq!(ask(Grain::Day).await, days_before);
}

pub async fn pruning_keeps_open_and_recent_runs(fx: &Fixture) {
    let store = fx.open().await;
    let old = Utc::now() - Duration::days(100);
    let old_done = NewRun {
        id: id_at(old, 1),
        status: RunStatus::Skipped,
        ..new_run("p", Trigger::Scheduled, Some(old))
    };
    let old_queued = NewRun {
        id: id_at(old, 2),
        ..new_run("p", Trigger::Manual, None)
    };
    let recent = NewRun {
        status: RunStatus::Skipped,
        ..new_run("p", Trigger::Scheduled, Some(at(1)))
    };
    store
        .apply(
            [&old_done, &old_queued, &recent]
                .into_iter()
                .cloned()
                .map(Write::InsertRun)
                .collect(),
        )
        .await
        .unwrap();
    let cutoff = Utc::now() - Duration::days(90);
    assert_eq!(
        store.prunable(cutoff).await.unwrap(),
        Prunable {
            runs: 1,
            alerts: 0,
            notifications: 0
        },
        "a dry run counts what pruning takes"
    );
    assert_eq!(store.prune(cutoff, 100).await.unwrap(), 1);
    assert_eq!(store.prunable(cutoff).await.unwrap(), Prunable::default());
    assert!(matches!(
        store.run(old_done.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.run(old_queued.id).await.unwrap().status,
        RunStatus::Queued
    );
    store.run(recent.id).await.unwrap();
    assert_eq!(store.prune(cutoff, 100).await.unwrap(), 0);
}

pub async fn one_node_owns_a_task_until_its_hold_lapses(fx: &Fixture) {
    let store = fx.open().await;
    let hold = |t: i64| at(0) + Duration::seconds(t);
    assert!(store.own("prune", "a", hold(0), hold(6)).await.unwrap());
    assert!(!store.own("prune", "b", hold(1), hold(7)).await.unwrap());
    assert!(
        store.own("alerts", "b", hold(1), hold(7)).await.unwrap(),
        "tasks are held apart"
    );
    assert!(
        store.own("prune", "a", hold(2), hold(8)).await.unwrap(),
        "the owner renews"
    );
    assert!(!store.own("prune", "b", hold(7), hold(13)).await.unwrap());
    assert!(
        store.own("prune", "b", hold(9), hold(15)).await.unwrap(),
        "another node takes over once the hold lapses"
    );
    assert!(!store.own("prune", "a", hold(10), hold(16)).await.unwrap());
}

/// The same runs of two pipelines, ended one by one for `alone` and in one batch for
/// `together` (as the pings that arrive together end theirs): the rollups, the runs and their
/// stages come out the same; a batch ending a run that is not open, or one run twice, is
/// refused whole.
pub async fn runs_ended_together_add_up_as_runs_ended_one_by_one(fx: &Fixture) {
    let store = fx.open().await;
    let record = |name: &str| PipelineRecord {
        name: name.into(),
        definition_hash: "h".into(),
        description: None,
        timezone: "America/Sao_Paulo".into(),
    };
    store
        .sync_pipelines(&[record("alone"), record("together")], at(0))
        .await
        .unwrap();
    let mut ends: BTreeMap<&str, Vec<RunEnd>> = BTreeMap::new();
    for pipeline in ["alone", "together"] {
        let mut writes = Vec::new();
        // Five runs over a day and a half: two in one hour, one across São Paulo's midnight.
        for (i, start) in [0_i64, 20, 300, 720, 2000].into_iter().enumerate() {
            let mut run = new_run(pipeline, Trigger::External, None);
            run.queued_at = at(start);
            let id = run.id;
            let mut s = stage(id, "work", 1, plantao_model::StageStatus::Running, start);
            s.cpu_user_ms = Some(7 * i64::try_from(i).unwrap());
            writes.extend([
                Write::InsertRun(run),
                Write::StartRun {
                    id,
                    at: at(start),
                    node: None,
                },
                Write::PutStage(s),
                Write::PutCounter(Counter {
                    run_id: id,
                    step: "work".into(),
                    name: "rows".into(),
                    value: 10.0 * f64::from(u32::try_from(i).unwrap()),
                }),
            ]);
            ends.entry(pipeline).or_default().push(RunEnd {
                id,
                status: if i == 3 {
                    RunStatus::Failed
                } else {
                    RunStatus::Succeeded
                },
                at: at(start + 1 + i64::try_from(i).unwrap()),
                reason: None,
                error_stage: (i == 3).then(|| "work".into()),
                error_message: (i == 3).then(|| "exit 1".into()),
            });
        }
        store.apply(writes).await.unwrap();
    }
    for end in ends["alone"].clone() {
        store.apply(vec![Write::FinishRun(end)]).await.unwrap();
    }
    let applied = store
        .apply(
            ends["together"]
                .iter()
                .cloned()
                .map(Write::FinishRun)
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![Applied::Updated; 5]);
    for grain in [Grain::Hour, Grain::Day] {
        let of = |pipeline| store.rollups(pipeline, grain, at(-2880), at(4320));
        let (alone, together) = (of("alone").await.unwrap(), of("together").await.unwrap());
        assert!(!alone.is_empty());
        assert_eq!(alone, together, "{grain:?}");
    }
    for (a, t) in ends["alone"].iter().zip(&ends["together"]) {
        let (a, t) = (
            store.run_detail(a.id).await.unwrap(),
            store.run_detail(t.id).await.unwrap(),
        );
        assert_eq!(
            (a.run.status, a.run.duration_ms, &a.run.error_message),
            (t.run.status, t.run.duration_ms, &t.run.error_message)
        );
        // The stage still running when its run ended was interrupted, in both.
        assert_eq!(t.stages[0].status, plantao_model::StageStatus::Interrupted);
        assert_eq!(a.stages[0].status, t.stages[0].status);
    }

    // A batch that ends an open run and one already ended is refused whole.
    let open = new_run("together", Trigger::External, None);
    store
        .apply(vec![Write::InsertRun(open.clone())])
        .await
        .unwrap();
    let again = |id| {
        Write::FinishRun(RunEnd {
            id,
            status: RunStatus::Succeeded,
            at: at(3000),
            reason: None,
            error_stage: None,
            error_message: None,
        })
    };
    let err = store
        .apply(vec![again(open.id), again(ends["together"][0].id)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.run(open.id).await.unwrap().status, RunStatus::Queued);
    // So is a batch that ends one run twice.
    let err = store
        .apply(vec![again(open.id), again(open.id)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.run(open.id).await.unwrap().status, RunStatus::Queued);
    let rollups_after = store
        .rollups("together", Grain::Day, at(-2880), at(4320))
        .await
        .unwrap();
    assert_eq!(
        rollups_after,
        store
            .rollups("alone", Grain::Day, at(-2880), at(4320))
            .await
            .unwrap(),
        "nothing of the refused batches was added up"
    );
}

/// A run inserted final with a start (a heartbeat's success without a start) is recorded as a
/// run opened and ended at that instant: finished then, lasting 0 ms, added up once, and never
/// among the open runs.
pub async fn a_run_born_finished_is_recorded_as_one_opened_and_ended_at_once(fx: &Fixture) {
    let store = fx.open().await;
    let records: Vec<PipelineRecord> = ["opened", "born"]
        .into_iter()
        .map(|name| PipelineRecord {
            name: name.into(),
            definition_hash: "h".into(),
            description: None,
            timezone: "America/Sao_Paulo".into(),
        })
        .collect();
    store.sync_pipelines(&records, at(0)).await.unwrap();
    let mut pairs = Vec::new();
    for (i, (minute, status)) in [
        (0, RunStatus::Succeeded),
        (30, RunStatus::Failed),
        (1500, RunStatus::Succeeded),
    ]
    .into_iter()
    .enumerate()
    {
        let started = |pipeline| NewRun {
            queued_at: at(minute),
            started_at: Some(at(minute)),
            ..new_run(pipeline, Trigger::External, None)
        };
        let ping = |id| Stage {
            finished_at: Some(at(minute)),
            duration_ms: Some(0),
            ..stage(id, "ping", 1, plantao_model::StageStatus::Succeeded, minute)
        };
        let opened = NewRun {
            status: RunStatus::Running,
            ..started("opened")
        };
        let born = NewRun {
            status,
            ..started("born")
        };
        let applied = store
            .apply(vec![
                Write::InsertRun(opened.clone()),
                Write::PutStage(ping(opened.id)),
                Write::FinishRun(RunEnd {
                    id: opened.id,
                    status,
                    at: at(minute),
                    reason: None,
                    error_stage: None,
                    error_message: None,
                }),
                Write::InsertRun(born.clone()),
                Write::PutStage(ping(born.id)),
            ])
            .await
            .unwrap();
        assert_eq!(applied[3], Applied::Inserted, "run {i}");
        pairs.push((opened.id, born.id));
    }
    for (opened, born) in pairs {
        let (o, b) = (
            store.run_detail(opened).await.unwrap(),
            store.run_detail(born).await.unwrap(),
        );
        assert!(b.run.finished_at.is_some(), "{:?}", b.run);
        assert_eq!(
            (
                b.run.status,
                b.run.started_at,
                b.run.finished_at,
                b.run.duration_ms
            ),
            (
                o.run.status,
                o.run.started_at,
                o.run.finished_at,
                o.run.duration_ms
            )
        );
        assert_eq!(b.run.duration_ms, Some(0));
        assert_eq!(
            b.stages,
            vec![Stage {
                run_id: born,
                ..o.stages[0].clone()
            }]
        );
    }
    for grain in [Grain::Hour, Grain::Day] {
        let of = |pipeline| store.rollups(pipeline, grain, at(-2880), at(4320));
        let (opened, born) = (of("opened").await.unwrap(), of("born").await.unwrap());
        assert_eq!(
            opened.iter().map(|b| b.summary.runs).sum::<u64>(),
            3,
            "{grain:?}"
        );
        assert_eq!(opened, born, "{grain:?}");
    }
    for status in [RunStatus::Queued, RunStatus::Running] {
        let open = store
            .runs(&RunFilter {
                pipeline: Some("born".into()),
                status: Some(status),
                limit: 10,
                ..RunFilter::default()
            })
            .await
            .unwrap();
        assert!(open.is_empty(), "{open:?}");
    }
    assert_eq!(
        store
            .runs(&RunFilter {
                pipeline: Some("born".into()),
                status: Some(RunStatus::Succeeded),
                limit: 10,
                ..RunFilter::default()
            })
            .await
            .unwrap()
            .len(),
        2
    );
}

/// `report`'s rollups at `grain` from two days before [`at`]`(0)` to six days after.
async fn report_rollups(store: &dyn Store, grain: Grain) -> Vec<Bucket> {
    store
        .rollups("report", grain, at(-2880), at(8640))
        .await
        .unwrap()
}

/// Schema 12 kept duration histograms as a row per bin and status; migration 13 moves them into
/// the runs rollup's rows. Rollups written now are put back into the old shape by hand (and the
/// later migrations undone), the store reopened, and every bucket must answer as before.
pub async fn histograms_kept_as_rows_are_carried_over_by_the_migration(fx: &Fixture) {
    let store = fx.open().await;
    sync(store.as_ref(), "America/Sao_Paulo").await;
    let mut writes = Vec::new();
    for n in 0..40_u64 {
        let status = if n % 5 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        let ms = i64::try_from(n * n * 37 + 1).unwrap();
        let mut run = finished(n, at(i64::try_from(n).unwrap() * 97), ms, status, &[]);
        // Runs of one status and two triggers in a bucket: the old rows held their bins once.
        if n % 3 == 0
            && let Write::InsertRun(r) = &mut run[0]
        {
            r.trigger = Trigger::Manual;
        }
        writes.extend(run);
    }
    store.apply(writes).await.unwrap();
    let hours = report_rollups(store.as_ref(), Grain::Hour).await;
    let days = report_rollups(store.as_ref(), Grain::Day).await;
    assert!(hours.iter().all(|b| b.summary.durations.count() > 0));
    store.close().await;

    fx.execute(
        "CREATE TABLE rollup_durations (pipeline TEXT NOT NULL, grain TEXT NOT NULL,
            bucket INTEGER NOT NULL, status TEXT NOT NULL, bin INTEGER NOT NULL,
            runs INTEGER NOT NULL, PRIMARY KEY (pipeline, grain, bucket, status, bin)
         ) STRICT, WITHOUT ROWID;
         INSERT INTO rollup_durations SELECT r.pipeline, r.grain, r.bucket, r.status,
            CAST(e.key AS INTEGER), SUM(e.value) FROM rollup_runs r, json_each(r.bins) e
            GROUP BY 1, 2, 3, 4, 5;
         ALTER TABLE rollup_runs DROP COLUMN bins;
         DROP INDEX pipelines_paused;
         PRAGMA user_version = 12;",
        "CREATE TABLE rollup_durations (pipeline TEXT NOT NULL, grain TEXT NOT NULL,
            bucket TIMESTAMPTZ NOT NULL, status TEXT NOT NULL, bin INTEGER NOT NULL,
            runs BIGINT NOT NULL, PRIMARY KEY (pipeline, grain, bucket, status, bin));
         INSERT INTO rollup_durations SELECT r.pipeline, r.grain, r.bucket, r.status,
            e.key::integer, SUM(e.value::bigint) FROM rollup_runs r, jsonb_each_text(r.bins) e
            GROUP BY 1, 2, 3, 4, 5;
         ALTER TABLE rollup_runs DROP COLUMN bins;
         DROP INDEX pipelines_paused;
         UPDATE plantao_schema SET version = 12;",
    )
    .await;

    let store = fx.open().await;
    assert_eq!(report_rollups(store.as_ref(), Grain::Hour).await, hours);
    assert_eq!(report_rollups(store.as_ref(), Grain::Day).await, days);
    // Runs finished after the migration add to the carried-over histograms.
    store
        .apply(finished(99, at(5), 5, RunStatus::Succeeded, &[]))
        .await
        .unwrap();
    let total =
        |buckets: &[Bucket]| -> u64 { buckets.iter().map(|b| b.summary.durations.count()).sum() };
    assert_eq!(
        total(&report_rollups(store.as_ref(), Grain::Day).await),
        total(&days) + 1
    );
    store.close().await;
}
