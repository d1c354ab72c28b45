//! The schemas `validate-mapping` holds a mapping to: `--source-schema` and `--target-schema`, or
//! the mapping's own `source_schema:` and `target_schema:` (a flag wins over the key). Each is a
//! schema file (Avro `.avsc`, Protobuf `.proto` or a JSON Schema; a key's path is relative to the
//! mapping's folder) or `registry:SUBJECT[@VERSION]`, fetched from `SCHEMA_REGISTRY_URL` (the full
//! build only).
//!
//! Only `validate-mapping` reads them: a mapping loaded to map records (a cold start, a refresh)
//! never does, so a registry that is down never keeps a function from starting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::error::CliError;
use crate::diagnostic::{Diagnostic, Spanned};
use crate::format::RegisteredSchema;
use crate::plan::Plan;
use crate::plan::schema_check::{check_source, check_target};
use crate::plan::shape::Shape;
use crate::spec::MappingSpec;

/// `registry:` names a subject of the schema registry.
const REGISTRY: &str = "registry:";

/// Where a schema is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SchemaAt {
    File(PathBuf),
    /// A subject's version (`latest` unless given) in the registry at `SCHEMA_REGISTRY_URL`.
    Registry {
        subject: String,
        version: String,
    },
}

impl SchemaAt {
    /// `registry:SUBJECT[@VERSION]`, or a file path (relative to `base` when there is one).
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Self, String> {
        let Some(named) = text.strip_prefix(REGISTRY) else {
            let path = Path::new(text);
            return Ok(SchemaAt::File(match base {
                Some(base) if path.is_relative() => base.join(path),
                _ => path.to_path_buf(),
            }));
        };
        let (subject, version) = crate::format::registry::subject_and_version(named);
        if subject.is_empty() {
            return Err(format!("`{text}` names no subject: write `registry:SUBJECT` or `registry:SUBJECT@VERSION`"));
        }
        Ok(SchemaAt::Registry { subject: subject.to_owned(), version: version.to_owned() })
    }
}

impl std::fmt::Display for SchemaAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaAt::File(path) => write!(f, "{}", path.display()),
            SchemaAt::Registry { subject, version } => write!(f, "{REGISTRY}{subject}@{version}"),
        }
    }
}

/// Why a schema cannot be had.
#[derive(Debug)]
pub enum SchemaProblem {
    /// It cannot be read, is not an Avro record schema, the registry has no such subject, or this
    /// build reads no registry: the mapping cannot be checked against it.
    Unusable(String),
    /// The registry did not answer: the same check may succeed later.
    #[cfg(feature = "kafka")]
    Unreachable(crate::format::registry::RegistryError),
}

impl SchemaProblem {
    /// The problem as what stops a command: a schema given on the command line.
    pub(super) fn into_cli(self, flag: &str) -> CliError {
        match self {
            SchemaProblem::Unusable(why) => CliError::Usage(format!("--{flag}: {why}")),
            #[cfg(feature = "kafka")]
            SchemaProblem::Unreachable(e) => CliError::Registry(e),
        }
    }

    /// The problem as a mapping's key shows it, and whether the registry did not answer.
    fn refusal(self) -> Refusal {
        match self {
            SchemaProblem::Unusable(why) => Refusal { why, unreachable: false },
            #[cfg(feature = "kafka")]
            SchemaProblem::Unreachable(e) => Refusal { why: e.to_string(), unreachable: true },
        }
    }
}

/// A schema a mapping's key names that cannot be had.
#[derive(Clone, Debug)]
struct Refusal {
    why: String,
    unreachable: bool,
}

/// The schemas of one `validate-mapping` run: those the flags name, and each schema a mapping's
/// key named so far (several mappings often name the same one).
pub struct Schemas {
    source: Option<Shape>,
    target: Option<Shape>,
    read: HashMap<SchemaAt, Result<Shape, Refusal>>,
}

/// What holding one mapping to its schemas found.
#[derive(Default)]
pub struct Findings {
    pub diagnostics: Vec<Diagnostic>,
    /// A registry that did not answer: the exit says infrastructure.
    pub unreachable: bool,
}

impl Schemas {
    /// The schemas the flags name, read now: one that cannot be had stops the run.
    pub fn from_flags(source: Option<&str>, target: Option<&str>) -> Result<Self, CliError> {
        let read = |flag: &str, given: Option<&str>| -> Result<Option<Shape>, CliError> {
            let Some(text) = given else { return Ok(None) };
            let at = SchemaAt::parse(text, None).map_err(|why| CliError::Usage(format!("--{flag}: {why}")))?;
            read_shape(&at).map(Some).map_err(|p| p.into_cli(flag))
        };
        Ok(Schemas {
            source: read("source-schema", source)?,
            target: read("target-schema", target)?,
            read: HashMap::new(),
        })
    }

    /// Holds a compiled mapping (read from `path`) to its schemas: the flags', else its keys'.
    pub fn check(&mut self, path: &Path, spec: &MappingSpec, plan: &Plan) -> Findings {
        let mut findings = Findings::default();
        let base = path.parent().filter(|_| !path.to_string_lossy().starts_with("s3://"));
        let source = self.source.clone().or_else(|| self.keyed(spec.source_schema.as_ref(), base, &mut findings));
        if let Some(shape) = source {
            findings.diagnostics.extend(check_source(spec, &shape));
        }
        let target = self.target.clone().or_else(|| self.keyed(spec.target_schema.as_ref(), base, &mut findings));
        if let Some(shape) = target {
            findings.diagnostics.extend(check_target(spec, plan, &shape));
        }
        findings
    }

