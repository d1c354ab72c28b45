//! `scripts/bench lambda_event` (starts the local broker, then `cargo bench --bench lambda_event`).
//!
//! 1. A ~6 MB MSK event (3,000 records of the 1.3 KB reference order, base64) handled end to end by
//!    the Lambda handler into the local broker (`acks=all`), against a pass-through baseline that
//!    decodes the same event and produces the same values unmapped with the same producer. Rounds
//!    alternate the two; medians are reported.
//! 2. Cold start of the real binary in Lambda mode: process start → ready (`init_ms`), and the
//!    wall time from spawn to the `ready` log line.
//! 3. Peak RSS of the binary handling the 6 MB event (`process --event --brokers`, the same
//!    handler code), read from the process's own `VmHWM`.
//! 4. The largest event Lambda accepts (just under 6 MB of reference records) through a real Lambda
//!    Runtime API: the binary behind AWS's Runtime Interface Emulator, warm invocations; the emulator's `REPORT` Duration (everything the runtime does:
//!    receiving and decoding the event, the handler, the response) against the handler's own
//!    `duration_ms` (map, route, deliver). Their ratio is the invocation's overhead.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_stream::destination::{Destination, Origin, OutMessage, Router};
use lambda_stream::lambda::Function;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::record::{self, Payload};
use lambda_stream::sink::kafka::KafkaSink;
use lambda_stream::sink::{ProducerSettings, Sink};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::{Value, json};

#[path = "../tests/emulator.rs"]
mod emulator;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (records, rounds) = if quick { (60, 1) } else { (3000, 9) };
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    let event = build_event(records);
    let event_bytes = serde_json::to_vec(&event).unwrap();
    let tag = std::process::id();
    let (ok, fail, pass) = (format!("bench-ok-{tag}"), format!("bench-fail-{tag}"), format!("bench-pass-{tag}"));
    runtime.block_on(create_topics(&brokers, &[(&ok, 3), (&fail, 1), (&pass, 3)]));

    let (_, plan) =
        lambda_stream::mapping_file::load_file(&std::path::Path::new(ROOT).join("mappings/orders-to-billing.yaml"))
            .unwrap();
    let function = Function {
        pipeline: Pipeline::new(
            plan,
            Router {
                topic_ok: ok.clone(),
                topic_fail: fail.clone(),
                function_name: "bench".into(),
                function_env: "bench".into(),
            },
        ),
        sink: KafkaSink::new(&ProducerSettings::new(&brokers)).unwrap(),
        partial_batch: false,
        delivery_margin: Duration::from_millis(500),
    };
    let baseline_sink = KafkaSink::new(&ProducerSettings::new(&brokers)).unwrap();

    let mut handler_ms = Vec::new();
    let mut baseline_ms = Vec::new();
    let mut metrics_ms = Vec::new();
    let metrics =
        lambda_stream::telemetry::MetricsSettings { namespace: "lambda-stream".into(), function: "bench".into() };
    for round in 0..rounds + 1 {
        let payload = std::str::from_utf8(&event_bytes).unwrap();
        let started = Instant::now();
        let report =
            runtime.block_on(function.run_event(payload, Instant::now() + Duration::from_secs(60))).expect("an event");
        let summary = function.respond(&report).expect("delivered");
        let handler = started.elapsed().as_secs_f64() * 1000.0;
        // What metrics on adds to an invocation: the batch's EMF documents, built and written.
        let started = Instant::now();
        let lines = lambda_stream::telemetry::emf_lines(&report, &metrics, Default::default());
        std::io::Write::write_all(&mut std::io::sink(), std::hint::black_box(lines.as_bytes()))
            .expect("a sink takes all");
        let emf = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(summary["ok"].as_u64(), Some(records as u64), "every reference record maps");

        let started = Instant::now();
        runtime.block_on(pass_through(&baseline_sink, &event_bytes, &pass));
        let baseline = started.elapsed().as_secs_f64() * 1000.0;
        if round > 0 {
            // Round 0 warms up connections and metadata for both.
            handler_ms.push(handler);
            baseline_ms.push(baseline);
            metrics_ms.push(emf);
        }
    }
    let (h, b) = (median(&mut handler_ms), median(&mut baseline_ms));
    println!("event: {} records, {:.2} MB; {} rounds", records, event_bytes.len() as f64 / 1e6, rounds);
    println!(
        "lambda handler (decode, map, route, produce, acks=all): median {h:.1} ms ({:.0} records/s)",
        records as f64 / h * 1000.0
    );
    println!(
        "pass-through baseline (decode, produce unmapped):       median {b:.1} ms ({:.0} records/s)",
        records as f64 / b * 1000.0
    );
    println!("handler / baseline time: {:.2}x", h / b);
    let m = median(&mut metrics_ms);
    println!("metrics on (EMF documents of the batch): median {:.3} ms, {:.2}% of the handler time", m, m / h * 100.0);

    // Lambda refuses invocation payloads over 6 MB (6,291,456 bytes; the emulator cuts them
    // there): the largest event of reference records that fits.
    let (mut fitting, mut fitting_event) = (records, event_bytes.clone());
    while fitting_event.len() > 6_291_456 {
        fitting -= 10;
        fitting_event = serde_json::to_vec(&build_event(fitting)).unwrap();
    }
    behind_the_emulator(&brokers, &ok, &fail, &fitting_event, fitting, rounds);
    if !quick {
        let path = std::env::temp_dir().join(format!("lambda-stream-bench-event-{tag}.json"));
        std::fs::write(&path, &event_bytes).unwrap();
        cold_start(&brokers, &ok, &fail);
        peak_rss(&brokers, &ok, &fail, &path);
        let _ = std::fs::remove_file(path);
    }
}

