//! Ok records written as Avro: what `process` and the worker write is read back by Confluent's
//! own AvroDeserializer (`tests/fixtures/avro/deserialize.py`), which takes the framing off and
//! fetches the writer schema by the id in it from the test registry. End to end on the broker:
//! Avro in (fastavro's records), the worker, Avro out.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

use crate::registry_avro::{TestRegistry, base64_lines, body_of, framed, lambda_stream_env, python_lines};
use crate::util::{TempFile, fixture, root, stderr, stdout};

/// The records Confluent's deserializer reads from `values`.
fn deserialize(registry: &str, topic: &str, values: &[Vec<u8>]) -> Vec<Value> {
    let script = fixture("avro/deserialize.py").to_str().unwrap().to_string();
    let lines = python_lines(&[&script, registry, topic], &base64_lines(values));
    lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The reference order as `process` maps it from JSON: what every written record must say.
fn mapped_order() -> Value {
    let order: Value = serde_json::from_slice(&std::fs::read(fixture("order.json")).unwrap()).unwrap();
    let input = TempFile::new("order.jsonl", (order.to_string() + "\n").as_bytes());
    let json =
        lambda_stream_env(&["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", input.arg()], &[]);
    let mapped: Value = serde_json::from_str(stdout(&json).lines().next().unwrap()).unwrap();
    assert_eq!(mapped["route"], "ok", "{mapped} {}", stderr(&json));
    mapped["value"].clone()
}

fn billing() -> String {
    fixture("avro/billing.avsc").to_str().unwrap().to_string()
}

/// The mapped record and the Avro record read back agree, field for field, in each one's terms.
fn assert_same_record(mapped: &Value, decoded: &Value) {
    for field in ["order_id", "order_number", "status", "channel", "notes", "total_cents", "skus", "schema"] {
        assert_eq!(mapped[field], decoded[field], "{field}");
    }
    assert_eq!(mapped["customer"]["id"], decoded["customer"]["id"]);
    assert_eq!(mapped["customer"]["loyalty_points"], decoded["customer"]["loyalty_points"]);
    assert_eq!(mapped["ship_to"], decoded["ship_to"]);
    assert_eq!(mapped["total"], decoded["total"]);
    // Timestamps: RFC 3339 text written as a count since the epoch, read back in UTC.
    let utc = |text: &Value| chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap()).unwrap().to_utc();
    assert_eq!(utc(&mapped["created_at"]), utc(&decoded["created_at"]));
    if !mapped["paid_at"].is_null() {
        assert_eq!(utc(&mapped["paid_at"]), utc(&decoded["paid_at"]));
    }
    assert_eq!(mapped["delivery_date"], decoded["delivery_date"]);
    assert_eq!(mapped["customer"]["birth_date"], decoded["customer"]["birth_date"]);
}

#[test]
fn process_writes_avro_that_confluents_deserializer_reads_and_registers_only_when_asked() {
    let registry = TestRegistry::start(&[]);
    let run = |register: bool| {
        let mut args = vec![
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
            "avro",
        ];
        let schema = billing();
        args.extend(["--output-schema", &schema]);
        if register {
            args.push("--register-schemas");
        }
        lambda_stream_env(&args, &[])
    };
    // Not registered under `billing-value`, and not asked to register: nothing runs.
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("not registered under subject `billing-value`"), "{}", stderr(&refused));
    let out = run(true);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ok: Vec<&Value> = lines.iter().filter(|l| l["route"] == "ok").collect();
    assert_eq!(ok.len(), 3, "{lines:?}");
    let values: Vec<Vec<u8>> = ok.iter().map(|l| BASE64.decode(l["avro"].as_str().unwrap()).unwrap()).collect();
    let decoded = deserialize(&registry.url, "billing", &values);
    for (line, record) in ok.iter().zip(&decoded) {
        assert_same_record(&line["value"], record);
    }
    // Once registered, a later start finds it without registering again.
    let again = run(false);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), stdout(&out));
    let requests = registry.requests();
    assert_eq!(requests["POST /subjects/billing-value/versions"], 1, "{requests}");
}

