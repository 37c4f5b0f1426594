//! `plantao state`: a pipeline's state (watermarks and the like) read and set by hand.

use std::path::Path;

use chrono::Utc;
use plantao_model::state_key;
use plantao_store::Write;

use crate::commands::control::CLI_ACTOR;
use crate::commands::{find_pipeline, load_config, open_store, open_store_to_read};
use crate::failure::Failure;
use crate::format;

fn key_of(key: &str) -> Result<String, Failure> {
    state_key(key).map_err(Failure::Usage)
}

pub async fn list(config_path: &Path, pipeline: &str, json: bool) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let p = find_pipeline(&config, pipeline)?;
    let name = &p.name;
    let store = open_store_to_read(&config).await?;
    let state = store.state(name).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&state).unwrap_or_default()
        );
        return Ok(());
    }
    if state.is_empty() {
        println!(
            "{name} has no state yet: steps set it by writing `state.KEY=value` to $PLANTAO_OUTPUT"
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = state
        .iter()
        .map(|e| {
            vec![
                e.key.clone(),
                e.value.replace('\n', "⏎"),
                format::time(e.updated_at, p.timezone),
                e.run_id
                    .map_or_else(|| "by hand".to_owned(), |r| r.to_string()),
            ]
        })
        .collect();
    println!(
        "{}",
        format::table(&["key", "value", "updated", "set by"], &rows)
    );
    Ok(())
}

pub async fn get(config_path: &Path, pipeline: &str, key: &str) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let name = &find_pipeline(&config, pipeline)?.name;
    let key = key_of(key)?;
    let store = open_store_to_read(&config).await?;
    match store.state(name).await?.into_iter().find(|e| e.key == key) {
        Some(entry) => {
            println!("{}", entry.value);
            Ok(())
        }
        None => Err(Failure::Missing(format!(
            "{name} has no state key `{key}` (`plantao state list {name}` shows those it has)"
        ))),
    }
}

/// Sets `key` to `value`, or removes it when there is none; audited.
pub async fn set(
    config_path: &Path,
    pipeline: &str,
    key: &str,
    value: Option<&str>,
) -> Result<(), Failure> {
    let config = load_config(config_path)?;
    let name = find_pipeline(&config, pipeline)?.name.clone();
    let key = key_of(key)?;
    let store = open_store(&config).await?;
    let action = if value.is_some() {
        "state.set"
    } else {
        "state.unset"
    };
    store
        .apply(vec![
            Write::SetState {
                pipeline: name.clone(),
                key: key.clone(),
                value: value.map(str::to_owned),
                at: Utc::now(),
                run: None,
            },
            Write::audit(CLI_ACTOR, action, &name, Some(format!("key {key}"))),
        ])
        .await?;
    match value {
        Some(v) => println!(
            "{name}: {key} = {v} (steps read it as $PLANTAO_STATE_{})",
            key.to_uppercase()
        ),
        None => println!("{name}: {key} removed"),
    }
    Ok(())
}
