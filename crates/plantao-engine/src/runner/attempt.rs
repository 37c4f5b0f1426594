use plantao_model::StageStatus;
use tokio::sync::watch;

/// Why a run is asked to stop early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Someone cancelled it: the run ends `cancelled`.
    Cancel,
    /// plantao is shutting down: the run ends `interrupted`.
    Shutdown,
}

/// What a run watches to know it should stop; `None` while it should go on.
pub type StopSignal = watch::Receiver<Option<Stop>>;

/// Resolves once a stop is asked for; never, if the sender is gone without asking.
pub(crate) async fn cancelled(mut cancel: StopSignal) {
    if cancel.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What one attempt of one step produced, whatever kind of step it was.
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    pub status: Option<StageStatus>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub log: String,
    pub counters: Vec<(String, f64)>,
    pub outputs: Vec<(String, String)>,
    /// `state.KEY` values it reported.
    pub state: Vec<(String, String)>,
    pub cpu_user_ms: Option<i64>,
    pub cpu_system_ms: Option<i64>,
    pub peak_rss_kb: Option<i64>,
}

impl Attempt {
    pub fn failed(error: impl Into<String>, log: String) -> Self {
        Attempt {
            status: Some(StageStatus::Failed),
            error: Some(error.into()),
            log,
            ..Default::default()
        }
    }

    pub fn status(&self) -> StageStatus {
        self.status.unwrap_or(StageStatus::Failed)
    }
}
