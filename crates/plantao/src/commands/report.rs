//! `plantao report daily|weekly|monthly`: the engine's report as Markdown, JSON or a standalone
//! HTML page, in English or Portuguese, printed, written to a file or sent through a channel.

use std::fmt::Write as _;
use std::path::Path;

use chrono::Utc;
use plantao_config::Language;
use plantao_engine::report::{self, Period, Report};
use plantao_store::Outcome;

use crate::cli::{PeriodicFormat, ReportArgs};
use crate::commands::control::CLI_ACTOR;
use crate::commands::{load_config, open_store, open_store_to_read};
use crate::failure::Failure;

pub async fn run(config_path: &Path, period: Period, args: ReportArgs) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = if args.send.is_some() {
        open_store(&config).await?
    } else {
        open_store_to_read(&config).await?
    };
    let report = report::build(store.as_ref(), &config, period, Utc::now()).await?;
    let channel_language = args
        .send
        .as_deref()
        .and_then(|name| config.channel(name))
        .map(|c| c.language);
    let words = Words::of(args.language.or(channel_language).unwrap_or(Language::En));
    let blocks = document(&report, &words, config.defaults.timezone);
    let text = match args.format {
        PeriodicFormat::Md => markdown(&blocks),
        PeriodicFormat::Html => html(&blocks, words.lang),
        PeriodicFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
    };
    // Sent, and not asked to be written, it is not printed as well.
    if args.out.is_some() || args.send.is_none() {
        write_out(args.out.as_deref(), &text)?;
    }
    if let Some(name) = &args.send {
        // Channels carry text, and chat apps show no tables: each row on a line of its own.
        let message = plain(&blocks);
        let attempt =
            plantao_engine::notify::send_report(store.as_ref(), &config, name, message, CLI_ACTOR)
                .await
                .map_err(|e| match e {
                    plantao_engine::notify::TestError::Unknown(why) => Failure::Usage(why),
                    plantao_engine::notify::TestError::Store(e) => e.into(),
                })?;
        match attempt.outcome {
            Outcome::Delivered => println!("sent to `{name}`"),
            _ => {
                return Err(Failure::Missing(format!(
                    "`{name}` refused the report ({}); it waits in the outbox and `plantao serve` retries it",
                    attempt.error.unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

/// A report written to `out`, or printed when there is none.
pub fn write_out(out: Option<&Path>, text: &str) -> Result<(), Failure> {
    match out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Failure::Missing(format!("cannot write {}: {e}", path.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// A report's shape, whatever it is written in.
enum Block {
    Title(String),
    Heading(String),
    Text(String),
    Table(Vec<String>, Vec<Vec<String>>),
}

/// The words of a report in one language.
struct Words {
    lang: Language,
    pt: bool,
}

impl Words {
    fn of(lang: Language) -> Words {
        Words {
            lang,
            pt: lang == Language::PtBr,
        }
    }

    fn w(&self, en: &'static str, pt: &'static str) -> &'static str {
        if self.pt { pt } else { en }
    }

    fn num(&self, v: f64, decimals: usize) -> String {
        let text = format!("{v:.decimals$}");
        if self.pt {
            text.replace('.', ",")
        } else {
            text
        }
    }

    fn pct(&self, v: Option<f64>) -> String {
        v.map_or_else(|| "–".to_owned(), |v| format!("{} %", self.num(v, 1)))
    }

    fn ms(&self, v: Option<f64>) -> String {
        match v {
            None => "–".to_owned(),
            Some(ms) if ms >= 1000.0 => format!("{} s", self.num(ms / 1e3, 1)),
            Some(ms) => format!("{} ms", self.num(ms, 0)),
        }
    }

    fn value(&self, v: &serde_json::Value) -> String {
        match v.as_f64() {
            Some(x) if x.fract() == 0.0 => self.num(x, 0),
            Some(x) => self.num(x, 2),
            None => "–".to_owned(),
        }
    }
}

/// The report as blocks of text; its period in `zone` (the configuration's default), which is
/// where the team reading it is.
fn document(r: &Report, w: &Words, zone: chrono_tz::Tz) -> Vec<Block> {
    let title = match r.period {
        Period::Daily => w.w("Daily report", "Relatório diário"),
        Period::Weekly => w.w("Weekly report", "Relatório semanal"),
        Period::Monthly => w.w("Monthly report", "Relatório mensal"),
    };
    let at = |t: &plantao_store::Timestamp| t.with_timezone(&zone).format("%Y-%m-%d %H:%M");
    let mut out = vec![
        Block::Title(title.to_owned()),
        Block::Text(format!(
            "{} {} {} {} ({}).",
            w.w("From", "De"),
            at(&r.from),
            w.w("to", "a"),
            at(&r.to),
            zone.name()
        )),
        Block::Heading(w.w("Pipelines", "Pipelines").to_owned()),
    ];
    out.push(Block::Table(
        [
            w.w("pipeline", "pipeline"),
            w.w("runs", "execuções"),
            w.w("success", "sucesso"),
            w.w("failed", "falhas"),
            "p50",
            "p95",
            w.w("max", "máx."),
        ]
        .map(str::to_owned)
        .to_vec(),
        r.pipelines
            .iter()
            .map(|p| {
                vec![
                    p.pipeline.clone(),
                    p.runs.to_string(),
                    w.pct(p.success_rate.map(|s| s * 100.0)),
                    p.failed.to_string(),
                    w.ms(p.p50_ms),
                    w.ms(p.p95_ms),
                    #[allow(clippy::cast_precision_loss)]
                    w.ms(p.max_ms.map(|m| m as f64)),
                ]
            })
            .collect(),
    ));
    for p in r
        .pipelines
        .iter()
        .filter(|p| !p.counters.is_empty() || !p.top_errors.is_empty())
    {
        let mut text = format!("**{}**", p.pipeline);
        let figures: Vec<String> = p
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} {}", w.value(v)))
            .chain(
                p.counters
                    .iter()
                    .map(|(k, v)| format!("{k} {}", w.num(*v, 0))),
            )
            .collect();
        if !figures.is_empty() {
            let _ = write!(text, " — {}", figures.join(" · "));
        }
        for e in &p.top_errors {
            let _ = write!(
                text,
                "\n- {}× {}{}",
                e.runs,
                e.stage.as_ref().map_or(String::new(), |s| format!("{s}: ")),
                e.error.lines().next().unwrap_or("")
            );
        }
        out.push(Block::Text(text));
    }
    if !r.checks.is_empty() {
        out.push(Block::Heading(
            w.w("Heartbeats and probes", "Heartbeats e sondas")
                .to_owned(),
        ));
        out.push(Block::Table(
            [
                w.w("check", "verificação"),
                w.w("kind", "tipo"),
                w.w("uptime", "disponibilidade"),
                w.w("down", "fora do ar"),
                w.w("incidents", "incidentes"),
            ]
            .map(str::to_owned)
            .to_vec(),
            r.checks
                .iter()
                .map(|c| {
                    vec![
                        c.check.clone(),
                        c.kind.to_owned(),
                        c.uptime_percent
                            .map_or_else(|| "–".to_owned(), |u| format!("{} %", w.num(u, 3))),
                        format!("{} min", w.num(c.down_seconds as f64 / 60.0, 0)),
                        c.incidents.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    if !r.sla.is_empty() {
        out.push(Block::Heading("SLA".to_owned()));
        let met = r.sla.iter().filter(|c| c.met == Some(true)).count();
        out.push(Block::Text(format!(
            "{met} {} {} {}{}",
            w.w("of", "de"),
            r.sla.len(),
            w.w("checks met their SLA", "verificações cumpriram o SLA"),
            r.sla
                .iter()
                .filter(|c| c.met == Some(false))
                .map(|c| format!("; {} **{}**", c.check, w.w("missed it", "não cumpriu")))
                .collect::<String>()
        )));
    }
    out.push(Block::Heading(w.w("Alerts", "Alertas").to_owned()));
    let a = &r.alerts;
    let mut text = format!(
        "{} {}, {} {}",
        a.fired,
        w.w("fired", "disparados"),
        a.acknowledged,
        w.w("acknowledged", "reconhecidos")
    );
    if let Some(s) = a.mean_time_to_acknowledge_s {
        let _ = write!(
            text,
            "; {} {} min",
            w.w("mean time to acknowledge", "tempo médio até reconhecer"),
            w.num(s / 60.0, 1)
        );
    }
    if !a.by_severity.is_empty() {
        let parts: Vec<String> = a
            .by_severity
            .iter()
            .map(|(k, v)| {
                let name = match k.as_str() {
                    "critical" => w.w("critical", "crítico"),
                    "warning" => w.w("warning", "aviso"),
                    "info" => w.w("info", "informativo"),
                    other => other,
                };
                format!("{name} {v}")
            })
            .collect();
        let _ = write!(text, " ({})", parts.join(", "));
    }
    text.push('.');
    for (rule, n) in &a.top_rules {
        let _ = write!(text, "\n- {rule}: {n}");
    }
    out.push(Block::Text(text));
    out
}

fn markdown(blocks: &[Block]) -> String {
    let mut md = String::new();
    for b in blocks {
        match b {
            Block::Title(t) => {
                let _ = writeln!(md, "# {t}\n");
            }
            Block::Heading(h) => {
                let _ = writeln!(md, "## {h}\n");
            }
            Block::Text(t) => {
                let _ = writeln!(md, "{t}\n");
            }
            Block::Table(head, rows) => {
                let _ = writeln!(md, "| {} |", head.join(" | "));
                let _ = writeln!(md, "|{}", " --- |".repeat(head.len()));
                for row in rows {
                    let _ = writeln!(md, "| {} |", row.join(" | "));
                }
                md.push('\n');
            }
        }
    }
    md
}

/// For a chat message: the title, headings and text as they are, each table row as one line
/// of `column value` pairs after its first cell.
fn plain(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Title(t) | Block::Heading(t) => {
                let _ = writeln!(out, "*{t}*");
            }
            Block::Text(t) => {
                let _ = writeln!(out, "{}", t.replace("**", "*"));
            }
            Block::Table(head, rows) => {
                for row in rows {
                    let rest: Vec<String> = head
                        .iter()
                        .zip(row)
                        .skip(1)
                        .map(|(h, v)| format!("{h} {v}"))
                        .collect();
                    let _ = writeln!(
                        out,
                        "- {}: {}",
                        row.first().map_or("", String::as_str),
                        rest.join(" · ")
                    );
                }
            }
        }
        out.push('\n');
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown's `**bold**` and `- ` items as HTML, the rest escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut items = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("- ") {
            Some(item) => items.push(format!("<li>{}</li>", escape(item))),
            None => {
                let mut bold = false;
                for (i, part) in escape(line).split("**").enumerate() {
                    if i > 0 {
                        out.push_str(if bold { "</strong>" } else { "<strong>" });
                        bold = !bold;
                    }
                    out.push_str(part);
                }
            }
        }
    }
    if items.is_empty() {
        format!("<p>{out}</p>")
    } else {
        format!("<p>{out}</p><ul>{}</ul>", items.concat())
    }
}

fn html(blocks: &[Block], lang: Language) -> String {
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(t) => Some(escape(t)),
            _ => None,
        })
        .unwrap_or_default();
    let mut body = String::new();
    for b in blocks {
        match b {
            Block::Title(t) => {
                let _ = write!(body, "<h1>{}</h1>", escape(t));
            }
            Block::Heading(h) => {
                let _ = write!(body, "<h2>{}</h2>", escape(h));
            }
            Block::Text(t) => body.push_str(&inline(t)),
            Block::Table(head, rows) => {
                body.push_str("<table><thead><tr>");
                for h in head {
                    let _ = write!(body, "<th>{}</th>", escape(h));
                }
                body.push_str("</tr></thead><tbody>");
                for row in rows {
                    body.push_str("<tr>");
                    for cell in row {
                        let _ = write!(body, "<td>{}</td>", escape(cell));
                    }
                    body.push_str("</tr>");
                }
                body.push_str("</tbody></table>");
            }
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}</style>\
         </head><body>{body}</body></html>\n",
        lang.as_str()
    )
}
