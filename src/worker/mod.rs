//! Worker mode (`lambda-stream run`): the same pipeline as the Lambda, fed by a Kafka consumer
//! group instead of Lambda events.
//!
//! The loop gathers a batch from the consumer, runs it through [`Pipeline::run_batch`] (the code
//! the Lambda handler runs) into a [`KafkaSink`], and only when every message of the batch is
//! delivered commits the batch's offsets:
//! - **at-least-once** (default): a plain offset commit after delivery. A crash between delivery
//!   and commit redelivers the batch (duplicates, never loss).
//! - **exactly-once** (`--exactly-once`): each batch is one producer transaction that also
//!   carries the consumed offsets (`send_offsets_to_transaction`), so outputs and offsets commit
//!   together; `read_committed` readers see each input's output once. An abortable error aborts
//!   and reruns the batch (still in memory) in a new transaction; a fatal one (fenced) stops.
//!
//! At-least-once batches flow through three stages at once: batch *n+1* is gathered on the loop
//! while batch *n* is mapped on a blocking thread and batch *n−1* is with the producer; a batch is
//! handed to the producer only after the one before it is settled, so commits stay in order and a
//! retry never overtakes newer messages. Exactly-once batches run one at a time (a transaction
//! spans consuming, mapping and producing).
//!
//! Records are owned by the batch in memory until they are committed, so a failed delivery is
//! retried from memory; after `delivery_timeout` of failures the worker stops with an error,
//! having committed nothing past what it could not place. Rebalances only happen while the
//! consumer is polled, that is while a batch is being gathered; records of a partition revoked
//! then are released unprocessed (their new owner reads them from the committed offset) and
//! counted. Earlier batches still being mapped or delivered are finished and committed; a commit
//! the group refuses means the new owner maps those records again (duplicates, never loss).
//!
//! Like `sink`, this module talks to `rdkafka` (the consumer side).

pub mod group;
mod heartbeat;
pub mod metrics;
pub mod range;
pub mod replay;

pub use group::GroupProtocol;
pub use heartbeat::Heartbeat;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message, Timestamp};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::destination::{Destination, OutMessage};
use crate::pipeline::{Pipeline, Summary};
use crate::record::{Input, Payload, Source};
use crate::sink::kafka::{KafkaContext, KafkaSink, PendingDelivery, TransactionError};
use crate::sink::{Delivery, ProducerSettings, Sink, SinkError};

/// How the worker runs; the CLI fills it from flags, `environments.yaml` and the environment.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub producer: ProducerSettings,
    pub topics: Vec<String>,
    pub group: String,
    pub exactly_once: bool,
    /// Largest batch gathered before it is processed.
    pub max_batch: usize,
    /// How long to wait for more records once a batch has its first one.
    pub max_wait: Duration,
    /// How long a batch's delivery may keep failing before the worker gives up.
    pub delivery_timeout: Duration,
    /// How often to log the one-line progress report (zero: never).
    pub stats_interval: Duration,
    /// Extra librdkafka consumer properties (`--consumer-property k=v`), applied last.
    pub consumer_extra: Vec<(String, String)>,
    /// Map nothing: copy each value unchanged to the ok topic (the benchmark's baseline).
    pub pass_through: bool,
    /// How long the loop may stay in one step before the watchdog gives up on it (`None`: the
    /// longest bound of any step plus a margin, see [`Worker::stall_limit`]).
    pub stall_timeout: Option<Duration>,
    /// How long the group waits for a silent member before moving its partitions elsewhere
    /// (classic protocol, default 45 s; with the consumer protocol the broker's group settings
    /// decide, so setting it asks for the classic protocol).
    pub session_timeout: Option<Duration>,
    /// `Auto` until [`Worker::new`] settles it.
    pub group_protocol: GroupProtocol,
    /// How long a stop (SIGTERM, Ctrl-C) may take, from the signal to leaving the group.
    pub stop_within: Duration,
}

/// Kafka's own default: long enough that a pause or a network blip is not taken for a crash.
const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// How long the worker retries a schema registry that does not answer before it stops (without
/// committing the batch, so a restart maps it again). Below the default stall timeout, which
/// would stop it otherwise, with less to say.
pub const REGISTRY_RETRY: Duration = Duration::from_secs(60);

impl WorkerOptions {
    /// The first setting that only the classic group protocol honours, as the user wrote it.
    fn classic_setting(&self) -> Option<String> {
        if self.session_timeout.is_some() {
            return Some("--session-timeout-s".into());
        }
        self.consumer_extra
            .iter()
            .find(|(k, _)| group::CLASSIC_ONLY_PROPERTIES.contains(&k.as_str()))
            .map(|(k, _)| format!("--consumer-property {k}"))
    }

    /// Settles `Auto` (asking the broker when nothing on the command line decides), and says
    /// which protocol and why.
    fn settle_group_protocol(&mut self) -> group::Choice {
        let mut requested = self.group_protocol;
        if requested == GroupProtocol::Auto
            && let Some((_, v)) = self.consumer_extra.iter().rev().find(|(k, _)| k == "group.protocol")
        {
            requested = GroupProtocol::from_name(&v.to_ascii_lowercase()).unwrap_or(GroupProtocol::Auto);
        }
        // Only the reason is shown (in the log line saying which protocol and why).
        type Why = Box<dyn std::error::Error + Send + Sync>;
        let choice = group::choose(requested, self.classic_setting().as_deref(), || -> Result<group::Offer, Why> {
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", &self.producer.brokers).set("client.id", "lambda-stream-worker");
            for (k, v) in &self.producer.extra {
                config.set(k, v);
            }
            let context = self.producer.context()?;
            Ok(group::ask_broker(&config, context, Duration::from_secs(10))?)
        });
        self.group_protocol = choice.protocol;
        choice
    }

