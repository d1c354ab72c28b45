//! `outputs:` — where a mapped record goes, by its content. Each entry is a condition (`when`), a
//! topic (a name, or an expression held to a declared list), and what of the record it writes
//! (`fields`, `key`, a CloudEvents envelope). Entries are tried in order: the first whose `when`
//! holds takes the record, unless it says `all: true`, in which case the record also goes on to
//! the entries after it (fan-out). A record no entry takes fails, stage `route`, as does one whose
//! computed topic is not among its entry's `topics:`: a topic is never invented at run time.
//!
//! The compiler (in the plan module) builds the entries; this module evaluates them on a mapped
//! record's field states and says, for `explain`, which matched and why.

use std::sync::Arc;

use super::expr::{Compiled, Env, EvalError, Ty};
use super::field::Field;
use super::outcome::{Deliveries, Delivery, EventAttributes, FieldError, Stage};
use super::output::OutputTree;
use super::value::{FieldState, Val};
use crate::diagnostic::{Diagnostic, Diagnostics, Pos, Spanned, one_line};
use crate::spec::{AttributeSpec, OutputEntrySpec};

/// The rule of a record's `route` failure.
pub const ROUTE_RULE: &str = "route";

/// One entry of `outputs:`, compiled.
#[derive(Debug)]
pub struct OutputEntry {
    pub(super) name: Arc<str>,
    pub(super) when: Option<Compiled>,
    pub(super) topic: Topic,
    pub(super) fanout: bool,
    /// The field whose value is this output's key (else the record's key).
    pub(super) key: Option<usize>,
    /// The targets it writes, when `fields:` names some (else the record's whole value).
    pub(super) tree: Option<OutputTree>,
    pub(super) envelope: Envelope,
}

/// Where an entry's records go.
#[derive(Debug)]
pub(super) enum Topic {
    /// `topic: name` — one topic for every record (a list of one, for [`OutputEntry::topics`]).
    Fixed([String; 1]),
    /// `topic: expression` with `topics: [...]`: the expression's value, one of `topics`.
    Computed { code: Compiled, topics: Vec<String> },
}

/// How an entry's messages are wrapped.
#[derive(Debug)]
pub(super) enum Envelope {
    /// The mapped record, as it is.
    Plain,
    /// A CloudEvent, in the Kafka protocol binding's binary or structured mode.
    CloudEvents(Box<CloudEvents>),
}

/// A CloudEvents output's mode and the attributes the mapping decides.
#[derive(Debug)]
pub(super) struct CloudEvents {
    mode: CloudEventsMode,
    event_type: Attribute,
    source: Attribute,
}

/// The two modes of the CloudEvents Kafka protocol binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloudEventsMode {
    /// Attributes in `ce_*` headers, the record as the value.
    Binary,
    /// One `application/cloudevents+json` document holding attributes and record.
    Structured,
}

/// A CloudEvents attribute: written in the mapping, or computed from each record.
#[derive(Debug)]
pub(super) enum Attribute {
    Literal(String),
    Computed(Compiled),
}

impl OutputEntry {
    /// The entry's `name:`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entry's name, shared (hosts label every message of the output with it).
    pub fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// Every topic this output may write to: its `topic:`, or its `topics:`.
    pub fn topics(&self) -> &[String] {
        match &self.topic {
            Topic::Fixed(one) => one,
            Topic::Computed { topics, .. } => topics,
        }
    }

    /// Whether a record it takes also goes on to the entries after it (`all: true`).
    pub fn fans_out(&self) -> bool {
        self.fanout
    }

    /// Whether it takes every record that reaches it (no `when`, no `all`): entries after it are
    /// reached only through fan-out.
    pub fn takes_the_rest(&self) -> bool {
        self.when.is_none() && !self.fanout
    }

    /// Its CloudEvents mode, when its messages are CloudEvents.
    pub fn cloud_events(&self) -> Option<CloudEventsMode> {
        match &self.envelope {
            Envelope::Plain => None,
            Envelope::CloudEvents(events) => Some(events.mode),
        }
    }

    /// Marks the expressions that read a sensitive field: their messages leave values out.
    pub(super) fn follow_sensitivity(&mut self, sensitive: impl Fn(usize) -> bool) {
        let attributes = match &mut self.envelope {
            Envelope::CloudEvents(events) => [Some(&mut events.event_type), Some(&mut events.source)],
            Envelope::Plain => [None, None],
        };
        let computed = attributes.into_iter().flatten().filter_map(|a| match a {
            Attribute::Computed(code) => Some(code),
            Attribute::Literal(_) => None,
        });
        let topic = match &mut self.topic {
            Topic::Computed { code, .. } => Some(code),
            Topic::Fixed(_) => None,
        };
        for code in self.when.iter_mut().chain(topic).chain(computed) {
            code.reads_sensitive = code.reads.iter().any(|&i| sensitive(i));
        }
    }

