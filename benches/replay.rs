//! `scripts/bench replay` (starts the local broker, then `cargo bench --bench replay`).
//!
//! `lambda-stream replay` against `lambda-stream run` on the same records. N reference orders
//! (`tests/fixtures/order.json`, keys and order ids varying) are on an input topic; the same N
//! orders are on a fail topic as the function's fail envelopes, rejected by a wrong version of the
//! shipped mapping (its status check allowing only `CREATED`), with the function's error headers. Each round runs, on fresh consumer
//! groups, the worker over the input topic and the replay over the fail topic, both with the
//! shipped mapping (every record maps), both producing to the same ok topic and committing. The
//! rates run from the group's first commit to the commit of the last record (as in the worker
//! bench: the worker's group join and the replay's start are left out; the replay's rate from its
//! start to its end is printed too).
//! The order of the two alternates by round; the median of the per-round ratios is reported.
//! Without `--bench` (as `cargo test --all-targets` runs it) one small round as a check.
//! Environment: `REPLAY_BENCH_RECORDS`, `REPLAY_BENCH_ROUNDS`, `REPLAY_BENCH_SIDE` (`replay` or
//! `run`: only that side, e.g. under a profiler; anything else, neither: the setup alone, to
//! subtract from a profile), `REPLAY_BENCH_BATCH` (the replay's batch size; default, the
//! command's).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lambda_stream::destination::Router;
use lambda_stream::mapping_file;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::plan;
use lambda_stream::record::{Input, Payload, Source};
use lambda_stream::sink::ProducerSettings;
use lambda_stream::sink::kafka::KafkaSink;
use lambda_stream::worker::replay::{ReplayOptions, replay};
use lambda_stream::worker::{Worker, WorkerOptions};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};

