//! The compiled mapping: what runs for every record.
//!
//! [`compile`] turns a [`MappingSpec`] into an immutable [`Plan`], checking everything that needs the
//! whole spec (duplicate or overlapping targets, rules naming unknown targets, steps that cannot
//! apply to the declared type, defaults that fail their own validators) and collecting *every*
//! problem with its position. [`Plan::apply`] is pure and synchronous: bytes in, [`Outcome`] out.
//! A record that fails validation is an `Outcome`, never an `Err`.

pub mod extract;
mod output;
pub mod path;
pub mod pattern;
mod rules;
pub mod spec_tests;
pub mod transform;
pub mod types;
pub mod validate;
pub mod value;

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::diagnostic::{Diagnostic, Pos, Spanned};
use crate::spec::{FieldSpec, MappingSpec};
use extract::Extractor;
use output::OutputTree;
use rules::Rule;
use transform::Transform;
use types::{FieldType, Kind};
use validate::Validator;
use value::Val;

/// The mapping, compiled. Immutable, `Send + Sync`: build once, share by reference.
#[derive(Debug)]
pub struct Plan {
    name: String,
    extractor: Extractor,
    fields: Vec<Field>,
    rules: Vec<Rule>,
    output: OutputTree,
    key_field: Option<usize>,
    headers: Vec<String>,
    /// The longest output written so far: the capacity each new output starts with (capped by
    /// its input's length). A sizing hint only; it never changes what `apply` returns.
    output_capacity: AtomicUsize,
}

#[derive(Debug)]
struct Field {
    target: String,
    source: FieldSource,
    ty: FieldType,
    required: bool,
    default: Option<Value>,
    transforms: Vec<Transform>,
    validators: Vec<Validator>,
    sensitive: bool,
}

#[derive(Debug)]
enum FieldSource {
    /// A slot filled by the extractor, and the non-plain rest of the JSONPath, if any.
    /// A `multi` slot holds the array of every match of a wildcard path.
    Path { text: String, slot: usize, multi: bool, tail: Option<JsonPath> },
    /// Already transformed, type-checked and validated at compile time.
    Const(Value),
}

/// Where a record failed: reading it, a field's checks, or a cross-field rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Decode,
    Validate,
    Rule,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Validate => "validate",
            Stage::Rule => "rule",
        }
    }
}

/// One problem with one record: which output field, which rule or validator, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: Option<String>,
    pub rule: String,
    pub message: String,
}

/// What a transform or validator reports; the field name is added by the caller.
#[derive(Debug, PartialEq)]
pub struct StepError {
    pub rule: String,
    pub message: String,
}

/// The result of applying the plan to one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Mapped(Mapped),
    Failed(Failure),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// The output object as JSON bytes, fields in spec order.
    pub value: Vec<u8>,
    /// The Kafka key chosen by the spec's `key:` (string values as their text), if it names one.
    pub key: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub stage: Stage,
    pub errors: Vec<FieldError>,
}

impl Outcome {
    /// The output as a `Value` (tests and the embedded spec tests use this).
    pub fn ok_value(&self) -> Option<Value> {
        match self {
            Outcome::Mapped(m) => serde_json::from_slice(&m.value).ok(),
            Outcome::Failed(_) => None,
        }
    }

    pub fn errors(&self) -> &[FieldError] {
        match self {
            Outcome::Mapped(_) => &[],
            Outcome::Failed(f) => &f.errors,
        }
    }
}

/// A field's value during one record's evaluation.
#[derive(Debug)]
enum FieldState<'a> {
    Absent,
    Present(Val<'a>),
    /// It already has errors; rules do not pile more on it.
    Failed,
}

/// Mappings with up to this many distinct source paths (and fields) keep their per-record slots
/// (and field states) on the stack.
const INLINE_SLOTS: usize = 32;

