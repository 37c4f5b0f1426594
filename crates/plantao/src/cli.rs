use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use plantao_model::{Role, RunStatus};

/// plantao: runs your scheduled pipelines and records every run, with its stages, counters
/// and durations.
#[derive(Debug, Parser)]
#[command(name = "plantao", version)]
pub struct Cli {
    /// The main configuration file; pipelines are read from the `pipelines/` folder beside it.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "PLANTAO_CONFIG",
        default_value = "plantao.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

/// The shells `plantao completions` writes for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// How `plantao report daily|weekly|monthly` writes (`report sla` has no HTML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeriodicFormat {
    Md,
    Json,
    /// A standalone page.
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[arg(long, value_enum, default_value_t = PeriodicFormat::Md)]
    pub format: PeriodicFormat,
    /// Write it to this file instead of printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also send it through this channel, as text for a chat (a line per row, no tables); a
    /// channel that refuses it keeps it in the outbox, and `plantao serve` retries it.
    #[arg(long, value_name = "CHANNEL")]
    pub send: Option<String>,
    /// en or pt-BR [default: the channel's language with --send, else en].
    #[arg(long, value_parser = parse_language)]
    pub language: Option<plantao_config::Language>,
}

fn parse_language(text: &str) -> Result<plantao_config::Language, String> {
    match text {
        "en" => Ok(plantao_config::Language::En),
        "pt-BR" | "pt-br" | "pt" => Ok(plantao_config::Language::PtBr),
        other => Err(format!("`{other}` is not a language here: en or pt-BR")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The last 24 hours: per pipeline runs, success rate, durations (p50, p95, max), counters,
    /// derived metrics and the most frequent errors; per check uptime and incidents; the SLAs;
    /// alerts fired, acknowledged and the mean time to acknowledge.
    Daily(ReportArgs),
    /// The same over the last 7 days (e.g. as a pipeline's step every Friday at 17:00).
    Weekly(ReportArgs),
    /// The same over the last 30 calendar days.
    Monthly(ReportArgs),
    /// Whether each check with an `sla` kept it: uptime and p95 against the targets.
    Sla {
        /// 24h, 7d, 30d or 365d; each check's own SLA window when left out.
        #[arg(long)]
        window: Option<String>,
        #[arg(long, value_enum, default_value_t = crate::commands::checks::ReportFormat::Md)]
        format: crate::commands::checks::ReportFormat,
        /// Write it to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// The heartbeat's name.
    pub slug: String,
    /// A start ping (a run begins).
    #[arg(long, conflicts_with_all = ["fail", "log", "exit"])]
    pub start: bool,
    /// A failure ping.
    #[arg(long, conflicts_with_all = ["log", "exit"])]
    pub fail: bool,
    /// A log ping: its body is kept, the state does not change.
    #[arg(long, conflicts_with = "exit")]
    pub log: bool,
    /// An exit status: 0 is a success, anything else a failure.
    #[arg(long, value_name = "STATUS")]
    pub exit: Option<u8>,
    /// The server, when not the configuration's `server.listen` (e.g. http://ops:8077).
    #[arg(long, env = "PLANTAO_URL")]
    pub url: Option<String>,
    /// The ping key, when not the configuration's.
    #[arg(long, env = "PLANTAO_PING_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The ping's body, kept as the run's log.
    #[arg(long, conflicts_with = "command")]
    pub body: Option<String>,
    /// The command to run and report on.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and every pipeline; print `ok: N pipelines` or every problem.
    Validate,
    /// Run the daemon: pipelines on their schedules, queued runs, until SIGTERM or Ctrl-C
    /// (SIGHUP reloads the configuration).
    Serve {
        /// Log lines as JSON instead of text.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Run a pipeline now, here, and show each stage as it goes.
    Run(RunArgs),
    /// One run per day, week or month of a span of dates (trigger `backfill`), here and now;
    /// steps get `$PLANTAO_PERIOD_START` and `$PLANTAO_PERIOD_END`. Periods that succeeded
    /// before are skipped, so an interrupted backfill resumes where it stopped.
    Backfill(BackfillArgs),
    /// An online, consistent copy of the database (SQLite: VACUUM INTO; PostgreSQL: pg_dump),
    /// checked after writing; safe while `serve` runs.
    Backup {
        /// The folder to write it in [default: `backups/` beside the configuration file].
        #[arg(long)]
        to: Option<PathBuf>,
        /// Remove the backups in that folder taken longer ago than this (e.g. 90d).
        #[arg(long, value_parser = parse_wait)]
        keep: Option<std::time::Duration>,
    },
    /// Put a backup back: into an empty database, or over a full one with --force. Stop
    /// `serve` first.
    Restore {
        file: PathBuf,
        /// Replace a database that holds pipelines or runs.
        #[arg(long)]
        force: bool,
    },
    /// Delete finished runs (stages, logs, counters, outputs), resolved alerts and finished
    /// notifications older than a cutoff; rollups stay. The daemon also does it by `retention`.
    Prune {
        /// The cutoff's age (e.g. 90d) [default: `storage.retention`].
        #[arg(long, value_parser = parse_wait)]
        older_than: Option<std::time::Duration>,
        /// Count what would go, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check every prerequisite: the config, the database (reachable, its version, migrations
    /// at head, its clock), free disk, each connection, the channels, the listen address. Each
    /// failure comes with its fix; the exit is non-zero when anything fails.
    Doctor {
        /// Also send each channel a test message.
        #[arg(long)]
        send_test: bool,
    },
    /// Queue a run of a pipeline for the daemon (`plantao serve`) to run.
    Trigger {
        pipeline: String,
        /// A parameter, as NAME=VALUE.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Run even when the pipeline's `inputs` are unchanged since its last success.
        #[arg(long)]
        force: bool,
    },
    /// Pause a pipeline (its ticks are recorded as skipped, reason `paused`) or a check (nothing
    /// fires for it) until `resume`.
    Pause {
        /// A pipeline's, heartbeat's or probe's name.
        pipeline: String,
    },
    /// Resume a paused pipeline or check.
    Resume {
        /// A pipeline's, heartbeat's or probe's name.
        pipeline: String,
    },
    /// Nodes and their leases, the queue, each pipeline's next tick and last run.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// What runs added up to today, over 24 hours and 7 days: counts, success rate, durations,
    /// and for one pipeline its counters and derived metrics. Read from the rollups, which
    /// outlive pruning.
    Stats {
        /// One pipeline, with its counters and metrics; all pipelines when left out.
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The next times a pipeline runs, in its time zone and in UTC.
    Next {
        pipeline: String,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 5)]
        count: usize,
    },
    /// List recorded runs, newest first.
    Runs(RunsArgs),
    /// Show one run: stages, attempts, counters, derived metrics, resources, log tails.
    Show {
        /// The run's id (as `plantao runs` lists it).
        run: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the whole stored log of a run's stages; `-f` follows a running one.
    Logs {
        run: String,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Keep printing as the run goes on, until it ends (a running stage's log is recorded
        /// every second).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// API tokens: `create` prints a new one once, `list` shows names and roles, `revoke`
    /// stops one working.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// A pipeline's state (watermarks and the like): steps read it as `$PLANTAO_STATE_<KEY>`
    /// and set it with `state.KEY=value` lines in `$PLANTAO_OUTPUT`, kept when the run succeeds.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Who did what through the API or these commands: triggers, cancels, retries, pauses,
    /// tokens. Newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Alerts: the active ones (pending and firing) by default.
    Alerts {
        #[command(subcommand)]
        command: Option<AlertsCommand>,
        /// Also list the dismissed ones.
        #[arg(long)]
        dismissed: bool,
        #[arg(long)]
        json: bool,
    },
    /// Silences: alerts matching them are recorded but not notified while they are in force.
    Silence {
        #[command(subcommand)]
        command: SilenceCommand,
    },
    /// Notification channels.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Report to a heartbeat: one ping, or `-- COMMAND…` run between a start ping and a ping of
    /// its exit status (with its output's tail as the log); exits with the command's status.
    Ping(PingArgs),
    /// Each heartbeat's and probe's state (new, up, late, down, paused), when it is due, its
    /// last ping or check, and what is wrong.
    Checks {
        #[arg(long)]
        json: bool,
    },
    /// Reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Ask the running server (on `server.listen`) for its health: exit 0 when ok or degraded,
    /// 1 when down or not answering. For systemd and container health checks.
    Healthcheck {
        /// The server's address as HOST:PORT, when not the configuration's `server.listen`.
        #[arg(long)]
        address: Option<String>,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (committed as docs/openapi.json).
    Openapi,
    /// Print a shell's completion script, e.g. `plantao completions bash >
    /// /etc/bash_completion.d/plantao`, or `plantao completions zsh > ~/.zfunc/_plantao`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (`plantao man | man -l -`), or write one page per command into a
    /// folder (plantao.1, plantao-serve.1, plantao-token-create.1…) for `/usr/share/man/man1`.
    Man {
        /// The folder to write the pages in.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Measure plantao on this machine (figures for docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline to run.
    pub pipeline: String,
    /// A parameter, as NAME=VALUE; steps read it as `$PLANTAO_PARAM_<NAME>`.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Do not run this step (repeatable).
    #[arg(long, value_name = "STEP")]
    pub skip: Vec<String>,
    /// Run only this step (repeatable); the others are skipped.
    #[arg(long, value_name = "STEP")]
    pub only: Vec<String>,
    /// Print what would run, and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run even when the pipeline's `inputs` are unchanged since its last success.
    #[arg(long)]
    pub force: bool,
    /// Print the finished run as JSON instead of progress and a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    pub pipeline: String,
    /// The first day (YYYY-MM-DD).
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// The last day (YYYY-MM-DD), included.
    #[arg(long)]
    pub to: chrono::NaiveDate,
    /// day, week (Monday to Sunday) or month; the first and last periods are cut to the span.
    #[arg(long, default_value = "day")]
    pub every: plantao_engine::backfill::Every,
    /// Periods run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Wait between starting one period and the next (e.g. 5s), to spare a busy source.
    #[arg(long, default_value = "0s", value_parser = parse_wait)]
    pub sleep: std::time::Duration,
    /// Run the periods that succeeded before, too.
    #[arg(long)]
    pub ignore_checkpoint: bool,
    /// List the periods and which would be skipped, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A parameter for every run, as NAME=VALUE.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    plantao_config::parse_duration(text)
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long)]
    pub pipeline: Option<String>,
    #[arg(long, value_parser = parse_status)]
    pub status: Option<RunStatus>,
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Every key of a pipeline's state, with when and by which run it was set.
    List {
        pipeline: String,
        #[arg(long)]
        json: bool,
    },
    /// One key's value, printed as it is (for scripts).
    Get { pipeline: String, key: String },
    /// Sets a key by hand (audited), e.g. to move a watermark back and reprocess.
    Set {
        pipeline: String,
        key: String,
        value: String,
    },
    /// Removes a key (audited).
    Unset { pipeline: String, key: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (only this once).
    Create {
        /// How it shows in `token list` and the audit log.
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (also runs, cancels, retries, pauses), admin (also tokens
        /// and the audit log).
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List tokens: names, roles, creation times (never the secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop a token working.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Every alert, resolved ones included, newest first.
    History {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an alert: its reminders stop.
    Ack { id: String },
    /// Acknowledge an alert and hide it from the active list until it resolves and fires again.
    Dismiss { id: String },
    /// Evaluate every rule now and print what each says (fires, pending, firing, resolves, ok,
    /// no data). Records and notifies nothing unless --notify.
    Check {
        /// Record what the evaluation decided and deliver its notifications.
        #[arg(long)]
        notify: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct SilenceAdd {
    #[arg(required = true)]
    pub matchers: Vec<String>,
    /// When it starts (default now): 2026-11-23 02:00 in the configuration's time zone, or
    /// RFC 3339.
    #[arg(long)]
    pub start: Option<String>,
    /// When it ends; or give --duration.
    #[arg(long, conflicts_with = "duration")]
    pub end: Option<String>,
    /// How long from its start: 2h, 90m.
    #[arg(long)]
    pub duration: Option<String>,
    /// Why (required): the others will read it.
    #[arg(long)]
    pub comment: String,
    /// Who (default: $USER).
    #[arg(long)]
    pub author: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts every MATCHER matches (`pipeline=billing`, `rule=db-*`,
    /// `severity!=critical`), now or from --start, until --end or for --duration.
    Add(SilenceAdd),
    /// The silences in force and to come.
    List {
        /// Also the ones that have ended.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// End a silence now (one still to come never starts).
    Expire { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Send a test message through a channel now; exit 0 when it was accepted.
    Test { name: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: plantao_model::ParseEnumError| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a documented example: `plantao config example > plantao.toml`.
    Example {
        /// Print an example pipeline file instead (for `pipelines/NAME.toml`).
        #[arg(long)]
        pipeline: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The HTTP API: the store filled with history, then `wrk` (Debian package `wrk`) on
    /// /api/metrics/today, /api/metrics/history, /api/runs and /api/runs/{id}.
    Api {
        /// Runs to record first.
        #[arg(long, default_value_t = 1_000_000)]
        runs: usize,
        #[arg(long, default_value_t = 50)]
        pipelines: usize,
        /// Over how many days before now.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// How long wrk asks each route.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// wrk's open connections.
        #[arg(long, default_value_t = 16)]
        connections: u32,
        /// Measure on this PostgreSQL database instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// Only the routes containing this text (e.g. `runs?`).
        #[arg(long)]
        only: Option<String>,
        /// Keep the SQLite store in this file: seeded when it holds no runs, used as it is on
        /// later runs of the benchmark.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Pings: heartbeats pinged over loopback by `wrk`, every ping persisted (checked after).
    Pings {
        /// Heartbeats, pinged in turn.
        #[arg(long, default_value_t = 100)]
        checks: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// wrk's open connections.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Measure on this PostgreSQL database instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Probes: a `plantao serve` with many HTTP probes against a loopback server; its CPU share
    /// and resident memory.
    Probes {
        #[arg(long, default_value_t = 10_000)]
        probes: usize,
        /// Each probe's interval, in seconds.
        #[arg(long, default_value_t = 60)]
        every: u32,
        /// How long CPU is measured, after one whole interval.
        #[arg(long, default_value_t = 120)]
        seconds: u32,
    },
    /// Alerting: one evaluation cycle of many rules on a store of many runs (read from the
    /// rollups); from a failing run's end to a loopback webhook receiving the alert; and
    /// notifications delivered per second.
    Alerts {
        #[arg(long, default_value_t = 1000)]
        rules: usize,
        /// Runs in the store the rules are evaluated on.
        #[arg(long, default_value_t = 1_000_000)]
        runs: usize,
        #[arg(long, default_value_t = 50)]
        pipelines: usize,
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Failing runs whose alert's way to the webhook is timed.
        #[arg(long, default_value_t = 100)]
        failures: usize,
        /// Notifications delivered for the throughput.
        #[arg(long, default_value_t = 10_000)]
        notifications: usize,
        /// Measure on this PostgreSQL database instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
        /// Keep the evaluation's SQLite store in this file (seeded when empty, reused after; the
        /// same layout as `bench api --file`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Scheduling lag: a pipeline due every second, from the due instant to its step's own
    /// process recording the time it started.
    Lag {
        /// How many seconds to measure.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Also record this many runs past the retention first, so that the daemon prunes them
        /// while the lag is measured.
        #[arg(long, default_value_t = 0)]
        old_runs: usize,
    },
    /// Failover: two `plantao serve` nodes on PostgreSQL; the one holding a run is killed with
    /// SIGKILL; the time until the other closes the run.
    Failover {
        /// The PostgreSQL database to use (runs are written there).
        #[arg(long, value_name = "URL")]
        postgres: String,
        /// How many kills to time (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Throughput: trivial runs queued at once, executed by the daemon with history persisted.
    Throughput {
        /// How many runs.
        #[arg(long, default_value_t = 2000)]
        runs: usize,
        /// Runs at once on the node.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
        /// Measure on this PostgreSQL database instead of SQLite.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Bursts: many pipelines due on the same second; when every tick is a run, and when the
    /// last step process runs, against starting as many processes bare.
    Burst {
        #[arg(long, default_value_t = 1000)]
        pipelines: usize,
    },
    /// Spread: many pipelines every minute, each at its own moment (jitter); the lag from each
    /// due instant to its step's process running.
    Spread {
        #[arg(long, default_value_t = 10_000)]
        pipelines: usize,
        /// How many seconds to measure.
        #[arg(long, default_value_t = 120)]
        seconds: u64,
    },
    /// Memory: resident memory of `plantao serve` idle with many pipelines, then after it
    /// executed many trivial runs.
    Memory {
        #[arg(long, default_value_t = 100)]
        pipelines: usize,
        #[arg(long, default_value_t = 100_000)]
        runs: usize,
    },
    /// Start-up: from starting `plantao serve` with many pipelines to it serving.
    Startup {
        #[arg(long, default_value_t = 100)]
        pipelines: usize,
        /// How many starts to time (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Per-step overhead: a pipeline of trivial sequential steps, against spawning the same
    /// program from a shell loop.
    Steps {
        /// How many runs to time (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Steps per run.
        #[arg(long, default_value_t = 40)]
        steps: usize,
        /// Also measure on this PostgreSQL database (history is written there).
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    text.parse()
        .map_err(|e: plantao_model::ParseEnumError| e.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
