//! Protobuf records read through schema registries: values written by Confluent's own
//! ProtobufSerializer through the test registry (`tests/fixtures/protobuf/serialize.py`; it
//! registers schemas as base64 descriptors, and imported files as references), `.proto` text
//! registered over REST, AWS Glue Schema Registry on moto, and the Lambda event an event source
//! mapping with a schema registry sends.

use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::registry_avro::{TestRegistry, event, lambda_stream_env, record};
use crate::util::{TempFile, fixture, root, stderr, stdout};

fn proto(name: &str) -> String {
    fixture(&format!("protobuf/{name}")).to_str().unwrap().to_string()
}

/// Values Confluent's serializer writes for `records` (JSON lines) through `registry`.
fn serialize(
    registry: &str,
    topic: &str,
    dir: &std::path::Path,
    file: &str,
    message: &str,
    records: &str,
) -> Vec<Vec<u8>> {
    let mut child = Command::new("python3")
        .arg(proto("serialize.py"))
        .args([registry, topic, dir.to_str().unwrap(), file, message])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(records.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| BASE64.decode(l).unwrap()).collect()
}

fn lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn process(mapping: &str, registry: &str, values: &[Vec<u8>]) -> std::process::Output {
    let text: String = values.iter().map(|v| BASE64.encode(v) + "\n").collect();
    let input = TempFile::new("records.b64", text.as_bytes());
    let args =
        ["process", "--mapping", mapping, "--format", "protobuf", "--registry", registry, "--input", input.arg()];
    lambda_stream_env(&args, &[])
}

/// The JSON lines of orders.jsonl that are records of order.proto (as the fixtures keep).
fn order_lines() -> String {
    let jsonl = std::fs::read_to_string(fixture("orders.jsonl")).unwrap();
    let kept: Vec<&str> = jsonl.lines().enumerate().filter(|(i, _)| [0, 1, 2, 7].contains(i)).map(|(_, l)| l).collect();
    kept.join("\n") + "\n"
}

#[test]
fn records_confluents_serializer_writes_through_the_registry_map_as_their_json() {
    let registry = TestRegistry::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let protos = dir.path();
    std::fs::copy(proto("order.proto"), protos.join("order.proto")).unwrap();
    let values = serialize(&registry.url, "orders", protos, "order.proto", "Order", &order_lines());
    assert_eq!(values.len(), 4);
    let out = process("mappings/orders-to-billing.yaml", &registry.url, &values);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = TempFile::new("orders.jsonl", order_lines().as_bytes());
    let from_json =
        lambda_stream_env(&["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", json.arg()], &[]);
    assert_eq!(lines(&out), lines(&from_json), "{}", stderr(&out));
    // The schema was registered as a base64 descriptor, as the serializer registers it; one id,
    // fetched once for the four records.
    let requests = registry.requests();
    let fetches: Vec<(&String, &Value)> =
        requests.as_object().unwrap().iter().filter(|(k, _)| k.starts_with("GET /schemas/ids/")).collect();
    assert_eq!(fetches.len(), 1, "{requests}");
    assert_eq!(fetches[0].1, 1, "{requests}");
}

#[test]
fn an_imported_file_is_read_through_its_reference() {
    let registry = TestRegistry::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let protos = dir.path();
    std::fs::create_dir_all(protos.join("money")).unwrap();
    std::fs::write(
        protos.join("money/money.proto"),
        "syntax = \"proto3\";\npackage money;\nmessage Money { string currency = 1; int64 cents = 2; }\n",
    )
    .unwrap();
    std::fs::write(
        protos.join("payment.proto"),
        "syntax = \"proto3\";\npackage shop;\nimport \"money/money.proto\";\n\
         message Payment { string id = 1; money.Money total = 2; }\n",
    )
    .unwrap();
    let values = serialize(
        &registry.url,
        "payments",
        protos,
        "payment.proto",
        "Payment",
        "{\"id\": \"p-1\", \"total\": {\"currency\": \"BRL\", \"cents\": \"25990\"}}\n",
    );
    let mapping = TempFile::new(
        "payments.yaml",
        b"version: 1\nname: payments\nfields:\n\
          \x20 - { target: payment_id, source: $.id, type: string, required: true }\n\
          \x20 - { target: amount_cents, source: $.total.cents, type: integer, required: true }\n\
          \x20 - { target: currency, source: $.total.currency, type: string }\n",
    );
    let out = process(mapping.arg(), &registry.url, &values);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out)[0]["value"], json!({"payment_id": "p-1", "amount_cents": 25990, "currency": "BRL"}));
    // The reference was followed by subject and version, as the serializer registered it.
    let requests = registry.requests();
    assert!(requests.as_object().unwrap().keys().any(|k| k.starts_with("GET /subjects/money")), "{requests}");
}

