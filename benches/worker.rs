//! `scripts/bench worker` (starts the local broker, then `cargo bench --bench worker`).
//!
//! Worker throughput end to end on the local broker: N reference records (the 1.3 KB order of
//! `tests/fixtures/order.json`, keys and order ids varying) are consumed by a consumer group, mapped with the
//! shipped mapping on one mapping thread, produced (`acks=all`, lz4) and committed. Measured from
//! the group's committed offsets: the rate between the first commit and the commit of the last
//! record. The baseline is the same worker in pass-through mode (consume → produce the value
//! unchanged, no mapping). Each round runs both on fresh groups, back to back; the median of the
//! per-round ratios is reported, with the medians of the rates.
//! Without `--bench` (as `cargo test --all-targets` runs it) it does one small round as a check.
//! `WORKER_BENCH_METRICS=1` pairs instead the mapped worker with its `/metrics` endpoint served and
//! scraped every second against the same worker without it (the cost of metrics).
//! `WORKER_BENCH_OUTPUTS=1` pairs instead the mapped worker writing to four output topics (the
//! shipped mapping with `outputs:` — three chosen by `when` on the amount, which the records then
//! spread over four bands, one computing its topic from the shipping state) against the same
//! worker writing every record to its one ok topic.
//! Environment: `WORKER_BENCH_MAPPING` (another mapping file), `WORKER_BENCH_RECORDS`, `WORKER_BENCH_THREADS` (mapping threads, default 1),
//! `WORKER_BENCH_CONSUMER` / `WORKER_BENCH_PRODUCER` (`k=v,k=v` librdkafka properties).

use std::time::{Duration, Instant};

use lambda_stream::destination::Router;
use lambda_stream::mapping_file;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::sink::ProducerSettings;
use lambda_stream::worker::{Worker, WorkerOptions};
use rdkafka::producer::{BaseRecord, Producer};

/// The binary's allocator, so the figures are the binary's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;
use support::{NumberedOrders, create_topics, delete_topics, median};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PARTITIONS: i32 = 3;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let records: i64 = std::env::var("WORKER_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(if quick {
        2_000
    } else {
        400_000
    });
    let rounds = if quick { 1 } else { 9 };
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let tag = std::process::id();
    let (input, ok, fail, pass) =
        (format!("wb-in-{tag}"), format!("wb-ok-{tag}"), format!("wb-fail-{tag}"), format!("wb-pass-{tag}"));
    runtime.block_on(create_topics(
        &brokers,
        &[(&input, PARTITIONS), (&ok, PARTITIONS), (&fail, PARTITIONS), (&pass, PARTITIONS)],
    ));
    let outputs_mode = std::env::var_os("WORKER_BENCH_OUTPUTS").is_some();
    let output_topics: Vec<String> =
        ["large", "medium", "small", "state.sp"].iter().map(|o| format!("wb-{o}-{tag}")).collect();
    if outputs_mode {
        runtime.block_on(create_topics(
            &brokers,
            &output_topics.iter().map(|t| (t.as_str(), PARTITIONS)).collect::<Vec<_>>(),
        ));
    }
    let started = Instant::now();
    let mut orders = NumberedOrders::new();
    let producer = support::producer(&brokers);
    for i in 0..records {
        let key = format!("order-{i}");
        let order = orders.nth(i);
        // In outputs mode the amounts spread over the outputs' bands, in both modes alike.
        let order = if outputs_mode { with_amount(order, 10_000 + (i * 7_919) % 90_000) } else { order.to_vec() };
        support::send(&producer, BaseRecord::to(&input).key(&key).payload(&order[..]));
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let bytes = orders.nth(0).len();
    eprintln!("produced {records} records of {bytes} bytes in {:.1} s", started.elapsed().as_secs_f64());

    // Paired rounds, as in `plan_ratio`: each round runs both modes back to back (the order
    // alternating, so a drift within a round favours neither) and yields one ratio. On a shared VM
    // whose speed wanders by a third over minutes, the median of those ratios is steadier than
    // the ratio of two medians taken from different minutes.
    let mut mapped_rates = Vec::new();
    let mut pass_rates = Vec::new();
    let mut ratios = Vec::new();
    // Metrics mode: the "baseline" side is the mapped worker without the endpoint.
    let metrics_mode = std::env::var_os("WORKER_BENCH_METRICS").is_some();
    let (side_a, side_b) = match (metrics_mode, outputs_mode) {
        (true, _) => ("mapped + /metrics", "mapped"),
        (_, true) => ("four outputs", "one ok topic"),
        _ => ("mapped", "pass-through"),
    };
    let outputs_mapping = outputs_mode.then(|| four_outputs_mapping(tag));
    for round in 0..rounds {
        let order = if round % 2 == 0 { [true, false] } else { [false, true] };
        let mut pair = [0.0f64; 2];
        for second_side in order {
            let group = format!("wb-group-{tag}-{round}-{second_side}");
            let (pass_through, metrics) =
                if metrics_mode || outputs_mode { (false, metrics_mode && !second_side) } else { (second_side, false) };
            let mapping = outputs_mapping.as_deref().filter(|_| !second_side);
            let rate = runtime.block_on(run_once(
                &brokers,
                &input,
                &group,
                &ok,
                &fail,
                &pass,
                pass_through,
                metrics,
                records,
                mapping,
            ));
            eprintln!("round {round}: {} {rate:.0} records/s", if second_side { side_b } else { side_a });
            pair[usize::from(second_side)] = rate;
        }
        let [mapped, pass] = pair;
        eprintln!("round {round}: ratio {:.2}", mapped / pass);
        mapped_rates.push(mapped);
        pass_rates.push(pass);
        ratios.push(mapped / pass);
    }
    let (mapped, baseline) = (median(&mut mapped_rates), median(&mut pass_rates));
    let ratio = median(&mut ratios);
    let (q1, q3) = (ratios[ratios.len() / 4], ratios[(ratios.len() * 3) / 4]);
    println!(
        "worker: {side_a} {mapped:.0} records/s, {side_b} {baseline:.0} records/s (medians); \
         paired ratio median {ratio:.3} [q1 {q1:.3}, q3 {q3:.3}] ({records} records, {rounds} rounds)"
    );
    runtime.block_on(delete_topics(&brokers, &[&input, &ok, &fail, &pass]));
    if outputs_mode {
        runtime.block_on(delete_topics(&brokers, &output_topics.iter().map(String::as_str).collect::<Vec<_>>()));
    }
}

