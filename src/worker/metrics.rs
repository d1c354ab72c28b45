//! The worker's metrics in the Prometheus text format, and its health, on a small HTTP endpoint
//! (`lambda-stream run --metrics-addr 127.0.0.1:9464`): `/metrics`, `/healthz`, `/readyz`.
//!
//! The loop only adds to counters (atomic increments, after each batch, never per record); the
//! endpoint runs on a thread of its own and reads them, the consumer lag and the heartbeat when
//! scraped, so a slow or stuck scraper never slows or blocks the loop. Names follow Prometheus'
//! conventions: `lambda_stream_` prefix, base units (seconds), `_total` counters.
//!
//! The server is hyper's HTTP/1.1 on a one-thread runtime of its own: each connection is a task
//! with a deadline for its request head and a lifetime, and [`MAX_CONNECTIONS`] are open at most,
//! so a client that stalls, or many of them, never delays a liveness probe or a scrape.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::heartbeat::Heartbeat;
use crate::destination::OutMessage;
use crate::pipeline::Summary;

/// Distinct `rule` label values kept over the worker's life; later new pairs count as `other`,
/// so no input can grow the series without bound.
pub const MAX_RULE_SERIES: usize = 100;

/// Every metric of the worker, registered in its own registry.
pub struct WorkerMetrics {
    registry: Registry,
    received: IntCounter,
    records: IntCounterVec,
    outputs: IntCounterVec,
    rule_failures: IntCounterVec,
    rules_seen: Mutex<std::collections::HashSet<String>>,
    delivery_retries: IntCounter,
    batch_seconds: Histogram,
    in_flight: IntGauge,
    commits: IntCounter,
    commits_refused_at_stop: IntCounter,
    rebalances: IntCounterVec,
    transaction_aborts: IntCounter,
    refresh_rejected: IntCounter,
    assigned_partitions: IntGauge,
    lag: IntGaugeVec,
    mapping: IntGaugeVec,
    group_protocol: IntGaugeVec,
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
        // Output names are the mapping's own (`outputs:`): a handful, never from the records.
        let outputs = vec(
            "lambda_stream_output_records_total",
            "Messages produced to the mapping's outputs, by output.",
            &["output"],
        );
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
            commits_refused_at_stop: counter(
                &registry,
                "lambda_stream_commits_refused_at_stop_total",
                "Final commits at a stop the group refused or did not answer in time (their records are read again by the next owner).",
            ),
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
            group_protocol: gauge_vec(
                "lambda_stream_group_protocol_info",
                "The group protocol this member speaks, classic or consumer (value 1).",
                &["protocol"],
            ),
            records,
            outputs,
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
        for (output, count) in crate::destination::output_counts(messages.iter()) {
            self.outputs.with_label_values(&[output]).inc_by(count);
        }
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

    pub fn commit_refused_at_stop(&self) {
        self.commits_refused_at_stop.inc();
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
    pub fn rebalanced(&self, kind: &str) {
        self.rebalances.with_label_values(&[kind]).inc();
    }

    pub fn set_group_protocol(&self, protocol: &str) {
        self.group_protocol.with_label_values(&[protocol]).set(1);
    }

    pub fn set_assigned_partitions(&self, count: usize) {
        self.assigned_partitions.set(count as i64);
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

/// Connections open at once. A newcomer past it closes the least recently active one (the one
/// whose accept or latest request is the oldest): a flood of idle or stalled connections pushes
/// out its own oldest members rather than a probe or a scrape that just arrived.
pub const MAX_CONNECTIONS: usize = 64;

/// The time a request's line and headers have to arrive whole, from the connection's accept or
/// from the previous answer on it: a client that stalls, and a keep-alive connection left idle,
/// are closed (without an answer) after it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a connection is served. Then it is closed once the answer in hand is written, and
/// at once [`HEADER_READ_TIMEOUT`] later if that answer is still not taken.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// The most a connection buffers: a request line and headers larger than this are refused (431).
const MAX_BUFFER_BYTES: usize = 16 << 10;

/// The endpoint's bounds against clients that connect and stall: each holds only its own
/// connection, for a bounded time.
#[derive(Clone, Copy, Debug)]
struct Limits {
    header_read: Duration,
    lifetime: Duration,
    max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { header_read: HEADER_READ_TIMEOUT, lifetime: CONNECTION_LIFETIME, max_connections: MAX_CONNECTIONS }
    }
}

/// Why the metrics endpoint cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot start the metrics endpoint: {0}")]
    Start(#[source] std::io::Error),
    #[error("cannot start the metrics thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The endpoint's listening socket, bound before the worker connects to anything, so a taken
/// address fails the start at once.
pub struct Listener(std::net::TcpListener);

impl Listener {
    pub fn bind(addr: SocketAddr) -> Result<Self, EndpointError> {
        let bind = |source| EndpointError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        Ok(Listener(listener))
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().expect("a bound TCP listener has an address")
    }
}

/// Serves on a thread of its own: `/metrics` (Prometheus text), `/healthz` (200 while the loop is
/// not stalled, else 503), `/readyz` (200 once partitions are assigned and the loop is healthy,
/// else 503). HTTP/1.1 with keep-alive, within [`HEADER_READ_TIMEOUT`], [`CONNECTION_LIFETIME`]
/// and [`MAX_CONNECTIONS`]. The thread runs a one-thread runtime of its own, so the endpoint
/// answers whatever the worker's runtime is doing: `/healthz` says 503 while the loop is stuck.
pub fn serve(listener: Listener, endpoint: Endpoint) -> Result<(), EndpointError> {
    serve_with(listener, endpoint, Limits::default())
}

fn serve_with(listener: Listener, endpoint: Endpoint, limits: Limits) -> Result<(), EndpointError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(EndpointError::Start)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener.0).map_err(EndpointError::Start)?
    };
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || runtime.block_on(accept(listener, Arc::new(endpoint), limits)))
        .map_err(EndpointError::Thread)?;
    Ok(())
}

