//! The daemon in-process, with real processes and a real SQLite file: queued runs are claimed
//! within the limits, runs of dead nodes are closed, cancel requests and shutdowns stop runs.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use plantao_engine::clock::SystemClock;
use plantao_engine::daemon::Daemon;
use plantao_model::{RunId, RunStatus, StageStatus, Trigger};
use plantao_store::{NewRun, Run, RunFilter, Store, Write};

mod common;
use common::Rig;

impl Rig {
    async fn queue(&self, pipeline: &str) -> RunId {
        let id = RunId::new();
        self.store
            .apply(vec![Write::InsertRun(new_run(
                id,
                pipeline,
                RunStatus::Queued,
                None,
            ))])
            .await
            .unwrap();
        id
    }

    async fn start(&self) -> Daemon {
        Daemon::start(
            self.config.clone(),
            self.store.clone(),
            Arc::new(SystemClock),
        )
        .await
        .unwrap()
    }

    /// Polls (30 s at most) until the run has ended.
    async fn ended(&self, id: RunId) -> Run {
        for _ in 0..3000 {
            let r = self.store.run(id).await.unwrap();
            if r.status.is_final() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("run {id} never ended");
    }

    fn times(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("times")).unwrap_or_default()
    }
}

fn new_run(id: RunId, pipeline: &str, status: RunStatus, node: Option<&str>) -> NewRun {
    NewRun {
        id,
        pipeline: pipeline.into(),
        trigger: Trigger::Manual,
        scheduled_for: None,
        params: BTreeMap::new(),
        status,
        reason: None,
        queued_at: Utc::now(),
        started_at: (status == RunStatus::Running).then(Utc::now),
        node: node.map(str::to_owned),
        parent: None,
        selection: Default::default(),
        period: None,
        force: false,
    }
}

/// A step that writes "start NAME ns" and "end NAME ns" to the `times` file around a sleep.
fn timed(name: &str, extra: &str) -> String {
    format!(
        "{extra}\n[[steps]]\nname = \"s\"\nrun = \"echo start {name}-$PLANTAO_RUN_ID $(date +%s%N) >> ../times; sleep 0.4; echo end {name}-$PLANTAO_RUN_ID $(date +%s%N) >> ../times\"\nworking_dir = \"pipelines\"\n"
    )
}

/// The largest number of runs overlapping at one instant, from the `times` file.
fn max_overlap(times: &str) -> usize {
    let mut events: Vec<(u128, i32)> = times
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            (
                parts[2].parse().unwrap(),
                if parts[0] == "start" { 1 } else { -1 },
            )
        })
        .collect();
    events.sort_by_key(|(t, d)| (*t, *d));
    let mut now = 0;
    let mut max = 0;
    for (_, d) in events {
        now += d;
        max = max.max(now);
    }
    usize::try_from(max).unwrap()
}

#[tokio::test]
async fn queued_runs_run_within_the_global_limit() {
    let rig = Rig::new(
        "[engine]\nmax_concurrent_runs = 1\n",
        &[("a", &timed("a", "")), ("b", &timed("b", ""))],
    )
    .await;
    let ids = [
        rig.queue("a").await,
        rig.queue("b").await,
        rig.queue("a").await,
    ];
    let daemon = rig.start().await;
    for id in ids {
        let r = rig.ended(id).await;
        assert_eq!(r.status, RunStatus::Succeeded);
        assert_eq!(r.node.as_deref(), Some(daemon.node()));
    }
    assert_eq!(max_overlap(&rig.times()), 1, "{}", rig.times());
    daemon.shut_down().await.unwrap();
}

