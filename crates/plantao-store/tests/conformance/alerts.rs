//! What alerting keeps: alerts once per fingerprint through their lifecycle, the outbox claimed
//! by one deliverer at a time with every attempt logged, and thresholds overridden at runtime.

use std::collections::BTreeMap;
use std::sync::Arc;

use plantao_model::{AlertState, DeliveryState, NotificationEvent, Severity};
use plantao_store::*;
use uuid::Uuid;

use super::common::*;
use super::harness::Fixture;

fn alert(fingerprint: &str, minute: i64) -> Alert {
    Alert {
        id: Uuid::now_v7(),
        fingerprint: fingerprint.to_owned(),
        rule: "biz-failed".into(),
        kind: "run_failed".into(),
        pipeline: Some("biz-reports".into()),
        labels: BTreeMap::from([("pipeline".to_owned(), "biz-reports".to_owned())]),
        annotations: BTreeMap::from([("status".to_owned(), "failed".to_owned())]),
        severity: Severity::Critical,
        state: AlertState::Pending,
        value: None,
        message: "biz-reports failed".into(),
        runbook: Some("look at the send stage".into()),
        channels: vec!["ops".into()],
        started_at: at(minute),
        fired_at: None,
        resolved_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        dismissed: false,
        next_reminder_at: None,
        escalation_level: None,
        next_escalation_at: None,
        notified: true,
        suppressed: None,
    }
}

fn notification(minute: i64) -> Notification {
    Notification {
        id: Uuid::now_v7(),
        alert_id: None,
        channel: "ops".into(),
        event: NotificationEvent::Firing,
        state: DeliveryState::Pending,
        created_at: at(minute),
        next_at: at(minute),
        attempts: 0,
        delivered_at: None,
        last_error: None,
        text: format!("message {minute}"),
        alert: None,
        group: None,
    }
}

fn change(id: Uuid, change: AlertChange) -> Write {
    Write::ChangeAlert { id, change }
}

pub async fn an_alert_opens_once_per_fingerprint_and_moves_by_its_rules(fx: &Fixture) {
    let store = fx.open().await;
    let first = alert("biz-failed{pipeline=biz-reports}", 0);
    let applied = store
        .apply(vec![
            Write::OpenAlert(Box::new(first.clone())),
            Write::OpenAlert(Box::new(alert("biz-failed{pipeline=biz-reports}", 1))),
        ])
        .await
        .unwrap();
    assert_eq!(
        applied,
        [Applied::Inserted, Applied::Duplicate],
        "one open alert per fingerprint"
    );
    assert_eq!(
        store.open_alerts().await.unwrap(),
        std::slice::from_ref(&first)
    );

    let fire = AlertChange::Fire {
        at: at(5),
        value: Some(3.0),
        message: "fired".into(),
        next_reminder_at: Some(at(35)),
    };
    store
        .apply(vec![change(first.id, fire.clone())])
        .await
        .unwrap();
    let again = store.apply(vec![change(first.id, fire)]).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    let firing = store.alert(first.id).await.unwrap();
    assert_eq!(firing.state, AlertState::Firing);
    assert_eq!((firing.fired_at, firing.value), (Some(at(5)), Some(3.0)));
    assert_eq!(firing.next_reminder_at, Some(at(35)));

    let ack = AlertChange::Acknowledge {
        by: "maria".into(),
        at: at(10),
        dismiss: false,
    };
    store.apply(vec![change(first.id, ack)]).await.unwrap();
    let remind = store
        .apply(vec![change(
            first.id,
            AlertChange::Remind { next: Some(at(65)) },
        )])
        .await
        .unwrap_err();
    assert!(
        matches!(remind, StoreError::Conflict(_)),
        "an acknowledged alert is not reminded"
    );
    let dismiss = AlertChange::Acknowledge {
        by: "joao".into(),
        at: at(11),
        dismiss: true,
    };
    store.apply(vec![change(first.id, dismiss)]).await.unwrap();
    let acked = store.alert(first.id).await.unwrap();
    assert_eq!(
        acked.acknowledged_by.as_deref(),
        Some("maria"),
        "the first acknowledgement stays"
    );
    assert!(acked.dismissed);
    assert_eq!(acked.next_reminder_at, None);

    store
        .apply(vec![change(
            first.id,
            AlertChange::Resolve {
                at: at(20),
                value: Some(0.0),
            },
        )])
        .await
        .unwrap();
    assert!(store.open_alerts().await.unwrap().is_empty());
    let late_ack = store
        .apply(vec![change(
            first.id,
            AlertChange::Acknowledge {
                by: "x".into(),
                at: at(21),
                dismiss: false,
            },
        )])
        .await
        .unwrap_err();
    assert!(matches!(late_ack, StoreError::Conflict(_)), "{late_ack:?}");

    let second = alert("biz-failed{pipeline=biz-reports}", 30);
    let applied = store
        .apply(vec![Write::OpenAlert(Box::new(second.clone()))])
        .await
        .unwrap();
    assert_eq!(
        applied,
        [Applied::Inserted],
        "a resolved alert frees its fingerprint"
    );
    drop(store);

    let store = fx.open().await;
    let history = store.alert_history(None, 10).await.unwrap();
    let ids: Vec<Uuid> = history.iter().map(|a| a.id).collect();
    assert_eq!(
        ids,
        [second.id, first.id],
        "newest first, kept across a reopen"
    );
    assert_eq!(history[1].resolved_at, Some(at(20)));
    let page = store.alert_history(Some(second.id), 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, first.id);
    let unknown = store.alert(Uuid::now_v7()).await.unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown:?}");
    let unknown = store
        .apply(vec![change(
            Uuid::now_v7(),
            AlertChange::Resolve {
                at: at(1),
                value: None,
            },
        )])
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown:?}");
}

