//! `diff-mapping OLD NEW --input S.jsonl | --event E.json`: what an edit would change, record by
//! record — the check a team runs in review before publishing a mapping.
//!
//! Each sample is mapped by both mappings. A record whose route changed (ok → fail, fail → ok,
//! dropped) is shown with the new errors; a record ok under both with the fields whose values
//! changed, appeared or disappeared (and its Kafka key); a record failing under both with the
//! errors that went and came. Values of fields sensitive in either mapping are never shown.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::error::CliError;
use super::validate::Format;
use crate::plan::{FieldError, Outcome, Plan};

/// Where the records come from.
pub enum Samples<'p> {
    /// JSON lines, one record value per line.
    Lines(&'p Path),
    /// A saved Lambda Kafka event.
    Event(&'p Path),
}

/// One field whose value differs (`None`: absent on that side).
#[derive(Debug, Serialize, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// What changed for one record.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Another destination: `ok`, `fail` or `dropped` on each side; the errors the record had
    /// (`was`) and has (`errors`), if any.
    Destination { old: &'static str, new: &'static str, was: Vec<FieldError>, errors: Vec<FieldError> },
    /// Ok under both, with other output values (or another key).
    Values {
        fields: Vec<FieldChange>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<FieldChange>,
    },
    /// Failing under both, with other errors.
    Errors { removed: Vec<FieldError>, added: Vec<FieldError> },
}

/// A changed record and where it is in the samples.
#[derive(Debug, Serialize)]
pub struct RecordChange {
    /// `line 7`, or `orders-0@1042` for an event's record.
    pub record: String,
    #[serde(flatten)]
    pub change: Change,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub records: usize,
    pub unchanged: usize,
    pub changed: usize,
    pub ok_to_fail: usize,
    pub fail_to_ok: usize,
    /// Other route changes (to or from dropped).
    pub other_route: usize,
    pub values: usize,
    pub errors: usize,
    /// Blank lines and tombstones: not records to compare.
    pub skipped: usize,
}

/// Maps one record value with both plans and says what changed, if anything.
pub fn compare(old: &Plan, new: &Plan, value: &[u8], hidden: &[&str]) -> Option<Change> {
    compare_outcomes(old.apply(value), new.apply(value), hidden)
}

/// What changed between the outcomes of one record under the old and the new mapping.
fn compare_outcomes(before: Outcome, after: Outcome, hidden: &[&str]) -> Option<Change> {
    let route = |o: &Outcome| match o {
        Outcome::Mapped(_) => "ok",
        Outcome::Failed(_) => "fail",
        Outcome::Dropped => "dropped",
    };
    match (&before, &after) {
        (Outcome::Mapped(a), Outcome::Mapped(b)) => {
            let (a_value, b_value): (Value, Value) = (parse(&a.value), parse(&b.value));
            let fields = changed_fields(&a_value, &b_value, hidden);
            let key = (a.key != b.key).then(|| FieldChange {
                field: "(key)".into(),
                old: a.key.as_ref().map(|k| Value::String(String::from_utf8_lossy(k).into_owned())),
                new: b.key.as_ref().map(|k| Value::String(String::from_utf8_lossy(k).into_owned())),
            });
            (!fields.is_empty() || key.is_some()).then_some(Change::Values { fields, key })
        }
        (Outcome::Failed(a), Outcome::Failed(b)) => {
            let removed: Vec<FieldError> = a.errors.iter().filter(|e| !b.errors.contains(e)).cloned().collect();
            let added: Vec<FieldError> = b.errors.iter().filter(|e| !a.errors.contains(e)).cloned().collect();
            (!removed.is_empty() || !added.is_empty()).then_some(Change::Errors { removed, added })
        }
        (Outcome::Dropped, Outcome::Dropped) => None,
        _ => Some(Change::Destination {
            old: route(&before),
            new: route(&after),
            was: before.errors().to_vec(),
            errors: after.errors().to_vec(),
        }),
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("an ok record's value is JSON")
}

/// The leaves of two outputs that differ, by dotted path (arrays compared whole), in path order.
fn changed_fields(old: &Value, new: &Value, hidden: &[&str]) -> Vec<FieldChange> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten("", old, &mut a);
    flatten("", new, &mut b);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    let secret = |path: &str| hidden.iter().any(|t| path == *t || path.starts_with(&format!("{t}.")));
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| {
            let shown = |v: Option<&&Value>| {
                v.map(
                    |v| if secret(p) { Value::String("(value hidden: sensitive field)".into()) } else { (*v).clone() },
                )
            };
            FieldChange { field: p.clone(), old: shown(a.get(p)), new: shown(b.get(p)) }
        })
        .collect()
}

fn flatten<'v>(prefix: &str, value: &'v Value, out: &mut BTreeMap<String, &'v Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&path, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), value);
        }
    }
}

