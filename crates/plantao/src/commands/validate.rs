use std::path::Path;

use crate::commands::load_config;
use crate::failure::Failure;

pub fn run(config: &Path) -> Result<(), Failure> {
    let c = load_config(config)?;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut parts = vec![
        plural(c.pipelines.len(), "pipeline"),
        plural(c.alerts.len(), "alert rule"),
        plural(c.channels.len(), "channel"),
    ];
    // Checks and patterns are named only where there are some, so configurations without them
    // read as before.
    if !c.heartbeats.is_empty() {
        parts.push(plural(c.heartbeats.len(), "heartbeat"));
    }
    if !c.probes.is_empty() {
        parts.push(plural(c.probes.len(), "probe"));
    }
    if !c.patterns.is_empty() {
        parts.push(plural(c.patterns.len(), "pattern"));
    }
    println!("ok: {}", parts.join(", "));
    Ok(())
}
