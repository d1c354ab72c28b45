//! What stops a command (as opposed to records that fail, which are output). Which exit code each
//! gives is decided in [`super::exit`].

use std::io;

/// Problems that stop a command. Each keeps its cause as its source; the message (its `Display`)
/// is what the command prints on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    /// A mapping named by its location (a file or an `s3://` object) that cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadMapping { path: String, source: MappingReadError },
    #[error("cannot write {path}: {source}")]
    WriteFile { path: String, source: io::Error },
    /// Input that cannot be read as what it should be, at a line of it.
    #[error("{path}:{line}: {message}")]
    Input { path: String, line: usize, message: String },
    #[error("cannot write output: {0}")]
    Write(#[from] io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: io::Error },
    #[error(transparent)]
    Mapping(#[from] crate::mapping_file::LoadError),
    #[error(transparent)]
    Event(#[from] crate::lambda::HandlerError),
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Worker(Box<crate::worker::WorkerError>),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    MappingSource(#[from] crate::mapping_source::SourceError),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Metrics(#[from] crate::worker::metrics::EndpointError),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Range(Box<crate::worker::range::RangeError>),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Replay(Box<crate::worker::replay::ReplayError>),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Time(#[from] BadTime),
    /// The schema registry could not answer.
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Registry(#[from] crate::format::registry::RegistryError),
    #[error("{0}")]
    Usage(String),
}

/// Why the text of a named mapping could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MappingReadError {
    #[error(transparent)]
    File(#[from] std::io::Error),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    S3(#[from] crate::mapping_source::SourceError),
    #[cfg(not(feature = "kafka"))]
    #[error(
        "s3:// mappings are read by the full build (this is the mapping-tools build); copy the object with `aws s3 cp` first"
    )]
    NeedsFullBuild,
}

/// A `--since` or `--until` value that is neither a duration ago nor an RFC 3339 time.
#[cfg(feature = "kafka")]
#[derive(Debug, thiserror::Error)]
#[error("`{text}` is not a duration ago (2h, 30m, 1d) or an RFC 3339 time (2026-12-01T08:00:00Z)")]
pub struct BadTime {
    pub(super) text: String,
    /// Why it is not RFC 3339.
    pub(super) source: chrono::ParseError,
}

/// The errors of the cluster's clients are large (librdkafka's own is most of a hundred bytes):
/// boxed, so every command's result stays small.
#[cfg(feature = "kafka")]
macro_rules! boxed_from {
    ($($variant:ident($error:ty)),*) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                CliError::$variant(Box::new(e))
            }
        }
    )*};
}

#[cfg(feature = "kafka")]
boxed_from!(
    Worker(crate::worker::WorkerError),
    Range(crate::worker::range::RangeError),
    Replay(crate::worker::replay::ReplayError)
);
