use std::fmt;
use std::process::ExitCode;

use plantao_config::Diagnostics;

/// Why a command failed, and so its exit code: 2 for configuration and usage errors (as clap
/// uses for usage), 1 for everything else.
#[derive(Debug)]
pub enum Failure {
    Config(Diagnostics),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Config(_) => ExitCode::from(2),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Config(d) => write!(f, "{d}"),
        }
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Config(d)
    }
}
