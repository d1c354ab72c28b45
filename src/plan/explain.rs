//! `Plan::explain`: what the plan did with one record, field by field — where the source led,
//! the value after each transform, each check's verdict, each condition and rule — for
//! `lambda-stream explain`.
//!
//! The outcome and every field's final state come from the same evaluation `Plan::apply` runs;
//! the steps between are replayed with the same transforms and validators on the value the field
//! resolved, so the trace explains the result instead of computing a second one. Sensitive values
//! are hidden as in the fail envelope.

use serde::Serialize;
use serde_json::Value;

use super::outcome::{FieldError, Outcome};

/// The whole story of one record.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// `ok`, `fail` or `dropped`, as `Plan::apply` decided.
    pub outcome: &'static str,
    /// The record-level step before any field (`drop`, or why the value is not usable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    pub fields: Vec<FieldTrace>,
    pub rules: Vec<RuleTrace>,
    pub errors: Vec<FieldError>,
    /// The output value, for an ok record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// One target.
#[derive(Debug, Serialize)]
pub struct FieldTrace {
    pub target: String,
    /// The JSONPath, `expr: …`, or `const`.
    pub source: String,
    /// Where the source led: `found …`, `absent`, `null`, `N matches …`, or the computed value.
    pub found: String,
    pub steps: Vec<Step>,
    /// `= value`, `left out`, `not written (output: false)`, or `error`.
    pub result: String,
    /// The final value as JSON (none when left out, failed, or sensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// One step of a field: a condition, the default, a transform, the type check, a validator.
#[derive(Debug, Serialize)]
pub struct Step {
    pub step: String,
    pub verdict: String,
}

impl Step {
    pub(super) fn new(step: impl Into<String>, verdict: impl Into<String>) -> Self {
        Step { step: step.into(), verdict: verdict.into() }
    }
}

/// One rule.
#[derive(Debug, Serialize)]
pub struct RuleTrace {
    pub name: String,
    pub verdict: String,
}

impl Explanation {
    pub(super) fn outcome_name(outcome: &Outcome) -> &'static str {
        match outcome {
            Outcome::Mapped(_) => "ok",
            Outcome::Failed(_) => "fail",
            Outcome::Dropped => "dropped",
        }
    }

    /// Only the fields whose target is `target` or lies under it (`customer` keeps
    /// `customer.email`, `lines` keeps `lines[0].sku`).
    pub fn only(mut self, target: &str) -> Self {
        let under = format!("{target}.");
        let item = format!("{target}[");
        self.fields.retain(|f| f.target == target || f.target.starts_with(&under) || f.target.starts_with(&item));
        self.errors.retain(|e| {
            e.field.as_deref().is_some_and(|f| f == target || f.starts_with(&under) || f.starts_with(&item))
        });
        self
    }

    /// The explanation as a person reads it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(record) = &self.record {
            out.push_str(&format!("record: {record}\n"));
        }
        for f in &self.fields {
            out.push_str(&format!("{}  ← {}: {}\n", f.target, f.source, f.found));
            for s in &f.steps {
                out.push_str(&format!("  {:<16} {}\n", s.step, s.verdict));
            }
            out.push_str(&format!("  {}\n", f.result));
        }
        for r in &self.rules {
            out.push_str(&format!("rule {}: {}\n", r.name, r.verdict));
        }
        for e in &self.errors {
            out.push_str(&format!("error: {} {}: {}\n", e.field.as_deref().unwrap_or("(record)"), e.rule, e.message));
        }
        out.push_str(&format!("outcome: {}\n", self.outcome));
        out
    }
}