    /// Whether its `when` holds for the record (no `when`: it always does).
    fn matches(&self, env: Env<'_>) -> Result<bool, FieldError> {
        let Some(when) = &self.when else { return Ok(true) };
        match when.code.condition(env, &mut Vec::new()) {
            Ok(holds) => Ok(holds == Some(true)),
            Err(e) => {
                Err(self.error(format!("its `when` could not be evaluated: {}", e.message(when.reads_sensitive))))
            }
        }
    }

    /// The index of the topic it writes this record to, among [`topics`](Self::topics).
    fn topic_index(&self, env: Env<'_>) -> Result<usize, FieldError> {
        let Topic::Computed { code, topics } = &self.topic else { return Ok(0) };
        let value = code.code.value(env, &mut Vec::new()).map_err(|e| {
            self.error(format!("its `topic` could not be computed: {}", e.message(code.reads_sensitive)))
        })?;
        let text = match &value {
            Some(v) => text_of(v),
            None => {
                return Err(self.error(format!("its `topic` `{}` gave no value (it read an absent one)", code.text)));
            }
        };
        match text.and_then(|t| topics.iter().position(|known| known == t)) {
            Some(i) => Ok(i),
            None => {
                let shown = match (code.reads_sensitive, text) {
                    (true, _) => "a value (hidden: it reads a sensitive field)".to_string(),
                    (false, Some(t)) => format!("`{}`", cut(t)),
                    (false, None) => {
                        let mut json = Vec::new();
                        value.as_ref().expect("matched above").write_json(&mut json);
                        format!("{} (not text)", cut(&String::from_utf8_lossy(&json)))
                    }
                };
                Err(self.error(format!(
                    "its `topic` computed {shown}, which is not one of its `topics` ({})",
                    topics.join(", ")
                )))
            }
        }
    }

    fn attributes(&self, env: Env<'_>) -> Result<Option<Box<EventAttributes>>, FieldError> {
        let Envelope::CloudEvents(events) = &self.envelope else { return Ok(None) };
        let (event_type, source) = (&events.event_type, &events.source);
        let text = |attribute: &Attribute, name: &str| match attribute {
            Attribute::Literal(text) => Ok(text.clone()),
            Attribute::Computed(code) => match code.code.value(env, &mut Vec::new()) {
                Ok(Some(v)) => match text_of(&v) {
                    Some(text) if !text.is_empty() => Ok(text.to_string()),
                    _ => Err(self.error(format!("its CloudEvents `{name}` is not text, and the attribute is text"))),
                },
                Ok(None) => Err(self.error(format!("its CloudEvents `{name}` gave no value, and it is required"))),
                Err(e) => Err(self.eval_error(
                    &e,
                    format!("its CloudEvents `{name}` could not be computed: {}", e.message(code.reads_sensitive)),
                )),
            },
        };
        Ok(Some(Box::new(EventAttributes { event_type: text(event_type, "type")?, source: text(source, "source")? })))
    }

    fn error(&self, why: String) -> FieldError {
        FieldError { field: None, rule: ROUTE_RULE.into(), message: format!("output `{}`: {why}", self.name) }
    }

    /// An expression's error: rule `route`, or the error's own (`budget`: the record's steps ran out).
    fn eval_error(&self, e: &EvalError, why: String) -> FieldError {
        FieldError { rule: e.kind.rule().unwrap_or(ROUTE_RULE).into(), ..self.error(why) }
    }
}

/// The outputs a mapped record goes to, in entry order, or why it goes to none (stage `route`).
pub(super) fn route(
    outputs: &[OutputEntry],
    env: Env<'_>,
    states: &[FieldState<'_>],
) -> Result<Deliveries, (Stage, Vec<FieldError>)> {
    let mut deliveries = Deliveries::new();
    let fail = |e: FieldError| (Stage::Route, vec![e]);
    for (index, output) in outputs.iter().enumerate() {
        if !output.matches(env).map_err(fail)? {
            continue;
        }
        let topic = output.topic_index(env).map_err(fail)?;
        let event = output.attributes(env).map_err(fail)?;
        let value = output.tree.as_ref().map(|tree| {
            let mut value = Vec::new();
            tree.write(states, &mut value);
            value
        });
        // An output without a key of its own writes the record's (`Mapped::key`), not copied here.
        let key = output.key.and_then(|field| key_of(&states[field]));
        deliveries.push(Delivery { output: index, topic, value, key, event });
        if !output.fanout {
            break;
        }
    }
    if deliveries.is_empty() {
        let names: Vec<&str> = outputs.iter().map(OutputEntry::name).collect();
        return Err(fail(FieldError {
            field: None,
            rule: ROUTE_RULE.into(),
            message: format!(
                "no output takes the record: the `when` of every output is false ({}); add an output without `when` to take the rest",
                names.join(", ")
            ),
        }));
    }
    Ok(deliveries)
}

/// The most characters of a computed value a message quotes: a value of megabytes must not
/// become a fail record of megabytes.
const QUOTED_CHARS: usize = 80;

/// `text`, cut after [`QUOTED_CHARS`] characters (`…`).
fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => text.into(),
        Some((at, _)) => format!("{}…", &text[..at]).into(),
    }
}