#[test]
fn proto_text_registered_over_rest_reads_and_a_lambda_event_in_source_mode_keeps_the_indexes() {
    let registry = TestRegistry::start(&[]);
    let text = std::fs::read_to_string(proto("order.proto")).unwrap();
    let id = registry.register_body("orders-value", json!({"schema": text, "schemaType": "PROTOBUF"}));
    let value = BASE64.decode(std::fs::read_to_string(proto("order.confluent.b64")).unwrap().trim()).unwrap();
    // The fixture's body (message indexes included) framed with the id this registry gave.
    let body = &value[5..];
    let framed = lambda_stream::format::wire::confluent_frame(id, body);
    let out = process("mappings/orders-to-billing.yaml", &registry.url, std::slice::from_ref(&framed));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out)[0]["route"], "ok", "{}", stdout(&out));
    // `EventRecordFormat: SOURCE`: the magic byte and id are taken off, the message indexes stay.
    let metadata = json!({"dataFormat": "PROTOBUF", "schemaId": id.to_string()});
    let source = event(&[record(7, body, Some(metadata))]);
    let plain = event(&[record(7, &framed, None)]);
    let run = |event: &TempFile| {
        let args = [
            "process",
            "--mapping",
            "mappings/orders-to-billing.yaml",
            "--event",
            event.arg(),
            "--format",
            "protobuf",
            "--registry",
            &registry.url,
        ];
        lambda_stream_env(&args, &[])
    };
    let (a, b) = (run(&source), run(&plain));
    assert!(stderr(&a).starts_with("1 records: 1 ok"), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
}

#[test]
fn protobuf_framed_by_glue_reads_through_glue_schema_registry_on_moto() {
    let moto = crate::ssm_moto::Moto::start(false);
    let script = r#"
import sys, boto3
glue = boto3.client("glue", region_name="us-east-1", endpoint_url=sys.argv[1],
                    aws_access_key_id="test", aws_secret_access_key="test")
glue.create_registry(RegistryName="orders")
answer = glue.create_schema(RegistryId={"RegistryName": "orders"}, SchemaName="orders-value", DataFormat="PROTOBUF",
                            Compatibility="NONE", SchemaDefinition=open(sys.argv[2]).read())
print(answer["SchemaVersionId"])
"#;
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let out = Command::new("python3").args(["-c", script, &endpoint, &proto("order.proto")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let version = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let lambda_stream::format::wire::SchemaId::Glue(uuid) =
        lambda_stream::format::wire::SchemaId::parse(&version).unwrap()
    else {
        panic!("{version} is a UUID")
    };
    let mut value = BASE64.decode(std::fs::read_to_string(proto("glue-order.b64")).unwrap().trim()).unwrap();
    value[2..18].copy_from_slice(&uuid);
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let input = TempFile::new("glue.b64", (BASE64.encode(&value) + "\n").as_bytes());
    let args = [
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "protobuf",
        "--registry",
        "glue:us-east-1",
        "--input",
        input.arg(),
    ];
    let out = lambda_stream_env(&args, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let confluent = lambda_stream_env(
        &[
            "process",
            "--mapping",
            "mappings/orders-to-billing.yaml",
            "--format",
            "protobuf",
            "--schema",
            &proto("order.proto"),
            "--input",
            &proto("order.confluent.b64"),
        ],
        &[],
    );
    assert_eq!(lines(&out)[0]["route"], "ok", "{}", stdout(&out));
    assert_eq!(lines(&out), lines(&confluent));
}
