//! Where a mapping comes from — a local file or an S3 object — and its checked load, shared by
//! cold starts, refreshes and the worker's SIGHUP: fetch, compile, run the embedded tests.
//!
//! The engine only compiles text; this module fetches it and decides when to. A refresh asks the
//! source whether the text changed (S3: a conditional GET on the ETag, so an unchanged object is
//! not downloaded; a file: its modification time and size, then its hash), compiles and tests a
//! changed text off the batch path, and only then swaps it into the pipeline, between batches. A
//! text that does not compile or fails its tests is refused with every problem in one log line,
//! and the mapping in use stays (last known good); the next change is tried again.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::diagnostic::Diagnostic;
use crate::pipeline::Pipeline;
use crate::plan::{self, Plan, mapping_tests};

/// Where a mapping lives: `s3://bucket/key[?versionId=…]`, or a local path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    S3 { bucket: String, key: String, version_id: Option<String> },
}

impl Location {
    pub fn parse(text: &str) -> Result<Self, SourceError> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(Location::File(PathBuf::from(text)));
        };
        let bad = |why: &str| SourceError::Location { location: text.to_owned(), why: why.to_owned() };
        let (object, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, key) = object.split_once('/').ok_or_else(|| bad("expected s3://bucket/key"))?;
        if bucket.is_empty() || key.is_empty() {
            return Err(bad("expected s3://bucket/key"));
        }
        let version_id = match query {
            "" => None,
            q => match q.strip_prefix("versionId=") {
                Some(v) if !v.is_empty() && !v.contains('&') => Some(v.to_owned()),
                _ => return Err(bad("the only query it takes is `?versionId=…`")),
            },
        };
        Ok(Location::S3 { bucket: bucket.to_owned(), key: key.to_owned(), version_id })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::S3 { bucket, key, version_id: None } => write!(f, "s3://{bucket}/{key}"),
            Location::S3 { bucket, key, version_id: Some(v) } => write!(f, "s3://{bucket}/{key}?versionId={v}"),
        }
    }
}

/// Why a mapping could not be (re)loaded. Each names the location; none carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid mapping location `{location}`: {why}")]
    Location { location: String, why: String },
    #[error("cannot read mapping file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("cannot get the mapping s3://{bucket}/{key}: {source}")]
    S3 { bucket: String, key: String, source: S3Error },
    #[error("mapping {location} is not UTF-8 text")]
    NotText { location: String },
    #[error("mapping {location} is invalid:\n{}", render(location, diagnostics))]
    Invalid { location: String, diagnostics: Vec<Diagnostic> },
    #[error("mapping {location}: {} embedded test(s) failed:\n{}", failures.len(), failures.join("\n"))]
    Tests { location: String, failures: Vec<String> },
    /// An output writes structured CloudEvents (JSON documents) and the settings write another
    /// format (`OUTPUT_FORMAT`, `--output-format`).
    #[error(
        "mapping {location}: output `{output}` writes structured CloudEvents, which are JSON documents, but ok records are written as {format}; use `envelope: cloudevents` (binary mode) or JSON output"
    )]
    Structured { location: String, output: String, format: &'static str },
    /// The mapping's `outputs:` write to topics the settings do not allow (`OUTPUT_TOPICS`).
    #[error(
        "mapping {location}: its outputs write to {}, which OUTPUT_TOPICS does not list ({}); the function may write only to the topics it is granted",
        topics.join(", "), allowed.join(", ")
    )]
    Topics { location: String, topics: Vec<String>, allowed: Vec<String> },
    /// The schema registry's client could not be set up (its settings are wrong).
    #[error(transparent)]
    Registry(#[from] crate::format::registry::RegistryError),
    /// The output's writer schema cannot be had.
    #[error(transparent)]
    Output(#[from] crate::format::output::OutputError),
}

/// Why an S3 object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// S3 did not answer, or answered with an error (no such key, access denied, throttling). The
    /// SDK's message with its causes: its own text alone says only "service error".
    #[error("{}", aws_sdk_s3::error::DisplayErrorContext(.0))]
    Get(#[source] Box<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::get_object::GetObjectError>>),
    /// The object's body stopped coming.
    #[error("{0}")]
    Body(#[source] aws_sdk_s3::primitives::ByteStreamError),
    /// The object is larger than a mapping may be.
    #[error(transparent)]
    TooLarge(std::io::Error),
}

impl SourceError {
    /// Whether the source answered that there is no such mapping (a file or an S3 object that does
    /// not exist), as opposed to failing to answer or refusing.
    pub fn is_missing(&self) -> bool {
        match self {
            SourceError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            SourceError::S3 { source: S3Error::Get(e), .. } => {
                e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
            }
            _ => false,
        }
    }
}

fn render(location: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| d.render(location)).collect::<Vec<_>>().join("\n")
}

/// What says whether the text changed since it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tag {
    File { modified: Option<SystemTime>, len: u64, version: String },
    S3 { etag: Option<String> },
}

