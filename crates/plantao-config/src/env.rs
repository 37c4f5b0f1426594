//! `${env:NAME}` and `${env:NAME:-default}` in string values.

/// What interpolation found wrong, to be reported by the caller at the value's place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EnvError {
    Missing(String),
    BadName(String),
    Unclosed,
}

/// The resolved string, and whether any part of it came from the environment.
pub(crate) fn interpolate(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), EnvError> {
    const OPEN: &str = "${env:";
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut used_env = false;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or(EnvError::Unclosed)?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if !plantao_model::is_identifier(name) {
            return Err(EnvError::BadName(name.to_owned()));
        }
        match lookup(name).or_else(|| default.map(str::to_owned)) {
            Some(value) => out.push_str(&value),
            None => return Err(EnvError::Missing(name.to_owned())),
        }
        used_env = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used_env))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn substitutes_names_and_defaults() {
        assert_eq!(
            interpolate("Bearer ${env:TOKEN}!", &env),
            Ok(("Bearer s3cr3t!".into(), true))
        );
        assert_eq!(
            interpolate("${env:PORT:-8080}", &env),
            Ok(("8080".into(), true))
        );
        assert_eq!(interpolate("${env:EMPTY:-}", &env), Ok(("".into(), true)));
        assert_eq!(
            interpolate("echo ${HOME} $PATH", &env),
            Ok(("echo ${HOME} $PATH".into(), false))
        );
    }

    #[test]
    fn reports_missing_bad_and_unclosed() {
        assert_eq!(
            interpolate("${env:NOPE}", &env),
            Err(EnvError::Missing("NOPE".into()))
        );
        assert_eq!(
            interpolate("${env:9X}", &env),
            Err(EnvError::BadName("9X".into()))
        );
        assert_eq!(interpolate("${env:TOKEN", &env), Err(EnvError::Unclosed));
    }
}
