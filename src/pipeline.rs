//! One batch, end to end: inputs → plan → route → sink. The Lambda handler, `process --event` and
//! the worker all call [`Pipeline::run_batch`]; they differ only in where inputs come from and
//! which [`Sink`] receives the messages.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use serde::Serialize;

use crate::destination::{Destination, Origin, OutMessage, Routed, Router};
use crate::format::output::OutputEncoder;
#[cfg(feature = "kafka")]
use crate::format::registry::RegistryError;
use crate::format::registry::Schemas;
use crate::format::{BatchSchemas, SourceFormat};
use crate::plan::{FieldError, Plan};
use crate::record::Input;
use crate::sink::{Sink, SinkError};

/// The compiled mappings and the routing names, built once at cold start: one route (a mapping
/// and its ok and fail topics) for every record, or one route per source topic. A mapping can be
/// replaced while batches run (a refreshed mapping): each batch takes the current ones when it
/// starts and keeps them to its end, so no batch is ever mapped by two versions of one.
pub struct Pipeline {
    routes: Vec<RouteEntry>,
    /// Where the schemas of routes in a registry's format come from (none: every route is JSON).
    schemas: Option<Arc<Schemas>>,
    /// Where records of a topic no route takes go (several routes only), with why.
    unrouted: Option<Router>,
    /// How many threads map a large batch (all cores by default).
    pub threads: usize,
}

struct RouteEntry {
    /// The source topic it maps; `None`: every record (the one-route case).
    topic: Option<String>,
    plan: RwLock<Arc<Plan>>,
    router: Router,
    /// How its records' values are written.
    format: SourceFormat,
    /// How its ok records are written.
    output: OutputEncoder,
}

/// A route of a pipeline with several: the source topic it takes, its mapping and its topics.
pub struct TopicRoute {
    pub source_topic: String,
    pub plan: Plan,
    pub router: Router,
    pub format: SourceFormat,
}

/// What happened to a batch: every input is counted exactly once in `ok`, `failed` or `skipped`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub received: usize,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Of the skipped, those the mapping's `drop:` chose (the rest are tombstones).
    pub dropped: usize,
    pub duration_ms: u64,
    /// The mapping that mapped the batch, `name@version` (with several routes, each route's,
    /// comma-separated, in route order).
    pub mapping: String,
}

#[derive(Debug)]
pub struct BatchReport {
    pub summary: Summary,
    /// Every input's fate, in input order.
    pub routed: Vec<Routed>,
    /// Messages whose delivery failed, in input order, with why.
    pub undelivered: Vec<(Origin, SinkError)>,
    /// Time spent mapping and routing, and delivering (milliseconds).
    pub mapping_ms: f64,
    pub delivery_ms: f64,
    /// The Lambda event's `eventSource` (`aws:kafka`, `SelfManagedKafka`), when there was one.
    pub event_source: Option<String>,
}

/// Each thread gets at least this many records; a smaller batch is mapped on the calling thread
/// (threads cost more than they save).
pub const PARALLEL_THRESHOLD: usize = 256;

/// Splits `items` into contiguous chunks, one per thread (at most `threads`, each of at least
/// [`PARALLEL_THRESHOLD`] items), runs `work(first_index, chunk)` on each, and returns the results
/// in input order. The chunked parallel mapping shared by batches and the dry run on files.
pub fn map_chunks<T: Sync, R: Send>(items: &[T], threads: usize, work: impl Fn(usize, &[T]) -> R + Sync) -> Vec<R> {
    let workers = threads.min(items.len().div_ceil(PARALLEL_THRESHOLD)).max(1);
    if workers == 1 {
        return vec![work(0, items)];
    }
    let chunk = items.len().div_ceil(workers);
    let work = &work;
    std::thread::scope(|scope| {
        let parts: Vec<_> =
            items.chunks(chunk).enumerate().map(|(i, part)| scope.spawn(move || work(i * chunk, part))).collect();
        parts.into_iter().map(|p| p.join().expect("mapping never panics")).collect()
    })
}

