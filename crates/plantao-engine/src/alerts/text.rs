//! What notifications say, in English or Portuguese (pt-BR), chosen per channel. The text is
//! a minijinja template: the rule's `template`, else the channel's, else the default of the
//! channel's language ([`DEFAULT_EN`], [`DEFAULT_PT`]). Its `message` is the rule's own (a
//! template too), or its kind's default sentence built from the alert's annotations (run,
//! status, stage, error, limits, values). docs/alerts.md lists the context.

use std::sync::OnceLock;

use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use plantao_config::{AlertRule, Channel, Language};
use plantao_model::{NotificationEvent, Severity};
use plantao_store::{Alert, Notification};

/// The notification's text in English unless a template says otherwise.
pub const DEFAULT_EN: &str = "[{{ severity }}] {{ event_label }} · {{ alert.rule }}
{% if resolved_after %}Resolved after {{ resolved_after }}. It was: {% endif %}{{ message }}
{%- if runbook and event != \"resolved\" %}
Suggested action: {{ runbook }}{% endif %}";

/// The same in Portuguese (pt-BR).
pub const DEFAULT_PT: &str = "[{{ severity }}] {{ event_label }} · {{ alert.rule }}
{% if resolved_after %}Resolvido após {{ resolved_after }}. Era: {% endif %}{{ message }}
{%- if runbook and event != \"resolved\" %}
Ação sugerida: {{ runbook }}{% endif %}";

/// How many alerts a grouped message lists before it says how many more there are.
const GROUP_SHOWN: usize = 30;

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [("en", DEFAULT_EN), ("pt-BR", DEFAULT_PT)] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(error = %e, "a default message template does not parse");
            }
        }
        env
    })
}

/// The alert's message in `lang`: the rule's own (rendered), or its kind's default.
pub fn message(rule: &AlertRule, alert: &Alert, lang: Language) -> String {
    match &rule.message {
        Some(template) => render(
            template,
            &base_context(alert, NotificationEvent::Firing, lang),
        )
        .unwrap_or_else(|| template.clone()),
        None => default_message(alert, lang),
    }
}

/// The whole text of a notification of `alert` on `channel`.
pub fn notification(
    rule: Option<&AlertRule>,
    channel: &Channel,
    alert: &Alert,
    event: NotificationEvent,
) -> String {
    let lang = channel.language;
    let base = base_context(alert, event, lang);
    let message = match rule {
        Some(r) => message(r, alert, lang),
        None => alert.message.clone(),
    };
    let resolved_after = match (event, alert.fired_at, alert.resolved_at) {
        (NotificationEvent::Resolved, Some(fired), Some(resolved)) => {
            Some(humanize_seconds((resolved - fired).num_seconds()))
        }
        _ => None,
    };
    let ctx = context! { message, resolved_after, ..base };
    let own = rule
        .and_then(|r| r.template.as_deref())
        .or(channel.template.as_deref());
    if let Some(text) = own.and_then(|t| render(t, &ctx)) {
        return text;
    }
    environment()
        .get_template(lang.as_str())
        .and_then(|t| t.render(&ctx))
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "the default message template failed");
            format!("{} · {}", alert.rule, alert.message)
        })
}

/// What every template reads besides `message` and `resolved_after`.
fn base_context(alert: &Alert, event: NotificationEvent, lang: Language) -> Value {
    let pt = lang == Language::PtBr;
    context! {
        alert => Value::from(Serde(alert)),
        event => event.as_str(),
        event_label => event_label(event, pt),
        severity => severity_label(alert.severity, pt),
        runbook => alert.runbook.clone(),
        language => lang.as_str(),
    }
}

/// `template` rendered with `ctx`; none (and a log line) when it fails, so the default text
/// goes out instead of nothing.
fn render(template: &str, ctx: &Value) -> Option<String> {
    environment()
        .render_str(template, ctx)
        .map_err(
            |e| tracing::warn!(error = %e, "a message template failed; using the default text"),
        )
        .ok()
}

fn severity_label(severity: Severity, pt: bool) -> &'static str {
    match (severity, pt) {
        (Severity::Critical, false) => "CRITICAL",
        (Severity::Critical, true) => "CRÍTICO",
        (Severity::Warning, false) => "WARNING",
        (Severity::Warning, true) => "AVISO",
        (Severity::Info, _) => "INFO",
    }
}

