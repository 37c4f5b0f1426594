//! What a user sees for each kind of mistake: file, line, column, what is wrong, how to fix it.

// The setup helpers are not #[test] items themselves.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use plantao_config::{Config, Diagnostics, load};

const SECRET: &str = "planted-fake-secret-4f1d9c";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(root: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plantao.toml"), root).unwrap();
        Setup { dir }
    }

    fn pipeline(self, name: &str, text: &str) -> Self {
        let folder = self.dir.path().join("pipelines");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{name}.toml")), text).unwrap();
        self
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("plantao.toml")
    }

    fn load(&self) -> Result<Config, Diagnostics> {
        load(&self.path(), &env)
    }

    fn errors(&self) -> Vec<String> {
        let diags = self.load().expect_err("the config should be rejected");
        diags.iter().map(|d| d.to_string()).collect()
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET_TOKEN" => Some(SECRET.to_owned()),
        "DB_URL" => Some(format!("postgres://app:{SECRET}@db/app")),
        _ => None,
    }
}

/// The one error whose text contains `needle`, with its place checked.
fn find<'a>(errors: &'a [String], needle: &str) -> &'a str {
    let hits: Vec<&String> = errors.iter().filter(|e| e.contains(needle)).collect();
    assert_eq!(
        hits.len(),
        1,
        "expected one error with {needle:?}, got:\n{}",
        errors.join("\n\n")
    );
    hits[0]
}

const ROOT: &str = "[defaults]\ntimezone = \"America/Sao_Paulo\"\n";

#[test]
fn a_valid_config_loads_with_its_defaults() {
    let s = Setup::new(ROOT).pipeline(
        "biz-reports",
        "schedule = \"0 12 * * *\"\n[[steps]]\nname = \"sync\"\nrun = \"echo novos=1 >> $PLANTAO_OUTPUT\"\n",
    );
    let c = s.load().unwrap();
    assert_eq!(c.pipelines.len(), 1);
    let p = &c.pipelines[0];
    assert_eq!(p.name, "biz-reports");
    assert_eq!(p.timezone, chrono_tz::Tz::America__Sao_Paulo);
    assert_eq!(p.schedules[0].text, "0 12 * * *");
    assert_eq!(p.definition_hash.len(), 64);
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8077");
    let expected = format!("sqlite://{}", s.dir.path().join("plantao.db").display());
    assert_eq!(c.storage.url.expose(), expected);
    assert_eq!(
        c.storage.retention,
        std::time::Duration::from_secs(90 * 86_400)
    );
}

#[test]
fn retention_is_a_duration_of_an_hour_or_more() {
    let s = Setup::new("[storage]\nretention = \"400d\"\n");
    assert_eq!(
        s.load().unwrap().storage.retention,
        std::time::Duration::from_secs(400 * 86_400)
    );
    let s = Setup::new("[storage]\nretention = \"30m\"\n");
    let errors = s.errors();
    let e = find(&errors, "`retention` in [storage] must be at least 1h");
    assert!(e.contains("plantao.toml:2:13:"), "{e}");
    assert!(e.contains("retention = \"90d\""), "{e}");
}

#[test]
fn unknown_key_suggests_the_closest() {
    let s = Setup::new("[server]\nlistn = \"127.0.0.1:1\"\n");
    let errors = s.errors();
    let e = find(&errors, "unknown key `listn` in [server]");
    assert!(e.contains("plantao.toml:2:1:"), "{e}");
    assert!(e.contains("did you mean `listen`?"), "{e}");
}

#[test]
fn wrong_type_says_what_was_expected_and_found() {
    let s = Setup::new(ROOT).pipeline(
        "p",
        "timeout = 300\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
    );
    let errors = s.errors();
    let e = find(&errors, "`timeout` must be a string, found an integer");
    assert!(e.contains("p.toml:1:11:"), "{e}");
}

#[test]
fn invalid_cron_names_the_field_and_why() {
    let s = Setup::new(ROOT).pipeline(
        "p",
        "schedule = [\"0 12 * * *\", \"0 25 * * *\"]\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
    );
    let errors = s.errors();
    let e = find(&errors, "invalid schedule");
    assert!(e.contains("p.toml:1:27:"), "{e}");
    assert!(
        e.contains(
            "the hour field `25` is invalid: 25 is out of range: the hour goes from 0 to 23"
        ),
        "{e}"
    );
}

