//! The store: the single source of truth and the queue. One interface ([`Store`]), two
//! backends chosen once from the URL scheme ([`open`]): SQLite (embedded, one node) and
//! PostgreSQL (several nodes). The engine and the web layer only ever see `dyn Store`.
//!
//! Durability. SQLite runs in WAL mode with `synchronous=NORMAL`: a crash of plantao loses
//! nothing that [`Store::apply`] returned for; a crash of the operating system or a power cut
//! may lose the last moment of writes, and never corrupts the file. PostgreSQL gives whatever
//! its own configuration gives (by default, nothing committed is lost).

mod alerts;
pub mod backup;
mod decode;
mod error;
mod inspect;
pub(crate) mod postgres;
mod records;
pub mod rfc3339;
mod rollup;
pub(crate) mod sqlite;
mod url;

use std::collections::BTreeMap;

use async_trait::async_trait;
use plantao_model::RunId;
use uuid::Uuid;

pub use alerts::{
    Alert, AlertChange, Attempt, Matcher, Notification, NotificationRecord, Outcome, Silence,
    Suppression,
};
pub use error::{Result, StoreError};
pub use inspect::{Inspected, inspect};
pub use records::*;
pub use rollup::{Bucket, CounterTotal, GAMMA, Grain, Histogram, Summary, Window, day_of, hour_of};
pub use url::redact_url;

