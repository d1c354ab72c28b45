//! `cargo run --release` (from `benches/vrl-compare`, or `scripts/bench vrl`):
//! `Plan::apply` against the equivalent VRL program on the reference order, bytes in → bytes out
//! for both (VRL: `serde_json` parse → VRL value → program → `serde_json` out, as a Lambda running
//! VRL would), in interleaved rounds on one thread. Prints the median time per record of each and
//! the throughput ratio.
//!
//! Before timing, both must agree on the reference record and on every line of
//! `tests/fixtures/orders.jsonl` (ok vs failed, and the output of the ok ones).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use lambda_stream::mapping_file;
use lambda_stream::plan::Outcome;
use vrl::compiler::state::RuntimeState;
use vrl::compiler::{Context, Program, TargetValue, TimeZone};
use vrl::value::{Secrets, Value as VrlValue};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn run_vrl(program: &Program, bytes: &[u8]) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_slice(bytes).expect("the reference is JSON");
    let mut target =
        TargetValue { value: VrlValue::from(json), metadata: VrlValue::Object(BTreeMap::new()), secrets: Secrets::default() };
    let mut state = RuntimeState::default();
    let tz = TimeZone::default();
    let mut ctx = Context::new(&mut target, &mut state, &tz);
    program.resolve(&mut ctx).expect("the program never aborts");
    serde_json::to_vec(&target.value).expect("VRL values serialise")
}

fn main() {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/orders.vrl")).unwrap();
    let program = match vrl::compiler::compile(&source, &vrl::stdlib::all()) {
        Ok(result) => result.program,
        Err(diagnostics) => panic!("orders.vrl does not compile:\n{}", vrl::diagnostic::Formatter::new(&source, diagnostics)),
    };
    let (_, plan) = mapping_file::load_file(std::path::Path::new(&format!("{ROOT}/mappings/orders-to-billing.yaml"))).unwrap();
    let pretty = std::fs::read(format!("{ROOT}/tests/fixtures/order.json")).unwrap();
    let record = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&pretty).unwrap()).unwrap();

    // Same answers first: a comparison of programs that differ means nothing.
    let lines = std::fs::read_to_string(format!("{ROOT}/tests/fixtures/orders.jsonl")).unwrap();
    for (i, line) in std::iter::once(String::from_utf8(record.clone()).unwrap()).chain(lines.lines().map(str::to_owned)).enumerate() {
        if line.trim().is_empty() || serde_json::from_str::<serde_json::Value>(&line).map_or(true, |v| !v.is_object()) {
            continue;
        }
        let ours = plan.apply(line.as_bytes());
        let theirs: serde_json::Value = serde_json::from_slice(&run_vrl(&program, line.as_bytes())).unwrap();
        match (&ours, theirs.get("errors")) {
            (Outcome::Mapped(_), None) => assert_eq!(ours.ok_value().unwrap(), theirs, "record {i}: outputs differ"),
            (Outcome::Failed(f), Some(errors)) => {
                let mut a: Vec<String> = f.errors.iter().map(|e| format!("{}:{}", e.field.as_deref().unwrap_or("-"), e.rule)).collect();
                let mut b: Vec<String> = errors.as_array().unwrap().iter().map(|e| format!("{}:{}", e["field"].as_str().unwrap(), e["rule"].as_str().unwrap())).collect();
                a.sort();
                b.sort();
                assert_eq!(a, b, "record {i}: errors differ");
            }
            _ => panic!("record {i}: one maps it and the other fails it: ours {ours:?}, VRL {theirs}"),
        }
    }
    eprintln!("both agree on the reference record and on tests/fixtures/orders.jsonl");

    let rounds = 41;
    let per_round = 20_000;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            black_box(plan.apply(black_box(&record)));
        }
        ours.push(t.elapsed().as_secs_f64() / per_round as f64);
        let t = Instant::now();
        for _ in 0..per_round / 10 {
            black_box(run_vrl(&program, black_box(&record)));
        }
        theirs.push(t.elapsed().as_secs_f64() / (per_round / 10) as f64);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratios: Vec<f64> = theirs.iter().zip(&ours).map(|(t, o)| t / o).collect();
    let (o, t) = (median(&mut ours), median(&mut theirs));
    let mut r = ratios;
    let (q1, q3) = {
        r.sort_by(f64::total_cmp);
        (r[r.len() / 4], r[3 * r.len() / 4])
    };
    // The part of VRL's time that is not the program: JSON in and out of VRL values.
    let t0 = Instant::now();
    let n = 2_000;
    for _ in 0..n {
        let json: serde_json::Value = serde_json::from_slice(black_box(&record)).unwrap();
        black_box(serde_json::to_vec(&VrlValue::from(json)).unwrap());
    }
    let io = t0.elapsed().as_secs_f64() / n as f64;
    println!("lambda-stream apply: {:.2} µs/record", o * 1e6);
    println!("VRL JSON in and out without the program: {:.2} µs/record", io * 1e6);
    println!("VRL (parse, run, serialise): {:.2} µs/record", t * 1e6);
    println!("throughput ratio: {:.1}× (median of {rounds} interleaved rounds; quartiles {q1:.1}×–{q3:.1}×)", t / o);
}
