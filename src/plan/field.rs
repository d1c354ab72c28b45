//! One compiled field: where its value comes from, its type and steps, and its evaluation for one
//! record (resolve → default → required → transforms → type check → validators).

use std::borrow::Cow;

use serde_json::Value;
use serde_json_path::JsonPath;

use super::extract::Extractor;
use super::outcome::FieldError;
use super::path;
use super::transform::Transform;
use super::types::{FieldType, Kind};
use super::validate::Validator;
use super::value::Val;
use crate::diagnostic::Diagnostic;
use crate::spec::FieldSpec;

#[derive(Debug)]
pub(super) struct Field {
    pub(super) target: String,
    pub(super) source: FieldSource,
    pub(super) ty: FieldType,
    pub(super) required: bool,
    pub(super) default: Option<Value>,
    pub(super) transforms: Vec<Transform>,
    pub(super) validators: Vec<Validator>,
    pub(super) sensitive: bool,
}

#[derive(Debug)]
pub(super) enum FieldSource {
    /// A slot filled by the extractor, and the non-plain rest of the JSONPath, if any.
    /// A `multi` slot holds the array of every match of a wildcard path.
    Path { text: String, slot: usize, multi: bool, tail: Option<JsonPath> },
    /// Already transformed, type-checked and validated at compile time.
    Const(Value),
}

/// A field's value during one record's evaluation.
#[derive(Debug)]
pub(super) enum FieldState<'a> {
    Absent,
    Present(Val<'a>),
    /// It already has errors; rules do not pile more on it.
    Failed,
}

impl Field {
    /// resolve → default → required → transforms → type check → validators, into `state`. The value is built in `state` and worked on there: see
    /// [`Transform::apply`] for why it is never moved.
    pub(super) fn evaluate<'a>(
        &'a self,
        slots: &'a [Option<Val<'a>>],
        state: &mut FieldState<'a>,
        errors: &mut Vec<FieldError>,
    ) {
        // Already so; said again so the compiler knows the assignments below drop nothing and
        // writes each value straight into `state` (see `Sink::store_raw`).
        *state = FieldState::Absent;
        let error = |errors: &mut Vec<FieldError>, rule: &str, message: String| {
            errors.push(FieldError { field: Some(self.target.clone()), rule: rule.into(), message });
            FieldState::Failed
        };
        match &self.source {
            FieldSource::Const(v) => {
                *state = FieldState::Present(Val::borrowed(v));
                return;
            }
            FieldSource::Path { text, slot, multi, tail } => {
                let found = slots[*slot].as_ref().filter(|v| !v.is_null());
                match (tail, found) {
                    (_, None) => {}
                    (None, Some(v)) if !*multi => present_borrowed(state, v),
                    // A multi slot already is the array of matches.
                    (None, Some(v)) if self.ty == FieldType::Array => present_borrowed(state, v),
                    (None, Some(v)) => match self.single_match(v.items().unwrap_or_default().iter(), text) {
                        Ok(Some(item)) => *state = FieldState::Present(item.as_val()),
                        Ok(None) => {}
                        Err(message) => {
                            *state = error(errors, "type", message);
                            return;
                        }
                    },
                    // A query below a string matches nothing.
                    (Some(_), Some(Val::Str(_) | Val::Raw(_))) => {}
                    (Some(query), Some(Val::Other(root))) => match self.query_tail(query, root, text) {
                        Ok(Some(v)) => *state = FieldState::Present(v),
                        Ok(None) => {}
                        Err(message) => {
                            *state = error(errors, "type", message);
                            return;
                        }
                    },
                    // Not reached: a path with a query after its prefix has no wildcard in the
                    // prefix, so its slot never collects a list. Answered correctly all the same.
                    (Some(query), Some(list @ (Val::List(_) | Val::Items(_)))) => {
                        match self.query_tail(query, &list.to_value(), text) {
                            Ok(Some(v)) => *state = FieldState::Present(Val::owned(v.into_value())),
                            Ok(None) => {}
                            Err(message) => {
                                *state = error(errors, "type", message);
                                return;
                            }
                        }
                    }
                }
                // A match that is null counts as absent.
                if matches!(state, FieldState::Present(v) if v.is_null()) {
                    *state = FieldState::Absent;
                }
                if matches!(state, FieldState::Absent) {
                    match &self.default {
                        Some(default) => *state = FieldState::Present(Val::borrowed(default)),
                        None if self.required => {
                            *state = error(
                                errors,
                                "required",
                                format!("required field is missing: `{text}` is absent or null"),
                            );
                            return;
                        }
                        None => return,
                    }
                }
            }
        }
        if let FieldState::Present(value) = state
            && !self.run_pipeline(value, errors)
        {
            *state = FieldState::Failed;
        }
    }
}

