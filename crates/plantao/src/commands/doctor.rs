//! `plantao doctor`: every prerequisite checked, each failure with its fix, a non-zero exit
//! when anything fails: the "validate prerequisites" and "release gate" scripts our users
//! write by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use plantao_config::Config;
use plantao_store::{Backend, Inspected, Outcome};

use crate::commands::control::CLI_ACTOR;
use crate::failure::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Warn,
    Fail,
}

struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Pass,
        detail: detail.into(),
        fix: None,
    }
}

fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Warn,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        verdict: Verdict::Fail,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Below this much free space a disk fails the check; below a tenth of it, it warns.
const MIN_FREE: u64 = 100 * 1024 * 1024;
/// How far the database's clock may be from this machine's.
const MAX_SKEW: Duration = Duration::from_secs(2);
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

pub async fn run(config_path: &Path, send_test: bool) -> Result<(), Failure> {
    let mut checks = Vec::new();
    let config = match plantao_config::load(config_path, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(diags) => {
            checks.push(fail(
                "config",
                format!("{} is not valid:\n{diags}", config_path.display()),
                "fix each mistake above (`plantao validate` says the same), then run doctor again",
            ));
            return report(&checks);
        }
    };
    checks.push(pass(
        "config",
        format!(
            "{} is valid: {} pipelines, {} heartbeats, {} probes, {} channels",
            config.file.display(),
            config.pipelines.len(),
            config.heartbeats.len(),
            config.probes.len(),
            config.channels.len()
        ),
    ));
    let url = config.storage.url.expose();
    let inspected = plantao_store::inspect(url).await;
    checks.extend(database(&config, &inspected));
    checks.extend(disks(&inspected));
    checks.extend(connections(&config).await);
    checks.extend(channels(&config, inspected.is_ok(), send_test).await);
    checks.push(listen(&config).await);
    report(&checks)
}

fn report(checks: &[Check]) -> Result<(), Failure> {
    for c in checks {
        let mark = match c.verdict {
            Verdict::Pass => "✓",
            Verdict::Warn => "!",
            Verdict::Fail => "✗",
        };
        println!("{mark} {:<12} {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("  {:<12} fix: {fix}", "");
        }
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let warned = checks.iter().filter(|c| c.verdict == Verdict::Warn).count();
    if failed == 0 {
        println!("all {} checks passed ({warned} warnings)", checks.len());
        Ok(())
    } else {
        Err(Failure::Missing(format!(
            "{failed} of {} checks failed",
            checks.len()
        )))
    }
}

fn database(config: &Config, inspected: &Result<Inspected, String>) -> Vec<Check> {
    let shown = plantao_store::redact_url(config.storage.url.expose());
    let db = match inspected {
        Ok(db) => db,
        Err(e) => {
            return vec![fail(
                "database",
                format!("{shown}: {e}"),
                "check storage.url (or the variable it reads), that the server is up and that this machine may reach it",
            )];
        }
    };
    let mut out = Vec::new();
    let what = match db.backend {
        Backend::Sqlite => format!("SQLite {}", db.version),
        Backend::Postgres => format!("PostgreSQL {}", db.version),
    };
    match &db.file {
        Some((path, false)) => out.push(pass(
            "database",
            format!(
                "{what}; {} does not exist yet: plantao creates it on first start",
                path.display()
            ),
        )),
        _ => out.push(pass(
            "database",
            format!(
                "{what} at {shown}, answered in {} ms",
                db.latency.as_millis()
            ),
        )),
    }
    let fresh = matches!(db.file, Some((_, false)));
    out.push(if db.schema == db.known || fresh {
        pass(
            "migrations",
            format!("at head ({} of {})", db.known, db.known),
        )
    } else if db.schema < db.known {
        warn(
            "migrations",
            format!(
                "at {} of {}: the next start applies {} migration(s)",
                db.schema,
                db.known,
                db.known - db.schema
            ),
            "take a backup first (`plantao backup`): migrations do not go back",
        )
    } else {
        fail(
            "migrations",
            format!(
                "the database is at {} but this plantao knows {}: a newer plantao wrote it",
                db.schema, db.known
            ),
            "run the newer plantao, or restore a backup taken before the upgrade",
        )
    });
    out.push(match db.clock {
        None => pass("clock", "SQLite runs on this machine's clock"),
        Some(theirs) => {
            let skew = (Utc::now() - theirs).abs().to_std().unwrap_or_default();
            let skew = skew.saturating_sub(db.latency);
            if skew <= MAX_SKEW {
                pass(
                    "clock",
                    format!("within {} ms of the database's", skew.as_millis()),
                )
            } else {
                fail(
                    "clock",
                    format!(
                        "{:.1} s away from the database's: ticks, leases and alerts would be off",
                        skew.as_secs_f64()
                    ),
                    "keep both clocks in sync with NTP (e.g. `timedatectl set-ntp true`)",
                )
            }
        }
    });
    out
}

fn disks(inspected: &Result<Inspected, String>) -> Vec<Check> {
    let mut places: Vec<(&str, PathBuf)> = Vec::new();
    if let Ok(Inspected {
        file: Some((path, _)),
        ..
    }) = inspected
    {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        places.push(("the database", folder));
    }
    places.push(("steps' output files", std::env::temp_dir()));
    places
        .into_iter()
        .map(|(what, folder)| match plantao_engine::disk_space(&folder) {
            Ok((free, total)) => {
                let shown = format!(
                    "{}: {} free of {} in {}",
                    what,
                    gib(free),
                    gib(total),
                    folder.display()
                );
                if free < MIN_FREE {
                    fail(
                        "disk",
                        shown,
                        "free space there (old backups, logs) or move it to a larger disk; plantao stops claiming runs when it cannot write",
                    )
                } else if free < total / 10 {
                    warn("disk", shown, "less than a tenth is free: make room before it fills")
                } else {
                    pass("disk", shown)
                }
            }
            Err(e) => fail(
                "disk",
                format!("{what}: cannot read the free space of {}: {e}", folder.display()),
                "check that the folder exists and this user may read it",
            ),
        })
        .collect()
}

fn gib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let g = bytes as f64 / (1u64 << 30) as f64;
    format!("{g:.1} GiB")
}

