//! State, watermarks and unchanged inputs, with real processes and a real SQLite file.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use common::Bed;
use plantao_engine::{INPUTS_UNCHANGED, RunRequest};
use plantao_model::RunStatus;

/// A step that prints what it was told and moves the watermark; it fails when `fail` exists.
const WATERMARK: &str = r#"
[[steps]]
name = "ingest"
run = """
echo "seen=${PLANTAO_STATE_WATERMARK:-none} last=${PLANTAO_LAST_SUCCESS_AT:-never}"
echo "state.watermark=$(( ${PLANTAO_STATE_WATERMARK:-0} + 1 ))" >> $PLANTAO_OUTPUT
echo "state.Note<<END" >> $PLANTAO_OUTPUT
printf 'line one\nline two\nEND\n' >> $PLANTAO_OUTPUT
test ! -e fail
"""
"#;

async fn watermark(bed: &Bed) -> Option<String> {
    bed.store
        .state("p")
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.key == "watermark")
        .map(|e| e.value)
}

#[tokio::test]
async fn state_moves_only_when_a_run_succeeds() {
    let bed = Bed::simple(&format!("working_dir = \".\"\n{WATERMARK}")).await;
    let first = bed.run().await;
    assert_eq!(first.status, RunStatus::Succeeded);
    let log = &bed.detail(&first).await.stages[0].log;
    assert_eq!(log, "seen=none last=never\n");
    assert_eq!(watermark(&bed).await.as_deref(), Some("1"));
    let state = bed.store.state("p").await.unwrap();
    let note = state.iter().find(|e| e.key == "note").unwrap();
    assert_eq!(note.value, "line one\nline two");
    assert_eq!(note.run_id, Some(first.run_id));

    // A failed run sees the state, reports a new watermark, and moves nothing.
    std::fs::write(bed.path("fail"), "").unwrap();
    let failed = bed.run().await;
    assert_eq!(failed.status, RunStatus::Failed);
    let log = &bed.detail(&failed).await.stages[0].log;
    let finished = bed
        .store
        .run(first.run_id)
        .await
        .unwrap()
        .finished_at
        .unwrap();
    assert_eq!(
        log,
        &format!(
            "seen=1 last={}\n",
            finished.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    );
    assert_eq!(watermark(&bed).await.as_deref(), Some("1"));

    std::fs::remove_file(bed.path("fail")).unwrap();
    assert_eq!(bed.run().await.status, RunStatus::Succeeded);
    assert_eq!(watermark(&bed).await.as_deref(), Some("2"));
}

#[tokio::test]
async fn unchanged_inputs_skip_a_changed_byte_runs_and_force_runs() {
    let bed = Bed::simple(
        r#"
inputs = ["data/Folha_IA.xlsx", "exports/*.csv"]

[[steps]]
name = "load"
run = "echo loaded"
"#,
    )
    .await;
    let data = bed.path("data");
    let exports = bed.path("exports");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&exports).unwrap();
    std::fs::write(data.join("Folha_IA.xlsx"), "planilha v1").unwrap();
    std::fs::write(exports.join("a.csv"), "1,2").unwrap();

    let first = bed.run().await;
    assert_eq!(first.status, RunStatus::Succeeded);
    let inputs = bed.detail(&first).await.inputs;
    let paths: Vec<&str> = inputs.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["data/Folha_IA.xlsx", "exports/a.csv"]);
    assert_eq!(inputs[0].bytes, 11);

    let skipped = bed.run().await;
    assert_eq!(skipped.status, RunStatus::Skipped);
    assert!(skipped.stages.is_empty(), "no step ran");
    assert!(skipped.reason.as_deref().unwrap().contains("unchanged"));
    let detail = bed.detail(&skipped).await;
    assert_eq!(detail.run.reason.as_deref(), Some(INPUTS_UNCHANGED));
    assert_eq!(
        detail.inputs, inputs,
        "the hashes are kept with the skipped run"
    );

    // One changed byte.
    std::fs::write(data.join("Folha_IA.xlsx"), "planilha v2").unwrap();
    assert_eq!(bed.run().await.status, RunStatus::Succeeded);
    assert_eq!(bed.run().await.status, RunStatus::Skipped);

    // A new file matched by a pattern.
    std::fs::write(exports.join("b.csv"), "").unwrap();
    assert_eq!(bed.run().await.status, RunStatus::Succeeded);

    let forced = bed
        .run_with(RunRequest {
            force: true,
            ..RunRequest::default()
        })
        .await;
    assert_eq!(forced.status, RunStatus::Succeeded);
    assert!(bed.store.run(forced.run_id).await.unwrap().force);
}

#[tokio::test]
async fn a_failed_run_does_not_become_what_later_runs_compare_with() {
    let bed = Bed::simple(
        r#"
inputs = "in.txt"
working_dir = "."

[[steps]]
name = "load"
run = "test ! -e fail"
"#,
    )
    .await;
    std::fs::write(bed.path("in.txt"), "x").unwrap();
    std::fs::write(bed.path("fail"), "").unwrap();
    assert_eq!(bed.run().await.status, RunStatus::Failed);
    std::fs::remove_file(bed.path("fail")).unwrap();
    // Same file as the failed run saw: it runs, since no success has seen it.
    assert_eq!(bed.run().await.status, RunStatus::Succeeded);
    assert_eq!(bed.run().await.status, RunStatus::Skipped);
}

#[tokio::test]
async fn folders_are_not_inputs_and_no_files_never_skip() {
    let bed = Bed::simple(
        r#"
inputs = ["exports/*"]

[[steps]]
name = "load"
run = "echo loaded"
"#,
    )
    .await;
    std::fs::create_dir_all(bed.path("exports/2024")).unwrap();
    // Only a folder matches: nothing to compare, so every run goes ahead.
    for _ in 0..2 {
        let report = bed.run().await;
        assert_eq!(report.status, RunStatus::Succeeded);
        assert!(bed.detail(&report).await.inputs.is_empty());
    }
}
