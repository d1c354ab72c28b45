//! `lambda-stream init --from samples.jsonl`: a starter mapping inferred from sample records.
//!
//! One field per leaf path seen (arrays of objects become `items:` fields when most samples that
//! hold the path hold one; the others are named on stderr), target names in snake case, a `type`
//! from the values, `required` when present in every sample, `one_of` for strings with few
//! distinct values, validators every value passes (uuid, e-mail, date, datetime, CPF, CNPJ, CEP),
//! and embedded tests from two samples. Every inferred line says `# guess:` and why.
//! The result is compiled and its tests run before it is written: what `init` writes passes
//! `validate-mapping` as written.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use super::error::CliError;
use crate::plan::{self, Outcome, types, validate};

/// Strings with at most this many distinct values (each seen three times on average) become
/// a `one_of` guess.
const ONE_OF_MAX: usize = 6;

/// A sample record as written: object keys in their order (`serde_json::Value` sorts them, and a
/// starter mapping reads best in the order of the records).
enum Sample {
    Scalar(Value),
    Array(Vec<Sample>),
    Object(Vec<(String, Sample)>),
}

impl<'de> serde::Deserialize<'de> for Sample {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Sample;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Sample, E> {
                Ok(Sample::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Sample, E> {
                Ok(Sample::Scalar(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Sample, E> {
                Ok(Sample::Scalar(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Sample, E> {
                Ok(Sample::Scalar(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Sample, E> {
                Ok(Sample::Scalar(Value::String(v.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Sample, E> {
                Ok(Sample::Scalar(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sample, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Sample::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Sample, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    entries.push((k, v));
                }
                Ok(Sample::Object(entries))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What the samples showed at one path.
#[derive(Default)]
struct Seen {
    /// In how many of the objects that could hold it it was present and not null.
    present: usize,
    integers: usize,
    floats: usize,
    strings: usize,
    booleans: usize,
    scalar_arrays: usize,
    objects_empty: usize,
    distinct: BTreeSet<String>,
    /// Validators every string value passed so far.
    passes: Vec<&'static str>,
    /// For arrays of objects: the items' own paths.
    items: Option<Box<Shape>>,
    /// Where each shape was held, to choose between a field and `items:` and to name the samples
    /// that differ from the choice.
    held: [Lines; Held::ALL.len()],
}

/// The shapes a value can have, as far as choosing between a field and `items:` goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    ObjectArray,
    /// Fits an array of objects and an array of values alike.
    EmptyArray,
    OtherArray,
    Object,
    Text,
    Number,
    Boolean,
}

impl Held {
    const ALL: [Held; 7] =
        [Held::ObjectArray, Held::EmptyArray, Held::OtherArray, Held::Object, Held::Text, Held::Number, Held::Boolean];

    fn describe(self) -> &'static str {
        match self {
            Held::ObjectArray => "an array of objects",
            Held::EmptyArray => "an empty array",
            Held::OtherArray => "an array of other values",
            Held::Object => "an object",
            Held::Text => "text",
            Held::Number => "a number",
            Held::Boolean => "true or false",
        }
    }
}

/// How many values of one shape a path held, and on which sample lines.
#[derive(Default)]
struct Lines {
    /// Values (several items of one sample are several values).
    count: usize,
    /// Sample lines: values arrive in the order of the lines, so a line differs from the last.
    lines: usize,
    last: usize,
    first: Vec<usize>,
}

/// The sample lines a note names for one shape; the rest are counted.
const NOTE_LINES: usize = 3;

impl Lines {
    fn add(&mut self, line: usize) {
        self.count += 1;
        if self.lines == 0 || self.last != line {
            self.lines += 1;
            self.last = line;
            if self.first.len() < NOTE_LINES {
                self.first.push(line);
            }
        }
    }
}

impl std::fmt::Display for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.first.iter().map(usize::to_string).collect();
        let word = if lines.len() == 1 { "line" } else { "lines" };
        write!(f, "{word} {}", lines.join(", "))?;
        if self.lines > self.first.len() {
            write!(f, " and {} more", self.lines - self.first.len())?;
        }
        Ok(())
    }
}

impl Seen {
    fn held(&self, shape: Held) -> &Lines {
        &self.held[shape as usize]
    }

    /// Whether the path is written as `items:`: most of the values it holds are arrays of
    /// objects (an empty array fits either way and does not count). One odd sample in ten must
    /// not turn the array into paths under it that no array matches.
    fn as_items(&self) -> bool {
        let arrays = self.held(Held::ObjectArray).count;
        let others: usize = Held::ALL
            .iter()
            .filter(|h| !matches!(h, Held::ObjectArray | Held::EmptyArray))
            .map(|h| self.held(*h).count)
            .sum();
        arrays > others
    }

    /// A note for the author when the path held arrays of objects and other shapes: which way
    /// the starter went, and the lines of the values that went the other way.
    fn note(&self, path: &str, unit: &str, as_items: bool) -> Option<String> {
        let arrays = self.held(Held::ObjectArray);
        let mut odd: Vec<Held> = Held::ALL
            .into_iter()
            .filter(|h| !matches!(h, Held::ObjectArray | Held::EmptyArray) && self.held(*h).count > 0)
            .collect();
        odd.sort_by_key(|h| self.held(*h).first.first().copied());
        if arrays.count == 0 || odd.is_empty() {
            return None;
        }
        let empty = self.held(Held::EmptyArray).count;
        let holding = arrays.count + empty + odd.iter().map(|h| self.held(*h).count).sum::<usize>();
        let mut note =
            format!("`{path}` is an array of objects in {} of the {holding} {unit} that hold it", arrays.count);
        if empty > 0 {
            let _ = write!(note, " (an empty array in {empty})");
        }
        if as_items {
            let others: Vec<String> = odd.iter().map(|h| format!("{} at {}", h.describe(), self.held(*h))).collect();
            let _ = write!(
                note,
                ", so the starter maps it with `items:`; it is {}: check those {unit}, which do not map as items",
                others.join(", ")
            );
        } else {
            let _ = write!(
                note,
                " ({}), so the starter does not map it with `items:`: check those {unit}",
                self.held(Held::ObjectArray)
            );
        }
        Some(note)
    }
}

/// The paths of one scope (the record, or an array's items), in the order first seen.
#[derive(Default)]
struct Shape {
    /// How many objects of this scope were seen (records, or items of all arrays).
    objects: usize,
    /// What those objects are, for the comments: `samples`, or `items`.
    unit: &'static str,
    order: Vec<Vec<String>>,
    seen: HashMap<Vec<String>, Seen>,
}

/// A validator's name and the check `init` runs on each sample value for it.
type StringCheck = (&'static str, fn(&str) -> bool);

const STRING_CHECKS: &[StringCheck] = &[
    ("uuid", validate::is_uuid),
    ("email", validate::is_email),
    ("cpf", validate::is_cpf),
    ("cnpj", validate::is_cnpj),
    ("cep", validate::is_cep),
];

impl Shape {
    /// One object of this scope, from the sample at `line`.
    fn object(&mut self, entries: &[(String, Sample)], line: usize) {
        self.objects += 1;
        self.walk(&mut Vec::new(), entries, line);
    }

    fn walk(&mut self, path: &mut Vec<String>, entries: &[(String, Sample)], line: usize) {
        for (key, value) in entries {
            path.push(key.clone());
            match value {
                Sample::Object(inner) if !inner.is_empty() => {
                    self.entry(path).held[Held::Object as usize].add(line);
                    self.walk(path, inner, line);
                }
                other => self.leaf(path, other, line),
            }
            path.pop();
        }
    }

    fn entry(&mut self, path: &[String]) -> &mut Seen {
        if !self.seen.contains_key(path) {
            self.order.push(path.to_vec());
            let passes = STRING_CHECKS.iter().map(|(n, _)| *n).chain(["date", "datetime"]).collect();
            self.seen.insert(path.to_vec(), Seen { passes, ..Seen::default() });
        }
        self.seen.get_mut(path).expect("inserted above")
    }

    fn leaf(&mut self, path: &[String], value: &Sample, line: usize) {
        let seen = self.entry(path);
        match value {
            Sample::Scalar(Value::Null) => {}
            Sample::Scalar(scalar) => {
                seen.present += 1;
                match scalar {
                    Value::Number(n) if n.is_i64() || n.is_u64() => {
                        seen.integers += 1;
                        seen.held[Held::Number as usize].add(line);
                    }
                    Value::Number(_) => {
                        seen.floats += 1;
                        seen.held[Held::Number as usize].add(line);
                    }
                    Value::Bool(_) => {
                        seen.booleans += 1;
                        seen.held[Held::Boolean as usize].add(line);
                    }
                    Value::String(s) => {
                        seen.strings += 1;
                        seen.held[Held::Text as usize].add(line);
                        if seen.distinct.len() <= ONE_OF_MAX {
                            seen.distinct.insert(s.clone());
                        }
                        seen.passes.retain(|check| match *check {
                            "date" => types::iso_date(s).is_some(),
                            "datetime" => types::is_rfc3339(s),
                            name => STRING_CHECKS.iter().any(|(n, f)| *n == name && f(s)),
                        });
                    }
                    _ => {}
                }
            }
            Sample::Array(items) if !items.is_empty() && items.iter().all(|i| matches!(i, Sample::Object(_))) => {
                seen.present += 1;
                seen.held[Held::ObjectArray as usize].add(line);
                let shape = seen.items.get_or_insert_with(|| Box::new(Shape { unit: "items", ..Shape::default() }));
                for item in items {
                    if let Sample::Object(entries) = item {
                        shape.object(entries, line);
                    }
                }
            }
            Sample::Array(items) => {
                seen.present += 1;
                seen.scalar_arrays += 1;
                let held = if items.is_empty() { Held::EmptyArray } else { Held::OtherArray };
                seen.held[held as usize].add(line);
            }
            Sample::Object(_) => {
                seen.present += 1;
                seen.objects_empty += 1;
                seen.held[Held::Object as usize].add(line);
            }
        }
    }
}

/// `customerId` → `customer_id`, `Sales-Channel` → `sales_channel`.
pub(super) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase().filter(|c| c.is_alphanumeric()));
            previous_lower = false;
        } else if c.is_alphanumeric() {
            out.push(c);
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            previous_lower = false;
        }
    }
    let out = out.trim_end_matches('_').to_string();
    match out.chars().next() {
        None => "field".into(),
        Some(c) if c.is_ascii_digit() => format!("f_{out}"),
        Some(_) => out,
    }
}

/// The JSONPath of a key path: dotted names where they are plain, brackets elsewhere. What a YAML
/// file cannot hold as it is (control characters, line separators, a byte-order mark) is written
/// as a JSONPath escape.
pub(super) fn json_path(path: &[String]) -> String {
    let mut out = String::from("$");
    for key in path {
        let plain = key.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && key.chars().all(|c| (c.is_alphanumeric() || c == '_') && !needs_escape(c));
        if plain {
            let _ = write!(out, ".{key}");
            continue;
        }
        // Quoted with the quote the key does not hold, so it needs no escape where it can do without.
        let quote = if key.contains('\'') && !key.contains('"') { '"' } else { '\'' };
        let _ = write!(out, "[{quote}");
        for c in key.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c == quote => {
                    let _ = write!(out, "\\{quote}");
                }
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        let _ = write!(out, "{quote}]");
    }
    out
}

/// Whether a key can be written in a path without escapes (as a plain path, inside `items:`, must).
pub(super) fn plain_key(key: &str) -> bool {
    let both_quotes = key.contains('\'') && key.contains('"');
    !(both_quotes || key.contains('\\') || key.chars().any(needs_escape))
}

/// Characters a YAML scalar or a JSONPath string cannot hold as they are: C0 and C1 controls,
/// DEL, the line and paragraph separators, the byte-order mark and the two non-characters of the
/// basic plane. Each is below U+10000, so one `\uXXXX` escape writes it.
pub(super) fn needs_escape(c: char) -> bool {
    matches!(c, '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// JSON text that is also YAML (a flow collection): what YAML cannot hold as it is, escaped.
pub(super) fn yaml_json(value: &Value) -> String {
    let text = serde_json::to_string(value).expect("a JSON value");
    if !text.chars().any(needs_escape) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with a `# guess:` comment, aligned where the text is short enough.
fn guessed(text: &str, why: &str) -> String {
    format!("{text:<30} # guess: {why}")
}

/// A YAML single-quoted scalar.
pub(super) fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Target names for key paths: each key's snake-case name, made unique among the names beside it
/// (`customer_id`, then `customer_id_2`, …), so no two paths share a target and no target lies
/// inside another's value.
#[derive(Default)]
pub(super) struct TargetNames<'p> {
    /// A key path (or a prefix of one) → its name's last segment.
    names: HashMap<&'p [String], String>,
    /// A parent key path → the names given inside it.
    levels: HashMap<&'p [String], Level>,
}

/// The names given beside each other, and for each snake-case name the suffix to try next.
#[derive(Default)]
struct Level {
    taken: HashSet<String>,
    next: HashMap<String, usize>,
}

impl<'p> TargetNames<'p> {
    pub(super) fn target(&mut self, path: &'p [String]) -> String {
        let mut segments = Vec::with_capacity(path.len());
        for end in 1..=path.len() {
            let prefix = &path[..end];
            if let Some(name) = self.names.get(prefix) {
                segments.push(name.clone());
                continue;
            }
            let Level { taken, next } = self.levels.entry(&path[..end - 1]).or_default();
            let base = snake_case(&path[end - 1]);
            let mut name = base.clone();
            if taken.contains(&name) {
                let n = next.entry(base.clone()).or_insert(2);
                while taken.contains(&format!("{base}_{n}")) {
                    *n += 1;
                }
                name = format!("{base}_{n}");
                *n += 1;
            }
            taken.insert(name.clone());
            self.names.insert(prefix, name.clone());
            segments.push(name);
        }
        segments.join(".")
    }
}

/// Writes the fields of one scope at `indent`; `scope` is the JSONPath of its objects, for the
/// notes to the author on paths whose shape differs between samples.
/// Inside `items:` (`in_items`), a source is a plain path, which cannot hold every key: a field
/// whose key path it cannot write is left out, with a comment that says so.
fn write_fields(out: &mut String, notes: &mut Vec<String>, shape: &Shape, indent: &str, in_items: bool, scope: &str) {
    // Arrays of objects in most samples: written with `items:`, and the paths under them (from
    // the samples that held an object there instead) are left out.
    let as_items: HashSet<&[String]> =
        shape.order.iter().filter(|p| shape.seen[p.as_slice()].as_items()).map(Vec::as_slice).collect();
    let under_items = |p: &[String]| (1..p.len()).any(|end| as_items.contains(&p[..end]));
    // Paths inside which other paths lie: an object in some samples and empty or a value in
    // others, whose own fields stand for it.
    let parents: HashSet<&[String]> =
        shape.order.iter().filter(|p| !under_items(p)).flat_map(|p| (1..p.len()).map(move |end| &p[..end])).collect();
    let mut names = TargetNames::default();
    for path in &shape.order {
        let at = format!("{scope}{}", &json_path(path)[1..]);
        let items_here = as_items.contains(path.as_slice());
        if let Some(note) = shape.seen[path].note(&at, shape.unit, items_here) {
            notes.push(note);
        }
        if parents.contains(path.as_slice()) || under_items(path) {
            continue;
        }
        if in_items && !path.iter().all(|key| plain_key(key)) {
            let keys = yaml_json(&Value::from(path.iter().map(|k| Value::from(k.as_str())).collect::<Vec<_>>()));
            let _ = writeln!(
                out,
                "{indent}# left out: an item's source is a plain path, which cannot read the keys {keys}"
            );
            continue;
        }
        let seen = &shape.seen[path];
        let every = seen.present == shape.objects && shape.objects > 0;
        // An array of objects: its items' fields, if any can be written.
        let mut items = String::new();
        if let (Some(item_shape), true) = (&seen.items, items_here) {
            write_fields(&mut items, notes, item_shape, &format!("{indent}    "), true, &format!("{at}[*]"));
        }
        let target = names.target(path);
        // Snake case leaves only names YAML reads as a boolean or null to quote.
        let written = if matches!(target.as_str(), "true" | "false" | "null") { quoted(&target) } else { target };
        let _ = writeln!(out, "{indent}- target: {written}");
        let _ = writeln!(out, "{indent}  source: {}", quoted(&json_path(path)));
        if items.contains("- target: ") {
            let arrays = seen.held(Held::ObjectArray).count + seen.held(Held::EmptyArray).count;
            if arrays == shape.objects {
                let _ = writeln!(out, "{indent}  {}", guessed("required: true", "an array in every sample"));
            }
            let _ = writeln!(out, "{indent}  items:");
            out.push_str(&items);
            continue;
        }
        let (ty, why) = seen.guess_type();
        let _ = writeln!(out, "{indent}  {}", guessed(&format!("type: {ty}"), why));
        if every && seen.present > 0 {
            let all = format!("present in all {} {}", shape.objects, shape.unit);
            let _ = writeln!(out, "{indent}  {}", guessed("required: true", &all));
        }
        if ty != "string" {
            continue;
        }
        if let Some((check, why)) = seen.guess_check() {
            let _ = writeln!(out, "{indent}  validate:");
            let _ = writeln!(out, "{indent}    {}", guessed(&format!("- {check}"), why));
        }
    }
}

impl Seen {
    /// The type the samples suggest for a path, and why.
    fn guess_type(&self) -> (&'static str, &'static str) {
        let object_arrays = self.held(Held::ObjectArray).count;
        let kinds = [
            self.integers,
            self.floats,
            self.strings,
            self.booleans,
            self.scalar_arrays,
            self.objects_empty,
            object_arrays,
        ]
        .iter()
        .filter(|n| **n > 0)
        .count();
        match () {
            _ if self.present == 0 => ("any", "only null or absent in the samples"),
            _ if kinds > 1 && self.integers + self.floats == self.present => ("number", "integers and decimals"),
            _ if kinds > 1 => ("any", "values of several kinds"),
            _ if self.integers > 0 => ("integer", "whole numbers in every sample"),
            _ if self.floats > 0 => ("number", "numbers"),
            _ if self.booleans > 0 => ("boolean", "true or false"),
            _ if self.scalar_arrays > 0 => ("array", "an array of values"),
            _ if self.objects_empty > 0 => ("object", "an empty object"),
            _ if self.items.is_some() => ("array", "an array of objects"),
            _ if self.passes.contains(&"datetime") => ("datetime", "every value is an RFC 3339 datetime"),
            _ if self.passes.contains(&"date") => ("date", "every value is a YYYY-MM-DD date"),
            _ => ("string", "text"),
        }
    }

    /// A check every sampled text passed (or a short list of codes), and why.
    fn guess_check(&self) -> Option<(String, &'static str)> {
        let mut checks: Vec<String> =
            self.passes.iter().filter(|c| !matches!(**c, "date" | "datetime")).map(|c| c.to_string()).take(1).collect();
        // Codes, not free text or ids: a few short values without spaces or digits, each seen
        // about three times.
        let few = (2..=ONE_OF_MAX).contains(&self.distinct.len())
            && self.strings >= 3 * self.distinct.len()
            && self
                .distinct
                .iter()
                .all(|v| v.len() <= 32 && !v.contains(' ') && !v.contains(|c: char| c.is_ascii_digit()))
            && checks.is_empty();
        if few {
            let values: Vec<String> = self.distinct.iter().map(|v| yaml_json(&Value::from(v.as_str()))).collect();
            checks.push(format!("one_of: [{}]", values.join(", ")));
        }
        let why = if few { "few distinct values in the samples" } else { "every value passed it" };
        checks.into_iter().next().map(|check| (check, why))
    }
}

/// A sample record: its line in the sample file, as read with key order, and as a value.
type SampleLine = (usize, Sample, Value);

/// The starter mapping for the samples, with tests from two of them, checked by compiling it; and
/// the notes for the author on paths whose shape differs between samples.
fn starter(samples: &[SampleLine], name: &str, from: &str) -> Result<(String, Vec<String>), CliError> {
    let mut shape = Shape { unit: "samples", ..Shape::default() };
    for (line, sample, _) in samples {
        if let Sample::Object(entries) = sample {
            shape.object(entries, *line);
        }
    }
    if shape.objects == 0 {
        return Err(CliError::Usage("no sample is a JSON object".into()));
    }
    let mut fields = String::new();
    let mut notes = Vec::new();
    write_fields(&mut fields, &mut notes, &shape, "  ", false, "$");
    if fields.is_empty() {
        // Only empty objects: a mapping needs a field, and the whole record is one.
        let _ = writeln!(fields, "  - target: record\n    source: '$'");
        let _ = writeln!(fields, "    {}", guessed("type: object", "the samples have no keys"));
    }
    // The file's name goes in a comment: nothing in it may end the comment's line.
    let from: String = from.chars().map(|c| if needs_escape(c) { '?' } else { c }).collect();
    let head = format!(
        "# A starter mapping written by `lambda-stream init` from {} sample(s) of {from}.\n\
         # Lines marked `# guess:` are inferred from the samples: check each one, then run\n\
         # `lambda-stream validate-mapping` on this file. `lambda-stream schema` gives editors completion.\n\
         version: 1\nname: {}\nfields:\n",
        shape.objects,
        if name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            name.to_owned()
        } else {
            quoted(name)
        }
    );
    let body = format!("{head}{fields}");
    let (_, plan) = plan::load_str(&body).map_err(|d| CliError::Usage(render(&body, &d)))?;
    // Tests from the first sample and the one that differs most from it in the fields present.
    let objects: Vec<&Value> = samples.iter().map(|(_, _, v)| v).filter(|v| v.is_object()).collect();
    let width = |v: &Value| v.as_object().map_or(0, Map::len);
    let second = objects.iter().skip(1).max_by_key(|v| width(v).abs_diff(width(objects[0])));
    let mut tests = String::from("tests:\n");
    for (i, sample) in std::iter::once(objects[0]).chain(second.copied()).enumerate() {
        let bytes = serde_json::to_vec(sample).expect("a value");
        let Outcome::Mapped(mapped) = plan.apply(&bytes) else { continue };
        let output: Value = serde_json::from_slice(&mapped.value).expect("the plan writes JSON");
        let _ = writeln!(tests, "  - name: sample {} maps", if i == 0 { "1" } else { "2" });
        let _ = writeln!(tests, "    input: {}", yaml_json(sample));
        let _ = writeln!(tests, "    expect:\n      ok: {}", yaml_json(&output));
    }
    let text = if tests.lines().count() > 1 { format!("{body}\n{tests}") } else { body };
    // What `validate-mapping` will do: compile, and run the tests.
    let (spec, plan) = plan::load_str(&text).map_err(|d| CliError::Usage(render(&text, &d)))?;
    for result in plan::mapping_tests::run(&spec, &plan) {
        if let Some(why) = result.failure {
            return Err(CliError::Usage(format!("the starter's test {:?} fails: {why}", result.name)));
        }
    }
    Ok((text, notes))
}

pub(super) fn render(text: &str, diagnostics: &[crate::diagnostic::Diagnostic]) -> String {
    let mut out = String::from("the starter mapping does not compile (please report this):\n");
    for d in diagnostics {
        let _ = writeln!(out, "{}", d.render("<starter>"));
    }
    out.push_str(text);
    out
}

/// `lambda-stream init`: the starter on standard output, or in `output` (a file that must not
/// exist yet).
pub fn run(from: &Path, name: Option<String>, output: Option<&Path>) -> Result<super::exit::Outcome, CliError> {
    write_starter(&init(from, name)?, output)
}

/// A starter mapping on standard output, or in `output` (a file that must not exist yet).
pub(super) fn write_starter(text: &str, output: Option<&Path>) -> Result<super::exit::Outcome, CliError> {
    match output {
        None => print!("{text}"),
        Some(path) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|source| CliError::WriteFile { path: path.display().to_string(), source })?,
    }
    Ok(super::exit::Outcome::Done)
}

/// The starter mapping for the samples in `from`.
pub fn init(from: &Path, name: Option<String>) -> Result<String, CliError> {
    let shown = from.display().to_string();
    let text = crate::limits::read_text_bounded(from, crate::limits::MAX_SAMPLES_BYTES, "a sample file")
        .map_err(|source| CliError::Read { path: shown.clone(), source })?;
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        // A sample set may hold broken records on purpose: they say nothing of the shape.
        let line = line.trim_start_matches('\u{feff}');
        let parsed = serde_json::from_str::<Sample>(line).and_then(|s| Ok((s, serde_json::from_str::<Value>(line)?)));
        match parsed {
            Ok((sample @ Sample::Object(_), value)) => samples.push((i + 1, sample, value)),
            Ok(_) => eprintln!("{shown}:{}: not a JSON object; left out of the samples", i + 1),
            Err(e) => eprintln!("{shown}:{}: not JSON ({e}); left out of the samples", i + 1),
        }
    }
    let name = name.unwrap_or_else(|| {
        snake_case(from.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default().as_str())
            .replace('_', "-")
    });
    let (text, notes) = starter(&samples, &name, &shown)?;
    for note in notes {
        eprintln!("{shown}: {note}");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn names_become_snake_case_targets_and_plain_paths() {
        assert_eq!(snake_case("customerId"), "customer_id");
        assert_eq!(snake_case("Sales-Channel"), "sales_channel");
        assert_eq!(snake_case("HTTPStatus"), "httpstatus");
        assert_eq!(snake_case("2fa"), "f_2fa");
        assert_eq!(json_path(&["order".into(), "id".into()]), "$.order.id");
        assert_eq!(json_path(&["a".into(), "odd key".into()]), "$.a['odd key']");
    }

    fn starter_of(lines: &[&str]) -> Result<String, CliError> {
        starter_and_notes(lines).map(|(text, _)| text)
    }

    fn starter_and_notes(lines: &[&str]) -> Result<(String, Vec<String>), CliError> {
        let samples: Vec<SampleLine> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (i + 1, serde_json::from_str::<Sample>(l).unwrap(), serde_json::from_str::<Value>(l).unwrap())
            })
            .collect();
        starter(&samples, "starter", "samples.jsonl")
    }

    /// Keys that snake-case to the same name, or to a name another key has, or that a nested
    /// key's name would sit inside: every target is its own.
    #[test]
    fn colliding_names_get_targets_of_their_own() {
        let text = starter_of(&[
            r#"{"customerId": 1, "customer_id": 2, "customer_id_2": 3, "A": 4, "a": {"b": 5}, "a_2": 6}"#,
        ])
        .unwrap();
        let targets: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("- target: ")).collect();
        assert_eq!(targets, ["customer_id", "customer_id_2", "customer_id_2_2", "a", "a_2.b", "a_2_2"], "{text}");
        assert!(
            text.contains(
                r#"ok: {"a":4,"a_2":{"b":5},"a_2_2":6,"customer_id":1,"customer_id_2":2,"customer_id_2_2":3}"#
            ),
            "{text}"
        );
    }

    /// Keys no dotted path or plain YAML can hold: quotes, dots, brackets, spaces, control
    /// characters, an empty key, unicode.
    #[test]
    fn keys_with_any_characters_are_read() {
        let line = r##"{"": 1, " ": 2, "a.b": 3, "a[0]": 4, "it's": 5, "say \"hi\"": 6, "back\\slash": 7,
            "nul\u0000": 8, "bell\u0007": 9, "line\nbreak": 10, "del\u007f": 11, "c1\u0085": 12,
            "\u2028": 13, "\ufeffbom": 14, "preço": 15, "İstanbul": 16, "ǅ": 17, "²": 18, "#": 19,
            "$": 20, "@": 21, "*": 22, "..": 23, "🦀": 24, "{x}": 25, "- y": 26, "key: value": 27,
            "\ud7ff\ue000\uffff": 28, "\t": 29}"##
            .replace('\n', " ");
        let text = starter_of(&[line.as_str()]).unwrap_or_else(|e| panic!("{e}"));
        let (_, plan) = plan::load_str(&text).unwrap();
        let Outcome::Mapped(mapped) = plan.apply(line.as_bytes()) else { panic!("the sample maps: {text}") };
        let output: Value = serde_json::from_slice(&mapped.value).unwrap();
        let mut values: Vec<i64> = output.as_object().unwrap().values().map(|v| v.as_i64().unwrap()).collect();
        values.sort_unstable();
        assert_eq!(values, (1..=29).collect::<Vec<_>>(), "every key is read once: {output}");
    }

    /// Keys that YAML would read as a boolean or null once snake-cased make targets that are still
    /// names: quoted where they are written.
    #[test]
    fn keys_named_like_yaml_booleans_and_null_make_string_targets() {
        let line = r#"{"true": 1, "False": 2, "NULL": 3, "null": {"true": 4}, "yes": 5}"#;
        let text = starter_of(&[line]).unwrap_or_else(|e| panic!("{e}"));
        let (_, plan) = plan::load_str(&text).unwrap();
        let Outcome::Mapped(mapped) = plan.apply(line.as_bytes()) else { panic!("the sample maps: {text}") };
        let output: Value = serde_json::from_slice(&mapped.value).unwrap();
        assert_eq!(output, serde_json::json!({"true": 1, "false": 2, "null": 3, "null_2": {"true": 4}, "yes": 5}));
    }

    /// The fields are written in time that grows with the number of paths, not its square
    /// (100,000 keys took a minute when each path was compared with every other).
    #[test]
    fn a_hundred_thousand_keys_make_fields_of_their_own() {
        let entries: Vec<(String, Sample)> = (0..100_000)
            .map(|i| (if i % 2 == 0 { format!("k{i}") } else { format!("K{}", i - 1) }, Sample::Scalar(Value::from(i))))
            .collect();
        let mut shape = Shape { unit: "samples", ..Shape::default() };
        shape.object(&entries, 1);
        let mut fields = String::new();
        write_fields(&mut fields, &mut Vec::new(), &shape, "  ", false, "$");
        let targets: HashSet<&str> = fields.lines().filter_map(|l| l.strip_prefix("  - target: ")).collect();
        assert_eq!(targets.len(), 100_000, "every key has a target of its own");
        assert!(targets.contains("k98") && targets.contains("k98_2"));
    }

    /// Samples with no keys, or arrays of empty objects, still make a mapping that compiles.
    /// The shape most samples hold at a path decides between `items:` and a field; an empty array
    /// fits either; the samples that went the other way are named, inside items too.
    #[test]
    fn the_shape_most_samples_hold_decides_and_the_others_are_named() {
        // Arrays of objects in two samples, an empty array in one, text in one: items, not required.
        let (text, notes) = starter_and_notes(&[
            r#"{"p": [{"id": "a"}]}"#,
            r#"{"p": []}"#,
            r#"{"p": "none"}"#,
            r#"{"p": [{"id": "b"}, {"id": "c"}]}"#,
        ])
        .unwrap();
        assert!(text.contains("  items:\n      - target: id\n"), "{text}");
        assert!(!text.contains("an array in every sample"), "{text}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("2 of the 4 samples") && notes[0].contains("text at line 3"), "{notes:?}");
        // Only one sample holds an array of objects: a field of any type, and that sample named.
        let (text, notes) =
            starter_and_notes(&[r#"{"p": "x"}"#, r#"{"p": [{"id": "a"}]}"#, r#"{"p": "y"}"#, r#"{"p": "z"}"#]).unwrap();
        assert!(!text.contains("items:") && text.contains("type: any"), "{text}");
        assert!(notes[0].contains("1 of the 4 samples") && notes[0].contains("(line 2)"), "{notes:?}");
        // Inside items: the path of the odd value, and every sample line named once.
        let (text, notes) = starter_and_notes(&[
            r#"{"o": [{"v": [{"s": 1}]}, {"v": [{"s": 2}]}]}"#,
            r#"{"o": [{"v": {"s": 3}}, {"v": {"s": 4}}, {"v": [{"s": 5}]}, {"v": [{"s": 6}]}]}"#,
            r#"{"o": [{"v": [{"s": 7}]}]}"#,
        ])
        .unwrap();
        assert!(text.contains("      - target: v\n        source: '$.v'\n        items:\n"), "{text}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("`$.o[*].v`") && notes[0].contains("an object at line 2:"), "{notes:?}");
        // Agreeing samples: no note.
        assert!(starter_and_notes(&[r#"{"p": [{"id": 1}]}"#, r#"{"p": []}"#]).unwrap().1.is_empty());
    }

    #[test]
    fn samples_without_keys_make_a_mapping() {
        let text = starter_of(&["{}"]).unwrap();
        assert!(text.contains("source: '$'"), "{text}");
        let text = starter_of(&[r#"{"a": [{}, {}]}"#]).unwrap();
        assert!(text.contains("type: array"), "{text}");
    }

    fn json_key() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            any::<String>(),
            prop::sample::select(vec![
                "",
                " ",
                ".",
                "..",
                "a.b",
                "[0]",
                "'",
                "\"",
                "\\",
                "\u{0}",
                "\n",
                "\u{85}",
                "\u{2028}",
                "\u{feff}",
                "customerId",
                "customer_id",
                "customer_id_2",
                "Customer-ID",
                "field",
                "f_2",
                "2",
                "İ",
                "ǅ",
                "²",
                "#",
                "&a",
                "*",
                "!x",
                "%",
                "@",
                "`",
                "|",
                ">",
                "-",
                "? ",
                ": ",
                "$",
                "a b",
                "ß",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            prop::sample::select(vec!["2026-01-01", "2026-01-01T00:00:00Z", "a@b.co", "x"]).prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((json_key(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// For any JSON objects as samples, the starter `init` writes compiles and its tests pass.
        #[test]
        fn the_starter_compiles_for_any_json_objects(
            records in proptest::collection::vec(
                proptest::collection::vec((json_key(), json_value()), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
                1..4,
            )
        ) {
            let lines: Vec<String> = records.iter().map(Value::to_string).collect();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let text = starter_of(&lines);
            proptest::prop_assert!(text.is_ok(), "{}", text.unwrap_err());
            proptest::prop_assert!(plan::load_str(&text.unwrap()).is_ok());
        }
    }
}
