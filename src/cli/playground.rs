//! `lambda-stream playground`: a page on 127.0.0.1 to edit a mapping against sample records.
//!
//! The page (one HTML file with its script and styles inside, nothing fetched from elsewhere) sends
//! the editor's text as it changes; the server compiles it as `validate-mapping` does, maps every
//! sample as `process` does, and answers with the diagnostics and each sample's result. Saving
//! writes the file only when the text compiles and its embedded tests pass, so a saved mapping is
//! one the function would load.
//!
//! The server is local and small: one thread, requests one at a time (each is a compile and a
//! mapping of at most [`MAX_SAMPLES`] records, milliseconds). It answers only requests addressed
//! to its own host and port (a page of another site cannot reach it through DNS rebinding), and
//! only POSTs carrying the page's own header (a form of another site cannot send one).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::error::CliError;
use super::process::{DEFAULT_MAX_LINE_BYTES, process_lines};
use crate::diagnostic::Diagnostic;
use crate::plan::{self, CompileOptions, Plan, spec_tests};

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
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| CliError::Read { path: path.display().to_string(), source })
        };
        let on_disk = String::from_utf8(read(mapping)?).map_err(|_| CliError::Read {
            path: mapping.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the mapping is not UTF-8 text"),
        })?;
        let all = read(samples)?;
        // The first MAX_SAMPLES lines, blank ones included (they keep line numbers as in the file).
        let end =
            all.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(MAX_SAMPLES - 1).map_or(all.len(), |(i, _)| i);
        let samples = all[..end].to_vec();
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
        CompileOptions { base_dir: self.mapping.parent().map(Path::to_path_buf), ..CompileOptions::default() }
    }

    fn check(&self, text: &str) -> Checked {
        match plan::load_str_in(text, &self.options()) {
            Ok((spec, plan)) => {
                let mut problems: Vec<Problem> = plan.warnings().iter().map(|w| Problem::of(w, "warning")).collect();
                let tests = spec_tests::run(&spec, &plan);
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
        let current = std::fs::read_to_string(&self.mapping).unwrap_or_default();
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
        self.on_disk = std::fs::read_to_string(&self.mapping)
            .map_err(|e| (500, json!({ "error": format!("cannot read {}: {e}", self.shown) })))?;
        Ok(self.state())
    }
}

/// Replaces the file's content in one step: a reader (or the function's next cold start from a
/// synced directory) sees the old text or the new one, never half of it.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.playground-save"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// Serves the playground until the process is stopped. `port` 0 takes any free port; the address
/// is printed on standard error either way.
pub fn serve(mapping: &Path, samples: &Path, port: u16) -> Result<(), CliError> {
    let mut session = Session::open(mapping, samples)?;
    let server = tiny_http::Server::http(("127.0.0.1", port))
        .map_err(|e| CliError::Usage(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let address = server.server_addr().to_ip().expect("a TCP listener has an IP address");
    eprintln!(
        "playground for {} with {} sample(s): http://{address}/ (Ctrl-C to stop)",
        session.shown, session.sample_count
    );
    for request in server.incoming_requests() {
        handle(&mut session, address, request);
    }
    Ok(())
}

fn handle(session: &mut Session, address: SocketAddr, mut request: tiny_http::Request) {
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let host = header("Host").unwrap_or_default();
    let from_page = header(PAGE_HEADER).is_some();
    let port = address.port();
    let ours = host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}");
    if !ours {
        let _ = request.respond(json_response(403, &json!({ "error": "the playground answers only on 127.0.0.1" })));
        return;
    }
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().clone();
    if method == tiny_http::Method::Get {
        let response = match path {
            "/" => text_response(200, PAGE, "text/html; charset=utf-8"),
            "/api/session" => json_response(200, &session.state()),
            _ => json_response(404, &json!({ "error": "no such page" })),
        };
        let _ = request.respond(response);
        return;
    }
    if method != tiny_http::Method::Post || !from_page {
        let _ =
            request.respond(json_response(403, &json!({ "error": "only the playground's page may change things" })));
        return;
    }
    let mut text = String::new();
    if request.as_reader().take(MAX_BODY_BYTES + 1).read_to_string(&mut text).is_err() {
        let _ = request.respond(json_response(400, &json!({ "error": "the body is not UTF-8 text" })));
        return;
    }
    if text.len() as u64 > MAX_BODY_BYTES {
        let _ = request.respond(json_response(413, &json!({ "error": "the mapping is larger than 4 MiB" })));
        return;
    }
    let answer = match path {
        "/api/run" => Ok(session.run(&text)),
        "/api/explain" => {
            let line = query.strip_prefix("line=").and_then(|n| n.parse().ok()).unwrap_or(0);
            session.explain(&text, line)
        }
        "/api/save" => session.save(&text),
        "/api/reload" => session.reload(),
        _ => Err((404, json!({ "error": "no such action" }))),
    };
    let response = match answer {
        Ok(body) => json_response(200, &body),
        Err((status, body)) => json_response(status, &body),
    };
    let _ = request.respond(response);
}

fn text_response(status: u16, body: &str, content_type: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()).expect("a valid header");
    // The page runs nothing from elsewhere; say so to the browser too.
    let policy = tiny_http::Header::from_bytes(
        &b"Content-Security-Policy"[..],
        &b"default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"[..],
    )
    .expect("a valid header");
    tiny_http::Response::from_string(body).with_status_code(status).with_header(header).with_header(policy)
}

fn json_response(status: u16, body: &Value) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    text_response(status, &body.to_string(), "application/json")
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
