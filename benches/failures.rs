//! `scripts/bench failures` (starts the local broker, then `cargo bench --bench failures`).
//!
//! How fast `lambda-stream failures` reads a fail topic: N fail envelopes (the function's own, for
//! the reference order with a CPF error, ~2 KB each) on one partition, read and triaged by the
//! binary from the beginning to the end. Envelopes per second of the whole run (process start,
//! metadata, reading, triage, output). Without `--bench` a small run as a check.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let n: usize = if quick { 2_000 } else { 500_000 };
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let topic = format!("fb-fail-{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        admin
            .create_topics(&[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new())
            .await
            .unwrap();
    });
    // One envelope as the function writes it: the reference order failing its CPF check.
    let root = env!("CARGO_MANIFEST_DIR");
    let order = std::fs::read_to_string(format!("{root}/tests/fixtures/order.json")).unwrap();
    let order: serde_json::Value = serde_json::from_str(&order).unwrap();
    let mut bad = order.clone();
    bad["customer"]["document"] = "123.456.789-00".into();
    let (_, plan) = lambda_stream::mapping_file::load_file(std::path::Path::new(&format!(
        "{root}/mappings/orders-to-billing.yaml"
    )))
    .unwrap();
    let router = lambda_stream::destination::Router {
        topic_ok: "ok".into(),
        topic_fail: topic.clone(),
        function_name: "bench".into(),
        function_env: "bench".into(),
    };
    let input = lambda_stream::record::Input {
        source: lambda_stream::record::Source { topic: "orders".into(), offset: Some(1), ..Default::default() },
        payload: lambda_stream::record::Payload::Value(serde_json::to_vec(&bad).unwrap()),
    };
    let envelope = router.route(&plan, &input).first().expect("a fail message").payload.clone();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for _ in 0..n {
        let mut record = BaseRecord::<(), _>::to(&topic).payload(&envelope);
        while let Err((_, r)) = producer.send(record) {
            record = r;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    eprintln!("produced {n} envelopes of {} bytes", envelope.len());
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["failures", "--brokers", &brokers, "--topic", &topic, "--format", "json"])
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let triage: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(triage["read"].as_u64(), Some(n as u64));
    assert_eq!(triage["by_rule"][0]["count"].as_u64(), Some(n as u64), "{triage}");
    println!(
        "failures: {n} envelopes of {} bytes read and triaged in {secs:.2} s: {:.0} envelopes/s",
        envelope.len(),
        n as f64 / secs
    );
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let _ = admin.delete_topics(&[&topic], &AdminOptions::new()).await;
    });
}
