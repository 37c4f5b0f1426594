//! `[[heartbeats]]`, `[pings]`, `[self_heartbeat]` and heartbeat rules: what loads, and what a
//! user sees for each mistake.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use plantao_config::{CheckEvent, Condition, Expected, load};

fn config(root: &str) -> Result<plantao_config::Config, Vec<String>> {
    with_files(root, &[])
}

/// `root` as plantao.toml, a pipeline `reports`, and `files` in pipelines/ (name, text).
fn with_files(root: &str, files: &[(&str, &str)]) -> Result<plantao_config::Config, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/reports.toml"),
        "[[steps]]\nname = \"a\"\nrun = \"true\"\n",
    )
    .unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(format!("pipelines/{name}.toml")), text).unwrap();
    }
    std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
    let env = |n: &str| (n == "PING_KEY").then(|| "from-the-environment-0123".to_owned());
    load(&dir.path().join("plantao.toml"), &env)
        .map_err(|d| d.iter().map(ToString::to_string).collect())
}

fn errors(root: &str) -> String {
    config(root).expect_err("should be refused").join("\n")
}

const KEY: &str = "[pings]\nkey = \"${env:PING_KEY}\"\n";

#[test]
fn heartbeats_load_with_their_defaults() {
    let c = config(&format!(
        "{KEY}[[heartbeats]]\nname = \"nightly\"\nschedule = \"0 3 * * *\"\ntimezone = \"America/Sao_Paulo\"\n\n\
         [[heartbeats]]\nname = \"backup\"\nperiod = \"1h\"\nmin_duration = \"1m\"\nmax_duration = \"20m\"\n\n\
         [self_heartbeat]\nurl = \"https://hc.example/ping/x\"\n\n\
         [[alerts]]\nname = \"hb\"\nkind = \"heartbeat\"\ncheck = \"backup\"\n"
    ))
    .unwrap();
    let names: Vec<&str> = c.heartbeats.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["backup", "nightly"]);
    let backup = c.heartbeat("backup").unwrap();
    assert!(matches!(backup.expect, Expected::Period(p) if p == Duration::from_secs(3600)));
    assert_eq!(
        backup.grace,
        Duration::from_secs(3600),
        "healthchecks.io's default"
    );
    assert_eq!(
        backup.key(&c.pings).unwrap().expose(),
        "from-the-environment-0123"
    );
    assert_eq!(c.pings.body_limit, 100 * 1024);
    let own = c.self_heartbeat.as_ref().unwrap();
    assert_eq!(own.period, Duration::from_secs(60));
    let Condition::Heartbeat { check, events } = &c.alert_rule("hb").unwrap().condition else {
        panic!("not a heartbeat rule");
    };
    assert_eq!(check.as_deref(), Some("backup"));
    assert_eq!(
        events,
        &[
            CheckEvent::Down,
            CheckEvent::TooLong,
            CheckEvent::StartMissing
        ]
    );
}

#[test]
fn each_mistake_says_where_and_how_to_fix_it() {
    let e = errors(
        "[[heartbeats]]\nname = \"a\"\nperiod = \"1h\"\nschedule = \"@daily\"\n\n\
         [[heartbeats]]\nname = \"b\"\n\n\
         [[heartbeats]]\nname = \"reports\"\nperiod = \"1h\"\n\n\
         [[heartbeats]]\nname = \"c\"\nperiod = \"1h\"\nmin_duration = \"1h\"\nmax_duration = \"5m\"\nping_key = \"short\"\n\n\
         [[alerts]]\nname = \"hb\"\nkind = \"heartbeat\"\ncheck = \"bakup\"\nevents = [\"lat\"]\n\n\
         [[alerts]]\nname = \"hb2\"\nkind = \"heartbeat\"\npipeline = \"reports\"\n",
    );
    for needle in [
        "plantao.toml:4:12: error: heartbeat `a` has both `period` and `schedule`",
        "heartbeat `b` says neither when it is expected",
        "heartbeat `reports` has the name of a pipeline",
        "heartbeat `reports` has no ping key",
        "set one for all in [pings] key",
        "`min_duration` must be shorter than `max_duration`",
        "is not a usable ping key",
        "openssl rand -hex 16",
        "unknown heartbeat event `lat`",
        "did you mean `late`?",
        "rule `hb2` watches heartbeats, not a pipeline",
    ] {
        assert!(e.contains(needle), "{needle:?} not in:\n{e}");
    }
    // A ping key from the environment is never printed back.
    let e = errors("[pings]\nkey = \"${env:SHORT}\"\n");
    assert!(e.contains("environment variable `SHORT` is not set"), "{e}");
}

