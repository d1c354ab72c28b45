//! Where schemas come from, and the process-wide cache of compiled schemas.
//!
//! A schema id names one schema forever (Confluent ids and Glue schema versions are immutable),
//! so a compiled schema is kept for the life of the process, up to [`CACHE_CAPACITY`] of them
//! (then the oldest is let go). A batch asks the registry only for the ids it has not seen: each
//! once, all of them at the same time, never once per record.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::wire::SchemaId;
use super::{BatchSchemas, CompiledSchema, SourceFormat};
use crate::record::{Input, Payload};

/// Where schemas come from, for records in a registry's format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySettings {
    /// A Confluent-compatible REST API's base URL.
    pub url: String,
    /// `user:password` for HTTP Basic (Confluent Cloud: API key and secret).
    pub user_info: Option<String>,
    /// A bearer token, instead of `user_info`.
    pub bearer_token: Option<String>,
    /// How long one registry request may take.
    pub timeout_ms: u64,
}

/// `SUBJECT[@VERSION]` (after `registry:`) as a subject and a version (`latest` unless a number
/// or `latest` follows the last `@`: a subject may itself hold an `@`).
pub fn subject_and_version(named: &str) -> (&str, &str) {
    match named.rsplit_once('@') {
        Some((subject, version)) if version == "latest" || version.parse::<u32>().is_ok() => (subject, version),
        _ => (named, "latest"),
    }
}

/// How many compiled schemas a process keeps.
pub const CACHE_CAPACITY: usize = 1_000;

/// Where a pipeline's schemas come from.
pub enum SchemaSource {
    /// One schema read from a file: every record is read with it, whatever id it names.
    File(Arc<CompiledSchema>),
    /// A Confluent-compatible Schema Registry's REST API.
    #[cfg(feature = "kafka")]
    Confluent(confluent::ConfluentRegistry),
    /// AWS Glue Schema Registry.
    #[cfg(feature = "kafka")]
    Glue(super::glue::GlueRegistry),
}

pub use super::fetched::{Fetched, RegistryError};

/// A pipeline's schemas: their source and the compiled ones seen so far.
pub struct Schemas {
    source: SchemaSource,
    // Only fetches from a registry fill it; the mapping-tools build has none.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    cache: Mutex<Cache>,
}

// Filled only by fetches from a registry, which the mapping-tools build has none of.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
#[derive(Default)]
struct Cache {
    compiled: HashMap<SchemaId, Result<Arc<CompiledSchema>, String>>,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<SchemaId>,
}

#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
impl Cache {
    fn insert(&mut self, id: SchemaId, schema: Result<Arc<CompiledSchema>, String>) {
        if self.compiled.insert(id, schema).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > CACHE_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.compiled.remove(&old);
            }
        }
    }
}

impl Schemas {
    pub fn new(source: SchemaSource) -> Self {
        Schemas { source, cache: Mutex::new(Cache::default()) }
    }

    /// The registry the settings name: AWS Glue Schema Registry (`glue`, `glue:REGION` or a
    /// registry's ARN), else a Confluent-compatible REST API at the URL.
    #[cfg(feature = "kafka")]
    pub async fn from_settings(settings: &RegistrySettings) -> Result<Self, RegistryError> {
        use confluent::{ConfluentRegistry, RegistryAuth};
        let timeout = std::time::Duration::from_millis(settings.timeout_ms);
        if super::glue::is_glue(&settings.url) {
            return Ok(Schemas::new(SchemaSource::Glue(super::glue::GlueRegistry::new(&settings.url, timeout).await?)));
        }
        let auth = RegistryAuth::of(settings);
        Ok(Schemas::new(SchemaSource::Confluent(ConfluentRegistry::new(&settings.url, auth, timeout)?)))
    }

    /// Where the schemas come from, for logs and errors.
    pub fn describe(&self) -> String {
        match &self.source {
            SchemaSource::File(_) => "a schema file".into(),
            #[cfg(feature = "kafka")]
            SchemaSource::Confluent(registry) => registry.url().to_string(),
            #[cfg(feature = "kafka")]
            SchemaSource::Glue(registry) => format!("AWS Glue Schema Registry at {}", registry.url()),
        }
    }

    /// The schemas of a batch when none has to be fetched (a schema file).
    pub fn without_fetching(&self) -> Option<BatchSchemas> {
        match &self.source {
            SchemaSource::File(schema) => Some(BatchSchemas::every(schema.clone())),
            #[cfg(feature = "kafka")]
            _ => None,
        }
    }

