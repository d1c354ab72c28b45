//! `lambda-stream playground`: a page on 127.0.0.1 to edit a mapping against sample records.
//!
//! The page (one HTML file with its script and styles inside, nothing fetched from elsewhere) sends
//! the editor's text as it changes; the server compiles it as `validate-mapping` does, maps every
//! sample as `process` does, and answers with the diagnostics and each sample's result. Saving
//! writes the file only when the text compiles and its embedded tests pass, so a saved mapping is
//! one the function would load.
//!
//! The server is local and small: a thread per connection, at most [`MAX_CONNECTIONS`] of them,
//! one request per connection, which must arrive whole within [`REQUEST_TIMEOUT`] (a client that
//! stalls holds only its own connection). Requests are answered one at a time (each is a compile
//! and a mapping of at most [`MAX_SAMPLES`] records, milliseconds). It answers only requests
//! addressed to its own host and port (a page of another site cannot reach it through DNS
//! rebinding), and only POSTs carrying the page's own header (a form of another site cannot send
//! one).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::error::CliError;
use super::process::{DEFAULT_MAX_LINE_BYTES, process_lines};
use crate::diagnostic::Diagnostic;
use crate::plan::{self, CompileOptions, Plan, mapping_tests};

/// The page: markup, script and styles in one file, compiled into the binary.
const PAGE: &str = include_str!("playground.html");

/// Samples beyond this many lines are not read: the page is for looking at results one by one.
pub const MAX_SAMPLES: usize = 1000;

/// The largest request body accepted (a mapping's text).
const MAX_BODY_BYTES: u64 = 4 << 20;

/// The header every POST of the page carries.
const PAGE_HEADER: &str = "X-Lambda-Stream-Playground";

/// One mapping file and its samples, as the page sees them.
pub struct Session {
    mapping: PathBuf,
    /// The mapping's path as messages show it.
    shown: String,
    /// The file's text as last read or written: a save refuses to overwrite other changes.
    on_disk: String,
    samples: Vec<u8>,
    sample_count: usize,
}

/// One problem in the editor's text, at its line.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub line: u32,
    pub col: u32,
    /// `error` (the mapping is refused), `warning` (it loads), or `test` (an embedded test fails).
    pub severity: &'static str,
    pub message: String,
}

impl Problem {
    fn of(d: &Diagnostic, severity: &'static str) -> Self {
        Problem { line: d.pos.line, col: d.pos.col, severity, message: d.message.clone() }
    }
}

/// What `validate-mapping` would say of a text: a plan, or the problems.
struct Checked {
    plan: Option<Plan>,
    problems: Vec<Problem>,
    tests_run: usize,
}

impl Checked {
    /// The function would load it: it compiles and its tests pass.
    fn loadable(&self) -> bool {
        self.plan.is_some() && self.problems.iter().all(|p| p.severity == "warning")
    }
}

impl Session {
    pub fn open(mapping: &Path, samples: &Path) -> Result<Self, CliError> {
        fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
            move |source| CliError::Read { path: path.display().to_string(), source }
        }
        let on_disk = crate::limits::read_bounded(mapping, crate::limits::MAX_MAPPING_BYTES, "a mapping")
            .map_err(read_err(mapping))?;
        let on_disk = String::from_utf8(on_disk).map_err(|_| CliError::Read {
            path: mapping.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the mapping is not UTF-8 text"),
        })?;
        let samples = first_lines(samples).map_err(read_err(samples))?;
        let sample_count = samples.split(|b| *b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count();
        Ok(Session {
            shown: mapping.display().to_string(),
            mapping: mapping.to_path_buf(),
            on_disk,
            samples,
            sample_count,
        })
    }

    fn options(&self) -> CompileOptions {
        // Lookup files are read next to the mapping, as the function reads them.
        crate::mapping_file::options(self.mapping.parent())
    }

