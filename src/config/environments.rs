//! `environments.yaml`: per-environment settings, in the seed's shape (account → stage → settings).
//!
//! ```yaml
//! version: 1
//! aws-account-henrique:              # selected by LAMBDA_ENV
//!   master:                          # selected by LAMBDA_STAGE (or the only stage)
//!     lambda_name: lambda-stream
//!     msk_servers: parameter://aws-henrique/parameterstore/kafka_bootstrap_servers
//!     source_topics: [orders.checkout.v1]
//!     topic_ok: billing.records.v1
//!     topic_fail: billing.records.v1.fail
//!     mapping: mappings/orders-to-billing.yaml
//!     batch: { size: 500, window_seconds: 1, starting_position: LATEST, partial_batch_response: true }
//!     kafka: { security: sasl_scram, scram_secret: parameter://aws-henrique/kafka/scram }
//! ```
//!
//! Parsing collects every problem with its position, like the mapping compiler; [`check`] adds the
//! checks that need more than one key (and compiles each environment's mapping).

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Pos, Spanned};
use crate::yaml::{Fields, Node, NodeKind, load_yaml};

/// The version of the environments format this program reads.
pub const ENVIRONMENTS_VERSION: i64 = 1;

pub const SECURITY_KINDS: &[&str] = &["plaintext", "tls", "sasl_scram", "iam"];
pub const STARTING_POSITIONS: &[&str] = &["LATEST", "TRIM_HORIZON"];
pub const PARAMETER_PREFIX: &str = "parameter://";

#[derive(Clone, Debug, Default)]
pub struct EnvironmentsFile {
    pub environments: Vec<Environment>,
}

/// One account/stage entry.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub account: Spanned<String>,
    pub stage: Spanned<String>,
    pub pos: Pos,
    pub lambda_name: Option<Spanned<String>>,
    pub msk_servers: Option<Spanned<String>>,
    pub source_topics: Vec<Spanned<String>>,
    /// The topics the mapping's `outputs:` may write to: the function refuses a mapping that
    /// writes elsewhere (they are what it is granted).
    pub output_topics: Vec<Spanned<String>>,
    pub topic_ok: Option<Spanned<String>>,
    pub topic_fail: Option<Spanned<String>>,
    pub mapping: Option<Spanned<String>>,
    /// How the source records' values are written (`json`, `json-schema`, `avro`).
    pub source_format: Option<Spanned<String>>,
    /// The schema registry: a Confluent-compatible REST API's URL.
    pub schema_registry_url: Option<Spanned<String>>,
    /// `user:password` for the registry's HTTP Basic authentication (a `parameter://` value).
    pub schema_registry_user_info: Option<Spanned<String>>,
    /// One route per source topic, instead of `mapping`, `topic_ok` and `topic_fail`.
    pub routes: Vec<RouteSpec>,
    pub batch: Batch,
    pub kafka: KafkaSecurity,
    pub producer: Producer,
}

/// A route: the records of one source topic, mapped by one mapping to its own topics. The route
/// whose `source_topic` is `*` takes records of any other topic, to its fail topic only.
#[derive(Clone, Debug, Default)]
pub struct RouteSpec {
    pub pos: Pos,
    pub source_topic: Option<Spanned<String>>,
    pub mapping: Option<Spanned<String>>,
    pub topic_ok: Option<Spanned<String>>,
    pub topic_fail: Option<Spanned<String>>,
    /// How this topic's values are written, when not the environment's `source_format`.
    pub format: Option<Spanned<String>>,
}

/// The `source_topic` of the route that takes every topic without one of its own.
pub const DEFAULT_ROUTE: &str = "*";

/// Event source mapping settings (used by the deployment template).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub size: Option<Spanned<i64>>,
    pub window_seconds: Option<Spanned<i64>>,
    pub starting_position: Option<Spanned<String>>,
    pub partial_batch_response: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, Default)]
pub struct KafkaSecurity {
    /// `plaintext`, `tls`, `sasl_scram` or `iam`; plaintext when absent.
    pub security: Option<Spanned<String>>,
    /// SCRAM credentials: a `parameter://` SecureString holding `{"username": …, "password": …}`.
    pub scram_secret: Option<Spanned<String>>,
    /// CA bundle (PEM file) for `tls` and `sasl_scram` against self-managed clusters.
    pub ca_bundle: Option<Spanned<String>>,
    /// `sasl_scram` over TLS (the default, as MSK's port 9096) or, `false`, over plaintext.
    pub tls: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, Default)]
pub struct Producer {
    pub linger_ms: Option<Spanned<i64>>,
    pub compression: Option<Spanned<String>>,
    pub message_timeout_ms: Option<Spanned<i64>>,
}

const SETTING_KEYS: &[&str] = &[
    "lambda_name",
    "lambda_env",
    "msk_servers",
    "source_topics",
    "output_topics",
    "topic_ok",
    "topic_fail",
    "mapping",
    "source_format",
    "schema_registry_url",
    "schema_registry_user_info",
    "routes",
    "batch",
    "kafka",
    "producer",
];
const ROUTE_KEYS: &[&str] = &["source_topic", "mapping", "topic_ok", "topic_fail", "format"];
const BATCH_KEYS: &[&str] = &["size", "window_seconds", "starting_position", "partial_batch_response"];
const KAFKA_KEYS: &[&str] = &["security", "scram_secret", "ca_bundle", "tls"];
const PRODUCER_KEYS: &[&str] = &["linger_ms", "compression", "message_timeout_ms"];

