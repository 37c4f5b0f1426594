//! The dashboard's two languages: catalogues of messages (`locales/en.toml`, `locales/pt-BR.toml`,
//! embedded in the binary) and the way each writes numbers, durations and times.
//!
//! A message missing from a catalogue shows as `⟦key⟧`, which the tests look for on every page.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    PtBr,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::PtBr];

    /// The BCP 47 tag, as in `<html lang>` and the language cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::PtBr => "pt-BR",
        }
    }

    /// A tag as written in a cookie or a link: `pt-BR`, `pt`, `en-GB`…
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "pt" => Some(Lang::PtBr),
            _ => None,
        }
    }

    /// The language an `Accept-Language` header prefers most among ours; English otherwise.
    pub fn negotiate(accept: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.split(',') {
            let mut pieces = part.split(';');
            let Some(lang) = pieces.next().and_then(Lang::parse) else {
                continue;
            };
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../../locales/en.toml"),
            Lang::PtBr => include_str!("../../locales/pt-BR.toml"),
        }
    }
}

/// A catalogue: dotted keys (`overview.title`) to messages.
pub type Catalogue = BTreeMap<String, String>;

/// The catalogue of `lang`, read once. A catalogue that does not parse is a bug caught by the
/// tests; in a release it would show every message as its key rather than stop the server.
pub fn catalogue(lang: Lang) -> &'static Catalogue {
    static EN: OnceLock<Catalogue> = OnceLock::new();
    static PT: OnceLock<Catalogue> = OnceLock::new();
    let cell = match lang {
        Lang::En => &EN,
        Lang::PtBr => &PT,
    };
    cell.get_or_init(|| parse(lang.source()).unwrap_or_default())
}

/// Flattens a TOML document's tables into dotted keys.
pub fn parse(source: &str) -> Result<Catalogue, String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Catalogue) -> Result<(), String> {
        for (key, value) in table {
            let full = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::String(s) => {
                    out.insert(full, s.clone());
                }
                toml::Value::Table(t) => walk(&full, t, out)?,
                _ => return Err(format!("`{full}` must be a string or a table")),
            }
        }
        Ok(())
    }
    let table: toml::Table = toml::from_str(source).map_err(|e| e.to_string())?;
    let mut out = Catalogue::new();
    walk("", &table, &mut out)?;
    Ok(out)
}

/// Messages and formats in one language: what templates call `t`.
#[derive(Clone, Copy, Debug)]
pub struct Text {
    pub lang: Lang,
    messages: &'static Catalogue,
}

const MONTHS_EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const MONTHS_PT: [&str; 12] = [
    "jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez",
];

impl Text {
    pub fn new(lang: Lang) -> Self {
        Text {
            lang,
            messages: catalogue(lang),
        }
    }