    /// The schemas `wanted` (a batch's distinct ids, [`schema_ids`]): cached ones at once, the
    /// others fetched, each once, concurrently. A registry that cannot answer fails the whole
    /// batch.
    #[cfg(feature = "kafka")]
    pub async fn prepare(&self, wanted: Vec<SchemaId>) -> Result<BatchSchemas, RegistryError> {
        if let Some(batch) = self.without_fetching() {
            return Ok(batch);
        }
        let mut batch = BatchSchemas::none();
        let mut unknown = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in wanted {
                match cache.compiled.get(&id) {
                    Some(schema) => batch.insert(id, schema.clone()),
                    None => unknown.push(id),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(batch);
        }
        let fetched = futures::future::join_all(unknown.iter().map(|id| self.fetch(*id))).await;
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, fetched) in unknown.into_iter().zip(fetched) {
            match fetched? {
                Fetched::Schema(schema) => {
                    let compiled = CompiledSchema::compile(&schema).map(Arc::new);
                    if let Err(why) = &compiled {
                        tracing::warn!(schema = %id, %why, "a registry schema does not compile; its records fail");
                    }
                    cache.insert(id, compiled.clone());
                    batch.insert(id, compiled);
                }
                // Not cached: a schema registered after this batch is found by the next one.
                Fetched::Missing(why) => batch.insert(id, Err(why)),
            }
        }
        Ok(batch)
    }

    #[cfg(feature = "kafka")]
    async fn fetch(&self, id: SchemaId) -> Result<Fetched, RegistryError> {
        match (&self.source, id) {
            (SchemaSource::Confluent(registry), SchemaId::Confluent(n)) => registry.schema_by_id(n).await,
            (SchemaSource::Confluent(_), SchemaId::Glue(_)) => Ok(Fetched::Missing(format!(
                "the record is framed for AWS Glue Schema Registry (schema version {id}), \
                 but this function reads schemas from a Confluent-compatible registry"
            ))),
            (SchemaSource::Glue(registry), SchemaId::Glue(_)) => registry.schema_version(id).await,
            (SchemaSource::Glue(_), SchemaId::Confluent(_)) => Ok(Fetched::Missing(format!(
                "the record is framed for a Confluent-compatible registry (schema id {id}), \
                 but this function reads schemas from AWS Glue Schema Registry"
            ))),
            // A schema file serves every record; `prepare` never fetches for it.
            (SchemaSource::File(_), _) => Ok(Fetched::Missing("a schema file has no ids".into())),
        }
    }
}

/// The distinct schema ids the framed records of a batch name, in first-seen order.
pub fn schema_ids(inputs: &[Input], format_of: impl Fn(&Input) -> SourceFormat) -> Vec<SchemaId> {
    let values = inputs.iter().filter(|i| format_of(i).uses_schemas()).filter_map(|input| match &input.payload {
        Payload::Value(value) => Some((value.as_slice(), input.source.value_schema_id)),
        _ => None,
    });
    distinct_ids(values)
}

