//! Turning stored text back into domain types, shared by both backends.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::{Result, StoreError};

/// A status, trigger or other closed name read back from the database.
pub(crate) fn parse<T: FromStr>(text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Database(format!("unexpected value in the database: {e}")))
}

pub(crate) fn params_from_json(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Database(format!("unreadable run parameters: {e}")))
}

pub(crate) fn params_to_json(params: &BTreeMap<String, String>) -> String {
    serde_json::Value::from_iter(
        params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))),
    )
    .to_string()
}

/// What a run was asked beyond its parameters, as the `selection` column keeps it: its step
/// selection, its backfill period and whether it is forced; nothing when it is all defaults.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunOptions {
    #[serde(flatten)]
    pub selection: crate::StepSelection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<crate::Period>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl RunOptions {
    pub(crate) fn of(run: &crate::NewRun) -> RunOptions {
        RunOptions {
            selection: run.selection.clone(),
            period: run.period,
            force: run.force,
        }
    }

    pub(crate) fn to_json(&self) -> Option<serde_json::Value> {
        (!self.selection.is_all() || self.period.is_some() || self.force)
            .then(|| serde_json::json!(self))
    }

    pub(crate) fn from_json(text: Option<&str>) -> Result<RunOptions> {
        text.map_or(Ok(RunOptions::default()), |t| {
            serde_json::from_str(t)
                .map_err(|e| StoreError::Database(format!("unreadable run options: {e}")))
        })
    }
}

/// A finding as the SQLite backend keeps it (one JSON document).
pub(crate) fn finding(doc: &str) -> Result<crate::Finding> {
    serde_json::from_str(doc).map_err(|e| StoreError::Database(format!("unreadable finding: {e}")))
}

/// Why a run could not move from one state to another, given the status it has (if any).
pub(crate) fn transition_error(
    id: &impl std::fmt::Display,
    current: Option<String>,
    wanted: &str,
) -> StoreError {
    match current {
        None => StoreError::NotFound(format!("run {id}")),
        Some(status) => {
            StoreError::Conflict(format!("run {id} is {status}, so it cannot be {wanted}"))
        }
    }
}

/// `Updated` when an update touched a row, else `NotFound` for what `what` names.
pub(crate) fn found(rows: u64, what: impl FnOnce() -> String) -> Result<crate::Applied> {
    if rows == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(crate::Applied::Updated)
    }
}

/// The bounds for reading a column of type `T` by name from a row of either backend.
pub(crate) trait Column<R: sqlx::Row>:
    for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>
{
}

impl<R: sqlx::Row, T> Column<R> for T where
    T: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>
{
}

/// A row of the runs rollup, by column name (its bucket aside).
pub(crate) fn runs_row<R>(r: &R) -> Result<crate::rollup::RunsRow>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: Column<R>,
    i64: Column<R>,
{
    Ok(crate::rollup::RunsRow {
        status: r.try_get("status")?,
        trigger: r.try_get("triggered_by")?,
        runs: r.try_get("runs")?,
        timed_runs: r.try_get("timed_runs")?,
        duration_ms_sum: r.try_get("duration_ms_sum")?,
        duration_ms_max: r.try_get("duration_ms_max")?,
        cpu_ms: r.try_get("cpu_ms")?,
    })
}

/// What `Store::totals` and `Store::bucket_totals` read, per key (`key` reads it from a row:
/// the pipeline, or the pipeline and the bucket): rows of the runs rollup and of the counters
/// rollup summed by key (and status and trigger, or step and name).
pub(crate) fn totals_from_rows<R, K>(
    runs: &[R],
    counters: &[R],
    key: impl Fn(&R) -> Result<K>,
) -> Result<BTreeMap<K, crate::Summary>>
where
    R: sqlx::Row,
    K: Ord + Clone,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: Column<R>,
    i64: Column<R>,
    f64: Column<R>,
{
    let runs = runs
        .iter()
        .map(|r| Ok((key(r)?, runs_row(r)?)))
        .collect::<Result<Vec<_>>>()?;
    let counters = counters
        .iter()
        .map(|r| {
            let (step, name): (String, String) = (r.try_get("step")?, r.try_get("name")?);
            Ok((
                key(r)?,
                format!("{step}.{name}"),
                r.try_get("sum")?,
                r.try_get("runs")?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::rollup::totals(runs, counters))
}
