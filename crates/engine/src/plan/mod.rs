//! The compiled mapping: what runs for every record.
//!
//! [`compile`] turns a [`MappingSpec`] into an immutable [`Plan`], checking everything that needs the
//! whole spec (duplicate or overlapping targets, rules naming unknown targets, steps that cannot
//! apply to the declared type, defaults that fail their own validators) and collecting *every*
//! problem with its position. [`Plan::apply`] is pure and synchronous: bytes in, [`Outcome`] out.
//! A record that fails validation is an `Outcome`, never an `Err`.
//!
//! Expressions ([`expr`]) tie fields together: computed values, conditions, business rules and
//! `drop`. `scope` compiles the fields of one scope (the record, or each item of an `items:`
//! field) with them and orders the fields that read others.

pub mod catalogue;
mod codes;
pub mod dates;
mod delimit;
pub mod document;
pub mod explain;
pub mod expr;
pub mod extract;
mod field;
pub mod json;
pub mod mapping_tests;
pub mod members;
pub mod numbers;
pub mod outcome;
mod output;
pub mod outputs;
pub mod path;
pub mod pattern;
mod rules;
pub mod schema_check;
mod scope;
pub mod shape;
pub mod transform;
pub mod types;
pub mod validate;
pub mod value;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::diagnostic::{Diagnostic, Diagnostics, Pos, Spanned};
use crate::spec::{LookupSpec, MappingSpec};
use document::Doc;
use expr::{Budget, Compiled, Env, LookupTable, Ty};
use extract::Extractor;
use field::{FieldSet, FieldSource, Slots, SourcePaths};
use json::CodeTable;
use outcome::BUDGET_RULE;
use rules::Rule;
use scope::{Context, ScopeNames, compile_condition, compile_scope};
use types::FieldType;
use value::{FieldState, Scratch, Val};

pub use outcome::{
    Delivery, EventAttributes, Failure, FieldError, Mapped, Outcome, Stage, StepError, distinct_field_rules, field_rule,
};
pub use outputs::{CloudEventsMode, OutputEntry, OutputTrace};

/// The mapping, compiled. Immutable, `Send + Sync`: build once, share by reference.
#[derive(Debug)]
pub struct Plan {
    name: String,
    /// Which text of the mapping this is: the S3 version id when it came from a versioned
    /// bucket, else the first 12 hex digits of the SHA-256 of its text. Empty when compiled from
    /// a spec alone.
    version: String,
    extractor: Extractor,
    /// `drop:` — records where it holds are skipped before any field is read.
    drop: Option<Compiled>,
    /// `dedupe_key:` — the record's stable id, read from the record before any field.
    dedupe: Option<Compiled>,
    set: FieldSet,
    rules: Vec<Rule>,
    key_field: Option<usize>,
    headers: Vec<String>,
    /// `output:` — how ok records are written.
    output: Output,
    /// `outputs:` — where mapped records go by content (none: the ok topic).
    outputs: Vec<OutputEntry>,
    /// The steps one record's expressions may take ([`expr::Budget`]).
    step_limit: u64,
    /// Things that compile but are surely mistakes; `validate-mapping` shows them.
    warnings: Vec<Diagnostic>,
    /// The longest output written so far: the capacity each new output starts with (capped by
    /// its input's length). A sizing hint only; it never changes what `apply` returns.
    output_capacity: AtomicUsize,
}

/// Runs `map` and turns a panic into a failed record: the engine never unwinds into a batch.
/// The plan is read-only while records are mapped (its one atomic is a sizing hint), so a panic
/// leaves nothing half-written for the next record.
fn guarded(map: impl FnOnce() -> Outcome) -> Outcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(map)) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Outcome::Failed(Failure {
                stage: Stage::Internal,
                errors: vec![FieldError {
                    field: None,
                    rule: "panic".into(),
                    message: format!(
                        "the mapping engine failed on this record ({why}); please report it with the record"
                    ),
                }],
                id: None,
            })
        }
    }
}

/// Mappings with up to this many distinct source paths (and fields) keep their per-record slots
/// (and field states) on the stack.
const INLINE_SLOTS: usize = 32;