/// A value's text, if it is text (however the evaluator holds it).
fn text_of<'v>(value: &'v Val<'_>) -> Option<&'v str> {
    match value {
        Val::Json(json) => json.as_str(),
        other => other.as_str(),
    }
}

/// A field's value as a Kafka key: text as its bytes, anything else as its JSON.
pub(super) fn key_of(state: &FieldState<'_>) -> Option<Vec<u8>> {
    match state {
        FieldState::Present(v) => Some(match v.as_str() {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut json = Vec::new();
                v.write_json(&mut json);
                json
            }
        }),
        _ => None,
    }
}

/// One output's verdict on a record, for `explain`.
#[derive(Debug, serde::Serialize)]
pub struct OutputTrace {
    /// The output's name.
    pub name: String,
    /// Whether the record goes there.
    pub taken: bool,
    /// Why, or why not.
    pub verdict: String,
    /// The topic it goes to, when taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// Each output's verdict on a mapped record, in entry order, as [`route`] decides it.
pub(super) fn trace(outputs: &[OutputEntry], env: Env<'_>) -> Vec<OutputTrace> {
    let mut traces = Vec::new();
    let mut taken_by: Option<&str> = None;
    for output in outputs {
        let mut verdict = |taken: bool, verdict: String, topic: Option<String>| {
            traces.push(OutputTrace { name: output.name.to_string(), taken, verdict, topic })
        };
        if let Some(first) = taken_by {
            verdict(false, format!("not tried: output `{first}` took the record first"), None);
            continue;
        }
        let when = match output.matches(env) {
            Err(e) => {
                verdict(false, format!("✗ {}", e.message), None);
                break;
            }
            Ok(false) => {
                let text = output.when.as_ref().map_or("", |w| w.text.as_str());
                verdict(false, format!("its `when` `{text}` does not hold"), None);
                continue;
            }
            Ok(true) => match &output.when {
                Some(w) => format!("its `when` `{}` holds", w.text),
                None => "it has no `when`: it takes every record that reaches it".to_string(),
            },
        };
        match output.topic_index(env).and_then(|t| output.attributes(env).map(|_| t)) {
            Err(e) => {
                verdict(false, format!("✗ {}", e.message), None);
                break;
            }
            Ok(t) => {
                let how = match &output.topic {
                    Topic::Fixed(_) => String::new(),
                    Topic::Computed { code, .. } => format!("; `{}` gives its topic", code.text),
                };
                let also = if output.fanout { " (all: true: the next outputs are tried too)" } else { "" };
                verdict(true, format!("✓ {when}{how}{also}"), Some(output.topics()[t].clone()));
                if !output.fanout {
                    taken_by = Some(&output.name);
                }
            }
        }
    }
    traces
}

/// The record's targets as `outputs:` sees them.
pub(super) struct Targets<'t> {
    /// The compiled fields (none when a field did not compile).
    pub(super) compiled: &'t [Field],
    /// Every target as written, also of fields that did not compile.
    pub(super) declared: &'t [&'t str],
}

/// The longest name Kafka takes for a topic.
const MAX_TOPIC_LEN: usize = 249;

