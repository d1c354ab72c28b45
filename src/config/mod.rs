//! Settings, resolved in one place for every entry (the Lambda function, `process`, `run`):
//! command-line flags over environment variables over `environments.yaml`, with `parameter://`
//! values read from SSM, into one [`Settings`] from which the router, the producer and the
//! worker's options are built. Read once at start-up.
//!
//! Environment variables (each flag of `lambda-stream run` overrides the one it names):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LAMBDA_NAME` | function name in fail records and logs | `AWS_LAMBDA_FUNCTION_NAME` |
//! | `LAMBDA_ENV` | environment name (`dev`, `prod`, …) | required |
//! | `MSK_SERVERS` | bootstrap servers of the cluster to produce to | required |
//! | `MAPPING_FILE` | the mapping: a file, or an S3 object `s3://bucket/key[?versionId=…]` | required |
//! | `METRICS`, `METRICS_NAMESPACE` | `off`: no EMF metrics; their CloudWatch namespace | on, `lambda-stream` |
//! | `MAPPING_REFRESH_S` | how often a warm instance or the worker checks the mapping for a change; 0: never | 60 |
//! | `TOPIC_OK`, `TOPIC_FAIL` | destination topics | required |
//! | `PARTIAL_BATCH_RESPONSE` | `true`: answer `batchItemFailures` instead of failing the batch | `false` |
//! | `KAFKA_LINGER_MS`, `KAFKA_COMPRESSION`, `KAFKA_MESSAGE_TIMEOUT_MS` | producer tuning | 5, lz4, 30000 |
//! | `KAFKA_SECURITY` | `plaintext`, `tls`, `sasl_scram` or `iam` (docs/deployment.md) | `plaintext` |
//! | `MSK_IAM_REGION` | region MSK IAM tokens are signed for | `AWS_REGION` |
//! | `SOURCE_TOPICS` | topics the worker consumes (comma-separated) | `source_topics` |
//! | `OUTPUT_TOPICS` | the topics a mapping's `outputs:` may write to (comma-separated); a mapping that writes elsewhere is refused | `output_topics`, else any |
//! | `DELIVERY_MARGIN_MS` | stop waiting for deliveries this long before Lambda's deadline | 1000 |
//! | `CONSUMER_GROUP` | the worker's consumer group | — |
//! | `WORKER_CONCURRENCY`, `WORKER_MAX_BATCH` | the worker's mapping threads and largest batch | all cores, 5000 |
//! | `SOURCE_FORMAT` | `json`, `json-schema` or `avro` (docs/formats.md) | `json` |
//! | `SCHEMA_REGISTRY_URL` | a Confluent-compatible schema registry | — (required for `avro`) |
//! | `SCHEMA_REGISTRY_USER_INFO`, `SCHEMA_REGISTRY_BEARER_TOKEN` | its credentials (`parameter://` values read from SSM) | none |
//! | `SCHEMA_REGISTRY_TIMEOUT_MS` | how long one registry request may take | 10000 |
//!
//! With an `environments.yaml` (`ENVIRONMENTS_FILE`, else `$LAMBDA_TASK_ROOT/environments.yaml`, else
//! `./environments.yaml`; `ENVIRONMENTS_FILE=none` uses none), `LAMBDA_ENV` (and `LAMBDA_STAGE` when an account has several stages)
//! selects an entry whose values fill in what the environment does not set: variables win.

pub mod environments;
#[cfg(feature = "kafka")]
pub mod ssm;

use std::path::{Path, PathBuf};

use crate::format::SourceFormat;
use crate::sink::ProducerSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required setting `{key}` (environment variable {var}){context}")]
    Missing { key: &'static str, var: &'static str, context: String },
    #[error("setting {name} has an invalid value {value:?}: {why}")]
    Invalid { name: &'static str, value: String, why: String },
    #[error("setting {name} has an invalid value {value:?}: {source}")]
    Number { name: &'static str, value: String, source: std::num::ParseIntError },
    /// A `parameter://` value that names no parameter SSM would take.
    #[error("setting {name} has an invalid value {value:?}: {source}")]
    Reference { name: &'static str, value: String, source: environments::ReferenceError },
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file} is invalid:\n{problems}")]
    File { file: String, problems: String },
    #[error("{file}: unknown environment `{env}` (from LAMBDA_ENV); environments in the file: {known}")]
    UnknownEnvironment { file: String, env: String, known: String },
    #[error("{file}: environment `{env}` has no stage `{stage}` (from LAMBDA_STAGE); its stages: {known}")]
    UnknownStage { file: String, env: String, stage: String, known: String },
    #[error("{file}: environment `{env}` has several stages ({known}); set LAMBDA_STAGE to choose one")]
    AmbiguousStage { file: String, env: String, known: String },
    #[error("setting `{key}` refers to parameter `{name}`, which cannot be resolved: {source}")]
    Parameter { key: &'static str, name: String, source: ParameterError },
}

/// Why a `parameter://` reference has no value. Never carries a parameter's value.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("no parameter store is configured here")]
    NoStore,
    #[error("ParameterNotFound: no such parameter in SSM Parameter Store")]
    NotFound,
    #[error("it was not fetched")]
    NotFetched,
    /// SSM did not answer, or refused (credentials, permissions, throttling): one error for every
    /// name of the call. The SDK's message names the operation and the AWS error code; it carries
    /// no parameter values.
    #[cfg(feature = "kafka")]
    #[error("{}", aws_sdk_ssm::error::DisplayErrorContext(.0.as_ref()))]
    Ssm(
        #[source]
        std::sync::Arc<aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::get_parameters::GetParametersError>>,
    ),
}

/// Resolves `parameter://` references (AWS SSM Parameter Store in Lambda).
pub trait ParameterResolver {
    /// The parameter's value (SecureStrings decrypted). The error must not contain the value.
    fn resolve(&self, name: &str) -> Result<String, ParameterError>;

    /// Whether its answers are the parameters' values. A resolver that only learns which
    /// parameters the settings name answers with stand-ins, and checks of the values (a topic's
    /// name) wait for the read with the fetched ones.
    fn gives_values(&self) -> bool {
        true
    }
}

/// For places without a parameter store: every reference is an error that says so.
pub struct NoParameterStore;

impl ParameterResolver for NoParameterStore {
    fn resolve(&self, _name: &str) -> Result<String, ParameterError> {
        Err(ParameterError::NoStore)
    }
}

/// One route: the records of `source_topic`, mapped by `mapping_file`, to its own topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSettings {
    pub source_topic: String,
    pub mapping_file: PathBuf,
    pub topic_ok: String,
    pub topic_fail: String,
    /// How this topic's values are written (the environment's `source_format` unless the route says).
    pub format: Option<SourceFormat>,
}