/// One text of the mapping and what identifies it.
pub struct Fetched {
    pub text: String,
    /// The S3 object's version id (a versioned bucket), used as the mapping's version.
    pub version_id: Option<String>,
    tag: Tag,
}

/// A mapping's location and, for S3, the client that reads it.
pub struct MappingSource {
    pub location: Location,
    s3: Option<aws_sdk_s3::Client>,
    /// The topics its `outputs:` may write to (`OUTPUT_TOPICS`); empty: any.
    allowed_topics: Vec<String>,
}

impl MappingSource {
    /// For S3 locations, an S3 client with the default credentials chain (the function's role).
    pub async fn new(location: Location) -> Self {
        let s3 = match &location {
            Location::File(_) => None,
            Location::S3 { .. } => {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                // An endpoint of its own (`AWS_ENDPOINT_URL[_S3]`: MinIO, LocalStack, moto) has no
                // per-bucket host names: address buckets in the path there.
                let custom = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"].iter().any(|v| std::env::var_os(v).is_some());
                let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(custom).build();
                Some(aws_sdk_s3::Client::from_conf(s3))
            }
        };
        MappingSource { location, s3, allowed_topics: Vec::new() }
    }

    /// With a given S3 client (tests point one at an emulator).
    pub fn with_s3_client(location: Location, client: aws_sdk_s3::Client) -> Self {
        MappingSource { location, s3: Some(client), allowed_topics: Vec::new() }
    }

    /// The same source, refusing a mapping whose `outputs:` write to a topic not in `topics`
    /// (none: any topic), at the start and on every refresh.
    pub fn allowing_topics(mut self, topics: &[String]) -> Self {
        self.allowed_topics = topics.to_vec();
        self
    }

    /// The text, unless it is the one `last` identifies (then `None`, and nothing is downloaded).
    async fn fetch(&self, last: Option<&Tag>) -> Result<Option<Fetched>, SourceError> {
        match &self.location {
            Location::File(path) => fetch_file(path, last),
            Location::S3 { bucket, key, version_id } => {
                let client = self.s3.as_ref().expect("an S3 location has a client");
                let etag = match last {
                    Some(Tag::S3 { etag }) => etag.clone(),
                    _ => None,
                };
                let failed = |source: S3Error| SourceError::S3 { bucket: bucket.clone(), key: key.clone(), source };
                let request = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_version_id(version_id.clone())
                    .set_if_none_match(etag);
                let object = match request.send().await {
                    Ok(object) => object,
                    Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => return Ok(None),
                    Err(e) => return Err(failed(S3Error::Get(Box::new(e)))),
                };
                let tag = Tag::S3 { etag: object.e_tag().map(str::to_owned) };
                let version_id = object.version_id().filter(|v| *v != "null").map(str::to_owned);
                // Refused before the body is read: a mapping object the size of a disk image
                // must not fill the function's memory on a refresh.
                let max = crate::limits::MAX_MAPPING_BYTES;
                let too_large = || failed(S3Error::TooLarge(crate::limits::too_large(max, "a mapping")));
                if object.content_length().is_some_and(|n| n < 0 || n as u64 > max) {
                    return Err(too_large());
                }
                let bytes = object.body.collect().await.map_err(|e| failed(S3Error::Body(e)))?.into_bytes();
                if bytes.len() as u64 > max {
                    return Err(too_large());
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| SourceError::NotText { location: self.location.to_string() })?;
                Ok(Some(Fetched { text, version_id, tag }))
            }
        }
    }