impl Plan {
    /// The mapping's `name:`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which text of the mapping this is (see [`Plan::with_version`]); a plan loaded from text
    /// has the text's SHA-256 prefix.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The mapping's identity as output records carry it: `name@version`.
    pub fn identity(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The same plan, identified by another version (an S3 object's version id).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Source headers to copy onto ok records, as the spec's `headers:` lists them.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// How ok records are written (`output:`).
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// `outputs:`, in order: where mapped records go by content. Empty: every mapped record goes
    /// to the ok topic of the settings.
    pub fn outputs(&self) -> &[OutputEntry] {
        &self.outputs
    }

    /// Every topic the mapping's outputs may write to, each once, in order of declaration.
    pub fn output_topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = Vec::new();
        for topic in self.outputs.iter().flat_map(|o| o.topics()) {
            if !topics.contains(&topic.as_str()) {
                topics.push(topic);
            }
        }
        topics
    }

    /// Located warnings: parts of the mapping that compile but are surely mistakes.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The targets whose values are sensitive (an `items:` field whose item fields are, as a
    /// whole): tools that show output values hide theirs, as the fail envelope does.
    pub fn sensitive_targets(&self) -> Vec<&str> {
        fn any_sensitive(set: &FieldSet) -> bool {
            set.fields.iter().any(|f| f.sensitive || f.items.as_deref().is_some_and(any_sensitive))
        }
        let sensitive = |f: &&field::Field| f.sensitive || f.items.as_deref().is_some_and(any_sensitive);
        self.set.fields.iter().filter(sensitive).map(|f| f.target.as_str()).collect()
    }

    /// How many fields the mapping has (its top-level `fields:`).
    pub fn field_count(&self) -> usize {
        self.set.fields.len()
    }

    /// Replaces the values of sensitive targets in a mapped output, for tools that show an output
    /// to a person (`explain`, a failing embedded test) rather than deliver it.
    pub fn hide_sensitive(&self, value: &mut serde_json::Value) {
        for target in self.sensitive_targets() {
            let mut at = &mut *value;
            let mut parts = target.split('.').peekable();
            while let Some(part) = parts.next() {
                let Some(next) = at.as_object_mut().and_then(|o| o.get_mut(part)) else { break };
                if parts.peek().is_none() {
                    *next = serde_json::Value::String("(value hidden: sensitive field)".into());
                    break;
                }
                at = next;
            }
        }
    }

    /// What the plan does with one record, field by field (`lambda-stream explain`): the outcome
    /// and every field's final state from the same evaluation as [`apply`](Self::apply), the
    /// steps between replayed on the values the fields resolved.
    pub fn explain(&self, bytes: &[u8]) -> explain::Explanation {
        self.explain_with(self.apply(bytes), |slots| {
            self.extractor.scan_into(bytes, slots).map_err(|e| format!("the value is not a usable JSON object: {e}"))
        })
    }

    /// [`explain`](Self::explain) for a record decoded from a binary format.
    pub fn explain_document(&self, doc: &Doc<'_>, input_len: usize) -> explain::Explanation {
        self.explain_with(self.apply_document(doc, input_len), |slots| {
            self.extractor.walk_into(doc, slots).map_err(|e| format!("the record cannot be mapped: {e}"))
        })
    }

    fn explain_with<'a>(
        &self,
        outcome: Outcome,
        fill: impl FnOnce(&mut [Option<Val<'a>>]) -> Result<(), String>,
    ) -> explain::Explanation {
        let mut explanation = explain::Explanation {
            outcome: explain::Explanation::outcome_name(&outcome),
            record: None,
            fields: Vec::new(),
            rules: Vec::new(),
            outputs: Vec::new(),
            errors: outcome.errors().to_vec(),
            output: outcome.ok_value().map(|mut v| {
                self.hide_sensitive(&mut v);
                v
            }),
        };
        let mut slots = vec![None; self.extractor.slot_count()];
        if let Err(why) = fill(&mut slots) {
            explanation.record = Some(why);
            return explanation;
        }
        if matches!(outcome, Outcome::Dropped) {
            explanation.record = Some("`drop` holds: the record is skipped, no field is read".into());
            return explanation;
        }
        let budget = Budget::new(self.step_limit);
        let mut states = Vec::new();
        states.resize_with(self.set.fields.len(), || FieldState::Absent);
        self.set.evaluate(Slots::Record(&slots), &mut states, &budget, &mut Vec::new());
        let env = Env { fields: &states, slots: &slots, budget: &budget };
        for (field, state) in self.set.fields.iter().zip(&states) {
            explanation.fields.push(field.trace(&slots, env, state));
            explanation.fields.extend(field.trace_items(&slots, &budget));
        }
        explanation.rules = self.rules.iter().map(|r| r.trace(env, &self.set.fields)).collect();
        let routed =
            matches!(&outcome, Outcome::Mapped(_)) || matches!(&outcome, Outcome::Failed(f) if f.stage == Stage::Route);
        if routed {
            explanation.outputs = outputs::trace(&self.outputs, env);
        }
        explanation
    }

    /// Maps one record value. Never panics, whatever the bytes: should the engine itself have a
    /// defect that panics on some record, that record fails (stage `internal`) and the batch and
    /// the process go on, instead of the record blocking its partition on every retry.
    pub fn apply(&self, bytes: &[u8]) -> Outcome {
        guarded(|| self.map_record(bytes))
    }

    fn map_record(&self, bytes: &[u8]) -> Outcome {
        self.map_slots(bytes.len(), |slots| {
            self.extractor
                .scan_into(bytes, slots)
                .map_err(|e| Failure::of_record("json", format!("value is not a usable JSON object: {e}")))
        })
    }

    /// What the mapping reads of a record: a decoder builds only that of a record's tree.
    pub fn projection(&self) -> extract::Projection<'_> {
        self.extractor.projection()
    }

    /// Maps one record of a binary format from the values its decoder found at the points of
    /// this plan's [`projection`](Self::projection) (a `Projection` of another plan is a defect
    /// of the caller: the record then fails, stage `internal`). Never panics.
    pub fn apply_captured(&self, captured: &[(extract::Projection<'_>, Doc<'_>)], input_len: usize) -> Outcome {
        guarded(|| {
            self.map_slots(input_len, |slots| {
                self.extractor
                    .fill_captured(captured, slots)
                    .map_err(|e| Failure::of_record("record", format!("the record cannot be mapped: {e}")))
            })
        })
    }

    /// Maps one record decoded from a binary format (Avro, Protobuf): its values are looked up
    /// in the tree by the mapping's paths, exactly as they are scanned from a JSON record's text.
    /// `input_len`, the record's size on the wire, only sizes the output buffer. Never panics.
    pub fn apply_document(&self, doc: &Doc<'_>, input_len: usize) -> Outcome {
        guarded(|| {
            self.map_slots(input_len, |slots| {
                self.extractor
                    .walk_into(doc, slots)
                    .map_err(|e| Failure::of_record("record", format!("the record cannot be mapped: {e}")))
            })
        })
    }

    /// Maps one record whose slots `fill` fills from its source (a scan of JSON text, a walk of a
    /// decoded tree); a record `fill` refuses fails with the failure it gives.
    fn map_slots<'a>(
        &self,
        input_len: usize,
        fill: impl FnOnce(&mut [Option<Val<'a>>]) -> Result<(), Failure>,
    ) -> Outcome {
        let budget = Budget::new(self.step_limit);
        // Slots on the stack when they fit (they do for typical mappings): no allocation per record.
        let mut inline: Scratch<Option<Val<'a>>, INLINE_SLOTS> = Scratch::new();
        let mut spilled = Vec::new();
        let slots = match self.extractor.slot_count() {
            n if n <= INLINE_SLOTS => inline.first(n),
            n => {
                spilled.resize(n, None);
                &mut spilled[..]
            }
        };
        let filled = fill(slots);
        let slots: &[Option<Val<'_>>] = slots;
        if let Err(failure) = filled {
            return Outcome::Failed(failure);
        }
        // The record's id, before anything can fail it: a failure carries it as an ok record would.
        let id = self.dedupe.as_ref().and_then(|key| {
            let value = key.code.value(Env { fields: &[], slots, budget: &budget }, &mut Vec::new()).ok()??;
            match value.as_str() {
                Some(text) => Some(text.to_string()),
                None => {
                    let mut json = Vec::new();
                    value.write_json(&mut json);
                    String::from_utf8(json).ok().filter(|text| text != "null")
                }
            }
        });
        if let Some(drop) = &self.drop {
            match drop.code.condition(Env { fields: &[], slots, budget: &budget }, &mut Vec::new()) {
                Ok(Some(true)) => return Outcome::Dropped,
                Ok(_) => {}
                Err(e) => {
                    let rule = e.kind.rule().unwrap_or("drop");
                    let message = format!("`drop` could not be evaluated: {}", e.message(drop.reads_sensitive));
                    return Outcome::Failed(Failure { id, ..Failure::of_record(rule, message) });
                }
            }
        }
        let mut errors = Vec::new();
        // Field states on the stack too, for the same reason.
        let mut inline_states: Scratch<FieldState<'_>, INLINE_SLOTS> = Scratch::new();
        let mut spilled_states = Vec::new();
        let states = match self.set.fields.len() {
            n if n <= INLINE_SLOTS => inline_states.first(n),
            n => {
                spilled_states.resize_with(n, || FieldState::Absent);
                &mut spilled_states[..]
            }
        };
        self.set.evaluate(Slots::Record(slots), states, &budget, &mut errors);
        let states = &*states;
        let field_errors = !errors.is_empty();
        for rule in &self.rules {
            rule.check(Env { fields: states, slots, budget: &budget }, &self.set.fields, &mut errors);
        }
        // `a || b` takes a decisive side even when the other failed, so a spent budget may not
        // have failed any expression: the record still fails, as it did too much work.
        if budget.spent() && !errors.iter().any(|e| e.rule == BUDGET_RULE) {
            errors.push(FieldError { field: None, rule: BUDGET_RULE.into(), message: budget.spent_message() });
        }
        if !errors.is_empty() {
            let stage = if field_errors { Stage::Validate } else { Stage::Rule };
            return Outcome::Failed(Failure { stage, errors, id });
        }
        // One allocation, rarely a regrowth: outputs are smaller than their input, and most are
        // about as long as the longest seen so far. Sizing by the input alone wastes half of each
        // buffer on a typical mapping, and a buffer past the allocator's small-size caches costs
        // several times more to allocate and free.
        let longest = self.output_capacity.load(Ordering::Relaxed);
        let mut value = Vec::with_capacity(if longest == 0 { input_len } else { longest.min(input_len) });
        self.set.output.write(states, &mut value);
        if value.len() > longest {
            self.output_capacity.fetch_max(value.len(), Ordering::Relaxed);
        }
        let key = self.key_field.and_then(|i| outputs::key_of(&states[i]));
        let deliveries = if self.outputs.is_empty() {
            outcome::Deliveries::new()
        } else {
            match outputs::route(&self.outputs, Env { fields: states, slots, budget: &budget }, states) {
                // As for fields and rules: a decisive `a || b` may have spent the budget unseen.
                Ok(_) if budget.spent() => {
                    let errors =
                        vec![FieldError { field: None, rule: BUDGET_RULE.into(), message: budget.spent_message() }];
                    return Outcome::Failed(Failure { stage: Stage::Route, errors, id });
                }
                Ok(deliveries) => deliveries,
                Err((stage, errors)) => return Outcome::Failed(Failure { stage, errors, id }),
            }
        };
        Outcome::Mapped(Mapped { value, key, id, deliveries })
    }
}

/// Parses and compiles mapping text: every shape and meaning problem, or a plan. No lookup file
/// can be read: a mapping that names one is refused (see [`CompileOptions::lookup_file`]).
pub fn load_str(text: &str) -> Result<(MappingSpec, Plan), Vec<Diagnostic>> {
    load_str_in(text, &CompileOptions::default())
}

/// [`load_str`] with options (how lookup files are read, how keys are resolved).
///
/// Parsing and compiling run on a thread of their own with a stack of [`COMPILE_STACK_BYTES`],
/// whichever thread asks: a mapping that loads in `validate-mapping` loads the same in a Lambda's
/// refresh on a 2 MiB runtime thread, and the depth limits of the YAML, path and expression
/// parsers are set well inside that stack.
pub fn load_str_in(text: &str, options: &CompileOptions) -> Result<(MappingSpec, Plan), Vec<Diagnostic>> {
    std::thread::scope(|scope| {
        let compile = std::thread::Builder::new()
            .name("mapping-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(scope, || load_here(text, options));
        match compile {
            Ok(thread) => thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had (a process at its thread limit): compile here, as before.
            Err(_) => load_here(text, options),
        }
    })
}

/// The stack a mapping is compiled on, the same in every command and entry.
pub const COMPILE_STACK_BYTES: usize = 8 * 1024 * 1024;

fn load_here(text: &str, options: &CompileOptions) -> Result<(MappingSpec, Plan), Vec<Diagnostic>> {
    let (spec, mut diags) = crate::spec::parse(text);
    match compile_with(&spec, options) {
        Ok(plan) if diags.is_empty() => Ok((spec, plan.with_version(text_version(text)))),
        Ok(_) => Err(diags),
        Err(more) => {
            diags.extend(more);
            diags.sort();
            diags.dedup();
            Err(diags)
        }
    }
}

/// The version of a mapping text that has no other: the first 12 hex digits of its SHA-256.
pub fn text_version(text: &str) -> String {
    use sha2::Digest as _;
    let mut hex = expr::hex(&sha2::Sha256::digest(text.as_bytes()));
    hex.truncate(12);
    hex
}

/// The version of the mapping format this program reads.
pub const SPEC_VERSION: i64 = 1;

/// How a mapping compiles beyond its text: what the engine cannot know by itself, given by its
/// caller (the engine reads no file).
pub struct CompileOptions {
    /// Reads a lookup table's `file:` (the name as written) and returns its bytes, or says why it
    /// cannot (the message follows `lookup table `name`: `). The default reads none.
    pub lookup_file: LookupResolver,
    /// Resolves an HMAC key reference. The default reads `env://NAME` from the environment.
    pub secret: SecretResolver,
}

/// Turns a key reference (`env://NAME`) into the key's bytes, or says why it cannot.
pub type SecretResolver = Box<dyn Fn(&str) -> Result<Vec<u8>, String> + Send + Sync>;

/// Turns a lookup table's `file:` into the file's bytes, or says why it cannot.
pub type LookupResolver = Box<dyn Fn(&str) -> Result<LookupFile, String> + Send + Sync>;

/// A lookup file's bytes, as its caller read them, and its path as messages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFile {
    /// The path as messages name it (the mapping's folder joined with the name as written).
    pub shown: String,
    /// The file's content: CSV or JSON, by the extension of the name as written.
    pub bytes: Vec<u8>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions { lookup_file: Box::new(no_lookup_files), secret: Box::new(env_secret) }
    }
}

/// The default [`LookupResolver`]: a mapping compiled from text alone has no folder to read from.
pub fn no_lookup_files(file: &str) -> Result<LookupFile, String> {
    Err(format!("`file: {file}` cannot be read: this mapping is compiled without access to files"))
}

/// `env://NAME`: the variable's bytes. Keys never sit in the mapping file itself.
pub fn env_secret(reference: &str) -> Result<Vec<u8>, String> {
    match reference.strip_prefix("env://") {
        Some(name) => match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(v.into_bytes()),
            _ => Err(format!("the key `{reference}` is not available: environment variable `{name}` is not set")),
        },
        None => Err(format!(
            "a key is a reference like `env://NAME`, found `{reference}`; the key itself never goes in the mapping"
        )),
    }
}

/// Compiles a spec, reporting every problem found, sorted by position.
pub fn compile(spec: &MappingSpec) -> Result<Plan, Vec<Diagnostic>> {
    compile_with(spec, &CompileOptions::default())
}

/// [`compile`] with options.
pub fn compile_with(spec: &MappingSpec, options: &CompileOptions) -> Result<Plan, Vec<Diagnostic>> {
    let mut compiler = Compiler { spec, diags: Diagnostics::default() };
    compiler.version();
    let lookups = compiler.lookups(&options.lookup_file);
    let secret = |reference: &str| (options.secret)(reference).map(Arc::from);
    let ctx = Context { lookups: &lookups, secret: &secret };
    let mut extractor = Extractor::default();
    let (set, tys) = compiler.scope(&ctx, &mut extractor);
    let record = RecordScope::of(spec, set.as_ref(), tys);
    let key_field = compiler.key(&record);
    compiler.headers();
    let output = compiler.output();
    let drop = compiler.drop(&record, &ctx, &mut extractor);
    let dedupe = compiler.dedupe_key(&record, &ctx, &mut extractor);
    let rules = compiler.rules(&record, &ctx, &mut extractor);
    compiler.rules_that_never_fire(&record);
    let outputs = compiler.outputs(&record, &ctx, &mut extractor, output.format);
    compiler.expected_outputs(&outputs);
    extractor.finish();
    let (errors, warnings) = compiler.diags.into_parts();
    let Some(set) = set.filter(|_| errors.is_empty()) else {
        return Err(if errors.is_empty() {
            vec![Diagnostic::new(Pos::new(1, 1), "the mapping could not be compiled")]
        } else {
            errors
        });
    };
    let (mut rules, mut drop, mut outputs) = (rules, drop, outputs);
    for rule in &mut rules {
        rule.follow_sensitivity(&set.fields);
    }
    for output in &mut outputs {
        output.follow_sensitivity(|i| set.fields[i].sensitive);
    }
    // `drop` reads the record before any field exists: if the mapping has a secret, `drop` may
    // read it too, and its messages leave values out.
    if let Some(drop) = &mut drop {
        drop.reads_sensitive = set.fields.iter().any(|f| f.sensitive || f.items.is_some());
    }
    Ok(Plan {
        name: spec.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
        version: String::new(),
        extractor,
        drop,
        dedupe,
        set,
        rules,
        key_field,
        headers: spec.headers.iter().map(|h| h.value.clone()).collect(),
        output,
        outputs,
        step_limit: spec.steps.as_ref().map_or(expr::DEFAULT_STEPS, |s| s.value as u64),
        warnings,
        output_capacity: AtomicUsize::new(0),
    })
}

/// The format ok records are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON text (the default).
    #[default]
    Json,
    /// Avro, with a writer schema, framed for its registry.
    Avro,
    /// Protobuf, one message of a schema, framed for its registry.
    Protobuf,
}