#[test]
fn unknown_time_zone_suggests_close_matches() {
    let s = Setup::new("[defaults]\ntimezone = \"America/Sao_Paolo\"\n");
    let errors = s.errors();
    let e = find(&errors, "`America/Sao_Paolo` is not a known time zone");
    assert!(e.contains("plantao.toml:2:12:"), "{e}");
    assert!(e.contains("America/Sao_Paulo"), "{e}");
}

#[test]
fn invalid_duration_says_how_to_write_one() {
    let s = Setup::new(ROOT).pipeline(
        "p",
        "timeout = \"5 minutes\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n",
    );
    let errors = s.errors();
    let e = find(&errors, "`timeout` is not a valid duration");
    assert!(e.contains("\"1h30m\""), "{e}");
}

#[test]
fn duplicate_steps_unknown_needs_and_cycles() {
    let s = Setup::new(ROOT).pipeline(
        "p",
        r#"
[[steps]]
name = "a"
run = "true"
needs = ["c"]

[[steps]]
name = "b"
run = "true"
needs = ["a", "sycn"]

[[steps]]
name = "c"
run = "true"
needs = ["b"]

[[steps]]
name = "sync"
run = "true"

[[finally]]
name = "a"
run = "true"
"#,
    );
    let errors = s.errors();
    let dup = find(&errors, "two steps are named `a`");
    assert!(dup.contains("p.toml:21:"), "{dup}");
    let need = find(&errors, "needs `sycn`");
    assert!(need.contains("did you mean `sync`?"), "{need}");
    let cycle = find(&errors, "cycle");
    assert!(cycle.contains("a → c → b → a"), "{cycle}");
}

#[test]
fn sql_step_with_unknown_connection() {
    let s = Setup::new("[connections.primecare]\nurl = \"sqlite://x.db\"\n").pipeline(
        "p",
        "[[steps]]\nname = \"q\"\nsql = { connection = \"primecar\", query = \"select 1\" }\n",
    );
    let errors = s.errors();
    let e = find(&errors, "unknown connection `primecar`");
    assert!(e.contains("did you mean `primecare`?"), "{e}");
}

#[test]
fn missing_environment_variable_is_named() {
    let s = Setup::new("[storage]\nurl = \"${env:PLANTAO_DB_NOT_SET}\"\n");
    let errors = s.errors();
    let e = find(
        &errors,
        "environment variable `PLANTAO_DB_NOT_SET` is not set",
    );
    assert!(e.contains("plantao.toml:2:7:"), "{e}");
    assert!(e.contains("${env:PLANTAO_DB_NOT_SET:-value}"), "{e}");
}

#[test]
fn expression_that_does_not_parse_shows_where() {
    let s = Setup::new(ROOT).pipeline(
        "p",
        "[metrics]\nrate = \"process.approved / (process.approved + \"\n[[steps]]\nname = \"process\"\nrun = \"true\"\n",
    );
    let errors = s.errors();
    let e = find(&errors, "`metrics.rate` does not parse");
    assert!(e.contains("p.toml:2:"), "{e}");
    assert!(e.contains("where it breaks"), "{e}");
}

#[test]
fn metric_reading_an_unknown_step_suggests_one() {
    let s = Setup::new(ROOT).pipeline(
        "p",
        "[metrics]\nrate = \"procss.approved * 100\"\n[[steps]]\nname = \"process\"\nrun = \"true\"\n",
    );
    let errors = s.errors();
    let e = find(&errors, "reads `procss`");
    assert!(e.contains("p.toml:2:9:"), "{e}");
    assert!(e.contains("did you mean `process`?"), "{e}");
}