    pub fn new(producer: ProducerSettings, topics: Vec<String>, group: String) -> Self {
        WorkerOptions {
            producer,
            topics,
            group,
            exactly_once: false,
            max_batch: 5000,
            max_wait: Duration::from_millis(20),
            delivery_timeout: Duration::from_secs(120),
            stats_interval: Duration::from_secs(10),
            consumer_extra: Vec::new(),
            pass_through: false,
            stall_timeout: None,
            session_timeout: None,
            group_protocol: GroupProtocol::Auto,
            stop_within: Duration::from_secs(10),
        }
    }

    fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.producer.brokers)
            .set("group.id", &self.group)
            .set("client.id", "lambda-stream-worker")
            // Offsets are committed by the worker, only for delivered batches.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Never map records of an aborted upstream transaction.
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "false")
            // Once its prefetch queue is full, librdkafka waits this long before fetching again
            // (default 1 s). The loop drains a full queue in a fraction of that and then sat idle,
            // which capped throughput far below what the loop can do (docs/performance.md).
            .set("fetch.queue.backoff.ms", "10");
        match self.group_protocol {
            // The eager default revokes every partition of every member at each rebalance: one
            // member crashing stopped the whole group for its session timeout.
            GroupProtocol::Classic | GroupProtocol::Auto => {
                let session = self.session_timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT);
                config
                    .set("group.protocol", "classic")
                    .set("partition.assignment.strategy", "cooperative-sticky")
                    .set("session.timeout.ms", session.as_millis().to_string())
                    .set("heartbeat.interval.ms", (session.as_millis() / 10).clamp(100, 3000).to_string());
            }
            GroupProtocol::Consumer => {
                config.set("group.protocol", "consumer");
            }
        }
        if !self.stats_interval.is_zero() {
            config.set("statistics.interval.ms", self.stats_interval.as_millis().to_string());
        }
        // Security settings (TLS, SASL) are the producer's.
        for (k, v) in &self.producer.extra {
            config.set(k, v);
        }
        for (k, v) in &self.consumer_extra {
            config.set(k, v);
        }
        config
    }
}

/// Why the worker stopped (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot create the Kafka consumer: {0}")]
    Consumer(#[source] KafkaError),
    #[error("cannot subscribe to {topics}: {source}")]
    Subscribe { topics: String, source: KafkaError },
    #[error(transparent)]
    Producer(#[from] SinkError),
    #[error(
        "{count} message(s) could not be delivered for {seconds} s (first: {first}); stopped without committing \
         past {topic}[{partition}] offset {offset}"
    )]
    Undeliverable {
        count: usize,
        seconds: u64,
        #[source]
        first: SinkError,
        topic: String,
        partition: i32,
        offset: i64,
    },
    #[error(transparent)]
    Transaction(TransactionError),
    /// The task mapping a batch did not finish: mapping panicked (never seen: it is property- and
    /// fuzz-tested), and nothing past the batch before it was committed.
    #[error("mapping a batch failed: {0}")]
    Mapping(#[source] tokio::task::JoinError),
    /// The schema registry did not answer for as long as the worker retries; nothing past the
    /// batch before was committed.
    #[error("{0}; retried for {1} s, stopped without committing the batch")]
    Registry(#[source] crate::format::registry::RegistryError, u64),
}

/// Counts since the worker started: `ok + failed + skipped = received`; `released` records were
/// gathered from a partition revoked before they were processed (their new owner maps them).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub received: u64,
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Of the skipped, those the mapping's `drop:` chose (the rest are tombstones).
    pub dropped: u64,
    pub released: u64,
    pub batches: u64,
    /// Batch deliveries that had to be retried (each may have produced duplicates in
    /// at-least-once mode).
    pub retried_batches: u64,
}

impl Totals {
    fn add(&mut self, s: &Summary) {
        self.received += s.received as u64;
        self.ok += s.ok as u64;
        self.failed += s.failed as u64;
        self.skipped += s.skipped as u64;
        self.dropped += s.dropped as u64;
        self.batches += 1;
    }
}

/// The consumer's context: the crate's Kafka context (MSK IAM tokens) plus the consumer lag from
/// librdkafka's statistics and a log line per rebalance.
pub struct WorkerContext {
    kafka: KafkaContext,
    lag: Arc<Mutex<HashMap<(String, i32), i64>>>,
    metrics: Arc<metrics::WorkerMetrics>,
}

