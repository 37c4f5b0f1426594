//! The records the store keeps. Plain data: the engine builds them, the store persists them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use plantao_model::{Role, RunId, RunStatus, StageStatus, Trigger};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::alerts::{Alert, AlertChange, Attempt, Notification, Silence};

pub type Timestamp = DateTime<Utc>;

/// A pipeline as the configuration defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PipelineRecord {
    pub name: String,
    pub definition_hash: String,
    pub description: Option<String>,
    /// The IANA zone its daily rollups follow.
    pub timezone: String,
}

/// A pipeline as the store knows it: `active` is false once it left the configuration (its
/// runs stay).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StoredPipeline {
    #[serde(flatten)]
    pub record: PipelineRecord,
    pub active: bool,
    /// Paused by an operator: its ticks are recorded as skipped, reason `paused`.
    pub paused: bool,
    pub first_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A run to create. Only ticks (`scheduled`, `catchup`) carry `scheduled_for`; the store keeps
/// at most one run per (pipeline, scheduled_for), which makes ticks exactly-once.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    pub id: RunId,
    pub pipeline: String,
    pub trigger: Trigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub params: BTreeMap<String, String>,
    /// `queued`, `running` (a local `plantao run`), `skipped` (with its reason), or final with
    /// a `started_at`: a run that ended as it started (a heartbeat's success without a start),
    /// recorded finished at `started_at` with a duration of 0 ms.
    pub status: RunStatus,
    pub reason: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub node: Option<String>,
    /// The run that queued this one (`chained` runs, retries of interrupted runs).
    pub parent: Option<RunId>,
    pub selection: StepSelection,
    /// A backfill's period: the run gets its days as `PLANTAO_PERIOD_START` / `_END`.
    pub period: Option<Period>,
    /// Runs even when its pipeline's inputs are unchanged since the last success.
    pub force: bool,
}

/// The days a backfill run covers, both included.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct Period {
    pub start: chrono::NaiveDate,
    /// The last day of the period (included).
    pub end: chrono::NaiveDate,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// Which steps a run runs: every step unless `only` names some, less those in `skip`. Kept with
/// a queued run so that whichever node claims it runs what was asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepSelection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

impl StepSelection {
    pub fn is_all(&self) -> bool {
        self.skip.is_empty() && self.only.is_empty()
    }
}

impl NewRun {
    /// A run waiting in the queue, with a fresh id, no parameters and no tick.
    pub fn queued(pipeline: impl Into<String>, trigger: Trigger, at: Timestamp) -> NewRun {
        NewRun {
            id: RunId::new(),
            pipeline: pipeline.into(),
            trigger,
            scheduled_for: None,
            params: BTreeMap::new(),
            status: RunStatus::Queued,
            reason: None,
            queued_at: at,
            started_at: None,
            node: None,
            parent: None,
            selection: StepSelection::default(),
            period: None,
            force: false,
        }
    }

    /// When a run inserted final finished: at its start, if it had one (a skipped tick did not).
    pub fn finished_at(&self) -> Option<Timestamp> {
        self.started_at.filter(|_| self.status.is_final())
    }
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Run {
    pub id: RunId,
    pub pipeline: String,
    pub trigger: Trigger,
    #[serde(serialize_with = "crate::rfc3339::option")]
    pub scheduled_for: Option<DateTime<Utc>>,
    pub params: BTreeMap<String, String>,
    pub status: RunStatus,
    pub reason: Option<String>,
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub queued_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::rfc3339::option")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::rfc3339::option")]
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub error_stage: Option<String>,
    pub error_message: Option<String>,
    pub node: Option<String>,
    pub parent: Option<RunId>,
    /// For ticks: from the instant it was due to its first step starting.
    pub lag_ms: Option<i64>,
    /// Someone asked this run to stop; the node running it will.
    pub cancel_requested: bool,
    pub selection: StepSelection,
    pub period: Option<Period>,
    /// Asked to run even with unchanged inputs.
    pub force: bool,
}

