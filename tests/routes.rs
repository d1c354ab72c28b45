//! `outputs:` through the command line: the dry run shows where each record goes, `--messages`
//! shows every message as it would be produced (one per output, CloudEvents headers and
//! documents included), `validate-mapping` lists the topics a mapping writes to and runs the
//! tests that name outputs, and `process --event` counts a fanned-out record once.

use serde_json::Value;

use crate::util::{TempFile, lambda_stream, stderr, stdout};

const MAPPING: &str = "mappings/payments-by-route.yaml";
const PAYMENTS: &str = "tests/fixtures/payments.jsonl";

fn lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn the_dry_run_shows_which_outputs_take_each_record() {
    let out = lambda_stream(&["process", "--mapping", MAPPING, "--input", PAYMENTS]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = lines(&out);
    let first = &records[0];
    assert_eq!(first["route"], "ok");
    let captures = &first["outputs"][0];
    assert_eq!(captures["output"], "captures");
    assert_eq!(captures["topic"], "payments.captured.brl.v1", "the topic its currency computes");
    assert_eq!(captures["key"], "88231", "its own key: the merchant");
    assert_eq!(
        captures["value"],
        serde_json::json!({"payment_id": "txn_0123456789abcdef", "currency": "BRL", "amount_cents": 75900, "merchant": {"id": 88231, "mcc": 5651}}),
        "only its fields"
    );
    let went: Vec<&str> =
        records.iter().filter(|r| r["route"] == "ok").map(|r| r["outputs"][0]["output"].as_str().unwrap()).collect();
    assert!(went.contains(&"refunds") && went.contains(&"other"), "{went:?}");
}

#[test]
fn messages_are_one_per_output_with_their_topics_keys_and_cloud_events() {
    let args = [
        "process",
        "--mapping",
        MAPPING,
        "--input",
        PAYMENTS,
        "--messages",
        "--topic-ok",
        "unused",
        "--topic-fail",
        "payments.fail",
    ];
    let out = lambda_stream(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let messages = lines(&out);
    assert!(messages.iter().all(|m| m["topic"] != "unused"), "with outputs, nothing goes to the ok topic");
    let header = |m: &Value, name: &str| {
        m["headers"].as_array().unwrap().iter().find(|h| h[0] == name).map(|h| h[1].as_str().unwrap().to_string())
    };
    let refund = messages.iter().find(|m| m["topic"] == "payments.refunds.v1").expect("a refund");
    assert_eq!(header(refund, "ce_type").as_deref(), Some("com.example.payment.refund"));
    assert_eq!(header(refund, "ce_source").as_deref(), Some("/acquirer/payments"));
    assert_eq!(header(refund, "ce_id"), header(refund, "lambda-stream.id"), "the stable id is the event's id");
    assert_eq!(header(refund, "content-type").as_deref(), Some("application/json"));
    assert_eq!(refund["payload"]["status"], "PARTIALLY_REFUNDED", "binary mode: the record is the value");
    let other = messages.iter().find(|m| m["topic"] == "payments.other.v1").expect("another");
    assert_eq!(other["payload"]["specversion"], "1.0");
    assert_eq!(other["payload"]["source"], "/acquirer/payments/declined");
    assert_eq!(other["payload"]["data"]["status"], "DECLINED", "structured mode: the record is `data`");
    assert_eq!(header(other, "content-type").as_deref(), Some("application/cloudevents+json; charset=UTF-8"));
    let failed = messages.iter().filter(|m| m["topic"] == "payments.fail").count();
    assert_eq!(failed, 3);
}

#[test]
fn validate_mapping_lists_the_topics_and_runs_the_tests_that_name_outputs() {
    let out = lambda_stream(&["validate-mapping", MAPPING]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("3/3 tests passed, writes to payments.audit.v1, payments.refunds.v1, payments.captured.brl.v1"),
        "{}",
        stdout(&out)
    );
    let text = std::fs::read_to_string(crate::util::root().join(MAPPING)).unwrap();
    let wrong = TempFile::new(
        "routes-wrong.yaml",
        text.replace("      output: [audit, captures]", "      output: captures").as_bytes(),
    );
    let out = lambda_stream(&["validate-mapping", wrong.arg()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("expected the record to go to output(s) captures, but it went to audit, captures"),
        "{}",
        stdout(&out)
    );
    let unknown =
        TempFile::new("routes-unknown.yaml", text.replace("      output: other", "      output: others").as_bytes());
    let out = lambda_stream(&["validate-mapping", unknown.arg()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("`expect.output` names unknown output `others`; did you mean `other`?"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_event_counts_a_fanned_out_record_once_and_its_messages_per_output() {
    let record = |offset: i64, value: &str| {
        use base64::Engine as _;
        let value = base64::engine::general_purpose::STANDARD.encode(value);
        format!(
            r#"{{"topic": "payments", "partition": 0, "offset": {offset}, "timestamp": 1764000000000, "timestampType": "CREATE_TIME", "value": "{value}", "headers": []}}"#
        )
    };
    let large = r#"{"transaction": {"id": "t1", "status": "CAPTURED", "currency": "EUR", "amount_cents": 500000}, "merchant": {"id": 1}}"#;
    let small = r#"{"transaction": {"id": "t2", "status": "AUTHORIZED", "currency": "EUR", "amount_cents": 5}, "merchant": {"id": 2}}"#;
    let event = format!(
        r#"{{"eventSource": "aws:kafka", "records": {{"payments-0": [{}, {}]}}}}"#,
        record(0, large),
        record(1, small)
    );
    let file = TempFile::new("routes-event.json", event.as_bytes());
    let out = lambda_stream(&["process", "--mapping", MAPPING, "--event", file.arg(), "--messages", "--metrics"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("2 records: 2 ok, 0 failed"), "{}", stderr(&out));
    let lines = lines(&out);
    let topics: Vec<&str> = lines.iter().filter_map(|l| l["topic"].as_str()).collect();
    assert_eq!(topics, ["payments.audit.v1", "payments.captured.eur.v1", "payments.other.v1"]);
    let structured = &lines[2]["payload"];
    assert_eq!(structured["time"], "2025-11-24T16:00:00.000Z", "the source record's timestamp");
    assert_eq!(structured["id"], "payments/0/1");
    let outputs: Vec<(&str, u64)> = lines
        .iter()
        .filter(|l| l.get("OutputRecords").is_some())
        .map(|l| (l["output"].as_str().unwrap(), l["OutputRecords"].as_u64().unwrap()))
        .collect();
    assert_eq!(outputs, [("audit", 1), ("captures", 1), ("other", 1)]);
    let main = lines.iter().find(|l| l.get("RecordsOk").is_some()).unwrap();
    assert_eq!(main["RecordsOk"], 2.0);
}

#[test]
fn structured_cloud_events_are_refused_when_the_output_format_is_not_json() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        MAPPING,
        "--input",
        PAYMENTS,
        "--output-format",
        "avro",
        "--output-schema",
        "tests/fixtures/avro/billing.avsc",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "output `other` writes structured CloudEvents, which are JSON documents, but --output-format is avro"
        ),
        "{}",
        stderr(&out)
    );
}

/// A binary-mode CloudEvent written as Avro says so in its `content-type`.
#[test]
fn a_binary_cloud_event_written_as_avro_says_its_content_type() {
    let text = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
    let mapping = TempFile::new(
        "routes-avro.yaml",
        (text + "\noutputs:\n  - {name: events, topic: billing.events, envelope: cloudevents, type: com.example.billing, source: /billing}\n")
            .as_bytes(),
    );
    let args = [
        "process",
        "--mapping",
        mapping.arg(),
        "--input",
        "tests/fixtures/orders.jsonl",
        "--messages",
        "--topic-ok",
        "unused",
        "--topic-fail",
        "billing.fail",
        "--output-format",
        "avro",
        "--output-schema",
        "tests/fixtures/avro/billing.avsc",
    ];
    let out = lambda_stream(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<Value> = lines(&out).into_iter().filter(|m| m["topic"] == "billing.events").collect();
    assert!(!events.is_empty(), "{}", stdout(&out));
    for event in &events {
        let headers = event["headers"].as_array().unwrap();
        let content_types: Vec<&Value> = headers.iter().filter(|h| h[0] == "content-type").map(|h| &h[1]).collect();
        assert_eq!(content_types, [&Value::from("application/avro")], "{event}");
        assert!(event["payload"].get("base64").is_some() || event["payload"].is_string(), "an Avro body: {event}");
    }
}