impl ClientContext for WorkerContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn stats(&self, statistics: Statistics) {
        let mut lag = self.lag.lock().expect("not poisoned");
        lag.clear();
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // -1 is librdkafka's internal "unassigned" partition; -1 lag means unknown yet.
                if partition >= 0 && p.consumer_lag >= 0 {
                    lag.insert((topic.clone(), partition), p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.kafka.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.kafka.generate_oauth_token(config)
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                self.metrics.rebalanced("revoke");
                tracing::info!(partitions = %describe(tpl), "partitions revoked")
            }
            Rebalance::Assign(tpl) => {
                self.metrics.rebalanced("assign");
                tracing::info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    /// Both protocols are incremental: an assignment or revocation names only the partitions that
    /// change hands, so the member's count is read from its whole assignment once applied.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        match consumer.assignment() {
            Ok(assignment) => self.metrics.set_assigned_partitions(assignment.count()),
            Err(e) => tracing::warn!(error = %e, "cannot read the assignment after a rebalance"),
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}-{}", e.topic(), e.partition())).collect::<Vec<_>>().join(",")
}

pub struct Worker {
    pipeline: Arc<Pipeline>,
    sink: KafkaSink,
    /// Shared so that leaving the group at a stop can run on a thread of its own, bounded by the
    /// stop's deadline (librdkafka's close waits for the group).
    consumer: Option<Arc<StreamConsumer<WorkerContext>>>,
    options: WorkerOptions,
    totals: Totals,
    /// Since when batches have kept failing (exactly-once), to give up after `delivery_timeout`.
    failing_since: Option<Instant>,
    /// At-least-once: the batch being mapped on a blocking thread while the loop gathers the
    /// next one.
    mapping: Option<tokio::task::JoinHandle<MappedBatch>>,
    /// At-least-once: the batch with the producer, settled when the next one is ready.
    in_flight: Option<InFlight>,
    /// The offsets of the last settled batch (committed again, synchronously, at shutdown).
    last_commit: Option<TopicPartitionList>,
    heartbeat: Arc<Heartbeat>,
    metrics: Arc<metrics::WorkerMetrics>,
    /// Consumer lag per partition, from librdkafka's statistics (shared with the context).
    lag: Arc<Mutex<HashMap<(String, i32), i64>>>,
}

impl Worker {
    /// Creates the producer (transactional with `exactly_once`) and the consumer, and subscribes.
    /// Blocks while the transactional producer registers with the broker.
    pub fn new(pipeline: Pipeline, mut options: WorkerOptions) -> Result<Self, WorkerError> {
        if options.exactly_once && options.producer.transactional_id.is_none() {
            // One id per process: KIP-447 fences zombies through the consumer group's
            // generation, so ids need not be tied to partitions.
            options.producer.transactional_id = Some(format!("lambda-stream-{}-{}", options.group, std::process::id()));
        }
        let protocol = options.settle_group_protocol();
        tracing::info!(
            protocol = protocol.protocol.name(),
            why = %protocol.why,
            session_timeout_s = protocol.session_timeout.or(options.session_timeout).map(|d| d.as_secs_f64()),
            "group protocol"
        );
        let sink = KafkaSink::new(&options.producer)?;
        let metrics = Arc::new(metrics::WorkerMetrics::new());
        metrics.set_group_protocol(protocol.protocol.name());
        let lag = Arc::new(Mutex::new(HashMap::new()));
        let context =
            WorkerContext { kafka: options.producer.context()?, lag: Arc::clone(&lag), metrics: Arc::clone(&metrics) };
        let consumer: StreamConsumer<WorkerContext> =
            options.consumer_config().create_with_context(context).map_err(WorkerError::Consumer)?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|source| WorkerError::Subscribe { topics: options.topics.join(","), source })?;
        Ok(Worker {
            pipeline: Arc::new(pipeline),
            sink,
            consumer: Some(Arc::new(consumer)),
            options,
            totals: Totals::default(),
            failing_since: None,
            mapping: None,
            in_flight: None,
            last_commit: None,
            heartbeat: Arc::new(Heartbeat::new()),
            metrics,
            lag,
        })
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The pipeline the loop maps with, for replacing its mapping while it runs.
    pub fn pipeline(&self) -> Arc<Pipeline> {
        Arc::clone(&self.pipeline)
    }

    /// What the metrics endpoint reads: the counters, the lag and the heartbeat.
    pub fn metrics_endpoint(&self) -> metrics::Endpoint {
        metrics::Endpoint {
            metrics: Arc::clone(&self.metrics),
            lag: Arc::clone(&self.lag),
            heartbeat: Arc::clone(&self.heartbeat),
            stall_limit: self.stall_limit(),
        }
    }

    /// The loop's heartbeat, for a watchdog (`lambda-stream run` exits when it stalls).
    pub fn heartbeat(&self) -> Arc<Heartbeat> {
        Arc::clone(&self.heartbeat)
    }

    /// How long one step of the loop may take before the watchdog gives up: `stall_timeout`, or
    /// else the longest librdkafka call bound (a transactional call waits up to the message
    /// timeout + 5 s) with a margin.
    pub fn stall_limit(&self) -> Duration {
        self.options.stall_timeout.unwrap_or_else(|| self.transaction_timeout() + Duration::from_secs(60))
    }

    fn transaction_timeout(&self) -> Duration {
        Duration::from_millis(self.options.producer.message_timeout_ms as u64 + 5000)
    }

    fn step(&self, step: &'static str) {
        self.heartbeat.beat(step);
        tracing::trace!(step, "worker step");
    }

