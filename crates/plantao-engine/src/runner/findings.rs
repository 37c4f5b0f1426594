//! A stage's log read for the configuration's `[[patterns]]`: each matching line a finding of
//! the run, recorded with the stage.

use plantao_config::{Pattern, fold};
use plantao_model::RunId;
use plantao_store::Finding;

/// Findings kept per stage attempt: a log that matches on every line says so in the first ones.
pub const MAX_FINDINGS: usize = 50;
/// Characters of the line kept with a finding.
const EXCERPT: usize = 200;

/// Which stage a log belongs to.
pub struct Place<'a> {
    pub run_id: RunId,
    pub pipeline: &'a str,
    pub step: &'a str,
    pub attempt: u32,
}

/// The lines of `log` that the patterns reading this pipeline and step match, first first (a
/// line matched by two patterns is two findings), at most [`MAX_FINDINGS`].
pub fn scan(patterns: &[Pattern], at: &Place, log: &str) -> Vec<Finding> {
    let reading: Vec<&Pattern> = patterns
        .iter()
        .filter(|p| p.reads(at.pipeline, at.step))
        .collect();
    if reading.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (number, line) in log.lines().enumerate() {
        let folded = fold(line);
        for p in reading.iter().filter(|p| p.matches(line, &folded)) {
            out.push(Finding {
                run_id: at.run_id,
                step: at.step.to_owned(),
                attempt: at.attempt,
                line: u32::try_from(number + 1).unwrap_or(u32::MAX),
                pattern: p.name.clone(),
                severity: p.severity,
                excerpt: line.trim().chars().take(EXCERPT).collect(),
            });
            if out.len() == MAX_FINDINGS {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use plantao_model::Severity;

    fn pattern(name: &str, words: &[&str], steps: &[&str]) -> Pattern {
        Pattern {
            name: name.into(),
            keywords: words.iter().map(|w| fold(w)).collect(),
            regex: None,
            severity: Severity::Critical,
            pipelines: Vec::new(),
            steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn matching_lines_become_findings_with_their_number_and_excerpt() {
        let patterns = [
            pattern("alarm", &["emergencia", "hospital"], &[]),
            pattern("fall", &["queda"], &["process"]),
        ];
        let log = "relatório de Ana: tudo bem\nDona Maria: QUEDA no banheiro, levada ao Hospital\n  Emergência às 03h  \n";
        let at = Place {
            run_id: RunId::new(),
            pipeline: "biz",
            step: "process",
            attempt: 2,
        };
        let found = scan(&patterns, &at, log);
        let seen: Vec<(u32, &str)> = found.iter().map(|f| (f.line, f.pattern.as_str())).collect();
        assert_eq!(seen, [(2, "alarm"), (2, "fall"), (3, "alarm")]);
        assert_eq!(found[2].excerpt, "Emergência às 03h");
        assert_eq!(found[0].attempt, 2);
        let send = Place { step: "send", ..at };
        assert_eq!(
            scan(&patterns, &send, log).len(),
            2,
            "`fall` reads only process"
        );
    }

    #[test]
    fn a_log_full_of_matches_keeps_the_first_fifty() {
        let patterns = [pattern("x", &["erro"], &[])];
        let log = "erro\n".repeat(500);
        let at = Place {
            run_id: RunId::new(),
            pipeline: "p",
            step: "s",
            attempt: 1,
        };
        let found = scan(&patterns, &at, &log);
        assert_eq!(found.len(), MAX_FINDINGS);
        assert_eq!(found.last().map(|f| f.line), Some(50));
    }
}
