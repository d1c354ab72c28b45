//! How ok records are written: JSON (the mapped record as it stands), or Avro with a writer
//! schema, framed as its registry expects (Confluent: magic byte and the schema's id; or no
//! framing at all, for consumers that know the schema).
//!
//! The writer schema and its id are found once, when the function or the worker starts
//! ([`OutputEncoder`] is built by the caller, which has the files and the registry): a schema
//! named by `registry:SUBJECT[@VERSION]` comes with its id; a schema file is looked up under its
//! subject (default `<ok topic>-value`) and must be registered there already, unless registering
//! was asked for (`--register-schemas`, `REGISTER_SCHEMAS=true`): production never registers a
//! schema as a side effect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::plan::{Failure, FieldError, Output, OutputFormat, Stage};

use super::avro::AvroReader;
use super::fetched::RegistryError;
use super::protobuf::ProtobufReader;
use super::wire::confluent_frame;

/// How a written body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Confluent's: magic byte 0, then the schema id (4 bytes, big-endian).
    Confluent(u32),
    /// AWS Glue's: header version 3, compression 0, then the schema version's UUID.
    Glue([u8; 16]),
    /// The bare body.
    None,
}

/// What turns a mapped record (JSON) into the ok message's value.
#[derive(Clone, Debug, Default)]
pub enum OutputEncoder {
    /// The mapped JSON as it stands.
    #[default]
    Json,
    Avro {
        schema: Arc<AvroReader>,
        framing: Framing,
    },
    /// Protobuf: `message` of the schema; with Confluent's framing, its message indexes follow
    /// the id.
    Protobuf {
        schema: Arc<ProtobufReader>,
        message: usize,
        framing: Framing,
    },
}

impl OutputEncoder {
    pub fn is_json(&self) -> bool {
        matches!(self, OutputEncoder::Json)
    }

    /// The format's name, for messages and `process` output.
    pub fn format(&self) -> &'static str {
        match self {
            OutputEncoder::Json => "json",
            OutputEncoder::Avro { .. } => "avro",
            OutputEncoder::Protobuf { .. } => "protobuf",
        }
    }

    /// The ok message's value for a mapped record, or why the record cannot be written (it then
    /// fails, stage `encode`).
    pub fn encode(&self, mapped: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let rule = self.format();
        let framing = match self {
            OutputEncoder::Json => return Ok(mapped),
            OutputEncoder::Avro { framing, .. } | OutputEncoder::Protobuf { framing, .. } => *framing,
        };
        // A tree borrowing the mapped text: no owned string per field, no sorted objects.
        let value =
            crate::plan::document::Doc::from_json(&mapped).map_err(|e| encode_failure(rule, None, e.to_string()))?;
        let failed = |path: &str, message: String| {
            encode_failure(rule, Some(path.to_string()).filter(|p| !p.is_empty()), message)
        };
        let mut body = Vec::with_capacity(mapped.len() / 2 + 8);
        match self {
            OutputEncoder::Avro { schema, .. } => {
                schema.write(&value, &mut body).map_err(|e| failed(&e.path, e.message))?
            }
            OutputEncoder::Protobuf { schema, message, .. } => {
                // A registry's framing names the message, each its own way; a bare body is the
                // message alone.
                match framing {
                    Framing::Confluent(_) => body.extend_from_slice(&schema.confluent_indexes(*message)),
                    Framing::Glue(_) => body.extend_from_slice(&schema.glue_index(*message)),
                    Framing::None => {}
                }
                schema.write(*message, &value, &mut body).map_err(|e| failed(&e.path, e.message))?
            }
            OutputEncoder::Json => unreachable!("JSON returned above"),
        }
        Ok(match framing {
            Framing::Confluent(id) => confluent_frame(id, &body),
            Framing::Glue(uuid) => {
                let mut framed = Vec::with_capacity(18 + body.len());
                framed.extend_from_slice(&[3, 0]);
                framed.extend_from_slice(&uuid);
                framed.extend_from_slice(&body);
                framed
            }
            Framing::None => body,
        })
    }
}

fn encode_failure(rule: &str, field: Option<String>, message: String) -> Failure {
    Failure {
        stage: Stage::Encode,
        errors: vec![FieldError {
            field,
            rule: rule.into(),
            message: format!("the mapped record does not fit the output schema: {message}"),
        }],
        id: None,
    }
}

/// What the settings or the command line say of the output; each value given overrides the
/// mapping's `output:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputSettings {
    /// `OUTPUT_FORMAT` / `--output-format`.
    pub format: Option<OutputFormat>,
    /// `OUTPUT_SCHEMA` / `--output-schema`: a file, or `registry:SUBJECT[@VERSION]`.
    pub schema: Option<String>,
    /// `OUTPUT_SUBJECT`: the subject a schema file is registered under.
    pub subject: Option<String>,
    /// `REGISTER_SCHEMAS=true` / `--register-schemas`: register a schema file that is not yet.
    pub register: bool,
}