pub use crate::format::registry::RegistrySettings;

/// Everything an entry needs, resolved: flags over variables over `environments.yaml`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub lambda_name: String,
    pub lambda_env: String,
    pub mapping_file: PathBuf,
    pub topic_ok: String,
    pub topic_fail: String,
    pub partial_batch: bool,
    pub producer: ProducerSettings,
    pub delivery_margin_ms: u64,
    /// Seconds between checks of the mapping's source for a change (0: never).
    pub mapping_refresh_s: u64,
    /// One route per source topic (`routes:` in `environments.yaml`); empty with one mapping.
    /// With routes, `mapping_file`, `topic_ok` and `topic_fail` are the first route's.
    pub routes: Vec<RouteSettings>,
    /// The default route's fail topic: records of topics without a route (with routes only).
    pub unrouted_topic_fail: Option<String>,
    /// Topics to consume (the worker; in Lambda the event source mapping names them).
    pub source_topics: Vec<String>,
    /// The topics a mapping's `outputs:` may write to (what the function is granted); empty: any.
    pub output_topics: Vec<String>,
    /// The worker's consumer group.
    pub consumer_group: Option<String>,
    /// The worker's mapping threads (default: all cores).
    pub worker_concurrency: Option<usize>,
    /// The worker's largest batch.
    pub worker_max_batch: Option<usize>,
    /// How source records' values are written (routes may say otherwise).
    pub source_format: SourceFormat,
    /// The schema registry, when some records are in a registry's format.
    pub schema_registry: Option<RegistrySettings>,
    /// How ok records are written, over each mapping's `output:`.
    pub output: crate::format::output::OutputSettings,
}

