//! The typed configuration: what the rest of plantao reads. Plain data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use plantao_model::{Expr, Redactor, Severity, Text};

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
    /// By name.
    pub channels: Vec<Channel>,
    /// Every rule, from plantao.toml and the pipeline files, by name.
    pub alerts: Vec<AlertRule>,
    pub escalations: Vec<Escalation>,
    pub routing: Routing,
    /// The jobs plantao watches but does not run, by name.
    pub heartbeats: Vec<Heartbeat>,
    /// The endpoints plantao checks on an interval, by name.
    pub probes: Vec<Probe>,
    /// Words that, found in a stage's log, make a finding of its run.
    pub patterns: Vec<crate::patterns::Pattern>,
    pub pings: Pings,
    /// Who watches the watcher: a URL this node pings while it is healthy.
    pub self_heartbeat: Option<SelfHeartbeat>,
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

    pub fn heartbeat(&self, name: &str) -> Option<&Heartbeat> {
        self.heartbeats
            .binary_search_by(|h| h.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.heartbeats[i])
    }

    pub fn probe(&self, name: &str) -> Option<&Probe> {
        self.probes
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.probes[i])
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    pub fn escalation(&self, name: &str) -> Option<&Escalation> {
        self.escalations.iter().find(|e| e.name == name)
    }

    pub fn alert_rule(&self, name: &str) -> Option<&AlertRule> {
        self.alerts.iter().find(|r| r.name == name)
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

/// `[self_heartbeat]`: plantao pings `url` every `period` while it can write to its store, so
/// that a dead-man's switch elsewhere (another plantao, healthchecks.io) notices when it stops.
#[derive(Debug)]
pub struct SelfHeartbeat {
    pub url: Text,
    pub period: Duration,
    pub timeout: Duration,
}

/// `[pings]`: how the ping routes (`/ping/{key}/{name}`) take reports.
#[derive(Debug)]
pub struct Pings {
    /// The key in every ping URL, so that URLs cannot be guessed from a heartbeat's name; a
    /// heartbeat's own `ping_key` takes its place.
    pub key: Option<Text>,
    /// A ping's body is kept (as the run's log) up to this many bytes; the rest is cut, and
    /// the cut is marked.
    pub body_limit: usize,
}

/// A job plantao does not run but watches: it reports by pinging, and is late once its period
/// (or its cron schedule) has passed, down once the grace has passed too.
#[derive(Debug)]
pub struct Heartbeat {
    pub name: String,
    pub description: Option<String>,
    /// SHA-256 of its `[[heartbeats]]` table as written, in hex.
    pub definition_hash: String,
    pub expect: Expected,
    /// The zone of `schedule`, and of its daily rollups.
    pub timezone: Tz,
    /// How long after the expected time it is late before it is down.
    pub grace: Duration,
    /// A start must arrive within this of the expected time.
    pub start_deadline: Option<Duration>,
    /// A run (start to end) longer than this is too long; a start open longer, too.
    pub max_duration: Option<Duration>,
    /// A run that ends sooner than this is suspicious (too short).
    pub min_duration: Option<Duration>,
    /// Successes closer together than this are too often.
    pub min_interval: Option<Duration>,
    /// Rules whose firing alerts keep this heartbeat's alerts from being notified.
    pub depends_on: Vec<String>,
    pub tags: Vec<String>,
    /// Its own ping key, instead of `[pings] key`.
    pub ping_key: Option<Text>,
    pub sla: Option<Sla>,
    /// Pings over this many a minute (in bursts of a tenth, at least 5) are refused with 429;
    /// none by default.
    pub max_pings_per_minute: Option<u32>,
}

/// What a check promises over a window: uptime at least so many percent, p95 response time
/// under so many milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Sla {
    pub uptime: Option<f64>,
    pub p95_ms: Option<f64>,
    /// `24h`, `7d`, `30d` or `365d`.
    pub window: String,
}

impl Heartbeat {
    /// The key its ping URLs carry.
    pub fn key<'a>(&'a self, pings: &'a Pings) -> Option<&'a Text> {
        self.ping_key.as_ref().or(pings.key.as_ref())
    }
}