    /// The schema a mapping's key names; one that cannot be had is an error at the key.
    fn keyed(&mut self, key: Option<&Spanned<String>>, base: Option<&Path>, findings: &mut Findings) -> Option<Shape> {
        let key = key?;
        let read = match SchemaAt::parse(&key.value, base) {
            Ok(at) => self
                .read
                .entry(at.clone())
                .or_insert_with(|| {
                    read_shape(&at).map_err(|p| {
                        let refusal = p.refusal();
                        Refusal { why: format!("{at}: {}", refusal.why), ..refusal }
                    })
                })
                .clone(),
            Err(why) => Err(Refusal { why, unreachable: false }),
        };
        match read {
            Ok(shape) => Some(shape),
            Err(refusal) => {
                findings.unreachable |= refusal.unreachable;
                let message = format!("the mapping cannot be checked against this schema: {}", refusal.why);
                findings.diagnostics.push(Diagnostic::new(key.pos, message).spanning(&key.extent));
                None
            }
        }
    }
}

/// Reads a schema and turns it into the shape of its records.
pub(super) fn read_shape(at: &SchemaAt) -> Result<Shape, SchemaProblem> {
    let schema = match at {
        SchemaAt::File(path) => {
            let bytes = crate::limits::read_bounded(path, crate::limits::MAX_RECORD_BYTES, "a schema")
                .map_err(|e| SchemaProblem::Unusable(format!("cannot read {}: {e}", path.display())))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| SchemaProblem::Unusable(format!("{} is not UTF-8 text", path.display())))?;
            let kind = RegisteredSchema::kind_of_file(&path.to_string_lossy(), &text);
            RegisteredSchema::standalone(kind, text)
        }
        SchemaAt::Registry { subject, version } => fetch(subject, version)?,
    };
    schema.shape().map_err(|e| SchemaProblem::Unusable(e.to_string()))
}

/// A subject's schema text and its references' texts, from the registry at `SCHEMA_REGISTRY_URL`.
#[cfg(feature = "kafka")]
fn fetch(subject: &str, version: &str) -> Result<RegisteredSchema, SchemaProblem> {
    use crate::format::registry::Fetched;
    use crate::format::registry::confluent::{ConfluentRegistry, RegistryAuth};
    let layers = crate::config::Layers::command_line(Vec::new(), "lambda-stream-local");
    let Some(url) = layers.get("SCHEMA_REGISTRY_URL") else {
        return Err(SchemaProblem::Unusable(format!(
            "`{REGISTRY}{subject}` is read from the schema registry at SCHEMA_REGISTRY_URL, which is not set"
        )));
    };
    if crate::format::glue::is_glue(&url) {
        return Err(SchemaProblem::Unusable(format!(
            "`{REGISTRY}{subject}` names a subject, which a Confluent-compatible registry has; SCHEMA_REGISTRY_URL is \
             AWS Glue Schema Registry (`{url}`): give the schema as a file"
        )));
    }
    let settings = super::formats::registry_settings(&url).map_err(|e| SchemaProblem::Unusable(e.to_string()))?;
    let auth = RegistryAuth::of(&settings);
    let unreachable = SchemaProblem::Unreachable;
    let timeout = std::time::Duration::from_millis(settings.timeout_ms);
    let registry = ConfluentRegistry::new(&url, auth, timeout).map_err(unreachable)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SchemaProblem::Unusable(format!("cannot start the async runtime: {e}")))?;
    match runtime.block_on(registry.schema_by_subject(subject, version)).map_err(unreachable)? {
        (_, Fetched::Schema(schema)) => Ok(schema),
        (_, Fetched::Missing(why)) => Err(SchemaProblem::Unusable(why)),
    }
}

#[cfg(not(feature = "kafka"))]
fn fetch(subject: &str, _version: &str) -> Result<RegisteredSchema, SchemaProblem> {
    Err(SchemaProblem::Unusable(format!(
        "`{REGISTRY}{subject}` is read from a schema registry by the full build (this is the mapping-tools build); \
         save the schema as a file (.avsc, .proto, .json) and name the file instead"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_a_file_or_a_registry_subject_at_a_version() {
        let base = Path::new("mappings");
        assert_eq!(SchemaAt::parse("order.avsc", Some(base)), Ok(SchemaAt::File("mappings/order.avsc".into())));
        assert_eq!(SchemaAt::parse("/abs/order.avsc", Some(base)), Ok(SchemaAt::File("/abs/order.avsc".into())));
        let registry = |subject: &str, version: &str| {
            Ok(SchemaAt::Registry { subject: subject.to_owned(), version: version.to_owned() })
        };
        assert_eq!(SchemaAt::parse("registry:orders-value", None), registry("orders-value", "latest"));
        assert_eq!(SchemaAt::parse("registry:orders-value@3", None), registry("orders-value", "3"));
        assert_eq!(SchemaAt::parse("registry:orders-value@latest", None), registry("orders-value", "latest"));
        assert_eq!(SchemaAt::parse("registry:team@orders", None), registry("team@orders", "latest"));
        assert!(SchemaAt::parse("registry:@3", None).is_err());
        assert_eq!(SchemaAt::parse("registry:orders-value@3", None).unwrap().to_string(), "registry:orders-value@3");
    }
}
