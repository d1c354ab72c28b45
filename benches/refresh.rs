//! `cargo bench --bench refresh`
//!
//! What live mappings cost (a mapping file as the source; S3 differs only in the request):
//! - the load a refresh does for a changed mapping — read, compile, run the embedded tests — for
//!   each shipped mapping;
//! - a check that finds no change;
//! - batch latency (500 reference orders mapped and routed) while a refresher checks every second,
//!   against no refresher: the check runs beside the batches, never inside them;
//! - swap latency: from writing a new version of the file to the first batch mapped by it, with a
//!   check every second.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) each part runs once, briefly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lambda_stream::destination::Router;
use lambda_stream::mapping_source::{Location, MappingSource, Refresh, Refresher};
use lambda_stream::pipeline::Pipeline;
use lambda_stream::record::{Input, Payload, Source};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn router() -> Router {
    Router { topic_ok: "ok".into(), topic_fail: "fail".into(), function_name: "f".into(), function_env: "e".into() }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("ls-refresh-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 1. Load of a changed mapping (read, compile, embedded tests), per shipped mapping.
    for name in ["orders-to-billing", "payments-to-ledger"] {
        let path = format!("{ROOT}/mappings/{name}.yaml");
        let runs = if quick { 3 } else { 200 };
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let source = runtime.block_on(MappingSource::new(Location::File(path.clone().into())));
            runtime.block_on(Refresher::load(source, Duration::ZERO)).expect("the shipped mapping loads");
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        println!("load {name} (read, compile, embedded tests): median {:.2} ms over {runs}", median(&mut ms));
    }

    // 2. A check that finds no change.
    let mapping = dir.join("live.yaml");
    let text = std::fs::read_to_string(format!("{ROOT}/mappings/orders-to-billing.yaml")).unwrap();
    std::fs::write(&mapping, &text).unwrap();
    let source = runtime.block_on(MappingSource::new(Location::File(mapping.clone())));
    let (refresher, plan) = runtime.block_on(Refresher::load(source, Duration::from_secs(1))).unwrap();
    let pipeline = Arc::new(Pipeline::new(plan, router()));
    let runs = if quick { 10 } else { 10_000 };
    let started = Instant::now();
    for _ in 0..runs {
        assert!(matches!(runtime.block_on(refresher.refresh(&pipeline)), Refresh::Unchanged));
    }
    println!("unchanged check (a file's metadata): {:.1} µs", started.elapsed().as_secs_f64() * 1e6 / runs as f64);

    // 3. Batch latency with a refresher checking every second, against none.
    let order = std::fs::read(format!("{ROOT}/tests/fixtures/order.json")).unwrap();
    let order: serde_json::Value = serde_json::from_slice(&order).unwrap();
    let value = serde_json::to_vec(&order).unwrap();
    let inputs: Vec<Input> = (0..500)
        .map(|i| Input {
            source: Source { topic: "orders".into(), offset: Some(i), ..Source::default() },
            payload: Payload::Value(value.clone()),
        })
        .collect();
    let refresher = Arc::new(refresher);
    let seconds = if quick { 1 } else { 20 };
    let batches = |with_refresher: bool| -> Vec<f64> {
        let stop = Arc::new(AtomicBool::new(false));
        let checker = with_refresher.then(|| {
            let (refresher, pipeline, stop) = (Arc::clone(&refresher), Arc::clone(&pipeline), Arc::clone(&stop));
            runtime.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                    refresher.refresh(&pipeline).await;
                }
            })
        });
        let mut us = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(seconds) {
            let t = Instant::now();
            std::hint::black_box(pipeline.route_batch(&inputs));
            us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        stop.store(true, Ordering::Relaxed);
        if let Some(c) = checker {
            runtime.block_on(c).unwrap();
        }
        us
    };
    // Alternating halves, so a drift of the machine's speed favours neither.
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..if quick { 1 } else { 3 } {
        without.extend(batches(false));
        with.extend(batches(true));
    }
    println!(
        "batch of 500 orders: median {:.0} µs, p99 {:.0} µs without a refresher; median {:.0} µs, p99 {:.0} µs checking every second",
        median(&mut without),
        percentile(&mut without, 0.99),
        median(&mut with),
        percentile(&mut with, 0.99)
    );

    // 4. Swap latency: a new version written, batches running, a check every second.
    let rounds = if quick { 1 } else { 5 };
    let mut swap_ms = Vec::new();
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let checker = {
            let (refresher, pipeline, stop) = (Arc::clone(&refresher), Arc::clone(&pipeline), Arc::clone(&stop));
            runtime.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                    refresher.refresh(&pipeline).await;
                }
            })
        };
        let before = pipeline.plan().identity();
        // A new version: same mapping, another comment (another hash).
        std::fs::write(&mapping, format!("{text}\n# version {round}\n")).unwrap();
        let written = Instant::now();
        loop {
            let (_, summary) = pipeline.route_batch(&inputs);
            if summary.mapping != before {
                break;
            }
            assert!(written.elapsed() < Duration::from_secs(5), "the new version was not picked up");
        }
        swap_ms.push(written.elapsed().as_secs_f64() * 1e3);
        stop.store(true, Ordering::Relaxed);
        runtime.block_on(checker).unwrap();
    }
    println!(
        "swap: new version written → first batch mapped by it: median {:.0} ms, max {:.0} ms (check every 1 s)",
        median(&mut swap_ms),
        swap_ms.iter().copied().fold(0.0, f64::max)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
