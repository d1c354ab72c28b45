//! One compiled field: where its value comes from, its type and steps, and its evaluation for one
//! record (condition → resolve or compute → default → required → items → transforms → type check →
//! validators). A [`FieldSet`] is the fields of one scope: the record, or each item of an
//! `items:` field.

use std::borrow::Cow;

use serde_json::Value;
use serde_json_path::JsonPath;

use super::expr::{Budget, Compiled, Env, EvalError};
use super::extract::Extractor;
use super::outcome::FieldError;
use super::output::OutputTree;
use super::path::{self, Segment};
use super::transform::{Transform, kind_after};
use super::types::describe;
use super::types::{FieldType, Kind};
use super::validate::Validator;
use super::value::{FieldState, Rows, Val};
use crate::diagnostic::{Diagnostic, Diagnostics, Spanned};
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
    /// Per validator, the condition it applies under (empty when none has one).
    pub(super) validator_when: Vec<Option<Compiled>>,
    pub(super) sensitive: bool,
    /// `when:` — the field applies only when this holds.
    pub(super) when: Option<Compiled>,
    /// `items:` — each item of the array mapped by its own fields.
    pub(super) items: Option<Box<FieldSet>>,
    /// `output: false` fields are read, checked and usable by expressions, never written.
    pub(super) output: bool,
    /// Whether it reads other fields (or maps items), so it is evaluated after the plain fields.
    pub(super) later: bool,
}

/// What a field compiles with besides its spec: the parts that need the whole scope.
#[derive(Default)]
pub(super) struct Extras {
    pub(super) computed: Option<Compiled>,
    pub(super) inferred: Option<FieldType>,
    pub(super) when: Option<Compiled>,
    pub(super) validator_when: Vec<Option<Compiled>>,
    pub(super) items: Option<Box<FieldSet>>,
}

/// Where a field's source path goes: the record's extractor, or the paths read in each item.
pub(super) enum SourcePaths<'e> {
    Record(&'e mut Extractor),
    Item(&'e mut Vec<Vec<Segment>>),
}

impl SourcePaths<'_> {
    /// The slot of a plain prefix, and whether it collects every match of a wildcard.
    pub(super) fn add(&mut self, prefix: &[Segment]) -> (usize, bool) {
        match self {
            SourcePaths::Record(extractor) => {
                let slot = extractor.add(prefix);
                (slot, extractor.is_multi(slot))
            }
            SourcePaths::Item(paths) => match paths.iter().position(|p| p == prefix) {
                Some(slot) => (slot, false),
                None => {
                    paths.push(prefix.to_vec());
                    (paths.len() - 1, false)
                }
            },
        }
    }
}

/// The fields of one scope, compiled.
#[derive(Debug)]
pub(super) struct FieldSet {
    pub(super) fields: Vec<Field>,
    /// The fields that read other fields, in an order where each comes after what it reads.
    pub(super) later: Vec<usize>,
    pub(super) output: OutputTree,
    /// In an item scope: the plain paths read inside each item, by slot.
    pub(super) paths: Vec<Vec<Segment>>,
}

#[derive(Debug)]
pub(super) enum FieldSource {
    /// A slot filled by the extractor, and the non-plain rest of the JSONPath, if any.
    /// A `multi` slot holds the array of every match of a wildcard path.
    Path { text: String, slot: usize, multi: bool, tail: Option<JsonPath> },
    /// Already transformed, type-checked and validated at compile time.
    Const(Value),
    /// `expr:` — computed from other fields.
    Computed(Compiled),
}

