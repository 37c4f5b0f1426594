//! `[self_heartbeat]`: this node pings a dead-man's switch elsewhere every period while it can
//! write to its store, so someone learns when plantao itself is down (or cannot record runs).
//! Every node pings: the switch hears from plantao while any node is healthy.

use std::sync::Arc;

use plantao_config::Config;
use tokio::sync::watch;

use crate::writable::Writable;

#[derive(Debug)]
pub struct SelfHeartbeat {
    pub config: watch::Receiver<Arc<Config>>,
    pub writable: Arc<Writable>,
}

impl SelfHeartbeat {
    /// Runs until `stop` turns true; does nothing while the configuration has no
    /// `[self_heartbeat]` (a reload may add one).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut failing = false;
        loop {
            let (target, period) = {
                let config = self.config.borrow();
                match &config.self_heartbeat {
                    Some(s) => (Some((s.url.expose().to_owned(), s.timeout)), s.period),
                    None => (None, std::time::Duration::from_secs(5)),
                }
            };
            if let Some((url, timeout)) = target
                && self.writable.refusal().is_none()
            {
                let answer = crate::http_client()
                    .get(&url)
                    .timeout(timeout)
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())
                    .and_then(|r| {
                        r.error_for_status()
                            .map(drop)
                            .map_err(|e| e.without_url().to_string())
                    });
                match answer {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("the self heartbeat is delivered again");
                    }
                    Ok(()) => {}
                    Err(why) if !failing => {
                        failing = true;
                        tracing::warn!(error = %why, "cannot deliver the self heartbeat; retrying every period");
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
}
