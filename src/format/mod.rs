//! Record formats: how a source record's value becomes what a mapping reads.
//!
//! - `json` (the default): the value is JSON text, scanned by the plan as it stands.
//! - `json-schema`: JSON behind a registry's framing; the framing is taken off, the text scanned.
//! - `avro`: an Avro binary body behind a registry's framing ([`wire`]), read with its writer
//!   schema ([`avro`]) straight into the values the plan reads, never through JSON text.
//! - `protobuf`: a Protobuf body behind a registry's framing, its message named by the indexes
//!   that start the body, read with its schema ([`protobuf`]) into a tree of what the plan reads.
//!
//! Schemas come from a [`registry`]: a Confluent-compatible REST API, AWS Glue Schema Registry,
//! or one schema file for every record (dry runs). A batch first finds the schema ids its records
//! name and fetches the unknown ones, once each and concurrently ([`registry::Schemas::prepare`]);
//! records are then mapped without waiting on anything. A record whose schema the registry does
//! not have, or whose body does not read, fails with stage `decode`; a registry that cannot be
//! reached fails the batch, so it is retried and no record is lost.

pub mod avro;
pub mod fetched;
#[cfg(feature = "kafka")]
pub mod glue;
pub mod output;
pub mod protobuf;
pub mod protobuf_writer;
mod record_path;
pub mod registry;
pub mod shape;
pub mod wire;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use std::borrow::Cow;

use crate::plan::explain::Explanation;
use crate::plan::{Failure, FieldError, Outcome, Plan, Stage};
use avro::AvroReader;
use protobuf::{MessageIndexes, ProtoFile, ProtobufReader};
use wire::{SchemaId, WireError, unframe};

/// How a source topic's record values are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    #[default]
    Json,
    /// JSON behind a registry's framing.
    JsonSchema,
    Avro,
    Protobuf,
}

impl SourceFormat {
    pub const NAMES: &'static str = "json, json-schema, avro, protobuf";

    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Json => "json",
            SourceFormat::JsonSchema => "json-schema",
            SourceFormat::Avro => "avro",
            SourceFormat::Protobuf => "protobuf",
        }
    }

    /// Whether its records name a schema (and so need a registry or a schema file).
    pub fn uses_schemas(self) -> bool {
        matches!(self, SourceFormat::Avro | SourceFormat::Protobuf)
    }

    /// Whether its records are framed for a registry.
    pub fn is_framed(self) -> bool {
        self != SourceFormat::Json
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" | "" => Ok(SourceFormat::Json),
            "json-schema" | "jsonschema" => Ok(SourceFormat::JsonSchema),
            "avro" => Ok(SourceFormat::Avro),
            "protobuf" | "proto" => Ok(SourceFormat::Protobuf),
            other => Err(format!("unknown record format `{other}`; formats: {}", Self::NAMES)),
        }
    }
}

/// A schema as a registry holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// `AVRO`, `JSON` or `PROTOBUF`, as registries name them.
    pub kind: String,
    pub text: String,
    /// The schemas it references, those it depends on first.
    pub references: Vec<SchemaReference>,
}

/// A schema another one references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaReference {
    /// The name the referencing schema uses: a Protobuf import's path, an Avro type's full name.
    pub name: String,
    pub text: String,
}

impl RegisteredSchema {
    /// A schema that references nothing.
    pub fn standalone(kind: &str, text: String) -> Self {
        RegisteredSchema { kind: kind.into(), text, references: Vec::new() }
    }

