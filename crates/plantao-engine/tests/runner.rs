//! The runner, with real processes and a real SQLite file: each behaviour a user relies on.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;

use common::{Bed, stage_statuses};
use plantao_engine::{Plan, PlanError, RunRequest};
use plantao_model::{ExprValue, RunStatus, StageStatus};

#[tokio::test]
async fn steps_run_in_order_and_report_counters_and_metrics() {
    let bed = Bed::simple(
        r#"
[metrics]
approval_rate = "process.approved / (process.approved + process.failed) * 100"
empty_rate = "process.approved / process.zero"

[[steps]]
name = "sync"
run = "echo novos=12 >> $PLANTAO_OUTPUT; echo synced"

[[steps]]
name = "process"
run = "printf 'approved=7\nfailed=3\nzero=0\nnote<<END\nall good\nEND\n' >> $PLANTAO_OUTPUT"
"#,
    )
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(
        report.metrics[0],
        ("approval_rate".into(), ExprValue::Number(70.0))
    );
    assert_eq!(report.metrics[1], ("empty_rate".into(), ExprValue::NoData));
    let d = bed.detail(&report).await;
    assert_eq!(d.run.status, RunStatus::Succeeded);
    assert_eq!(d.run.node.as_deref(), Some("test-node"));
    assert!(d.run.duration_ms.is_some());
    let steps: Vec<(&str, StageStatus, Option<i32>)> = d
        .stages
        .iter()
        .map(|s| (s.step.as_str(), s.status, s.exit_code))
        .collect();
    assert_eq!(
        steps,
        [
            ("sync", StageStatus::Succeeded, Some(0)),
            ("process", StageStatus::Succeeded, Some(0))
        ]
    );
    assert!(
        d.stages[1].started_at >= d.stages[0].finished_at.unwrap(),
        "process ran after sync"
    );
    assert_eq!(d.stages[0].log, "synced\n");
    assert!(d.stages[0].cpu_user_ms.is_some() && d.stages[0].peak_rss_kb.unwrap() > 0);
    let counters: Vec<(&str, &str, f64)> = d
        .counters
        .iter()
        .map(|c| (c.step.as_str(), c.name.as_str(), c.value))
        .collect();
    assert_eq!(
        counters,
        [
            ("process", "approved", 7.0),
            ("process", "failed", 3.0),
            ("process", "zero", 0.0),
            ("sync", "novos", 12.0)
        ]
    );
    assert!(
        d.outputs
            .iter()
            .any(|o| o.key == "note" && o.value == "all good")
    );
}

#[tokio::test]
async fn later_steps_read_earlier_outputs_and_parameters_from_the_environment_only() {
    let bed = Bed::simple(
        r#"
[params.target]
default = "nobody"

[[steps]]
name = "first"
run = "echo greeting=olá >> $PLANTAO_OUTPUT"

[[steps]]
name = "second"
run = "echo \"$PLANTAO_OUTPUT_FIRST_GREETING $PLANTAO_PARAM_TARGET $PLANTAO_STEP $PLANTAO_ATTEMPT $PLANTAO_TRIGGER $PLANTAO_PIPELINE\""
"#,
    )
    .await;
    let marker = bed.path("injected");
    let evil = format!(
        "$(touch {}) `touch {}`; touch {}",
        marker.display(),
        marker.display(),
        marker.display()
    );
    let report = bed
        .run_with(RunRequest {
            params: BTreeMap::from([("target".into(), evil.clone())]),
            ..Default::default()
        })
        .await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let d = bed.detail(&report).await;
    assert_eq!(d.stages[1].log, format!("olá {evil} second 1 manual p\n"));
    assert!(!marker.exists(), "a parameter was executed by the shell");
    assert_eq!(d.run.params.get("target"), Some(&evil));
}

#[tokio::test]
async fn a_failing_step_stops_the_run_and_finally_still_runs() {
    let bed = Bed::simple(
        r#"
[[steps]]
name = "ok"
run = "true"

[[steps]]
name = "breaks"
run = "echo 'disk full' >&2; exit 7"

[[steps]]
name = "never"
run = "true"

[[finally]]
name = "cleanup"
run = "echo cleaned"
"#,
    )
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error_stage.as_deref(), Some("breaks"));
    assert_eq!(report.error_message.as_deref(), Some("exit code 7"));
    assert_eq!(
        stage_statuses(&report),
        [
            ("ok".into(), StageStatus::Succeeded),
            ("breaks".into(), StageStatus::Failed),
            ("never".into(), StageStatus::Skipped),
            ("cleanup".into(), StageStatus::Succeeded),
        ]
    );
    let d = bed.detail(&report).await;
    let breaks = d.stages.iter().find(|s| s.step == "breaks").unwrap();
    assert_eq!(
        (breaks.exit_code, breaks.log.as_str()),
        (Some(7), "disk full\n")
    );
    assert_eq!(d.run.error_message.as_deref(), Some("exit code 7"));
}

#[tokio::test]
async fn continue_on_error_ends_partial() {
    let bed = Bed::simple(
        "[[steps]]\nname = \"a\"\nrun = \"exit 1\"\ncontinue_on_error = true\n\n[[steps]]\nname = \"b\"\nrun = \"echo n=1 >> $PLANTAO_OUTPUT\"\n",
    )
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(
        stage_statuses(&report),
        [
            ("a".into(), StageStatus::Failed),
            ("b".into(), StageStatus::Succeeded)
        ]
    );
    assert_eq!(report.error_stage.as_deref(), Some("a"));
}