    fn check(&self, text: &str) -> Checked {
        match plan::load_str_in(text, &self.options()) {
            Ok((spec, plan)) => {
                let mut problems: Vec<Problem> = plan.warnings().iter().map(|w| Problem::of(w, "warning")).collect();
                let tests = mapping_tests::run(&spec, &plan);
                problems.extend(tests.iter().filter_map(|t| {
                    t.failure.as_ref().map(|why| Problem {
                        line: t.pos.line,
                        col: t.pos.col,
                        severity: "test",
                        message: format!("test \"{}\" failed: {why}", t.name),
                    })
                }));
                Checked { plan: Some(plan), problems, tests_run: tests.len() }
            }
            Err(diagnostics) => Checked {
                plan: None,
                problems: diagnostics.iter().map(|d| Problem::of(d, "error")).collect(),
                tests_run: 0,
            },
        }
    }

    /// The page's first request: the file, its text and the samples.
    pub fn state(&self) -> Value {
        let samples: Vec<String> = self
            .samples
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
            .collect();
        json!({ "mapping": self.shown, "text": self.on_disk, "samples": samples, "sample_count": self.sample_count })
    }

    /// Diagnostics for the text, and each sample's result as `process` prints it.
    pub fn run(&self, text: &str) -> Value {
        let checked = self.check(text);
        let mut response = json!({
            "compiles": checked.plan.is_some(),
            "loadable": checked.loadable(),
            "problems": checked.problems,
            "tests_run": checked.tests_run,
        });
        if let Some(plan) = &checked.plan {
            let mut out = Vec::new();
            let tally = process_lines(plan, &self.samples, DEFAULT_MAX_LINE_BYTES, None, &mut out)
                .expect("writing to memory cannot fail");
            let results: Vec<&RawValue> = out
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).expect("process prints JSON lines"))
                .collect();
            response["results"] = json!(results);
            response["tally"] =
                json!({ "records": tally.records, "ok": tally.ok, "failed": tally.failed, "dropped": tally.dropped });
        }
        response
    }

    /// `explain` of the sample on line `line` (1-based) with the text's mapping.
    pub fn explain(&self, text: &str, line: usize) -> Result<Value, (u16, Value)> {
        let record = self
            .samples
            .split(|b| *b == b'\n')
            .nth(line.wrapping_sub(1))
            .filter(|l| !l.trim_ascii().is_empty())
            .ok_or_else(|| (404, json!({ "error": format!("there is no sample on line {line}") })))?;
        let checked = self.check(text);
        let plan = checked
            .plan
            .ok_or_else(|| (409, json!({ "error": "the mapping does not compile", "problems": checked.problems })))?;
        let explanation = plan.explain(record.trim_ascii_end());
        Ok(json!({ "text": explanation.render(), "explanation": explanation }))
    }

    /// Writes the text to the mapping file if the function would load it and nobody else changed
    /// the file since it was read (or last saved here).
    pub fn save(&mut self, text: &str) -> Result<Value, (u16, Value)> {
        let checked = self.check(text);
        if !checked.loadable() {
            let why = if checked.plan.is_none() { "the mapping does not compile" } else { "an embedded test fails" };
            return Err((409, json!({ "error": format!("not saved: {why}"), "problems": checked.problems })));
        }
        let current = crate::limits::read_text_bounded(&self.mapping, crate::limits::MAX_MAPPING_BYTES, "a mapping")
            .unwrap_or_default();
        if current != self.on_disk {
            return Err((
                409,
                json!({ "error": format!("not saved: {} changed on disk since the playground read it; reload it first", self.shown) }),
            ));
        }
        write_replacing(&self.mapping, text.as_bytes())
            .map_err(|e| (500, json!({ "error": format!("cannot write {}: {e}", self.shown) })))?;
        self.on_disk = text.to_owned();
        Ok(json!({ "saved": self.shown }))
    }

    /// Reads the file again (after it was changed elsewhere).
    pub fn reload(&mut self) -> Result<Value, (u16, Value)> {
        self.on_disk = crate::limits::read_text_bounded(&self.mapping, crate::limits::MAX_MAPPING_BYTES, "a mapping")
            .map_err(|e| (500, json!({ "error": format!("cannot read {}: {e}", self.shown) })))?;
        Ok(self.state())
    }
}