/// The layers a setting is looked up in, first match wins: command-line flags (by the name of the
/// variable each overrides), then the process environment (empty values count as unset), then
/// the entry's own defaults.
pub struct Layers {
    pub flags: Vec<(&'static str, String)>,
    pub defaults: Vec<(&'static str, String)>,
}

impl Layers {
    /// The environment alone: the Lambda function.
    pub fn environment() -> Self {
        Layers { flags: Vec::new(), defaults: Vec::new() }
    }

    /// For a command run outside Lambda: `flags` first. Without a named environment (`--env` or
    /// `LAMBDA_ENV`) the environments file is not read, so a checkout's `environments.yaml` never
    /// leaks into a flags-only run; names default to local ones.
    pub fn command_line(flags: Vec<(&'static str, Option<String>)>, default_name: &str) -> Self {
        let flags: Vec<(&'static str, String)> = flags.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        let mut layers = Layers { flags, defaults: Vec::new() };
        if layers.get("LAMBDA_ENV").is_none() {
            layers.defaults.push(("ENVIRONMENTS_FILE", "none".into()));
        }
        layers.defaults.push(("LAMBDA_ENV", "local".into()));
        layers.defaults.push(("LAMBDA_NAME", default_name.into()));
        layers
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let find = |list: &[(&'static str, String)]| list.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
        find(&self.flags)
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| find(&self.defaults))
    }
}

/// Where the environments file is, if there is one. `ENVIRONMENTS_FILE=none` means no file, even
/// if one is lying around (settings then come from variables only).
fn environments_file(get: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(explicit) = get("ENVIRONMENTS_FILE") {
        return (explicit != "none").then(|| PathBuf::from(explicit));
    }
    let candidates = [get("LAMBDA_TASK_ROOT").map(PathBuf::from), Some(PathBuf::from("."))];
    candidates.into_iter().flatten().map(|dir| dir.join("environments.yaml")).find(|p| p.is_file())
}

impl Settings {
    /// Settings from the process environment and, when present, `environments.yaml`.
    pub fn from_env(resolver: &dyn ParameterResolver) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()), resolver)
    }

    /// Reads settings through `get` (the environment, or a map in tests). Environment variables
    /// override the environments file; `parameter://` values are resolved through `resolver`.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        resolver: &dyn ParameterResolver,
    ) -> Result<Self, ConfigError> {
        let file = environments_file(&get);
        let selected = match &file {
            Some(path) => Some(select(path, &get)?),
            None => None,
        };
        let env = selected.as_ref();
        let context = match (&file, env) {
            (Some(f), Some(e)) => {
                format!(" for environment `{}` in {}", e.name(), f.display())
            }
            _ => String::new(),
        };
        let from_file = |pick: fn(&environments::Environment) -> Option<String>| env.and_then(pick);
        let value = |var: &'static str, key: &'static str, pick: Pick| resolved(&get, env, resolver, var, key, pick);
        // `routes:` (unless the variables name one mapping): the first route fills in the one
        // mapping's settings, which the variables would otherwise have to give.
        let one_mapping = ["MAPPING_FILE", "TOPIC_OK", "TOPIC_FAIL"].iter().any(|v| get(v).is_some());
        let (routes, unrouted_topic_fail) = match (env, &file) {
            (Some(e), Some(f)) if !e.routes.is_empty() && !one_mapping => routes_of(e, f),
            _ => (Vec::new(), None),
        };
        let first_route = routes.first().cloned();
        let required = |var: &'static str,
                        key: &'static str,
                        pick: fn(&environments::Environment) -> Option<String>| {
            let from_route = first_route.as_ref().and_then(|r| match var {
                "TOPIC_OK" => Some(r.topic_ok.clone()),
                "TOPIC_FAIL" => Some(r.topic_fail.clone()),
                _ => None,
            });
            match from_route {
                Some(v) => Ok(v),
                None => {
                    value(var, key, pick)?.ok_or_else(|| ConfigError::Missing { key, var, context: context.clone() })
                }
            }
        };
        let number = |var: &'static str, default: u64, pick: Pick| number(&get, env, var, default, pick);
        let lambda_name = lambda_name(&get, env, &context)?;
        let partial_batch = flag(
            "PARTIAL_BATCH_RESPONSE",
            get("PARTIAL_BATCH_RESPONSE")
                .or_else(|| from_file(|e| e.batch.partial_batch_response.as_ref().map(|b| b.value.to_string()))),
        )?;
        let mut producer = ProducerSettings::new(required("MSK_SERVERS", "msk_servers", |e| {
            e.msk_servers.as_ref().map(|s| s.value.clone())
        })?);
        producer.linger_ms =
            number("KAFKA_LINGER_MS", 5, |e| e.producer.linger_ms.as_ref().map(|v| v.value.to_string()))? as u32;
        producer.message_timeout_ms = number("KAFKA_MESSAGE_TIMEOUT_MS", 30_000, |e| {
            e.producer.message_timeout_ms.as_ref().map(|v| v.value.to_string())
        })? as u32;
        if let Some(c) = compression(
            get("KAFKA_COMPRESSION")
                .or_else(|| from_file(|e| e.producer.compression.as_ref().map(|s| s.value.clone()))),
        )? {
            producer.compression = c;
        }
        security(&value, &get, env, &mut producer)?;
        let mapping_file = mapping_file(get("MAPPING_FILE"), first_route.as_ref(), env, file.as_deref())
            .ok_or_else(|| ConfigError::Missing { key: "mapping", var: "MAPPING_FILE", context: context.clone() })?;
        let settings = Settings {
            lambda_name,
            lambda_env: get("LAMBDA_ENV").ok_or_else(|| ConfigError::Missing {
                key: "lambda_env",
                var: "LAMBDA_ENV",
                context: context.clone(),
            })?,
            mapping_file,
            topic_ok: required("TOPIC_OK", "topic_ok", |e| e.topic_ok.as_ref().map(|s| s.value.clone()))?,
            topic_fail: required("TOPIC_FAIL", "topic_fail", |e| e.topic_fail.as_ref().map(|s| s.value.clone()))?,
            partial_batch,
            producer,
            delivery_margin_ms: number("DELIVERY_MARGIN_MS", 1000, |_| None)?,
            mapping_refresh_s: number("MAPPING_REFRESH_S", 60, |_| None)?,
            routes,
            unrouted_topic_fail,
            source_topics: topic_list(get("SOURCE_TOPICS"), env.map(|e| &e.source_topics[..])),
            output_topics: topic_list(get("OUTPUT_TOPICS"), env.map(|e| &e.output_topics[..])),
            consumer_group: get("CONSUMER_GROUP"),
            worker_concurrency: positive(&get, "WORKER_CONCURRENCY")?,
            worker_max_batch: positive(&get, "WORKER_MAX_BATCH")?,
            source_format: source_format(
                get("SOURCE_FORMAT").or_else(|| from_file(|e| e.source_format.as_ref().map(|s| s.value.clone()))),
            )?,
            schema_registry: registry_settings(&value, &number)?,
            output: output_settings(&get)?,
        };
        settings.check_formats()?;
        if resolver.gives_values() {
            settings.check_topics()?;
        }
        Ok(settings)
    }

    /// The format of records of `topic`: its route's, else the environment's.
    pub fn format_of(&self, topic: &str) -> SourceFormat {
        self.routes.iter().find(|r| r.source_topic == topic).and_then(|r| r.format).unwrap_or(self.source_format)
    }

    /// Every format in use, the environment's and the routes'.
    pub fn formats(&self) -> impl Iterator<Item = SourceFormat> + '_ {
        std::iter::once(self.source_format).chain(self.routes.iter().map(|r| r.format.unwrap_or(self.source_format)))
    }

    /// Records that name schemas need somewhere to read them from.
    fn check_formats(&self) -> Result<(), ConfigError> {
        if let Some(format) = self.formats().find(|f| f.uses_schemas())
            && self.schema_registry.is_none()
        {
            return Err(ConfigError::Missing {
                key: "schema_registry_url",
                var: "SCHEMA_REGISTRY_URL",
                context: format!(": {format} records name their schema in a registry"),
            });
        }
        Ok(())
    }

