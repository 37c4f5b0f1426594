//! How the command line shows durations, numbers, times and tables.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use plantao_model::ExprValue;

/// `0.12s`, `12.3s`, `4m05s`, `2h03m`.
pub fn duration_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 10_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// A counter as users write it: `40`, `0.5`, `94.44`.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        let s = format!("{n:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

pub fn counters(list: &[(String, f64)]) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={}", number(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn metric(value: &ExprValue) -> String {
    match value {
        ExprValue::Number(n) => number(*n),
        ExprValue::Bool(b) => b.to_string(),
        ExprValue::Text(t) => t.clone(),
        ExprValue::NoData => "no data".to_owned(),
    }
}

/// A time in `zone`, to the second.
pub fn time(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// Left-aligned columns, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_ms(120), "0.12s");
        assert_eq!(duration_ms(12_340), "12.3s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(duration_ms(7_380_000), "2h03m");
    }

    #[test]
    fn numbers_drop_needless_decimals() {
        assert_eq!(number(40.0), "40");
        assert_eq!(number(94.444), "94.44");
        assert_eq!(number(0.5), "0.5");
    }

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\nxxx  y");
    }
}
