//! Avro records read through a Confluent-compatible schema registry: the test registry
//! (`scripts/registry/server.py`, held to the protocol by Confluent's own client in
//! `schema_registry.rs`), one per test on a free port, so its request counts are the test's own.
//! Records are fastavro's (`tests/fixtures/avro`), framed with the ids the registry gave.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::util::{TempFile, fixture, root, stderr, stdout};

/// A test registry on a free port of 127.0.0.1, stopped when dropped.
pub struct TestRegistry {
    child: Child,
    pub url: String,
}

impl TestRegistry {
    pub fn start(auth: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .arg("scripts/registry/server.py")
            .args(["--port", &port.to_string()])
            .args(auth)
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the test registry");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "the test registry did not start on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Runs `future` to its end on a runtime and a thread of their own (the caller may be an
    /// async test, whose thread cannot block on another runtime).
    fn block_on<T: Send>(&self, future: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future))
                .join()
                .unwrap()
        })
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.block_on(async {
            let client = reqwest::Client::new();
            let mut request = client.request(method, format!("{}{path}", self.url));
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("the test registry answers");
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    /// Registers an Avro schema file under `subject`; its id.
    pub fn register(&self, subject: &str, schema_file: &str) -> u32 {
        let schema = std::fs::read_to_string(fixture(&format!("avro/{schema_file}"))).unwrap();
        let answer =
            self.call(reqwest::Method::POST, &format!("/subjects/{subject}/versions"), Some(json!({"schema": schema})));
        answer["id"].as_u64().unwrap() as u32
    }

    /// Registers `body` (`{"schema": …, "schemaType": …, "references": …}`) under `subject`; its id.
    pub fn register_body(&self, subject: &str, body: Value) -> u32 {
        let answer = self.call(reqwest::Method::POST, &format!("/subjects/{subject}/versions"), Some(body));
        answer["id"].as_u64().unwrap() as u32
    }

    /// `GET path`'s answer.
    pub fn block_on_get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None)
    }

    /// Requests received, per `METHOD /path`.
    pub fn requests(&self) -> Value {
        self.call(reqwest::Method::GET, "/_test/requests", None)
    }

    pub fn fault(&self, fault: Value) {
        self.call(reqwest::Method::POST, "/_test/fault", Some(fault));
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `python3 ARGS` with `input` on its standard input: its standard output's lines (it must
/// succeed). The services tests' way to Confluent's clients, fastavro and boto3.
pub fn python_lines(args: &[&str], input: &str) -> Vec<String> {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
}

/// Values as base64 lines, as the Python helpers read them.
pub fn base64_lines(values: &[Vec<u8>]) -> String {
    values.iter().map(|v| BASE64.encode(v) + "\n").collect()
}

/// The Avro body of the first value of a fixture file (its 5-byte Confluent framing taken off).
pub fn body_of(file: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture(&format!("avro/{file}"))).unwrap();
    BASE64.decode(text.lines().next().unwrap().trim()).unwrap()[5..].to_vec()
}

/// `body` framed for schema `id`, Confluent's way.
pub fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    lambda_stream::format::wire::confluent_frame(id, body)
}

pub fn lambda_stream_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("the binary runs")
}

fn process_lines(registry: &str, lines: &[Vec<u8>], env: &[(&str, &str)]) -> Output {
    let text: String = lines.iter().map(|v| BASE64.encode(v) + "\n").collect();
    let input = TempFile::new("records.b64", text.as_bytes());
    lambda_stream_env(
        &[
            "process",
            "--mapping",
            "mappings/orders-to-billing.yaml",
            "--format",
            "avro",
            "--registry",
            registry,
            "--input",
            input.arg(),
        ],
        env,
    )
}

