//! `GET /api/health`: whether this node can do its work, with the reasons when it cannot.
//! No token needed: load balancers and service managers ask it.

use std::time::{Duration, Instant};

use crate::json::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use plantao_store::Node;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// How late the scheduler may be on a tick before the node is degraded.
const SCHEDULER_LATE: Duration = Duration::from_secs(10);
/// How long the database may take to answer before it counts as unreachable.
const DATABASE_WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Ok,
    Degraded,
    Down,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` and `degraded` answer 200, `down` 503.
    pub status: Condition,
    /// Why it is not `ok`, one sentence each.
    pub reasons: Vec<String>,
    pub version: String,
    pub uptime_seconds: u64,
    /// This process's resident memory, when the system tells.
    pub resident_memory_bytes: Option<u64>,
    /// This node's id, when it runs the daemon.
    pub node: Option<String>,
    pub database: DatabaseHealth,
    pub storage: StorageHealth,
    pub scheduler: Option<SchedulerHealth>,
    /// The nodes holding a lease in the store.
    pub nodes: Vec<Node>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    pub backend: String,
    pub reachable: bool,
    /// How long a small read took.
    pub latency_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageHealth {
    /// False while the database refuses writes (a full disk): the node is then down.
    pub writable: bool,
    pub refusing_since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulerHealth {
    pub running: bool,
    /// Seconds since the scheduler last woke.
    pub last_pass_age_seconds: Option<f64>,
    /// The tick it waits for next.
    pub next_tick: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/api/health", tag = "health",
    responses(
        (status = 200, description = "ok or degraded", body = Health),
        (status = 503, description = "down", body = Health),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let body = health_of(&state).await;
    let code = if body.status == Condition::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body))
}

/// What the health check finds, for the API and the dashboard's status line.
pub(crate) async fn health_of(state: &AppState) -> Health {
    let mut reasons = Vec::new();
    let mut status = Condition::Ok;
    let mut worse = |to: Condition, why: String, reasons: &mut Vec<String>| {
        status = status.max(to);
        reasons.push(why);
    };
    let asked = Instant::now();
    let nodes = tokio::time::timeout(DATABASE_WAIT, state.store.nodes()).await;
    let latency_ms = asked.elapsed().as_secs_f64() * 1e3;
    let (reachable, nodes) = match nodes {
        Ok(Ok(nodes)) => (true, nodes),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: the database did not answer");
            worse(
                Condition::Down,
                "the database did not answer; the server's log says why".into(),
                &mut reasons,
            );
            (false, Vec::new())
        }
        Err(_) => {
            worse(
                Condition::Down,
                format!(
                    "the database did not answer within {} s",
                    DATABASE_WAIT.as_secs()
                ),
                &mut reasons,
            );
            (false, Vec::new())
        }
    };
    let now = Utc::now();
    let mut storage = StorageHealth {
        writable: true,
        refusing_since: None,
        reason: None,
    };
    let mut scheduler = None;
    if let Some(vitals) = &state.vitals {
        if let Some(refusal) = vitals.writable.refusal() {
            worse(
                Condition::Down,
                format!(
                    "the database cannot write since {} (a full disk?): no runs are claimed until it can",
                    refusal.since.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                &mut reasons,
            );
            storage = StorageHealth {
                writable: false,
                refusing_since: Some(refusal.since),
                reason: Some(refusal.reason),
            };
        }
        let pulse = vitals.telemetry.pulse();
        if pulse.stopped {
            worse(
                Condition::Down,
                "the scheduler stopped: no ticks are recorded; restart plantao".into(),
                &mut reasons,
            );
        } else if let Some(due) = pulse.next_due {
            let late = (now - due).to_std().unwrap_or_default();
            if late > SCHEDULER_LATE {
                worse(
                    Condition::Degraded,
                    format!("the scheduler is {} s late on a tick", late.as_secs()),
                    &mut reasons,
                );
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let age = pulse
            .last_pass
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1e3);
        scheduler = Some(SchedulerHealth {
            running: !pulse.stopped,
            last_pass_age_seconds: age,
            next_tick: pulse.next_due,
        });
    }
    Health {
        status,
        reasons,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_seconds: state.started.elapsed().as_secs(),
        resident_memory_bytes: resident_memory(),
        node: state.vitals.as_ref().map(|v| v.node.clone()),
        database: DatabaseHealth {
            backend: format!("{:?}", state.store.backend()).to_lowercase(),
            reachable,
            latency_ms,
        },
        storage,
        scheduler,
        nodes,
    }
}

/// VmRSS from `/proc/self/status`, where there is one.
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