#[test]
fn every_error_is_reported_at_once_across_files() {
    let s = Setup::new("[server]\nlisten = \"nowhere\"\n[storage]\nurl = \"mysql://x\"\n")
        .pipeline("a", "concurrency = \"sometimes\"\n[[steps]]\nname = \"x\"\n")
        .pipeline("b", "every = \"5q\"\nbogus = 1\n[[steps]]\nname = \"y\"\nrun = \"true\"\nhttp = { url = \"http://x\" }\n");
    let errors = s.errors();
    assert_eq!(errors.len(), 7, "{}", errors.join("\n\n"));
    find(&errors, "`listen` must be an address and port");
    find(&errors, "must start with sqlite:// or postgres://");
    find(&errors, "`sometimes` is not a valid `concurrency`");
    find(&errors, "step `x` has nothing to do");
    find(&errors, "`every` is not a valid duration");
    find(&errors, "unknown key `bogus` in a pipeline");
    find(&errors, "has run and http: a step does exactly one thing");
}

#[test]
fn toml_syntax_errors_have_places_too() {
    let s = Setup::new("[server\nlisten = 1\n");
    let errors = s.errors();
    assert!(errors[0].contains("plantao.toml:1:"), "{}", errors[0]);
    assert!(errors[0].contains("not valid TOML"), "{}", errors[0]);
}

#[test]
fn a_missing_config_file_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("plantao.toml"), &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read the config file"), "{err}");
    assert!(err.contains("plantao config example"), "{err}");
}

#[test]
fn planted_secret_never_appears_in_any_output() {
    // Valid uses: the secret must be kept out of Debug output.
    let s = Setup::new("[storage]\nurl = \"${env:DB_URL}\"\n").pipeline(
        "p",
        "[env]\nTOKEN = \"${env:SECRET_TOKEN}\"\n[[steps]]\nname = \"a\"\nrun = \"curl -H 'X: ${env:SECRET_TOKEN}' http://x\"\n",
    );
    let c = s.load().unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(SECRET), "Debug leaks the secret: {debug}");
    assert!(debug.contains("${env:SECRET_TOKEN}"));
    assert_eq!(c.redactor.redact(&format!("token {SECRET}")), "token ***");

    // Invalid uses: the diagnostics must not print it either.
    let bad = Setup::new("[server]\nlisten = \"${env:SECRET_TOKEN}\"\n[storage]\nurl = \"mysql${env:SECRET_TOKEN}\"\n").pipeline(
        "p",
        "timezone = \"${env:SECRET_TOKEN}\"\ntimeout = \"${env:SECRET_TOKEN}\"\nschedule = \"${env:SECRET_TOKEN}\"\nconcurrency = \"${env:SECRET_TOKEN}\"\n[[steps]]\nname = \"a\"\nhttp = { url = \"${env:SECRET_TOKEN}\" }\n",
    );
    let errors = bad.errors();
    assert!(errors.len() >= 6, "{}", errors.join("\n\n"));
    for e in &errors {
        assert!(!e.contains(SECRET), "a diagnostic leaks the secret: {e}");
    }
}

#[test]
fn the_built_in_examples_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plantao.toml"),
        plantao_config::EXAMPLE_CONFIG,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("pipelines")).unwrap();
    std::fs::write(
        dir.path().join("pipelines/example.toml"),
        plantao_config::EXAMPLE_PIPELINE,
    )
    .unwrap();
    let c = load(&dir.path().join("plantao.toml"), &|_| None).unwrap_or_else(|d| panic!("{d}"));
    let p = c.pipeline("example").unwrap();
    assert_eq!(p.steps.len(), 4);
    assert_eq!(p.finally.len(), 1);
    assert_eq!(p.metrics[0].name, "approval_rate");
    assert_eq!(p.trends.higher_is_better, ["approval_rate"]);
    assert_eq!(c.patterns[0].name, "alarming-words");
    assert!(c.alert_rule("example-alarming-words").is_some());
}

#[test]
fn the_quickstart_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/plantao.toml");
    let c = load(&path, &|_| None).unwrap_or_else(|d| panic!("{d}"));
    assert!(!c.pipelines.is_empty());
}

