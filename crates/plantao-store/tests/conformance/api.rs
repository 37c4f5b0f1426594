//! What the HTTP API keeps: tokens (hashes only), the audit log, the steps a queued run runs,
//! and listing runs by when they were queued.

use chrono::Duration;
use plantao_model::{Role, RunId, Trigger};
use plantao_store::*;

use super::common::*;
use super::harness::Fixture;

fn token(name: &str, role: Role, hash: &str) -> Token {
    Token {
        name: name.to_owned(),
        role,
        hash: hash.to_owned(),
        created_at: at(0),
    }
}

pub async fn tokens_are_found_by_hash_and_revoked(fx: &Fixture) {
    let store = fx.open().await;
    store
        .apply(vec![
            Write::CreateToken(token("ci", Role::Operator, "aa11")),
            Write::CreateToken(token("grafana", Role::Viewer, "bb22")),
        ])
        .await
        .unwrap();
    let found = store.token_by_hash("aa11").await.unwrap().unwrap();
    assert_eq!((found.name.as_str(), found.role), ("ci", Role::Operator));
    assert_eq!(found.created_at, at(0));
    assert_eq!(store.token_by_hash("cc33").await.unwrap(), None);

    let again = store
        .apply(vec![Write::CreateToken(token("ci", Role::Admin, "dd44"))])
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    let names: Vec<String> = store
        .tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["ci", "grafana"]);

    store
        .apply(vec![Write::RevokeToken { name: "ci".into() }])
        .await
        .unwrap();
    assert_eq!(store.token_by_hash("aa11").await.unwrap(), None);
    let gone = store
        .apply(vec![Write::RevokeToken { name: "ci".into() }])
        .await
        .unwrap_err();
    assert!(matches!(gone, StoreError::NotFound(_)), "{gone:?}");
}

pub async fn the_audit_log_lists_newest_first_in_pages(fx: &Fixture) {
    let store = fx.open().await;
    let entry = |i: i64| AuditEntry {
        at: at(i),
        actor: "ci".into(),
        action: "run.trigger".into(),
        target: format!("p{i}"),
        detail: (i == 2).then(|| "params: day=2026-03-01".to_owned()),
    };
    store
        .apply((0..5).map(|i| Write::Audit(entry(i))).collect())
        .await
        .unwrap();
    let first = store.audit(None, 3).await.unwrap();
    let targets: Vec<&str> = first.iter().map(|r| r.entry.target.as_str()).collect();
    assert_eq!(targets, ["p4", "p3", "p2"]);
    assert_eq!(first[2].entry, entry(2));
    let rest = store.audit(Some(first[2].id), 3).await.unwrap();
    let targets: Vec<&str> = rest.iter().map(|r| r.entry.target.as_str()).collect();
    assert_eq!(targets, ["p1", "p0"]);
}

pub async fn a_queued_run_keeps_the_steps_it_was_asked_to_run(fx: &Fixture) {
    let store = fx.open().await;
    let mut run = new_run("p", Trigger::Api, None);
    run.selection = StepSelection {
        skip: vec!["send".into()],
        only: vec!["extract".into(), "send".into()],
    };
    let plain = new_run("p", Trigger::Api, None);
    store
        .apply(vec![
            Write::InsertRun(run.clone()),
            Write::InsertRun(plain.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.run(run.id).await.unwrap().selection, run.selection);
    assert!(store.run(plain.id).await.unwrap().selection.is_all());
}

pub async fn runs_are_listed_by_when_they_were_queued(fx: &Fixture) {
    let store = fx.open().await;
    let t = at(0);
    let mut ids = Vec::new();
    for hours in 0..4 {
        let when = t + Duration::hours(hours);
        let millis = u64::try_from(when.timestamp_millis()).unwrap();
        let mut run = new_run("p", Trigger::Manual, None);
        run.id = RunId::from_millis(millis, 0);
        run.queued_at = when;
        ids.push(run.id);
        store.apply(vec![Write::InsertRun(run)]).await.unwrap();
    }
    let between = store
        .runs(&RunFilter {
            since: Some(t + Duration::hours(1)),
            until: Some(t + Duration::hours(3)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let found: Vec<RunId> = between.iter().map(|r| r.id).collect();
    assert_eq!(found, [ids[2], ids[1]]);
}