fn event_label(event: NotificationEvent, pt: bool) -> &'static str {
    match (event, pt) {
        (NotificationEvent::Firing, false) => "FIRING",
        (NotificationEvent::Firing, true) => "DISPARADO",
        (NotificationEvent::Reminder, false) => "REMINDER",
        (NotificationEvent::Reminder, true) => "LEMBRETE",
        (NotificationEvent::Resolved, false) => "RESOLVED",
        (NotificationEvent::Resolved, true) => "RESOLVIDO",
        (NotificationEvent::Test, false) => "TEST",
        (NotificationEvent::Test, true) => "TESTE",
        (NotificationEvent::Report, false) => "REPORT",
        (NotificationEvent::Report, true) => "RELATÓRIO",
    }
}

/// One message for the notifications of a group: how many alerts, then each one's text.
pub fn group(members: &[Notification], lang: Language) -> String {
    let pt = lang == Language::PtBr;
    let severity = members
        .iter()
        .filter_map(|n| n.alert.as_ref().map(|a| a.severity))
        .max_by_key(|s| match s {
            Severity::Info => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
        })
        .unwrap_or(Severity::Warning);
    let what = members
        .first()
        .and_then(|n| n.group.as_deref())
        .and_then(|g| g.split_once('/'))
        .map_or("", |(_, fields)| fields);
    let noun = if pt { "alertas" } else { "alerts" };
    let mut out = format!(
        "[{}] {} {noun} · {what}",
        severity_label(severity, pt),
        members.len()
    );
    for n in members.iter().take(GROUP_SHOWN) {
        out.push_str("\n\n");
        out.push_str(&n.text);
    }
    if members.len() > GROUP_SHOWN {
        let more = members.len() - GROUP_SHOWN;
        out.push_str(&if pt {
            format!("\n\n… e mais {more}")
        } else {
            format!("\n\n… and {more} more")
        });
    }
    out
}

/// What `plantao channel test` sends.
pub fn test_message(channel: &str, lang: Language) -> String {
    match lang {
        Language::En => format!(
            "[INFO] TEST · plantao\nA test message to channel {channel}: if you read this, alerts will reach you here."
        ),
        Language::PtBr => format!(
            "[INFO] TESTE · plantao\nMensagem de teste para o canal {channel}: se você está lendo isto, os alertas chegarão aqui."
        ),
    }
}

