//! Golden tests: `validate-mapping` output on broken specs, one file per kind of problem, and
//! `explain` output on records (`tests/fixtures/explain/`).
//! `UPDATE_GOLDEN=1 cargo test golden` rewrites the `.expected` files; review the diff.

use crate::util::{lambda_stream, root, stdout};

fn check(name: &str) {
    let spec = format!("tests/fixtures/broken/{name}.yaml");
    let expected_path = root().join(format!("tests/fixtures/broken/{name}.expected"));
    let out = lambda_stream(&["validate-mapping", &spec]);
    assert_eq!(out.status.code(), Some(1), "a broken spec exits 1");
    let actual = stdout(&out);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", expected_path.display()));
    assert_eq!(actual, expected, "output of validate-mapping {spec} changed");
    for line in actual.lines().filter(|l| l.contains(": error: ")) {
        let location = line.split(": error: ").next().unwrap();
        let parts: Vec<&str> = location.rsplitn(3, ':').collect();
        assert!(
            parts.len() == 3
                && parts[0].parse::<u32>().is_ok_and(|c| c >= 1)
                && parts[1].parse::<u32>().is_ok_and(|l| l >= 1),
            "not FILE:LINE:COL with 1-based line and column: {line}"
        );
    }
}

#[test]
fn expressions_that_do_not_compile() {
    check("expressions");
}

#[test]
fn unknown_keys_steps_and_types() {
    check("typos");
}

#[test]
fn yaml_syntax_error() {
    check("syntax");
}

#[test]
fn invalid_jsonpaths_and_regexes() {
    check("paths-and-regexes");
}

#[test]
fn duplicate_and_overlapping_targets() {
    check("targets");
}

#[test]
fn steps_that_do_not_fit_the_type() {
    check("types");
}

#[test]
fn defaults_and_consts_that_fail_their_checks() {
    check("literals");
}

#[test]
fn rules_naming_unknown_targets() {
    check("rules");
}

#[test]
fn failing_embedded_tests() {
    check("failing-tests");
}

/// Found by `cargo fuzz run mapping_loader`: a problem reported at line 0.
#[test]
fn empty_tagged_value_is_located_at_its_key() {
    check("fuzz-30fb4ca0-empty-tagged-value");
}

#[test]
fn yaml_mistakes_in_mapping_terms() {
    // Each stops the YAML parser, so each has its own file.
    check("yaml-tab");
    check("yaml-duplicate-key");
    check("yaml-double-quoted-regex");
    check("yaml-unquoted-regex");
    check("yaml-indentation");
}

#[test]
fn jsonpath_mistakes_say_how_to_write_the_path() {
    check("jsonpath-mistakes");
}

/// `explain` of a record whose second item fails: each item's fields step by step, the failing
/// check named, the error under `items[1].quantity`, sensitive values hidden.
#[test]
fn explain_of_a_record_with_a_failing_item() {
    let record = "tests/fixtures/explain/payments-bad-item.json";
    let expected_path = root().join("tests/fixtures/explain/payments-bad-item.expected");
    let out = lambda_stream(&["explain", "--mapping", "mappings/payments-to-ledger.yaml", "--input", record]);
    assert_eq!(out.status.code(), Some(0), "explain succeeds whatever the record's outcome");
    let actual = stdout(&out);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", expected_path.display()));
    assert_eq!(actual, expected, "output of explain on {record} changed");
    assert!(actual.contains("items[1].quantity  ← $.quantity: found a number 0"), "{actual}");
    assert!(actual.ends_with("outcome: fail\n"), "{actual}");
}

/// `diff-mapping` of `tests/fixtures/diff/base.yaml` against one edit of it, on the samples there:
/// the output is the golden file, the exit code 3 when something changed and 0 when not.
fn check_diff(edit: &str, samples: &[&str], expected_exit: i32) {
    let dir = "tests/fixtures/diff";
    let new = format!("{dir}/{edit}.yaml");
    let base = format!("{dir}/base.yaml");
    let args = [&["diff-mapping", &base, &new][..], samples].concat();
    let out = lambda_stream(&args);
    assert_eq!(out.status.code(), Some(expected_exit), "{}", crate::util::stderr(&out));
    let actual = stdout(&out);
    let suffix = if samples[0] == "--event" { "-event" } else { "" };
    let expected_path = root().join(format!("{dir}/{edit}{suffix}.expected"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", expected_path.display()));
    assert_eq!(actual, expected, "output of diff-mapping base.yaml {new} changed");
}

const DIFF_SAMPLES: &[&str] = &["--input", "tests/fixtures/diff/samples.jsonl"];

#[test]
fn diff_of_a_mapping_with_itself_changes_nothing() {
    check_diff("base", DIFF_SAMPLES, 0);
}

#[test]
fn diff_shows_records_that_now_fail_and_their_new_errors() {
    check_diff("stricter", DIFF_SAMPLES, 3);
}

#[test]
fn diff_shows_records_that_now_pass_and_the_errors_they_had() {
    check_diff("looser", DIFF_SAMPLES, 3);
}

#[test]
fn diff_shows_changed_added_and_removed_values_and_keys_hiding_sensitive_ones() {
    check_diff("values", DIFF_SAMPLES, 3);
    let text = std::fs::read_to_string(root().join("tests/fixtures/diff/values.expected")).unwrap();
    assert!(!text.contains("52998224725") && !text.contains("529.982.247-25"), "{text}");
}

#[test]
fn diff_shows_other_errors_of_records_failing_under_both() {
    check_diff("errors", DIFF_SAMPLES, 3);
}

#[test]
fn diff_shows_records_now_dropped() {
    check_diff("dropped", DIFF_SAMPLES, 3);
}

#[test]
fn diff_reads_a_lambda_event_too() {
    check_diff("stricter", &["--event", "tests/fixtures/diff/event.json"], 3);
}

#[test]
fn diff_of_an_invalid_mapping_lists_its_problems_and_exits_1() {
    let out = lambda_stream(&[
        "diff-mapping",
        "tests/fixtures/diff/base.yaml",
        "tests/fixtures/broken/typos.yaml",
        "--input",
        "tests/fixtures/diff/samples.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(crate::util::stderr(&out).contains("tests/fixtures/broken/typos.yaml:"), "{}", crate::util::stderr(&out));
    let out = lambda_stream(&["diff-mapping", "tests/fixtures/diff/base.yaml", "nope.yaml", "--input", "x.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
}
