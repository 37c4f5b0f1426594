//! `[[patterns]]` with real processes: alarming words in a step's output become findings of the
//! run, and a `pattern` rule holds for that run and clears on the next one without them.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use chrono::Utc;
use common::Bed;
use plantao_engine::alerts::{self, Verdict};
use plantao_engine::{Plan, RunRequest};
use plantao_model::{Severity, Trigger};

const ROOT: &str = r#"
[[patterns]]
name = "alarm"
keywords = ["emergencia", "hospital", "queda", "febre"]
severity = "critical"
steps = ["process"]

[[patterns]]
name = "fever"
regex = "temperatura (3[89]|4\\d)"
"#;

const PIPELINE: &str = r#"
[params.report]
default = "tudo tranquilo"
[[steps]]
name = "process"
run = "echo 'Relatório de Ana'; echo \"$PLANTAO_PARAM_REPORT\""
[[steps]]
name = "send"
run = "echo 'enviado ao hospital da família'"
[[alerts]]
name = "alarming-words"
kind = "pattern"
pattern = "alarm"
severity = "critical"
"#;

#[tokio::test]
async fn alarming_words_are_findings_and_a_pattern_rule_fires_on_them() {
    let bed = Bed::new(PIPELINE, ROOT, &[]).await;
    let run = |report: &str| {
        let request = RunRequest {
            params: [("report".to_owned(), report.to_owned())].into(),
            ..RunRequest::default()
        };
        let bed = &bed;
        async move {
            let (_keep, cancel) = tokio::sync::watch::channel(None);
            let plan = Plan::new(bed.config.pipeline("p").unwrap(), &request).unwrap();
            bed.runner
                .run(&plan, Trigger::Manual, cancel, &plantao_engine::Quiet)
                .await
                .unwrap()
        }
    };
    let bad = run("Dona Maria teve uma QUEDA; EMERGÊNCIA chamada. Temperatura 39,2").await;
    let detail = bed.detail(&bad).await;
    let found: Vec<(&str, &str, u32, Severity)> = detail
        .findings
        .iter()
        .map(|f| (f.step.as_str(), f.pattern.as_str(), f.line, f.severity))
        .collect();
    // `alarm` reads only `process` (so "hospital" in `send` is not one); `fever` reads every step.
    assert_eq!(
        found,
        [
            ("process", "alarm", 2, Severity::Critical),
            ("process", "fever", 2, Severity::Warning)
        ]
    );
    assert!(
        detail.findings[0]
            .excerpt
            .starts_with("Dona Maria teve uma QUEDA")
    );

    let judged = |id| {
        let (store, config) = (bed.store.clone(), bed.config.clone());
        async move {
            let e = alerts::evaluate_run(store.as_ref(), &config, id, Utc::now())
                .await
                .unwrap();
            let obs = e.findings[0].observation.clone();
            (obs.verdict, obs.value, obs.annotations)
        }
    };
    let (verdict, value, notes) = judged(bad.run_id).await;
    assert_eq!((verdict, value), (Verdict::Holds, Some(1.0)));
    assert_eq!(notes["stage"], "process");
    assert_eq!(notes["line"], "2");
    let good = run("tudo tranquilo, febril? não").await;
    assert!(bed.detail(&good).await.findings.is_empty());
    assert_eq!(judged(good.run_id).await.0, Verdict::Clear);
}
