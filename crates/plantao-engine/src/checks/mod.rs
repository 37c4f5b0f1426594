//! Checks: the jobs plantao watches but does not run (heartbeats). Pings become runs and
//! counts in the store ([`ping`]); a heartbeat's state is told from those counts and the time
//! ([`heartbeat`]), by the alert evaluator and the API alike.

pub mod heartbeat;
pub mod outward;
pub mod ping;

pub use heartbeat::{State, Status, status};
pub use ping::{Ping, Recorded, Signal, record};
