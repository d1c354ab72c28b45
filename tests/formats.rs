//! Avro records, as written by an independent encoder (fastavro, `tests/fixtures/avro/generate.py`),
//! read by `process --format avro` with a schema file, and by the library's reader directly: the
//! same mapping maps them as it maps the JSON they were written from; every type reads as the
//! hand-written expectations say; hostile values fail with a reason, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::util::{TempFile, fixture, lambda_stream, stderr, stdout};
use lambda_stream::format::avro::AvroReader;
use lambda_stream::format::wire::{SchemaId, unframe};

fn avro(name: &str) -> String {
    fixture(&format!("avro/{name}")).to_str().unwrap().to_string()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn avro_orders_map_exactly_as_the_json_they_were_written_from() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--schema",
        &avro("order.avsc"),
        "--input",
        &avro("orders.confluent.b64"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The Avro file holds lines 1, 2, 3 and 8 of orders.jsonl (the others are not Avro records).
    let jsonl = std::fs::read_to_string(fixture("orders.jsonl")).unwrap();
    let json_lines: Vec<&str> =
        jsonl.lines().enumerate().filter(|(i, _)| [0, 1, 2, 7].contains(i)).map(|(_, l)| l).collect();
    let json = TempFile::new("orders.jsonl", json_lines.join("\n").as_bytes());
    let from_json = lambda_stream(&["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", json.arg()]);
    let (avro_out, json_out) = (lines(&stdout(&out)), lines(&stdout(&from_json)));
    assert_eq!(avro_out.len(), 4);
    assert_eq!(avro_out, json_out, "the Avro records map as their JSON does");
    assert!(avro_out.iter().filter(|l| l["route"] == "ok").count() >= 3, "{avro_out:?}");
    assert!(stderr(&out).starts_with("4 records: 3 ok, 1 failed"), "{}", stderr(&out));
}

#[test]
fn glue_framings_plain_and_zlib_read_as_the_confluent_one() {
    let run = |file: &str| {
        let out = lambda_stream(&[
            "process",
            "--mapping",
            "mappings/orders-to-billing.yaml",
            "--format",
            "avro",
            "--schema",
            &avro("order.avsc"),
            "--input",
            &avro(file),
        ]);
        lines(&stdout(&out))
    };
    let confluent = run("order.confluent.b64");
    assert_eq!(confluent[0]["route"], "ok", "{confluent:?}");
    assert_eq!(run("glue-order.b64"), confluent);
    assert_eq!(run("glue-order-zlib.b64"), confluent);
}

#[test]
fn every_avro_type_reads_as_the_hand_written_expectations_say() {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(avro("types.avsc")).unwrap()).unwrap();
    let mut mapping = String::from("version: 1\nname: every-type\nfields:\n");
    for field in schema["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap();
        mapping.push_str(&format!("  - {{target: {name}, source: $.{name}, type: any}}\n"));
    }
    let mapping = TempFile::new("types.yaml", mapping.as_bytes());
    let out = lambda_stream(&[
        "process",
        "--mapping",
        mapping.arg(),
        "--format",
        "avro",
        "--schema",
        &avro("types.avsc"),
        "--input",
        &avro("types.confluent.b64"),
    ]);
    let got = lines(&stdout(&out));
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(avro("types.expected.json")).unwrap()).unwrap();
    assert_eq!(got[0]["route"], "ok", "{got:?} {}", stderr(&out));
    assert_eq!(got[0]["value"], expected);
    // The null branch of a union is a field left out, as in a JSON record.
    assert!(got[0]["value"].get("optional_null").is_none());
}

