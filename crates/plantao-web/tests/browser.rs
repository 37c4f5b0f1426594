//! The dashboard in a real browser: Debian's headless Chromium driven through chromedriver, as an
//! operator on a laptop and a viewer on a phone would use it. Screenshots go to
//! `target/tmp/screenshots/`.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;

use common::Server;
use plantao_model::{Role, RunStatus};
use serde_json::{Value, json};
use webdriver::{Driver, Session};

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

async fn sign_in(s: &Session<'_>, base: &str, token: &str) {
    s.goto(&format!("{base}/")).await;
    s.type_into("#token", token).await;
    s.click("form[action='/login'] button").await;
    s.wait_for("#system-status").await;
}

/// Errors the page's console reported (a missing asset, a script error).
async fn console_errors(s: &Session<'_>) -> Vec<String> {
    s.console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .map(|(_, m)| m)
        .collect()
}

async fn eval_bool(s: &Session<'_>, script: &str) -> bool {
    s.eval(script).await == Value::Bool(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_pipeline_and_dismisses_an_alert_in_a_real_browser() {
    if !webdriver::available() {
        eprintln!("skipped: no Chromium here (scripts/test installs it)");
        return;
    }
    let server = Server::start("sqlite", "").await;
    let operator = server.token("ana", Role::Operator).await;
    let (_, queued) = server
        .post("/api/pipelines/quick/runs", &operator, json!({}))
        .await;
    let seeded: plantao_model::RunId = queued["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(server.ended(seeded).await, RunStatus::Succeeded);

    let driver = Driver::start().await;
    let s = driver.session(1280, 1400, false).await;
    let base = &server.base;
    sign_in(&s, base, &operator).await;
    assert!(
        eval_bool(
            &s,
            "return document.querySelector('[data-pipeline=quick] .runs').textContent.trim() === '1'"
        )
        .await,
        "today's card counts the seeded run"
    );
    assert!(
        eval_bool(
            &s,
            "return document.querySelectorAll('.runrow').length === 1"
        )
        .await
    );
    s.screenshot(&shots().join("overview.png")).await;

    // One click runs the pipeline; the page shows it queued, running, then succeeded, all
    // without a reload (the marker set on this page survives).
    s.eval("window.plantaoMarker = 42; return true").await;
    s.click("[data-pipeline=quick] .run-now").await;
    s.wait_until(
        "return document.querySelectorAll('.runrow').length === 2",
        "the new run appears",
    )
    .await;
    s.wait_until(
        "return document.querySelector('.runrow [data-status]').dataset.status === 'ok'",
        "the new run succeeds on the page",
    )
    .await;
    assert!(
        eval_bool(&s, "return window.plantaoMarker === 42").await,
        "the page was reloaded"
    );
    assert!(
        eval_bool(&s, "return document.querySelector('[data-pipeline=quick] .runs').textContent.trim() === '2'").await
    );
    // A row expands to its stages, and stays open across a refresh.
    s.click(".runrow summary").await;
    assert!(eval_bool(&s, "return document.querySelector('.runrow').open && document.querySelectorAll('.runrow[open] .stages tbody tr').length === 2").await);

    // The run's page: two stages on the timeline, their logs.
    s.click(".runrow summary a").await;
    s.wait_for(".gantt rect").await;
    assert!(
        eval_bool(
            &s,
            "return document.querySelectorAll('.gantt rect').length === 2"
        )
        .await
    );
    assert!(
        eval_bool(
            &s,
            "const t = document.body.innerText; return t.includes('extract') && t.includes('load')"
        )
        .await
    );
    s.screenshot(&shots().join("run.png")).await;

    // Dismissing a firing alert (opened now: the run above, a success, resolves the rule's
    // earlier ones).
    let alert = server.open_alert("quick-failed").await;
    s.goto(&format!("{base}/")).await;
    s.click(&format!("[data-alert='{alert}'] .dismiss")).await;
    s.wait_until(
        &format!("return document.querySelector(\"[data-alert='{alert}']\") === null"),
        "the dismissed alert leaves the list",
    )
    .await;
    assert!(server.store.alert(alert).await.unwrap().dismissed);

    // Portuguese, remembered across pages.
    s.click("a.lang").await;
    s.wait_until(
        "return document.querySelector('h1').textContent.trim() === 'Central de Operações'",
        "the overview in Portuguese",
    )
    .await;
    assert!(eval_bool(&s, "return document.documentElement.lang === 'pt-BR'").await);
    s.screenshot(&shots().join("overview-pt-BR.png")).await;
    for (path, name) in [
        ("/pipelines", "pipelines"),
        ("/pipelines/quick", "pipeline"),
        ("/checks", "checks"),
        ("/alerts", "alerts"),
        ("/settings", "settings"),
    ] {
        s.goto(&format!("{base}{path}")).await;
        s.wait_for("#refreshed").await;
        assert!(
            eval_bool(&s, "return !document.body.innerText.includes('⟦')").await,
            "{path}"
        );
        s.screenshot(&shots().join(format!("{name}-pt-BR.png")))
            .await;
    }
    assert!(
        eval_bool(
            &s,
            "return document.body.innerText.includes('Configurações')"
        )
        .await
    );
    let errors = console_errors(&s).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    s.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_on_a_phone_reads_everything_and_cannot_run() {
    if !webdriver::available() {
        eprintln!("skipped: no Chromium here (scripts/test installs it)");
        return;
    }
    let server = Server::start("sqlite", "").await;
    let viewer = server.token("vera", Role::Viewer).await;
    let admin = server.token("root", Role::Admin).await;
    let (_, queued) = server
        .post("/api/pipelines/quick/runs", &admin, json!({}))
        .await;
    let run: plantao_model::RunId = queued["id"].as_str().unwrap().parse().unwrap();
    server.ended(run).await;
    server.open_alert("quick-failed").await;

    let driver = Driver::start().await;
    let s = driver.session(360, 740, true).await;
    let base = &server.base;
    sign_in(&s, base, &viewer).await;
    assert!(eval_bool(&s, "return window.innerWidth === 360").await);
    assert!(eval_bool(&s, "return document.querySelector('.run-now') === null").await);
    assert!(eval_bool(&s, "return document.querySelector('.dismiss') === null").await);
    let errors = console_errors(&s).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    // The server refuses the form even when posted by hand (the console reports the 403).
    let status = s
        .eval(
            "const csrf = document.querySelector('input[name=csrf]').value; \
             return fetch('/pipelines/quick/run', {method: 'POST', body: new URLSearchParams({csrf, back: '/'})}).then(r => r.status)",
        )
        .await;
    assert_eq!(status, json!(403));
    let refused = console_errors(&s).await;
    assert!(
        refused.len() == 1 && refused[0].contains("403"),
        "{refused:?}"
    );
    for (path, name) in [
        ("/".to_owned(), "overview"),
        ("/pipelines".to_owned(), "pipelines"),
        ("/pipelines/quick".to_owned(), "pipeline"),
        (format!("/runs/{run}"), "run"),
        ("/checks".to_owned(), "checks"),
        ("/alerts".to_owned(), "alerts"),
        ("/settings".to_owned(), "settings"),
    ] {
        s.goto(&format!("{base}{path}")).await;
        s.wait_for("#refreshed").await;
        assert!(
            eval_bool(
                &s,
                "return document.documentElement.scrollWidth <= window.innerWidth"
            )
            .await,
            "{path} scrolls sideways at 360 px: {}",
            s.eval("return document.documentElement.scrollWidth").await
        );
        s.screenshot(&shots().join(format!("phone-{name}.png")))
            .await;
    }
    let errors = console_errors(&s).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    s.close().await;
    server.stop().await;
}
