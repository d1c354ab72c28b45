//! Batch metrics as CloudWatch Embedded Metric Format (EMF) documents: JSON lines on standard
//! output that CloudWatch Logs turns into metrics, with no API call and no latency added.
//!
//! Built from a batch's report after the batch, never on the per-record path. Per batch: one
//! document with the record counts and durations (dimensions `function` and `mapping`), and one
//! per `field:rule` pair that failed records (dimension `rule` added) — EMF gives each dimension
//! one value per document. Those pairs are the [`MAX_RULES`] most frequent of the batch; the
//! rest are summed under `other`, so a batch of any shape adds at most `MAX_RULES + 1` metric
//! streams. A mapping with `outputs:` adds one document per output a batch wrote to, with its
//! messages (dimension `output`). The mapping's version is a property, not a dimension: a new
//! version starts no new metric.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use crate::destination::Routed;
use crate::pipeline::BatchReport;

/// The most `field:rule` pairs a batch reports by name; the rest are summed as `other`.
pub const MAX_RULES: usize = 20;

/// Refreshed mappings refused since the last batch's metrics (live mappings count them here).
pub static MAPPING_REFRESH_REJECTED: AtomicU64 = AtomicU64::new(0);

/// What every document of a function carries.
#[derive(Clone, Debug)]
pub struct MetricsSettings {
    /// `METRICS_NAMESPACE`, default `lambda-stream`.
    pub namespace: String,
    /// The `function` dimension.
    pub function: String,
}

impl MetricsSettings {
    /// From the environment: `None` when `METRICS=off`.
    pub fn from_env(function: &str) -> Option<Self> {
        let off = std::env::var("METRICS").is_ok_and(|v| matches!(v.trim(), "off" | "false" | "0"));
        (!off).then(|| MetricsSettings {
            namespace: std::env::var("METRICS_NAMESPACE")
                .ok()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| "lambda-stream".into()),
            function: function.to_owned(),
        })
    }
}

/// Where a batch came from, as properties of its documents (the event source is the report's).
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchContext<'a> {
    pub request_id: Option<&'a str>,
}

/// The failed records' `field:rule` pairs, most frequent first (ties by name), at most
/// [`MAX_RULES`] of them, then `other` with the rest's sum if any.
pub fn rule_failures(report: &BatchReport) -> Vec<(String, u64)> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for routed in &report.routed {
        let Routed::Message(m) = routed else { continue };
        for e in m.failure.iter().flat_map(|f| &f.errors) {
            *counts.entry(e.field_rule()).or_default() += 1;
        }
    }
    let mut pairs: Vec<(String, u64)> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if pairs.len() > MAX_RULES {
        let other: u64 = pairs.drain(MAX_RULES..).map(|(_, n)| n).sum();
        pairs.push(("other".into(), other));
    }
    pairs
}

