//! The exit-code table every command follows (docs/operations.md#exit-codes), decided here alone:
//! a command returns how it ended ([`Outcome`]) or why it stopped ([`CliError`]), and [`finish`]
//! turns either into the process's exit code.

use std::process::ExitCode;

use super::error::{CliError, MappingReadError};
use crate::config::{ConfigError, ParameterError};
use crate::lambda::HandlerError;
use crate::mapping_file::LoadError;
use crate::sink::SinkError;

/// What an exit code says, for every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: done.
    Done,
    /// 1: a mapping or an environments file refused, or embedded tests failed. Running again
    /// changes nothing until they are fixed.
    Refused,
    /// 2: a usage error, or input that cannot be read or does not exist (a file, an S3 object, a
    /// topic, an SSM parameter).
    Usage,
    /// 3: infrastructure: a Kafka cluster, S3, SSM or the AWS credentials unreachable or
    /// refusing, an address that cannot be listened on, or the worker giving up on its cluster.
    /// The same command may succeed later.
    Infrastructure,
    /// 101: a bug (a thread of the command panicked), as a panic of any Rust program exits.
    Bug,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Refused => 1,
            Exit::Usage => 2,
            Exit::Infrastructure => 3,
            Exit::Bug => 101,
        }
    }
}

/// `diff-mapping`'s answer when the edit changes at least one record: 3, its contract from before
/// this table, which review scripts rely on.
pub const CHANGED: u8 = 3;

/// A command stopped on request before its end (`replay` after SIGINT or SIGTERM): 130, as a
/// shell reports a command stopped by SIGINT.
pub const INTERRUPTED: u8 = 130;

/// How a command that ran to its end ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// What is wrong is already in the command's report (`validate-mapping`, `validate-config`):
    /// the exit says which kind of wrong.
    Reported(Exit),
    /// `diff-mapping`: some record changes ([`CHANGED`]).
    Changed,
    /// Stopped on request; a run of the same command resumes ([`INTERRUPTED`]).
    Interrupted,
}

impl Outcome {
    pub const fn code(self) -> u8 {
        match self {
            Outcome::Done => Exit::Done.code(),
            Outcome::Reported(exit) => exit.code(),
            Outcome::Changed => CHANGED,
            Outcome::Interrupted => INTERRUPTED,
        }
    }
}

/// The process's exit code for how a command ended; one that stopped says why on stderr.
pub fn finish(result: Result<Outcome, CliError>) -> ExitCode {
    match result {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(e) => {
            eprintln!("lambda-stream: {e}");
            ExitCode::from(exit_of(&e).code())
        }
    }
}

/// The row of the table an error is.
pub fn exit_of(e: &CliError) -> Exit {
    match e {
        CliError::Read { .. }
        | CliError::WriteFile { .. }
        | CliError::Input { .. }
        | CliError::Write(_)
        | CliError::Usage(_) => Exit::Usage,
        CliError::ReadMapping { source, .. } => mapping_read(source),
        // The machine the command runs on, as a listening address is.
        CliError::Runtime(_) | CliError::Listen { .. } => Exit::Infrastructure,
        CliError::Mapping(e) => load(e),
        CliError::Event(e) => handler(e),
        CliError::Sink(e) => sink(e),
        CliError::Config(e) => config(e),
        #[cfg(feature = "kafka")]
        CliError::Worker(e) => kafka::worker(e),
        #[cfg(feature = "kafka")]
        CliError::MappingSource(e) => kafka::mapping_source(e),
        #[cfg(feature = "kafka")]
        CliError::Metrics(_) => Exit::Infrastructure,
        #[cfg(feature = "kafka")]
        CliError::Range(e) => kafka::range(e),
        #[cfg(feature = "kafka")]
        CliError::Replay(e) => kafka::replay(e),
        #[cfg(feature = "kafka")]
        CliError::Time(_) => Exit::Usage,
        #[cfg(feature = "kafka")]
        CliError::Registry(_) => Exit::Infrastructure,
    }
}

fn load(e: &LoadError) -> Exit {
    match e {
        LoadError::Invalid { .. } => Exit::Refused,
        LoadError::Io { .. } => Exit::Usage,
    }
}

/// Also `validate-mapping`'s, for a file it names in its report.
pub(super) fn mapping_read(e: &MappingReadError) -> Exit {
    match e {
        MappingReadError::File(_) => Exit::Usage,
        #[cfg(feature = "kafka")]
        MappingReadError::S3(e) => kafka::mapping_source(e),
        #[cfg(not(feature = "kafka"))]
        MappingReadError::NeedsFullBuild => Exit::Usage,
    }
}