impl Environment {
    /// `account/stage`, how messages name an environment.
    pub fn name(&self) -> String {
        format!("{}/{}", self.account.value, self.stage.value)
    }
}

/// Parses the file, collecting every shape problem.
pub fn parse(text: &str) -> (EnvironmentsFile, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut file = EnvironmentsFile::default();
    let Some(root) = load_yaml(text, &mut diags) else { return (file, diags) };
    let NodeKind::Map(top) = &root.kind else {
        diags.push(Diagnostic::new(
            root.pos,
            format!("environments.yaml must be a mapping of accounts, found {}", root.kind_name()),
        ));
        return (file, diags);
    };
    let mut saw_version = false;
    for (account, stages) in top {
        if account.value == "version" {
            saw_version = true;
            // The seed writes `version: '1.0'`; accept 1, 1.0 and "1.0".
            let ok = match &stages.kind {
                NodeKind::Int(v) => *v == ENVIRONMENTS_VERSION,
                NodeKind::Float(v) => *v == ENVIRONMENTS_VERSION as f64,
                NodeKind::Str(s) => s == "1" || s == "1.0",
                _ => false,
            };
            if !ok {
                diags.push(Diagnostic::new(
                    stages.pos,
                    format!("unsupported environments version; this program reads version {ENVIRONMENTS_VERSION}"),
                ));
            }
            continue;
        }
        let NodeKind::Map(stage_entries) = &stages.kind else {
            diags.push(Diagnostic::new(
                stages.pos,
                format!("account `{}` must map stage names to settings, found {}", account.value, stages.kind_name()),
            ));
            continue;
        };
        if stage_entries.is_empty() {
            diags.push(Diagnostic::new(stages.pos, format!("account `{}` has no stages", account.value)));
        }
        for (stage, settings) in stage_entries {
            if let Some(env) = read_environment(account, stage, settings, &mut diags) {
                file.environments.push(env);
            }
        }
    }
    if !saw_version {
        diags.push(Diagnostic::new(
            root.pos,
            format!("missing `version` (this program reads `version: {ENVIRONMENTS_VERSION}`)"),
        ));
    }
    (file, diags)
}

fn read_environment(
    account: &Spanned<String>,
    stage: &Spanned<String>,
    node: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<Environment> {
    let what = format!("environment `{}/{}`", account.value, stage.value);
    let f = Fields::read(node, &what, SETTING_KEYS, diags)?;
    let mut env =
        Environment { account: account.clone(), stage: stage.clone(), pos: node.pos, ..Environment::default() };
    env.lambda_name = f.string("lambda_name", diags);
    if let Some(lambda_env) = f.string("lambda_env", diags)
        && lambda_env.value != account.value
    {
        diags.push(Diagnostic::new(
            lambda_env.pos,
            format!(
                "`lambda_env` is `{}` but the account key is `{}`; LAMBDA_ENV selects the account, so they must match",
                lambda_env.value, account.value
            ),
        ));
    }
    env.msk_servers = f.string("msk_servers", diags);
    env.source_topics = f.string_list("source_topics", diags);
    env.output_topics = f.string_list("output_topics", diags);
    env.topic_ok = f.string("topic_ok", diags);
    env.topic_fail = f.string("topic_fail", diags);
    env.mapping = f.string("mapping", diags);
    env.source_format = f.string("source_format", diags);
    format_known(env.source_format.as_ref(), diags);
    env.schema_registry_url = f.string("schema_registry_url", diags);
    env.schema_registry_user_info = f.string("schema_registry_user_info", diags);
    for node in f.list("routes", diags) {
        if let Some(r) = Fields::read(node, "a route", ROUTE_KEYS, diags) {
            env.routes.push(RouteSpec {
                pos: node.pos,
                source_topic: r.string("source_topic", diags),
                mapping: r.string("mapping", diags),
                topic_ok: r.string("topic_ok", diags),
                topic_fail: r.string("topic_fail", diags),
                format: r.string("format", diags),
            });
            format_known(env.routes.last().and_then(|r| r.format.as_ref()), diags);
        }
    }
    let int = |node: Option<&Node>, key: &str, diags: &mut Vec<Diagnostic>| -> Option<Spanned<i64>> {
        let node = node?;
        match node.kind {
            NodeKind::Int(i) => Some(Spanned::new(i, node.pos)),
            _ => {
                diags
                    .push(Diagnostic::new(node.pos, format!("`{key}` must be an integer, found {}", node.kind_name())));
                None
            }
        }
    };
    if let Some(b) = f.get("batch").and_then(|n| Fields::read(n, "`batch`", BATCH_KEYS, diags)) {
        env.batch = Batch {
            size: int(b.get("size"), "size", diags),
            window_seconds: int(b.get("window_seconds"), "window_seconds", diags),
            starting_position: b.string("starting_position", diags),
            partial_batch_response: b.boolean("partial_batch_response", diags),
        };
    }
    if let Some(k) = f.get("kafka").and_then(|n| Fields::read(n, "`kafka`", KAFKA_KEYS, diags)) {
        env.kafka = KafkaSecurity {
            security: k.string("security", diags),
            scram_secret: k.string("scram_secret", diags),
            ca_bundle: k.string("ca_bundle", diags),
            tls: k.boolean("tls", diags),
        };
    }
    if let Some(p) = f.get("producer").and_then(|n| Fields::read(n, "`producer`", PRODUCER_KEYS, diags)) {
        env.producer = Producer {
            linger_ms: int(p.get("linger_ms"), "linger_ms", diags),
            compression: p.string("compression", diags),
            message_timeout_ms: int(p.get("message_timeout_ms"), "message_timeout_ms", diags),
        };
    }
    Some(env)
}

/// A problem found by [`check`]: in the environments file, or in a mapping it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub diagnostic: Diagnostic,
}

