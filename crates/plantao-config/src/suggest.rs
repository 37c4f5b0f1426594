//! "Did you mean …?" for unknown keys, names and time zones.

/// Edit distance (insertions, deletions, substitutions), case-insensitive.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known names closest to `wanted`, best first, at most `limit`, none that is too far off
/// to be a plausible typo.
pub(crate) fn closest<'a>(
    wanted: &str,
    known: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> Vec<&'a str> {
    let max = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .map(|k| (distance(wanted, k), k))
        .filter(|(d, _)| *d <= max)
        .collect();
    scored.sort();
    scored.into_iter().take(limit).map(|(_, k)| k).collect()
}

/// `did you mean `a`?`, or `did you mean one of `a`, `b`?`, or None.
pub(crate) fn did_you_mean(candidates: &[&str]) -> Option<String> {
    match candidates {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => Some(format!(
            "did you mean one of {}?",
            many.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("listen", "listn"), 1);
        assert_eq!(distance("timeout", "TimeOut"), 0);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn closest_keeps_only_plausible_typos() {
        let keys = ["listen", "public_read", "timeout"];
        assert_eq!(closest("listne", keys, 3), ["listen"]);
        assert!(closest("zzzzzz", keys, 3).is_empty());
    }
}