    /// Every topic named, resolved, is one Kafka takes (see [`environments::topic_problem`]): a
    /// name it refuses stops the cold start here rather than failing every batch at delivery.
    fn check_topics(&self) -> Result<(), ConfigError> {
        let routes = self
            .routes
            .iter()
            .flat_map(|r| [("routes", &r.source_topic), ("routes", &r.topic_ok), ("routes", &r.topic_fail)]);
        let topics = [("TOPIC_OK", &self.topic_ok), ("TOPIC_FAIL", &self.topic_fail)]
            .into_iter()
            .chain(self.source_topics.iter().map(|t| ("SOURCE_TOPICS", t)))
            .chain(self.output_topics.iter().map(|t| ("OUTPUT_TOPICS", t)))
            .chain(self.unrouted_topic_fail.iter().map(|t| ("routes", t)))
            .chain(routes);
        for (name, topic) in topics {
            if let Some(why) = environments::topic_problem(topic) {
                return Err(ConfigError::Invalid { name, value: topic.clone(), why });
            }
        }
        Ok(())
    }

    /// The names that go into every fail record, and the destination topics.
    pub fn router(&self) -> crate::destination::Router {
        crate::destination::Router {
            topic_ok: self.topic_ok.clone(),
            topic_fail: self.topic_fail.clone(),
            function_name: self.lambda_name.clone(),
            function_env: self.lambda_env.clone(),
        }
    }
}

/// A count that must be positive when given.
fn positive(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<usize>, ConfigError> {
    match get(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(ConfigError::Invalid { name, value: v, why: "expected a positive number".into() }),
        },
    }
}

/// Picks a setting's value out of an environments-file entry.
type Pick = fn(&environments::Environment) -> Option<String>;

/// Looks a setting up by (variable, file key, pick): the variable, else the file, with
/// `parameter://` values resolved.
type Lookup<'a> = dyn Fn(&'static str, &'static str, Pick) -> Result<Option<String>, ConfigError> + 'a;

/// Kafka authentication → librdkafka properties on the producer.
fn security(
    value: &Lookup<'_>,
    get: &impl Fn(&str) -> Option<String>,
    env: Option<&environments::Environment>,
    producer: &mut ProducerSettings,
) -> Result<(), ConfigError> {
    let kind = value("KAFKA_SECURITY", "kafka.security", |e| e.kafka.security.as_ref().map(|s| s.value.clone()))?
        .unwrap_or_else(|| "plaintext".into());
    let ca = value("KAFKA_CA_BUNDLE", "kafka.ca_bundle", |e| e.kafka.ca_bundle.as_ref().map(|s| s.value.clone()))?;
    let tls = match get("KAFKA_TLS")
        .or_else(|| env.and_then(|e| e.kafka.tls.as_ref().map(|t| t.value.to_string())))
        .as_deref()
    {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "KAFKA_TLS",
                value: other.into(),
                why: "expected true or false".into(),
            });
        }
    };
    let mut set = |k: &str, v: &str| producer.extra.push((k.to_string(), v.to_string()));
    match kind.as_str() {
        "plaintext" => {}
        "tls" => set("security.protocol", "ssl"),
        "sasl_scram" => {
            let secret = value("KAFKA_SCRAM_SECRET", "kafka.scram_secret", |e| {
                e.kafka.scram_secret.as_ref().map(|s| s.value.clone())
            })?
            .ok_or(ConfigError::Missing {
                key: "kafka.scram_secret",
                var: "KAFKA_SCRAM_SECRET",
                context: String::new(),
            })?;
            #[derive(serde::Deserialize)]
            struct Credentials {
                username: String,
                password: String,
            }
            // The message says what is wrong with the shape, never the value.
            let creds: Credentials = serde_json::from_str(&secret).map_err(|e| ConfigError::Invalid {
                name: "KAFKA_SCRAM_SECRET",
                value: "<redacted>".into(),
                why: format!("expected JSON {{\"username\": …, \"password\": …}} ({})", e.classify_name()),
            })?;
            set("security.protocol", if tls { "sasl_ssl" } else { "sasl_plaintext" });
            set("sasl.mechanism", "SCRAM-SHA-512");
            set("sasl.username", &creds.username);
            set("sasl.password", &creds.password);
        }
        "iam" => {
            // Lambda always sets AWS_REGION; MSK_IAM_REGION is for a cluster in another region.
            let region = get("MSK_IAM_REGION").or_else(|| get("AWS_REGION")).ok_or(ConfigError::Missing {
                key: "region",
                var: "AWS_REGION",
                context: " (MSK IAM signs for the cluster's region; set MSK_IAM_REGION if it differs)".into(),
            })?;
            set("security.protocol", if tls { "sasl_ssl" } else { "sasl_plaintext" });
            set("sasl.mechanism", "OAUTHBEARER");
            producer.msk_iam_region = Some(region);
        }
        other => {
            return Err(ConfigError::Invalid {
                name: "KAFKA_SECURITY",
                value: other.into(),
                why: format!("expected one of {}", environments::SECURITY_KINDS.join(", ")),
            });
        }
    }
    if let Some(ca) = ca {
        set("ssl.ca.location", &ca);
    }
    Ok(())
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "JSON of the wrong shape",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Reads the environments file and picks the entry named by LAMBDA_ENV (and LAMBDA_STAGE).
fn select(
    path: &std::path::Path,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<environments::Environment, ConfigError> {
    let shown = path.display().to_string();
    let text = crate::limits::read_text_bounded(path, crate::limits::MAX_MAPPING_BYTES, "a settings file")
        .map_err(|source| ConfigError::Read { file: shown.clone(), source })?;
    let (parsed, diags) = environments::parse(&text);
    if !diags.is_empty() {
        let problems = diags.iter().map(|d| d.render(&shown)).collect::<Vec<_>>().join("\n");
        return Err(ConfigError::File { file: shown, problems });
    }
    let env = get("LAMBDA_ENV").ok_or_else(|| ConfigError::Missing {
        key: "lambda_env",
        var: "LAMBDA_ENV",
        context: format!(" to choose an environment in {shown}"),
    })?;
    let stages: Vec<&environments::Environment> =
        parsed.environments.iter().filter(|e| e.account.value == env).collect();
    if stages.is_empty() {
        let mut known: Vec<&str> = parsed.environments.iter().map(|e| e.account.value.as_str()).collect();
        known.dedup();
        return Err(ConfigError::UnknownEnvironment { file: shown, env, known: known.join(", ") });
    }
    let known = || stages.iter().map(|e| e.stage.value.as_str()).collect::<Vec<_>>().join(", ");
    let chosen = match get("LAMBDA_STAGE") {
        Some(stage) => stages.iter().find(|e| e.stage.value == stage).ok_or_else(|| ConfigError::UnknownStage {
            file: shown.clone(),
            env: env.clone(),
            stage,
            known: known(),
        })?,
        None if stages.len() == 1 => &stages[0],
        None => return Err(ConfigError::AmbiguousStage { file: shown, env, known: known() }),
    };
    Ok((*chosen).clone())
}

/// A setting: its environment variable first, then the file; a `parameter://` value resolved.
fn resolved(
    get: &impl Fn(&str) -> Option<String>,
    env: Option<&environments::Environment>,
    resolver: &dyn ParameterResolver,
    var: &'static str,
    key: &'static str,
    pick: Pick,
) -> Result<Option<String>, ConfigError> {
    let Some(raw) = get(var).or_else(|| env.and_then(pick)) else { return Ok(None) };
    match environments::parameter_name(&raw) {
        None => Ok(Some(raw)),
        Some(Err(source)) => Err(ConfigError::Reference { name: var, value: raw, source }),
        Some(Ok(name)) => {
            resolver.resolve(&name).map(Some).map_err(|source| ConfigError::Parameter { key, name, source })
        }
    }
}

/// A whole-number setting (variable, then file), `default` when unset.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    env: Option<&environments::Environment>,
    var: &'static str,
    default: u64,
    pick: Pick,
) -> Result<u64, ConfigError> {
    match get(var).or_else(|| env.and_then(pick)) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|source| ConfigError::Number { name: var, value: v, source }),
    }
}

