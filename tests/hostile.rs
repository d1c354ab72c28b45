//! Hostile input, table-driven, through the Lambda handler's code (decode → plan → route), with an
//! in-memory sink: each row must end on the ok topic, on the fail topic with a clear stage and
//! message, or as a counted skip — never a panic, a hang, or a lost record. docs/development.md
//! lists the rows.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_stream::destination::Destination;
use lambda_stream::lambda::Function;
use lambda_stream::sink::MemorySink;
use serde_json::{Value, json};

const MAPPING: &str = "version: 1\nname: hostile\nheaders: [traceparent]\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n  - {target: name, source: $.name, type: string}\n  - {target: total, source: $.total, type: number}\n";

/// Where a row must end.
#[derive(Debug)]
enum Expect {
    /// On the ok topic, with this exact output.
    Ok(&'static str),
    /// On the fail topic, with this stage and rule, and a message containing this text.
    Fail { stage: &'static str, rule: &'static str, message: &'static str },
    /// A counted skip (tombstone).
    Skip,
}

struct Row {
    name: &'static str,
    /// The event's `topic-partition` key.
    group: String,
    record: Value,
    expect: Expect,
}

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn record(value: Option<&[u8]>) -> Value {
    let mut r = json!({"topic": "orders", "partition": 0, "offset": 42, "timestamp": 1_764_000_000_000_i64,
                       "timestampType": "CREATE_TIME", "key": b64(b"k1"), "headers": []});
    if let Some(v) = value {
        r["value"] = json!(b64(v));
    }
    r
}

fn rows() -> Vec<Row> {
    let group = || "orders-0".to_string();
    let deep = format!("{{\"id\": 1, \"x\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let big_ok = format!("{{\"id\": 7, \"pad\": \"{}\"}}", "y".repeat(5 * 1024 * 1024));
    let big_garbage = vec![b'{'; 5 * 1024 * 1024];
    let mut not_base64 = record(None);
    not_base64["value"] = json!("this is %%% not base64");
    let mut negative_headers = record(Some(br#"{"id": 3}"#));
    negative_headers["headers"] = json!([{"traceparent": [-1, -128, 0, 65, 127]}]);
    let mut no_headers = record(Some(br#"{"id": 4}"#));
    no_headers.as_object_mut().unwrap().remove("headers");
    let mut empty_key = record(Some(br#"{"": 1, "id": 5}"#));
    empty_key["key"] = json!("");
    vec![
        Row {
            name: "a valid record",
            group: group(),
            record: record(Some(br#"{"id": 1, "name": "a"}"#)),
            expect: Expect::Ok(r#"{"id":1,"name":"a"}"#),
        },
        Row {
            name: "value not base64",
            group: group(),
            record: not_base64,
            expect: Expect::Fail { stage: "decode", rule: "record", message: "`value` is not base64" },
        },
        Row {
            name: "value not JSON",
            group: group(),
            record: record(Some(b"hello, world")),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "not a usable JSON object" },
        },
        Row {
            name: "JSON but not an object",
            group: group(),
            record: record(Some(b"[1, 2, 3]")),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "not a usable JSON object" },
        },
        Row {
            name: "invalid UTF-8",
            group: group(),
            record: record(Some(b"{\"id\": 1, \"name\": \"\xff\xfe\"}")),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "UTF-8" },
        },
        Row {
            name: "a 5 MB JSON value",
            group: group(),
            record: record(Some(big_ok.as_bytes())),
            expect: Expect::Ok(r#"{"id":7}"#),
        },
        Row {
            name: "a 5 MB value that is not JSON",
            group: group(),
            record: record(Some(&big_garbage)),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "expected a string key" },
        },
        Row {
            name: "100,000-deep nesting",
            group: group(),
            record: record(Some(deep.as_bytes())),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "deeper than" },
        },
        Row {
            name: "an integer beyond i64",
            group: group(),
            record: record(Some(br#"{"id": 99999999999999999999999}"#)),
            expect: Expect::Fail { stage: "validate", rule: "type", message: "integer" },
        },
        Row {
            name: "a number beyond f64",
            group: group(),
            record: record(Some(br#"{"id": 1, "total": 1e400}"#)),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "number out of range" },
        },
        Row {
            name: "duplicate keys the mapping reads",
            group: group(),
            record: record(Some(br#"{"id": 1, "id": 2}"#)),
            expect: Expect::Fail { stage: "decode", rule: "json", message: "duplicate key \"id\"" },
        },
        Row {
            name: "an empty JSON key and an empty Kafka key",
            group: group(),
            record: empty_key,
            expect: Expect::Ok(r#"{"id":5}"#),
        },
        Row { name: "a tombstone", group: group(), record: record(None), expect: Expect::Skip },
        Row {
            name: "headers with negative bytes",
            group: group(),
            record: negative_headers,
            expect: Expect::Ok(r#"{"id":3}"#),
        },
        Row { name: "no headers field", group: group(), record: no_headers, expect: Expect::Ok(r#"{"id":4}"#) },
        Row {
            name: "a partition key that is not topic-partition",
            group: "not a topic partition".into(),
            record: record(Some(br#"{"id": 6}"#)),
            expect: Expect::Ok(r#"{"id":6}"#),
        },
        Row {
            name: "a record that is not an object",
            group: group(),
            record: json!("just a string"),
            expect: Expect::Fail { stage: "decode", rule: "record", message: "not an object" },
        },
        Row {
            name: "an offset that is not a number",
            group: group(),
            record: {
                let mut r = record(Some(br#"{"id": 8}"#));
                r["offset"] = json!("forty-two");
                r
            },
            expect: Expect::Fail { stage: "decode", rule: "record", message: "`offset` is not an integer" },
        },
    ]
}

fn function() -> Function<MemorySink> {
    crate::hostile_engine::function(MAPPING)
}

#[tokio::test]
async fn every_hostile_row_ends_in_one_clear_place() {
    for row in rows() {
        let f = function();
        let event = json!({"eventSource": "aws:kafka", "records": {row.group.clone(): [row.record]}});
        let started = Instant::now();
        let response = f.handle(&event.to_string(), Instant::now() + Duration::from_secs(10)).await;
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(3), "{}: took {elapsed:?}", row.name);
        let summary = response.unwrap_or_else(|e| panic!("{}: the batch failed: {e}", row.name));
        assert_eq!(summary["received"], 1, "{}", row.name);
        let delivered = f.sink.delivered.lock().unwrap();
        match row.expect {
            Expect::Skip => {
                assert_eq!(summary["skipped"], 1, "{}: {summary}", row.name);
                assert!(delivered.is_empty(), "{}", row.name);
            }
            Expect::Ok(output) => {
                assert_eq!(summary["ok"], 1, "{}: {summary}", row.name);
                assert_eq!(delivered.len(), 1);
                assert_eq!(delivered[0].destination, Destination::Ok);
                assert_eq!(String::from_utf8_lossy(&delivered[0].payload), output, "{}", row.name);
            }
            Expect::Fail { stage, rule, message } => {
                assert_eq!(summary["failed"], 1, "{}: {summary}", row.name);
                assert_eq!(delivered.len(), 1);
                let m = &delivered[0];
                assert_eq!((m.destination, m.topic.as_str()), (Destination::Fail, "fail"), "{}", row.name);
                let envelope: Value = serde_json::from_slice(&m.payload)
                    .unwrap_or_else(|e| panic!("{}: the envelope reads back as JSON: {e}", row.name));
                assert_eq!(envelope["stage"], stage, "{}: {envelope}", row.name);
                let errors = envelope["errors"].as_array().unwrap();
                assert!(
                    errors.iter().any(|e| e["rule"] == rule && e["message"].as_str().unwrap().contains(message)),
                    "{}: expected rule {rule} with a message containing {message:?}, got {errors:?}",
                    row.name
                );
                let header = m.headers.iter().find(|(k, _)| k == "lambda-stream.error.stage").map(|(_, v)| v.clone());
                assert_eq!(header.as_deref(), Some(stage.as_bytes()), "{}", row.name);
            }
        }
    }
}

#[tokio::test]
async fn negative_header_bytes_arrive_as_the_bytes_kafka_had() {
    let f = function();
    let mut r = record(Some(br#"{"id": 3}"#));
    r["headers"] = json!([{"traceparent": [-1, -128, 0, 65, 127]}]);
    let event = json!({"eventSource": "aws:kafka", "records": {"orders-0": [r]}});
    f.handle(&event.to_string(), Instant::now() + Duration::from_secs(5)).await.unwrap();
    let delivered = f.sink.delivered.lock().unwrap();
    let header = delivered[0].headers.iter().find(|(k, _)| k == "traceparent").unwrap();
    assert_eq!(header.1, vec![255, 128, 0, 65, 127]);
}

#[tokio::test]
async fn a_mixed_hostile_batch_is_fully_accounted() {
    let rows = rows();
    let n = rows.len();
    let mut groups = serde_json::Map::new();
    for (i, row) in rows.into_iter().enumerate() {
        let mut record = row.record;
        if record.is_object() && record.get("offset").is_some_and(Value::is_i64) {
            record["offset"] = json!(i);
        }
        groups.entry(row.group).or_insert_with(|| json!([])).as_array_mut().unwrap().push(record);
    }
    let f = function();
    let summary = f
        .handle(
            &json!({"eventSource": "SelfManagedKafka", "records": groups}).to_string(),
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .unwrap();
    let count = |k: &str| summary[k].as_u64().unwrap();
    assert_eq!(count("received"), n as u64);
    assert_eq!(count("ok") + count("failed") + count("skipped"), n as u64, "{summary}");
    assert_eq!(f.sink.delivered.lock().unwrap().len() as u64, count("ok") + count("failed"));
}

/// Found by `cargo fuzz run event_decoder`: invalid UTF-8 in a field the decoder does not read
/// (`bootstrapServers`). The saved-event decoder used to skip it unchecked and accept an event the
/// Lambda runtime refuses; now both paths refuse it.
#[test]
fn fuzz_event_decoder_5e70fa0b_invalid_utf8_in_an_unread_field() {
    let bytes = std::fs::read(crate::util::fixture("fuzz/event_decoder-5e70fa0b.json")).unwrap();
    assert!(serde_json::from_slice::<Value>(&bytes).is_err(), "the event is not valid JSON");
    match lambda_stream::record::decode_event(&bytes) {
        Err(lambda_stream::record::EventError::NotJson(e)) => {
            assert!(e.to_string().contains("line 3"), "{e}")
        }
        other => panic!("expected the event to be refused as not JSON, got {other:?}"),
    }
}
