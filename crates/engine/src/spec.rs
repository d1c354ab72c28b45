//! The mapping file as the user wrote it.
//!
//! [`parse`] reads YAML (with `saphyr`, which keeps a position for every node) into [`MappingSpec`]:
//! plain data that mirrors the file one to one, each piece carrying its `line:col`. This layer only
//! checks *shape* — unknown keys, a string where a list belongs, a missing `target` — and collects
//! every such problem. Meaning (does `trim` exist, is the regex valid, do targets overlap) is the
//! plan compiler's job; see [`crate::plan::compile`].

use crate::diagnostic::{Diagnostic, Pos, Spanned};
use crate::yaml::Fields;
pub use crate::yaml::{Node, NodeKind, load_yaml};

/// The whole mapping file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MappingSpec {
    /// `version:`, the mapping format's version.
    pub version: Option<Spanned<i64>>,
    /// `name:`, the mapping's name.
    pub name: Option<Spanned<String>>,
    /// `description:`, for people.
    pub description: Option<String>,
    /// `source_schema:` — the schema of the records it reads (a file relative to the mapping, or
    /// `registry:SUBJECT[@VERSION]`), for `validate-mapping` to hold it to. Nothing else reads it.
    pub source_schema: Option<Spanned<String>>,
    /// `target_schema:` — the schema of the records it writes, the same way.
    pub target_schema: Option<Spanned<String>>,
    /// `output:` — how ok records are written (JSON unless it says otherwise).
    pub output: Option<OutputSpec>,
    /// `outputs:` — where mapped records go, by content (none: the ok topic of the settings).
    pub outputs: Vec<OutputEntrySpec>,
    /// Output target whose value becomes the Kafka key of ok records.
    pub key: Option<Spanned<String>>,
    /// Source headers copied onto ok records.
    pub headers: Vec<Spanned<String>>,
    /// `lookups:` — named tables for `lookup()` and the `lookup` transform.
    pub lookups: Vec<LookupSpec>,
    /// `drop:` — an expression over the record; records where it holds are skipped.
    pub drop: Option<Spanned<String>>,
    /// `dedupe_key:` — an expression over the record: its value is the record's stable id
    /// (`lambda-stream.id`) instead of its position.
    pub dedupe_key: Option<Spanned<String>>,
    /// `limits: { steps: N }` — the evaluation budget of one record's expressions.
    pub steps: Option<Spanned<i64>>,
    /// `fields:`, the output fields.
    pub fields: Vec<FieldSpec>,
    /// `rules:`, the cross-field rules.
    pub rules: Vec<RuleSpec>,
    /// `tests:`, examples the mapping must satisfy.
    pub tests: Vec<TestSpec>,
}

/// `output: { format: avro, schema: …, subject: … }`: the format ok records are written in, and
/// the writer schema. The engine checks the format's name; finding the schema and its id is the
/// caller's (it has the files and the registry).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    /// Where the block starts.
    pub pos: Pos,
    /// `format:` — `json`, `avro` or `protobuf`.
    pub format: Option<Spanned<String>>,
    /// `schema:` — a schema file (relative to the mapping) or `registry:SUBJECT[@VERSION]`.
    pub schema: Option<Spanned<String>>,
    /// `subject:` — the registry subject the schema is registered under.
    pub subject: Option<Spanned<String>>,
    /// `message:` — the Protobuf message written (default: the schema's first).
    pub message: Option<Spanned<String>>,
}

/// One entry of `outputs:`: a destination of mapped records, taken when its `when` holds.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputEntrySpec {
    /// Where the entry starts.
    pub pos: Pos,
    /// `name:` — how metrics, tests and `explain` name it.
    pub name: Option<Spanned<String>>,
    /// `when:` — a condition over the record's targets (and `$` paths); none: every record.
    pub when: Option<Spanned<String>>,
    /// `topic:` — a topic name, or, when `topics:` is given, an expression that picks one of them.
    pub topic: Option<Spanned<String>>,
    /// `topics:` — every topic a computed `topic:` may give.
    pub topics: Option<Spanned<Vec<Spanned<String>>>>,
    /// `all: true` — the record also goes on to the entries after this one (fan-out).
    pub all: Option<Spanned<bool>>,
    /// `key:` — the target whose value is this output's Kafka key.
    pub key: Option<Spanned<String>>,
    /// `fields:` — the targets this output writes (all of them when absent).
    pub fields: Option<Spanned<Vec<Spanned<String>>>>,
    /// `envelope:` — `cloudevents` (binary mode) or `cloudevents-structured`.
    pub envelope: Option<Spanned<String>>,
    /// `type:` — the CloudEvents type.
    pub event_type: Option<AttributeSpec>,
    /// `source:` — the CloudEvents source.
    pub event_source: Option<AttributeSpec>,
}

