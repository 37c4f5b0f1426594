use std::path::Path;

use crate::commands::load_config;
use crate::failure::Failure;

pub fn run(config: &Path) -> Result<(), Failure> {
    let c = load_config(config)?;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "ok: {}, {}, {}",
        plural(c.pipelines.len(), "pipeline"),
        plural(c.alerts.len(), "alert rule"),
        plural(c.channels.len(), "channel")
    );
    Ok(())
}