/// The backend behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything plantao persists goes through this interface; each backend passes the same
/// conformance suite (`tests/conformance.rs`).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> Backend;

    /// Commits `writes` in one transaction, all or nothing, and says what each did. Callers
    /// that have several writes at hand (ticks due together, a stage and its counters) pass
    /// them together: one commit instead of many.
    async fn apply(&self, writes: Vec<Write>) -> Result<Vec<Applied>>;

    /// Records the pipelines of the configuration: new ones are added, changed ones updated,
    /// and those no longer listed marked inactive (their runs are kept).
    async fn sync_pipelines(&self, pipelines: &[PipelineRecord], at: Timestamp) -> Result<()>;

    async fn pipelines(&self) -> Result<Vec<StoredPipeline>>;

    /// The names of the paused pipelines: what the scheduler reads before each tick, cheap
    /// however many pipelines there are.
    async fn paused_pipelines(&self) -> Result<Vec<String>>;

    async fn run(&self, id: RunId) -> Result<Run>;

    /// Newest first.
    async fn runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;

    async fn run_detail(&self, id: RunId) -> Result<RunDetail>;

    /// The newest run of every pipeline (and check) the store knows that has one, by name, in
    /// one statement: what a list of pipelines shows, without a [`Store::runs`] each.
    async fn latest_runs(&self) -> Result<BTreeMap<String, Run>>;

    /// The stages (their logs left empty) and counters of each of `runs`, read together in one
    /// pass: what a list of runs shows, without a [`Store::run_detail`] per run. Runs not found
    /// are absent; stages come in the order `run_detail` gives them.
    async fn run_briefs(&self, runs: &[RunId]) -> Result<BTreeMap<RunId, RunBrief>>;

    /// Claims the oldest queued run whose pipeline is not in `full`: it becomes `running` on
    /// `node` from `at`. Two nodes never claim the same run (on PostgreSQL, `FOR UPDATE SKIP
    /// LOCKED`: a node passes over the rows another is claiming instead of waiting for them).
    async fn claim_next(&self, node: &str, at: Timestamp, full: &[String]) -> Result<Option<Run>>;

    /// Per pipeline, how many runs are queued and running (pipelines with none are absent).
    async fn open_runs(&self) -> Result<BTreeMap<String, OpenRuns>>;

    /// Per pipeline, the latest tick that has a run (whatever its status).
    async fn last_ticks(&self) -> Result<BTreeMap<String, Timestamp>>;

    /// Runs left `running` by a node that is gone or whose lease expired before `now`. A run
    /// no node runs (a heartbeat's, opened by its `/start` ping) is never one.
    async fn orphaned(&self, now: Timestamp) -> Result<Vec<Run>>;

    /// Runs of `node` that someone asked to stop.
    async fn cancel_requests(&self, node: &str) -> Result<Vec<RunId>>;

    /// Registers a process that executes runs, with its first lease.
    async fn register_node(&self, node: &Node) -> Result<()>;

    /// Extends a node's lease; `NotFound` when the node was removed (taken for dead).
    async fn renew_node(&self, id: &str, at: Timestamp, expires_at: Timestamp) -> Result<()>;

    /// Removes a node that stops cleanly.
    async fn remove_node(&self, id: &str) -> Result<()>;

    /// Removes the nodes whose lease expired before `before`; returns them.
    async fn remove_expired_nodes(&self, before: Timestamp) -> Result<Vec<Node>>;

    async fn nodes(&self) -> Result<Vec<Node>>;

    /// The rollup buckets of `pipeline` at `grain` that start in `[from, to)`, oldest first;
    /// buckets without runs are absent.
    async fn rollups(
        &self,
        pipeline: &str,
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Bucket>>;

    /// What `pipeline`'s runs add up to over `window` at `now`, read from the rollups (so it
    /// outlives pruning); `zone` is the pipeline's, for "today".
    async fn summary(
        &self,
        pipeline: &str,
        window: Window,
        now: Timestamp,
        zone: chrono_tz::Tz,
    ) -> Result<Summary> {
        let (grain, from, to) = window.range(now, zone);
        let mut total = Summary::default();
        for bucket in self.rollups(pipeline, grain, from, to).await? {
            total.merge(&bucket.summary);
        }
        Ok(total)
    }

    /// What each of `pipelines` adds up to over the buckets at `grain` that start in
    /// `[from, to)`, all of them in one pass: runs by status and trigger, durations' sums and
    /// maxima, CPU and counter sums, but no duration histograms (`durations` stay empty). What
    /// alert rules read; pipelines without runs there are absent.
    async fn totals(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<String, Summary>>;

    /// [`Store::totals`] bucket by bucket, keyed by pipeline and bucket start, still in one
    /// pass: what a chart of days over every pipeline reads.
    async fn bucket_totals(
        &self,
        pipelines: &[String],
        grain: Grain,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<BTreeMap<(String, Timestamp), Summary>>;

    /// Deletes at most `limit` finished runs queued before `before`, with their stages,
    /// counters and outputs, and at most `limit` each of the resolved alerts and of the
    /// notifications done with (delivered or given up, with their attempts) made before
    /// `before`, in short statements; says how many rows of all of them. Rollups stay. Callers
    /// loop until it returns fewer than `limit`, so nothing holds the database long.
    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64>;

    /// What [`Store::prune`] would delete for `before`, counted without deleting.
    async fn prunable(&self, before: Timestamp) -> Result<Prunable>;

    /// Periodic work done by one node at a time: `node` takes `task` (or keeps it) until
    /// `until`, unless another node holds it past `now`. True when `node` owns it. Owners renew
    /// well before `until`; when one dies, another takes over once its hold expires.
    async fn own(&self, task: &str, node: &str, now: Timestamp, until: Timestamp) -> Result<bool>;

    /// The API tokens, by name.
    async fn tokens(&self) -> Result<Vec<Token>>;

    /// The token whose secret hashes to `hash`, if any.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>>;

    /// The audit log, newest first: at most `limit` entries older than `before` (an entry's id).
    async fn audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditRecord>>;

    /// The alerts pending or firing (dismissed ones included), oldest first.
    async fn open_alerts(&self) -> Result<Vec<Alert>>;

    async fn alert(&self, id: Uuid) -> Result<Alert>;

    /// Every alert, newest first: at most `limit` older than `before` (an alert's id).
    async fn alert_history(&self, before: Option<Uuid>, limit: u32) -> Result<Vec<Alert>>;

    /// Claims at most `limit` pending notifications due at `now` that nobody holds, and with
    /// them every pending notification of their groups, due or not (a group goes out as one
    /// message, so its members that came later ride along): they are
    /// this caller's to deliver until `until` (then anyone's again, so a node that dies holding
    /// some delays them, never loses them). Two callers never hold the same notification (on
    /// PostgreSQL, `FOR UPDATE SKIP LOCKED`).
    async fn claim_notifications(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Notification>>;

    /// The delivery log, newest first: at most `limit` notifications older than `before`, each
    /// with its attempts.
    async fn notifications(
        &self,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>>;

    /// How many notifications wait for delivery.
    async fn outbox_depth(&self) -> Result<u64>;

    /// The thresholds overridden at runtime, by rule.
    async fn thresholds(&self) -> Result<BTreeMap<String, f64>>;

    /// The silences that end after `ended_after` (those in force and those to come, given
    /// now), newest first, at most `limit`.
    async fn silences(&self, ended_after: Timestamp, limit: u32) -> Result<Vec<Silence>>;

    /// When each of the notification groups `keys` last had a message delivered (groups that
    /// never had one are left out).
    async fn group_sent(&self, keys: &[String]) -> Result<BTreeMap<String, Timestamp>>;

    /// When `pipeline`'s last successful run finished (none before its first).
    async fn last_success_at(&self, pipeline: &str) -> Result<Option<Timestamp>>;

    /// A pipeline's state, by key.
    async fn state(&self, pipeline: &str) -> Result<Vec<StateEntry>>;

    /// The input files of `pipeline`'s last successful run that had inputs, by path (none
    /// before its first).
    async fn last_inputs(&self, pipeline: &str) -> Result<Vec<InputFile>>;

    /// The backfill periods of `pipeline` that succeeded, oldest first.
    async fn checkpoints(&self, pipeline: &str) -> Result<Vec<Checkpoint>>;

    /// Backfills newest first, at most `limit`: those of `pipeline` when one is named, else
    /// those still running.
    async fn backfills(&self, pipeline: Option<&str>, limit: u32) -> Result<Vec<Backfill>>;

    /// What the store keeps of each heartbeat's pings, by name (heartbeats never pinged are
    /// absent).
    async fn checks(&self) -> Result<BTreeMap<String, CheckRecord>>;

    /// The incidents of `check` (of every check when none) that were open at or after `since`,
    /// newest first, at most `limit`.
    async fn incidents(
        &self,
        check: Option<&str>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Incident>>;

    /// Closes the connections; pending writes have been committed by then.
    async fn close(&self);
}

/// How a ping (or a probe result) changes its check's record when the check has one: the
/// `ON CONFLICT` clause both backends add to inserting the check's row (`excluded` is the
/// ping's row, `checks` the record so far). The last start, success and failure are kept apart,
/// and the success before the last one is remembered.
pub(crate) const PING_COUNTED: &str = "ON CONFLICT (name) DO UPDATE SET
    pings = checks.pings + 1,
    last_ping_at = excluded.last_ping_at,
    last_ping = excluded.last_ping,
    last_start_at = COALESCE(excluded.last_start_at, checks.last_start_at),
    previous_success_at = CASE WHEN excluded.last_ping = 'success' THEN checks.last_success_at ELSE checks.previous_success_at END,
    last_success_at = COALESCE(excluded.last_success_at, checks.last_success_at),
    last_failure_at = COALESCE(excluded.last_failure_at, checks.last_failure_at),
    last_duration_ms = CASE WHEN excluded.last_ping IN ('success', 'failure') THEN excluded.last_duration_ms ELSE checks.last_duration_ms END,
    state = COALESCE(excluded.state, checks.state),
    streak = COALESCE(excluded.streak, checks.streak)";

/// A batch's writes as the backends apply them: writes of one kind one after another go
/// together, so a backend may apply them together — PostgreSQL inserts runs in multi-row
/// statements (ticks due at once: a thousand in a few milliseconds instead of a statement each);
/// SQLite writes a batch made only of rows of runs and pings on its own writer, in one hand-off.
enum Step {
    Rows(Rows),
    One(Write),
}

/// Writes of one kind, one after another in a batch.
enum Rows {
    Insert(Vec<NewRun>),
    /// Runs started: each one's id, when, and on which node.
    Start(Vec<(RunId, Timestamp, Option<String>)>),
    Stages(Vec<Stage>),
    Finish(Vec<RunEnd>),
    /// Ticks' scheduling lags: each run's id and its lag in milliseconds.
    Lags(Vec<(RunId, i64)>),
    Pings(Vec<PingFact>),
}

fn steps(writes: Vec<Write>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for write in writes {
        let last = match steps.last_mut() {
            Some(Step::Rows(rows)) => Some(rows),
            _ => None,
        };
        match (write, last) {
            (Write::InsertRun(run), Some(Rows::Insert(runs))) => runs.push(run),
            (Write::StartRun { id, at, node }, Some(Rows::Start(starts))) => {
                starts.push((id, at, node));
            }
            (Write::PutStage(stage), Some(Rows::Stages(stages))) => stages.push(stage),
            (Write::FinishRun(end), Some(Rows::Finish(ends))) => ends.push(end),
            (Write::SetLag { id, lag_ms }, Some(Rows::Lags(lags))) => lags.push((id, lag_ms)),
            (Write::Ping(fact), Some(Rows::Pings(facts))) => facts.push(fact),
            (Write::InsertRun(run), _) => steps.push(Step::Rows(Rows::Insert(vec![run]))),
            (Write::StartRun { id, at, node }, _) => {
                steps.push(Step::Rows(Rows::Start(vec![(id, at, node)])));
            }
            (Write::PutStage(stage), _) => steps.push(Step::Rows(Rows::Stages(vec![stage]))),
            (Write::FinishRun(end), _) => steps.push(Step::Rows(Rows::Finish(vec![end]))),
            (Write::SetLag { id, lag_ms }, _) => {
                steps.push(Step::Rows(Rows::Lags(vec![(id, lag_ms)])));
            }
            (Write::Ping(fact), _) => steps.push(Step::Rows(Rows::Pings(vec![fact]))),
            (other, _) => steps.push(Step::One(other)),
        }
    }
    steps
}

impl Step {
    /// The writes a group stands for, one by one: for a backend that applies them so.
    fn writes(self) -> Vec<Write> {
        match self {
            Step::Rows(Rows::Insert(runs)) => runs.into_iter().map(Write::InsertRun).collect(),
            Step::Rows(Rows::Start(starts)) => starts
                .into_iter()
                .map(|(id, at, node)| Write::StartRun { id, at, node })
                .collect(),
            Step::Rows(Rows::Stages(stages)) => stages.into_iter().map(Write::PutStage).collect(),
            Step::Rows(Rows::Finish(ends)) => ends.into_iter().map(Write::FinishRun).collect(),
            Step::Rows(Rows::Lags(lags)) => lags
                .into_iter()
                .map(|(id, lag_ms)| Write::SetLag { id, lag_ms })
                .collect(),
            Step::Rows(Rows::Pings(facts)) => facts.into_iter().map(Write::Ping).collect(),
            Step::One(write) => vec![write],
        }
    }
}

/// Runs `work` to its end even when the caller stops waiting for it. A request whose client
/// hangs up is dropped wherever it is; dropped between `BEGIN` and the end of its transaction,
/// it would hand its connection back to the pool still inside that transaction, and the next
/// user would fail ("SET TRANSACTION ISOLATION LEVEL must be called before any query", seen with
/// `plantao bench api` on PostgreSQL). So the backends run their transactions as tasks of their
/// own.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| StoreError::Database(format!("a store task failed: {e}")))?
}

/// The smallest run id (UUIDv7) that can be made at `at`: ids below it were made before.
fn first_id_at(at: Timestamp) -> RunId {
    RunId::from_millis(u64::try_from(at.timestamp_millis()).unwrap_or(0), 0)
}

/// Opens the store at `url` (`sqlite://…` or `postgres://…`), creating the SQLite file when
/// needed and applying the embedded migrations.
pub async fn open(url: &str) -> Result<Box<dyn Store>> {
    match url::backend_of(url) {
        Some(Backend::Sqlite) => Ok(Box::new(sqlite::SqliteStore::open(url).await?)),
        Some(Backend::Postgres) => Ok(Box::new(postgres::PgStore::open(url).await?)),
        None => Err(StoreError::BadUrl(redact_url(url))),
    }
}
