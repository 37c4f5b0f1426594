//! Step names, `needs` and dependency cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::reader::Cx;
use crate::suggest;
use crate::types::Step;

pub(crate) fn check_graph(
    cx: &mut Cx,
    steps: &[(Step, Range<usize>)],
    finally: &[(Step, Range<usize>)],
    broken: &[String],
) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (step, span) in steps.iter().chain(finally) {
        if seen.insert(step.name.as_str(), span.start).is_some() {
            cx.error(
                span.clone(),
                format!("two steps are named `{}`", step.name),
                Some(
                    "step names must be unique in a pipeline, `finally` included: rename one"
                        .into(),
                ),
            );
        }
    }
    for group in [steps, finally] {
        let names: BTreeSet<&str> = group.iter().map(|(s, _)| s.name.as_str()).collect();
        for (step, span) in group {
            for need in &step.needs {
                if !names.contains(need.as_str()) && !broken.contains(need) {
                    let close = suggest::closest(need, names.iter().copied(), 1);
                    cx.error(
                        span.clone(),
                        format!(
                            "step `{}` needs `{need}`, which is not a step of this list",
                            step.name
                        ),
                        suggest::did_you_mean(&close).or_else(|| {
                            Some(format!(
                                "the steps it can need are: {}",
                                names.iter().copied().collect::<Vec<_>>().join(", ")
                            ))
                        }),
                    );
                }
            }
        }
        if let Some(cycle) = find_cycle(group) {
            let start = group
                .iter()
                .find(|(s, _)| s.name == cycle[0])
                .map_or(0..0, |(_, sp)| sp.clone());
            cx.error(
                start,
                format!(
                    "the steps need each other in a cycle: {} (each needs the next)",
                    cycle.join(" → ")
                ),
                Some("remove one of these `needs` so the steps can run in some order".into()),
            );
        }
    }
}

/// The first cycle found, as names with the first repeated at the end.
fn find_cycle(steps: &[(Step, Range<usize>)]) -> Option<Vec<String>> {
    let needs: BTreeMap<&str, &[String]> = steps
        .iter()
        .map(|(s, _)| (s.name.as_str(), s.needs.as_slice()))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        needs: &BTreeMap<&'a str, &'a [String]>,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let from = path.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle: Vec<String> = path[from..].iter().map(|s| (*s).to_owned()).collect();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Visiting);
        path.push(node);
        for next in needs.get(node).copied().unwrap_or_default() {
            if needs.contains_key(next.as_str())
                && let Some(c) = visit(next, needs, marks, path)
            {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in needs.keys() {
        let mut path = Vec::new();
        if let Some(c) = visit(name, &needs, &mut marks, &mut path) {
            return Some(c);
        }
    }
    None
}
