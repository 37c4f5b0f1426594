//! `[[alerts]]` rules (plantao.toml or a pipeline's file) and `[[escalation]]` policies; the
//! channels they name are read by `channels.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use plantao_model::{Severity, Text};
use toml::de::DeValue;

use crate::diag::{Diagnostic, Source};
use crate::reader::{self, Cx, Table, Value};
use crate::steps::parse_expr;
use crate::suggest;
use crate::types::{
    AlertRule, AlertWindow, CheckEvent, Condition, DurationLimit, Escalation, EscalationLevel,
    Pipeline,
};

/// The keys every rule takes.
pub(crate) const RULE_KEYS: &[&str] = &[
    "name",
    "kind",
    "pipeline",
    "severity",
    "for",
    "labels",
    "message",
    "runbook",
    "channels",
    "escalation",
    "repeat_interval",
    "group_by",
    "depends_on",
    "template",
];
/// The keys of a rule's condition, each taken by some kinds only.
pub(crate) const CONDITION_KEYS: &[&str] = &[
    "stage",
    "max",
    "factor",
    "last",
    "after",
    "window",
    "when",
    "threshold",
    "check",
    "events",
    "pattern",
];
const RULE_KINDS: &[&str] = &[
    "run_failed",
    "stage_failed",
    "duration",
    "stuck",
    "missed",
    "failure_rate",
    "expr",
    "storage",
    "heartbeat",
    "probe",
    "pattern",
];
/// What a heartbeat rule fires on unless its `events` say.
const DEFAULT_EVENTS: &[CheckEvent] = &[
    CheckEvent::Down,
    CheckEvent::TooLong,
    CheckEvent::StartMissing,
];
/// How many successful runs "slower than usual" compares against, unless `last` says.
const DEFAULT_LAST: u32 = 20;
/// What an `expr` rule may read besides the pipeline's counters and derived metrics.
pub const WINDOW_VARIABLES: &[&str] = &[
    "threshold",
    "runs",
    "succeeded",
    "failed",
    "success_rate",
    "failure_rate",
];

/// What rules may name: every channel and escalation policy written (broken ones included, so
/// that a rule naming one is not reported as well).
#[derive(Default)]
pub(crate) struct Names {
    pub channels: Vec<String>,
    pub escalations: Vec<String>,
    /// The `[[patterns]]` a `pattern` rule may name.
    pub patterns: Vec<String>,
}

pub(crate) const ESCALATION_KEYS: &[&str] = &["name", "levels", "repeat"];
pub(crate) const LEVEL_KEYS: &[&str] = &["after", "channels"];

/// The `[[escalation]]` policies; their names go to `names`.
pub(crate) fn read_escalations(cx: &mut Cx, v: &Value, names: &mut Names) -> Vec<Escalation> {
    let Some(items) = reader::array(cx, "escalation", v) else {
        return Vec::new();
    };
    let mut out: Vec<Escalation> = Vec::new();
    for item in items {
        let Some(t) = reader::table(cx, "[[escalation]]", item) else {
            continue;
        };
        t.check_keys(cx, "in [[escalation]]", ESCALATION_KEYS);
        if let Some(DeValue::String(name)) = t.get("name").map(|v| v.get_ref()) {
            names.escalations.push(name.to_string());
        }
        let Some(name) = required_name(cx, t, "[[escalation]]") else {
            continue;
        };
        let place = format!("escalation `{name}`");
        let Some(levels_value) = required(
            cx,
            t,
            "levels",
            &place,
            "[{ after = \"0s\", channels = [\"oncall\"] }]",
        ) else {
            continue;
        };
        let mut levels: Vec<EscalationLevel> = Vec::new();
        for level in reader::array(cx, "levels", levels_value).unwrap_or_default() {
            let Some(lt) = reader::table(cx, "levels", level) else {
                continue;
            };
            lt.check_keys(cx, &format!("in a level of {place}"), LEVEL_KEYS);
            let after = match lt.get("after") {
                Some(v) => match reader::text(cx, "after", v)
                    .map(|t| crate::duration::parse_duration(t.expose()))
                {
                    Some(Ok(d)) => d,
                    Some(Err(why)) => {
                        cx.error(
                            v.span(),
                            format!("`after` is not a valid duration: {why}"),
                            None,
                        );
                        continue;
                    }
                    None => continue,
                },
                None => Duration::ZERO,
            };
            if levels.last().is_some_and(|l| l.after >= after) {
                cx.error(
                    lt.span(),
                    format!("the levels of {place} must come later and later: each `after` longer than the one before"),
                    Some("e.g. after = \"0s\", then \"15m\", then \"1h\" (all from when the alert fired)".into()),
                );
                continue;
            }
            let channels = rule_channels(cx, lt.get("channels"), &names.channels, &place);
            if channels.is_empty() {
                cx.error(
                    lt.span(),
                    format!("a level of {place} has no `channels`"),
                    Some("channels = [\"oncall-whatsapp\"]".into()),
                );
                continue;
            }
            levels.push(EscalationLevel { after, channels });
        }
        if levels.is_empty() {
            continue;
        }
        let repeat = t
            .get("repeat")
            .and_then(|v| reader::duration(cx, "repeat", v));
        if out.iter().any(|e| e.name == name) {
            cx.error(
                t.span(),
                format!("an escalation named `{name}` is defined twice"),
                None,
            );
            continue;
        }
        out.push(Escalation {
            name,
            levels,
            repeat,
        });
    }
    out
}

