//! `plantao serve`: the daemon, with its signals. SIGTERM and Ctrl-C stop it gracefully;
//! SIGHUP reloads the configuration, keeping the old one when the new one has mistakes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use plantao_engine::clock::SystemClock;
use plantao_engine::daemon::Daemon;
use plantao_web::{AppState, Vitals};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::LogFormat;
use crate::commands::{load_config, open_store, sync_pipelines};
use crate::failure::Failure;

pub async fn run(config_path: &Path, log_format: LogFormat) -> Result<(), Failure> {
    let started = Instant::now();
    init_logs(log_format);
    if !config_path.exists() {
        return Err(Failure::Usage(format!(
            "no configuration at {}.\n\
             To try plantao:   plantao serve --config examples/quickstart/plantao.toml\n\
             To start your own: plantao config example > plantao.toml (then add pipelines/NAME.toml)",
            config_path.display()
        )));
    }
    let config = Arc::new(load_config(config_path)?);
    let store = open_store(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| {
            Failure::Usage(format!(
                "cannot listen on {} ([server] listen): {e}; is another plantao running there? Pick another port",
                config.server.listen
            ))
        })?;
    let address = listener.local_addr().map_err(io)?;
    let daemon = Daemon::start(config.clone(), store.clone(), Arc::new(SystemClock)).await?;
    let (config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
    let state = AppState::new(
        store.clone(),
        config_rx,
        Some(Vitals {
            node: daemon.node().to_owned(),
            writable: daemon.writable().clone(),
            telemetry: daemon.telemetry().clone(),
            ended: daemon.ended().clone(),
        }),
    );
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plantao_web::launch(listener, state, async {
        let _ = http_stopped.await;
    }));
    let mut terminate = signal(SignalKind::terminate()).map_err(io)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io)?;
    tracing::info!(
        pipelines = config.pipelines.len(),
        config = %config.file.display(),
        node = daemon.node(),
        listen = %address,
        startup_ms = started.elapsed().as_millis() as u64,
        "plantao is serving"
    );
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => match load_config(config_path) {
                Ok(new) => {
                    let new = Arc::new(new);
                    match sync_pipelines(store.as_ref(), &new).await {
                        Ok(()) => {
                            tracing::info!(pipelines = new.pipelines.len(), "configuration reloaded");
                            config_tx.send_replace(new.clone());
                            daemon.reload(new);
                        }
                        Err(e) => tracing::error!(error = %e, "configuration not reloaded: the store refused it"),
                    }
                }
                Err(e) => tracing::error!("configuration not reloaded, the old one stays:\n{e}"),
            },
        }
    }
    tracing::info!("stopping: no new runs; running ones get their grace period");
    daemon.shut_down().await?;
    let _ = stop_http.send(());
    match server.await {
        Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed"),
        Err(e) => tracing::error!(error = %e, "the HTTP server stopped abnormally"),
        Ok(Ok(())) => {}
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn io(e: std::io::Error) -> Failure {
    Failure::Usage(format!("cannot listen for signals: {e}"))
}

pub(crate) fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
