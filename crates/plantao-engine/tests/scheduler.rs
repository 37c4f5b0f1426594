//! The scheduler against a real SQLite store, driven by a manual clock: ticks become runs
//! exactly once, and every tick that does not run is a skipped run with its reason.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use plantao_config::Config;
use plantao_engine::clock::ManualClock;
use plantao_engine::scheduler::Scheduler;
use plantao_model::{RunId, RunStatus, Trigger};
use plantao_store::{NewRun, Run, RunFilter, Store, Write};
use tokio::sync::{Notify, watch};

struct Rig {
    _dir: tempfile::TempDir,
    config: Arc<Config>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

impl Rig {
    async fn new(root: &str, pipelines: &[(&str, &str)]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
        for (name, text) in pipelines {
            std::fs::write(
                dir.path().join(format!("pipelines/{name}.toml")),
                format!("{text}\n[[steps]]\nname = \"a\"\nrun = \"true\"\n"),
            )
            .unwrap();
        }
        let config = Arc::new(
            plantao_config::load(&dir.path().join("plantao.toml"), &|_| None)
                .unwrap_or_else(|d| panic!("{d}")),
        );
        let store: Arc<dyn Store> = plantao_store::open(config.storage.url.expose())
            .await
            .unwrap()
            .into();
        plantao_engine::sync_pipelines(store.as_ref(), &config, t0())
            .await
            .unwrap();
        Rig {
            _dir: dir,
            config,
            store,
            clock: Arc::new(ManualClock::new(t0())),
        }
    }

