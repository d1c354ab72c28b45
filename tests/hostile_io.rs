//! Hostile input at the edges where bytes come in: a Lambda event that repeats a group, files
//! that never end, settings Kafka or SSM would refuse, samples `init` must still describe, a
//! playground client that stalls. Each case must end in one clear place, in bounded time and
//! memory, never a panic. docs/development.md lists the rows.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_stream::lambda::Function;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::plan;
use lambda_stream::route::Router;
use lambda_stream::sink::MemorySink;
use serde_json::{Value, json};

const MAPPING: &str =
    "version: 1\nname: hostile-io\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n";

fn function() -> Function<MemorySink> {
    let (_, plan) = plan::load_str(MAPPING).unwrap();
    let router = Router {
        topic_ok: "ok".into(),
        topic_fail: "fail".into(),
        function_name: "f".into(),
        function_env: "test".into(),
    };
    Function {
        pipeline: Pipeline::new(plan, router),
        sink: MemorySink::default(),
        partial_batch: false,
        delivery_margin: Duration::ZERO,
    }
}

fn record(offset: i64, value: &[u8]) -> Value {
    json!({"topic": "orders", "partition": 0, "offset": offset, "timestamp": 1_764_000_000_000_i64,
           "timestampType": "CREATE_TIME", "value": BASE64.encode(value)})
}

/// A Lambda event whose `records` object gives the group `orders-0` twice (JSON allows the text;
/// a map keeps only one of them): every record of both groups is mapped and counted.
#[tokio::test]
async fn a_repeated_topic_partition_group_loses_no_record() {
    let first = json!([record(1, br#"{"id": 1}"#), record(2, b"not json")]);
    let second = json!([record(3, br#"{"id": 3}"#)]);
    let other = json!([record(4, br#"{"id": 4}"#)]);
    let event = format!(
        r#"{{"eventSource": "aws:kafka", "records": {{"orders-0": {first}, "orders-1": {other}, "orders-0": {second}}}}}"#
    );
    let f = function();
    let summary = f.handle(&event, Instant::now() + Duration::from_secs(10)).await.unwrap();
    assert_eq!(summary["received"], 4, "{summary}");
    assert_eq!((summary["ok"].as_u64(), summary["failed"].as_u64()), (Some(3), Some(1)), "{summary}");
    let delivered = f.sink.delivered.lock().unwrap();
    assert_eq!(delivered.len(), 4);
    let ok: Vec<String> = delivered
        .iter()
        .filter(|m| m.topic == "ok")
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    for id in [1, 3, 4] {
        assert!(ok.contains(&format!(r#"{{"id":{id}}}"#)), "record {id} mapped: {ok:?}");
    }
}
