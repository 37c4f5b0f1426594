//! `biz-reports-standins [--app ADDR] [--evolution ADDR] [--slack ADDR] [--database FILE]
//! [--seed N] [--flaky-every N]`: the example's app, Evolution API and Slack on loopback,
//! printing each message the services receive until Ctrl-C. `examples/biz-reports/demo`
//! starts it beside `plantao serve`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use biz_reports_standins::Options;

const USAGE: &str = "usage: biz-reports-standins [--app ADDR] [--evolution ADDR] [--slack ADDR] [--database FILE] [--seed N] [--flaky-every N]";

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        app: SocketAddr::from(([127, 0, 0, 1], 8091)),
        evolution: SocketAddr::from(([127, 0, 0, 1], 8092)),
        slack: SocketAddr::from(([127, 0, 0, 1], 8093)),
        database: PathBuf::from("app.db"),
        app_token: std::env::var("BIZ_APP_TOKEN").unwrap_or_else(|_| "demo-app-token".into()),
        evolution_key: std::env::var("EVOLUTION_API_KEY")
            .unwrap_or_else(|_| "demo-evolution-key".into()),
        seed: u64::from(std::process::id()) ^ chrono::Utc::now().timestamp().unsigned_abs(),
        flaky_every: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let what = || format!("{flag} {value}");
        match flag.as_str() {
            "--app" => options.app = value.parse().with_context(what)?,
            "--evolution" => options.evolution = value.parse().with_context(what)?,
            "--slack" => options.slack = value.parse().with_context(what)?,
            "--database" => options.database = PathBuf::from(&value),
            "--seed" => options.seed = value.parse().with_context(what)?,
            "--flaky-every" => options.flaky_every = value.parse().with_context(what)?,
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let standins = biz_reports_standins::start(options.clone()).await?;
    let mut feed = standins.subscribe();
    let mut out = std::io::stdout();
    writeln!(
        out,
        "stand-ins: app http://{} (database {}), Evolution API http://{}, Slack http://{}",
        standins.app,
        options.database.display(),
        standins.evolution,
        standins.slack
    )?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            received = feed.recv() => match received {
                Ok(m) => writeln!(out, "[{} → {}] {}", m.service, m.to, m.text)?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    writeln!(out, "[{n} messages not shown: see GET /messages]")?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}
