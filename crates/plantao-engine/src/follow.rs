//! Following a run's logs while it runs: given the stages as the store has them now, what is
//! new since the last look. The runner records a running stage's log every second; the API's
//! event stream and `plantao logs -f` both read through this.

use std::collections::BTreeMap;

use plantao_model::StageStatus;
use plantao_store::Stage;
use serde::Serialize;

/// Something new in a run's logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Piece {
    /// More of a stage's log.
    Text {
        step: String,
        attempt: u32,
        text: String,
    },
    /// The stage's log no longer continues what was shown (its middle was cut to bound it):
    /// here it is whole again.
    Restart {
        step: String,
        attempt: u32,
        text: String,
    },
    /// The stage ended.
    Ended {
        step: String,
        attempt: u32,
        status: StageStatus,
    },
}

/// What one follower has seen, stage by stage.
#[derive(Debug, Default)]
pub struct LogFollower {
    /// Only this step's stages, when given.
    only: Option<String>,
    seen: BTreeMap<(String, u32), (String, bool)>,
}

impl LogFollower {
    pub fn new(only: Option<String>) -> Self {
        LogFollower {
            only,
            seen: BTreeMap::new(),
        }
    }

    /// What is new in `stages` (a run's, in the store's order) since the last call.
    pub fn advance(&mut self, stages: &[Stage]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for s in stages
            .iter()
            .filter(|s| self.only.as_ref().is_none_or(|o| &s.step == o))
        {
            let (shown, ended) = self
                .seen
                .entry((s.step.clone(), s.attempt))
                .or_insert_with(|| (String::new(), false));
            if s.log.len() > shown.len() && s.log.starts_with(shown.as_str()) {
                pieces.push(Piece::Text {
                    step: s.step.clone(),
                    attempt: s.attempt,
                    text: s.log[shown.len()..].to_owned(),
                });
                shown.clone_from(&s.log);
            } else if !s.log.starts_with(shown.as_str()) {
                pieces.push(Piece::Restart {
                    step: s.step.clone(),
                    attempt: s.attempt,
                    text: s.log.clone(),
                });
                shown.clone_from(&s.log);
            }
            if !*ended && s.status != StageStatus::Running {
                *ended = true;
                pieces.push(Piece::Ended {
                    step: s.step.clone(),
                    attempt: s.attempt,
                    status: s.status,
                });
            }
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use plantao_model::RunId;

    fn stage(step: &str, status: StageStatus, log: &str) -> Stage {
        Stage {
            run_id: RunId::new(),
            step: step.into(),
            attempt: 1,
            status,
            started_at: Utc::now(),
            finished_at: None,
            duration_ms: None,
            exit_code: None,
            error: None,
            log: log.into(),
            cpu_user_ms: None,
            cpu_system_ms: None,
            peak_rss_kb: None,
        }
    }

    fn text(step: &str, t: &str) -> Piece {
        Piece::Text {
            step: step.into(),
            attempt: 1,
            text: t.into(),
        }
    }

    #[test]
    fn only_what_is_new_is_told_once() {
        let mut f = LogFollower::new(None);
        assert_eq!(f.advance(&[stage("a", StageStatus::Running, "")]), []);
        assert_eq!(
            f.advance(&[stage("a", StageStatus::Running, "one\n")]),
            [text("a", "one\n")]
        );
        assert_eq!(f.advance(&[stage("a", StageStatus::Running, "one\n")]), []);
        assert_eq!(
            f.advance(&[
                stage("a", StageStatus::Succeeded, "one\ntwo\n"),
                stage("b", StageStatus::Running, "x")
            ]),
            [
                text("a", "two\n"),
                Piece::Ended {
                    step: "a".into(),
                    attempt: 1,
                    status: StageStatus::Succeeded
                },
                text("b", "x")
            ]
        );
    }

    #[test]
    fn a_cut_log_is_shown_again_whole_and_other_steps_can_be_left_out() {
        let mut f = LogFollower::new(Some("a".into()));
        f.advance(&[stage("a", StageStatus::Running, "0123456789")]);
        assert_eq!(
            f.advance(&[
                stage("a", StageStatus::Running, "01234[cut]9abc"),
                stage("b", StageStatus::Running, "never")
            ]),
            [Piece::Restart {
                step: "a".into(),
                attempt: 1,
                text: "01234[cut]9abc".into()
            }]
        );
    }
}
