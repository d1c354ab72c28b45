//! `--format`, `--registry` and `--schema`: how `process` reads records that are not plain JSON.
//!
//! With `--input`, a binary record is one line of base64 (as a fail envelope's `value` holds it);
//! with `--event`, the event's values are read as they are.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::CliError;
use crate::format::output::{OutputEncoder, OutputSettings};
use crate::format::registry::{SchemaSource, Schemas};
use crate::format::{BatchSchemas, CompiledSchema, RegisteredSchema, SourceFormat};

/// The record-format flags, as given.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct FormatArgs {
    /// How record values are written: json, json-schema (JSON behind a registry's framing), avro
    /// or protobuf. Binary records are read from --input as one base64 value per line.
    #[arg(long = "format", default_value = "json", value_parser = parse_format)]
    pub format: SourceFormat,
    /// The schema registry to read schemas from: a Confluent-compatible one's base URL
    /// (credentials from SCHEMA_REGISTRY_USER_INFO or SCHEMA_REGISTRY_BEARER_TOKEN), or AWS Glue
    /// Schema Registry: `glue`, `glue:REGION` or the registry's ARN (AWS credentials as usual).
    #[arg(long, conflicts_with = "schema")]
    pub registry: Option<String>,
    /// One schema file (Avro .avsc, Protobuf .proto) to read every record with, whatever schema
    /// id it names.
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

/// The record-format flags of the commands whose `--format` is their report's (`diff-mapping`,
/// `explain`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RecordFormatArgs {
    /// How the records are written: json, json-schema (JSON behind a registry's framing), avro or
    /// protobuf (a binary record as base64: one value per line of --input).
    #[arg(long = "records-format", default_value = "json", value_parser = parse_format)]
    pub records_format: SourceFormat,
    /// The schema registry the records' schemas are in (see `process --registry`).
    #[arg(long, conflicts_with = "schema")]
    pub registry: Option<String>,
    /// One schema file (Avro .avsc, Protobuf .proto) to read every record with.
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

impl RecordFormatArgs {
    /// How the records are read.
    pub fn line_format(self) -> Result<LineFormat, CliError> {
        LineFormat::from_args(&FormatArgs { format: self.records_format, registry: self.registry, schema: self.schema })
    }
}

pub(super) fn parse_format(text: &str) -> Result<SourceFormat, String> {
    text.parse()
}

/// How `process` writes ok records, over the mapping's `output:`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct OutputArgs {
    /// How ok records are written: json or avro (over the mapping's `output.format`). Avro values
    /// are shown as base64 beside the mapped JSON.
    #[arg(long)]
    pub output_format: Option<String>,
    /// The Avro writer schema: a file, or registry:SUBJECT[@VERSION] with --registry (over the
    /// mapping's `output.schema`). With --registry, the schema's id frames each value; without,
    /// values are bare Avro bodies.
    #[arg(long)]
    pub output_schema: Option<String>,
    /// Register the output schema file under its subject (the mapping's `output.subject`, else
    /// `<topic-ok>-value`) when the registry does not have it yet.
    #[arg(long)]
    pub register_schemas: bool,
}

impl OutputArgs {
    /// The encoder of ok records for `plan` (read from `mapping`), its topic `topic_ok`.
    pub fn encoder(
        &self,
        plan: &crate::plan::Plan,
        topic_ok: &str,
        mapping: &Path,
        format: &LineFormat,
    ) -> Result<OutputEncoder, CliError> {
        let settings = OutputSettings {
            format: match &self.output_format {
                None => None,
                Some(name) => Some(crate::plan::OutputFormat::parse(name).map_err(CliError::Usage)?),
            },
            schema: self.output_schema.as_deref().map(command_line_schema),
            subject: None,
            register: self.register_schemas,
        };
        let output = settings.over(plan.output());
        if output.format != crate::plan::OutputFormat::Json
            && let Some(structured) =
                plan.outputs().iter().find(|o| o.cloud_events() == Some(crate::plan::CloudEventsMode::Structured))
        {
            return Err(CliError::Usage(format!(
                "output `{}` writes structured CloudEvents, which are JSON documents, but --output-format is {}; use `envelope: cloudevents` (binary mode) or JSON output",
                structured.name(),
                output.format.as_str()
            )));
        }
        let base = mapping.parent();
        let usage = |e: crate::format::output::OutputError| CliError::Usage(e.to_string());
        #[cfg(feature = "kafka")]
        if let Some(url) = &format.registry
            && output.format != crate::plan::OutputFormat::Json
        {
            let registry = registry_settings(url)?;
            let runtime =
                tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
            let resolved = runtime.block_on(crate::format::output::resolve(
                &output,
                topic_ok,
                base,
                Some(&registry),
                self.register_schemas,
            ));
            return resolved.map_err(|e| match e {
                crate::format::output::OutputError::Registry(r) => CliError::from(r),
                other => usage(other),
            });
        }
        let _ = format;
        crate::format::output::resolve_local(&output, topic_ok, base).map_err(usage)
    }
}

