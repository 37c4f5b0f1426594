use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// plantao: runs your scheduled pipelines, watches your jobs and endpoints, records every run,
/// and raises the alarm.
#[derive(Debug, Parser)]
#[command(name = "plantao", version, about, long_about = None)]
pub struct Cli {
    /// The main configuration file; pipelines are read from the `pipelines/` folder beside it.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "PLANTAO_CONFIG",
        default_value = "plantao.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration and every pipeline; print `ok: N pipelines` or every problem.
    Validate,
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a documented example: `plantao config example > plantao.toml`.
    Example {
        /// Print an example pipeline file instead (for `pipelines/NAME.toml`).
        #[arg(long)]
        pipeline: bool,
    },
}