/// How many runs of a pipeline wait and run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OpenRuns {
    pub queued: u32,
    pub running: u32,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEnd {
    pub id: RunId,
    pub status: RunStatus,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub error_stage: Option<String>,
    pub error_message: Option<String>,
}

/// One attempt of one step. Written when it starts and again when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stage {
    pub run_id: RunId,
    pub step: String,
    /// From 1.
    pub attempt: u32,
    pub status: StageStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    /// Bounded by the runner (head and tail kept).
    pub log: String,
    pub cpu_user_ms: Option<i64>,
    pub cpu_system_ms: Option<i64>,
    pub peak_rss_kb: Option<i64>,
}

/// A number a stage reported (`approved=40`).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Counter {
    pub run_id: RunId,
    pub step: String,
    pub name: String,
    pub value: f64,
}

/// A value a stage reported, numeric or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Output {
    pub run_id: RunId,
    pub step: String,
    pub key: String,
    pub value: String,
}

/// One change. [`crate::Store::apply`] commits a batch of them in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// [`Applied::Inserted`], or [`Applied::Duplicate`] when the tick already has a run.
    InsertRun(NewRun),
    /// `queued` → `running`; a run in any other state is a conflict.
    StartRun {
        id: RunId,
        at: Timestamp,
        node: Option<String>,
    },
    /// `queued` or `running` → a final status; the duration comes from `started_at`. Stages
    /// still `running` end `interrupted`.
    FinishRun(RunEnd),
    /// Records a tick's scheduling lag.
    SetLag {
        id: RunId,
        lag_ms: i64,
    },
    /// Asks an open run to stop; a final run is a conflict.
    RequestCancel {
        id: RunId,
    },
    /// Pauses or resumes a pipeline; an unknown pipeline is not found.
    SetPaused {
        pipeline: String,
        paused: bool,
    },
    /// Creates or replaces the stage of (run, step, attempt).
    PutStage(Stage),
    PutCounter(Counter),
    PutOutput(Output),
    /// Records a finding; the same (run, step, attempt, line, pattern) again changes nothing.
    PutFinding(Finding),
    /// A new API token; a name already in use is a conflict.
    CreateToken(Token),
    /// Removes a token; an unknown name is not found.
    RevokeToken {
        name: String,
    },
    /// Appends to the audit log, in the same transaction as what it records.
    Audit(AuditEntry),
    /// A new alert: [`Applied::Inserted`], or [`Applied::Duplicate`] when an alert with its
    /// fingerprint is open already.
    OpenAlert(Box<Alert>),
    /// Changes an alert; a change its state does not allow is a conflict.
    ChangeAlert {
        id: Uuid,
        change: AlertChange,
    },
    /// Puts a notification in the outbox: [`Applied::Inserted`], or [`Applied::Duplicate`] when
    /// it belongs to an alert that does not exist (an [`Write::OpenAlert`] earlier in the batch
    /// found the alert open already: whoever opened it notifies).
    Enqueue(Box<Notification>),
    /// Records a delivery attempt and what it leaves the notification as; the claim on it ends.
    Attempt(Attempt),
    /// Overrides a rule's threshold (or, with no value, goes back to the configured one).
    SetThreshold {
        rule: String,
        value: Option<f64>,
        at: Timestamp,
    },
    /// Puts notifications back in the outbox until `until` without an attempt: their group had
    /// a message within `group_interval`. The claim on them ends.
    Defer {
        ids: Vec<Uuid>,
        until: Timestamp,
    },
    /// A new silence.
    AddSilence(Box<Silence>),
    /// Ends a silence at `at` (or has it never start); one that has ended is a conflict, an
    /// unknown one not found.
    ExpireSilence {
        id: Uuid,
        at: Timestamp,
    },
    /// Counts a ping of a heartbeat (or a probe's result) into what the store keeps of it
    /// ([`CheckRecord`]).
    Ping(PingFact),
    /// Adds a result that has no run of its own (a probe's success) to its pipeline's hourly
    /// and daily rollups, as a run that ended so would be.
    CountResult(Tally),
    /// A check went down at `at`: opens its incident, unless one is open already.
    /// Sets (or, with no value, removes) a key of a pipeline's state; `run` is the run whose
    /// success set it.
    SetState {
        pipeline: String,
        key: String,
        value: Option<String>,
        at: Timestamp,
        run: Option<RunId>,
    },
    /// Records the input files a run found.
    PutInputs {
        run: RunId,
        inputs: Vec<InputFile>,
    },
    /// Makes `inputs` (a successful run's) what the pipeline's next runs compare theirs with.
    SetLastInputs {
        pipeline: String,
        run: RunId,
        inputs: Vec<InputFile>,
    },
    /// Marks a backfill's period done (replacing an older mark of the same period).
    Checkpoint(Checkpoint),
    /// Creates or replaces a backfill's record.
    PutBackfill(Box<Backfill>),
    OpenIncident {
        check: String,
        at: Timestamp,
        cause: Option<String>,
    },
    /// A check is up again at `at`: ends its open incident, if any.
    CloseIncident {
        check: String,
        at: Timestamp,
    },
}