/// Checks one environment as deployed: required settings present, values in range, the security
/// settings complete, `parameter://` references well formed, and its mapping compiling.
pub fn check(env: &Environment, file: &Path, diags: &mut Vec<Located>) {
    let here = |d: Diagnostic| Located { file: file.to_path_buf(), diagnostic: d };
    let name = env.name();
    let missing = |key: &str, present: bool, diags: &mut Vec<Located>| {
        if !present {
            diags.push(here(Diagnostic::new(
                env.pos,
                format!("environment `{name}` is missing required setting `{key}`"),
            )));
        }
    };
    missing("lambda_name", env.lambda_name.is_some(), diags);
    missing("msk_servers", env.msk_servers.is_some(), diags);
    missing("source_topics", !env.source_topics.is_empty(), diags);
    if env.routes.is_empty() {
        missing("topic_ok", env.topic_ok.is_some(), diags);
        missing("topic_fail", env.topic_fail.is_some(), diags);
        missing("mapping", env.mapping.is_some(), diags);
    } else {
        check_routes(env, file, diags);
    }
    check_formats(env, &mut |d| diags.push(here(d)));
    for value in [&env.msk_servers, &env.topic_ok, &env.topic_fail, &env.kafka.scram_secret].into_iter().flatten() {
        if let Err(why) = parameter_name(&value.value).unwrap_or(Ok(String::new())) {
            diags.push(here(Diagnostic::new(value.pos, why.to_string())));
        }
    }
    check_topic_names(env, &mut |d| diags.push(here(d)));
    if let (Some(ok), Some(fail)) = (&env.topic_ok, &env.topic_fail)
        && ok.value == fail.value
    {
        diags.push(here(Diagnostic::new(
            fail.pos,
            "`topic_fail` must differ from `topic_ok`: failures would be mixed with results",
        )));
    }
    for topic in &env.source_topics {
        if [&env.topic_ok, &env.topic_fail].into_iter().flatten().any(|t| t.value == topic.value) {
            diags.push(here(Diagnostic::new(
                topic.pos,
                format!(
                    "source topic `{}` is also a destination: the function would consume its own output",
                    topic.value
                ),
            )));
        }
    }
    check_batch(env, &mut |d| diags.push(here(d)));
    check_security(env, &mut |d| diags.push(here(d)));
    if let Some(c) = &env.producer.compression
        && !["none", "gzip", "snappy", "lz4"].contains(&c.value.as_str())
    {
        diags.push(here(Diagnostic::new(
            c.pos,
            format!("`compression` must be none, gzip, snappy or lz4, found `{}`", c.value),
        )));
    }
    if let Some(mapping) = &env.mapping {
        check_mapping(mapping, &name, file, &env.output_topics, diags);
    }
}

/// The event source mapping's batch settings, within Lambda's limits.
fn check_batch(env: &Environment, push: &mut dyn FnMut(Diagnostic)) {
    if let Some(size) = &env.batch.size
        && !(1..=10_000).contains(&size.value)
    {
        push(Diagnostic::new(
            size.pos,
            format!("batch `size` must be 1 to 10000 (Lambda's limit for Kafka), found {}", size.value),
        ));
    }
    if let Some(w) = &env.batch.window_seconds
        && !(0..=300).contains(&w.value)
    {
        push(Diagnostic::new(w.pos, format!("batch `window_seconds` must be 0 to 300, found {}", w.value)));
    }
    if let Some(p) = &env.batch.starting_position
        && !STARTING_POSITIONS.contains(&p.value.as_str())
    {
        push(Diagnostic::new(
            p.pos,
            format!("`starting_position` must be one of {}, found `{}`", STARTING_POSITIONS.join(", "), p.value),
        ));
    }
}

/// `security` is one this program speaks, with the credentials it needs, never written inline.
fn check_security(env: &Environment, push: &mut dyn FnMut(Diagnostic)) {
    match env.kafka.security.as_ref().map(|s| (s.value.as_str(), s.pos)) {
        None | Some(("plaintext" | "tls" | "iam", _)) => {}
        Some(("sasl_scram", pos)) => {
            if env.kafka.scram_secret.is_none() {
                push(Diagnostic::new(
                    pos,
                    "`security: sasl_scram` needs `scram_secret` (a parameter:// reference to the credentials)",
                ));
            }
        }
        Some((other, pos)) => push(Diagnostic::new(
            pos,
            format!(
                "unknown `security` `{other}`{}; one of {}",
                crate::diagnostic::suggestion(other, SECURITY_KINDS.iter().copied()),
                SECURITY_KINDS.join(", ")
            ),
        )),
    }
    if let Some(secret) = &env.kafka.scram_secret
        && !secret.value.starts_with(PARAMETER_PREFIX)
    {
        push(Diagnostic::new(
            secret.pos,
            "`scram_secret` must be a parameter:// reference; credentials never go in this file",
        ));
    }
}

