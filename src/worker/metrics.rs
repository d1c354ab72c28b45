//! The worker's metrics in the Prometheus text format, and its health, on a small HTTP endpoint
//! (`lambda-stream run --metrics-addr 127.0.0.1:9464`): `/metrics`, `/healthz`, `/readyz`.
//!
//! The loop only adds to counters (atomic increments, after each batch, never per record); the
//! endpoint runs on a thread of its own and reads them, the consumer lag and the heartbeat when
//! scraped, so a slow or stuck scraper never slows or blocks the loop. Names follow Prometheus'
//! conventions: `lambda_stream_` prefix, base units (seconds), `_total` counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::heartbeat::Heartbeat;
use crate::pipeline::Summary;
use crate::route::OutMessage;

/// Distinct `rule` label values kept over the worker's life; later new pairs count as `other`,
/// so no input can grow the series without bound.
pub const MAX_RULE_SERIES: usize = 100;

/// Every metric of the worker, registered in its own registry.
pub struct WorkerMetrics {
    registry: Registry,
    received: IntCounter,
    records: IntCounterVec,
    rule_failures: IntCounterVec,
    rules_seen: Mutex<std::collections::HashSet<String>>,
    delivery_retries: IntCounter,
    batch_seconds: Histogram,
    in_flight: IntGauge,
    commits: IntCounter,
    rebalances: IntCounterVec,
    transaction_aborts: IntCounter,
    refresh_rejected: IntCounter,
    assigned_partitions: IntGauge,
    lag: IntGaugeVec,
    mapping: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

impl WorkerMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let vec = |name: &str, help: &str, labels: &[&str]| {
            let v = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry.register(Box::new(v.clone())).expect("registered once");
            v
        };
        let records = vec("lambda_stream_records_total", "Records mapped, by where they went.", &["route"]);
        let rule_failures =
            vec("lambda_stream_field_rule_failures_total", "Errors of failed records, by field:rule.", &["rule"]);
        let rebalances = vec("lambda_stream_rebalances_total", "Consumer group rebalances, by kind.", &["kind"]);
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("a valid metric");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
            registry.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "lambda_stream_batch_duration_seconds",
                "From a batch's mapping to its commit: mapping, delivery, acknowledgements.",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .expect("a valid metric");
        registry.register(Box::new(batch_seconds.clone())).expect("registered once");
        WorkerMetrics {
            received: counter(&registry, "lambda_stream_records_received_total", "Records consumed and mapped."),
            delivery_retries: counter(
                &registry,
                "lambda_stream_delivery_retries_total",
                "Batch deliveries sent again after a failed acknowledgement.",
            ),
            commits: counter(&registry, "lambda_stream_commits_total", "Offset commits (or committed transactions)."),
            transaction_aborts: counter(
                &registry,
                "lambda_stream_transaction_aborts_total",
                "Transactions aborted (exactly-once); their batch runs again.",
            ),
            refresh_rejected: counter(
                &registry,
                "lambda_stream_mapping_refresh_rejected_total",
                "New mapping versions refused (they did not compile or their tests failed).",
            ),
            in_flight: gauge("lambda_stream_in_flight_records", "Records consumed and not yet committed."),
            assigned_partitions: gauge("lambda_stream_assigned_partitions", "Partitions assigned to this member."),
            lag: gauge_vec(
                "lambda_stream_consumer_lag",
                "Records behind the partition's end, from librdkafka's statistics.",
                &["topic", "partition"],
            ),
            mapping: gauge_vec("lambda_stream_mapping_info", "The mapping in use (value 1).", &["mapping"]),
            records,
            rule_failures,
            rules_seen: Mutex::new(Default::default()),
            rebalances,
            batch_seconds,
            registry,
        }
    }

    /// A batch settled (delivered and committed): its counts, its errors by `field:rule`, its time.
    pub fn batch(&self, summary: &Summary, messages: &[OutMessage], seconds: f64) {
        self.received.inc_by(summary.received as u64);
        self.records.with_label_values(&["ok"]).inc_by(summary.ok as u64);
        self.records.with_label_values(&["fail"]).inc_by(summary.failed as u64);
        self.records.with_label_values(&["skipped"]).inc_by(summary.skipped as u64);
        self.batch_seconds.observe(seconds);
        self.in_flight.sub(summary.received as i64);
        let mut seen = self.rules_seen.lock().expect("not poisoned");
        for e in messages.iter().filter_map(|m| m.failure.as_ref()).flat_map(|f| &f.errors) {
            let pair = e.field_rule();
            let label = if seen.contains(&pair) || seen.len() < MAX_RULE_SERIES {
                seen.insert(pair.clone());
                pair
            } else {
                "other".to_string()
            };
            self.rule_failures.with_label_values(&[&label]).inc();
        }
        let mapping = summary.mapping.as_str();
        if self.mapping.get_metric_with_label_values(&[mapping]).map_or(true, |g| g.get() != 1) {
            self.mapping.reset();
            self.mapping.with_label_values(&[mapping]).set(1);
        }
    }

    pub fn committed(&self) {
        self.commits.inc();
    }

    pub fn delivery_retried(&self) {
        self.delivery_retries.inc();
    }

    pub fn transaction_aborted(&self) {
        self.transaction_aborts.inc();
    }

    /// Records handed to the loop's mapping and delivery stages.
    pub fn consumed(&self, records: usize) {
        self.in_flight.add(records as i64);
    }

    /// Records that leave those stages uncommitted (an aborted transaction's batch, consumed again).
    pub fn released(&self, records: usize) {
        self.in_flight.sub(records as i64);
    }

    /// A rebalance: `assign` with the partitions now assigned, or `revoke`.
    pub fn rebalanced(&self, kind: &str, assigned: Option<usize>) {
        self.rebalances.with_label_values(&[kind]).inc();
        self.assigned_partitions.set(assigned.unwrap_or(0) as i64);
    }

    pub fn assigned_partitions(&self) -> i64 {
        self.assigned_partitions.get()
    }

    /// The text of `/metrics`, with the lag as last read from librdkafka's statistics.
    pub fn render(&self, lag: &HashMap<(String, i32), i64>) -> String {
        self.refresh_rejected.inc_by(crate::telemetry::MAPPING_REFRESH_REJECTED.swap(0, Ordering::Relaxed));
        self.lag.reset();
        for ((topic, partition), records) in lag {
            self.lag.with_label_values(&[topic, &partition.to_string()]).set(*records);
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("the text encoder writes to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What the endpoint reads when scraped.
pub struct Endpoint {
    pub metrics: Arc<WorkerMetrics>,
    pub lag: Arc<Mutex<HashMap<(String, i32), i64>>>,
    pub heartbeat: Arc<Heartbeat>,
    /// Longer than this in one step, and the loop is stalled (the watchdog's limit).
    pub stall_limit: Duration,
}

/// The endpoint's listening socket, bound before the worker connects to anything, so a taken
/// address fails the start at once.
pub struct Listener(tiny_http::Server);

impl Listener {
    pub fn bind(addr: SocketAddr) -> Result<Self, String> {
        tiny_http::Server::http(addr).map(Listener).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.server_addr().to_ip().expect("a TCP listener has an IP address")
    }
}

/// Serves on a thread of its own: `/metrics` (Prometheus text), `/healthz` (200 while the loop is
/// not stalled, else 503), `/readyz` (200 once partitions are assigned and the loop is healthy,
/// else 503).
pub fn serve(listener: Listener, endpoint: Endpoint) -> Result<(), String> {
    let server = listener.0;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let (status, body, content_type) = answer(&endpoint, request.url());
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
                    .expect("a valid header");
                let _ = request
                    .respond(tiny_http::Response::from_string(body).with_status_code(status).with_header(header));
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(())
}

fn answer(endpoint: &Endpoint, url: &str) -> (u16, String, &'static str) {
    let stalled = endpoint.heartbeat.stalled(endpoint.stall_limit);
    match url.split('?').next().unwrap_or_default() {
        "/metrics" => {
            let lag = endpoint.lag.lock().expect("not poisoned").clone();
            (200, endpoint.metrics.render(&lag), "text/plain; version=0.0.4; charset=utf-8")
        }
        "/healthz" => match stalled {
            None => (200, "ok\n".into(), "text/plain"),
            Some((step, how_long)) => (503, format!("stalled: {} s in `{step}`\n", how_long.as_secs()), "text/plain"),
        },
        "/readyz" => match (stalled, endpoint.metrics.assigned_partitions()) {
            (Some((step, _)), _) => (503, format!("not ready: stalled in `{step}`\n"), "text/plain"),
            (None, 0) => (503, "not ready: no partition assigned\n".into(), "text/plain"),
            (None, n) => (200, format!("ready: {n} partition(s)\n"), "text/plain"),
        },
        _ => (404, "not found: /metrics, /healthz, /readyz\n".into(), "text/plain"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Failure, FieldError, Stage};
    use crate::route::{Origin, Route};

    fn failed(field: &str, rule: &str) -> OutMessage {
        OutMessage {
            route: Route::Fail,
            topic: "fail".into(),
            key: None,
            payload: Vec::new(),
            headers: Vec::new(),
            origin: Origin::of(&crate::record::Source::default()),
            failure: Some(Failure {
                stage: Stage::Validate,
                errors: vec![FieldError { field: Some(field.into()), rule: rule.into(), message: String::new() }],
            }),
        }
    }

    fn value(text: &str, sample: &str) -> f64 {
        text.lines()
            .find(|l| l.starts_with(sample) && l[sample.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no `{sample}` in:\n{text}"))
    }

    #[test]
    fn batches_add_to_counters_and_rules_are_capped() {
        let m = WorkerMetrics::new();
        m.consumed(10);
        let summary =
            Summary { received: 10, ok: 6, failed: 3, skipped: 1, mapping: "m@abc".into(), ..Summary::default() };
        let messages = vec![failed("a", "type"), failed("a", "type"), failed("b", "cpf")];
        m.batch(&summary, &messages, 0.02);
        m.committed();
        let text = m.render(&HashMap::from([(("in".to_string(), 2), 42)]));
        assert_eq!(value(&text, "lambda_stream_records_received_total"), 10.0);
        assert_eq!(value(&text, r#"lambda_stream_records_total{route="ok"}"#), 6.0);
        assert_eq!(value(&text, r#"lambda_stream_records_total{route="fail"}"#), 3.0);
        assert_eq!(value(&text, r#"lambda_stream_field_rule_failures_total{rule="a:type"}"#), 2.0);
        assert_eq!(value(&text, "lambda_stream_in_flight_records"), 0.0);
        assert_eq!(value(&text, "lambda_stream_commits_total"), 1.0);
        assert_eq!(value(&text, "lambda_stream_batch_duration_seconds_count"), 1.0);
        assert_eq!(value(&text, r#"lambda_stream_consumer_lag{partition="2",topic="in"}"#), 42.0);
        assert_eq!(value(&text, r#"lambda_stream_mapping_info{mapping="m@abc"}"#), 1.0);

        // However many distinct pairs come, the series stop growing at the cap.
        let many: Vec<OutMessage> = (0..MAX_RULE_SERIES + 50).map(|i| failed(&format!("f{i}"), "required")).collect();
        m.batch(&Summary { received: many.len(), failed: many.len(), ..Summary::default() }, &many, 0.01);
        let text = m.render(&HashMap::new());
        let series = text.lines().filter(|l| l.starts_with("lambda_stream_field_rule_failures_total{")).count();
        assert_eq!(series, MAX_RULE_SERIES + 1, "the cap, plus `other`");
        assert!(value(&text, r#"lambda_stream_field_rule_failures_total{rule="other"}"#) >= 50.0);
    }

    #[test]
    fn health_follows_the_heartbeat_and_readiness_the_assignment() {
        let endpoint = Endpoint {
            metrics: Arc::new(WorkerMetrics::new()),
            lag: Arc::default(),
            heartbeat: Arc::new(Heartbeat::new()),
            stall_limit: Duration::from_millis(50),
        };
        endpoint.heartbeat.beat("polling");
        assert_eq!(answer(&endpoint, "/healthz").0, 200);
        assert_eq!(answer(&endpoint, "/readyz").0, 503, "no partition yet");
        endpoint.metrics.rebalanced("assign", Some(3));
        assert_eq!(answer(&endpoint, "/readyz").0, 200);
        std::thread::sleep(Duration::from_millis(80));
        let (status, body, _) = answer(&endpoint, "/healthz");
        assert_eq!(status, 503);
        assert!(body.contains("polling"), "{body}");
        assert_eq!(answer(&endpoint, "/readyz").0, 503, "a stalled loop is not ready");
        endpoint.heartbeat.beat("polling");
        assert_eq!(answer(&endpoint, "/healthz").0, 200, "healthy again once it moves");
        assert_eq!(answer(&endpoint, "/nope").0, 404);
        assert!(answer(&endpoint, "/metrics").1.contains("lambda_stream_assigned_partitions 3"));
    }
}