/// A down period of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Incident {
    pub id: i64,
    pub check: String,
    pub started_at: DateTime<Utc>,
    /// None while it lasts.
    pub ended_at: Option<DateTime<Utc>>,
    pub cause: Option<String>,
}

/// A result counted into the rollups without a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    pub pipeline: String,
    pub status: RunStatus,
    pub trigger: Trigger,
    pub at: Timestamp,
    pub duration_ms: Option<i64>,
}

/// What a ping was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PingKind {
    Start,
    Success,
    Failure,
    Log,
}

impl PingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PingKind::Start => "start",
            PingKind::Success => "success",
            PingKind::Failure => "failure",
            PingKind::Log => "log",
        }
    }

    pub fn parse(s: &str) -> Option<PingKind> {
        [
            PingKind::Start,
            PingKind::Success,
            PingKind::Failure,
            PingKind::Log,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One ping of heartbeat `check` at `at`; for an end (success or failure), how long the run it
/// ends took (none without a start).
#[derive(Clone, Debug, PartialEq)]
pub struct PingFact {
    pub check: String,
    pub kind: PingKind,
    pub at: Timestamp,
    pub duration_ms: Option<i64>,
    /// A probe's state after this result, and how many results in a row were of this kind.
    pub state: Option<(String, i64)>,
}

/// What the store keeps of a heartbeat's pings besides the runs they make: enough to tell its
/// state without reading its runs (which are pruned), for every heartbeat in one read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CheckRecord {
    pub name: String,
    /// Every ping ever counted.
    pub pings: i64,
    pub last_ping_at: Option<DateTime<Utc>>,
    pub last_ping: Option<PingKind>,
    /// The last start, whether or not it has ended since.
    pub last_start_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The success before the last one (for `min_interval`).
    pub previous_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// How long the last run that ended took, when it had a start.
    pub last_duration_ms: Option<i64>,
    /// A probe's state (`up`, `down`) and how many results in a row were of the last kind.
    pub state: Option<String>,
    pub streak: Option<i64>,
}

impl Write {
    /// An audit entry of what `actor` did to `target` just now.
    pub fn audit(actor: &str, action: &str, target: &str, detail: Option<String>) -> Write {
        Write::Audit(AuditEntry {
            at: Utc::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        })
    }
}

/// What each write of a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Inserted,
    Duplicate,
    Updated,
}

