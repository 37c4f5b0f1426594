use std::borrow::Cow;
use std::fmt;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it (a connection, a header). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A string from a config file. When any part of it came from the environment (`${env:NAME}`),
/// the whole value is a secret and is shown as the template the user wrote instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Text {
    value: String,
    template: Option<String>,
}

impl Text {
    /// A value written literally in the file: nothing to hide.
    pub fn plain(value: impl Into<String>) -> Self {
        Text {
            value: value.into(),
            template: None,
        }
    }

    /// A value that took parts from the environment: `template` is what the file says.
    pub fn from_env(template: impl Into<String>, value: impl Into<String>) -> Self {
        Text {
            value: value.into(),
            template: Some(template.into()),
        }
    }

    /// The resolved value, for using it. Print [`Text::shown`] instead.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// What may be printed: the value, or the template when the value holds a secret.
    pub fn shown(&self) -> &str {
        self.template.as_deref().unwrap_or(&self.value)
    }

    pub fn is_secret(&self) -> bool {
        self.template.is_some()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.shown(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.shown())
    }
}

/// Replaces every known secret value in free text (logs, error messages from other programs).
///
/// Values shorter than [`Redactor::MIN_LEN`] characters are not searched for: hiding every `80`
/// or `true` in a log would hide more than it protects, and such values are no secrets anyway.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub const MIN_LEN: usize = 6;
    pub const MASK: &'static str = "***";

    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() >= Self::MIN_LEN && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so a secret that contains another is hidden whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), Self::MASK));
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_as_stars() {
        let s = Secret::new("hunter2-value");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2-value");
    }

    #[test]
    fn text_from_env_shows_its_template() {
        let t = Text::from_env("Bearer ${env:TOKEN}", "Bearer abc123secret");
        assert_eq!(
            format!("{t} {t:?}"),
            "Bearer ${env:TOKEN} \"Bearer ${env:TOKEN}\""
        );
        assert_eq!(t.expose(), "Bearer abc123secret");
        assert!(t.is_secret());
        let p = Text::plain("echo hi");
        assert_eq!(p.shown(), "echo hi");
        assert!(!p.is_secret());
    }

    #[test]
    fn redactor_hides_longest_first_and_skips_short_values() {
        let mut r = Redactor::default();
        r.add("abcdef");
        r.add("abcdefghij");
        r.add("80");
        assert_eq!(r.redact("x abcdefghij y abcdef z 80"), "x *** y *** z 80");
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }
}