/// 3,000 (or `n`) reference orders over three partitions, each with its own order id.
fn build_event(n: usize) -> Value {
    let order: Value =
        serde_json::from_slice(&std::fs::read(format!("{ROOT}/tests/fixtures/order.json")).unwrap()).unwrap();
    let mut groups = serde_json::Map::new();
    for i in 0..n {
        let mut o = order.clone();
        let id = format!("{:08x}-8b7d-4c6e-9f00-{:012x}", i, i * 7919);
        o["order"]["id"] = json!(id);
        let value = serde_json::to_vec(&o).unwrap();
        let partition = i % 3;
        let record = json!({
            "topic": "orders.checkout.v1", "partition": partition, "offset": i / 3, "timestamp": 1_764_000_000_000_i64,
            "timestampType": "CREATE_TIME", "key": BASE64.encode(&id), "value": BASE64.encode(&value),
            "headers": [{"traceparent": b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()}],
        });
        groups
            .entry(format!("orders.checkout.v1-{partition}"))
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(record);
    }
    json!({"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:sa-east-1:123456789012:cluster/bench/x", "records": groups})
}

/// The baseline: the same event decoding and producer, values sent as they came.
async fn pass_through(sink: &KafkaSink, event: &[u8], topic: &str) {
    let event = record::decode_event_text(std::str::from_utf8(event).unwrap()).unwrap();
    let messages: Vec<OutMessage> = event
        .inputs
        .into_iter()
        .filter_map(|input| match input.payload {
            Payload::Value(v) => Some(OutMessage {
                destination: Destination::Ok,
                topic: topic.to_string(),
                key: input.source.key.clone(),
                payload: v,
                headers: input.source.headers.iter().map(|(k, v)| (k.clone().into(), v.clone())).collect(),
                origin: Origin::of(&input.source),
                failure: None,
                output: None,
            }),
            _ => None,
        })
        .collect();
    let refs: Vec<&OutMessage> = messages.iter().collect();
    let results = sink.send_all(&refs, Instant::now() + Duration::from_secs(60)).await;
    assert!(results.iter().all(Result::is_ok), "baseline delivered");
}

