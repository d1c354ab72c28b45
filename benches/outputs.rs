//! `cargo bench --bench outputs`
//!
//! What `outputs:` cost the mapping: the shipped mapping on the reference order (ids numbered as
//! the worker bench numbers them, amounts spread over 100.00 to 999.99), mapped and routed into
//! its messages (`Router::route`, as the function and the worker do) — once with one ok topic,
//! once with four outputs: three chosen by `when` on the amount, a quarter of the orders each, the
//! fourth computing its topic from the shipping state (one of its declared `topics`). Each round runs a batch of both, back to back, the order
//! alternating; the median of the per-round throughput ratios (four outputs / one topic) is
//! reported, with the quartiles, as `plan_ratio` does.

use std::hint::black_box;
use std::time::Instant;

use lambda_stream::destination::{Routed, Router};
use lambda_stream::plan;
use lambda_stream::record::{Input, Payload, Source};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 31;
const BATCH: usize = 20_000;

/// The four outputs appended to the shipped mapping.
const OUTPUTS: &str = r#"
outputs:
  - name: large
    when: total_cents >= 77500
    topic: billing.large.v1
  - name: medium
    when: total_cents >= 55000
    topic: billing.medium.v1
  - name: small
    when: total_cents >= 32500
    topic: billing.small.v1
  - name: by-state
    topic: '"billing.state." + lower(ship_to.state) + ".v1"'
    topics: [billing.state.sp.v1, billing.state.rj.v1, billing.state.mg.v1]
"#;

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, batch) = if quick { (1, 200) } else { (ROUNDS, BATCH) };
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/orders-to-billing.yaml")).unwrap();
    let (_, one_topic) = plan::load_str(&text).unwrap();
    let (_, four_outputs) = plan::load_str(&format!("{text}{OUTPUTS}")).unwrap();
    let reference = reference_order();
    let inputs: Vec<Input> = (0..batch as i64)
        .map(|i| Input {
            source: Source { topic: "orders".into(), offset: Some(i), ..Source::default() },
            payload: Payload::Value(order(&reference, i, 10_000 + (i * 7_919) % 90_000)),
        })
        .collect();
    let router = Router {
        topic_ok: "billing.ok.v1".into(),
        topic_fail: "billing.fail.v1".into(),
        function_name: "bench".into(),
        function_env: "bench".into(),
    };
    // Every record maps, and each output takes some: the comparison is of the same work.
    let mut taken = [0usize; 4];
    for input in &inputs {
        match router.route(&four_outputs, input) {
            Routed::Message(m) => {
                let name = m.output.as_deref().unwrap_or_else(|| panic!("{:?}", m.failure));
                taken[["large", "medium", "small", "by-state"].iter().position(|n| *n == name).unwrap()] += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(taken.iter().all(|n| *n > 0), "{taken:?}");

    let run = |plan: &plan::Plan| {
        let started = Instant::now();
        for input in &inputs {
            black_box(router.route(plan, black_box(input)));
        }
        batch as f64 / started.elapsed().as_secs_f64()
    };
    let (mut one_rates, mut four_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (one, four) = if round % 2 == 0 {
            let one = run(&one_topic);
            (one, run(&four_outputs))
        } else {
            let four = run(&four_outputs);
            (run(&one_topic), four)
        };
        one_rates.push(one);
        four_rates.push(four);
        ratios.push(four / one);
    }
    let (o, f, r) = (quartiles(&mut one_rates), quartiles(&mut four_rates), quartiles(&mut ratios));
    println!("{rounds} rounds of {batch} records; outputs taken {taken:?} (large, medium, small, by-state)");
    println!("one ok topic: median {:.0} records/s [q1 {:.0}, q3 {:.0}]", o.1, o.0, o.2);
    println!("four outputs: median {:.0} records/s [q1 {:.0}, q3 {:.0}]", f.1, f.0, f.2);
    println!("throughput ratio four outputs / one topic: median {:.3} [q1 {:.3}, q3 {:.3}]", r.1, r.0, r.2);
}

/// `tests/fixtures/order.json` on one line.
fn reference_order() -> Vec<u8> {
    let pretty = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/order.json")).unwrap();
    let value: serde_json::Value = serde_json::from_slice(&pretty).unwrap();
    serde_json::to_vec(&value).unwrap()
}

/// The reference order numbered `i` (the id's last 12 hex digits, as the worker bench numbers
/// them) with its payment amount replaced (five digits, as the reference order's).
fn order(reference: &[u8], i: i64, cents: i64) -> Vec<u8> {
    const ORDER_ID: &[u8] = b"3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f";
    const AMOUNT: &[u8] = b"\"amount_cents\":25990";
    let mut record = reference.to_vec();
    let find = |needle: &[u8]| record.windows(needle.len()).position(|w| w == needle).expect("in the reference order");
    let (id_at, amount_at) = (find(ORDER_ID), find(AMOUNT));
    record[id_at + 24..id_at + 36].copy_from_slice(format!("{i:012x}").as_bytes());
    record[amount_at + AMOUNT.len() - 5..amount_at + AMOUNT.len()].copy_from_slice(format!("{cents:05}").as_bytes());
    record
}

fn quartiles(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}
