use std::path::Path;

use crate::commands::load_config;
use crate::failure::Failure;

pub fn run(config: &Path) -> Result<(), Failure> {
    let c = load_config(config)?;
    let n = c.pipelines.len();
    println!("ok: {n} pipeline{}", if n == 1 { "" } else { "s" });
    Ok(())
}
