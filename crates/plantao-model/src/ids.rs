use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A run's id: a UUIDv7, so ids sort by creation time (newest last) in text and binary form.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, format = "uuid", example = "019a6b3c-5d2e-7f00-8a1b-2c3d4e5f6a7b")]
pub struct RunId(Uuid);

impl RunId {
    /// A fresh id, later than every id this process made before.
    pub fn new() -> Self {
        RunId(Uuid::now_v7())
    }

    /// The id of a run made at `unix_ms` (milliseconds since the epoch): for history recorded
    /// after the fact and for cut-offs by time. `seq` keeps ids of one millisecond apart, in
    /// order; `seq = 0` gives the smallest id of that millisecond.
    pub fn from_millis(unix_ms: u64, seq: u64) -> Self {
        let mut tail = [0u8; 10];
        tail[2..].copy_from_slice(&seq.to_be_bytes());
        RunId(uuid::Builder::from_unix_timestamp_millis(unix_ms, &tail).into_uuid())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        RunId(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a run id: a run id looks like 0190c3a2-7b1e-7cc4-9a51-3f2d1e0b4c5d")]
pub struct ParseRunIdError(String);

impl FromStr for RunId {
    type Err = ParseRunIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(RunId)
            .map_err(|_| ParseRunIdError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_in_text_form_too() {
        let ids: Vec<RunId> = (0..1000).map(|_| RunId::new()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
        }
    }

    #[test]
    fn parses_its_own_text_and_rejects_garbage() {
        let id = RunId::new();
        assert_eq!(id.to_string().parse::<RunId>().unwrap(), id);
        let err = "not-an-id".parse::<RunId>().unwrap_err().to_string();
        assert!(err.contains("`not-an-id` is not a run id"), "{err}");
    }
}
