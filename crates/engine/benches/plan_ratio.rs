//! `cargo bench --bench plan_ratio`
//!
//! The apply-vs-baseline *ratio*, measured so that machine noise cancels out: in each round one
//! batch of `Plan::apply` and one batch of the `Value` round-trip run back to back on the same
//! record, and the ratio of the two batch times is taken. The median over all rounds is reported,
//! with the quartiles. On a shared VM, where speed drifts by ±15% over seconds, this is steadier
//! than comparing two benchmarks run a minute apart.

use std::hint::black_box;
use std::time::Instant;

use lambda_stream_engine::plan;
use serde_json::Value;

const ROUNDS: usize = 41;
const BATCH: usize = 20_000;

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: do a single quick round.
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, batch) = if quick { (1, 100) } else { (ROUNDS, BATCH) };
    // The engine's package sits two levels below the repository, whose fixtures it reads.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let record: Value =
        serde_json::from_slice(&std::fs::read(format!("{root}/tests/fixtures/order.json")).unwrap()).unwrap();
    let record = serde_json::to_vec(&record).unwrap();
    let text = std::fs::read_to_string(format!("{root}/mappings/orders-to-billing.yaml")).unwrap();
    let (_, plan) = plan::load_str(&text).unwrap();

    let mut apply_ns = Vec::with_capacity(rounds);
    let mut baseline_ns = Vec::with_capacity(rounds);
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..batch {
            black_box(plan.apply(black_box(&record)));
        }
        let apply = started.elapsed().as_nanos() as f64 / batch as f64;
        let started = Instant::now();
        for _ in 0..batch {
            let value: Value = serde_json::from_slice(black_box(&record)).unwrap();
            black_box(serde_json::to_vec(&value).unwrap());
        }
        let baseline = started.elapsed().as_nanos() as f64 / batch as f64;
        apply_ns.push(apply);
        baseline_ns.push(baseline);
        ratios.push(baseline / apply);
    }
    let (a, b, r) = (quartiles(&mut apply_ns), quartiles(&mut baseline_ns), quartiles(&mut ratios));
    println!("record: {} bytes; {} rounds of {} records each", record.len(), rounds, batch);
    println!(
        "plan/apply:                    median {:.2} µs ({:.0} records/s)  [q1 {:.2}, q3 {:.2}]",
        a.1 / 1e3,
        1e9 / a.1,
        a.0 / 1e3,
        a.2 / 1e3
    );
    println!(
        "plan/baseline_value_roundtrip: median {:.2} µs ({:.0} records/s)  [q1 {:.2}, q3 {:.2}]",
        b.1 / 1e3,
        1e9 / b.1,
        b.0 / 1e3,
        b.2 / 1e3
    );
    println!("throughput ratio apply/baseline: median {:.2}x  [q1 {:.2}x, q3 {:.2}x]", r.1, r.0, r.2);
}

fn quartiles(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}
