//! What a step reports through `$PLANTAO_OUTPUT`, as GitHub Actions reads `$GITHUB_OUTPUT`:
//! `key=value` lines and `key<<DELIM` … `DELIM` blocks. Numbers become counters; keys written
//! `state.KEY` change the pipeline's state instead (kept only if the run succeeds).

use plantao_model::{is_identifier, state_key};

/// Outputs in file order (a later value of a key replaces an earlier one), and warnings about
/// lines that could not be read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Reported {
    pub outputs: Vec<(String, String)>,
    /// `state.KEY` lines: keys in lowercase, in file order, a later value replacing an earlier.
    pub state: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

impl Reported {
    /// The outputs that are numbers, as counters.
    pub fn counters(&self) -> Vec<(String, f64)> {
        self.outputs
            .iter()
            .filter_map(|(k, v)| {
                let n: f64 = v.trim().parse().ok()?;
                n.is_finite().then(|| (k.clone(), n))
            })
            .collect()
    }

    /// Keeps `value` under `key` (`name` or `state.name`), or warns about a key that is not a
    /// name.
    fn put(&mut self, line: usize, key: &str, value: String) {
        let (list, name) = match key.strip_prefix("state.") {
            Some(name) => (&mut self.state, state_key(name).ok()),
            None => (
                &mut self.outputs,
                is_identifier(key).then(|| key.to_owned()),
            ),
        };
        match name {
            Some(name) => set(list, name, value),
            None => self.warnings.push(format!(
                "$PLANTAO_OUTPUT line {line}: `{key}` is not a valid name (letters, digits and `_`)"
            )),
        }
    }
}

pub(crate) fn set(list: &mut Vec<(String, String)>, key: String, value: String) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

pub(crate) fn parse(text: &str) -> Reported {
    let mut out = Reported::default();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some((key, delim)) = line.split_once("<<") {
            let key = key.trim();
            let delim = delim.trim();
            if key.is_empty() || delim.is_empty() {
                out.warnings.push(format!(
                    "$PLANTAO_OUTPUT line {}: `{line}` is not `key<<DELIMITER`",
                    i + 1
                ));
                continue;
            }
            let mut body = Vec::new();
            let mut closed = false;
            for (_, l) in lines.by_ref() {
                if l == delim {
                    closed = true;
                    break;
                }
                body.push(l);
            }
            if !closed {
                out.warnings.push(format!(
                    "$PLANTAO_OUTPUT line {}: the block `{key}` never ends with `{delim}`; it was ignored",
                    i + 1
                ));
                continue;
            }
            out.put(i + 1, key, body.join("\n"));
        } else if let Some((key, value)) = line.split_once('=') {
            out.put(i + 1, key.trim(), value.to_owned());
        } else {
            out.warnings.push(format!(
                "$PLANTAO_OUTPUT line {}: `{line}` is not `key=value`",
                i + 1
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_blocks() {
        let r = parse(
            "approved=40\nfailed=3\nnote<<EOF\nfirst\nsecond\nEOF\napproved=41\nlabel=ok=yes\n",
        );
        assert_eq!(
            r.outputs,
            [
                ("approved".into(), "41".into()),
                ("failed".into(), "3".into()),
                ("note".into(), "first\nsecond".into()),
                ("label".into(), "ok=yes".into()),
            ]
        );
        assert_eq!(
            r.counters(),
            [("approved".into(), 41.0), ("failed".into(), 3.0)]
        );
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn state_keys_are_kept_apart_in_lowercase() {
        let r = parse(
            "state.Watermark=2024-01-31\nsent=3\nstate.cursor<<END\na\nb\nEND\nstate.watermark=2024-02-29\nstate.=x\nstate.bad-key=1\n",
        );
        assert_eq!(r.outputs, [("sent".into(), "3".into())]);
        assert_eq!(
            r.state,
            [
                ("watermark".into(), "2024-02-29".into()),
                ("cursor".into(), "a\nb".into()),
            ]
        );
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
        assert!(r.warnings[1].contains("`state.bad-key` is not a valid name"));
    }

    #[test]
    fn malformed_lines_are_warnings() {
        let r = parse("good=1\njust text\n9bad=2\nopen<<END\nnever closed\n");
        assert_eq!(r.outputs, [("good".into(), "1".into())]);
        assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("line 2"));
    }

    #[test]
    fn non_finite_numbers_are_not_counters() {
        let r = parse("a=NaN\nb=inf\nc=1e3\nd= 2.5 \n");
        assert_eq!(r.counters(), [("c".into(), 1000.0), ("d".into(), 2.5)]);
    }
}