impl Pipeline {
    /// A pipeline that maps large batches on every available core.
    pub fn new(plan: Plan, router: Router) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let route = RouteEntry {
            topic: None,
            plan: RwLock::new(Arc::new(plan)),
            router,
            format: SourceFormat::Json,
            output: OutputEncoder::Json,
        };
        Pipeline { routes: vec![route], schemas: None, unrouted: None, threads }
    }

    /// A pipeline with one route per source topic; records of other topics go to `unrouted`'s
    /// fail topic, if given (else to the first route's), failed with rule `route`.
    pub fn with_routes(routes: Vec<TopicRoute>, unrouted: Option<Router>) -> Self {
        assert!(!routes.is_empty(), "a pipeline has at least one route");
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let routes = routes
            .into_iter()
            .map(|r| RouteEntry {
                topic: Some(r.source_topic),
                plan: RwLock::new(Arc::new(r.plan)),
                router: r.router,
                format: r.format,
                output: OutputEncoder::Json,
            })
            .collect();
        Pipeline { routes, schemas: None, unrouted, threads }
    }

    /// The same pipeline with route `index`'s ok records written by `output`.
    pub fn with_route_output(mut self, index: usize, output: OutputEncoder) -> Self {
        if let Some(route) = self.routes.get_mut(index) {
            route.output = output;
        }
        self
    }

    /// The same pipeline with every route's records in `format`.
    pub fn with_format(mut self, format: SourceFormat) -> Self {
        self.routes.iter_mut().for_each(|r| r.format = format);
        self
    }

    /// The same pipeline reading the schemas of its framed records from `schemas`.
    pub fn with_schemas(mut self, schemas: Arc<Schemas>) -> Self {
        self.schemas = Some(schemas);
        self
    }

    /// Where the schemas of records that name one come from.
    pub fn schemas(&self) -> Option<&Arc<Schemas>> {
        self.schemas.as_ref()
    }

    /// The record format of an input: the one it says it is in, else its route's.
    pub fn format_of(&self, input: &Input) -> SourceFormat {
        if let Some(format) = input.source.value_format {
            return format;
        }
        match &self.routes[..] {
            [one] if one.topic.is_none() => one.format,
            routes => routes
                .iter()
                .find(|r| r.topic.as_deref() == Some(input.source.topic.as_str()))
                .map_or(SourceFormat::Json, |r| r.format),
        }
    }

    /// The schemas the records of a batch name: fetched (each unknown id once, concurrently)
    /// from the registry. A registry that cannot answer is an error for the whole batch, which
    /// must then be retried: no record may fail for it.
    #[cfg(feature = "kafka")]
    pub async fn prepare(&self, inputs: &[Input]) -> Result<BatchSchemas, RegistryError> {
        match self.schemas() {
            None => Ok(BatchSchemas::none()),
            Some(schemas) => schemas.prepare(crate::format::registry::schema_ids(inputs, |i| self.format_of(i))).await,
        }
    }

    /// The schemas of a batch when none has to be fetched: JSON routes, or a schema file.
    pub fn local_schemas(&self) -> BatchSchemas {
        self.schemas().and_then(|s| s.without_fetching()).unwrap_or_default()
    }

    /// How many routes it has (one mapping each).
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// The source topic of route `index` (`None` for the one route of every record).
    pub fn route_topic(&self, index: usize) -> Option<&str> {
        self.routes[index].topic.as_deref()
    }

    /// The routing names (ok and fail topics) of the first route.
    pub fn router(&self) -> &Router {
        &self.routes[0].router
    }

    /// The first route's mapping now: what the next batch is mapped by.
    pub fn plan(&self) -> Arc<Plan> {
        self.route_plan(0)
    }

    /// Destination `index`'s mapping now.
    pub fn route_plan(&self, index: usize) -> Arc<Plan> {
        // The lock only guards a pointer swap, which cannot leave it half-written.
        self.routes[index].plan.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Makes `plan` the first route's mapping for every batch that starts from now on; batches
    /// already running finish with the one they took. Returns the mapping it replaces.
    pub fn replace_plan(&self, plan: Plan) -> Arc<Plan> {
        self.replace_route_plan(0, plan)
    }

    /// [`Pipeline::replace_plan`] for route `index`.
    pub fn replace_route_plan(&self, index: usize, plan: Plan) -> Arc<Plan> {
        let mut slot = self.routes[index].plan.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *slot, Arc::new(plan))
    }

    /// Every route's mapping now, taken together for one batch.
    fn plans(&self) -> Vec<Arc<Plan>> {
        (0..self.routes.len()).map(|i| self.route_plan(i)).collect()
    }

    /// Maps and routes every input, on all available cores, keeping input order (and so the order
    /// within each source partition).
    pub fn route_all(&self, inputs: &[Input]) -> Vec<Routed> {
        self.route_all_with(&self.plans(), inputs, &self.local_schemas())
    }

    /// [`Pipeline::route_all`] with the batch's schemas ([`Pipeline::prepare`]).
    pub fn route_all_in(&self, inputs: &[Input], schemas: &BatchSchemas) -> Vec<Routed> {
        self.route_all_with(&self.plans(), inputs, schemas)
    }

    /// [`Pipeline::route_all`] with given mappings, one per route (those the batch took).
    fn route_all_with(&self, plans: &[Arc<Plan>], inputs: &[Input], schemas: &BatchSchemas) -> Vec<Routed> {
        let parts = map_chunks(inputs, self.threads, |_, part| {
            part.iter().map(|i| self.route_one(plans, i, schemas)).collect::<Vec<_>>()
        });
        match <[Vec<Routed>; 1]>::try_from(parts) {
            Ok([one]) => one,
            Err(parts) => parts.into_iter().flatten().collect(),
        }
    }

    fn route_one(&self, plans: &[Arc<Plan>], input: &Input, schemas: &BatchSchemas) -> Routed {
        let index = match &self.routes[..] {
            [one] if one.topic.is_none() => Some(0),
            _ => self.routes.iter().position(|r| r.topic.as_deref() == Some(input.source.topic.as_str())),
        };
        match index {
            Some(i) => {
                let route = &self.routes[i];
                let format = input.source.value_format.unwrap_or(route.format);
                let routed = route.router.route_format(&plans[i], input, format, schemas);
                if route.output.is_json() {
                    return routed;
                }
                encode_ok(routed, &route.output, &route.router, &plans[i], input, format)
            }
            None => {
                let router = self.unrouted.as_ref().unwrap_or(&self.routes[0].router);
                let topics: Vec<&str> = self.routes.iter().filter_map(|r| r.topic.as_deref()).collect();
                let why = format!("no route maps topic `{}` (routes: {})", input.source.topic, topics.join(", "));
                let value = match &input.payload {
                    crate::record::Payload::Value(v) => Some(v.as_slice()),
                    _ => None,
                };
                Routed::Message(router.fail_message(
                    None,
                    &input.source,
                    crate::plan::Failure::of_record("route", why),
                    value,
                ))
            }
        }
    }

    /// Maps and routes a batch and counts it (`duration_ms` left at zero); logs each failed
    /// record. The worker delivers the result itself (to overlap delivery with consuming).
    pub fn route_batch(&self, inputs: &[Input]) -> (Vec<Routed>, Summary) {
        self.route_batch_in(inputs, &self.local_schemas())
    }

    /// [`Pipeline::route_batch`] with the batch's schemas ([`Pipeline::prepare`]).
    pub fn route_batch_in(&self, inputs: &[Input], schemas: &BatchSchemas) -> (Vec<Routed>, Summary) {
        let plans = self.plans();
        let routed = self.route_all_with(&plans, inputs, schemas);
        let mapping = plans.iter().map(|p| p.identity()).collect::<Vec<_>>().join(",");
        let mut summary = Summary { received: inputs.len(), mapping, ..Summary::default() };
        for r in &routed {
            match r {
                // A record fanned out to several outputs is one `ok` record (its messages are
                // counted per output by the metrics).
                Routed::Fanout(_) => summary.ok += 1,
                Routed::Message(m) => match m.destination {
                    Destination::Ok => summary.ok += 1,
                    Destination::Fail => {
                        summary.failed += 1;
                        log_failed_record(m);
                    }
                },
                Routed::Skipped(origin, reason) => {
                    summary.skipped += 1;
                    if *reason == crate::destination::SkipReason::Dropped {
                        summary.dropped += 1;
                    }
                    tracing::debug!(topic = %origin.topic, partition = origin.partition, offset = origin.offset, ?reason, "record skipped");
                }
            }
        }
        (routed, summary)
    }

    /// Routes a batch and delivers it through `sink` before `deadline`, with the schemas it has
    /// without fetching ([`Pipeline::local_schemas`]): records that name schemas in a registry
    /// need [`Pipeline::prepare`] and [`Pipeline::run_batch_in`].
    pub async fn run_batch<S: Sink>(&self, sink: &S, inputs: &[Input], deadline: Instant) -> BatchReport {
        self.run_batch_in(sink, inputs, deadline, &self.local_schemas()).await
    }

    /// [`Pipeline::run_batch`] with the batch's schemas given.
    pub async fn run_batch_in<S: Sink>(
        &self,
        sink: &S,
        inputs: &[Input],
        deadline: Instant,
        schemas: &BatchSchemas,
    ) -> BatchReport {
        let started = Instant::now();
        let (routed, mut summary) = self.route_batch_in(inputs, schemas);
        let mapping_ms = started.elapsed().as_secs_f64() * 1e3;
        let messages: Vec<&OutMessage> = routed.iter().flat_map(Routed::messages).collect();
        let delivering = Instant::now();
        let deliveries = sink.send_all(&messages, deadline).await;
        let delivery_ms = delivering.elapsed().as_secs_f64() * 1e3;
        let undelivered: Vec<(Origin, SinkError)> =
            messages.iter().zip(deliveries).filter_map(|(m, d)| d.err().map(|e| (m.origin.clone(), e))).collect();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        BatchReport { summary, routed, undelivered, mapping_ms, delivery_ms, event_source: None }
    }
}