/// The function's name: `LAMBDA_NAME` or the file's `lambda_name`, else the one the Lambda runtime
/// gives (`AWS_LAMBDA_FUNCTION_NAME`).
fn lambda_name(
    get: &impl Fn(&str) -> Option<String>,
    env: Option<&environments::Environment>,
    context: &str,
) -> Result<String, ConfigError> {
    get("LAMBDA_NAME")
        .or_else(|| env.and_then(|e| e.lambda_name.as_ref().map(|s| s.value.clone())))
        .or_else(|| get("AWS_LAMBDA_FUNCTION_NAME"))
        .ok_or_else(|| ConfigError::Missing { key: "lambda_name", var: "LAMBDA_NAME", context: context.to_string() })
}

/// The one mapping: `MAPPING_FILE`, else the first route's, else the environment's `mapping:`
/// (relative to environments.yaml).
fn mapping_file(
    variable: Option<String>,
    first_route: Option<&RouteSettings>,
    env: Option<&environments::Environment>,
    file: Option<&Path>,
) -> Option<PathBuf> {
    match (variable, first_route) {
        (Some(m), _) => Some(PathBuf::from(m)),
        (None, Some(r)) => Some(r.mapping_file.clone()),
        (None, None) => match (env.and_then(|e| e.mapping.as_ref()), file) {
            (Some(m), Some(f)) => Some(environments::resolve_relative(f, &m.value)),
            _ => None,
        },
    }
}

/// The routes of an environment's `routes:`, and the fail topic of its default route (records of
/// a topic no route takes).
fn routes_of(env: &environments::Environment, file: &Path) -> (Vec<RouteSettings>, Option<String>) {
    let mut routes = Vec::new();
    let mut unrouted = None;
    let text = |s: &Option<crate::diagnostic::Spanned<String>>| s.as_ref().map(|s| s.value.clone()).unwrap_or_default();
    for r in &env.routes {
        let topic = text(&r.source_topic);
        if topic == environments::DEFAULT_ROUTE {
            unrouted = r.topic_fail.as_ref().map(|t| t.value.clone());
            continue;
        }
        routes.push(RouteSettings {
            source_topic: topic,
            mapping_file: environments::resolve_relative(file, &text(&r.mapping)),
            topic_ok: text(&r.topic_ok),
            topic_fail: text(&r.topic_fail),
            // Checked when the file is read (`environments::check`): a value that does not parse
            // never reaches here from a checked file.
            format: r.format.as_ref().and_then(|f| f.value.parse().ok()),
        });
    }
    (routes, unrouted)
}

/// A yes/no setting: `true`/`1` or `false`/`0`; unset is no.
fn flag(name: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ConfigError::Invalid { name, value: other.into(), why: "expected true or false".into() }),
    }
}

