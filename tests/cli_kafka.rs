//! The command line against the real broker: `process --event` producing to a cluster.

use serde_json::Value;

use crate::util::{lambda_stream, stderr, stdout};

#[test]
fn event_runs_can_produce_to_a_real_cluster() {
    let brokers = crate::kafka_util::bootstrap();
    let (ok, fail) = (crate::kafka_util::unique_topic("cli-ok"), crate::kafka_util::unique_topic("cli-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(&[(&ok, 1), (&fail, 1)]));
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        "tests/fixtures/events/self-managed.json",
        "--brokers",
        &brokers,
        "--topic-ok",
        &ok,
        "--topic-fail",
        &fail,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((summary["ok"].as_u64(), summary["skipped"].as_u64()), (Some(1), Some(1)));
    let got = crate::kafka_util::consume(&ok, 1, 1, std::time::Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(crate::kafka_util::json_payload(&got[0])["order_id"], "3d4e5f60-7182-4a3b-a4b5-c6d7e8f9a0b1");
    assert!(stderr(&out).contains("peak RSS"), "{}", stderr(&out));
}

/// `failures` on a real fail topic: the function's fail records (from a saved event) and one
/// record that is not an envelope; counted by stage, rule, mapping and source topic, the stranger
/// counted apart, and `--until` before them all reads nothing.
#[test]
fn failures_triages_a_fail_topic() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let brokers = crate::kafka_util::bootstrap();
    let (ok, fail) = (crate::kafka_util::unique_topic("tri-ok"), crate::kafka_util::unique_topic("tri-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(&[(&ok, 1), (&fail, 2)]));
    let args = ["process", "--mapping", "mappings/orders-to-billing.yaml", "--event", "tests/fixtures/events/msk.json"];
    let out = lambda_stream(&[&args[..], &["--brokers", &brokers, "--topic-ok", &ok, "--topic-fail", &fail]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    producer.send(BaseRecord::<(), _>::to(&fail).payload("not an envelope").partition(1)).unwrap();
    producer.flush(std::time::Duration::from_secs(10)).unwrap();

    let out = lambda_stream(&["failures", "--brokers", &brokers, "--topic", &fail, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((t["read"].as_u64(), t["not_ours"].as_u64()), (Some(5), Some(1)), "{t:#}");
    let stages: u64 = t["by_stage"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(stages, 4, "every envelope counted once by stage");
    let rules: Vec<&str> = t["by_rule"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert!(rules.contains(&"customer.document:cpf"), "{rules:?}");
    assert!(t["by_mapping"][0]["value"].as_str().unwrap().starts_with("orders-to-billing@"));
    assert_eq!(t["by_source_topic"][0]["value"], "orders.checkout.v1");
    assert!(t["by_rule"][0]["first_seen_ms"].as_i64().is_some());
    assert!(!stdout(&out).contains("529.982.247-25"), "examples never show a sensitive value");
    assert!(stderr(&out).contains("read 5 of 5 records"), "{}", stderr(&out));

    let text = lambda_stream(&["failures", "--brokers", &brokers, "--topic", &fail, "--since", "1h"]);
    assert!(stdout(&text).contains("5 record(s) read; 1 not lambda-stream fail envelopes"), "{}", stdout(&text));
    let none = lambda_stream(&["failures", "--brokers", &brokers, "--topic", &fail, "--until", "2000-01-01T00:00:00Z"]);
    assert!(stdout(&none).starts_with("0 record(s) read"), "{}", stdout(&none));
    let missing = lambda_stream(&["failures", "--brokers", &brokers, "--topic", "no-such-topic-xyz"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// `replay` after a fix, on the real broker: `--dry-run` counts per old `field:rule` and produces
/// nothing; the replay sends the records that now map to the ok topic — rebuilt with their key,
/// original headers and replay headers — and the rest to the second fail topic; a second replay
/// with the same group finds nothing left; a fail topic that is also `--from` is refused.
#[test]
fn replay_re_drives_failures_through_a_fixed_mapping() {
    let brokers = crate::kafka_util::bootstrap();
    let names: Vec<String> =
        ["rp-ok", "rp-fail", "rp-ok2", "rp-fail2"].iter().map(|p| crate::kafka_util::unique_topic(p)).collect();
    let [ok, fail, ok2, fail2] = &names[..] else { unreachable!() };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::kafka_util::create_topics(&names.iter().map(|t| (t.as_str(), 1)).collect::<Vec<_>>()));
    let args = ["process", "--mapping", "mappings/orders-to-billing.yaml", "--event", "tests/fixtures/events/msk.json"];
    let out = lambda_stream(&[&args[..], &["--brokers", &brokers, "--topic-ok", ok, "--topic-fail", fail]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The fix: the CPF check goes.
    let original = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
    let fixed = crate::util::TempFile::new("fixed.yaml", original.replace("    validate: [cpf]\n", "").as_bytes());
    let replay = |extra: &[&str]| {
        let base = ["replay", "--brokers", &brokers, "--from", fail, "--mapping", fixed.arg(), "--topic-ok", ok2];
        lambda_stream(&[&base[..], &["--topic-fail", fail2, "--format", "json"], extra].concat())
    };

    let dry = replay(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let d: Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(
        (d["read"].as_u64(), d["now_ok"].as_u64(), d["still_failing"].as_u64()),
        (Some(4), Some(1), Some(3)),
        "{d:#}"
    );
    assert_eq!(d["by_old_rule"]["customer.document:cpf"]["now_ok"], 1);
    assert_eq!(d["by_old_rule"]["cancel_reason:cancel_reason_required"]["still_failing"], 1);
    assert!(
        crate::kafka_util::consume(ok2, 1, 1, std::time::Duration::from_secs(2)).is_empty(),
        "a dry run produces nothing"
    );

    let run = replay(&[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let r: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!((r["now_ok"].as_u64(), r["still_failing"].as_u64()), (Some(1), Some(3)), "{r:#}");
    let now_ok = crate::kafka_util::consume(ok2, 1, 1, std::time::Duration::from_secs(15));
    assert_eq!(now_ok.len(), 1);
    let m = &now_ok[0];
    assert_eq!(
        crate::kafka_util::key_text(m).as_deref(),
        Some("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
        "the mapping's key"
    );
    assert_eq!(crate::kafka_util::header(m, "lambda-stream.replay.of").as_deref(), Some("orders.checkout.v1/0/103"));
    assert_eq!(crate::kafka_util::header(m, "lambda-stream.replay.from"), Some(format!("{fail}/0/1")));
    assert!(
        crate::kafka_util::header(m, "lambda-stream.error.stage").is_none(),
        "the old failure's headers stay behind"
    );
    let still = crate::kafka_util::consume(fail2, 1, 3, std::time::Duration::from_secs(15));
    assert_eq!(still.len(), 3);
    // Offset 101 had `traceparent` and `source-region`: rebuilt with them, they travel on.
    let from_101 = still
        .iter()
        .find(|m| {
            crate::kafka_util::header(m, "lambda-stream.replay.of").as_deref() == Some("orders.checkout.v1/0/101")
        })
        .expect("the record of offset 101 still fails");
    assert!(crate::kafka_util::header(from_101, "traceparent").is_some(), "the original headers travel");
    assert!(crate::kafka_util::header(from_101, "source-region").is_some(), "all of them");

    let again = replay(&[]);
    let a: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(a["read"], 0, "the group's commits cover the whole range: {a:#}");

    let same = lambda_stream(&[
        "replay",
        "--brokers",
        &brokers,
        "--from",
        fail,
        "--mapping",
        fixed.arg(),
        "--topic-ok",
        ok2,
        "--topic-fail",
        fail,
    ]);
    assert_eq!(same.status.code(), Some(2));
    assert!(stderr(&same).contains("would feed itself"), "{}", stderr(&same));
}

/// Hostile records on a fail topic — not JSON, an envelope without its source, a value whose
/// base64 is cut short, a huge value — are counted and reported by `failures` and `replay`; none
/// stops them, none is replayed as something it is not.
#[test]
fn hostile_fail_records_are_reported_not_fatal() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let brokers = crate::kafka_util::bootstrap();
    let names: Vec<String> = ["h-fail", "h-ok", "h-fail2"].iter().map(|p| crate::kafka_util::unique_topic(p)).collect();
    let [fail, ok, fail2] = &names[..] else { unreachable!() };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::kafka_util::create_topics(&names.iter().map(|t| (t.as_str(), 1)).collect::<Vec<_>>()));
    let source = r#"{"topic":"orders","partition":0,"offset":5,"timestamp":1,"key":"k","key_encoding":"utf8"}"#;
    let envelope = |value: &str, encoding: &str| {
        format!(
            r#"{{"source":{source},"stage":"validate","errors":[{{"field":"a","rule":"type","message":"m"}}],"mapping":{{"name":"m","version":"v"}},"value":{value},"value_encoding":"{encoding}"}}"#
        )
    };
    let huge = serde_json::to_string(&format!(r#"{{"id": "{}"}}"#, "x".repeat(900_000))).unwrap();
    let records = [
        "{not json".to_string(),
        r#"{"stage":"validate","errors":[]}"#.to_string(),
        envelope(r#""eyJpZCI6""#, "base64").replace("eyJpZCI6", "eyJpZC"),
        envelope(&huge, "utf8"),
    ];
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    for r in &records {
        producer.send(BaseRecord::<(), _>::to(fail).payload(r.as_str())).unwrap();
    }
    producer.flush(std::time::Duration::from_secs(10)).unwrap();

    let out = lambda_stream(&["failures", "--brokers", &brokers, "--topic", fail, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((t["read"].as_u64(), t["not_ours"].as_u64()), (Some(4), Some(2)), "{t:#}");
    assert!(t["not_ours_example"].as_str().unwrap().contains("offset 0"), "{t:#}");

    let out = lambda_stream(&[
        "replay",
        "--brokers",
        &brokers,
        "--from",
        fail,
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--topic-ok",
        ok,
        "--topic-fail",
        fail2,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (r["read"].as_u64(), r["not_ours"].as_u64(), r["still_failing"].as_u64()),
        (Some(4), Some(3), Some(1)),
        "{r:#}"
    );
}
