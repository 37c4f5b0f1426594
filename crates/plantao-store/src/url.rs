use std::ops::Range;

use crate::Backend;

pub(crate) fn backend_of(url: &str) -> Option<Backend> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Some(Backend::Sqlite),
        "postgres" | "postgresql" => Some(Backend::Postgres),
        _ => None,
    }
}

/// Where a URL's password stands.
enum Place {
    /// After `user:` in the authority.
    UserInfo,
    /// The value of a `password=` query parameter, as libpq allows.
    Query,
}

/// The byte ranges of `url`'s password, each with where it stands, in the order written.
fn passwords(url: &str) -> Vec<(Range<usize>, Place)> {
    let mut out = Vec::new();
    let Some(scheme_end) = url.find("://") else {
        return out;
    };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    if let Some(at) = authority.rfind('@')
        && let Some(colon) = authority[..at].find(':')
    {
        out.push((start + colon + 1..start + at, Place::UserInfo));
    }
    if let Some(q) = url.find('?') {
        let mut at = q + 1;
        for param in url[q + 1..].split('&') {
            if let Some((key, _)) = param.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                out.push((at + key.len() + 1..at + param.len(), Place::Query));
            }
            at += param.len() + 1;
        }
    }
    out
}

/// The URL with its password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    for (range, _) in passwords(url).into_iter().rev() {
        out.replace_range(range, "***");
    }
    out
}

/// The URL without its password, and the password (percent-decoded; the last written, as
/// libpq reads them): tools get it in their environment, where `ps` does not show it.
pub(crate) fn split_password(url: &str) -> (String, Option<String>) {
    let found = passwords(url);
    let password = found.last().map(|(r, _)| percent_decode(&url[r.clone()]));
    let mut out = url.to_owned();
    for (range, place) in found.into_iter().rev() {
        let cut = match place {
            // With the `:` before it.
            Place::UserInfo => range.start - 1..range.end,
            // The whole parameter, and one `&` (or the `?` when it stood alone).
            Place::Query => {
                let param = range.start - "password=".len()..range.end;
                if url[param.end..].starts_with('&') {
                    param.start..param.end + 1
                } else {
                    param.start - 1..param.end
                }
            }
        };
        out.replace_range(cut, "");
    }
    (out, password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("postgres://app@db/app?password=s3cret&sslmode=require"),
            "postgres://app@db/app?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://p%40ss:x@y@h/d"),
            "postgres://p%40ss:***@h/d"
        );
        assert_eq!(
            redact_url("sqlite:///tmp/plantao.db"),
            "sqlite:///tmp/plantao.db"
        );
    }

    #[test]
    fn passwords_leave_the_url_for_the_environment() {
        assert_eq!(
            split_password("postgres://plantao:s%40cret@db:5432/ops?sslmode=require"),
            (
                "postgres://plantao@db:5432/ops?sslmode=require".to_owned(),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://app@db/app?password=s3cret&sslmode=require"),
            (
                "postgres://app@db/app?sslmode=require".to_owned(),
                Some("s3cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://app@db/app?sslmode=require&password=s3cret"),
            (
                "postgres://app@db/app?sslmode=require".to_owned(),
                Some("s3cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://app@db/app?password=s3cret"),
            (
                "postgres://app@db/app".to_owned(),
                Some("s3cret".to_owned())
            )
        );
        assert_eq!(
            split_password("postgres://db/ops"),
            ("postgres://db/ops".to_owned(), None)
        );
    }

    #[test]
    fn schemes_choose_the_backend() {
        assert_eq!(backend_of("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgresql://h/d"), Some(Backend::Postgres));
        assert_eq!(backend_of("mysql://h/d"), None);
        assert_eq!(backend_of("plantao.db"), None);
    }
}