pub async fn notifications_are_claimed_by_one_deliverer_and_every_attempt_is_kept(fx: &Fixture) {
    let first = fx.open().await;
    let queued: Vec<Notification> = (0..30).map(|_| notification(0)).collect();
    first
        .apply(
            queued
                .iter()
                .cloned()
                .map(|n| Write::Enqueue(Box::new(n)))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(first.outbox_depth().await.unwrap(), 30);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let store: Arc<dyn Store> = fx.open().await.into();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_notifications(at(1), at(2), 4).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|n| n.id));
            }
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    claimed.sort();
    let mut expected: Vec<Uuid> = queued.iter().map(|n| n.id).collect();
    expected.sort();
    assert_eq!(claimed, expected, "every notification claimed exactly once");
    assert!(
        first
            .claim_notifications(at(1), at(2), 100)
            .await
            .unwrap()
            .is_empty(),
        "held until the claim lapses"
    );
    let lapsed = first.claim_notifications(at(3), at(4), 100).await.unwrap();
    assert_eq!(lapsed.len(), 30, "a lapsed claim is anyone's again");

    let n = &queued[0];
    let failed = Attempt {
        notification_id: n.id,
        at: at(3),
        took_ms: 12,
        status: Some(503),
        error: Some("503 Service Unavailable".into()),
        outcome: Outcome::Retry(at(10)),
    };
    let delivered = Attempt {
        at: at(10),
        status: Some(200),
        error: None,
        outcome: Outcome::Delivered,
        ..failed.clone()
    };
    first
        .apply(vec![Write::Attempt(failed.clone())])
        .await
        .unwrap();
    let due: Vec<Uuid> = first
        .claim_notifications(at(9), at(10), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert!(!due.contains(&n.id), "not before its retry time");
    let due = first
        .claim_notifications(at(10), at(11), 100)
        .await
        .unwrap();
    assert!(due.iter().any(|d| d.id == n.id && d.attempts == 1));
    first
        .apply(vec![Write::Attempt(delivered.clone())])
        .await
        .unwrap();
    let twice = first
        .apply(vec![Write::Attempt(delivered.clone())])
        .await
        .unwrap_err();
    assert!(matches!(twice, StoreError::Conflict(_)), "{twice:?}");
    assert_eq!(first.outbox_depth().await.unwrap(), 29);

    let log = first.notifications(None, 100).await.unwrap();
    assert_eq!(log.len(), 30);
    let record = log.iter().find(|r| r.notification.id == n.id).unwrap();
    assert_eq!(record.notification.state, DeliveryState::Delivered);
    assert_eq!(record.notification.delivered_at, Some(at(10)));
    assert_eq!(record.attempts_log, [failed, delivered]);
    let page = first
        .notifications(Some(log[9].notification.id), 100)
        .await
        .unwrap();
    assert_eq!(page.len(), 20, "pages continue below `before`");
}