/// The rule an expression's error is reported under: its own, or `budget` when the record ran
/// out of steps (whichever expression happened to take the last one).
pub(super) fn rule_of(e: &EvalError, rule: &'static str) -> &'static str {
    e.kind.rule().unwrap_or(rule)
}

/// Whether any field an expression reads has errors: then it is not evaluated, and the field's
/// own error stands alone.
pub(super) fn reads_failed(expr: &Compiled, fields: &[FieldState<'_>]) -> bool {
    expr.reads.iter().any(|&i| matches!(fields[i], FieldState::Failed))
}

impl Field {
    /// The field's expressions: its `expr`, its `when`, its validators' `when`s.
    pub(super) fn expressions(&self) -> impl Iterator<Item = &Compiled> {
        let computed = match &self.source {
            FieldSource::Computed(c) => Some(c),
            _ => None,
        };
        computed.into_iter().chain(self.when.as_ref()).chain(self.validator_when.iter().flatten())
    }

    pub(super) fn expressions_mut(&mut self) -> impl Iterator<Item = &mut Compiled> {
        let computed = match &mut self.source {
            FieldSource::Computed(c) => Some(c),
            _ => None,
        };
        computed.into_iter().chain(self.when.as_mut()).chain(self.validator_when.iter_mut().flatten())
    }

    /// resolve → default → required → transforms → type check → validators, into `state`, for a
    /// field that reads no other field. The value is built in `state` and worked on there: see
    /// [`Transform::apply`] for why it is never moved.
    pub(super) fn evaluate<'a>(
        &'a self,
        slots: &'a [Option<Val<'a>>],
        state: &mut FieldState<'a>,
        errors: &mut Vec<FieldError>,
    ) {
        if self.resolve(slots, state, errors)
            && let FieldState::Present(value) = state
            && !self.run_pipeline(value, errors, None)
        {
            *state = FieldState::Failed;
        }
    }

    /// Resolves the source into `state` (default and `required` included); `true` when the
    /// pipeline is to run on the value (a const already ran it at compile time).
    #[inline(always)]
    pub(super) fn resolve<'a>(
        &'a self,
        slots: &'a [Option<Val<'a>>],
        state: &mut FieldState<'a>,
        errors: &mut Vec<FieldError>,
    ) -> bool {
        // Already so; said again so the compiler knows the assignments below drop nothing and
        // writes each value straight into `state` (see `Captures::store_raw`).
        *state = FieldState::Absent;
        match &self.source {
            FieldSource::Const(v) => {
                *state = FieldState::Present(Val::borrowed(v));
                false
            }
            // Evaluated with the fields it reads, by `evaluate_later`.
            FieldSource::Computed(_) => false,
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
                            *state = self.error(errors, "type", message);
                            return false;
                        }
                    },
                    // A query below a string matches nothing.
                    (Some(_), Some(Val::Str(_) | Val::Raw(_) | Val::Written(_))) => {}
                    (Some(query), Some(Val::Json(root))) => match self.query_tail(query, root, text) {
                        Ok(Some(v)) => *state = FieldState::Present(v),
                        Ok(None) => {}
                        Err(message) => {
                            *state = self.error(errors, "type", message);
                            return false;
                        }
                    },
                    // Not reached: a path with a query after its prefix has no wildcard in the
                    // prefix, so its slot never collects a list. Answered correctly all the same.
                    (
                        Some(query),
                        Some(
                            list @ (Val::Matches(_) | Val::LentMatches(_) | Val::MappedItems(_) | Val::ScannedItems(_)),
                        ),
                    ) => match self.query_tail(query, &list.to_value(), text) {
                        Ok(Some(v)) => *state = FieldState::Present(Val::owned(v.into_value())),
                        Ok(None) => {}
                        Err(message) => {
                            *state = self.error(errors, "type", message);
                            return false;
                        }
                    },
                }
                // A match that is null counts as absent.
                if matches!(state, FieldState::Present(v) if v.is_null()) {
                    *state = FieldState::Absent;
                }
                if matches!(state, FieldState::Absent) { self.absent(text, state, errors) } else { true }
            }
        }
    }

    /// A missing source: the default, or error `required`, or nothing. `true` when a value is there.
    fn absent<'a>(&'a self, text: &str, state: &mut FieldState<'a>, errors: &mut Vec<FieldError>) -> bool {
        match &self.default {
            Some(default) => {
                *state = FieldState::Present(Val::borrowed(default));
                true
            }
            None if self.required => {
                *state =
                    self.error(errors, "required", format!("required field is missing: `{text}` is absent or null"));
                false
            }
            None => false,
        }
    }

    fn error<'a>(&self, errors: &mut Vec<FieldError>, rule: &str, message: String) -> FieldState<'a> {
        errors.push(FieldError { field: Some(self.target.clone()), rule: rule.into(), message });
        FieldState::Failed
    }

    /// A field that reads other fields, maps items, or belongs to an item: its condition, its
    /// value (computed, or resolved from `slots`), its items, its pipeline. `env` holds the
    /// fields evaluated so far; `state` never borrows from it.
    pub(super) fn evaluate_later<'a>(
        &'a self,
        env: Env<'_>,
        slots: Slots<'_, 'a>,
        state: &mut FieldState<'a>,
        errors: &mut Vec<FieldError>,
    ) {
        *state = FieldState::Absent;
        let mut locals = Vec::new();
        if let Some(when) = &self.when {
            if reads_failed(when, env.fields) {
                return;
            }
            match when.code.condition(env, &mut locals) {
                Ok(Some(true)) => {}
                Ok(_) => return,
                Err(e) => {
                    let message =
                        format!("the field's `when` could not be evaluated: {}", e.message(when.reads_sensitive));
                    *state = self.error(errors, rule_of(&e, "when"), message);
                    return;
                }
            }
        }
        let run = match (&self.source, slots) {
            (FieldSource::Computed(expr), _) => {
                if reads_failed(expr, env.fields) {
                    return;
                }
                match expr.code.value(env, &mut locals) {
                    Ok(Some(v)) => {
                        *state = FieldState::Present(v);
                        true
                    }
                    Ok(None) if self.required && self.default.is_none() => {
                        let why = expr.code.why_null(env, &mut locals, expr.reads_sensitive || self.sensitive);
                        let text = crate::diagnostic::one_line(&expr.text);
                        let message = match why {
                            Some(why) => format!("required field is missing: `{text}` gave null: {why}"),
                            None => format!("required field is missing: `{text}` gave null"),
                        };
                        *state = self.error(errors, "required", message);
                        return;
                    }
                    Ok(None) => self.absent("its expression gave null; the value", state, errors),
                    Err(e) => {
                        let message = format!("could not be computed: {}", e.message(expr.reads_sensitive));
                        *state = self.error(errors, rule_of(&e, "expr"), message);
                        return;
                    }
                }
            }
            (_, Slots::Record(record)) => self.resolve(record, state, errors),
            (FieldSource::Const(v), Slots::Item(_)) => {
                *state = FieldState::Present(Val::borrowed(v));
                false
            }
            // Item fields read plain paths: one match at most, copied out of the item's slots
            // (a borrow of the record, so copying is cheap).
            (FieldSource::Path { text, slot, .. }, Slots::Item(item)) => {
                match item[*slot].as_ref().filter(|v| !v.is_null()) {
                    Some(v) => {
                        *state = FieldState::Present(v.clone());
                        true
                    }
                    None => self.absent(text, state, errors),
                }
            }
        };
        if let (Some(set), FieldState::Present(array)) = (&self.items, &*state) {
            *state = self.map_items(set, array, env.budget, errors);
        }
        if run
            && let FieldState::Present(value) = state
            && !self.run_pipeline(value, errors, Some(env))
        {
            *state = FieldState::Failed;
        }
    }
}

