//! Mappings held to the Avro schemas of their topics by `validate-mapping` (`--source-schema`,
//! `--target-schema`, or the mapping's `source_schema:` and `target_schema:`), and starter
//! mappings written from a schema by `init --from-schema`, which then map the Avro records the
//! schema describes.

use std::path::Path;
use std::process::Output;

use crate::util::{TempFile, fixture, lambda_stream, stderr, stdout};

fn avro(name: &str) -> String {
    fixture(&format!("avro/{name}")).to_str().unwrap().to_string()
}

/// A mapping file whose `source_schema:` is the order fixture, with `fields`.
fn order_mapping(fields: &str) -> TempFile {
    let text = format!("version: 1\nname: t\nsource_schema: '{}'\nfields:\n{fields}", avro("order.avsc"));
    TempFile::new("m.yaml", text.as_bytes())
}

fn validate(mapping: &TempFile, more: &[&str]) -> Output {
    let mut args = vec!["validate-mapping", mapping.arg()];
    args.extend(more);
    lambda_stream(&args)
}

/// The report's lines for problems: `FILE:LINE:COL: severity: message`, the file left out.
fn problems(out: &Output, mapping: &TempFile) -> Vec<String> {
    let prefix = format!("{}:", mapping.arg());
    stdout(out)
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| !l.starts_with(' '))
        .map(String::from)
        .collect()
}

#[test]
fn the_billing_mapping_reads_what_the_order_schema_has() {
    let out = lambda_stream(&[
        "validate-mapping",
        "mappings/orders-to-billing.yaml",
        "--source-schema",
        "tests/fixtures/avro/order.avsc",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        "mappings/orders-to-billing.yaml: ok (25 fields, 6/6 tests passed)\n\
         1 file(s) checked, 0 with problems; 6 test(s) run, 0 failed\n"
    );
}

#[test]
fn a_misspelt_source_is_an_error_at_its_step_with_the_nearest_member() {
    let mapping = order_mapping("  - target: number\n    source: $.order.numbr\n    type: string\n");
    let out = validate(&mapping, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        problems(&out, &mapping),
        ["6:20: error: `$.order.numbr`: the source schema has no `numbr` in `$.order`; did you mean `number`?"]
    );
    assert!(stdout(&out).contains(": 1 problem(s); the mapping is refused\n"), "{}", stdout(&out));
    // The source line, with the step underlined.
    assert!(
        stdout(&out).contains("6 |     source: $.order.numbr\n  |                    ^^^^^^\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_type_that_cannot_hold_the_schemas_value_is_an_error_unless_a_transform_converts_it() {
    let mapping = order_mapping(
        "  - { target: customer_id, source: $.customer.id, type: string }
  - { target: customer_ref, source: $.customer.id, type: string, transform: [to_string] }
  - { target: points, source: $.customer.loyalty_points, type: integer }
  - { target: points_ok, source: $.customer.loyalty_points, type: integer, transform: [to_integer] }
  - { target: weight, source: $.shipping.weight_kg, type: integer }
",
    );
    let out = validate(&mapping, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        problems(&out, &mapping),
        [
            "5:57: error: `type: string` cannot hold `$.customer.id`, which the source schema gives as an integer; convert it with `to_string`",
            "7:64: error: `type: integer` cannot hold `$.customer.loyalty_points`, which the source schema gives as text; convert it with `to_integer`",
            "9:59: error: `type: integer` cannot hold `$.shipping.weight_kg`, which the source schema gives as a number (a float); a number may have a fraction: declare `type: number`, or convert it with `to_integer`, which refuses one",
        ]
    );
    assert!(stdout(&out).contains(": 3 problem(s); the mapping is refused\n"), "{}", stdout(&out));
}

#[test]
fn a_required_field_the_schema_lets_be_null_is_a_warning_and_the_mapping_passes() {
    let mapping = order_mapping("  - { target: channel, source: $.order.channel, type: string, required: true }\n");
    let out = validate(&mapping, &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diagnostics = &report["files"][0]["diagnostics"];
    assert_eq!(diagnostics.as_array().unwrap().len(), 1, "{report}");
    assert_eq!(diagnostics[0]["severity"], "warning");
    assert_eq!(
        diagnostics[0]["message"],
        "`$.order.channel` may be null in the source schema; such records will fail `required`"
    );
    assert_eq!((diagnostics[0]["line"].as_u64(), diagnostics[0]["col"].as_u64()), (Some(5), Some(73)));
}

#[test]
fn wildcards_and_items_follow_the_arrays_items() {
    let mapping = order_mapping(
        "  - { target: skus, source: '$.items[*].sku', type: array }
  - { target: names, source: '$.items[*].nmae', type: array }
  - target: lines
    source: $.items
    items:
      - { target: sku, source: $.sku, type: string, required: true }
      - { target: qty, source: $.quantty, type: integer }
      - { target: cents, source: $.unit_price_cents, type: integer }
",
    );
    let out = validate(&mapping, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        problems(&out, &mapping),
        [
            "6:41: error: `$.items[*].nmae`: the source schema has no `nmae` in `$.items[*]`; did you mean `name`?",
            "11:33: error: `$.quantty`: the source schema has no `quantty` in each item of `$.items`; did you mean `quantity`?",
        ]
    );
}

/// A billing record as the next topic's schema wants it.
const BILLING: &str = r#"{"type": "record", "name": "Billing", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "total_cents", "type": "long"},
  {"name": "channel", "type": ["null", "string"], "default": null},
  {"name": "schema", "type": "string", "default": "billing.v1"},
  {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
    {"name": "id", "type": "string"}, {"name": "tier", "type": "string"}]}}
]}"#;

