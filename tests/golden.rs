//! Golden tests: `validate-mapping` output on broken specs, one file per kind of problem, and
//! `explain` output on records (`tests/fixtures/explain/`).
//! `UPDATE_GOLDEN=1 cargo test golden` rewrites the `.expected` files; review the diff.

use crate::util::{lambda_stream, root, stdout};

fn check(name: &str) {
    let spec = format!("tests/fixtures/broken/{name}.yaml");
    let out = lambda_stream(&["validate-mapping", &spec]);
    assert_eq!(out.status.code(), Some(1), "a broken spec exits 1");
    pin(&spec, &root().join(format!("tests/fixtures/broken/{name}.expected")), &stdout(&out));
}

/// Compares `validate-mapping`'s output on `spec` with the golden file, then checks its form:
/// each problem's first line is `FILE:LINE:COL: severity: message` with 1-based line and column,
/// followed by that line of the file with the first `^` under that column.
fn pin(spec: &str, expected_path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(expected_path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(expected_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1 to create it)", expected_path.display()));
    assert_eq!(actual, expected, "output of validate-mapping {spec} changed");
    let source = std::fs::read_to_string(root().join(spec)).unwrap();
    let lines: Vec<&str> = actual.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((location, _)) = line.split_once(": error: ").or_else(|| line.split_once(": warning: ")) else {
            continue;
        };
        let parts: Vec<&str> = location.rsplitn(3, ':').collect();
        let (Ok(col), Ok(number)) = (parts[0].parse::<usize>(), parts[1].parse::<usize>()) else {
            panic!("not FILE:LINE:COL: {line}");
        };
        assert!(parts.len() == 3 && parts[2] == spec && col >= 1 && number >= 1, "not {spec}:LINE:COL: {line}");
        // `  |`, `NN | the line`, `  |   ^^^` (or `  | /` and more lines when the span is over several).
        let (shown, under) = (lines[i + 2], lines[i + 3]);
        let bar = shown.find(" | ").unwrap_or_else(|| panic!("no source line under {line}"));
        assert_eq!(shown[..bar].trim(), number.to_string(), "{line}");
        let text = source.lines().nth(number - 1).unwrap();
        // Tabs are shown as spaces; a span over lines draws a `/` before its first.
        if text.is_ascii() && !text.contains('\t') {
            let shown_text = &shown[bar + 3..];
            assert_eq!(shown_text.strip_prefix("/ ").unwrap_or(shown_text), text, "{line}");
        }
        if text.is_ascii() && !text.contains('\t') && !under.contains('_') {
            let caret = under.find('^').unwrap_or_else(|| panic!("no caret under {line}"));
            assert_eq!(caret - (bar + 3), col - 1, "the caret is not under column {col}: {line}\n{shown}\n{under}");
        }
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

/// Held to the schemas it names (`source_schema:`, `target_schema:`).
#[test]
fn mismatches_with_the_schemas_of_the_topics() {
    check("schemas");
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

/// `a ? b : c` and `"A" == b` unquoted: YAML stops, and the problem says how to quote the value.
#[test]
fn values_yaml_cannot_read_unquoted_say_how_to_quote_them() {
    check("yaml-flow-mapping-colon");
    check("yaml-colon-in-value");
    check("yaml-quoted-start");
}

/// `{ expr: f(a, b) }` parses, with `b)` as a key: said as a value to quote.
#[test]
fn values_cut_by_a_comma_in_a_flow_mapping_say_how_to_quote_them() {
    check("flow-mapping-values");
}

/// Problems inside folded, literal, double-quoted (with escapes), single-quoted and multi-line
/// plain scalars are placed on the line and column where the offending text is written.
#[test]
fn problems_inside_multi_line_and_escaped_scalars_are_placed_where_written() {
    check("expressions-in-block-scalars");
}

/// A mapping that loads with a warning: shown the same way, and exit 0.
#[test]
fn a_warning_is_shown_in_its_source_line() {
    let spec = "tests/fixtures/warnings/never-true.yaml";
    let out = lambda_stream(&["validate-mapping", spec]);
    assert_eq!(out.status.code(), Some(0), "a warning does not refuse the mapping");
    pin(spec, &root().join("tests/fixtures/warnings/never-true.expected"), &stdout(&out));
}

/// The JSON report gives each problem's severity and where it starts and ends.
#[test]
fn the_json_report_gives_severity_start_and_end() {
    let json = |spec: &str| -> serde_json::Value {
        let out = lambda_stream(&["validate-mapping", "--format", "json", spec]);
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let report = json("tests/fixtures/broken/expressions-in-block-scalars.yaml");
    let problems = report["files"][0]["diagnostics"].as_array().unwrap();
    assert_eq!(problems.len(), 6);
    let spans: Vec<(String, String, serde_json::Value, serde_json::Value)> = problems
        .iter()
        .map(|d| {
            let message = d["message"].as_str().unwrap();
            (
                d["severity"].as_str().unwrap().into(),
                // The message after the quoted expression (`in expression `…`: `).
                message[message.find("`: ").unwrap() + 3..].into(),
                d["start"].clone(),
                d["end"].clone(),
            )
        })
        .collect();
    let at = |line: u32, col: u32| serde_json::json!({ "line": line, "col": col });
    assert_eq!(
        spans[0],
        (
            "error".into(),
            format!(
                "unknown function `sizee`; did you mean `size`? The functions are: {}",
                lambda_stream::plan::expr::functions::names().collect::<Vec<_>>().join(", ")
            ),
            at(9, 7),
            at(9, 12)
        )
    );
    assert_eq!(spans[1].2, at(14, 11));
    assert_eq!(spans[1].3, at(14, 14));
    assert_eq!((spans[3].2.clone(), spans[3].3.clone()), (at(16, 29), at(16, 32)));
    assert_eq!(problems[0]["line"], 9, "the start is also given as `line` and `col`");
    assert!(
        problems[0]["rendered"]
            .as_str()
            .unwrap()
            .starts_with("tests/fixtures/broken/expressions-in-block-scalars.yaml:9:7: error: ")
    );

    let report = json("tests/fixtures/warnings/never-true.yaml");
    let warning = &report["files"][0]["diagnostics"][0];
    assert_eq!(warning["severity"], "warning");
    assert_eq!((warning["start"].clone(), warning["end"].clone()), (at(8, 17), at(8, 27)));
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
