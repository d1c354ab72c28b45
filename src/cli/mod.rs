//! The command line: argument parsing (clap), and one module per command.
//!
//! - [`validate`] — `validate-mapping` and `validate-config`: every problem as `FILE:LINE:COL`.
//! - [`schema_check`] — the schemas `validate-mapping` holds a mapping to (files, a registry).
//! - [`diff`] — `diff-mapping`: what an edit of a mapping changes on sample records.
//! - [`explain`](mod@explain) — what a mapping does with one record, field by field.
//! - [`failures`](mod@failures) — triage of a fail topic: what failed, by stage, rule, mapping and topic.
//! - [`replay`](mod@replay) — a fail topic run through a (fixed) mapping again.
//! - [`init`] — a starter mapping inferred from sample records; [`init_schema`] from a schema.
//! - [`playground`] — a local page to edit a mapping against samples, with results as you type.
//! - [`source`] — the mapping a command names: a file, or (full build) an `s3://` object.
//! - [`process`] — the local dry run on JSON lines or a saved Lambda event.
//! - [`run`](mod@run) — `lambda-stream run`, the consumer-group worker, and its watchdog.
//!
//! Every command returns how it ended or why it stopped; [`exit`] alone turns that into the exit
//! code, by one table: 0 done, 1 a mapping or environments file refused (or tests failed), 2 usage
//! errors and input that cannot be read, 3 infrastructure (a broker, S3, SSM unreachable or
//! refusing).

pub mod diff;
mod error;
pub mod exit;
pub mod explain;
#[cfg(feature = "kafka")]
pub mod failures;
pub mod formats;
pub mod init;
pub mod init_schema;
pub mod playground;
pub mod process;
#[cfg(feature = "kafka")]
pub mod replay;
#[cfg(feature = "kafka")]
pub mod run;
pub mod schema_check;
pub mod source;
pub mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;
use exit::{Exit, Outcome};
#[cfg(feature = "kafka")]
pub use run::RunArgs;
pub use validate::Format;