/// An ok message's value written by `output`; a record it cannot write fails, stage `encode`,
/// its envelope keeping the input value as it came.
pub(crate) fn encode_ok(
    routed: Routed,
    output: &OutputEncoder,
    router: &Router,
    plan: &Plan,
    input: &Input,
    format: SourceFormat,
) -> Routed {
    let mut messages = match routed {
        Routed::Message(message) if message.destination == Destination::Ok => vec![message],
        Routed::Fanout(messages) => messages,
        other => return other,
    };
    let mut failed = None;
    for message in &mut messages {
        match output.encode(std::mem::take(&mut message.payload)) {
            Ok(payload) => {
                message.payload = payload;
                // A binary-mode CloudEvent says what its value is: the format it is written in.
                if message.headers.iter().any(|(name, _)| name == "ce_specversion") {
                    for (_, value) in message.headers.iter_mut().filter(|(name, _)| name == "content-type") {
                        *value = format!("application/{}", output.format()).into_bytes();
                    }
                }
            }
            Err(failure) => {
                failed = Some(failure);
                break;
            }
        }
    }
    let Some(mut failure) = failed else {
        return match <[OutMessage; 1]>::try_from(messages) {
            Ok([one]) => Routed::Message(one),
            Err(many) => Routed::Fanout(many),
        };
    };
    // A record one of whose outputs cannot be written fails whole: none of its messages is sent,
    // and its fail record keeps the id its ok messages had (a `dedupe_key:` value, or its position).
    failure.id = messages[0]
        .headers
        .iter()
        .find(|(name, _)| name == crate::envelope::HEADER_ID)
        .and_then(|(_, id)| String::from_utf8(id.clone()).ok());
    let value = match &input.payload {
        crate::record::Payload::Value(v) => Some(v.as_slice()),
        _ => None,
    };
    Routed::Message(if format == SourceFormat::Json {
        router.fail_message(Some(plan), &input.source, failure, value)
    } else {
        let schema = value.and_then(crate::format::wire::schema_id_of).or(input.source.value_schema_id);
        router.fail_message_in_format(Some(plan), &input.source, failure, value, format, schema)
    })
}

