//! What plantao does with a configuration and a store: run pipelines (the runner), and hold the
//! lease that tells other processes this one is alive. The engine sees only the store's
//! interface, never a backend.

pub mod clock;
pub mod daemon;
pub mod executor;
pub mod lease;
pub mod runner;
pub mod scheduler;

pub use lease::Lease;
pub use runner::{
    Claimed, Observer, Plan, PlanError, Planned, Quiet, RunError, RunReport, RunRequest, Runner,
    StageReport, Stop, StopSignal, derived_metrics,
};
