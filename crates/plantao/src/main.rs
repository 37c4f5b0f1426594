//! `plantao`: the command line. Parses arguments, loads the configuration, and hands over to
//! one command; every command maps its failure to an exit code in one place (`Failure`).

// Printing is this crate's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod failure;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ConfigCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Validate => commands::validate::run(&cli.config),
        Command::Config {
            command: ConfigCommand::Example { pipeline },
        } => {
            commands::config::example(pipeline);
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            failure.exit_code()
        }
    }
}
