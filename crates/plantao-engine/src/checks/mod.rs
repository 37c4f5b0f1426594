//! Checks: the jobs plantao watches but does not run (heartbeats) and the endpoints it checks
//! on an interval (probes). Pings become runs and counts in the store ([`ping`]); a heartbeat's
//! state is told from those counts and the time ([`heartbeat`]), by the alert evaluator and the
//! API alike. Probes are checked ([`probe`]) by the one node that holds the probes task.

pub mod heartbeat;
pub mod outward;
pub mod ping;
pub mod probe;
pub mod prober;
pub mod uptime;

pub use heartbeat::{State, Status, status};
pub use ping::{Ping, Recorded, Recorder, Signal, record};
