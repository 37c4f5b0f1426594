//! Checks that need every pipeline at once: the pipelines named by `on_success`/`on_failure`
//! exist and never start each other in a circle, and maintenance windows name real pipelines.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::diag::{Diagnostic, Source};
use crate::suggest;
use crate::types::Pipeline;

/// The names one file refers to, with where it wrote them.
pub(crate) struct Refs {
    pub source: Source,
    /// The pipeline the file defines (empty for plantao.toml).
    pub from: String,
    pub names: Vec<(String, Range<usize>)>,
}

pub(crate) fn check_names(
    refs: &[Refs],
    known: &[&str],
    what: &str,
    noun: &str,
    diags: &mut Vec<Diagnostic>,
) {
    for r in refs {
        for (name, span) in &r.names {
            if !known.contains(&name.as_str()) {
                let close = suggest::closest(name, known.iter().copied(), 1);
                diags.push(
                    r.source.diagnostic(
                        span.clone(),
                        format!(
                            "{what} names `{name}`, which is not a{} {noun}",
                            if noun.starts_with('a') { "n" } else { "" }
                        ),
                        suggest::did_you_mean(&close)
                            .or_else(|| Some(format!("the {noun}s are: {}", known.join(", ")))),
                    ),
                );
            }
        }
    }
}

/// Reports one cycle of pipelines that start each other, if there is one.
pub(crate) fn check_cycles(refs: &[Refs], pipelines: &[Pipeline], diags: &mut Vec<Diagnostic>) {
    let next: BTreeMap<&str, Vec<&str>> = pipelines
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.on_success
                    .iter()
                    .chain(&p.on_failure)
                    .map(String::as_str)
                    .collect(),
            )
        })
        .collect();
    for start in next.keys() {
        let mut path = vec![*start];
        if let Some(cycle) = walk(start, &next, &mut path) {
            let Some(r) = refs.iter().find(|r| r.from == cycle[0]) else {
                return;
            };
            let span = r.names.first().map_or(0..0, |(_, s)| s.clone());
            diags.push(r.source.diagnostic(
                span,
                format!("pipelines start each other in a circle: {}", cycle.join(" → ")),
                Some("a run would start runs for ever: remove one of these on_success/on_failure".into()),
            ));
            return;
        }
    }
}

fn walk<'a>(
    at: &'a str,
    next: &BTreeMap<&'a str, Vec<&'a str>>,
    path: &mut Vec<&'a str>,
) -> Option<Vec<String>> {
    for n in next.get(at).map(Vec::as_slice).unwrap_or_default() {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push((*n).to_owned());
            return Some(cycle);
        }
        path.push(n);
        if let Some(c) = walk(n, next, path) {
            return Some(c);
        }
        path.pop();
    }
    None
}
