//! `lambda-stream playground` in a real headless Chromium (Debian's `chromium`, installed by
//! `scripts/test`), driven over the DevTools protocol: the page loads and maps the samples, typing
//! in the editor changes a result, a typo shows a problem at its line, and Save writes the file.
//! Text is typed with `Input.insertText`, so the page sees the browser's own input events.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

use crate::util::{TempFile, root};

/// A child process killed when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process and waits for a line of its standard error that contains `marker`.
fn start_and_read(mut command: Command, marker: &str) -> (Killed, String) {
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("the program starts");
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&marker) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("the program printed its address");
    (child, line)
}

/// One page of the browser, attached with a flat session.
struct Page {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
}

impl Page {
    fn open(browser_ws: &str, url: &str) -> Self {
        let (socket, _) = tungstenite::connect(browser_ws).expect("DevTools answers");
        let mut page = Page { socket, session: String::new(), next_id: 0 };
        let target = page.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = page.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }));
        page.session = attached["sessionId"].as_str().unwrap().to_owned();
        page.call("Page.navigate", json!({ "url": url }));
        page
    }

    /// Sends a command and waits for its answer (events in between are ignored).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        self.socket.send(Message::text(message.to_string())).expect("send to DevTools");
        loop {
            let reply = self.socket.read().expect("read from DevTools");
            let Message::Text(text) = reply else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page, showing `what` and the page's state if not.
    fn wait_for(&mut self, expression: &str, what: &str) {
        let started = Instant::now();
        while self.eval(expression) != json!(true) {
            if started.elapsed() > Duration::from_secs(20) {
                let status = self.eval("document.getElementById('status')?.textContent");
                let problems = self.eval("document.getElementById('problems')?.textContent");
                panic!("timed out waiting for {what}; status {status}, problems {problems}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Selects the first occurrence of `old` in the editor and types `new` over it.
    fn type_over(&mut self, old: &str, new: &str) {
        let selected = self.eval(&format!(
            "(() => {{ const e = document.getElementById('editor'); const i = e.value.indexOf({old}); \
             if (i < 0) return false; e.focus(); e.setSelectionRange(i, i + {len}); return true; }})()",
            old = json!(old),
            len = old.encode_utf16().count()
        ));
        assert_eq!(selected, json!(true), "`{old}` is in the editor");
        self.call("Input.insertText", json!({ "text": new }));
    }
}

const MAPPING: &str = "\
version: 1
name: playground-test
fields:
  - target: amount
    source: $.amount
    type: integer
    required: true
";

#[test]
fn the_page_maps_samples_shows_problems_at_their_line_and_saves() {
    let mapping = TempFile::new("m.yaml", MAPPING.as_bytes());
    let samples_text = "{\"amount\": 10}\n{\"amount\": \"12\"}\n";
    let samples = std::fs::write(mapping.path.with_file_name("s.jsonl"), samples_text)
        .map(|()| mapping.path.with_file_name("s.jsonl"))
        .unwrap();

    let mut playground = Command::new(env!("CARGO_BIN_EXE_lambda-stream"));
    playground
        .args(["playground", "--port", "0", "--mapping", mapping.arg(), "--samples"])
        .arg(&samples)
        .current_dir(root());
    let (_server, line) = start_and_read(playground, "http://127.0.0.1:");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();

    let mut chromium = Command::new("chromium");
    chromium.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-port=0",
        &format!("--user-data-dir={}", mapping.path.with_file_name("chromium-profile").display()),
        "about:blank",
    ]);
    let (_browser, line) = start_and_read(chromium, "DevTools listening on ");
    let browser_ws = line.rsplit(' ').next().unwrap().to_owned();

    let mut page = Page::open(&browser_ws, &url);
    page.wait_for("document.querySelectorAll('#results .result').length === 2", "both samples' results");
    assert_eq!(page.eval("document.getElementById('status').textContent"), json!("compiles; 0 tests pass"));
    let routes = "[...document.querySelectorAll('#results .result')].map(r => r.dataset.route).join(',')";
    assert_eq!(page.eval(routes), json!("ok,fail"), "the text \"12\" is not an integer");
    assert_eq!(page.eval("document.getElementById('save').disabled"), json!(true), "nothing to save yet");

    // An edit changes a result: with a `to_integer` transform the second sample maps.
    page.type_over("    required: true\n", "    required: true\n    transform: [to_integer]\n");
    page.wait_for(&format!("{routes} === 'ok,ok'"), "the second sample to map after the edit");
    assert!(page.eval("document.querySelectorAll('#results pre')[1].textContent").as_str().unwrap().contains("12"));

    // A typo is a problem at its line: listed, and marked in the gutter.
    page.type_over("type: integer", "type: integr");
    page.wait_for("document.getElementById('status').textContent === '1 problem'", "the typo's problem");
    let problem = page.eval("document.querySelector('#problems li').textContent");
    assert!(problem.as_str().unwrap().starts_with("6:11error"), "{problem}");
    assert!(problem.as_str().unwrap().contains("integer"), "the message suggests the type: {problem}");
    assert_eq!(page.eval("document.querySelector('#gutter div.error').dataset.line"), json!("6"));
    assert_eq!(page.eval("document.getElementById('save').disabled"), json!(true), "no save of a broken mapping");
    assert_eq!(std::fs::read_to_string(&mapping.path).unwrap(), MAPPING);

    // Fixed, it can be saved; the file on disk is the editor's text.
    page.type_over("type: integr", "type: integer");
    page.wait_for("document.getElementById('save').disabled === false", "Save to be enabled");
    page.eval("document.getElementById('save').click()");
    page.wait_for("document.getElementById('message').textContent.startsWith('saved')", "the save");
    let saved = std::fs::read_to_string(&mapping.path).unwrap();
    assert!(saved.contains("transform: [to_integer]"), "{saved}");
    assert_eq!(json!(saved), page.eval("document.getElementById('editor').value"));
}
