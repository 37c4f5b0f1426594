pub mod access;
pub mod alertbench;
pub mod alerts;
pub mod apibench;
pub mod backfill;
pub mod backup;
pub mod bench;
pub mod bursts;
pub mod checks;
pub mod config;
pub mod control;
pub mod doctor;
pub mod manual;
pub mod memory;
pub mod ping;
pub mod pingbench;
pub mod probebench;
pub mod prune;
pub mod report;
pub mod run;
pub mod runs;
pub mod serve;
pub mod silences;
pub mod state;
pub mod stats;
pub mod status;
pub mod validate;

use std::path::Path;
use std::sync::Arc;

use plantao_config::Config;
use plantao_store::Store;

use crate::failure::Failure;

/// Loads the configuration with the process environment.
/// What runs started here watch: the first Ctrl-C cancels them (their steps' process groups
/// are stopped, `finally` steps still run); a second also gives up waiting for a database that
/// cannot write (the runs are then left for the next start to close as interrupted).
pub fn stop_on_ctrl_c() -> plantao_engine::StopSignal {
    let (tx, stop) = tokio::sync::watch::channel(None);
    tokio::spawn(async move {
        for signal in [plantao_engine::Stop::Cancel, plantao_engine::Stop::Shutdown] {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            tx.send_replace(Some(signal));
        }
    });
    stop
}

pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Ok(plantao_config::load(path, &|name| {
        std::env::var(name).ok()
    })?)
}

/// Opens the configuration's store only to read it: nothing is written, so reading works on a
/// full disk and a second configuration on the same store changes nothing.
pub async fn open_store_to_read(config: &Config) -> Result<Arc<dyn Store>, Failure> {
    Ok(plantao_store::open(config.storage.url.expose())
        .await?
        .into())
}

/// Opens the configuration's store and records its pipelines there.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, Failure> {
    let store: Arc<dyn Store> = plantao_store::open(config.storage.url.expose())
        .await?
        .into();
    sync_pipelines(store.as_ref(), config).await?;
    Ok(store)
}

/// Records the configuration's pipelines in the store, as of now.
pub async fn sync_pipelines(
    store: &dyn Store,
    config: &Config,
) -> Result<(), plantao_store::StoreError> {
    plantao_engine::sync_pipelines(store, config, chrono::Utc::now()).await
}

/// The pipeline by name, or a usage error that lists the known ones.
pub fn find_pipeline<'c>(
    config: &'c Config,
    name: &str,
) -> Result<&'c plantao_config::Pipeline, Failure> {
    config
        .pipeline(name)
        .ok_or_else(|| Failure::Usage(config.no_such_pipeline(name)))
}
