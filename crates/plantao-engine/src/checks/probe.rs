//! One check of a probe: the request, connection, query or command, timed, and its answer held
//! against the probe's conditions. A failed check says which condition failed and what the
//! answer actually was.

use std::time::Instant;

use plantao_config::{Config, Probe, ProbeTarget};
use plantao_model::{Expr, ExprValue, StageStatus, Vars};

use crate::runner::attempt::StopSignal;

/// How much of an answer a check's log keeps.
const LOG_LIMIT: usize = 16 * 1024;

/// What one check found.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub duration_ms: i64,
    /// Why it failed: the condition and the actual values, or the error.
    pub error: Option<String>,
    /// What the target answered (bounded).
    pub log: String,
}

/// Checks `probe` once, within its timeout.
pub async fn check(config: &Config, probe: &Probe) -> Outcome {
    let started = Instant::now();
    let work = async {
        match &probe.target {
            ProbeTarget::Http(h) => http(h).await,
            ProbeTarget::Tcp(address) => tcp(address, &probe.expect, started).await,
            ProbeTarget::Sql(q) => match config.connections.get(&q.connection) {
                Some(c) => sql(c, q.query.expose(), &probe.expect, started).await,
                None => failed(
                    format!("unknown connection `{}`", q.connection),
                    String::new(),
                ),
            },
            ProbeTarget::Command(run) => command(run.expose(), &probe.expect, started).await,
        }
    };
    let mut outcome = match tokio::time::timeout(probe.timeout, work).await {
        Ok(o) => o,
        Err(_) => failed(
            format!("no answer within {} ms", probe.timeout.as_millis()),
            String::new(),
        ),
    };
    outcome.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    outcome
}

fn failed(error: String, log: String) -> Outcome {
    Outcome {
        ok: false,
        duration_ms: 0,
        error: Some(error),
        log,
    }
}

/// A stop signal nothing ever sends: a probe is bounded by its timeout instead.
fn never() -> StopSignal {
    let (tx, rx) = tokio::sync::watch::channel(None);
    std::mem::forget(tx);
    rx
}

/// The HTTP client of probes that verify TLS (or not) and follow redirects (or not): it keeps
/// each answer's certificate, for `cert_days_left`.
fn client(verify_tls: bool, follow_redirects: bool) -> &'static reqwest::Client {
    static CLIENTS: [std::sync::OnceLock<reqwest::Client>; 4] =
        [const { std::sync::OnceLock::new() }; 4];
    let i = usize::from(verify_tls) * 2 + usize::from(follow_redirects);
    CLIENTS[i].get_or_init(|| {
        // One TLS provider for the process; a second install is a no-op worth ignoring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .user_agent(concat!("plantao/", env!("CARGO_PKG_VERSION")))
            .tls_info(true)
            .tls_danger_accept_invalid_certs(!verify_tls)
            .redirect(if follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .build()
            .unwrap_or_default()
    })
}

async fn http(probe: &plantao_config::HttpProbe) -> Outcome {
    let client = client(probe.verify_tls, probe.follow_redirects);
    let attempt = crate::runner::http::run(client, &probe.step, None, never(), LOG_LIMIT).await;
    Outcome {
        ok: attempt.status == Some(StageStatus::Succeeded),
        duration_ms: 0,
        error: attempt.error,
        log: attempt.log,
    }
}

async fn tcp(address: &str, expect: &[Expr], started: Instant) -> Outcome {
    match tokio::net::TcpStream::connect(address).await {
        Ok(_) => {
            let ms = elapsed_ms(started);
            let mut vars = Vars::default();
            vars.number("duration_ms", ms);
            judge(
                expect,
                &vars,
                &[("duration_ms", format!("{ms:.0}"))],
                format!("connected to {address} in {ms:.0} ms\n"),
            )
        }
        Err(e) => failed(format!("cannot connect to {address}: {e}"), String::new()),
    }
}

async fn sql(
    connection: &plantao_config::Connection,
    query: &str,
    expect: &[Expr],
    started: Instant,
) -> Outcome {
    match crate::runner::sql::rows_json(connection, query).await {
        Ok(rows) => {
            let ms = elapsed_ms(started);
            let mut vars = Vars::default();
            vars.json("rows", &rows).number("duration_ms", ms);
            let shown = rows.to_string();
            judge(
                expect,
                &vars,
                &[
                    ("rows", bounded(&shown, 200)),
                    ("duration_ms", format!("{ms:.0}")),
                ],
                format!("{query}\n→ {} in {ms:.0} ms\n", bounded(&shown, LOG_LIMIT)),
            )
        }
        Err(e) => failed(format!("the query failed: {e}"), format!("{query}\n")),
    }
}

async fn command(run: &str, expect: &[Expr], started: Instant) -> Outcome {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(run)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match child {
        Ok(out) => {
            let ms = elapsed_ms(started);
            let code = out.status.code().unwrap_or(-1);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut vars = Vars::default();
            vars.number("exit_code", f64::from(code))
                .text("stdout", &stdout)
                .number("duration_ms", ms);
            let log = format!(
                "{}{}",
                bounded(&stdout, LOG_LIMIT / 2),
                bounded(&String::from_utf8_lossy(&out.stderr), LOG_LIMIT / 2)
            );
            // Without conditions, a command is fine when it exits 0.
            let default = [Expr::parse("exit_code == 0").ok()];
            let conditions: Vec<Expr> = if expect.is_empty() {
                default.into_iter().flatten().collect()
            } else {
                expect.to_vec()
            };
            judge(
                &conditions,
                &vars,
                &[
                    ("exit_code", code.to_string()),
                    ("stdout", format!("{:?}", bounded(stdout.trim_end(), 80))),
                    ("duration_ms", format!("{ms:.0}")),
                ],
                log,
            )
        }
        Err(e) => failed(format!("cannot run the command: {e}"), String::new()),
    }
}

/// Holds `vars` against every condition; a failure names the condition and what each name it
/// reads actually was (from `shown`).
fn judge(expect: &[Expr], vars: &Vars, shown: &[(&str, String)], log: String) -> Outcome {
    let failures: Vec<String> = expect
        .iter()
        .filter(|e| e.eval(vars) != ExprValue::Bool(true))
        .map(|e| {
            let mut roots: Vec<String> = e.references().into_iter().map(|r| r.root).collect();
            roots.dedup();
            let actual: Vec<String> = roots
                .iter()
                .filter_map(|r| shown.iter().find(|(n, _)| n == r))
                .map(|(n, v)| format!("{n} = {v}"))
                .collect();
            format!("expected `{}`, but {}", e.source(), actual.join(", "))
        })
        .collect();
    Outcome {
        ok: failures.is_empty(),
        duration_ms: 0,
        error: (!failures.is_empty()).then(|| failures.join("; ")),
        log,
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

fn bounded(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}
