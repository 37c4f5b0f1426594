//! An `http` step: one request, its answer checked against the step's `expect` conditions.

use std::time::{Duration, Instant};

use plantao_config::HttpStep;
use plantao_model::{ExprValue, StageStatus, Vars};

use super::attempt::{Attempt, StopSignal, cancelled};
use super::process::Stopped;

pub(crate) async fn run(
    client: &reqwest::Client,
    step: &HttpStep,
    limit: Option<Duration>,
    cancel: StopSignal,
    log_limit: usize,
) -> Attempt {
    let timeout = limit.map_or(step.timeout, |l| l.min(step.timeout));
    let started = Instant::now();
    let request = exchange(client, step, log_limit);
    let cancelled = cancelled(cancel);
    let outcome = tokio::select! {
        r = tokio::time::timeout(timeout, request) => r.map_err(|_| Stopped::TimedOut),
        () = cancelled => Err(Stopped::Cancelled),
    };
    let target = format!("{} {}", step.method, step.url.shown());
    match outcome {
        Err(Stopped::TimedOut) => Attempt {
            status: Some(StageStatus::TimedOut),
            error: Some(format!(
                "no complete answer within {} ms",
                timeout.as_millis()
            )),
            log: format!(
                "{target} → no complete answer within {} ms\n",
                timeout.as_millis()
            ),
            ..Default::default()
        },
        Err(Stopped::Cancelled) => Attempt {
            status: Some(StageStatus::Cancelled),
            error: Some("cancelled".into()),
            log: format!("{target} → cancelled\n"),
            ..Default::default()
        },
        Ok(Err(e)) => Attempt::failed(
            format!("request failed: {}", describe(&e)),
            format!("{target} → {}\n", describe(&e)),
        ),
        Ok(Ok(answer)) => judge(step, &target, answer, started.elapsed()),
    }
}

struct Answer {
    status: u16,
    /// Days until the server's certificate expires (negative once it has), when the client
    /// keeps TLS details and the answer came over TLS.
    cert_days_left: Option<f64>,
    reason: String,
    headers: serde_json::Map<String, serde_json::Value>,
    body: Vec<u8>,
    truncated: bool,
}

async fn exchange(
    client: &reqwest::Client,
    step: &HttpStep,
    log_limit: usize,
) -> Result<Answer, reqwest::Error> {
    let method =
        reqwest::Method::from_bytes(step.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    // The caller's own timer bounds the whole exchange, body included.
    let mut request = client.request(method, step.url.expose());
    for (name, value) in &step.headers {
        request = request.header(name.as_str(), value.expose());
    }
    if let Some(body) = &step.body {
        request = request.body(body.expose().to_owned());
    }
    let mut response = request.send().await?;
    let status = response.status();
    #[allow(clippy::cast_precision_loss)]
    let cert_days_left = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .and_then(super::cert::not_after)
        .map(|end| (end - chrono::Utc::now()).num_seconds() as f64 / 86_400.0);
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                serde_json::Value::from(String::from_utf8_lossy(v.as_bytes())),
            )
        })
        .collect();
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        let room = log_limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() > room {
            truncated = true;
            break;
        }
    }
    Ok(Answer {
        status: status.as_u16(),
        cert_days_left,
        reason: status.canonical_reason().unwrap_or("").to_owned(),
        headers,
        body,
        truncated,
    })
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn judge(step: &HttpStep, target: &str, answer: Answer, elapsed: Duration) -> Attempt {
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let json: serde_json::Value = if answer.truncated {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null)
    };
    let headers = serde_json::Value::Object(answer.headers);
    let mut vars = Vars::default();
    vars.number("status", f64::from(answer.status))
        .number("duration_ms", duration_ms)
        .text("body", &text)
        .json("headers", &headers)
        .json("json", &json);
    if let Some(days) = answer.cert_days_left {
        vars.number("cert_days_left", days);
    }
    let mut log = format!(
        "{target} → {} {} in {:.0} ms\n\n{text}",
        answer.status, answer.reason, duration_ms
    );
    if answer.truncated {
        log.push_str("\n[… the rest of the body was not read: over the log limit …]");
    }
    let failures: Vec<String> = step
        .expect
        .iter()
        .filter(|e| e.eval(&vars) != ExprValue::Bool(true))
        .map(|e| {
            let shown: Vec<String> = e
                .references()
                .iter()
                .map(|r| match (r.root.as_str(), answer.cert_days_left) {
                    ("cert_days_left", Some(d)) => format!("cert_days_left = {d:.2}"),
                    ("cert_days_left", None) => {
                        "cert_days_left = absent (no TLS certificate)".to_owned()
                    }
                    _ => actual(
                        &r.root,
                        r.field.as_deref(),
                        answer.status,
                        duration_ms,
                        &text,
                        &json,
                        &headers,
                    ),
                })
                .collect();
            format!("expected `{}`, but {}", e.source(), shown.join(", "))
        })
        .collect();
    let counters = match &json {
        serde_json::Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| v.as_f64().map(|n| (k.clone(), n)))
            .collect(),
        _ => Vec::new(),
    };
    let outputs = vec![("status".to_owned(), answer.status.to_string())];
    if failures.is_empty() {
        Attempt {
            status: Some(StageStatus::Succeeded),
            log,
            counters,
            outputs,
            ..Default::default()
        }
    } else {
        log.push_str(&format!("\n\n{}\n", failures.join("\n")));
        Attempt {
            counters,
            outputs,
            ..Attempt::failed(failures.join("; "), log)
        }
    }
}

/// `name = value` for a name an expectation read, to say what the answer actually was.
fn actual(
    root: &str,
    field: Option<&str>,
    status: u16,
    duration_ms: f64,
    body: &str,
    json: &serde_json::Value,
    headers: &serde_json::Value,
) -> String {
    let value = match (root, field) {
        ("status", _) => status.to_string(),
        ("duration_ms", _) => format!("{duration_ms:.0}"),
        ("body", _) => {
            let mut b: String = body.chars().take(80).collect();
            if body.chars().count() > 80 {
                b.push('…');
            }
            format!("{b:?}")
        }
        ("json", Some(f)) => json.get(f).map_or("absent".to_owned(), |v| v.to_string()),
        ("json", None) if json.is_null() => "not JSON".to_owned(),
        ("headers", Some(f)) => headers
            .get(f)
            .map_or("absent".to_owned(), |v| v.to_string()),
        (_, _) => "(see the log)".to_owned(),
    };
    match field {
        Some(f) => format!("{root}.{f} = {value}"),
        None => format!("{root} = {value}"),
    }
}