#[tokio::test]
async fn retries_record_every_attempt() {
    let bed = Bed::in_folder(|dir| {
        format!(
            "[[steps]]\nname = \"flaky\"\nrun = \"n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo try=$n >> $PLANTAO_OUTPUT; [ $n -ge 3 ]\"\nretries = 3\nretry_backoff = {{ initial = \"10ms\", max = \"20ms\" }}\n",
            c = dir.join("count").display()
        )
    })
    .await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(
        (report.stages[0].attempt, report.stages[0].attempts),
        (3, 4)
    );
    let d = bed.detail(&report).await;
    let attempts: Vec<(u32, StageStatus)> =
        d.stages.iter().map(|s| (s.attempt, s.status)).collect();
    assert_eq!(
        attempts,
        [
            (1, StageStatus::Failed),
            (2, StageStatus::Failed),
            (3, StageStatus::Succeeded)
        ]
    );
    assert_eq!(
        d.counters[0].value, 3.0,
        "the counters are the final attempt's"
    );
}

#[tokio::test]
async fn skip_and_only_choose_the_steps() {
    let bed = Bed::simple(
        "[[steps]]\nname = \"a\"\nrun = \"true\"\n[[steps]]\nname = \"b\"\nrun = \"true\"\n[[steps]]\nname = \"c\"\nrun = \"true\"\n",
    )
    .await;
    let skipped = bed
        .run_with(RunRequest {
            skip: vec!["b".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(
        stage_statuses(&skipped),
        [
            ("a".into(), StageStatus::Succeeded),
            ("b".into(), StageStatus::Skipped),
            ("c".into(), StageStatus::Succeeded)
        ]
    );
    assert_eq!(skipped.status, RunStatus::Succeeded);
    let only = bed
        .run_with(RunRequest {
            only: vec!["c".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(
        stage_statuses(&only),
        [
            ("a".into(), StageStatus::Skipped),
            ("b".into(), StageStatus::Skipped),
            ("c".into(), StageStatus::Succeeded)
        ]
    );
    let p = bed.config.pipeline("p").unwrap();
    let err = Plan::new(
        p,
        &RunRequest {
            skip: vec!["z".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::UnknownStep { .. }), "{err}");
}

#[tokio::test]
async fn parameters_are_checked_before_anything_runs() {
    let bed = Bed::simple("[params.day]\nrequired = true\n[params.mode]\ndefault = \"fast\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n").await;
    let p = bed.config.pipeline("p").unwrap();
    let missing = Plan::new(p, &RunRequest::default()).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "pipeline `p` needs the parameter `day`: pass --param day=VALUE"
    );
    let unknown = Plan::new(
        p,
        &RunRequest {
            params: BTreeMap::from([("dya".into(), "1".into())]),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("has no parameter `dya`; its parameters are: day, mode"),
        "{unknown}"
    );
    let ok = Plan::new(
        p,
        &RunRequest {
            params: BTreeMap::from([("day".into(), "2026-11-01".into())]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ok.params.get("mode").map(String::as_str), Some("fast"));
}

#[tokio::test]
async fn secrets_are_hidden_in_stored_logs() {
    let secret = "planted-fake-secret-5b2c";
    let bed = Bed::new(
        "[env]\nTOKEN = \"${env:TOKEN}\"\n[[steps]]\nname = \"leak\"\nrun = \"echo token is $TOKEN; echo $TOKEN >&2; exit 1\"\n",
        "",
        &[("TOKEN", secret)],
    )
    .await;
    let report = bed.run().await;
    let d = bed.detail(&report).await;
    assert_eq!(d.stages[0].log, "token is ***\n***\n");
    let json = serde_json::to_string(&d).unwrap();
    assert!(!json.contains(secret));
}

#[tokio::test]
async fn a_program_that_does_not_exist_fails_with_its_name() {
    let bed =
        Bed::simple("[[steps]]\nname = \"x\"\nargv = [\"/no/such/program\", \"--flag\"]\n").await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.stages[0].error.clone().unwrap();
    assert!(
        error.starts_with("cannot run `/no/such/program`"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_output_lines_are_warnings_in_the_log() {
    let bed = Bed::simple("[[steps]]\nname = \"x\"\nrun = \"echo 'not a pair' >> $PLANTAO_OUTPUT; echo ok=1 >> $PLANTAO_OUTPUT\"\n").await;
    let report = bed.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let d = bed.detail(&report).await;
    assert!(
        d.stages[0]
            .log
            .contains("warning: $PLANTAO_OUTPUT line 1: `not a pair` is not `key=value`"),
        "{}",
        d.stages[0].log
    );
    assert_eq!(d.counters[0].value, 1.0);
}

#[tokio::test]
async fn the_lease_lives_while_the_process_does() {
    let bed = Bed::simple("[[steps]]\nname = \"a\"\nrun = \"true\"\n").await;
    let lease = plantao_engine::Lease::acquire(bed.store.clone(), "run")
        .await
        .unwrap();
    let nodes = bed.store.nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (nodes[0].id.as_str(), nodes[0].kind.as_str(), nodes[0].pid),
        (lease.id(), "run", std::process::id())
    );
    assert!(nodes[0].expires_at > nodes[0].renewed_at);
    lease.release().await.unwrap();
    assert!(bed.store.nodes().await.unwrap().is_empty());
}