impl OutputFormat {
    /// The names, for messages.
    pub const NAMES: &'static str = "json, avro, protobuf";

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Avro => "avro",
            OutputFormat::Protobuf => "protobuf",
        }
    }

    /// The format `name` names, or why none does.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "json" | "" => Ok(OutputFormat::Json),
            "avro" => Ok(OutputFormat::Avro),
            "protobuf" | "proto" => Ok(OutputFormat::Protobuf),
            other => Err(format!("unknown output format `{other}`; output formats: {}", Self::NAMES)),
        }
    }
}

/// A mapping's `output:`: the format, and where the writer schema is (as written: a file relative
/// to the mapping, or `registry:SUBJECT[@VERSION]`), for the caller to find.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// `format:`.
    pub format: OutputFormat,
    /// `schema:`, else the mapping's `target_schema:`.
    pub schema: Option<String>,
    /// `subject:`.
    pub subject: Option<String>,
    /// `message:` — the Protobuf message written (default: the schema's first).
    pub message: Option<String>,
}

/// The compiler of one mapping: the spec it reads and the problems its phases find, one short
/// method per phase (as jaq's `Compiler` is). Every phase runs, so one pass reports every problem.
struct Compiler<'s> {
    spec: &'s MappingSpec,
    diags: Diagnostics,
}