/// Compiles `outputs:`, reporting every problem: `key` finds a key target, `expression` compiles
/// an expression over the record (targets and `$` paths). `json` says whether the mapping writes
/// JSON (structured CloudEvents are JSON documents).
pub(super) fn compile(
    specs: &[OutputEntrySpec],
    targets: Targets<'_>,
    json: bool,
    mut key: impl FnMut(&Spanned<String>, &str, &mut Diagnostics) -> Option<usize>,
    mut expression: impl FnMut(&Spanned<String>, &mut Diagnostics) -> Option<Compiled>,
    diags: &mut Diagnostics,
) -> Vec<OutputEntry> {
    let mut compiled = Vec::new();
    let mut names: Vec<&Spanned<String>> = Vec::new();
    let mut catch_all: Option<(&str, Pos)> = None;
    for (index, spec) in specs.iter().enumerate() {
        if let Some(name) = &spec.name {
            match names.iter().find(|n| n.value == name.value) {
                Some(first) => diags.push(Diagnostic::new(
                    name.pos,
                    format!("duplicate output name `{}` (first at {})", name.value, first.pos),
                )),
                None => names.push(name),
            }
        }
        if let Some((before, at)) = catch_all {
            diags.push(Diagnostic::warning(
                spec.pos,
                format!(
                    "this output is never reached: output `{before}` (at {at}) has no `when` and takes every record before it"
                ),
            ));
        }
        let when = spec.when.as_ref().and_then(|text| condition(text, &mut expression, diags));
        let topic = topic(spec, &mut expression, diags);
        let key = spec.key.as_ref().and_then(|k| key(k, "an output's `key`", diags));
        let tree = spec.fields.as_ref().and_then(|f| written_fields(f, &targets, diags));
        let envelope = envelope(spec, json, &mut expression, diags);
        let fanout = spec.all.as_ref().is_some_and(|a| a.value);
        if spec.when.is_none() && !fanout && catch_all.is_none() {
            catch_all = Some((spec.name.as_ref().map_or("", |n| n.value.as_str()), spec.pos));
        }
        same_event_source(spec, &specs[..index], diags);
        if let (Some(name), Some(topic), Some(envelope)) = (&spec.name, topic, envelope) {
            let when_ok = spec.when.is_none() || when.is_some();
            let key_ok = spec.key.is_none() || key.is_some();
            let fields_ok = spec.fields.is_none() || tree.is_some();
            if when_ok && key_ok && fields_ok {
                let name = Arc::from(name.value.as_str());
                compiled.push(OutputEntry { name, when, topic, fanout, key, tree, envelope });
            }
        }
    }
    compiled
}

/// Warns of a CloudEvents output that an earlier one fanning out (`all: true`) shares its literal
/// `source` with: a record going to both is two events with the same `source` and `id`, which
/// CloudEvents consumers take for one event delivered twice.
fn same_event_source(spec: &OutputEntrySpec, earlier: &[OutputEntrySpec], diags: &mut Diagnostics) {
    let literal_source = |s: &OutputEntrySpec| match (&s.envelope, &s.event_source) {
        (Some(e), Some(AttributeSpec::Literal(source))) if e.value.starts_with("cloudevents") => {
            Some(source.value.clone())
        }
        _ => None,
    };
    let Some(source) = literal_source(spec) else { return };
    let fanning = earlier.iter().filter(|e| e.all.as_ref().is_some_and(|a| a.value));
    if let Some(first) = fanning.into_iter().find(|e| literal_source(e).as_deref() == Some(source.as_str())) {
        diags.push(Diagnostic::warning(
            spec.pos,
            format!(
                "output `{}` (at {}) fans out to this one with the same CloudEvents `source` `{source}`: a record going to both is two events with one `source` and `id`; give each its own `source`",
                first.name.as_ref().map_or("", |n| n.value.as_str()),
                first.pos
            ),
        ));
    }
}

fn condition(
    text: &Spanned<String>,
    expression: &mut impl FnMut(&Spanned<String>, &mut Diagnostics) -> Option<Compiled>,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    let compiled = expression(text, diags)?;
    of_kind(text, compiled, Kind::Condition, "an output's `when`", diags)
}

/// What an expression of an output must give.
#[derive(Clone, Copy)]
enum Kind {
    /// A boolean (`when`).
    Condition,
    /// Text (a computed topic or CloudEvents attribute).
    Text,
}

/// `compiled` when it gives what `kind` asks (or may, as `dyn` and null may); else a problem at
/// `text` saying what `what` should give and what it gives.
fn of_kind(
    text: &Spanned<String>,
    compiled: Compiled,
    kind: Kind,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    let fits = match kind {
        Kind::Condition => matches!(compiled.ty, Ty::Bool | Ty::Dyn | Ty::Null),
        Kind::Text => matches!(compiled.ty, Ty::String | Ty::Dyn | Ty::Null),
    };
    if fits {
        return Some(compiled);
    }
    let (quoted, gives) = (one_line(&text.value), compiled.ty.name());
    let message = match kind {
        Kind::Condition => format!("{what} is a condition, but `{quoted}` gives {gives}, not a boolean"),
        Kind::Text => format!("{what} is text, but `{quoted}` gives {gives}"),
    };
    diags.push(Diagnostic::new(text.pos, message).spanning(&text.extent));
    None
}

/// A topic name Kafka takes: 1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`.
fn check_topic_name(name: &Spanned<String>, diags: &mut Diagnostics) -> bool {
    let valid = !name.value.is_empty()
        && name.value.len() <= MAX_TOPIC_LEN
        && name.value != "."
        && name.value != ".."
        && name.value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        diags.push(Diagnostic::new(
            name.pos,
            format!(
                "`{}` is not a Kafka topic name (1 to {MAX_TOPIC_LEN} of letters, digits, `.`, `_` and `-`)",
                one_line(&name.value)
            ),
        ));
    }
    valid
}

