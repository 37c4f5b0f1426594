//! What heartbeats and probes are read alike with: a list of named tables, each name unique,
//! with where it is written and the rules its `depends_on` names.

use std::ops::Range;

use sha2::{Digest, Sha256};

use crate::alerts;
use crate::reader::{self, Cx, Table, Value};

/// The checks of one kind, sorted by name; where each is written; the rule names their
/// `depends_on` give (checked once every rule is known).
pub(crate) struct Read<T> {
    pub items: Vec<T>,
    pub spans: Vec<(String, Range<usize>)>,
    pub depends: Vec<(String, Range<usize>)>,
}

impl<T> Default for Read<T> {
    fn default() -> Self {
        Read {
            items: Vec::new(),
            spans: Vec::new(),
            depends: Vec::new(),
        }
    }
}

/// Reads `[[what]]` (e.g. `heartbeats`) from `v`: each table's keys checked against `keys`,
/// read by `one` (given the table and its `depends_on`), and named by `name`.
pub(crate) fn read<T>(
    cx: &mut Cx,
    v: &Value,
    what: &str,
    keys: &[&str],
    name: fn(&T) -> &str,
    mut one: impl FnMut(&mut Cx, Table, &[(String, Range<usize>)]) -> Option<T>,
) -> Read<T> {
    let mut out = Read::default();
    let place = format!("[[{what}]]");
    let Some(items) = reader::array(cx, what, v) else {
        return out;
    };
    let noun = what.trim_end_matches('s');
    for item in items {
        let Some(t) = reader::table(cx, &place, item) else {
            continue;
        };
        t.check_keys(cx, &format!("in {place}"), keys);
        let depends = alerts::names_list(cx, t, "depends_on");
        if let Some(read) = one(cx, t, &depends) {
            if out.items.iter().any(|o| name(o) == name(&read)) {
                cx.error(
                    t.span(),
                    format!("a {noun} named `{}` is defined twice", name(&read)),
                    Some(format!("{noun} names must be unique: rename one")),
                );
                continue;
            }
            out.spans.push((name(&read).to_owned(), t.span()));
            out.items.push(read);
        }
        out.depends.extend(depends);
    }
    out.items.sort_by(|a, b| name(a).cmp(name(b)));
    out
}

/// SHA-256 of the table as written, in hex.
pub(crate) fn definition_hash(cx: &Cx, t: Table) -> String {
    let written = cx.source.text.get(t.span()).unwrap_or_default();
    Sha256::digest(written.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `description` as written.
pub(crate) fn description(cx: &mut Cx, t: Table) -> Option<String> {
    t.get("description")
        .and_then(|v| reader::text(cx, "description", v))
        .map(|d| d.expose().to_owned())
}

/// `tags` as written.
pub(crate) fn tags(cx: &mut Cx, t: Table) -> Vec<String> {
    t.get("tags")
        .map(|v| reader::text_list(cx, "tags", v))
        .unwrap_or_default()
        .into_iter()
        .map(|(t, _)| t.expose().to_owned())
        .collect()
}