#[test]
fn hostile_values_fail_with_a_reason_and_never_panic() {
    let readers = [
        (SchemaId::Confluent(1), AvroReader::new(&std::fs::read_to_string(avro("order.avsc")).unwrap(), &[]).unwrap()),
        (SchemaId::Confluent(2), AvroReader::new(&std::fs::read_to_string(avro("types.avsc")).unwrap(), &[]).unwrap()),
        (
            SchemaId::Confluent(3),
            AvroReader::new(&std::fs::read_to_string(avro("hostile-recursive.avsc")).unwrap(), &[]).unwrap(),
        ),
    ];
    let text = std::fs::read_to_string(avro("hostile.b64")).unwrap();
    let what: Vec<String> = std::fs::read_to_string(avro("hostile.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(text.lines().count(), what.len());
    for (line, what) in text.lines().zip(&what) {
        let value = BASE64.decode(line.trim()).unwrap();
        let why = match unframe(&value) {
            Err(e) => e.to_string(),
            Ok(framed) => {
                let reader = &readers.iter().find(|(id, _)| *id == framed.schema).map(|(_, r)| r);
                match reader {
                    // A Glue id no test registered: the framing itself was the test.
                    None => continue,
                    Some(reader) => match reader.read(&framed.body) {
                        Ok(doc) => panic!("{what}: read as {doc:?}"),
                        Err(e) => e.to_string(),
                    },
                }
            }
        };
        assert!(!why.is_empty(), "{what}");
    }
    // The deepest one names where it stopped, with its path shortened.
    let deep = BASE64.decode(text.lines().last().unwrap()).unwrap();
    let framed = unframe(&deep).unwrap();
    let e = readers[2].1.read(&framed.body).unwrap_err();
    assert!(e.message.contains("deeper than 128"), "{e}");
    assert!(e.to_string().len() < 400, "{e}");
}

#[test]
fn process_reports_each_hostile_line_as_a_decode_failure() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--schema",
        &avro("order.avsc"),
        "--input",
        &avro("hostile.b64"),
    ]);
    let got = lines(&stdout(&out));
    // The empty value is an empty line, which a file of lines does not count.
    assert_eq!(got.len(), 14, "{got:?}");
    for line in &got {
        assert_eq!(line["route"], "fail", "{line}");
        assert_eq!(line["stage"], "decode", "{line}");
        let rule = line["errors"][0]["rule"].as_str().unwrap();
        assert!(["framing", "avro"].contains(&rule), "{line}");
    }
    assert!(stderr(&out).contains("0 ok, 14 failed"), "{}", stderr(&out));
}

#[test]
fn a_line_that_is_not_base64_fails_alone() {
    let good = std::fs::read_to_string(avro("order.confluent.b64")).unwrap();
    let input = TempFile::new("mixed.b64", format!("{}not base64!\n{}", good, good).as_bytes());
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--schema",
        &avro("order.avsc"),
        "--input",
        input.arg(),
        "--messages",
    ]);
    let got = lines(&stdout(&out));
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[1]["topic"], "fail");
    let envelope = &got[1]["payload"];
    assert_eq!(envelope["errors"][0]["rule"], "base64", "{envelope}");
    assert_eq!(got[0]["topic"], "ok");
    assert_eq!(got[2]["topic"], "ok");
}

#[test]
fn a_fail_envelope_keeps_the_binary_value_its_format_and_schema_id() {
    let input = std::fs::read_to_string(avro("hostile.b64")).unwrap();
    // Line 9: order.channel's union index out of range, schema id 1.
    let line = input.lines().nth(8).unwrap();
    let file = TempFile::new("one.b64", format!("{line}\n").as_bytes());
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--schema",
        &avro("order.avsc"),
        "--input",
        file.arg(),
        "--messages",
    ]);
    let got = lines(&stdout(&out));
    let envelope = &got[0]["payload"];
    assert_eq!(envelope["stage"], "decode", "{envelope}");
    assert_eq!(envelope["value_format"], "avro");
    assert_eq!(envelope["schema_id"], "1");
    assert_eq!(envelope["value_encoding"], "base64");
    assert_eq!(envelope["value"], line.trim(), "the value as it arrived, framing included");
    assert!(envelope["errors"][0]["message"].as_str().unwrap().contains("order.channel"), "{envelope}");
}

