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
