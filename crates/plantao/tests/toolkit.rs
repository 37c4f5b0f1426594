//! The operations toolkit's commands end to end on SQLite: `backup` and `restore` (the copy,
//! the retention by age, putting it back into a fresh folder), `prune`, `state`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("plantao.toml"), "").unwrap();
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
    let source = folder();
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

    let fresh = folder();
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
    let dir = folder();
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
    let dir = folder();
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
    let dir = folder();
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
