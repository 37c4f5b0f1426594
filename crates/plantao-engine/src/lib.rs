//! What plantao does with a configuration and a store: run pipelines (the runner), and hold the
//! lease that tells other processes this one is alive. The engine sees only the store's
//! interface, never a backend.

pub mod alerts;
pub mod backfill;
pub mod checks;
pub mod clock;
pub mod daemon;
pub mod executor;
pub mod follow;
pub mod housekeeping;
pub mod lease;
pub mod notify;
pub mod report;
pub mod runner;
pub mod scheduler;
pub mod telemetry;
pub mod trends;
pub mod writable;

pub use lease::Lease;

use plantao_config::Config;
use plantao_store::{PipelineRecord, Store, StoreError, Timestamp};

/// The HTTP client of the process (HTTP steps, notifications), with plantao's user agent. Made
/// on first use: building it loads the system's trusted certificates, memory an idle daemon
/// that sends nothing has no use for.
pub fn http_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        // One TLS provider for the process; a second install is a no-op worth ignoring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .user_agent(concat!("plantao/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// Records the configuration's pipelines in the store (new, changed, gone) as of `at`, and its
/// heartbeats and probes with them: their runs share the history, the rollups and the pause
/// switch.
pub async fn sync_pipelines(
    store: &dyn Store,
    config: &Config,
    at: Timestamp,
) -> Result<(), StoreError> {
    let records: Vec<_> = config
        .pipelines
        .iter()
        .map(|p| PipelineRecord {
            name: p.name.clone(),
            definition_hash: p.definition_hash.clone(),
            description: p.description.clone(),
            timezone: p.timezone.name().to_owned(),
        })
        .chain(config.heartbeats.iter().map(|h| PipelineRecord {
            name: h.name.clone(),
            definition_hash: h.definition_hash.clone(),
            description: h.description.clone(),
            timezone: h.timezone.name().to_owned(),
        }))
        .chain(config.probes.iter().map(|p| PipelineRecord {
            name: p.name.clone(),
            definition_hash: p.definition_hash.clone(),
            description: p.description.clone(),
            timezone: p.timezone.name().to_owned(),
        }))
        .collect();
    store.sync_pipelines(&records, at).await
}
pub use runner::{
    Claimed, INPUTS_UNCHANGED, Observer, Plan, PlanError, Planned, Quiet, RunError, RunReport,
    RunRequest, Runner, StageReport, Stop, StopSignal, check_connection, derived_metrics,
    disk_space, metric_values, run_metrics,
};