/// Where a field's source slots are: the record's (borrowed for the whole record) or one item's.
#[derive(Clone, Copy)]
pub(super) enum Slots<'x, 'a> {
    Record(&'a [Option<Val<'a>>]),
    Item(&'x [Option<Val<'a>>]),
}

/// `state = Present(v.reborrow())`, written variant by variant: built whole and then stored, the
/// value's bytes after its tag (part of `serde_json::Value`'s layout) were copied through the stack
/// and stalled on store forwarding, once per field.
#[inline(always)]
fn present_borrowed<'a>(state: &mut FieldState<'a>, v: &'a Val<'a>) {
    match v {
        Val::Raw(s) => *state = FieldState::Present(Val::Raw(s)),
        Val::Str(s) => *state = FieldState::Present(Val::Str(Cow::Borrowed(s))),
        Val::Matches(items) => *state = FieldState::Present(Val::LentMatches(items)),
        Val::LentMatches(items) => *state = FieldState::Present(Val::LentMatches(items)),
        Val::Json(v) => *state = FieldState::Present(Val::Json(Cow::Borrowed(v))),
        Val::Written(n) => *state = FieldState::Present(Val::Written(n.clone())),
        Val::MappedItems(rows) => *state = FieldState::Present(Val::MappedItems(rows.clone())),
        Val::ScannedItems(array) => *state = FieldState::Present(Val::ScannedItems(array.clone())),
    }
}

