//! Whether a pipeline's counters and derived metrics are getting better or worse: a least-squares
//! line through their values (one a day from the rollups, or one a run), its change over the span
//! compared with the mean, and the pipeline's `[trends]` saying which way is better.

use plantao_config::Pipeline;
use plantao_store::{Counter, Summary};
use serde::Serialize;

/// Which way a value goes over the span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Rising,
    Falling,
    /// Its fitted change over the span is within the tolerance.
    Stable,
}

/// What the direction means, for a value whose better way is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Improving,
    Worsening,
    Stable,
}

/// One counter's or metric's trend.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trend {
    /// A derived metric's name, or `step.counter`.
    pub name: String,
    /// `metric` or `counter`.
    pub kind: &'static str,
    /// One value per day or per run, oldest first; none on a day without runs, for a run
    /// without the counter, or a metric with no data.
    pub values: Vec<Option<f64>>,
    /// The fitted line's slope, per day or per run; none with fewer than three values.
    pub slope: Option<f64>,
    /// The fitted change over the span, in percent of the mean.
    pub change_percent: Option<f64>,
    pub direction: Option<Direction>,
    /// None when `[trends]` does not say which way is better for it.
    pub verdict: Option<Verdict>,
}

/// The least-squares slope of the values present (x is the value's index), and their mean;
/// none with fewer than three.
pub fn fit(values: &[Option<f64>]) -> Option<(f64, f64)> {
    #[allow(clippy::cast_precision_loss)]
    let points: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
        .collect();
    if points.len() < 3 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    Some((sxy / sxx, mean_y))
}

/// The trend of `values` (a day or a run apart), judged with `tolerance_percent`; `higher`
/// says whether higher is better, when known.
pub fn judge(
    name: String,
    kind: &'static str,
    values: Vec<Option<f64>>,
    tolerance_percent: f64,
    higher: Option<bool>,
) -> Trend {
    let fitted = fit(&values);
    #[allow(clippy::cast_precision_loss)]
    let span = values.len().saturating_sub(1) as f64;
    let change =
        fitted.and_then(|(slope, mean)| (mean != 0.0).then(|| slope * span / mean.abs() * 100.0));
    let direction = fitted.map(|(slope, _)| match change {
        Some(c) if c.abs() <= tolerance_percent => Direction::Stable,
        None if slope == 0.0 => Direction::Stable,
        _ if slope > 0.0 => Direction::Rising,
        _ => Direction::Falling,
    });
    let verdict = direction.zip(higher).map(|(d, higher)| match (d, higher) {
        (Direction::Stable, _) => Verdict::Stable,
        (Direction::Rising, true) | (Direction::Falling, false) => Verdict::Improving,
        _ => Verdict::Worsening,
    });
    Trend {
        name,
        kind,
        values,
        slope: fitted.map(|f| f.0),
        change_percent: change,
        direction,
        verdict,
    }
}

/// One value of a trend's span: its counters as (step, name, value), or none (a day without
/// runs).
type Point<'a> = Option<Vec<(&'a str, &'a str, f64)>>;

/// Every derived metric and counter of `p` over `days` (one summary a day, oldest first; a day
/// without runs is empty), metrics first: each day's metrics are recomputed from that day's
/// summed counters.
pub fn of_days(p: &Pipeline, days: &[Summary]) -> Vec<Trend> {
    let points: Vec<Point> = days
        .iter()
        .map(|d| (d.runs > 0).then(|| d.counter_sums().collect()))
        .collect();
    of_points(p, &points)
}

/// Every derived metric and counter of `p` over `runs` (each run's counters, oldest run first),
/// metrics first: each run's metrics computed from its counters.
pub fn of_runs(p: &Pipeline, runs: &[Vec<Counter>]) -> Vec<Trend> {
    let points: Vec<Point> = runs
        .iter()
        .map(|counters| {
            Some(
                counters
                    .iter()
                    .map(|c| (c.step.as_str(), c.name.as_str(), c.value))
                    .collect(),
            )
        })
        .collect();
    of_points(p, &points)
}

