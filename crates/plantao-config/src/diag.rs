use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one config file, with where it is, what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
    /// The source line, for showing the problem in place.
    pub snippet: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(snippet) = &self.snippet {
            let gutter = " ".repeat(self.line.to_string().len());
            write!(
                f,
                "\n{gutter} |\n{} | {snippet}\n{gutter} | {:>width$}",
                self.line,
                "^",
                width = self.column
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a configuration: all of them, not just the first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}\n")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in the configuration",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

/// A file's text, with what is needed to turn byte offsets into lines and columns.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            path: path.to_owned(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        (line + 1, column)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    pub fn diagnostic(
        &self,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let (line, column) = self.position(span.start);
        Diagnostic {
            file: self.path.clone(),
            line,
            column,
            message,
            help,
            snippet: Some(self.line_text(line).to_owned()),
        }
    }
}

/// A diagnostic about a file as a whole (missing, unreadable).
pub(crate) fn file_diagnostic(path: &Path, message: String, help: Option<String>) -> Diagnostic {
    Diagnostic {
        file: path.to_owned(),
        line: 1,
        column: 1,
        message,
        help,
        snippet: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let s = Source::new(Path::new("p.toml"), "a = 1\nção = 2\n".into());
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(6), (2, 1));
        // "ção" is 5 bytes but 3 characters.
        assert_eq!(s.position(6 + "ção ".len()), (2, 5));
    }

    #[test]
    fn display_shows_place_line_caret_and_help() {
        let s = Source::new(Path::new("p.toml"), "x = 1\nlistn = 2\n".into());
        let d = s.diagnostic(
            6..11,
            "unknown key `listn`".into(),
            Some("did you mean `listen`?".into()),
        );
        let text = d.to_string();
        assert_eq!(
            text,
            "p.toml:2:1: error: unknown key `listn`\n  |\n2 | listn = 2\n  | ^\n  help: did you mean `listen`?"
        );
    }
}
