//! What the broker benches share: the reference orders and their producer, topics, a worker run
//! watched by its commits, medians.

use std::time::{Duration, Instant};

use lambda_stream::worker::{Totals, Worker};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The sum of the group's committed offsets over `partitions` partitions of `topic`.
pub fn committed(consumer: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let Ok(got) = consumer.committed_offsets(tpl, Duration::from_secs(5)) else { return 0 };
    got.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum()
}

/// Watches `group`'s commits on `input` until `records` are committed, then sends `stop`; returns
/// the rate from the first commit seen to the last (the group join is left out).
pub fn watch_commits(
    brokers: &str,
    group: &str,
    input: &str,
    partitions: i32,
    records: i64,
    stop: tokio::sync::oneshot::Sender<()>,
) -> f64 {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let watch_started = Instant::now();
    let mut first: Option<(Instant, i64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = committed(&consumer, input, partitions);
        if done > 0 && first.is_none() {
            first = Some((Instant::now(), done));
        }
        if done >= records {
            let (t0, c0) = first.unwrap();
            let _ = stop.send(());
            // A small run can finish before the first commit is seen: then the only interval
            // there is runs from the start (group join included, so slower).
            let (count, since) = if done > c0 { (done - c0, t0) } else { (done, watch_started) };
            return count as f64 / since.elapsed().as_secs_f64().max(1e-6);
        }
        assert!(Instant::now() < deadline, "the worker did not finish ({done} of {records} committed)");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let new: Vec<NewTopic> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
}

pub async fn delete_topics(brokers: &str, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let _ = admin.delete_topics(topics, &AdminOptions::new()).await;
}

/// The reference order (`tests/fixtures/order.json`, minified), numbered: every record its own
/// order id, as in a real stream — the mapped output is keyed by it, and one id for all would put
/// every mapped record in a single partition of the ok topic.
pub struct NumberedOrders {
    value: Vec<u8>,
    id_at: usize,
}

impl NumberedOrders {
    pub fn new() -> Self {
        const ORDER_ID: &[u8] = b"3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f";
        let order = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/order.json")).unwrap();
        let order: serde_json::Value = serde_json::from_slice(&order).unwrap();
        let value = serde_json::to_vec(&order).unwrap();
        let id_at = value.windows(ORDER_ID.len()).position(|w| w == ORDER_ID).expect("the fixture's order id");
        NumberedOrders { value, id_at }
    }

    /// The order numbered `i`: the id's last 12 hex digits count the records.
    pub fn nth(&mut self, i: i64) -> &[u8] {
        self.value[self.id_at + 24..self.id_at + 36].copy_from_slice(format!("{i:012x}").as_bytes());
        &self.value
    }
}

/// A producer for filling the benches' topics fast: large lz4 batches.
pub fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

/// Sends `record`, waiting while the producer's queue is full.
pub fn send<K: rdkafka::message::ToBytes + ?Sized>(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, K, [u8]>,
) {
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Runs `worker` until `records` records of `input` are committed by `group`; its totals, and its
/// rate from the group's first commit to the last record's ([`watch_commits`]).
pub async fn run_until_committed(
    worker: &mut Worker,
    brokers: &str,
    group: &str,
    input: &str,
    partitions: i32,
    records: i64,
) -> (Totals, f64) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let (brokers, group, input) = (brokers.to_string(), group.to_string(), input.to_string());
        tokio::task::spawn_blocking(move || watch_commits(&brokers, &group, &input, partitions, records, stop))
    };
    let totals = worker
        .run(async {
            let _ = stopped.await;
        })
        .await
        .expect("worker run");
    (totals, watcher.await.unwrap())
}

/// A `lambda-stream run` child process, stopped as a supervisor stops it (SIGTERM, then waited
/// for) and killed if it is dropped still running.
pub struct WorkerProcess(pub std::process::Child);

#[allow(dead_code)]
impl WorkerProcess {
    /// Sends SIGTERM and waits for the exit; `None` when it has not exited within 20 s.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