#[derive(Debug, Parser)]
#[command(name = "lambda-stream", version, about = "Config-driven mapping between two Kafka topics")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check mapping files: compile each one, run its embedded tests, and hold it to the schemas of
    /// its topics when it names them or they are given.
    ValidateMapping {
        /// Mapping files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Hold what each mapping reads to this schema: a schema file (Avro .avsc, Protobuf .proto or JSON
        /// Schema), or registry:SUBJECT[@VERSION] from SCHEMA_REGISTRY_URL (full build). Overrides the
        /// mapping's `source_schema:`.
        #[arg(long, value_name = "SCHEMA")]
        source_schema: Option<String>,
        /// Hold what each mapping writes to this schema, given the same way. Overrides the
        /// mapping's `target_schema:`.
        #[arg(long, value_name = "SCHEMA")]
        target_schema: Option<String>,
    },
    /// Show what an edit of a mapping would change: map every sample with both and print the
    /// records whose route, values or errors differ. Exit 0 when nothing changed, 3 when something
    /// did, 1 when a mapping is invalid, 2 for unreadable files.
    #[command(group = clap::ArgGroup::new("records").required(true).multiple(false))]
    DiffMapping {
        /// The mapping as it is (YAML).
        old: PathBuf,
        /// The mapping as edited (YAML).
        new: PathBuf,
        /// Sample record values, one JSON object per line.
        #[arg(long, group = "records")]
        input: Option<PathBuf>,
        /// A saved Lambda Kafka event.
        #[arg(long, group = "records")]
        event: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        records: formats::RecordFormatArgs,
    },
    /// Show what a mapping does with one record, field by field: where each source led, the value
    /// after each transform, each check, condition and rule, and the output or errors.
    Explain {
        /// The mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// One record value (JSON; base64 with --records-format avro); `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// Only this target (and the targets under it).
        #[arg(long)]
        field: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        records: formats::RecordFormatArgs,
    },
    /// Write a starter mapping from sample records (JSON lines): every field, type and check
    /// inferred from the samples and marked `# guess:`, with embedded tests from two samples; or
    /// from the schema of the records (--from-schema): every field the schema has, typed as it is.
    #[command(group = clap::ArgGroup::new("starter").required(true).multiple(false))]
    Init {
        /// Sample record values, one JSON object per line.
        #[arg(long, group = "starter")]
        from: Option<PathBuf>,
        /// The schema of the records: a schema file (Avro .avsc, Protobuf .proto or JSON
        /// Schema), or registry:SUBJECT[@VERSION] from SCHEMA_REGISTRY_URL (full build).
        #[arg(long, group = "starter", value_name = "SCHEMA")]
        from_schema: Option<String>,
        /// The mapping's name (default: the samples' or the schema's file name, or the subject).
        #[arg(long)]
        name: Option<String>,
        /// Write the mapping to this file (it must not exist yet) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Edit a mapping in the browser against sample records: results and problems as you type,
    /// explain for any sample, and save only what compiles. Serves on 127.0.0.1 only.
    Playground {
        /// The mapping file (written back by Save).
        #[arg(long)]
        mapping: PathBuf,
        /// Sample record values, one JSON object per line (the first 1000 are used).
        #[arg(long)]
        samples: PathBuf,
        /// Port on 127.0.0.1 (0 takes any free port).
        #[arg(long, default_value_t = 8780)]
        port: u16,
    },
    /// Print the JSON Schema of mapping files, for editors (the same as schema/mapping.schema.json).
    Schema,
    /// Check environments files: every environment's settings, and the mapping each one names.
    ValidateConfig {
        /// environments.yaml files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run a mapping locally: on JSON lines (dry run), or on a saved Lambda Kafka event through the
    /// same handler code as the function (dry run, or produced to a real cluster with --brokers).
    #[command(group = clap::ArgGroup::new("records").required(true).multiple(false))]
    Process {
        /// The mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// JSON lines, one record value per line; `-` reads standard input.
        #[arg(long, group = "records")]
        input: Option<PathBuf>,
        /// A Lambda Kafka event (MSK or self-managed), as the function receives it.
        #[arg(long, group = "records")]
        event: Option<PathBuf>,
        /// Lines longer than this many bytes fail with rule `size` instead of being mapped.
        #[arg(long, default_value_t = process::DEFAULT_MAX_LINE_BYTES, requires = "input")]
        max_line_bytes: usize,
        /// Print the messages that would be produced — topic, key, headers, payload, the fail
        /// envelope included — instead of one route per record.
        #[arg(long, conflicts_with = "brokers")]
        messages: bool,
        /// Also print the batch's CloudWatch EMF metric documents, as the function writes them
        /// (with --event; namespace from METRICS_NAMESPACE).
        #[arg(long, requires = "event")]
        metrics: bool,
        /// Produce to this Kafka cluster instead of printing (with --event).
        #[arg(long, requires_all = ["event", "topic_ok", "topic_fail"])]
        brokers: Option<String>,
        /// Destination topic for mapped records.
        #[arg(long)]
        topic_ok: Option<String>,
        /// Destination topic for failed records.
        #[arg(long)]
        topic_fail: Option<String>,
        #[command(flatten)]
        formats: formats::FormatArgs,
        #[command(flatten)]
        output: formats::OutputArgs,
    },
    /// Triage a fail topic: counts by stage, field:rule, mapping and source topic, with first and
    /// last time seen and an example each. Reads from a point in time without a consumer group and
    /// commits nothing.
    #[cfg(feature = "kafka")]
    Failures(failures::FailuresArgs),
    /// Replay a fail topic through a (fixed) mapping: each record rebuilt from its envelope (key,
    /// value, original headers, timestamp), mapped again, sent to --topic-ok or --topic-fail, up
    /// to the end of the fail topic as it was when the replay started. Offsets are committed
    /// under --group after delivery, so an interrupted replay resumes.
    #[cfg(feature = "kafka")]
    Replay(Box<replay::ReplayArgs>),
    /// Run as a Kafka consumer-group worker: consume, map, produce to the ok and fail topics, and
    /// commit offsets only after delivery. Stops cleanly on SIGTERM or Ctrl-C.
    #[cfg(feature = "kafka")]
    Run(Box<RunArgs>),
}

/// Runs a parsed command line; the exit code follows the table in [`exit`].
pub fn run(cli: Cli) -> ExitCode {
    exit::finish(dispatch(cli))
}

fn dispatch(cli: Cli) -> Result<Outcome, CliError> {
    let Some(command) = cli.command else {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let _ = cmd.print_help();
        return Ok(Outcome::Reported(Exit::Usage));
    };
    match command {
        Command::ValidateMapping { files, format, source_schema, target_schema } => {
            let schemas = validate::SchemaFlags { source: source_schema.as_deref(), target: target_schema.as_deref() };
            validate::validate_mapping(&files, format, schemas)
        }
        Command::ValidateConfig { files, format } => validate::validate_config(&files, format),
        Command::Explain { mapping, input, field, format, records } => {
            explain::explain(&mapping, &input, field.as_deref(), format, &records.line_format()?)
        }
        Command::DiffMapping { old, new, input, event, format, records } => {
            let records = records.line_format()?;
            let samples = match (&input, &event) {
                (Some(lines), _) => diff::Samples::Lines(lines),
                (None, Some(event)) => diff::Samples::Event(event),
                (None, None) => unreachable!("clap requires --input or --event"),
            };
            diff::diff_mapping(&old, &new, samples, format, &records)
        }
        Command::Init { from, from_schema, name, output } => match (from, from_schema) {
            (Some(from), _) => init::run(&from, name, output.as_deref()),
            (None, Some(schema)) => init_schema::run(&schema, name, output.as_deref()),
            (None, None) => unreachable!("clap requires --from or --from-schema"),
        },
        Command::Playground { mapping, samples, port } => {
            playground::serve(&mapping, &samples, port).map(|()| Outcome::Done)
        }
        Command::Schema => {
            print!("{}", crate::spec::SCHEMA);
            Ok(Outcome::Done)
        }
        #[cfg(feature = "kafka")]
        Command::Failures(args) => failures::failures(args),
        #[cfg(feature = "kafka")]
        Command::Replay(args) => replay::replay(*args),
        #[cfg(feature = "kafka")]
        Command::Run(args) => run::run(*args),
        Command::Process {
            mapping,
            input,
            event,
            max_line_bytes,
            messages,
            metrics,
            brokers,
            topic_ok,
            topic_fail,
            formats,
            output,
        } => {
            let printing = process::Printing { messages, metrics, topic_ok, topic_fail };
            let mut format = formats::LineFormat::from_args(&formats)?;
            let records = match (input, event) {
                (Some(input), _) => process::Records::Lines { input, max_line_bytes },
                (None, Some(event)) => process::Records::Event { event, brokers },
                (None, None) => unreachable!("clap requires --input or --event"),
            };
            process::run(&mapping, records, &printing, &mut format, &output)
        }
    }
}