/// An active check on an interval: one request, connection, query or command, and conditions
/// its answer must meet.
#[derive(Debug)]
pub struct Probe {
    pub name: String,
    pub description: Option<String>,
    pub definition_hash: String,
    /// At least 1 s; each probe runs at a fixed offset within its interval, derived from its
    /// name, so that probes with one interval do not all run at once.
    pub every: Duration,
    /// How long one check may take; a check still going then fails.
    pub timeout: Duration,
    pub target: ProbeTarget,
    /// What the answer must meet; an `http` target keeps its own in its [`HttpProbe`]'s step.
    pub expect: Vec<Expr>,
    /// Failures in a row before it is down.
    pub failure_threshold: u32,
    /// Successes in a row before a down probe is up again.
    pub success_threshold: u32,
    pub depends_on: Vec<String>,
    pub tags: Vec<String>,
    /// The zone of its daily rollups.
    pub timezone: Tz,
    pub sla: Option<Sla>,
}

#[derive(Debug)]
pub enum ProbeTarget {
    Http(HttpProbe),
    /// `host:port` to connect to.
    Tcp(String),
    Sql(SqlStep),
    /// Run with `sh -c`.
    Command(Text),
}

impl ProbeTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeTarget::Http(_) => "http",
            ProbeTarget::Tcp(_) => "tcp",
            ProbeTarget::Sql(_) => "sql",
            ProbeTarget::Command(_) => "command",
        }
    }
}

/// An HTTP probe's request and how it treats TLS and redirects.
#[derive(Debug)]
pub struct HttpProbe {
    /// The request, its timeout and its conditions.
    pub step: HttpStep,
    /// Check the server's certificate against the system's trusted roots (off: a self-signed
    /// certificate is accepted, and `cert_days_left` still reads it).
    pub verify_tls: bool,
    pub follow_redirects: bool,
}

/// When a heartbeat's next success is expected.
#[derive(Debug)]
pub enum Expected {
    /// Within this of the last success.
    Period(Duration),
    /// At the schedule's next time after the last success.
    Schedule(Box<CronSchedule>),
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
    /// How often window and `stuck` alert rules, pending alerts and reminders are evaluated
    /// (read at start).
    pub evaluate_every: Duration,
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
    /// Rules whose firing alerts keep this pipeline's alerts from being notified.
    pub depends_on: Vec<String>,
    /// How many steps of a graph (`needs`) may run at once.
    pub max_parallel_steps: usize,
    pub params: BTreeMap<String, Param>,
    pub env: Vec<(String, Text)>,
    pub working_dir: Option<PathBuf>,
    /// Files whose contents decide whether a run has anything to do.
    pub inputs: Option<Inputs>,
    pub tags: Vec<String>,
    pub metrics: Vec<Metric>,
    /// How its counters' and metrics' trends are judged.
    pub trends: Trends,
    pub steps: Vec<Step>,
    pub finally: Vec<Step>,
}

/// A pipeline's `[trends]`: over how many days or runs its counters and derived metrics are
/// fitted, how much change counts as a change, and which way is better for which of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Trends {
    pub over: TrendSpan,
    /// Percent of the mean: a fitted change over the span within it is stable.
    pub tolerance_percent: f64,
    /// Metric names and `step.counter` names.
    pub higher_is_better: Vec<String>,
    pub lower_is_better: Vec<String>,
}

impl Default for Trends {
    fn default() -> Self {
        Trends {
            over: TrendSpan::Days(30),
            tolerance_percent: 5.0,
            higher_is_better: Vec::new(),
            lower_is_better: Vec::new(),
        }
    }
}

/// What a trend's values are: one per local day (its runs' counters summed, from the daily
/// rollups), or one per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrendSpan {
    /// The last N days, today included.
    Days(u32),
    /// The last N runs that succeeded or ended partial.
    Runs(u32),
}

impl TrendSpan {
    /// How many days a trend may be fitted over (`[trends] days`, `?days=`).
    pub const DAYS: std::ops::RangeInclusive<u32> = 3..=366;
    /// How many runs a trend may be fitted over (`[trends] runs`, `?runs=`).
    pub const RUNS: std::ops::RangeInclusive<u32> = 3..=1000;
}

