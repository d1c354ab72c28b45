//! `cargo bench --bench plan`
//!
//! - `plan/apply`: the shipped 25-field mapping on the 1.3 KB, 51-leaf reference order
//!   (bytes in → output bytes), one record per iteration, on one core.
//! - `plan/baseline_value_roundtrip`: the same bytes parsed into a `serde_json::Value` and
//!   serialised back — what any "parse, pick, re-emit" implementation pays at least.
//! - `compile/40_fields`: parsing and compiling a 40-field spec; `compile_generated/…` and
//!   `compile_siblings/…` the same for thousands of fields, nested and side by side.
//! - `payments/apply`: `mappings/payments-to-ledger.yaml` (computed fields, decimals, local
//!   times, items, a lookup, a hash, conditional validators, five rules) on the first payment of
//!   `tests/fixtures/payments.jsonl`.
//! - `payments/compile_with_tests`: loading that mapping and running its embedded tests, as
//!   `validate-mapping` and every cold start do.
//! - `fail/route`: the reference order rejected (a mapping allowing only status `CREATED`) and
//!   its fail message built: envelope and headers, as the function and the worker send it.
//! - `fail/replay_rebuild`: that envelope read back into the source record, as a replay does.
//!
//! With the binary's allocator (mimalloc), so the figures are the binary's. `plan_ratio` keeps the
//! system allocator: its ratio is against a `serde_json` round trip, measured the same way since
//! the first figure.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambda_stream::destination::Router;
use lambda_stream::envelope::ReplayEnvelope;
use lambda_stream::mapping_file;
use lambda_stream::plan::{self, Outcome};
use lambda_stream::record::{Input, Payload, Source};
use serde_json::Value;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn reference_record() -> Vec<u8> {
    let pretty = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/order.json")).unwrap();
    let value: Value = serde_json::from_slice(&pretty).unwrap();
    serde_json::to_vec(&value).unwrap()
}

/// A 40-field spec over the reference record's leaves, with a realistic mix of steps.
pub fn forty_field_spec() -> String {
    let mut spec = String::from("version: 1\nname: forty\nkey: f0\nfields:\n");
    let sources = [
        ("$.order.id", "string", "    required: true\n    validate: [uuid]\n"),
        ("$.order.number", "string", "    transform: [{replace: {pattern: '^BR-', with: ''}}]\n"),
        ("$.order.status", "string", "    validate: [{one_of: [CREATED, PAID, SHIPPED, CANCELLED]}]\n"),
        ("$.order.channel", "string", "    transform: [trim, lowercase]\n"),
        ("$.order.created_at", "datetime", ""),
        ("$.order.delivery_date", "date", ""),
        ("$.order.notes", "string", "    transform: [trim, {truncate: {max: 40}}]\n"),
        ("$.customer.document", "string", "    transform: [digits_only]\n    validate: [cpf]\n"),
        ("$.customer.email", "string", "    transform: [trim, lowercase]\n    validate: [email]\n"),
        ("$.customer.segment", "string", "    transform: [{map: {values: {G: gold, S: silver}, default: std}}]\n"),
        ("$.customer.loyalty_points", "integer", "    transform: [to_integer]\n    validate: [{range: {min: 0}}]\n"),
        ("$.customer.company.cnpj", "string", "    validate: [cnpj]\n"),
        ("$.shipping.address.zip", "string", "    validate: [cep]\n"),
        (
            "$.shipping.address.state",
            "string",
            "    transform: [trim, uppercase]\n    validate: [{pattern: '^[A-Z]{2}$'}]\n",
        ),
        ("$.payment.amount_cents", "number", "    transform: [{divide: 100}]\n"),
        ("$.payment.installments", "integer", "    validate: [{range: {min: 1, max: 24}}]\n"),
        ("$.items[*].sku", "array", "    validate: [{length: {min: 1}}]\n"),
        ("$.customer.name", "string", "    validate: [{length: {min: 1, max: 200}}]\n"),
        ("$.payment.paid_at", "string", "    validate: [datetime]\n"),
        ("$.customer.id", "string", "    transform: [to_string]\n"),
    ];
    for i in 0..40 {
        let (source, ty, steps) = sources[i % sources.len()];
        spec.push_str(&format!("  - target: group{}.f{i}\n    source: '{source}'\n    type: {ty}\n{steps}", i % 5));
    }
    spec.replace("key: f0", "key: group0.f0")
}

/// A generated mapping of `n` fields in 50 nested groups, each with a transform and a validator:
/// the shape a code generator writes. Compile time must grow about linearly with `n`.
fn generated_spec(n: usize) -> String {
    let mut spec = String::from("version: 1\nname: generated\nfields:\n");
    for i in 0..n {
        spec.push_str(&format!(
            "  - {{target: g{}.f{i}, source: $.a{i}.b, type: string, transform: [trim], validate: [{{length: {{max: 10}}}}]}}\n",
            i % 50
        ));
    }
    spec
}