/// The first [`MAX_SAMPLES`] lines of a file, blank ones included (they keep line numbers as in
/// the file), without the newline that ends the last of them; at most
/// [`crate::limits::MAX_SAMPLES_BYTES`] of them, however long the file.
fn first_lines(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::BufRead as _;
    let max = crate::limits::MAX_SAMPLES_BYTES;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?.take(max + 1));
    let mut samples = Vec::new();
    for _ in 0..MAX_SAMPLES {
        if reader.read_until(b'\n', &mut samples)? == 0 {
            return Ok(samples);
        }
        if samples.len() as u64 > max {
            return Err(crate::limits::too_large(max, "a sample file read by the playground"));
        }
    }
    if samples.last() == Some(&b'\n') {
        samples.pop();
    }
    Ok(samples)
}

/// Replaces the file's content in one step: a reader (or the function's next cold start from a
/// synced directory) sees the old text or the new one, never half of it.
///
/// The file replaced is the one `path` names once links are followed: a mapping that is a link
/// stays a link, and the file it points to gets the text. The text is first written to a file
/// created new under a random name in that file's folder (never an existing file, nor a link
/// planted there by someone else), with the file's permissions, then renamed over it.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        // Removed since it was read: written where it was.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let folder = match target.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut temporary =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".playground-save").tempfile_in(folder)?;
    if let Ok(metadata) = std::fs::metadata(&target) {
        temporary.as_file().set_permissions(metadata.permissions())?;
    }
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

/// Connections served at once. When all are taken, the one that has waited longest without
/// sending its whole request is closed to make room; when every one is being answered, the
/// newcomer is refused (503).
pub const MAX_CONNECTIONS: usize = 32;

/// The time a request has to arrive whole (line, headers and body), from its connection's accept.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The time a client has to take an answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request line and headers accepted.
const MAX_HEAD_BYTES: usize = 16 << 10;

/// Serves the playground until the process is stopped. `port` 0 takes any free port; the address
/// is printed on standard error either way.
pub fn serve(mapping: &Path, samples: &Path, port: u16) -> Result<(), CliError> {
    let session = Session::open(mapping, samples)?;
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|source| CliError::Listen { port, source })?;
    let address = listener.local_addr().map_err(CliError::Write)?;
    eprintln!(
        "playground for {} with {} sample(s): http://{address}/ (Ctrl-C to stop)",
        session.shown, session.sample_count
    );
    let server = Arc::new(Server {
        session: Mutex::new(session),
        address,
        open: Mutex::new(Vec::new()),
        next: AtomicU64::new(0),
    });
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => Server::admit(&server, stream),
            // Out of file descriptors, or a connection reset before it was accepted: go on.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    Ok(())
}

/// The session and the connections being served, each on a thread of its own.
struct Server {
    session: Mutex<Session>,
    address: SocketAddr,
    /// In the order they were accepted.
    open: Mutex<Vec<Connection>>,
    next: AtomicU64,
}

struct Connection {
    id: u64,
    /// A handle to close it with, to make room for another.
    stream: TcpStream,
    /// Still reading its request (so it may be closed to make room).
    reading: Arc<AtomicBool>,
}

