//! Talking to the real local Kafka broker from tests (never a mock): topics, consuming, events.
//!
//! The broker is started by `scripts/test` (through `scripts/kafka/run start`). A test that needs it
//! fails — never skips — when it is not there, saying how to start it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

pub fn bootstrap() -> String {
    let servers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let first = servers.split(',').next().unwrap_or_default().to_string();
    if std::net::TcpStream::connect_timeout(
        &first.parse().expect("KAFKA_BOOTSTRAP is host:port"),
        Duration::from_secs(2),
    )
    .is_err()
    {
        panic!(
            "no Kafka broker at {servers}: start the local one with `scripts/kafka/run start` (scripts/test does it for you)"
        );
    }
    servers
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub async fn create_topics(topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin client");
    let new: Vec<NewTopic> =
        topics.iter().map(|(name, parts)| NewTopic::new(name, *parts, TopicReplication::Fixed(1))).collect();
    let results = admin
        .create_topics(&new, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Reads `expected` messages from every partition of `topic` on the local broker (from the
/// start), or whatever arrived within `timeout`, plus a short grace period to catch any extra.
pub fn consume(topic: &str, partitions: i32, expected: usize, timeout: Duration) -> Vec<OwnedMessage> {
    consume_from(&bootstrap(), topic, partitions, expected, timeout, Duration::from_millis(500))
}

/// [`consume`] against any broker, with a `read_committed` reader: once `expected` messages are
/// in, it keeps reading for `grace` so that an extra (duplicate) message is seen too.
pub fn consume_from(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
    grace: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_topic("test-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut grace_until: Option<Instant> = None;
    while started.elapsed() < timeout && grace_until.is_none_or(|g| Instant::now() < g) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(m.detach()),
            // A broker restarting mid-read: librdkafka retries; the count tells what arrived.
            Some(Err(e)) => eprintln!("reader of {topic}: {e}"),
            None => {}
        }
        if out.len() >= expected && grace_until.is_none() {
            grace_until = Some(Instant::now() + grace);
        }
    }
    out
}

/// `group`'s committed offsets for partitions `0..partitions` of `topic`.
pub fn try_committed(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<Offset>, rdkafka::error::KafkaError> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok((0..partitions).map(|p| got.find_partition(topic, p).unwrap().offset()).collect())
}

pub fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    let headers = m.headers()?;
    headers.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned())
}

pub fn json_payload(m: &OwnedMessage) -> Value {
    serde_json::from_slice(m.payload().expect("a payload")).expect("JSON payload")
}

pub fn key_text(m: &OwnedMessage) -> Option<String> {
    m.key().map(|k| String::from_utf8_lossy(k).into_owned())
}

/// One event record, as Lambda would send it.
pub fn event_record(topic: &str, partition: i32, offset: i64, key: Option<&str>, value: Option<&[u8]>) -> Value {
    let mut r = json!({"topic": topic, "partition": partition, "offset": offset, "timestamp": 1_764_000_000_000_i64 + offset, "timestampType": "CREATE_TIME"});
    if let Some(k) = key {
        r["key"] = json!(BASE64.encode(k));
    }
    if let Some(v) = value {
        r["value"] = json!(BASE64.encode(v));
    }
    r
}

/// An MSK event holding `records` grouped by source partition.
pub fn msk_event(topic: &str, records: Vec<Value>) -> Value {
    let mut groups = serde_json::Map::new();
    for r in records {
        let key = format!("{topic}-{}", r["partition"]);
        groups.entry(key).or_insert_with(|| json!([])).as_array_mut().unwrap().push(r);
    }
    json!({"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:sa-east-1:123456789012:cluster/test/x", "records": groups})
}

/// Produces one record whose header names are raw bytes, waiting for its delivery: rdkafka's safe
/// API only takes `&str` names, and a name that is not UTF-8 is exactly what some tests need
/// (any producer can write one; the broker does not check).
pub fn produce_raw_headers(topic: &str, key: &[u8], value: &[u8], headers: &[(&[u8], &[u8])]) {
    use rdkafka::bindings as rd;
    use rdkafka::producer::{BaseProducer, Producer};
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("producer");
    let topic = std::ffi::CString::new(topic).unwrap();
    let vu = |vtype, u| rd::rd_kafka_vu_t { vtype, u };
    let mem = |bytes: &[u8]| rd::rd_kafka_vu_s__bindgen_ty_1 {
        mem: rd::rd_kafka_vu_s__bindgen_ty_1__bindgen_ty_1 { ptr: bytes.as_ptr() as *mut _, size: bytes.len() },
    };
    // SAFETY: every pointer handed to librdkafka outlives the call (it copies key, value and
    // names: `RD_KAFKA_MSG_F_COPY`); the header list becomes the message's once produced.
    unsafe {
        let list = rd::rd_kafka_headers_new(headers.len());
        for (name, value) in headers {
            let added = rd::rd_kafka_header_add(
                list,
                name.as_ptr().cast(),
                name.len() as isize,
                value.as_ptr().cast(),
                value.len() as isize,
            );
            assert_eq!(added, rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
        }
        let vus = [
            vu(rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_TOPIC, rd::rd_kafka_vu_s__bindgen_ty_1 { cstr: topic.as_ptr() }),
            vu(rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_KEY, mem(key)),
            vu(rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_VALUE, mem(value)),
            vu(rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_HEADERS, rd::rd_kafka_vu_s__bindgen_ty_1 { headers: list }),
            vu(
                rd::rd_kafka_vtype_t::RD_KAFKA_VTYPE_MSGFLAGS,
                rd::rd_kafka_vu_s__bindgen_ty_1 { i: rd::RD_KAFKA_MSG_F_COPY },
            ),
        ];
        let error = rd::rd_kafka_produceva(producer.client().native_ptr(), vus.as_ptr(), vus.len());
        assert!(error.is_null(), "the record is accepted for sending");
    }
    producer.flush(Duration::from_secs(10)).expect("the record is delivered");
}
