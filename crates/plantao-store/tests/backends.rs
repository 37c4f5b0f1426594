//! What is particular to each backend: SQLite's file settings, and how an unreachable
//! PostgreSQL is reported.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use plantao_store::{StoreError, open};
use sqlx::Connection;

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plantao.db");
    let url = format!("sqlite://{}", path.display());
    let store = open(&url).await.unwrap();
    assert!(path.exists(), "the file is created when missing");
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store.close().await;
}

/// Several programs opening a new file at once race to switch it to WAL mode, and SQLite
/// answers "database is locked" at once to the losers, whatever the busy timeout: every one of
/// them must still open it (a `plantao run` beside a starting daemon did not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_opened_by_many_at_once_all_open() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plantao.db").display());
        let opens: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn({
                    let url = url.clone();
                    async move { open(&url).await }
                })
            })
            .collect();
        for opened in opens {
            let store = opened
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            store.close().await;
        }
    }
}

#[tokio::test]
async fn sqlite_in_a_missing_folder_says_where() {
    let err = open("sqlite:///nonexistent-folder-for-plantao/x.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent-folder-for-plantao/x.db"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_postgres_is_reported_with_the_password_hidden() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let started = Instant::now();
    let err = open("postgres://app:pl4nted-pw@127.0.0.1:1/app")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(
        text.contains("postgres://app:***@127.0.0.1:1/app"),
        "{text}"
    );
    assert!(!text.contains("pl4nted-pw"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn other_schemes_are_refused_with_the_forms_that_work() {
    let err = open("mysql://app:pw@db/app").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "`mysql://app:***@db/app` is not a storage URL: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    );
}
