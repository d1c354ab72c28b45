//! Runs the `tests:` embedded in a mapping file against its compiled plan.

use serde_json::Value;

use super::json::json_equal;
use super::{Outcome, Plan};
use crate::diagnostic::Pos;
use crate::spec::{ExpectSpec, MappingSpec, TestInput};

/// The result of one embedded test; `failure` says why it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecTestResult {
    /// The test's `name:` (empty when it has none).
    pub name: String,
    /// Where the test is written.
    pub pos: Pos,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// Runs the mapping's embedded `tests:` against its plan.
pub fn run(spec: &MappingSpec, plan: &Plan) -> Vec<SpecTestResult> {
    spec.tests
        .iter()
        .map(|test| {
            let name = test.name.as_ref().map(|n| n.value.clone()).unwrap_or_default();
            SpecTestResult { name, pos: test.pos, failure: run_one(test, plan).err() }
        })
        .collect()
}

fn run_one(test: &crate::spec::TestSpec, plan: &Plan) -> Result<(), String> {
    let input = match &test.input {
        Some(TestInput::Structured(node)) => {
            let value = node.to_json().map_err(|d| d.message)?;
            serde_json::to_vec(&value).map_err(|e| e.to_string())?
        }
        Some(TestInput::Raw(text)) => text.value.clone().into_bytes(),
        None => return Err("the test has no input".into()),
    };
    let outcome = plan.apply(&input);
    if let (Some(expected), Outcome::Mapped(mapped)) = (&test.outputs, &outcome) {
        let went: Vec<&str> = mapped.deliveries.iter().map(|d| plan.outputs()[d.output].name()).collect();
        let wanted: Vec<&str> = expected.value.iter().map(|n| n.value.as_str()).collect();
        if went != wanted {
            return Err(format!(
                "expected the record to go to output(s) {}, but it went to {}",
                wanted.join(", "),
                went.join(", ")
            ));
        }
    }
    // A failing test says what differs, never what a sensitive field held: its message reaches
    // `validate-mapping`'s output and the log line of a refused refresh.
    let hidden = plan.sensitive_targets();
    let mapped = || {
        let mut value = outcome.ok_value().unwrap_or(Value::Null);
        plan.hide_sensitive(&mut value);
        value
    };
    match (&test.expect, &outcome) {
        (None, _) => Err("the test has no expectation".into()),
        (Some(ExpectSpec::Ok(expected)), Outcome::Mapped(_)) => {
            let expected = expected.to_json().map_err(|d| d.message)?;
            let actual = outcome.ok_value().unwrap_or(Value::Null);
            let mut differences = Vec::new();
            diff(&expected, &actual, &mut String::new(), &hidden, &mut differences);
            if differences.is_empty() {
                Ok(())
            } else {
                let shown = differences.len().min(MAX_DIFFERENCES);
                let more = differences.len() - shown;
                let tail = if more > 0 { format!("; and {more} more") } else { String::new() };
                Err(format!("output differs: {}{tail}", differences[..shown].join("; ")))
            }
        }
        (Some(ExpectSpec::Ok(_) | ExpectSpec::Routed), Outcome::Failed(failure)) => {
            let got: Vec<String> = failure
                .errors
                .iter()
                .map(|e| format!("{} ({}): {}", e.field.as_deref().unwrap_or("-"), e.rule, e.message))
                .collect();
            Err(format!("expected ok, but the record failed: {}", got.join("; ")))
        }
        (Some(ExpectSpec::Dropped), Outcome::Dropped) => Ok(()),
        (Some(ExpectSpec::Routed), Outcome::Mapped(_)) => Ok(()),
        (Some(ExpectSpec::Dropped), Outcome::Mapped(_)) => {
            Err(format!("expected the record dropped, but it mapped to {}", mapped()))
        }
        (Some(ExpectSpec::Dropped), Outcome::Failed(failure)) => {
            let got: Vec<String> =
                failure.errors.iter().map(|e| format!("{} ({})", e.field.as_deref().unwrap_or("-"), e.rule)).collect();
            Err(format!("expected the record dropped, but it failed: {}", got.join("; ")))
        }
        (Some(ExpectSpec::Ok(_) | ExpectSpec::Fail(_) | ExpectSpec::Routed), Outcome::Dropped) => {
            Err("the record was dropped by the mapping's `drop`".into())
        }
        (Some(ExpectSpec::Fail(_)), Outcome::Mapped(_)) => {
            Err(format!("expected a failure, but the record mapped to {}", mapped()))
        }
        (Some(ExpectSpec::Fail(expected)), Outcome::Failed(failure)) => {
            let missing: Vec<String> = expected
                .iter()
                .filter(|want| !failure.errors.iter().any(|e| e.field == want.field && e.rule == want.rule))
                .map(|want| format!("{{field: {}, rule: {}}}", want.field.as_deref().unwrap_or("null"), want.rule))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                let got: Vec<String> = failure
                    .errors
                    .iter()
                    .map(|e| format!("{{field: {}, rule: {}}}", e.field.as_deref().unwrap_or("null"), e.rule))
                    .collect();
                Err(format!("expected errors {} not reported; got {}", missing.join(", "), got.join(", ")))
            }
        }
    }
}

const MAX_DIFFERENCES: usize = 5;

/// Lists where `actual` differs from `expected`, by output path (`customer.tier`, `skus[1]`).
/// Equality is exact and structural, except that `1` and `1.0` are the same number.
fn diff(expected: &Value, actual: &Value, path: &mut String, hidden: &[&str], out: &mut Vec<String>) {
    let here = |path: &str| if path.is_empty() { "the output".to_string() } else { format!("`{path}`") };
    if is_hidden(path, hidden) {
        if !json_equal(expected, actual) {
            out.push(format!("{}: not the value expected (values hidden: sensitive field)", here(path)));
        }
        return;
    }
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match a.get(key) {
                    Some(av) => diff(ev, av, path, hidden, out),
                    None if is_hidden(path, hidden) => out.push(format!("{} is missing", here(path))),
                    None => out.push(format!("{} is missing (expected {ev})", here(path))),
                }
                path.truncate(len);
            }
            for (key, av) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                let shown = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if is_hidden(&shown, hidden) {
                    out.push(format!("`{shown}` is not expected"));
                } else {
                    out.push(format!("`{shown}` is not expected (got {av})"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                diff(ev, av, path, hidden, out);
                path.truncate(len);
            }
        }
        _ if json_equal(expected, actual) => {}
        _ => out.push(format!("{}: expected {expected}, got {actual}", here(path))),
    }
}

/// Whether an output path is a sensitive target or inside one.
fn is_hidden(path: &str, hidden: &[&str]) -> bool {
    hidden.iter().any(|t| {
        path.strip_prefix(t).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn differences(e: Value, a: Value) -> Vec<String> {
        let mut out = Vec::new();
        diff(&e, &a, &mut String::new(), &[], &mut out);
        out
    }

    #[test]
    fn diff_names_each_differing_path() {
        let d = differences(json!({"a": {"b": 1, "c": 2}, "l": [1, 2]}), json!({"a": {"b": 1.0, "d": 3}, "l": [1, 3]}));
        assert_eq!(
            d,
            vec!["`a.c` is missing (expected 2)", "`a.d` is not expected (got 3)", "`l[1]`: expected 2, got 3"]
        );
        assert!(differences(json!({"x": [1]}), json!({"x": [1]})).is_empty());
        assert_eq!(differences(json!([1]), json!([1, 2])), vec!["the output: expected [1], got [1,2]"]);
    }
}