/// `state = Present(v.reborrow())`, written variant by variant: built whole and then stored, the
/// value's bytes after its tag (part of `serde_json::Value`'s layout) were copied through the stack
/// and stalled on store forwarding, once per field.
#[inline(always)]
fn present_borrowed<'a>(state: &mut FieldState<'a>, v: &'a Val<'a>) {
    match v {
        Val::Raw(s) => *state = FieldState::Present(Val::Raw(s)),
        Val::Str(s) => *state = FieldState::Present(Val::Str(Cow::Borrowed(s))),
        Val::List(items) => *state = FieldState::Present(Val::Items(items)),
        Val::Items(items) => *state = FieldState::Present(Val::Items(items)),
        Val::Other(v) => *state = FieldState::Present(Val::Other(Cow::Borrowed(v))),
    }
}

pub(super) fn compile_field(spec: &FieldSpec, extractor: &mut Extractor, diags: &mut Vec<Diagnostic>) -> Option<Field> {
    let before = diags.len();
    let target = spec.target.as_ref()?;
    if target.value.is_empty() || target.value.split('.').any(|s| s.trim().is_empty()) {
        diags.push(Diagnostic::new(
            target.pos,
            format!(
                "target `{}` has an empty segment; use names separated by dots, like `customer.email`",
                target.value
            ),
        ));
    }
    let ty = match (&spec.kind, &spec.constant) {
        (Some(t), _) => match FieldType::from_name(&t.value) {
            Some(ty) => ty,
            None => {
                diags.push(Diagnostic::new(
                    t.pos,
                    format!(
                        "unknown type `{}`{}; types: {}",
                        t.value,
                        crate::diagnostic::suggestion(&t.value, FieldType::NAMES.iter().copied()),
                        FieldType::NAMES.join(", ")
                    ),
                ));
                return None;
            }
        },
        (None, Some(_)) => FieldType::Any,
        (None, None) => {
            diags.push(Diagnostic::new(spec.pos, format!("field `{}` is missing `type`", target.value)));
            FieldType::Any
        }
    };
    let required = spec.required.as_ref().is_some_and(|r| r.value);
    if let (Some(r), Some(_)) = (&spec.required, &spec.default)
        && r.value
    {
        diags.push(Diagnostic::new(
            r.pos,
            format!(
                "field `{}` is `required` and has a `default`; a default makes it never missing, so keep one",
                target.value
            ),
        ));
    }

    let transforms: Vec<Transform> = spec.transform.iter().filter_map(|s| Transform::compile(s, diags)).collect();
    if transforms.len() == spec.transform.len() {
        check_transform_flow(spec, &transforms, ty, diags);
    }
    let validators: Vec<Validator> = spec.validate.iter().filter_map(|s| Validator::compile(s, ty, diags)).collect();

    let source = match (&spec.source, &spec.constant) {
        (Some(src), None) => match path::parse_source(&src.value) {
            Ok(p) => {
                let slot = extractor.add(&p.prefix);
                FieldSource::Path { text: src.value.clone(), slot, multi: extractor.is_multi(slot), tail: p.tail }
            }
            Err(e) => {
                diags.push(Diagnostic::new(
                    src.pos.shifted(e.offset),
                    format!("invalid JSONPath `{}`: {}", src.value, e.message),
                ));
                return None;
            }
        },
        (None, Some(c)) => {
            if let Some(r) = &spec.required {
                diags.push(Diagnostic::new(r.pos, "a `const` field is always present; `required` does not apply"));
            }
            if let Some(d) = &spec.default {
                diags.push(Diagnostic::new(d.pos, "a `const` field is always present; `default` does not apply"));
            }
            let value = match c.to_json() {
                Ok(v) => v,
                Err(d) => {
                    diags.push(d);
                    return None;
                }
            };
            FieldSource::Const(value)
        }
        (Some(src), Some(_)) => {
            diags.push(Diagnostic::new(
                src.pos,
                format!("field `{}` has both `source` and `const`; keep one", target.value),
            ));
            return None;
        }
        (None, None) => {
            diags.push(Diagnostic::new(
                spec.pos,
                format!("field `{}` needs a `source` (a JSONPath) or a `const`", target.value),
            ));
            return None;
        }
    };
    if diags.len() > before {
        return None;
    }
    let mut field = Field {
        target: target.value.clone(),
        source,
        ty,
        required,
        default: None,
        transforms,
        validators,
        sensitive: spec.sensitive,
    };
    // A default or const must survive the field's own pipeline; run it now so a bad one is a
    // compile error at its position, not a failure on every record that lacks the field.
    let literal = match (&field.source, &spec.default) {
        (FieldSource::Const(v), _) => Some((v.clone(), spec.constant.as_ref().map(|c| c.pos), "const")),
        (_, Some(d)) => match d.to_json() {
            Ok(v) => Some((v, Some(d.pos), "default")),
            Err(e) => {
                diags.push(e);
                return None;
            }
        },
        _ => None,
    };
    if let Some((value, pos, what)) = literal {
        let pos = pos.unwrap_or(spec.pos);
        if value.is_null() {
            diags.push(Diagnostic::new(pos, format!("`{what}` cannot be null")));
            return None;
        }
        let mut errors = Vec::new();
        let mut checked = Val::borrowed(&value);
        let checked = field.run_pipeline(&mut checked, &mut errors).then(|| checked.into_value());
        for e in &errors {
            diags.push(Diagnostic::new(
                pos,
                format!("`{what}` fails its own field's checks ({}): {}", e.rule, e.message),
            ));
        }
        match checked {
            None => return None,
            // A const is stored already transformed; a default flows through the transforms
            // at run time like any resolved value, so it is kept as written.
            Some(v) if what == "const" => field.source = FieldSource::Const(v),
            Some(_) => field.default = Some(value),
        }
    }
    Some(field)
}