    /// Runs until `shutdown` resolves (then finishes the batch in hand, commits and leaves the
    /// group) or an unrecoverable error.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<Totals, WorkerError> {
        tokio::pin!(shutdown);
        let started = Instant::now();
        let mut last_report = (Instant::now(), 0u64);
        let mut stopping = false;
        while !stopping {
            self.step("polling");
            let mut batch = Vec::new();
            // The first record of a batch: wait for it, or for the stop signal. With a batch in
            // flight, wait only briefly: when nothing more comes, settle it (deliver, commit).
            // At most a second either way: the heartbeat must keep beating while idle.
            let idle = if self.mapping.is_some() || self.in_flight.is_some() {
                self.options.max_wait
            } else {
                self.options.stats_interval.clamp(Duration::from_millis(200), Duration::from_secs(1))
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                first = self.consumer().recv() => push(&mut batch, first),
                () = tokio::time::sleep(idle) => {
                    // Nothing new: move what is in hand one stage on (mapped → produced → settled).
                    if let Some(mapping) = self.mapping.take() {
                        self.step("handing over an idle batch");
                        self.hand_over(mapping).await?;
                    } else if let Some(in_flight) = self.in_flight.take() {
                        self.step("settling an idle batch");
                        self.settle(in_flight).await?;
                    }
                }
            }
            if !batch.is_empty() {
                // One timer and one message stream for the whole batch: a timer per record costs
                // more than the record, and `recv` registers and drops a waker slot per call.
                let fill_timer = tokio::time::sleep(self.options.max_wait);
                tokio::pin!(fill_timer);
                let mut messages = self.consumer().stream();
                while batch.len() < self.options.max_batch {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => { stopping = true; break }
                        next = messages.next() => push(&mut batch, next.expect("Kafka streams never end")),
                        () = &mut fill_timer => break,
                    }
                }
                drop(messages);
                self.step("releasing revoked records");
                self.release_revoked(&mut batch);
                if !batch.is_empty() {
                    self.process(batch).await?;
                }
            }
            if !self.options.stats_interval.is_zero() && last_report.0.elapsed() >= self.options.stats_interval {
                self.report_progress(&mut last_report);
            }
        }
        self.stop().await?;
        tracing::info!(
            received = self.totals.received,
            ok = self.totals.ok,
            failed = self.totals.failed,
            skipped = self.totals.skipped,
            dropped = self.totals.dropped,
            released = self.totals.released,
            retried_batches = self.totals.retried_batches,
            seconds = started.elapsed().as_secs_f64(),
            "worker stopped"
        );
        Ok(self.totals.clone())
    }

    fn consumer(&self) -> &StreamConsumer<WorkerContext> {
        self.consumer.as_deref().expect("the consumer is given up only when the worker stops")
    }

    /// A stop takes at most `stop_within`, also while the group rebalances (when a commit or
    /// leaving the group waits for the other members): the batch in hand is settled if it can
    /// be, what was delivered is committed if the group still takes the commit, and the member
    /// leaves. Whatever is not committed by then is read again by its partitions' next owner — at
    /// least once, as after a crash, but counted and logged, and the process exits 0: a normal stop
    /// is not a failure. Only an error of the batch itself (undeliverable records) is one.
    async fn stop(&mut self) -> Result<(), WorkerError> {
        self.step("stopping");
        let begun = tokio::time::Instant::now();
        // The last second is for flushing the producer and exiting.
        let deadline = begun + self.options.stop_within.saturating_sub(Duration::from_secs(1));
        let settled = tokio::time::timeout_at(deadline, async {
            if let Some(mapping) = self.mapping.take() {
                self.hand_over(mapping).await?;
            }
            if let Some(in_flight) = self.in_flight.take() {
                self.settle(in_flight).await?;
            }
            Ok::<(), WorkerError>(())
        })
        .await;
        match settled {
            Ok(result) => result?,
            Err(_) => {
                let t = &self.totals;
                let in_hand = t.received.saturating_sub(t.ok + t.failed + t.skipped + t.released);
                self.totals.released += in_hand;
                tracing::warn!(
                    released = in_hand,
                    "the batch in hand was not settled before the stop deadline; its records are left for the next owner"
                );
            }
        }
        let consumer = self.consumer.take().expect("stopped once");
        let last_commit = match (self.last_commit.take(), consumer.assignment()) {
            (Some(offsets), Ok(assignment)) => Some(still_assigned(&offsets, &assignment)),
            (offsets, _) => offsets,
        };
        if let Some(offsets) = last_commit.filter(|o| o.count() > 0) {
            self.step("committing at stop");
            let committing = Arc::clone(&consumer);
            let commit = tokio::task::spawn_blocking(move || committing.commit(&offsets, CommitMode::Sync));
            let refused = match tokio::time::timeout_at(deadline, commit).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(e))) => Some(e.to_string()),
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("the group did not answer before the stop deadline".to_owned()),
            };
            if let Some(why) = refused {
                self.metrics.commit_refused_at_stop();
                tracing::warn!(
                    why,
                    "the last commit was refused at stop (the partitions moved on, or the group is rebalancing); \
                     their next owner reads again from the last commit it took"
                );
            }
        }
        // Leave the group now, so its partitions move to the other members at once. Closing waits
        // for the group's answer: on a thread of its own, given up at the deadline.
        self.step("leaving the group");
        let leave = tokio::task::spawn_blocking(move || {
            consumer.unsubscribe();
            drop(consumer);
        });
        if tokio::time::timeout_at(deadline, leave).await.is_err() {
            tracing::warn!("the group did not confirm the leave before the stop deadline; the session timeout will");
        }
        let left = (begun + self.options.stop_within).saturating_duration_since(tokio::time::Instant::now());
        self.sink.flush(left.max(Duration::from_millis(100)))?;
        Ok(())
    }

    /// Drops gathered records of partitions no longer assigned to this member (revoked by a
    /// rebalance while the batch was being gathered); their new owner reads them again.
    fn release_revoked(&mut self, batch: &mut Vec<Input>) {
        let Ok(assignment) = self.consumer().assignment() else { return };
        let elements = assignment.elements();
        let assigned: Vec<(&str, i32)> = elements.iter().map(|e| (e.topic(), e.partition())).collect();
        let before = batch.len();
        batch.retain(|i| assigned.contains(&(i.source.topic.as_str(), i.source.partition)));
        if batch.len() < before {
            self.totals.released += (before - batch.len()) as u64;
            tracing::info!(released = before - batch.len(), "records of revoked partitions released unprocessed");
        }
    }

    async fn process(&mut self, batch: Vec<Input>) -> Result<(), WorkerError> {
        let offsets = next_offsets(&batch);
        self.metrics.consumed(batch.len());
        self.step("fetching the batch's schemas");
        let schemas = self.schemas_of(&batch).await?;
        self.step("starting to map");
        let mapping = map_on_blocking_thread(&self.pipeline, self.options.pass_through, batch, offsets, schemas);
        if self.options.exactly_once {
            self.step("mapping");
            let mapped = mapping.await.map_err(WorkerError::Mapping)?;
            return self.process_transaction(mapped).await;
        }
        // At-least-once, pipelined in three stages: this batch is mapped on a blocking thread
        // while the loop hands the previous (mapped) batch to the producer and then gathers the
        // next one. Before a batch is handed over, the one before it is settled (delivered,
        // committed), so a retry never overtakes newer messages and commits stay in order.
        if let Some(previous) = self.mapping.replace(mapping) {
            self.hand_over(previous).await?;
        }
        Ok(())
    }

    /// The schemas the batch's records name, fetched from the registry with retries: a registry
    /// that is down holds the batch (no record fails for it) until it answers, or until
    /// [`REGISTRY_RETRY`] has passed, when the worker stops without committing the batch.
    async fn schemas_of(&self, batch: &[Input]) -> Result<crate::format::BatchSchemas, WorkerError> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(250);
        loop {
            match self.pipeline.prepare(batch).await {
                Ok(schemas) => return Ok(schemas),
                Err(e) if started.elapsed() + wait > REGISTRY_RETRY => {
                    return Err(WorkerError::Registry(e, started.elapsed().as_secs()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "the schema registry did not answer; retrying the batch's schemas");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Waits for a mapped batch, settles the batch before it, and hands it to the producer.
    async fn hand_over(&mut self, mapping: tokio::task::JoinHandle<MappedBatch>) -> Result<(), WorkerError> {
        self.step("waiting for a mapped batch");
        let mapped = match mapping.await {
            Ok(mapped) => mapped,
            // Mapping never panics (property- and fuzz-tested); if it did, stop before any commit.
            Err(e) => return Err(WorkerError::Mapping(e)),
        };
        if let Some(previous) = self.in_flight.take() {
            self.settle(previous).await?;
        }
        self.step("enqueueing");
        let pending = self.sink.enqueue(&mapped.messages).await;
        self.in_flight = Some(InFlight { mapped, pending });
        Ok(())
    }

    fn message_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.options.producer.message_timeout_ms as u64 + 1000)
    }

    /// Waits for a batch's acknowledgements, retries what failed (with backoff, and with every
    /// later message of the same topic, so per-partition order holds; see [`to_resend`]) until
    /// `delivery_timeout`, then commits its offsets. A failed commit is not fatal: the next commit
    /// covers these offsets too; until then a restart would redeliver them (at-least-once).
    async fn settle(&mut self, in_flight: InFlight) -> Result<(), WorkerError> {
        let InFlight { mapped: MappedBatch { batch, messages, summary, offsets, started }, pending } = in_flight;
        let give_up_at = Instant::now() + self.options.delivery_timeout;
        self.step("awaiting acknowledgements");
        let mut sent: Vec<&OutMessage> = messages.iter().collect();
        let mut deliveries = self.sink.confirm(pending, self.message_deadline()).await;
        let mut backoff = Duration::from_millis(200);
        loop {
            let resend = to_resend(&sent, &deliveries);
            if resend.is_empty() {
                break;
            }
            let undelivered: Vec<(&OutMessage, SinkError)> =
                sent.iter().zip(&deliveries).filter_map(|(m, d)| d.clone().err().map(|e| (*m, e))).collect();
            let (first, error) = &undelivered[0];
            if Instant::now() >= give_up_at {
                return Err(undeliverable(&undelivered, self.options.delivery_timeout, &batch, first));
            }
            tracing::warn!(
                undelivered = undelivered.len(), resent = resend.len(), %error,
                "delivery failed; sending again, in order, every message from the first undelivered one of its topic"
            );
            self.totals.retried_batches += 1;
            self.metrics.delivery_retried();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            self.step("retrying deliveries");
            let deadline = self.message_deadline().min(give_up_at.max(Instant::now() + Duration::from_secs(1)));
            sent = resend;
            deliveries = self.sink.send_all(&sent, deadline).await;
        }
        self.totals.add(&summary);
        self.step("committing offsets");
        let offsets = match self.consumer().assignment() {
            Ok(assignment) => still_assigned(&offsets, &assignment),
            Err(_) => offsets,
        };
        if offsets.count() > 0 {
            match self.consumer().commit(&offsets, CommitMode::Async) {
                Ok(()) => self.metrics.committed(),
                Err(e) => tracing::warn!(error = %e, "offset commit failed; the next batch's commit will cover it"),
            }
        }
        self.metrics.batch(&summary, &messages, started.elapsed().as_secs_f64());
        self.last_commit = Some(offsets);
        Ok(())
    }

    async fn process_transaction(&mut self, mapped: MappedBatch) -> Result<(), WorkerError> {
        let MappedBatch { batch, messages, summary, offsets, started } = mapped;
        let offsets = &offsets;
        let timeout = self.transaction_timeout();
        let attempt: Result<Summary, TransactionError> = async {
            self.step("beginning a transaction");
            self.sink.begin_transaction()?;
            let refs: Vec<&OutMessage> = messages.iter().collect();
            self.step("producing in the transaction");
            let deliveries = self.sink.send_all(&refs, self.message_deadline()).await;
            if let Some(Err(e)) = deliveries.into_iter().find(Result::is_err) {
                return Err(TransactionError::Undelivered(e));
            }
            let group = self.consumer().group_metadata().ok_or(TransactionError::NoGroupMetadata)?;
            let give_up_at = Instant::now() + self.options.delivery_timeout;
            loop {
                self.step("committing the transaction");
                let started = Instant::now();
                let committed =
                    tokio::task::block_in_place(|| self.sink.commit_transaction_with_offsets(offsets, &group, timeout));
                tracing::debug!(
                    ms = started.elapsed().as_millis() as u64,
                    ok = committed.is_ok(),
                    "transaction commit"
                );
                match committed {
                    Err(TransactionError::Retriable(e)) if Instant::now() < give_up_at => {
                        tracing::warn!(error = %e, "transaction commit will be retried");
                    }
                    other => return other.map(|()| summary),
                }
            }
        }
        .await;
        match attempt {
            Ok(summary) => {
                self.totals.add(&summary);
                self.metrics.committed();
                self.metrics.batch(&summary, &messages, started.elapsed().as_secs_f64());
                self.failing_since = None;
                Ok(())
            }
            Err(TransactionError::Fatal(e)) => Err(WorkerError::Transaction(TransactionError::Fatal(e))),
            Err(e) => {
                // Abort, and go back to polling from the batch's first records: the consumer may
                // have to rejoin the group (its membership is what the offsets are committed
                // under), which only happens while it is polled.
                tracing::warn!(error = %e, "transaction aborted; the batch will be consumed and run again");
                self.totals.retried_batches += 1;
                self.metrics.transaction_aborted();
                self.step("aborting the transaction");
                let started = Instant::now();
                tokio::task::block_in_place(|| self.sink.abort_transaction(timeout))
                    .map_err(WorkerError::Transaction)?;
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "transaction aborted");
                self.step("rewinding");
                self.metrics.released(batch.len());
                self.rewind(&batch);
                let since = *self.failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.options.delivery_timeout {
                    return Err(WorkerError::Transaction(e));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(())
            }
        }
    }

    /// Moves the consumer back to the first record of `batch` in each of its partitions (those
    /// still assigned; a partition that moved elsewhere restarts from its committed offset).
    fn rewind(&self, batch: &[Input]) {
        let mut first: HashMap<(&str, i32), i64> = HashMap::new();
        for i in batch {
            if let Some(o) = i.source.offset {
                let e = first.entry((i.source.topic.as_str(), i.source.partition)).or_insert(o);
                *e = (*e).min(o);
            }
        }
        for ((topic, partition), offset) in first {
            if let Err(e) = self.consumer().seek(topic, partition, Offset::Offset(offset), Duration::from_secs(5)) {
                tracing::info!(topic, partition, offset, error = %e, "not rewound (the partition restarts from its committed offset)");
            }
        }
    }

    fn report_progress(&self, last: &mut (Instant, u64)) {
        let seconds = last.0.elapsed().as_secs_f64();
        let rate = (self.totals.received - last.1) as f64 / seconds.max(1e-9);
        let lag = self.consumer().context().lag.lock().expect("not poisoned").clone();
        let mut lag: Vec<_> = lag.into_iter().collect();
        lag.sort();
        let lag_text = lag.iter().map(|((t, p), l)| format!("{t}-{p}:{l}")).collect::<Vec<_>>().join(",");
        tracing::info!(
            records_per_s = rate.round() as u64, received = self.totals.received, ok = self.totals.ok,
            failed = self.totals.failed, skipped = self.totals.skipped, lag = %lag_text, "progress"
        );
        *last = (Instant::now(), self.totals.received);
    }
}

/// Maps a batch on the runtime's blocking pool, in both modes: mapping is CPU work that would
/// otherwise hold an async thread, and with it the consumer's wake-ups and the heartbeat.
fn map_on_blocking_thread(
    pipeline: &Arc<Pipeline>,
    pass_through: bool,
    mut batch: Vec<Input>,
    offsets: TopicPartitionList,
    schemas: crate::format::BatchSchemas,
) -> tokio::task::JoinHandle<MappedBatch> {
    let pipeline = Arc::clone(pipeline);
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        let (messages, summary) = route(&pipeline, pass_through, &mut batch, &schemas);
        MappedBatch { batch, messages, summary, offsets, started }
    })
}

