//! AWS's Lambda Runtime Interface Emulator (`aws-lambda-rie`, installed by `scripts/install-rie`)
//! in front of the built function: started on free loopback ports, invoked over HTTP, its log
//! (the function's lines and the emulator's `REPORT` lines) kept in a file. Shared by the
//! end-to-end tests and the Lambda benchmark.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn rie() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/aws-lambda-rie");
    assert!(path.exists(), "aws-lambda-rie is missing: run scripts/install-rie (scripts/test does it)");
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The emulator with the function as its bootstrap; killed when dropped.
pub struct Emulated {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Emulated {
    /// Starts the emulator in front of `function` (the built binary) with `env` as its environment.
    pub fn start(function: &Path, env: &[(&str, String)]) -> Self {
        let (port, api_port) = (free_port(), free_port());
        let log = std::env::temp_dir().join(format!("lambda-stream-rie-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(rie());
        cmd.arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg(function)
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
    pub fn invoke(&self, event: &[u8]) -> (u16, Vec<u8>) {
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

    pub fn log(&self) -> String {
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
