//! The request each kind of channel sends. Every request carries the notification's id as
//! `Idempotency-Key`, the same on every attempt, so a receiver that got a message whose answer
//! was lost can recognise the resend.

use std::time::Duration;

use plantao_config::{Channel, ChannelKind};
use plantao_store::Notification;
use sha2::{Digest, Sha256};

/// The header a webhook's signature travels in: `sha256=` and the lowercase hex HMAC-SHA256 of
/// the body with the channel's `secret` as key.
pub const SIGNATURE_HEADER: &str = "X-Plantao-Signature";

/// Why an attempt did not deliver: the status the channel answered, if it answered.
#[derive(Debug)]
pub struct Failure {
    pub status: Option<u16>,
    pub error: String,
}

/// Sends `n` through `channel`: the channel's answer status when it accepted it (2xx), or a
/// command's exit status (0). `members` are the notifications a group message stands for (none
/// for one notification sent alone).
pub async fn send(
    client: &reqwest::Client,
    channel: &Channel,
    n: &Notification,
    members: &[Notification],
) -> Result<u16, Failure> {
    let Some((url, body, headers)) = request(channel, n, members) else {
        return match &channel.kind {
            ChannelKind::Command { run } => {
                command(run.expose(), channel.timeout, n, members).await
            }
            ChannelKind::Email { .. } => email(channel, n).await,
            _ => Err(Failure {
                status: None,
                error: "this channel sends no HTTP request".into(),
            }),
        };
    };
    let mut req = client
        .post(&url)
        .timeout(channel.timeout)
        .header("Content-Type", "application/json")
        .header("Idempotency-Key", n.id.to_string());
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let answer = req.body(body).send().await.map_err(|e| Failure {
        status: None,
        error: describe(&e),
    })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let text = answer.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(200).collect();
    Err(Failure {
        status: Some(status.as_u16()),
        error: format!("the channel answered {status}: {}", excerpt.trim()),
    })
}

/// An HTTP request a channel sends: URL, body and the headers beyond the common ones.
pub type Request = (String, Vec<u8>, Vec<(String, String)>);

/// The request of `n` (standing for `members`, if it is a group's) on `channel`; none for a
/// command or an e-mail.
pub fn request(channel: &Channel, n: &Notification, members: &[Notification]) -> Option<Request> {
    Some(match &channel.kind {
        ChannelKind::Webhook {
            url,
            secret,
            headers,
        } => {
            let body = serde_json::to_vec(&webhook_payload(n, members)).unwrap_or_default();
            let mut extra: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect();
            extra.push(("X-Plantao-Event".into(), n.event.to_string()));
            if let Some(secret) = secret {
                let mac = hmac_sha256(secret.expose().as_bytes(), &body);
                extra.push((SIGNATURE_HEADER.into(), format!("sha256={}", hex(&mac))));
            }
            (url.expose().to_owned(), body, extra)
        }
        ChannelKind::Slack { url } => {
            let body = serde_json::json!({ "text": n.text });
            (
                url.expose().to_owned(),
                body.to_string().into_bytes(),
                Vec::new(),
            )
        }
        ChannelKind::Whatsapp {
            url,
            instance,
            api_key,
            to,
        } => {
            let endpoint = format!(
                "{}/message/sendText/{}",
                url.expose().trim_end_matches('/'),
                instance.expose()
            );
            let body = serde_json::json!({ "number": to.expose(), "text": n.text });
            (
                endpoint,
                body.to_string().into_bytes(),
                vec![("apikey".into(), api_key.expose().to_owned())],
            )
        }
        ChannelKind::Telegram {
            url,
            token,
            chat_id,
        } => {
            let endpoint = format!(
                "{}/bot{}/sendMessage",
                url.expose().trim_end_matches('/'),
                token.expose()
            );
            let body = serde_json::json!({ "chat_id": chat_id.expose(), "text": n.text });
            (endpoint, body.to_string().into_bytes(), Vec::new())
        }
        ChannelKind::Command { .. } | ChannelKind::Email { .. } => return None,
    })
}

/// The e-mail of `n`: the text's first line as the subject, the text as a plain part and an
/// HTML part, and the notification's id as Message-ID, the same on every attempt.
pub fn email_message(channel: &Channel, n: &Notification) -> Result<lettre::Message, Failure> {
    use lettre::message::{Mailbox, MultiPart};
    let ChannelKind::Email { from, to, .. } = &channel.kind else {
        return Err(failure("not an e-mail channel".into()));
    };
    let address = |text: &plantao_model::Text| {
        text.expose()
            .parse::<Mailbox>()
            .map_err(|e| failure(format!("`{}` is not an e-mail address: {e}", text.shown())))
    };
    let mut message = lettre::Message::builder()
        .from(address(from)?)
        .subject(n.text.lines().next().unwrap_or("plantao"))
        .message_id(Some(format!("<{}@plantao>", n.id)));
    for recipient in to {
        message = message.to(address(recipient)?);
    }
    message
        .multipart(MultiPart::alternative_plain_html(
            n.text.clone(),
            html(&n.text),
        ))
        .map_err(|e| failure(format!("cannot build the e-mail: {e}")))
}