#[test]
fn format_flags_are_checked() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--input",
        &avro("order.confluent.b64"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--registry URL or --schema FILE"), "{}", stderr(&out));
    let out = lambda_stream(&["process", "--mapping", "m.yaml", "--format", "xml", "--input", "-"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("json, json-schema, avro"), "{}", stderr(&out));
    let not_avro =
        TempFile::new("bad.avsc", br#"{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}"#);
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--schema",
        not_avro.arg(),
        "--input",
        &avro("order.confluent.b64"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad.avsc"), "{}", stderr(&out));
}

#[test]
fn avro_decimals_stay_exact_through_type_decimal_and_expressions() {
    let mapping = TempFile::new(
        "decimals.yaml",
        b"version: 1\nname: decimals\nfields:\n  - {target: amount, source: $.decimal_field, type: decimal, required: true}\n  - {target: refund, source: $.decimal_negative, type: decimal}\n  - {target: fixed, source: $.decimal_fixed, type: decimal}\n  - {target: doubled, expr: 'amount * 2', type: decimal}\n",
    );
    let out = lambda_stream(&[
        "process",
        "--mapping",
        mapping.arg(),
        "--format",
        "avro",
        "--schema",
        &avro("types.avsc"),
        "--input",
        &avro("types.confluent.b64"),
    ]);
    let got = lines(&stdout(&out));
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(avro("types.expected.json")).unwrap()).unwrap();
    assert_eq!(got[0]["route"], "ok", "{got:?} {}", stderr(&out));
    let value = &got[0]["value"];
    assert_eq!(value["amount"], expected["decimal_field"]);
    assert_eq!(value["refund"], expected["decimal_negative"]);
    assert_eq!(value["fixed"], expected["decimal_fixed"]);
    assert_eq!(value["amount"], "1234.50");
    assert_eq!(value["doubled"], "2469.00", "{value}");
}

#[test]
fn a_json_number_under_type_decimal_is_read_exactly_from_its_text() {
    let mapping = TempFile::new(
        "price.yaml",
        b"version: 1\nname: price\nfields:\n  - {target: price, source: $.price, type: decimal}\n",
    );
    let input = TempFile::new(
        "prices.jsonl",
        b"{\"price\": 2.50}\n{\"price\": 12345678901234567890.123456789}\n{\"price\": 1.5e3}\n{\"price\": \"0.10\"}\n{\"price\": true}\n",
    );
    let out = lambda_stream(&["process", "--mapping", mapping.arg(), "--input", input.arg()]);
    let got = lines(&stdout(&out));
    let prices: Vec<&Value> = got.iter().map(|l| &l["value"]["price"]).collect();
    assert_eq!(
        prices[..4],
        [
            &Value::from("2.50"),
            &Value::from("12345678901234567890.123456789"),
            &Value::from("1500"),
            &Value::from("0.10")
        ]
    );
    assert_eq!(got[4]["errors"][0]["rule"], "type", "{:?}", got[4]);
}

pub(crate) mod hostile_bytes {
    //! The Avro reader and the framing on arbitrary and mutated values: an error or a record,
    //! never a panic, whatever the bytes.
    use super::*;
    use proptest::prelude::*;

    use std::sync::OnceLock;

    fn readers() -> &'static [AvroReader] {
        static READERS: OnceLock<Vec<AvroReader>> = OnceLock::new();
        READERS.get_or_init(|| {
            ["order.avsc", "types.avsc", "hostile-recursive.avsc"]
                .iter()
                .map(|f| AvroReader::new(&std::fs::read_to_string(avro(f)).unwrap(), &[]).unwrap())
                .collect()
        })
    }

    fn valid_bodies() -> &'static [Vec<u8>] {
        static BODIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        BODIES.get_or_init(|| {
            ["order.confluent.b64", "types.confluent.b64"]
                .iter()
                .map(|f| BASE64.decode(std::fs::read_to_string(avro(f)).unwrap().trim()).unwrap()[5..].to_vec())
                .collect()
        })
    }

    /// The billing mapping, compiled once for the property tests of every reader.
    pub(crate) fn orders_plan() -> &'static lambda_stream::plan::Plan {
        static PLAN: OnceLock<lambda_stream::plan::Plan> = OnceLock::new();
        PLAN.get_or_init(|| {
            let text = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
            lambda_stream::plan::load_str(&text).unwrap().1
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            for reader in readers() {
                let _ = reader.read(&bytes);
                let mut captured = Vec::new();
                let _ = reader.read_captures(&bytes, orders_plan().projection(), &mut captured);
            }
            let _ = unframe(&bytes);
        }

        #[test]
        fn mutated_records_never_panic(
            which in 0usize..2,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut body = valid_bodies()[which].clone();
            let mapping = orders_plan();
            for (at, byte) in &flips {
                let i = at.index(body.len());
                body[i] = *byte;
            }
            body.truncate(cut.index(body.len() + 1));
            let reader = &readers()[which];
            let _ = reader.read(&body);
            let mut captured = Vec::new();
            if reader.read_captures(&body, mapping.projection(), &mut captured).is_ok() {
                let _ = mapping.apply_captured(&captured, body.len());
            }
        }
    }
}

#[test]
fn diff_mapping_compares_two_mappings_on_avro_samples_as_on_their_json() {
    let old = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
    let new = old.replace("target: customer.birth_date", "target: customer.born_on");
    assert_ne!(old, new, "the edit changes the mapping");
    let new = TempFile::new("new.yaml", new.as_bytes());
    let jsonl = std::fs::read_to_string(fixture("orders.jsonl")).unwrap();
    let json_lines: Vec<&str> =
        jsonl.lines().enumerate().filter(|(i, _)| [0, 1, 2, 7].contains(i)).map(|(_, l)| l).collect();
    let json = TempFile::new("orders.jsonl", json_lines.join("\n").as_bytes());
    let diff = |extra: &[&str]| {
        let base = ["diff-mapping", "mappings/orders-to-billing.yaml", new.arg(), "--format", "json"];
        lambda_stream(&[&base[..], extra].concat())
    };
    let from_avro =
        diff(&["--input", &avro("orders.confluent.b64"), "--records-format", "avro", "--schema", &avro("order.avsc")]);
    let from_json = diff(&["--input", json.arg()]);
    // Exit 3: records would change (as `diff` ends 1).
    assert_eq!(from_avro.status.code(), Some(3), "{}", stderr(&from_avro));
    let (a, j): (Value, Value) =
        (serde_json::from_str(&stdout(&from_avro)).unwrap(), serde_json::from_str(&stdout(&from_json)).unwrap());
    assert!(a["summary"]["changed"].as_u64().unwrap() > 0, "{a:#}");
    assert_eq!(a["summary"], j["summary"]);
    assert_eq!(a["changes"], j["changes"]);
}