    /// Compiles a fetched text and runs its embedded tests: a plan the function may use, with
    /// its version (the S3 version id, else the text's hash).
    pub fn compile(&self, fetched: &Fetched) -> Result<Plan, SourceError> {
        let location = self.location.to_string();
        // Lookup files are read next to a mapping file; an S3 mapping's from the working
        // directory (the function's package).
        let base_dir = match &self.location {
            Location::File(path) => path.parent(),
            Location::S3 { .. } => None,
        };
        let options = crate::mapping_file::options(base_dir);
        let (spec, plan) = plan::load_str_in(&fetched.text, &options)
            .map_err(|diagnostics| SourceError::Invalid { location: location.clone(), diagnostics })?;
        let failures: Vec<String> = mapping_tests::run(&spec, &plan)
            .into_iter()
            .filter_map(|t| {
                t.failure.map(|why| {
                    format!("{location}:{}:{}: error: test \"{}\" failed: {why}", t.pos.line, t.pos.col, t.name)
                })
            })
            .collect();
        if !failures.is_empty() {
            return Err(SourceError::Tests { location, failures });
        }
        let outside: Vec<String> = plan
            .output_topics()
            .into_iter()
            .filter(|t| !self.allowed_topics.is_empty() && !self.allowed_topics.iter().any(|a| a == t))
            .map(String::from)
            .collect();
        if !outside.is_empty() {
            return Err(SourceError::Topics { location, topics: outside, allowed: self.allowed_topics.clone() });
        }
        Ok(match &fetched.version_id {
            Some(v) => plan.with_version(v.clone()),
            None => plan,
        })
    }
}

fn fetch_file(path: &Path, last: Option<&Tag>) -> Result<Option<Fetched>, SourceError> {
    let io = |source| SourceError::Io { path: path.display().to_string(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    let (modified, len) = (meta.modified().ok(), meta.len());
    if let Some(Tag::File { modified: m, len: l, .. }) = last
        && *m == modified
        && modified.is_some()
        && *l == len
    {
        return Ok(None);
    }
    let text = crate::limits::read_text_bounded(path, crate::limits::MAX_MAPPING_BYTES, "a mapping").map_err(io)?;
    let version = plan::text_version(&text);
    // Touched but the same text: nothing to compile.
    if let Some(Tag::File { version: v, .. }) = last
        && *v == version
    {
        return Ok(None);
    }
    Ok(Some(Fetched { text, version_id: None, tag: Tag::File { modified, len, version } }))
}

/// Reads a mapping's text once, outside an async runtime: the command line's `validate-mapping`,
/// `process`, `explain` and `diff-mapping` on an `s3://` mapping (a file is read directly).
pub fn read_text_blocking(location: &Location) -> Result<String, SourceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| SourceError::Io { path: location.to_string(), source })?;
    runtime.block_on(async {
        let source = MappingSource::new(location.clone()).await;
        Ok(source.fetch(None).await?.expect("a first fetch always reads").text)
    })
}

/// Loads every mapping the settings name — one, or one per route — and builds the pipeline, with
/// one refresher per mapping (its route's). Any failure is the cold start's.
pub async fn load_pipeline(settings: &crate::config::Settings) -> Result<(Pipeline, Vec<Refresher>), SourceError> {
    let interval = Duration::from_secs(settings.mapping_refresh_s);
    if settings.routes.is_empty() {
        let location = Location::parse(&settings.mapping_file.to_string_lossy())?;
        let source = MappingSource::new(location.clone()).await.allowing_topics(&settings.output_topics);
        let (refresher, plan) = Refresher::load(source, interval).await?;
        let output = output_encoder(&plan, &settings.topic_ok, &location, settings).await?;
        let pipeline =
            Pipeline::new(plan, settings.router()).with_format(settings.source_format).with_route_output(0, output);
        return Ok((with_schemas(pipeline, settings).await?, vec![refresher]));
    }
    let mut routes = Vec::new();
    let mut refreshers = Vec::new();
    let mut outputs = Vec::new();
    for (index, route) in settings.routes.iter().enumerate() {
        let location = Location::parse(&route.mapping_file.to_string_lossy())?;
        let source = MappingSource::new(location.clone()).await.allowing_topics(&settings.output_topics);
        let (refresher, plan) = Refresher::load(source, interval).await?;
        outputs.push(output_encoder(&plan, &route.topic_ok, &location, settings).await?);
        refreshers.push(refresher.for_route(index));
        let router = crate::destination::Router {
            topic_ok: route.topic_ok.clone(),
            topic_fail: route.topic_fail.clone(),
            ..settings.router()
        };
        routes.push(crate::pipeline::TopicRoute {
            source_topic: route.source_topic.clone(),
            plan,
            router,
            format: settings.format_of(&route.source_topic),
        });
    }
    let unrouted = settings.unrouted_topic_fail.as_ref().map(|fail| crate::destination::Router {
        topic_ok: String::new(),
        topic_fail: fail.clone(),
        ..settings.router()
    });
    let mut pipeline = Pipeline::with_routes(routes, unrouted);
    for (index, output) in outputs.into_iter().enumerate() {
        pipeline = pipeline.with_route_output(index, output);
    }
    Ok((with_schemas(pipeline, settings).await?, refreshers))
}

