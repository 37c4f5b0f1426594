use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("`{value}` is not a {what}; expected one of: {expected}")]
pub struct ParseEnumError {
    what: &'static str,
    value: String,
    expected: String,
}

/// Declares a closed set of names stored as text, with `as_str`, `ALL`, `Display` and `FromStr`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        value: s.to_owned(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

text_enum!(
    /// What started a run.
    Trigger, "trigger" {
        Scheduled => "scheduled",
        Manual => "manual",
        Api => "api",
        Catchup => "catchup",
        Backfill => "backfill",
        External => "external",
        Probe => "probe",
        Chained => "chained",
    }
);

text_enum!(
    /// Where a run is in its life. Every status but `queued` and `running` is final.
    RunStatus, "run status" {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Partial => "partial",
        Failed => "failed",
        TimedOut => "timed_out",
        Cancelled => "cancelled",
        Interrupted => "interrupted",
        Skipped => "skipped",
    }
);

text_enum!(
    /// Where one attempt of one step is.
    StageStatus, "stage status" {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        TimedOut => "timed_out",
        Cancelled => "cancelled",
        Interrupted => "interrupted",
        Skipped => "skipped",
    }
);

impl RunStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        for t in Trigger::ALL {
            assert_eq!(t.to_string().parse::<Trigger>().unwrap(), *t);
        }
        for s in StageStatus::ALL {
            assert_eq!(s.as_str().parse::<StageStatus>().unwrap(), *s);
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        let err = "done".parse::<RunStatus>().unwrap_err().to_string();
        assert!(err.contains("`done` is not a run status"), "{err}");
        assert!(err.contains("succeeded, partial"), "{err}");
    }

    #[test]
    fn only_queued_and_running_are_open() {
        let open: Vec<_> = RunStatus::ALL.iter().filter(|s| !s.is_final()).collect();
        assert_eq!(open, [&RunStatus::Queued, &RunStatus::Running]);
    }
}

text_enum!(
    /// What an API token may do. Each role can do everything the roles before it can: a
    /// viewer reads; an operator also triggers, cancels, retries and pauses runs; an admin
    /// also manages tokens and reads the audit log.
    #[derive(PartialOrd, Ord)]
    Role, "role" {
        Viewer => "viewer",
        Operator => "operator",
        Admin => "admin",
    }
);

text_enum!(
    /// How urgent an alert is: critical notifies at once, warning and info too until "Alerts II"
    /// groups them.
    #[derive(PartialOrd, Ord)]
    Severity, "severity" {
        Info => "info",
        Warning => "warning",
        Critical => "critical",
    }
);

text_enum!(
    /// Where an alert is in its life: `pending` while its condition has held for less than the
    /// rule's `for`, `firing` after, `resolved` once the condition stops holding.
    AlertState, "alert state" {
        Pending => "pending",
        Firing => "firing",
        Resolved => "resolved",
    }
);

text_enum!(
    /// Why a notification is sent (`report`: by `plantao report … --send`).
    NotificationEvent, "notification event" {
        Firing => "firing",
        Reminder => "reminder",
        Resolved => "resolved",
        Test => "test",
        Report => "report",
    }
);

text_enum!(
    /// Where a notification is in the outbox: `pending` until a channel accepts it (retried with
    /// backoff), `delivered`, or `failed` once it is older than its channel's `max_age`.
    DeliveryState, "delivery state" {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
);
