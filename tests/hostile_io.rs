//! Hostile input at the edges where bytes come in: a Lambda event that repeats a group, files
//! that never end, settings Kafka or SSM would refuse, samples `init` must still describe, a
//! playground client that stalls. Each case must end in one clear place, in bounded time and
//! memory, never a panic. docs/development.md lists the rows.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_stream::destination::Router;
use lambda_stream::lambda::Function;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::plan;
use lambda_stream::sink::MemorySink;
use serde_json::{Value, json};

use crate::util::{TempFile, lambda_stream, root, stderr, stdout};

const MAPPING: &str =
    "version: 1\nname: hostile-io\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n";

fn function() -> Function<MemorySink> {
    let (_, plan) = plan::load_str(MAPPING).unwrap();
    let router = Router {
        topic_ok: "ok".into(),
        topic_fail: "fail".into(),
        function_name: "f".into(),
        function_env: "test".into(),
    };
    Function {
        pipeline: Pipeline::new(plan, router),
        sink: MemorySink::default(),
        partial_batch: false,
        delivery_margin: Duration::ZERO,
    }
}

fn record(offset: i64, value: &[u8]) -> Value {
    json!({"topic": "orders", "partition": 0, "offset": offset, "timestamp": 1_764_000_000_000_i64,
           "timestampType": "CREATE_TIME", "value": BASE64.encode(value)})
}