/// Warm invocations behind aws-lambda-rie: the emulator's REPORT Duration against the handler's
/// own `duration_ms` from the same invocation's answer.
fn behind_the_emulator(brokers: &str, ok: &str, fail: &str, event: &[u8], records: usize, rounds: usize) {
    let env = [
        ("LAMBDA_ENV", "bench".to_string()),
        ("ENVIRONMENTS_FILE", "none".into()),
        ("MSK_SERVERS", brokers.into()),
        ("MAPPING_FILE", format!("{ROOT}/mappings/orders-to-billing.yaml")),
        ("TOPIC_OK", ok.into()),
        ("TOPIC_FAIL", fail.into()),
        ("RUST_LOG", "warn".into()),
    ];
    let function = emulator::Emulated::start(std::path::Path::new(env!("CARGO_BIN_EXE_lambda-stream")), &env);
    let (mut report_ms, mut handler_ms, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds + 1 {
        let (status, body) = function.invoke(event);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let summary: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(summary["ok"].as_u64(), Some(records as u64), "{summary}");
        let handler = summary["duration_ms"].as_f64().unwrap().max(1.0);
        // The emulator writes its REPORT line once the invocation is answered.
        let started = Instant::now();
        let report = loop {
            let durations = report_durations(&function.log());
            if durations.len() > round {
                break durations[round];
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no REPORT line in:\n{}", function.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        if round > 0 {
            // Round 0 is the cold start.
            report_ms.push(report);
            handler_ms.push(handler);
            ratios.push(report / handler);
        }
    }
    println!("behind aws-lambda-rie: {records} records, {:.2} MB", event.len() as f64 / 1e6);
    println!(
        "behind aws-lambda-rie, warm: REPORT Duration median {:.1} ms, handler duration_ms median {:.1} ms; \
         REPORT / handler median {:.2}x ({} invocations)",
        median(&mut report_ms),
        median(&mut handler_ms),
        median(&mut ratios),
        ratios.len()
    );
}

/// `Duration: 12.34 ms` of each emulator REPORT line, in order.
fn report_durations(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("REPORT RequestId"))
        .filter_map(|l| {
            let rest = &l[l.find("\tDuration: ").or_else(|| l.find(" Duration: "))? + 11..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn cold_start(brokers: &str, ok: &str, fail: &str) {
    let mut init = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..15 {
        // Nothing listens on the runtime API port: the function gets as far as "ready", then we stop it.
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("LAMBDA_ENV", "bench")
            .env("ENVIRONMENTS_FILE", "none")
            .env("MSK_SERVERS", brokers)
            .env("MAPPING_FILE", format!("{ROOT}/mappings/orders-to-billing.yaml"))
            .env("TOPIC_OK", ok)
            .env("TOPIC_FAIL", fail)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let reader = BufReader::new(child.stderr.take().unwrap());
        for line in reader.lines() {
            let line = line.unwrap();
            if line.contains("\"ready\"") {
                wall.push(started.elapsed().as_secs_f64() * 1000.0);
                let doc: Value = serde_json::from_str(&line).unwrap();
                init.push(doc["fields"]["init_ms"].as_f64().unwrap());
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "cold start: init_ms (main → ready) median {:.2} ms, max {:.2} ms; spawn → ready line median {:.2} ms",
        median(&mut init.clone()),
        init.iter().cloned().fold(0.0, f64::max),
        median(&mut wall)
    );
}

fn peak_rss(brokers: &str, ok: &str, fail: &str, event: &std::path::Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["process", "--mapping", &format!("{ROOT}/mappings/orders-to-billing.yaml"), "--event"])
        .arg(event)
        .args(["--brokers", brokers, "--topic-ok", ok, "--topic-fail", fail])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("peak RSS")).unwrap_or_default();
    println!("6 MB event through the binary (process --event --brokers): {line}");
}

async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let new: Vec<NewTopic> = topics.iter().map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