/// The binary's allocator, so the figures are the binary's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{NumberedOrders, create_topics, delete_topics, median, send};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PARTITIONS: i32 = 3;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let records: i64 = std::env::var("REPLAY_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(if quick {
        2_000
    } else {
        200_000
    });
    let rounds =
        if quick { 1 } else { std::env::var("REPLAY_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7) };
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let tag = std::process::id();
    let (input, failed, ok, fail) =
        (format!("rb-in-{tag}"), format!("rb-failed-{tag}"), format!("rb-ok-{tag}"), format!("rb-fail-{tag}"));
    runtime.block_on(create_topics(
        &brokers,
        &[(&input, PARTITIONS), (&failed, PARTITIONS), (&ok, PARTITIONS), (&fail, PARTITIONS)],
    ));
    let shipped = std::fs::read_to_string(format!("{ROOT}/mappings/orders-to-billing.yaml")).unwrap();
    let wrong_text = shipped.replace("one_of: [CREATED, PAID, SHIPPED, CANCELLED]", "one_of: [CREATED]");
    assert_ne!(wrong_text, shipped, "the wrong mapping differs from the shipped one");
    let (_, wrong) = plan::load_str(&wrong_text).map_err(|e| format!("{e:?}")).unwrap();
    let wrong_router = Router {
        topic_ok: ok.clone(),
        topic_fail: failed.clone(),
        function_name: "bench".into(),
        function_env: "bench".into(),
    };

    let started = Instant::now();
    let producer = support::producer(&brokers);
    let mut orders = NumberedOrders::new();
    let mut envelope_bytes = 0;
    for i in 0..records {
        let key = format!("order-{i}");
        let value = orders.nth(i).to_vec();
        let partition = (i % i64::from(PARTITIONS)) as i32;
        send(&producer, BaseRecord::to(&input).key(&key).payload(value.as_slice()).partition(partition));
        // The same record as the function would have failed it with the wrong mapping.
        let source = Source {
            topic: input.clone(),
            partition,
            offset: Some(i / i64::from(PARTITIONS)),
            timestamp: Some(1_796_112_000_000),
            key: Some(key.clone().into_bytes()),
            ..Source::default()
        };
        let routed = wrong_router.route(&wrong, &Input { source, payload: Payload::Value(value) });
        let m = routed.first().expect("a fail message");
        assert!(m.failure.is_some(), "the wrong mapping rejects the order");
        envelope_bytes = m.payload.len();
        // With the headers the function writes (`lambda-stream.error.*`), which the replay reads too.
        let headers = m.headers.iter().fold(OwnedHeaders::new_with_capacity(m.headers.len()), |h, (key, value)| {
            h.insert(Header { key, value: Some(value.as_slice()) })
        });
        send(
            &producer,
            BaseRecord::to(&failed).key(&key).payload(m.payload.as_slice()).headers(headers).partition(partition),
        );
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    eprintln!(
        "produced {records} records of {} bytes and their {envelope_bytes}-byte envelopes in {:.1} s",
        orders.nth(0).len(),
        started.elapsed().as_secs_f64()
    );

    let mut run_rates = Vec::new();
    let mut replay_rates = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut pair = [0.0f64; 2];
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for replay_side in order {
            if std::env::var("REPLAY_BENCH_SIDE").is_ok_and(|s| s != if replay_side { "replay" } else { "run" }) {
                continue;
            }
            let group = format!("rb-group-{tag}-{round}-{replay_side}");
            let rate = if replay_side {
                runtime.block_on(replay_once(&brokers, &failed, &group, &ok, &fail, records))
            } else {
                runtime.block_on(run_once(&brokers, &input, &group, &ok, &fail, records))
            };
            eprintln!("round {round}: {} {rate:.0} records/s", if replay_side { "replay" } else { "run" });
            pair[usize::from(replay_side)] = rate;
        }
        let [run, replayed] = pair;
        eprintln!("round {round}: ratio {:.2}", replayed / run);
        run_rates.push(run);
        replay_rates.push(replayed);
        ratios.push(replayed / run);
    }
    let (run, replayed, ratio) = (median(&mut run_rates), median(&mut replay_rates), median(&mut ratios));
    println!(
        "replay: {replayed:.0} records/s, run: {run:.0} records/s (medians); replay/run paired ratio median \
         {ratio:.3} [min {:.3}, max {:.3}] ({records} records, {rounds} rounds)",
        ratios[0],
        ratios[ratios.len() - 1]
    );
    runtime.block_on(delete_topics(&brokers, &[&input, &failed, &ok, &fail]));
}

fn shipped_pipeline(ok: &str, fail: &str) -> Pipeline {
    let (_, plan) =
        mapping_file::load_file(std::path::Path::new(&format!("{ROOT}/mappings/orders-to-billing.yaml"))).unwrap();
    Pipeline::new(
        plan,
        Router {
            topic_ok: ok.into(),
            topic_fail: fail.into(),
            function_name: "bench".into(),
            function_env: "bench".into(),
        },
    )
}

async fn replay_once(brokers: &str, from: &str, group: &str, ok: &str, fail: &str, records: i64) -> f64 {
    let pipeline = shipped_pipeline(ok, fail);
    let options = ReplayOptions {
        cluster: ProducerSettings::new(brokers),
        from: from.into(),
        group: group.into(),
        since_ms: None,
        until_ms: None,
        only_rule: None,
        dry_run: false,
        max_batch: std::env::var("REPLAY_BENCH_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(lambda_stream::worker::replay::DEFAULT_MAX_BATCH),
        stop: Arc::new(AtomicBool::new(false)),
    };
    // Measured as the worker is: from the group's first commit to the commit of the last record.
    let (done, _) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let (brokers, group, from) = (brokers.to_string(), group.to_string(), from.to_string());
        tokio::task::spawn_blocking(move || support::watch_commits(&brokers, &group, &from, PARTITIONS, records, done))
    };
    let started = Instant::now();
    let sink = KafkaSink::new(&options.cluster).unwrap();
    let report = replay(&options, Arc::new(pipeline), Some(&sink), |_| {}).await.expect("the replay runs");
    let whole = records as f64 / started.elapsed().as_secs_f64();
    assert_eq!((report.read, report.now_ok), (records as u64, records as u64), "{report:?}");
    let rate = watcher.await.unwrap();
    eprintln!("replay from its start to its end: {whole:.0} records/s");
    rate
}

async fn run_once(brokers: &str, input: &str, group: &str, ok: &str, fail: &str, records: i64) -> f64 {
    let pipeline = shipped_pipeline(ok, fail);
    let mut options = WorkerOptions::new(ProducerSettings::new(brokers), vec![input.to_string()], group.to_string());
    options.stats_interval = Duration::ZERO;
    let mut worker = Worker::new(pipeline, options).expect("worker");
    let (totals, rate) = support::run_until_committed(&mut worker, brokers, group, input, PARTITIONS, records).await;
    assert_eq!((totals.received as i64, totals.ok as i64), (records, records), "{totals:?}");
    rate
}
