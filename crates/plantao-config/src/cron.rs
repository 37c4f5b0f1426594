//! Cron strings: 5 fields, or 6 with seconds first, or an `@hourly`-style alias. Checked field
//! by field first, so a mistake is reported with the field's name and the reason, then parsed
//! by `croner` for scheduling.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

const ALIASES: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];
const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
};
const DAY_OF_MONTH: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
};
const DAY_OF_WEEK: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
};

/// A parsed schedule, with the text the user wrote.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    pub text: String,
    pub cron: Cron,
}

pub(crate) fn parse_cron(text: &str) -> Result<CronSchedule, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('@') {
        if !ALIASES.iter().any(|a| a.eq_ignore_ascii_case(trimmed)) {
            return Err(format!(
                "`{trimmed}` is not a schedule alias; the aliases are {}",
                ALIASES.join(", ")
            ));
        }
    } else {
        check_fields(trimmed)?;
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let cron = parser.parse(trimmed).map_err(|e| format!("{e}"))?;
    Ok(CronSchedule {
        text: trimmed.to_owned(),
        cron,
    })
}

fn check_fields(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let fields: &[Field] = match parts.len() {
        5 => &[MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        6 => &[SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK],
        n => {
            return Err(format!(
                "a cron schedule has 5 fields (minute hour day-of-month month day-of-week), or 6 with \
                 seconds first; this one has {n}"
            ));
        }
    };
    for (part, field) in parts.iter().zip(fields) {
        for item in part.split(',') {
            check_item(item, field)
                .map_err(|why| format!("the {} field `{part}` is invalid: {why}", field.name))?;
        }
    }
    Ok(())
}

fn check_item(item: &str, field: &Field) -> Result<(), String> {
    if item.is_empty() {
        return Err("an empty list item".into());
    }
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (item, None),
    };
    if let Some(step) = step {
        let n: u32 = step
            .parse()
            .map_err(|_| format!("the step `{step}` is not a whole number"))?;
        if n == 0 {
            return Err("a step of 0 never advances".into());
        }
    }
    let upper = range.to_ascii_uppercase();
    match (field.name, upper.as_str()) {
        (_, "*") => return Ok(()),
        ("day-of-month" | "day-of-week", "?") => return Ok(()),
        ("day-of-month", "L" | "LW") => return Ok(()),
        ("day-of-month", w) if w.ends_with('W') => {
            return value(&w[..w.len() - 1], field).map(drop);
        }
        ("day-of-week", l) if l.ends_with('L') && l.len() > 1 => {
            return value(&l[..l.len() - 1], field).map(drop);
        }
        ("day-of-week", h) if h.contains('#') => {
            let (day, nth) = h.split_once('#').unwrap_or((h, ""));
            value(day, field)?;
            return match nth.parse::<u32>() {
                Ok(1..=5) => Ok(()),
                _ => Err(format!(
                    "`#{nth}` must name the 1st to 5th weekday of the month"
                )),
            };
        }
        _ => {}
    }
    match upper.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (value(a, field)?, value(b, field)?);
            if a > b {
                return Err(format!("the range {a}-{b} runs backwards"));
            }
            Ok(())
        }
        None => value(&upper, field).map(drop),
    }
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    let names: &[&str] = match field.name {
        "month" => MONTHS,
        "day-of-week" => DAYS,
        _ => &[],
    };
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        let i = u32::try_from(i).unwrap_or(0);
        return Ok(if field.name == "month" { i + 1 } else { i });
    }
    let n: u32 = text.parse().map_err(|_| {
        if names.is_empty() {
            format!("`{text}` is not a number")
        } else {
            format!("`{text}` is not a number nor a name like {}", names[0])
        }
    })?;
    if n < field.min || n > field.max {
        return Err(format!(
            "{n} is out of range: the {} goes from {} to {}",
            field.name, field.min, field.max
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_users_write() {
        for ok in [
            "0 12,18,20 * * *",
            "*/5 * * * *",
            "30 */10 * * * *",
            "0 9 * * MON-FRI",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5L",
            "0 0 * * 1#2",
            "0 0 1 JAN,jul ?",
            "@hourly",
            "@DAILY",
        ] {
            parse_cron(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn names_the_field_and_the_reason() {
        let err = |s: &str| parse_cron(s).unwrap_err();
        assert_eq!(
            err("0 25 * * *"),
            "the hour field `25` is invalid: 25 is out of range: the hour goes from 0 to 23"
        );
        assert!(err("0 12 * *").contains("this one has 4"));
        assert!(err("61 * * * * *").starts_with("the second field"));
        assert!(err("0 0 0 * *").contains("day-of-month goes from 1 to 31"));
        assert!(err("0 0 * FOO *").contains("not a number nor a name like JAN"));
        assert!(err("*/0 * * * *").contains("step of 0"));
        assert!(err("0 0 * * 1#6").contains("1st to 5th"));
        assert!(err("0 20-10 * * *").contains("runs backwards"));
        assert!(err("@every5m").contains("not a schedule alias"));
    }
}