/// A request as read: what the handler looks at.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An answer: status, content type, body.
type Response = (u16, &'static str, String);

impl Server {
    fn lock_open(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `stream` on a thread of its own, making room for it if every place is taken.
    fn admit(server: &Arc<Server>, stream: TcpStream) {
        let mut open = server.lock_open();
        if open.len() >= MAX_CONNECTIONS {
            match open.iter().position(|c| c.reading.load(Ordering::Acquire)) {
                Some(oldest) => {
                    let _ = open.remove(oldest).stream.shutdown(Shutdown::Both);
                }
                None => {
                    drop(open);
                    refuse(stream);
                    return;
                }
            }
        }
        let Ok(handle) = stream.try_clone() else { return };
        let id = server.next.fetch_add(1, Ordering::Relaxed);
        let reading = Arc::new(AtomicBool::new(true));
        open.push(Connection { id, stream: handle, reading: Arc::clone(&reading) });
        drop(open);
        let serving = Arc::clone(server);
        let spawned = std::thread::Builder::new().name("playground".into()).spawn(move || {
            serving.serve_connection(stream, &reading);
            serving.lock_open().retain(|c| c.id != id);
        });
        if spawned.is_err() {
            server.lock_open().retain(|c| c.id != id);
        }
    }

    /// One request and its answer; the connection is closed after it.
    fn serve_connection(&self, mut stream: TcpStream, reading: &AtomicBool) {
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let request = read_request(&mut stream, Instant::now() + REQUEST_TIMEOUT);
        reading.store(false, Ordering::Release);
        let response = match request {
            Ok(request) => self.handle(&request),
            Err(Unread::Closed) => return,
            Err(Unread::Refused(status, why)) => (status, JSON, json!({ "error": why }).to_string()),
        };
        let _ = write_response(&mut stream, &response);
        close_after_answer(stream);
    }

    fn handle(&self, request: &Request) -> Response {
        let json_response = |status: u16, body: Value| (status, JSON, body.to_string());
        let port = self.address.port();
        let host = request.header("Host").unwrap_or_default();
        let ours = host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}");
        if !ours {
            return json_response(403, json!({ "error": "the playground answers only on 127.0.0.1" }));
        }
        let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
        let mut session = self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if request.method == "GET" {
            return match path {
                "/" => (200, HTML, PAGE.to_owned()),
                "/api/session" => json_response(200, session.state()),
                _ => json_response(404, json!({ "error": "no such page" })),
            };
        }
        if request.method != "POST" || request.header(PAGE_HEADER).is_none() {
            return json_response(403, json!({ "error": "only the playground's page may change things" }));
        }
        let Ok(text) = std::str::from_utf8(&request.body) else {
            return json_response(400, json!({ "error": "the body is not UTF-8 text" }));
        };
        let answer = match path {
            "/api/run" => Ok(session.run(text)),
            "/api/explain" => {
                let line = query.strip_prefix("line=").and_then(|n| n.parse().ok()).unwrap_or(0);
                session.explain(text, line)
            }
            "/api/save" => session.save(text),
            "/api/reload" => session.reload(),
            _ => Err((404, json!({ "error": "no such action" }))),
        };
        match answer {
            Ok(body) => json_response(200, body),
            Err((status, body)) => json_response(status, body),
        }
    }
}

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// Why no request was read.
enum Unread {
    /// The client went away (or its connection was closed to make room): nothing to answer.
    Closed,
    /// Answered with this status and reason.
    Refused(u16, String),
}

/// Reads one request whole before `deadline`: its line and headers (at most [`MAX_HEAD_BYTES`]),
/// then a body of its `Content-Length` (at most [`MAX_BODY_BYTES`]).
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Request, Unread> {
    let mut bytes = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if bytes.len() > MAX_HEAD_BYTES {
            return Err(Unread::Refused(431, "the request's headers are larger than 16 KiB".into()));
        }
        read_more(stream, &mut bytes, deadline)?;
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(_version)) = (line.next(), line.next(), line.next()) else {
        return Err(Unread::Refused(400, "not an HTTP request".into()));
    };
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut request = Request { method: method.to_owned(), target: target.to_owned(), headers, body: Vec::new() };
    if request.header("Transfer-Encoding").is_some() {
        return Err(Unread::Refused(411, "send the body with a Content-Length".into()));
    }
    let length = match request.header("Content-Length").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(Unread::Refused(400, "the Content-Length is not a number".into())),
    };
    if length > MAX_BODY_BYTES {
        return Err(Unread::Refused(413, "the mapping is larger than 4 MiB".into()));
    }
    let length = length as usize;
    while bytes.len() - head_end < length {
        read_more(stream, &mut bytes, deadline)?;
    }
    bytes.truncate(head_end + length);
    request.body = bytes.split_off(head_end);
    Ok(request)
}

