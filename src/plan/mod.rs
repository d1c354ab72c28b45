//! The compiled mapping: what runs for every record.
//!
//! [`compile`] turns a [`MappingSpec`] into an immutable [`Plan`], checking everything that needs the
//! whole spec (duplicate or overlapping targets, rules naming unknown targets, steps that cannot
//! apply to the declared type, defaults that fail their own validators) and collecting *every*
//! problem with its position. [`Plan::apply`] is pure and synchronous: bytes in, [`Outcome`] out.
//! A record that fails validation is an `Outcome`, never an `Err`.

pub mod extract;
mod field;
pub mod json;
pub mod outcome;
mod output;
pub mod path;
pub mod pattern;
mod rules;
pub mod spec_tests;
pub mod transform;
pub mod types;
pub mod validate;
pub mod value;

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::diagnostic::{Diagnostic, Pos, Spanned};
use crate::spec::MappingSpec;
use extract::Extractor;
use field::{Field, FieldSource, FieldState, compile_field};
use output::OutputTree;
use rules::Rule;
use types::FieldType;
use value::Val;

pub use outcome::{Failure, FieldError, Mapped, Outcome, Stage, StepError};

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
