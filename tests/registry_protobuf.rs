//! Protobuf records read through schema registries: values written by Confluent's own
//! ProtobufSerializer through the test registry (`tests/fixtures/protobuf/serialize.py`; it
//! registers schemas as base64 descriptors, and imported files as references), `.proto` text
//! registered over REST, AWS Glue Schema Registry on moto, and the Lambda event an event source
//! mapping with a schema registry sends.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::registry_avro::{TestRegistry, base64_lines, event, lambda_stream_env, python_lines, record};
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
    let script = proto("serialize.py");
    let args = [script.as_str(), registry, topic, dir.to_str().unwrap(), file, message];
    python_lines(&args, records).iter().map(|l| BASE64.decode(l).unwrap()).collect()
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

/// The records Confluent's ProtobufDeserializer reads from `values` as `com.example.billing.Billing`.
fn deserialize_billing(values: &[Vec<u8>]) -> Vec<Value> {
    let (script, dir) = (proto("deserialize.py"), proto(""));
    let lines = python_lines(&[&script, &dir, "billing.proto", "Billing"], &base64_lines(values));
    lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn process_writes_protobuf_that_confluents_deserializer_reads() {
    let registry = TestRegistry::start(&[]);
    let schema = proto("billing.proto");
    let args = [
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        "tests/fixtures/orders.jsonl",
        "--topic-ok",
        "billing",
        "--registry",
        &registry.url,
        "--output-format",
        "protobuf",
        "--output-schema",
        &schema,
        "--register-schemas",
    ];
    let out = lambda_stream_env(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ok: Vec<Value> = lines(&out).into_iter().filter(|l| l["route"] == "ok").collect();
    assert_eq!(ok.len(), 3, "{}", stdout(&out));
    let values: Vec<Vec<u8>> = ok.iter().map(|l| BASE64.decode(l["protobuf"].as_str().unwrap()).unwrap()).collect();
    let decoded = deserialize_billing(&values);
    let utc = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().to_utc();
    for (line, record) in ok.iter().zip(&decoded) {
        let mapped = &line["value"];
        for field in ["order_id", "order_number", "status", "channel", "skus", "schema", "total"] {
            assert_eq!(mapped[field], record[field], "{field}: {record}");
        }
        // proto3's JSON mapping writes 64-bit integers as text.
        assert_eq!(mapped["total_cents"].to_string(), record["total_cents"].as_str().unwrap(), "{record}");
        assert_eq!(mapped["customer"]["id"], record["customer"]["id"]);
        assert_eq!(mapped["ship_to"]["zip"], record["ship_to"]["zip"]);
        assert_eq!(utc(&mapped["created_at"]), utc(&record["created_at"]));
        if !mapped["paid_at"].is_null() {
            assert_eq!(utc(&mapped["paid_at"]), utc(&record["paid_at"]));
        }
    }
    // Registered as Protobuf text, under the topic's subject.
    let latest = registry.block_on_get("/subjects/billing-value/versions/latest");
    assert_eq!(latest["schemaType"], "PROTOBUF", "{latest}");
    assert!(latest["schema"].as_str().unwrap().contains("message Billing"), "{latest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_in_the_worker_protobuf_out_read_back_by_confluents_deserializer() {
    let registry = TestRegistry::start(&[]);
    let text = std::fs::read_to_string(proto("order.proto")).unwrap();
    let id = registry.register_body("orders-value", json!({"schema": text, "schemaType": "PROTOBUF"}));
    let value = BASE64.decode(std::fs::read_to_string(proto("order.confluent.b64")).unwrap().trim()).unwrap();
    let framed = lambda_stream::format::wire::confluent_frame(id, &value[5..]);
    let t = crate::worker::topics("w-proto-out", 2).await;
    crate::registry_avro::produce_values(&t.input, &vec![framed; 60]);
    let mapping = TempFile::new("orders.yaml", &std::fs::read(root().join("mappings/orders-to-billing.yaml")).unwrap());
    let schema = proto("billing.proto");
    let extra = [
        "--format",
        "protobuf",
        "--registry",
        &registry.url,
        "--output-format",
        "protobuf",
        "--output-schema",
        &schema,
        "--register-schemas",
        "--max-batch",
        "25",
    ];
    let brokers = crate::kafka_util::bootstrap();
    let mut worker =
        crate::worker::WorkerProcess::start(&brokers, &mapping, &t.input, &t.group, &t.ok, &t.fail, &extra);
    let ok = crate::kafka_util::consume(&t.ok, 2, 60, std::time::Duration::from_secs(60));
    let totals = worker.stop();
    assert_eq!(ok.len(), 60, "{totals}\n{}", worker.log());
    use rdkafka::Message as _;
    let payloads: Vec<Vec<u8>> = ok.iter().map(|m| m.payload().unwrap().to_vec()).collect();
    let decoded = deserialize_billing(&payloads);
    assert_eq!(decoded.len(), 60);
    for record in &decoded {
        assert_eq!(record["order_id"], "3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f", "{record}");
        assert_eq!(record["status"], "PAID", "{record}");
        assert_eq!(record["total_cents"], "25990", "{record}");
        assert_eq!(record["skus"], json!(["SKU-001", "SKU-002"]), "{record}");
    }
}
