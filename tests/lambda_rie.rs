//! End to end through a real Lambda Runtime API: the built binary runs behind AWS's Runtime
//! Interface Emulator (`aws-lambda-rie`, installed by `scripts/install-rie`), is invoked over HTTP
//! with a saved MSK event, and delivers to the local broker.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::emulator::Emulated;
use crate::kafka_util::*;
use crate::util::root;

fn settings(brokers: &str, ok: &str, fail: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LAMBDA_ENV", "test".into()),
        ("ENVIRONMENTS_FILE", "none".into()),
        ("MSK_SERVERS", brokers.into()),
        ("MAPPING_FILE", root().join("mappings/orders-to-billing.yaml").display().to_string()),
        ("TOPIC_OK", ok.into()),
        ("TOPIC_FAIL", fail.into()),
    ]
}

#[test]
fn the_function_serves_a_saved_msk_event_behind_the_emulator() {
    let brokers = bootstrap();
    let (ok, fail) = (unique_topic("rie-ok"), unique_topic("rie-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(create_topics(&[(&ok, 1), (&fail, 1)]));
    let function = Emulated::start(Path::new(env!("CARGO_BIN_EXE_lambda-stream")), &settings(&brokers, &ok, &fail));
    let event = std::fs::read(root().join("tests/fixtures/events/msk.json")).unwrap();

    let (status, body) = function.invoke(&event);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let summary: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&summary["received"], &summary["ok"], &summary["failed"], &summary["skipped"]),
        (&Value::from(8), &Value::from(3), &Value::from(4), &Value::from(1)),
        "{summary}"
    );
    assert_eq!(consume(&ok, 1, 3, Duration::from_secs(15)).len(), 3);
    assert_eq!(consume(&fail, 1, 4, Duration::from_secs(15)).len(), 4);

    // A second invocation reuses the cold-start state (same process, one "ready" line).
    let self_managed = std::fs::read(root().join("tests/fixtures/events/self-managed.json")).unwrap();
    let (status, body) = function.invoke(&self_managed);
    assert_eq!(status, 200);
    let second: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(second["ok"], 1);

    let log = function.log();
    let ready: Vec<&str> = log.lines().filter(|l| l.contains("\"ready\"")).collect();
    assert_eq!(ready.len(), 1, "one cold start for two invocations:\n{log}");
    let ready: Value = serde_json::from_str(ready[0]).expect("JSON log lines in Lambda");
    assert!(ready["fields"]["init_ms"].as_f64().unwrap() > 0.0, "{ready}");
    assert!(log.contains("\"batch done\""), "{log}");
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("record routed to the fail topic")).collect();
    assert_eq!(failed.len(), 4, "one line per failed record:\n{log}");
    assert!(
        failed.iter().any(|l| l.contains("\"rules\":\"customer.document:cpf\"") && l.contains("\"offset\":103")),
        "{failed:?}"
    );
    assert!(!log.contains("529.982.247-25") && !log.contains("123.456.789-00"), "no document numbers in the logs");

    // Each invocation wrote its EMF documents: valid, and counting what its summary counted.
    let docs = crate::util::emf_documents(&log);
    let mains: Vec<&Value> = docs.iter().filter(|d| d.get("RecordsReceived").is_some()).collect();
    assert_eq!(mains.len(), 2, "one main document per invocation:\n{log}");
    let n = |d: &Value, k: &str| d[k].as_f64().unwrap();
    assert_eq!(
        (n(mains[0], "RecordsReceived"), n(mains[0], "RecordsOk"), n(mains[0], "RecordsFailed")),
        (8.0, 3.0, 4.0)
    );
    for (doc, summary) in [(mains[0], &summary), (mains[1], &second)] {
        for (metric, field) in [
            ("RecordsReceived", "received"),
            ("RecordsOk", "ok"),
            ("RecordsFailed", "failed"),
            ("RecordsSkipped", "skipped"),
        ] {
            assert_eq!(n(doc, metric), summary[field].as_f64().unwrap(), "{metric} = the summary's {field}");
        }
    }
    assert!(mains.iter().all(|d| d["requestId"].as_str().is_some_and(|id| !id.is_empty())), "{mains:?}");
    let failures: f64 = docs.iter().filter_map(|d| d["FieldRuleFailures"].as_f64()).sum();
    assert!(failures >= 4.0, "the failed records' rules are counted: {failures}");
}

#[test]
fn a_missing_setting_fails_the_cold_start_with_one_clear_line() {
    let brokers = bootstrap();
    let mut env = settings(&brokers, "ok", "fail");
    env.retain(|(k, _)| *k != "TOPIC_FAIL");
    let function = Emulated::start(Path::new(env!("CARGO_BIN_EXE_lambda-stream")), &env);
    let (status, body) = function.invoke(b"{\"eventSource\": \"aws:kafka\", \"records\": {}}");
    assert!(status >= 500, "the invocation must fail, got {status}: {}", String::from_utf8_lossy(&body));
    std::thread::sleep(Duration::from_millis(300));
    let log = function.log();
    let line = log
        .lines()
        .find(|l| l.contains("cold start failed"))
        .unwrap_or_else(|| panic!("no cold start error in:\n{log}"));
    assert!(line.contains("missing required setting `topic_fail` (environment variable TOPIC_FAIL)"), "{line}");
}