/// Compiles one field in phases — target, type, `items`, `required`, steps, source, then its
/// literal (a `default` or `const`) through its own pipeline — reporting every problem; `None`
/// when any phase found one.
pub(super) fn compile_field(
    spec: &FieldSpec,
    paths: &mut SourcePaths<'_>,
    mut extras: Extras,
    diags: &mut Diagnostics,
) -> Option<Field> {
    let before = diags.len();
    let target = spec.target.as_ref()?;
    check_target(target, diags);
    let ty = field_type(spec, target, extras.inferred, diags)?;
    check_items(spec, target, ty, diags);
    let required = check_required(spec, target, diags);
    let transforms: Vec<Transform> = spec.transform.iter().filter_map(|s| Transform::compile(s, diags)).collect();
    if transforms.len() == spec.transform.len() {
        check_transform_flow(spec, &transforms, ty, diags);
    }
    let validators: Vec<Validator> = spec.validate.iter().filter_map(|s| Validator::compile(s, ty, diags)).collect();
    let in_item = matches!(paths, SourcePaths::Item(_));
    let source = compile_source(spec, target, paths, extras.computed.take(), extras.items.as_deref(), diags)?;
    if diags.len() > before {
        return None;
    }
    let later = in_item
        || matches!(source, FieldSource::Computed(_))
        || extras.when.is_some()
        || extras.items.is_some()
        || extras.validator_when.iter().any(Option::is_some);
    let mut field = Field {
        target: target.value.clone(),
        source,
        ty,
        required,
        default: None,
        transforms,
        validators,
        validator_when: if extras.validator_when.iter().any(Option::is_some) {
            extras.validator_when
        } else {
            Vec::new()
        },
        sensitive: spec.sensitive == Some(true),
        when: extras.when,
        items: extras.items,
        output: spec.output.as_ref().is_none_or(|o| o.value),
        later,
    };
    check_literal(&mut field, spec, diags)?;
    Some(field)
}

fn check_target(target: &Spanned<String>, diags: &mut Diagnostics) {
    if target.value.is_empty() || target.value.split('.').any(|s| s.trim().is_empty()) {
        diags.push(Diagnostic::new(
            target.pos,
            format!(
                "target `{}` has an empty segment; use names separated by dots, like `customer.email`",
                target.value
            ),
        ));
    }
}

/// The declared type; without one, what a `const`, an `expr` (its inferred type) or `items`
/// imply. `None` for an unknown type name: nothing after it can be checked.
fn field_type(
    spec: &FieldSpec,
    target: &Spanned<String>,
    inferred: Option<FieldType>,
    diags: &mut Diagnostics,
) -> Option<FieldType> {
    Some(match (&spec.kind, &spec.constant) {
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
        (None, None) if spec.expr.is_some() => inferred.unwrap_or(FieldType::Any),
        (None, None) if spec.items.is_some() => FieldType::Array,
        (None, None) => {
            diags.push(Diagnostic::new(spec.pos, format!("field `{}` is missing `type`", target.value)));
            FieldType::Any
        }
    })
}

/// A field with `items` is an array read from a `source`, with no transforms of its own.
fn check_items(spec: &FieldSpec, target: &Spanned<String>, ty: FieldType, diags: &mut Diagnostics) {
    let Some(items) = &spec.items else { return };
    if let Some(t) = &spec.kind
        && ty != FieldType::Array
    {
        diags.push(Diagnostic::new(
            t.pos,
            format!("field `{}` maps `items`, so it is an `array`, not `{}`", target.value, t.value),
        ));
    }
    if let Some(step) = spec.transform.first() {
        diags.push(Diagnostic::new(
            step.name.pos,
            "a field with `items` takes no transforms: transform each item's fields instead",
        ));
    }
    if spec.source.is_none() {
        diags.push(Diagnostic::new(
            items.pos,
            format!("field `{}` maps `items` of an array: give its `source`", target.value),
        ));
    }
}

/// `required`, refused together with a `default` (which makes the field never missing).
fn check_required(spec: &FieldSpec, target: &Spanned<String>, diags: &mut Diagnostics) -> bool {
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
    spec.required.as_ref().is_some_and(|r| r.value)
}

