//! What applying a plan to one record gives: a mapped output or a failure with every error. These
//! are values, never `Err`: a record that fails is data for the fail topic.

use serde::Serialize;
use serde_json::Value;

/// Where a record failed: reading it, a field's checks, or a cross-field rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Reading the record: not JSON, not an object, too deep.
    Decode,
    /// A field's type check, transforms or validators.
    Validate,
    /// A cross-field rule.
    Rule,
    /// Choosing the record's outputs (`outputs:`): none takes it, or a computed topic is not one
    /// of the declared.
    Route,
    /// Writing the mapped record in the output's format (Avro): it does not fit the writer
    /// schema.
    Encode,
    /// A defect of the engine met on this record (a panic caught): never the record's fault.
    Internal,
}

impl Stage {
    /// The stage as the fail envelope writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Validate => "validate",
            Stage::Rule => "rule",
            Stage::Route => "route",
            Stage::Encode => "encode",
            Stage::Internal => "internal",
        }
    }
}

/// One problem with one record: which output field, which rule or validator, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    /// The output field, or `None` for a record-level error.
    pub field: Option<String>,
    /// The validator, transform or rule that failed (`required`, `type`, a rule's name).
    pub rule: String,
    /// Why, in words (without the value when it is sensitive).
    pub message: String,
}

impl FieldError {
    /// `field:rule`, the name failures are counted and selected by (`-` for a record-level error).
    pub fn field_rule(&self) -> String {
        field_rule(self.field.as_deref(), &self.rule)
    }
}

/// `field:rule` (`-:rule` for a record-level error): the one spelling shared by logs, metrics,
/// triage and replay.
pub fn field_rule(field: Option<&str>, rule: &str) -> String {
    let field = field.unwrap_or("-");
    let mut text = String::with_capacity(field.len() + 1 + rule.len());
    text.push_str(field);
    text.push(':');
    text.push_str(rule);
    text
}

/// The distinct `field:rule`s of a failure's errors, in order of first appearance.
pub fn distinct_field_rules(pairs: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    for rule in pairs {
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    rules
}

/// The rule of the error a record gets when its expressions run out of steps.
pub const BUDGET_RULE: &str = "budget";

/// The rule of the error a field gets when a time zone its record gives is not an IANA name.
pub const ZONE_RULE: &str = "zone";

/// What a transform or validator reports; the field name is added by the caller.
#[derive(Debug, PartialEq)]
pub struct StepError {
    /// The step's name.
    pub rule: String,
    /// Why it failed.
    pub message: String,
}

/// The result of applying the plan to one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The record mapped: the output to write.
    Mapped(Mapped),
    /// The record failed: where and why.
    Failed(Failure),
    /// The mapping's `drop:` holds for this record: it is skipped, and counted.
    Dropped,
}

/// A mapped record: what goes to the ok topic.
#[derive(Clone, Debug, PartialEq)]
pub struct Mapped {
    /// The output object as JSON bytes, fields in spec order.
    pub value: Vec<u8>,
    /// The Kafka key chosen by the spec's `key:` (string values as their text), if it names one.
    pub key: Option<Vec<u8>>,
    /// The record's stable id from the spec's `dedupe_key:`, if it has one and it has a value.
    pub id: Option<String>,
    /// Where it goes by the mapping's `outputs:`, in order; empty when the mapping has none (the
    /// record goes to the ok topic).
    pub deliveries: Deliveries,
}

/// A record's deliveries, in order: one held inline (most records go to one output), more spilled.
pub type Deliveries = smallvec::SmallVec<[Delivery; 1]>;

/// Where one mapped record goes: one output, one of its topics, and what is written there.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The output's index in `Plan::outputs`.
    pub output: usize,
    /// The topic's index in that output's `topics`.
    pub topic: usize,
    /// The output's own value when it writes only some `fields:`; `None`: the record's value.
    pub value: Option<Vec<u8>>,
    /// The output's own Kafka key (its `key:` target); `None` when it has none, and the record's
    /// key (`Mapped::key`, else the source record's) applies.
    pub key: Option<Vec<u8>>,
    /// The CloudEvents `type` and `source` of this record, when the output is a CloudEvent.
    pub event: Option<Box<EventAttributes>>,
}

/// A record's CloudEvents attributes that the mapping decides (the host adds `id` and `time`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventAttributes {
    /// `type`.
    pub event_type: String,
    /// `source`.
    pub source: String,
}

/// Why a record failed: where, and every error found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Where it failed.
    pub stage: Stage,
    /// Every error found.
    pub errors: Vec<FieldError>,
    /// The record's stable id from the spec's `dedupe_key:`, when it was computed before the
    /// record failed.
    pub id: Option<String>,
}

impl Failure {
    /// A failure of the whole record at the decode stage (not JSON, unreadable, `drop` failed):
    /// one error that names no field.
    pub fn of_record(rule: &str, message: String) -> Self {
        Failure { stage: Stage::Decode, errors: vec![FieldError { field: None, rule: rule.into(), message }], id: None }
    }
}

impl Outcome {
    /// The output as a `Value` (tests and the embedded spec tests use this).
    pub fn ok_value(&self) -> Option<Value> {
        match self {
            Outcome::Mapped(m) => serde_json::from_slice(&m.value).ok(),
            Outcome::Failed(_) | Outcome::Dropped => None,
        }
    }

    /// The errors of a failed record; none otherwise.
    pub fn errors(&self) -> &[FieldError] {
        match self {
            Outcome::Mapped(_) | Outcome::Dropped => &[],
            Outcome::Failed(f) => &f.errors,
        }
    }
}