#[test]
fn chained_pipelines_must_exist_and_not_loop() {
    let s = Setup::new(ROOT)
        .pipeline("a", "on_success = [\"b\"]\non_failure = [\"alert-team\"]\n[[steps]]\nname = \"x\"\nrun = \"true\"\n")
        .pipeline("b", "on_success = [\"c\"]\n[[steps]]\nname = \"x\"\nrun = \"true\"\n")
        .pipeline("c", "on_failure = [\"a\"]\n[[steps]]\nname = \"x\"\nrun = \"true\"\n");
    let errors = s.errors();
    let unknown = find(&errors, "names `alert-team`, which is not a pipeline");
    assert!(unknown.contains("a.toml:2:15:"), "{unknown}");
    let cycle = find(&errors, "start each other in a circle");
    assert!(cycle.contains("a → b → c → a"), "{cycle}");
}

#[test]
fn daemon_keys_and_maintenance_windows() {
    let s = Setup::new(
        "[engine]\nmax_concurrent_runs = 3\nshutdown_grace = \"10s\"\n\n[[maintenance]]\nstart = 2026-12-24T18:00:00-03:00\nend = \"2026-12-26T08:00:00-03:00\"\npipelines = [\"p\"]\nreason = \"Natal\"\n",
    )
    .pipeline(
        "p",
        "every = \"5m\"\njitter = \"30s\"\nbetween = \"06:30-20:00\"\nconcurrency = \"queue\"\nqueue_limit = 3\nretry_interrupted = true\n[[steps]]\nname = \"x\"\nrun = \"true\"\n",
    );
    let c = s.load().unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(c.engine.max_concurrent_runs, 3);
    assert_eq!(c.maintenance[0].reason.as_deref(), Some("Natal"));
    assert_eq!(
        c.maintenance[0].start.to_rfc3339(),
        "2026-12-24T21:00:00+00:00"
    );
    let p = &c.pipelines[0];
    assert_eq!((p.queue_limit, p.retry_interrupted), (3, true));
    assert_eq!(p.between.unwrap().0.to_string(), "06:30:00");

    let bad = Setup::new("[[maintenance]]\nstart = 2026-12-24T18:00:00\nend = 2026-12-20T00:00:00Z\npipelines = [\"q\"]\n")
        .pipeline("p", "between = \"6h-20h\"\n[[steps]]\nname = \"x\"\nrun = \"true\"\n");
    let errors = bad.errors();
    find(
        &errors,
        "`start` = 2026-12-24T18:00:00 is not a date and time with its offset",
    );
    find(&errors, "`between` is not a daily window");
}

const CHANNELS: &str = "[[channels]]\nname = \"ops-hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"${env:SECRET_TOKEN}\"\nheaders = { X-Team = \"ops\" }\n\n[[channels]]\nname = \"admin-whatsapp\"\nkind = \"whatsapp\"\nurl = \"http://127.0.0.1:9\"\ninstance = \"ops\"\napi_key = \"${env:SECRET_TOKEN}\"\nto = \"5511999990000\"\nlanguage = \"pt-BR\"\n";
const BIZ: &str = "schedule = \"0 12 * * *\"\n[[steps]]\nname = \"process\"\nrun = \"true\"\n[metrics]\napproval_rate = \"process.approved / (process.approved + process.failed) * 100\"\n";

#[test]
fn alert_rules_and_channels_load_from_both_places() {
    let root = format!(
        "{CHANNELS}\n[[alerts]]\nname = \"biz-failed\"\nkind = \"run_failed\"\npipeline = \"biz-reports\"\nseverity = \"critical\"\nchannels = [\"ops-hook\", \"admin-whatsapp\"]\nrepeat_interval = \"30m\"\n"
    );
    let pipeline = format!(
        "{BIZ}\n[[alerts]]\nname = \"low_approval_rate\"\nwhen = \"approval_rate < threshold\"\nthreshold = 70\nwindow = \"24h\"\nfor = \"10m\"\nchannels = [\"admin-whatsapp\"]\nrunbook = \"check the review queue\"\n"
    );
    let c = Setup::new(&root)
        .pipeline("biz-reports", &pipeline)
        .load()
        .unwrap();
    assert_eq!(c.channels.len(), 2);
    let debug = format!("{:?}", c.channels);
    assert!(
        !debug.contains(SECRET),
        "a channel's Debug leaks its secret"
    );
    let names: Vec<&str> = c.alerts.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["biz-failed", "low_approval_rate"]);
    let low = c.alert_rule("low_approval_rate").unwrap();
    assert_eq!(
        low.pipeline.as_deref(),
        Some("biz-reports"),
        "a pipeline file's rule watches it"
    );
    assert_eq!(low.condition.kind(), "expr", "`when` makes an expr rule");
    assert_eq!(low.threshold, Some(70.0));
    assert_eq!(low.hold, std::time::Duration::from_secs(600));
    assert_eq!(low.severity, plantao_model::Severity::Warning);
    let failed = c.alert_rule("biz-failed").unwrap();
    assert_eq!(failed.severity, plantao_model::Severity::Critical);
    assert_eq!(failed.channels, ["ops-hook", "admin-whatsapp"]);
    assert!(failed.on_run_end());
}