/// The messages a retry sends again, in their original order: for each destination topic, every
/// message from its first undelivered one on, delivered or not. Sending only the undelivered ones
/// would put them after later messages of the same partition that did arrive; sending the rest
/// of the topic again keeps the last copy of each message in order (the copies in between are
/// the duplicates at-least-once allows).
fn to_resend<'m>(sent: &[&'m OutMessage], deliveries: &[Delivery]) -> Vec<&'m OutMessage> {
    let mut failed_topics: Vec<&str> = Vec::new();
    let mut resend = Vec::new();
    for (message, delivery) in sent.iter().zip(deliveries) {
        let topic = message.topic.as_str();
        if delivery.is_err() && !failed_topics.contains(&topic) {
            failed_topics.push(topic);
        }
        if failed_topics.contains(&topic) {
            resend.push(*message);
        }
    }
    resend
}

/// Maps and routes a batch into the messages to produce. In pass-through mode the values are
/// moved out of the batch (only its positions are needed afterwards), not copied.
fn route(
    pipeline: &Pipeline,
    pass_through_only: bool,
    batch: &mut [Input],
    schemas: &crate::format::BatchSchemas,
) -> (Vec<OutMessage>, Summary) {
    if pass_through_only {
        let messages: Vec<OutMessage> =
            batch.iter_mut().filter_map(|i| pass_through(i, &pipeline.router().topic_ok)).collect();
        let summary = Summary {
            received: batch.len(),
            ok: messages.len(),
            skipped: batch.len() - messages.len(),
            ..Summary::default()
        };
        return (messages, summary);
    }
    let (routed, summary) = pipeline.route_batch_in(batch, schemas);
    let mut messages = Vec::with_capacity(routed.len());
    for r in routed {
        r.append_to(&mut messages);
    }
    (messages, summary)
}

