//! `plantao silence add|list|expire`.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use plantao_engine::alerts::silences::{self, SilenceRequest};
use plantao_store::{Silence, StoreError};

use crate::cli::SilenceAdd;
use crate::commands::control::CLI_ACTOR;
use crate::commands::{load_config, open_store, open_store_to_read};
use crate::failure::Failure;

pub async fn add(config_path: &Path, args: SilenceAdd) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let zone = config.defaults.timezone;
    let request = SilenceRequest {
        matchers: args.matchers,
        starts_at: args.start.as_deref().map(|t| when(t, zone)).transpose()?,
        ends_at: args.end.as_deref().map(|t| when(t, zone)).transpose()?,
        duration: args.duration,
        comment: args.comment,
    };
    let author = args
        .author
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| CLI_ACTOR.to_owned());
    let (silence, writes) = silences::add(&request, &author, Utc::now()).map_err(Failure::Usage)?;
    let store = open_store(&config).await?;
    store.apply(writes).await?;
    println!("silence {} created", silence.id);
    print_silence(&silence, zone, Utc::now());
    Ok(())
}

pub async fn list(config_path: &Path, all: bool, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let store = open_store_to_read(&config).await?;
    let now = Utc::now();
    let since = if all {
        DateTime::<Utc>::UNIX_EPOCH
    } else {
        now
    };
    let list = store.silences(since, 1000).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    } else if list.is_empty() {
        println!("no silences in force or to come");
    } else {
        for s in &list {
            print_silence(s, config.defaults.timezone, now);
        }
    }
    Ok(())
}

pub async fn expire(config_path: &Path, id: &str) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let id: uuid::Uuid = id.parse().map_err(|_| {
        Failure::Usage(format!(
            "`{id}` is not a silence id; `plantao silence list` shows them"
        ))
    })?;
    let store = open_store(&config).await?;
    match store
        .apply(silences::expire(id, CLI_ACTOR, Utc::now()))
        .await
    {
        Ok(_) => {
            println!("silence {id} expired: the alerts it matched are notified again");
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Err(Failure::Missing(format!(
            "there is no silence {id}; `plantao silence list --all` lists them"
        ))),
        Err(StoreError::Conflict(why)) => Err(Failure::Usage(why)),
        Err(e) => Err(e.into()),
    }
}

fn print_silence(s: &Silence, zone: Tz, now: DateTime<Utc>) {
    let state = if s.ends_at <= now {
        "ended"
    } else if s.starts_at > now {
        "to come"
    } else {
        "in force"
    };
    println!(
        "{}  {:<8}  {} → {}  by {}",
        s.id,
        state,
        crate::format::time(s.starts_at, zone),
        crate::format::time(s.ends_at, zone),
        s.author
    );
    println!("    {}", silences::describe(&s.matchers));
    println!("    {}", s.comment);
}

/// A time as RFC 3339 (`2026-11-23T02:00:00Z`, `…-03:00`), or `2026-11-23 02:00` in the
/// configuration's time zone.
fn when(text: &str, zone: Tz) -> Result<DateTime<Utc>, Failure> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text.trim(), f).ok())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "`{text}` is not a time: write 2026-11-23 02:00 (in {zone}) or 2026-11-23T05:00:00Z"
            ))
        })?;
    zone.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| Failure::Usage(format!("{text} does not exist in {zone} (a clock change)")))
}