/// A CloudEvents attribute as written: text, or `{expr: …}` computed from the record.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeSpec {
    /// The text itself.
    Literal(Spanned<String>),
    /// `{expr: …}`.
    Expr(Spanned<String>),
}

/// One entry of `fields:`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldSpec {
    /// Where the entry starts.
    pub pos: Pos,
    /// `target:`, the output field's name (dots nest).
    pub target: Option<Spanned<String>>,
    /// `source:`, a JSONPath into the record.
    pub source: Option<Spanned<String>>,
    /// `const:` — a fixed value; a field has either a source or a const.
    pub constant: Option<Node>,
    /// `type:` as written.
    pub kind: Option<Spanned<String>>,
    /// `required:`.
    pub required: Option<Spanned<bool>>,
    /// `default:`, the value when the source is absent.
    pub default: Option<Node>,
    /// `transform:` steps, in order.
    pub transform: Vec<StepSpec>,
    /// `validate:` steps, in order.
    pub validate: Vec<StepSpec>,
    /// `sensitive:` as written: a computed field that says nothing inherits the sensitivity of
    /// what it reads; `false` declares a value safe to show (a hash, a mask).
    pub sensitive: Option<bool>,
    /// `description:`, for people.
    pub description: Option<String>,
    /// `expr:` — the value is computed from other targets.
    pub expr: Option<Spanned<String>>,
    /// `when:` — the field applies only when this expression holds.
    pub when: Option<Spanned<String>>,
    /// `items:` — the fields of each item of the array this field reads.
    pub items: Option<Spanned<Vec<FieldSpec>>>,
    /// `output: false` — read and checked, never written.
    pub output: Option<Spanned<bool>>,
}

/// A transform or validator: `trim`, or `range: {min: 1}`, optionally with `when:`.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSpec {
    /// The step's name.
    pub name: Spanned<String>,
    /// Its argument, if any.
    pub arg: Option<Node>,
    /// `when:`, the condition it runs under.
    pub when: Option<Spanned<String>>,
}

/// One entry of `lookups:`: a table given inline (`values:`) or read from a CSV or JSON file.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupSpec {
    /// The table's name.
    pub name: Spanned<String>,
    /// `values:`, the table inline.
    pub values: Option<Node>,
    /// `file:`, the file the table is read from.
    pub file: Option<Spanned<String>>,
    /// `default:`, the value of a code the table does not hold.
    pub default: Option<Node>,
}

/// One entry of `rules:`.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Where the entry starts.
    pub pos: Pos,
    /// `name:`, the rule's name (the rule of its errors).
    pub name: Option<Spanned<String>>,
    /// `when:`, the condition it applies under.
    pub when: Option<RuleWhen>,
    /// `require:`, targets that must be present.
    pub require: Vec<Spanned<String>>,
    /// `forbid:`, targets that must be absent.
    pub forbid: Vec<Spanned<String>>,
    /// `check:` — an expression that must hold.
    pub check: Option<Spanned<String>>,
    /// `message:` — what a broken rule says.
    pub message: Option<String>,
    /// `field:` — the target a broken rule's error names (else the error names none).
    pub field: Option<Spanned<String>>,
}

/// A rule's `when`: the field-condition form, or an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleWhen {
    /// `field:` with `equals:`, `in:` or `present:`.
    Field(WhenSpec),
    /// An expression.
    Expr(Spanned<String>),
}

/// A rule's field-condition `when:`.
#[derive(Clone, Debug, PartialEq)]
pub struct WhenSpec {
    /// Where it starts.
    pub pos: Pos,
    /// `field:`, the target it reads.
    pub field: Option<Spanned<String>>,
    /// `equals:`, the value it must equal.
    pub equals: Option<Node>,
    /// `in:`, the values it must be one of.
    pub one_of: Option<Spanned<Vec<Node>>>,
    /// `present:`, whether it must be present or absent.
    pub present: Option<Spanned<bool>>,
}

