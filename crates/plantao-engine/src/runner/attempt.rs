use plantao_model::StageStatus;
use tokio::sync::watch;

/// Resolves once `cancel` turns true; never, if its sender is gone without doing so.
pub(crate) async fn cancelled(mut cancel: watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
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