/// Every topic an environment names (source topics, destinations, each route's) is one Kafka
/// takes; a `parameter://` destination is checked as a parameter name instead, and a route's `*`
/// is not a topic.
fn check_topic_names(env: &Environment, report: &mut impl FnMut(Diagnostic)) {
    let routes = env.routes.iter().flat_map(|r| {
        let source = r.source_topic.as_ref().filter(|t| t.value != DEFAULT_ROUTE);
        [source, r.topic_ok.as_ref(), r.topic_fail.as_ref()]
    });
    let topics =
        env.source_topics.iter().map(Some).chain([env.topic_ok.as_ref(), env.topic_fail.as_ref()]).chain(routes);
    for topic in topics.flatten() {
        if topic.value.starts_with(PARAMETER_PREFIX) {
            continue;
        }
        if let Some(why) = topic_problem(&topic.value) {
            report(Diagnostic::new(
                topic.pos,
                format!("topic `{}` cannot be created: {why}", topic.value.escape_debug()),
            ));
        }
    }
}

/// Routes: each complete, one per source topic, every source topic routed (or a default route),
/// no route writing to a topic the function reads, and each route's mapping compiling.
/// A record format is one this program reads (checked as the file is read, so that no cold start
/// takes a misspelt one for the default).
fn format_known(format: Option<&Spanned<String>>, diags: &mut Vec<Diagnostic>) {
    if let Some(format) = format
        && let Err(why) = format.value.parse::<crate::format::SourceFormat>()
    {
        diags.push(Diagnostic::new(format.pos, why));
    }
}

/// Records that name schemas have a registry to read them from.
fn check_formats(env: &Environment, diags: &mut impl FnMut(Diagnostic)) {
    let formats = std::iter::once(env.source_format.as_ref()).chain(env.routes.iter().map(|r| r.format.as_ref()));
    let mut uses_schemas = None;
    for format in formats.flatten() {
        if format.value.parse::<crate::format::SourceFormat>().is_ok_and(|f| f.uses_schemas()) {
            uses_schemas = uses_schemas.or(Some(format));
        }
    }
    if let Some(format) = uses_schemas
        && env.schema_registry_url.is_none()
    {
        diags(Diagnostic::new(
            format.pos,
            format!(
                "`{}` records name their schema in a registry: set `schema_registry_url` (or SCHEMA_REGISTRY_URL)",
                format.value
            ),
        ));
    }
}

fn check_routes(env: &Environment, file: &Path, diags: &mut Vec<Located>) {
    let here = |d: Diagnostic| Located { file: file.to_path_buf(), diagnostic: d };
    let name = env.name();
    for key in [&env.mapping, &env.topic_ok, &env.topic_fail].into_iter().flatten() {
        diags.push(here(Diagnostic::new(
            key.pos,
            "with `routes`, each route names its mapping, `topic_ok` and `topic_fail`; remove this one".to_string(),
        )));
    }
    let mut seen: Vec<&str> = Vec::new();
    for route in &env.routes {
        let Some(topic) = &route.source_topic else {
            diags
                .push(here(Diagnostic::new(route.pos, "a route needs its `source_topic` (`*` for every other topic)")));
            continue;
        };
        if seen.contains(&topic.value.as_str()) {
            diags.push(here(Diagnostic::new(topic.pos, format!("a second route for topic `{}`", topic.value))));
        }
        seen.push(&topic.value);
        let is_default = topic.value == DEFAULT_ROUTE;
        if is_default {
            for key in [&route.mapping, &route.topic_ok].into_iter().flatten() {
                diags.push(here(Diagnostic::new(
                    key.pos,
                    "the default route (`*`) only names `topic_fail`: records of topics without a route are failed, not mapped",
                )));
            }
        } else {
            for (key, present) in [("mapping", route.mapping.is_some()), ("topic_ok", route.topic_ok.is_some())] {
                if !present {
                    diags.push(here(Diagnostic::new(
                        route.pos,
                        format!("the route of `{}` needs `{key}`", topic.value),
                    )));
                }
            }
            if !env.source_topics.iter().any(|t| t.value == topic.value) {
                diags.push(here(Diagnostic::new(
                    topic.pos,
                    format!("a route for `{}`, which is not in `source_topics`: no record would take it", topic.value),
                )));
            }
        }
        if route.topic_fail.is_none() {
            diags.push(here(Diagnostic::new(route.pos, format!("the route of `{}` needs `topic_fail`", topic.value))));
        }
        for destination in [&route.topic_ok, &route.topic_fail].into_iter().flatten() {
            if env.source_topics.iter().any(|t| t.value == destination.value) {
                diags.push(here(Diagnostic::new(
                    destination.pos,
                    format!(
                        "`{}` is also a source topic: the function would consume its own output",
                        destination.value
                    ),
                )));
            }
        }
        if let Some(mapping) = &route.mapping {
            check_mapping(mapping, &name, file, &env.output_topics, diags);
        }
    }
    if !seen.contains(&DEFAULT_ROUTE) {
        for topic in env.source_topics.iter().filter(|t| !seen.contains(&t.value.as_str())) {
            diags.push(here(Diagnostic::new(
                topic.pos,
                format!(
                    "source topic `{}` has no route (add one, or a default route `source_topic: \"*\"`)",
                    topic.value
                ),
            )));
        }
    }
}

