//! A mapping's `outputs:` on the real broker: the worker writes each record to the outputs its
//! content chooses, fan-out included, in one transaction per batch (`--exactly-once`) across every
//! output topic; a record no output can take goes to the fail topic (stage `route`); the metrics
//! count messages per output; and the CloudEvents it writes, binary and structured, are read back
//! by the CloudEvents Python SDK's Kafka protocol binding.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;

use crate::kafka_util::*;
use crate::registry_avro::python_lines;
use crate::util::TempFile;
use crate::worker::{WorkerProcess, scrape, topics};

/// The output topics of one test run.
struct OutputTopics {
    /// The regional topics are `<regional>.br` and `<regional>.us`.
    regional: String,
    audit: String,
    priority: String,
    br: String,
    us: String,
    /// Written only by the fixed mapping a replay runs.
    fr: String,
    rest: String,
}

impl OutputTopics {
    async fn create(prefix: &str, partitions: i32) -> Self {
        let regional = unique_topic(&format!("{prefix}-regional"));
        let t = OutputTopics {
            audit: unique_topic(&format!("{prefix}-audit")),
            priority: unique_topic(&format!("{prefix}-priority")),
            br: format!("{regional}.br"),
            us: format!("{regional}.us"),
            fr: format!("{regional}.fr"),
            rest: unique_topic(&format!("{prefix}-rest")),
            regional,
        };
        let all = [&t.audit, &t.priority, &t.br, &t.us, &t.fr, &t.rest];
        create_topics(&all.map(|topic| (topic.as_str(), partitions))).await;
        t
    }

    /// Four outputs: three chosen by `when`, one by a topic expression; audit fans out.
    fn mapping(&self) -> TempFile {
        self.mapping_with(&[&self.br, &self.us])
    }

    /// The mapping with a regional output over `regional` topics.
    fn mapping_with(&self, regional: &[&str]) -> TempFile {
        let text = format!(
            r#"version: 1
name: outputs-test
fields:
  - {{target: id, source: $.id, type: integer, required: true}}
  - {{target: amount, source: $.amount, type: integer, required: true}}
  - {{target: region, source: $.region, type: string}}
outputs:
  - {{name: audit, all: true, when: amount >= 900, topic: {audit}}}
  - name: priority
    when: amount >= 500
    topic: {priority}
    envelope: cloudevents
    type: com.example.order.priority
    source: {{expr: '"/orders/" + coalesce(region, "none")'}}
  - name: regional
    when: region != null && (region != "fr" || {with_fr})
    topic: '"{regional}." + region'
    topics: [{topics}]
    fields: [id, region]
  - name: rest
    when: region == null
    topic: {rest}
    envelope: cloudevents-structured
    type: com.example.order
    source: /orders
"#,
            regional = self.regional,
            with_fr = regional.contains(&self.fr.as_str()),
            topics = regional.join(", "),
            audit = self.audit,
            priority = self.priority,
            rest = self.rest,
        );
        TempFile::new(&format!("{}.yaml", unique_topic("outputs")), text.as_bytes())
    }
}

/// Input `i`: its amount and region, or `None` for an invalid record (→ fail, stage validate).
fn record(i: u64) -> Option<(u64, Option<&'static str>)> {
    if i % 50 == 49 {
        return None;
    }
    let region = [Some("br"), Some("us"), Some("fr"), None][(i % 4) as usize];
    Some(((i * 37) % 1000, region))
}