pub async fn thresholds_are_overridden_and_restored(fx: &Fixture) {
    let store = fx.open().await;
    assert!(store.thresholds().await.unwrap().is_empty());
    let set = |rule: &str, value: Option<f64>| Write::SetThreshold {
        rule: rule.into(),
        value,
        at: at(0),
    };
    store
        .apply(vec![
            set("low_approval_rate", Some(65.0)),
            set("biz-fail-rate", Some(10.5)),
        ])
        .await
        .unwrap();
    store
        .apply(vec![
            set("low_approval_rate", Some(60.0)),
            set("biz-fail-rate", None),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.thresholds().await.unwrap(),
        BTreeMap::from([("low_approval_rate".to_owned(), 60.0)])
    );
}

pub async fn only_the_node_that_opens_an_alert_queues_its_notifications(fx: &Fixture) {
    let store = fx.open().await;
    let batch = |a: &Alert| {
        vec![
            Write::OpenAlert(Box::new(a.clone())),
            Write::Enqueue(Box::new(Notification {
                alert_id: Some(a.id),
                ..notification(0)
            })),
        ]
    };
    let mine = alert("stuck{run=1}", 0);
    let theirs = alert("stuck{run=1}", 0);
    assert_eq!(
        store.apply(batch(&mine)).await.unwrap(),
        [Applied::Inserted, Applied::Inserted]
    );
    assert_eq!(
        store.apply(batch(&theirs)).await.unwrap(),
        [Applied::Duplicate, Applied::Duplicate],
        "the second opener queues nothing"
    );
    assert_eq!(store.outbox_depth().await.unwrap(), 1);
}

/// A UUIDv7 made `days` ago.
fn id_days_ago(days: i64) -> Uuid {
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        u64::try_from(at.timestamp()).unwrap(),
        at.timestamp_subsec_nanos(),
    );
    Uuid::new_v7(ts)
}