/// The schema registry's settings, when `SCHEMA_REGISTRY_URL` (or the file's
/// `schema_registry_url`) names one.
fn registry_settings(
    value: &impl Fn(&'static str, &'static str, Pick) -> Result<Option<String>, ConfigError>,
    number: &impl Fn(&'static str, u64, Pick) -> Result<u64, ConfigError>,
) -> Result<Option<RegistrySettings>, ConfigError> {
    let Some(url) = value("SCHEMA_REGISTRY_URL", "schema_registry_url", |e| {
        e.schema_registry_url.as_ref().map(|s| s.value.clone())
    })?
    else {
        return Ok(None);
    };
    Ok(Some(RegistrySettings {
        url,
        user_info: value("SCHEMA_REGISTRY_USER_INFO", "schema_registry_user_info", |e| {
            e.schema_registry_user_info.as_ref().map(|s| s.value.clone())
        })?,
        bearer_token: value("SCHEMA_REGISTRY_BEARER_TOKEN", "schema_registry_bearer_token", |_| None)?,
        timeout_ms: number("SCHEMA_REGISTRY_TIMEOUT_MS", 10_000, |_| None)?,
    }))
}

/// `SOURCE_FORMAT`: how source records' values are written.
/// `OUTPUT_FORMAT`, `OUTPUT_SCHEMA`, `OUTPUT_SUBJECT` and `REGISTER_SCHEMAS`.
fn output_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<crate::format::output::OutputSettings, ConfigError> {
    let format = match get("OUTPUT_FORMAT") {
        None => None,
        Some(text) => Some(crate::plan::OutputFormat::parse(&text).map_err(|why| ConfigError::Invalid {
            name: "OUTPUT_FORMAT",
            value: text.clone(),
            why,
        })?),
    };
    let register = match get("REGISTER_SCHEMAS").as_deref().map(str::trim) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "REGISTER_SCHEMAS",
                value: other.to_string(),
                why: "it is true or false".into(),
            });
        }
    };
    Ok(crate::format::output::OutputSettings {
        format,
        schema: get("OUTPUT_SCHEMA"),
        subject: get("OUTPUT_SUBJECT"),
        register,
    })
}

fn source_format(value: Option<String>) -> Result<SourceFormat, ConfigError> {
    match value {
        None => Ok(SourceFormat::Json),
        Some(v) => v.parse().map_err(|why| ConfigError::Invalid { name: "SOURCE_FORMAT", value: v, why }),
    }
}

/// The producer's compression, one librdkafka and every Kafka client reads.
fn compression(value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(c) if !["none", "gzip", "snappy", "lz4"].contains(&c.as_str()) => Err(ConfigError::Invalid {
            name: "KAFKA_COMPRESSION",
            value: c,
            why: "expected none, gzip, snappy or lz4".into(),
        }),
        other => Ok(other),
    }
}

