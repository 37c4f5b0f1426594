use crate::Backend;

pub(crate) fn backend_of(url: &str) -> Option<Backend> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Some(Backend::Sqlite),
        "postgres" | "postgresql" => Some(Backend::Postgres),
        _ => None,
    }
}

/// The URL with its password replaced by `***`, fit for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return strip_password_param(url);
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_owned(),
    };
    strip_password_param(&format!("{scheme}://{user}@{host}{tail}"))
}

/// `?password=…` in the query string, as libpq allows.
fn strip_password_param(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
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
    fn schemes_choose_the_backend() {
        assert_eq!(backend_of("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgresql://h/d"), Some(Backend::Postgres));
        assert_eq!(backend_of("mysql://h/d"), None);
        assert_eq!(backend_of("plantao.db"), None);
    }
}
