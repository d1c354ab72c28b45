//! The payments-to-ledger mapping, end to end through `process`: business rules, computed fields,
//! items, lookups, hashing, hidden fields and dropped test events, on the payment fixtures.

use serde_json::{Value, json};

use crate::util::{lambda_stream, stderr, stdout};

fn run() -> (Vec<Value>, String) {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/payments-to-ledger.yaml",
        "--input",
        "tests/fixtures/payments.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = stdout(&out).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    (lines, stderr(&out))
}

/// `field:rule` of each error of a failed line.
fn errors(line: &Value) -> Vec<String> {
    line["errors"]
        .as_array()
        .expect("a failed line lists its errors")
        .iter()
        .map(|e| format!("{}:{}", e["field"].as_str().unwrap_or("-"), e["rule"].as_str().unwrap()))
        .collect()
}

#[test]
fn the_shipped_mapping_compiles_and_its_embedded_tests_pass() {
    let out = lambda_stream(&["validate-mapping", "mappings/payments-to-ledger.yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("payments-to-ledger.yaml: ok (32 fields, 11/11 tests passed)"), "{text}");
}

#[test]
fn every_payment_ends_in_one_place_with_the_right_values() {
    let (lines, summary) = run();
    let routes: Vec<&str> = lines.iter().map(|l| l["route"].as_str().unwrap()).collect();
    assert_eq!(
        routes,
        ["ok", "ok", "skip", "fail", "fail", "ok", "fail", "fail", "fail", "ok", "fail", "fail"],
        "one line per record, in order"
    );
    assert!(summary.contains("12 records: 4 ok, 7 failed, 1 skipped (dropped by the mapping)"), "{summary}");
    assert_eq!(lines[2]["reason"], "dropped");

    let first = &lines[0]["value"];
    assert_eq!(
        *first,
        json!({
            "payment_id": "txn_0123456789abcdef", "status": "CAPTURED", "currency": "BRL",
            "amount_cents": 75900, "amount": "759.00", "captured_cents": 75900, "refunded_cents": 0,
            "fee_cents": 2277, "net_cents": 73623, "installments": 3,
            "created_at": "2026-11-01T13:15:00Z", "settlement_date": "2026-11-03",
            "merchant": {"id": "88231", "cnpj": "11222333000181", "mcc": 5651, "category": "apparel"},
            "payer": {"document_type": "CPF", "document_sha256": "7281dfb5e8becca0a1c5e77c1268baacb0f983572b8c204fd8df72b24175b231", "email": "ana@example.com"},
            "card": {"masked": "411111******1111", "expiry": "03/2029"},
            "items": [
                {"sku": "TSHIRT-M", "quantity": 2, "unit_cents": 25950, "total_cents": 51900},
                {"sku": "CAP", "quantity": 1, "unit_cents": 24000, "total_cents": 24000}
            ],
            "items_count": 2, "items_total_cents": 75900, "channel": "app"
        })
    );
    assert_eq!(lines[0]["key"], "txn_0123456789abcdef", "the key is payment_id");

    // Digit strings, a null fee, no items, a grocery code given as text, no channel.
    let second = &lines[1]["value"];
    assert_eq!(second["amount"], "19.99");
    assert_eq!(second["fee_cents"], 0);
    assert_eq!(second["net_cents"], 1999);
    assert_eq!(second["installments"], 1);
    assert_eq!(second["items"], json!([]));
    assert_eq!(second["items_count"], 0);
    assert_eq!(second["merchant"]["category"], "grocery");
    assert_eq!(second["channel"], "web");
    assert_eq!(lines[5]["value"]["status"], "DECLINED");
    assert_eq!(lines[9]["value"]["chargeback_id"], "cb_1");

    assert_eq!(errors(&lines[3]), ["-:refund_within_capture"]);
    assert_eq!(lines[3]["stage"], "rule");
    assert_eq!(errors(&lines[4]), ["decline_code:decline_has_code"]);
    assert_eq!(errors(&lines[6]), ["payer.document:cnpj"]);
    assert_eq!(errors(&lines[7]), ["items[0].quantity:range"], "the rules reading items are not judged");
    assert_eq!(errors(&lines[8]), ["created_at:parse_datetime", "settlement_date:parse_date"]);
    assert_eq!(errors(&lines[10]), ["-:items_match_amount"]);
    assert_eq!(errors(&lines[11]), ["payment_id:pattern", "currency:one_of"]);
    let message = lines[3]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("captured_cents = 75900, refunded_cents = 80000"), "{message}");

    let all = lines.iter().map(Value::to_string).collect::<String>();
    for clear in ["52998224725", "529.982.247-25"] {
        assert!(!all.contains(clear), "the clear document never leaves: {clear}");
    }
    assert!(!all.contains("\"bin\"") && !all.contains("exp_month"), "hidden card parts are not written");
}
