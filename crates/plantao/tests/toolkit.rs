//! The operations toolkit's commands end to end on SQLite: `backup` and `restore` (the copy,
//! the retention by age, putting it back into a fresh folder), `prune`, `state`, and `doctor`
//! (passing on a good setup, failing on each broken prerequisite with its fix).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

/// A configuration folder: `root` as its plantao.toml, and a pipeline `ingest`.
fn folder(root: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
    std::fs::write(
        dir.path().join("pipelines/ingest.toml"),
        "[[steps]]\nname = \"load\"\nrun = \"echo rows=7 >> $PLANTAO_OUTPUT\"\n",
    )
    .unwrap();
    dir
}

fn plantao(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .arg("--config")
        .arg(dir.join("plantao.toml"))
        .args(args)
        .env_remove("PLANTAO_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap()
        ),
    )
}

#[test]
fn backups_are_pruned_by_age_and_restore_into_a_fresh_folder() {
    let source = folder("");
    for _ in 0..3 {
        assert_eq!(plantao(source.path(), &["run", "ingest"]).0, 0);
    }
    let backups = source.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let now = chrono::Utc::now();
    let old = format!(
        "plantao-{}.sqlite",
        (now - chrono::Duration::days(91)).format("%Y%m%dT%H%M%SZ")
    );
    let recent = format!(
        "plantao-{}.sqlite",
        (now - chrono::Duration::days(89)).format("%Y%m%dT%H%M%SZ")
    );
    for name in [&old, &recent, &"notes.txt".to_owned()] {
        std::fs::write(backups.join(name), "").unwrap();
    }
    let (code, out) = plantao(source.path(), &["backup", "--keep", "90d"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("backup written and checked") && out.contains("3 runs"),
        "{out}"
    );
    assert!(out.contains("removed 1 backup(s)"), "{out}");
    assert!(!backups.join(&old).exists());
    assert!(backups.join(&recent).exists() && backups.join("notes.txt").exists());
    let copy = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.metadata().unwrap().len() > 0)
        .unwrap();

    // Into the database it came from: refused without --force.
    let (code, out) = plantao(source.path(), &["restore", copy.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is not empty") && out.contains("--force"),
        "{out}"
    );

    let fresh = folder("");
    let (code, out) = plantao(fresh.path(), &["restore", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let runs = |dir: &Path| {
        let (code, out) = plantao(dir, &["runs", "--json"]);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    assert_eq!(runs(fresh.path()), runs(source.path()));
    let first = runs(fresh.path())[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        plantao(fresh.path(), &["show", &first, "--json"]),
        plantao(source.path(), &["show", &first, "--json"]),
        "stages and counters came along"
    );

    let (code, out) = plantao(fresh.path(), &["restore", "/nonexistent/plantao.sqlite"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/nonexistent/plantao.sqlite"), "{out}");
}

#[test]
fn prune_counts_in_a_dry_run_then_deletes_and_the_history_stays() {
    let dir = folder("");
    for _ in 0..2 {
        assert_eq!(plantao(dir.path(), &["run", "ingest"]).0, 0);
    }
    let stats = plantao(dir.path(), &["stats", "ingest"]);
    let (code, out) = plantao(dir.path(), &["prune", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("would delete") && out.contains(": 0 runs"),
        "the runs are recent: {out}"
    );
    let (code, out) = plantao(dir.path(), &["prune", "--older-than", "0s", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": 2 runs"), "{out}");
    assert_eq!(
        plantao(dir.path(), &["runs", "--json"])
            .1
            .matches("\"id\"")
            .count(),
        2
    );
    let (code, out) = plantao(dir.path(), &["prune", "--older-than", "0s"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deleted") && out.contains(": 2 runs"), "{out}");
    assert_eq!(plantao(dir.path(), &["runs", "--json"]).1.trim(), "[]");
    assert_eq!(
        plantao(dir.path(), &["stats", "ingest"]),
        stats,
        "rollups answer as before"
    );
}

#[test]
fn state_is_set_by_hand_read_by_steps_and_moved_by_a_success() {
    let dir = folder("");
    std::fs::write(
        dir.path().join("pipelines/ingest.toml"),
        "[[steps]]\nname = \"load\"\nrun = \"echo \\\"state.watermark=$(( PLANTAO_STATE_WATERMARK + 1 ))\\\" >> $PLANTAO_OUTPUT\"\n",
    )
    .unwrap();
    let (code, out) = plantao(dir.path(), &["state", "set", "ingest", "Watermark", "41"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("$PLANTAO_STATE_WATERMARK"), "{out}");
    assert_eq!(plantao(dir.path(), &["run", "ingest"]).0, 0);
    assert_eq!(
        plantao(dir.path(), &["state", "get", "ingest", "watermark"]),
        (0, "42\n".to_owned())
    );
    let (code, out) = plantao(dir.path(), &["state", "list", "ingest"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("watermark") && !out.contains("by hand"),
        "set by the run now: {out}"
    );
    let (code, out) = plantao(dir.path(), &["state", "get", "ingest", "nope"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no state key `nope`"), "{out}");
    let (code, out) = plantao(dir.path(), &["state", "set", "ingest", "bad-key", "1"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = plantao(dir.path(), &["audit"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("state.set"), "{out}");
    assert_eq!(
        plantao(dir.path(), &["state", "unset", "ingest", "watermark"]).0,
        0
    );
    assert!(
        plantao(dir.path(), &["state", "list", "ingest"])
            .1
            .contains("no state yet")
    );
}

#[test]
fn a_backup_runs_as_a_step_of_a_pipeline() {
    let dir = folder("");
    std::fs::write(
        dir.path().join("pipelines/nightly-backup.toml"),
        "[[steps]]\nname = \"backup\"\nrun = \"\\\"$PLANTAO_BIN_UNDER_TEST\\\" backup --keep 90d\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plantao"))
        .current_dir(std::env::temp_dir())
        .arg("--config")
        .arg(dir.path().join("plantao.toml"))
        .args(["run", "nightly-backup"])
        .env_remove("PLANTAO_CONFIG")
        .env("PLANTAO_BIN_UNDER_TEST", env!("CARGO_BIN_EXE_plantao"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Vec<_> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        made.len(),
        1,
        "the step found the configuration through PLANTAO_CONFIG: {made:?}"
    );
    assert!(made[0].starts_with("plantao-") && made[0].ends_with(".sqlite"));
}

/// The line of check `name` that failed, and the fix given for it.
fn failed<'a>(out: &'a str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(&format!("✗ {name}")))
        .unwrap_or_else(|| panic!("no failed {name} check in:\n{out}"));
    let fix = lines[i + 1..]
        .iter()
        .take_while(|l| !l.starts_with(['✓', '!', '✗']))
        .find(|l| l.trim_start().starts_with("fix: "))
        .unwrap_or_else(|| panic!("no fix for {name} in:\n{out}"));
    (lines[i], fix)
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A webhook receiver that answers 200 to one request.
fn receiver() -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let n = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (port, handle)
}

#[test]
fn a_good_setup_passes_and_sends_a_test_message() {
    let (port, received) = receiver();
    let listen = closed_port();
    let dir = folder(&format!(
        "[server]\nlisten = \"127.0.0.1:{listen}\"\n\n\
         [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    ));
    let (code, out) = plantao(dir.path(), &["doctor", "--send-test"]);
    assert_eq!(code, 0, "{out}");
    for line in [
        "✓ config",
        "✓ database     SQLite",
        "✓ migrations   at head",
        "✓ channel      `ops` accepted a test message",
        "✓ listen",
        "checks passed",
    ] {
        assert!(out.contains(line), "{line} missing in:\n{out}");
    }
    // Free disk is the machine's: a passing check or a warning, never a failure.
    assert!(
        out.contains("✓ disk         the database:")
            || out.contains("! disk         the database:"),
        "{out}"
    );
    assert!(received.join().unwrap().starts_with("POST /hook"));
}

#[test]
fn each_broken_prerequisite_fails_with_its_fix() {
    let dir = folder("[server\nlisten = 1");
    let (code, out) = plantao(dir.path(), &["doctor"]);
    assert_eq!(code, 1, "{out}");
    let (line, fix) = failed(&out, "config");
    assert!(line.contains("is not valid"), "{out}");
    assert!(fix.contains("plantao validate"), "{out}");

    let dead = closed_port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = folder(&format!(
        "[server]\nlisten = \"{}\"\n\n\
         [storage]\nurl = \"postgres://plantao:hunter2secret@127.0.0.1:{dead}/ops\"\n\n\
         [connections.warehouse]\nurl = \"postgres://127.0.0.1:{dead}/dw\"\n\n\
         [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/hook\"\n",
        taken.local_addr().unwrap()
    ));
    let (code, out) = plantao(dir.path(), &["doctor", "--send-test"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        !out.contains("hunter2secret"),
        "the password never shows: {out}"
    );
    let (_, fix) = failed(&out, "database");
    assert!(fix.contains("storage.url"), "{out}");
    let (line, fix) = failed(&out, "connection");
    assert!(
        line.contains("`warehouse`") && fix.contains("connections.warehouse.url"),
        "{out}"
    );
    let (line, _) = failed(&out, "channels");
    assert!(line.contains("database is unreachable"), "{out}");
    let (line, fix) = failed(&out, "listen");
    assert!(
        line.contains("taken by another program") && fix.contains("server.listen"),
        "{out}"
    );
    assert!(out.contains("checks failed"), "{out}");
    drop(taken);
}

#[test]
fn a_channel_that_refuses_the_test_fails() {
    let dead = closed_port();
    let dir = folder(&format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\n\n\
         [[channels]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{dead}/hook\"\ntimeout = \"2s\"\n",
        closed_port()
    ));
    let (code, out) = plantao(dir.path(), &["doctor", "--send-test"]);
    assert_eq!(code, 1, "{out}");
    let (line, fix) = failed(&out, "channel");
    assert!(line.contains("`ops` did not accept the test"), "{out}");
    assert!(fix.contains("address and credentials"), "{out}");
}

/// Writes a schema version by hand into the SQLite file of `dir`, as another plantao would.
fn set_schema_version(dir: &Path, version: i64) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", dir.join("plantao.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    });
}

#[test]
fn doctor_tells_a_schema_behind_from_one_ahead() {
    let dir = folder(&format!(
        "[server]\nlisten = \"127.0.0.1:{}\"\n",
        closed_port()
    ));
    assert_eq!(plantao(dir.path(), &["run", "ingest"]).0, 0);
    set_schema_version(dir.path(), 10);
    let (code, out) = plantao(dir.path(), &["doctor"]);
    assert_eq!(code, 0, "behind is a warning: {out}");
    assert!(
        out.contains("! migrations   at 10 of 14: the next start applies 4 migration(s)"),
        "{out}"
    );
    assert!(
        out.contains("plantao backup"),
        "the fix says to back up first: {out}"
    );
    set_schema_version(dir.path(), 99);
    let (code, out) = plantao(dir.path(), &["doctor"]);
    assert_eq!(code, 1, "{out}");
    let (line, fix) = failed(&out, "migrations");
    assert!(line.contains("a newer plantao wrote it"), "{out}");
    assert!(fix.contains("restore a backup"), "{out}");
}
