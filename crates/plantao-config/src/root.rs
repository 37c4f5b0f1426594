//! `plantao.toml` and the loading of everything beside it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use plantao_model::{Redactor, Text};
use toml::de::DeTable;

use crate::alerts::{self, Names, RuleRead};
use crate::chains::{Refs, check_cycles, check_names};
use crate::channels;
use crate::diag::{Diagnostic, Diagnostics, Source, file_diagnostic};
use crate::maintenance;
use crate::pipeline::{PipelineContext, read_pipeline};
use crate::probes;
use crate::reader::{self, Cx, Table};
use crate::types::{
    AlertRule, Channel, Condition, Config, Connection, ConnectionKind, Defaults, Engine,
    Escalation, Heartbeat, Maintenance, Pings, Routing, Server, Storage,
};
use crate::{Connections, resolve, tz};
use crate::{checks, heartbeats};

pub(crate) const ROOT_KEYS: &[&str] = &[
    "server",
    "storage",
    "defaults",
    "engine",
    "maintenance",
    "connections",
    "channels",
    "escalation",
    "alerts",
    "routing",
    "heartbeats",
    "pings",
    "self_heartbeat",
    "probes",
    "patterns",
];
pub(crate) const ROUTING_KEYS: &[&str] = &[
    "channels",
    "info_channels",
    "group_wait",
    "group_interval",
    "group_by",
];
pub(crate) const SERVER_KEYS: &[&str] = &["listen", "public_read", "writes_per_minute"];
pub(crate) const STORAGE_KEYS: &[&str] = &["url", "retention"];
pub(crate) const DEFAULTS_KEYS: &[&str] = &["timezone"];
pub(crate) const ENGINE_KEYS: &[&str] =
    &["max_concurrent_runs", "shutdown_grace", "evaluate_every"];
pub(crate) const CONNECTION_KEYS: &[&str] = &["url"];
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8077";

