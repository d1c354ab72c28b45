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

use super::expr::{Budget, Env};
use super::field::{Field, FieldSource, Slots, reads_failed};
use super::outcome::{FieldError, Outcome};
use super::value::{FieldState, Val};

/// The whole story of one record.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// `ok`, `fail` or `dropped`, as `Plan::apply` decided.
    pub outcome: &'static str,
    /// The record-level step before any field (`drop`, or why the value is not usable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Each target, in spec order.
    pub fields: Vec<FieldTrace>,
    /// Each cross-field rule.
    pub rules: Vec<RuleTrace>,
    /// Each of the mapping's `outputs:` with its verdict, once fields and rules passed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<super::outputs::OutputTrace>,
    /// The errors the record got, as `Plan::apply` reports them.
    pub errors: Vec<FieldError>,
    /// The output value, for an ok record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// One target.
#[derive(Debug, Serialize)]
pub struct FieldTrace {
    /// The output field's name.
    pub target: String,
    /// The JSONPath, `expr: …`, or `const`.
    pub source: String,
    /// Where the source led: `found …`, `absent`, `null`, `N matches …`, or the computed value.
    pub found: String,
    /// Its steps, in the order they ran.
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
    /// What the step is (`when`, `default`, a transform, `type`, a validator).
    pub step: String,
    /// What it did or decided.
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
    /// The rule's name.
    pub name: String,
    /// Whether it held, failed or was not judged, and why.
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