/// The channels a rule or a level names, each checked against those that exist.
pub(crate) fn rule_channels(
    cx: &mut Cx,
    v: Option<&Value>,
    known: &[String],
    place: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for (c, span) in v
        .map(|v| reader::text_list(cx, "channels", v))
        .unwrap_or_default()
    {
        let c = c.expose().to_owned();
        if known.contains(&c) {
            out.push(c);
        } else {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            let close = suggest::closest(&c, names.iter().copied(), 1);
            cx.error(
                span,
                format!("{place} sends to `{c}`, which is not a channel"),
                suggest::did_you_mean(&close).or_else(|| {
                    Some(if names.is_empty() {
                        "define it with [[channels]] in plantao.toml".to_owned()
                    } else {
                        format!("the channels are: {}", names.join(", "))
                    })
                }),
            );
        }
    }
    out
}

/// What rules read from the pipeline file they are written in.
pub(crate) struct Home<'a> {
    pub pipeline: &'a str,
    pub names: BTreeSet<&'a str>,
    /// The file is an external pipeline's: its `heartbeat` rules watch it.
    pub heartbeat: bool,
}

/// A rule, with the names it uses that can only be checked once every file is read.
pub(crate) struct RuleRead {
    pub rule: AlertRule,
    pub pipeline_span: Option<Range<usize>>,
    pub when_span: Option<Range<usize>>,
    /// Where a heartbeat rule names its check.
    pub check_span: Option<Range<usize>>,
    /// The rules it depends on, where they are written.
    pub depends: Vec<(String, Range<usize>)>,
}

/// The rules in `v`; `home` is the pipeline whose file they are in (none for plantao.toml).
pub(crate) fn read_rules(
    cx: &mut Cx,
    v: &Value,
    names: &Names,
    home: Option<&Home>,
) -> Vec<RuleRead> {
    let Some(items) = reader::array(cx, "alerts", v) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(t) = reader::table(cx, "[[alerts]]", item) else {
            continue;
        };
        let known: Vec<&str> = RULE_KEYS.iter().chain(CONDITION_KEYS).copied().collect();
        t.check_keys(cx, "in [[alerts]]", &known);
        if let Some(r) = read_rule(cx, t, names, home) {
            out.push(r);
        }
    }
    out
}

