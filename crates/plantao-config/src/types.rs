//! The typed configuration: what the rest of plantao reads. Plain data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use plantao_model::{Expr, Redactor, Text};

use crate::cron::CronSchedule;

#[derive(Debug)]
pub struct Config {
    /// The `plantao.toml` this was read from.
    pub file: PathBuf,
    pub server: Server,
    pub storage: Storage,
    pub defaults: Defaults,
    pub engine: Engine,
    pub maintenance: Vec<Maintenance>,
    pub connections: BTreeMap<String, Connection>,
    /// By name.
    pub pipelines: Vec<Pipeline>,
    /// Every value that came from the environment, to hide wherever text is printed.
    pub redactor: Redactor,
}

impl Config {
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.pipelines[i])
    }

    /// What to say when `name` is not a pipeline: which ones there are.
    pub fn no_such_pipeline(&self, name: &str) -> String {
        let known: Vec<&str> = self.pipelines.iter().map(|p| p.name.as_str()).collect();
        format!(
            "there is no pipeline `{name}`; the pipelines are: {}",
            if known.is_empty() {
                "(none: add files to the pipelines/ folder)".to_owned()
            } else {
                known.join(", ")
            }
        )
    }
}

#[derive(Debug)]
pub struct Server {
    pub listen: SocketAddr,
    /// GET requests need no token (writes still do).
    pub public_read: bool,
    /// Writes allowed per minute to each token and to each client address (bursts of a tenth
    /// of it, at least 5); more get 429 with Retry-After.
    pub writes_per_minute: u32,
}

#[derive(Debug)]
pub struct Storage {
    /// `sqlite://…` (a relative path is taken from the config file's folder) or `postgres://…`.
    pub url: Text,
    /// Raw runs queued longer ago than this are pruned; rollups are kept forever.
    pub retention: Duration,
}

#[derive(Debug)]
pub struct Defaults {
    pub timezone: Tz,
}

/// How `plantao serve` executes runs.
#[derive(Debug)]
pub struct Engine {
    /// Runs executing at once on this node, all pipelines together.
    pub max_concurrent_runs: usize,
    /// On SIGTERM: how long running steps may take to finish before they are stopped.
    pub shutdown_grace: Duration,
}

/// A period when the named pipelines (all, when none is named) do not run: their ticks are
/// recorded as skipped, reason `maintenance`.
#[derive(Debug)]
pub struct Maintenance {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub pipelines: Vec<String>,
    pub reason: Option<String>,
}

impl Maintenance {
    pub fn covers(&self, pipeline: &str, at: DateTime<Utc>) -> bool {
        at >= self.start
            && at < self.end
            && (self.pipelines.is_empty() || self.pipelines.iter().any(|p| p == pipeline))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionKind {
    Postgres,
    Mysql,
    Sqlite,
}

#[derive(Debug)]
pub struct Connection {
    pub kind: ConnectionKind,
    pub url: Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    Skip,
    Queue,
    Allow,
    Replace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catchup {
    None,
    Latest,
    All,
}

#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    /// SHA-256 of the file as written (templates, not resolved secrets), in hex.
    pub definition_hash: String,
    pub description: Option<String>,
    pub schedules: Vec<CronSchedule>,
    pub every: Option<Duration>,
    /// A fixed offset added to every tick, derived from the pipeline's name and at most this.
    pub jitter: Option<Duration>,
    /// Ticks outside this daily window (in `timezone`) do not happen; it may wrap midnight.
    pub between: Option<(NaiveTime, NaiveTime)>,
    pub timezone: Tz,
    pub timeout: Option<Duration>,
    pub concurrency: Concurrency,
    pub catchup: Catchup,
    /// With `concurrency = "queue"`: how many runs may wait.
    pub queue_limit: u32,
    /// With `concurrency = "allow"`: how many runs at once.
    pub max_concurrent: u32,
    /// With `catchup = "all"`: how many missed ticks run.
    pub catchup_limit: u32,
    /// Queue a new run when a run is interrupted (its node died).
    pub retry_interrupted: bool,
    /// Pipelines queued when a run succeeds, or fails (trigger `chained`).
    pub on_success: Vec<String>,
    pub on_failure: Vec<String>,
    /// How many steps of a graph (`needs`) may run at once.
    pub max_parallel_steps: usize,
    pub params: BTreeMap<String, Param>,
    pub env: Vec<(String, Text)>,
    pub working_dir: Option<PathBuf>,
    pub tags: Vec<String>,
    pub metrics: Vec<Metric>,
    pub steps: Vec<Step>,
    pub finally: Vec<Step>,
}

#[derive(Debug)]
pub struct Param {
    pub default: Option<Text>,
    pub description: Option<String>,
    pub required: bool,
}

#[derive(Debug)]
pub struct Metric {
    pub name: String,
    pub expr: Expr,
}

#[derive(Debug)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub needs: Vec<String>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_backoff: Backoff,
    pub continue_on_error: bool,
    pub env: Vec<(String, Text)>,
    pub working_dir: Option<PathBuf>,
}

#[derive(Debug)]
pub enum Action {
    /// Run with `sh -c`.
    Shell(Text),
    /// Run directly, no shell.
    Argv(Vec<Text>),
    Http(HttpStep),
    Sql(SqlStep),
}

#[derive(Debug)]
pub struct HttpStep {
    pub method: String,
    pub url: Text,
    pub headers: Vec<(String, Text)>,
    pub body: Option<Text>,
    pub timeout: Duration,
    /// Conditions over `status`, `json`, `body`, `headers` and `duration_ms`; all must hold.
    pub expect: Vec<Expr>,
}

#[derive(Debug)]
pub struct SqlStep {
    pub connection: String,
    pub query: Text,
}

/// Waiting between attempts: `initial × factor^(attempt-1)`, at most `max`, with jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
        }
    }
}