impl Field {
    /// Runs the query after a source's prefix on the prefix's value: every match for an array
    /// field, else the one match.
    fn query_tail<'v>(&self, query: &JsonPath, root: &'v Value, text: &str) -> Result<Option<Val<'v>>, String> {
        let nodes = query.query(root).all();
        if self.ty == FieldType::Array {
            Ok((!nodes.is_empty()).then(|| Val::owned(Value::Array(nodes.into_iter().cloned().collect()))))
        } else {
            Ok(self.single_match(nodes.into_iter(), text)?.map(Val::borrowed))
        }
    }

    /// The one value a non-array field takes from a list of matches.
    fn single_match<T>(&self, mut nodes: impl ExactSizeIterator<Item = T>, text: &str) -> Result<Option<T>, String> {
        match nodes.len() {
            0 | 1 => Ok(nodes.next()),
            n => Err(format!(
                "source `{text}` matched {n} values, but a field of type `{}` takes one (declare `type: array` to collect them)",
                self.ty.name()
            )),
        }
    }

    /// Runs the transforms, the type check and the validators on a resolved `value` in place (also
    /// for defaults and consts at compile time); `false` if any failed (their errors are in `errors`).
    fn run_pipeline<'a>(&'a self, value: &mut Val<'a>, errors: &mut Vec<FieldError>) -> bool {
        for transform in &self.transforms {
            if let Err(e) = transform.apply(value, self.sensitive) {
                errors.push(FieldError { field: Some(self.target.clone()), rule: e.rule, message: e.message });
                return false;
            }
        }
        if let Err(message) = self.ty.check(value, self.sensitive) {
            errors.push(FieldError { field: Some(self.target.clone()), rule: "type".into(), message });
            return false;
        }
        let before = errors.len();
        for validator in &self.validators {
            if let Err(e) = validator.check(value, self.sensitive) {
                errors.push(FieldError { field: Some(self.target.clone()), rule: e.rule, message: e.message });
            }
        }
        errors.len() == before
    }
}

/// Follows the static kind of the value through the transforms and against the declared type.
fn check_transform_flow(spec: &FieldSpec, transforms: &[Transform], ty: FieldType, diags: &mut Vec<Diagnostic>) {
    let mut kind = match &spec.constant {
        Some(c) => c.to_json().map(|v| Kind::of(&v)).unwrap_or(Kind::Unknown),
        None => Kind::Unknown,
    };
    let mut produced_by: Option<&str> = None;
    for (transform, step) in transforms.iter().zip(&spec.transform) {
        if !transform.accepts(kind) {
            let after = produced_by.map(|p| format!(" (the result of `{p}`)")).unwrap_or_default();
            diags.push(Diagnostic::new(
                step.name.pos,
                format!(
                    "transform `{}` takes {}, but receives {}{after}",
                    transform.name(),
                    transform.input_description(),
                    kind.name()
                ),
            ));
            return;
        }
        kind = transform.output(kind);
        produced_by = Some(transform.name());
    }
    if let Some(last) = produced_by
        && !ty.accepts(kind)
    {
        let pos = spec.kind.as_ref().map_or(spec.pos, |k| k.pos);
        diags.push(Diagnostic::new(
            pos,
            format!("type `{}` cannot hold {}, which is what `{last}` produces", ty.name(), kind.name()),
        ));
    }
}
