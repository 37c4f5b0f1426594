//! `plantao token`, `audit`, `healthcheck` and `openapi`: the HTTP API's side of the command
//! line.

use std::path::Path;
use std::time::Duration;

use plantao_model::Role;
use plantao_store::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::commands::control::CLI_ACTOR;
use crate::commands::{load_config, open_store, open_store_to_read};
use crate::failure::Failure;

pub async fn create_token(config_path: &Path, name: &str, role: Role) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let (created, writes) = plantao_web::mint(CLI_ACTOR, name, role).map_err(Failure::Usage)?;
    let store = open_store(&config).await?;
    match store.apply(writes).await {
        Ok(_) => {}
        Err(plantao_store::StoreError::Conflict(why)) => {
            return Err(Failure::Usage(format!(
                "{why}: pick another name, or `plantao token revoke {name}` first"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    println!("{}", created.token);
    eprintln!(
        "token `{name}` ({role}) created: it is shown only this once. Send it as `Authorization: Bearer TOKEN`."
    );
    Ok(())
}

pub async fn list_tokens(config_path: &Path, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let tokens = store.tokens().await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&tokens).unwrap_or_default()
        );
        return Ok(());
    }
    if tokens.is_empty() {
        println!("no tokens: `plantao token create --name NAME --role viewer` makes one");
    }
    for t in tokens {
        println!(
            "{:<24} {:<9} created {}",
            t.name,
            t.role.as_str(),
            t.created_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    Ok(())
}

pub async fn revoke_token(config_path: &Path, name: &str) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store(&config).await?;
    match store
        .apply(vec![
            Write::RevokeToken {
                name: name.to_owned(),
            },
            Write::audit(CLI_ACTOR, "token.revoke", name, None),
        ])
        .await
    {
        Ok(_) => {
            println!("revoked token `{name}`: it no longer works");
            Ok(())
        }
        Err(plantao_store::StoreError::NotFound(_)) => Err(Failure::Missing(format!(
            "there is no token `{name}`; `plantao token list` shows them"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn audit(config_path: &Path, limit: u32, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let entries = store.audit(None, limit.clamp(1, 10_000)).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return Ok(());
    }
    for r in entries {
        let e = r.entry;
        println!(
            "{}  {:<12} {:<16} {}{}",
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.actor,
            e.action,
            e.target,
            e.detail.map(|d| format!("  ({d})")).unwrap_or_default()
        );
    }
    Ok(())
}

/// How long the health check waits for the whole answer.
const HEALTH_WAIT: Duration = Duration::from_secs(5);

/// Asks the server on `server.listen` for its health: exit 0 when it answers 200 (ok or
/// degraded), 1 otherwise. Plain HTTP/1.1 on a socket: the server listens without TLS.
pub async fn healthcheck(config_path: &Path, address: Option<&str>) -> Result<(), Failure> {
    let mut addr = match address {
        Some(a) => a.parse().map_err(|_| {
            Failure::Usage(format!(
                "`{a}` is not an address: give HOST:PORT, e.g. 127.0.0.1:8077"
            ))
        })?,
        None => load_config(config_path)?.server.listen,
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let answer = tokio::time::timeout(HEALTH_WAIT, get_health(addr)).await;
    let (status, body) = match answer {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(Failure::Missing(format!("no answer from {addr}: {e}"))),
        Err(_) => {
            return Err(Failure::Missing(format!(
                "no answer from {addr} within {} s",
                HEALTH_WAIT.as_secs()
            )));
        }
    };
    println!("{body}");
    if status == 200 {
        Ok(())
    } else {
        Err(Failure::Missing(format!("{addr} answered {status}")))
    }
}

async fn get_health(addr: std::net::SocketAddr) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

pub fn openapi() {
    print!("{}", plantao_web::document());
}