#[test]
fn a_mapped_record_the_writer_schema_cannot_hold_fails_with_stage_encode() {
    let registry = TestRegistry::start(&[]);
    // A schema that needs a member the mapping does not write, and has `total_cents` as an int.
    let schema = TempFile::new(
        "strict.avsc",
        br#"{"type": "record", "name": "Strict", "fields": [
              {"name": "order_id", "type": "string"},
              {"name": "total_cents", "type": "int"},
              {"name": "region", "type": "string"}]}"#,
    );
    let mapping = TempFile::new(
        "strict.yaml",
        b"version: 1\nname: strict\nfields:\n\
          \x20 - { target: order_id, source: $.order.id, type: string }\n\
          \x20 - { target: total_cents, source: $.payment.amount_cents, type: integer }\n",
    );
    let order: Value = serde_json::from_slice(&std::fs::read(fixture("order.json")).unwrap()).unwrap();
    let input = TempFile::new("order.jsonl", (order.to_string() + "\n").as_bytes());
    let args = [
        "process",
        "--mapping",
        mapping.arg(),
        "--input",
        input.arg(),
        "--registry",
        &registry.url,
        "--output-format",
        "avro",
        "--output-schema",
        schema.arg(),
        "--register-schemas",
        "--messages",
    ];
    let out = lambda_stream_env(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(line["topic"], "fail", "{line}");
    let envelope = &line["payload"];
    assert_eq!(envelope["stage"], "encode", "{envelope}");
    assert_eq!(envelope["errors"][0]["field"], "region", "{envelope}");
    let message = envelope["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("leaves it out, and the schema has no default"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_in_the_worker_avro_out_read_back_by_confluents_deserializer() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    let t = crate::worker::topics("w-avro-out", 2).await;
    let body = body_of("order.confluent.b64");
    let values: Vec<Vec<u8>> = (0..120).map(|_| framed(id, &body)).collect();
    crate::registry_avro::produce_values(&t.input, &values);
    let mapping = TempFile::new("orders.yaml", &std::fs::read(root().join("mappings/orders-to-billing.yaml")).unwrap());
    let brokers = crate::kafka_util::bootstrap();
    let schema = billing();
    let extra = [
        "--format",
        "avro",
        "--registry",
        &registry.url,
        "--output-format",
        "avro",
        "--output-schema",
        &schema,
        "--register-schemas",
        "--max-batch",
        "25",
    ];
    let mut worker =
        crate::worker::WorkerProcess::start(&brokers, &mapping, &t.input, &t.group, &t.ok, &t.fail, &extra);
    let ok = crate::kafka_util::consume(&t.ok, 2, 120, Duration::from_secs(60));
    let totals = worker.stop();
    assert_eq!(ok.len(), 120, "{totals}\n{}", worker.log());
    assert_eq!(totals["ok"], 120, "{totals}");
    use rdkafka::Message as _;
    let payloads: Vec<Vec<u8>> = ok.iter().map(|m| m.payload().unwrap().to_vec()).collect();
    let decoded = deserialize(&registry.url, &t.ok, &payloads);
    assert_eq!(decoded.len(), 120);
    // The same order as JSON, mapped by `process`, is what every Avro record says.
    let mapped = mapped_order();
    for record in &decoded {
        assert_same_record(&mapped, record);
    }
}

/// Reads Glue-framed Avro values as Glue's own clients would: the schema version's UUID from the
/// header, its definition from Glue (`GetSchemaVersion`, boto3), the body with fastavro.
const GLUE_READ: &str = r#"
import base64, datetime as dt, io, json, sys, uuid, boto3, fastavro
glue = boto3.client("glue", region_name="us-east-1", endpoint_url=sys.argv[1],
                    aws_access_key_id="test", aws_secret_access_key="test")
def plain(v):
    if isinstance(v, dt.datetime): return v.astimezone(dt.timezone.utc).isoformat()
    if isinstance(v, dt.date): return v.isoformat()
    if isinstance(v, uuid.UUID): return str(v)
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list): return [plain(x) for x in v]
    return v
for line in sys.stdin:
    value = base64.b64decode(line)
    assert value[0] == 3 and value[1] == 0, value[:2]
    version = str(uuid.UUID(bytes=value[2:18]))
    answer = glue.get_schema_version(SchemaVersionId=version)
    schema = fastavro.parse_schema(json.loads(answer["SchemaDefinition"]))
    body = io.BytesIO(value[18:])
    record = fastavro.schemaless_reader(body, schema)
    assert body.tell() == len(value) - 18
    print(json.dumps({"version": version, "record": plain(record)}))