fn read_rule(cx: &mut Cx, t: Table, names: &Names, home: Option<&Home>) -> Option<RuleRead> {
    let name = required_name(cx, t, "[[alerts]]")?;
    let place = format!("rule `{name}`");
    let (pipeline, pipeline_span) = match (t.get("pipeline"), home) {
        (Some(v), Some(h)) => {
            cx.error(
                v.span(),
                format!(
                    "a rule in a pipeline's file watches that pipeline (`{}`)",
                    h.pipeline
                ),
                Some("remove `pipeline`, or move the rule to plantao.toml".into()),
            );
            return None;
        }
        (Some(v), None) => (
            Some(reader::text(cx, "pipeline", v)?.expose().to_owned()),
            Some(v.span()),
        ),
        (None, Some(h)) => (Some(h.pipeline.to_owned()), None),
        (None, None) => (None, None),
    };
    let kind_value = t.get("kind");
    let kind = match kind_value {
        Some(v) => reader::text(cx, "kind", v)?.expose().to_owned(),
        None if t.get("when").is_some() => "expr".to_owned(),
        None => {
            cx.error(
                t.span(),
                format!("{place} has no `kind`"),
                Some(format!(
                    "set kind to one of {}, or give a `when` expression",
                    RULE_KINDS.join(", ")
                )),
            );
            return None;
        }
    };
    let applies: &[&str] = match kind.as_str() {
        "run_failed" => &[],
        "stage_failed" => &["stage"],
        "duration" => &["stage", "max", "factor", "last"],
        "stuck" => &["after"],
        "missed" | "storage" => &[],
        "failure_rate" => &["window", "threshold"],
        "expr" => &["window", "when", "threshold"],
        "heartbeat" => &["check", "events"],
        "probe" => &["check"],
        "pattern" => &["pattern"],
        other => {
            let v = kind_value.unwrap_or(t.get("name")?);
            unknown(cx, v, "rule kind", other, RULE_KINDS);
            return None;
        }
    };
    for &key in CONDITION_KEYS {
        if let Some(v) = t.get(key)
            && !applies.contains(&key)
        {
            cx.error(
                v.span(),
                format!("`{key}` does not apply to a rule of kind {kind}"),
                Some(format!(
                    "a {kind} rule takes: {}",
                    if applies.is_empty() {
                        "no condition keys".to_owned()
                    } else {
                        applies.join(", ")
                    }
                )),
            );
        }
    }
    let threshold = t.get("threshold").and_then(|v| number_or_env(cx, v));
    let window = t.get("window").and_then(|v| read_window(cx, v));
    let mut when_span = None;
    let mut check_span = None;
    let own_heartbeat = kind == "heartbeat" && home.is_some_and(|h| h.heartbeat);
    if matches!(kind.as_str(), "heartbeat" | "probe")
        && !own_heartbeat
        && let Some(span) = pipeline_span.clone().or(home.map(|_| t.span()))
    {
        cx.error(
            span,
            format!("{place} watches {kind}s, not a pipeline"),
            Some(format!("write it in plantao.toml, and name the {kind} with check = \"…\" (or none: every {kind})")),
        );
        return None;
    }
    let check = match t.get("check") {
        Some(v) => {
            check_span = Some(v.span());
            Some(reader::text(cx, "check", v)?.expose().to_owned())
        }
        None => None,
    };
    let condition = match kind.as_str() {
        "probe" => Condition::Probe { check },
        "heartbeat" => Condition::Heartbeat {
            check,
            events: match t.get("events") {
                Some(v) => check_events(cx, v)?,
                None => DEFAULT_EVENTS.to_vec(),
            },
        },
        "run_failed" => Condition::RunFailed,
        "stage_failed" => Condition::StageFailed {
            stage: required(cx, t, "stage", &place, "\"send\"")
                .and_then(|v| stage_name(cx, v, home))?,
        },
        "duration" => {
            let stage = match t.get("stage") {
                Some(v) => Some(stage_name(cx, v, home)?),
                None => None,
            };
            let limit = duration_limit(cx, t, &place)?;
            if let (Some(_), DurationLimit::Usual { .. }, Some(v)) =
                (&stage, limit, t.get("factor"))
            {
                cx.error(
                    v.span(),
                    "`factor` (slower than usual) judges whole runs, not a stage",
                    Some("remove `stage`, or give the stage a fixed max = \"10m\"".into()),
                );
                return None;
            }
            Condition::Duration { stage, limit }
        }
        "pattern" => Condition::Pattern {
            pattern: match t.get("pattern") {
                None => None,
                Some(v) => {
                    let name = reader::text(cx, "pattern", v)?.expose().to_owned();
                    if !names.patterns.contains(&name) {
                        let close =
                            suggest::closest(&name, names.patterns.iter().map(String::as_str), 2);
                        cx.error(
                            v.span(),
                            format!("there is no pattern `{name}`"),
                            suggest::did_you_mean(&close).or_else(|| {
                                Some("define it with [[patterns]] in plantao.toml, or leave `pattern` out to hear of any".into())
                            }),
                        );
                        return None;
                    }
                    Some(name)
                }
            },
        },
        "missed" => Condition::Missed,
        "storage" => Condition::Storage,
        "stuck" => Condition::Stuck {
            after: required(cx, t, "after", &place, "\"1h\"")
                .and_then(|v| reader::duration(cx, "after", v))?,
        },
        "failure_rate" => {
            if threshold.is_none() && t.get("threshold").is_none() {
                cx.error(
                    t.span(),
                    format!("{place} has no `threshold`"),
                    Some(
                        "threshold = 20 fires when more than 20 % of the window's runs fail".into(),
                    ),
                );
            }
            Condition::FailureRate {
                window: window.unwrap_or(AlertWindow::Hours24),
            }
        }
        _ => {
            let v = t.get("when")?;
            let source = reader::text(cx, "when", v)?.expose().to_owned();
            let when = parse_expr(cx, "when", &source, v.span(), |root| match home {
                Some(h) if !WINDOW_VARIABLES.contains(&root) && !h.names.contains(root) => {
                    Err(format!(
                        "a rule reads {}, and the pipeline's counters (step.counter) and metrics: {}",
                        WINDOW_VARIABLES.join(", "),
                        h.names.iter().copied().collect::<Vec<_>>().join(", ")
                    ))
                }
                _ => Ok(()),
            })?;
            when_span = Some(v.span());
            Condition::Expr {
                when,
                window: window.unwrap_or(AlertWindow::Today),
            }
        }
    };
    let severity = read_severity(cx, t)?;
    let rule_channels = rule_channels(cx, t.get("channels"), &names.channels, &place);
    let escalation = match t.get("escalation") {
        None => None,
        Some(v) => {
            let policy = reader::text(cx, "escalation", v)?.expose().to_owned();
            if t.get("channels").is_some() {
                cx.error(
                    v.span(),
                    format!("{place} has both `channels` and `escalation`"),
                    Some("keep `escalation`: its levels name the channels".into()),
                );
                return None;
            }
            if !names.escalations.contains(&policy) {
                let known: Vec<&str> = names.escalations.iter().map(String::as_str).collect();
                let close = suggest::closest(&policy, known.iter().copied(), 1);
                cx.error(
                    v.span(),
                    format!("{place} escalates through `{policy}`, which is not an [[escalation]] policy"),
                    suggest::did_you_mean(&close).or_else(|| {
                        Some("define it with [[escalation]] in plantao.toml".to_owned())
                    }),
                );
                return None;
            }
            Some(policy)
        }
    };
    let labels: BTreeMap<String, String> = t
        .get("labels")
        .map(|v| reader::text_map(cx, "labels", v))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_owned()))
        .collect();
    let plain = |cx: &mut Cx, key: &str| {
        t.get(key)
            .and_then(|v| reader::text(cx, key, v))
            .map(|s| s.expose().to_owned())
    };
    let message = t
        .get("message")
        .and_then(|v| crate::template::read(cx, "message", v));
    let runbook = plain(cx, "runbook");
    let template = t
        .get("template")
        .and_then(|v| crate::template::read(cx, "template", v));
    let depends = names_list(cx, t, "depends_on");
    let group_by = t.get("group_by").map(|v| group_fields(cx, v));
    Some(RuleRead {
        rule: AlertRule {
            name,
            pipeline,
            condition,
            severity,
            hold: t
                .get("for")
                .and_then(|v| reader::duration(cx, "for", v))
                .unwrap_or(Duration::ZERO),
            labels,
            message,
            runbook,
            channels: rule_channels,
            escalation,
            repeat_interval: t
                .get("repeat_interval")
                .and_then(|v| reader::duration(cx, "repeat_interval", v)),
            threshold,
            group_by,
            depends_on: depends.iter().map(|(n, _)| n.clone()).collect(),
            template,
        },
        pipeline_span,
        when_span,
        check_span,
        depends,
    })
}

