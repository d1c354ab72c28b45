//! The command line: exit codes, output formats, and the dry run on the shipped example.

use serde_json::Value;

use crate::util::{TempFile, fixture, lambda_stream, stderr, stdout};

#[test]
fn the_shipped_mapping_validates_and_its_tests_pass() {
    let out = lambda_stream(&["validate-mapping", "mappings/orders-to-billing.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("mappings/orders-to-billing.yaml: ok (25 fields, 6/6 tests passed)"), "{text}");
    assert!(text.contains("1 file(s) checked, 0 with problems; 6 test(s) run, 0 failed"), "{text}");
}

#[test]
fn several_files_exit_1_when_any_has_problems() {
    let out =
        lambda_stream(&["validate-mapping", "mappings/orders-to-billing.yaml", "tests/fixtures/broken/types.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("2 file(s) checked, 1 with problems"));
}

#[test]
fn unreadable_files_and_usage_errors_exit_2() {
    let out = lambda_stream(&["validate-mapping", "does/not/exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("does/not/exist.yaml: error: cannot read file"), "{}", stdout(&out));
    assert_eq!(lambda_stream(&["validate-mapping"]).status.code(), Some(2));
    assert_eq!(lambda_stream(&["validate-mapping", "--format", "xml", "x.yaml"]).status.code(), Some(2));
    assert_eq!(lambda_stream(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn json_format_reports_the_same_problems() {
    let out = lambda_stream(&[
        "validate-mapping",
        "--format",
        "json",
        "tests/fixtures/broken/types.yaml",
        "mappings/orders-to-billing.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    let broken = &doc["files"][0];
    assert_eq!(broken["ok"], false);
    let diags = broken["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 6);
    assert_eq!(diags[0]["line"], 8);
    assert_eq!(diags[0]["col"], 9);
    assert!(diags[0]["message"].as_str().unwrap().contains("validator `range` cannot apply"));
    let text = stdout(&lambda_stream(&["validate-mapping", "tests/fixtures/broken/types.yaml"]));
    for d in diags {
        assert!(text.contains(d["rendered"].as_str().unwrap()), "text and JSON formats agree");
    }
    let good = &doc["files"][1];
    assert_eq!(good["ok"], true);
    assert_eq!(good["tests"].as_array().unwrap().len(), 6);
    assert_eq!(doc["tests"]["run"], 6);
}

#[test]
fn dry_run_routes_every_line_in_order() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        "tests/fixtures/orders.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    let routes: Vec<(&str, u64)> =
        lines.iter().map(|l| (l["route"].as_str().unwrap(), l["line"].as_u64().unwrap())).collect();
    assert_eq!(routes, vec![("ok", 1), ("ok", 2), ("fail", 3), ("fail", 4), ("fail", 5), ("fail", 7), ("ok", 8)]);
    assert_eq!(lines[0]["key"], "3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f");
    assert_eq!(lines[0]["value"]["created_at"], "2026-11-01T13:00:00Z");
    assert_eq!(lines[0]["value"]["customer"]["tier"], "gold");
    assert_eq!(lines[1]["value"]["channel"], "web", "null channel takes the default");
    assert_eq!(lines[2]["stage"], "rule");
    assert_eq!(lines[2]["errors"][0]["rule"], "cancel_reason_required");
    assert_eq!(lines[3]["stage"], "validate");
    let rules: Vec<&str> = lines[3]["errors"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, vec!["cpf", "email", "type", "type"]);
    assert!(!stdout(&out).contains("123.456.789-00"), "sensitive values never appear in errors");
    assert_eq!(lines[4]["stage"], "decode");
    assert_eq!(lines[4]["errors"][0]["field"], Value::Null);
    assert!(
        stderr(&out)
            .contains("7 records: 3 ok, 4 failed, 0 skipped (dropped by the mapping); 1 blank line ignored; in "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_reads_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", "-"])
        .current_dir(crate::util::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let record = std::fs::read_to_string(fixture("order.json")).unwrap();
    let one_line: Value = serde_json::from_str(&record).unwrap();
    child.stdin.take().unwrap().write_all(format!("{one_line}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["route"], "ok");
    assert_eq!(line["value"]["total"], 259.9);
}

#[test]
fn dry_run_keeps_input_order_across_threads() {
    // Enough lines that the work is split across threads.
    let mut input = String::new();
    for i in 0..5000 {
        input.push_str(&format!("{{\"id\": {i}}}\n"));
    }
    let mapping = TempFile::new(
        "m.yaml",
        b"version: 1\nname: order\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n",
    );
    let data = TempFile::new("in.jsonl", input.as_bytes());
    let out = lambda_stream(&["process", "--mapping", mapping.arg(), "--input", data.arg()]);
    assert_eq!(out.status.code(), Some(0));
    for (i, line) in stdout(&out).lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["value"]["id"], i as u64);
        assert_eq!(v["line"], i as u64 + 1);
    }
}

#[test]
fn dry_run_with_a_broken_mapping_exits_1_listing_problems() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "tests/fixtures/broken/types.yaml",
        "--input",
        "tests/fixtures/orders.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("tests/fixtures/broken/types.yaml:8:9: error: validator `range`"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "no record is processed with a refused mapping");
    let out = lambda_stream(&["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", "nope.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn event_dry_run_prints_every_record_in_order_with_skips() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        "tests/fixtures/events/msk.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let routes: Vec<(String, i64, i64)> = lines
        .iter()
        .map(|l| {
            (l["route"].as_str().unwrap().to_string(), l["partition"].as_i64().unwrap(), l["offset"].as_i64().unwrap())
        })
        .collect();
    let expected = [
        ("ok", 0, 100),
        ("fail", 0, 101),
        ("skip", 0, 102),
        ("fail", 0, 103),
        ("ok", 1, 7),
        ("fail", 1, 8),
        ("fail", 1, 9),
        ("ok", 1, 10),
    ];
    assert_eq!(routes, expected.iter().map(|(r, p, o)| (r.to_string(), *p, *o)).collect::<Vec<_>>());
    assert_eq!(lines[0]["key"], "3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f");
    assert_eq!(lines[0]["topic"], "orders.checkout.v1");
    assert!(
        stdout(&out).lines().next().unwrap().contains(
            r#""value":{"order_id":"3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f","order_number":"2026-000123","status":"PAID""#
        ),
        "spec order kept"
    );
    assert_eq!(lines[1]["stage"], "rule");
    assert_eq!(lines[1]["errors"][0]["rule"], "cancel_reason_required");
    assert_eq!(lines[7]["key"], "2c3d4e5f-6071-4829-93a4-b5c6d7e8f9a0", "no source key: the spec's key field");
    assert!(stderr(&out).contains("8 records: 3 ok, 4 failed, 1 skipped"), "{}", stderr(&out));
}

#[test]
fn event_options_are_checked() {
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        "x.json",
        "--brokers",
        "b:9092",
    ]);
    assert_eq!(out.status.code(), Some(2), "--brokers needs both topics");
    let out = lambda_stream(&["process", "--mapping", "mappings/orders-to-billing.yaml"]);
    assert_eq!(out.status.code(), Some(2), "--input or --event is required");
    assert!(stderr(&out).contains("--input <INPUT>|--event <EVENT>"), "names both: {}", stderr(&out));
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        "tests/fixtures/orders.jsonl",
        "--event",
        "x.json",
    ]);
    assert_eq!(out.status.code(), Some(2), "one source of records at a time");
    let bad = TempFile::new("e.json", b"{\"not\": \"an event\"}");
    let out = lambda_stream(&["process", "--mapping", "mappings/orders-to-billing.yaml", "--event", bad.arg()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("no `records` object"), "{}", stderr(&out));
}

#[test]
fn the_shipped_environments_file_validates() {
    let out = lambda_stream(&["validate-config", "environments.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("environments.yaml: ok (3 environment(s) and their mappings checked)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn validate_config_lists_every_problem_in_both_files() {
    let out = lambda_stream(&["validate-config", "tests/fixtures/environments/broken.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let f = "tests/fixtures/environments/broken.yaml";
    for expected in [
        format!("{f}:13:5: error: unknown key `lambda_nme` in environment `acme/dev`; did you mean `lambda_name`?"),
        format!("{f}:5:18: error: `parameter://acme/kafka servers` is not a valid parameter reference"),
        format!("{f}:6:21: error: source topic `billing.out` is also a destination"),
        format!("{f}:10:20: error: batch `size` must be 1 to 10000"),
        format!("{f}:10:46: error: `starting_position` must be one of LATEST, TRIM_HORIZON, found `EARLIEST`"),
        format!("{f}:11:24: error: `security: sasl_scram` needs `scram_secret`"),
        format!("{f}:9:14: error: mapping `tests/fixtures/environments/../broken/types.yaml` of environment `acme/prod` has 6 problem(s)"),
        "tests/fixtures/environments/../broken/types.yaml:8:9: error: validator `range` cannot apply to a field of type `string`".to_string(),
        format!("{f}:13:5: error: environment `acme/dev` is missing required setting `msk_servers`"),
    ] {
        assert!(text.contains(&expected), "missing:\n{expected}\nin:\n{text}");
    }
    let json = lambda_stream(&["validate-config", "--format", "json", f]);
    assert_eq!(json.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["files"][0]["environments"], serde_json::json!(["acme/prod", "acme/dev"]));
    assert!(doc["files"][0]["diagnostics"].as_array().unwrap().len() >= 9);
    assert_eq!(lambda_stream(&["validate-config", "missing.yaml"]).status.code(), Some(2));
}

/// A mapping an environment names reads its lookup files from its own folder, as the function
/// does, wherever `validate-config` runs from.
#[test]
fn validate_config_reads_a_mappings_lookup_files_from_its_folder() {
    let env = TempFile::new(
        "environments.yaml",
        b"version: '1.0'\nacme:\n  prod:\n    lambda_name: l\n    lambda_env: acme\n    msk_servers: k:9093\n    source_topics: [a.v1]\n    topic_ok: b.v1\n    topic_fail: b.v1.fail\n    mapping: maps/m.yaml\n",
    );
    let maps = env.path.with_file_name("maps");
    std::fs::create_dir(&maps).unwrap();
    std::fs::write(maps.join("codes.csv"), "code,value\nA,alpha\n").unwrap();
    std::fs::write(
        maps.join("m.yaml"),
        "version: 1\nname: m\nlookups:\n  t: {file: codes.csv}\nfields:\n  - {target: c, expr: 'lookup(\"t\", \"A\")'}\n",
    )
    .unwrap();
    let out = lambda_stream(&["validate-config", env.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // And one outside that folder is refused there, at its line.
    std::fs::write(
        maps.join("m.yaml"),
        "version: 1\nname: m\nlookups:\n  t: {file: ../environments.yaml}\nfields: []\n",
    )
    .unwrap();
    let out = lambda_stream(&["validate-config", env.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let expected =
        format!("{}:4:13: error: lookup table `t`: `file: ../environments.yaml` leaves", maps.join("m.yaml").display());
    assert!(stdout(&out).contains(&expected), "{expected}\n{}", stdout(&out));
}

/// `file:` outside the mapping's folder, absolute or through `..`, is refused at its line.
#[test]
fn validate_mapping_refuses_a_lookup_file_outside_the_mappings_folder() {
    let mapping = TempFile::new(
        "m.yaml",
        b"version: 1\nname: m\nlookups:\n  hosts: {file: /etc/hosts.csv}\n  up: {file: '../m.csv'}\nfields:\n  - {target: c, expr: 'lookup(\"hosts\", \"A\")'}\n",
    );
    let out = lambda_stream(&["validate-mapping", mapping.arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    for expected in [
        format!("{}:4:17: error: lookup table `hosts`: `file: /etc/hosts.csv` is an absolute path", mapping.arg()),
        format!("{}:5:15: error: lookup table `up`: `file: ../m.csv` leaves the mapping's folder", mapping.arg()),
    ] {
        assert!(text.contains(&expected), "missing:\n{expected}\nin:\n{text}");
    }
    assert!(!text.contains("unknown lookup table"), "a refused table is still declared: {text}");
}

#[test]
fn a_line_over_the_limit_fails_alone_with_its_size() {
    let input = TempFile::new(
        "long.jsonl",
        b"{\"order\": {\"id\": \"x\"}}\n{\"order\": {\"id\": \"a much longer line than the limit\"}}\n",
    );
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--input",
        input.arg(),
        "--max-line-bytes",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_ne!(lines[0]["errors"][0]["rule"], "size", "the short line is mapped: {}", lines[0]);
    assert_eq!(lines[1]["errors"][0]["rule"], "size");
    assert!(
        lines[1]["errors"][0]["message"].as_str().unwrap().contains("is 54 bytes, over the limit of 30"),
        "{}",
        lines[1]
    );
}

#[test]
fn messages_are_printed_as_they_would_be_produced() {
    let args = ["process", "--mapping", "mappings/orders-to-billing.yaml", "--input", "tests/fixtures/orders.jsonl"];
    let routes = lambda_stream(&args);
    let routes: Vec<Value> = stdout(&routes).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let out = lambda_stream(
        &[&args[..], &["--messages", "--topic-ok", "billing.ok", "--topic-fail", "billing.fail"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let messages: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(messages.len(), routes.len(), "one message per record");
    for (m, r) in messages.iter().zip(&routes) {
        match r["route"].as_str().unwrap() {
            "ok" => {
                assert_eq!(m["topic"], "billing.ok");
                assert_eq!(m["payload"], r["value"], "the payload is the mapped value");
                assert_eq!(m["key"], r["key"]);
            }
            _ => {
                assert_eq!(m["topic"], "billing.fail");
                // The envelope, and the headers that name the failure.
                assert_eq!(m["payload"]["source"]["topic"], "orders.jsonl");
                assert_eq!(m["payload"]["source"]["offset"], r["line"].as_u64().unwrap() - 1);
                assert_eq!(m["payload"]["errors"], r["errors"]);
                let stage = m["headers"].as_array().unwrap().iter().find(|h| h[0] == "lambda-stream.error.stage");
                assert_eq!(stage.unwrap()[1], r["stage"], "{m}");
            }
        }
    }
    // Keys keep the mapping's order in the payload.
    let first = stdout(&out).lines().next().unwrap().to_owned();
    assert!(first.contains(r#""payload":{"order_id":"#), "{first}");

    // A saved event: tombstones show as skips, and record headers pass on to ok messages.
    let event = [
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        "tests/fixtures/events/msk.json",
        "--messages",
    ];
    let out = lambda_stream(&event);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().any(|l| l.contains(r#""skipped":"tombstone""#)), "{text}");
    assert!(text.lines().any(|l| l.contains(r#"["traceparent","#)), "{text}");
    let out = lambda_stream(&[&event[..], &["--brokers", "b:9092", "--topic-ok", "a", "--topic-fail", "b"]].concat());
    assert_eq!(out.status.code(), Some(2), "--messages prints; --brokers produces");
}

#[test]
fn init_writes_starters_that_validate_and_whose_tests_pass() {
    let dir = TempFile::new("unused", b"");
    for (samples, expect) in [
        ("tests/fixtures/orders.jsonl", vec!["source: '$.order.id'", "- uuid", "type: datetime", "items:"]),
        ("tests/fixtures/payments.jsonl", vec!["source: '$.transaction.amount_cents'", "items:"]),
        (
            "tests/fixtures/samples/catalog.jsonl",
            vec![
                "- target: catalog_id",
                "- target: variants",
                "- one_of: [\"G\", \"M\", \"P\"]",
                "- cep",
                "- email",
                "- cpf",
            ],
        ),
    ] {
        let output = dir.path.with_file_name(format!("{}.yaml", samples.rsplit('/').next().unwrap()));
        let out = lambda_stream(&["init", "--from", samples, "--output", output.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{samples}: {}", stderr(&out));
        let text = std::fs::read_to_string(&output).unwrap();
        for wanted in expect {
            assert!(text.contains(wanted), "{samples}: the starter lacks {wanted:?}:\n{text}");
        }
        assert!(text.lines().filter(|l| l.contains("# guess:")).count() > 5, "guesses are marked");
        let out = lambda_stream(&["validate-mapping", output.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{samples}: {}", stdout(&out));
        assert!(stdout(&out).contains("2/2 tests passed"), "{samples}: {}", stdout(&out));
        // Never over a file that exists.
        let again = lambda_stream(&["init", "--from", samples, "--output", output.to_str().unwrap()]);
        assert_eq!(again.status.code(), Some(2), "an existing file is not overwritten");
    }
}

/// Seven samples hold `packages` as an array of objects; line 4 holds an object, line 7 a string
/// and line 9 an array of strings. The majority decides: `packages` stays an `items:` field, the
/// three odd samples are named on stderr, and the starter maps the packages of the others.
#[test]
fn init_keeps_an_array_of_objects_when_a_few_samples_hold_another_shape() {
    let samples = "tests/fixtures/samples/shipments.jsonl";
    let output = TempFile::new("shipments.yaml", b"");
    std::fs::remove_file(&output.path).unwrap();
    let out = lambda_stream(&["init", "--from", samples, "--output", output.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&output.path).unwrap();
    for wanted in ["- target: packages\n    source: '$.packages'\n", "    items:\n", "- target: package_id\n"] {
        assert!(text.contains(wanted), "the starter lacks {wanted:?}:\n{text}");
    }
    assert!(!text.contains("$.packages.package_id"), "a path no array of objects matches:\n{text}");
    // Not every sample holds an array there.
    assert!(!text.contains("an array in every sample"), "{text}");
    let err = stderr(&out);
    let note = err.lines().find(|l| l.contains("$.packages")).unwrap_or_else(|| panic!("no note on stderr: {err}"));
    for wanted in [samples, "7 of the 10 samples", "items:", "an object at line 4", "text at line 7", "line 9"] {
        assert!(note.contains(wanted), "the note lacks {wanted:?}: {note}");
    }
    let out = lambda_stream(&["validate-mapping", output.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The starter maps the packages of a sample that holds an array of objects.
    let out = lambda_stream(&["process", "--mapping", output.arg(), "--input", samples]);
    let routes = stdout(&out);
    let first: serde_json::Value = serde_json::from_str(routes.lines().next().unwrap()).unwrap();
    assert_eq!(first["value"]["packages"][0]["package_id"], "PKG-00", "{routes}");
}

#[test]
fn explain_tells_each_fields_story_and_agrees_with_the_mapping() {
    use crate::util::root;
    use lambda_stream::mapping_file;
    for (mapping, records) in [
        ("mappings/orders-to-billing.yaml", "tests/fixtures/orders.jsonl"),
        ("mappings/payments-to-ledger.yaml", "tests/fixtures/payments.jsonl"),
    ] {
        let (_, p) = mapping_file::load_file(&root().join(mapping)).unwrap();
        let text = std::fs::read_to_string(root().join(records)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let outcome = p.apply(line.as_bytes());
            let e = p.explain(line.as_bytes());
            assert_eq!(e.errors, outcome.errors(), "{line}");
            match outcome.ok_value() {
                Some(output) => {
                    assert_eq!(e.outcome, "ok");
                    for f in e.fields.iter().filter(|f| f.result.starts_with("= ")) {
                        // `items[1].sku` → `/items/1/sku`: item fields are checked against the output too.
                        let pointer = format!("/{}", f.target.replace(['.', '['], "/").replace(']', ""));
                        match &f.value {
                            Some(v) => {
                                assert_eq!(output.pointer(&pointer), Some(v), "{mapping}: {} on {line}", f.target)
                            }
                            // Sensitive: written, never shown.
                            None => assert!(f.result.contains("value hidden"), "{mapping}: {}", f.target),
                        }
                    }
                }
                None => assert_ne!(e.outcome, "ok", "{line}"),
            }
        }
    }
    // The command: steps in order, sensitive values hidden, one field on request, JSON too.
    let record = TempFile::new(
        "r.json",
        std::fs::read_to_string(root().join("tests/fixtures/payments.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .as_bytes(),
    );
    let args = ["explain", "--mapping", "mappings/payments-to-ledger.yaml", "--input", record.arg()];
    let out = lambda_stream(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("currency  ← $.transaction.currency: found"), "{text}");
    assert!(text.contains("  cnpj             not applied: its `when` does not hold"), "{text}");
    assert!(text.contains("rule refund_within_capture: ✓"), "{text}");
    assert!(
        !text.contains("52998224725") && !text.contains("529.982.247-25"),
        "the sensitive document is hidden:\n{text}"
    );
    assert!(text.ends_with("outcome: ok\n"), "{text}");
    let out = lambda_stream(&[&args[..], &["--field", "card", "--format", "json"]].concat());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets: Vec<&str> = doc["fields"].as_array().unwrap().iter().map(|f| f["target"].as_str().unwrap()).collect();
    assert_eq!(targets, ["card.bin", "card.last4", "card.exp_month", "card.exp_year", "card.masked", "card.expiry"]);
    assert_eq!(doc["fields"][4]["value"], "411111******1111");
    let out = lambda_stream(&[&args[..], &["--field", "nope"]].concat());
    assert_eq!(out.status.code(), Some(2));
}

/// `run` (the worker) exists in the full build only; the mapping-tools build does not know it.
#[test]
fn run_is_a_command_of_the_full_build_only() {
    let out = lambda_stream(&["run", "--help"]);
    assert_eq!(out.status.success(), cfg!(feature = "kafka"), "{}", stderr(&out));
}

/// The mapping-tools build asked to produce says so, instead of failing on a missing client.
#[cfg(not(feature = "kafka"))]
#[test]
fn the_tools_build_says_that_producing_needs_the_full_build() {
    let event = fixture("events/msk.json");
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        event.to_str().unwrap(),
        "--brokers",
        "127.0.0.1:9",
        "--topic-ok",
        "ok",
        "--topic-fail",
        "fail",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("mapping-tools build"), "{}", stderr(&out));
}

/// `process --event --metrics` prints the function's EMF documents after the records: valid
/// against the EMF schema, counting what the summary counts, one document per failing rule.
#[test]
fn process_event_prints_the_batch_metrics_as_the_function_writes_them() {
    let event = fixture("events/msk.json");
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        event.to_str().unwrap(),
        "--metrics",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let docs = crate::util::emf_documents(&stdout(&out));
    assert!(!docs.is_empty());
    let main = &docs[0];
    let n = |k: &str| main[k].as_f64().unwrap();
    assert_eq!((n("RecordsReceived"), n("RecordsOk"), n("RecordsFailed"), n("RecordsSkipped")), (8.0, 3.0, 4.0, 1.0));
    assert!(stderr(&out).starts_with("8 records: 3 ok, 4 failed, 1 skipped"), "the summary agrees: {}", stderr(&out));
    assert_eq!(main["mapping"], "orders-to-billing");
    assert_eq!(main["eventSource"], "aws:kafka");
    let failures: f64 = docs[1..].iter().map(|d| d["FieldRuleFailures"].as_f64().unwrap()).sum();
    let errors: usize = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("{\"route\":\"fail\""))
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["errors"].as_array().unwrap().len())
        .sum();
    assert_eq!(failures as usize, errors, "every error of every failed record is counted under its rule");
    assert!(docs[1..].iter().any(|d| d["rule"] == "customer.document:cpf"), "{docs:#?}");
}