/// The record's fields as rules, `drop` and `key` see them once the fields are compiled.
struct RecordScope<'s> {
    /// Targets as written, also of fields that failed to compile: naming one is not a new error.
    declared: Vec<&'s str>,
    /// By spec index: a target's index in the compiled set and in `tys`.
    targets: HashMap<&'s str, usize>,
    /// The types the fields' readers see (`any` where a field did not compile, so that only
    /// real problems show).
    tys: Vec<Ty>,
    domains: Vec<Option<expr::Domain>>,
    compiled: &'s [field::Field],
}

impl<'s> RecordScope<'s> {
    fn of(spec: &'s MappingSpec, set: Option<&'s FieldSet>, tys: Vec<Ty>) -> Self {
        let mut targets = HashMap::new();
        for (i, f) in spec.fields.iter().enumerate() {
            if let Some(t) = &f.target {
                targets.entry(t.as_str()).or_insert(i);
            }
        }
        RecordScope {
            declared: spec.fields.iter().filter_map(|f| f.target.as_ref()).map(|t| t.as_str()).collect(),
            targets,
            tys,
            domains: spec.fields.iter().map(scope::domain_of).collect(),
            compiled: set.map(|s| &s.fields[..]).unwrap_or_default(),
        }
    }

    /// The compiled field a `key:` or a rule names; an unknown name is an error with the nearest.
    fn find(&self, name: &Spanned<String>, what: &str, diags: &mut Diagnostics) -> Option<usize> {
        let found = self.compiled.iter().position(|f| f.target == name.value);
        if found.is_none() && !self.declared.contains(&name.as_str()) {
            diags.push(Diagnostic::new(
                name.pos,
                format!(
                    "{what} names unknown target `{}`{}",
                    name.value,
                    crate::diagnostic::suggestion(&name.value, self.declared.iter().copied())
                ),
            ));
        }
        found
    }

