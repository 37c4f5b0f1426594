//! What the store keeps of heartbeats' pings.

use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

fn ping(check: &str, kind: PingKind, minutes: i64, duration_ms: Option<i64>) -> Write {
    Write::Ping(PingFact {
        check: check.into(),
        kind,
        at: at(minutes),
        duration_ms,
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