/// Where the value comes from: a path (registered in `paths`), a `const` or an `expr` (compiled
/// by the scope as `computed`; `None` when it did not compile, reported already).
fn compile_source(
    spec: &FieldSpec,
    target: &Spanned<String>,
    paths: &mut SourcePaths<'_>,
    computed: Option<Compiled>,
    items: Option<&FieldSet>,
    diags: &mut Diagnostics,
) -> Option<FieldSource> {
    if let (Some(_), Some(other)) =
        (&spec.expr, spec.source.as_ref().map(|s| s.pos).or(spec.constant.as_ref().map(|c| c.pos)))
    {
        diags.push(Diagnostic::new(
            other,
            format!("field `{}` has an `expr` and a `source` or `const`; keep one", target.value),
        ));
        return None;
    }
    if spec.expr.is_some() {
        return computed.map(FieldSource::Computed);
    }
    match (&spec.source, &spec.constant) {
        (Some(src), None) => path_source(src, paths, items, diags),
        (None, Some(c)) => {
            if let Some(r) = &spec.required {
                diags.push(Diagnostic::new(r.pos, "a `const` field is always present; `required` does not apply"));
            }
            if let Some(d) = &spec.default {
                diags.push(Diagnostic::new(d.pos, "a `const` field is always present; `default` does not apply"));
            }
            match c.to_json() {
                Ok(v) => Some(FieldSource::Const(v)),
                Err(d) => {
                    diags.push(d);
                    None
                }
            }
        }
        (Some(src), Some(_)) => {
            diags.push(Diagnostic::new(
                src.pos,
                format!("field `{}` has both `source` and `const`; keep one", target.value),
            ));
            None
        }
        (None, None) => {
            diags.push(Diagnostic::new(
                spec.pos,
                format!("field `{}` needs a `source` (a JSONPath), a `const` or an `expr`", target.value),
            ));
            None
        }
    }
}

/// A JSONPath source: its prefix registered with the scanner (an `items:` array item by item),
/// its tail kept for the query after it.
fn path_source(
    src: &Spanned<String>,
    paths: &mut SourcePaths<'_>,
    items: Option<&FieldSet>,
    diags: &mut Diagnostics,
) -> Option<FieldSource> {
    let in_item = matches!(paths, SourcePaths::Item(_));
    match path::parse_source(&src.value) {
        Ok(p) if in_item && (p.tail.is_some() || p.prefix.iter().any(Segment::is_wildcard)) => {
            diags.push(Diagnostic::new(
                src.pos,
                format!(
                    "inside `items`, a source is a plain path into the item, like `$.sku` or `$.price.amount`; `{}` is not",
                    src.value
                ),
            ));
            None
        }
        Ok(p) => {
            let (slot, multi) = match (&mut *paths, items) {
                // The record's array is scanned item by item with the item fields' paths.
                (SourcePaths::Record(extractor), Some(set))
                    if p.tail.is_none() && !p.prefix.iter().any(Segment::is_wildcard) =>
                {
                    (extractor.add_items(&p.prefix, &set.paths), false)
                }
                _ => paths.add(&p.prefix),
            };
            Some(FieldSource::Path { text: src.value.clone(), slot, multi, tail: p.tail })
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                src.pos_at(e.offset),
                format!("invalid JSONPath `{}`: {}", src.value, e.message),
            ));
            None
        }
    }
}