#[test]
fn alert_rule_mistakes_name_the_place_and_the_fix() {
    let root = format!(
        "{CHANNELS}\n[[alerts]]\nname = \"a\"\nkind = \"run_faild\"\n\n[[alerts]]\nname = \"b\"\nkind = \"failure_rate\"\npipeline = \"biz-report\"\nthreshold = 20\nchannels = [\"ops-hok\", \"broken\"]\n\n[[channels]]\nname = \"broken\"\nkind = \"slack\"\nurl = \"${{env:NOT_SET_ANYWHERE}}\"\n\n[[alerts]]\nname = \"c\"\nkind = \"stuck\"\nmax = \"1h\"\n\n[[slack]]\n"
    );
    let pipeline = format!(
        "{BIZ}\n[[alerts]]\nname = \"d\"\nwhen = \"aproval_rate < threshold\"\nthreshold = \"${{env:SECRET_TOKEN}}\"\n\n[[alerts]]\nname = \"a\"\nkind = \"stage_failed\"\nstage = \"sned\"\n\n[[alerts]]\nname = \"e\"\nkind = \"duration\"\nmax = \"1m\"\nfactor = 2\n\n[[alerts]]\nname = \"f\"\nkind = \"duration\"\nstage = \"process\"\nfactor = 2\n"
    );
    let errors = Setup::new(&root)
        .pipeline("biz-reports", &pipeline)
        .errors();
    let e = find(&errors, "unknown rule kind `run_faild`");
    assert!(
        e.contains("plantao.toml:") && e.contains("run_failed"),
        "{e}"
    );
    let e = find(
        &errors,
        "rule `b` watches `biz-report`, which is not a pipeline",
    );
    assert!(e.contains("biz-reports"), "{e}");
    let e = find(&errors, "sends to `ops-hok`, which is not a channel");
    assert!(e.contains("ops-hook"), "{e}");
    find(
        &errors,
        "environment variable `NOT_SET_ANYWHERE` is not set",
    );
    assert!(
        !errors
            .iter()
            .any(|e| e.contains("`broken`, which is not a channel")),
        "a broken channel is reported once, not again by each rule naming it"
    );
    find(&errors, "rule `c` has no `after`");
    let e = find(&errors, "`max` does not apply to a rule of kind stuck");
    assert!(e.contains("after"), "{e}");
    find(&errors, "unknown key `slack` in plantao.toml");
    let e = find(
        &errors,
        "`when` reads `aproval_rate`, which is not defined here",
    );
    assert!(e.contains("biz-reports.toml:"), "{e}");
    let e = find(&errors, "(from the environment) is not a valid number");
    assert!(!e.contains(SECRET), "{e}");
    find(
        &errors,
        "`stage` names `sned`, which is not a step of `biz-reports`",
    );
    for e in &errors {
        assert!(!e.contains(SECRET), "a diagnostic leaks the secret: {e}");
    }
}

