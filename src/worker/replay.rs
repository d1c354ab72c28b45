//! `lambda-stream replay`: the records of a fail topic, rebuilt from their envelopes and run
//! through a (fixed) mapping again — a batch job over the fail topic as it was when it started.
//!
//! Offsets are committed under a consumer group only after the batch's messages are delivered
//! (at-least-once), so an interrupted replay resumes where it stopped and a second replay of the
//! same range with the same group finds nothing left. Each commit also carries, as commit
//! metadata, where the output topics ended after that batch (a [`ResumeMarker`]): a run that
//! resumes after a kill reads the outputs from there and does not send again what its predecessor
//! delivered but had not committed — so an interrupted replay repeats nothing, and what it skips
//! for that reason is counted.
//!
//! Reading, mapping and handing a batch to the producer each have a thread, so that batch *n+2* is
//! read while *n+1* is mapped and *n* delivered; a stop request (SIGINT, SIGTERM) is honoured
//! between batches, after the batches in flight are delivered and committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use super::range::RangeError;
use crate::destination::Routed;
use crate::envelope::ReplayEnvelope;
use crate::pipeline::Pipeline;
use crate::record::Input;
use crate::sink::kafka::{KafkaContext, KafkaSink, PendingDelivery};
use crate::sink::{ProducerSettings, SinkError};

/// On every replayed message: where in the fail topic it came from (`topic/partition/offset`).
pub const HEADER_REPLAY_FROM: &str = "lambda-stream.replay.from";
/// On every replayed message: the original source record (`topic/partition/offset`).
pub const HEADER_REPLAY_OF: &str = "lambda-stream.replay.of";

/// Records per batch unless told otherwise (`--max-batch`): one delivery wait and one commit
/// each. Much smaller batches measured slower (the end of each waits for the one before it).
pub const DEFAULT_MAX_BATCH: usize = 5_000;

