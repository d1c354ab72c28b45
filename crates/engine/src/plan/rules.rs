//! Cross-field business rules, checked over the output targets after every field is evaluated:
//! an expression that must hold (`check:`), or the field-condition form (`when:` a field
//! equals/is in/is present, then `require`/`forbid` targets).

use serde_json::Value;

use super::expr::{Compiled, Env, EvalError};
use super::field::{Field, reads_failed};
use super::outcome::FieldError;
use super::value::{FieldState, Val};
use crate::diagnostic::{Diagnostic, Diagnostics, Spanned};
use crate::spec::{RuleSpec, RuleWhen};

#[derive(Debug)]
pub enum Rule {
    Fields(FieldRule),
    Expr(Box<ExprRule>),
}

/// `check:` an expression, optionally `when:` another.
#[derive(Debug)]
pub struct ExprRule {
    name: String,
    text: String,
    check: Compiled,
    when: Option<Compiled>,
    message: Option<String>,
    field: Option<usize>,
}

#[derive(Debug)]
pub struct FieldRule {
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
/// reports unknown names; `expression` compiles an expression over the targets.
pub fn compile(
    specs: &[RuleSpec],
    mut find: impl FnMut(&Spanned<String>, &str, &mut Diagnostics) -> Option<usize>,
    mut expression: impl FnMut(&Spanned<String>, &mut Diagnostics) -> Option<Compiled>,
    diags: &mut Diagnostics,
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
        let rule = match &spec.check {
            Some(check) => expression_rule(spec, check, &mut find, &mut expression, diags),
            None => field_rule(spec, &mut find, diags),
        };
        // A rule with a problem anywhere (its name included) is left out; the problem is reported.
        if let Some(rule) = rule.filter(|_| diags.len() == before) {
            rules.push(rule);
        }
    }
    rules
}

/// A rule with a `check` expression (and an optional `when` expression).
fn expression_rule(
    spec: &RuleSpec,
    check: &Spanned<String>,
    find: &mut impl FnMut(&Spanned<String>, &str, &mut Diagnostics) -> Option<usize>,
    expression: &mut impl FnMut(&Spanned<String>, &mut Diagnostics) -> Option<Compiled>,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    if !spec.require.is_empty() || !spec.forbid.is_empty() {
        diags.push(Diagnostic::new(
            check.pos,
            "a rule has either `check` or `require`/`forbid`; write the requirement into the check, like `has(x)`",
        ));
    }
    let when = match &spec.when {
        None => None,
        Some(RuleWhen::Expr(w)) => Some(expression(w, diags)),
        Some(RuleWhen::Field(w)) => {
            diags.push(Diagnostic::new(
                w.pos,
                "with `check`, `when` is an expression too, like `status == \"DECLINED\"`",
            ));
            return None;
        }
    };
    let compiled = expression(check, diags);
    let field = spec.field.as_ref().and_then(|f| find(f, "`field`", diags));
    let (name, check, when) = (spec.name.as_ref()?, compiled?, when.map_or(Some(None), |w| w.map(Some))?);
    Some(Rule::Expr(Box::new(ExprRule {
        name: name.value.clone(),
        text: spec.check.as_ref().map(|c| c.value.clone()).unwrap_or_default(),
        check,
        when,
        message: spec.message.clone(),
        field,
    })))
}

/// A rule in the field-condition form: `when: {field, equals | one_of | present}` with
/// `require` / `forbid` targets.
fn field_rule(
    spec: &RuleSpec,
    find: &mut impl FnMut(&Spanned<String>, &str, &mut Diagnostics) -> Option<usize>,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    if spec.message.is_some() || spec.field.is_some() {
        diags.push(Diagnostic::new(spec.pos, "`message` and `field` belong to rules with a `check` expression"));
    }
    let when = match &spec.when {
        Some(RuleWhen::Field(w)) => Some(w),
        Some(RuleWhen::Expr(w)) => {
            diags.push(Diagnostic::new(
                w.pos,
                "a `when` expression needs a `check` expression; for `require`/`forbid`, `when` names a field: `{field: status, equals: PAID}`",
            ));
            return None;
        }
        None => None,
    };
    if spec.require.is_empty() && spec.forbid.is_empty() {
        diags.push(Diagnostic::new(spec.pos, "rule has neither `require` nor `forbid`; it would check nothing"));
    }
    let require: Vec<usize> = spec.require.iter().filter_map(|t| find(t, "`require`", diags)).collect();
    let forbid: Vec<usize> = spec.forbid.iter().filter_map(|t| find(t, "`forbid`", diags)).collect();
    let when = when?;
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
    let (name, when_field, condition) = (spec.name.as_ref()?, when_field?, condition?);
    Some(Rule::Fields(FieldRule { name: name.value.clone(), when_field, condition, require, forbid }))
}

impl Rule {
    pub fn check(&self, env: Env<'_>, fields: &[Field], errors: &mut Vec<FieldError>) {
        match self {
            Rule::Fields(rule) => rule.check(env.fields, fields, errors),
            Rule::Expr(rule) => rule.check(env, fields, errors),
        }
    }
}

