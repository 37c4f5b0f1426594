//! What the stories share: a fixed clock and record builders.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use plantao_model::{RunId, RunStatus, StageStatus, Trigger};
use plantao_store::*;

pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

pub fn new_run(pipeline: &str, trigger: Trigger, scheduled_for: Option<DateTime<Utc>>) -> NewRun {
    NewRun {
        id: RunId::new(),
        pipeline: pipeline.to_owned(),
        trigger,
        scheduled_for,
        params: BTreeMap::new(),
        status: RunStatus::Queued,
        reason: None,
        queued_at: at(0),
        started_at: None,
        node: None,
        parent: None,
        selection: Default::default(),
        period: None,
        force: false,
    }
}

pub fn stage(run: RunId, step: &str, attempt: u32, status: StageStatus, start: i64) -> Stage {
    Stage {
        run_id: run,
        step: step.to_owned(),
        attempt,
        status,
        started_at: at(start),
        finished_at: None,
        duration_ms: None,
        exit_code: None,
        error: None,
        log: String::new(),
        cpu_user_ms: None,
        cpu_system_ms: None,
        peak_rss_kb: None,
    }
}