/// A heartbeat rule's `events`: at least one, each a [`CheckEvent`].
fn check_events(cx: &mut Cx, v: &Value) -> Option<Vec<CheckEvent>> {
    let names: Vec<&str> = CheckEvent::ALL.iter().map(|e| e.as_str()).collect();
    let mut events = Vec::new();
    for (text, span) in reader::text_list(cx, "events", v) {
        match CheckEvent::ALL.iter().find(|e| e.as_str() == text.expose()) {
            Some(e) => events.push(*e),
            None => {
                let close = suggest::closest(text.expose(), names.iter().copied(), 1);
                cx.error(
                    span,
                    format!("unknown heartbeat event `{}`", text.expose()),
                    suggest::did_you_mean(&close)
                        .or_else(|| Some(format!("use some of: {}", names.join(", ")))),
                );
                return None;
            }
        }
    }
    if events.is_empty() {
        cx.error(
            v.span(),
            "`events` is empty: the rule would never fire",
            Some(format!("list some of: {}", names.join(", "))),
        );
        return None;
    }
    events.sort();
    events.dedup();
    Some(events)
}

/// A list of names under `key`, each with where it is written.
pub(crate) fn names_list(cx: &mut Cx, t: Table, key: &str) -> Vec<(String, Range<usize>)> {
    t.get(key)
        .map(|v| reader::text_list(cx, key, v))
        .unwrap_or_default()
        .into_iter()
        .map(|(n, span)| (n.expose().to_owned(), span))
        .collect()
}