impl Rule {
    /// Marks the rule's expressions that read a sensitive field: their messages leave values out.
    pub fn follow_sensitivity(&mut self, fields: &[Field]) {
        if let Rule::Expr(rule) = self {
            for c in std::iter::once(&mut rule.check).chain(rule.when.as_mut()) {
                c.reads_sensitive = c.reads.iter().any(|&i| fields[i].sensitive);
            }
        }
    }

    /// The rule's verdict for `Plan::explain`, judged as `check` judges it.
    pub fn trace(&self, env: Env<'_>, fields: &[Field]) -> super::explain::RuleTrace {
        let mut errors = Vec::new();
        self.check(env, fields, &mut errors);
        let (name, verdict) = match self {
            _ if !errors.is_empty() => {
                (self.name(), errors.iter().map(|e| format!("✗ {}", e.message)).collect::<Vec<_>>().join("; "))
            }
            Rule::Fields(rule) => (rule.name.as_str(), "✓".to_string()),
            Rule::Expr(rule) => {
                let mut locals = Vec::new();
                let verdict = if reads_failed(&rule.check, env.fields)
                    || rule.when.as_ref().is_some_and(|w| reads_failed(w, env.fields))
                {
                    "not judged: it reads a field that has errors".to_string()
                } else if rule.when.as_ref().is_some_and(|w| w.code.condition(env, &mut locals) != Ok(Some(true))) {
                    "not applied: its `when` does not hold".into()
                } else if rule.check.code.condition(env, &mut locals) == Ok(None) {
                    format!("not judged: `{}` is null (it read an absent value)", rule.text)
                } else {
                    format!("✓ `{}` holds", rule.text)
                };
                (rule.name.as_str(), verdict)
            }
        };
        super::explain::RuleTrace { name: name.to_string(), verdict }
    }

    fn name(&self) -> &str {
        match self {
            Rule::Fields(rule) => &rule.name,
            Rule::Expr(rule) => &rule.name,
        }
    }
}

impl ExprRule {
    /// Judged only when every field it reads is valid; a `null` verdict (it compared an absent
    /// value) is not judged either.
    fn check(&self, env: Env<'_>, fields: &[Field], errors: &mut Vec<FieldError>) {
        if reads_failed(&self.check, env.fields) || self.when.as_ref().is_some_and(|w| reads_failed(w, env.fields)) {
            return;
        }
        let mut locals = Vec::new();
        // Only a broken rule pays for its names.
        let mut error = |e: &EvalError, message: String| {
            let field = self.field.map(|i| fields[i].target.clone());
            let rule = e.kind.rule().map_or_else(|| self.name.clone(), String::from);
            errors.push(FieldError { field, rule, message })
        };
        if let Some(when) = &self.when {
            match when.code.condition(env, &mut locals) {
                Ok(Some(true)) => {}
                Ok(_) => return,
                Err(e) => {
                    return error(
                        &e,
                        format!("the rule's `when` could not be evaluated: {}", e.message(when.reads_sensitive)),
                    );
                }
            }
        }
        match self.check.code.condition(env, &mut locals) {
            Ok(Some(true) | None) => {}
            Ok(Some(false)) => {
                let said = self.message.clone().unwrap_or_else(|| format!("`{}` does not hold", self.text));
                let field = self.field.map(|i| fields[i].target.clone());
                let message = format!("{said} ({})", self.values_read(env, fields));
                errors.push(FieldError { field, rule: self.name.clone(), message })
            }
            Err(e) => {
                let message =
                    format!("`{}` could not be evaluated: {}", self.text, e.message(self.check.reads_sensitive));
                error(&e, message)
            }
        }
    }

    /// `a = 1, b = absent` for the fields the rule read; sensitive values hidden.
    fn values_read(&self, env: Env<'_>, fields: &[Field]) -> String {
        let mut shown: Vec<String> = Vec::new();
        for &i in self.when.iter().flat_map(|w| &w.reads).chain(&self.check.reads) {
            let f = &fields[i];
            let text = format!("{} = {}", f.target, describe_state(&env.fields[i], f.sensitive));
            if !shown.contains(&text) {
                shown.push(text);
            }
        }
        shown.join(", ")
    }
}

fn describe_state(state: &FieldState<'_>, sensitive: bool) -> String {
    match state {
        FieldState::Absent => "absent".into(),
        FieldState::Failed => "invalid".into(),
        FieldState::Present(_) if sensitive => "(hidden: sensitive field)".into(),
        FieldState::Present(Val::MappedItems(rows)) => format!("{} item(s)", rows.rows.len()),
        FieldState::Present(v) => {
            let mut out = Vec::new();
            v.write_json(&mut out);
            let text = String::from_utf8_lossy(&out).into_owned();
            if text.chars().count() > 80 { format!("{}…", text.chars().take(80).collect::<String>()) } else { text }
        }
    }
}

impl FieldRule {
    fn check(&self, states: &[FieldState<'_>], fields: &[Field], errors: &mut Vec<FieldError>) {
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