/// A batch mapped on a blocking thread, ready for the producer.
struct MappedBatch {
    batch: Vec<Input>,
    messages: Vec<OutMessage>,
    summary: Summary,
    offsets: TopicPartitionList,
    /// When its mapping started (the batch-duration histogram runs from here to the commit).
    started: Instant,
}

/// A batch handed to the producer whose acknowledgements have not been awaited yet.
struct InFlight {
    mapped: MappedBatch,
    pending: Vec<PendingDelivery>,
}

fn undeliverable(
    undelivered: &[(&OutMessage, SinkError)],
    waited: Duration,
    batch: &[Input],
    first: &OutMessage,
) -> WorkerError {
    // The committed position stays before the batch's first record of that partition.
    let offset = batch
        .iter()
        .filter(|i| i.source.topic == first.origin.topic && i.source.partition == first.origin.partition)
        .filter_map(|i| i.source.offset)
        .min()
        .unwrap_or_default();
    WorkerError::Undeliverable {
        count: undelivered.len(),
        seconds: waited.as_secs(),
        first: undelivered[0].1.clone(),
        topic: first.origin.topic.clone(),
        partition: first.origin.partition,
        offset,
    }
}

fn push(batch: &mut Vec<Input>, received: Result<BorrowedMessage<'_>, rdkafka::error::KafkaError>) {
    match received {
        Ok(m) => batch.push(input_of(&m)),
        // Consumer errors (a broker going away, a partition moving) are reported by librdkafka and
        // retried by it; no record is lost by skipping the error itself.
        Err(e) => tracing::warn!(error = %e, "consumer error"),
    }
}