fn bench_plan(c: &mut Criterion) {
    let record = reference_record();
    let (_, plan) = mapping_file::load_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/orders-to-billing.yaml"
    )))
    .expect("the shipped mapping compiles");
    assert!(matches!(plan.apply(&record), Outcome::Mapped(_)), "the reference record maps");

    let mut group = c.benchmark_group("plan");
    group.throughput(Throughput::Elements(1));
    group.bench_function("apply", |b| b.iter(|| plan.apply(black_box(&record))));
    group.bench_function("baseline_value_roundtrip", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(&record)).unwrap();
            serde_json::to_vec(&value).unwrap()
        })
    });
    group.finish();

    let payments_path = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/payments-to-ledger.yaml");
    let payments_text = std::fs::read_to_string(payments_path).unwrap();
    let (_, payments) = plan::load_str(&payments_text).expect("the payments mapping compiles");
    let fixtures =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/payments.jsonl")).unwrap();
    let payment = fixtures.lines().next().unwrap().as_bytes().to_vec();
    assert!(matches!(payments.apply(&payment), Outcome::Mapped(_)), "the first payment maps");
    let mut group = c.benchmark_group("payments");
    group.throughput(Throughput::Elements(1));
    group.bench_function("apply", |b| b.iter(|| payments.apply(black_box(&payment))));
    group.bench_function("compile_with_tests", |b| {
        b.iter(|| {
            let (spec, plan) = plan::load_str(black_box(&payments_text)).unwrap();
            let results = plan::mapping_tests::run(&spec, &plan);
            assert!(results.iter().all(|r| r.failure.is_none()));
            results
        })
    });
    group.finish();

    // The fail path: the reference order rejected by a mapping that allows only `CREATED`, its
    // fail message built (envelope, headers), and that envelope read back as a replay reads it.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/orders-to-billing.yaml")).unwrap();
    let (_, rejecting) =
        plan::load_str(&shipped.replace("one_of: [CREATED, PAID, SHIPPED, CANCELLED]", "one_of: [CREATED]"))
            .expect("the rejecting mapping compiles");
    let router = Router {
        topic_ok: "ok".into(),
        topic_fail: "fail".into(),
        function_name: "bench".into(),
        function_env: "bench".into(),
    };
    let source = Source {
        topic: "orders".into(),
        partition: 1,
        offset: Some(7),
        timestamp: Some(1_796_112_000_000),
        key: Some(b"order-7".to_vec()),
        ..Source::default()
    };
    let failing = Input { source, payload: Payload::Value(record.clone()) };
    let envelope = router.route(&rejecting, &failing).first().expect("a fail message").payload.clone();
    let mut group = c.benchmark_group("fail");
    group.throughput(Throughput::Elements(1));
    group.bench_function("route", |b| b.iter(|| router.route(&rejecting, black_box(&failing))));
    group.bench_function("replay_rebuild", |b| {
        b.iter(|| ReplayEnvelope::parse(black_box(&envelope)).unwrap().into_input([]).unwrap())
    });
    group.finish();

    let spec = forty_field_spec();
    let (_, compiled) = plan::load_str(&spec).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(compiled.field_count(), 40);
    c.bench_function("compile/40_fields", |b| b.iter(|| plan::load_str(black_box(&spec)).unwrap()));

    compile_group(c, "compile_generated", &[1_000, 10_000], generated_spec);
    // Tens of thousands of fields side by side: each key is found among its siblings while the
    // trie is built, which must not be a scan of them.
    compile_group(c, "compile_siblings", &[40_000, 100_000], sibling_spec);
}

/// Loading specs of `sizes` fields each, made by `spec`, as one group of ten samples a size.
fn compile_group(c: &mut Criterion, name: &str, sizes: &[usize], spec: fn(usize) -> String) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for &n in sizes {
        let spec = spec(n);
        assert_eq!(plan::load_str(&spec).unwrap_or_else(|d| panic!("{d:#?}")).1.field_count(), n);
        group.bench_function(format!("{n}_fields"), |b| b.iter(|| plan::load_str(black_box(&spec)).unwrap()));
    }
    group.finish();
}

/// `n` integer fields, each at its own top-level key.
fn sibling_spec(n: usize) -> String {
    let mut spec = String::from("version: 1\nname: siblings\nfields:\n");
    for i in 0..n {
        spec.push_str(&format!("  - {{ target: f{i}, source: $.f{i}, type: integer }}\n"));
    }
    spec
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = bench_plan
}
criterion_main!(benches);
