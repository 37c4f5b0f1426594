//! `plantao.toml` and `pipelines/*.toml` into a typed, validated [`Config`].
//!
//! Every problem is reported at once, each with file, line, column, what is wrong and how to fix
//! it ([`Diagnostics`]). Values written as `${env:NAME}` come from the environment and are
//! secrets: they are kept out of every printed form (see [`plantao_model::Text`]).

mod alerts;
mod chains;
mod channels;
mod checks;
mod cron;
mod daemon_keys;
mod diag;
mod duration;
mod env;
mod graph;
mod heartbeats;
mod maintenance;
mod patterns;
mod pipeline;
mod probes;
mod reader;
mod reference;
mod root;
mod steps;
mod suggest;
mod template;
mod types;
mod tz;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub use alerts::WINDOW_VARIABLES;
pub use cron::CronSchedule;
pub use diag::{Diagnostic, Diagnostics};
pub use duration::parse_duration;
pub use patterns::{Pattern, fold};
pub use reference::{ConfigFile, Keys, TABLES, keys_of};
pub use root::load;
pub use template::check as check_template;
pub use types::*;

/// The example `plantao.toml` printed by `plantao config example`: documented and valid.
pub const EXAMPLE_CONFIG: &str = include_str!("../example/plantao.toml");
/// The example pipeline printed by `plantao config example --pipeline`: documented and valid.
pub const EXAMPLE_PIPELINE: &str = include_str!("../example/pipelines/example.toml");

/// The default config file, when neither `--config` nor `PLANTAO_CONFIG` says otherwise.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("plantao.toml")
}

/// Names of the connections in `plantao.toml`, for checking sql steps.
pub(crate) type Connections = BTreeSet<String>;

/// The span of the first mention of `name` inside the expression string written at `span`.
pub(crate) fn expr_span(
    cx: &reader::Cx,
    span: &Range<usize>,
    source: &str,
    name: &str,
) -> Range<usize> {
    match source.find(name) {
        Some(offset) => inner(cx, span, source, offset, name.len()),
        None => span.clone(),
    }
}

/// The span at character column `column` (from 1) of the expression string written at `span`.
pub(crate) fn expr_column_span(
    cx: &reader::Cx,
    span: &Range<usize>,
    source: &str,
    column: usize,
) -> Range<usize> {
    let offset = source
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(source.len(), |(i, _)| i);
    inner(cx, span, source, offset, 1)
}

/// Maps an offset in a string's value to the file, when the string is written plainly
/// (`"…"` or `'…'` without escapes); otherwise the whole string's span.
fn inner(
    cx: &reader::Cx,
    span: &Range<usize>,
    source: &str,
    offset: usize,
    len: usize,
) -> Range<usize> {
    let written = cx.source.text.get(span.clone()).unwrap_or_default();
    let plain = written.len() == source.len() + 2 && &written[1..written.len() - 1] == source;
    if plain {
        let start = span.start + 1 + offset;
        start..start + len
    } else {
        span.clone()
    }
}

pub(crate) fn resolve(dir: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_owned()
    } else {
        dir.join(p)
    }
}
