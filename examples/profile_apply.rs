//! Runs `Plan::apply` on the reference record in a loop, for profilers (`perf record`, callgrind).
//! `[MAPPING=file.yaml] [RECORD=file.json] cargo run --release --example profile_apply -- 2000000 [baseline|scan]`
//! (`RECORD` defaults to the reference order; a `.jsonl` file gives its first line).
//! (`scan`: only the extractor's pass over the record, for the mapping's source paths;
//! `envelope`: the record's fail envelope, as a replay reads it back, under a mapping allowing only
//! status `CREATED`; `avro`: the reference order as Avro behind Confluent's framing, read with
//! its writer schema and mapped, as an Avro batch maps it; `avro ratio`: that against the JSON
//! order, interleaved, 41 rounds of N records each, medians; `protobuf` and `protobuf ratio`: the
//! same with the reference order as Protobuf; `avro-out ratio`: mapping the JSON order and writing
//! the result as Avro (tests/fixtures/avro/billing.avsc) against mapping it alone;
//! `protobuf-out ratio` the same with tests/fixtures/protobuf/billing.proto).

use lambda_stream::mapping_file;
use lambda_stream::plan;
use serde_json::Value;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let root = env!("CARGO_MANIFEST_DIR");
    let record_path = std::env::var("RECORD").unwrap_or_else(|_| format!("{root}/tests/fixtures/order.json"));
    let text = std::fs::read_to_string(&record_path).unwrap();
    let first = if record_path.ends_with(".jsonl") { text.lines().next().unwrap_or_default() } else { &text };
    let record: Value = serde_json::from_str(first).unwrap();
    let record = serde_json::to_vec(&record).unwrap();
    let mapping = std::env::var("MAPPING").unwrap_or_else(|_| format!("{root}/mappings/orders-to-billing.yaml"));
    let (_, plan) = mapping_file::load_file(std::path::Path::new(&mapping)).unwrap();
    let started = std::time::Instant::now();
    if std::env::args().nth(2).as_deref() == Some("scan") {
        // Only the extractor's scan, over the mapping's source paths.
        let mut extractor = plan::extract::Extractor::default();
        for source in source_paths(&std::fs::read_to_string(&mapping).unwrap()) {
            let path = plan::path::parse_source(&source).unwrap();
            extractor.add(&path.prefix);
        }
        extractor.finish();
        let mut found = 0usize;
        for _ in 0..n {
            let slots = extractor.scan(std::hint::black_box(&record)).unwrap();
            found += slots.iter().filter(|s| s.is_some()).count();
        }
        let secs = started.elapsed().as_secs_f64();
        println!("scan: {n} records ({found} values) in {secs:.2} s: {:.0} records/s", n as f64 / secs);
        return;
    }
    if let Some(format) = std::env::args().nth(2).filter(|a| a == "avro" || a == "protobuf") {
        binary(&plan, &record, &format, n, started);
        return;
    }
    if let Some(format) = std::env::args().nth(2).filter(|a| a == "avro-out" || a == "protobuf-out") {
        binary_out(&plan, &record, &format, n);
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("envelope") {
        let text = std::fs::read_to_string(&mapping).unwrap();
        let (_, rejecting) =
            plan::load_str(&text.replace("one_of: [CREATED, PAID, SHIPPED, CANCELLED]", "one_of: [CREATED]")).unwrap();
        let router = lambda_stream::destination::Router {
            topic_ok: "ok".into(),
            topic_fail: "fail".into(),
            function_name: "profile".into(),
            function_env: "profile".into(),
        };
        let source = lambda_stream::record::Source {
            topic: "orders".into(),
            partition: 1,
            offset: Some(7),
            timestamp: Some(1_796_112_000_000),
            key: Some(b"order-7".to_vec()),
            ..Default::default()
        };
        let input = lambda_stream::record::Input { source, payload: lambda_stream::record::Payload::Value(record) };
        let envelope = router.route(&rejecting, &input).first().expect("a fail message").payload.clone();
        let started = std::time::Instant::now();
        let mut rebuilt = 0usize;
        for _ in 0..n {
            let e = lambda_stream::envelope::ReplayEnvelope::parse(std::hint::black_box(&envelope)).unwrap();
            rebuilt += usize::from(e.into_input([]).is_some());
        }
        let secs = started.elapsed().as_secs_f64();
        println!("envelope: {n} envelopes ({rebuilt} rebuilt) in {secs:.2} s: {:.0} envelopes/s", n as f64 / secs);
        return;
    }
    if std::env::args().nth(2).as_deref() == Some("baseline") {
        for _ in 0..n {
            let value: Value = serde_json::from_slice(std::hint::black_box(&record)).unwrap();
            std::hint::black_box(serde_json::to_vec(&value).unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        println!("baseline: {n} records in {secs:.2} s: {:.0} records/s", n as f64 / secs);
        return;
    }
    let mut ok = 0usize;
    for _ in 0..n {
        if let plan::Outcome::Mapped(_) = std::hint::black_box(plan.apply(std::hint::black_box(&record))) {
            ok += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{n} records ({ok} ok) in {secs:.2} s: {:.0} records/s", n as f64 / secs);
}

/// The `source:` paths of a mapping file (a line-based read: enough for the shipped mappings).
fn source_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("source:"))
        .map(|s| s.split('#').next().unwrap().trim().to_string())
        .collect()
}

/// The median of a sample.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Interleaved rounds of `a` and `b` (so the machine's drifts touch both alike): each one's median
/// time per record, in nanoseconds.
fn interleaved(n: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut a_ns, mut b_ns) = (Vec::new(), Vec::new());
    for _ in 0..41 {
        let t = std::time::Instant::now();
        for _ in 0..n {
            a();
        }
        a_ns.push(t.elapsed().as_nanos() as f64 / n as f64);
        let t = std::time::Instant::now();
        for _ in 0..n {
            b();
        }
        b_ns.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    (median(&mut a_ns), median(&mut b_ns))
}

/// The reference order in `format` (avro, protobuf), framed as Confluent frames it, mapped.
fn binary(plan: &plan::Plan, record: &[u8], format: &str, n: usize, started: std::time::Instant) {
    use base64::Engine as _;
    use lambda_stream::format::{BatchSchemas, CompiledSchema, RegisteredSchema, SourceFormat, wire::SchemaId};
    let root = env!("CARGO_MANIFEST_DIR");
    let (dir, schema_file, kind, source_format) = match format {
        "avro" => ("avro", "order.avsc", "AVRO", SourceFormat::Avro),
        _ => ("protobuf", "order.proto", "PROTOBUF", SourceFormat::Protobuf),
    };
    let framed = std::fs::read_to_string(format!("{root}/tests/fixtures/{dir}/order.confluent.b64")).unwrap();
    let framed = base64::engine::general_purpose::STANDARD.decode(framed.trim()).unwrap();
    let text = std::fs::read_to_string(format!("{root}/tests/fixtures/{dir}/{schema_file}")).unwrap();
    let compiled = CompiledSchema::compile(&RegisteredSchema::standalone(kind, text)).unwrap();
    let mut schemas = BatchSchemas::none();
    schemas.insert(SchemaId::Confluent(1), Ok(std::sync::Arc::new(compiled)));
    if std::env::args().nth(3).as_deref() == Some("ratio") {
        let (json, binary) = interleaved(
            n,
            || {
                std::hint::black_box(plan.apply(std::hint::black_box(record)));
            },
            || {
                std::hint::black_box(schemas.apply(plan, source_format, std::hint::black_box(&framed), None));
            },
        );
        println!(
            "json {json:.0} ns/record, {format} {binary:.0} ns/record: {format} at {:.2}x json's records/s",
            json / binary
        );
        return;
    }
    let mut ok = 0usize;
    for _ in 0..n {
        let applied = schemas.apply(plan, source_format, std::hint::black_box(&framed), None);
        ok += usize::from(matches!(applied.outcome, plan::Outcome::Mapped(_)));
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{format}: {n} records ({ok}) in {secs:.2} s: {:.0} records/s", n as f64 / secs);
}

/// Mapping the JSON order and writing the result as Avro or Protobuf, against mapping it alone.
fn binary_out(plan: &plan::Plan, record: &[u8], format: &str, n: usize) {
    use lambda_stream::format::avro::AvroReader;
    use lambda_stream::format::output::{Framing, OutputEncoder};
    use lambda_stream::format::protobuf::ProtobufReader;
    let root = env!("CARGO_MANIFEST_DIR");
    let encoder = if format == "avro-out" {
        let schema = std::fs::read_to_string(format!("{root}/tests/fixtures/avro/billing.avsc")).unwrap();
        OutputEncoder::Avro {
            schema: std::sync::Arc::new(AvroReader::new(&schema, &[]).unwrap()),
            framing: Framing::Confluent(1),
        }
    } else {
        let schema = std::fs::read_to_string(format!("{root}/tests/fixtures/protobuf/billing.proto")).unwrap();
        let reader = ProtobufReader::new(&schema, &[]).unwrap();
        let message = reader.first_message();
        OutputEncoder::Protobuf { schema: std::sync::Arc::new(reader), message, framing: Framing::Confluent(1) }
    };
    let mapped = |r: &[u8]| match plan.apply(r) {
        plan::Outcome::Mapped(m) => m.value,
        other => panic!("the reference order maps: {other:?}"),
    };
    let (json, avro) = interleaved(
        n,
        || {
            std::hint::black_box(mapped(std::hint::black_box(record)));
        },
        || {
            std::hint::black_box(encoder.encode(mapped(std::hint::black_box(record))).unwrap());
        },
    );
    println!(
        "json out {json:.0} ns/record, {format} {avro:.0} ns/record: {format} at {:.2}x json out's records/s",
        json / avro
    );
}