/// A default or const must survive the field's own pipeline; it runs now so that a bad one is a
/// compile error at its position, not a failure on every record that lacks the field. A const is
/// stored already transformed; a default flows through the transforms at run time like any
/// resolved value, so it is kept as written.
fn check_literal(field: &mut Field, spec: &FieldSpec, diags: &mut Diagnostics) -> Option<()> {
    let (value, pos, what) = match (&field.source, &spec.default) {
        (FieldSource::Const(v), _) => (v.clone(), spec.constant.as_ref().map(|c| c.pos), "const"),
        (_, Some(d)) => match d.to_json() {
            Ok(v) => (v, Some(d.pos), "default"),
            Err(e) => {
                diags.push(e);
                return None;
            }
        },
        _ => return Some(()),
    };
    let pos = pos.unwrap_or(spec.pos);
    if value.is_null() {
        diags.push(Diagnostic::new(pos, format!("`{what}` cannot be null")));
        return None;
    }
    let mut errors = Vec::new();
    let mut checked = Val::borrowed(&value);
    let checked = field.run_pipeline(&mut checked, &mut errors, None).then(|| checked.into_value());
    for e in &errors {
        diags.push(Diagnostic::new(pos, format!("`{what}` fails its own field's checks ({}): {}", e.rule, e.message)));
    }
    match checked? {
        v if what == "const" => field.source = FieldSource::Const(v),
        _ => field.default = Some(value),
    }
    Some(())
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
    fn run_pipeline<'a>(&'a self, value: &mut Val<'a>, errors: &mut Vec<FieldError>, env: Option<Env<'_>>) -> bool {
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
        for (k, validator) in self.validators.iter().enumerate() {
            if let Some(Some(when)) = self.validator_when.get(k) {
                // Without the other fields (a default checked at compile time) a conditional
                // validator cannot be judged; at run time it applies only when its condition holds.
                let Some(env) = env else { continue };
                if reads_failed(when, env.fields) {
                    continue;
                }
                match when.code.condition(env, &mut Vec::new()) {
                    Ok(Some(true)) => {}
                    Ok(_) => continue,
                    Err(e) => {
                        errors.push(FieldError {
                            field: Some(self.target.clone()),
                            rule: rule_of(&e, "when").into(),
                            message: format!(
                                "the `when` of validator `{}` could not be evaluated: {}",
                                validator.name(),
                                e.message(when.reads_sensitive)
                            ),
                        });
                        continue;
                    }
                }
            }
            if let Err(e) = validator.check(value, self.sensitive) {
                errors.push(FieldError { field: Some(self.target.clone()), rule: e.rule, message: e.message });
            }
        }
        errors.len() == before
    }

    /// Maps each item of an array with the item fields; an item's error is named after it
    /// (`items[1].quantity`). Any error fails the whole field.
    fn map_items<'a>(
        &'a self,
        set: &'a FieldSet,
        array: &Val<'a>,
        budget: &Budget,
        errors: &mut Vec<FieldError>,
    ) -> FieldState<'a> {
        match self.item_slots(set, array) {
            Ok((len, slots)) => self.map_rows(set, len, &slots, budget, errors),
            Err(message) => self.error(errors, "type", message),
        }
    }

    /// The item count and, item after item, each item's slots (one per path of `set`): those the
    /// scanner filled, or looked up in the array's items.
    pub(super) fn item_slots<'s, 'a>(&self, set: &FieldSet, array: &'s Val<'a>) -> Result<ItemSlots<'s, 'a>, String> {
        let items: Vec<Val<'a>> = match array {
            Val::ScannedItems(scanned) => return Ok((scanned.len, Cow::Borrowed(&scanned.slots[..]))),
            Val::Json(Cow::Borrowed(Value::Array(items))) => items.iter().map(Val::borrowed).collect(),
            Val::Json(Cow::Owned(Value::Array(items))) => items.iter().map(|v| Val::owned(v.clone())).collect(),
            Val::LentMatches(items) => items.iter().map(|i| i.as_val()).collect(),
            Val::Matches(items) => items.iter().map(|i| Val::owned(i.as_val().into_value())).collect(),
            other => return Err(format!("`items` maps an array, found {}", describe(other, self.sensitive))),
        };
        let slots = items.iter().flat_map(|item| set.paths.iter().map(|p| lookup_in_item(item, p))).collect();
        Ok((items.len(), Cow::Owned(slots)))
    }

    /// Maps `len` items whose slots (one per path of `set`) follow one another in `slots`.
    fn map_rows<'a>(
        &'a self,
        set: &'a FieldSet,
        len: usize,
        slots: &[Option<Val<'a>>],
        budget: &Budget,
        errors: &mut Vec<FieldError>,
    ) -> FieldState<'a> {
        let width = set.paths.len();
        debug_assert_eq!(slots.len(), len * width);
        let mut json = Vec::with_capacity(2 + 64 * len);
        json.push(b'[');
        let mut rows = Vec::with_capacity(len);
        let mut failed = false;
        for index in 0..len {
            let slots = &slots[index * width..(index + 1) * width];
            let mut states: Vec<FieldState<'a>> = (0..set.fields.len()).map(|_| FieldState::Absent).collect();
            let before = errors.len();
            set.evaluate(Slots::Item(slots), &mut states, budget, errors);
            if errors.len() > before {
                failed = true;
                for e in &mut errors[before..] {
                    let inner = e.field.as_deref().unwrap_or_default();
                    e.field = Some(format!("{}[{index}].{inner}", self.target));
                }
                continue;
            }
            if index > 0 {
                json.push(b',');
            }
            set.output.write(&states, &mut json);
            rows.push(states.into_boxed_slice());
        }
        if failed {
            return FieldState::Failed;
        }
        json.push(b']');
        FieldState::Present(Val::MappedItems(Box::new(Rows { json, rows })))
    }
}

