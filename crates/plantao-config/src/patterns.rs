//! `[[patterns]]` in plantao.toml: words (or a regular expression) that, found in a stage's
//! log, make a finding of the run, e.g. `emergência` or `hospital` in a shift report's output.
//! Matching ignores case and accents: `emergencia` finds "Emergência".

use std::ops::Range;

use plantao_model::Severity;

use crate::reader::{self, Cx, Value};

pub(crate) const KEYS: &[&str] = &[
    "name",
    "keywords",
    "regex",
    "severity",
    "pipelines",
    "steps",
];

/// One pattern, ready to match lines folded by [`fold`].
#[derive(Clone, Debug)]
pub struct Pattern {
    pub name: String,
    /// Folded: lower case, no accents.
    pub keywords: Vec<String>,
    /// Ignoring case, against the line as written and as folded (so `emergência` and
    /// `emergencia` in it both find "EMERGÊNCIA").
    pub regex: Option<regex::Regex>,
    pub severity: Severity,
    /// The pipelines whose logs it reads; every pipeline when empty.
    pub pipelines: Vec<String>,
    /// The steps whose logs it reads; every step when empty.
    pub steps: Vec<String>,
}

impl Pattern {
    pub fn reads(&self, pipeline: &str, step: &str) -> bool {
        (self.pipelines.is_empty() || self.pipelines.iter().any(|p| p == pipeline))
            && (self.steps.is_empty() || self.steps.iter().any(|s| s == step))
    }

    /// Whether `line` (and `folded`, the same line folded by [`fold`]) matches.
    pub fn matches(&self, line: &str, folded: &str) -> bool {
        self.keywords.iter().any(|k| folded.contains(k.as_str()))
            || self
                .regex
                .as_ref()
                .is_some_and(|r| r.is_match(line) || r.is_match(folded))
    }
}

/// `text` in lower case without accents (`Emergência` → `emergencia`, `AÇÃO` → `acao`), so that
/// a pattern finds words however they were typed. Latin letters with diacritics (Portuguese,
/// Spanish, French, German) lose them; other characters are only lowered.
pub fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'ý' | 'ÿ' => 'y',
            other => other,
        })
        .collect()
}

/// The patterns; the pipeline names they give go to `refs`, checked once pipelines are known.
pub(crate) fn read(cx: &mut Cx, v: &Value, refs: &mut Vec<(String, Range<usize>)>) -> Vec<Pattern> {
    let Some(items) = reader::array(cx, "patterns", v) else {
        return Vec::new();
    };
    let mut out: Vec<Pattern> = Vec::new();
    for item in items {
        let Some(t) = reader::table(cx, "[[patterns]]", item) else {
            continue;
        };
        t.check_keys(cx, "in [[patterns]]", KEYS);
        let Some(name) = crate::alerts::required_name(cx, t, "[[patterns]]") else {
            continue;
        };
        let list = |cx: &mut Cx, key: &str| -> Vec<(String, Range<usize>)> {
            t.get(key)
                .map(|v| reader::text_list(cx, &format!("patterns.{key}"), v))
                .unwrap_or_default()
                .into_iter()
                .map(|(text, span)| (text.expose().to_owned(), span))
                .collect()
        };
        let keywords: Vec<String> = list(cx, "keywords")
            .into_iter()
            .map(|(k, _)| fold(&k))
            .filter(|k| !k.trim().is_empty())
            .collect();
        let regex = match t.get("regex") {
            None => None,
            Some(v) => {
                let text = reader::text(cx, "patterns.regex", v);
                let built = text.map(|t| {
                    regex::RegexBuilder::new(t.expose())
                        .case_insensitive(true)
                        .build()
                });
                match built {
                    Some(Ok(r)) => Some(r),
                    Some(Err(e)) => {
                        cx.error(
                            v.span(),
                            format!("`regex` of pattern `{name}` does not compile: {e}"),
                            Some("Rust regex syntax, matched ignoring case, e.g. regex = \"temperatura (3[89]|4[0-9])\"".into()),
                        );
                        continue;
                    }
                    None => continue,
                }
            }
        };
        if keywords.is_empty() && regex.is_none() {
            cx.error(
                t.span(),
                format!("pattern `{name}` has nothing to look for"),
                Some("give it keywords = [\"emergência\", \"hospital\"] or a regex".into()),
            );
            continue;
        }
        let Some(severity) = crate::alerts::read_severity(cx, t) else {
            continue;
        };
        let pipelines = list(cx, "pipelines");
        refs.extend(pipelines.iter().cloned());
        let steps = list(cx, "steps");
        if out.iter().any(|p| p.name == name) {
            cx.error(
                t.span(),
                format!("a pattern named `{name}` is defined twice"),
                Some("pattern names must be unique: rename one".into()),
            );
            continue;
        }
        out.push(Pattern {
            name,
            keywords,
            regex,
            severity,
            pipelines: pipelines.into_iter().map(|(n, _)| n).collect(),
            steps: steps.into_iter().map(|(n, _)| n).collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(keywords: &[&str], regex: Option<&str>) -> Pattern {
        Pattern {
            name: "p".into(),
            keywords: keywords.iter().map(|k| fold(k)).collect(),
            regex: regex.map(|r| {
                regex::RegexBuilder::new(r)
                    .case_insensitive(true)
                    .build()
                    .unwrap()
            }),
            severity: Severity::Critical,
            pipelines: vec!["biz".into()],
            steps: Vec::new(),
        }
    }

    #[test]
    fn words_match_whatever_their_case_and_accents() {
        let p = pattern(&["emergencia", "Queda"], None);
        let hit = |line: &str| p.matches(line, &fold(line));
        assert!(hit("Paciente em EMERGÊNCIA às 14h"));
        assert!(hit("risco de quedas"));
        assert!(!hit("tudo tranquilo no plantão"));
        assert_eq!(fold("AÇÃO Über naïve"), "acao uber naive");
    }

    #[test]
    fn a_regex_ignores_case_and_reads_the_line_with_and_without_accents() {
        let hit = |p: &Pattern, line: &str| p.matches(line, &fold(line));
        let fever = pattern(&[], Some(r"Temperatura (3[89]|4\d)"));
        assert!(hit(&fever, "TEMPERATURA 39,5 °C"));
        assert!(!hit(&fever, "Temperatura 36,5 °C"));
        // Escapes keep their meaning (`\D` is not `\d`), and accents may be written or not.
        let code = pattern(&[], Some(r"código \D\d{3}"));
        assert!(hit(&code, "Código X123 recusado"));
        assert!(!hit(&code, "Código 1123 recusado"));
        assert!(hit(&pattern(&[], Some("emergencia")), "EMERGÊNCIA"));
    }

    #[test]
    fn a_pattern_reads_only_its_pipelines_and_steps() {
        let mut p = pattern(&["x"], None);
        assert!(p.reads("biz", "any"));
        assert!(!p.reads("other", "any"));
        p.steps = vec!["process".into()];
        assert!(p.reads("biz", "process") && !p.reads("biz", "send"));
    }
}