"#;

#[test]
fn avro_out_through_glue_schema_registry_on_moto_reads_back_with_glues_definition() {
    let moto = crate::ssm_moto::Moto::start(false);
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let create = r#"
import sys, boto3
glue = boto3.client("glue", region_name="us-east-1", endpoint_url=sys.argv[1],
                    aws_access_key_id="test", aws_secret_access_key="test")
glue.create_registry(RegistryName="billing")
"#;
    let out = Command::new("python3").args(["-c", create, &endpoint]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let schema = billing();
    let run = |register: bool| {
        let mut args = vec![
            "process",
            "--mapping",
            "mappings/orders-to-billing.yaml",
            "--input",
            "tests/fixtures/orders.jsonl",
            "--topic-ok",
            "billing",
            "--registry",
            "arn:aws:glue:us-east-1:123456789012:registry/billing",
            "--output-format",
            "avro",
            "--output-schema",
            &schema,
        ];
        if register {
            args.push("--register-schemas");
        }
        lambda_stream_env(&args, &env)
    };
    let refused = run(false);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("AWS Glue registry `billing`"), "{}", stderr(&refused));
    let out = run(true);
    assert!(out.status.success(), "{}", stderr(&out));
    let ok: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["route"] == "ok")
        .collect();
    assert_eq!(ok.len(), 3);
    let values: String = ok.iter().map(|l| l["avro"].as_str().unwrap().to_string() + "\n").collect();
    let decoded: Vec<Value> =
        python_lines(&["-c", GLUE_READ, &endpoint], &values).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (line, decoded) in ok.iter().zip(&decoded) {
        assert_same_record(&line["value"], &decoded["record"]);
    }
    // Registered once (the second and third records find the version the first run made).
    let again = run(false);
    assert!(again.status.success(), "{}", stderr(&again));
    let versions: Vec<&Value> = decoded.iter().map(|d| &d["version"]).collect();
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
}

#[test]
fn the_function_behind_the_lambda_emulator_writes_avro_with_a_registered_subjects_schema() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    let brokers = crate::kafka_util::bootstrap();
    let (ok, fail) =
        (crate::kafka_util::unique_topic("rie-avro-out-ok"), crate::kafka_util::unique_topic("rie-avro-out-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(&[(&ok, 1), (&fail, 1)]));
    // The writer schema, registered before the function is deployed (it never registers one).
    registry.register(&format!("{ok}-value"), "billing.avsc");
    let settings = vec![
        ("LAMBDA_ENV", "test".to_string()),
        ("ENVIRONMENTS_FILE", "none".into()),
        ("MSK_SERVERS", brokers),
        ("MAPPING_FILE", root().join("mappings/orders-to-billing.yaml").display().to_string()),
        ("TOPIC_OK", ok.clone()),
        ("TOPIC_FAIL", fail.clone()),
        ("SOURCE_FORMAT", "avro".into()),
        ("SCHEMA_REGISTRY_URL", registry.url.clone()),
        ("OUTPUT_FORMAT", "avro".into()),
    ];
    let function =
        crate::emulator::Emulated::start(std::path::Path::new(env!("CARGO_BIN_EXE_lambda-stream")), &settings);
    let body = body_of("order.confluent.b64");
    let records: Vec<Value> = (0..3).map(|i| crate::registry_avro::record(20 + i, &framed(id, &body), None)).collect();
    let event = serde_json::json!({"eventSource": "aws:kafka", "records": {"orders-0": records}});
    let (status, answer) = function.invoke(event.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let produced = crate::kafka_util::consume(&ok, 1, 3, Duration::from_secs(15));
    use rdkafka::Message as _;
    let payloads: Vec<Vec<u8>> = produced.iter().map(|m| m.payload().unwrap().to_vec()).collect();
    let decoded = deserialize(&registry.url, &ok, &payloads);
    let mapped = mapped_order();
    assert_eq!(decoded.len(), 3);
    for record in &decoded {
        assert_same_record(&mapped, record);
    }
}
