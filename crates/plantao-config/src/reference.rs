//! Every key a configuration file may hold, by the table it is written in: the same lists the
//! reader checks (`check_keys`), published so that the documentation can be held to the code.

use crate::{
    alerts, channels, daemon_keys, heartbeats, maintenance, patterns, pipeline, probes, root, steps,
};

/// Which kind of file a key is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigFile {
    /// `plantao.toml`.
    Main,
    /// A `pipelines/*.toml` file.
    Pipeline,
}

/// The keys a table takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keys {
    Only(Vec<&'static str>),
    /// A map whose keys the user names (`env`, `headers`, `params`, `metrics`…).
    Any,
}

impl Keys {
    pub fn allows(&self, key: &str) -> bool {
        match self {
            Keys::Only(keys) => keys.contains(&key),
            Keys::Any => true,
        }
    }
}

/// Every table [`keys_of`] knows with a fixed set of keys.
pub const TABLES: &[(ConfigFile, &str)] = &[
    (ConfigFile::Main, ""),
    (ConfigFile::Main, "server"),
    (ConfigFile::Main, "storage"),
    (ConfigFile::Main, "defaults"),
    (ConfigFile::Main, "engine"),
    (ConfigFile::Main, "routing"),
    (ConfigFile::Main, "connections.*"),
    (ConfigFile::Main, "pings"),
    (ConfigFile::Main, "self_heartbeat"),
    (ConfigFile::Main, "channels"),
    (ConfigFile::Main, "alerts"),
    (ConfigFile::Main, "escalation"),
    (ConfigFile::Main, "escalation.levels"),
    (ConfigFile::Main, "maintenance"),
    (ConfigFile::Main, "patterns"),
    (ConfigFile::Main, "heartbeats"),
    (ConfigFile::Main, "heartbeats.sla"),
    (ConfigFile::Main, "probes"),
    (ConfigFile::Main, "probes.http"),
    (ConfigFile::Main, "probes.sql"),
    (ConfigFile::Pipeline, ""),
    (ConfigFile::Pipeline, "sla"),
    (ConfigFile::Pipeline, "params.*"),
    (ConfigFile::Pipeline, "trends"),
    (ConfigFile::Pipeline, "steps"),
    (ConfigFile::Pipeline, "steps.http"),
    (ConfigFile::Pipeline, "steps.sql"),
    (ConfigFile::Pipeline, "steps.retry_backoff"),
    (ConfigFile::Pipeline, "alerts"),
];

/// The keys of the table at `path` of a `file`: a dotted path from the file's top as a user
/// writes it (`""` for the top, `server`, `alerts` for the items of `[[alerts]]`, `steps.http`
/// for a step's `http`), with `*` for a name the user chooses (`connections.*`, `params.*`).
/// `None` for a table that does not exist.
pub fn keys_of(file: ConfigFile, path: &str) -> Option<Keys> {
    let only = |lists: &[&[&'static str]]| Some(Keys::Only(lists.concat()));
    let rules = || only(&[alerts::RULE_KEYS, alerts::CONDITION_KEYS]);
    match (file, path) {
        (_, "alerts") => rules(),
        (_, "alerts.labels") => Some(Keys::Any),
        (ConfigFile::Main, "") => only(&[root::ROOT_KEYS]),
        (ConfigFile::Main, "server") => only(&[root::SERVER_KEYS]),
        (ConfigFile::Main, "storage") => only(&[root::STORAGE_KEYS]),
        (ConfigFile::Main, "defaults") => only(&[root::DEFAULTS_KEYS]),
        (ConfigFile::Main, "engine") => only(&[root::ENGINE_KEYS]),
        (ConfigFile::Main, "routing") => only(&[root::ROUTING_KEYS]),
        (ConfigFile::Main, "connections") => Some(Keys::Any),
        (ConfigFile::Main, "connections.*") => only(&[root::CONNECTION_KEYS]),
        (ConfigFile::Main, "pings") => only(&[heartbeats::PINGS_KEYS]),
        (ConfigFile::Main, "self_heartbeat") => only(&[heartbeats::SELF_KEYS]),
        (ConfigFile::Main, "channels") => only(&[channels::CHANNEL_KEYS]),
        (ConfigFile::Main, "escalation") => only(&[alerts::ESCALATION_KEYS]),
        (ConfigFile::Main, "escalation.levels") => only(&[alerts::LEVEL_KEYS]),
        (ConfigFile::Main, "maintenance") => only(&[maintenance::KEYS]),
        (ConfigFile::Main, "patterns") => only(&[patterns::KEYS]),
        (ConfigFile::Main, "heartbeats") => only(&[heartbeats::KEYS]),
        (ConfigFile::Main, "heartbeats.sla" | "probes.sla") => only(&[heartbeats::SLA_KEYS]),
        (ConfigFile::Main, "probes") => only(&[probes::KEYS]),
        (ConfigFile::Main, "probes.http") => only(&[probes::HTTP_KEYS]),
        (ConfigFile::Main, "probes.sql") => only(&[steps::SQL_KEYS]),
        // A pipeline's keys, and an external one's (a heartbeat's, with `kind`).
        (ConfigFile::Pipeline, "") => only(&[
            pipeline::PIPELINE_KEYS,
            daemon_keys::KEYS,
            heartbeats::KEYS,
            heartbeats::EXTERNAL_KEYS,
        ]),
        (ConfigFile::Pipeline, "sla") => only(&[heartbeats::SLA_KEYS]),
        (ConfigFile::Pipeline, "params.*") => only(&[pipeline::PARAM_KEYS]),
        (ConfigFile::Pipeline, "trends") => only(&[pipeline::TRENDS_KEYS]),
        (ConfigFile::Pipeline, "steps" | "finally") => only(&[steps::STEP_KEYS]),
        (ConfigFile::Pipeline, "steps.http" | "finally.http") => only(&[steps::HTTP_KEYS]),
        (ConfigFile::Pipeline, "steps.sql" | "finally.sql") => only(&[steps::SQL_KEYS]),
        (ConfigFile::Pipeline, "steps.retry_backoff" | "finally.retry_backoff") => {
            only(&[steps::BACKOFF_KEYS])
        }
        (ConfigFile::Main, "channels.headers" | "probes.http.headers")
        | (
            ConfigFile::Pipeline,
            "params"
            | "env"
            | "metrics"
            | "steps.env"
            | "finally.env"
            | "steps.http.headers"
            | "finally.http.headers",
        ) => Some(Keys::Any),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_take_the_keys_their_readers_check() {
        let main = |p| keys_of(ConfigFile::Main, p).unwrap();
        assert!(main("").allows("self_heartbeat"));
        assert!(main("storage").allows("retention"));
        assert!(!main("storage").allows("retension"));
        assert!(main("alerts").allows("threshold"));
        assert!(main("connections").allows("primecare"));
        let pipeline = |p| keys_of(ConfigFile::Pipeline, p).unwrap();
        assert!(pipeline("").allows("catchup") && pipeline("").allows("retry_interrupted"));
        assert!(pipeline("steps").allows("continue_on_error"));
        assert!(pipeline("steps.retry_backoff").allows("factor"));
        assert_eq!(keys_of(ConfigFile::Pipeline, "server"), None);
        for (file, path) in TABLES {
            assert!(
                matches!(keys_of(*file, path), Some(Keys::Only(_))),
                "{file:?} {path}"
            );
        }
    }
}