async fn connections(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    for (name, connection) in &config.connections {
        out.push(
            match plantao_engine::check_connection(connection, CONNECT_LIMIT).await {
                Ok(()) => pass("connection", format!("`{name}` answers")),
                Err(e) => fail(
                    "connection",
                    format!("`{name}`: {}", config.redactor.redact(&e)),
                    format!("check connections.{name}.url and that its server is up and reachable from here"),
                ),
            },
        );
    }
    out
}

async fn channels(config: &Config, store_ok: bool, send_test: bool) -> Vec<Check> {
    if config.channels.is_empty() {
        return vec![warn(
            "channels",
            "none configured: alerts reach nobody",
            "add a [[channels]] table to plantao.toml (see docs/alerts.md)",
        )];
    }
    if !send_test {
        let names: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
        return vec![pass(
            "channels",
            format!(
                "{} configured ({}); --send-test sends each a test message",
                names.len(),
                names.join(", ")
            ),
        )];
    }
    if !store_ok {
        return vec![fail(
            "channels",
            "not tested: the database is unreachable (test messages are recorded there)",
            "fix the database first",
        )];
    }
    let store = match plantao_store::open(config.storage.url.expose()).await {
        Ok(store) => store,
        Err(e) => {
            return vec![fail(
                "channels",
                format!("not tested: {e}"),
                "fix the database first",
            )];
        }
    };
    let mut out = Vec::new();
    for channel in &config.channels {
        let name = &channel.name;
        out.push(
            match plantao_engine::notify::test_channel(store.as_ref(), config, name, CLI_ACTOR)
                .await
            {
                Ok(a) if a.outcome == Outcome::Delivered => pass(
                    "channel",
                    format!("`{name}` accepted a test message in {} ms", a.took_ms),
                ),
                Ok(a) => fail(
                    "channel",
                    format!(
                        "`{name}` did not accept the test: {}",
                        a.error.unwrap_or_default()
                    ),
                    format!("check channel `{name}`'s address and credentials in plantao.toml"),
                ),
                Err(e) => fail(
                    "channel",
                    format!("`{name}`: {e:?}"),
                    "check the database and the channel's definition",
                ),
            },
        );
    }
    store.close().await;
    out
}

async fn listen(config: &Config) -> Check {
    let address = config.server.listen;
    match tokio::net::TcpListener::bind(address).await {
        Ok(_) => pass("listen", format!("{address} is free for `plantao serve`")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let health = plantao_engine::http_client()
                .get(format!("http://{address}/api/health"))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            let answer = match health {
                Ok(r) => r
                    .text()
                    .await
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()),
                Err(_) => None,
            };
            match answer.as_ref().and_then(|a| a["status"].as_str()) {
                Some(status) => pass(
                    "listen",
                    format!("{address} is served by a running plantao (health: {status})"),
                ),
                None => fail(
                    "listen",
                    format!("{address} is taken by another program"),
                    "stop it, or give server.listen another port",
                ),
            }
        }
        Err(e) => fail(
            "listen",
            format!("cannot listen on {address}: {e}"),
            "ports below 1024 need privileges: choose server.listen above 1024",
        ),
    }
}