impl Plan {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Source headers to copy onto ok records, as the spec's `headers:` lists them.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Maps one record value. Never panics, whatever the bytes.
    pub fn apply(&self, bytes: &[u8]) -> Outcome {
        // Slots on the stack when they fit (they do for typical mappings): no allocation per record.
        let mut inline: [Option<Val<'_>>; INLINE_SLOTS] = [const { None }; INLINE_SLOTS];
        let mut spilled = Vec::new();
        let slots = match self.extractor.slot_count() {
            n if n <= INLINE_SLOTS => &mut inline[..n],
            n => {
                spilled.resize(n, None);
                &mut spilled[..]
            }
        };
        if let Err(e) = self.extractor.scan_into(bytes, slots) {
            return Outcome::Failed(Failure {
                stage: Stage::Decode,
                errors: vec![FieldError {
                    field: None,
                    rule: "json".into(),
                    message: format!("value is not a usable JSON object: {e}"),
                }],
            });
        }
        let mut errors = Vec::new();
        // Field states on the stack too, for the same reason.
        let mut inline_states: [FieldState<'_>; INLINE_SLOTS] = [const { FieldState::Absent }; INLINE_SLOTS];
        let mut spilled_states = Vec::new();
        let states = match self.fields.len() {
            n if n <= INLINE_SLOTS => &mut inline_states[..n],
            n => {
                spilled_states.resize_with(n, || FieldState::Absent);
                &mut spilled_states[..]
            }
        };
        for (state, field) in states.iter_mut().zip(&self.fields) {
            field.evaluate(slots, state, &mut errors);
        }
        let states = &*states;
        let field_errors = !errors.is_empty();
        for rule in &self.rules {
            rule.check(states, &self.fields, &mut errors);
        }
        if !errors.is_empty() {
            let stage = if field_errors { Stage::Validate } else { Stage::Rule };
            return Outcome::Failed(Failure { stage, errors });
        }
        // One allocation, rarely a regrowth: outputs are smaller than their input, and most are
        // about as long as the longest seen so far. Sizing by the input alone wastes half of each
        // buffer on a typical mapping, and a buffer past the allocator's small-size caches costs
        // several times more to allocate and free.
        let longest = self.output_capacity.load(Ordering::Relaxed);
        let mut value = Vec::with_capacity(if longest == 0 { bytes.len() } else { longest.min(bytes.len()) });
        self.output.write(states, &mut value);
        if value.len() > longest {
            self.output_capacity.fetch_max(value.len(), Ordering::Relaxed);
        }
        let key = self.key_field.and_then(|i| match &states[i] {
            FieldState::Present(v) => Some(match v.as_str() {
                Some(s) => s.as_bytes().to_vec(),
                None => {
                    let mut json = Vec::new();
                    v.write_json(&mut json);
                    json
                }
            }),
            _ => None,
        });
        Outcome::Mapped(Mapped { value, key })
    }
}

impl Field {
    /// resolve → default → required → transforms → type check → validators, into `state`. The value is built in `state` and worked on there: see
    /// [`Transform::apply`] for why it is never moved.
    fn evaluate<'a>(&'a self, slots: &'a [Option<Val<'a>>], state: &mut FieldState<'a>, errors: &mut Vec<FieldError>) {
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

/// A mapping file that could not be turned into a plan.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read mapping file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("mapping file {path} is invalid:\n{}", render_all(path, diagnostics))]
    Invalid { path: String, diagnostics: Vec<Diagnostic> },
}

fn render_all(path: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| d.render(path)).collect::<Vec<_>>().join("\n")
}

/// Parses and compiles mapping text: every shape and meaning problem, or a plan.
pub fn load_str(text: &str) -> Result<(MappingSpec, Plan), Vec<Diagnostic>> {
    let (spec, mut diags) = crate::spec::parse(text);
    match compile(&spec) {
        Ok(plan) if diags.is_empty() => Ok((spec, plan)),
        Ok(_) => Err(diags),
        Err(more) => {
            diags.extend(more);
            diags.sort();
            diags.dedup();
            Err(diags)
        }
    }
}

/// Reads, parses and compiles a mapping file.
pub fn load_file(path: &std::path::Path) -> Result<(MappingSpec, Plan), LoadError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: shown.clone(), source })?;
    load_str(&text).map_err(|diagnostics| LoadError::Invalid { path: shown, diagnostics })
}

/// The version of the mapping format this program reads.
pub const SPEC_VERSION: i64 = 1;