fn topic(
    spec: &OutputEntrySpec,
    expression: &mut impl FnMut(&Spanned<String>, &mut Diagnostics) -> Option<Compiled>,
    diags: &mut Diagnostics,
) -> Option<Topic> {
    let text = spec.topic.as_ref()?;
    let Some(topics) = &spec.topics else {
        return check_topic_name(text, diags).then(|| Topic::Fixed([text.value.clone()]));
    };
    if topics.value.is_empty() {
        diags.push(Diagnostic::new(topics.pos, "`topics` lists the topics a computed `topic` may give; it is empty"));
        return None;
    }
    let mut valid = true;
    for (i, name) in topics.value.iter().enumerate() {
        valid &= check_topic_name(name, diags);
        if topics.value[..i].iter().any(|earlier| earlier.value == name.value) {
            diags.push(Diagnostic::new(name.pos, format!("`{}` is listed twice in `topics`", name.value)));
        }
    }
    if topics.value.iter().any(|t| t.value == text.value) {
        diags.push(Diagnostic::new(
            text.pos,
            format!(
                "with `topics`, `topic` is an expression that picks one of them; write a fixed topic without `topics`, or as text: `'\"{}\"'`",
                text.value
            ),
        ));
        return None;
    }
    let code = of_kind(text, expression(text, diags)?, Kind::Text, "a `topic`", diags)?;
    valid.then(|| Topic::Computed { code, topics: topics.value.iter().map(|t| t.value.clone()).collect() })
}

/// `fields:` — the targets an output writes: each name is a written target, or the dotted
/// prefix of some (`customer` for `customer.id` and `customer.tier`).
fn written_fields(
    names: &Spanned<Vec<Spanned<String>>>,
    targets: &Targets<'_>,
    diags: &mut Diagnostics,
) -> Option<OutputTree> {
    if names.value.is_empty() {
        diags.push(Diagnostic::new(names.pos, "`fields` lists the targets the output writes; it is empty"));
        return None;
    }
    let inside = |target: &str, name: &str| {
        target == name || target.strip_prefix(name).is_some_and(|rest| rest.starts_with('.'))
    };
    let mut known = true;
    for name in &names.value {
        if !targets.declared.iter().any(|t| inside(t, &name.value)) {
            known = false;
            diags.push(Diagnostic::new(
                name.pos,
                format!(
                    "`fields` names unknown target `{}`{}",
                    name.value,
                    crate::diagnostic::suggestion(&name.value, written_names(targets.declared))
                ),
            ));
        } else if !targets.compiled.is_empty()
            && targets.compiled.iter().filter(|f| inside(&f.target, &name.value)).all(|f| !f.output)
        {
            known = false;
            diags.push(Diagnostic::new(
                name.pos,
                format!("`fields` names `{}`, which is not written (`output: false`)", name.value),
            ));
        }
    }
    if !known || targets.compiled.is_empty() {
        return None;
    }
    let chosen = |target: &str| names.value.iter().any(|n| inside(target, &n.value));
    Some(OutputTree::build(
        targets
            .compiled
            .iter()
            .enumerate()
            .filter(|(_, f)| f.output && chosen(&f.target))
            .map(|(i, f)| (i, f.target.as_str())),
    ))
}