    fn names<'x, 'e>(
        &'x self,
        paths: &'x mut SourcePaths<'e>,
        ctx: &'x Context<'x>,
        no_targets: Option<&'static str>,
    ) -> ScopeNames<'x, 'e> {
        ScopeNames { targets: &self.targets, tys: &self.tys, paths, ctx, no_targets, domains: &self.domains }
    }
}

impl<'s> Compiler<'s> {
    fn version(&mut self) {
        if let Some(v) = &self.spec.version
            && v.value != SPEC_VERSION
        {
            self.diags.push(Diagnostic::new(
                v.pos,
                format!("unsupported `version: {}`; this program reads version {SPEC_VERSION}", v.value),
            ));
        }
    }

    fn lookups(&mut self, lookup_file: &LookupResolver) -> HashMap<String, Arc<LookupTable>> {
        compile_lookups(&self.spec.lookups, lookup_file, &mut self.diags)
    }

    /// The record's fields, their paths into `extractor`; and the types their readers see.
    fn scope(&mut self, ctx: &Context<'_>, extractor: &mut Extractor) -> (Option<FieldSet>, Vec<Ty>) {
        let fields = &self.spec.fields;
        let compiled = compile_scope(fields, &mut SourcePaths::Record(extractor), ctx, &mut self.diags);
        check_targets(&fields.iter().filter_map(|f| f.target.as_ref()).collect::<Vec<_>>(), &mut self.diags);
        if fields.is_empty() && self.spec.name.is_some() {
            self.diags.push(Diagnostic::new(Pos::new(1, 1), "`fields` is empty; a mapping needs at least one field"));
        }
        compiled
    }

