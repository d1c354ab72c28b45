//! What stops a command, and the exit code it gives.

use std::io;
use std::process::ExitCode;

use crate::plan;

/// Problems that stop a command (as opposed to records that fail, which are output).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    /// Input that cannot be read as what it should be, at a line of it.
    #[error("{path}:{line}: {message}")]
    Input { path: String, line: usize, message: String },
    #[error("cannot write output: {0}")]
    Write(#[from] io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    #[error("{0}")]
    Mapping(#[from] plan::LoadError),
    #[error("{0}")]
    Event(#[from] crate::lambda::HandlerError),
    #[error("{0}")]
    Sink(#[from] crate::sink::SinkError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[cfg(feature = "kafka")]
    #[error("{0}")]
    Worker(#[from] crate::worker::WorkerError),
    #[cfg(feature = "kafka")]
    #[error("{0}")]
    MappingSource(#[from] crate::mapping_source::SourceError),
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Mapping(plan::LoadError::Invalid { .. }) => ExitCode::from(1),
            // A worker that stops on an infrastructure failure: a supervisor should restart it.
            #[cfg(feature = "kafka")]
            CliError::Worker(_) => ExitCode::from(1),
            #[cfg(feature = "kafka")]
            CliError::MappingSource(
                crate::mapping_source::SourceError::Invalid { .. } | crate::mapping_source::SourceError::Tests { .. },
            ) => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}