/// The connections being served, by id.
#[derive(Default)]
struct Open {
    connections: std::collections::BTreeMap<u64, OpenConnection>,
    next_id: u64,
}

struct OpenConnection {
    /// The tick of its accept or of its latest request, on a clock that ticks at each of both.
    active: Arc<std::sync::atomic::AtomicU64>,
    /// Dropped to close it.
    _close: tokio::sync::oneshot::Sender<()>,
}

/// Removes its connection from [`Open`] when the connection's task ends, however it ends.
struct Slot {
    open: Arc<Mutex<Open>>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).connections.remove(&self.id);
    }
}

async fn accept(listener: tokio::net::TcpListener, endpoint: Arc<Endpoint>, limits: Limits) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_buf_size(MAX_BUFFER_BYTES);
    let open = Arc::new(Mutex::new(Open::default()));
    let clock = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut warned: Option<std::time::Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, or a connection reset before it was accepted: go on.
            Err(e) => {
                if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "the metrics endpoint cannot accept a connection");
                    warned = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let active = Arc::new(std::sync::atomic::AtomicU64::new(clock.fetch_add(1, Ordering::Relaxed)));
        let (close, closed) = tokio::sync::oneshot::channel();
        let id = {
            let mut open = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            while open.connections.len() >= limits.max_connections.max(1) {
                let oldest = open.connections.iter().min_by_key(|(_, c)| c.active.load(Ordering::Relaxed));
                let Some(oldest) = oldest.map(|(id, _)| *id) else { break };
                open.connections.remove(&oldest);
            }
            let id = open.next_id;
            open.next_id += 1;
            open.connections.insert(id, OpenConnection { active: Arc::clone(&active), _close: close });
            id
        };
        let slot = Slot { open: Arc::clone(&open), id };
        let endpoint = Arc::clone(&endpoint);
        let clock = Arc::clone(&clock);
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            active.store(clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
            let (status, body, content_type) = answer(&endpoint, request.uri().path());
            let response =
                hyper::Response::builder().status(status).header(hyper::header::CONTENT_TYPE, content_type).body(body);
            std::future::ready(response)
        });
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::spawn(serve_connection(connection, closed, slot, limits));
    }
}