#[test]
fn channel_mistakes_say_what_each_kind_takes() {
    let root = "[[channels]]\nname = \"tg\"\nkind = \"telegram\"\nchat_id = \"1\"\n\n\
                [[channels]]\nname = \"script\"\nkind = \"command\"\nrun = \"./notify.sh\"\nurl = \"http://x\"\n\n\
                [[channels]]\nname = \"sms\"\nkind = \"smss\"\n\n\
                [[channels]]\nname = \"mail\"\nkind = \"email\"\nhost = \"smtp\"\nusername = \"me\"\nfrom = \"a@b.c\"\nto = \"d@e.f\"\ntls = \"ssl\"\n";
    let errors = Setup::new(root).errors();
    let e = find(&errors, "telegram channel `tg` has no `token`");
    assert!(e.contains("TELEGRAM_BOT_TOKEN"), "{e}");
    let e = find(&errors, "`url` does not apply to a command channel");
    assert!(e.contains("a command channel takes: run"), "{e}");
    find(&errors, "unknown channel kind `smss`");
    let e = find(&errors, "unknown tls mode `ssl`");
    assert!(e.contains("starttls"), "{e}");
    let ok = Setup::new("[[channels]]\nname = \"tg\"\nkind = \"telegram\"\ntoken = \"${env:SECRET_TOKEN}\"\nchat_id = \"1\"\n")
        .load()
        .unwrap();
    assert!(
        matches!(&ok.channels[0].kind, plantao_config::ChannelKind::Telegram { url, .. } if url.expose() == "https://api.telegram.org"),
        "the Bot API's address by default"
    );
}

#[test]
fn escalation_mistakes_name_the_policy_and_the_fix() {
    let root = format!(
        "{CHANNELS}\n[[escalation]]\nname = \"path\"\nlevels = [{{ after = \"15m\", channels = [\"ops-hook\"] }}, {{ after = \"5m\", channels = [\"admin-whatsapp\"] }}]\n\n\
         [[alerts]]\nname = \"a\"\nkind = \"run_failed\"\nescalation = \"pth\"\n\n\
         [[alerts]]\nname = \"b\"\nkind = \"run_failed\"\nescalation = \"path\"\nchannels = [\"ops-hook\"]\n"
    );
    let errors = Setup::new(&root).errors();
    let e = find(
        &errors,
        "escalates through `pth`, which is not an [[escalation]] policy",
    );
    assert!(e.contains("path"), "{e}");
    find(&errors, "rule `b` has both `channels` and `escalation`");
    let e = find(&errors, "must come later and later");
    assert!(e.contains("plantao.toml:"), "{e}");
    let ok = format!(
        "{CHANNELS}\n[[escalation]]\nname = \"path\"\nrepeat = \"30m\"\nlevels = [{{ after = \"0s\", channels = [\"ops-hook\"] }}, {{ after = \"15m\", channels = [\"admin-whatsapp\"] }}]\n\n\
         [[alerts]]\nname = \"a\"\nkind = \"run_failed\"\nescalation = \"path\"\n"
    );
    let c = Setup::new(&ok).load().unwrap();
    assert_eq!(
        c.alert_rule("a").unwrap().escalation.as_deref(),
        Some("path")
    );
    let policy = c.escalation("path").unwrap();
    assert_eq!(policy.levels.len(), 2);
    assert_eq!(policy.repeat, Some(std::time::Duration::from_secs(1800)));
}