/// The trends over `points`, oldest first.
fn of_points(p: &Pipeline, points: &[Point]) -> Vec<Trend> {
    let better = |name: &str| {
        if p.trends.higher_is_better.iter().any(|n| n == name) {
            Some(true)
        } else if p.trends.lower_is_better.iter().any(|n| n == name) {
            Some(false)
        } else {
            None
        }
    };
    let per_point: Vec<Option<Vec<Option<f64>>>> = points
        .iter()
        .map(|point| {
            point.as_ref().map(|counters| {
                crate::derived_metrics(p, counters.iter().copied())
                    .into_iter()
                    .map(|(_, v)| v.to_json().as_f64())
                    .collect()
            })
        })
        .collect();
    let mut out: Vec<Trend> = p
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let values = per_point
                .iter()
                .map(|metrics| metrics.as_ref().and_then(|m| m[i]))
                .collect();
            judge(
                m.name.clone(),
                "metric",
                values,
                p.trends.tolerance_percent,
                better(&m.name),
            )
        })
        .collect();
    let mut counters: Vec<(&str, &str)> = points
        .iter()
        .flatten()
        .flat_map(|point| point.iter().map(|(step, name, _)| (*step, *name)))
        .collect();
    counters.sort_unstable();
    counters.dedup();
    for (step, counter) in counters {
        let values = points
            .iter()
            .map(|point| {
                point.as_ref().and_then(|cs| {
                    cs.iter()
                        .find(|(s, n, _)| *s == step && *n == counter)
                        .map(|c| c.2)
                })
            })
            .collect();
        let name = format!("{step}.{counter}");
        let higher = better(&name);
        out.push(judge(
            name,
            "counter",
            values,
            p.trends.tolerance_percent,
            higher,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(start: f64, step: f64, days: usize) -> Vec<Option<f64>> {
        (0..days).map(|i| Some(start + step * i as f64)).collect()
    }

    #[test]
    fn a_change_within_the_tolerance_is_stable_and_one_past_it_is_not() {
        // 100 → 104 over 11 days: +3.9 % of the mean (102): stable at 5 %.
        let within = judge("r".into(), "metric", line(100.0, 0.4, 11), 5.0, Some(true));
        assert_eq!(within.direction, Some(Direction::Stable));
        assert_eq!(within.verdict, Some(Verdict::Stable));
        // 100 → 106: +5.8 %: rising, and improving when higher is better.
        let past = judge("r".into(), "metric", line(100.0, 0.6, 11), 5.0, Some(true));
        assert_eq!(past.direction, Some(Direction::Rising));
        assert_eq!(past.verdict, Some(Verdict::Improving));
        assert!((past.change_percent.unwrap() - 6.0 / 103.0 * 100.0).abs() < 1e-9);
        assert!((past.slope.unwrap() - 0.6).abs() < 1e-9);
    }

    #[test]
    fn falling_is_worse_when_higher_is_better_and_better_when_lower_is() {
        let falling = line(50.0, -2.0, 10);
        let approval = judge("a".into(), "metric", falling.clone(), 5.0, Some(true));
        assert_eq!(approval.verdict, Some(Verdict::Worsening));
        let failures = judge("f".into(), "counter", falling.clone(), 5.0, Some(false));
        assert_eq!(failures.verdict, Some(Verdict::Improving));
        let unrated = judge("x".into(), "counter", falling, 5.0, None);
        assert_eq!(unrated.direction, Some(Direction::Falling));
        assert_eq!(unrated.verdict, None);
    }

    #[test]
    fn days_without_values_are_left_out_and_two_values_are_too_few() {
        let gaps = vec![Some(10.0), None, Some(20.0), None, Some(30.0)];
        assert_eq!(fit(&gaps), Some((5.0, 20.0)));
        let two = judge(
            "x".into(),
            "counter",
            vec![Some(1.0), None, Some(9.0)],
            5.0,
            Some(true),
        );
        assert_eq!((two.direction, two.verdict), (None, None));
        let zeros = judge("x".into(), "counter", vec![Some(0.0); 4], 5.0, Some(false));
        assert_eq!(zeros.direction, Some(Direction::Stable));
    }
}