    /// The message `key`, or `⟦key⟧` when the catalogue lacks it.
    pub fn t(&self, key: &str) -> Cow<'static, str> {
        match self.messages.get(key) {
            Some(m) => Cow::Borrowed(m.as_str()),
            None => Cow::Owned(format!("⟦{key}⟧")),
        }
    }

    /// The message `key` with `{name}` replaced by `value`.
    pub fn f(&self, key: &str, name: &str, value: impl Display) -> String {
        self.t(key)
            .replace(&format!("{{{name}}}"), &value.to_string())
    }

    /// `key` under `group` (`status.failed`), the raw value when the catalogue lacks it: a
    /// status added to the engine then shows as itself rather than as a missing key.
    pub fn word(&self, group: &str, value: impl Display) -> Cow<'static, str> {
        let value = value.to_string();
        match self.messages.get(&format!("{group}.{value}")) {
            Some(m) => Cow::Borrowed(m.as_str()),
            None => Cow::Owned(value),
        }
    }

    fn separators(&self) -> (char, char) {
        match self.lang {
            Lang::En => ('.', ','),
            Lang::PtBr => (',', '.'),
        }
    }

    /// `x` with `decimals` digits after the point and thousands grouped, the locale's way.
    pub fn num(&self, x: f64, decimals: usize) -> String {
        if !x.is_finite() {
            return "–".to_owned();
        }
        let (point, group) = self.separators();
        let text = format!("{:.*}", decimals, x.abs());
        let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
        let mut out = String::with_capacity(text.len() + 4);
        if x < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
            out.push('-');
        }
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(group);
            }
            out.push(c);
        }
        if !frac.is_empty() {
            out.push(point);
            out.push_str(frac);
        }
        out
    }

    /// A whole number, grouped.
    pub fn int(&self, n: impl Into<i64>) -> String {
        #[allow(clippy::cast_precision_loss)]
        self.num(n.into() as f64, 0)
    }

    /// A count of runs or pings (`u64`), grouped.
    pub fn count(&self, n: u64) -> String {
        self.int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// A 0–1 rate as a percentage with one decimal; a dash for none.
    pub fn pct(&self, rate: Option<f64>) -> String {
        rate.map_or_else(
            || "–".to_owned(),
            |r| format!("{} %", self.num(r * 100.0, 1)),
        )
    }

    /// A percentage already in 0–100, two decimals (uptimes).
    pub fn pct100(&self, p: Option<f64>) -> String {
        p.map_or_else(|| "–".to_owned(), |p| format!("{} %", self.num(p, 2)))
    }

    /// A duration in milliseconds, in the unit that reads best.
    pub fn ms(&self, ms: Option<f64>) -> String {
        let Some(ms) = ms else {
            return "–".to_owned();
        };
        if ms < 1_000.0 {
            format!("{} ms", self.num(ms, 0))
        } else if ms < 60_000.0 {
            format!("{} s", self.num(ms / 1e3, 1))
        } else if ms < 3_600_000.0 {
            let s = (ms / 1e3).round();
            format!("{} min {} s", (s / 60.0).floor(), s % 60.0)
        } else {
            let m = (ms / 60_000.0).round();
            format!("{} h {} min", (m / 60.0).floor(), m % 60.0)
        }
    }

    /// A duration in whole milliseconds, as recorded.
    #[allow(clippy::cast_precision_loss)]
    pub fn ms_i(&self, ms: Option<i64>) -> String {
        self.ms(ms.map(|m| m as f64))
    }

    /// An amount of memory given in KiB, in MiB with one decimal; a dash for none.
    #[allow(clippy::cast_precision_loss)]
    pub fn kib(&self, kib: Option<i64>) -> String {
        kib.map_or_else(
            || "–".to_owned(),
            |k| format!("{} MiB", self.num(k as f64 / 1024.0, 1)),
        )
    }

    /// A day as the locale writes it: `Dec 2` / `2 dez`.
    pub fn day(&self, d: NaiveDate) -> String {
        let m = d.month0() as usize;
        match self.lang {
            Lang::En => format!("{} {}", MONTHS_EN[m], d.day()),
            Lang::PtBr => format!("{} {}", d.day(), MONTHS_PT[m]),
        }
    }

    /// An instant in `zone`, with the date, the time and the zone's abbreviation:
    /// `Dec 2, 14:05:03 -03` / `02/12 14:05:03 -03`.
    pub fn at(&self, t: DateTime<Utc>, zone: Tz) -> String {
        let local = t.with_timezone(&zone);
        match self.lang {
            Lang::En => format!(
                "{} {}, {}",
                MONTHS_EN[local.month0() as usize],
                local.day(),
                local.format("%H:%M:%S %Z")
            ),
            Lang::PtBr => local.format("%d/%m %H:%M:%S %Z").to_string(),
        }
    }

    /// An optional instant, a dash for none.
    pub fn at_opt(&self, t: Option<DateTime<Utc>>, zone: Tz) -> String {
        t.map_or_else(|| "–".to_owned(), |t| self.at(t, zone))
    }

    /// How long ago `t` was, roughly: `3 min ago` / `há 3 min`.
    pub fn ago(&self, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let s = (now - t).num_seconds().max(0);
        let amount = if s < 60 {
            format!("{s} s")
        } else if s < 3600 {
            format!("{} min", s / 60)
        } else if s < 86_400 {
            format!("{} h", s / 3600)
        } else {
            format!("{} d", s / 86_400)
        };
        self.f("time.ago", "amount", amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_parse_and_hold_the_same_keys() {
        let en = parse(Lang::En.source()).unwrap();
        let pt = parse(Lang::PtBr.source()).unwrap();
        let only_en: Vec<_> = en.keys().filter(|k| !pt.contains_key(*k)).collect();
        let only_pt: Vec<_> = pt.keys().filter(|k| !en.contains_key(*k)).collect();
        assert!(only_en.is_empty(), "missing from pt-BR: {only_en:?}");
        assert!(only_pt.is_empty(), "missing from en: {only_pt:?}");
        assert!(en.len() > 100, "{} keys", en.len());
        for (k, v) in &pt {
            assert!(!v.trim().is_empty(), "pt-BR `{k}` is empty");
        }
    }

    #[test]
    fn placeholders_match_between_languages() {
        let en = catalogue(Lang::En);
        let pt = catalogue(Lang::PtBr);
        let holes = |s: &str| -> Vec<String> {
            s.split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_owned()))
                .collect()
        };
        for (k, v) in en {
            assert_eq!(holes(v), holes(&pt[k]), "placeholders of `{k}`");
        }
    }

    #[test]
    fn accept_language_picks_the_preferred_of_ours() {
        assert_eq!(Lang::negotiate("pt-BR,pt;q=0.9,en;q=0.8"), Lang::PtBr);
        assert_eq!(Lang::negotiate("en-GB,en;q=0.9,pt;q=0.5"), Lang::En);
        assert_eq!(Lang::negotiate("fr-FR,pt;q=0.4"), Lang::PtBr);
        assert_eq!(Lang::negotiate("de"), Lang::En);
        assert_eq!(Lang::negotiate(""), Lang::En);
    }

    #[test]
    fn numbers_and_times_follow_the_locale() {
        let en = Text::new(Lang::En);
        let pt = Text::new(Lang::PtBr);
        assert_eq!(en.num(1234567.891, 2), "1,234,567.89");
        assert_eq!(pt.num(1234567.891, 2), "1.234.567,89");
        assert_eq!(pt.num(-0.04, 1), "0,0");
        assert_eq!(en.num(-12.5, 1), "-12.5");
        assert_eq!(pt.pct(Some(0.953)), "95,3 %");
        assert_eq!(en.ms(Some(1530.0)), "1.5 s");
        assert_eq!(pt.ms(Some(1530.0)), "1,5 s");
        assert_eq!(en.ms(Some(125_000.0)), "2 min 5 s");
        let t = DateTime::parse_from_rfc3339("2026-12-02T17:05:03Z")
            .unwrap()
            .with_timezone(&Utc);
        let sp: Tz = "America/Sao_Paulo".parse().unwrap();
        assert_eq!(en.at(t, sp), "Dec 2, 14:05:03 -03");
        assert_eq!(pt.at(t, sp), "02/12 14:05:03 -03");
        assert_eq!(pt.day(t.date_naive()), "2 dez");
    }

    #[test]
    fn a_missing_message_shows_as_its_key_in_brackets() {
        let en = Text::new(Lang::En);
        assert_eq!(en.t("no.such.key"), "⟦no.such.key⟧");
        assert_eq!(en.word("status", "brand_new"), "brand_new");
    }
}
