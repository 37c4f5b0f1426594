//! What the store keeps of checks: heartbeats' pings, probes' results and states, incidents.

use chrono::{DateTime, Utc};

use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

fn ping(check: &str, kind: PingKind, minutes: i64, duration_ms: Option<i64>) -> Write {
    Write::Ping(PingFact {
        check: check.into(),
        kind,
        at: at(minutes),
        duration_ms,
        state: None,
    })
}

pub async fn pings_keep_each_checks_last_start_success_and_failure(fx: &Fixture) {
    let store = fx.open().await;
    assert!(store.checks().await.unwrap().is_empty());
    store
        .apply(vec![
            ping("backup", PingKind::Start, 10, None),
            ping("backup", PingKind::Success, 70, Some(60_000)),
            ping("mail", PingKind::Failure, 20, None),
        ])
        .await
        .unwrap();
    store
        .apply(vec![ping("backup", PingKind::Log, 80, None)])
        .await
        .unwrap();
    store
        .apply(vec![ping("backup", PingKind::Success, 90, None)])
        .await
        .unwrap();
    let checks = store.checks().await.unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(
        checks["backup"],
        CheckRecord {
            name: "backup".into(),
            pings: 4,
            last_ping_at: Some(at(90)),
            last_ping: Some(PingKind::Success),
            last_start_at: Some(at(10)),
            last_success_at: Some(at(90)),
            previous_success_at: Some(at(70)),
            last_failure_at: None,
            // The last end had no start of its own.
            last_duration_ms: None,
            state: None,
            streak: None,
        }
    );
    let mail = &checks["mail"];
    assert_eq!(mail.pings, 1);
    assert_eq!(mail.last_failure_at, Some(at(20)));
    assert_eq!(mail.last_success_at, None);
    assert_eq!(mail.last_start_at, None);
    // A log ping changes nothing but the last ping.
    store
        .apply(vec![ping("mail", PingKind::Log, 30, None)])
        .await
        .unwrap();
    let mail = &store.checks().await.unwrap()["mail"];
    assert_eq!(mail.last_ping, Some(PingKind::Log));
    assert_eq!(mail.last_failure_at, Some(at(20)));
    // What the pings said outlives pruning every run.
    store.prune(at(1_000_000), 1000).await.unwrap();
    assert_eq!(store.checks().await.unwrap()["backup"].pings, 4);
}

pub async fn results_without_runs_add_to_the_rollups_and_probes_keep_their_state(fx: &Fixture) {
    let store = fx.open().await;
    store
        .sync_pipelines(
            &[PipelineRecord {
                name: "site".into(),
                definition_hash: "h".into(),
                description: None,
                timezone: "America/Sao_Paulo".into(),
            }],
            at(0),
        )
        .await
        .unwrap();
    let tally = |minutes: i64, ms: i64| {
        Write::CountResult(Tally {
            pipeline: "site".into(),
            status: plantao_model::RunStatus::Succeeded,
            trigger: plantao_model::Trigger::Probe,
            at: at(minutes),
            duration_ms: Some(ms),
        })
    };
    store
        .apply(vec![tally(1, 100), tally(2, 200), tally(3, 300)])
        .await
        .unwrap();
    let mut fact = PingFact {
        check: "site".into(),
        kind: PingKind::Failure,
        at: at(4),
        duration_ms: Some(5),
        state: Some(("down".into(), 2)),
    };
    store.apply(vec![Write::Ping(fact.clone())]).await.unwrap();
    let s = store
        .summary(
            "site",
            Window::Last24h,
            at(10),
            chrono_tz::Tz::America__Sao_Paulo,
        )
        .await
        .unwrap();
    assert_eq!((s.runs, s.count("succeeded")), (3, 3));
    assert_eq!(s.by_trigger["probe"], 3);
    assert_eq!((s.duration_ms_sum, s.duration_ms_max), (600, Some(300)));
    assert!(
        store
            .runs(&RunFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    let site = &store.checks().await.unwrap()["site"];
    assert_eq!(
        (site.state.as_deref(), site.streak),
        (Some("down"), Some(2))
    );
    // A fact without a state keeps the one before.
    fact.state = None;
    store.apply(vec![Write::Ping(fact)]).await.unwrap();
    let site = &store.checks().await.unwrap()["site"];
    assert_eq!(
        (site.state.as_deref(), site.streak),
        (Some("down"), Some(2))
    );
}

pub async fn incidents_open_once_close_and_are_listed_newest_first(fx: &Fixture) {
    let store = fx.open().await;
    let open = |check: &str, m: i64| Write::OpenIncident {
        check: check.into(),
        at: at(m),
        cause: Some(format!("down at {m}")),
    };
    let close = |check: &str, m: i64| Write::CloseIncident {
        check: check.into(),
        at: at(m),
    };
    let applied = store
        .apply(vec![open("site", 10), open("site", 11), open("db", 12)])
        .await
        .unwrap();
    assert_eq!(
        applied,
        [Applied::Inserted, Applied::Duplicate, Applied::Inserted]
    );
    store
        .apply(vec![close("site", 20), close("site", 21)])
        .await
        .unwrap();
    store.apply(vec![open("site", 30)]).await.unwrap();
    let site = store.incidents(Some("site"), at(0), 10).await.unwrap();
    let spans: Vec<(i64, Option<i64>)> = site
        .iter()
        .map(|i| {
            let m = |t: DateTime<Utc>| (t - at(0)).num_minutes();
            (m(i.started_at), i.ended_at.map(m))
        })
        .collect();
    assert_eq!(spans, [(30, None), (10, Some(20))]);
    assert_eq!(site[1].cause.as_deref(), Some("down at 10"));
    // Those that ended before `since` are left out; every check's when none is named.
    assert_eq!(
        store
            .incidents(Some("site"), at(25), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.incidents(None, at(0), 10).await.unwrap().len(), 3);
}