/// A consumed record as the pipeline's input (the same shape the Lambda event decoder gives). A
/// header name that is not UTF-8 is read as Kafka's Java clients read it: each invalid sequence
/// becomes U+FFFD.
pub fn input_of(m: &BorrowedMessage<'_>) -> Input {
    let headers = crate::sink::kafka::record_headers(m)
        .map(|(name, value)| (String::from_utf8_lossy(name).into_owned(), value.to_vec()))
        .collect();
    let (timestamp, timestamp_type) = match m.timestamp() {
        Timestamp::NotAvailable => (None, None),
        Timestamp::CreateTime(t) => (Some(t), Some("CREATE_TIME".to_string())),
        Timestamp::LogAppendTime(t) => (Some(t), Some("LOG_APPEND_TIME".to_string())),
    };
    Input {
        source: Source {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: Some(m.offset()),
            timestamp,
            timestamp_type,
            key: m.key().map(<[u8]>::to_vec),
            headers,
            // Only Lambda events group records (`topic-partition`); partial-batch answers use it.
            group: String::new(),
            // A consumed value keeps its framing; the schema id is read from it.
            value_schema_id: None,
            value_format: None,
        },
        payload: match m.payload() {
            None => Payload::Tombstone,
            Some(p) => Payload::Value(p.to_vec()),
        },
    }
}

/// The next offset to consume per partition of the batch: what a commit records.
fn next_offsets(batch: &[Input]) -> TopicPartitionList {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for i in batch {
        if let Some(o) = i.source.offset {
            let e = next.entry((i.source.topic.as_str(), i.source.partition)).or_insert(o + 1);
            *e = (*e).max(o + 1);
        }
    }
    let mut tpl = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).expect("a valid offset");
    }
    tpl
}

fn pass_through(input: &mut Input, topic_ok: &str) -> Option<OutMessage> {
    match &mut input.payload {
        Payload::Value(v) => Some(OutMessage {
            destination: Destination::Ok,
            topic: topic_ok.to_string(),
            key: input.source.key.clone(),
            payload: std::mem::take(v),
            headers: input.source.headers.iter().map(|(k, v)| (k.clone().into(), v.clone())).collect(),
            origin: crate::destination::Origin::of(&input.source),
            failure: None,
            output: None,
        }),
        _ => None,
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing the batch in hand, committing, leaving the group"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing the batch in hand, committing, leaving the group"),
    }
}