/// Why a replay stopped before its end. Nothing past the last commit is committed: a run of the
/// same replay resumes there.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading a topic's partitions, ends, offsets or records failed.
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("topic `{topic}` does not exist")]
    NoSuchTopic { topic: String },
    #[error("cannot read committed offsets: {0}")]
    Committed(#[source] KafkaError),
    #[error("cannot read `{topic}`: {source}")]
    Read { topic: String, source: KafkaError },
    /// A partition has more records to read (its end was read at the start), so the broker is
    /// not answering.
    #[error("no record from `{topic}` within {} s", .within.as_secs())]
    Silent { topic: String, within: Duration },
    #[error("delivery failed, nothing past the last commit is committed: {0}")]
    Delivery(#[source] SinkError),
    #[error("cannot commit: {0}")]
    Commit(#[source] KafkaError),
    #[error("cannot start the {stage}: {source}")]
    Thread { stage: &'static str, source: std::io::Error },
    /// A stage's thread panicked (a bug: its message is printed above this one).
    #[error("the {stage} stopped unexpectedly")]
    Panicked { stage: &'static str },
    /// The schema registry could not answer; nothing past the last commit is committed.
    #[error(transparent)]
    Registry(crate::format::registry::RegistryError),
}

/// What to replay and how.
pub struct ReplayOptions {
    /// The cluster: bootstrap servers, extra client properties (security), MSK IAM.
    pub cluster: ProducerSettings,
    pub from: String,
    pub group: String,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only records whose errors include this `field:rule`.
    pub only_rule: Option<String>,
    /// Produce and commit nothing; count what would happen.
    pub dry_run: bool,
    /// Records per batch: one delivery wait and one commit each.
    pub max_batch: usize,
    /// Set to stop between batches (those in flight are delivered and committed first).
    pub stop: Arc<AtomicBool>,
}

/// What a replay did (or, dry, would do).
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub read: u64,
    pub now_ok: u64,
    pub still_failing: u64,
    /// Dropped by the new mapping's `drop:` (or a tombstone): skipped, counted.
    pub skipped: u64,
    /// Not lambda-stream fail envelopes: counted, not replayed, never silently dropped.
    pub not_ours: u64,
    /// Left out by `--where`.
    pub not_selected: u64,
    /// Delivered by an interrupted run of this replay (same group) after its last commit: found
    /// on the output topics when this run started, so not sent again.
    pub already_delivered: u64,
    /// Stopped on request before the end; the group's offsets say where the next run resumes.
    pub interrupted: bool,
    /// What the operator should know (a resume that cannot look for earlier deliveries, a
    /// partition that ends at an open transaction).
    pub warnings: Vec<String>,
    /// Per `field:rule` of the old failures: how many records now pass, how many still fail, and
    /// the new errors of those (by `field:rule`).
    pub by_old_rule: BTreeMap<String, RuleOutcome>,
}

#[derive(Debug, Default, Serialize)]
pub struct RuleOutcome {
    pub now_ok: u64,
    pub still_failing: u64,
    pub new_errors: BTreeMap<String, u64>,
}

/// Where a replay's output topics ended after its last committed batch, per (topic, partition):
/// committed with the offsets, so that a run resuming after a kill knows where to look for what
/// its predecessor delivered after that commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResumeMarker {
    pub ends: BTreeMap<(String, i32), i64>,
}

/// Commit metadata is bounded by the broker (`offset.metadata.max.bytes`, 4096 by default).
const MARKER_MAX_BYTES: usize = 4000;
const MARKER_PREFIX: &str = "lambda-stream.replay/1 ";

impl ResumeMarker {
    /// `lambda-stream.replay/1 ok-topic:0=12,1=40;fail-topic:0=3`. Kafka topic names have no
    /// `:`, `=`, `,` or `;`, so the text needs no escaping.
    pub fn encode(&self) -> String {
        let mut out = String::from(MARKER_PREFIX);
        let mut topic: Option<&str> = None;
        for ((t, p), end) in &self.ends {
            if topic == Some(t.as_str()) {
                out.push(',');
            } else {
                if topic.is_some() {
                    out.push(';');
                }
                out.push_str(t);
                out.push(':');
                topic = Some(t);
            }
            out.push_str(&format!("{p}={end}"));
        }
        out
    }

    /// `None` for metadata that is not a marker (none, or another tool's).
    pub fn decode(text: &str) -> Option<Self> {
        let body = text.strip_prefix(MARKER_PREFIX)?;
        let mut ends = BTreeMap::new();
        for part in body.split(';').filter(|p| !p.is_empty()) {
            let (topic, list) = part.split_once(':')?;
            for entry in list.split(',') {
                let (p, end) = entry.split_once('=')?;
                ends.insert((topic.to_owned(), p.parse().ok()?), end.parse().ok()?);
            }
        }
        Some(ResumeMarker { ends })
    }

    /// The later of two markers, position by position.
    fn merge(&mut self, other: ResumeMarker) {
        for (k, v) in other.ends {
            let e = self.ends.entry(k).or_insert(v);
            *e = (*e).max(v);
        }
    }
}

/// The fail-topic positions `(partition, offset)` of `from` that records on the outputs, from the
/// marker's positions to their ends now, were replayed from, each with the topics it was found on.
fn delivered_since(
    consumer: &BaseConsumer<KafkaContext>,
    from: &str,
    marker: &ResumeMarker,
    timeout: Duration,
) -> Result<Delivered, ReplayError> {
    let prefix = format!("{from}/");
    let mut found = Delivered::new();
    for ((topic, p), start) in &marker.ends {
        let Ok((_, high)) = consumer.fetch_watermarks(topic, *p, timeout) else { continue };
        if *start >= high {
            continue;
        }
        super::range::assign(consumer, topic, *p, *start)?;
        while let Some(m) = super::range::next_record(consumer, topic, *p, timeout)? {
            let from = crate::sink::kafka::record_headers(&m).find(|(name, _)| *name == HEADER_REPLAY_FROM.as_bytes());
            if let Some(position) = from.and_then(|(_, f)| std::str::from_utf8(f).ok()).and_then(|f| {
                let (part, offset) = f.strip_prefix(&prefix)?.split_once('/')?;
                Some((part.parse().ok()?, offset.parse().ok()?))
            }) {
                found.entry(position).or_default().push(topic.clone());
            }
            if m.offset() + 1 >= high {
                break;
            }
        }
    }
    Ok(found)
}

/// Fail-topic positions `(partition, offset)` an interrupted run delivered, with the output topics
/// each was found on (several for a record a mapping's `outputs:` fanned out).
type Delivered = HashMap<(i32, i64), Vec<String>>;

/// A batch handed to the producer whose acknowledgements are still awaited.
struct InFlight {
    pending: Vec<PendingDelivery>,
    /// Each message's topic (ok, an output's, or fail), in the order of `pending`.
    topics: Vec<String>,
    /// Where the group resumes once the batch is delivered: every partition of `from` read so far.
    positions: Vec<(i32, i64)>,
}

/// Waits for a batch's deliveries, moves the marker past them and commits the batch's positions
/// with the marker (when it is recorded). Any delivery failure is an error: nothing past the last
/// commit is committed.
async fn land(
    batch: InFlight,
    sink: &KafkaSink,
    consumer: &BaseConsumer<KafkaContext>,
    from: &str,
    marker: Option<&mut ResumeMarker>,
    mode: CommitMode,
) -> Result<(), ReplayError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let placed = sink.confirm_placed(batch.pending, deadline).await;
    // Where each output partition ends after this batch: a handful of entries for thousands of
    // messages, so found in a short list rather than a map keyed by topic name.
    let mut ends: Vec<((String, i32), i64)> = Vec::new();
    for (topic, result) in batch.topics.into_iter().zip(placed) {
        let (partition, offset) = result.map_err(ReplayError::Delivery)?;
        match ends.iter_mut().find(|((t, p), _)| *p == partition && *t == topic) {
            Some((_, end)) => *end = (*end).max(offset + 1),
            None => ends.push(((topic, partition), offset + 1)),
        }
    }
    let metadata = match marker {
        Some(marker) => {
            marker.merge(ResumeMarker { ends: ends.into_iter().collect() });
            // Output partitions added since the start could make it too long for the broker.
            Some(marker.encode()).filter(|m| m.len() <= MARKER_MAX_BYTES).unwrap_or_default()
        }
        None => String::new(),
    };
    let mut offsets = TopicPartitionList::new();
    for (p, next) in batch.positions {
        offsets.add_partition_offset(from, p, Offset::Offset(next)).map_err(ReplayError::Commit)?;
        if let Some(mut e) = offsets.find_partition(from, p) {
            e.set_metadata(metadata.as_str());
        }
    }
    // Between batches the commit is not waited for (a later one covers a lost one); the last is.
    consumer.commit(&offsets, mode).map_err(ReplayError::Commit)
}

/// Runs the replay to the end of the fail topic as it was when it started (or to `until`), or
/// until `options.stop` is set.
pub async fn replay(
    options: &ReplayOptions,
    pipeline: Arc<Pipeline>,
    sink: Option<&KafkaSink>,
    mut progress: impl FnMut(&ReplayReport),
) -> Result<ReplayReport, ReplayError> {
    let consumer = super::range::reader(&options.cluster, &options.group)?;
    let timeout = Duration::from_secs(10);
    // A dry run sends nothing, whatever it was given to send with.
    let sink = sink.filter(|_| !options.dry_run);
    let topic = options.from.as_str();
    let brokers = options.cluster.brokers.as_str();
    let partitions = super::range::partitions_of(&consumer, brokers, topic, None, timeout)?;
    if partitions.is_empty() {
        return Err(ReplayError::NoSuchTopic { topic: topic.to_owned() });
    }
    let Range { starts, ends, previous, resumed_without_marker } =
        Range::of(&consumer, options, topic, &partitions, timeout)?;
    let mut report = ReplayReport::default();

    // Before anything is sent: where the outputs end now (the marker of this run's first commit)
    // and what an interrupted run delivered after its last commit.
    let (marker, already) = if sink.is_some() {
        let outputs =
            OutputsNow::of(&consumer, &pipeline, brokers, topic, previous.as_ref(), &partitions, &starts, timeout)?;
        if previous.is_none() && resumed_without_marker {
            report.warnings.push(
                "the group's offsets carry no record of where the outputs ended (committed by another tool?): records delivered after the last commit, if any, may be sent again".into(),
            );
        }
        (outputs.marker, outputs.already)
    } else {
        (ResumeMarker::default(), Delivered::new())
    };
    let mut marker = marker;
    let record_marker = marker.fits();
    if sink.is_some() && !record_marker {
        report.warnings.push(TOO_MANY_OUTPUT_PARTITIONS.into());
    }

    // Where the group resumes per partition, once what has been read so far is delivered.
    let mut positions: Vec<(i32, i64)> = partitions.iter().copied().zip(starts.iter().copied()).collect();
    let consumer = Arc::new(consumer);
    // Stages on their own threads: the reader polls and rebuilds a batch while the mapper maps the
    // one before it (on every core) and this thread hands the one before that to the producer.
    let (batches, received) = std::sync::mpsc::sync_channel(1);
    let reader = {
        let (consumer, stop) = (Arc::clone(&consumer), Arc::clone(&options.stop));
        let plan = ReadPlan {
            topic: topic.to_owned(),
            partitions,
            starts,
            ends,
            max_batch: options.max_batch,
            already,
            fans_out: pipeline.plan().outputs().iter().any(|o| o.fans_out()),
            only_rule: options.only_rule.clone(),
        };
        std::thread::Builder::new()
            .name("replay-reader".into())
            .spawn(move || plan.read(&consumer, &stop, &batches))
            .map_err(|source| ReplayError::Thread { stage: "reader", source })?
    };
    let (mapper, mapped) = spawn_mapper(received, Arc::clone(&pipeline))?;
    let mut in_flight: Option<InFlight> = None;
    while let Ok(batch) = mapped.recv() {
        let MappedBatch { counts, routed, next } = batch?;
        report.count(counts);
        let mut messages = Vec::with_capacity(routed.len());
        for (routed, provenance) in routed {
            tally(&mut report, routed, provenance, &mut messages);
        }
        for (i, next) in next {
            positions[i].1 = next;
        }
        if let Some(sink) = sink {
            let topics = messages.iter().map(|m| m.topic.clone()).collect();
            let pending = sink.enqueue(&messages).await;
            // This batch is in flight: now the one before it is awaited and committed.
            if let Some(before) = in_flight.take() {
                let marker = record_marker.then_some(&mut marker);
                land(before, sink, &consumer, topic, marker, CommitMode::Async).await?;
            }
            in_flight = Some(InFlight { pending, topics, positions: positions.clone() });
        }
        progress(&report);
    }
    mapper.join().map_err(|_| ReplayError::Panicked { stage: "mapper" })?;
    report.interrupted = reader.join().map_err(|_| ReplayError::Panicked { stage: "reader" })?;
    if let (Some(sink), Some(last)) = (sink, in_flight) {
        land(last, sink, &consumer, topic, record_marker.then_some(&mut marker), CommitMode::Sync).await?;
    }
    Ok(report)
}

/// Commit metadata is bounded by the broker: with too many output partitions to name, the commits
/// go without the marker, and a resumed run may send some records again.
const TOO_MANY_OUTPUT_PARTITIONS: &str = "the output topics have too many partitions to record where they ended: a run resuming after a kill may send records delivered after the last commit again";

impl ResumeMarker {
    /// Whether the marker fits in a commit's metadata.
    fn fits(&self) -> bool {
        self.encode().len() <= MARKER_MAX_BYTES
    }
}

impl ReplayReport {
    /// Adds what the reader counted in one batch.
    fn count(&mut self, counts: ReadCounts) {
        self.read += counts.read;
        self.not_ours += counts.not_ours;
        self.not_selected += counts.not_selected;
        self.already_delivered += counts.already_delivered;
        self.warnings.extend(counts.warning);
    }
}

/// Where a replay reads each partition of the fail topic, and what the group's last commit said.
struct Range {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Where the outputs ended when the group last committed (its marker), if it said.
    previous: Option<ResumeMarker>,
    /// The group has commits without a marker (made by another tool).
    resumed_without_marker: bool,
}

impl Range {
    /// From the group's commits (unless a dry run, which looks at the whole range), `--since` and
    /// `--until`, within each partition's low and high watermarks.
    fn of(
        consumer: &BaseConsumer<KafkaContext>,
        options: &ReplayOptions,
        topic: &str,
        partitions: &[i32],
        timeout: Duration,
    ) -> Result<Self, ReplayError> {
        let mut all = TopicPartitionList::new();
        for p in partitions {
            all.add_partition(topic, *p);
        }
        let committed = consumer.committed_offsets(all, timeout).map_err(ReplayError::Committed)?;
        let at_time = |ms: i64| super::range::offsets_at(consumer, topic, partitions, ms, timeout);
        let since = options.since_ms.map(&at_time).transpose()?;
        let until = options.until_ms.map(&at_time).transpose()?;
        let mut range = Range { starts: Vec::new(), ends: Vec::new(), previous: None, resumed_without_marker: false };
        for (i, p) in partitions.iter().enumerate() {
            let (low, high) = super::range::end_of(consumer, topic, *p, timeout)?;
            let element = committed.find_partition(topic, *p);
            let resumed = element.as_ref().and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
            if resumed.is_some() {
                match element.as_ref().and_then(|e| ResumeMarker::decode(e.metadata())) {
                    Some(m) => range.previous.get_or_insert_with(ResumeMarker::default).merge(m),
                    None => range.resumed_without_marker = true,
                }
            }
            let from_time = since.as_ref().map(|s| s[i].unwrap_or(high));
            let start = if options.dry_run { from_time.unwrap_or(low) } else { resumed.or(from_time).unwrap_or(low) };
            range.starts.push(start.clamp(low, high));
            range.ends.push(until.as_ref().map_or(high, |u| u[i].unwrap_or(high).min(high)));
        }
        Ok(range)
    }
}

/// Before anything is sent: where the outputs end now (the marker of this run's first commit),
/// and what an interrupted run delivered after its last commit (not to be sent again).
struct OutputsNow {
    marker: ResumeMarker,
    already: Delivered,
}

impl OutputsNow {
    #[allow(clippy::too_many_arguments)]
    fn of(
        consumer: &BaseConsumer<KafkaContext>,
        pipeline: &Pipeline,
        brokers: &str,
        topic: &str,
        previous: Option<&ResumeMarker>,
        partitions: &[i32],
        starts: &[i64],
        timeout: Duration,
    ) -> Result<Self, ReplayError> {
        let mut marker = ResumeMarker::default();
        let router = pipeline.router();
        let plan = pipeline.plan();
        // With `outputs:`, a replayed record goes to its outputs' topics, not to the ok topic.
        let ok: Vec<&str> = match plan.output_topics() {
            declared if declared.is_empty() => vec![router.topic_ok.as_str()],
            declared => declared,
        };
        for output in ok.into_iter().chain([router.topic_fail.as_str()]) {
            for p in super::range::partitions_of(consumer, brokers, output, None, timeout)? {
                let (_, high) = super::range::end_of(consumer, output, p, timeout)?;
                marker.ends.insert((output.to_owned(), p), high);
            }
        }
        let already = match previous {
            Some(previous) => delivered_since(consumer, topic, previous, timeout)?
                .into_iter()
                .filter(|((p, o), _)| partitions.iter().position(|x| x == p).is_some_and(|i| *o >= starts[i]))
                .collect(),
            None => Delivered::new(),
        };
        Ok(OutputsNow { marker, already })
    }
}

/// The mapper's thread: maps each batch the reader sends (on every core, as the worker maps a
/// batch on a blocking thread) and hands it on; mapping and handing over on one thread left the
/// reader, a batch ahead, waiting.
#[allow(clippy::type_complexity)]
fn spawn_mapper(
    received: std::sync::mpsc::Receiver<Result<ReadBatch, ReplayError>>,
    pipeline: Arc<Pipeline>,
) -> Result<(std::thread::JoinHandle<()>, std::sync::mpsc::Receiver<Result<MappedBatch, ReplayError>>), ReplayError> {
    let (mapped_batches, mapped) = std::sync::mpsc::sync_channel(1);
    // Records in a registry's format name schemas, fetched (each unknown one once) on the
    // replay's runtime before a batch is mapped.
    let runtime = tokio::runtime::Handle::current();
    let mapper = std::thread::Builder::new()
        .name("replay-mapper".into())
        .spawn(move || {
            while let Ok(batch) = received.recv() {
                let mapped = batch.and_then(|batch| {
                    let schemas = runtime.block_on(pipeline.prepare(&batch.inputs)).map_err(ReplayError::Registry)?;
                    Ok(MappedBatch::of(batch, &pipeline, &schemas))
                });
                if mapped_batches.send(mapped).is_err() {
                    return;
                }
            }
        })
        .map_err(|source| ReplayError::Thread { stage: "mapper", source })?;
    Ok((mapper, mapped))
}

/// A batch as the mapper hands it over: what the reader counted, each rebuilt record's new
/// outcome with what the report and its replay headers need, and where the partitions resume.
struct MappedBatch {
    counts: ReadCounts,
    routed: Vec<(Routed, Provenance)>,
    next: Vec<(usize, i64)>,
}

/// What the reader counted in a batch besides the records it rebuilt.
#[derive(Default)]
struct ReadCounts {
    read: u64,
    not_ours: u64,
    not_selected: u64,
    already_delivered: u64,
    warning: Option<String>,
}

impl MappedBatch {
    /// Maps a batch's rebuilt records on every core, as the worker maps a batch.
    fn of(batch: ReadBatch, pipeline: &Pipeline, schemas: &crate::format::BatchSchemas) -> MappedBatch {
        let routed = pipeline.route_all_in(&batch.inputs, schemas).into_iter().zip(batch.provenance).collect();
        MappedBatch { counts: batch.counts, routed, next: batch.next }
    }
}

/// What the reader reads: each partition of the fail topic from its start to its end.
struct ReadPlan {
    topic: String,
    partitions: Vec<i32>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    max_batch: usize,
    /// Positions whose records an interrupted run delivered: counted, not handed over — unless
    /// the mapping can fan a record out, when the run may have been stopped between its messages:
    /// then the record is mapped again and only the messages to topics it was not found on go.
    already: Delivered,
    fans_out: bool,
    /// `--where`: only records whose errors include this `field:rule`.
    only_rule: Option<String>,
}

/// Up to `max_batch` records, as the reader hands them over.
struct ReadBatch {
    /// Where each partition read in this batch resumes once the batch is delivered: its index in
    /// the plan, and the offset.
    next: Vec<(usize, i64)>,
    /// The records rebuilt, and what each is counted and sent with.
    inputs: Vec<Input>,
    provenance: Vec<Provenance>,
    counts: ReadCounts,
}

impl ReadPlan {
    /// One record of the fail topic into the batch: rebuilt, counted as not ours or not selected,
    /// or as delivered by an interrupted run.
    fn take(&self, m: &BorrowedMessage<'_>, partition: i32, batch: &mut ReadBatch, rule_sets: &mut RuleSets) {
        let delivered = self.already.get(&(partition, m.offset()));
        if delivered.is_some() && !self.fans_out {
            batch.counts.already_delivered += 1;
            return;
        }
        match Rebuilt::from_message(m, &self.topic, self.only_rule.as_deref(), rule_sets) {
            Rebuilt::NotOurs => batch.counts.not_ours += 1,
            Rebuilt::NotSelected => batch.counts.not_selected += 1,
            Rebuilt::Ready { input, mut provenance } => {
                provenance.delivered_to = delivered.cloned().unwrap_or_default();
                batch.inputs.push(input);
                batch.provenance.push(provenance);
            }
        }
    }

    /// Assigns the partitions with something left to read, each at its start; how many.
    fn assign(&self, consumer: &BaseConsumer<KafkaContext>, next: &[i64]) -> Result<usize, ReplayError> {
        let topic = self.topic.as_str();
        let mut assignment = TopicPartitionList::new();
        for (i, p) in self.partitions.iter().enumerate().filter(|(i, _)| next[*i] < self.ends[*i]) {
            assignment
                .add_partition_offset(topic, *p, Offset::Offset(next[i]))
                .map_err(|source| RangeError::Partition { topic: topic.to_owned(), partition: *p, source })?;
        }
        if assignment.count() > 0 {
            consumer.assign(&assignment).map_err(|source| ReplayError::Read { topic: topic.to_owned(), source })?;
        }
        Ok(assignment.count())
    }

    /// Partition `i` reached the end of what is there: where the reader stands now is past the
    /// transaction markers it skipped. At this run's end: done. Before it: the rest is a
    /// transaction still open, and the next run resumes here (said in the warning returned).
    fn reached_end(&mut self, consumer: &BaseConsumer<KafkaContext>, i: usize, next: &mut [i64]) -> Option<String> {
        let (topic, partition) = (self.topic.as_str(), self.partitions[i]);
        let position = consumer.position().ok().and_then(|tpl| {
            tpl.find_partition(topic, partition).and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
        });
        next[i] = next[i].max(position.unwrap_or(next[i])).min(self.ends[i]);
        if next[i] >= self.ends[i] {
            return None;
        }
        self.ends[i] = next[i];
        Some(format!(
            "`{topic}` partition {partition} ends at offset {} for now (a transaction still open?): the next run resumes there",
            next[i]
        ))
    }

    /// Reads batch after batch until the ends, a stop request (returns `true`), an error (handed
    /// over) or the receiver's going away. Every partition is read at once, as a consumer of the
    /// topic would: read one after the other, each one's first fetch waited alone.
    fn read(
        mut self,
        consumer: &BaseConsumer<KafkaContext>,
        stop: &AtomicBool,
        out: &std::sync::mpsc::SyncSender<Result<ReadBatch, ReplayError>>,
    ) -> bool {
        let timeout = Duration::from_secs(10);
        // Owned: `reached_end` updates the plan while the topic's name is in use.
        let topic = self.topic.clone();
        let topic = topic.as_str();
        let mut next = self.starts.clone();
        let mut open = match self.assign(consumer, &next) {
            Ok(0) => return false,
            Ok(open) => open,
            Err(e) => {
                let _ = out.send(Err(e));
                return false;
            }
        };
        // Partition id → its index in the plan, looked up per record: ids are small and dense.
        let mut indexes = vec![None; self.partitions.iter().map(|p| *p as usize + 1).max().unwrap_or(0)];
        for (i, p) in self.partitions.iter().enumerate() {
            indexes[*p as usize] = Some(i);
        }
        let index_of = |partition: i32| usize::try_from(partition).ok().and_then(|p| indexes.get(p).copied().flatten());
        let mut rule_sets = RuleSets::default();
        while open > 0 {
            if stop.load(Ordering::Relaxed) {
                return true;
            }
            let mut batch = ReadBatch {
                next: Vec::new(),
                inputs: Vec::with_capacity(self.max_batch.min(10_000)),
                provenance: Vec::with_capacity(self.max_batch.min(10_000)),
                counts: ReadCounts::default(),
            };
            let mut touched = vec![false; self.partitions.len()];
            // Records read and not already delivered, rebuilt or not: a batch's size.
            while ((batch.counts.read - batch.counts.already_delivered) as usize) < self.max_batch && open > 0 {
                let (i, m) = match consumer.poll(timeout) {
                    Some(Ok(m)) => match index_of(m.partition()) {
                        Some(i) => (i, m),
                        None => continue,
                    },
                    Some(Err(KafkaError::PartitionEOF(partition))) => {
                        let Some(i) = index_of(partition) else { continue };
                        if next[i] >= self.ends[i] {
                            continue;
                        }
                        batch.counts.warning = self.reached_end(consumer, i, &mut next).or(batch.counts.warning);
                        touched[i] = true;
                        open -= 1;
                        continue;
                    }
                    Some(Err(source)) => {
                        let _ = out.send(Err(ReplayError::Read { topic: topic.to_owned(), source }));
                        return false;
                    }
                    None => {
                        let _ = out.send(Err(ReplayError::Silent { topic: topic.to_owned(), within: timeout }));
                        return false;
                    }
                };
                if next[i] >= self.ends[i] {
                    // Read past its end (the topic grew since the start): not this run's.
                    continue;
                }
                touched[i] = true;
                if m.offset() >= self.ends[i] {
                    // A transaction marker or a compacted gap carried the read past the end.
                    next[i] = self.ends[i];
                    open -= 1;
                    continue;
                }
                next[i] = m.offset() + 1;
                if next[i] >= self.ends[i] {
                    open -= 1;
                }
                batch.counts.read += 1;
                self.take(&m, self.partitions[i], &mut batch, &mut rule_sets);
            }
            batch.next = (0..self.partitions.len()).filter(|i| touched[*i]).map(|i| (i, next[i])).collect();
            if out.send(Ok(batch)).is_err() {
                return false;
            }
        }
        false
    }
}

/// A fail record as the reader hands it over: its source record rebuilt, or why not.
#[allow(clippy::large_enum_variant)] // nearly every record is `Ready`: boxing it would only add an allocation
enum Rebuilt {
    /// Not a lambda-stream fail envelope, or its key or value does not decode.
    NotOurs,
    /// Left out by `--where`.
    NotSelected,
    Ready {
        input: Input,
        provenance: Provenance,
    },
}

/// What a rebuilt record's new outcome is counted and sent with.
struct Provenance {
    /// The old failure's `field:rule`s.
    old_rules: Arc<[String]>,
    /// The replay headers' values: the fail record's position and the source record's.
    from: String,
    of: String,
    /// The output topics an interrupted run already delivered this record to (fan-out only).
    delivered_to: Vec<String>,
}

impl Rebuilt {
    fn from_message(m: &BorrowedMessage<'_>, from: &str, only_rule: Option<&str>, rule_sets: &mut RuleSets) -> Rebuilt {
        let Some(Ok(envelope)) = m.payload().map(ReplayEnvelope::parse) else { return Rebuilt::NotOurs };
        let old_rules = rule_sets.of(&envelope);
        if only_rule.is_some_and(|only| !old_rules.iter().any(|r| r == only)) {
            return Rebuilt::NotSelected;
        }
        let of = envelope.origin();
        // librdkafka parses a record's headers on first access, allocating each one: not done for
        // a fail record whose headers are all the function's own.
        let rebuilt = if envelope.source_had_no_headers() {
            envelope.into_input([])
        } else {
            envelope.into_input(crate::sink::kafka::record_headers(m))
        };
        match rebuilt {
            Some(input) => {
                let from = crate::envelope::position(from, m.partition(), Some(m.offset()));
                Rebuilt::Ready { input, provenance: Provenance { old_rules, from, of, delivered_to: Vec::new() } }
            }
            None => Rebuilt::NotOurs,
        }
    }
}

/// The old failures' `field:rule` lists, each distinct one kept once and shared: a fail topic's
/// records repeat a few lists, and a list of its own per record was allocations on the reader's
/// path. Bounded, so a topic of endlessly different errors cannot grow it without end (past the
/// bound, lists are made per record again).
#[derive(Default)]
struct RuleSets {
    known: std::collections::HashMap<Vec<u8>, Arc<[String]>, foldhash::fast::RandomState>,
    /// The key of the envelope at hand, written into the same buffer each time.
    key: Vec<u8>,
}

const MAX_RULE_SETS: usize = 10_000;

impl RuleSets {
    fn of(&mut self, envelope: &ReplayEnvelope<'_>) -> Arc<[String]> {
        self.key.clear();
        envelope.write_rules_key(&mut self.key);
        if let Some(known) = self.known.get(self.key.as_slice()) {
            return Arc::clone(known);
        }
        let rules: Arc<[String]> = envelope.rules().into();
        if self.known.len() < MAX_RULE_SETS {
            self.known.insert(self.key.clone(), Arc::clone(&rules));
        }
        rules
    }
}

/// Counts a replayed record's new outcome into the report; appends its messages (one, or one per
/// output it now goes to), carrying the replay headers, to `messages`.
fn tally(
    report: &mut ReplayReport,
    routed: Routed,
    provenance: Provenance,
    messages: &mut Vec<crate::destination::OutMessage>,
) {
    let Provenance { old_rules, from, of, delivered_to } = provenance;
    if let Routed::Skipped(..) = routed {
        report.skipped += 1;
        return;
    }
    let first = messages.len();
    routed.append_to(messages);
    if !delivered_to.is_empty() {
        // Resumed after a stop between the messages of a fanned-out record: only the rest go.
        let rest: Vec<_> = messages.drain(first..).filter(|m| !delivered_to.contains(&m.topic)).collect();
        if rest.is_empty() {
            report.already_delivered += 1;
            return;
        }
        messages.extend(rest);
    }
    for message in &mut messages[first..] {
        message.headers.push((HEADER_REPLAY_FROM.into(), from.clone().into_bytes()));
        message.headers.push((HEADER_REPLAY_OF.into(), of.clone().into_bytes()));
    }
    let new_rules = messages[first]
        .failure
        .as_ref()
        .map(|f| crate::plan::distinct_field_rules(f.errors.iter().map(crate::plan::FieldError::field_rule)));
    match &new_rules {
        None => report.now_ok += 1,
        Some(_) => report.still_failing += 1,
    }
    for old in old_rules.iter() {
        // Nearly every record's rules already have their row: looked up before a key is made.
        let row = match report.by_old_rule.get_mut(old.as_str()) {
            Some(row) => row,
            None => report.by_old_rule.entry(old.clone()).or_default(),
        };
        match &new_rules {
            None => row.now_ok += 1,
            Some(new) => {
                row.still_failing += 1;
                for n in new {
                    *row.new_errors.entry(n.clone()).or_default() += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run resumed after a stop between the messages of a fanned-out record sends only those
    /// its predecessor did not deliver; a record delivered everywhere is counted, not sent.
    #[test]
    fn a_fanned_out_record_resumed_sends_only_the_messages_not_yet_delivered() {
        let (_, plan) = crate::plan::load_str(
            "version: 1\nname: m\nfields:\n  - {target: id, source: $.id, type: integer}\noutputs:\n  - {name: audit, all: true, topic: t.audit}\n  - {name: main, topic: t.main}\n",
        )
        .unwrap();
        let router = crate::destination::Router {
            topic_ok: "ok".into(),
            topic_fail: "fail".into(),
            function_name: "f".into(),
            function_env: "e".into(),
        };
        let input = Input {
            source: crate::record::Source { topic: "in".into(), offset: Some(3), ..Default::default() },
            payload: crate::record::Payload::Value(br#"{"id": 1}"#.to_vec()),
        };
        let provenance = |delivered_to: &[&str]| Provenance {
            old_rules: Arc::from(vec!["id:type".to_string()]),
            from: "fail/0/9".into(),
            of: "in/0/3".into(),
            delivered_to: delivered_to.iter().map(|t| t.to_string()).collect(),
        };
        let mut report = ReplayReport::default();
        let mut messages = Vec::new();
        tally(&mut report, router.route(&plan, &input), provenance(&["t.audit"]), &mut messages);
        let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(topics, ["t.main"], "audit had it already");
        assert_eq!((report.now_ok, report.already_delivered), (1, 0));
        tally(&mut report, router.route(&plan, &input), provenance(&["t.audit", "t.main"]), &mut messages);
        assert_eq!(messages.len(), 1, "nothing more to send");
        assert_eq!((report.now_ok, report.already_delivered), (1, 1));
        tally(&mut report, router.route(&plan, &input), provenance(&[]), &mut messages);
        assert_eq!(messages.len(), 3, "a record not seen before: both messages");
    }

    /// Equal error lists share one list of rules; lists that differ never do, whatever their text.
    #[test]
    fn each_distinct_list_of_old_rules_is_kept_once() {
        let envelope = |errors: &str| {
            format!(r#"{{"source":{{"topic":"t","partition":0,"offset":1}},"errors":[{errors}],"value":null}}"#)
        };
        let texts = [
            envelope(r#"{"field":"ab","rule":"c"},{"field":"ab","rule":"c"}"#),
            envelope(r#"{"field":"ab","rule":"c"},{"field":"ab","rule":"c"}"#),
            envelope(r#"{"field":"a","rule":"bc"},{"field":"ab","rule":"c"}"#),
            envelope(r#"{"field":null,"rule":"record"}"#),
            envelope(r#"{"field":"-","rule":"record"}"#),
            envelope(r#"{"field":"ab","rule":"c"},{"field":"ab","rule":"c"}"#),
        ];
        let mut sets = RuleSets::default();
        let lists: Vec<Arc<[String]>> =
            texts.iter().map(|t| sets.of(&ReplayEnvelope::parse(t.as_bytes()).unwrap())).collect();
        assert_eq!(&lists[0][..], ["ab:c"]);
        assert!(Arc::ptr_eq(&lists[0], &lists[1]), "equal lists are shared");
        assert!(Arc::ptr_eq(&lists[0], &lists[5]), "equal once unescaped");
        assert_eq!(&lists[2][..], ["a:bc", "ab:c"]);
        assert!(!Arc::ptr_eq(&lists[3], &lists[4]), "no field and a field named `-` are different errors");
        assert_eq!((&lists[3][..], &lists[4][..]), (&["-:record".to_string()][..], &["-:record".to_string()][..]));
        assert_eq!(sets.known.len(), 4);
        // Past the bound, lists are still right, only no longer kept.
        for i in 0..MAX_RULE_SETS + 5 {
            let rules = sets
                .of(&ReplayEnvelope::parse(envelope(&format!(r#"{{"field":"f{i}","rule":"r"}}"#)).as_bytes()).unwrap());
            assert_eq!(&rules[..], [format!("f{i}:r")]);
        }
        assert_eq!(sets.known.len(), MAX_RULE_SETS);
    }

    #[test]
    fn a_marker_reads_back_as_written_and_strangers_are_not_markers() {
        let mut m = ResumeMarker::default();
        m.ends.insert(("billing.ok".into(), 0), 12);
        m.ends.insert(("billing.ok".into(), 1), 40);
        m.ends.insert(("billing-fail_2".into(), 0), 3);
        let text = m.encode();
        assert_eq!(text, "lambda-stream.replay/1 billing-fail_2:0=3;billing.ok:0=12,1=40");
        assert_eq!(ResumeMarker::decode(&text), Some(m.clone()));
        assert_eq!(ResumeMarker::decode(MARKER_PREFIX), Some(ResumeMarker::default()));
        for stranger in ["", "checkpoint 7", "lambda-stream.replay/1 t:x=1", "lambda-stream.replay/1 t"] {
            assert_eq!(ResumeMarker::decode(stranger), None, "{stranger:?}");
        }
        let mut later = ResumeMarker::default();
        later.ends.insert(("billing.ok".into(), 0), 20);
        later.ends.insert(("billing.ok".into(), 2), 5);
        m.merge(later);
        assert_eq!(m.ends[&("billing.ok".to_string(), 0)], 20);
        assert_eq!(m.ends[&("billing.ok".to_string(), 1)], 40);
        assert_eq!(m.ends[&("billing.ok".to_string(), 2)], 5);
    }
}