#[tokio::test]
async fn allow_runs_a_pipeline_up_to_max_concurrent() {
    let rig = Rig::new(
        "",
        &[(
            "a",
            &timed("a", "concurrency = \"allow\"\nmax_concurrent = 2"),
        )],
    )
    .await;
    let ids = [
        rig.queue("a").await,
        rig.queue("a").await,
        rig.queue("a").await,
        rig.queue("a").await,
    ];
    let daemon = rig.start().await;
    for id in ids {
        assert_eq!(rig.ended(id).await.status, RunStatus::Succeeded);
    }
    assert_eq!(max_overlap(&rig.times()), 2, "{}", rig.times());
    daemon.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_dead_nodes_run_is_interrupted_and_retried_where_the_pipeline_says() {
    let rig = Rig::new(
        "",
        &[
            (
                "retried",
                "retry_interrupted = true\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
            ),
            ("kept", "[[steps]]\nname = \"s\"\nrun = \"true\"\n"),
        ],
    )
    .await;
    let (a, b) = (RunId::new(), RunId::new());
    rig.store
        .apply(vec![
            Write::InsertRun(new_run(
                a,
                "retried",
                RunStatus::Running,
                Some("ghost-node"),
            )),
            Write::InsertRun(new_run(b, "kept", RunStatus::Running, Some("ghost-node"))),
        ])
        .await
        .unwrap();
    let daemon = rig.start().await;
    let ra = rig.ended(a).await;
    assert_eq!(ra.status, RunStatus::Interrupted);
    assert!(ra.reason.unwrap().contains("ghost-node"));
    assert_eq!(rig.ended(b).await.status, RunStatus::Interrupted);
    let retry = loop {
        let runs = rig
            .store
            .runs(&RunFilter {
                pipeline: Some("retried".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(r) = runs.iter().find(|r| r.parent == Some(a)) {
            break r.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(rig.ended(retry.id).await.status, RunStatus::Succeeded);
    let kept = rig
        .store
        .runs(&RunFilter {
            pipeline: Some("kept".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "no retry without retry_interrupted");
    daemon.shut_down().await.unwrap();
}

#[tokio::test]
async fn a_cancel_request_stops_a_running_run() {
    let rig = Rig::new(
        "",
        &[("long", "[[steps]]\nname = \"s\"\nrun = \"sleep 60\"\n")],
    )
    .await;
    let id = rig.queue("long").await;
    let daemon = rig.start().await;
    loop {
        if rig.store.run(id).await.unwrap().status == RunStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rig.store
        .apply(vec![Write::RequestCancel { id }])
        .await
        .unwrap();
    let r = rig.ended(id).await;
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (RunStatus::Cancelled, Some("cancelled"))
    );
    daemon.shut_down().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_short_runs_finish_and_interrupts_long_ones() {
    let rig = Rig::new(
        "[engine]\nshutdown_grace = \"5s\"\n",
        &[
            ("short", "[[steps]]\nname = \"s\"\nrun = \"sleep 0.3\"\n"),
            ("long", "[[steps]]\nname = \"s\"\nrun = \"sleep 60\"\n"),
        ],
    )
    .await;
    let (short, long) = (rig.queue("short").await, rig.queue("long").await);
    let daemon = rig.start().await;
    loop {
        let open = rig.store.open_runs().await.unwrap();
        if open.values().map(|o| o.running).sum::<u32>() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.shut_down().await.unwrap();
    assert_eq!(
        rig.store.run(short).await.unwrap().status,
        RunStatus::Succeeded
    );
    let d = rig.store.run_detail(long).await.unwrap();
    assert_eq!(
        (d.run.status, d.run.reason.as_deref()),
        (RunStatus::Interrupted, Some("plantao was shutting down"))
    );
    assert_eq!(d.stages[0].status, StageStatus::Interrupted);
    assert!(
        rig.store.nodes().await.unwrap().is_empty(),
        "the lease is released"
    );
}

#[tokio::test]
async fn a_success_starts_the_chained_pipeline() {
    let rig = Rig::new(
        "",
        &[
            ("first", "on_success = [\"second\"]\non_failure = [\"alarm\"]\n[[steps]]\nname = \"s\"\nrun = \"true\"\n"),
            ("second", "[[steps]]\nname = \"s\"\nrun = \"echo from $PLANTAO_TRIGGER\"\n"),
            ("alarm", "[[steps]]\nname = \"s\"\nrun = \"true\"\n"),
        ],
    )
    .await;
    let first = rig.queue("first").await;
    let daemon = rig.start().await;
    assert_eq!(rig.ended(first).await.status, RunStatus::Succeeded);
    let chained = loop {
        let runs = rig
            .store
            .runs(&RunFilter {
                pipeline: Some("second".into()),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(r) = runs.first() {
            break r.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        (chained.trigger, chained.parent),
        (Trigger::Chained, Some(first))
    );
    let done = rig.ended(chained.id).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(
        rig.store.run_detail(done.id).await.unwrap().stages[0].log,
        "from chained\n"
    );
    let alarms = rig
        .store
        .runs(&RunFilter {
            pipeline: Some("alarm".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(alarms.is_empty(), "on_failure did not fire after a success");
    daemon.shut_down().await.unwrap();
}

#[tokio::test]
async fn two_daemons_on_one_store_run_each_tick_once() {
    let rig = Rig::new(
        "",
        &[(
            "tick",
            "schedule = \"* * * * * *\"\nconcurrency = \"allow\"\nmax_concurrent = 4\n\
             [[steps]]\nname = \"s\"\nrun = \"echo $PLANTAO_RUN_ID >> ../ran\"\nworking_dir = \"pipelines\"\n",
        )],
    )
    .await;
    let other: Arc<dyn Store> = plantao_store::open(rig.config.storage.url.expose())
        .await
        .unwrap()
        .into();
    let a = rig.start().await;
    let b = Daemon::start(rig.config.clone(), other, Arc::new(SystemClock))
        .await
        .unwrap();
    let runs = loop {
        let runs = rig
            .store
            .runs(&RunFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        if runs
            .iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .count()
            >= 4
        {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    a.shut_down().await.unwrap();
    b.shut_down().await.unwrap();
    let ticks: Vec<_> = runs.iter().filter_map(|r| r.scheduled_for).collect();
    let distinct: std::collections::BTreeSet<_> = ticks.iter().collect();
    assert_eq!(ticks.len(), distinct.len(), "a tick has two runs");
    let ran = std::fs::read_to_string(rig.dir.path().join("ran")).unwrap();
    let executed: Vec<&str> = ran.lines().collect();
    let unique: std::collections::BTreeSet<&str> = executed.iter().copied().collect();
    assert_eq!(
        executed.len(),
        unique.len(),
        "a run was executed twice: {ran}"
    );
    for id in unique {
        let detail = rig.store.run_detail(id.parse().unwrap()).await.unwrap();
        assert_eq!(
            detail.stages.len(),
            1,
            "every executed run is a stored run with its stage"
        );
    }
}

#[tokio::test]
async fn runs_past_the_retention_are_pruned_and_the_rollups_stay() {
    let rig = Rig::new(
        "[storage]\nretention = \"30d\"\n",
        &[("p", "[[steps]]\nname = \"s\"\nrun = \"true\"\n")],
    )
    .await;
    plantao_engine::sync_pipelines(rig.store.as_ref(), &rig.config, Utc::now())
        .await
        .unwrap();
    // 450 finished runs queued 40 days ago (more than two batches) and one recent run.
    let old = Utc::now() - chrono::Duration::days(40);
    let old_id = |n: u64| RunId::from_millis(u64::try_from(old.timestamp_millis()).unwrap(), n);
    let mut writes: Vec<Write> = (0..450)
        .map(|n| {
            Write::InsertRun(NewRun {
                status: RunStatus::Skipped,
                queued_at: old,
                ..new_run(old_id(n), "p", RunStatus::Skipped, None)
            })
        })
        .collect();
    let recent = RunId::new();
    writes.push(Write::InsertRun(new_run(
        recent,
        "p",
        RunStatus::Skipped,
        None,
    )));
    rig.store.apply(writes).await.unwrap();
    let zone: chrono_tz::Tz = "UTC".parse().unwrap();
    let before = rig
        .store
        .summary(
            "p",
            plantao_store::Window::Last7d,
            old + chrono::Duration::hours(1),
            zone,
        )
        .await
        .unwrap();
    assert_eq!(before.count("skipped"), 450);

    let daemon = rig.start().await;
    let left = loop {
        let left = rig
            .store
            .runs(&RunFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        if left.len() <= 1 {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    daemon.shut_down().await.unwrap();
    let ids: Vec<RunId> = left.iter().map(|r| r.id).collect();
    assert_eq!(ids, [recent], "recent runs stay");
    let after = rig
        .store
        .summary(
            "p",
            plantao_store::Window::Last7d,
            old + chrono::Duration::hours(1),
            zone,
        )
        .await
        .unwrap();
    assert_eq!(after, before, "the history outlives the raw runs");
}