    /// A schema file's kind, from its name and text: `.proto` is Protobuf; JSON with
    /// `properties`, `$schema` or `"type": "object"` is a JSON Schema; other JSON is Avro.
    pub fn kind_of_file(name: &str, text: &str) -> &'static str {
        if name.ends_with(".proto") {
            return "PROTOBUF";
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(o))
                if o.contains_key("$schema")
                    || o.contains_key("properties")
                    || o.get("type").and_then(serde_json::Value::as_str) == Some("object") =>
            {
                "JSON"
            }
            _ => "AVRO",
        }
    }

    /// The shape of the records it describes, whatever its kind.
    pub fn shape(&self) -> Result<crate::plan::shape::Shape, shape::ShapeError> {
        match self.kind.to_ascii_uppercase().as_str() {
            "AVRO" | "" => shape::avro_shape(&self.text, &self.reference_texts()),
            "PROTOBUF" => shape::protobuf_shape(&self.text, &self.proto_files()),
            "JSON" => shape::json_schema_shape(&self.text),
            other => Err(shape::ShapeError::UnknownKind(other.to_string())),
        }
    }

    fn proto_files(&self) -> Vec<ProtoFile<'_>> {
        self.references.iter().map(|r| ProtoFile { name: &r.name, text: &r.text }).collect()
    }

    fn reference_texts(&self) -> Vec<String> {
        self.references.iter().map(|r| r.text.clone()).collect()
    }
}

/// A schema compiled for reading records.
#[derive(Debug)]
pub enum CompiledSchema {
    Avro(AvroReader),
    Protobuf(ProtobufReader),
    /// A JSON Schema: the record is JSON text; the schema is not needed to read it.
    Json,
}

impl CompiledSchema {
    /// Compiles a registry's schema, or says why it cannot be read with.
    pub fn compile(schema: &RegisteredSchema) -> Result<Self, String> {
        match schema.kind.to_ascii_uppercase().as_str() {
            "AVRO" | "" => AvroReader::new(&schema.text, &schema.reference_texts())
                .map(CompiledSchema::Avro)
                .map_err(|e| e.to_string()),
            "PROTOBUF" => ProtobufReader::new(&schema.text, &schema.proto_files())
                .map(CompiledSchema::Protobuf)
                .map_err(|e| e.to_string()),
            "JSON" => Ok(CompiledSchema::Json),
            other => Err(format!("a {other} schema, which this function does not read")),
        }
    }
}

/// What a batch knows of the schemas its records name: each id's compiled schema, or why there
/// is none (the registry does not have it, it does not compile).
#[derive(Debug, Default)]
pub struct BatchSchemas {
    /// Looked up once per record: foldhash, as std's SipHash cost more than the lookup.
    found: HashMap<SchemaId, Result<Arc<CompiledSchema>, String>, foldhash::fast::RandomState>,
    /// The one schema every record is read with (a schema file), whatever id it names.
    every: Option<Arc<CompiledSchema>>,
}

impl BatchSchemas {
    /// No schemas: for JSON records.
    pub fn none() -> Self {
        BatchSchemas::default()
    }

    /// Every record read with `schema`.
    pub fn every(schema: Arc<CompiledSchema>) -> Self {
        BatchSchemas { found: HashMap::default(), every: Some(schema) }
    }

    /// Adds what is known of schema `id`.
    pub fn insert(&mut self, id: SchemaId, schema: Result<Arc<CompiledSchema>, String>) {
        self.found.insert(id, schema);
    }