/// A Lambda event whose `records` object gives the group `orders-0` twice (JSON allows the text;
/// a map keeps only one of them): every record of both groups is mapped and counted.
#[tokio::test]
async fn a_repeated_topic_partition_group_loses_no_record() {
    let first = json!([record(1, br#"{"id": 1}"#), record(2, b"not json")]);
    let second = json!([record(3, br#"{"id": 3}"#)]);
    let other = json!([record(4, br#"{"id": 4}"#)]);
    let event = format!(
        r#"{{"eventSource": "aws:kafka", "records": {{"orders-0": {first}, "orders-1": {other}, "orders-0": {second}}}}}"#
    );
    let f = function();
    let summary = f.handle(&event, Instant::now() + Duration::from_secs(10)).await.unwrap();
    assert_eq!(summary["received"], 4, "{summary}");
    assert_eq!((summary["ok"].as_u64(), summary["failed"].as_u64()), (Some(3), Some(1)), "{summary}");
    let delivered = f.sink.delivered.lock().unwrap();
    assert_eq!(delivered.len(), 4);
    let ok: Vec<String> = delivered
        .iter()
        .filter(|m| m.topic == "ok")
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    for id in [1, 3, 4] {
        assert!(ok.contains(&format!(r#"{{"id":{id}}}"#)), "record {id} mapped: {ok:?}");
    }
}

/// Topic and parameter names Kafka or SSM would refuse are refused where they are written
/// (`file:line:col`), before a deployment finds out.
#[test]
fn validate_config_refuses_names_kafka_or_ssm_would_refuse() {
    let mapping = root().join("mappings/orders-to-billing.yaml");
    let long_topic = "t".repeat(250);
    let deep = (1..=16).map(|i| format!("l{i}")).collect::<Vec<_>>().join("/");
    let long_parameter = format!("team/{}", "p".repeat(1020));
    let text = format!(
        "version: 1\n\
         acme:\n  \
           prod:\n    \
             lambda_name: f\n    \
             msk_servers: parameter://team//servers\n    \
             source_topics: [\"in put\", \"nul\\0here\", ., ..]\n    \
             topic_ok: {long_topic}\n    \
             topic_fail: ok.fail\n    \
             mapping: {mapping}\n    \
             kafka: {{security: sasl_scram, scram_secret: parameter://SSM/secrets/kafka}}\n  \
           dev:\n    \
             lambda_name: f\n    \
             msk_servers: parameter://team/servers/\n    \
             source_topics: [in]\n    \
             topic_ok: parameter://{deep}\n    \
             topic_fail: parameter://{long_parameter}\n    \
             mapping: {mapping}\n    \
             kafka: {{security: sasl_scram, scram_secret: parameter://awsKafka}}\n  \
           ok:\n    \
             lambda_name: f\n    \
             msk_servers: parameter://team/kafka/servers\n    \
             source_topics: [orders.v1, Orders_2-x]\n    \
             topic_ok: billing.v1\n    \
             topic_fail: billing.v1.fail\n    \
             mapping: {mapping}\n    \
             kafka: {{security: sasl_scram, scram_secret: parameter:///aws/reference/secretsmanager/kafka-scram}}\n",
        mapping = mapping.display()
    );
    let file = TempFile::new("environments.yaml", text.as_bytes());
    let f = file.arg();
    let out = lambda_stream(&["validate-config", f]);
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}{}", stderr(&out));
    for expected in [
        format!("{f}:5:18: error: `parameter://team//servers`"),
        // A quoted value is located at its first character, after the quote.
        format!("{f}:6:22: error: topic `in put` "),
        format!("{f}:6:32: error: topic `nul\\0here` "),
        format!("{f}:6:44: error: topic `.` "),
        format!("{f}:6:47: error: topic `..` "),
        format!("{f}:7:15: error: topic `{long_topic}` "),
        format!("{f}:10:49: error: `parameter://SSM/secrets/kafka`"),
        format!("{f}:13:18: error: `parameter://team/servers/`"),
        format!("{f}:15:15: error: `parameter://{deep}`"),
        format!("{f}:16:17: error: `parameter://{long_parameter}`"),
        format!("{f}:18:49: error: `parameter://awsKafka`"),
    ] {
        assert!(report.contains(&expected), "missing:\n{expected}\nin:\n{report}");
    }
    assert!(!report.contains(&format!("{f}:2")), "the valid environment has no problem:\n{report}");
    assert_eq!(report.matches(": error: ").count(), 11, "{report}");
}

/// What a run of the binary did, with its time and the highest resident memory seen while it ran.
struct Bounded {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    peak_mib: u64,
}

/// Runs the binary with standard input from `stdin` (else none), killing it after 20 s, and
/// samples its resident memory (`VmHWM`, the high-water mark) while it runs.
fn run_bounded(args: &[&str], stdin: Option<&str>) -> Bounded {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(args)
        .current_dir(root())
        .stdin(stdin.map_or_else(Stdio::null, |p| Stdio::from(std::fs::File::open(p).unwrap())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s)
    });
    let started = Instant::now();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_path)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("{args:?} still running after 20 s (peak {} MiB)", peak_kib >> 10);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Bounded {
        code: status.code(),
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
        took: started.elapsed(),
        peak_mib: peak_kib >> 10,
    }
}

/// Ends in a clear refusal, quickly, without reading the endless input into memory.
fn assert_refused_promptly(run: &Bounded, code: i32, text: &str, what: &str) {
    let all = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(code), "{what}: {all}");
    assert!(all.contains(text), "{what}: expected {text:?} in:\n{all}");
    assert!(!all.contains("panicked"), "{what}: {all}");
    assert!(run.took < Duration::from_secs(5), "{what}: took {:?}", run.took);
    assert!(run.peak_mib < 400, "{what}: {} MiB resident", run.peak_mib);
}

#[test]
fn a_mapping_that_never_ends_is_refused_at_its_limit() {
    let run = run_bounded(&["validate-mapping", "/dev/zero"], None);
    assert_refused_promptly(&run, 2, "/dev/zero: error: cannot read file: larger than 16 MiB", "validate-mapping");
    let input = TempFile::new("one.jsonl", b"{\"id\": 1}\n");
    let run = run_bounded(&["process", "--mapping", "/dev/zero", "--input", input.arg()], None);
    assert_refused_promptly(&run, 2, "cannot read mapping file /dev/zero: larger than 16 MiB", "process --mapping");
}

#[test]
fn a_lookup_file_past_its_limit_is_refused_at_its_line() {
    let mapping = TempFile::new(
        "m.yaml",
        b"version: 1\nname: large-lookup\nlookups:\n  codes: {file: codes.json}\nfields:\n  - {target: id, source: $.id, type: any}\n",
    );
    // One byte past the limit (a sparse file: no disk written): read up to the limit, then refused.
    let codes = mapping.path.with_file_name("codes.json");
    std::fs::File::create(&codes).unwrap().set_len(lambda_stream::limits::MAX_LOOKUP_BYTES + 1).unwrap();
    let run = run_bounded(&["validate-mapping", mapping.arg()], None);
    let at = format!("{}:4:17: error: lookup table `codes`:", mapping.arg());
    assert_refused_promptly(&run, 1, &format!("{at} cannot read {}: larger than 64 MiB", codes.display()), "lookup");
    // A file that never ends can only be a device, outside the mapping's folder: refused unread.
    std::fs::remove_file(&codes).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &codes).unwrap();
    let run = run_bounded(&["validate-mapping", mapping.arg()], None);
    assert_refused_promptly(&run, 1, &format!("{at} `file: codes.json` resolves to /dev/zero"), "lookup link");
}

/// A named pipe in the mapping's folder, named as a lookup file: opening it waits for a writer that
/// never comes, so it is refused unopened, as anything but a file is.
#[test]
fn a_lookup_file_that_is_a_named_pipe_is_refused_unopened() {
    let mapping = TempFile::new(
        "m.yaml",
        b"version: 1\nname: pipe-lookup\nlookups:\n  codes: {file: codes.csv}\nfields:\n  - {target: id, source: $.id, type: any}\n",
    );
    let codes = mapping.path.with_file_name("codes.csv");
    let made = std::process::Command::new("mkfifo").arg(&codes).status().unwrap();
    assert!(made.success());
    let run = run_bounded(&["validate-mapping", mapping.arg()], None);
    let at = format!("{}:4:17: error: lookup table `codes`:", mapping.arg());
    assert_refused_promptly(&run, 1, &format!("{at} cannot read {}: not a file", codes.display()), "lookup pipe");
}

#[test]
fn process_input_is_read_line_by_line_and_an_endless_line_stops_it() {
    let mapping = "mappings/orders-to-billing.yaml";
    let run = run_bounded(&["process", "--mapping", mapping, "--input", "/dev/zero"], None);
    assert_refused_promptly(&run, 2, "/dev/zero:1: the line runs past 64 MiB", "process --input /dev/zero");
    let run = run_bounded(&["process", "--mapping", mapping, "--input", "-"], Some("/dev/zero"));
    assert_refused_promptly(&run, 2, "-:1: the line runs past 64 MiB", "process --input - < /dev/zero");
    // Lines before the endless one are mapped and printed first.
    let mut text = b"{\"order\": {\"id\": \"x\"}}\n\n{\"order\": {\"id\": \"y\"}}\n".to_vec();
    text.extend(std::iter::repeat_n(b' ', 65 << 20));
    let long = TempFile::new("long.jsonl", &text);
    let run = run_bounded(&["process", "--mapping", mapping, "--input", long.arg()], None);
    assert_refused_promptly(&run, 2, &format!("{}:4: the line runs past 64 MiB", long.arg()), "a long last line");
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}

#[test]
fn other_whole_file_reads_are_bounded_too() {
    let mapping = "mappings/orders-to-billing.yaml";
    for (args, text) in [
        (vec!["process", "--mapping", mapping, "--event", "/dev/zero"], "cannot read /dev/zero: larger than 64 MiB"),
        (vec!["explain", "--mapping", mapping, "--input", "/dev/zero"], "cannot read /dev/zero: larger than 64 MiB"),
        (vec!["init", "--from", "/dev/zero"], "cannot read /dev/zero: larger than 256 MiB"),
    ] {
        let run = run_bounded(&args, None);
        assert_refused_promptly(&run, 2, text, &args.join(" "));
    }
}

/// The playground, killed when the test ends however it ends.
struct Playground {
    child: std::process::Child,
    port: u16,
    _files: (TempFile, TempFile),
}

impl Drop for Playground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn playground() -> Playground {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let mapping = TempFile::new("m.yaml", MAPPING.as_bytes());
    let samples = TempFile::new("s.jsonl", b"{\"id\": 1}\n{\"id\": \"x\"}\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["playground", "--port", "0", "--mapping", mapping.arg(), "--samples", samples.arg()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("the playground prints its address");
    let port = line.split("http://127.0.0.1:").nth(1).and_then(|rest| rest.split('/').next()).unwrap();
    Playground { child, port: port.parse().unwrap(), _files: (mapping, samples) }
}

impl Playground {
    fn connect(&self) -> std::net::TcpStream {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap()
    }

    /// A whole GET of the session, answered within `within`: the status line.
    fn get_session(&self, within: Duration) -> String {
        use std::io::{Read as _, Write as _};
        let mut s = self.connect();
        s.set_read_timeout(Some(within)).unwrap();
        write!(s, "GET /api/session HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port).unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while started.elapsed() < within {
            match s.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("no answer within {within:?}: {e}"),
            }
        }
        let text = String::from_utf8_lossy(&answer).into_owned();
        assert!(text.contains("\"sample_count\":2"), "{text}");
        text.lines().next().unwrap_or_default().to_owned()
    }
}

/// A client that sends half a body holds only its own connection: another request is answered
/// at once, and the stalled one is answered 408 once its time is up.
#[test]
fn a_stalled_playground_request_does_not_block_another() {
    use std::io::{Read as _, Write as _};
    let p = playground();
    let mut stalled = p.connect();
    write!(
        stalled,
        "POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Lambda-Stream-Playground: 1\r\nContent-Length: 1000\r\n\r\nversion: 1",
        p.port
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    assert_eq!(p.get_session(Duration::from_secs(3)), "HTTP/1.1 200 OK");
    assert!(started.elapsed() < Duration::from_secs(2), "answered in {:?}", started.elapsed());
    stalled.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    let _ = stalled.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

/// 1,200 connections that send nothing: those over the cap are closed, the server stays up, and a
/// real request is still answered.
#[test]
fn idle_playground_connections_are_capped() {
    use std::io::Read as _;
    let mut p = playground();
    let idle: Vec<std::net::TcpStream> = (0..1200).map(|_| p.connect()).collect();
    let started = Instant::now();
    assert_eq!(p.get_session(Duration::from_secs(5)), "HTTP/1.1 200 OK");
    assert!(started.elapsed() < Duration::from_secs(3), "answered in {:?}", started.elapsed());
    assert!(p.child.try_wait().unwrap().is_none(), "the server is still running");
    // Closed: end of stream, a reset, or a refusal; open: nothing to read yet.
    let closed = |s: &std::net::TcpStream| {
        s.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 64];
        !matches!((&*s).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut count = 0;
    while Instant::now() < deadline {
        count = idle.iter().filter(|s| closed(s)).count();
        if count >= 1100 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(count >= 1100, "only {count} of 1200 idle connections were closed");
    drop(idle);
    assert_eq!(p.get_session(Duration::from_secs(5)), "HTTP/1.1 200 OK");
}
