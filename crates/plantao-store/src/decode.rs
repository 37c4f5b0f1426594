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

/// A run's step selection as stored: nothing when it runs every step.
pub(crate) fn selection_to_json(selection: &crate::StepSelection) -> Option<String> {
    (!selection.is_all()).then(|| serde_json::json!(selection).to_string())
}

pub(crate) fn selection_from_json(text: Option<&str>) -> Result<crate::StepSelection> {
    text.map_or(Ok(crate::StepSelection::default()), |t| {
        serde_json::from_str(t)
            .map_err(|e| StoreError::Database(format!("unreadable step selection: {e}")))
    })
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
