//! Cross-field business rules, checked over the output targets after every field is evaluated.

use serde_json::Value;

use super::field::{Field, FieldState};
use super::outcome::FieldError;
use crate::diagnostic::{Diagnostic, Spanned};
use crate::spec::RuleSpec;

#[derive(Debug)]
pub struct Rule {
    name: String,
    when_field: usize,
    condition: Condition,
    require: Vec<usize>,
    forbid: Vec<usize>,
}

#[derive(Debug)]
enum Condition {
    Equals(Value),
    In(Vec<Value>),
    Present(bool),
}

/// Resolves rules against the compiled fields; `find` maps a target name to its field index and
/// reports unknown names.
pub fn compile(
    specs: &[RuleSpec],
    mut find: impl FnMut(&Spanned<String>, &str, &mut Vec<Diagnostic>) -> Option<usize>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut names: Vec<&Spanned<String>> = Vec::new();
    for spec in specs {
        let before = diags.len();
        if let Some(name) = &spec.name {
            if let Some(first) = names.iter().find(|n| n.value == name.value) {
                diags.push(Diagnostic::new(
                    name.pos,
                    format!("duplicate rule name `{}` (first used at {})", name.value, first.pos),
                ));
            }
            names.push(name);
        }
        if spec.require.is_empty() && spec.forbid.is_empty() {
            diags.push(Diagnostic::new(spec.pos, "rule has neither `require` nor `forbid`; it would check nothing"));
        }
        let require: Vec<usize> = spec.require.iter().filter_map(|t| find(t, "`require`", diags)).collect();
        let forbid: Vec<usize> = spec.forbid.iter().filter_map(|t| find(t, "`forbid`", diags)).collect();
        let Some(when) = &spec.when else { continue };
        let when_field = when.field.as_ref().and_then(|f| find(f, "`when`", diags));
        let conditions = [when.equals.is_some(), when.one_of.is_some(), when.present.is_some()];
        let condition = match conditions.iter().filter(|c| **c).count() {
            1 => {
                if let Some(node) = &when.equals {
                    node.to_json().map_err(|d| diags.push(d)).ok().map(Condition::Equals)
                } else if let Some(list) = &when.one_of {
                    let values: Result<Vec<Value>, Diagnostic> = list.value.iter().map(|n| n.to_json()).collect();
                    values.map_err(|d| diags.push(d)).ok().map(Condition::In)
                } else {
                    when.present.as_ref().map(|p| Condition::Present(p.value))
                }
            }
            n => {
                let found = if n == 0 { "none" } else { "several" };
                diags.push(Diagnostic::new(
                    when.pos,
                    format!("`when` needs exactly one of `equals`, `in` or `present`, found {found}"),
                ));
                None
            }
        };
        if diags.len() > before {
            continue;
        }
        if let (Some(name), Some(when_field), Some(condition)) = (&spec.name, when_field, condition) {
            rules.push(Rule { name: name.value.clone(), when_field, condition, require, forbid });
        }
    }
    rules
}

impl Rule {
    pub fn check(&self, states: &[FieldState<'_>], fields: &[Field], errors: &mut Vec<FieldError>) {
        let holds = match (&states[self.when_field], &self.condition) {
            // The condition cannot be judged on a field that already failed.
            (FieldState::Failed, _) => return,
            (FieldState::Present(v), Condition::Equals(expected)) => v.equals(expected),
            (FieldState::Present(v), Condition::In(allowed)) => allowed.iter().any(|a| v.equals(a)),
            (FieldState::Absent, Condition::Equals(_) | Condition::In(_)) => false,
            (state, Condition::Present(want)) => matches!(state, FieldState::Present(_)) == *want,
        };
        if !holds {
            return;
        }
        // The explanation is built only when a rule is broken.
        let because = || {
            let when = &fields[self.when_field].target;
            match &self.condition {
                Condition::Equals(v) => format!("`{when}` is {v}"),
                Condition::In(values) => {
                    let list: Vec<String> = values.iter().map(Value::to_string).collect();
                    format!("`{when}` is one of [{}]", list.join(", "))
                }
                Condition::Present(true) => format!("`{when}` is present"),
                Condition::Present(false) => format!("`{when}` is absent"),
            }
        };
        for &i in &self.require {
            if matches!(states[i], FieldState::Absent) {
                let target = &fields[i].target;
                errors.push(FieldError {
                    field: Some(target.clone()),
                    rule: self.name.clone(),
                    message: format!("`{target}` is required when {}", because()),
                });
            }
        }
        for &i in &self.forbid {
            if matches!(states[i], FieldState::Present(_)) {
                let target = &fields[i].target;
                errors.push(FieldError {
                    field: Some(target.clone()),
                    rule: self.name.clone(),
                    message: format!("`{target}` must be absent when {}", because()),
                });
            }
        }
    }
}