/// A schema named on the command line: a file is where the shell says (made absolute, as the
/// mapping's own `output.schema` is relative to the mapping's folder), a `registry:` subject as
/// given.
pub fn command_line_schema(at: &str) -> String {
    if at.starts_with("registry:") {
        return at.to_string();
    }
    std::path::absolute(at).map_or_else(|_| at.to_string(), |p| p.display().to_string())
}

/// How one run of `process` reads its records.
pub struct LineFormat {
    pub format: SourceFormat,
    pub schemas: Option<Arc<Schemas>>,
    /// `--registry`, as given.
    pub registry: Option<String>,
    /// How ok records are written (JSON until the mapping is known: [`OutputArgs::encoder`]).
    pub output: OutputEncoder,
    #[cfg(feature = "kafka")]
    runtime: Option<tokio::runtime::Runtime>,
}

impl LineFormat {
    /// Plain JSON records.
    pub fn json() -> Self {
        LineFormat {
            format: SourceFormat::Json,
            schemas: None,
            registry: None,
            output: OutputEncoder::Json,
            #[cfg(feature = "kafka")]
            runtime: None,
        }
    }

    /// The flags' format and where its schemas come from.
    pub fn from_args(args: &FormatArgs) -> Result<Self, CliError> {
        if args.format.uses_schemas() && args.schema.is_none() && args.registry.is_none() {
            return Err(CliError::Usage(format!(
                "--format {} records name a schema: give --registry URL or --schema FILE",
                args.format
            )));
        }
        #[cfg(feature = "kafka")]
        {
            // A registry is spoken to on a runtime of its own, kept for the batches' fetches.
            let runtime = match (&args.schema, &args.registry) {
                (None, Some(_)) => Some(
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?,
                ),
                _ => None,
            };
            let schemas = match &runtime {
                Some(runtime) => schemas_of(args, runtime)?,
                None => file_schemas(args)?,
            };
            Ok(LineFormat {
                format: args.format,
                schemas,
                registry: args.registry.clone(),
                output: OutputEncoder::Json,
                runtime,
            })
        }
        #[cfg(not(feature = "kafka"))]
        {
            if args.schema.is_none() && args.registry.is_some() {
                return Err(CliError::Usage(NO_REGISTRY.into()));
            }
            Ok(LineFormat {
                format: args.format,
                schemas: file_schemas(args)?,
                registry: args.registry.clone(),
                output: OutputEncoder::Json,
            })
        }
    }

    /// A record line as the bytes of its value: base64 for a binary format.
    pub fn value_of(&self, line: &[u8]) -> Result<Vec<u8>, String> {
        if self.format == SourceFormat::Json {
            return Ok(line.to_vec());
        }
        let text = line.trim_ascii();
        BASE64
            .decode(text)
            .map_err(|e| format!("with --format {}, a line is the base64 of a record's value: {e}", self.format))
    }