/// One entry of `tests:`, an example the mapping must satisfy.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSpec {
    /// Where the entry starts.
    pub pos: Pos,
    /// `name:`.
    pub name: Option<Spanned<String>>,
    /// `input:` or `input_raw:`, the record it maps.
    pub input: Option<TestInput>,
    /// `expect:`, the outcome it must give.
    pub expect: Option<ExpectSpec>,
    /// `expect.output:` — the outputs the mapped record must go to, in order.
    pub outputs: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A test's record.
#[derive(Clone, Debug, PartialEq)]
pub enum TestInput {
    /// `input:` — a YAML mapping, fed to the plan as its JSON text.
    Structured(Node),
    /// `input_raw:` — the exact bytes of a record value, for testing bad JSON.
    Raw(Spanned<String>),
}

/// A test's expected outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum ExpectSpec {
    /// `ok:`, the output it must give.
    Ok(Node),
    /// `fail:`, the errors it must give.
    Fail(Vec<ExpectedError>),
    /// `dropped: true` — the mapping's `drop:` skips the record.
    Dropped,
    /// `output:` alone — the record maps (to any value) and goes to the outputs it names.
    Routed,
}

/// One error a test expects.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedError {
    /// Where it is written.
    pub pos: Pos,
    /// `None` for record-level errors such as `json`.
    pub field: Option<String>,
    /// The rule that fails.
    pub rule: String,
}

/// Parses a mapping file. Always returns a spec (possibly partial) so the compiler can report its own
/// problems too; the diagnostics list every shape problem found.
pub fn parse(text: &str) -> (MappingSpec, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let Some(root) = load_yaml(text, &mut diags) else {
        return (MappingSpec::default(), diags);
    };
    let spec = read_spec(&root, &mut diags);
    (spec, diags)
}

/// The JSON Schema of mapping files (draft 2020-12), for editors: `lambda-stream schema` prints it.
pub const SCHEMA: &str = include_str!("../../../schema/mapping.schema.json");

// The keys each part of a mapping file accepts (unknown keys are refused with the nearest one);
// `schema/mapping.schema.json` is held to them by a test.
/// The keys at the top of a mapping file.
pub const TOP_KEYS: &[&str] = &[
    "version",
    "name",
    "description",
    "source_schema",
    "target_schema",
    "output",
    "outputs",
    "key",
    "headers",
    "lookups",
    "drop",
    "dedupe_key",
    "limits",
    "fields",
    "rules",
    "tests",
];
/// The keys of `output:`.
pub const OUTPUT_KEYS: &[&str] = &["format", "schema", "subject", "message"];
/// The keys of an `outputs:` entry.
pub const OUTPUT_ENTRY_KEYS: &[&str] =
    &["name", "when", "topic", "topics", "all", "key", "fields", "envelope", "type", "source"];
/// The keys of a computed CloudEvents attribute.
pub const ATTRIBUTE_KEYS: &[&str] = &["expr"];
/// The keys of `limits:`.
pub const LIMIT_KEYS: &[&str] = &["steps"];
/// The keys of a `fields:` entry.
pub const FIELD_KEYS: &[&str] = &[
    "target",
    "source",
    "const",
    "expr",
    "type",
    "required",
    "default",
    "when",
    "transform",
    "validate",
    "items",
    "output",
    "sensitive",
    "description",
];
/// The keys of a `rules:` entry.
pub const RULE_KEYS: &[&str] = &["name", "when", "check", "message", "field", "require", "forbid"];
/// The keys of a `lookups:` entry.
pub const LOOKUP_KEYS: &[&str] = &["values", "file", "default"];
/// The keys of a rule's field-condition `when:`.
pub const WHEN_KEYS: &[&str] = &["field", "equals", "in", "present"];
/// The keys of a `tests:` entry.
pub const TEST_KEYS: &[&str] = &["name", "input", "input_raw", "expect"];
/// The keys of a test's `expect:`.
pub const EXPECT_KEYS: &[&str] = &["ok", "fail", "dropped", "output"];
/// The keys of an expected error.
pub const EXPECTED_ERROR_KEYS: &[&str] = &["field", "rule"];

