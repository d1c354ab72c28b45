//! The parcels-to-tracking mapping, end to end through `process`, against an independent reading
//! of its requirements: `tests/fixtures/parcels/reference.py` implements
//! `tests/fixtures/parcels/REQUIREMENTS.md` in Python (exact decimals, the IANA zone database) and
//! wrote `expected.jsonl`, the outcome of each of the 300 shipment events. Every line must agree:
//! its route, an ok record's exact value and key, a failure's stage and `field:rule` pairs.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{lambda_stream, root, stderr, stdout};

const MAPPING: &str = "mappings/parcels-to-tracking.yaml";
const EVENTS: &str = "tests/fixtures/parcels/shipments.jsonl";

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/parcels").join(name)).unwrap()
}

/// The sorted `field:rule` pairs of a failed line (`-` for a record-level error).
fn errors(line: &Value) -> Vec<String> {
    let mut pairs: Vec<String> = line["errors"]
        .as_array()
        .expect("a failed line lists its errors")
        .iter()
        .map(|e| format!("{}:{}", e["field"].as_str().unwrap_or("-"), e["rule"].as_str().unwrap()))
        .collect();
    pairs.sort();
    pairs
}

/// The paths where two JSON values differ, for a readable failure.
fn differences(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys().filter(|k| !e.contains_key(*k))) {
                let (x, y) = (e.get(key).unwrap_or(&Value::Null), a.get(key).unwrap_or(&Value::Null));
                differences(&format!("{path}.{key}"), x, y, out);
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if expected != actual => out.push(format!("{path}: expected {expected}, got {actual}")),
        _ => {}
    }
}

#[test]
fn the_shipped_mapping_compiles_and_its_embedded_tests_pass() {
    let out = lambda_stream(&["validate-mapping", MAPPING]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("parcels-to-tracking.yaml: ok (47 fields, 11/11 tests passed)"), "{text}");
}

#[test]
fn every_shipment_event_ends_as_the_requirements_say() {
    let out = lambda_stream(&["process", "--mapping", MAPPING, "--input", EVENTS]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let actual = json_lines(&stdout(&out));
    let expected = json_lines(&fixture("expected.jsonl"));
    assert_eq!(expected.len(), 300, "the reference judged every event");
    assert_eq!(actual.len(), expected.len(), "one line per event");

    let mut counts = BTreeMap::new();
    let mut mismatches = Vec::new();
    for (want, got) in expected.iter().zip(&actual) {
        let line = &want["line"];
        assert_eq!(got["line"], *line, "lines come out in order");
        let route = want["route"].as_str().unwrap();
        *counts.entry(route).or_insert(0) += 1;
        if got["route"] != want["route"] {
            let detail = if got["route"] == "fail" { format!("{:?}", errors(got)) } else { String::new() };
            mismatches.push(format!("line {line}: expected {route}, got {} {detail}", got["route"]));
            continue;
        }
        match route {
            "ok" => {
                if got["key"] != want["key"] {
                    mismatches.push(format!("line {line}: key {} instead of {}", got["key"], want["key"]));
                }
                let mut paths = Vec::new();
                differences("value", &want["value"], &got["value"], &mut paths);
                mismatches.extend(paths.into_iter().map(|p| format!("line {line}: {p}")));
            }
            "fail" => {
                let wanted: Vec<String> =
                    want["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_owned()).collect();
                if errors(got) != wanted {
                    mismatches.push(format!("line {line}: errors {:?} instead of {wanted:?}", errors(got)));
                }
                if got["stage"] != want["stage"] {
                    mismatches.push(format!("line {line}: stage {} instead of {}", got["stage"], want["stage"]));
                }
            }
            _ => assert_eq!(got["reason"], "dropped", "line {line}"),
        }
    }
    let shown = mismatches.iter().take(60).cloned().collect::<Vec<_>>().join("\n");
    assert!(mismatches.is_empty(), "{} difference(s) from the reference, the first:\n{shown}", mismatches.len());

    // The fixtures hold every outcome in a realistic share, and the summary counts them alike.
    let (ok, fail, skip) = (counts["ok"], counts["fail"], counts["skip"]);
    assert!(ok > 150 && fail > 60 && skip > 10, "{counts:?}");
    let summary = stderr(&out);
    let said = format!("300 records: {ok} ok, {fail} failed, {skip} skipped (dropped by the mapping)");
    assert!(summary.contains(&said), "{summary}");
}

#[test]
fn the_recipients_phone_and_email_never_leave_in_clear() {
    let out = lambda_stream(&["process", "--mapping", MAPPING, "--input", EVENTS]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = stdout(&out);
    let mut checked = 0;
    for event in json_lines(&fixture("shipments.jsonl")) {
        let recipient = &event["recipient"];
        if let Some(phone) = recipient["phone"].as_str() {
            let normalised: String = phone.chars().filter(|c| !c.is_whitespace() && !"-.()".contains(*c)).collect();
            for clear in [phone.trim(), normalised.as_str()] {
                assert!(!all.contains(clear), "a recipient's phone left in clear: {clear}");
            }
            checked += 1;
        }
        if let Some(email) = recipient["email"].as_str() {
            let email = email.trim().to_lowercase();
            assert!(!all.contains(&email), "a recipient's email left in clear: {email}");
        }
    }
    assert!(checked > 250, "only {checked} phones checked");

    // A phone or an email that fails its check is reported without its value.
    let mut hidden = 0;
    for line in json_lines(&all).iter().filter(|l| l["route"] == "fail") {
        for error in line["errors"].as_array().unwrap() {
            if matches!(error["field"].as_str(), Some("recipient.phone" | "recipient.email"))
                && error["rule"] != "required"
            {
                let message = error["message"].as_str().unwrap();
                assert!(message.contains("value hidden"), "line {}: {message}", line["line"]);
                hidden += 1;
            }
        }
    }
    assert!(hidden >= 10, "only {hidden} hidden values checked");
}
