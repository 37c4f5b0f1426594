//! One `pipelines/*.toml` file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono_tz::Tz;
use plantao_model::{ExprValue, Vars};
use sha2::{Digest, Sha256};

use crate::alerts::{Home, Names, read_rules};
use crate::cron::parse_cron;
use crate::graph::check_graph;
use crate::reader::{self, Cx, Table};
use crate::steps::{parse_expr, read_steps};
use crate::types::{
    AlertRule, Catchup, Concurrency, Inputs, Metric, Param, Pipeline, Step, TrendSpan, Trends,
};
use crate::{Connections, daemon_keys, suggest, tz};

pub(crate) const PIPELINE_KEYS: &[&str] = &[
    "name",
    "description",
    "schedule",
    "every",
    "timezone",
    "timeout",
    "concurrency",
    "catchup",
    "params",
    "env",
    "working_dir",
    "tags",
    "metrics",
    "trends",
    "steps",
    "finally",
    "max_parallel_steps",
    "alerts",
    "depends_on",
    "inputs",
];
pub(crate) const PARAM_KEYS: &[&str] = &["default", "description", "required"];
pub(crate) const TRENDS_KEYS: &[&str] = &[
    "days",
    "runs",
    "tolerance",
    "higher_is_better",
    "lower_is_better",
];

pub(crate) struct PipelineContext<'a> {
    pub dir: &'a Path,
    pub timezone: Tz,
    pub connections: &'a Connections,
    /// What rules may name.
    pub alerting: &'a Names,
}

/// A pipeline, with the names it chains to and where they were written (checked once every
/// pipeline is known).
pub(crate) struct Read {
    pub pipeline: Pipeline,
    pub chains: Vec<(String, std::ops::Range<usize>)>,
    /// The alert rules it and its rules depend on, where they are written.
    pub depends: Vec<(String, std::ops::Range<usize>)>,
    /// Its `[[alerts]]`, watching it.
    pub rules: Vec<AlertRule>,
}

