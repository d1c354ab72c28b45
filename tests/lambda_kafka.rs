//! The Lambda handler against the real local broker: what lands on the ok and fail topics, with
//! which keys, headers and order; what happens when the broker is away; and that every input is
//! in exactly one place.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use lambda_stream::destination::Router;
use lambda_stream::lambda::{Function, HandlerError};
use lambda_stream::mapping_file;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::plan::{self, Outcome};
use lambda_stream::sink::ProducerSettings;
use lambda_stream::sink::kafka::KafkaSink;
use rdkafka::Message;
use serde_json::{Value, json};

use crate::kafka_util::*;
use crate::util::root;

fn function(brokers: &str, mapping: &str, ok: &str, fail: &str, partial: bool) -> Function<KafkaSink> {
    let (_, plan) = mapping_file::load_file(&root().join(mapping)).unwrap();
    let mut settings = ProducerSettings::new(brokers);
    settings.message_timeout_ms = 10_000;
    Function {
        pipeline: Pipeline::new(
            plan,
            Router {
                topic_ok: ok.into(),
                topic_fail: fail.into(),
                function_name: "orders-fn".into(),
                function_env: "test".into(),
            },
        ),
        sink: KafkaSink::new(&settings).unwrap(),
        partial_batch: partial,
        delivery_margin: Duration::from_millis(500),
    }
}

