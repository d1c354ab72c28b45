//! End to end through a real Lambda Runtime API: the built binary runs behind AWS's Runtime
//! Interface Emulator (`aws-lambda-rie`, installed by `scripts/install-rie`), is invoked over HTTP
//! with a saved MSK event, and delivers to the local broker.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kafka_util::*;
use crate::util::root;

fn rie() -> PathBuf {
    let path = root().join(".tools/bin/aws-lambda-rie");
    assert!(path.exists(), "aws-lambda-rie is missing: run scripts/install-rie (scripts/test does it)");
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The emulator with the function as its bootstrap; killed when dropped.
struct Emulated {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Emulated {
    fn start(env: &[(&str, String)]) -> Self {
        let (port, api_port) = (free_port(), free_port());
        let log = std::env::temp_dir().join(format!("lambda-stream-rie-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(rie());
        cmd.arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg(env!("CARGO_BIN_EXE_lambda-stream"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_NAME", "orders-to-billing")
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "30")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("aws-lambda-rie starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(15), "the emulator did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Emulated { child, port, log }
    }

    /// POSTs an event to the invocation endpoint; returns the status code and the body.
    fn invoke(&self, event: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            stream,
            "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            event.len()
        )
        .unwrap();
        stream.write_all(event).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
        let head = String::from_utf8_lossy(&response[..split]).to_string();
        let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut body = response[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, body)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[eol + 2 + size + 2..];
    }
}

fn settings(brokers: &str, ok: &str, fail: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LAMBDA_ENV", "test".into()),
        ("ENVIRONMENTS_FILE", "none".into()),
        ("MSK_SERVERS", brokers.into()),
        ("MAPPING_FILE", root().join("mappings/orders-to-billing.yaml").display().to_string()),
        ("TOPIC_OK", ok.into()),
        ("TOPIC_FAIL", fail.into()),
    ]
}

#[test]
fn the_function_serves_a_saved_msk_event_behind_the_emulator() {
    let brokers = bootstrap();
    let (ok, fail) = (unique_topic("rie-ok"), unique_topic("rie-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(create_topics(&[(&ok, 1), (&fail, 1)]));
    let function = Emulated::start(&settings(&brokers, &ok, &fail));
    let event = std::fs::read(root().join("tests/fixtures/events/msk.json")).unwrap();

    let (status, body) = function.invoke(&event);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let summary: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&summary["received"], &summary["ok"], &summary["failed"], &summary["skipped"]),
        (&Value::from(8), &Value::from(3), &Value::from(4), &Value::from(1)),
        "{summary}"
    );
    assert_eq!(consume(&ok, 1, 3, Duration::from_secs(15)).len(), 3);
    assert_eq!(consume(&fail, 1, 4, Duration::from_secs(15)).len(), 4);

    // A second invocation reuses the cold-start state (same process, one "ready" line).
    let self_managed = std::fs::read(root().join("tests/fixtures/events/self-managed.json")).unwrap();
    let (status, body) = function.invoke(&self_managed);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["ok"], 1);

    let log = function.log();
    let ready: Vec<&str> = log.lines().filter(|l| l.contains("\"ready\"")).collect();
    assert_eq!(ready.len(), 1, "one cold start for two invocations:\n{log}");
    let ready: Value = serde_json::from_str(ready[0]).expect("JSON log lines in Lambda");
    assert!(ready["fields"]["init_ms"].as_f64().unwrap() > 0.0, "{ready}");
    assert!(log.contains("\"batch done\""), "{log}");
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("record routed to the fail topic")).collect();
    assert_eq!(failed.len(), 4, "one line per failed record:\n{log}");
    assert!(
        failed.iter().any(|l| l.contains("\"rules\":\"customer.document:cpf\"") && l.contains("\"offset\":103")),
        "{failed:?}"
    );
    assert!(!log.contains("529.982.247-25") && !log.contains("123.456.789-00"), "no document numbers in the logs");
}

#[test]
fn a_missing_setting_fails_the_cold_start_with_one_clear_line() {
    let brokers = bootstrap();
    let mut env = settings(&brokers, "ok", "fail");
    env.retain(|(k, _)| *k != "TOPIC_FAIL");
    let function = Emulated::start(&env);
    let (status, body) = function.invoke(b"{\"eventSource\": \"aws:kafka\", \"records\": {}}");
    assert!(status >= 500, "the invocation must fail, got {status}: {}", String::from_utf8_lossy(&body));
    std::thread::sleep(Duration::from_millis(300));
    let log = function.log();
    let line = log
        .lines()
        .find(|l| l.contains("cold start failed"))
        .unwrap_or_else(|| panic!("no cold start error in:\n{log}"));
    assert!(line.contains("missing required setting `topic_fail` (environment variable TOPIC_FAIL)"), "{line}");
}
