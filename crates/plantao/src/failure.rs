use std::fmt;
use std::process::ExitCode;

use plantao_config::Diagnostics;
use plantao_engine::RunError;
use plantao_model::RunStatus;
use plantao_store::StoreError;

/// Why a command failed, and so its exit code: 2 for configuration and usage errors (as clap
/// uses for usage), 3 for a run that ended `partial`, 1 for everything else.
#[derive(Debug)]
pub enum Failure {
    Config(Diagnostics),
    Usage(String),
    /// Something asked for that is not there (a run id): exit 1.
    Missing(String),
    Store(StoreError),
    Run(RunError),
    /// A run that ended without succeeding; its summary was printed already.
    Ended(RunStatus),
    /// A wrapped command's own exit status, passed on.
    Exit(u8),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Config(_) | Failure::Usage(_) => ExitCode::from(2),
            Failure::Ended(RunStatus::Partial) => ExitCode::from(3),
            Failure::Exit(code) => ExitCode::from(*code),
            Failure::Missing(_) | Failure::Store(_) | Failure::Run(_) | Failure::Ended(_) => {
                ExitCode::from(1)
            }
        }
    }

    /// Whether there is anything left to say on stderr.
    pub fn silent(&self) -> bool {
        matches!(self, Failure::Ended(_) | Failure::Exit(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Config(d) => write!(f, "{d}"),
            Failure::Usage(m) | Failure::Missing(m) => write!(f, "error: {m}"),
            Failure::Store(e) => write!(f, "error: {e}"),
            Failure::Run(e) => write!(f, "error: {e}"),
            Failure::Ended(s) => write!(f, "the run ended {s}"),
            Failure::Exit(code) => write!(f, "the command exited with status {code}"),
        }
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Config(d)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        Failure::Run(e)
    }
}