#[test]
fn three_thousand_records_of_three_schemas_make_three_registry_calls() {
    let registry = TestRegistry::start(&[]);
    let order = registry.register("orders-value", "order.avsc");
    let types = registry.register("types-value", "types.avsc");
    let node = registry.register("nodes-value", "hostile-recursive.avsc");
    assert_eq!(registry.requests().get("GET /schemas/ids/1"), None);
    let (order_body, types_body) = (body_of("order.confluent.b64"), body_of("types.confluent.b64"));
    let lines: Vec<Vec<u8>> = (0..3000)
        .map(|i| match i % 3 {
            0 => framed(order, &order_body),
            1 => framed(types, &types_body),
            // A one-node list: `next` is null.
            _ => framed(node, &[0]),
        })
        .collect();
    let out = process_lines(&registry.url, &lines, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The order records map; the others are not orders, and fail the mapping's `required`.
    assert!(stderr(&out).starts_with("3000 records: 1000 ok, 2000 failed"), "{}", stderr(&out));
    let requests = registry.requests();
    for id in [order, types, node] {
        assert_eq!(requests[format!("GET /schemas/ids/{id}")], 1, "{requests}");
    }
    let schema_calls: u64 = requests
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("GET /schemas"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert_eq!(schema_calls, 3, "{requests}");
}

#[test]
fn a_schema_the_registry_does_not_have_fails_its_records_with_stage_decode() {
    let registry = TestRegistry::start(&[]);
    let order = registry.register("orders-value", "order.avsc");
    let body = body_of("order.confluent.b64");
    let out = process_lines(&registry.url, &[framed(order, &body), framed(order + 41, &body)], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["route"], "ok", "{lines:?}");
    assert_eq!(lines[1]["route"], "fail");
    assert_eq!(lines[1]["stage"], "decode");
    let message = lines[1]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("no schema with id {}", order + 41)), "{message}");
}

