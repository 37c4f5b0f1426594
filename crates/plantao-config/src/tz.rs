use chrono_tz::{TZ_VARIANTS, Tz};

use crate::suggest;

/// An IANA zone by name, or the reason it is not one with the closest real names.
pub(crate) fn parse_zone(name: &str) -> Result<Tz, String> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Ok(tz);
    }
    let names = TZ_VARIANTS.iter().map(|z| z.name());
    let mut close = suggest::closest(name, names, 3);
    if close.is_empty() {
        // `Sao Paulo` or `paulo`: compare with the city part of each name.
        let wanted = name.replace(' ', "_").to_lowercase();
        close = TZ_VARIANTS
            .iter()
            .map(|z| z.name())
            .filter(|n| {
                let city = n.rsplit('/').next().unwrap_or(n).to_lowercase();
                !wanted.is_empty() && (city.contains(&wanted) || wanted.contains(&city))
            })
            .take(3)
            .collect();
    }
    Err(match suggest::did_you_mean(&close) {
        Some(hint) => format!("`{name}` is not a known time zone; {hint}"),
        None => format!(
            "`{name}` is not a known time zone; use an IANA name such as America/Sao_Paulo or UTC"
        ),
    })
}

/// A table's `timezone`, or `default` when it has none. A name that is not a zone is reported
/// (the configuration is refused) and `default` stands in, so reading carries on.
pub(crate) fn read_zone(
    cx: &mut crate::reader::Cx,
    t: crate::reader::Table,
    default: Tz,
) -> Option<Tz> {
    let Some(v) = t.get("timezone") else {
        return Some(default);
    };
    let text = crate::reader::text(cx, "timezone", v)?;
    match parse_zone(text.expose()) {
        Ok(z) => Some(z),
        Err(why) => {
            cx.error(
                v.span(),
                crate::reader::secret_safe(&text, "time zone", why),
                None,
            );
            Some(default)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_zones_parse() {
        assert_eq!(parse_zone("America/Sao_Paulo"), Ok(Tz::America__Sao_Paulo));
        assert_eq!(parse_zone("UTC"), Ok(Tz::UTC));
    }

    #[test]
    fn typos_get_close_matches() {
        let err = parse_zone("America/Sao_Paolo").unwrap_err();
        assert!(err.contains("`America/Sao_Paulo`"), "{err}");
        let err = parse_zone("Sao Paulo").unwrap_err();
        assert!(err.contains("America/Sao_Paulo"), "{err}");
        let err = parse_zone("Nowhere/Land").unwrap_err();
        assert!(err.contains("IANA name"), "{err}");
    }
}