#[test]
fn a_rule_names_a_heartbeat_that_exists() {
    let e = errors(&format!(
        "{KEY}[[heartbeats]]\nname = \"backup\"\nperiod = \"1h\"\n\n\
         [[alerts]]\nname = \"hb\"\nkind = \"heartbeat\"\ncheck = \"bakup\"\n"
    ));
    assert!(
        e.contains("a heartbeat rule names `bakup`, which is not a heartbeat"),
        "{e}"
    );
    assert!(e.contains("did you mean `backup`?"), "{e}");
}

const BILLING: &str = "kind = \"external\"\ndescription = \"Scrapes the billing system\"\n\
                       period = \"10m\"\ngrace = \"5m\"\nmax_duration = \"8m\"\n\n\
                       [[alerts]]\nname = \"billing-down\"\nkind = \"heartbeat\"\nevents = [\"down\"]\n\n\
                       [[alerts]]\nname = \"billing-failed\"\nkind = \"run_failed\"\n";

#[test]
fn an_external_pipeline_is_a_heartbeat_in_a_file_of_its_own() {
    let c = with_files(KEY, &[("billing-worker", BILLING)]).unwrap();
    assert!(
        c.pipeline("billing-worker").is_none(),
        "plantao does not run it"
    );
    let h = c.heartbeat("billing-worker").unwrap();
    assert!(matches!(h.expect, Expected::Period(p) if p == Duration::from_secs(600)));
    assert_eq!(h.grace, Duration::from_secs(300));
    assert_eq!(h.max_duration, Some(Duration::from_secs(480)));
    assert_eq!(h.description.as_deref(), Some("Scrapes the billing system"));
    // Its heartbeat rule watches it; its run rule watches its runs (a /fail ping is a failed run).
    let down = c.alert_rule("billing-down").unwrap();
    let Condition::Heartbeat { check, events } = &down.condition else {
        panic!("not a heartbeat rule");
    };
    assert_eq!(check.as_deref(), Some("billing-worker"));
    assert_eq!(events, &[CheckEvent::Down]);
    assert_eq!(down.pipeline, None);
    let failed = c.alert_rule("billing-failed").unwrap();
    assert_eq!(failed.pipeline.as_deref(), Some("billing-worker"));
    // Named otherwise than its file, beside [[heartbeats]].
    let c = with_files(
        &format!("{KEY}[[heartbeats]]\nname = \"nightly\"\nperiod = \"1d\"\n"),
        &[(
            "worker",
            "kind = \"external\"\nname = \"replies-worker\"\nschedule = \"*/5 * * * *\"\n",
        )],
    )
    .unwrap();
    let names: Vec<&str> = c.heartbeats.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["nightly", "replies-worker"]);
}

#[test]
fn an_external_pipelines_mistakes_say_where_and_how_to_fix_them() {
    let e = with_files(
        &format!("{KEY}[[heartbeats]]\nname = \"nightly\"\nperiod = \"1d\"\n"),
        &[
            ("typo", "kind = \"externall\"\nperiod = \"1h\"\n"),
            ("clash", "kind = \"external\"\nname = \"reports\"\nperiod = \"1h\"\n"),
            ("nightly", "kind = \"external\"\nperiod = \"1h\"\n"),
            ("steps", "kind = \"external\"\nperiod = \"1h\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n"),
            ("when", "kind = \"external\"\ngrace = \"1h\"\n"),
            (
                "other",
                "kind = \"external\"\nperiod = \"1h\"\n[[alerts]]\nname = \"x\"\nkind = \"heartbeat\"\ncheck = \"nightly\"\n",
            ),
        ],
    )
    .expect_err("should be refused")
    .join("\n");
    for needle in [
        "pipelines/typo.toml:1:8: error: a pipeline's `kind` is \"external\" or left out, not `externall`",
        "kind = \"external\" for a job it watches",
        "pipelines/clash.toml:2:8: error: external pipeline `reports` has the name of a pipeline",
        "pipelines/nightly.toml:1:1: error: external pipeline `nightly` has the name of a heartbeat",
        "pipelines/steps.toml:3:3: error: unknown key `steps` in an external pipeline",
        "pipelines/when.toml:1:1: error: heartbeat `when` says neither when it is expected",
        "rule `x` in an external pipeline's file watches that heartbeat (`other`)",
    ] {
        assert!(e.contains(needle), "{needle:?} not in:\n{e}");
    }
    // Without a ping key anywhere, it cannot be pinged.
    let e = with_files("", &[("billing-worker", BILLING)])
        .expect_err("should be refused")
        .join("\n");
    assert!(
        e.contains(
            "pipelines/billing-worker.toml:1:1: error: heartbeat `billing-worker` has no ping key"
        ),
        "{e}"
    );
}