#[test]
fn explain_follows_an_avro_record_field_by_field() {
    let out = lambda_stream(&[
        "explain",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        &avro("order.confluent.b64"),
        "--records-format",
        "avro",
        "--schema",
        &avro("order.avsc"),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let from_avro: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let json = TempFile::new("order.json", &std::fs::read(fixture("order.json")).unwrap());
    let out = lambda_stream(&[
        "explain",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        json.arg(),
        "--format",
        "json",
    ]);
    let from_json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(from_avro["outcome"], "ok", "{from_avro:#}");
    assert_eq!(from_avro["output"], from_json["output"]);
    assert_eq!(from_avro["fields"].as_array().unwrap().len(), from_json["fields"].as_array().unwrap().len());
    // A value that does not read says why, as the record's step.
    let bad = TempFile::new("bad.b64", b"AAAAAAEC\n");
    let out = lambda_stream(&[
        "explain",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        bad.arg(),
        "--records-format",
        "avro",
        "--schema",
        &avro("order.avsc"),
        "--format",
        "json",
    ]);
    let failed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(failed["outcome"], "fail");
    assert!(failed["record"].as_str().unwrap().contains("does not read as avro"), "{failed:#}");
}

#[test]
fn what_the_reader_gives_the_writer_writes_back_byte_for_byte() {
    // Every type of types.avsc, read from fastavro's bytes and written back from the values the
    // reader presents (decimal text, RFC 3339 timestamps, dates, base64 bytes, enum symbols…).
    for (schema, value) in [("types.avsc", "types.confluent.b64"), ("order.avsc", "order.confluent.b64")] {
        let reader = AvroReader::new(&std::fs::read_to_string(avro(schema)).unwrap(), &[]).unwrap();
        let bytes = BASE64.decode(std::fs::read_to_string(avro(value)).unwrap().lines().next().unwrap()).unwrap();
        let body = &bytes[5..];
        let read = reader.read(body).unwrap();
        let mut written = Vec::new();
        reader.write(&read, &mut written).unwrap();
        assert_eq!(written, body, "{schema}");
    }
}

#[test]
fn the_writer_refuses_what_the_schema_cannot_hold_and_names_where() {
    let schema = r#"{"type": "record", "name": "R", "fields": [
        {"name": "n", "type": "int"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}},
        {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "L",
            "fields": [{"name": "sku", "type": "string"}]}}},
        {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["A", "B"]}, "default": "B"}]}"#;
    let reader = AvroReader::new(schema, &[]).unwrap();
    let write = |value: Value| {
        let text = serde_json::to_vec(&value).unwrap();
        let doc = lambda_stream::plan::document::Doc::from_json(&text).unwrap();
        let mut out = Vec::new();
        reader.write(&doc, &mut out).map(|()| out).map_err(|e| e.to_string())
    };
    let ok = serde_json::json!({"n": 1, "price": "12.50", "lines": [{"sku": "a"}]});
    let written = write(ok).unwrap();
    // The default of the member left out is written, and the whole reads back.
    assert_eq!(
        reader.read(&written).unwrap().to_value(),
        serde_json::json!({"n": 1, "price": "12.50", "lines": [{"sku": "a"}], "kind": "B"})
    );
    let refused = [
        (
            serde_json::json!({"n": 3_000_000_000i64, "price": "1", "lines": []}),
            "`n`: the schema has an int (32 bits) here, the record a number",
        ),
        (
            serde_json::json!({"n": 1, "price": "1.005", "lines": []}),
            "`price`: the value has more decimal places than the schema's scale of 2; round it first",
        ),
        (
            serde_json::json!({"n": 1, "price": "1", "lines": [{"sku": 7}]}),
            "`lines[0].sku`: the schema has text here, the record a number",
        ),
        (
            serde_json::json!({"n": 1, "price": "1", "lines": [], "kind": "C"}),
            "`kind`: not a symbol of the enum (symbols: A, B)",
        ),
    ];
    for (value, expected) in refused {
        assert_eq!(write(value).unwrap_err(), expected);
    }
}
