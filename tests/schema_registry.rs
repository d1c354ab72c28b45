//! The test schema registry (`scripts/registry/server.py`, started by `scripts/test` at
//! `SCHEMA_REGISTRY_URL`) held to the Confluent protocol by Confluent's own Python client:
//! `scripts/registry/conformance.py` (its requirements are installed by `scripts/test`). The
//! registry tests trust that server only as far as this check does.

use std::process::Command;

use crate::util::root;

#[test]
fn confluent_client_speaks_to_the_test_registry() {
    let url = std::env::var("SCHEMA_REGISTRY_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".to_string());
    // The auth flags make the check start two more registries of its own on free ports, one
    // wanting HTTP Basic and one a bearer token (loopback-only test credentials).
    let out = Command::new("python3")
        .arg("scripts/registry/conformance.py")
        .arg(&url)
        .args(["--basic-auth", "conformance:conformance-local", "--bearer", "conformance-local-token"])
        .current_dir(root())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the protocol check against {url} failed (is the registry running? scripts/registry/run start)\n\
         stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.starts_with("conformance: OK"), "no summary line: {summary}");
}
