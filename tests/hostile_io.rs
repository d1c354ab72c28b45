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

use crate::util::{TempFile, lambda_stream, root, stderr, stdout};

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

/// Topic and parameter names Kafka or SSM would refuse are refused where they are written
/// (`file:line:col`), before a deployment finds out.
#[test]
fn validate_config_refuses_names_kafka_or_ssm_would_refuse() {
    let mapping = root().join("mappings/orders-to-billing.yaml");
    let long_topic = "t".repeat(250);
    let deep = (1..=16).map(|i| format!("l{i}")).collect::<Vec<_>>().join("/");
    let long_parameter = format!("team/{}", "p".repeat(1020));
    let text = format!(
        "version: 1\n\
         acme:\n  \
           prod:\n    \
             lambda_name: f\n    \
             msk_servers: parameter://team//servers\n    \
             source_topics: [\"in put\", \"nul\\0here\", ., ..]\n    \
             topic_ok: {long_topic}\n    \
             topic_fail: ok.fail\n    \
             mapping: {mapping}\n    \
             kafka: {{security: sasl_scram, scram_secret: parameter://SSM/secrets/kafka}}\n  \
           dev:\n    \
             lambda_name: f\n    \
             msk_servers: parameter://team/servers/\n    \
             source_topics: [in]\n    \
             topic_ok: parameter://{deep}\n    \
             topic_fail: parameter://{long_parameter}\n    \
             mapping: {mapping}\n    \
             kafka: {{security: sasl_scram, scram_secret: parameter://awsKafka}}\n  \
           ok:\n    \
             lambda_name: f\n    \
             msk_servers: parameter://team/kafka/servers\n    \
             source_topics: [orders.v1, Orders_2-x]\n    \
             topic_ok: billing.v1\n    \
             topic_fail: billing.v1.fail\n    \
             mapping: {mapping}\n    \
             kafka: {{security: sasl_scram, scram_secret: parameter:///aws/reference/secretsmanager/kafka-scram}}\n",
        mapping = mapping.display()
    );
    let file = TempFile::new("environments.yaml", text.as_bytes());
    let f = file.arg();
    let out = lambda_stream(&["validate-config", f]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}{}", stderr(&out));
    for expected in [
        format!("{f}:5:18: error: `parameter://team//servers`"),
        // A quoted value is located at its first character, after the quote.
        format!("{f}:6:22: error: topic `in put` "),
        format!("{f}:6:32: error: topic `nul\\0here` "),
        format!("{f}:6:44: error: topic `.` "),
        format!("{f}:6:47: error: topic `..` "),
        format!("{f}:7:15: error: topic `{long_topic}` "),
        format!("{f}:10:49: error: `parameter://SSM/secrets/kafka`"),
        format!("{f}:13:18: error: `parameter://team/servers/`"),
        format!("{f}:15:15: error: `parameter://{deep}`"),
        format!("{f}:16:17: error: `parameter://{long_parameter}`"),
        format!("{f}:18:49: error: `parameter://awsKafka`"),
    ] {
        assert!(report.contains(&expected), "missing:\n{expected}\nin:\n{report}");
    }
    assert!(!report.contains(&format!("{f}:2")), "the valid environment has no problem:\n{report}");
    assert_eq!(report.matches(": error: ").count(), 11, "{report}");
}
