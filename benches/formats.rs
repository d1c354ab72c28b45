//! `cargo bench --bench formats` (`scripts/bench formats`)
//!
//! The reference order (`tests/fixtures/order.json`) mapped by `mappings/orders-to-billing.yaml`,
//! one record per iteration, on one core, as it arrives in each record format:
//! - `formats/json_apply`: the JSON text, scanned and mapped (`Plan::apply`);
//! - `formats/avro_apply`: the same order as Avro behind Confluent's framing (written by fastavro,
//!   `tests/fixtures/avro/order.confluent.b64`): framing taken off, the body read with its writer
//!   schema, the tree mapped — the whole per-record path of an Avro batch (`BatchSchemas::apply`);
//! - `formats/avro_read`: the body read into the tree alone;
//! - `formats/apache_avro_read`: the same body read by `apache-avro`'s generic reader into its
//!   `Value` (the crate's own path, kept as the reference the hand-written reader is measured by).
//!
//! The records/s of `avro_apply` against `json_apply`, same run, is the figure docs/performance.md
//! keeps.

use std::hint::black_box;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambda_stream::format::avro::AvroReader;
use lambda_stream::format::wire::SchemaId;
use lambda_stream::format::{BatchSchemas, CompiledSchema, SourceFormat};
use serde_json::Value;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn formats(c: &mut Criterion) {
    let mapping = String::from_utf8(fixture("mappings/orders-to-billing.yaml")).unwrap();
    let (_, plan) = lambda_stream::plan::load_str(&mapping).unwrap();
    let json: Value = serde_json::from_slice(&fixture("tests/fixtures/order.json")).unwrap();
    let json = serde_json::to_vec(&json).unwrap();
    let framed =
        BASE64.decode(String::from_utf8(fixture("tests/fixtures/avro/order.confluent.b64")).unwrap().trim()).unwrap();
    let schema_text = String::from_utf8(fixture("tests/fixtures/avro/order.avsc")).unwrap();
    let reader = AvroReader::new(&schema_text, &[]).unwrap();
    let mut schemas = BatchSchemas::none();
    schemas.insert(
        SchemaId::Confluent(1),
        Ok(Arc::new(CompiledSchema::Avro(AvroReader::new(&schema_text, &[]).unwrap()))),
    );
    // The same output both ways, or the comparison means nothing.
    let from_json = plan.apply(&json).ok_value().unwrap();
    let from_avro = schemas.apply(&plan, SourceFormat::Avro, &framed, None).outcome.ok_value().unwrap();
    assert_eq!(from_json, from_avro);

    let mut group = c.benchmark_group("formats");
    group.throughput(Throughput::Elements(1));
    group.bench_function("json_apply", |b| b.iter(|| black_box(plan.apply(black_box(&json)))));
    group.bench_function("avro_apply", |b| {
        b.iter(|| black_box(schemas.apply(&plan, SourceFormat::Avro, black_box(&framed), None)))
    });
    let body = &framed[5..];
    group.bench_function("avro_read", |b| b.iter(|| black_box(reader.read(black_box(body)).unwrap())));
    let tree = reader.read(body).unwrap();
    group.bench_function("avro_map_tree", |b| b.iter(|| black_box(plan.apply_document(black_box(&tree), body.len()))));
    let schema = apache_avro::Schema::parse_str(&schema_text).unwrap();
    let generic = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().unwrap();
    group.bench_function("apache_avro_read", |b| {
        b.iter(|| black_box(generic.read_value(&mut black_box(body)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, formats);
criterion_main!(benches);
