//! `scripts/bench soak` (starts the local broker, then `cargo bench --bench soak`).
//!
//! One `lambda-stream run` worker maps the reference orders (`tests/fixtures/order.json`, order
//! ids numbered) with the shipped mapping while a producer writes them at a steady rate, for ten
//! minutes. Every five seconds it samples the worker's resident memory (`VmRSS`) and the group's
//! lag (the partitions' ends minus the group's commits). After a minute of warm-up the memory
//! must stay flat — its spread and its trend (least squares, MiB per minute) are reported — and
//! the lag bounded. `SOAK_SECONDS` and `SOAK_RATE` (records/s) change the run.
//! Without `--bench` (as `cargo test --all-targets` runs it) it runs for ten seconds and checks the
//! samples were taken and every record was committed.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer};

// Each broker bench uses part of what they share.
#[allow(dead_code)]
mod support;
use support::{NumberedOrders, WorkerProcess, committed, create_topics, delete_topics};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PARTITIONS: i32 = 6;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

struct Sample {
    at: Duration,
    rss_kib: u64,
    lag: i64,
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let seconds = env("SOAK_SECONDS", if quick { 10 } else { 600 });
    let rate = env("SOAK_RATE", if quick { 1_000 } else { 5_000 });
    let warm_up = Duration::from_secs(if quick { 2 } else { 60 });
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let tag = std::process::id();
    let (input, ok, fail, group) =
        (format!("soak-in-{tag}"), format!("soak-ok-{tag}"), format!("soak-fail-{tag}"), format!("soak-{tag}"));
    runtime.block_on(create_topics(&brokers, &[(&input, PARTITIONS), (&ok, PARTITIONS), (&fail, 1)]));

    let mut worker = Worker::start(&brokers, &input, &ok, &fail, &group);
    let producing = Arc::new(AtomicBool::new(true));
    let produced = Arc::new(AtomicU64::new(0));
    let producer_thread = {
        let (brokers, input) = (brokers.clone(), input.clone());
        let (producing, produced) = (Arc::clone(&producing), Arc::clone(&produced));
        std::thread::spawn(move || produce_steadily(&brokers, &input, rate, &producing, &produced))
    };
    let watcher: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().unwrap();
    let began = Instant::now();
    let mut samples = Vec::new();
    while began.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(SAMPLE_EVERY.min(Duration::from_secs(seconds).saturating_sub(began.elapsed())));
        let lag = ends(&watcher, &input) - committed(&watcher, &input, PARTITIONS);
        samples.push(Sample { at: began.elapsed(), rss_kib: worker.rss_kib(), lag });
        assert!(worker.process.0.try_wait().unwrap().is_none(), "the worker stopped");
    }
    producing.store(false, Ordering::Relaxed);
    producer_thread.join().unwrap();
    let total = produced.load(Ordering::Relaxed) as i64;
    let drained = Instant::now();
    while committed(&watcher, &input, PARTITIONS) < total {
        assert!(drained.elapsed() < Duration::from_secs(120), "the worker never committed all {total} records");
        std::thread::sleep(Duration::from_millis(200));
    }
    let drain_time = drained.elapsed();
    let status = worker.stop();
    assert!(status.success(), "the worker stops with exit 0");
    runtime.block_on(delete_topics(&brokers, &[&input, &ok, &fail]));

    let steady: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm_up).collect();
    assert!(steady.len() >= 2, "samples after the warm-up: {}", steady.len());
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (low, high) =
        (steady.iter().map(|s| s.rss_kib).min().unwrap(), steady.iter().map(|s| s.rss_kib).max().unwrap());
    let trend = slope(&steady.iter().map(|s| (s.at.as_secs_f64() / 60.0, mib(s.rss_kib))).collect::<Vec<_>>());
    let mut lags: Vec<i64> = steady.iter().map(|s| s.lag).collect();
    lags.sort();
    let (lag_median, lag_max) = (lags[lags.len() / 2], *lags.last().unwrap());
    println!(
        "soak: {total} records in {seconds} s at {rate}/s; RSS after {} s of warm-up {:.1}–{:.1} MiB (spread {:.1} MiB, trend {:+.2} MiB/min, first {:.1}, last {:.1}); \
         lag median {lag_median}, max {lag_max} records ({:.2} s of input); drained {:.1} s after the producer stopped",
        warm_up.as_secs(),
        mib(low),
        mib(high),
        mib(high - low),
        trend,
        mib(steady[0].rss_kib),
        mib(steady.last().unwrap().rss_kib),
        lag_max as f64 / rate as f64,
        drain_time.as_secs_f64(),
    );
    for s in &samples {
        eprintln!("{:>6.0} s  RSS {:>7.1} MiB  lag {:>7}", s.at.as_secs_f64(), mib(s.rss_kib), s.lag);
    }
}

/// The least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let num: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

fn ends(consumer: &BaseConsumer, topic: &str) -> i64 {
    (0..PARTITIONS)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(5)).map_or(0, |(_, high)| high))
        .sum()
}

/// Writes numbered reference orders at `rate` records/s, keyed by order, until told to stop.
fn produce_steadily(brokers: &str, topic: &str, rate: u64, producing: &AtomicBool, produced: &AtomicU64) {
    let producer = support::producer(brokers);
    let mut orders = NumberedOrders::new();
    let started = Instant::now();
    let mut i = 0u64;
    while producing.load(Ordering::Relaxed) {
        // In steps of a millisecond's worth, so the rate is steady at any size.
        let due = (started.elapsed().as_micros() as u64 * rate / 1_000_000).max(i);
        while i < due {
            let key = format!("order-{i}");
            support::send(&producer, BaseRecord::to(topic).key(&key).payload(orders.nth(i as i64)));
            i += 1;
        }
        produced.store(i, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    produced.store(i, Ordering::Relaxed);
}

/// The worker as it runs in production: the release binary, the shipped mapping.
struct Worker {
    process: WorkerProcess,
}

impl Worker {
    fn start(brokers: &str, input: &str, ok: &str, fail: &str, group: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
            .current_dir(ROOT)
            .args(["run", "--mapping", "mappings/orders-to-billing.yaml", "--brokers", brokers, "--topics", input])
            .args(["--group", group, "--topic-ok", ok, "--topic-fail", fail, "--stats-interval-s", "0"])
            .env_remove("LAMBDA_ENV")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the worker starts");
        Worker { process: WorkerProcess(child) }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.0.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        self.process.stop().expect("the worker stops within 20 s")
    }
}