/// The names `fields:` may give: every target, and every dotted prefix of one.
fn written_names<'t>(declared: &'t [&'t str]) -> impl Iterator<Item = &'t str> {
    declared.iter().flat_map(|t| t.match_indices('.').map(|(i, _)| &t[..i]).chain([*t]))
}

/// `envelope:` with its CloudEvents `type:` and `source:`.
fn envelope(
    spec: &OutputEntrySpec,
    json: bool,
    expression: &mut impl FnMut(&Spanned<String>, &mut Diagnostics) -> Option<Compiled>,
    diags: &mut Diagnostics,
) -> Option<Envelope> {
    let mode = match spec.envelope.as_ref().map(|e| (e, e.value.as_str())) {
        None | Some((_, "none")) => None,
        Some((_, "cloudevents")) => Some(CloudEventsMode::Binary),
        Some((e, "cloudevents-structured")) if !json => {
            diags.push(Diagnostic::new(
                e.pos,
                "structured CloudEvents are JSON documents, and this mapping writes another `output.format`; use `envelope: cloudevents` (binary mode)",
            ));
            return None;
        }
        Some((_, "cloudevents-structured")) => Some(CloudEventsMode::Structured),
        Some((e, other)) => {
            diags.push(Diagnostic::new(
                e.pos,
                format!("unknown envelope `{other}`; envelopes: none, cloudevents, cloudevents-structured"),
            ));
            return None;
        }
    };
    let Some(mode) = mode else {
        for (attribute, name) in [(&spec.event_type, "type"), (&spec.event_source, "source")] {
            if let Some(AttributeSpec::Literal(at) | AttributeSpec::Expr(at)) = attribute {
                diags.push(Diagnostic::new(
                    at.pos,
                    format!("`{name}` is a CloudEvents attribute: it needs `envelope: cloudevents`"),
                ));
            }
        }
        return Some(Envelope::Plain);
    };
    let mut attribute = |spec_attribute: &Option<AttributeSpec>, name: &str| match spec_attribute {
        None => {
            diags.push(Diagnostic::new(
                spec.pos,
                format!("a CloudEvents output needs `{name}:` (text, or `{{expr: …}}` computed from the record)"),
            ));
            None
        }
        Some(AttributeSpec::Literal(text)) if text.value.is_empty() => {
            diags.push(Diagnostic::new(text.pos, format!("the CloudEvents `{name}` cannot be empty")));
            None
        }
        Some(AttributeSpec::Literal(text)) => Some(Attribute::Literal(text.value.clone())),
        Some(AttributeSpec::Expr(text)) => {
            let code = expression(text, diags)?;
            of_kind(text, code, Kind::Text, &format!("the CloudEvents `{name}`"), diags).map(Attribute::Computed)
        }
    };
    let event_type = attribute(&spec.event_type, "type");
    let source = attribute(&spec.event_source, "source");
    Some(Envelope::CloudEvents(Box::new(CloudEvents { mode, event_type: event_type?, source: source? })))
}

#[cfg(test)]
mod tests {
    use crate::plan::{Outcome, Plan, Stage, load_str};

    const PAYMENTS: &str = r#"version: 1
name: payments
key: payment_id
fields:
  - {target: payment_id, source: $.id, type: string, required: true}
  - {target: amount_cents, source: $.amount, type: integer, required: true}
  - {target: region, source: $.region, type: string}
  - {target: customer.id, source: $.customer.id, type: string, required: true}
  - {target: customer.tier, source: $.customer.tier, type: string}
outputs:
  - name: audit
    all: true
    when: amount_cents > 5000000
    topic: payments.audit.v1
  - name: priority
    when: amount_cents > 1000000
    topic: payments.priority.v1
    envelope: cloudevents
    type: com.example.payment.priority
    source: {expr: '"/payments/" + region'}
  - name: regional
    when: region != null
    topic: '"payments." + lower(region) + ".v1"'
    topics: [payments.br.v1, payments.us.v1, payments.de.v1]
    key: customer.id
    fields: [payment_id, customer]
"#;

    fn plan(text: &str) -> Plan {
        load_str(text).map_err(|d| format!("{d:#?}")).unwrap().1
    }

    fn record(amount: i64, region: &str) -> Vec<u8> {
        format!(r#"{{"id":"p-1","amount":{amount},"region":"{region}","customer":{{"id":"c-9","tier":"gold"}}}}"#)
            .into_bytes()
    }

    /// `(output name, topic)` of each delivery, or the failure's stage and messages.
    fn routes(plan: &Plan, value: &[u8]) -> Result<Vec<(String, String)>, (Stage, String)> {
        match plan.apply(value) {
            Outcome::Mapped(m) => Ok(m
                .deliveries
                .iter()
                .map(|d| {
                    let output = &plan.outputs()[d.output];
                    (output.name().to_string(), output.topics()[d.topic].clone())
                })
                .collect()),
            Outcome::Failed(f) => {
                Err((f.stage, f.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")))
            }
            Outcome::Dropped => panic!("dropped"),
        }
    }

    fn pair(name: &str, topic: &str) -> (String, String) {
        (name.to_string(), topic.to_string())
    }

    #[test]
    fn the_first_output_whose_when_holds_takes_the_record_and_all_true_fans_out() {
        let plan = plan(PAYMENTS);
        assert_eq!(routes(&plan, &record(2_000_000, "BR")), Ok(vec![pair("priority", "payments.priority.v1")]));
        assert_eq!(routes(&plan, &record(100, "US")), Ok(vec![pair("regional", "payments.us.v1")]));
        assert_eq!(
            routes(&plan, &record(9_000_000, "DE")),
            Ok(vec![pair("audit", "payments.audit.v1"), pair("priority", "payments.priority.v1")]),
            "audit says `all: true`: the record goes on to the next outputs"
        );
        assert_eq!(plan.output_topics().len(), 5);
    }

    #[test]
    fn a_computed_topic_outside_its_list_and_a_record_no_output_takes_fail_at_stage_route() {
        let plan = plan(PAYMENTS);
        let (stage, message) = routes(&plan, &record(100, "FR")).unwrap_err();
        assert_eq!(stage, Stage::Route);
        assert!(
            message
                .contains("output `regional`: its `topic` computed `payments.fr.v1`, which is not one of its `topics`"),
            "{message}"
        );
        let unrouted = br#"{"id":"p-2","amount":5,"customer":{"id":"c-1"}}"#;
        let (stage, message) = routes(&plan, unrouted).unwrap_err();
        assert_eq!(stage, Stage::Route);
        assert!(message.starts_with("no output takes the record"), "{message}");
        let Outcome::Failed(failure) = plan.apply(unrouted) else { panic!() };
        assert_eq!((failure.errors[0].field.as_deref(), failure.errors[0].rule.as_str()), (None, "route"));
    }

    #[test]
    fn an_output_writes_its_fields_with_its_key_and_its_cloud_event_attributes() {
        let plan = plan(PAYMENTS);
        let Outcome::Mapped(m) = plan.apply(&record(100, "BR")) else { panic!() };
        let regional = &m.deliveries[0];
        assert_eq!(
            String::from_utf8(regional.value.clone().unwrap()).unwrap(),
            r#"{"payment_id":"p-1","customer":{"id":"c-9","tier":"gold"}}"#
        );
        assert_eq!(regional.key.as_deref(), Some(&b"c-9"[..]), "the output's own key");
        assert_eq!(regional.event, None);
        let Outcome::Mapped(m) = plan.apply(&record(2_000_000, "BR")) else { panic!() };
        let priority = &m.deliveries[0];
        assert_eq!(priority.value, None, "the whole record: shared, not copied");
        assert_eq!(priority.key, None, "no key of its own: the record's applies");
        assert_eq!(m.key.as_deref(), Some(&b"p-1"[..]));
        let event = priority.event.as_ref().unwrap();
        assert_eq!(
            (event.event_type.as_str(), event.source.as_str()),
            ("com.example.payment.priority", "/payments/BR")
        );
        assert_eq!(plan.outputs()[1].cloud_events(), Some(super::CloudEventsMode::Binary));
    }

    #[test]
    fn a_long_computed_topic_is_cut_and_a_spent_budget_fails_with_rule_budget() {
        let plan = plan(
            "version: 1\nname: m\nlimits: { steps: 40 }\nfields:\n  - {target: a, source: $.a, type: string}\n  - {target: n, source: $.n, type: array}\noutputs:\n  - name: slow\n    when: n.exists(x, x == 0) || a == \"x\"\n    topic: t.slow\n  - name: by-a\n    topic: '\"t.\" + a'\n    topics: [t.b]\n",
        );
        let long = format!(r#"{{"a": "{}"}}"#, "y".repeat(1_000));
        let by_a = super::tests::plan(
            "version: 1\nname: m\nfields:\n  - {target: a, source: $.a, type: string}\noutputs:\n  - name: by-a\n    topic: '\"t.\" + a'\n    topics: [t.b]\n",
        );
        let (stage, message) = routes(&by_a, long.as_bytes()).unwrap_err();
        assert_eq!(stage, Stage::Route);
        assert!(message.contains(&format!("computed `t.{}…`", "y".repeat(78))), "{message}");
        assert!(message.len() < 300, "{message}");
        let many: Vec<String> = (1..200).map(|i| i.to_string()).collect();
        let spending = format!(r#"{{"a": "x", "n": [{}]}}"#, many.join(","));
        let Outcome::Failed(failure) = plan.apply(spending.as_bytes()) else { panic!("the budget is spent") };
        assert_eq!(failure.stage, Stage::Route);
        assert_eq!(failure.errors[0].rule, "budget", "{:?}", failure.errors);
    }

    #[test]
    fn without_outputs_a_record_has_no_deliveries() {
        let plan = plan("version: 1\nname: m\nfields:\n  - {target: a, source: $.a, type: integer}\n");
        let Outcome::Mapped(m) = plan.apply(br#"{"a": 1}"#) else { panic!() };
        assert!(m.deliveries.is_empty() && plan.outputs().is_empty());
    }

    fn problems(outputs: &str) -> Vec<String> {
        let text = format!(
            "version: 1\nname: m\nfields:\n  - {{target: a, source: $.a, type: integer}}\n  - {{target: b.c, source: $.c, type: string}}\n  - {{target: h, source: $.h, type: string, output: false}}\noutputs:\n{outputs}"
        );
        match load_str(&text) {
            Ok((_, plan)) => plan.warnings().iter().map(|d| format!("warning {}: {}", d.pos, d.message)).collect(),
            Err(diags) => diags.iter().map(|d| format!("{}: {}", d.pos, d.message)).collect(),
        }
    }

    fn has(problems: &[String], text: &str) -> bool {
        problems.iter().any(|p| p.contains(text))
    }

    #[test]
    fn every_problem_of_outputs_is_reported_where_it_is_written() {
        let found = problems(
            "  - {name: x, when: a + 1, topic: t1}\n  - {name: x, topic: 'a', topics: [t2]}\n  - {name: y, topic: t3, fields: [a, bb, h]}\n  - {name: z, topic: 'bad topic'}\n  - {name: w, topic: t4, topics: [t4]}\n  - {name: v, topic: t5, envelope: cloudevents}\n  - {name: u, topic: t6, type: x.y}\n  - {topic: t7, envelope: json}\n",
        );
        assert!(has(&found, "8:21: an output's `when` is a condition, but `a + 1` gives an integer"), "{found:#?}");
        assert!(has(&found, "9:12: duplicate output name `x` (first at 8:12)"), "{found:#?}");
        assert!(has(&found, "a `topic` is text, but `a` gives an integer"), "{found:#?}");
        assert!(has(&found, "`fields` names unknown target `bb`; did you mean `b.c`?"), "{found:#?}");
        assert!(has(&found, "`fields` names `h`, which is not written (`output: false`)"), "{found:#?}");
        assert!(has(&found, "`bad topic` is not a Kafka topic name"), "{found:#?}");
        assert!(has(&found, "with `topics`, `topic` is an expression that picks one of them"), "{found:#?}");
        assert!(has(&found, "a CloudEvents output needs `type:`"), "{found:#?}");
        assert!(has(&found, "a CloudEvents output needs `source:`"), "{found:#?}");
        assert!(has(&found, "`type` is a CloudEvents attribute: it needs `envelope: cloudevents`"), "{found:#?}");
        assert!(has(&found, "output is missing `name`"), "{found:#?}");
        assert!(has(&found, "unknown envelope `json`"), "{found:#?}");
    }

    #[test]
    fn an_output_after_one_that_takes_every_record_is_never_reached() {
        let found = problems("  - {name: all, topic: t1}\n  - {name: never, when: a > 1, topic: t2}\n");
        assert_eq!(
            found,
            vec![
                "warning 9:5: this output is never reached: output `all` (at 8:5) has no `when` and takes every record before it"
            ]
        );
        assert!(problems("  - {name: tap, all: true, topic: t1}\n  - {name: rest, topic: t2}\n").is_empty());
        let same_source = problems(
            "  - {name: tap, all: true, topic: t1, envelope: cloudevents, type: a, source: /s}\n  - {name: rest, topic: t2, envelope: cloudevents-structured, type: b, source: /s}\n",
        );
        assert_eq!(same_source.len(), 1, "{same_source:?}");
        assert!(
            same_source[0].contains("fans out to this one with the same CloudEvents `source` `/s`"),
            "{same_source:?}"
        );
        let structured_avro = "version: 1\nname: m\noutput: {format: avro, schema: x.avsc}\nfields:\n  - {target: a, source: $.a, type: integer}\noutputs:\n  - {name: o, topic: t, envelope: cloudevents-structured, type: t, source: /s}\n";
        let refused = load_str(structured_avro).unwrap_err();
        assert!(
            refused.iter().any(|d| d.message.starts_with("structured CloudEvents are JSON documents")),
            "{refused:?}"
        );
    }

    #[test]
    fn embedded_tests_say_which_outputs_a_record_goes_to() {
        let text = format!(
            "{PAYMENTS}tests:\n  - name: big\n    input: {{id: p, amount: 9000000, region: BR, customer: {{id: c}}}}\n    expect: {{output: [audit, priority]}}\n  - name: wrong\n    input: {{id: p, amount: 1, region: US, customer: {{id: c}}}}\n    expect: {{ok: {{payment_id: p, amount_cents: 1, region: US, customer: {{id: c}}}}, output: priority}}\n"
        );
        let (spec, plan) = load_str(&text).unwrap();
        let results = crate::plan::mapping_tests::run(&spec, &plan);
        assert_eq!(results[0].failure, None);
        assert_eq!(
            results[1].failure.as_deref(),
            Some("expected the record to go to output(s) priority, but it went to regional")
        );
        let unknown = load_str(&format!(
            "{PAYMENTS}tests:\n  - name: t\n    input: {{id: p}}\n    expect: {{output: priorty}}\n"
        ))
        .unwrap_err();
        assert!(
            unknown
                .iter()
                .any(|d| d.message == "`expect.output` names unknown output `priorty`; did you mean `priority`?"),
            "{unknown:?}"
        );
    }

    #[test]
    fn explain_says_which_output_took_the_record_and_why() {
        let plan = plan(PAYMENTS);
        let explanation = plan.explain(&record(9_000_000, "US"));
        let verdicts: Vec<(bool, &str)> = explanation.outputs.iter().map(|o| (o.taken, o.verdict.as_str())).collect();
        assert_eq!(
            verdicts[0],
            (true, "✓ its `when` `amount_cents > 5000000` holds (all: true: the next outputs are tried too)")
        );
        assert_eq!(verdicts[1], (true, "✓ its `when` `amount_cents > 1000000` holds"));
        assert_eq!(verdicts[2], (false, "not tried: output `priority` took the record first"));
        let explanation = plan.explain(&record(10, "FR"));
        assert_eq!(explanation.outcome, "fail");
        assert!(
            explanation.outputs[2].verdict.starts_with("✗ output `regional`: its `topic` computed `payments.fr.v1`"),
            "{:?}",
            explanation.outputs
        );
    }
}