/// What makes a group: field and label names.
pub(crate) fn group_fields(cx: &mut Cx, v: &Value) -> Vec<String> {
    reader::text_list(cx, "group_by", v)
        .into_iter()
        .map(|(n, _)| n.expose().to_owned())
        .collect()
}

/// Checks what rules in plantao.toml name once every pipeline is known, and that rule names are
/// unique across files.
pub(crate) fn check_rules(
    source: &Source,
    reads: &[RuleRead],
    pipelines: &[Pipeline],
    diags: &mut Vec<Diagnostic>,
) {
    let known: Vec<&str> = pipelines.iter().map(|p| p.name.as_str()).collect();
    for r in reads {
        let Some(span) = &r.pipeline_span else {
            continue;
        };
        let Some(name) = &r.rule.pipeline else {
            continue;
        };
        let Some(p) = pipelines.iter().find(|p| &p.name == name) else {
            let close = suggest::closest(name, known.iter().copied(), 1);
            diags.push(
                source.diagnostic(
                    span.clone(),
                    format!(
                        "rule `{}` watches `{name}`, which is not a pipeline",
                        r.rule.name
                    ),
                    suggest::did_you_mean(&close)
                        .or_else(|| Some(format!("the pipelines are: {}", known.join(", ")))),
                ),
            );
            continue;
        };
        let names = pipeline_names(p);
        let stage = match &r.rule.condition {
            Condition::StageFailed { stage } => Some(stage),
            Condition::Duration { stage, .. } => stage.as_ref(),
            _ => None,
        };
        if let Some(stage) = stage
            && !p.steps.iter().chain(&p.finally).any(|s| &s.name == stage)
        {
            diags.push(source.diagnostic(
                span.clone(),
                format!(
                    "rule `{}` names stage `{stage}`, which pipeline `{name}` does not have",
                    r.rule.name
                ),
                None,
            ));
        }
        if let (Condition::Expr { when, .. }, Some(when_span)) = (&r.rule.condition, &r.when_span) {
            for root in when.references().into_iter().map(|x| x.root) {
                if !WINDOW_VARIABLES.contains(&root.as_str()) && !names.contains(root.as_str()) {
                    diags.push(source.diagnostic(
                        when_span.clone(),
                        format!("rule `{}` reads `{root}`, which pipeline `{name}` does not define", r.rule.name),
                        Some(format!(
                            "a rule reads {}, and the pipeline's counters (step.counter) and metrics",
                            WINDOW_VARIABLES.join(", ")
                        )),
                    ));
                }
            }
        }
    }
}

/// The names a rule's expression may read from a pipeline: its steps (counters) and metrics.
pub(crate) fn pipeline_names(p: &Pipeline) -> BTreeSet<&str> {
    p.steps
        .iter()
        .chain(&p.finally)
        .map(|s| s.name.as_str())
        .chain(p.metrics.iter().map(|m| m.name.as_str()))
        .collect()
}

/// A duration rule's limit: `max`, or `factor` (with `last`) for "slower than usual".
fn duration_limit(cx: &mut Cx, t: Table, place: &str) -> Option<DurationLimit> {
    match (t.get("max"), t.get("factor")) {
        (Some(v), None) => {
            if let Some(last) = t.get("last") {
                cx.error(
                    last.span(),
                    "`last` goes with `factor`, not with `max`",
                    Some("remove `last`, or use factor = 2 instead of `max`".into()),
                );
            }
            reader::duration(cx, "max", v).map(DurationLimit::Max)
        }
        (None, Some(v)) => {
            let factor = reader::number(cx, "factor", v)?;
            if !(factor > 0.0 && factor.is_finite()) {
                cx.error(
                    v.span(),
                    "`factor` must be a number above 0",
                    Some("e.g. factor = 2: twice the usual p95".into()),
                );
                return None;
            }
            let last = match t.get("last") {
                Some(l) => u32::try_from(reader::integer(cx, "last", l, 5..10_001)?).ok()?,
                None => DEFAULT_LAST,
            };
            Some(DurationLimit::Usual { factor, last })
        }
        (Some(_), Some(v)) => {
            cx.error(
                v.span(),
                format!("{place} has both `max` and `factor`"),
                Some(
                    "keep one: max = \"10m\" (a fixed limit) or factor = 2 (slower than usual)"
                        .into(),
                ),
            );
            None
        }
        (None, None) => {
            cx.error(
                t.span(),
                format!("{place} has no limit"),
                Some("add max = \"10m\" (a fixed limit) or factor = 2 (twice the p95 of the last successful runs)".into()),
            );
            None
        }
    }
}