/// The mapping an environment (or route) names compiles, and its outputs write only to the
/// environment's `output_topics` when it lists them. A mapping in S3 is checked where it is read:
/// at the function's cold start (and by `validate-mapping` on a copy before it is published).
fn check_mapping(
    mapping: &Spanned<String>,
    name: &str,
    file: &Path,
    output_topics: &[Spanned<String>],
    diags: &mut Vec<Located>,
) {
    let here = |d: Diagnostic| Located { file: file.to_path_buf(), diagnostic: d };
    if !mapping.value.starts_with("s3://") {
        let path = resolve_relative(file, &mapping.value);
        match crate::limits::read_text_bounded(&path, crate::limits::MAX_MAPPING_BYTES, "a mapping") {
            Err(e) => {
                diags.push(here(Diagnostic::new(mapping.pos, format!("cannot read mapping `{}`: {e}", path.display()))))
            }
            Ok(text) => {
                // Its lookup files are read from its folder, as the function reads them.
                let options = crate::mapping_file::options(path.parent());
                match crate::plan::load_str_in(&text, &options) {
                    Err(problems) => {
                        diags.push(here(Diagnostic::new(
                            mapping.pos,
                            format!(
                                "mapping `{}` of environment `{name}` has {} problem(s), listed below",
                                path.display(),
                                problems.len()
                            ),
                        )));
                        diags.extend(problems.into_iter().map(|d| Located { file: path.clone(), diagnostic: d }));
                    }
                    Ok((_, plan)) if !output_topics.is_empty() => {
                        let allowed = |t: &&str| output_topics.iter().any(|o| o.value == *t);
                        let outside: Vec<&str> = plan.output_topics().into_iter().filter(|t| !allowed(t)).collect();
                        if !outside.is_empty() {
                            diags.push(here(Diagnostic::new(
                                mapping.pos,
                                format!(
                                    "mapping `{}` writes to {}, which `output_topics` does not list",
                                    path.display(),
                                    outside.join(", ")
                                ),
                            )));
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
    }
}

/// A path in the environments file, relative to the file's own directory.
pub fn resolve_relative(file: &Path, path: &str) -> PathBuf {
    // An object in S3 is named in full; it is nowhere relative to the file.
    if path.starts_with("s3://") {
        return PathBuf::from(path);
    }
    let p = Path::new(path);
    if p.is_absolute() { p.to_path_buf() } else { file.parent().unwrap_or(Path::new(".")).join(p) }
}

/// For a `parameter://NAME` value: `Some(Ok(ssm_name))`, or `Some(Err(why))` when malformed;
/// `None` for a plain value. SSM hierarchical names start with `/`, which is added when missing
/// (`parameter://team/kafka/servers` → `/team/kafka/servers`).
///
/// The name must be one SSM takes (its PutParameter naming constraints): letters, digits and
/// `_ . -`, with `/` between levels (none empty, none after the last), at most
/// [`MAX_PARAMETER_LEVELS`] levels and [`MAX_PARAMETER_NAME`] characters, not starting with `aws`
/// or `ssm` in any case (in a hierarchy: no top level `/aws` or `/ssm`). The parameters AWS
/// publishes itself are read under `/aws/`: `/aws/service/…` (public parameters) and
/// `/aws/reference/secretsmanager/…` (a Secrets Manager secret, whose name may also hold `+ = @`).
pub fn parameter_name(value: &str) -> Option<Result<String, ReferenceError>> {
    let name = value.strip_prefix(PARAMETER_PREFIX)?;
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Some(Err(ReferenceError::Malformed { value: value.to_owned() }));
    }
    let full = if name.starts_with('/') || !name.contains('/') { name.to_string() } else { format!("/{name}") };
    Some(match parameter_name_problem(&full) {
        None => Ok(full),
        Some(problem) => Err(ReferenceError::Refused { value: value.to_owned(), problem }),
    })
}

/// Why a `parameter://` value names no parameter SSM would take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("`{value}` is not a valid parameter reference: expected parameter://name/with/segments")]
    Malformed { value: String },
    #[error("`{}`: {problem}", .value.escape_debug())]
    Refused { value: String, problem: NameProblem },
}

/// What SSM's naming rules refuse in a parameter name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("SSM parameter names use letters, digits and `/ _ . -` only, not {}", shown_char(*.0))]
    Character(char),
    #[error("the name is {0} characters; SSM takes at most {MAX_PARAMETER_NAME}")]
    TooLong(usize),
    #[error("the name ends with `/`; SSM names a parameter, not a path")]
    TrailingSlash,
    #[error("the name has an empty level (`//`), which SSM refuses")]
    EmptyLevel,
    #[error("the name has {0} levels; SSM allows at most {MAX_PARAMETER_LEVELS}")]
    TooDeep(usize),
    #[error(
        "SSM reserves names that start with `{0}` (in any case) for its own; only `/aws/service/…` and \
         `/aws/reference/secretsmanager/…` are read there"
    )]
    Reserved(&'static str),
}

fn shown_char(c: char) -> String {
    if c.is_ascii_graphic() { format!("`{c}`") } else { format!("{c:?}") }
}

/// The most levels of hierarchy SSM allows in a parameter name.
pub const MAX_PARAMETER_LEVELS: usize = 15;

/// The longest parameter name SSM takes (the 2,048 it reports include 1,037 for its own use; the
/// 1,011 left also count the ARN before the name, so a name near the limit may still be refused).
pub const MAX_PARAMETER_NAME: usize = 1011;

/// Why SSM would refuse `name` (as sent: `/a/b` or `flat`), if it would.
fn parameter_name_problem(name: &str) -> Option<NameProblem> {
    let secret = name.strip_prefix("/aws/reference/secretsmanager/");
    let public = secret.is_some() || name.starts_with("/aws/service/");
    let extra = if secret.is_some() { "+=@" } else { "" };
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "/_.-".contains(*c) || extra.contains(*c))) {
        return Some(NameProblem::Character(c));
    }
    let length = name.chars().count();
    if length > MAX_PARAMETER_NAME {
        return Some(NameProblem::TooLong(length));
    }
    let levels: Vec<&str> = name.strip_prefix('/').unwrap_or(name).split('/').collect();
    if levels.last() == Some(&"") {
        return Some(NameProblem::TrailingSlash);
    }
    if levels.contains(&"") {
        return Some(NameProblem::EmptyLevel);
    }
    if levels.len() > MAX_PARAMETER_LEVELS {
        return Some(NameProblem::TooDeep(levels.len()));
    }
    // A flat name may not start with `aws` or `ssm`; in a hierarchy, the top levels `/aws` and
    // `/ssm` are AWS's own.
    let first = levels[0].to_ascii_lowercase();
    let flat = !name.starts_with('/');
    let reserved = ["aws", "ssm"].into_iter().find(|p| if flat { first.starts_with(p) } else { first == *p });
    if !public && let Some(prefix) = reserved {
        return Some(NameProblem::Reserved(prefix));
    }
    None
}

