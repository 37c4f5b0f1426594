//! What notifications say, in English or Portuguese (pt-BR), chosen per channel. A rule's own
//! `message` is used as written; without one, each kind has a default in both languages, built
//! from the alert's annotations (run, status, stage, error, limits, values).

use plantao_config::{AlertRule, Language};
use plantao_model::{NotificationEvent, Severity};
use plantao_store::Alert;

/// The alert's message: the rule's own, or its kind's default in `lang`.
pub fn message(rule: &AlertRule, alert: &Alert, lang: Language) -> String {
    rule.message
        .clone()
        .unwrap_or_else(|| default_message(alert, lang))
}

/// The whole text of a notification.
pub fn notification(
    rule: Option<&AlertRule>,
    alert: &Alert,
    event: NotificationEvent,
    lang: Language,
) -> String {
    let pt = lang == Language::PtBr;
    let severity = match (alert.severity, pt) {
        (Severity::Critical, false) => "CRITICAL",
        (Severity::Critical, true) => "CRÍTICO",
        (Severity::Warning, false) => "WARNING",
        (Severity::Warning, true) => "AVISO",
        (Severity::Info, _) => "INFO",
    };
    let what = match (event, pt) {
        (NotificationEvent::Firing, false) => "FIRING",
        (NotificationEvent::Firing, true) => "DISPARADO",
        (NotificationEvent::Reminder, false) => "REMINDER",
        (NotificationEvent::Reminder, true) => "LEMBRETE",
        (NotificationEvent::Resolved, false) => "RESOLVED",
        (NotificationEvent::Resolved, true) => "RESOLVIDO",
        (NotificationEvent::Test, false) => "TEST",
        (NotificationEvent::Test, true) => "TESTE",
    };
    let body = rule.map_or_else(|| alert.message.clone(), |r| message(r, alert, lang));
    let body = match (event, alert.fired_at, alert.resolved_at) {
        (NotificationEvent::Resolved, Some(fired), Some(resolved)) => {
            let after = humanize_seconds((resolved - fired).num_seconds());
            if pt {
                format!("Resolvido após {after}. Era: {body}")
            } else {
                format!("Resolved after {after}. It was: {body}")
            }
        }
        _ => body,
    };
    let mut out = format!("[{severity}] {what} · {}\n{body}", alert.rule);
    if event != NotificationEvent::Resolved
        && let Some(runbook) = &alert.runbook
    {
        let label = if pt {
            "Ação sugerida"
        } else {
            "Suggested action"
        };
        out.push_str(&format!("\n{label}: {runbook}"));
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
    let subject = match &alert.pipeline {
        Some(p) => format!("Pipeline {p}: "),
        None => String::new(),
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