#[test]
fn a_registry_that_fails_or_cannot_be_reached_stops_the_run_with_exit_3_and_maps_nothing() {
    let registry = TestRegistry::start(&[]);
    let order = registry.register("orders-value", "order.avsc");
    registry.fault(json!({"status": 503, "count": -1, "path_prefix": "/schemas"}));
    let records = [framed(order, &body_of("order.confluent.b64"))];
    let out = process_lines(&registry.url, &records, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("answered 503"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no record is mapped, or failed, for the registry's fault");
    let closed = format!("http://127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let out = process_lines(&closed, &records, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be reached"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_registry_wanting_basic_auth_gets_the_credentials_from_the_environment() {
    let registry = TestRegistry::start(&["--basic-auth", "svc:s3cret-local"]);
    // The test hooks need no auth; registering does.
    let schema = std::fs::read_to_string(fixture("avro/order.avsc")).unwrap();
    let id = registry.block_on(async {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/subjects/orders-value/versions", registry.url))
            .basic_auth("svc", Some("s3cret-local"))
            .json(&json!({"schema": schema}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["id"].as_u64().unwrap() as u32
    });
    let records = [framed(id, &body_of("order.confluent.b64"))];
    let out = process_lines(&registry.url, &records, &[("SCHEMA_REGISTRY_USER_INFO", "svc:s3cret-local")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("1 records: 1 ok"), "{}", stderr(&out));
    let out = process_lines(&registry.url, &records, &[("SCHEMA_REGISTRY_USER_INFO", "svc:wrong")]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong"), "credentials never appear in messages: {}", stderr(&out));
}

/// A Lambda event of one record per value, as an event source mapping sends it.
pub fn event(records: &[Value]) -> TempFile {
    let event = json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:sa-east-1:123456789012:cluster/orders/abc",
        "records": {"orders-0": records},
    });
    TempFile::new("event.json", event.to_string().as_bytes())
}

pub fn record(offset: i64, value: &[u8], metadata: Option<Value>) -> Value {
    let mut record = json!({
        "topic": "orders", "partition": 0, "offset": offset, "timestamp": 1_764_000_000_000i64,
        "timestampType": "CREATE_TIME", "headers": [], "value": BASE64.encode(value),
    });
    if let Some(metadata) = metadata {
        record["valueSchemaMetadata"] = metadata;
    }
    record
}

#[test]
fn lambda_events_with_and_without_the_event_source_mappings_schema_registry_read_alike() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    let body = body_of("order.confluent.b64");
    let run = |event: &TempFile, format: &str| {
        lambda_stream_env(
            &[
                "process",
                "--mapping",
                "mappings/orders-to-billing.yaml",
                "--event",
                event.arg(),
                "--format",
                format,
                "--registry",
                &registry.url,
            ],
            &[],
        )
    };
    // Without a schema registry on the event source mapping: the value as produced, framed.
    let framed_event = event(&[record(7, &framed(id, &body), None)]);
    let plain = run(&framed_event, "avro");
    assert!(plain.status.success(), "{}", stderr(&plain));
    // `EventRecordFormat: SOURCE`: the framing is taken off, the schema id is beside the value.
    let metadata = json!({"dataFormat": "AVRO", "schemaId": id.to_string()});
    let source_event = event(&[record(7, &body, Some(metadata.clone()))]);
    let source = run(&source_event, "avro");
    assert!(source.status.success(), "{}", stderr(&source));
    // `EventRecordFormat: JSON`: Lambda decoded the value into JSON text; it is mapped as JSON.
    let json_text = std::fs::read(fixture("order.json")).unwrap();
    let json_event = event(&[record(7, &json_text, Some(metadata))]);
    let decoded = run(&json_event, "json");
    assert!(decoded.status.success(), "{}", stderr(&decoded));
    for out in [&plain, &source, &decoded] {
        assert!(stderr(out).starts_with("1 records: 1 ok"), "{}", stderr(out));
    }
    assert_eq!(stdout(&plain), stdout(&source));
    assert_eq!(stdout(&plain), stdout(&decoded), "Avro and its JSON map alike");
    // One fetch for the two Avro runs' one id each (each run is a process of its own).
    assert_eq!(registry.requests()[format!("GET /schemas/ids/{id}")], 2);
}

/// Produces `values` to `topic`, keyed by their index, and waits for every acknowledgement.
pub fn produce_values(topic: &str, values: &[Vec<u8>]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", crate::kafka_util::bootstrap())
        .create()
        .expect("producer");
    for (i, value) in values.iter().enumerate() {
        let key = i.to_string();
        producer.send(BaseRecord::to(topic).key(&key).payload(value)).expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("every record acknowledged");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_maps_avro_from_the_broker_fetching_each_schema_once_for_its_whole_run() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    let t = crate::worker::topics("w-avro", 2).await;
    let body = body_of("order.confluent.b64");
    // 150 orders, and 50 naming a schema the registry does not have.
    let values: Vec<Vec<u8>> = (0..200).map(|i| framed(if i % 4 == 3 { id + 7 } else { id }, &body)).collect();
    produce_values(&t.input, &values);
    let mapping = TempFile::new("orders.yaml", &std::fs::read(root().join("mappings/orders-to-billing.yaml")).unwrap());
    let brokers = crate::kafka_util::bootstrap();
    let extra = ["--format", "avro", "--registry", &registry.url, "--max-batch", "25"];
    let mut worker =
        crate::worker::WorkerProcess::start(&brokers, &mapping, &t.input, &t.group, &t.ok, &t.fail, &extra);
    let ok = crate::kafka_util::consume(&t.ok, 2, 150, Duration::from_secs(60));
    let fail = crate::kafka_util::consume(&t.fail, 2, 50, Duration::from_secs(30));
    let totals = worker.stop();
    assert_eq!((ok.len(), fail.len()), (150, 50), "{totals}\n{}", worker.log());
    assert_eq!(totals["received"], 200, "{totals}");
    assert_eq!((totals["ok"].as_u64(), totals["failed"].as_u64()), (Some(150), Some(50)), "{totals}");
    let order = crate::kafka_util::json_payload(&ok[0]);
    assert_eq!(order["order_id"], "3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f", "{order}");
    for m in &fail {
        assert_eq!(crate::kafka_util::header(m, "lambda-stream.error.stage").as_deref(), Some("decode"));
        let envelope = crate::kafka_util::json_payload(m);
        assert_eq!(envelope["value_format"], "avro", "{envelope}");
        assert_eq!(envelope["schema_id"], (id + 7).to_string(), "{envelope}");
        assert_eq!(BASE64.decode(envelope["value"].as_str().unwrap()).unwrap(), framed(id + 7, &body));
    }
    // The known schema is fetched once for the whole run, whatever the number of batches.
    assert_eq!(registry.requests()[format!("GET /schemas/ids/{id}")], 1, "{}", registry.requests());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_waits_out_a_registry_outage_and_fails_no_record_for_it() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    registry.fault(json!({"status": 503, "count": -1, "path_prefix": "/schemas"}));
    let t = crate::worker::topics("w-avro-outage", 1).await;
    let values: Vec<Vec<u8>> = (0..20).map(|_| framed(id, &body_of("order.confluent.b64"))).collect();
    produce_values(&t.input, &values);
    let mapping = TempFile::new("orders.yaml", &std::fs::read(root().join("mappings/orders-to-billing.yaml")).unwrap());
    let brokers = crate::kafka_util::bootstrap();
    let extra = ["--format", "avro", "--registry", &registry.url];
    let mut worker =
        crate::worker::WorkerProcess::start(&brokers, &mapping, &t.input, &t.group, &t.ok, &t.fail, &extra);
    worker.wait_for_log("the schema registry did not answer", Duration::from_secs(30));
    registry.call(reqwest::Method::POST, "/_test/clear-faults", None);
    let ok = crate::kafka_util::consume(&t.ok, 1, 20, Duration::from_secs(60));
    let fail = crate::kafka_util::consume(&t.fail, 1, 0, Duration::from_secs(2));
    let totals = worker.stop();
    assert_eq!(ok.len(), 20, "{totals}\n{}", worker.log());
    assert!(fail.is_empty(), "no record fails for the registry's outage: {totals}");
    assert!(registry.requests()[format!("GET /schemas/ids/{id}")].as_u64().unwrap() >= 2);
}

#[test]
fn the_function_behind_the_lambda_emulator_maps_avro_and_fails_the_invocation_when_the_registry_is_down() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    let brokers = crate::kafka_util::bootstrap();
    let (ok, fail) = (crate::kafka_util::unique_topic("rie-avro-ok"), crate::kafka_util::unique_topic("rie-avro-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(&[(&ok, 1), (&fail, 1)]));
    let settings = vec![
        ("LAMBDA_ENV", "test".to_string()),
        ("ENVIRONMENTS_FILE", "none".into()),
        ("MSK_SERVERS", brokers),
        ("MAPPING_FILE", root().join("mappings/orders-to-billing.yaml").display().to_string()),
        ("TOPIC_OK", ok.clone()),
        ("TOPIC_FAIL", fail.clone()),
        ("SOURCE_FORMAT", "avro".into()),
        ("SCHEMA_REGISTRY_URL", registry.url.clone()),
    ];
    let function =
        crate::emulator::Emulated::start(std::path::Path::new(env!("CARGO_BIN_EXE_lambda-stream")), &settings);
    let body = body_of("order.confluent.b64");
    // One record framed as produced, one as an event source mapping with a registry sends it.
    let metadata = json!({"dataFormat": "AVRO", "schemaId": id.to_string()});
    let records = json!({"eventSource": "aws:kafka", "records": {"orders-0": [
        record(10, &framed(id, &body), None),
        record(11, &body, Some(metadata)),
        record(12, &framed(id + 5, &body), None),
    ]}});
    let (status, answer) = function.invoke(records.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let summary: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!((&summary["ok"], &summary["failed"]), (&json!(2), &json!(1)), "{summary}");
    assert_eq!(crate::kafka_util::consume(&ok, 1, 2, Duration::from_secs(15)).len(), 2);
    let failed = crate::kafka_util::consume(&fail, 1, 1, Duration::from_secs(15));
    assert_eq!(crate::kafka_util::header(&failed[0], "lambda-stream.error.stage").as_deref(), Some("decode"));

    // The registry down: the invocation fails (Lambda retries the batch); nothing is produced.
    registry.fault(json!({"status": 500, "count": -1, "path_prefix": "/schemas"}));
    let unknown =
        json!({"eventSource": "aws:kafka", "records": {"orders-0": [record(13, &framed(id + 9, &body), None)]}});
    let (status, answer) = function.invoke(unknown.to_string().as_bytes());
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("SchemaRegistryUnavailable"), "{status} {answer}");
    assert!(
        crate::kafka_util::consume(&fail, 1, 2, Duration::from_secs(3)).len() == 1,
        "no fail record for the outage"
    );
}

/// Registers `schema_file` in moto's Glue Schema Registry with boto3; the schema version's id.
fn glue_register(moto: &crate::ssm_moto::Moto, schema_file: &str) -> String {
    let script = r#"
import sys, boto3
glue = boto3.client("glue", region_name="us-east-1", endpoint_url=sys.argv[1],
                    aws_access_key_id="test", aws_secret_access_key="test")
glue.create_registry(RegistryName="orders")
answer = glue.create_schema(RegistryId={"RegistryName": "orders"}, SchemaName="orders-value", DataFormat="AVRO",
                            Compatibility="NONE", SchemaDefinition=open(sys.argv[2]).read())
print(answer["SchemaVersionId"])
"#;
    let out = Command::new("python3")
        .args(["-c", script, &format!("http://127.0.0.1:{}", moto.port)])
        .arg(fixture(&format!("avro/{schema_file}")))
        .output()
        .expect("python3 runs boto3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A fixture's Glue-framed value with its schema version replaced by `version`.
fn glue_framed(file: &str, version: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(fixture(&format!("avro/{file}"))).unwrap();
    let mut value = BASE64.decode(text.lines().next().unwrap().trim()).unwrap();
    let lambda_stream::format::wire::SchemaId::Glue(uuid) =
        lambda_stream::format::wire::SchemaId::parse(version).unwrap()
    else {
        panic!("{version} is a UUID")
    };
    value[2..18].copy_from_slice(&uuid);
    value
}

#[test]
fn avro_framed_by_glue_reads_through_glue_schema_registry_on_moto() {
    let moto = crate::ssm_moto::Moto::start(false);
    let version = glue_register(&moto, "order.avsc");
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let unknown = "0badc0de-0000-4000-8000-000000000000";
    let lines = [
        glue_framed("glue-order.b64", &version),
        glue_framed("glue-order-zlib.b64", &version),
        glue_framed("glue-order.b64", unknown),
    ];
    let text: String = lines.iter().map(|v| BASE64.encode(v) + "\n").collect();
    let input = TempFile::new("glue.b64", text.as_bytes());
    let args = [
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--format",
        "avro",
        "--registry",
        "glue:us-east-1",
        "--input",
        input.arg(),
    ];
    let out = lambda_stream_env(&args, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((got[0]["route"].as_str(), got[1]["route"].as_str()), (Some("ok"), Some("ok")), "{got:?}");
    assert_eq!(got[0]["value"], got[1]["value"], "zlib-compressed bodies read alike");
    assert_eq!(got[2]["stage"], "decode", "{:?}", got[2]);
    let message = got[2]["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&format!("Glue has no schema version {unknown}")), "{message}");
    // Glue not answering is the run's failure, not the records'.
    drop(moto);
    let out = lambda_stream_env(&args, &env);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_failures_replay_through_a_fixed_mapping_reading_their_schemas_again() {
    let registry = TestRegistry::start(&[]);
    let id = registry.register("orders-value", "order.avsc");
    let t = crate::worker::topics("w-avro-replay", 1).await;
    let (ok2, fail2) = (crate::kafka_util::unique_topic("replay-ok"), crate::kafka_util::unique_topic("replay-fail"));
    crate::kafka_util::create_topics(&[(&ok2, 1), (&fail2, 1)]).await;
    let values: Vec<Vec<u8>> = (0..30).map(|_| framed(id, &body_of("order.confluent.b64"))).collect();
    produce_values(&t.input, &values);
    let mapping = |statuses: &str| {
        let text = format!(
            "version: 1\nname: statuses\nfields:\n  - {{target: order_id, source: $.order.id, type: string, required: true}}\n  - {{target: status, source: $.order.status, type: string, validate: [{{one_of: [{statuses}]}}]}}\n"
        );
        TempFile::new("statuses.yaml", text.as_bytes())
    };
    // A mapping that takes only new orders: every (paid) order fails.
    let strict = mapping("CREATED");
    let brokers = crate::kafka_util::bootstrap();
    let extra = ["--format", "avro", "--registry", &registry.url];
    let mut worker = crate::worker::WorkerProcess::start(&brokers, &strict, &t.input, &t.group, &t.ok, &t.fail, &extra);
    let failed = crate::kafka_util::consume(&t.fail, 1, 30, Duration::from_secs(60));
    worker.stop();
    assert_eq!(failed.len(), 30, "{}", worker.log());
    // The fixed mapping, replayed: each envelope's base64 value is read as Avro again.
    let fixed = mapping("CREATED, PAID");
    let out = crate::util::lambda_stream(&[
        "replay",
        "--brokers",
        &brokers,
        "--from",
        &t.fail,
        "--mapping",
        fixed.arg(),
        "--topic-ok",
        &ok2,
        "--topic-fail",
        &fail2,
        "--registry",
        &registry.url,
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((report["read"].as_u64(), report["now_ok"].as_u64()), (Some(30), Some(30)), "{report:#}");
    let replayed = crate::kafka_util::consume(&ok2, 1, 30, Duration::from_secs(30));
    assert_eq!(replayed.len(), 30);
    assert_eq!(crate::kafka_util::json_payload(&replayed[0])["status"], "PAID");
}

#[test]
fn a_registry_answer_past_its_bound_is_the_registrys_failure_and_nothing_is_mapped() {
    let registry = TestRegistry::start(&[]);
    // A schema whose text alone is past the 8 MiB a registry's answer may be.
    let huge = json!({"type": "record", "name": "Huge", "doc": "x".repeat(9 << 20), "fields": []}).to_string();
    let answer = registry.call(reqwest::Method::POST, "/subjects/huge-value/versions", Some(json!({"schema": huge})));
    let id = answer["id"].as_u64().unwrap() as u32;
    let out = process_lines(&registry.url, &[framed(id, &[])], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("an answer of more than 8 MiB"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}
