//! Helpers shared by the integration tests.
#![allow(dead_code)] // shared by the two test binaries; each uses part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate root; tests run commands from here so paths in output are stable.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// Runs the built `lambda-stream` binary from the crate root.
pub fn lambda_stream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lambda-stream")).args(args).current_dir(root()).output().expect("the binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// A file in a temporary directory of its own, removed with the directory when dropped: dropping
/// one file (a finished worker's log) must not remove another (the mapping its successor reads).
pub struct TempFile {
    dir: PathBuf,
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(name: &str, contents: &[u8]) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let unique = format!(
            "lambda-stream-test-{}-{:?}-{}",
            std::process::id(),
            std::thread::current().id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(unique.replace(['(', ')'], ""));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile { dir, path }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The EMF documents among lines of output (JSON objects with an `_aws` member), each checked
/// against `schema/emf.schema.json` and for what a schema cannot say: every metric a directive
/// names is a number at the root, every dimension a string there.
pub fn emf_documents(text: &str) -> Vec<serde_json::Value> {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schema/emf.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let docs: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).expect("an EMF line is one JSON object"))
        .collect();
    for doc in &docs {
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {doc}");
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for metric in directive["Metrics"].as_array().unwrap() {
                assert!(doc[metric["Name"].as_str().unwrap()].is_number(), "{metric} in {doc}");
            }
            for set in directive["Dimensions"].as_array().unwrap() {
                for key in set.as_array().unwrap() {
                    assert!(doc[key.as_str().unwrap()].is_string(), "dimension {key} in {doc}");
                }
            }
        }
    }
    docs
}