    /// Starts a scheduler and waits until it sleeps on the clock; dropping the sender stops it.
    async fn start(&self) -> watch::Sender<bool> {
        let (stop, stop_rx) = watch::channel(false);
        let (_config_tx, config_rx) = watch::channel(self.config.clone());
        let scheduler = Scheduler {
            store: self.store.clone(),
            clock: self.clock.clone(),
            config: config_rx,
            wake: Arc::new(Notify::new()),
            handoff: None,
            writable: Arc::default(),
            telemetry: Arc::default(),
            skipped: None,
        };
        let sleepers = self.clock.sleepers();
        tokio::spawn(async move {
            let _keep = _config_tx;
            scheduler.run(stop_rx).await;
        });
        for _ in 0..3000 {
            if self.clock.sleepers() > sleepers {
                return stop;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the scheduler never waited on the clock");
    }

    async fn runs(&self, pipeline: &str) -> Vec<Run> {
        let mut runs = self
            .store
            .runs(&RunFilter {
                pipeline: Some(pipeline.into()),
                limit: 100_000,
                ..Default::default()
            })
            .await
            .unwrap();
        runs.sort_by_key(|r| (r.scheduled_for, r.id));
        runs
    }

    /// Waits (polling the store, 30 s at most) until `pipeline` has `n` runs.
    async fn until(&self, pipeline: &str, n: usize) -> Vec<Run> {
        for _ in 0..3000 {
            let runs = self.runs(pipeline).await;
            if runs.len() >= n {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{pipeline} never had {n} runs: {:?}",
            self.runs(pipeline).await.len()
        );
    }
}

/// A run recorded for the 12:00 tick of `p`, before plantao went down.
fn last_tick() -> NewRun {
    NewRun {
        id: RunId::new(),
        pipeline: "p".into(),
        trigger: Trigger::Scheduled,
        scheduled_for: Some(t0()),
        params: BTreeMap::new(),
        status: RunStatus::Succeeded,
        reason: None,
        queued_at: t0(),
        started_at: None,
        node: None,
        parent: None,
        selection: Default::default(),
        period: None,
        force: false,
    }
}

fn summary(runs: &[Run]) -> Vec<(String, Trigger, RunStatus, Option<String>)> {
    runs.iter()
        .map(|r| {
            (
                r.scheduled_for.unwrap().format("%H:%M").to_string(),
                r.trigger,
                r.status,
                r.reason.clone(),
            )
        })
        .collect()
}

fn queued(at: &str, trigger: Trigger) -> (String, Trigger, RunStatus, Option<String>) {
    (at.into(), trigger, RunStatus::Queued, None)
}

fn skipped(
    at: &str,
    trigger: Trigger,
    reason: &str,
) -> (String, Trigger, RunStatus, Option<String>) {
    (at.into(), trigger, RunStatus::Skipped, Some(reason.into()))
}

#[tokio::test]
async fn each_tick_is_one_run_even_across_a_restart() {
    let rig = Rig::new("", &[("p", "every = \"1m\"\nconcurrency = \"allow\"")]).await;
    let stop = rig.start().await;
    for minute in 1..=3 {
        rig.clock.advance(TimeDelta::minutes(1));
        rig.until("p", minute).await;
    }
    stop.send(true).unwrap();
    while rig.clock.sleepers() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second scheduler on the same store, as after a restart: nothing is recorded twice.
    let again = rig.start().await;
    rig.clock.advance(TimeDelta::seconds(1));
    rig.clock.advance(TimeDelta::seconds(59));
    let runs = rig.until("p", 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let runs_after = rig.runs("p").await;
    assert_eq!(runs_after.len(), 4, "{:?}", summary(&runs_after));
    assert_eq!(
        summary(&runs),
        [
            queued("12:01", Trigger::Scheduled),
            queued("12:02", Trigger::Scheduled),
            queued("12:03", Trigger::Scheduled),
            queued("12:04", Trigger::Scheduled)
        ]
    );
    again.send(true).unwrap();
}

#[tokio::test]
async fn overlap_and_queue_limits_record_their_reasons() {
    let rig = Rig::new(
        "",
        &[
            ("skip", "every = \"1m\"\nconcurrency = \"skip\""),
            (
                "queue",
                "every = \"1m\"\nconcurrency = \"queue\"\nqueue_limit = 2",
            ),
        ],
    )
    .await;
    let _stop = rig.start().await;
    for minute in 1..=3 {
        rig.clock.advance(TimeDelta::minutes(1));
        rig.until("skip", minute).await;
        rig.until("queue", minute).await;
    }
    // Nothing executes here, so the first run keeps waiting.
    assert_eq!(
        summary(&rig.runs("skip").await),
        [
            queued("12:01", Trigger::Scheduled),
            skipped("12:02", Trigger::Scheduled, "overlap"),
            skipped("12:03", Trigger::Scheduled, "overlap")
        ]
    );
    assert_eq!(
        summary(&rig.runs("queue").await),
        [
            queued("12:01", Trigger::Scheduled),
            queued("12:02", Trigger::Scheduled),
            skipped("12:03", Trigger::Scheduled, "queue_full")
        ]
    );
}

#[tokio::test]
async fn replace_asks_the_running_run_to_stop() {
    let rig = Rig::new("", &[("r", "every = \"1m\"\nconcurrency = \"replace\"")]).await;
    let running = NewRun {
        id: RunId::new(),
        pipeline: "r".into(),
        trigger: Trigger::Manual,
        scheduled_for: None,
        params: BTreeMap::new(),
        status: RunStatus::Running,
        reason: None,
        queued_at: t0(),
        started_at: Some(t0()),
        node: Some("someone".into()),
        parent: None,
        selection: Default::default(),
        period: None,
        force: false,
    };
    rig.store
        .apply(vec![Write::InsertRun(running.clone())])
        .await
        .unwrap();
    let _stop = rig.start().await;
    rig.clock.advance(TimeDelta::minutes(1));
    rig.until("r", 2).await;
    assert!(rig.store.run(running.id).await.unwrap().cancel_requested);
    assert!(
        rig.runs("r")
            .await
            .iter()
            .any(|r| r.status == RunStatus::Queued)
    );
}

async fn after_downtime(policy: &str) -> Vec<(String, Trigger, RunStatus, Option<String>)> {
    let rig = Rig::new(
        "",
        &[(
            "p",
            &format!("every = \"1m\"\nconcurrency = \"allow\"\n{policy}"),
        )],
    )
    .await;
    // The last tick recorded before plantao went down: 12:00. It comes back at 12:10:30.
    let last = last_tick();
    rig.store.apply(vec![Write::InsertRun(last)]).await.unwrap();
    rig.clock.set(t0() + TimeDelta::seconds(630));
    let _stop = rig.start().await;
    let runs = rig.until("p", 11).await;
    summary(&runs[1..])
}

#[tokio::test]
async fn catchup_none_records_every_missed_tick() {
    let got = after_downtime("catchup = \"none\"").await;
    let want: Vec<_> = (1..=10)
        .map(|m| skipped(&format!("12:{m:02}"), Trigger::Catchup, "missed"))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn catchup_latest_runs_the_latest_and_records_the_others() {
    let got = after_downtime("catchup = \"latest\"").await;
    let mut want: Vec<_> = (1..=9)
        .map(|m| skipped(&format!("12:{m:02}"), Trigger::Catchup, "missed"))
        .collect();
    want.push(queued("12:10", Trigger::Catchup));
    assert_eq!(got, want);
}

#[tokio::test]
async fn catchup_all_runs_the_latest_up_to_the_limit() {
    let got = after_downtime("catchup = \"all\"\ncatchup_limit = 3").await;
    let mut want: Vec<_> = (1..=7)
        .map(|m| skipped(&format!("12:{m:02}"), Trigger::Catchup, "missed"))
        .collect();
    want.extend((8..=10).map(|m| queued(&format!("12:{m:02}"), Trigger::Catchup)));
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_tick_late_by_less_than_the_grace_is_on_time() {
    // The pair of the downtime cases: back 4 s after the 12:01 tick, it runs as scheduled.
    let rig = Rig::new("", &[("p", "every = \"1m\"\ncatchup = \"none\"")]).await;
    let first = last_tick();
    rig.store
        .apply(vec![Write::InsertRun(first)])
        .await
        .unwrap();
    rig.clock.set(t0() + TimeDelta::seconds(64));
    let _stop = rig.start().await;
    let runs = rig.until("p", 2).await;
    assert_eq!(summary(&runs[1..]), [queued("12:01", Trigger::Scheduled)]);
}

#[tokio::test]
async fn paused_pipelines_and_maintenance_windows_record_skips() {
    let rig = Rig::new(
        "[[maintenance]]\nstart = 2026-06-01T12:01:30Z\nend = 2026-06-01T12:03:00Z\npipelines = [\"m\"]\nreason = \"upgrade\"\n",
        &[("paused", "every = \"1m\"\nconcurrency = \"allow\""), ("m", "every = \"1m\"\nconcurrency = \"allow\"")],
    )
    .await;
    rig.store
        .apply(vec![Write::SetPaused {
            pipeline: "paused".into(),
            paused: true,
        }])
        .await
        .unwrap();
    let _stop = rig.start().await;
    for minute in 1..=3 {
        rig.clock.advance(TimeDelta::minutes(1));
        rig.until("m", minute).await;
        rig.until("paused", minute).await;
    }
    assert!(
        rig.runs("paused")
            .await
            .iter()
            .all(|r| r.reason.as_deref() == Some("paused"))
    );
    assert_eq!(
        summary(&rig.runs("m").await),
        [
            queued("12:01", Trigger::Scheduled),
            skipped("12:02", Trigger::Scheduled, "maintenance"),
            queued("12:03", Trigger::Scheduled),
        ],
        "the window is [12:01:30, 12:03:00): 12:03 is outside"
    );
}