/// How a route's ok records are written: its mapping's `output:` under the settings'. Found once,
/// at the start; a refreshed mapping keeps it.
async fn output_encoder(
    plan: &crate::plan::Plan,
    topic_ok: &str,
    location: &Location,
    settings: &crate::config::Settings,
) -> Result<crate::format::output::OutputEncoder, SourceError> {
    let output = settings.output.over(plan.output());
    // Structured CloudEvents are JSON documents: the mapping checked that against its own
    // `output.format`, and a setting may have changed it since.
    let structured = plan.outputs().iter().find(|o| o.cloud_events() == Some(crate::plan::CloudEventsMode::Structured));
    if let Some(structured) = structured.filter(|_| output.format != crate::plan::OutputFormat::Json) {
        return Err(SourceError::Structured {
            location: location.to_string(),
            output: structured.name().to_string(),
            format: output.format.as_str(),
        });
    }
    let base = match location {
        Location::File(path) => path.parent(),
        Location::S3 { .. } => None,
    };
    let registry = settings.schema_registry.as_ref();
    Ok(crate::format::output::resolve(&output, topic_ok, base, registry, settings.output.register).await?)
}

/// The pipeline reading its framed records' schemas from the settings' registry.
async fn with_schemas(pipeline: Pipeline, settings: &crate::config::Settings) -> Result<Pipeline, SourceError> {
    Ok(match &settings.schema_registry {
        Some(registry) => {
            let schemas = crate::format::registry::Schemas::from_settings(registry).await?;
            pipeline.with_schemas(std::sync::Arc::new(schemas))
        }
        None => pipeline,
    })
}

/// What a refresh did.
#[derive(Debug)]
pub enum Refresh {
    /// The text is the one in use.
    Unchanged,
    /// A new mapping replaced the old one: its `name@version`.
    Replaced(String),
    /// A new text that does not compile or fails its tests; the mapping in use stays.
    Rejected(SourceError),
    /// The source could not be read; the mapping in use stays.
    Unreadable(SourceError),
}

/// A mapping source and what was last read from it, for refreshes.
pub struct Refresher {
    pub source: MappingSource,
    last: Mutex<Option<Tag>>,
    /// How often a warm instance checks (`MAPPING_REFRESH_S`); zero: never.
    pub interval: Duration,
    /// The pipeline route whose mapping this is (0 with one route).
    route: usize,
}

impl Refresher {
    /// Reads, compiles and tests the mapping: the cold start's load. Any failure is the cold
    /// start's failure.
    pub async fn load(source: MappingSource, interval: Duration) -> Result<(Self, Plan), SourceError> {
        let fetched = source.fetch(None).await?.expect("a first fetch always reads");
        let plan = source.compile(&fetched)?;
        let refresher = Refresher { source, last: Mutex::new(Some(fetched.tag)), interval, route: 0 };
        Ok((refresher, plan))
    }

    /// The same, for route `index` of a pipeline with one route per source topic.
    pub fn for_route(mut self, index: usize) -> Self {
        self.route = index;
        self
    }