/// Serves one connection until it ends, is closed to make room, or outlives its lifetime.
async fn serve_connection<I, S>(
    connection: hyper::server::conn::http1::Connection<I, S>,
    mut closed: tokio::sync::oneshot::Receiver<()>,
    _slot: Slot,
    limits: Limits,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => {
            if let Err(e) = ended {
                tracing::debug!(error = %e, "metrics endpoint connection ended");
            }
            return;
        }
        _ = &mut closed => return,
        () = tokio::time::sleep(limits.lifetime) => {}
    }
    // Closed now if idle, else once the answer in hand is written, else when the grace ends.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = &mut closed => {}
        () = tokio::time::sleep(limits.header_read) => {}
    }
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
    use crate::destination::{Destination, Origin};
    use crate::plan::{Failure, FieldError, Stage};

    fn failed(field: &str, rule: &str) -> OutMessage {
        OutMessage {
            destination: Destination::Fail,
            topic: "fail".into(),
            key: None,
            payload: Vec::new(),
            headers: Vec::new(),
            origin: Origin::of(&crate::record::Source::default()),
            failure: Some(Failure {
                stage: Stage::Validate,
                errors: vec![FieldError { field: Some(field.into()), rule: rule.into(), message: String::new() }],
                id: None,
            }),
            output: None,
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
        endpoint.metrics.rebalanced("assign");
        endpoint.metrics.set_assigned_partitions(3);
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

    // Over HTTP, in-process: a server on 127.0.0.1:0, blocking clients with read timeouts, so
    // every test ends within seconds whatever the server does.

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    /// A server with `limits` whose loop is stalled once `stall_limit` passes without a beat.
    fn start(limits: Limits, stall_limit: Duration) -> (SocketAddr, Arc<Heartbeat>) {
        let heartbeat = Arc::new(Heartbeat::new());
        let endpoint = Endpoint {
            metrics: Arc::new(WorkerMetrics::new()),
            lag: Arc::default(),
            heartbeat: Arc::clone(&heartbeat),
            stall_limit,
        };
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).expect("a free port");
        let addr = listener.addr();
        serve_with(listener, endpoint, limits).expect("serving");
        (addr, heartbeat)
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connected");
        stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        stream
    }

    /// One answer on `stream`: its status and body, read by its `Content-Length`.
    fn read_answer(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
        let mut bytes = Vec::new();
        let mut byte = [0u8];
        while !bytes.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            bytes.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&bytes).to_string();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .expect("a Content-Length");
        let mut body = vec![0; length];
        stream.read_exact(&mut body)?;
        Ok((status, String::from_utf8(body).expect("UTF-8")))
    }

    /// A `GET` on a new connection: the status and body, or why there were none within 2 s.
    fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
        let mut stream = connect(addr);
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .map_err(|e| format!("GET {path}: {e}"))?;
        read_answer(&mut stream).map_err(|e| format!("GET {path}: {e}"))
    }

    /// Waits (at most `within`) for the server to close `stream`; whatever it sends first is read
    /// and ignored. How long it took, or an error if it stayed open.
    fn closed_within(stream: &mut TcpStream, within: Duration) -> std::io::Result<Duration> {
        let still_open = || std::io::Error::new(std::io::ErrorKind::TimedOut, format!("still open after {within:?}"));
        let started = Instant::now();
        let mut buffer = [0u8; 1024];
        loop {
            let left = within.checked_sub(started.elapsed()).ok_or_else(still_open)?;
            stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            match stream.read(&mut buffer) {
                Ok(0) => return Ok(started.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(started.elapsed()),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(still_open());
                }
                Err(e) => return Err(e),
            }
        }
    }

    #[test]
    fn serves_metrics_and_health_over_http_while_the_loop_is_stalled() {
        // Started, as `run` does, from inside the worker's runtime, whose one thread then stays
        // blocked: the endpoint answers all the same, on a runtime of its own.
        let worker_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _entered = worker_runtime.enter();
        let (addr, heartbeat) = start(Limits::default(), Duration::from_millis(50));
        worker_runtime.block_on(async {
            heartbeat.beat("polling");
            assert_eq!(get(addr, "/healthz").unwrap().0, 200);
            let (status, body) = get(addr, "/metrics").unwrap();
            assert_eq!(status, 200);
            assert!(body.contains("lambda_stream_records_received_total 0"), "{body}");
            std::thread::sleep(Duration::from_millis(80));
            let (status, body) = get(addr, "/healthz").unwrap();
            assert_eq!((status, body.as_str()), (503, "stalled: 0 s in `polling`\n"));
            assert_eq!(get(addr, "/readyz?verbose").unwrap().0, 503);
            assert_eq!(get(addr, "/nope").unwrap().0, 404);
            // A head that fills the buffer without ending (exactly, so that none of it is left
            // unread when the server closes, which would reset the connection before its answer).
            let mut stream = connect(addr);
            let mut head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
            head.resize(MAX_BUFFER_BYTES, b'a');
            stream.write_all(&head).unwrap();
            assert_eq!(read_answer(&mut stream).unwrap().0, 431, "a head larger than the buffer is refused");
        });
    }

    #[test]
    fn a_stalled_client_never_delays_another_request_and_is_closed_after_the_deadline() {
        let (header_read, lifetime) = (Duration::from_secs(1), Duration::from_secs(3));
        let (addr, heartbeat) = start(Limits { header_read, lifetime, ..Limits::default() }, Duration::from_secs(600));
        heartbeat.beat("polling");
        // Half a head: the request line and one header, then nothing.
        let mut half_head = connect(addr);
        half_head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
        // Whole heads announcing 1,000 and 100,000 bytes of body, and 10 of them.
        let mut short_bodies: Vec<TcpStream> = [1_000, 100_000]
            .iter()
            .map(|length| {
                let mut stream = connect(addr);
                let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n0123456789");
                stream.write_all(request.as_bytes()).unwrap();
                stream
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));

        let asked = Instant::now();
        assert_eq!(get(addr, "/healthz").map(|a| a.0), Ok(200));
        assert!(asked.elapsed() < Duration::from_secs(2), "answered in {:?}", asked.elapsed());
        assert_eq!(get(addr, "/metrics").map(|a| a.0), Ok(200));

        let took = closed_within(&mut half_head, header_read + Duration::from_secs(3))
            .expect("the half-sent head is closed after the deadline");
        assert!(took + Duration::from_millis(300) >= header_read, "closed after {took:?}, before the deadline");
        // A connection whose body never arrives whole is answered (an endpoint reads no body)
        // and closed, at the latest at the end of its lifetime.
        for stream in &mut short_bodies {
            let _ = read_answer(stream);
            closed_within(stream, lifetime + header_read + Duration::from_secs(2))
                .expect("the connection with a short body is closed");
        }
    }

    #[test]
    fn an_idle_keep_alive_connection_times_out() {
        let header_read = Duration::from_secs(1);
        let (addr, _) = start(Limits { header_read, ..Limits::default() }, Duration::from_secs(600));
        let mut stream = connect(addr);
        for _ in 0..2 {
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            assert_eq!(read_answer(&mut stream).unwrap().0, 200, "kept alive between requests");
        }
        closed_within(&mut stream, header_read + Duration::from_secs(3)).expect("an idle connection is closed");
    }

    #[test]
    fn past_the_cap_the_least_recently_active_connection_is_closed() {
        let limits = Limits { max_connections: 4, header_read: Duration::from_secs(20), ..Limits::default() };
        let (addr, _) = start(limits, Duration::from_secs(600));
        let mut idle: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
        std::thread::sleep(Duration::from_millis(50));
        let mut kept = connect(addr);
        kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_answer(&mut kept).unwrap().0, 200);
        // A fifth connection: the first idle one, the least recently active, makes room.
        idle.push(connect(addr));
        closed_within(&mut idle[0], Duration::from_secs(2)).expect("the oldest idle connection is closed");
        for stream in &mut idle[1..] {
            assert!(closed_within(stream, Duration::from_millis(200)).is_err(), "only one is closed");
        }
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert!(read_answer(&mut kept).is_ok(), "the active connection is kept");
    }

    #[test]
    fn a_flood_of_idle_connections_neither_stops_the_server_nor_is_held_open() {
        // Idle connections are closed here by the cap, not by their deadline.
        let limits =
            Limits { header_read: Duration::from_secs(30), lifetime: Duration::from_secs(60), ..Limits::default() };
        let (addr, _) = start(limits, Duration::from_secs(600));
        let mut idle = Vec::new();
        for _ in 0..1_200 {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(stream) => idle.push(stream),
                Err(e) => panic!("connection {} refused: {e}", idle.len() + 1),
            }
        }
        let asked = Instant::now();
        let (status, body) = get(addr, "/metrics").expect("answered during the flood");
        assert_eq!(status, 200);
        assert!(body.contains("lambda_stream_"), "{body}");
        assert!(asked.elapsed() < Duration::from_secs(2), "answered in {:?}", asked.elapsed());

        // All but the newest `max_connections` were closed to make room.
        let deadline = Instant::now() + Duration::from_secs(5);
        let open = loop {
            let open = idle
                .iter()
                .filter(|s| {
                    s.set_nonblocking(true).unwrap();
                    let mut byte = [0u8];
                    matches!((&**s).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
                })
                .count();
            if open <= limits.max_connections || Instant::now() > deadline {
                break open;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(open <= limits.max_connections, "{open} of the idle connections are still open");
        drop(idle);
        assert_eq!(get(addr, "/healthz").map(|a| a.0), Ok(200), "still serving");
    }
}
