//! `plantao ping`: reports to a heartbeat, alone or around a command (what people install
//! runitor for).
//!
//! Around a command it pings `/start` with a fresh `rid`, runs the command with its output
//! passed through, then pings the exit status with the output's tail as the body, and exits
//! with the command's status. A ping that cannot be delivered is retried, then reported on
//! stderr; it never changes the command's own exit status.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use plantao_config::Config;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::commands::load_config;
use crate::failure::Failure;

/// The output kept as the end ping's body: its last bytes.
const TAIL: usize = 10 * 1024;
/// Tries of one ping before giving up, and the wait before each retry.
const TRIES: u32 = 3;
const RETRY_WAIT: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Which ping to send.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    Success,
    Start,
    Fail,
    Log,
    Exit(u8),
}

impl Signal {
    fn suffix(self) -> String {
        match self {
            Signal::Success => String::new(),
            Signal::Start => "/start".into(),
            Signal::Fail => "/fail".into(),
            Signal::Log => "/log".into(),
            Signal::Exit(c) => format!("/{c}"),
        }
    }
}

/// Where pings go: the full URL of the heartbeat's success ping.
#[derive(Debug)]
pub struct Target {
    pub url: String,
}

impl Target {
    /// `base` (or the configuration's `server.listen`) and `key` (or the heartbeat's key in the
    /// configuration) make the URL.
    pub fn resolve(
        config_path: &Path,
        slug: &str,
        base: Option<&str>,
        key: Option<&str>,
    ) -> Result<Target, Failure> {
        let config = match (base, key) {
            (Some(_), Some(_)) => None,
            _ => Some(load_config(config_path).map_err(|e| {
                Failure::Usage(format!(
                    "{e}\nwithout a configuration, give the server and the key: --url http://HOST:8077 --key KEY (or PLANTAO_URL, PLANTAO_PING_KEY)"
                ))
            })?),
        };
        let base = match base {
            Some(b) => b.trim_end_matches('/').to_owned(),
            None => listen_url(config.as_ref()),
        };
        let key = match key {
            Some(k) => k.to_owned(),
            None => config_key(config.as_ref(), slug)?,
        };
        Ok(Target {
            url: format!("{base}/ping/{key}/{slug}"),
        })
    }
}

fn listen_url(config: Option<&Config>) -> String {
    let mut addr = config.map_or_else(
        || std::net::SocketAddr::from(([127, 0, 0, 1], 8077)),
        |c| c.server.listen,
    );
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

fn config_key(config: Option<&Config>, slug: &str) -> Result<String, Failure> {
    let config = config.ok_or_else(|| Failure::Usage("no key: give --key".into()))?;
    let h = config.heartbeat(slug).ok_or_else(|| {
        let known: Vec<&str> = config.heartbeats.iter().map(|h| h.name.as_str()).collect();
        Failure::Usage(format!(
            "there is no heartbeat `{slug}` in {}; the heartbeats are: {}",
            config.file.display(),
            if known.is_empty() {
                "(none: add [[heartbeats]])".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })?;
    h.key(&config.pings)
        .map(|k| k.expose().to_owned())
        .ok_or_else(|| Failure::Usage(format!("heartbeat `{slug}` has no ping key")))
}

/// One ping, or a command between two.
pub async fn run(
    target: &Target,
    signal: Signal,
    body: Option<String>,
    command: &[String],
) -> Result<(), Failure> {
    if command.is_empty() {
        return send(target, signal, None, body.unwrap_or_default().into_bytes())
            .await
            .map_err(Failure::Missing);
    }
    let rid = uuid::Uuid::now_v7().to_string();
    if let Err(why) = send(target, Signal::Start, Some(&rid), Vec::new()).await {
        eprintln!("plantao ping: {why}");
    }
    let (code, tail) = match wrap(command).await {
        Ok(done) => done,
        Err(e) => {
            let why = format!("cannot run `{}`: {e}", command[0]);
            eprintln!("plantao ping: {why}");
            (127, why.into_bytes())
        }
    };
    if let Err(why) = send(target, Signal::Exit(code), Some(&rid), tail).await {
        eprintln!("plantao ping: {why}");
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::Exit(code))
    }
}

/// Runs `command` with its output passed through; its exit status (128 + signal when a signal
/// ended it) and the last [`TAIL`] bytes of its output.
async fn wrap(command: &[String]) -> std::io::Result<(u8, Vec<u8>)> {
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().map(|s| {
        let tail = tail.clone();
        tokio::spawn(async move { pass(s, false, &tail).await })
    });
    let err = child.stderr.take().map(|s| {
        let tail = tail.clone();
        tokio::spawn(async move { pass(s, true, &tail).await })
    });
    let status = child.wait().await?;
    for task in [out, err].into_iter().flatten() {
        let _ = task.await;
    }
    let code = match status.code() {
        Some(c) => u8::try_from(c).unwrap_or(1),
        None => {
            use std::os::unix::process::ExitStatusExt;
            let signal = status.signal().unwrap_or(0);
            u8::try_from(128 + signal).unwrap_or(1)
        }
    };
    let tail = tail.lock().map(|t| t.clone()).unwrap_or_default();
    Ok((code, tail))
}

/// Copies `from` to this process's stdout (or stderr), keeping the last [`TAIL`] bytes seen
/// (of both streams) in `tail`.
async fn pass(mut from: impl AsyncRead + Unpin, to_stderr: bool, tail: &std::sync::Mutex<Vec<u8>>) {
    use std::io::Write;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = if to_stderr {
            std::io::stderr().write_all(&buf[..n])
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf[..n]).and_then(|()| out.flush())
        };
        if let Ok(mut t) = tail.lock() {
            t.extend_from_slice(&buf[..n]);
            if t.len() > TAIL {
                let cut = t.len() - TAIL;
                t.drain(..cut);
            }
        }
    }
}

/// Sends one ping, retried; what went wrong when no try got a 200.
async fn send(
    target: &Target,
    signal: Signal,
    rid: Option<&str>,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut url = format!("{}{}", target.url, signal.suffix());
    if let Some(rid) = rid {
        url.push_str(&format!("?rid={rid}"));
    }
    let shown = plantao_web::hide_key(&url);
    let mut last = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(RETRY_WAIT).await;
        }
        let answer = plantao_engine::http_client()
            .post(&url)
            .timeout(PING_TIMEOUT)
            .body(body.clone())
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if r.status().is_client_error() => {
                return Err(format!(
                    "{shown} answered {}: check the heartbeat's name and key",
                    r.status()
                ));
            }
            Ok(r) => last = format!("{shown} answered {}", r.status()),
            Err(e) => last = format!("cannot reach {shown}: {e}"),
        }
    }
    Err(format!("{last} ({TRIES} tries)"))
}
