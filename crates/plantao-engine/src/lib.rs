//! What plantao does with a configuration and a store: run pipelines (the runner), and hold the
//! lease that tells other processes this one is alive. The engine sees only the store's
//! interface, never a backend.

pub mod clock;
pub mod daemon;
pub mod executor;
pub mod follow;
pub mod housekeeping;
pub mod lease;
pub mod runner;
pub mod scheduler;
pub mod telemetry;
pub mod writable;

pub use lease::Lease;

use plantao_config::Config;
use plantao_store::{PipelineRecord, Store, StoreError, Timestamp};

/// Records the configuration's pipelines in the store (new, changed, gone) as of `at`.
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
        .collect();
    store.sync_pipelines(&records, at).await
}
pub use runner::{
    Claimed, Observer, Plan, PlanError, Planned, Quiet, RunError, RunReport, RunRequest, Runner,
    StageReport, Stop, StopSignal, derived_metrics, run_metrics,
};
