//! What a run tells its caller as it goes ([`Observer`]) and when it ends ([`RunReport`]).

use std::time::Duration;

use plantao_model::{ExprValue, RunId, RunStatus, StageStatus};

/// One step's outcome: its last attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct StageReport {
    pub step: String,
    pub attempt: u32,
    pub attempts: u32,
    pub status: StageStatus,
    pub duration_ms: i64,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub counters: Vec<(String, f64)>,
    /// A step of `finally`.
    pub finally: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub run_id: RunId,
    pub pipeline: String,
    pub status: RunStatus,
    pub duration_ms: i64,
    pub stages: Vec<StageReport>,
    pub metrics: Vec<(String, ExprValue)>,
    pub error_stage: Option<String>,
    pub error_message: Option<String>,
    /// Why a run that did nothing was skipped, in words.
    pub reason: Option<String>,
}

/// Follows a run as it happens (the CLI prints from it). Every method has a default that does
/// nothing.
pub trait Observer: Send + Sync {
    fn run_started(&self, _run: RunId, _pipeline: &str) {}
    fn stage_started(&self, _step: &str, _attempt: u32, _attempts: u32) {}
    fn stage_finished(&self, _report: &StageReport) {}
    fn retrying(&self, _step: &str, _failed_attempt: u32, _error: &str, _delay: Duration) {}
}

/// An observer that watches nothing.
#[derive(Debug)]
pub struct Quiet;

impl Observer for Quiet {}