/// A function on an inline mapping, producing to the real broker.
fn function_with_mapping(brokers: &str, mapping: &str, ok: &str, fail: &str) -> Function<KafkaSink> {
    let (_, plan) = plan::load_str(mapping).unwrap();
    Function {
        pipeline: Pipeline::new(
            plan,
            Router {
                topic_ok: ok.into(),
                topic_fail: fail.into(),
                function_name: "f".into(),
                function_env: "t".into(),
            },
        ),
        sink: KafkaSink::new(&ProducerSettings::new(brokers)).unwrap(),
        partial_batch: false,
        delivery_margin: Duration::from_millis(500),
    }
}

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_saved_msk_event_lands_on_ok_and_fail_topics_exactly() {
    let brokers = bootstrap();
    let (ok, fail) = (unique_topic("ok"), unique_topic("fail"));
    create_topics(&[(&ok, 1), (&fail, 1)]).await;
    let f = function(&brokers, "mappings/orders-to-billing.yaml", &ok, &fail, false);
    let event: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/fixtures/events/msk.json")).unwrap()).unwrap();

    let summary = f.handle(&event.to_string(), deadline(20)).await.expect("all delivered");
    assert_eq!(summary["received"], 8);
    assert_eq!(
        (summary["ok"].as_u64(), summary["failed"].as_u64(), summary["skipped"].as_u64()),
        (Some(3), Some(4), Some(1))
    );

    // Ok records: exactly what the plan makes of each input value, keyed, with traceparent passed on.
    let oks = consume(&ok, 1, 3, Duration::from_secs(15));
    assert_eq!(oks.len(), 3);
    let inputs = lambda_stream::record::decode_event_text(&event.to_string()).unwrap().inputs;
    let expected: Vec<(String, Vec<u8>)> = [0usize, 4, 7]
        .iter()
        .map(|&i| {
            let lambda_stream::record::Payload::Value(v) = &inputs[i].payload else { panic!() };
            let Outcome::Mapped(m) = f.pipeline.plan().apply(v) else { panic!("input {i} maps") };
            (String::from_utf8(m.key.unwrap()).unwrap(), m.value)
        })
        .collect();
    for (message, (key, value)) in oks.iter().zip(&expected) {
        assert_eq!(key_text(message).as_ref(), Some(key));
        assert_eq!(message.payload().unwrap(), value.as_slice(), "the exact mapped bytes");
    }
    assert_eq!(
        header(&oks[0], "traceparent").as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(header(&oks[0], "source-region"), None, "only the headers the spec lists pass through");

    // Fail records: the envelope, the source key, and the error headers.
    let fails = consume(&fail, 1, 4, Duration::from_secs(15));
    assert_eq!(fails.len(), 4);
    let envelopes: Vec<Value> = fails.iter().map(json_payload).collect();
    let positions: Vec<(i64, i64)> = envelopes
        .iter()
        .map(|e| (e["source"]["partition"].as_i64().unwrap(), e["source"]["offset"].as_i64().unwrap()))
        .collect();
    assert_eq!(positions, vec![(0, 101), (0, 103), (1, 8), (1, 9)], "input order within each source partition");
    let stages: Vec<&str> = envelopes.iter().map(|e| e["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, vec!["rule", "validate", "decode", "decode"]);
    assert_eq!(
        envelopes[0]["errors"][0],
        json!({"field": "cancel_reason", "rule": "cancel_reason_required", "message": "`cancel_reason` is required when `status` is \"CANCELLED\""})
    );
    assert_eq!(envelopes[0]["mapping"]["name"], "orders-to-billing");
    assert_eq!(envelopes[0]["function"], json!({"name": "orders-fn", "env": "test"}));
    assert_eq!(envelopes[0]["source"]["topic"], "orders.checkout.v1");
    assert_eq!(envelopes[0]["source"]["key"], "5d0e7b42-9c1f-4a8e-b3d2-6f7a8b9c0d1e");
    assert_eq!(envelopes[0]["value"]["order"]["status"], "CANCELLED", "the original value, embedded");
    assert_eq!(envelopes[0]["value_encoding"], "json");
    assert_eq!(key_text(&fails[0]).as_deref(), Some("5d0e7b42-9c1f-4a8e-b3d2-6f7a8b9c0d1e"));
    assert_eq!(header(&fails[1], "lambda-stream.error.stage").as_deref(), Some("validate"));
    assert_eq!(header(&fails[1], "lambda-stream.error.topic").as_deref(), Some("orders.checkout.v1"));
    assert_eq!(header(&fails[1], "lambda-stream.error.partition").as_deref(), Some("0"));
    assert_eq!(header(&fails[1], "lambda-stream.error.offset").as_deref(), Some("103"));
    let message = header(&fails[1], "lambda-stream.error.message").unwrap();
    assert!(message.starts_with("customer.document: expected a valid CPF"), "{message}");
    assert!(!message.contains("123.456.789"), "sensitive values never reach the fail topic's messages");
    assert_eq!(envelopes[2]["errors"][0]["rule"], "record", "not base64");
    assert_eq!(envelopes[2]["value"], "this is %% not base64");
    assert_eq!(envelopes[3]["errors"][0]["rule"], "json", "truncated JSON");
    assert_eq!(envelopes[3]["value_encoding"], "utf8", "what is not JSON travels as text");
}

#[tokio::test(flavor = "multi_thread")]
async fn order_within_each_source_partition_survives_a_large_concurrent_batch() {
    let brokers = bootstrap();
    let (ok, fail) = (unique_topic("ok"), unique_topic("fail"));
    create_topics(&[(&ok, 3), (&fail, 1)]).await;
    let f = function_with_mapping(
        &brokers,
        "version: 1\nname: seq\nfields:\n  - {target: src, source: $.src, type: integer, required: true}\n  - {target: seq, source: $.seq, type: integer, required: true}\n",
        &ok,
        &fail,
    );
    // Three source partitions, 700 records each; all records of a source partition share a key,
    // so they share an output partition, where their order must be the input order.
    let mut records = Vec::new();
    for seq in 0..700i64 {
        for src in 0..3 {
            let value = format!("{{\"src\": {src}, \"seq\": {seq}}}");
            records.push(event_record("in", src, seq, Some(&format!("source-{src}")), Some(value.as_bytes())));
        }
    }
    let summary = f.handle(&msk_event("in", records).to_string(), deadline(30)).await.unwrap();
    assert_eq!(summary["ok"], 2100);
    let got = consume(&ok, 3, 2100, Duration::from_secs(30));
    assert_eq!(got.len(), 2100);
    let mut by_source: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for m in &got {
        let v = json_payload(m);
        by_source.entry(v["src"].as_i64().unwrap()).or_default().push(v["seq"].as_i64().unwrap());
    }
    for (src, seqs) in by_source {
        assert_eq!(seqs, (0..700).collect::<Vec<_>>(), "source partition {src} out of order");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_input_is_in_exactly_one_place() {
    let brokers = bootstrap();
    let (ok, fail) = (unique_topic("ok"), unique_topic("fail"));
    create_topics(&[(&ok, 2), (&fail, 2)]).await;
    let f = function_with_mapping(
        &brokers,
        "version: 1\nname: ids\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n",
        &ok,
        &fail,
    );
    let n: usize = 600;
    let mut records = Vec::new();
    let mut tombstones = 0;
    for i in 0..n {
        let key = format!("k{i}");
        let value: Option<Vec<u8>> = match i % 6 {
            0 => None, // tombstone
            1 => Some(b"{\"id\": \"nope\"}".to_vec()),
            2 => Some(b"not json".to_vec()),
            _ => Some(format!("{{\"id\": {i}}}").into_bytes()),
        };
        if value.is_none() {
            tombstones += 1;
        }
        records.push(event_record("in", (i % 4) as i32, i as i64, Some(&key), value.as_deref()));
    }
    let summary = f.handle(&msk_event("in", records).to_string(), deadline(30)).await.unwrap();
    let (s_ok, s_fail, s_skip) =
        (summary["ok"].as_u64().unwrap(), summary["failed"].as_u64().unwrap(), summary["skipped"].as_u64().unwrap());
    assert_eq!(s_ok + s_fail + s_skip, n as u64);
    assert_eq!(s_skip, tombstones);
    let oks = consume(&ok, 2, s_ok as usize, Duration::from_secs(20));
    let fails = consume(&fail, 2, s_fail as usize, Duration::from_secs(20));
    assert_eq!((oks.len() as u64, fails.len() as u64), (s_ok, s_fail));
    let mut seen = HashSet::new();
    for m in oks.iter().chain(&fails) {
        assert!(seen.insert(key_text(m).unwrap()), "a record landed twice");
    }
    let expected: HashSet<String> = (0..n).filter(|i| i % 6 != 0).map(|i| format!("k{i}")).collect();
    assert_eq!(seen, expected, "every non-tombstone input is on exactly one topic");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_fails_the_batch_before_the_deadline() {
    // Nothing listens on port 1: the producer can never deliver.
    let f = function("127.0.0.1:1", "mappings/orders-to-billing.yaml", "ok", "fail", false);
    let event: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/fixtures/events/msk.json")).unwrap()).unwrap();
    let started = Instant::now();
    let result = f.handle(&event.to_string(), Instant::now() + Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    match result {
        Err(HandlerError::Undelivered { count, total, .. }) => {
            assert_eq!((count, total), (7, 7), "nothing reported as delivered")
        }
        other => panic!("expected an undelivered error, got {other:?}"),
    }
    assert!(elapsed < Duration::from_millis(2900), "answered before Lambda's deadline (took {elapsed:?})");
    assert!(elapsed >= Duration::from_millis(2000), "waited until the delivery deadline (took {elapsed:?})");
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_batch_mode_names_the_first_undelivered_record_per_partition() {
    let brokers = bootstrap();
    let ok = unique_topic("ok");
    create_topics(&[(&ok, 1)]).await;
    // The fail topic does not exist (and the broker does not create topics): fail records cannot
    // be delivered, ok records can.
    let missing = unique_topic("missing-fail");
    let f = function(&brokers, "mappings/orders-to-billing.yaml", &ok, &missing, true);
    let event: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/fixtures/events/msk.json")).unwrap()).unwrap();
    let response =
        f.handle(&event.to_string(), Instant::now() + Duration::from_secs(6)).await.expect("partial mode answers");
    let mut failures: Vec<(String, i64)> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["itemIdentifier"]["partition"].as_str().unwrap().to_string(),
                f["itemIdentifier"]["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    failures.sort();
    assert_eq!(failures, vec![("orders.checkout.v1-0".to_string(), 101), ("orders.checkout.v1-1".to_string(), 8)]);
    assert_eq!(response["summary"]["ok"], 3);
    assert_eq!(consume(&ok, 1, 3, Duration::from_secs(10)).len(), 3, "the ok records were delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_fail_topic_fails_the_whole_batch_so_lambda_retries_it() {
    let brokers = bootstrap();
    let ok = unique_topic("ok");
    create_topics(&[(&ok, 1)]).await;
    let missing = unique_topic("missing-fail");
    let f = function(&brokers, "mappings/orders-to-billing.yaml", &ok, &missing, false);
    let event: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/fixtures/events/msk.json")).unwrap()).unwrap();
    match f.handle(&event.to_string(), Instant::now() + Duration::from_secs(4)).await {
        Err(HandlerError::Undelivered { count, total, first }) => {
            assert_eq!((count, total), (4, 7), "the four fail records had nowhere to go");
            assert!(first.to_string().contains(&missing), "the error names the topic: {first}");
        }
        other => panic!("expected an error so Lambda retries the batch, got {other:?}"),
    }
}

/// The broker's SASL/SCRAM-SHA-512 listener (scripts/kafka/run: client port + 2).
fn scram_brokers() -> String {
    let plain = bootstrap();
    let (host, port) = plain.rsplit_once(':').unwrap();
    format!("{host}:{}", port.parse::<u16>().unwrap() + 2)
}

fn scram_function(password: &str, ok: &str, fail: &str) -> Function<KafkaSink> {
    use lambda_stream::config::{NoParameterStore, Settings};
    let brokers = scram_brokers();
    let secret = format!(r#"{{"username": "lambda-stream", "password": "{password}"}}"#);
    let vars = [
        ("ENVIRONMENTS_FILE", "none"),
        ("LAMBDA_NAME", "scram-test"),
        ("LAMBDA_ENV", "test"),
        ("MSK_SERVERS", brokers.as_str()),
        ("MAPPING_FILE", "unused.yaml"),
        ("TOPIC_OK", ok),
        ("TOPIC_FAIL", fail),
        ("KAFKA_SECURITY", "sasl_scram"),
        ("KAFKA_TLS", "false"),
        ("KAFKA_SCRAM_SECRET", secret.as_str()),
        ("KAFKA_MESSAGE_TIMEOUT_MS", "10000"),
    ];
    let settings =
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()), &NoParameterStore)
            .unwrap();
    let (_, plan) = mapping_file::load_file(&root().join("mappings/orders-to-billing.yaml")).unwrap();
    Function {
        pipeline: Pipeline::new(
            plan,
            Router {
                topic_ok: ok.into(),
                topic_fail: fail.into(),
                function_name: "f".into(),
                function_env: "t".into(),
            },
        ),
        sink: KafkaSink::new(&settings.producer).unwrap(),
        partial_batch: false,
        delivery_margin: Duration::from_millis(500),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_scram_credentials_authenticate_against_the_real_broker() {
    let (ok, fail) = (unique_topic("scram-ok"), unique_topic("scram-fail"));
    create_topics(&[(&ok, 1), (&fail, 1)]).await;
    let event: Value =
        serde_json::from_slice(&std::fs::read(root().join("tests/fixtures/events/self-managed.json")).unwrap())
            .unwrap();

    let summary = scram_function("lambda-stream-local", &ok, &fail)
        .handle(&event.to_string(), deadline(20))
        .await
        .expect("delivered over SCRAM");
    assert_eq!(summary["ok"], 1);
    assert_eq!(consume(&ok, 1, 1, Duration::from_secs(10)).len(), 1);

    let started = Instant::now();
    let refused = scram_function("wrong-password-123", &ok, &fail)
        .handle(&event.to_string(), Instant::now() + Duration::from_secs(4))
        .await;
    let e = refused.expect_err("a wrong password cannot deliver").to_string();
    assert!(started.elapsed() < Duration::from_secs(4), "answered before the deadline");
    assert!(!e.contains("wrong-password-123"), "credentials never appear in errors: {e}");
}

/// One function, two source topics with a mapping each (routes in `environments.yaml`), and a
/// default route: each record lands in its own route's ok or fail topic, on the real broker; a
/// record of a topic without a route goes to the default route's fail topic.
#[tokio::test(flavor = "multi_thread")]
async fn routes_send_each_source_topics_records_to_their_own_topics() {
    let brokers = bootstrap();
    let names: Vec<String> =
        ["r-orders", "r-payments", "r-billing", "r-billing-fail", "r-ledger", "r-ledger-fail", "r-unrouted"]
            .iter()
            .map(|p| unique_topic(p))
            .collect();
    let [orders, payments, billing, billing_fail, ledger, ledger_fail, unrouted] = &names[..] else { unreachable!() };
    create_topics(&names.iter().skip(2).map(|t| (t.as_str(), 1)).collect::<Vec<_>>()).await;
    let dir = root().join("mappings");
    let env_text = format!(
        "version: 1\nacme:\n  prod:\n    lambda_name: f\n    msk_servers: {brokers}\n    source_topics: [{orders}, {payments}]\n    routes:\n      - {{ source_topic: {orders}, mapping: {o}, topic_ok: {billing}, topic_fail: {billing_fail} }}\n      - {{ source_topic: {payments}, mapping: {p}, topic_ok: {ledger}, topic_fail: {ledger_fail} }}\n      - {{ source_topic: '*', topic_fail: {unrouted} }}\n",
        o = dir.join("orders-to-billing.yaml").display(),
        p = dir.join("payments-to-ledger.yaml").display(),
    );
    let env_file = crate::util::TempFile::new("environments.yaml", env_text.as_bytes());
    let lookup = |name: &str| match name {
        "ENVIRONMENTS_FILE" => Some(env_file.arg().to_owned()),
        "LAMBDA_ENV" => Some("acme".to_owned()),
        _ => None,
    };
    let settings =
        lambda_stream::config::Settings::from_lookup(lookup, &lambda_stream::config::NoParameterStore).unwrap();
    let (pipeline, refreshers) = lambda_stream::mapping_source::load_pipeline(&settings).await.unwrap();
    assert_eq!((pipeline.route_count(), refreshers.len()), (2, 2));
    let function = Function {
        pipeline,
        sink: KafkaSink::new(&ProducerSettings::new(&brokers)).unwrap(),
        partial_batch: false,
        delivery_margin: Duration::from_millis(500),
    };

    let order = std::fs::read_to_string(root().join("tests/fixtures/orders.jsonl")).unwrap();
    let payment = std::fs::read_to_string(root().join("tests/fixtures/payments.jsonl")).unwrap();
    let first = |text: &str| text.lines().next().unwrap().as_bytes().to_vec();
    let mut event = msk_event(orders, vec![event_record(orders, 0, 1, Some("o1"), Some(&first(&order)))]);
    let payments_group = msk_event(
        payments,
        vec![
            event_record(payments, 0, 1, Some("p1"), Some(&first(&payment))),
            event_record(payments, 0, 2, Some("p2"), Some(br#"{"not": "a payment"}"#)),
        ],
    );
    let refunds_group = msk_event("refunds", vec![event_record("refunds", 0, 9, Some("r9"), Some(br#"{"id": 1}"#))]);
    for group in [payments_group, refunds_group] {
        for (k, v) in group["records"].as_object().unwrap() {
            event["records"][k] = v.clone();
        }
    }
    let response = function.handle(&event.to_string(), deadline(30)).await.unwrap();
    assert_eq!(
        (&response["received"], &response["ok"], &response["failed"]),
        (&json!(4), &json!(2), &json!(2)),
        "{response}"
    );

    let one = |topic: &str| consume(topic, 1, 1, Duration::from_secs(15));
    let billed = one(billing);
    assert_eq!(billed.len(), 1);
    assert!(header(&billed[0], "lambda-stream.mapping").unwrap().starts_with("orders-to-billing@"));
    let booked = one(ledger);
    assert_eq!(booked.len(), 1);
    assert!(header(&booked[0], "lambda-stream.mapping").unwrap().starts_with("payments-to-ledger@"));
    let failed = one(ledger_fail);
    assert_eq!(json_payload(&failed[0])["mapping"]["name"], "payments-to-ledger");
    let lost = one(unrouted);
    assert_eq!(json_payload(&lost[0])["errors"][0]["rule"], "route");
    assert_eq!(key_text(&lost[0]).as_deref(), Some("r9"));
    assert!(consume(billing_fail, 1, 1, Duration::from_secs(2)).is_empty(), "the order maps");
}