/// The EMF documents of one batch, one JSON object each.
pub fn emf_documents(
    report: &BatchReport,
    settings: &MetricsSettings,
    context: BatchContext<'_>,
    timestamp_ms: u64,
) -> Vec<Value> {
    let s = &report.summary;
    // `name@version[,name@version…]` (one per route): names are the dimension, versions a property.
    let (names, versions): (Vec<&str>, Vec<&str>) =
        s.mapping.split(',').map(|m| m.rsplit_once('@').unwrap_or((m, ""))).unzip();
    let mapping = names.join(",");
    let base = |directive: Value| {
        let mut doc = Map::new();
        doc.insert("_aws".into(), json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": [directive] }));
        doc.insert("function".into(), json!(settings.function));
        doc.insert("mapping".into(), json!(mapping));
        doc.insert("version".into(), json!(versions.join(",")));
        if let Some(source) = report.event_source.as_deref() {
            doc.insert("eventSource".into(), json!(source));
        }
        if let Some(id) = context.request_id {
            doc.insert("requestId".into(), json!(id));
        }
        doc
    };
    let counts = [
        ("RecordsReceived", s.received as f64, "Count"),
        ("RecordsOk", s.ok as f64, "Count"),
        ("RecordsFailed", s.failed as f64, "Count"),
        ("RecordsSkipped", s.skipped as f64, "Count"),
        ("DeliveryFailures", report.undelivered.len() as f64, "Count"),
        ("BatchDuration", s.duration_ms as f64, "Milliseconds"),
        ("MappingDuration", round3(report.mapping_ms), "Milliseconds"),
        ("DeliveryDuration", round3(report.delivery_ms), "Milliseconds"),
        ("MappingRefreshRejected", MAPPING_REFRESH_REJECTED.swap(0, Ordering::Relaxed) as f64, "Count"),
    ];
    let metrics: Vec<Value> = counts.iter().map(|(name, _, unit)| json!({ "Name": name, "Unit": unit })).collect();
    let mut main = base(json!({
        "Namespace": settings.namespace,
        "Dimensions": [["function", "mapping"]],
        "Metrics": metrics,
    }));
    for (name, value, _) in counts {
        main.insert(name.into(), json!(value));
    }
    let mut documents = vec![Value::Object(main)];
    for (output, n) in crate::destination::output_counts(report.routed.iter().flat_map(Routed::messages)) {
        let mut doc = base(json!({
            "Namespace": settings.namespace,
            "Dimensions": [["function", "mapping", "output"]],
            "Metrics": [{ "Name": "OutputRecords", "Unit": "Count" }],
        }));
        doc.insert("output".into(), json!(output));
        doc.insert("OutputRecords".into(), json!(n));
        documents.push(Value::Object(doc));
    }
    for (rule, n) in rule_failures(report) {
        let mut doc = base(json!({
            "Namespace": settings.namespace,
            "Dimensions": [["function", "mapping", "rule"]],
            "Metrics": [{ "Name": "FieldRuleFailures", "Unit": "Count" }],
        }));
        doc.insert("rule".into(), json!(rule));
        doc.insert("FieldRuleFailures".into(), json!(n));
        documents.push(Value::Object(doc));
    }
    documents
}

fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The documents as lines of text, ready for standard output.
pub fn emf_lines(report: &BatchReport, settings: &MetricsSettings, context: BatchContext<'_>) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut out = String::new();
    for doc in emf_documents(report, settings, context, now.as_millis() as u64) {
        out.push_str(&doc.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::Router;
    use crate::pipeline::{Pipeline, Summary};
    use crate::record::{Input, Payload, Source};

    fn router() -> Router {
        Router { topic_ok: "ok".into(), topic_fail: "fail".into(), function_name: "f".into(), function_env: "e".into() }
    }

    fn report(mapping: &str, values: &[String]) -> BatchReport {
        let plan = crate::plan::load_str(mapping).unwrap().1;
        let pipeline = Pipeline::new(plan, router());
        let inputs: Vec<Input> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Input {
                source: Source { topic: "in".into(), offset: Some(i as i64), ..Source::default() },
                payload: Payload::Value(v.clone().into_bytes()),
            })
            .collect();
        let (routed, summary) = pipeline.route_batch(&inputs);
        BatchReport {
            summary: Summary { duration_ms: 7, ..summary },
            routed,
            undelivered: Vec::new(),
            mapping_ms: 1.5,
            delivery_ms: 4.25,
            event_source: Some("aws:kafka".into()),
        }
    }

    #[test]
    fn a_batch_gives_its_counts_durations_and_failing_rules() {
        let mapping = "version: 1\nname: m\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n  - {target: e, source: $.e, type: string, validate: [email]}\n";
        let values: Vec<String> =
            [r#"{"id": 1}"#, r#"{"id": "x"}"#, r#"{"id": 2, "e": "nope"}"#, r#"{"id": "y", "e": "nope"}"#]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let r = report(mapping, &values);
        let settings = MetricsSettings { namespace: "ns".into(), function: "fn".into() };
        let docs = emf_documents(&r, &settings, BatchContext { request_id: Some("req-1") }, 1_764_000_000_000);
        assert_eq!(docs.len(), 3, "{docs:#?}");
        let main = &docs[0];
        assert_eq!(
            (main["RecordsReceived"].as_f64(), main["RecordsOk"].as_f64(), main["RecordsFailed"].as_f64()),
            (Some(4.0), Some(1.0), Some(3.0))
        );
        assert_eq!(main["BatchDuration"], 7.0);
        assert_eq!(main["DeliveryDuration"], 4.25);
        assert_eq!(main["mapping"], "m");
        assert_eq!(main["version"].as_str().unwrap().len(), 12, "the version is a property");
        assert_eq!(main["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["function", "mapping"]]));
        assert_eq!(main["requestId"], "req-1");
        let rules: Vec<(&str, u64)> =
            docs[1..].iter().map(|d| (d["rule"].as_str().unwrap(), d["FieldRuleFailures"].as_u64().unwrap())).collect();
        assert_eq!(rules, [("e:email", 2), ("id:type", 2)]);
        let schema: Value = serde_json::from_str(include_str!("../schema/emf.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for doc in &docs {
            check_document(&validator, doc);
        }
        assert_eq!(main["eventSource"], "aws:kafka");
    }

    /// The schema (the integration tests' `emf_documents` also checks each named metric and
    /// dimension is present at the root).
    fn check_document(validator: &jsonschema::Validator, doc: &Value) {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {doc}");
        let named = ["RecordsReceived", "FieldRuleFailures", "OutputRecords"];
        assert!(named.iter().any(|name| doc[name].is_number()), "{doc}");
    }

    #[test]
    fn a_mapping_with_outputs_reports_messages_per_output_and_a_fanned_out_record_once() {
        let mapping = "version: 1\nname: m\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\noutputs:\n  - {name: audit, all: true, when: id > 1, topic: a}\n  - {name: main, topic: b}\n";
        let values: Vec<String> =
            [r#"{"id": 1}"#, r#"{"id": 2}"#, r#"{"id": 3}"#, r#"{"id": "x"}"#].map(String::from).to_vec();
        let r = report(mapping, &values);
        assert_eq!((r.summary.ok, r.summary.failed), (3, 1), "a record fanned out is one ok record");
        let settings = MetricsSettings { namespace: "ns".into(), function: "fn".into() };
        let docs = emf_documents(&r, &settings, BatchContext::default(), 1_764_000_000_000);
        let outputs: Vec<(&str, u64)> = docs
            .iter()
            .filter(|d| d.get("OutputRecords").is_some())
            .map(|d| (d["output"].as_str().unwrap(), d["OutputRecords"].as_u64().unwrap()))
            .collect();
        assert_eq!(outputs, [("main", 3), ("audit", 2)], "in order of first appearance");
        let schema: Value = serde_json::from_str(include_str!("../schema/emf.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for doc in &docs {
            check_document(&validator, doc);
        }
        let output_doc = docs.iter().find(|d| d.get("OutputRecords").is_some()).unwrap();
        assert_eq!(
            output_doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["function", "mapping", "output"]])
        );
    }

    #[test]
    fn a_thousand_distinct_failing_fields_give_at_most_twenty_one_rules() {
        let fields: String = (0..1000)
            .map(|i| format!("  - {{target: f{i}, source: $.f{i}, type: integer, required: true}}\n"))
            .collect();
        let mapping = format!("version: 1\nname: wide\nfields:\n{fields}");
        // One record missing every field: 1,000 distinct `field:required` pairs, plus a second
        // record failing only f0 so that one pair leads.
        let all_but_f0: String = (1..1000).map(|i| format!(r#","f{i}": {i}"#)).collect();
        let values = vec!["{}".to_string(), format!(r#"{{"f0": "x"{all_but_f0}}}"#)];
        let r = report(&mapping, &values);
        let pairs = rule_failures(&r);
        assert_eq!(pairs.len(), MAX_RULES + 1);
        assert_eq!(pairs.last().unwrap().0, "other");
        let total: u64 = pairs.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 1001, "every failure counted, named or in `other`");
        let settings = MetricsSettings { namespace: "ns".into(), function: "fn".into() };
        let docs = emf_documents(&r, &settings, BatchContext::default(), 0);
        let rules: std::collections::HashSet<&str> = docs.iter().filter_map(|d| d["rule"].as_str()).collect();
        assert!(rules.len() <= 21, "{}", rules.len());
    }
}