/// A pipeline's `inputs`: when every file they match is unchanged since its last success, a
/// run is skipped (`inputs_unchanged`).
#[derive(Clone, Debug)]
pub struct Inputs {
    /// What relative patterns start from: the pipeline's `working_dir`, else its file's folder.
    pub base: PathBuf,
    /// As written.
    pub patterns: Vec<String>,
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

/// Where notifications go.
#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    /// The language of its messages.
    pub language: Language,
    /// How long one delivery attempt may take.
    pub timeout: Duration,
    /// A notification not delivered this long after it was written is given up (`failed`).
    pub max_age: Duration,
    /// Its notifications' text (a minijinja template); a rule's own template comes first.
    pub template: Option<String>,
}

#[derive(Debug)]
pub enum ChannelKind {
    /// A JSON POST, signed with HMAC-SHA256 when `secret` is set.
    Webhook {
        url: Text,
        secret: Option<Text>,
        headers: Vec<(String, Text)>,
    },
    /// A Slack incoming webhook.
    Slack { url: Text },
    /// WhatsApp through the Evolution API: `POST {url}/message/sendText/{instance}`.
    Whatsapp {
        url: Text,
        instance: Text,
        api_key: Text,
        to: Text,
    },
    /// The Telegram Bot API: `POST {url}/bot{token}/sendMessage`.
    Telegram {
        url: Text,
        token: Text,
        chat_id: Text,
    },
    /// A shell command (`sh -c`) given the notification as JSON on its standard input.
    Command { run: Text },
    /// E-mail over SMTP: a plain-text and an HTML part.
    Email {
        host: Text,
        port: u16,
        tls: SmtpTls,
        /// User name and password.
        credentials: Option<(Text, Text)>,
        from: Text,
        to: Vec<Text>,
    },
}

/// Who hears of a firing alert, and when: each level's channels once the alert has fired for
/// the level's `after`, until someone acknowledges it.
#[derive(Debug)]
pub struct Escalation {
    pub name: String,
    /// In the order they come, each `after` longer than the one before.
    pub levels: Vec<EscalationLevel>,
    /// The last level again every so often, until acknowledged.
    pub repeat: Option<Duration>,
}

#[derive(Debug)]
pub struct EscalationLevel {
    /// From when the alert fired.
    pub after: Duration,
    pub channels: Vec<String>,
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: for a relay on the same machine or network only.
    None,
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Whatsapp { .. } => "whatsapp",
            ChannelKind::Telegram { .. } => "telegram",
            ChannelKind::Command { .. } => "command",
            ChannelKind::Email { .. } => "email",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    En,
    PtBr,
}

impl Language {
    /// As written in the configuration: `en`, `pt-BR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::PtBr => "pt-BR",
        }
    }
}

/// A condition watched continuously, and what to do when it holds.
#[derive(Debug)]
pub struct AlertRule {
    pub name: String,
    /// The pipeline it watches; every pipeline when none is named.
    pub pipeline: Option<String>,
    pub condition: Condition,
    pub severity: Severity,
    /// How long the condition must hold before the alert fires (`for`).
    pub hold: Duration,
    pub labels: BTreeMap<String, String>,
    /// What the notification says; a default text per kind when none is given.
    pub message: Option<String>,
    /// The suggested action shown with the alert.
    pub runbook: Option<String>,
    pub channels: Vec<String>,
    /// The escalation policy that names the channels instead, level by level.
    pub escalation: Option<String>,
    /// Reminders of a firing, unacknowledged alert, on every channel; none when unset.
    pub repeat_interval: Option<Duration>,
    /// The named number the condition compares against (`threshold`); an override stored at
    /// runtime (`PUT /api/alert-config`) takes its place.
    pub threshold: Option<f64>,
    /// What makes its alerts one group when grouped; `[routing] group_by` when unset.
    pub group_by: Option<Vec<String>>,
    /// Rules whose firing alerts keep this rule's alerts from being notified.
    pub depends_on: Vec<String>,
    /// The whole notification's text (a minijinja template); the channel's or the default one
    /// when unset.
    pub template: Option<String>,
}

/// `[routing]`: where alerts go when their rule names no channels, and how warnings are grouped.
#[derive(Debug)]
pub struct Routing {
    /// For warning and critical alerts of rules that name neither `channels` nor `escalation`.
    pub channels: Vec<String>,
    /// For info alerts of rules that name no channels: none by default (the dashboard only).
    pub info_channels: Vec<String>,
    /// How long the first alert of a group waits for others to join it.
    pub group_wait: Duration,
    /// At most one message per group this often.
    pub group_interval: Duration,
    /// The fields that make a group: `rule`, `pipeline`, `severity` or label names.
    pub group_by: Vec<String>,
}