    /// `key:`: a target that is always present and a scalar.
    fn key(&mut self, record: &RecordScope<'_>) -> Option<usize> {
        let key = self.spec.key.as_ref()?;
        key_target(record, key, "`key`", &mut self.diags)
    }

    /// `outputs:`, each entry's expressions seeing the record's targets as rules do.
    fn outputs(
        &mut self,
        record: &RecordScope<'_>,
        ctx: &Context<'_>,
        extractor: &mut Extractor,
        format: OutputFormat,
    ) -> Vec<OutputEntry> {
        let mut paths = SourcePaths::Record(extractor);
        outputs::compile(
            &self.spec.outputs,
            outputs::Targets { compiled: record.compiled, declared: &record.declared },
            format == OutputFormat::Json,
            |name, what, diags| key_target(record, name, what, diags),
            |text, diags| scope::compile_expression(text, &mut record.names(&mut paths, ctx, None), diags),
            &mut self.diags,
        )
    }

    /// The outputs the embedded tests expect a record to go to are outputs of the mapping.
    fn expected_outputs(&mut self, outputs: &[OutputEntry]) {
        let names: Vec<&str> = outputs.iter().map(OutputEntry::name).collect();
        for expected in self.spec.tests.iter().filter_map(|t| t.outputs.as_ref()) {
            if names.is_empty() {
                self.diags.push(Diagnostic::new(
                    expected.pos,
                    "`expect.output` names outputs, but the mapping has no `outputs:`",
                ));
                continue;
            }
            for name in expected.value.iter().filter(|n| !names.contains(&n.as_str())) {
                self.diags.push(Diagnostic::new(
                    name.pos,
                    format!(
                        "`expect.output` names unknown output `{}`{}",
                        name.value,
                        crate::diagnostic::suggestion(&name.value, names.iter().copied())
                    ),
                ));
            }
        }
    }
}

