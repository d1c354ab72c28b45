//! Protobuf records, as written by independent encoders (protoc's Python code, Google's protobuf
//! runtime and Confluent's own serializer: `tests/fixtures/protobuf/generate.py`), read by
//! `process --format protobuf` with a `.proto` file, and by the library's reader directly: the
//! same mapping maps them as it maps the JSON they were written from; every type reads as the
//! hand-written expectations say; hostile values fail with a reason, never a panic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::util::{TempFile, fixture, lambda_stream, stderr, stdout};
use lambda_stream::format::protobuf::{MessageIndexes, ProtobufReader};
use lambda_stream::format::wire::{SchemaId, unframe};

fn proto(name: &str) -> String {
    fixture(&format!("protobuf/{name}")).to_str().unwrap().to_string()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn reader(name: &str) -> ProtobufReader {
    ProtobufReader::new(&std::fs::read_to_string(proto(name)).unwrap(), &[]).unwrap()
}

fn process(mapping: &str, schema: &str, input: &str) -> std::process::Output {
    lambda_stream(&[
        "process",
        "--mapping",
        mapping,
        "--format",
        "protobuf",
        "--schema",
        &proto(schema),
        "--input",
        input,
    ])
}

#[test]
fn protobuf_orders_map_exactly_as_the_json_they_were_written_from() {
    let out = process("mappings/orders-to-billing.yaml", "order.proto", &proto("orders.confluent.b64"));
    assert!(out.status.success(), "{}", stderr(&out));
    // The file holds lines 1, 2, 3 and 8 of orders.jsonl, as the Avro fixtures do.
    let jsonl = std::fs::read_to_string(fixture("orders.jsonl")).unwrap();
    let json_lines: Vec<&str> =
        jsonl.lines().enumerate().filter(|(i, _)| [0, 1, 2, 7].contains(i)).map(|(_, l)| l).collect();
    let json = TempFile::new("orders.jsonl", json_lines.join("\n").as_bytes());
    let from_json = lambda_stream(&["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", json.arg()]);
    let (proto_out, json_out) = (lines(&stdout(&out)), lines(&stdout(&from_json)));
    assert_eq!(proto_out.len(), 4);
    assert_eq!(proto_out, json_out, "the Protobuf records map as their JSON does");
    assert!(stderr(&out).starts_with("4 records: 3 ok, 1 failed"), "{}", stderr(&out));
}

#[test]
fn glue_framing_names_the_message_by_its_place_among_the_sorted_names() {
    let confluent = process("mappings/orders-to-billing.yaml", "order.proto", &proto("order.confluent.b64"));
    let glue = process("mappings/orders-to-billing.yaml", "order.proto", &proto("glue-order.b64"));
    let (a, b) = (lines(&stdout(&confluent)), lines(&stdout(&glue)));
    assert_eq!(a[0]["route"], "ok", "{a:?} {}", stderr(&confluent));
    assert_eq!(a, b, "{}", stderr(&glue));
}

#[test]
fn every_protobuf_type_reads_as_the_hand_written_expectations_say() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(proto("types.expected.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(proto("types.proto")).unwrap();
    let mut mapping = String::from("version: 1\nname: every-type\nfields:\n");
    // Every field of message Types, whether the record carries it or not.
    let body = &text[text.find("message Types {").unwrap()..];
    for line in body[..body.find("\n}").unwrap()].lines().filter(|l| l.trim_end().ends_with(';')) {
        let name = line.split('=').next().unwrap().split_whitespace().last().unwrap();
        mapping.push_str(&format!("  - {{target: {name}, source: $.{name}, type: any}}\n"));
    }
    let mapping = TempFile::new("types.yaml", mapping.as_bytes());
    let out = process(mapping.arg(), "types.proto", &proto("types.confluent.b64"));
    let got = lines(&stdout(&out));
    assert_eq!(got[0]["route"], "ok", "{got:?} {}", stderr(&out));
    assert_eq!(got[0]["value"], expected);
    for absent in ["optional_unset", "nested_unset", "bool_wrapper_unset", "choice_text"] {
        assert!(got[0]["value"].get(absent).is_none(), "{absent}: {}", got[0]["value"]);
    }
}

#[test]
fn a_nested_message_is_named_by_its_index_path() {
    let value = BASE64.decode(std::fs::read_to_string(proto("note.confluent.b64")).unwrap().trim()).unwrap();
    let framed = unframe(&value).unwrap();
    let reader = reader("types.proto");
    assert_eq!(reader.message_name(&framed.body, MessageIndexes::Confluent).unwrap(), "com.example.types.Line.Note");
    let doc = reader.read(&framed.body, MessageIndexes::Confluent, None).unwrap();
    assert_eq!(doc.to_value(), serde_json::json!({"text": "nested"}));
}

#[test]
fn hostile_values_fail_with_a_reason_and_never_panic() {
    let readers = [(1, reader("order.proto")), (2, reader("types.proto"))];
    let text = std::fs::read_to_string(proto("hostile.b64")).unwrap();
    let what: Vec<String> = std::fs::read_to_string(proto("hostile.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(text.lines().count(), what.len());
    for (line, what) in text.lines().zip(&what) {
        let value = BASE64.decode(line.trim()).unwrap();
        let framed = unframe(&value).unwrap();
        let (reader, indexes) = match framed.schema {
            SchemaId::Confluent(id) => (&readers.iter().find(|(i, _)| *i == id).unwrap().1, MessageIndexes::Confluent),
            SchemaId::Glue(_) => (&readers[0].1, MessageIndexes::Glue),
        };
        match reader.read(&framed.body, indexes, None) {
            Ok(doc) => panic!("{what}: read as {:.300}", format!("{doc:?}")),
            Err(e) => {
                assert!(!e.message.is_empty(), "{what}");
                assert!(e.to_string().len() < 400, "{what}: {e}");
            }
        }
    }
    // The deep one says how deep is too deep.
    let deep = text.lines().zip(&what).find(|(_, w)| w.contains("deep (")).unwrap().0;
    let value = BASE64.decode(deep).unwrap();
    let e = readers[1].1.read(&unframe(&value).unwrap().body, MessageIndexes::Confluent, None).unwrap_err();
    assert!(e.message.contains("deeper than 128"), "{e}");
}

#[test]
fn process_reports_each_hostile_line_as_a_decode_failure_naming_where() {
    let out = process("mappings/orders-to-billing.yaml", "order.proto", &proto("hostile.b64"));
    let got = lines(&stdout(&out));
    let what: Vec<String> = std::fs::read_to_string(proto("hostile.txt")).unwrap().lines().map(String::from).collect();
    assert_eq!(got.len(), what.len(), "{got:?}");
    // Those written with types.proto are read here with order.proto: not what they test.
    for (line, _) in got.iter().zip(&what).filter(|(_, w)| !w.contains("types.proto")) {
        assert_eq!(line["route"], "fail", "{line}");
        assert_eq!(line["stage"], "decode", "{line}");
        assert_eq!(line["errors"][0]["rule"], "protobuf", "{line}");
    }
    // The string that is not UTF-8 is `order.id`, and its bytes are not quoted.
    let utf8 = got.iter().find(|l| l["errors"][0]["message"].as_str().unwrap().contains("not UTF-8")).unwrap();
    let message = utf8["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("in `order.id`"), "{message}");
    assert!(!message.contains("\\xc3") && !message.contains("c3 28"), "{message}");
}

#[test]
fn a_protobuf_schema_that_does_not_compile_is_refused_with_its_line() {
    let bad = TempFile::new("bad.proto", b"syntax = \"proto3\";\nmessage X {\n  strin a = 1;\n}\n");
    let out = process("mappings/orders-to-billing.yaml", "order.proto", &proto("order.confluent.b64"));
    assert!(out.status.success());
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "protobuf",
        "--schema",
        bad.arg(),
        "--input",
        &proto("order.confluent.b64"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.proto") && err.contains("strin"), "{err}");
}

mod hostile_bytes {
    //! The Protobuf reader on arbitrary and mutated bodies: an error or a record, never a panic,
    //! whatever the bytes.
    use super::*;
    use proptest::prelude::*;

    use std::sync::OnceLock;

    fn readers() -> &'static [ProtobufReader] {
        static READERS: OnceLock<Vec<ProtobufReader>> = OnceLock::new();
        READERS.get_or_init(|| ["order.proto", "types.proto"].iter().map(|f| reader(f)).collect())
    }

    fn valid_bodies() -> &'static [Vec<u8>] {
        static BODIES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        BODIES.get_or_init(|| {
            ["order.confluent.b64", "types.confluent.b64"]
                .iter()
                .map(|f| BASE64.decode(std::fs::read_to_string(proto(f)).unwrap().trim()).unwrap()[5..].to_vec())
                .collect()
        })
    }

    use crate::formats::hostile_bytes::orders_plan;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            for reader in readers() {
                for indexes in [MessageIndexes::Confluent, MessageIndexes::Glue] {
                    let _ = reader.read(&bytes, indexes, None);
                    let _ = reader.read(&bytes, indexes, Some(orders_plan().projection()));
                }
            }
        }

        #[test]
        fn mutated_records_never_panic(
            which in 0usize..2,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut body = valid_bodies()[which].clone();
            for (at, byte) in &flips {
                let i = at.index(body.len());
                body[i] = *byte;
            }
            let reader = &readers()[which];
            let _ = reader.read(&body, MessageIndexes::Confluent, None);
            let _ = reader.read(&body, MessageIndexes::Confluent, Some(orders_plan().projection()));
            let cut_at = cut.index(body.len() + 1);
            let _ = reader.read(&body[..cut_at], MessageIndexes::Confluent, None);
        }
    }
}

#[test]
fn what_the_reader_gives_the_writer_writes_back_to_the_same_values() {
    // Every type of types.proto and the order: read from the independent encoder's bytes, written
    // from the values the reader presents, read again: the same record.
    for (schema, value) in [("types.proto", "types.confluent.b64"), ("order.proto", "order.confluent.b64")] {
        let reader = reader(schema);
        let bytes = BASE64.decode(std::fs::read_to_string(proto(value)).unwrap().trim()).unwrap();
        let first = reader.read(&bytes[5..], MessageIndexes::Confluent, None).unwrap();
        let mut written = reader.confluent_indexes(reader.first_message());
        reader.write(reader.first_message(), &first, &mut written).unwrap();
        let again = reader.read(&written, MessageIndexes::Confluent, None).unwrap();
        assert_eq!(again.to_value(), first.to_value(), "{schema}");
    }
}