/// `lambda-stream diff-mapping`.
/// Ends [`Changed`](super::exit::Outcome::Changed) when at least one record would change (as
/// `diff` ends 1), done when none would.
pub fn diff_mapping(
    old: &Path,
    new: &Path,
    samples: Samples<'_>,
    format: Format,
    records_format: &super::formats::LineFormat,
) -> Result<super::exit::Outcome, CliError> {
    let (_, old_plan) = super::source::load(old)?;
    let (_, new_plan) = super::source::load(new)?;
    let mut hidden = old_plan.sensitive_targets();
    hidden.extend(new_plan.sensitive_targets());
    let lines = matches!(samples, Samples::Lines(_));
    let mut records = read_samples(samples)?;
    // Samples in a binary format are base64 lines (an event's values are bytes already); their
    // schemas are fetched once each, as a batch's are.
    if lines {
        for (_, value, _) in &mut records {
            if let Some(line) = value {
                *line = records_format.value_of(line).map_err(CliError::Usage)?;
            }
        }
    }
    let schemas = records_format.batch_schemas(records.iter().filter_map(|(_, v, _)| v.as_deref()))?;
    let mut summary = Summary::default();
    let mut changes = Vec::new();
    for (label, value, schema) in &records {
        let Some(value) = value else {
            summary.skipped += 1;
            continue;
        };
        summary.records += 1;
        let outcome = |plan: &Plan| schemas.apply(plan, records_format.format, value, *schema).outcome;
        match compare_outcomes(outcome(&old_plan), outcome(&new_plan), &hidden) {
            None => summary.unchanged += 1,
            Some(change) => {
                summary.changed += 1;
                match &change {
                    Change::Destination { old: "ok", new: "fail", .. } => summary.ok_to_fail += 1,
                    Change::Destination { old: "fail", new: "ok", .. } => summary.fail_to_ok += 1,
                    Change::Destination { .. } => summary.other_route += 1,
                    Change::Values { .. } => summary.values += 1,
                    Change::Errors { .. } => summary.errors += 1,
                }
                changes.push(RecordChange { record: label.clone(), change });
            }
        }
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    match format {
        Format::Text => {
            for c in &changes {
                out.write_all(render(c).as_bytes())?;
            }
            writeln!(out, "{}", summary_line(&summary))?;
        }
        Format::Json => {
            let doc = serde_json::json!({ "changes": changes, "summary": summary });
            serde_json::to_writer_pretty(&mut out, &doc).expect("a diff serialises");
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if summary.changed == 0 { super::exit::Outcome::Done } else { super::exit::Outcome::Changed })
}

/// A record's label (`line 3`, `orders-0@1042`), its value, and the schema an event gives beside
/// it (`valueSchemaMetadata`).
type LabelledRecord = (String, Option<Vec<u8>>, Option<crate::format::wire::SchemaId>);

/// Each record with its label; `None` for what is not a record to compare (a blank line, a
/// tombstone).
fn read_samples(samples: Samples<'_>) -> Result<Vec<LabelledRecord>, CliError> {
    let read = |path: &Path, max, what| {
        crate::limits::read_bounded(path, max, what)
            .map_err(|source| CliError::Read { path: path.display().to_string(), source })
    };
    match samples {
        Samples::Lines(path) => {
            let text = read(path, crate::limits::MAX_SAMPLES_BYTES, "a sample file")?;
            Ok(super::process::split_lines(&text)
                .into_iter()
                .enumerate()
                .map(|(i, line)| {
                    let value = (!line.iter().all(u8::is_ascii_whitespace)).then(|| line.to_vec());
                    (format!("line {}", i + 1), value, None)
                })
                .collect())
        }
        Samples::Event(path) => {
            let event = crate::record::decode_event(&read(path, crate::limits::MAX_RECORD_BYTES, "an event")?)
                .map_err(|e| CliError::Event(crate::lambda::HandlerError::Event(e)))?;
            Ok(event
                .inputs
                .into_iter()
                .map(|input| {
                    let s = &input.source;
                    let label = match s.offset {
                        Some(offset) => format!("{}-{}@{offset}", s.topic, s.partition),
                        None => format!("{}-{}", s.topic, s.partition),
                    };
                    let value = match input.payload {
                        crate::record::Payload::Value(v) => Some(v),
                        crate::record::Payload::Tombstone => None,
                        // Unreadable under both mappings alike: nothing an edit changes.
                        crate::record::Payload::Undecodable { .. } => None,
                    };
                    (label, value, input.source.value_schema_id)
                })
                .collect())
        }
    }
}

fn shown(v: &Option<Value>) -> String {
    v.as_ref().map_or_else(|| "(absent)".into(), Value::to_string)
}

fn error_line(e: &FieldError) -> String {
    format!("{} {}: {}", e.field.as_deref().unwrap_or("(record)"), e.rule, e.message)
}

/// One changed record as text: a heading line, then one line per field or error.
pub fn render(c: &RecordChange) -> String {
    let mut s = String::new();
    match &c.change {
        Change::Destination { old, new, was, errors } => {
            s.push_str(&format!("{}: {old} → {new}\n", c.record));
            for e in was {
                s.push_str(&format!("  - {}\n", error_line(e)));
            }
            for e in errors {
                s.push_str(&format!("  + {}\n", error_line(e)));
            }
        }
        Change::Values { fields, key } => {
            s.push_str(&format!("{}: ok under both, other values\n", c.record));
            for f in key.iter().chain(fields) {
                match (&f.old, &f.new) {
                    (None, new) => s.push_str(&format!("  + {}: {}\n", f.field, shown(new))),
                    (old, None) => s.push_str(&format!("  - {}: {}\n", f.field, shown(old))),
                    // Both hidden: say that it changed, not what it was or became.
                    (old, new) if old == new => {
                        s.push_str(&format!("  ~ {}: changed (value hidden: sensitive field)\n", f.field))
                    }
                    (old, new) => s.push_str(&format!("  ~ {}: {} → {}\n", f.field, shown(old), shown(new))),
                }
            }
        }
        Change::Errors { removed, added } => {
            s.push_str(&format!("{}: fails under both, other errors\n", c.record));
            for e in removed {
                s.push_str(&format!("  - {}\n", error_line(e)));
            }
            for e in added {
                s.push_str(&format!("  + {}\n", error_line(e)));
            }
        }
    }
    s
}

fn summary_line(s: &Summary) -> String {
    let mut kinds = Vec::new();
    for (n, what) in [
        (s.ok_to_fail, "ok → fail"),
        (s.fail_to_ok, "fail → ok"),
        (s.other_route, "to or from dropped"),
        (s.values, "with other values"),
        (s.errors, "with other errors"),
    ] {
        if n > 0 {
            kinds.push(format!("{n} {what}"));
        }
    }
    let detail = if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) };
    let skipped = match s.skipped {
        0 => String::new(),
        1 => "; 1 not compared (a blank line, tombstone or unreadable record)".into(),
        n => format!("; {n} not compared (blank lines, tombstones, unreadable records)"),
    };
    format!("{} records: {} unchanged, {} changed{detail}{skipped}", s.records, s.unchanged, s.changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    fn plan(fields: &str) -> Plan {
        plan::load_str(&format!("version: 1\nname: t\nfields:\n{fields}")).unwrap().1
    }

    const A: &str = "  - { source: $.a, target: a, type: integer, required: true }\n";

    #[test]
    fn each_kind_of_change_is_told_apart() {
        let old = plan(A);
        assert_eq!(compare(&old, &old, br#"{"a": 1}"#, &[]), None);
        let stricter =
            plan("  - { source: $.a, target: a, type: integer, required: true, validate: [{ range: { min: 2 } }] }\n");
        match compare(&old, &stricter, br#"{"a": 1}"#, &[]) {
            Some(Change::Destination { old: "ok", new: "fail", was, errors }) => {
                assert!(was.is_empty());
                assert_eq!(errors[0].rule, "range");
            }
            other => panic!("{other:?}"),
        }
        let renamed = plan("  - { source: $.a, target: b, type: integer, required: true }\n");
        let Some(Change::Values { fields, key: None }) = compare(&old, &renamed, br#"{"a": 1}"#, &[]) else {
            panic!("a renamed target is a value change")
        };
        assert_eq!(fields.len(), 2);
        assert_eq!((fields[0].field.as_str(), fields[0].new.is_none()), ("a", true));
        assert_eq!((fields[1].field.as_str(), fields[1].old.is_none()), ("b", true));
        assert_eq!(compare(&old, &stricter, br#"{"a": "x"}"#, &[]), None, "the same type error under both");
        let b = "  - { source: $.b, target: b, type: integer }\n";
        let b_checked = "  - { source: $.b, target: b, type: integer, validate: [{ range: { min: 2 } }] }\n";
        let (two, two_checked) = (plan(&format!("{A}{b}")), plan(&format!("{A}{b_checked}")));
        let Some(Change::Errors { removed, added }) = compare(&two, &two_checked, br#"{"a": "x", "b": 1}"#, &[]) else {
            panic!("both fail, the new one with one more error")
        };
        assert!(removed.is_empty());
        assert_eq!((added[0].field.as_deref(), added[0].rule.as_str()), (Some("b"), "range"));
    }

    #[test]
    fn sensitive_values_are_hidden_but_their_change_is_shown() {
        let old = plan("  - { source: $.d, target: doc, type: string, sensitive: true }\n");
        let new = plan("  - { source: $.d, target: doc, type: string, sensitive: true, transform: [uppercase] }\n");
        let Some(Change::Values { fields, .. }) = compare(&old, &new, br#"{"d": "abc"}"#, &["doc"]) else {
            panic!("the value changed")
        };
        assert_eq!(fields[0].old, Some(Value::String("(value hidden: sensitive field)".into())));
        assert!(!format!("{fields:?}").contains("abc") && !format!("{fields:?}").contains("ABC"));
    }
}