fn default_message(alert: &Alert, lang: Language) -> String {
    let pt = lang == Language::PtBr;
    let a = |key: &str| alert.annotations.get(key).map_or("?", String::as_str);
    let has = |key: &str| alert.annotations.contains_key(key);
    let subject = match (&alert.pipeline, alert.kind.as_str()) {
        (Some(p), "heartbeat") => format!("Heartbeat {p}: "),
        (Some(p), "probe") => format!("Probe {p}: "),
        (Some(p), _) => format!("Pipeline {p}: "),
        (None, _) => String::new(),
    };
    let error = if has("error") {
        format!(": {}", a("error"))
    } else {
        String::new()
    };
    let value = alert.value.map_or_else(|| "?".to_owned(), format_number);
    let text = match (alert.kind.as_str(), pt) {
        ("run_failed", false) => {
            let stage = if has("stage") {
                format!(" at stage {}", a("stage"))
            } else {
                String::new()
            };
            format!("run {} ended {}{stage}{error}", a("run"), a("status"))
        }
        ("run_failed", true) => {
            let stage = if has("stage") {
                format!(" na etapa {}", a("stage"))
            } else {
                String::new()
            };
            format!(
                "a execução {} terminou como {}{stage}{error}",
                a("run"),
                status_pt(a("status"))
            )
        }
        ("stage_failed", false) => {
            format!(
                "stage {} ended {} in run {}{error}",
                a("stage"),
                a("status"),
                a("run")
            )
        }
        ("stage_failed", true) => format!(
            "a etapa {} terminou como {} na execução {}{error}",
            a("stage"),
            status_pt(a("status")),
            a("run")
        ),
        ("duration", false) => format!(
            "{} took {value} s, over the limit of {}",
            if has("stage") {
                format!("stage {}", a("stage"))
            } else {
                format!("run {}", a("run"))
            },
            a("max")
        ),
        ("duration", true) => format!(
            "{} levou {value} s, acima do limite de {}",
            if has("stage") {
                format!("a etapa {}", a("stage"))
            } else {
                format!("a execução {}", a("run"))
            },
            a("max")
        ),
        ("stuck", false) => format!(
            "run {} has been {} for over {}",
            a("run"),
            a("status"),
            a("after")
        ),
        ("stuck", true) => format!(
            "a execução {} está {} há mais de {}",
            a("run"),
            if a("status") == "queued" {
                "na fila"
            } else {
                "em execução"
            },
            a("after")
        ),
        ("missed", false) => format!("the tick of {} was skipped ({})", a("tick"), a("reason")),
        ("missed", true) => format!("o disparo de {} foi pulado ({})", a("tick"), a("reason")),
        ("storage", false) => format!("node {} cannot write to the database{error}", a("node")),
        ("storage", true) => {
            format!(
                "o nó {} não consegue gravar no banco de dados{error}",
                a("node")
            )
        }
        ("failure_rate", false) => format!(
            "{value} % of runs failed over {} (threshold {} %)",
            window_en(a("window")),
            a("threshold")
        ),
        ("failure_rate", true) => format!(
            "{value} % das execuções falharam {} (limite {} %)",
            window_pt(a("window")),
            a("threshold")
        ),
        ("expr", false) => format!(
            "{} over {} ({})",
            a("when"),
            window_en(a("window")),
            a("values")
        ),
        ("expr", true) => format!("{} {} ({})", a("when"), window_pt(a("window")), a("values")),
        ("heartbeat", false) => a("why").to_owned(),
        ("probe", false) if a("streak") == "1" => "down: its last check failed".to_owned(),
        ("probe", false) => format!("down: its last {} checks failed", a("streak")),
        ("probe", true) if a("streak") == "1" => {
            "fora do ar: a última verificação falhou".to_owned()
        }
        ("probe", true) => format!(
            "fora do ar: as últimas {} verificações falharam",
            a("streak")
        ),
        ("heartbeat", true) => event_pt(a("event"), alert.annotations.get("due")),
        ("pattern", false) => format!(
            "{value} log {} matched {} in run {}, first in stage {} line {}: \"{}\"",
            if value == "1" { "line" } else { "lines" },
            a("pattern"),
            a("run"),
            a("stage"),
            a("line"),
            a("excerpt")
        ),
        ("pattern", true) => format!(
            "{value} {} com {} na execução {}, a primeira na etapa {} linha {}: \"{}\"",
            if value == "1" {
                "linha do log casou"
            } else {
                "linhas do log casaram"
            },
            a("pattern"),
            a("run"),
            a("stage"),
            a("line"),
            a("excerpt")
        ),
        (kind, _) => kind.to_owned(),
    };
    format!("{subject}{text}")
}

/// A span of seconds as people say it: "45 s", "12 min", "3 h 5 min".
pub fn humanize_seconds(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ if s % 3600 < 60 => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// A number as people read it: at most two decimals, no trailing zeros.
pub fn format_number(n: f64) -> String {
    let text = format!("{n:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn status_pt(status: &str) -> &str {
    match status {
        "failed" => "falha",
        "timed_out" => "tempo esgotado",
        "interrupted" => "interrompida",
        "succeeded" => "sucesso",
        other => other,
    }
}

/// What a heartbeat's event says in Portuguese; `due` is when its success was expected.
fn event_pt(event: &str, due: Option<&String>) -> String {
    let since = due.map_or_else(String::new, |d| format!(" (esperado até {d})"));
    match event {
        "late" => format!("atrasado{since}"),
        "down" => format!("fora do ar: sem sucesso no prazo ou falha relatada{since}"),
        "too_short" => "a última execução terminou rápido demais (abaixo de min_duration)".into(),
        "too_long" => "a execução passou de max_duration".into(),
        "too_often" => "sinais de sucesso frequentes demais (abaixo de min_interval)".into(),
        "start_missing" => format!("o início não chegou no prazo (start_deadline){since}"),
        other => other.to_owned(),
    }
}

fn window_en(window: &str) -> &str {
    match window {
        "today" => "today",
        "24h" => "the last 24 h",
        "7d" => "the last 7 days",
        other => other,
    }
}

fn window_pt(window: &str) -> &str {
    match window {
        "today" => "hoje",
        "24h" => "nas últimas 24 h",
        "7d" => "nos últimos 7 dias",
        other => other,
    }
}