/// The longest topic name Kafka takes.
pub const MAX_TOPIC_NAME: usize = 249;

/// Why Kafka would refuse `name` as a topic, if it would: it takes 1 to 249 of `a-z A-Z 0-9 . _ -`,
/// except `.` and `..`.
pub fn topic_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a topic name cannot be empty".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c))) {
        let shown = if c.is_ascii_graphic() || c == ' ' { format!("`{c}`") } else { format!("{c:?}") };
        return Some(format!("Kafka topic names use letters, digits and `. _ -` only, not {shown}"));
    }
    if name == "." || name == ".." {
        return Some("Kafka refuses `.` and `..` as topic names".into());
    }
    let length = name.chars().count();
    if length > MAX_TOPIC_NAME {
        return Some(format!("the name is {length} characters; Kafka takes at most {MAX_TOPIC_NAME}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: '1.0'\nacme:\n  master:\n    lambda_name: fn\n    msk_servers: parameter://acme/kafka/servers\n    source_topics: [in]\n    topic_ok: out\n    topic_fail: out.fail\n    mapping: ../../mappings/orders-to-billing.yaml\n    batch: {size: 500, window_seconds: 1, starting_position: LATEST, partial_batch_response: true}\n    kafka: {security: sasl_scram, scram_secret: parameter://acme/kafka/scram}\n  dev:\n    lambda_name: fn-dev\n    msk_servers: localhost:9092\n    source_topics: [in]\n    topic_ok: out\n    topic_fail: out.fail\n    mapping: ../../mappings/orders-to-billing.yaml\n";

    fn here() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/environments.yaml")
    }

    #[test]
    fn parses_accounts_and_stages_in_the_seed_shape() {
        let (file, diags) = parse(GOOD);
        assert!(diags.is_empty(), "{diags:?}");
        let names: Vec<String> = file.environments.iter().map(Environment::name).collect();
        assert_eq!(names, vec!["acme/master", "acme/dev"]);
        let master = &file.environments[0];
        assert_eq!(master.batch.size.as_ref().unwrap().value, 500);
        assert_eq!(master.kafka.security.as_ref().unwrap().value, "sasl_scram");
        let mut problems = Vec::new();
        for env in &file.environments {
            check(env, &here(), &mut problems);
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn record_formats_are_checked_as_the_file_is_read_and_avro_needs_a_registry() {
        let text = "version: 1\nacme:\n  prod:\n    lambda_name: fn\n    msk_servers: b:9092\n    source_topics: [orders, payments]\n    source_format: avr0\n    routes:\n      - { source_topic: orders, mapping: o.yaml, topic_ok: a, topic_fail: a.fail, format: avrro }\n      - { source_topic: payments, mapping: p.yaml, topic_ok: b, topic_fail: b.fail, format: avro }\n";
        let (file, diags) = parse(text);
        let messages: Vec<String> = diags.iter().map(|d| format!("{}: {}", d.pos, d.message)).collect();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(messages[0].starts_with("7:20: unknown record format `avr0`"), "{messages:#?}");
        assert!(messages[1].contains("unknown record format `avrro`"), "{messages:#?}");
        let mut problems = Vec::new();
        check(&file.environments[0], &here(), &mut problems);
        assert!(
            problems.iter().any(|p| p.diagnostic.message.contains("`avro` records name their schema in a registry")),
            "{problems:#?}"
        );
    }

    #[test]
    fn every_problem_is_located() {
        let text = "version: 1\nacme:\n  prod:\n    lambda_name: fn\n    topik_ok: out\n    source_topics: [out]\n    topic_ok: out\n    topic_fail: out\n    mapping: nope.yaml\n    batch: {size: 0, starting_position: EARLIEST}\n    kafka: {security: sasl_scrm}\n";
        let (file, diags) = parse(text);
        assert_eq!(diags.len(), 1);
        assert!(
            diags[0].message.contains("unknown key `topik_ok`")
                && diags[0].message.contains("did you mean `topic_ok`?"),
            "{diags:?}"
        );
        assert_eq!(diags[0].pos, Pos::new(5, 5));
        let mut problems = Vec::new();
        check(&file.environments[0], &here(), &mut problems);
        let messages: Vec<String> =
            problems.iter().map(|p| format!("{}: {}", p.diagnostic.pos, p.diagnostic.message)).collect();
        let has = |needle: &str| messages.iter().any(|m| m.contains(needle));
        assert!(has("missing required setting `msk_servers`"), "{messages:#?}");
        assert!(has("`topic_fail` must differ from `topic_ok`"), "{messages:#?}");
        assert!(has("source topic `out` is also a destination"), "{messages:#?}");
        assert!(has("batch `size` must be 1 to 10000"), "{messages:#?}");
        assert!(has("`starting_position` must be one of LATEST, TRIM_HORIZON"), "{messages:#?}");
        assert!(has("unknown `security` `sasl_scrm`; did you mean `sasl_scram`?"), "{messages:#?}");
        assert!(has("cannot read mapping"), "{messages:#?}");
    }

    #[test]
    fn mapping_problems_are_reported_in_the_mapping_file() {
        let dir = std::env::temp_dir().join(format!("ls-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("bad.yaml"),
            "version: 1\nname: b\nfields:\n  - {target: a, source: $.a, type: strng}\n",
        )
        .unwrap();
        let env_file = dir.join("environments.yaml");
        let text = "version: 1\nacme:\n  prod: {lambda_name: f, msk_servers: b:9092, source_topics: [in], topic_ok: o, topic_fail: f, mapping: bad.yaml}\n";
        let (file, _) = parse(text);
        let mut problems = Vec::new();
        check(&file.environments[0], &env_file, &mut problems);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(problems[1].file, dir.join("bad.yaml"));
        assert!(problems[1].diagnostic.message.contains("unknown type `strng`"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn parameter_references() {
        assert_eq!(parameter_name("localhost:9092"), None);
        assert_eq!(
            parameter_name("parameter://aws-henrique/parameterstore/kafka_bootstrap_servers"),
            Some(Ok("/aws-henrique/parameterstore/kafka_bootstrap_servers".into()))
        );
        assert_eq!(parameter_name("parameter:///abs/name"), Some(Ok("/abs/name".into())));
        assert_eq!(parameter_name("parameter://flat"), Some(Ok("flat".into())));
        assert!(parameter_name("parameter://").unwrap().is_err());
        assert!(parameter_name("parameter://a b").unwrap().is_err());
        assert!(parameter_name("parameter://a$b").unwrap().is_err());
    }

    /// SSM's rules for a parameter name, as the PutParameter reference gives them: letters,
    /// digits, `_ . -` and `/` between levels, at most fifteen levels, at most 1011 characters,
    /// no `aws`/`ssm` prefix (except the namespaces AWS itself publishes under `/aws/`).
    #[test]
    fn parameter_names_ssm_refuses_are_refused() {
        let refused = |name: &str| match parameter_name(&format!("parameter://{name}")) {
            Some(Err(why)) => why.to_string(),
            other => panic!("{name}: expected a refusal, got {other:?}"),
        };
        assert!(refused("team//servers").contains("empty level"));
        assert!(refused("team/servers/").contains("ends with `/`"));
        assert!(refused("awsKafka").contains("`aws`"));
        assert!(refused("/SSM/secrets/kafka").contains("`ssm`"));
        assert!(refused("SSM-kafka").contains("`ssm`"));
        assert!(refused("/Aws/kafka").contains("`aws`"));
        assert!(refused("a\0b").contains("letters, digits"));
        let deep = (1..=16).map(|i| format!("l{i}")).collect::<Vec<_>>().join("/");
        assert!(refused(&deep).contains("16 levels"), "{}", refused(&deep));
        assert!(refused(&"p".repeat(1012)).contains("1012 characters"));
        let fifteen = (1..=15).map(|i| format!("l{i}")).collect::<Vec<_>>().join("/");
        assert_eq!(parameter_name(&format!("parameter://{fifteen}")), Some(Ok(format!("/{fifteen}"))));
        assert_eq!(parameter_name(&format!("parameter://{}", "p".repeat(1011))), Some(Ok("p".repeat(1011))));
        for fine in [
            "/aws/reference/secretsmanager/kafka-scram",
            "/aws/service/global-infrastructure/regions",
            "team/awsome",
            "aws-team/kafka/servers",
            "a..b",
            "x.y_z-1",
        ] {
            assert!(matches!(parameter_name(&format!("parameter://{fine}")), Some(Ok(_))), "{fine}");
        }
    }

    /// Kafka's rule for a topic name: 1 to 249 of `a-z A-Z 0-9 . _ -`, and not `.` or `..`.
    #[test]
    fn topic_names_kafka_refuses_are_refused() {
        for bad in ["", ".", "..", "in put", "nul\0", "tab\there", "café", "a/b", &"t".repeat(250)] {
            assert!(topic_problem(bad).is_some(), "{bad:?}");
        }
        for good in ["orders", "orders.v1", "Orders_2-x", "...", "a..b", &"t".repeat(249)] {
            assert_eq!(topic_problem(good), None, "{good:?}");
        }
        assert!(topic_problem("in put").unwrap().contains("` `"), "{:?}", topic_problem("in put"));
        assert!(topic_problem(&"t".repeat(250)).unwrap().contains("250 characters"));
    }

    #[test]
    fn lambda_env_must_match_the_account() {
        let (_, diags) = parse("version: 1\nacme:\n  prod: {lambda_env: other}\n");
        assert!(
            diags.iter().any(|d| d.message.contains("`lambda_env` is `other` but the account key is `acme`")),
            "{diags:?}"
        );
        let (_, diags) = parse("acme:\n  prod: {}\n");
        assert!(diags.iter().any(|d| d.message.contains("missing `version`")));
    }

    const ROUTES: &str = "version: 1\nacme:\n  prod:\n    lambda_name: f\n    msk_servers: b:9092\n    source_topics: [orders, payments, refunds]\n    routes:\n      - { source_topic: orders, mapping: ../../mappings/orders-to-billing.yaml, topic_ok: billing, topic_fail: billing.fail }\n      - { source_topic: payments, mapping: ../../mappings/payments-to-ledger.yaml, topic_ok: ledger, topic_fail: ledger.fail }\n      - { source_topic: '*', topic_fail: unrouted.fail }\n";

    #[test]
    fn routes_map_each_source_topic_with_its_own_mapping_and_topics() {
        let (file, diags) = parse(ROUTES);
        assert!(diags.is_empty(), "{diags:?}");
        let env = &file.environments[0];
        assert_eq!(env.routes.len(), 3);
        let mut problems = Vec::new();
        check(env, &here(), &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_mapping_whose_outputs_write_outside_output_topics_is_reported() {
        let text = "version: 1\nacme:\n  prod:\n    lambda_name: f\n    msk_servers: b:9092\n    source_topics: [payments]\n    topic_ok: unused\n    topic_fail: payments.fail\n    mapping: ../../mappings/payments-by-route.yaml\n    output_topics: [payments.audit.v1, payments.refunds.v1, payments.captured.brl.v1, payments.captured.usd.v1, payments.captured.eur.v1]\n";
        let (file, diags) = parse(text);
        assert!(diags.is_empty(), "{diags:?}");
        let mut problems = Vec::new();
        check(&file.environments[0], &here(), &mut problems);
        let messages: Vec<&str> = problems.iter().map(|p| p.diagnostic.message.as_str()).collect();
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert!(
            messages[0].ends_with("writes to payments.other.v1, which `output_topics` does not list"),
            "{messages:#?}"
        );
        let (file, _) =
            parse(&text.replace("payments.captured.eur.v1]", "payments.captured.eur.v1, payments.other.v1]"));
        let mut problems = Vec::new();
        check(&file.environments[0], &here(), &mut problems);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn every_route_problem_is_reported_at_its_place() {
        let text = ROUTES
            .replace("      - { source_topic: '*', topic_fail: unrouted.fail }\n", "")
            .replace("source_topics: [orders, payments, refunds]", "source_topics: [orders, payments, refunds, ledger]")
            .replace("    routes:\n", "    mapping: x.yaml\n    routes:\n      - { source_topic: orders, mapping: a.yaml, topic_fail: f }\n      - { source_topic: audit, mapping: ../../mappings/orders-to-billing.yaml, topic_ok: a, topic_fail: b }\n      - { source_topic: '*', mapping: a.yaml, topic_fail: u }\n");
        let (file, diags) = parse(&text);
        assert!(diags.is_empty(), "{diags:?}");
        let mut problems = Vec::new();
        check(&file.environments[0], &here(), &mut problems);
        let messages: Vec<String> =
            problems.iter().map(|p| format!("{}: {}", p.diagnostic.pos, p.diagnostic.message)).collect();
        let has = |needle: &str| messages.iter().any(|m| m.contains(needle));
        assert!(has("with `routes`, each route names its mapping"), "{messages:#?}");
        assert!(has("the route of `orders` needs `topic_ok`"), "{messages:#?}");
        assert!(has("a second route for topic `orders`"), "{messages:#?}");
        assert!(has("a route for `audit`, which is not in `source_topics`"), "{messages:#?}");
        assert!(has("the default route (`*`) only names `topic_fail`"), "{messages:#?}");
        assert!(has("`ledger` is also a source topic"), "{messages:#?}");
        // With a default route, `refunds` needs no route of its own.
        assert!(!has("source topic `refunds` has no route"), "{messages:#?}");

        let no_default = ROUTES.replace("      - { source_topic: '*', topic_fail: unrouted.fail }\n", "");
        let (file, _) = parse(&no_default);
        let mut problems = Vec::new();
        check(&file.environments[0], &here(), &mut problems);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].diagnostic.message.contains("source topic `refunds` has no route"), "{problems:#?}");
        assert_eq!(problems[0].diagnostic.pos.line, 6, "at the topic in `source_topics`");
    }
}