    /// The schemas the `values` name: read from the file, or fetched from the registry (each
    /// id once).
    pub fn batch_schemas<'v>(&self, values: impl IntoIterator<Item = &'v [u8]>) -> Result<BatchSchemas, CliError> {
        let Some(schemas) = &self.schemas else { return Ok(BatchSchemas::none()) };
        if let Some(local) = schemas.without_fetching() {
            return Ok(local);
        }
        let ids = crate::format::registry::distinct_ids(values.into_iter().map(|v| (v, None)));
        self.fetch(schemas, ids)
    }

    #[cfg(feature = "kafka")]
    fn fetch(&self, schemas: &Schemas, ids: Vec<crate::format::wire::SchemaId>) -> Result<BatchSchemas, CliError> {
        match &self.runtime {
            Some(runtime) => runtime.block_on(schemas.prepare(ids)).map_err(CliError::from),
            None => Ok(BatchSchemas::none()),
        }
    }

    #[cfg(not(feature = "kafka"))]
    fn fetch(&self, _schemas: &Schemas, _ids: Vec<crate::format::wire::SchemaId>) -> Result<BatchSchemas, CliError> {
        Ok(BatchSchemas::none())
    }

    /// Runs a future that may wait on the registry.
    #[cfg(feature = "kafka")]
    pub fn block_on<F: std::future::Future>(&self, future: F) -> Option<F::Output> {
        self.runtime.as_ref().map(|r| r.block_on(future))
    }
}

/// Where the flags say schemas come from (`None`: nowhere), a registry's client made on
/// `runtime`.
#[cfg(feature = "kafka")]
pub fn schemas_of(args: &FormatArgs, runtime: &tokio::runtime::Runtime) -> Result<Option<Arc<Schemas>>, CliError> {
    match (&args.schema, &args.registry) {
        (None, Some(url)) => Ok(Some(Arc::new(runtime.block_on(registry(url))?))),
        _ => file_schemas(args),
    }
}

/// The schema file the flags name, if any.
fn file_schemas(args: &FormatArgs) -> Result<Option<Arc<Schemas>>, CliError> {
    match &args.schema {
        Some(file) => Ok(Some(Arc::new(Schemas::new(SchemaSource::File(Arc::new(schema_file(file)?)))))),
        None => Ok(None),
    }
}

/// A schema file (Avro `.avsc`, Protobuf `.proto`, or a JSON Schema), compiled.
pub fn schema_file(path: &Path) -> Result<CompiledSchema, CliError> {
    let shown = path.display().to_string();
    let text = crate::limits::read_bounded(path, crate::limits::MAX_RECORD_BYTES, "a schema")
        .map_err(|source| CliError::Read { path: shown.clone(), source })?;
    let text = String::from_utf8(text).map_err(|_| CliError::Usage(format!("{shown} is not UTF-8 text")))?;
    let schema = RegisteredSchema::standalone(RegisteredSchema::kind_of_file(&shown, &text), text);
    CompiledSchema::compile(&schema).map_err(|why| CliError::Usage(format!("{shown}: {why}")))
}

/// The registry at `url`, its credentials and timeout from the environment
/// (`SCHEMA_REGISTRY_USER_INFO`, `SCHEMA_REGISTRY_BEARER_TOKEN`, `SCHEMA_REGISTRY_TIMEOUT_MS`) as
/// the function reads them, but for `parameter://` values, which only the function resolves.
#[cfg(feature = "kafka")]
pub(super) fn registry_settings(url: &str) -> Result<crate::config::RegistrySettings, CliError> {
    let layers = crate::config::Layers::command_line(Vec::new(), "lambda-stream-local");
    let timeout_ms = match layers.get("SCHEMA_REGISTRY_TIMEOUT_MS") {
        None => 10_000,
        Some(text) => text.trim().parse().map_err(|_| {
            CliError::Usage(format!("SCHEMA_REGISTRY_TIMEOUT_MS is `{text}`, not a number of milliseconds"))
        })?,
    };
    Ok(crate::config::RegistrySettings {
        url: url.to_string(),
        user_info: layers.get("SCHEMA_REGISTRY_USER_INFO"),
        bearer_token: layers.get("SCHEMA_REGISTRY_BEARER_TOKEN"),
        timeout_ms,
    })
}

#[cfg(feature = "kafka")]
async fn registry(url: &str) -> Result<Schemas, CliError> {
    Schemas::from_settings(&registry_settings(url)?).await.map_err(CliError::from)
}

#[cfg(not(feature = "kafka"))]
const NO_REGISTRY: &str =
    "this lambda-stream is the mapping-tools build: --registry needs the full build; give --schema FILE instead";