fn value(i: u64) -> String {
    match record(i) {
        None => format!(r#"{{"id": "x{i}"}}"#),
        Some((amount, Some(region))) => format!(r#"{{"id": {i}, "amount": {amount}, "region": "{region}"}}"#),
        Some((amount, None)) => format!(r#"{{"id": {i}, "amount": {amount}}}"#),
    }
}

/// The output names input `i` goes to, in order; empty for a record that fails.
fn expected_outputs(i: u64) -> Vec<&'static str> {
    let Some((amount, region)) = record(i) else { return Vec::new() };
    let mut outputs = Vec::new();
    if amount >= 900 {
        outputs.push("audit");
    }
    if amount >= 500 {
        outputs.push("priority");
    } else if matches!(region, Some("br" | "us")) {
        outputs.push("regional");
    } else if region.is_none() {
        outputs.push("rest");
    } else {
        return Vec::new(); // `fr` below 500: no output takes it (stage route)
    }
    outputs
}

fn produce(brokers: &str, topic: &str, n: u64) {
    let p: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "5").create().unwrap();
    for i in 0..n {
        let (key, value) = (format!("k{i}"), value(i));
        p.send(BaseRecord::to(topic).key(&key).payload(&value)).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_writes_each_record_to_the_outputs_its_content_chooses_in_one_transaction() {
    let brokers = bootstrap();
    let t = topics("o-worker", 3).await;
    let outputs = OutputTopics::create("o-worker", 3).await;
    let m = outputs.mapping();
    let n = 2000;
    produce(&brokers, &t.input, n);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let txn = unique_topic("o-txn");
    let args = ["--exactly-once", "--transactional-id", txn.as_str(), "--max-batch", "200", "--metrics-addr", &addr];
    let mut worker = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &args);

    let want = |name: &str| (0..n).filter(|i| expected_outputs(*i).contains(&name)).collect::<Vec<u64>>();
    let regional: Vec<u64> = want("regional");
    let br: Vec<u64> = regional.iter().copied().filter(|i| record(*i).unwrap().1 == Some("br")).collect();
    let us: Vec<u64> = regional.iter().copied().filter(|i| record(*i).unwrap().1 == Some("us")).collect();
    let failing: Vec<u64> = (0..n).filter(|i| expected_outputs(*i).is_empty()).collect();
    let read = |topic: &str, expected: usize| {
        let mut ids: Vec<u64> =
            consume_from(&brokers, topic, 3, expected, Duration::from_secs(90), Duration::from_millis(1500))
                .iter()
                .map(id_of_any)
                .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(read(&outputs.audit, want("audit").len()), want("audit"), "audit: amount >= 900 (fanned out)");
    assert_eq!(read(&outputs.priority, want("priority").len()), want("priority"));
    assert_eq!(read(&outputs.br, br.len()), br, "the topic expression picks each region's topic");
    assert_eq!(read(&outputs.us, us.len()), us);
    assert_eq!(read(&outputs.rest, want("rest").len()), want("rest"));
    assert_eq!(read(&t.fail, failing.len()), failing, "invalid records, and `fr` records no output takes");
    assert!(consume_from(&brokers, &t.ok, 3, 0, Duration::from_secs(2), Duration::from_millis(500)).is_empty());

    // Each failure says why: the invalid ones at validate, the unroutable ones at route.
    let stages: BTreeMap<String, usize> =
        consume_from(&brokers, &t.fail, 3, failing.len(), Duration::from_secs(30), Duration::ZERO).iter().fold(
            BTreeMap::new(),
            |mut counts, m| {
                *counts.entry(header(m, "lambda-stream.error.stage").unwrap()).or_default() += 1;
                counts
            },
        );
    let invalid = (0..n).filter(|i| record(*i).is_none()).count();
    assert_eq!(stages.get("validate"), Some(&invalid), "{stages:?}");
    assert_eq!(stages.get("route"), Some(&(failing.len() - invalid)), "{stages:?}");

    // Messages per output in the metrics; records counted once however many outputs took them.
    let started = Instant::now();
    let samples = loop {
        let samples = scrape(&format!("http://{addr}/metrics"));
        if samples.get("lambda_stream_records_received_total") == Some(&(n as f64)) {
            break samples;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "received never reached {n}: {samples:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for name in ["audit", "priority", "regional", "rest"] {
        let key = format!(r#"lambda_stream_output_records_total{{output="{name}"}}"#);
        assert_eq!(samples.get(&key), Some(&(want(name).len() as f64)), "{key}");
    }
    let mapped = (0..n).filter(|i| !expected_outputs(*i).is_empty()).count();
    assert_eq!(samples.get(r#"lambda_stream_records_total{route="ok"}"#), Some(&(mapped as f64)));
    let totals = worker.stop();
    assert_eq!(totals["ok"], mapped as u64, "{totals}");
    assert_eq!(totals["failed"], failing.len() as u64, "{totals}");

    // The fix: a topic for `fr`. A replay sends the records the first mapping could not route
    // through the fixed mapping's outputs; the invalid ones fail again.
    let fixed = outputs.mapping_with(&[&outputs.br, &outputs.us, &outputs.fr]);
    let fail2 = unique_topic("o-worker-fail2");
    create_topics(&[(&fail2, 1)]).await;
    let base = ["replay", "--brokers", &brokers, "--from", &t.fail, "--mapping", fixed.arg(), "--topic-ok", &t.ok];
    let out = crate::util::lambda_stream(&[&base[..], &["--topic-fail", &fail2, "--format", "json"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unroutable: Vec<u64> = failing.iter().copied().filter(|i| record(*i).is_some()).collect();
    assert_eq!(report["now_ok"], unroutable.len() as u64, "{report:#}");
    assert_eq!(report["still_failing"], invalid as u64, "{report:#}");
    let replayed = consume_from(&brokers, &outputs.fr, 3, unroutable.len(), Duration::from_secs(30), Duration::ZERO);
    let mut ids: Vec<u64> = replayed.iter().map(id_of_any).collect();
    ids.sort_unstable();
    assert_eq!(ids, unroutable);
    assert!(replayed.iter().all(|m| header(m, "lambda-stream.replay.from").is_some()));
    let feeding = crate::util::lambda_stream(&[
        "replay",
        "--brokers",
        &brokers,
        "--from",
        &outputs.fr,
        "--mapping",
        fixed.arg(),
        "--topic-ok",
        &t.ok,
        "--topic-fail",
        &fail2,
    ]);
    assert_eq!(feeding.status.code(), Some(2), "an output that is --from would feed the replay");
}

/// The id of an output message (in its value, or its CloudEvents `data`) or of a fail record (its
/// embedded value's `id`, `x` taken off).
fn id_of_any(m: &rdkafka::message::OwnedMessage) -> u64 {
    let v = json_payload(m);
    if let Some(envelope_value) = v.get("value").filter(|_| v.get("stage").is_some()) {
        let id = &envelope_value["id"];
        return id.as_u64().unwrap_or_else(|| id.as_str().unwrap().trim_start_matches('x').parse().unwrap());
    }
    let record = if v.get("specversion").is_some() { &v["data"] } else { &v };
    record["id"].as_u64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// The CloudEvents outputs write are events to the CloudEvents SDK: binary mode (`ce_*` headers,
/// the record as the value) and structured mode (one JSON document), with the record's stable id
/// as `id` and its Kafka timestamp as `time`.
#[tokio::test(flavor = "multi_thread")]
async fn cloud_events_are_read_by_the_cloudevents_sdk_in_both_modes() {
    let brokers = bootstrap();
    let t = topics("o-ce", 1).await;
    let outputs = OutputTopics::create("o-ce", 1).await;
    let m = outputs.mapping();
    let n = 40;
    produce(&brokers, &t.input, n);
    let mut worker = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &[]);
    let priority: Vec<u64> = (0..n).filter(|i| expected_outputs(*i).contains(&"priority")).collect();
    let rest: Vec<u64> = (0..n).filter(|i| expected_outputs(*i).contains(&"rest")).collect();
    assert!(!priority.is_empty() && !rest.is_empty());
    let events = |topic: &str, mode: &str, count: usize| -> Vec<Value> {
        let args = ["tests/fixtures/cloudevents/read.py", &brokers, topic, mode, &count.to_string()];
        python_lines(&args, "").iter().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    for (topic, mode, ids, event_type) in [
        (&outputs.priority, "binary", &priority, "com.example.order.priority"),
        (&outputs.rest, "structured", &rest, "com.example.order"),
    ] {
        let events = events(topic, mode, ids.len());
        let mut seen: Vec<u64> = events.iter().map(|e| e["data"]["id"].as_u64().unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(&seen, ids, "{mode}: every record once");
        for event in &events {
            let id = event["data"]["id"].as_u64().unwrap();
            assert_eq!(event["specversion"], "1.0");
            assert_eq!(event["type"], event_type);
            // The input has one partition, and record i is at offset i.
            assert_eq!(event["id"], format!("{}/0/{id}", t.input), "{mode}: the record's stable id");
            let expected_source = match (mode, record(id).unwrap().1) {
                ("binary", region) => format!("/orders/{}", region.unwrap_or("none")),
                _ => "/orders".to_string(),
            };
            assert_eq!(event["source"], expected_source.as_str());
            let time = event["time"].as_str().unwrap_or_else(|| panic!("no time in {event}"));
            assert!(time.starts_with("20") && time.contains('T'), "{time}");
            assert_eq!(event["data"]["amount"], record(id).unwrap().0);
            let content_type =
                if mode == "binary" { "application/json" } else { "application/cloudevents+json; charset=UTF-8" };
            assert_eq!(event["content_type"], content_type, "{event}");
        }
    }
    worker.stop();
}