fn stage_name(cx: &mut Cx, v: &Value, home: Option<&Home>) -> Option<String> {
    let name = reader::text(cx, "stage", v)?.expose().to_owned();
    if let Some(h) = home
        && !h.names.contains(name.as_str())
    {
        cx.error(
            v.span(),
            format!(
                "`stage` names `{name}`, which is not a step of `{}`",
                h.pipeline
            ),
            None,
        );
        return None;
    }
    Some(name)
}

fn read_window(cx: &mut Cx, v: &Value) -> Option<AlertWindow> {
    let text = reader::text(cx, "window", v)?;
    match text.expose() {
        "today" => Some(AlertWindow::Today),
        "24h" => Some(AlertWindow::Hours24),
        "7d" => Some(AlertWindow::Days7),
        other => {
            unknown(cx, v, "window", other, &["today", "24h", "7d"]);
            None
        }
    }
}

/// A number written as such, or a string from the environment holding one.
fn number_or_env(cx: &mut Cx, v: &Value) -> Option<f64> {
    if !matches!(v.get_ref(), DeValue::String(_)) {
        return reader::number(cx, "threshold", v);
    }
    let text: Text = reader::text(cx, "threshold", v)?;
    match text.expose().trim().parse::<f64>() {
        Ok(n) if n.is_finite() => Some(n),
        _ => {
            cx.error(
                v.span(),
                reader::secret_safe(
                    &text,
                    "number",
                    format!("`threshold` must be a number, found `{}`", text.shown()),
                ),
                Some("e.g. threshold = 70 or threshold = \"${env:MIN_APPROVAL:-70}\"".into()),
            );
            None
        }
    }
}

pub(crate) fn required_name(cx: &mut Cx, t: Table, place: &str) -> Option<String> {
    let v = required(cx, t, "name", place, "\"…\"")?;
    let name = reader::text(cx, "name", v)?.expose().to_owned();
    if !allowed_name(&name) {
        cx.error(
            v.span(),
            format!("name `{name}` is not allowed"),
            Some("use letters, digits, `-` and `_` (it appears in URLs and commands)".into()),
        );
        return None;
    }
    Some(name)
}

/// Letters, digits, `-` and `_`, at most 100: a name that goes into URLs and commands.
pub(crate) fn allowed_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn required<'a, 'i>(
    cx: &mut Cx,
    t: Table<'a, 'i>,
    key: &str,
    place: &str,
    example: &str,
) -> Option<&'a Value<'i>> {
    let v = t.get(key);
    if v.is_none() {
        cx.error(
            t.span(),
            format!("{place} has no `{key}`"),
            Some(format!("add {key} = {example}")),
        );
    }
    v
}

/// `severity`: `info`, `warning` (when left out) or `critical`; none after a diagnostic.
pub(crate) fn read_severity(cx: &mut Cx, t: Table) -> Option<Severity> {
    let Some(v) = t.get("severity") else {
        return Some(Severity::Warning);
    };
    let text = reader::text(cx, "severity", v)?;
    match text.expose().parse() {
        Ok(s) => Some(s),
        Err(_) => {
            unknown(
                cx,
                v,
                "severity",
                text.expose(),
                &["info", "warning", "critical"],
            );
            None
        }
    }
}

pub(crate) fn unknown(cx: &mut Cx, v: &Value, what: &str, found: &str, known: &[&str]) {
    let close = suggest::closest(found, known.iter().copied(), 1);
    cx.error(
        v.span(),
        format!("unknown {what} `{found}`"),
        suggest::did_you_mean(&close).or_else(|| Some(format!("use one of: {}", known.join(", ")))),
    );
}
