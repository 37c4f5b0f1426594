pub mod config;
pub mod validate;

use std::path::Path;

use plantao_config::Config;

use crate::failure::Failure;

/// Loads the configuration with the process environment.
pub fn load_config(path: &Path) -> Result<Config, Failure> {
    Ok(plantao_config::load(path, &|name| {
        std::env::var(name).ok()
    })?)
}