/// Reads what the client has sent next, waiting no later than `deadline`.
fn read_more(stream: &mut TcpStream, bytes: &mut Vec<u8>, deadline: Instant) -> Result<(), Unread> {
    let late =
        || Unread::Refused(408, format!("the request did not arrive whole within {} s", REQUEST_TIMEOUT.as_secs()));
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(late());
    }
    stream.set_read_timeout(Some(left)).map_err(|_| Unread::Closed)?;
    let mut chunk = [0u8; 16 << 10];
    match stream.read(&mut chunk) {
        Ok(0) => Err(Unread::Closed),
        Ok(n) => {
            bytes.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Err(late()),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
        Err(_) => Err(Unread::Closed),
    }
}

fn write_response(stream: &mut TcpStream, (status, content_type, body): &Response) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    // The page runs nothing from elsewhere; say so to the browser too.
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Closes a connection after its answer, first reading (briefly) what the client still sends, so
/// that closing with unread bytes does not reset the connection before the answer is read.
fn close_after_answer(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 16 << 10];
    let mut drained = 0;
    while drained < MAX_BODY_BYTES as usize {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Refuses a connection when every place is taken by one being answered.
fn refuse(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let body = json!({ "error": "the playground is busy with other connections; try again" }).to_string();
    let _ = write_response(&mut stream, &(503, JSON, body));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(mapping: &str, samples: &str) -> (tempfile_dir::Dir, Session) {
        let dir = tempfile_dir::Dir::new();
        let m = dir.path().join("m.yaml");
        let s = dir.path().join("s.jsonl");
        std::fs::write(&m, mapping).unwrap();
        std::fs::write(&s, samples).unwrap();
        let session = Session::open(&m, &s).unwrap();
        (dir, session)
    }

    /// A directory removed at the end of the test (no extra crate for one helper).
    mod tempfile_dir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let path = std::env::temp_dir().join(format!("ls-playground-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const MAPPING: &str =
        "version: 1\nname: t\nfields:\n  - { source: $.a, target: a, type: integer, required: true }\n";

    #[test]
    fn run_maps_every_sample_and_reports_problems_at_their_line() {
        let (_dir, s) = session(MAPPING, "{\"a\": 1}\n{\"a\": \"x\"}\n\n{}\n");
        let r = s.run(MAPPING);
        assert_eq!(r["compiles"], true);
        assert_eq!(r["tally"]["records"], 3);
        assert_eq!(r["results"][0]["route"], "ok");
        assert_eq!(r["results"][1]["route"], "fail");
        assert_eq!(r["results"][2]["line"], 4);
        let broken = MAPPING.replace("type: integer", "type: integr");
        let r = s.run(&broken);
        assert_eq!(r["compiles"], false);
        assert!(r.get("results").is_none());
        assert_eq!(r["problems"][0]["line"], 4);
        assert!(r["problems"][0]["message"].as_str().unwrap().contains("integer"), "{r}");
    }

    #[test]
    fn save_writes_only_what_the_function_would_load() {
        let (_dir, mut s) = session(MAPPING, "{\"a\": 1}\n");
        let broken = MAPPING.replace("fields:", "felds:");
        let (status, body) = s.save(&broken).unwrap_err();
        assert_eq!(status, 409);
        assert!(body["error"].as_str().unwrap().contains("does not compile"));
        assert_eq!(std::fs::read_to_string(&s.mapping).unwrap(), MAPPING);

        let failing_test =
            format!("{MAPPING}tests:\n  - name: t1\n    input: {{\"a\": 1}}\n    expect: {{ ok: {{\"a\": 2}} }}\n");
        let (status, body) = s.save(&failing_test).unwrap_err();
        assert_eq!(status, 409, "{body}");
        assert!(body["error"].as_str().unwrap().contains("test"), "{body}");

        let renamed = MAPPING.replace("name: t", "name: renamed");
        s.save(&renamed).unwrap();
        assert_eq!(std::fs::read_to_string(&s.mapping).unwrap(), renamed);
    }

    #[test]
    fn save_refuses_to_overwrite_a_change_made_elsewhere() {
        let (_dir, mut s) = session(MAPPING, "{\"a\": 1}\n");
        let elsewhere = MAPPING.replace("name: t", "name: elsewhere");
        std::fs::write(&s.mapping, &elsewhere).unwrap();
        let (status, body) = s.save(MAPPING).unwrap_err();
        assert_eq!(status, 409);
        assert!(body["error"].as_str().unwrap().contains("changed on disk"), "{body}");
        assert_eq!(s.reload().unwrap()["text"], elsewhere.as_str());
        s.save(MAPPING).unwrap();
    }

    /// The names in a folder, sorted: a save leaves no temporary file behind.
    #[cfg(unix)]
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// A link planted at the name the temporary file once had is neither followed nor replaced.
    #[cfg(unix)]
    #[test]
    fn save_writes_no_file_a_planted_link_names() {
        let (dir, mut s) = session(MAPPING, "{\"a\": 1}\n");
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let planted = dir.path().join(".m.yaml.playground-save");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let renamed = MAPPING.replace("name: t", "name: renamed");
        s.save(&renamed).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_link(&planted).unwrap(), victim, "the planted link is left as it was");
        assert_eq!(std::fs::read_to_string(&s.mapping).unwrap(), renamed);
        assert_eq!(names_in(dir.path()), [".m.yaml.playground-save", "m.yaml", "s.jsonl", "victim.txt"]);
    }

    /// A mapping path that is a link: the file it points to gets the text, the link stays a link,
    /// and a change made to that file elsewhere is still refused.
    #[cfg(unix)]
    #[test]
    fn save_through_a_link_writes_the_file_it_points_to() {
        let (dir, _) = session(MAPPING, "");
        let real_dir = dir.path().join("real");
        std::fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("mapping.yaml");
        std::fs::write(&real, MAPPING).unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink("real/mapping.yaml", &link).unwrap();
        let mut s = Session::open(&link, &dir.path().join("s.jsonl")).unwrap();
        let renamed = MAPPING.replace("name: t", "name: renamed");
        s.save(&renamed).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays a link");
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real/mapping.yaml"));
        assert_eq!(std::fs::read_to_string(&real).unwrap(), renamed);
        assert_eq!(names_in(&real_dir), ["mapping.yaml"]);
        assert_eq!(names_in(dir.path()), ["link.yaml", "m.yaml", "real", "s.jsonl"]);

        let elsewhere = MAPPING.replace("name: t", "name: elsewhere");
        std::fs::write(&real, &elsewhere).unwrap();
        let (status, body) = s.save(MAPPING).unwrap_err();
        assert_eq!(status, 409, "{body}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), elsewhere);
    }

    /// The file keeps its permissions: a mapping only its owner may read stays so.
    #[cfg(unix)]
    #[test]
    fn save_keeps_the_files_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        for mode in [0o600, 0o640, 0o644] {
            let (_dir, mut s) = session(MAPPING, "{\"a\": 1}\n");
            std::fs::set_permissions(&s.mapping, std::fs::Permissions::from_mode(mode)).unwrap();
            s.save(&MAPPING.replace("name: t", "name: renamed")).unwrap();
            let after = std::fs::metadata(&s.mapping).unwrap().permissions().mode() & 0o7777;
            assert_eq!(after, mode, "{mode:o} became {after:o}");
        }
    }

    #[test]
    fn explain_names_the_sample_by_its_line() {
        let (_dir, s) = session(MAPPING, "{\"a\": 1}\n\n{\"a\": \"x\"}\n");
        let r = s.explain(MAPPING, 3).unwrap();
        assert!(r["text"].as_str().unwrap().contains("a"), "{r}");
        assert_eq!(r["explanation"]["outcome"], "fail");
        assert_eq!(s.explain(MAPPING, 2).unwrap_err().0, 404);
        assert_eq!(s.explain(MAPPING, 0).unwrap_err().0, 404);
    }

    #[test]
    fn only_the_first_samples_are_read() {
        let many: String = (0..MAX_SAMPLES + 5).map(|i| format!("{{\"a\": {i}}}\n")).collect();
        let (_dir, s) = session(MAPPING, &many);
        assert_eq!(s.sample_count, MAX_SAMPLES);
        assert_eq!(s.run(MAPPING)["tally"]["records"], MAX_SAMPLES);
    }
}