/// The distinct schema ids of values (each with the id its event gave beside it, if any).
pub fn distinct_ids<'v>(values: impl IntoIterator<Item = (&'v [u8], Option<SchemaId>)>) -> Vec<SchemaId> {
    let mut ids: Vec<SchemaId> = Vec::new();
    for (value, given) in values {
        if let Some(id) = given.or_else(|| super::wire::schema_id_of(value))
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

#[cfg(feature = "kafka")]
pub mod confluent {
    //! A Confluent-compatible Schema Registry (Confluent Platform and Cloud, Redpanda, Apicurio's
    //! `ccompat` API), over its REST API: `GET /schemas/ids/{id}`, and
    //! `GET /subjects/{subject}/versions/{version}` for each reference.

    use std::time::Duration;

    use serde::Deserialize;

    use super::{Fetched, RegistryError};
    use crate::format::{RegisteredSchema, SchemaReference};

    /// References are followed this deep at most, and this many in all: a cycle or a runaway
    /// chain is a broken registry, not a schema.
    const MAX_REFERENCE_DEPTH: usize = 32;
    const MAX_REFERENCES: usize = 256;

    /// How a registry wants to be spoken to.
    #[derive(Clone, Debug, Default)]
    pub enum RegistryAuth {
        #[default]
        None,
        /// HTTP Basic: Confluent Cloud's API key and secret, or a user and password.
        Basic { user: String, password: String },
        /// `Authorization: Bearer`.
        Bearer(String),
    }

    impl RegistryAuth {
        /// The credentials the settings give: a bearer token, else `user:password`.
        pub fn of(settings: &super::RegistrySettings) -> Self {
            match (&settings.user_info, &settings.bearer_token) {
                (_, Some(token)) => RegistryAuth::Bearer(token.clone()),
                (Some(info), None) => {
                    let (user, password) = info.split_once(':').unwrap_or((info.as_str(), ""));
                    RegistryAuth::Basic { user: user.into(), password: password.into() }
                }
                (None, None) => RegistryAuth::None,
            }
        }
    }

    pub struct ConfluentRegistry {
        http: reqwest::Client,
        url: String,
        auth: RegistryAuth,
    }

    #[derive(Deserialize)]
    struct SchemaAnswer {
        schema: String,
        #[serde(rename = "schemaType")]
        schema_type: Option<String>,
        #[serde(default)]
        references: Vec<Reference>,
    }

    #[derive(Deserialize)]
    struct Reference {
        name: String,
        subject: String,
        version: i64,
    }

    #[derive(Deserialize)]
    struct ErrorAnswer {
        error_code: Option<i64>,
        message: Option<String>,
    }

    /// Schema not found, subject not found, version not found.
    const NOT_FOUND: [i64; 3] = [40403, 40401, 40402];

    impl ConfluentRegistry {
        /// A registry at `url` (its base, e.g. `https://psrc-1234.eu-west-1.aws.confluent.cloud`),
        /// each request given `timeout`.
        pub fn new(url: &str, auth: RegistryAuth, timeout: Duration) -> Result<Self, RegistryError> {
            let url = url.trim_end_matches('/').to_string();
            let http = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .user_agent(concat!("lambda-stream/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| RegistryError::Unreachable { url: url.clone(), source: Box::new(e) })?;
            Ok(ConfluentRegistry { http, url, auth })
        }

        pub fn url(&self) -> &str {
            &self.url
        }

        /// The schema with id `id`, its references resolved.
        pub async fn schema_by_id(&self, id: u32) -> Result<Fetched, RegistryError> {
            let Some(answer) = self.get::<SchemaAnswer>(&format!("/schemas/ids/{id}")).await? else {
                return Ok(Fetched::Missing(format!("the registry has no schema with id {id}")));
            };
            let mut references = Vec::new();
            if let Err(missing) = self.resolve(&answer.references, &mut references, 0).await? {
                return Ok(Fetched::Missing(format!(
                    "schema {id} references {missing}, which the registry does not have"
                )));
            }
            Ok(Fetched::Schema(RegisteredSchema {
                kind: answer.schema_type.unwrap_or_else(|| "AVRO".into()),
                text: answer.schema,
                references,
            }))
        }

        /// The schema registered under `subject` at `version` (`latest` or a number), its
        /// references resolved, and its id.
        pub async fn schema_by_subject(&self, subject: &str, version: &str) -> Result<(u32, Fetched), RegistryError> {
            #[derive(Deserialize)]
            struct VersionAnswer {
                id: u32,
                #[serde(flatten)]
                schema: SchemaAnswer,
            }
            let path = format!("/subjects/{}/versions/{}", encode(subject), encode(version));
            let Some(answer) = self.get::<VersionAnswer>(&path).await? else {
                return Ok((0, Fetched::Missing(format!("the registry has no subject `{subject}` version {version}"))));
            };
            let mut references = Vec::new();
            if let Err(missing) = self.resolve(&answer.schema.references, &mut references, 0).await? {
                return Ok((
                    answer.id,
                    Fetched::Missing(format!("`{subject}` references {missing}, which the registry does not have")),
                ));
            }
            let schema = RegisteredSchema {
                kind: answer.schema.schema_type.unwrap_or_else(|| "AVRO".into()),
                text: answer.schema.schema,
                references,
            };
            Ok((answer.id, Fetched::Schema(schema)))
        }

        /// The id `schema` (of `kind`: `AVRO`, `PROTOBUF`) has under `subject`, if it is
        /// registered there; with `register`, registers it when it is not
        /// (`POST /subjects/{subject}/versions`).
        pub async fn id_under(
            &self,
            subject: &str,
            schema: &str,
            kind: &str,
            register: bool,
        ) -> Result<Option<u32>, RegistryError> {
            #[derive(Deserialize)]
            struct IdAnswer {
                id: u32,
            }
            // Avro is the registries' default kind, and is not named (as Confluent's clients do).
            let body = match kind {
                "AVRO" | "" => serde_json::json!({"schema": schema}),
                kind => serde_json::json!({"schema": schema, "schemaType": kind}),
            };
            let path = format!("/subjects/{}", encode(subject));
            if let Some(found) = self.send::<IdAnswer>(reqwest::Method::POST, &path, Some(&body)).await? {
                return Ok(Some(found.id));
            }
            if !register {
                return Ok(None);
            }
            let path = format!("/subjects/{}/versions", encode(subject));
            let registered = self.send::<IdAnswer>(reqwest::Method::POST, &path, Some(&body)).await?;
            Ok(registered.map(|r| r.id))
        }

        /// Appends the texts of `refs` (and theirs, first) to `out`; `Ok(Err(what))` names a
        /// reference the registry does not have.
        async fn resolve(
            &self,
            refs: &[Reference],
            out: &mut Vec<SchemaReference>,
            depth: usize,
        ) -> Result<Result<(), String>, RegistryError> {
            for reference in refs {
                let what = format!("subject `{}` version {}", reference.subject, reference.version);
                if depth >= MAX_REFERENCE_DEPTH {
                    return Ok(Err(format!("{what} (references nested deeper than {MAX_REFERENCE_DEPTH})")));
                }
                if out.len() >= MAX_REFERENCES {
                    return Ok(Err(format!("{what} (more than {MAX_REFERENCES} references)")));
                }
                let path = format!("/subjects/{}/versions/{}", encode(&reference.subject), reference.version);
                let Some(answer) = self.get::<SchemaAnswer>(&path).await? else { return Ok(Err(what)) };
                if let Err(missing) = Box::pin(self.resolve(&answer.references, out, depth + 1)).await? {
                    return Ok(Err(missing));
                }
                if !out.iter().any(|r| r.name == reference.name) {
                    out.push(SchemaReference { name: reference.name.clone(), text: answer.schema });
                }
            }
            Ok(Ok(()))
        }

        /// `GET path`: the answer, `None` when the registry says it has no such thing.
        async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>, RegistryError> {
            self.send(reqwest::Method::GET, path, None).await
        }

        /// A request: the answer, `None` when the registry says it has no such thing.
        async fn send<T: serde::de::DeserializeOwned>(
            &self,
            method: reqwest::Method,
            path: &str,
            body: Option<&serde_json::Value>,
        ) -> Result<Option<T>, RegistryError> {
            let url = format!("{}{path}", self.url);
            let mut request = self.http.request(method, &url).header(
                "Accept",
                "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json",
            );
            if let Some(body) = body {
                request =
                    request.header("Content-Type", "application/vnd.schemaregistry.v1+json").body(body.to_string());
            }
            request = match &self.auth {
                RegistryAuth::None => request,
                RegistryAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
                RegistryAuth::Bearer(token) => request.bearer_auth(token),
            };
            let unreachable =
                |e: reqwest::Error| RegistryError::Unreachable { url: self.url.clone(), source: Box::new(e) };
            let response = request.send().await.map_err(unreachable)?;
            let status = response.status();
            let body = super::super::fetched::answer_body(response, &url).await?;
            if status.is_success() {
                return serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| RegistryError::BadAnswer { url: url.clone(), why: e.to_string() });
            }
            let error: Option<ErrorAnswer> = serde_json::from_slice(&body).ok();
            let code = error.as_ref().and_then(|e| e.error_code);
            if status.as_u16() == 404 && code.is_some_and(|c| NOT_FOUND.contains(&c)) {
                return Ok(None);
            }
            let message = error
                .and_then(|e| e.message)
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
            Err(RegistryError::Refused { url, status: status.as_u16(), code, message })
        }
    }

    /// A subject in a URL path: everything but unreserved characters percent-encoded.
    fn encode(subject: &str) -> String {
        let mut out = String::with_capacity(subject.len());
        for byte in subject.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_may_hold_an_at_sign_and_only_a_number_or_latest_is_a_version() {
        assert_eq!(subject_and_version("orders-value"), ("orders-value", "latest"));
        assert_eq!(subject_and_version("orders-value@3"), ("orders-value", "3"));
        assert_eq!(subject_and_version("team@orders"), ("team@orders", "latest"));
        assert_eq!(subject_and_version("team@orders@latest"), ("team@orders", "latest"));
    }
}