/// One warning per failed record: its position, stage and `field:rule` pairs. Rules and field
/// names only, never messages or values, so nothing from the payload reaches the logs.
fn log_failed_record(m: &OutMessage) {
    let Some(failure) = &m.failure else { return };
    let rules: Vec<String> = failure.errors.iter().map(FieldError::field_rule).collect();
    tracing::warn!(
        topic = %m.origin.topic, partition = m.origin.partition, offset = m.origin.offset,
        stage = failure.stage.as_str(), rules = %rules.join(","), "record routed to the fail topic"
    );
}

/// A partial-batch response entry: the record Lambda should resume the partition from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemIdentifier {
    /// The event's `topic-partition` key.
    pub partition: String,
    pub offset: i64,
}

impl BatchReport {
    /// For `ReportBatchItemFailures`: per source partition, the first record whose delivery failed
    /// (everything after it in that partition is retried too). `None` when a failed record has no
    /// offset to name, in which case only failing the whole batch is safe.
    pub fn batch_item_failures(&self) -> Option<Vec<ItemIdentifier>> {
        let mut firsts: Vec<ItemIdentifier> = Vec::new();
        for (origin, _) in &self.undelivered {
            let offset = origin.offset?;
            match firsts.iter_mut().find(|f| f.partition == origin.group) {
                Some(f) => f.offset = f.offset.min(offset),
                None => firsts.push(ItemIdentifier { partition: origin.group.clone(), offset }),
            }
        }
        Some(firsts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Payload, Source};
    use crate::sink::MemorySink;
    use std::time::Duration;

    fn pipeline() -> Pipeline {
        with_mapping("version: 1\nname: m\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n")
    }

    fn with_mapping(text: &str) -> Pipeline {
        let plan = crate::plan::load_str(text).unwrap().1;
        Pipeline::new(
            plan,
            Router {
                topic_ok: "ok".into(),
                topic_fail: "fail".into(),
                function_name: "f".into(),
                function_env: "test".into(),
            },
        )
    }

    fn inputs(n: usize) -> Vec<Input> {
        (0..n)
            .map(|i| Input {
                source: Source {
                    topic: "in".into(),
                    partition: (i % 3) as i32,
                    offset: Some(i as i64),
                    group: format!("in-{}", i % 3),
                    ..Source::default()
                },
                payload: match i % 5 {
                    0 => Payload::Tombstone,
                    1 => Payload::Value(b"{\"id\": \"bad\"}".to_vec()),
                    _ => Payload::Value(format!("{{\"id\": {i}}}").into_bytes()),
                },
            })
            .collect()
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn dropped_records_are_skipped_and_counted_apart_from_tombstones() {
        let sink = MemorySink::default();
        let p = with_mapping(
            "version: 1\nname: m\ndrop: $.id == \"bad\"\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n",
        );
        let report = p.run_batch(&sink, &inputs(1000), deadline()).await;
        let s = &report.summary;
        assert_eq!((s.received, s.ok, s.failed, s.skipped, s.dropped), (1000, 600, 0, 400, 200));
        assert_eq!(sink.delivered.lock().unwrap().len(), 600, "nothing is produced for a skipped record");
        let reasons = report
            .routed
            .iter()
            .filter(|r| matches!(r, Routed::Skipped(_, crate::destination::SkipReason::Dropped)))
            .count();
        assert_eq!(reasons, 200);
    }

    #[tokio::test]
    async fn every_input_is_counted_once_and_order_is_kept() {
        let sink = MemorySink::default();
        let ins = inputs(1000);
        let report = pipeline().run_batch(&sink, &ins, deadline()).await;
        let s = &report.summary;
        assert_eq!((s.received, s.ok, s.failed, s.skipped), (1000, 600, 200, 200));
        assert_eq!(s.ok + s.failed + s.skipped, s.received);
        assert!(report.undelivered.is_empty());
        let delivered = sink.delivered.lock().unwrap();
        assert_eq!(delivered.len(), 800);
        let offsets: Vec<i64> = delivered.iter().map(|m| m.origin.offset.unwrap()).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "input order survives parallel mapping");
    }

    #[tokio::test]
    async fn failed_deliveries_are_reported_per_partition() {
        let sink = MemorySink { failing_topic: Some("fail".into()), ..MemorySink::default() };
        let report = pipeline().run_batch(&sink, &inputs(20), deadline()).await;
        assert_eq!(report.undelivered.len(), 4, "offsets 1, 6, 11, 16 went to the failing fail topic");
        let mut firsts = report.batch_item_failures().unwrap();
        firsts.sort_by(|a, b| a.partition.cmp(&b.partition));
        assert_eq!(
            firsts,
            vec![
                ItemIdentifier { partition: "in-0".into(), offset: 6 },
                ItemIdentifier { partition: "in-1".into(), offset: 1 },
                ItemIdentifier { partition: "in-2".into(), offset: 11 },
            ]
        );
    }

    #[tokio::test]
    async fn each_topic_is_mapped_by_its_route_and_an_unrouted_one_fails_to_the_default_route() {
        let router = |ok: &str, fail: &str| Router {
            topic_ok: ok.into(),
            topic_fail: fail.into(),
            function_name: "f".into(),
            function_env: "test".into(),
        };
        let plan = |name: &str, target: &str| {
            crate::plan::load_str(&format!(
                "version: 1\nname: {name}\nfields:\n  - {{target: {target}, source: $.id, type: integer, required: true}}\n"
            ))
            .unwrap()
            .1
        };
        let p = Pipeline::with_routes(
            vec![
                TopicRoute {
                    source_topic: "orders".into(),
                    plan: plan("orders", "order_id"),
                    router: router("o-ok", "o-fail"),
                    format: SourceFormat::Json,
                },
                TopicRoute {
                    source_topic: "payments".into(),
                    plan: plan("payments", "payment_id"),
                    router: router("p-ok", "p-fail"),
                    format: SourceFormat::Json,
                },
            ],
            Some(router("", "unrouted")),
        );
        let input = |topic: &str, offset: i64, value: &str| Input {
            source: Source { topic: topic.into(), offset: Some(offset), ..Source::default() },
            payload: Payload::Value(value.as_bytes().to_vec()),
        };
        let ins = vec![
            input("orders", 0, r#"{"id": 1}"#),
            input("payments", 0, r#"{"id": 2}"#),
            input("payments", 1, r#"{"id": "x"}"#),
            input("refunds", 0, r#"{"id": 3}"#),
        ];
        let sink = MemorySink::default();
        let report = p.run_batch(&sink, &ins, deadline()).await;
        let s = &report.summary;
        assert_eq!((s.received, s.ok, s.failed), (4, 2, 2));
        assert!(s.mapping.starts_with("orders@") && s.mapping.contains(",payments@"), "{}", s.mapping);
        let delivered = sink.delivered.lock().unwrap();
        let topics: Vec<&str> = delivered.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(topics, ["o-ok", "p-ok", "p-fail", "unrouted"]);
        assert_eq!(delivered[0].payload, br#"{"order_id":1}"#);
        assert_eq!(delivered[1].payload, br#"{"payment_id":2}"#);
        let envelope: serde_json::Value = serde_json::from_slice(&delivered[3].payload).unwrap();
        assert_eq!(envelope["errors"][0]["rule"], "route");
        assert!(envelope["errors"][0]["message"].as_str().unwrap().contains("`refunds`"), "{envelope}");
        assert_eq!(envelope["value"], serde_json::json!({"id": 3}), "the record travels with its failure");
        assert_eq!(envelope["value_encoding"], "json");
        // A refresh of one route leaves the other alone.
        p.replace_route_plan(1, plan("payments", "pid"));
        assert_eq!(p.route_plan(0).name(), "orders");
        let (routed, _) = p.route_batch(&ins[1..2]);
        assert_eq!(routed[0].first().unwrap().payload, br#"{"pid":2}"#);
    }
}