/// Reads `path` and the `pipelines/` folder beside it. `env` looks up environment variables
/// (tests pass their own; the binary passes `std::env::var`).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Diagnostics> {
    let mut diags = Vec::new();
    let mut redactor = Redactor::default();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let help = if e.kind() == std::io::ErrorKind::NotFound {
                "pass --config PATH or set PLANTAO_CONFIG; `plantao config example > plantao.toml` writes a documented one"
            } else {
                "check the file's permissions"
            };
            return Err(Diagnostics(vec![file_diagnostic(
                path,
                format!("cannot read the config file: {e}"),
                Some(help.into()),
            )]));
        }
    };
    // "" when the file is in the current folder, so paths print as `pipelines/x.toml`.
    let dir = path.parent().unwrap_or(Path::new("")).to_owned();
    let rules_source = Source::new(path, text.clone());
    let root_source = Source::new(path, text);
    let mut maintenance_refs = Vec::new();
    let mut pattern_refs = Vec::new();
    let root = {
        let mut cx = Cx {
            source: &root_source,
            diags: &mut diags,
            env,
            redactor: &mut redactor,
        };
        parse_file(&mut cx).map(|t| {
            read_root(
                &mut cx,
                Table::new(t.get_ref(), t.span()),
                &dir,
                &mut maintenance_refs,
                &mut pattern_refs,
            )
        })
    };
    by_position(&mut diags, 0);
    let Root {
        server,
        storage,
        defaults,
        engine,
        maintenance,
        connections,
        channels,
        escalations,
        routing,
        names: alert_names,
        rules: root_rules,
        mut heartbeats,
        pings,
        self_heartbeat,
        heartbeat_reads,
        probe_reads,
        patterns,
    } = match root {
        Some(Some(r)) => r,
        _ => Root {
            server: default_server(),
            storage: default_storage(&dir),
            defaults: Defaults { timezone: Tz::UTC },
            engine: default_engine(),
            maintenance: Vec::new(),
            connections: BTreeMap::new(),
            channels: Vec::new(),
            escalations: Vec::new(),
            routing: Routing::default(),
            names: Names::default(),
            rules: Vec::new(),
            heartbeats: Vec::new(),
            pings: Pings::default(),
            self_heartbeat: None,
            heartbeat_reads: checks::Read::default(),
            patterns: Vec::new(),
            probe_reads: checks::Read::default(),
        },
    };
    let names: Connections = connections.keys().cloned().collect();
    let pc = PipelineContext {
        dir: &dir,
        timezone: defaults.timezone,
        connections: &names,
        alerting: &alert_names,
    };
    let mut pipelines = Vec::new();
    let mut rules: Vec<(AlertRule, PathBuf)> = Vec::new();
    let mut chain_refs = Vec::new();
    let mut depend_refs = Vec::new();
    let mut externals = Vec::new();
    for file in pipeline_files(&dir, &mut diags) {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                diags.push(file_diagnostic(
                    &file,
                    format!("cannot read the pipeline file: {e}"),
                    None,
                ));
                continue;
            }
        };
        let source = Source::new(&file, text);
        let first = diags.len();
        let mut cx = Cx {
            source: &source,
            diags: &mut diags,
            env,
            redactor: &mut redactor,
        };
        let parsed = parse_file(&mut cx);
        let read = match parsed.as_ref().map(|t| Table::new(t.get_ref(), t.span())) {
            Some(t) => match external(&mut cx, t) {
                Some(true) => {
                    if let Some(e) = heartbeats::read_external(&mut cx, t, pc.timezone, pc.alerting)
                    {
                        externals.push((e, source.clone(), file.clone()));
                    }
                    None
                }
                Some(false) => read_pipeline(&mut cx, t, &pc),
                None => None,
            },
            None => None,
        };
        by_position(&mut diags, first);
        let Some(read) = read else { continue };
        let p = read.pipeline;
        rules.extend(read.rules.into_iter().map(|r| (r, file.clone())));
        if pipelines.iter().any(|q: &crate::Pipeline| q.name == p.name) {
            let d = source.diagnostic(
                0..0,
                format!(
                    "a pipeline named `{}` is already defined in another file",
                    p.name
                ),
                Some("pipeline names must be unique: rename this file or set name = \"…\"".into()),
            );
            diags.push(d);
            continue;
        }
        depend_refs.push(Refs {
            from: p.name.clone(),
            names: read.depends,
            source: source.clone(),
        });
        chain_refs.push(Refs {
            from: p.name.clone(),
            names: read.chains,
            source,
        });
        pipelines.push(p);
    }
    let pipeline_names: Vec<&str> = pipelines.iter().map(|p| p.name.as_str()).collect();
    check_names(
        &chain_refs,
        &pipeline_names,
        "on_success/on_failure",
        "pipeline",
        &mut diags,
    );
    check_cycles(&chain_refs, &pipelines, &mut diags);
    for (refs, place) in [
        (maintenance_refs, "[[maintenance]]"),
        (pattern_refs, "[[patterns]]"),
    ] {
        let refs = [Refs {
            source: root_source.clone(),
            from: String::new(),
            names: refs,
        }];
        check_names(&refs, &pipeline_names, place, "pipeline", &mut diags);
    }
    alerts::check_rules(&rules_source, &root_rules, &pipelines, &mut diags);
    check_keys(
        &rules_source,
        &heartbeats,
        &heartbeat_reads.spans,
        &pings,
        &mut diags,
    );
    // External pipelines are heartbeats written in files of their own. The heartbeats that
    // rules name, by file, are checked once every heartbeat is known.
    let mut check_refs = Vec::new();
    for (e, source, file) in externals {
        let name = e.heartbeat.name.clone();
        let before = diags.len();
        let heartbeat_names: Vec<&str> = heartbeats.iter().map(|h| h.name.as_str()).collect();
        free_names(
            &source,
            "external pipeline",
            &[(name.clone(), e.span.clone())],
            &[
                ("a pipeline", pipeline_names.as_slice()),
                ("a heartbeat", heartbeat_names.as_slice()),
            ],
            &mut diags,
        );
        check_keys(
            &source,
            std::slice::from_ref(&e.heartbeat),
            &[(name.clone(), e.span)],
            &pings,
            &mut diags,
        );
        if diags.len() > before {
            continue;
        }
        check_refs.push(Refs {
            from: name.clone(),
            names: heartbeat_checks(e.rules.iter()),
            source: source.clone(),
        });
        depend_refs.push(Refs {
            from: name,
            names: e.depends,
            source,
        });
        rules.extend(e.rules.into_iter().map(|r| (r.rule, file.clone())));
        heartbeats.push(e.heartbeat);
    }
    heartbeats.sort_by(|a, b| a.name.cmp(&b.name));
    let heartbeat_names: Vec<&str> = heartbeats.iter().map(|h| h.name.as_str()).collect();
    let checks::Read {
        items: probes,
        spans: probe_spans,
        depends: probe_depends,
    } = probe_reads;
    let pipelines_only = [("a pipeline", pipeline_names.as_slice())];
    free_names(
        &rules_source,
        "heartbeat",
        &heartbeat_reads.spans,
        &pipelines_only,
        &mut diags,
    );
    let taken = [
        ("a pipeline", pipeline_names.as_slice()),
        ("a heartbeat", heartbeat_names.as_slice()),
    ];
    free_names(&rules_source, "probe", &probe_spans, &taken, &mut diags);
    let probe_names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
    let probe_refs = [Refs {
        from: String::new(),
        names: root_rules
            .iter()
            .filter_map(|r| match (&r.rule.condition, &r.check_span) {
                (Condition::Probe { check: Some(c) }, Some(span)) => {
                    Some((c.clone(), span.clone()))
                }
                _ => None,
            })
            .collect(),
        source: rules_source.clone(),
    }];
    check_names(
        &probe_refs,
        &probe_names,
        "a probe rule",
        "probe",
        &mut diags,
    );
    check_refs.push(Refs {
        from: String::new(),
        names: heartbeat_checks(root_rules.iter()),
        source: rules_source.clone(),
    });
    check_names(
        &check_refs,
        &heartbeat_names,
        "a heartbeat rule",
        "heartbeat",
        &mut diags,
    );
    depend_refs.push(Refs {
        from: String::new(),
        names: root_rules
            .iter()
            .flat_map(|r| r.depends.clone())
            .chain(heartbeat_reads.depends)
            .chain(probe_depends)
            .collect(),
        source: rules_source,
    });
    rules.extend(root_rules.into_iter().map(|r| (r.rule, path.to_owned())));
    let alerts = unique_rules(rules, &mut diags);
    let rule_names: Vec<&str> = alerts.iter().map(|r| r.name.as_str()).collect();
    check_names(
        &depend_refs,
        &rule_names,
        "depends_on",
        "alert rule",
        &mut diags,
    );
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    // Names are unique (checked above): sorted, a pipeline is found by binary search.
    pipelines.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Config {
        file: path.to_owned(),
        server,
        storage,
        defaults,
        engine,
        maintenance,
        connections,
        pipelines,
        channels,
        alerts,
        escalations,
        routing,
        heartbeats,
        probes,
        patterns,
        pings,
        self_heartbeat,
        redactor,
    })
}