/// A comma-separated list of topics from a variable, else the file's list.
fn topic_list(variable: Option<String>, from_file: Option<&[crate::diagnostic::Spanned<String>]>) -> Vec<String> {
    match variable {
        Some(list) => list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        None => from_file.map(|topics| topics.iter().map(|t| t.value.clone()).collect()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
        ("LAMBDA_ENV", "dev"),
        ("MSK_SERVERS", "b1:9092"),
        ("MAPPING_FILE", "m.yaml"),
        ("TOPIC_OK", "ok"),
        ("TOPIC_FAIL", "fail"),
        ("ENVIRONMENTS_FILE", "none"),
    ];

    /// Settings from variables only (the repository's own environments.yaml must not leak in).
    fn without_file(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        pairs.to_vec()
    }

    /// Flags win over the environment, which wins over an entry's defaults (PATH is set in any
    /// test process; the `LAMBDA_STREAM_TEST_…` names in none).
    #[test]
    fn layers_take_flags_then_the_environment_then_defaults() {
        let path = std::env::var("PATH").unwrap();
        let layers = Layers {
            flags: vec![("LAMBDA_STREAM_TEST_FLAG", "from the flag".into())],
            defaults: vec![("PATH", "a default".into()), ("LAMBDA_STREAM_TEST_DEFAULT", "d".into())],
        };
        assert_eq!(layers.get("LAMBDA_STREAM_TEST_FLAG").as_deref(), Some("from the flag"));
        assert_eq!(layers.get("PATH"), Some(path), "the environment over a default");
        assert_eq!(layers.get("LAMBDA_STREAM_TEST_DEFAULT").as_deref(), Some("d"));
        assert_eq!(layers.get("LAMBDA_STREAM_TEST_NOTHING"), None);
        let over = Layers { flags: vec![("PATH", "flag".into())], defaults: Vec::new() };
        assert_eq!(over.get("PATH").as_deref(), Some("flag"), "a flag over the environment");
    }

    #[test]
    fn a_command_line_reads_the_environments_file_only_for_a_named_environment() {
        let flags_only = Layers::command_line(vec![("TOPIC_OK", Some("out".into())), ("TOPIC_FAIL", None)], "w");
        assert_eq!(flags_only.get("TOPIC_OK").as_deref(), Some("out"));
        assert_eq!(flags_only.get("TOPIC_FAIL"), None, "an absent flag is no value");
        if std::env::var_os("LAMBDA_ENV").is_none() {
            assert_eq!(flags_only.get("ENVIRONMENTS_FILE").as_deref(), Some("none"));
            assert_eq!(flags_only.get("LAMBDA_ENV").as_deref(), Some("local"));
        }
        let named = Layers::command_line(vec![("LAMBDA_ENV", Some("acme".into()))], "w");
        assert_eq!(named.get("LAMBDA_ENV").as_deref(), Some("acme"));
        if std::env::var_os("ENVIRONMENTS_FILE").is_none() {
            assert_eq!(named.get("ENVIRONMENTS_FILE"), None, "the file is looked for as usual");
        }
        assert_eq!(
            named.get("LAMBDA_NAME").as_deref().filter(|_| std::env::var_os("LAMBDA_NAME").is_none()),
            Some("w")
        );
    }

    #[test]
    fn reads_required_settings_with_defaults() {
        let s = Settings::from_lookup(lookup(&without_file(BASE)), &NoParameterStore).unwrap();
        assert_eq!(s.lambda_name, "fn");
        assert_eq!(s.producer.brokers, "b1:9092");
        assert!(!s.partial_batch);
        assert_eq!(s.producer.compression, "lz4");
        assert_eq!(s.delivery_margin_ms, 1000);
    }

    #[test]
    fn names_the_missing_or_invalid_setting() {
        let without: Vec<_> = without_file(BASE).into_iter().filter(|(k, _)| *k != "TOPIC_FAIL").collect();
        let e = Settings::from_lookup(lookup(&without), &NoParameterStore).unwrap_err();
        assert_eq!(e.to_string(), "missing required setting `topic_fail` (environment variable TOPIC_FAIL)");
        let mut bad = without_file(BASE);
        bad.push(("PARTIAL_BATCH_RESPONSE", "yes please"));
        let e = Settings::from_lookup(lookup(&bad), &NoParameterStore).unwrap_err();
        assert!(e.to_string().contains("PARTIAL_BATCH_RESPONSE"), "{e}");
        let mut bad = without_file(BASE);
        bad.push(("KAFKA_LINGER_MS", "soon"));
        assert!(
            Settings::from_lookup(lookup(&bad), &NoParameterStore).unwrap_err().to_string().contains("KAFKA_LINGER_MS")
        );
    }

    /// A topic Kafka refuses stops the cold start, naming the setting.
    #[test]
    fn topics_kafka_refuses_are_invalid_settings() {
        for (var, value, why) in [
            ("TOPIC_OK", "billing out", "not ` `"),
            ("TOPIC_FAIL", "..", "`.` and `..`"),
            ("SOURCE_TOPICS", "orders,orders\u{0}x", "'\\0'"),
        ] {
            let mut bad: Vec<(&str, &str)> = without_file(BASE).into_iter().filter(|(k, _)| *k != var).collect();
            bad.push((var, value));
            let e = Settings::from_lookup(lookup(&bad), &NoParameterStore).unwrap_err().to_string();
            assert!(e.contains(var) && e.contains(why), "{e}");
        }
    }

    struct FakeStore;
    impl ParameterResolver for FakeStore {
        fn resolve(&self, name: &str) -> Result<String, ParameterError> {
            match name {
                "/acme/kafka/servers" => Ok("resolved:9092".into()),
                _ => Err(ParameterError::NotFound),
            }
        }
    }

    fn environments(text: &str) -> (PathBuf, impl Drop + use<>) {
        struct Dir(PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ls-cfg-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("environments.yaml");
        std::fs::write(&path, text).unwrap();
        (path, Dir(dir))
    }

    const FILE: &str = "version: 1\nacme:\n  master:\n    lambda_name: fn-master\n    msk_servers: parameter://acme/kafka/servers\n    source_topics: [in]\n    topic_ok: out\n    topic_fail: out.fail\n    mapping: m.yaml\n    batch: {partial_batch_response: true}\n  dev:\n    msk_servers: localhost:9092\n    topic_ok: dev.out\n    topic_fail: dev.fail\n    mapping: m.yaml\n";

    #[test]
    fn scram_credentials_become_producer_properties_and_are_never_printed() {
        let mut pairs = without_file(BASE);
        pairs.push(("KAFKA_SECURITY", "sasl_scram"));
        pairs.push(("KAFKA_SCRAM_SECRET", r#"{"username": "svc", "password": "hunter2-secret"}"#));
        let s = Settings::from_lookup(lookup(&pairs), &NoParameterStore).unwrap();
        let get = |k: &str| s.producer.extra.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get("sasl.username"), Some("svc"));
        assert_eq!(get("sasl.password"), Some("hunter2-secret"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));

        let mut plain = pairs.clone();
        plain.push(("KAFKA_TLS", "false"));
        let s = Settings::from_lookup(lookup(&plain), &NoParameterStore).unwrap();
        assert!(s.producer.extra.contains(&("security.protocol".into(), "sasl_plaintext".into())));

        let mut bad = without_file(BASE);
        bad.push(("KAFKA_SECURITY", "sasl_scram"));
        bad.push(("KAFKA_SCRAM_SECRET", "user:hunter2-secret"));
        let e = Settings::from_lookup(lookup(&bad), &NoParameterStore).unwrap_err().to_string();
        assert!(e.contains("KAFKA_SCRAM_SECRET") && e.contains("not JSON") && !e.contains("hunter2"), "{e}");

        let mut tls = without_file(BASE);
        tls.push(("KAFKA_SECURITY", "tls"));
        tls.push(("KAFKA_CA_BUNDLE", "/etc/ca.pem"));
        let s = Settings::from_lookup(lookup(&tls), &NoParameterStore).unwrap();
        assert_eq!(
            s.producer.extra,
            vec![
                ("security.protocol".to_string(), "ssl".to_string()),
                ("ssl.ca.location".into(), "/etc/ca.pem".into())
            ]
        );
    }

    #[test]
    fn iam_uses_oauthbearer_signed_for_the_lambda_region() {
        let mut pairs = without_file(BASE);
        pairs.push(("KAFKA_SECURITY", "iam"));
        let e = Settings::from_lookup(lookup(&pairs), &NoParameterStore).unwrap_err().to_string();
        assert!(e.contains("AWS_REGION") && e.contains("MSK_IAM_REGION"), "{e}");
        pairs.push(("AWS_REGION", "sa-east-1"));
        let s = Settings::from_lookup(lookup(&pairs), &NoParameterStore).unwrap();
        assert_eq!(s.producer.msk_iam_region.as_deref(), Some("sa-east-1"));
        assert_eq!(
            s.producer.extra,
            vec![
                ("security.protocol".to_string(), "sasl_ssl".to_string()),
                ("sasl.mechanism".into(), "OAUTHBEARER".into())
            ]
        );
        pairs.push(("MSK_IAM_REGION", "us-east-1"));
        let s = Settings::from_lookup(lookup(&pairs), &NoParameterStore).unwrap();
        assert_eq!(s.producer.msk_iam_region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn selects_the_environment_and_lets_variables_override() {
        let (path, _dir) = environments(FILE);
        let p = path.to_str().unwrap();
        let s = Settings::from_lookup(
            lookup(&[("ENVIRONMENTS_FILE", p), ("LAMBDA_ENV", "acme"), ("LAMBDA_STAGE", "master")]),
            &FakeStore,
        )
        .unwrap();
        assert_eq!(s.lambda_name, "fn-master");
        assert_eq!(s.producer.brokers, "resolved:9092", "parameter:// resolved through the store");
        assert_eq!(s.topic_ok, "out");
        assert!(s.partial_batch);
        assert_eq!(s.mapping_file, path.parent().unwrap().join("m.yaml"), "relative to the file");
        let s = Settings::from_lookup(
            lookup(&[
                ("ENVIRONMENTS_FILE", p),
                ("LAMBDA_ENV", "acme"),
                ("LAMBDA_STAGE", "dev"),
                ("TOPIC_OK", "override"),
                ("AWS_LAMBDA_FUNCTION_NAME", "aws-name"),
            ]),
            &FakeStore,
        )
        .unwrap();
        assert_eq!(s.topic_ok, "override", "variables win over the file");
        assert_eq!(s.producer.brokers, "localhost:9092");
        assert_eq!(s.lambda_name, "aws-name");
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_environment() {
        let (path, _dir) = environments(FILE);
        let p = path.to_str().unwrap();
        let e = |pairs: &[(&str, &str)]| Settings::from_lookup(lookup(pairs), &FakeStore).unwrap_err().to_string();
        let unknown = e(&[("ENVIRONMENTS_FILE", p), ("LAMBDA_ENV", "acmee")]);
        assert!(
            unknown.contains(p) && unknown.contains("unknown environment `acmee`") && unknown.contains("acme"),
            "{unknown}"
        );
        let ambiguous = e(&[("ENVIRONMENTS_FILE", p), ("LAMBDA_ENV", "acme")]);
        assert!(ambiguous.contains("several stages (master, dev)"), "{ambiguous}");
        let stage = e(&[("ENVIRONMENTS_FILE", p), ("LAMBDA_ENV", "acme"), ("LAMBDA_STAGE", "prod")]);
        assert!(stage.contains("no stage `prod`"), "{stage}");
        let missing = e(&[("ENVIRONMENTS_FILE", p), ("LAMBDA_ENV", "acme"), ("LAMBDA_STAGE", "dev")]);
        assert!(missing.contains("missing required setting `lambda_name` (environment variable LAMBDA_NAME) for environment `acme/dev` in"), "{missing}");
        let (bad, _d2) = environments("version: 1\nacme:\n  master: {topik_ok: x}\n");
        let b = bad.to_str().unwrap();
        let invalid = e(&[("ENVIRONMENTS_FILE", b), ("LAMBDA_ENV", "acme")]);
        assert!(invalid.contains(&format!("{b}:3:12: error: unknown key `topik_ok`")), "{invalid}");
        let (missing_param, _d3) =
            environments(&FILE.replace("parameter://acme/kafka/servers", "parameter://acme/nope"));
        let m = missing_param.to_str().unwrap();
        let param = e(&[("ENVIRONMENTS_FILE", m), ("LAMBDA_ENV", "acme"), ("LAMBDA_STAGE", "master")]);
        assert_eq!(
            param,
            "setting `msk_servers` refers to parameter `/acme/nope`, which cannot be resolved: ParameterNotFound: no \
             such parameter in SSM Parameter Store"
        );
    }

    #[test]
    fn routes_give_each_source_topic_its_mapping_and_topics() {
        let text = "version: 1\nacme:\n  prod:\n    lambda_name: f\n    msk_servers: b:9092\n    source_topics: [orders, payments]\n    routes:\n      - { source_topic: orders, mapping: o.yaml, topic_ok: billing, topic_fail: billing.fail }\n      - { source_topic: payments, mapping: s3://team/p.yaml, topic_ok: ledger, topic_fail: ledger.fail }\n      - { source_topic: '*', topic_fail: unrouted }\n";
        let (path, _dir) = environments(text);
        let p = path.to_str().unwrap();
        let s = Settings::from_lookup(lookup(&[("ENVIRONMENTS_FILE", p), ("LAMBDA_ENV", "acme")]), &NoParameterStore)
            .unwrap();
        let dir = path.parent().unwrap();
        assert_eq!(
            s.routes,
            vec![
                RouteSettings {
                    source_topic: "orders".into(),
                    mapping_file: dir.join("o.yaml"),
                    topic_ok: "billing".into(),
                    topic_fail: "billing.fail".into(),
                    format: None,
                },
                RouteSettings {
                    source_topic: "payments".into(),
                    mapping_file: "s3://team/p.yaml".into(),
                    topic_ok: "ledger".into(),
                    topic_fail: "ledger.fail".into(),
                    format: None,
                },
            ]
        );
        assert_eq!(s.unrouted_topic_fail.as_deref(), Some("unrouted"));
        assert_eq!((s.topic_ok.as_str(), s.mapping_file.clone()), ("billing", dir.join("o.yaml")), "the first route's");
        // Variables that name one mapping win over the file's routes.
        let s = Settings::from_lookup(
            lookup(&[
                ("ENVIRONMENTS_FILE", p),
                ("LAMBDA_ENV", "acme"),
                ("MAPPING_FILE", "m.yaml"),
                ("TOPIC_OK", "o"),
                ("TOPIC_FAIL", "f"),
            ]),
            &NoParameterStore,
        )
        .unwrap();
        assert!(s.routes.is_empty());
        assert_eq!(s.mapping_file, PathBuf::from("m.yaml"));
    }
}
