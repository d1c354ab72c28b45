//! Runs the `tests:` embedded in a mapping file against its compiled plan.

use serde_json::Value;

use super::validate::json_equal;
use super::{Outcome, Plan};
use crate::diagnostic::Pos;
use crate::spec::{ExpectSpec, MappingSpec, TestInput};

/// The result of one embedded test; `failure` says why it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecTestResult {
    pub name: String,
    pub pos: Pos,
    pub failure: Option<String>,
}

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
    match (&test.expect, &outcome) {
        (None, _) => Err("the test has no expectation".into()),
        (Some(ExpectSpec::Ok(expected)), Outcome::Mapped(_)) => {
            let expected = expected.to_json().map_err(|d| d.message)?;
            let actual = outcome.ok_value().unwrap_or(Value::Null);
            if deep_equal(&expected, &actual) {
                Ok(())
            } else {
                Err(format!("expected output {expected}, got {actual}"))
            }
        }
        (Some(ExpectSpec::Ok(_)), Outcome::Failed(failure)) => {
            let got: Vec<String> = failure.errors.iter().map(|e| format!("{} ({}): {}", e.field.as_deref().unwrap_or("-"), e.rule, e.message)).collect();
            Err(format!("expected ok, but the record failed: {}", got.join("; ")))
        }
        (Some(ExpectSpec::Fail(_)), Outcome::Mapped(_)) => {
            Err(format!("expected a failure, but the record mapped to {}", outcome.ok_value().unwrap_or(Value::Null)))
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
                let got: Vec<String> = failure.errors.iter().map(|e| format!("{{field: {}, rule: {}}}", e.field.as_deref().unwrap_or("null"), e.rule)).collect();
                Err(format!("expected errors {} not reported; got {}", missing.join(", "), got.join(", ")))
            }
        }
    }
}

/// Exact structural equality, except that `1` and `1.0` are the same number.
fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| deep_equal(v, w))),
        _ => json_equal(a, b),
    }
}