impl OutputSettings {
    /// The mapping's `output:` with these settings over it.
    pub fn over(&self, mapping: &Output) -> Output {
        Output {
            format: self.format.unwrap_or(mapping.format),
            schema: self.schema.clone().or_else(|| mapping.schema.clone()),
            subject: self.subject.clone().or_else(|| mapping.subject.clone()),
            message: mapping.message.clone(),
        }
    }
}

/// Why the output's writer schema cannot be had: the function or worker does not start.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("the output schema `{at}` cannot be used: {why}")]
    Schema { at: String, why: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(
        "the output schema `{file}` is not registered under subject `{subject}` in the registry at {url}: register it \
         there first, or let this run register it (--register-schemas, REGISTER_SCHEMAS=true)"
    )]
    NotRegistered { file: String, subject: String, url: String },
    #[error(
        "the output schema `{file}` is not a version of schema `{schema}` in AWS Glue registry `{registry}`: register \
         it there first, or let this run register it (--register-schemas, REGISTER_SCHEMAS=true)"
    )]
    NotInGlue { file: String, schema: String, registry: String },
    #[error("the output schema `registry:{0}` names a subject, but no schema registry is set (SCHEMA_REGISTRY_URL)")]
    NoRegistry(String),
}

/// Where the writer schema is.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
enum SchemaAt {
    File(PathBuf),
    Subject { subject: String, version: String },
}

fn schema_at(output: &Output, ok_topic: &str, base: Option<&Path>) -> SchemaAt {
    let default_subject = || output.subject.clone().unwrap_or_else(|| format!("{ok_topic}-value"));
    match &output.schema {
        None => SchemaAt::Subject { subject: default_subject(), version: "latest".into() },
        Some(at) => match at.strip_prefix("registry:") {
            Some(named) => {
                let (subject, version) = super::registry::subject_and_version(named);
                SchemaAt::Subject { subject: subject.into(), version: version.into() }
            }
            None => SchemaAt::File(match base {
                Some(base) if Path::new(at).is_relative() => base.join(at),
                _ => PathBuf::from(at),
            }),
        },
    }
}

fn read_file(path: &Path) -> Result<String, OutputError> {
    let at = || path.display().to_string();
    let bytes = crate::limits::read_bounded(path, crate::limits::MAX_RECORD_BYTES, "a schema")
        .map_err(|e| OutputError::Schema { at: at(), why: e.to_string() })?;
    String::from_utf8(bytes).map_err(|_| OutputError::Schema { at: at(), why: "not UTF-8 text".into() })
}

/// The encoder of `output`'s format with `schema` (and the files it references), `framing` once
/// the id is known.
fn encoder_of(
    output: &Output,
    schema: &super::RegisteredSchema,
    at: &str,
    framing: Framing,
) -> Result<OutputEncoder, OutputError> {
    let refused = |why: String| OutputError::Schema { at: at.to_string(), why };
    match output.format {
        OutputFormat::Json => Ok(OutputEncoder::Json),
        OutputFormat::Avro => {
            let texts: Vec<String> = schema.references.iter().map(|r| r.text.clone()).collect();
            let reader = AvroReader::new(&schema.text, &texts).map_err(|e| refused(e.to_string()))?;
            Ok(OutputEncoder::Avro { schema: Arc::new(reader), framing })
        }
        OutputFormat::Protobuf => {
            let files: Vec<super::protobuf::ProtoFile<'_>> =
                schema.references.iter().map(|r| super::protobuf::ProtoFile { name: &r.name, text: &r.text }).collect();
            let reader = ProtobufReader::new(&schema.text, &files).map_err(|e| refused(e.to_string()))?;
            let message = match &output.message {
                None => reader.first_message(),
                Some(name) => {
                    reader.message_named(name).ok_or_else(|| refused(format!("the schema has no message `{name}`")))?
                }
            };
            Ok(OutputEncoder::Protobuf { schema: Arc::new(reader), message, framing })
        }
    }
}

/// The registry's name for the output's kind of schema.
fn kind_of(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Protobuf => "PROTOBUF",
        _ => "AVRO",
    }
}

/// The encoder for `output` without a registry: a schema file, bodies written bare.
pub fn resolve_local(output: &Output, ok_topic: &str, base: Option<&Path>) -> Result<OutputEncoder, OutputError> {
    if output.format == OutputFormat::Json {
        return Ok(OutputEncoder::Json);
    }
    match schema_at(output, ok_topic, base) {
        SchemaAt::File(path) => {
            let schema = super::RegisteredSchema::standalone(kind_of(output.format), read_file(&path)?);
            encoder_of(output, &schema, &path.display().to_string(), Framing::None)
        }
        SchemaAt::Subject { subject, .. } => Err(OutputError::NoRegistry(subject)),
    }
}