    /// Checks the source once; a changed text that compiles and passes its tests replaces the
    /// pipeline's mapping (batches already running keep theirs). Compiling runs on a blocking
    /// thread, never on the batch path. Logs what happened.
    pub async fn refresh(&self, pipeline: &Pipeline) -> Refresh {
        let last = self.last.lock().expect("not poisoned").clone();
        let outcome = match self.source.fetch(last.as_ref()).await {
            Ok(None) => Refresh::Unchanged,
            Err(e) => Refresh::Unreadable(e),
            Ok(Some(fetched)) => {
                let tag = fetched.tag.clone();
                let compiled = tokio::task::block_in_place(|| self.source.compile(&fetched));
                // A refused text is remembered too: it is not compiled again until it changes.
                *self.last.lock().expect("not poisoned") = Some(tag);
                match compiled {
                    Ok(plan) => {
                        let identity = plan.identity();
                        let old = pipeline.replace_route_plan(self.route, plan);
                        tracing::info!(mapping = %identity, previous = %old.identity(), location = %self.source.location, "mapping replaced");
                        Refresh::Replaced(identity)
                    }
                    Err(e) => {
                        crate::telemetry::MAPPING_REFRESH_REJECTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Refresh::Rejected(e)
                    }
                }
            }
        };
        match &outcome {
            Refresh::Rejected(e) => tracing::error!(
                mapping = %pipeline.route_plan(self.route).identity(), problems = %e,
                "new mapping refused; the mapping in use stays"
            ),
            Refresh::Unreadable(e) => tracing::warn!(
                mapping = %pipeline.route_plan(self.route).identity(), error = %e,
                "mapping source unreadable; the mapping in use stays"
            ),
            Refresh::Unchanged | Refresh::Replaced(_) => {}
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_files_or_s3_objects() {
        assert_eq!(Location::parse("mappings/a.yaml").unwrap(), Location::File("mappings/a.yaml".into()));
        assert_eq!(
            Location::parse("s3://b/dir/m.yaml").unwrap(),
            Location::S3 { bucket: "b".into(), key: "dir/m.yaml".into(), version_id: None }
        );
        let pinned = Location::parse("s3://b/m.yaml?versionId=3HL4kqtJ").unwrap();
        assert_eq!(pinned.to_string(), "s3://b/m.yaml?versionId=3HL4kqtJ");
        for bad in ["s3://b", "s3:///k", "s3://b/", "s3://b/k?v=1", "s3://b/k?versionId="] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_file_refresh_swaps_a_good_change_and_keeps_the_old_mapping_on_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("ls-refresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.yaml");
        let v1 = "version: 1\nname: m\nfields:\n  - { source: $.a, target: a, type: integer }\n";
        std::fs::write(&path, v1).unwrap();
        let source = MappingSource::new(Location::File(path.clone())).await;
        let (refresher, plan) = Refresher::load(source, Duration::from_secs(1)).await.unwrap();
        assert_eq!(plan.identity(), format!("m@{}", plan::text_version(v1)));
        let router = crate::destination::Router {
            topic_ok: "ok".into(),
            topic_fail: "fail".into(),
            function_name: String::new(),
            function_env: String::new(),
        };
        let pipeline = Pipeline::new(plan, router);
        assert!(matches!(refresher.refresh(&pipeline).await, Refresh::Unchanged));

        let v2 = v1.replace("target: a", "target: bb");
        std::fs::write(&path, &v2).unwrap();
        // A new size is seen even within the file system's time resolution.
        match refresher.refresh(&pipeline).await {
            Refresh::Replaced(identity) => assert_eq!(identity, format!("m@{}", plan::text_version(&v2))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(pipeline.plan().apply(br#"{"a": 1}"#), plan::Outcome::Mapped(m) if m.value == br#"{"bb":1}"#));

        std::fs::write(&path, v2.replace("type: integer", "type: integr")).unwrap();
        match refresher.refresh(&pipeline).await {
            Refresh::Rejected(SourceError::Invalid { diagnostics, .. }) => {
                assert!(diagnostics[0].message.contains("integr"), "{diagnostics:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(pipeline.plan().identity(), format!("m@{}", plan::text_version(&v2)), "the last good one stays");
        // The refused text is not compiled again until it changes.
        assert!(matches!(refresher.refresh(&pipeline).await, Refresh::Unchanged));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(refresher.refresh(&pipeline).await, Refresh::Unreadable(SourceError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_mapping_whose_tests_fail_is_refused_at_load_with_each_failure_located() {
        let dir = std::env::temp_dir().join(format!("ls-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.yaml");
        let text = "version: 1\nname: m\nfields:\n  - { source: $.a, target: a, type: integer }\ntests:\n  - name: t\n    input: { a: 1 }\n    expect: { ok: { a: 2 } }\n";
        std::fs::write(&path, text).unwrap();
        let source = MappingSource::new(Location::File(path.clone())).await;
        let e = Refresher::load(source, Duration::ZERO).await.err().unwrap().to_string();
        assert!(e.contains("1 embedded test(s) failed") && e.contains("m.yaml:6:"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_mapping_whose_outputs_write_to_a_topic_not_granted_is_refused_at_load() {
        let dir = std::env::temp_dir().join(format!("ls-topics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.yaml");
        let text = "version: 1\nname: m\nfields:\n  - { source: $.a, target: a, type: integer }\noutputs:\n  - { name: big, when: a > 1, topic: t.big }\n  - { name: rest, topic: t.rest }\n";
        std::fs::write(&path, text).unwrap();
        let allowed = ["t.big".to_string()];
        let source = MappingSource::new(Location::File(path.clone())).await.allowing_topics(&allowed);
        let e = Refresher::load(source, Duration::ZERO).await.err().unwrap();
        assert!(matches!(&e, SourceError::Topics { topics, .. } if topics == &["t.rest"]), "{e}");
        assert!(
            e.to_string().contains("its outputs write to t.rest, which OUTPUT_TOPICS does not list (t.big)"),
            "{e}"
        );
        let both = ["t.big".to_string(), "t.rest".to_string()];
        let source = MappingSource::new(Location::File(path.clone())).await.allowing_topics(&both);
        assert!(Refresher::load(source, Duration::ZERO).await.is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