/// The offsets of the partitions this member still owns. A batch's partitions may have been
/// revoked while it was delivered; committing them would race their new owner's commits, and a
/// late one could move a partition's committed offset back (duplicates on its next restart).
fn still_assigned(offsets: &TopicPartitionList, assignment: &TopicPartitionList) -> TopicPartitionList {
    let assigned = assignment.elements();
    let owned: Vec<(&str, i32)> = assigned.iter().map(|e| (e.topic(), e.partition())).collect();
    let mut kept = TopicPartitionList::new();
    for e in offsets.elements() {
        if owned.contains(&(e.topic(), e.partition()))
            && kept.add_partition_offset(e.topic(), e.partition(), e.offset()).is_err()
        {
            tracing::warn!(topic = e.topic(), partition = e.partition(), "an offset that cannot be committed");
        }
    }
    kept
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_the_partitions_still_owned_are_committed() {
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("orders", 0, Offset::Offset(10)).unwrap();
        offsets.add_partition_offset("orders", 1, Offset::Offset(20)).unwrap();
        offsets.add_partition_offset("refunds", 0, Offset::Offset(30)).unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition("orders", 1);
        assignment.add_partition("refunds", 0);
        assignment.add_partition("refunds", 1);
        let kept = still_assigned(&offsets, &assignment);
        let kept: Vec<(String, i32, Offset)> =
            kept.elements().iter().map(|e| (e.topic().to_owned(), e.partition(), e.offset())).collect();
        assert_eq!(kept, [("orders".to_owned(), 1, Offset::Offset(20)), ("refunds".to_owned(), 0, Offset::Offset(30))]);
        assert_eq!(still_assigned(&offsets, &TopicPartitionList::new()).count(), 0);
    }
    use super::*;

    fn input(topic: &str, partition: i32, offset: i64) -> Input {
        Input {
            source: Source { topic: topic.into(), partition, offset: Some(offset), ..Source::default() },
            payload: Payload::Tombstone,
        }
    }

    fn message(topic: &str, offset: i64) -> OutMessage {
        OutMessage {
            destination: Destination::Ok,
            topic: topic.into(),
            key: None,
            payload: offset.to_string().into_bytes(),
            headers: Vec::new(),
            origin: crate::destination::Origin {
                group: "in-0".into(),
                topic: "in".into(),
                partition: 0,
                offset: Some(offset),
            },
            failure: None,
            output: None,
        }
    }

    #[test]
    fn a_retry_sends_again_everything_after_the_first_failure_of_each_topic_in_order() {
        let messages = [message("ok", 1), message("fail", 2), message("ok", 3), message("ok", 4), message("fail", 5)];
        let sent: Vec<&OutMessage> = messages.iter().collect();
        let lost = || Err(SinkError::Timeout { topic: "ok".into() });
        // The message at offset 3 failed while 4, after it in the same topic, arrived: 3 alone
        // sent again would land after 4.
        let deliveries = vec![Ok(()), Ok(()), lost(), Ok(()), Ok(())];
        let again: Vec<i64> = to_resend(&sent, &deliveries).iter().map(|m| m.origin.offset.unwrap()).collect();
        assert_eq!(again, vec![3, 4], "the fail topic, fully delivered, is not sent again");
        let deliveries = vec![lost(), Ok(()), Ok(()), Ok(()), lost()];
        let again: Vec<i64> = to_resend(&sent, &deliveries).iter().map(|m| m.origin.offset.unwrap()).collect();
        assert_eq!(again, vec![1, 3, 4, 5]);
        assert!(to_resend(&sent, &[Ok(()), Ok(()), Ok(()), Ok(()), Ok(())]).is_empty());
    }

    /// Mapping holds no async thread: on a one-thread runtime, another task runs while a large
    /// batch is being mapped.
    #[test]
    fn batches_are_mapped_off_the_async_threads() {
        let (_, plan) = crate::mapping_file::load_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mappings/orders-to-billing.yaml"
        )))
        .unwrap();
        let router = crate::destination::Router {
            topic_ok: "ok".into(),
            topic_fail: "fail".into(),
            function_name: "f".into(),
            function_env: "test".into(),
        };
        let mut pipeline = Pipeline::new(plan, router);
        pipeline.threads = 1;
        let pipeline = Arc::new(pipeline);
        let record = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/order.json")).unwrap();
        let batch: Vec<Input> =
            (0..20_000).map(|i| Input { payload: Payload::Value(record.clone()), ..input("in", 0, i) }).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let (mapped_at, ticked_at, ok) = runtime.block_on(async {
            let ticker = tokio::spawn(async { Instant::now() });
            let offsets = next_offsets(&batch);
            let mapped = map_on_blocking_thread(&pipeline, false, batch, offsets, Default::default()).await.unwrap();
            (Instant::now(), ticker.await.unwrap(), mapped.summary.ok)
        });
        assert_eq!(ok, 20_000);
        assert!(ticked_at < mapped_at, "the other task waited for the mapping to finish");
    }

    #[test]
    fn heartbeat_reports_the_step_that_outlasts_the_limit() {
        let heartbeat = Heartbeat::new();
        heartbeat.beat("committing the transaction");
        assert_eq!(heartbeat.stalled(Duration::from_secs(5)), None, "a fresh step is not stalled");
        std::thread::sleep(Duration::from_millis(30));
        let (step, for_how_long) = heartbeat.stalled(Duration::from_millis(10)).expect("stalled");
        assert_eq!(step, "committing the transaction");
        assert!(for_how_long >= Duration::from_millis(30));
        heartbeat.beat("polling");
        assert_eq!(heartbeat.stalled(Duration::from_millis(10)), None, "a new step resets the clock");
    }

    #[test]
    fn commits_the_offset_after_the_last_record_of_each_partition() {
        let batch = [input("a", 0, 5), input("a", 1, 9), input("a", 0, 7), input("b", 0, 1), input("a", 0, 6)];
        let tpl = next_offsets(&batch);
        let mut got: Vec<(String, i32, Offset)> =
            tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition(), e.offset())).collect();
        got.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
        assert_eq!(
            got,
            vec![
                ("a".into(), 0, Offset::Offset(8)),
                ("a".into(), 1, Offset::Offset(10)),
                ("b".into(), 0, Offset::Offset(2))
            ]
        );
    }

    #[test]
    fn pass_through_copies_values_and_skips_tombstones() {
        let mut i = input("a", 0, 1);
        assert!(pass_through(&mut i, "ok").is_none());
        i.payload = Payload::Value(b"{}".to_vec());
        i.source.key = Some(b"k".to_vec());
        let m = pass_through(&mut i, "ok").expect("a message");
        assert_eq!((m.topic.as_str(), m.payload.as_slice(), m.key.as_deref()), ("ok", &b"{}"[..], Some(&b"k"[..])));
    }
}