    /// A record that failed before any field was read (its value could not be decoded): the
    /// failure, and why, as the record-level step.
    pub fn not_read(failure: super::outcome::Failure) -> Self {
        Explanation {
            outcome: "fail",
            record: failure.errors.first().map(|e| e.message.clone()),
            fields: Vec::new(),
            rules: Vec::new(),
            outputs: Vec::new(),
            errors: failure.errors,
            output: None,
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
        for o in &self.outputs {
            let to = o.topic.as_deref().map(|t| format!(" → {t}")).unwrap_or_default();
            out.push_str(&format!("output {}{to}: {}\n", o.name, o.verdict));
        }
        for e in &self.errors {
            out.push_str(&format!("error: {} {}: {}\n", e.field.as_deref().unwrap_or("(record)"), e.rule, e.message));
        }
        out.push_str(&format!("outcome: {}\n", self.outcome));
        out
    }
}

impl Field {
    /// The steps of this field for `Plan::explain`: `state` is its final state from the real
    /// evaluation, `env` every field's; the pipeline is replayed on the value it resolved.
    pub(super) fn trace<'a>(
        &'a self,
        slots: &'a [Option<Val<'a>>],
        env: Env<'_>,
        state: &FieldState<'_>,
    ) -> super::explain::FieldTrace {
        use super::explain::{FieldTrace, Step};
        use super::types::describe;
        let shown = |v: &Val<'_>| describe(v, self.sensitive);
        let mut steps = Vec::new();
        let mut locals = Vec::new();
        if let Some(when) = &self.when {
            let verdict = if reads_failed(when, env.fields) {
                "not judged: it reads a field that has errors".to_string()
            } else {
                match when.code.condition(env, &mut locals) {
                    Ok(Some(true)) => "holds".into(),
                    Ok(Some(false)) => "does not hold: the field is left out".into(),
                    Ok(None) => "is null: the field is left out".into(),
                    Err(e) => format!("could not be evaluated: {}", e.message(when.reads_sensitive)),
                }
            };
            steps.push(Step::new(format!("when {}", when.text), verdict));
        }
        let (source, found) = self.trace_source(slots, env);
        // The pipeline, replayed on what the source resolved to (items are traced as a whole).
        let mut resolved = FieldState::Absent;
        let mut scratch = Vec::new();
        let runs = matches!(self.source, FieldSource::Path { .. })
            && self.items.is_none()
            && self.resolve(slots, &mut resolved, &mut scratch);
        if let (Some(default), FieldState::Present(_)) = (&self.default, &resolved)
            && matches!(&self.source, FieldSource::Path { slot, .. } if slots[*slot].as_ref().is_none_or(Val::is_null))
        {
            let v = Val::borrowed(default);
            steps.push(Step::new("default", format!("→ {}", shown(&v))));
        }
        if let (true, FieldState::Present(value)) = (runs, &resolved) {
            self.trace_pipeline(value.clone(), env, &mut steps);
        } else if let (FieldState::Absent, Some(_)) = (&resolved, scratch.first()) {
            steps.push(Step::new("required", format!("✗ {}", scratch[0].message)));
        }
        let result = match state {
            FieldState::Present(_) if !self.output => "not written (output: false)".to_string(),
            FieldState::Present(v) => format!("= {}", shown(v)),
            FieldState::Absent => "left out".into(),
            FieldState::Failed => "error (see the errors below)".into(),
        };
        let value = match state {
            FieldState::Present(v) if !self.sensitive => Some(v.to_value()),
            _ => None,
        };
        FieldTrace { target: self.target.clone(), source, found, steps, result, value }
    }

    /// Where the field's value came from, and what was found there.
    fn trace_source(&self, slots: &[Option<Val<'_>>], env: Env<'_>) -> (String, String) {
        use super::types::describe;
        let mut locals = Vec::new();
        let shown = |v: &Val<'_>| describe(v, self.sensitive);
        match &self.source {
            FieldSource::Path { text, slot, .. } => {
                let found = match &slots[*slot] {
                    None => "absent".to_string(),
                    Some(v) if v.is_null() => "null".into(),
                    Some(v) => match v.items() {
                        Some(items) => format!("{} match(es): {}", items.len(), shown(v)),
                        None => match v.array_len() {
                            Some(n) => format!("found an array of {n} item(s)"),
                            None => format!("found {}", shown(v)),
                        },
                    },
                };
                (text.clone(), found)
            }
            FieldSource::Computed(expr) => {
                let found = if reads_failed(expr, env.fields) {
                    "not computed: it reads a field that has errors".into()
                } else {
                    match expr.code.value(env, &mut locals) {
                        Ok(Some(v)) => format!("computed {}", shown(&v)),
                        Ok(None) => "computed null".into(),
                        Err(e) => format!("could not be computed: {}", e.message(expr.reads_sensitive)),
                    }
                };
                (format!("expr {}", expr.text), found)
            }
            FieldSource::Const(v) => ("const".into(), if self.sensitive { "(hidden)".into() } else { v.to_string() }),
        }
    }

    /// The transforms, the type check and the validators, replayed on `value`.
    fn trace_pipeline<'a>(&'a self, mut value: Val<'a>, env: Env<'_>, steps: &mut Vec<super::explain::Step>) {
        let mut locals = Vec::new();
        use super::explain::Step;
        use super::types::describe;
        let shown = |v: &Val<'_>| describe(v, self.sensitive);
        let mut failed = false;
        for transform in &self.transforms {
            match transform.apply(&mut value, self.sensitive) {
                Ok(()) => steps.push(Step::new(transform.name(), format!("→ {}", shown(&value)))),
                Err(e) => {
                    steps.push(Step::new(transform.name(), format!("✗ {}: {}", e.rule, e.message)));
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            match self.ty.check(&mut value, self.sensitive) {
                Ok(()) => steps.push(Step::new(format!("type {}", self.ty.name()), "✓")),
                Err(message) => {
                    steps.push(Step::new(format!("type {}", self.ty.name()), format!("✗ {message}")));
                    failed = true;
                }
            }
        }
        for (k, validator) in self.validators.iter().enumerate().filter(|_| !failed) {
            if let Some(Some(when)) = self.validator_when.get(k) {
                match when.code.condition(env, &mut locals) {
                    Ok(Some(true)) => {}
                    Ok(_) => {
                        steps.push(Step::new(validator.name(), "not applied: its `when` does not hold"));
                        continue;
                    }
                    Err(e) => {
                        let why = e.message(when.reads_sensitive);
                        steps.push(Step::new(validator.name(), format!("✗ its `when` could not be evaluated: {why}")));
                        continue;
                    }
                }
            }
            let verdict = match validator.check(&value, self.sensitive) {
                Ok(()) => "✓".to_string(),
                Err(e) => format!("✗ {}", e.message),
            };
            steps.push(Step::new(validator.name(), verdict));
        }
    }

    /// For an `items:` field, each item's fields traced as the record's are, named after the item
    /// (`lines[1].quantity`), items within items included; nothing for other fields.
    pub(super) fn trace_items<'a>(
        &'a self,
        slots: &'a [Option<Val<'a>>],
        budget: &Budget,
    ) -> Vec<super::explain::FieldTrace> {
        let (Some(set), FieldSource::Path { slot, .. }) = (&self.items, &self.source) else {
            return Vec::new();
        };
        let Some(array) = slots[*slot].as_ref().filter(|v| !v.is_null()) else {
            return Vec::new();
        };
        let Ok((len, rows)) = self.item_slots(set, array) else {
            return Vec::new();
        };
        let width = set.paths.len();
        let mut traces = Vec::new();
        for index in 0..len {
            let row = &rows[index * width..(index + 1) * width];
            let mut states: Vec<FieldState<'_>> = (0..set.fields.len()).map(|_| FieldState::Absent).collect();
            set.evaluate(Slots::Item(row), &mut states, budget, &mut Vec::new());
            let env = Env { fields: &states, slots: row, budget };
            for (field, state) in set.fields.iter().zip(&states) {
                let inner = std::iter::once(field.trace(row, env, state)).chain(field.trace_items(row, budget));
                traces.extend(inner.map(|mut t| {
                    t.target = format!("{}[{index}].{}", self.target, t.target);
                    t
                }));
            }
        }
        traces
    }
}