/// The shipped mapping with four outputs on this run's topics (`wb-<output>-<tag>`).
fn four_outputs_mapping(tag: u32) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/mappings/orders-to-billing.yaml")).unwrap();
    format!(
        "{text}\noutputs:\n  - {{name: large, when: total_cents >= 77500, topic: wb-large-{tag}}}\n  - {{name: medium, when: total_cents >= 55000, topic: wb-medium-{tag}}}\n  - {{name: small, when: total_cents >= 32500, topic: wb-small-{tag}}}\n  - name: by-state\n    topic: '\"wb-state.\" + lower(ship_to.state) + \"-{tag}\"'\n    topics: [wb-state.sp-{tag}, wb-state.rj-{tag}]\n"
    )
}

/// An order with its payment amount replaced (five digits, as the reference order's).
fn with_amount(order: &[u8], cents: i64) -> Vec<u8> {
    const AMOUNT: &[u8] = b"\"amount_cents\":25990";
    let at = order.windows(AMOUNT.len()).position(|w| w == AMOUNT).expect("the reference order's amount");
    let mut record = order.to_vec();
    record[at + AMOUNT.len() - 5..at + AMOUNT.len()].copy_from_slice(format!("{cents:05}").as_bytes());
    record
}

#[allow(clippy::too_many_arguments)]
async fn run_once(
    brokers: &str,
    input: &str,
    group: &str,
    ok: &str,
    fail: &str,
    pass: &str,
    pass_through: bool,
    metrics: bool,
    records: i64,
    mapping_text: Option<&str>,
) -> f64 {
    let mapping =
        std::env::var("WORKER_BENCH_MAPPING").unwrap_or_else(|_| format!("{ROOT}/mappings/orders-to-billing.yaml"));
    let (_, plan) = match mapping_text {
        Some(text) => lambda_stream::plan::load_str(text).unwrap(),
        None => mapping_file::load_file(std::path::Path::new(&mapping)).unwrap(),
    };
    let mut pipeline = Pipeline::new(
        plan,
        Router {
            topic_ok: if pass_through { pass.into() } else { ok.into() },
            topic_fail: fail.into(),
            function_name: "bench".into(),
            function_env: "bench".into(),
        },
    );
    pipeline.threads = std::env::var("WORKER_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut options = WorkerOptions::new(ProducerSettings::new(brokers), vec![input.to_string()], group.to_string());
    options.pass_through = pass_through;
    options.stats_interval = Duration::ZERO;
    // Experiments: extra librdkafka consumer properties, `k=v,k=v`.
    if let Ok(extra) = std::env::var("WORKER_BENCH_CONSUMER") {
        options.consumer_extra =
            extra.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    }
    if let Ok(extra) = std::env::var("WORKER_BENCH_PRODUCER") {
        options.producer.extra =
            extra.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    }
    let mut worker = Worker::new(pipeline, options).expect("worker");
    let scraping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(metrics));
    if metrics {
        use lambda_stream::worker::metrics::{Listener, serve};
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).expect("a free port");
        let addr = listener.addr();
        serve(listener, worker.metrics_endpoint()).expect("the endpoint serves");
        let scraping = std::sync::Arc::clone(&scraping);
        // A scraper as Prometheus is: one GET of /metrics a second, the whole answer read.
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            while scraping.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                    let mut body = Vec::new();
                    let _ = s.read_to_end(&mut body);
                    assert!(body.starts_with(b"HTTP/1.0 200") || body.starts_with(b"HTTP/1.1 200"), "scraped");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    }
    let (totals, rate) = support::run_until_committed(&mut worker, brokers, group, input, PARTITIONS, records).await;
    assert_eq!(totals.received as i64, records, "every record consumed once: {totals:?}");
    assert_eq!(totals.ok + totals.failed + totals.skipped, totals.received);
    eprintln!(
        "  {} batches, {:.0} records each on average",
        totals.batches,
        records as f64 / totals.batches.max(1) as f64
    );
    scraping.store(false, std::sync::atomic::Ordering::Relaxed);
    rate
}