/// A target that is a Kafka key (`key:`, an output's `key:`): always present, and a scalar.
fn key_target(record: &RecordScope<'_>, key: &Spanned<String>, what: &str, diags: &mut Diagnostics) -> Option<usize> {
    let i = record.find(key, what, diags)?;
    let f = &record.compiled[i];
    let always_present =
        (f.required || f.default.is_some() || matches!(f.source, FieldSource::Const(_))) && f.when.is_none();
    if !always_present {
        diags.push(Diagnostic::new(
            key.pos,
            format!("{what} target `{}` may be absent; make it `required: true` or give it a `default`", key.value),
        ));
    }
    if matches!(f.ty, FieldType::Object | FieldType::Array) {
        diags.push(Diagnostic::new(
            key.pos,
            format!("{what} target `{}` is an {}; a key must be a scalar", key.value, f.ty.name()),
        ));
    }
    Some(i)
}

impl Compiler<'_> {
    /// `output:` checked: a known format, and an Avro one has a schema to write with (its own
    /// `schema:`, the mapping's `target_schema:`, or the subject in the registry).
    fn output(&mut self) -> Output {
        let Some(spec) = &self.spec.output else { return Output::default() };
        let format = match &spec.format {
            None => OutputFormat::Json,
            Some(name) => OutputFormat::parse(&name.value).unwrap_or_else(|why| {
                self.diags.push(Diagnostic::new(name.pos, format!("`output.format`: {why}")));
                OutputFormat::Json
            }),
        };
        let schema = spec.schema.as_ref().or(self.spec.target_schema.as_ref()).map(|s| s.value.clone());
        Output {
            format,
            schema,
            subject: spec.subject.as_ref().map(|s| s.value.clone()),
            message: spec.message.as_ref().map(|s| s.value.clone()),
        }
    }

    fn headers(&mut self) {
        for header in self.spec.headers.iter().filter(|h| h.value.is_empty()) {
            self.diags.push(Diagnostic::new(header.pos, "header names cannot be empty"));
        }
    }

    /// `drop:`, a condition on the record alone: it is decided before any field is read.
    fn drop(&mut self, record: &RecordScope<'_>, ctx: &Context<'_>, extractor: &mut Extractor) -> Option<Compiled> {
        let text = self.spec.drop.as_ref()?;
        let mut paths = SourcePaths::Record(extractor);
        let mut names = record.names(
            &mut paths,
            ctx,
            Some("`drop` is decided before any field is read: read the record with a `$` path, like `$.event_type`"),
        );
        compile_condition(text, "`drop`", &mut names, &mut self.diags)
    }

    /// `dedupe_key:` — a value of the record (text, a number), as its id.
    fn dedupe_key(
        &mut self,
        record: &RecordScope<'_>,
        ctx: &Context<'_>,
        extractor: &mut Extractor,
    ) -> Option<Compiled> {
        let text = self.spec.dedupe_key.as_ref()?;
        let mut paths = SourcePaths::Record(extractor);
        let mut names = record.names(
            &mut paths,
            ctx,
            Some("`dedupe_key` is read before any field: read the record with a `$` path, like `$.event_id`"),
        );
        let compiled = scope::compile_expression(text, &mut names, &mut self.diags)?;
        if matches!(compiled.ty, Ty::Bool | Ty::List(_) | Ty::Row(_)) {
            self.diags.push(
                Diagnostic::new(
                    text.pos,
                    format!("`dedupe_key` is an id: text or a number, but it gives {}", compiled.ty.name()),
                )
                .spanning(&text.extent),
            );
            return None;
        }
        Some(compiled)
    }

    /// Business rules, seeing the record's targets with the types their fields' readers see.
    fn rules(&mut self, record: &RecordScope<'_>, ctx: &Context<'_>, extractor: &mut Extractor) -> Vec<Rule> {
        let mut paths = SourcePaths::Record(extractor);
        rules::compile(
            &self.spec.rules,
            |name, what, diags| record.find(name, what, diags),
            |text, diags| compile_condition(text, "a rule", &mut record.names(&mut paths, ctx, None), diags),
            &mut self.diags,
        )
    }

    /// Warns of field-condition rules that can never fire: every value they name is one the
    /// field's own checks refuse.
    fn rules_that_never_fire(&mut self, record: &RecordScope<'_>) {
        for rule in &self.spec.rules {
            let Some(crate::spec::RuleWhen::Field(when)) = &rule.when else { continue };
            let Some(field) = &when.field else { continue };
            let Some(domain) = record.targets.get(field.as_str()).and_then(|&i| record.domains[i].as_ref()) else {
                continue;
            };
            let texts: Vec<&str> = match (&when.equals, &when.one_of) {
                (Some(node), _) => node.as_str().into_iter().collect(),
                (None, Some(list)) => list.value.iter().filter_map(|n| n.as_str()).collect(),
                _ => continue,
            };
            let reasons: Vec<String> = texts.iter().filter_map(|t| domain.excludes(t)).collect();
            if !texts.is_empty() && reasons.len() == texts.len() {
                self.diags.push(Diagnostic::warning(
                    when.pos,
                    format!("this rule can never fire: `{}` never equals {:?} ({})", field.value, texts, reasons[0]),
                ));
            }
        }
    }
}

