//! Loopback stand-ins for what `examples/biz-reports` talks to, so the example runs on a laptop
//! with nothing else installed:
//!
//! - the care agency's own app ([`app`]): its `reports` table in a SQLite file (the one the
//!   example's SQL probe reads), the job endpoints the pipelines' steps call, and `/health`;
//! - the Evolution API that sends WhatsApp messages, and a Slack incoming webhook
//!   ([`services`]): both keep what they receive, for a person (`GET /messages`, or the demo's
//!   output) and for a test ([`Standins::messages`]).
//!
//! Everything an outcome depends on comes from [`Options::seed`], so a test sees the same
//! shifts every time and the demo different ones.

pub mod app;
pub mod services;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Where the stand-ins listen and how the app behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The app's address (port 0: any free one).
    pub app: SocketAddr,
    pub evolution: SocketAddr,
    pub slack: SocketAddr,
    /// The app's SQLite file, created with its table when missing.
    pub database: PathBuf,
    /// What the app wants in `Authorization: Bearer …` on its job endpoints.
    pub app_token: String,
    /// What the Evolution stand-in wants in its `apikey` header.
    pub evolution_key: String,
    /// The seed of every number the app makes up.
    pub seed: u64,
    /// Every n-th call of the app's process job answers 503, as an overloaded AI provider does
    /// (what the step's retries are for); 0 never.
    pub flaky_every: u32,
}

/// A message one of the services received.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    /// `whatsapp` or `slack`.
    pub service: &'static str,
    /// The phone number (WhatsApp) or the webhook's path (Slack).
    pub to: String,
    pub text: String,
}

/// The messages received so far, and a feed of the next ones.
#[derive(Debug, Clone)]
pub struct Inbox {
    received: Arc<Mutex<Vec<Message>>>,
    feed: broadcast::Sender<Message>,
}

impl Inbox {
    fn new() -> Inbox {
        Inbox {
            received: Arc::default(),
            feed: broadcast::channel(256).0,
        }
    }

    fn push(&self, message: Message) {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(message.clone());
        // Nobody listening is fine: the list keeps it.
        let _ = self.feed.send(message);
    }

    fn all(&self) -> Vec<Message> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The running stand-ins; they stop with the runtime that started them.
#[derive(Debug)]
pub struct Standins {
    pub app: SocketAddr,
    pub evolution: SocketAddr,
    pub slack: SocketAddr,
    inbox: Inbox,
}

impl Standins {
    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.inbox.all()
    }

    /// The messages received from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.inbox.feed.subscribe()
    }
}

/// Binds the three addresses, opens (or creates) the app's database and serves until the
/// runtime stops.
pub async fn start(options: Options) -> anyhow::Result<Standins> {
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the {what} stand-in"))
    };
    let app = bind(options.app, "app").await?;
    let evolution = bind(options.evolution, "Evolution API").await?;
    let slack = bind(options.slack, "Slack").await?;
    let standins = Standins {
        app: app.local_addr()?,
        evolution: evolution.local_addr()?,
        slack: slack.local_addr()?,
        inbox: Inbox::new(),
    };
    let router = app::router(app::App::open(&options, standins.evolution, standins.slack).await?);
    serve(app, router);
    serve(
        evolution,
        services::evolution(standins.inbox.clone(), options.evolution_key.clone()),
    );
    serve(slack, services::slack(standins.inbox.clone()));
    Ok(standins)
}

fn serve(listener: TcpListener, router: axum::Router) {
    tokio::spawn(async move { axum::serve(listener, router).await });
}