pub(crate) fn read_pipeline(cx: &mut Cx, t: Table, pc: &PipelineContext) -> Option<Read> {
    let known: Vec<&str> = PIPELINE_KEYS
        .iter()
        .chain(daemon_keys::KEYS)
        .copied()
        .collect();
    t.check_keys(cx, "in a pipeline", &known);
    let daemon = daemon_keys::read(cx, t);
    let file = cx.source.path.clone();
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match t.get("name") {
        Some(v) => reader::text(cx, "name", v)?.expose().to_owned(),
        None => stem,
    };
    if !is_pipeline_name(&name) {
        let span = t.get("name").map_or(0..0, |v| v.span());
        cx.error(
            span,
            format!("pipeline name `{name}` is not allowed"),
            Some("use letters, digits, `-` and `_` (it appears in URLs and commands); rename the file or set name = \"…\"".into()),
        );
    }
    let description = crate::checks::description(cx, t);
    let schedules = t
        .get("schedule")
        .map(|v| reader::text_list(cx, "schedule", v))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(text, span)| match parse_cron(text.expose()) {
            Ok(s) => Some(s),
            Err(why) => {
                cx.error(
                    span,
                    format!("invalid schedule: {}", reader::secret_safe(&text, "cron schedule", why)),
                    Some("e.g. \"0 12,18,20 * * *\" (12:00, 18:00 and 20:00), \"*/5 * * * *\", \"@hourly\"".into()),
                );
                None
            }
        })
        .collect();
    let every = t
        .get("every")
        .and_then(|v| reader::duration(cx, "every", v));
    let timezone = tz::read_zone(cx, t, pc.timezone)?;
    let timeout = t
        .get("timeout")
        .and_then(|v| reader::duration(cx, "timeout", v));
    let concurrency = choice(
        cx,
        t,
        "concurrency",
        &[
            ("skip", Concurrency::Skip),
            ("queue", Concurrency::Queue),
            ("allow", Concurrency::Allow),
            ("replace", Concurrency::Replace),
        ],
    )
    .unwrap_or(Concurrency::Skip);
    let catchup = choice(
        cx,
        t,
        "catchup",
        &[
            ("none", Catchup::None),
            ("latest", Catchup::Latest),
            ("all", Catchup::All),
        ],
    )
    .unwrap_or(Catchup::Latest);
    let max_parallel_steps = t
        .get("max_parallel_steps")
        .and_then(|v| reader::integer(cx, "max_parallel_steps", v, 1..257))
        .map_or(4, |n| usize::try_from(n).unwrap_or(4));
    let params = t
        .get("params")
        .map(|v| read_params(cx, v))
        .unwrap_or_default();
    let env = t
        .get("env")
        .map(|v| reader::text_map(cx, "env", v))
        .unwrap_or_default();
    let working_dir = t
        .get("working_dir")
        .and_then(|v| reader::text(cx, "working_dir", v))
        .map(|w| pc.dir.join(w.expose()));
    let inputs = read_inputs(cx, t, working_dir.as_deref().unwrap_or(pc.dir));
    let tags = crate::checks::tags(cx, t);
    let mut broken = Vec::new();
    let steps = match t.get("steps") {
        Some(v) => read_steps(cx, "steps", v, pc.dir, pc.connections, &mut broken),
        None => {
            cx.error(
                t.span(),
                format!("pipeline `{name}` has no steps"),
                Some(
                    "add at least one:\n  [[steps]]\n  name = \"hello\"\n  run = \"echo hello\""
                        .into(),
                ),
            );
            Vec::new()
        }
    };
    let finally = t
        .get("finally")
        .map(|v| read_steps(cx, "finally", v, pc.dir, pc.connections, &mut broken))
        .unwrap_or_default();
    check_graph(cx, &steps, &finally, &broken);
    let step_names: BTreeSet<&str> = steps
        .iter()
        .chain(&finally)
        .map(|(s, _)| s.name.as_str())
        .chain(broken.iter().map(String::as_str))
        .collect();
    let metrics = t
        .get("metrics")
        .map(|v| read_metrics(cx, v, &step_names))
        .unwrap_or_default();
    let trends = t
        .get("trends")
        .map(|v| read_trends(cx, v, &step_names, &metrics))
        .unwrap_or_default();
    let rules = match t.get("alerts") {
        Some(v) => {
            let home = Home {
                pipeline: &name,
                names: step_names
                    .iter()
                    .copied()
                    .chain(metrics.iter().map(|m| m.name.as_str()))
                    .collect(),
                heartbeat: false,
            };
            read_rules(cx, v, pc.alerting, Some(&home))
        }
        None => Vec::new(),
    };
    let own_depends = crate::alerts::names_list(cx, t, "depends_on");
    let depends_on: Vec<String> = own_depends.iter().map(|(n, _)| n.clone()).collect();
    let depends = own_depends
        .into_iter()
        .chain(rules.iter().flat_map(|r| r.depends.clone()))
        .collect();
    let rules = rules.into_iter().map(|r| r.rule).collect();
    let hash = hex(&Sha256::digest(cx.source.text.as_bytes()));
    let chains = daemon
        .on_success
        .iter()
        .chain(&daemon.on_failure)
        .cloned()
        .collect();
    let pipeline = Pipeline {
        name,
        file,
        definition_hash: hash,
        description,
        schedules,
        every,
        jitter: daemon.jitter,
        between: daemon.between,
        timezone,
        timeout,
        concurrency,
        catchup,
        queue_limit: daemon.queue_limit,
        max_concurrent: daemon.max_concurrent,
        catchup_limit: daemon.catchup_limit,
        retry_interrupted: daemon.retry_interrupted,
        on_success: daemon.on_success.into_iter().map(|(n, _)| n).collect(),
        on_failure: daemon.on_failure.into_iter().map(|(n, _)| n).collect(),
        depends_on,
        max_parallel_steps,
        params,
        env,
        working_dir,
        inputs,
        tags,
        metrics,
        trends,
        steps: strip(steps),
        finally: strip(finally),
    };
    Some(Read {
        pipeline,
        chains,
        depends,
        rules,
    })
}