fn read_spec(root: &Node, diags: &mut Vec<Diagnostic>) -> MappingSpec {
    let mut spec = MappingSpec::default();
    let Some(top) = Fields::read(root, "the mapping spec", TOP_KEYS, diags) else {
        return spec;
    };
    match top.get("version") {
        None => diags.push(Diagnostic::new(root.pos, "missing `version` (this program reads `version: 1`)")),
        Some(node @ Node { kind: NodeKind::Int(v), .. }) => spec.version = Some(node.spanned(*v)),
        Some(node) => {
            diags.push(Diagnostic::new(node.pos, format!("`version` must be an integer, found {}", node.kind_name())))
        }
    }
    spec.name = top.string("name", diags);
    if spec.name.is_none() && top.get("name").is_none() {
        diags.push(Diagnostic::new(root.pos, "missing `name` (it identifies the mapping in the fail topic)"));
    }
    spec.description = top.string("description", diags).map(|s| s.value);
    spec.source_schema = top.string("source_schema", diags);
    spec.target_schema = top.string("target_schema", diags);
    if let Some(node) = top.get("output")
        && let Some(output) = Fields::read(node, "`output`", OUTPUT_KEYS, diags)
    {
        spec.output = Some(OutputSpec {
            pos: node.pos,
            format: output.string("format", diags),
            schema: output.string("schema", diags),
            subject: output.string("subject", diags),
            message: output.string("message", diags),
        });
    }
    spec.outputs = top.list("outputs", diags).iter().filter_map(|n| read_output_entry(n, diags)).collect();
    spec.key = top.string("key", diags);
    spec.headers = top.string_list("headers", diags);
    spec.drop = top.get("drop").and_then(|n| expression(n, "`drop`", diags));
    spec.dedupe_key = top.get("dedupe_key").and_then(|n| expression(n, "`dedupe_key`", diags));
    if let Some(limits) = top.get("limits").and_then(|n| Fields::read(n, "`limits`", LIMIT_KEYS, diags)) {
        match limits.get("steps") {
            None => {}
            Some(node @ Node { kind: NodeKind::Int(n), .. }) if *n > 0 => spec.steps = Some(node.spanned(*n)),
            Some(node) => diags.push(Diagnostic::new(
                node.pos,
                format!("`steps` is a positive whole number of evaluation steps, found {}", node.kind_name()),
            )),
        }
    }
    if let Some(node) = top.get("lookups") {
        match &node.kind {
            NodeKind::Map(entries) => {
                for (name, table) in entries {
                    if let Some(f) = Fields::read(table, "a lookup table", LOOKUP_KEYS, diags) {
                        spec.lookups.push(LookupSpec {
                            name: name.clone(),
                            values: f.get("values").cloned(),
                            file: f.string("file", diags),
                            default: f.get("default").cloned(),
                        });
                    }
                }
            }
            _ => diags.push(Diagnostic::new(
                node.pos,
                format!("`lookups` maps table names to tables, found {}", node.kind_name()),
            )),
        }
    }

    match top.get("fields") {
        None => diags.push(Diagnostic::new(root.pos, "missing `fields`")),
        Some(_) => {
            let items = top.list("fields", diags);
            spec.fields = items.iter().filter_map(|n| read_field(n, diags)).collect();
        }
    }
    spec.rules = top.list("rules", diags).iter().filter_map(|n| read_rule(n, diags)).collect();
    spec.tests = top.list("tests", diags).iter().filter_map(|n| read_test(n, diags)).collect();
    spec
}