#[test]
fn routing_dependencies_and_templates_are_checked_where_written() {
    let root = format!(
        "{CHANNELS}\n[routing]\nchannels = [\"ops-hok\"]\ngroup_wait = \"soon\"\ngroup_by = [\"pipeline\"]\n\n\
         [[channels]]\nname = \"tpl\"\nkind = \"slack\"\nurl = \"http://x\"\ntemplate = \"{{{{ alert.rule \"\n\n\
         [[alerts]]\nname = \"db-down\"\nkind = \"run_failed\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\ndepends_on = [\"db-dwn\"]\nmessage = \"{{% if %}}\"\n"
    );
    let errors = Setup::new(&root)
        .pipeline(
            "billing",
            "depends_on = [\"nothing\"]\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
        )
        .errors();
    let e = find(&errors, "[routing] channels sends to `ops-hok`");
    assert!(e.contains("ops-hook"), "{e}");
    find(&errors, "group_wait");
    let e = find(&errors, "`template` is not a valid template");
    assert!(e.contains("plantao.toml:") && e.contains("Jinja"), "{e}");
    find(&errors, "`message` is not a valid template");
    let e = find(
        &errors,
        "depends_on names `db-dwn`, which is not an alert rule",
    );
    assert!(e.contains("db-down") && e.contains("plantao.toml:"), "{e}");
    let e = find(&errors, "depends_on names `nothing`");
    assert!(e.contains("billing.toml:1:"), "{e}");

    let ok = format!(
        "{CHANNELS}\n[routing]\nchannels = [\"ops-hook\"]\ninfo_channels = [\"admin-whatsapp\"]\ngroup_wait = \"10s\"\ngroup_interval = \"1m\"\ngroup_by = [\"pipeline\"]\n\n\
         [[alerts]]\nname = \"db-down\"\nkind = \"run_failed\"\n\n\
         [[alerts]]\nname = \"failed\"\nkind = \"run_failed\"\ndepends_on = [\"db-down\"]\ngroup_by = [\"rule\", \"team\"]\n\
         template = \"{{{{ severity }}}} {{{{ message }}}}\"\n"
    );
    let c = Setup::new(&ok)
        .pipeline(
            "billing",
            "depends_on = [\"db-down\"]\n[[steps]]\nname = \"s\"\nrun = \"true\"\n",
        )
        .load()
        .unwrap();
    assert_eq!(c.routing.channels, ["ops-hook"]);
    assert_eq!(c.routing.info_channels, ["admin-whatsapp"]);
    assert_eq!(c.routing.group_wait, std::time::Duration::from_secs(10));
    assert_eq!(c.routing.group_interval, std::time::Duration::from_secs(60));
    assert_eq!(c.routing.group_by, ["pipeline"]);
    let failed = c.alert_rule("failed").unwrap();
    assert_eq!(failed.depends_on, ["db-down"]);
    assert_eq!(
        failed.group_by.as_deref(),
        Some(&["rule".to_owned(), "team".to_owned()][..])
    );
    assert!(failed.template.is_some());
    assert_eq!(c.pipeline("billing").unwrap().depends_on, ["db-down"]);
}

#[test]
fn trends_name_metrics_and_counters_of_the_pipeline_and_sane_numbers() {
    let steps = "[[steps]]\nname = \"process\"\nrun = \"true\"\n\
                 [metrics]\napproval_rate = \"process.approved / process.total * 100\"\n";
    let good = Setup::new("").pipeline(
        "p",
        &format!("{steps}[trends]\ndays = 14\ntolerance = 2.5\nhigher_is_better = [\"approval_rate\"]\nlower_is_better = [\"process.failed\"]\n"),
    );
    let config = good.load().unwrap();
    let trends = &config.pipelines[0].trends;
    assert_eq!(
        (trends.over, trends.tolerance_percent),
        (plantao_config::TrendSpan::Days(14), 2.5)
    );
    assert_eq!(trends.lower_is_better, ["process.failed"]);
    let runs = Setup::new("").pipeline("p", &format!("{steps}[trends]\nruns = 20\n"));
    assert_eq!(
        runs.load().unwrap().pipelines[0].trends.over,
        plantao_config::TrendSpan::Runs(20)
    );
    let both = Setup::new("").pipeline("p", &format!("{steps}[trends]\ndays = 7\nruns = 20\n"));
    let errors = both.errors();
    assert!(find(&errors, "`trends.days` and `trends.runs` are both given").contains("p.toml:"));
    let many = Setup::new("").pipeline("p", &format!("{steps}[trends]\nruns = 5000\n"));
    find(&many.errors(), "`trends.runs` must be between 3 and 1000");
    let bad = Setup::new("").pipeline(
        "p",
        &format!("{steps}[trends]\ndays = 2\ntolerance = 150\nhigher_is_better = [\"aproval_rate\", \"send.sent\"]\n"),
    );
    let errors = bad.errors();
    assert!(find(&errors, "`trends.days` must be between 3 and 366").contains("p.toml:"));
    find(&errors, "`trends.tolerance` is a percentage");
    let named = find(&errors, "`aproval_rate` in trends.higher_is_better");
    assert!(named.contains("approval_rate"), "{named}");
    find(&errors, "`send.sent` in trends.higher_is_better");
}