/// A backfill asked for through the API, and how far it got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Backfill {
    pub id: Uuid,
    pub pipeline: String,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    /// `day`, `week` or `month`.
    pub every: String,
    pub parallel: u32,
    /// Wait between starting one period and the next.
    pub sleep_ms: i64,
    pub ignore_checkpoint: bool,
    pub params: BTreeMap<String, String>,
    /// `running` while periods remain, then `done`.
    pub state: String,
    pub created_at: DateTime<Utc>,
    /// The token that asked for it.
    pub created_by: String,
    pub finished_at: Option<DateTime<Utc>>,
    /// When its last period was queued.
    pub last_start_at: Option<DateTime<Utc>>,
    /// Why it stopped early, when it did.
    pub error: Option<String>,
    pub periods: u32,
    pub succeeded: u32,
    /// Ended otherwise: no checkpoint.
    pub failed: u32,
    /// Had a checkpoint from before: nothing ran.
    pub skipped: u32,
    /// Queued or running now.
    pub in_flight: u32,
}

/// How many rows of each kind pruning would take (a dry run's answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Prunable {
    /// Finished runs, with their stages (and logs), counters, outputs and inputs.
    pub runs: u64,
    pub alerts: u64,
    pub notifications: u64,
}

/// Which runs to list: newest first, `before` a run id for the next page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFilter {
    pub pipeline: Option<String>,
    pub status: Option<RunStatus>,
    pub trigger: Option<Trigger>,
    pub before: Option<RunId>,
    /// Queued at or after.
    pub since: Option<DateTime<Utc>>,
    /// Queued before.
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// A line of a stage's log that matched one of the configuration's `[[patterns]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub run_id: RunId,
    pub step: String,
    pub attempt: u32,
    /// The line's number in the stage's log, from 1.
    pub line: u32,
    /// The pattern's name.
    pub pattern: String,
    pub severity: plantao_model::Severity,
    /// The line, cut at 200 characters.
    pub excerpt: String,
}

/// A run with everything recorded about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: Run,
    /// By start time, then step and attempt.
    pub stages: Vec<Stage>,
    pub counters: Vec<Counter>,
    pub outputs: Vec<Output>,
    /// The pipeline's input files as hashed when the run started (by path).
    pub inputs: Vec<InputFile>,
    /// Lines of its logs that matched a pattern, by step, attempt and line.
    pub findings: Vec<Finding>,
}

/// What a list of runs shows of each: its stages without their logs, and its counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunBrief {
    /// As in [`RunDetail::stages`], each with an empty `log`.
    pub stages: Vec<Stage>,
    /// By step, then name.
    pub counters: Vec<Counter>,
}

/// One of a pipeline's input files as a run found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InputFile {
    /// As matched by the pipeline's `inputs` patterns.
    pub path: String,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    pub bytes: i64,
}

/// One key of a pipeline's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StateEntry {
    pub key: String,
    pub value: String,
    pub updated_at: DateTime<Utc>,
    /// The run whose success set it; none when set by hand.
    pub run_id: Option<RunId>,
}

/// A backfill's period that a run finished successfully: later backfills skip it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub pipeline: String,
    pub period: Period,
    pub run_id: RunId,
    pub at: DateTime<Utc>,
}

/// A process that executes runs, and its lease: it renews `expires_at` while alive. A run left
/// `running` by a node whose lease expired belongs to a dead process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Node {
    pub id: String,
    /// `serve` or `run`.
    pub kind: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An API token as stored: only the SHA-256 of its secret, never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Token {
    pub name: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the secret the holder sends.
    #[serde(skip)]
    pub hash: String,
    pub created_at: DateTime<Utc>,
}

/// Who did what, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// A token's name, `cli` for a command on the server's machine, `anonymous` otherwise.
    pub actor: String,
    /// `run.trigger`, `run.cancel`, `run.retry`, `pipeline.pause`, `pipeline.resume`,
    /// `token.create`, `token.revoke`.
    pub action: String,
    /// What it was done to: a pipeline, a run id, a token's name.
    pub target: String,
    pub detail: Option<String>,
}

/// An audit entry with its place in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}
