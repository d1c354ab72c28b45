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