#[test]
fn the_output_is_held_to_the_target_schema() {
    let target = TempFile::new("billing.avsc", BILLING.as_bytes());
    let mapping = order_mapping(
        "  - { target: order_id, source: $.order.id, type: string, required: true }
  - { target: total_cents, source: $.payment.amount_cents, type: number, required: true }
  - { target: channel, source: $.order.channel, type: string }
  - { target: customer.id, source: $.customer.id, type: string, required: true, transform: [to_string] }
  - { target: customer.tier, source: $.customer.segment, type: string }
  - { target: customer.segmnt, source: $.customer.segment, type: string }
",
    );
    let out = validate(&mapping, &["--target-schema", target.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        problems(&out, &mapping),
        [
            "6:66: error: target `total_cents` is `type: number`, but the target schema has it as an integer",
            "9:15: error: `customer.tier` may be absent (it is not `required` and has no `default`), but the target schema needs it: it is not nullable and has no default",
            "10:15: error: target `customer.segmnt`: the target schema has no `segmnt` in `customer`",
        ]
    );
    // A needed member nothing writes is reported where the fields start (or at `target_schema:`).
    let mapping = order_mapping("  - { target: order_id, source: $.order.id, type: string, required: true }\n");
    let out = validate(&mapping, &["--target-schema", target.arg()]);
    assert_eq!(
        problems(&out, &mapping)[..2],
        [
            "5:5: error: the target schema needs `customer` (it is not nullable and has no default), but no field writes it",
            "5:5: error: the target schema needs `total_cents` (it is not nullable and has no default), but no field writes it",
        ]
    );
}

/// Source and target problems together, in the order of their places in the file.
#[test]
fn schema_problems_are_reported_in_file_order() {
    let target = TempFile::new("billing.avsc", BILLING.as_bytes());
    let mapping = order_mapping(
        "  - { target: order_id, source: $.order.idd, type: string, required: true }\n  - { target: total_cents, source: $.payment.amount_cents, type: number, required: true }\n",
    );
    let out = validate(&mapping, &["--target-schema", target.arg()]);
    let found: Vec<String> =
        problems(&out, &mapping).iter().map(|p| p.split(": error").next().unwrap().to_owned()).collect();
    assert_eq!(found, ["5:5", "5:40", "6:66"], "{}", stdout(&out));
}

#[test]
fn a_schema_that_cannot_be_had_is_an_error_at_the_key_or_stops_the_run_when_given_as_a_flag() {
    let mapping = TempFile::new(
        "m.yaml",
        b"version: 1\nname: t\nsource_schema: missing.avsc\nfields:\n  - { target: a, source: $.a, type: string }\n",
    );
    let out = validate(&mapping, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let found = problems(&out, &mapping);
    assert!(found[0].starts_with("3:16: error: the mapping cannot be checked against this schema: "), "{found:?}");
    assert!(found[0].contains("missing.avsc: cannot read"), "{found:?}");
    let out = validate(&mapping, &["--source-schema", "no-such.avsc"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).starts_with("lambda-stream: --source-schema: cannot read no-such.avsc"), "{}", stderr(&out));
    let not_a_record = TempFile::new("a.avsc", br#"{"type": "array", "items": "long"}"#);
    let out = validate(&mapping, &["--source-schema", not_a_record.arg()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the schema's top type is an array, not a record"), "{}", stderr(&out));
}

/// Writes `init --from-schema` of `schema` into a folder of its own; the mapping's path.
fn starter_from(schema: &str, dir: &TempFile) -> String {
    let output = dir.path.with_file_name(format!("{}.yaml", Path::new(schema).file_stem().unwrap().to_str().unwrap()));
    let out = lambda_stream(&["init", "--from-schema", schema, "--output", output.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    output.to_str().unwrap().to_string()
}

#[test]
fn a_starter_from_a_schema_validates_against_it_and_maps_its_records() {
    let dir = TempFile::new("samples.txt", b"");
    for (schema, records, count) in
        [("order.avsc", "orders.confluent.b64", 4), ("types.avsc", "types.confluent.b64", 1)]
    {
        let mapping = starter_from(&avro(schema), &dir);
        let text = std::fs::read_to_string(&mapping).unwrap();
        assert!(text.contains("\nsource_schema: '"), "{text}");
        let checked = lambda_stream(&["validate-mapping", &mapping]);
        assert_eq!(checked.status.code(), Some(0), "{}{text}", stdout(&checked));
        let out = lambda_stream(&[
            "process",
            "--format",
            "avro",
            "--schema",
            &avro(schema),
            "--input",
            &avro(records),
            "--mapping",
            &mapping,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let routes: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(routes.len(), count);
        assert!(routes.iter().all(|r| r["route"] == "ok"), "{routes:#?}");
        if schema == "types.avsc" {
            // Every value as the reader presents it, none left out (`optional_null` is null).
            let mut expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(fixture("avro/types.expected.json")).unwrap()).unwrap();
            expected.as_object_mut().unwrap().remove("optional_null");
            assert_eq!(routes[0]["value"], expected);
        }
    }
    // The starter is held to its schema: a misspelt source is refused.
    let other = TempFile::new("other.txt", b"");
    let mapping = starter_from(&avro("order.avsc"), &other);
    let text = std::fs::read_to_string(&mapping).unwrap().replace("'$.order.number'", "'$.order.numbr'");
    std::fs::write(&mapping, text).unwrap();
    let out = lambda_stream(&["validate-mapping", &mapping]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("did you mean `number`?"), "{}", stdout(&out));
}

#[test]
fn init_takes_samples_or_a_schema_not_both() {
    let both = lambda_stream(&["init", "--from", "tests/fixtures/orders.jsonl", "--from-schema", &avro("order.avsc")]);
    assert_eq!(both.status.code(), Some(2));
    assert!(stderr(&both).contains("cannot be used with"), "{}", stderr(&both));
    let neither = lambda_stream(&["init"]);
    assert_eq!(neither.status.code(), Some(2));
    let printed = lambda_stream(&["init", "--from-schema", &avro("order.avsc")]);
    assert_eq!(printed.status.code(), Some(0));
    // Printed, the mapping has no folder yet: the schema's path is a comment to complete.
    assert!(stdout(&printed).contains("\n# source_schema: "), "{}", stdout(&printed));
}

#[cfg(not(feature = "kafka"))]
#[test]
fn a_registry_subject_needs_the_full_build() {
    let out = lambda_stream(&["init", "--from-schema", "registry:orders-value"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("by the full build (this is the mapping-tools build)"), "{}", stderr(&out));
}

/// A registry that has one subject, `orders-value` (the order schema), on a port of its own.
#[cfg(feature = "kafka")]
fn fake_registry() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let schema = std::fs::read_to_string(fixture("avro/order.avsc")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string();
            let (status, body) = if line.starts_with("GET /subjects/orders-value/versions/latest ") {
                let answer = serde_json::json!({"subject": "orders-value", "version": 1, "id": 1, "schema": schema});
                ("200 OK", answer.to_string())
            } else {
                ("404 Not Found", r#"{"error_code": 40401, "message": "Subject not found."}"#.to_string())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[cfg(feature = "kafka")]
fn with_registry(url: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(args)
        .current_dir(crate::util::root())
        .env("SCHEMA_REGISTRY_URL", url)
        .env("SCHEMA_REGISTRY_TIMEOUT_MS", "2000")
        .env_remove("SCHEMA_REGISTRY_USER_INFO")
        .env_remove("SCHEMA_REGISTRY_BEARER_TOKEN")
        .output()
        .unwrap()
}

#[cfg(feature = "kafka")]
#[test]
fn a_registry_subject_is_fetched_and_one_that_does_not_answer_exits_3() {
    let url = fake_registry();
    let args = ["validate-mapping", "mappings/orders-to-billing.yaml", "--source-schema", "registry:orders-value"];
    let out = with_registry(&url, &args);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let started = with_registry(&url, &["init", "--from-schema", "registry:orders-value"]);
    assert_eq!(started.status.code(), Some(0), "{}", stderr(&started));
    assert!(stdout(&started).contains("\nsource_schema: 'registry:orders-value@latest'\n"), "{}", stdout(&started));
    let missing = with_registry(&url, &["init", "--from-schema", "registry:payments-value@2"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("no subject `payments-value` version 2"), "{}", stderr(&missing));
    // Nothing listens on port 9: the registry does not answer, which is infrastructure.
    let down = with_registry("http://127.0.0.1:9", &args);
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
    // Named by the mapping, the same: the problem at the key, the exit infrastructure.
    let keyed = TempFile::new(
        "m.yaml",
        b"version: 1\nname: t\nsource_schema: registry:orders-value\nfields:\n  - { target: a, source: $.event_id, type: string }\n",
    );
    let out = with_registry(&url, &["validate-mapping", keyed.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = with_registry("http://127.0.0.1:9", &["validate-mapping", keyed.arg()]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            ":3:16: error: the mapping cannot be checked against this schema: registry:orders-value@latest: "
        ),
        "{}",
        stdout(&out)
    );
}

#[cfg(feature = "kafka")]
#[test]
fn a_registry_subject_with_glue_as_the_registry_is_a_usage_error_that_says_why() {
    let args = ["validate-mapping", "mappings/orders-to-billing.yaml", "--source-schema", "registry:orders-value"];
    let out = with_registry("glue:us-east-1", &args);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("AWS Glue Schema Registry") && said.contains("give the schema as a file"), "{said}");
}

/// The mapping reference's examples that name a schema fit it (their paths are from `docs/`).
#[test]
fn the_references_examples_fit_the_schemas_they_name() {
    use lambda_stream::format::shape::avro_shape;
    use lambda_stream::plan::schema_check::check_source;
    let doc = std::fs::read_to_string(crate::util::root().join("docs/mapping-spec.md")).unwrap();
    let mut checked = 0;
    for example in crate::doc_examples::examples(&doc) {
        let (spec, _) = lambda_stream::spec::parse(&example.text);
        let Some(schema) = &spec.source_schema else { continue };
        let text = std::fs::read_to_string(crate::util::root().join("docs").join(&schema.value)).unwrap();
        let found = check_source(&spec, &avro_shape(&text, &[]).unwrap());
        assert!(found.is_empty(), "docs/mapping-spec.md:{}: {found:?}", example.line);
        checked += 1;
    }
    assert!(checked > 0, "no example of the reference names a schema");
}

fn proto(name: &str) -> String {
    fixture(&format!("protobuf/{name}")).to_str().unwrap().to_string()
}

#[test]
fn mappings_are_held_to_protobuf_schemas_as_to_avro_ones() {
    let out = lambda_stream(&[
        "validate-mapping",
        "mappings/orders-to-billing.yaml",
        "--source-schema",
        &proto("order.proto"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let text = format!(
        "version: 1\nname: t\nsource_schema: '{}'\nfields:\n\
         \x20 - {{ target: number, source: $.order.numbr, type: string }}\n\
         \x20 - {{ target: channel, source: $.order.channel, type: string, required: true }}\n\
         \x20 - {{ target: customer_id, source: $.customer.id, type: string }}\n",
        proto("order.proto")
    );
    let mapping = TempFile::new("m.yaml", text.as_bytes());
    let out = validate(&mapping, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        problems(&out, &mapping),
        [
            "5:38: error: `$.order.numbr`: the source schema has no `numbr` in `$.order`; did you mean `number`?",
            "7:57: error: `type: string` cannot hold `$.customer.id`, which the source schema gives as an integer; convert it with `to_string`",
            // `optional string channel`: a field with presence may be missing.
            "6:73: warning: `$.order.channel` may be null in the source schema; such records will fail `required`",
        ]
    );
}

const ORDER_JSON_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["order", "total_cents"],
  "properties": {
    "order": {"$ref": "#/$defs/order"},
    "total_cents": {"type": "integer"},
    "paid_at": {"type": ["string", "null"], "format": "date-time"},
    "tags": {"type": "array", "items": {"type": "string"}}
  },
  "$defs": {
    "order": {
      "type": "object",
      "required": ["id"],
      "properties": {"id": {"type": "string"}, "number": {"type": "string"}}
    }
  }
}"##;

#[test]
fn mappings_are_held_to_json_schemas_on_both_sides() {
    let schema = TempFile::new("order.schema.json", ORDER_JSON_SCHEMA.as_bytes());
    let text = format!(
        "version: 1\nname: t\nsource_schema: '{0}'\ntarget_schema: '{0}'\nfields:\n\
         \x20 - {{ target: order.id, source: $.order.id, type: string, required: true }}\n\
         \x20 - {{ target: order.number, source: $.order.numbr, type: string }}\n\
         \x20 - {{ target: paid_at, source: $.paid_at, type: datetime, required: true }}\n\
         \x20 - {{ target: tags, source: '$.tags[*]', type: array }}\n",
        schema.arg()
    );
    let mapping = TempFile::new("m.yaml", text.as_bytes());
    let out = validate(&mapping, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        problems(&out, &mapping),
        [
            "4:17: error: the target schema needs `total_cents` (it is not nullable and has no default), but no field writes it",
            "7:44: error: `$.order.numbr`: the source schema has no `numbr` in `$.order`; did you mean `number`?",
            "8:69: warning: `$.paid_at` may be null in the source schema; such records will fail `required`",
        ]
    );
}

#[test]
fn a_starter_from_a_proto_file_validates_against_it_and_maps_its_records() {
    let dir = TempFile::new("proto-samples.txt", b"");
    for (schema, records, count) in
        [("order.proto", "orders.confluent.b64", 4), ("types.proto", "types.confluent.b64", 1)]
    {
        let mapping = starter_from(&proto(schema), &dir);
        let text = std::fs::read_to_string(&mapping).unwrap();
        let checked = lambda_stream(&["validate-mapping", &mapping]);
        assert_eq!(checked.status.code(), Some(0), "{}{text}", stdout(&checked));
        let out = lambda_stream(&[
            "process",
            "--format",
            "protobuf",
            "--schema",
            &proto(schema),
            "--input",
            &proto(records),
            "--mapping",
            &mapping,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let routes: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(routes.len(), count);
        if schema == "order.proto" {
            assert!(routes.iter().all(|r| r["route"] == "ok"), "{routes:#?}\n{text}");
            continue;
        }
        // Three values of the types record are beyond what their starter types hold, as
        // docs/formats.md says: a uint64 past the largest signed 64-bit integer, an enum number
        // the enum has no name for, and a NaN double. Everything else maps.
        assert_eq!(routes[0]["stage"], "validate", "{routes:#?}");
        let failed: Vec<(&str, &str)> = routes[0]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap()))
            .collect();
        assert_eq!(failed, [("uint64_field", "type"), ("enum_unknown", "type"), ("double_nan", "type")]);
    }
}