/// The text as HTML: escaped, the first line as a heading, each other line a line.
fn html(text: &str) -> String {
    let escape = |line: &str| {
        line.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut lines = text.lines();
    let head = lines.next().map(escape).unwrap_or_default();
    let body: Vec<String> = lines.map(escape).collect();
    format!(
        "<!doctype html><html><body><h3>{head}</h3><p>{}</p></body></html>",
        body.join("<br>")
    )
}

fn failure(error: String) -> Failure {
    Failure {
        status: None,
        error,
    }
}

/// Sends `n` by e-mail; the server's reply code when it accepted it.
async fn email(channel: &Channel, n: &Notification) -> Result<u16, Failure> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let ChannelKind::Email {
        host,
        port,
        tls,
        credentials,
        ..
    } = &channel.kind
    else {
        return Err(failure("not an e-mail channel".into()));
    };
    let message = email_message(channel, n)?;
    let smtp = |e: lettre::transport::smtp::Error| {
        failure(format!("the SMTP server did not take it: {e}"))
    };
    let builder = match tls {
        plantao_config::SmtpTls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host.expose()).map_err(smtp)?
        }
        plantao_config::SmtpTls::Implicit => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host.expose()).map_err(smtp)?
        }
        plantao_config::SmtpTls::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.expose())
        }
    };
    let mut builder = builder.port(*port).timeout(Some(channel.timeout));
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(
            user.expose().to_owned(),
            password.expose().to_owned(),
        ));
    }
    let sent = tokio::time::timeout(channel.timeout, builder.build().send(message))
        .await
        .map_err(|_| failure("no answer within the channel's timeout".into()))?
        .map_err(smtp)?;
    Ok(sent.code().to_string().parse().unwrap_or(250))
}

/// Runs `run` with `sh -c`, the webhook's JSON on its standard input and `PLANTAO_EVENT`,
/// `PLANTAO_NOTIFICATION_ID` in its environment; delivered when it exits 0 within `timeout`.
/// Its process group is killed when it does not.
async fn command(
    run: &str,
    timeout: Duration,
    n: &Notification,
    members: &[Notification],
) -> Result<u16, Failure> {
    use tokio::io::AsyncWriteExt;
    let failed = |error: String| Failure {
        status: None,
        error,
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(run)
        .env("PLANTAO_EVENT", n.event.as_str())
        .env("PLANTAO_NOTIFICATION_ID", n.id.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start the command: {e}")))?;
    let pid = child.id();
    let body = serde_json::to_vec(&webhook_payload(n, members)).unwrap_or_default();
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is its own business.
            let _ = stdin.write_all(&body).await;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(out)) if out.status.success() => Ok(0),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let excerpt: String = stderr.trim().chars().take(200).collect();
            Err(Failure {
                status: out.status.code().and_then(|c| u16::try_from(c).ok()),
                error: format!("the command ended with {}: {excerpt}", out.status),
            })
        }
        Ok(Err(e)) => Err(failed(format!("the command failed: {e}"))),
        Err(_) => {
            if let Some(pid) = pid {
                crate::runner::sys::killpg(pid, libc::SIGKILL);
            }
            Err(failed(format!(
                "the command did not end within the channel's timeout ({} s)",
                timeout.as_secs_f64()
            )))
        }
    }
}

/// The webhook's JSON (documented in docs/alerts.md).
pub fn webhook_payload(n: &Notification, members: &[Notification]) -> serde_json::Value {
    let mut payload = serde_json::json!({
        "id": n.id,
        "event": n.event,
        "channel": n.channel,
        "created_at": n.created_at,
        "text": n.text,
        "alert": n.alert,
    });
    if !members.is_empty() {
        payload["group"] = serde_json::json!(n.group);
        payload["notifications"] = members
            .iter()
            .map(|m| serde_json::json!({ "id": m.id, "event": m.event, "alert": m.alert }))
            .collect();
    }
    payload
}

/// A transport failure in words, without the URL (a Slack webhook's URL is its secret).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer within the channel's timeout"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        let case1 = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex(&case1),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let case2 = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&case2),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long_key = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&long_key),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