/// Each check of kind `noun` (written at `spans`, by name) has a name none of `taken` has:
/// pipelines, heartbeats and probes share one history of runs.
fn free_names(
    source: &Source,
    noun: &str,
    spans: &[(String, std::ops::Range<usize>)],
    taken: &[(&str, &[&str])],
    diags: &mut Vec<Diagnostic>,
) {
    for (name, span) in spans {
        if let Some((what, _)) = taken
            .iter()
            .find(|(_, names)| names.contains(&name.as_str()))
        {
            diags.push(source.diagnostic(
                span.clone(),
                format!("{noun} `{name}` has the name of {what}"),
                Some(
                    "pipelines, heartbeats and probes share one history of runs: rename one".into(),
                ),
            ));
        }
    }
}

/// The heartbeats that `rules` of kind `heartbeat` name, where they name them.
fn heartbeat_checks<'a>(
    rules: impl Iterator<Item = &'a RuleRead>,
) -> Vec<(String, std::ops::Range<usize>)> {
    rules
        .filter_map(|r| match (&r.rule.condition, &r.check_span) {
            (Condition::Heartbeat { check: Some(c), .. }, Some(span)) => {
                Some((c.clone(), span.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Whether a pipeline file is of kind `external` (a job plantao watches rather than runs);
/// none when its `kind` is neither that nor left out.
fn external(cx: &mut Cx, t: Table) -> Option<bool> {
    let Some(v) = t.get("kind") else {
        return Some(false);
    };
    let kind = reader::text(cx, "kind", v)?;
    if kind.expose() == "external" {
        return Some(true);
    }
    cx.error(
        v.span(),
        format!("a pipeline's `kind` is \"external\" or left out, not `{}`", kind.expose()),
        Some("leave `kind` out for a pipeline plantao runs; kind = \"external\" for a job it watches (a heartbeat)".into()),
    );
    None
}

/// Every heartbeat has a ping key.
fn check_keys(
    source: &Source,
    heartbeats: &[Heartbeat],
    spans: &[(String, std::ops::Range<usize>)],
    pings: &Pings,
    diags: &mut Vec<Diagnostic>,
) {
    for h in heartbeats.iter().filter(|h| h.key(pings).is_none()) {
        let span = spans
            .iter()
            .find(|(n, _)| *n == h.name)
            .map_or(0..0, |(_, s)| s.clone());
        diags.push(source.diagnostic(
            span,
            format!("heartbeat `{}` has no ping key, so it cannot be pinged", h.name),
            Some("set one for all in [pings] key = \"${env:PLANTAO_PING_KEY}\", or ping_key on the heartbeat".into()),
        ));
    }
}

/// The rules sorted by name; a name used twice (in any two files) is an error.
fn unique_rules(
    mut rules: Vec<(AlertRule, PathBuf)>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<AlertRule> {
    rules.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for pair in rules.windows(2) {
        if pair[0].0.name == pair[1].0.name {
            diags.push(file_diagnostic(
                &pair[1].1,
                format!(
                    "an alert rule named `{}` is also defined in {}",
                    pair[1].0.name,
                    pair[0].1.display()
                ),
                Some("rule names must be unique across plantao.toml and the pipeline files".into()),
            ));
        }
    }
    rules.into_iter().map(|(r, _)| r).collect()
}

/// Orders the diagnostics of one file (from `first` on) as they appear in it.
fn by_position(diags: &mut [Diagnostic], first: usize) {
    diags[first..].sort_by_key(|d| (d.line, d.column));
}

fn parse_file<'s>(cx: &mut Cx<'s>) -> Option<toml::Spanned<DeTable<'s>>> {
    let (table, errors) = DeTable::parse_recoverable(&cx.source.text);
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        cx.error(
            span,
            format!("this is not valid TOML: {}", e.message().trim()),
            Some("see https://toml.io for the syntax".into()),
        );
    }
    errors.is_empty().then_some(table)
}

fn pipeline_files(dir: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let folder = dir.join("pipelines");
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            diags.push(file_diagnostic(
                &folder,
                format!("cannot read the pipelines folder: {e}"),
                None,
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

struct Root {
    server: Server,
    storage: Storage,
    defaults: Defaults,
    engine: Engine,
    maintenance: Vec<Maintenance>,
    connections: BTreeMap<String, Connection>,
    channels: Vec<Channel>,
    escalations: Vec<Escalation>,
    routing: Routing,
    /// What rules may name.
    names: Names,
    rules: Vec<RuleRead>,
    heartbeats: Vec<Heartbeat>,
    pings: Pings,
    self_heartbeat: Option<crate::types::SelfHeartbeat>,
    /// Where the heartbeats are written, and what they depend on.
    heartbeat_reads: checks::Read<Heartbeat>,
    probe_reads: checks::Read<crate::types::Probe>,
    patterns: Vec<crate::patterns::Pattern>,
}

fn read_root(
    cx: &mut Cx,
    t: Table,
    dir: &Path,
    maintenance_refs: &mut Vec<(String, std::ops::Range<usize>)>,
    pattern_refs: &mut Vec<(String, std::ops::Range<usize>)>,
) -> Option<Root> {
    t.check_keys(cx, "in plantao.toml", ROOT_KEYS);
    let server = match t.get("server").and_then(|v| reader::table(cx, "server", v)) {
        Some(s) => read_server(cx, s),
        None => default_server(),
    };
    let storage = match t
        .get("storage")
        .and_then(|v| reader::table(cx, "storage", v))
    {
        Some(s) => read_storage(cx, s, dir),
        None => default_storage(dir),
    };
    let mut defaults = Defaults { timezone: Tz::UTC };
    if let Some(d) = t
        .get("defaults")
        .and_then(|v| reader::table(cx, "defaults", v))
    {
        d.check_keys(cx, "in [defaults]", DEFAULTS_KEYS);
        if let Some(v) = d.get("timezone")
            && let Some(text) = reader::text(cx, "timezone", v)
        {
            match tz::parse_zone(text.expose()) {
                Ok(z) => defaults.timezone = z,
                Err(why) => cx.error(v.span(), reader::secret_safe(&text, "time zone", why), None),
            }
        }
    }
    let mut connections = BTreeMap::new();
    if let Some(c) = t
        .get("connections")
        .and_then(|v| reader::table(cx, "connections", v))
    {
        for (name, _, value) in c.entries() {
            let place = format!("connections.{name}");
            let Some(ct) = reader::table(cx, &place, value) else {
                continue;
            };
            if let Some(conn) = read_connection(cx, &place, ct, dir) {
                connections.insert(name.to_owned(), conn);
            }
        }
    }
    let engine = match t.get("engine").and_then(|v| reader::table(cx, "engine", v)) {
        Some(e) => read_engine(cx, e),
        None => default_engine(),
    };
    let maintenance = t
        .get("maintenance")
        .map(|v| maintenance::read(cx, v, maintenance_refs))
        .unwrap_or_default();
    let (channels, channel_names) = t
        .get("channels")
        .map(|v| channels::read_channels(cx, v))
        .unwrap_or_default();
    let patterns = t
        .get("patterns")
        .map(|v| crate::patterns::read(cx, v, pattern_refs))
        .unwrap_or_default();
    let mut names = Names {
        channels: channel_names,
        escalations: Vec::new(),
        patterns: patterns.iter().map(|p| p.name.clone()).collect(),
    };
    let escalations = t
        .get("escalation")
        .map(|v| alerts::read_escalations(cx, v, &mut names))
        .unwrap_or_default();
    let rules = t
        .get("alerts")
        .map(|v| alerts::read_rules(cx, v, &names, None))
        .unwrap_or_default();
    let routing = match t
        .get("routing")
        .and_then(|v| reader::table(cx, "routing", v))
    {
        Some(r) => read_routing(cx, r, &names),
        None => Routing::default(),
    };
    let mut heartbeat_reads = t
        .get("heartbeats")
        .map(|v| heartbeats::read(cx, v, defaults.timezone))
        .unwrap_or_default();
    let heartbeats = std::mem::take(&mut heartbeat_reads.items);
    let pings = match t.get("pings").and_then(|v| reader::table(cx, "pings", v)) {
        Some(p) => heartbeats::read_pings(cx, p),
        None => Pings::default(),
    };
    let connection_names: Connections = connections.keys().cloned().collect();
    let probe_reads = t
        .get("probes")
        .map(|v| probes::read(cx, v, defaults.timezone, &connection_names))
        .unwrap_or_default();
    let self_heartbeat = t
        .get("self_heartbeat")
        .and_then(|v| reader::table(cx, "self_heartbeat", v))
        .and_then(|s| heartbeats::read_self(cx, s));
    Some(Root {
        heartbeats,
        pings,
        self_heartbeat,
        heartbeat_reads,
        probe_reads,
        patterns,
        server,
        storage,
        defaults,
        engine,
        maintenance,
        connections,
        channels,
        escalations,
        routing,
        names,
        rules,
    })
}

fn read_routing(cx: &mut Cx, t: Table, names: &Names) -> Routing {
    t.check_keys(cx, "in [routing]", ROUTING_KEYS);
    let mut routing = Routing {
        channels: alerts::rule_channels(
            cx,
            t.get("channels"),
            &names.channels,
            "[routing] channels",
        ),
        info_channels: alerts::rule_channels(
            cx,
            t.get("info_channels"),
            &names.channels,
            "[routing] info_channels",
        ),
        ..Routing::default()
    };
    for (key, field) in [
        ("group_wait", &mut routing.group_wait),
        ("group_interval", &mut routing.group_interval),
    ] {
        if let Some(d) = t.get(key).and_then(|v| reader::duration(cx, key, v)) {
            *field = d;
        }
    }
    if let Some(v) = t.get("group_by") {
        routing.group_by = alerts::group_fields(cx, v);
    }
    routing
}

fn default_engine() -> Engine {
    Engine {
        max_concurrent_runs: 8,
        shutdown_grace: Duration::from_secs(30),
        evaluate_every: Duration::from_secs(15),
    }
}

fn read_engine(cx: &mut Cx, t: Table) -> Engine {
    t.check_keys(cx, "in [engine]", ENGINE_KEYS);
    let mut engine = default_engine();
    if let Some(n) = t
        .get("max_concurrent_runs")
        .and_then(|v| reader::integer(cx, "max_concurrent_runs", v, 1..10_001))
    {
        engine.max_concurrent_runs = usize::try_from(n).unwrap_or(engine.max_concurrent_runs);
    }
    if let Some(d) = t
        .get("shutdown_grace")
        .and_then(|v| reader::duration(cx, "shutdown_grace", v))
    {
        engine.shutdown_grace = d;
    }
    if let Some(d) = t
        .get("evaluate_every")
        .and_then(|v| reader::duration(cx, "evaluate_every", v))
    {
        engine.evaluate_every = d;
    }
    engine
}

fn default_server() -> Server {
    Server {
        listen: DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8077))),
        public_read: false,
        writes_per_minute: 120,
    }
}

/// How long raw runs are kept by default; rollups are kept forever.
const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

fn default_storage(dir: &Path) -> Storage {
    Storage {
        url: Text::plain(format!("sqlite://{}", dir.join("plantao.db").display())),
        retention: DEFAULT_RETENTION,
    }
}

fn read_server(cx: &mut Cx, t: Table) -> Server {
    t.check_keys(cx, "in [server]", SERVER_KEYS);
    let mut server = default_server();
    if let Some(v) = t.get("listen")
        && let Some(text) = reader::text(cx, "listen", v)
    {
        match text.expose().parse() {
            Ok(addr) => server.listen = addr,
            Err(_) => cx.error(
                v.span(),
                format!("`listen` must be an address and port, found `{}`", text.shown()),
                Some(format!("e.g. listen = \"{DEFAULT_LISTEN}\" (loopback) or \"0.0.0.0:8077\" (every interface)")),
            ),
        }
    }
    if let Some(b) = t
        .get("public_read")
        .and_then(|v| reader::boolean(cx, "public_read", v))
    {
        server.public_read = b;
    }
    if let Some(n) = t
        .get("writes_per_minute")
        .and_then(|v| reader::integer(cx, "writes_per_minute", v, 1..1_000_001))
    {
        server.writes_per_minute = u32::try_from(n).unwrap_or(server.writes_per_minute);
    }
    server
}

fn read_storage(cx: &mut Cx, t: Table, dir: &Path) -> Storage {
    t.check_keys(cx, "in [storage]", STORAGE_KEYS);
    let retention = read_retention(cx, t);
    Storage {
        retention,
        ..read_storage_url(cx, t, dir)
    }
}

fn read_retention(cx: &mut Cx, t: Table) -> Duration {
    let Some(v) = t.get("retention") else {
        return DEFAULT_RETENTION;
    };
    match reader::duration(cx, "retention", v) {
        Some(d) if d < Duration::from_secs(3600) => {
            cx.error(
                v.span(),
                "`retention` in [storage] must be at least 1h: runs younger than that are still being looked at",
                Some("e.g. retention = \"90d\" (the default) or retention = \"730d\" (two years)".into()),
            );
            DEFAULT_RETENTION
        }
        Some(d) => d,
        None => DEFAULT_RETENTION,
    }
}

fn read_storage_url(cx: &mut Cx, t: Table, dir: &Path) -> Storage {
    let Some(v) = t.get("url") else {
        return default_storage(dir);
    };
    let Some(url) = reader::text(cx, "url", v) else {
        return default_storage(dir);
    };
    match scheme_kind(url.expose()) {
        Some(ConnectionKind::Sqlite) => Storage {
            url: sqlite_beside(url, dir),
            retention: DEFAULT_RETENTION,
        },
        Some(ConnectionKind::Postgres) => Storage {
            url,
            retention: DEFAULT_RETENTION,
        },
        _ => {
            cx.error(
                v.span(),
                format!(
                    "`url` in [storage] must start with sqlite:// or postgres://, found `{}`",
                    shown_scheme(&url)
                ),
                Some(
                    "e.g. url = \"sqlite://plantao.db\" or url = \"postgres://plantao@db/plantao\""
                        .into(),
                ),
            );
            default_storage(dir)
        }
    }
}

fn read_connection(cx: &mut Cx, place: &str, t: Table, dir: &Path) -> Option<Connection> {
    t.check_keys(cx, &format!("in [{place}]"), CONNECTION_KEYS);
    let Some(v) = t.get("url") else {
        cx.error(
            t.span(),
            format!("[{place}] has no `url`"),
            Some("url = \"postgres://user@host/db\" (or mysql://, sqlite://)".into()),
        );
        return None;
    };
    let url = reader::text(cx, "url", v)?;
    match scheme_kind(url.expose()) {
        Some(ConnectionKind::Sqlite) => Some(Connection {
            kind: ConnectionKind::Sqlite,
            url: sqlite_beside(url, dir),
        }),
        Some(kind) => Some(Connection { kind, url }),
        None => {
            cx.error(
                v.span(),
                format!("[{place}] `url` must start with postgres://, mysql:// or sqlite://, found `{}`", shown_scheme(&url)),
                None,
            );
            None
        }
    }
}

pub(crate) fn scheme_kind(url: &str) -> Option<ConnectionKind> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Some(ConnectionKind::Postgres),
        "mysql" | "mariadb" => Some(ConnectionKind::Mysql),
        "sqlite" => Some(ConnectionKind::Sqlite),
        _ => None,
    }
}

/// What of a URL may be printed: its scheme when it is a secret, else all of it.
fn shown_scheme(url: &Text) -> String {
    if url.is_secret() {
        format!("{} (from the environment)", url.shown())
    } else {
        url.shown().to_owned()
    }
}

/// A relative SQLite path is taken from the config file's folder, not from where plantao runs.
fn sqlite_beside(url: Text, dir: &Path) -> Text {
    let rest = &url.expose()["sqlite://".len()..];
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    if path.starts_with('/') || path == ":memory:" {
        return url;
    }
    let joined = resolve(dir, path).display().to_string();
    let value = match query {
        Some(q) => format!("sqlite://{joined}?{q}"),
        None => format!("sqlite://{joined}"),
    };
    if url.is_secret() {
        Text::from_env(url.shown(), value)
    } else {
        Text::plain(value)
    }
}