/// Compiles a spec, reporting every problem found, sorted by position.
pub fn compile(spec: &MappingSpec) -> Result<Plan, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    if let Some(v) = &spec.version
        && v.value != SPEC_VERSION
    {
        diags.push(Diagnostic::new(
            v.pos,
            format!("unsupported `version: {}`; this program reads version {SPEC_VERSION}", v.value),
        ));
    }
    let mut extractor = Extractor::default();
    let mut fields = Vec::with_capacity(spec.fields.len());
    let mut targets: Vec<(Spanned<String>, usize)> = Vec::new();
    for field_spec in &spec.fields {
        if let Some(field) = compile_field(field_spec, &mut extractor, &mut diags) {
            targets.push((field_spec.target.clone().expect("compiled fields have a target"), fields.len()));
            fields.push(field);
        }
    }
    extractor.finish();
    check_targets(&spec.fields.iter().filter_map(|f| f.target.as_ref()).collect::<Vec<_>>(), &mut diags);
    if spec.fields.is_empty() && spec.name.is_some() {
        diags.push(Diagnostic::new(Pos::new(1, 1), "`fields` is empty; a mapping needs at least one field"));
    }
    // Targets of fields that failed to compile are still known: naming one is not a new error.
    let declared: Vec<&str> = spec.fields.iter().filter_map(|f| f.target.as_ref()).map(|t| t.as_str()).collect();
    let find = |name: &Spanned<String>, what: &str, diags: &mut Vec<Diagnostic>| -> Option<usize> {
        let found = targets.iter().find(|(t, _)| t.value == name.value).map(|(_, i)| *i);
        if found.is_none() && !declared.contains(&name.as_str()) {
            let known = targets.iter().map(|(t, _)| t.value.as_str());
            diags.push(Diagnostic::new(
                name.pos,
                format!(
                    "{what} names unknown target `{}`{}",
                    name.value,
                    crate::diagnostic::suggestion(&name.value, known)
                ),
            ));
        }
        found
    };
    let key_field = spec.key.as_ref().and_then(|key| {
        let i = find(key, "`key`", &mut diags)?;
        let f = &fields[i];
        let always_present = f.required || f.default.is_some() || matches!(f.source, FieldSource::Const(_));
        if !always_present {
            diags.push(Diagnostic::new(
                key.pos,
                format!("`key` target `{}` may be absent; make it `required: true` or give it a `default`", key.value),
            ));
        }
        if matches!(f.ty, FieldType::Object | FieldType::Array) {
            diags.push(Diagnostic::new(
                key.pos,
                format!("`key` target `{}` is an {}; a key must be a scalar", key.value, f.ty.name()),
            ));
        }
        Some(i)
    });
    for header in &spec.headers {
        if header.value.is_empty() {
            diags.push(Diagnostic::new(header.pos, "header names cannot be empty"));
        }
    }
    let rules = rules::compile(&spec.rules, |name, what, d| find(name, what, d), &mut diags);
    let output = OutputTree::build(fields.iter().map(|f| f.target.as_str()));
    if !diags.is_empty() {
        diags.sort();
        diags.dedup();
        return Err(diags);
    }
    Ok(Plan {
        name: spec.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
        extractor,
        fields,
        rules,
        output,
        key_field,
        headers: spec.headers.iter().map(|h| h.value.clone()).collect(),
        output_capacity: AtomicUsize::new(0),
    })
}

fn compile_field(spec: &FieldSpec, extractor: &mut Extractor, diags: &mut Vec<Diagnostic>) -> Option<Field> {
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

/// Duplicate targets, and targets nested inside another target (`a.b` and `a.b.c`).
/// Reports duplicate and overlapping targets among every declared target, including those of
/// fields with other errors, so every problem is listed at once. Each target is compared with the
/// first definition of each earlier target through maps of targets and of their dotted prefixes:
/// time grows with the number of targets times their depth, not with its square.
fn check_targets(targets: &[&Spanned<String>], diags: &mut Vec<Diagnostic>) {
    use std::collections::HashMap;
    let mut first: HashMap<&str, Pos> = HashMap::new();
    // A dotted prefix → the first definitions of the earlier targets inside it, in order.
    let mut inside: HashMap<&str, Vec<(&str, Pos)>> = HashMap::new();
    for later in targets {
        let b = later.value.as_str();
        let mut found: Vec<(Pos, String)> = Vec::new();
        if let Some(pos) = first.get(b) {
            found.push((*pos, format!("duplicate target `{b}` (first defined at {pos})")));
        }
        for (a, pos) in dotted_prefixes(b).filter_map(|p| first.get(p).map(|pos| (p, *pos))) {
            found.push((pos, overlap_message(a, b, pos)));
        }
        for (a, pos) in inside.get(b).into_iter().flatten() {
            found.push((*pos, overlap_message(a, b, *pos)));
        }
        found.sort_by_key(|(pos, _)| *pos);
        diags.extend(found.into_iter().map(|(_, message)| Diagnostic::new(later.pos, message)));
        if !first.contains_key(b) {
            first.insert(b, later.pos);
            for prefix in dotted_prefixes(b) {
                inside.entry(prefix).or_default().push((b, later.pos));
            }
        }
    }
}

fn overlap_message(a: &str, b: &str, a_pos: Pos) -> String {
    let (outer, inner) = if a.len() < b.len() { (a, b) } else { (b, a) };
    format!("target `{b}` overlaps `{a}` (defined at {a_pos}): `{inner}` would be inside the value of `{outer}`")
}

/// `a.b.c` → `a`, `a.b`: the targets whose value would contain this one.
fn dotted_prefixes(target: &str) -> impl Iterator<Item = &str> {
    target.match_indices('.').map(move |(i, _)| &target[..i])
}

#[cfg(test)]
mod tests;