fn read_output_entry(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<OutputEntrySpec> {
    let f = Fields::read(node, "an output", OUTPUT_ENTRY_KEYS, diags)?;
    let name = f.string("name", diags);
    if f.get("name").is_none() {
        diags.push(Diagnostic::new(node.pos, "output is missing `name` (metrics, tests and `explain` name it)"));
    }
    let topic = match f.get("topic") {
        None => {
            diags.push(Diagnostic::new(node.pos, "output is missing `topic`"));
            None
        }
        Some(t) => expression(t, "`topic`", diags),
    };
    let spanned_list =
        |key: &str, diags: &mut Vec<Diagnostic>| f.get(key).map(|n| Spanned::new(f.string_list(key, diags), n.pos));
    let attribute = |key: &str, diags: &mut Vec<Diagnostic>| match f.get(key)? {
        n @ Node { kind: NodeKind::Map(_), .. } => {
            let computed = Fields::read(n, "a computed attribute", ATTRIBUTE_KEYS, diags)?;
            match computed.get("expr") {
                Some(e) => expression(e, "`expr`", diags).map(AttributeSpec::Expr),
                None => {
                    diags.push(Diagnostic::new(n.pos, "a computed attribute is `{expr: …}`"));
                    None
                }
            }
        }
        n => expression(n, &format!("`{key}`"), diags).map(AttributeSpec::Literal),
    };
    Some(OutputEntrySpec {
        pos: node.pos,
        name,
        when: f.get("when").and_then(|n| expression(n, "`when`", diags)),
        topic,
        topics: spanned_list("topics", diags),
        all: f.boolean("all", diags),
        key: f.string("key", diags),
        fields: spanned_list("fields", diags),
        envelope: f.string("envelope", diags),
        event_type: attribute("type", diags),
        event_source: attribute("source", diags),
    })
}

fn read_field(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<FieldSpec> {
    let f = Fields::read(node, "a field", FIELD_KEYS, diags)?;
    let target = f.string("target", diags);
    if f.get("target").is_none() {
        diags.push(Diagnostic::new(node.pos, "field is missing `target`"));
    }
    Some(FieldSpec {
        pos: node.pos,
        target,
        source: f.string("source", diags),
        constant: f.get("const").cloned(),
        kind: f.string("type", diags),
        required: f.boolean("required", diags),
        default: f.get("default").cloned(),
        transform: f.list("transform", diags).iter().filter_map(|n| read_step(n, "transform", diags)).collect(),
        validate: f.list("validate", diags).iter().filter_map(|n| read_step(n, "validator", diags)).collect(),
        sensitive: f.boolean("sensitive", diags).map(|b| b.value),
        description: f.string("description", diags).map(|s| s.value),
        expr: f.get("expr").and_then(|n| expression(n, "`expr`", diags)),
        when: f.get("when").and_then(|n| expression(n, "`when`", diags)),
        items: f.get("items").map(|n| {
            let items = f.list("items", diags);
            Spanned::new(items.iter().filter_map(|i| read_field(i, diags)).collect(), n.pos)
        }),
        output: f.boolean("output", diags),
    })
}

/// An expression is a YAML scalar; `true`, `5` and the like are their text.
fn expression(node: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<String>> {
    let text = match &node.kind {
        NodeKind::Str(s) => s.clone(),
        NodeKind::Bool(b) => b.to_string(),
        NodeKind::Int(i) => i.to_string(),
        NodeKind::Float(f) => f.to_string(),
        _ => {
            diags.push(Diagnostic::new(
                node.pos,
                format!(
                    "{what} is an expression written as text, found {}; quote it if it starts with `!`, `[`, `{{`, `&`, `*` or `%`",
                    node.kind_name()
                ),
            ));
            return None;
        }
    };
    Some(node.spanned(text))
}

/// A step is either a bare name (`trim`) or a one-entry mapping (`range: {min: 1}`).
fn read_step(node: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<StepSpec> {
    match &node.kind {
        NodeKind::Str(name) => Some(StepSpec { name: node.spanned(name.clone()), arg: None, when: None }),
        NodeKind::Map(entries) if entries.len() == 1 => {
            let (name, arg) = &entries[0];
            Some(StepSpec { name: name.clone(), arg: Some(arg.clone()), when: None })
        }
        // `- cpf:` with `when:` on the next line: the step, and the condition it applies under.
        NodeKind::Map(entries) if entries.len() == 2 && entries.iter().any(|(k, _)| k.value == "when") => {
            let (_, when) = entries.iter().find(|(k, _)| k.value == "when").expect("checked");
            let (name, arg) = entries.iter().find(|(k, _)| k.value != "when").expect("two entries");
            let arg = (!matches!(arg.kind, NodeKind::Null)).then(|| arg.clone());
            Some(StepSpec { name: name.clone(), arg, when: expression(when, "`when`", diags) })
        }
        NodeKind::Map(entries) => {
            diags.push(Diagnostic::new(
                node.pos,
                format!("a {what} with arguments is one `name: argument` entry, found {} entries", entries.len()),
            ));
            None
        }
        _ => {
            diags.push(Diagnostic::new(
                node.pos,
                format!("a {what} is a name or a `name: argument` entry, found {}", node.kind_name()),
            ));
            None
        }
    }
}

fn read_rule(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<RuleSpec> {
    let f = Fields::read(node, "a rule", RULE_KEYS, diags)?;
    let name = f.string("name", diags);
    if f.get("name").is_none() {
        diags.push(Diagnostic::new(node.pos, "rule is missing `name`"));
    }
    let check = f.get("check").and_then(|n| expression(n, "`check`", diags));
    let when = match f.get("when") {
        None if f.get("check").is_some() => None,
        None => {
            diags.push(Diagnostic::new(node.pos, "rule is missing `check` (an expression that must hold) or `when`"));
            None
        }
        Some(w @ Node { kind: NodeKind::Map(_), .. }) => read_when(w, diags).map(RuleWhen::Field),
        Some(w) => expression(w, "`when`", diags).map(RuleWhen::Expr),
    };
    Some(RuleSpec {
        pos: node.pos,
        name,
        when,
        require: f.string_list("require", diags),
        forbid: f.string_list("forbid", diags),
        check,
        message: f.string("message", diags).map(|s| s.value),
        field: f.string("field", diags),
    })
}

fn read_when(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<WhenSpec> {
    let f = Fields::read(node, "`when`", WHEN_KEYS, diags)?;
    let field = f.string("field", diags);
    if f.get("field").is_none() {
        diags.push(Diagnostic::new(node.pos, "`when` is missing `field`"));
    }
    let one_of = f.get("in").and_then(|n| match &n.kind {
        NodeKind::Seq(items) => Some(Spanned::new(items.clone(), n.pos)),
        _ => {
            diags.push(Diagnostic::new(n.pos, format!("`in` must be a list, found {}", n.kind_name())));
            None
        }
    });
    Some(WhenSpec {
        pos: node.pos,
        field,
        equals: f.get("equals").cloned(),
        one_of,
        present: f.boolean("present", diags),
    })
}

fn read_test(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<TestSpec> {
    let f = Fields::read(node, "a test", TEST_KEYS, diags)?;
    let name = f.string("name", diags);
    if f.get("name").is_none() {
        diags.push(Diagnostic::new(node.pos, "test is missing `name`"));
    }
    let input = match (f.get("input"), f.get("input_raw")) {
        (Some(i), None) => Some(TestInput::Structured(i.clone())),
        (None, Some(_)) => f.string("input_raw", diags).map(TestInput::Raw),
        (Some(i), Some(_)) => {
            diags.push(Diagnostic::new(i.pos, "a test has either `input` or `input_raw`, not both"));
            None
        }
        (None, None) => {
            diags.push(Diagnostic::new(node.pos, "test is missing `input`"));
            None
        }
    };
    let expect = match f.get("expect") {
        None => {
            diags.push(Diagnostic::new(node.pos, "test is missing `expect`"));
            None
        }
        Some(e) => read_expect(e, diags),
    };
    let outputs = f
        .get("expect")
        .and_then(|e| Fields::read(e, "`expect`", EXPECT_KEYS, &mut Vec::new()))
        .and_then(|e| e.get("output").map(|n| (e, n)))
        .map(|(e, n)| match &n.kind {
            NodeKind::Seq(_) => Spanned::new(e.string_list("output", diags), n.pos),
            _ => Spanned::new(e.string("output", diags).into_iter().collect(), n.pos),
        });
    Some(TestSpec { pos: node.pos, name, input, expect, outputs })
}

fn read_expect(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<ExpectSpec> {
    let f = Fields::read(node, "`expect`", EXPECT_KEYS, diags)?;
    if let Some(output) = f.get("output")
        && (f.get("fail").is_some() || f.get("dropped").is_some())
    {
        diags
            .push(Diagnostic::new(output.pos, "`output` says where a mapped record goes: it goes with `ok`, or alone"));
        return None;
    }
    if f.get("output").is_some() && f.get("ok").is_none() {
        return Some(ExpectSpec::Routed);
    }
    match (f.get("ok"), f.get("fail"), f.get("dropped")) {
        (None, None, Some(_)) => match f.boolean("dropped", diags) {
            Some(b) if b.value => Some(ExpectSpec::Dropped),
            Some(b) => {
                diags.push(Diagnostic::new(b.pos, "`dropped: false` says nothing; expect `ok` or `fail` instead"));
                None
            }
            None => None,
        },
        (Some(ok), None, None) => Some(ExpectSpec::Ok(ok.clone())),
        (None, Some(_), None) => {
            let errors = f
                .list("fail", diags)
                .iter()
                .filter_map(|n| {
                    let e = Fields::read(n, "an expected error", EXPECTED_ERROR_KEYS, diags)?;
                    let field = match e.get("field") {
                        None | Some(Node { kind: NodeKind::Null, .. }) => None,
                        Some(_) => Some(e.string("field", diags)?.value),
                    };
                    let rule = e.string("rule", diags);
                    if e.get("rule").is_none() {
                        diags.push(Diagnostic::new(n.pos, "expected error is missing `rule`"));
                    }
                    Some(ExpectedError { pos: n.pos, field, rule: rule?.value })
                })
                .collect();
            Some(ExpectSpec::Fail(errors))
        }
        _ => {
            diags.push(Diagnostic::new(node.pos, "`expect` has exactly one of `ok`, `fail`, `dropped` or `output`"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_the_node() {
        let (spec, diags) = parse("version: 1\nname: x\nfields:\n  - target: a\n    source: $.a\n    type: string\n");
        assert!(diags.is_empty(), "{diags:?}");
        let field = &spec.fields[0];
        assert_eq!(field.pos, Pos::new(4, 5));
        assert_eq!(field.source.as_ref().unwrap().pos, Pos::new(5, 13));
        assert_eq!(spec.version.unwrap().value, 1);
    }

    #[test]
    fn unknown_keys_are_reported_with_a_suggestion() {
        let (_, diags) = parse(
            "version: 1\nname: x\nfields:\n  - target: a\n    source: $.a\n    type: string\n    requird: true\n",
        );
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].pos, Pos::new(7, 5));
        assert!(diags[0].message.contains("unknown key `requird`"), "{}", diags[0].message);
        assert!(diags[0].message.contains("did you mean `required`?"), "{}", diags[0].message);
    }

    #[test]
    fn yaml_syntax_errors_are_located() {
        let (_, diags) = parse("version: 1\nname: [unclosed\n");
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.starts_with("invalid YAML"), "{}", diags[0].message);
        assert!(diags[0].pos.line >= 2);
    }

    #[test]
    fn duplicate_yaml_keys_are_refused() {
        let (_, diags) = parse("version: 1\nname: x\nname: y\nfields: []\n");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            diags[0].message,
            "`name` is given twice in the same block (first on line 2); a block takes each key once: keep one"
        );
        assert_eq!((diags[0].pos.line, diags[0].pos.col), (3, 1));
    }

    #[test]
    fn steps_take_bare_names_or_one_argument() {
        let (spec, diags) = parse(
            "version: 1\nname: x\nfields:\n  - target: a\n    source: $.a\n    type: integer\n    transform: [to_integer, {divide: 100}]\n    validate:\n      - range: { min: 1 }\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let f = &spec.fields[0];
        assert_eq!(f.transform[0].name.value, "to_integer");
        assert!(f.transform[0].arg.is_none());
        assert_eq!(f.transform[1].arg.as_ref().unwrap().kind, NodeKind::Int(100));
        assert_eq!(f.validate[0].name.value, "range");
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let mut diags = vec![];
        let node = load_yaml("a: '123'\nb: 123\nc: yes\n", &mut diags).unwrap();
        let json = node.to_json().unwrap();
        assert_eq!(json, serde_json::json!({"a": "123", "b": 123, "c": "yes"}));
    }

    #[test]
    fn every_shape_problem_is_collected() {
        let (_, diags) =
            parse("version: one\nfields:\n  - source: $.a\n  - 42\nrules:\n  - when: {field: a, equls: 1}\n");
        let messages: Vec<_> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("`version` must be an integer")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("missing `name`")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("missing `target`")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("a field must be a mapping")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("unknown key `equls`")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("rule is missing `name`")), "{messages:?}");
    }
}