fn handler(e: &HandlerError) -> Exit {
    match e {
        HandlerError::Event(_) => Exit::Usage,
        HandlerError::Undelivered { .. } => Exit::Infrastructure,
        #[cfg(feature = "kafka")]
        HandlerError::Registry(_) => Exit::Infrastructure,
    }
}

fn sink(e: &SinkError) -> Exit {
    match e {
        SinkError::Config(_) => Exit::Usage,
        SinkError::Create(_) | SinkError::Delivery { .. } | SinkError::Failed { .. } | SinkError::Timeout { .. } => {
            Exit::Infrastructure
        }
    }
}

fn config(e: &ConfigError) -> Exit {
    match e {
        // What `validate-config` refuses.
        ConfigError::File { .. } => Exit::Refused,
        ConfigError::Parameter { source, .. } => parameter(source),
        ConfigError::Missing { .. }
        | ConfigError::Invalid { .. }
        | ConfigError::Number { .. }
        | ConfigError::Reference { .. }
        | ConfigError::Read { .. }
        | ConfigError::UnknownEnvironment { .. }
        | ConfigError::UnknownStage { .. }
        | ConfigError::AmbiguousStage { .. } => Exit::Usage,
    }
}

fn parameter(e: &ParameterError) -> Exit {
    match e {
        ParameterError::NoStore | ParameterError::NotFound => Exit::Usage,
        ParameterError::NotFetched => Exit::Infrastructure,
        #[cfg(feature = "kafka")]
        ParameterError::Ssm(_) => Exit::Infrastructure,
    }
}

/// The errors of the commands that talk to a cluster or to AWS (the full build's).
#[cfg(feature = "kafka")]
mod kafka {
    // Named from the crate: this module's `super` is `exit`.
    use crate::cli::exit::{Exit, sink};
    use crate::mapping_source::{S3Error, SourceError};
    use crate::sink::kafka::is_configuration;
    use crate::worker::WorkerError;
    use crate::worker::range::RangeError;
    use crate::worker::replay::ReplayError;

    pub(super) fn mapping_source(e: &SourceError) -> Exit {
        match e {
            SourceError::Invalid { .. }
            | SourceError::Tests { .. }
            | SourceError::Topics { .. }
            | SourceError::Structured { .. } => Exit::Refused,
            SourceError::S3 { source: S3Error::TooLarge(_), .. } => Exit::Usage,
            SourceError::S3 { .. } if e.is_missing() => Exit::Usage,
            SourceError::S3 { .. } => Exit::Infrastructure,
            SourceError::Location { .. } | SourceError::Io { .. } | SourceError::NotText { .. } => Exit::Usage,
            SourceError::Registry(_) => Exit::Usage,
            // As `process` does: a registry that fails to answer is the infrastructure's.
            SourceError::Output(crate::format::output::OutputError::Registry(_)) => Exit::Infrastructure,
            SourceError::Output(_) => Exit::Usage,
        }
    }

    pub(super) fn worker(e: &WorkerError) -> Exit {
        match e {
            WorkerError::Consumer(k) | WorkerError::Subscribe { source: k, .. } if is_configuration(k) => Exit::Usage,
            WorkerError::Consumer(_) | WorkerError::Subscribe { .. } => Exit::Infrastructure,
            WorkerError::Producer(e) => sink(e),
            WorkerError::Undeliverable { .. } | WorkerError::Transaction(_) | WorkerError::Registry(..) => {
                Exit::Infrastructure
            }
            WorkerError::Mapping(_) => Exit::Bug,
        }
    }

    pub(super) fn range(e: &RangeError) -> Exit {
        match e {
            RangeError::Context(e) => sink(e),
            RangeError::Consumer(k) if is_configuration(k) => Exit::Usage,
            RangeError::NoSuchTopic { .. } => Exit::Usage,
            RangeError::Consumer(_)
            | RangeError::Metadata { .. }
            | RangeError::End { .. }
            | RangeError::OffsetsForTimes(_)
            | RangeError::Partition { .. }
            | RangeError::Silent { .. } => Exit::Infrastructure,
        }
    }

    pub(super) fn replay(e: &ReplayError) -> Exit {
        match e {
            ReplayError::Range(e) => range(e),
            ReplayError::NoSuchTopic { .. } => Exit::Usage,
            ReplayError::Committed(_)
            | ReplayError::Read { .. }
            | ReplayError::Silent { .. }
            | ReplayError::Delivery(_)
            | ReplayError::Commit(_)
            | ReplayError::Thread { .. }
            | ReplayError::Registry(_) => Exit::Infrastructure,
            ReplayError::Panicked { .. } => Exit::Bug,
        }
    }
}