fn strip(steps: Vec<(Step, std::ops::Range<usize>)>) -> Vec<Step> {
    steps.into_iter().map(|(s, _)| s).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_pipeline_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// One of a closed set of words.
fn choice<T: Copy>(cx: &mut Cx, t: Table, key: &str, options: &[(&str, T)]) -> Option<T> {
    let v = t.get(key)?;
    let text = reader::text(cx, key, v)?;
    let found = options.iter().find(|(word, _)| *word == text.expose());
    if found.is_none() {
        let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
        cx.error(
            v.span(),
            format!("`{}` is not a valid `{key}`", text.shown()),
            Some(format!("use one of: {}", words.join(" | "))),
        );
    }
    found.map(|(_, value)| *value)
}

fn read_params(cx: &mut Cx, v: &reader::Value) -> BTreeMap<String, Param> {
    let Some(t) = reader::table(cx, "params", v) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (name, span, value) in t.entries() {
        if !plantao_model::is_identifier(name) {
            cx.error(
                span,
                format!("parameter name `{name}` is not allowed"),
                Some(
                    "parameters reach steps as PLANTAO_PARAM_<NAME>: use letters, digits and `_`"
                        .into(),
                ),
            );
            continue;
        }
        let Some(p) = reader::table(cx, &format!("params.{name}"), value) else {
            continue;
        };
        p.check_keys(cx, &format!("in params.{name}"), PARAM_KEYS);
        let default = p
            .get("default")
            .and_then(|d| reader::text(cx, "default", d));
        let description = p
            .get("description")
            .and_then(|d| reader::text(cx, "description", d))
            .map(|d| d.expose().to_owned());
        let required = p
            .get("required")
            .and_then(|r| reader::boolean(cx, "required", r))
            .unwrap_or(false);
        if required && default.is_some() {
            cx.error(
                p.span(),
                format!("parameter `{name}` is required and has a default"),
                Some("a default makes it optional: remove one of the two".into()),
            );
            continue;
        }
        out.insert(
            name.to_owned(),
            Param {
                default,
                description,
                required,
            },
        );
    }
    out
}

/// `[trends]`: `days` (3–366) or `runs` (3–1000), `tolerance` (percent, 0–100) and which metrics and counters are
/// better higher or lower; each name a metric of the pipeline or `step.counter` of one of its
/// steps.
fn read_trends(
    cx: &mut Cx,
    v: &reader::Value,
    steps: &BTreeSet<&str>,
    metrics: &[Metric],
) -> Trends {
    let mut out = Trends::default();
    let Some(t) = reader::table(cx, "trends", v) else {
        return out;
    };
    t.check_keys(cx, "in [trends]", TRENDS_KEYS);
    let within = |r: std::ops::RangeInclusive<u32>| i64::from(*r.start())..i64::from(*r.end()) + 1;
    let days = t
        .get("days")
        .and_then(|v| reader::integer(cx, "trends.days", v, within(TrendSpan::DAYS)));
    let runs = t
        .get("runs")
        .and_then(|v| reader::integer(cx, "trends.runs", v, within(TrendSpan::RUNS)));
    match (
        days.and_then(|d| u32::try_from(d).ok()),
        runs.and_then(|r| u32::try_from(r).ok()),
    ) {
        (Some(_), Some(_)) => cx.error(
            t.get("runs").map(reader::Value::span).unwrap_or_default(),
            "`trends.days` and `trends.runs` are both given: a trend is over days or over runs",
            Some("keep one: days = 30 fits one value a day, runs = 20 one value a run".into()),
        ),
        (Some(d), None) => out.over = TrendSpan::Days(d),
        (None, Some(r)) => out.over = TrendSpan::Runs(r),
        (None, None) => {}
    }
    if let Some(v) = t.get("tolerance") {
        match reader::number(cx, "trends.tolerance", v) {
            Some(p) if (0.0..=100.0).contains(&p) => out.tolerance_percent = p,
            Some(_) => cx.error(
                v.span(),
                "`trends.tolerance` is a percentage of the mean, from 0 to 100",
                Some("e.g. tolerance = 5: a change of 5 % or less over the days is stable".into()),
            ),
            None => {}
        }
    }
    let mut names = |key: &str| -> Vec<String> {
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, span) in reader::text_list(cx, &format!("trends.{key}"), v) {
            let name = name.expose().to_owned();
            let known = metrics.iter().any(|m| m.name == name)
                || name
                    .split_once('.')
                    .is_some_and(|(step, counter)| steps.contains(step) && !counter.is_empty());
            if known {
                out.push(name);
            } else {
                let metric_names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
                cx.error(
                    span,
                    format!("`{name}` in trends.{key} is neither a metric of this pipeline nor step.counter of one of its steps"),
                    Some(format!(
                        "name a metric ({}) or a counter as step.counter (steps: {})",
                        if metric_names.is_empty() { "none defined".to_owned() } else { metric_names.join(", ") },
                        steps.iter().copied().collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
        out
    };
    out.higher_is_better = names("higher_is_better");
    out.lower_is_better = names("lower_is_better");
    out
}

fn read_metrics(cx: &mut Cx, v: &reader::Value, steps: &BTreeSet<&str>) -> Vec<Metric> {
    let Some(t) = reader::table(cx, "metrics", v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, span, value) in t.entries() {
        if !plantao_model::is_identifier(name) {
            cx.error(
                span,
                format!("metric name `{name}` is not allowed"),
                Some("use letters, digits and `_`".into()),
            );
            continue;
        }
        let key = format!("metrics.{name}");
        let Some(source) = reader::text(cx, &key, value) else {
            continue;
        };
        let Some(expr) = parse_expr(cx, &key, source.expose(), value.span(), |root| {
            if steps.contains(root) {
                return Ok(());
            }
            let close = suggest::closest(root, steps.iter().copied(), 1);
            Err(suggest::did_you_mean(&close).unwrap_or_else(|| {
                format!(
                    "metrics read counters as step.counter; the steps here are: {}",
                    steps.iter().copied().collect::<Vec<_>>().join(", ")
                )
            }))
        }) else {
            continue;
        };
        let mut sample = Vars::default();
        let mut whole_steps = Vec::new();
        for r in expr.references() {
            match r.field {
                Some(field) => {
                    sample.member(&r.root, &field, 1.0);
                }
                None => whole_steps.push(r.root),
            }
        }
        if let Some(step) = whole_steps.first() {
            cx.error(
                value.span(),
                format!("`{key}` reads the step `{step}` itself, not one of its counters"),
                Some(format!(
                    "name a counter: {step}.<counter>, e.g. {step}.approved"
                )),
            );
            continue;
        }
        match expr.try_eval(&sample) {
            Ok(ExprValue::Number(_)) | Ok(ExprValue::NoData) => out.push(Metric {
                name: name.to_owned(),
                expr,
            }),
            Ok(other) => cx.error(
                value.span(),
                format!("`{key}` must give a number, but gives {other:?}"),
                Some("a derived metric is arithmetic over counters, e.g. a / (a + b) * 100".into()),
            ),
            Err(why) => cx.error(
                value.span(),
                format!("`{key}` cannot be computed: {why}"),
                None,
            ),
        }
    }
    out
}

/// `inputs`: glob patterns of the files whose contents decide whether a run has anything to do,
/// relative to the pipeline's `working_dir` (else the folder of its file).
fn read_inputs(cx: &mut Cx, t: Table, base: &Path) -> Option<Inputs> {
    let patterns: Vec<String> = reader::text_list(cx, "inputs", t.get("inputs")?)
        .into_iter()
        .filter_map(|(text, span)| {
            let pattern = text.expose().to_owned();
            if pattern.trim().is_empty() {
                cx.error(span, "an input pattern is empty", Some("write a path or a glob such as \"exports/*.csv\"".into()));
                return None;
            }
            match glob::Pattern::new(&pattern) {
                Ok(_) => Some(pattern),
                Err(e) => {
                    cx.error(
                        span,
                        format!("`{pattern}` is not a valid glob pattern: {}", e.msg),
                        Some("use `*` for any name, `**` for any folders, `?` for one character, `[abc]` for one of them".into()),
                    );
                    None
                }
            }
        })
        .collect();
    (!patterns.is_empty()).then(|| Inputs {
        base: base.to_owned(),
        patterns,
    })
}