/// The encoder for `output` (`base`: the mapping's folder, for a relative schema file), its
/// schema's id from `registry`: a subject's version comes with its id; a schema file is looked up
/// under its subject, and registered there only when `register` says so.
#[cfg(feature = "kafka")]
pub async fn resolve(
    output: &Output,
    ok_topic: &str,
    base: Option<&Path>,
    registry: Option<&super::registry::RegistrySettings>,
    register: bool,
) -> Result<OutputEncoder, OutputError> {
    use super::registry::Fetched;
    use super::registry::confluent::{ConfluentRegistry, RegistryAuth};
    let Some(settings) = registry.filter(|_| output.format != OutputFormat::Json) else {
        return resolve_local(output, ok_topic, base);
    };
    if super::glue::is_glue(&settings.url) {
        return resolve_glue(output, ok_topic, base, settings, register).await;
    }
    let timeout = std::time::Duration::from_millis(settings.timeout_ms);
    let client = ConfluentRegistry::new(&settings.url, RegistryAuth::of(settings), timeout)?;
    match schema_at(output, ok_topic, base) {
        SchemaAt::Subject { subject, version } => match client.schema_by_subject(&subject, &version).await? {
            (id, Fetched::Schema(schema)) => {
                encoder_of(output, &schema, &format!("registry:{subject}"), Framing::Confluent(id))
            }
            (_, Fetched::Missing(why)) => Err(OutputError::Schema { at: format!("registry:{subject}"), why }),
        },
        SchemaAt::File(path) => {
            let schema = super::RegisteredSchema::standalone(kind_of(output.format), read_file(&path)?);
            // Compiled before the registry is asked, so a broken file registers nothing.
            let shown = path.display().to_string();
            encoder_of(output, &schema, &shown, Framing::None)?;
            let subject = output.subject.clone().unwrap_or_else(|| format!("{ok_topic}-value"));
            match client.id_under(&subject, &schema.text, &schema.kind, register).await? {
                Some(id) => encoder_of(output, &schema, &shown, Framing::Confluent(id)),
                None => Err(OutputError::NotRegistered { file: shown, subject, url: settings.url.clone() }),
            }
        }
    }
}

/// [`resolve`] with AWS Glue Schema Registry: schemas are named by `output.subject`, else the ok
/// topic (as Glue's serializers name them), in the registry an ARN names (else Glue's
/// `default-registry`); the framing carries the version's UUID.
#[cfg(feature = "kafka")]
async fn resolve_glue(
    output: &Output,
    ok_topic: &str,
    base: Option<&Path>,
    settings: &super::registry::RegistrySettings,
    register: bool,
) -> Result<OutputEncoder, OutputError> {
    use super::glue::{GlueRegistry, registry_name};
    use super::registry::Fetched;
    use super::wire::SchemaId;
    let timeout = std::time::Duration::from_millis(settings.timeout_ms);
    let glue = GlueRegistry::new(&settings.url, timeout).await?;
    let registry = registry_name(&settings.url);
    let uuid = |id: SchemaId| match id {
        SchemaId::Glue(uuid) => uuid,
        SchemaId::Confluent(_) => [0; 16],
    };
    match schema_at(output, ok_topic, base) {
        SchemaAt::Subject { subject, version } => match glue.schema_by_name(registry, &subject, &version).await? {
            Some((id, Fetched::Schema(schema))) => {
                encoder_of(output, &schema, &format!("registry:{subject}"), Framing::Glue(uuid(id)))
            }
            Some((_, Fetched::Missing(why))) => Err(OutputError::Schema { at: format!("registry:{subject}"), why }),
            None => Err(OutputError::Schema {
                at: format!("registry:{subject}"),
                why: format!("AWS Glue registry `{registry}` has no schema `{subject}` version {version}"),
            }),
        },
        SchemaAt::File(path) => {
            let schema = super::RegisteredSchema::standalone(kind_of(output.format), read_file(&path)?);
            let shown = path.display().to_string();
            encoder_of(output, &schema, &shown, Framing::None)?;
            let name = output.subject.clone().unwrap_or_else(|| ok_topic.to_string());
            match glue.version_of(registry, &name, &schema.text, &schema.kind, register).await? {
                Some(id) => encoder_of(output, &schema, &shown, Framing::Glue(uuid(id))),
                None => Err(OutputError::NotInGlue { file: shown, schema: name, registry: registry.to_string() }),
            }
        }
    }
}