/// Reads every `lookups:` table, inline or from a CSV or JSON file the caller reads.
fn compile_lookups(
    specs: &[LookupSpec],
    lookup_file: &LookupResolver,
    diags: &mut Diagnostics,
) -> HashMap<String, Arc<LookupTable>> {
    let mut tables = HashMap::new();
    for spec in specs {
        let name = &spec.name;
        let values: Option<CodeTable> = match (&spec.values, &spec.file) {
            (Some(node), None) => transform::value_table(node, diags),
            (None, Some(file)) => match lookup_file(&file.value).and_then(|read| {
                let format = Path::new(&file.value).extension().and_then(|e| e.to_str());
                parse_lookup_file(&read, format)
            }) {
                Ok(t) => Some(t),
                Err(message) => {
                    diags.push(Diagnostic::new(file.pos, format!("lookup table `{}`: {message}", name.value)));
                    None
                }
            },
            (Some(node), Some(_)) => {
                diags.push(Diagnostic::new(
                    node.pos,
                    format!("lookup table `{}` has both `values` and `file`; keep one", name.value),
                ));
                None
            }
            (None, None) => {
                diags.push(Diagnostic::new(
                    name.pos,
                    format!("lookup table `{}` needs `values:` or `file:`", name.value),
                ));
                None
            }
        };
        let default = match spec.default.as_ref().map(|d| d.to_json()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(d)) => {
                diags.push(d);
                None
            }
        };
        // A table whose values are refused is still declared: its uses are not reported as
        // unknown tables besides (the mapping is refused for the diagnostic already given).
        let values = values.unwrap_or_default();
        let mut kinds = values.values().chain(default.iter()).map(|v| match v {
            serde_json::Value::String(_) => Ty::String,
            serde_json::Value::Number(n) if n.is_i64() => Ty::Int,
            serde_json::Value::Number(_) => Ty::Number,
            serde_json::Value::Bool(_) => Ty::Bool,
            _ => Ty::Dyn,
        });
        let first = kinds.next().unwrap_or(Ty::Dyn);
        let ty = if kinds.all(|k| k == first) { first } else { Ty::Dyn };
        tables.insert(name.value.clone(), Arc::new(LookupTable { name: name.value.clone(), values, default, ty }));
    }
    tables
}

/// A lookup file's bytes: JSON (an object of code → value) or CSV (a header row, then code,value
/// rows), by the extension of its name as written (`format`).
fn parse_lookup_file(file: &LookupFile, format: Option<&str>) -> Result<CodeTable, String> {
    let (shown, bytes) = (&file.shown, &file.bytes);
    match format {
        Some("json") => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(serde_json::Value::Object(map)) => Ok(map.into_iter().collect()),
            Ok(other) => {
                Err(format!("{shown} must hold a JSON object of code → value, found {}", json::json_kind(&other)))
            }
            Err(e) => Err(format!("{shown} is not valid JSON: {e}")),
        },
        Some("csv") => {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(&bytes[..]);
            let mut table = CodeTable::default();
            for (row, record) in reader.records().enumerate() {
                let record = record.map_err(|e| format!("{shown}: {e}"))?;
                if record.len() != 2 {
                    return Err(format!(
                        "{shown} line {}: expected two columns (code,value), found {}",
                        row + 2,
                        record.len()
                    ));
                }
                table.insert(record[0].to_owned(), serde_json::Value::String(record[1].to_owned()));
            }
            Ok(table)
        }
        _ => Err(format!("{shown}: a lookup file is `.csv` (code,value with a header row) or `.json` (an object)")),
    }
}

/// Reports duplicate and overlapping targets among every declared target, including those of
/// fields with other errors, so every problem is listed at once. Each target is compared with the
/// first definition of each earlier target through maps of targets and of their dotted prefixes:
/// time grows with the number of targets times their depth, not with its square.
fn check_targets(targets: &[&Spanned<String>], diags: &mut Diagnostics) {
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