impl Default for Routing {
    fn default() -> Routing {
        Routing {
            channels: Vec::new(),
            info_channels: Vec::new(),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            group_by: vec!["rule".to_owned()],
        }
    }
}

impl AlertRule {
    /// Whether the rule is looked at when a run ends (rather than on the evaluation period).
    pub fn on_run_end(&self) -> bool {
        matches!(
            self.condition,
            Condition::RunFailed
                | Condition::StageFailed { .. }
                | Condition::Duration { .. }
                | Condition::Missed
                | Condition::Pattern { .. }
        )
    }
}

#[derive(Debug)]
pub enum Condition {
    /// A run ends failed, timed out or interrupted; resolved by the next success.
    RunFailed,
    /// The named stage fails or times out; resolved when it next succeeds.
    StageFailed { stage: String },
    /// The run (or the named stage) took longer than its limit.
    Duration {
        stage: Option<String>,
        limit: DurationLimit,
    },
    /// A run is queued or running for longer than `after`.
    Stuck { after: Duration },
    /// A tick was recorded as skipped for any reason but `paused`; resolved by the next tick
    /// that runs.
    Missed,
    /// The store refuses this node's writes (a full disk, a read-only database).
    Storage,
    /// The share of finished runs that failed over the window is above `threshold` percent.
    FailureRate { window: AlertWindow },
    /// Any expression over the window's summed counters, derived metrics and run counts.
    Expr { when: Expr, window: AlertWindow },
    /// A heartbeat (the named one, or each) is in one of `events`; resolved by the next
    /// success that is not.
    Heartbeat {
        check: Option<String>,
        events: Vec<CheckEvent>,
    },
    /// A probe (the named one, or each) is down: its last `failure_threshold` checks failed.
    Probe { check: Option<String> },
    /// A run's logs matched the named `[[patterns]]` entry (or any); resolved by the next run
    /// whose logs do not.
    Pattern { pattern: Option<String> },
}

/// What a heartbeat rule fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckEvent {
    /// Past its expected time, within the grace.
    Late,
    /// Past the grace, or its last report was a failure.
    Down,
    /// Its last run ended sooner than `min_duration`.
    TooShort,
    /// Its last run took longer than `max_duration`, or a start is open longer than that.
    TooLong,
    /// Its last two successes came closer together than `min_interval`.
    TooOften,
    /// No start arrived within `start_deadline` of the expected time.
    StartMissing,
}

impl CheckEvent {
    pub const ALL: &'static [CheckEvent] = &[
        CheckEvent::Late,
        CheckEvent::Down,
        CheckEvent::TooShort,
        CheckEvent::TooLong,
        CheckEvent::TooOften,
        CheckEvent::StartMissing,
    ];

    /// As written in a rule's `events` and in alert labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckEvent::Late => "late",
            CheckEvent::Down => "down",
            CheckEvent::TooShort => "too_short",
            CheckEvent::TooLong => "too_long",
            CheckEvent::TooOften => "too_often",
            CheckEvent::StartMissing => "start_missing",
        }
    }
}

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::RunFailed => "run_failed",
            Condition::StageFailed { .. } => "stage_failed",
            Condition::Duration { .. } => "duration",
            Condition::Stuck { .. } => "stuck",
            Condition::Missed => "missed",
            Condition::Storage => "storage",
            Condition::FailureRate { .. } => "failure_rate",
            Condition::Expr { .. } => "expr",
            Condition::Heartbeat { .. } => "heartbeat",
            Condition::Probe { .. } => "probe",
            Condition::Pattern { .. } => "pattern",
        }
    }
}

/// How long is too long for a `duration` rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DurationLimit {
    /// A fixed limit.
    Max(Duration),
    /// Slower than `factor` × the p95 of the last `last` successful runs ("slower than usual").
    Usual { factor: f64, last: u32 },
}

/// The stretch of history a window rule reads (from the rollups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertWindow {
    /// The calendar day in the pipeline's zone.
    Today,
    Hours24,
    Days7,
}