/// How many items an array has, and their slots one item after the other.
type ItemSlots<'s, 'a> = (usize, Cow<'s, [Option<Val<'a>>]>);

/// The value at a plain path inside one item (the item itself for `$`).
fn lookup_in_item<'a>(item: &Val<'a>, path: &[Segment]) -> Option<Val<'a>> {
    if path.is_empty() {
        return Some(item.clone());
    }
    match *item {
        Val::Json(Cow::Borrowed(v)) => lookup_plain(v, path).map(Val::borrowed),
        Val::Json(Cow::Owned(ref v)) => lookup_plain(v, path).map(|v| Val::owned(v.clone())),
        _ => None,
    }
}

/// A plain path (names and indexes; item paths have no wildcards) inside a value, without the
/// list of matches `lookup_all` builds.
fn lookup_plain<'v>(mut value: &'v Value, path: &[Segment]) -> Option<&'v Value> {
    for segment in path {
        value = match (segment, value) {
            (Segment::Key(k), Value::Object(map)) => map.get(&**k)?,
            (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

impl FieldSet {
    /// Evaluates the fields of one scope: those that read no other field first, in spec order,
    /// then the others in dependency order. Item scopes have no first group: every item field
    /// copies its value out of the item's slots.
    pub(super) fn evaluate<'a>(
        &'a self,
        slots: Slots<'_, 'a>,
        states: &mut [FieldState<'a>],
        budget: &Budget,
        errors: &mut Vec<FieldError>,
    ) {
        if let Slots::Record(record) = slots {
            for (state, field) in states.iter_mut().zip(&self.fields) {
                if !field.later {
                    field.evaluate(record, state, errors);
                }
            }
        }
        for &i in &self.later {
            let mut state = FieldState::Absent;
            let env_slots: &[Option<Val<'a>>] = match slots {
                Slots::Record(r) => r,
                Slots::Item(x) => x,
            };
            self.fields[i].evaluate_later(Env { fields: states, slots: env_slots, budget }, slots, &mut state, errors);
            states[i] = state;
        }
    }
}

/// Follows the static kind of the value through the transforms and against the declared type.
fn check_transform_flow(spec: &FieldSpec, transforms: &[Transform], ty: FieldType, diags: &mut Diagnostics) {
    let kind = match &spec.constant {
        Some(c) => c.to_json().map(|v| Kind::of(&v)).unwrap_or(Kind::Unknown),
        None => Kind::Unknown,
    };
    let kind = match kind_after(kind, transforms) {
        Ok(kind) => kind,
        Err((i, kind)) => {
            let (transform, step) = (&transforms[i], &spec.transform[i]);
            let after = i.checked_sub(1).map(|p| format!(" (the result of `{}`)", transforms[p].name()));
            diags.push(Diagnostic::new(
                step.name.pos,
                format!(
                    "transform `{}` takes {}, but receives {}{}",
                    transform.name(),
                    transform.input_description(),
                    kind.name(),
                    after.unwrap_or_default()
                ),
            ));
            return;
        }
    };
    if let Some(last) = transforms.last()
        && !ty.accepts(kind)
    {
        let pos = spec.kind.as_ref().map_or(spec.pos, |k| k.pos);
        diags.push(Diagnostic::new(
            pos,
            format!("type `{}` cannot hold {}, which is what `{}` produces", ty.name(), kind.name(), last.name()),
        ));
    }
}