    fn schema(&self, id: SchemaId) -> Result<&CompiledSchema, String> {
        if let Some(every) = &self.every {
            return Ok(every);
        }
        match self.found.get(&id) {
            Some(Ok(schema)) => Ok(schema),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("schema {id} was not fetched for this batch")),
        }
    }

    /// Maps one record value written in `format`. `metadata_id` is the schema id an event source
    /// mapping with a schema registry reports beside a value it has taken the framing off.
    pub fn apply(&self, plan: &Plan, format: SourceFormat, value: &[u8], metadata_id: Option<SchemaId>) -> Applied {
        if format == SourceFormat::Json {
            return Applied::plain(plan.apply(value));
        }
        let (id, body, schema) = match self.resolve(format, value, metadata_id) {
            Ok(found) => found,
            Err((id, failure)) => return Applied::failed(id, failure),
        };
        let outcome = match schema {
            None | Some(CompiledSchema::Json) => plan.apply(&body),
            Some(CompiledSchema::Avro(reader)) => {
                let mut captured = Vec::with_capacity(32);
                match reader.read_captures(&body, plan.projection(), &mut captured) {
                    Ok(()) => plan.apply_captured(&captured, body.len()),
                    Err(e) => Outcome::Failed(decode_failure(format, id, e.to_string())),
                }
            }
            Some(CompiledSchema::Protobuf(reader)) => match reader.read(&body, indexes_of(id), Some(plan.projection()))
            {
                Ok(doc) => plan.apply_document(&doc, body.len()),
                Err(e) => Outcome::Failed(decode_failure(format, id, e.to_string())),
            },
        };
        Applied { outcome, schema: Some(id) }
    }

    /// What the plan does with one record value written in `format`, field by field
    /// (`lambda-stream explain`), from the same reading as [`apply`](Self::apply)'s.
    pub fn explain(
        &self,
        plan: &Plan,
        format: SourceFormat,
        value: &[u8],
        metadata_id: Option<SchemaId>,
    ) -> Explanation {
        if format == SourceFormat::Json {
            return plan.explain(value);
        }
        let (id, body, schema) = match self.resolve(format, value, metadata_id) {
            Ok(found) => found,
            Err((_, failure)) => return Explanation::not_read(failure),
        };
        match schema {
            None | Some(CompiledSchema::Json) => plan.explain(&body),
            // The whole record, for the trace to show where each path led.
            Some(CompiledSchema::Avro(reader)) => match reader.read(&body) {
                Ok(doc) => plan.explain_document(&doc, body.len()),
                Err(e) => Explanation::not_read(decode_failure(format, id, e.to_string())),
            },
            Some(CompiledSchema::Protobuf(reader)) => match reader.read(&body, indexes_of(id), None) {
                Ok(doc) => plan.explain_document(&doc, body.len()),
                Err(e) => Explanation::not_read(decode_failure(format, id, e.to_string())),
            },
        }
    }

    /// A framed value's schema id, body and compiled schema (`None`: the body is JSON text to
    /// scan), or why the value cannot be read.
    #[allow(clippy::type_complexity)]
    fn resolve<'v>(
        &self,
        format: SourceFormat,
        value: &'v [u8],
        metadata_id: Option<SchemaId>,
    ) -> Result<(SchemaId, Cow<'v, [u8]>, Option<&CompiledSchema>), (Option<SchemaId>, Failure)> {
        let (id, body) = match metadata_id {
            Some(id) => (id, Cow::Borrowed(value)),
            None => match unframe(value) {
                Ok(framed) => (framed.schema, framed.body),
                Err(e) => return Err((None, wire_failure(format, &e))),
            },
        };
        if format == SourceFormat::JsonSchema {
            return Ok((id, body, None));
        }
        match self.schema(id) {
            Ok(schema) => Ok((id, body, Some(schema))),
            Err(why) => Err((Some(id), decode_failure(format, id, why))),
        }
    }
}

/// A record's outcome, and the schema its value named.
#[derive(Debug)]
pub struct Applied {
    pub outcome: Outcome,
    pub schema: Option<SchemaId>,
}

impl Applied {
    fn plain(outcome: Outcome) -> Self {
        Applied { outcome, schema: None }
    }
    fn failed(schema: Option<SchemaId>, failure: Failure) -> Self {
        Applied { outcome: Outcome::Failed(failure), schema }
    }
}

/// How a Protobuf body names its message: as the registry that framed it writes it.
fn indexes_of(id: SchemaId) -> MessageIndexes {
    match id {
        SchemaId::Confluent(_) => MessageIndexes::Confluent,
        SchemaId::Glue(_) => MessageIndexes::Glue,
    }
}

fn wire_failure(format: SourceFormat, e: &WireError) -> Failure {
    Failure {
        stage: Stage::Decode,
        errors: vec![FieldError {
            field: None,
            rule: "framing".into(),
            message: format!("the value is not a registry-framed {format} record: {e}"),
        }],
        id: None,
    }
}

fn decode_failure(format: SourceFormat, id: SchemaId, why: String) -> Failure {
    Failure {
        stage: Stage::Decode,
        errors: vec![FieldError {
            field: None,
            rule: format.as_str().into(),
            message: format!("the value does not read as {format} with schema {id}: {why}"),
        }],
        id: None,
    }
}