pub async fn pruning_takes_old_resolved_alerts_and_finished_notifications(fx: &Fixture) {
    let store = fx.open().await;
    let old_resolved = Alert {
        id: id_days_ago(100),
        state: AlertState::Resolved,
        ..alert("old{}", 0)
    };
    let old_open = Alert {
        id: id_days_ago(100),
        ..alert("still{}", 0)
    };
    let recent_resolved = Alert {
        state: AlertState::Resolved,
        ..alert("recent{}", 0)
    };
    let old_done = Notification {
        id: id_days_ago(100),
        ..notification(0)
    };
    let old_pending = Notification {
        id: id_days_ago(100),
        ..notification(0)
    };
    let mut writes: Vec<Write> = [&old_resolved, &old_open, &recent_resolved]
        .into_iter()
        .map(|a| Write::OpenAlert(Box::new(a.clone())))
        .collect();
    writes.push(Write::Enqueue(Box::new(old_done.clone())));
    writes.push(Write::Enqueue(Box::new(old_pending.clone())));
    writes.push(Write::Attempt(Attempt {
        notification_id: old_done.id,
        at: at(1),
        took_ms: 3,
        status: Some(200),
        error: None,
        outcome: Outcome::Delivered,
    }));
    store.apply(writes).await.unwrap();

    let cutoff = chrono::Utc::now() - chrono::Duration::days(90);
    let counted = store.prunable(cutoff).await.unwrap();
    assert_eq!((counted.alerts, counted.notifications), (1, 1));
    assert_eq!(
        store.prune(cutoff, 100).await.unwrap(),
        2,
        "one alert, one notification"
    );
    assert!(matches!(
        store.alert(old_resolved.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.alert(old_open.id).await.unwrap();
    store.alert(recent_resolved.id).await.unwrap();
    let left: Vec<Uuid> = store
        .notifications(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.notification.id)
        .collect();
    assert_eq!(
        left,
        [old_pending.id],
        "a notification still to deliver stays"
    );
    assert_eq!(store.prune(cutoff, 100).await.unwrap(), 0);
}

pub async fn a_group_is_claimed_whole_and_deferred_until_its_interval(fx: &Fixture) {
    let store = fx.open().await;
    let grouped = |minute: i64| Notification {
        group: Some("ops/rule=slow".into()),
        ..notification(minute)
    };
    // The first member is due at minute 1; the others came later and are due later.
    let members = [grouped(1), grouped(2), grouped(3)];
    let alone = notification(5);
    let mut writes: Vec<Write> = members
        .iter()
        .cloned()
        .map(|n| Write::Enqueue(Box::new(n)))
        .collect();
    writes.push(Write::Enqueue(Box::new(alone.clone())));
    store.apply(writes).await.unwrap();
    assert!(
        store
            .claim_notifications(at(0), at(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_notifications(at(1), at(10), 10).await.unwrap();
    let mut ids: Vec<Uuid> = claimed.iter().map(|n| n.id).collect();
    ids.sort();
    let mut expected: Vec<Uuid> = members.iter().map(|n| n.id).collect();
    expected.sort();
    assert_eq!(
        ids, expected,
        "the due member brings its whole group, not the others"
    );
    assert!(
        store
            .claim_notifications(at(4), at(5), 10)
            .await
            .unwrap()
            .is_empty(),
        "a claimed group is held by its claimer"
    );

    let deliver = |n: &Notification| Attempt {
        notification_id: n.id,
        at: at(1),
        took_ms: 3,
        status: Some(200),
        error: None,
        outcome: Outcome::Delivered,
    };
    store
        .apply(vec![
            Write::Attempt(deliver(&members[0])),
            Write::Attempt(deliver(&members[1])),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .group_sent(&["ops/rule=slow".into(), "nothing".into()])
            .await
            .unwrap(),
        BTreeMap::from([("ops/rule=slow".to_owned(), at(1))])
    );
    store
        .apply(vec![Write::Defer {
            ids: vec![members[2].id],
            until: at(6),
        }])
        .await
        .unwrap();
    let due: Vec<Uuid> = store
        .claim_notifications(at(5), at(6), 10)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(due, [alone.id], "a deferred member waits until its time");
    let due = store.claim_notifications(at(6), at(7), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].id, due[0].next_at, due[0].attempts),
        (members[2].id, at(6), 0)
    );
}

pub async fn silences_are_listed_until_they_end_and_expire_early(fx: &Fixture) {
    let store = fx.open().await;
    let silence = |start: i64, end: i64, comment: &str| Silence {
        id: Uuid::now_v7(),
        matchers: vec![Matcher::parse("pipeline=biz-*").unwrap()],
        starts_at: at(start),
        ends_at: at(end),
        comment: comment.into(),
        author: "ana".into(),
        created_at: at(0),
    };
    let past = silence(0, 10, "past");
    let now = silence(10, 60, "db maintenance");
    let ahead = silence(120, 180, "planned");
    store
        .apply(
            [&past, &now, &ahead]
                .into_iter()
                .map(|s| Write::AddSilence(Box::new(s.clone())))
                .collect(),
        )
        .await
        .unwrap();
    let listed = store.silences(at(20), 100).await.unwrap();
    assert_eq!(
        listed,
        [ahead.clone(), now.clone()],
        "in force and to come, newest first"
    );
    assert_eq!(store.silences(at(-1), 100).await.unwrap().len(), 3);
    assert!(now.is_active(at(20)) && !ahead.is_active(at(20)));
    assert!(now.matches(&alert("x", 0)), "biz-* matches biz-reports");

    store
        .apply(vec![
            Write::ExpireSilence {
                id: now.id,
                at: at(30),
            },
            Write::ExpireSilence {
                id: ahead.id,
                at: at(30),
            },
        ])
        .await
        .unwrap();
    assert!(
        store.silences(at(30), 100).await.unwrap().is_empty(),
        "both end at once"
    );
    let again = store
        .apply(vec![Write::ExpireSilence {
            id: now.id,
            at: at(40),
        }])
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    let unknown = store
        .apply(vec![Write::ExpireSilence {
            id: Uuid::now_v7(),
            at: at(40),
        }])
        .await
        .unwrap_err();
    assert!(matches!(unknown, StoreError::NotFound(_)), "{unknown:?}");
}
