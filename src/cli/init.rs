//! `lambda-stream init --from samples.jsonl`: a starter mapping inferred from sample records.
//!
//! One field per leaf path seen (arrays of objects become `items:` fields), target names in snake
//! case, a `type` from the values, `required` when present in every sample, `one_of` for strings
//! with few distinct values, validators every value passes (uuid, e-mail, date, datetime, CPF,
//! CNPJ, CEP), and embedded tests from two samples. Every inferred line says `# guess:` and why.
//! The result is compiled and its tests run before it is written: what `init` writes passes
//! `validate-mapping` as written.

use std::collections::{BTreeSet, HashMap};
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
    fn object(&mut self, entries: &[(String, Sample)]) {
        self.objects += 1;
        self.walk(&mut Vec::new(), entries);
    }

    fn walk(&mut self, path: &mut Vec<String>, entries: &[(String, Sample)]) {
        for (key, value) in entries {
            path.push(key.clone());
            match value {
                Sample::Object(inner) if !inner.is_empty() => self.walk(path, inner),
                other => self.leaf(path, other),
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

    fn leaf(&mut self, path: &[String], value: &Sample) {
        let seen = self.entry(path);
        match value {
            Sample::Scalar(Value::Null) => {}
            Sample::Scalar(scalar) => {
                seen.present += 1;
                match scalar {
                    Value::Number(n) if n.is_i64() || n.is_u64() => seen.integers += 1,
                    Value::Number(_) => seen.floats += 1,
                    Value::Bool(_) => seen.booleans += 1,
                    Value::String(s) => {
                        seen.strings += 1;
                        if seen.distinct.len() <= ONE_OF_MAX {
                            seen.distinct.insert(s.clone());
                        }
                        seen.passes.retain(|check| match *check {
                            "date" => types::parse_date(s).is_some(),
                            "datetime" => types::is_rfc3339(s),
                            name => STRING_CHECKS.iter().any(|(n, f)| *n == name && f(s)),
                        });
                    }
                    _ => {}
                }
            }
            Sample::Array(items) if !items.is_empty() && items.iter().all(|i| matches!(i, Sample::Object(_))) => {
                seen.present += 1;
                let shape = seen.items.get_or_insert_with(|| Box::new(Shape { unit: "items", ..Shape::default() }));
                for item in items {
                    if let Sample::Object(entries) = item {
                        shape.object(entries);
                    }
                }
            }
            Sample::Array(_) => {
                seen.present += 1;
                seen.scalar_arrays += 1;
            }
            Sample::Object(_) => {
                seen.present += 1;
                seen.objects_empty += 1;
            }
        }
    }
}

/// `customerId` → `customer_id`, `Sales-Channel` → `sales_channel`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.extend(c.to_lowercase());
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

/// The JSONPath of a key path: dotted names where they are plain, brackets elsewhere.
fn json_path(path: &[String]) -> String {
    let mut out = String::from("$");
    for key in path {
        let plain = key.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_alphanumeric() || c == '_');
        if plain {
            let _ = write!(out, ".{key}");
        } else {
            let _ = write!(out, "['{}']", key.replace('\\', "\\\\").replace('\'', "\\'"));
        }
    }
    out
}

/// `text` with a `# guess:` comment, aligned where the text is short enough.
fn guessed(text: &str, why: &str) -> String {
    format!("{text:<30} # guess: {why}")
}

/// A YAML single-quoted scalar.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Writes the fields of one scope at `indent`.
fn write_fields(out: &mut String, shape: &Shape, indent: &str) {
    let mut used: HashMap<String, usize> = HashMap::new();
    for path in &shape.order {
        // An object in some samples and empty or a value in others: its own fields stand for it.
        if shape.order.iter().any(|p| p.len() > path.len() && p.starts_with(path)) {
            continue;
        }
        let seen = &shape.seen[path];
        let mut target = path.iter().map(|k| snake_case(k)).collect::<Vec<_>>().join(".");
        let n = used.entry(target.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            target = format!("{target}_{n}");
        }
        let _ = writeln!(out, "{indent}- target: {target}");
        let _ = writeln!(out, "{indent}  source: {}", quoted(&json_path(path)));
        let every = seen.present == shape.objects && shape.objects > 0;
        if let Some(items) = &seen.items {
            if every {
                let _ = writeln!(out, "{indent}  {}", guessed("required: true", "an array in every sample"));
            }
            let _ = writeln!(out, "{indent}  items:");
            write_fields(out, items, &format!("{indent}    "));
            continue;
        }
        let kinds = [seen.integers, seen.floats, seen.strings, seen.booleans, seen.scalar_arrays, seen.objects_empty]
            .iter()
            .filter(|n| **n > 0)
            .count();
        let (ty, why) = match () {
            _ if seen.present == 0 => ("any", "only null or absent in the samples"),
            _ if kinds > 1 && seen.integers + seen.floats == seen.present => ("number", "integers and decimals"),
            _ if kinds > 1 => ("any", "values of several kinds"),
            _ if seen.integers > 0 => ("integer", "whole numbers in every sample"),
            _ if seen.floats > 0 => ("number", "numbers"),
            _ if seen.booleans > 0 => ("boolean", "true or false"),
            _ if seen.scalar_arrays > 0 => ("array", "an array of values"),
            _ if seen.objects_empty > 0 => ("object", "an empty object"),
            _ if seen.passes.contains(&"datetime") => ("datetime", "every value is an RFC 3339 datetime"),
            _ if seen.passes.contains(&"date") => ("date", "every value is a YYYY-MM-DD date"),
            _ => ("string", "text"),
        };
        let _ = writeln!(out, "{indent}  {}", guessed(&format!("type: {ty}"), why));
        if every && seen.present > 0 {
            let all = format!("present in all {} {}", shape.objects, shape.unit);
            let _ = writeln!(out, "{indent}  {}", guessed("required: true", &all));
        }
        if ty != "string" {
            continue;
        }
        let mut checks: Vec<String> =
            seen.passes.iter().filter(|c| !matches!(**c, "date" | "datetime")).map(|c| c.to_string()).take(1).collect();
        // Codes, not free text or ids: a few short values without spaces or digits, each seen
        // about three times.
        let few = (2..=ONE_OF_MAX).contains(&seen.distinct.len())
            && seen.strings >= 3 * seen.distinct.len()
            && seen
                .distinct
                .iter()
                .all(|v| v.len() <= 32 && !v.contains(' ') && !v.contains(|c: char| c.is_ascii_digit()))
            && checks.is_empty();
        if few {
            let values: Vec<String> =
                seen.distinct.iter().map(|v| serde_json::to_string(v).expect("a string")).collect();
            checks.push(format!("one_of: [{}]", values.join(", ")));
        }
        if let Some(check) = checks.first() {
            let why = if few { "few distinct values in the samples" } else { "every value passed it" };
            let _ = writeln!(out, "{indent}  validate:");
            let _ = writeln!(out, "{indent}    {}", guessed(&format!("- {check}"), why));
        }
    }
}

/// The starter mapping for the samples, with tests from two of them, checked by compiling it.
fn starter(samples: &[(Sample, Value)], name: &str, from: &str) -> Result<String, String> {
    let mut shape = Shape { unit: "samples", ..Shape::default() };
    for (sample, _) in samples {
        if let Sample::Object(entries) = sample {
            shape.object(entries);
        }
    }
    if shape.objects == 0 {
        return Err("no sample is a JSON object".into());
    }
    let mut fields = String::new();
    write_fields(&mut fields, &shape, "  ");
    let head = format!(
        "# A starter mapping written by `lambda-stream init` from {} sample(s) of {from}.\n\
         # Lines marked `# guess:` are inferred from the samples: check each one, then run\n\
         # `lambda-stream validate-mapping` on this file. `lambda-stream schema` gives editors completion.\n\
         version: 1\nname: {name}\nfields:\n",
        shape.objects
    );
    let body = format!("{head}{fields}");
    let (_, plan) = plan::load_str(&body).map_err(|d| render(&body, &d))?;
    // Tests from the first sample and the one that differs most from it in the fields present.
    let objects: Vec<&Value> = samples.iter().map(|(_, v)| v).filter(|v| v.is_object()).collect();
    let width = |v: &Value| v.as_object().map_or(0, Map::len);
    let second = objects.iter().skip(1).max_by_key(|v| width(v).abs_diff(width(objects[0])));
    let mut tests = String::from("tests:\n");
    for (i, sample) in std::iter::once(objects[0]).chain(second.copied()).enumerate() {
        let bytes = serde_json::to_vec(sample).expect("a value");
        let Outcome::Mapped(mapped) = plan.apply(&bytes) else { continue };
        let output: Value = serde_json::from_slice(&mapped.value).expect("the plan writes JSON");
        let _ = writeln!(tests, "  - name: sample {} maps", if i == 0 { "1" } else { "2" });
        let _ = writeln!(tests, "    input: {}", serde_json::to_string(sample).expect("a value"));
        let _ = writeln!(tests, "    expect:\n      ok: {}", serde_json::to_string(&output).expect("a value"));
    }
    let text = if tests.lines().count() > 1 { format!("{body}\n{tests}") } else { body };
    // What `validate-mapping` will do: compile, and run the tests.
    let (spec, plan) = plan::load_str(&text).map_err(|d| render(&text, &d))?;
    for result in plan::spec_tests::run(&spec, &plan) {
        if let Some(why) = result.failure {
            return Err(format!("the starter's test {:?} fails: {why}", result.name));
        }
    }
    Ok(text)
}

fn render(text: &str, diagnostics: &[crate::diagnostic::Diagnostic]) -> String {
    let mut out = String::from("the starter mapping does not compile (please report this):\n");
    for d in diagnostics {
        let _ = writeln!(out, "{}", d.render("<starter>"));
    }
    out.push_str(text);
    out
}

/// `lambda-stream init`.
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
            Ok((sample @ Sample::Object(_), value)) => samples.push((sample, value)),
            Ok(_) => eprintln!("{shown}:{}: not a JSON object; left out of the samples", i + 1),
            Err(e) => eprintln!("{shown}:{}: not JSON ({e}); left out of the samples", i + 1),
        }
    }
    let name = name.unwrap_or_else(|| {
        snake_case(from.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default().as_str())
            .replace('_', "-")
    });
    starter(&samples, &name, &shown).map_err(CliError::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case_targets_and_plain_paths() {
        assert_eq!(snake_case("customerId"), "customer_id");
        assert_eq!(snake_case("Sales-Channel"), "sales_channel");
        assert_eq!(snake_case("HTTPStatus"), "httpstatus");
        assert_eq!(snake_case("2fa"), "f_2fa");
        assert_eq!(json_path(&["order".into(), "id".into()]), "$.order.id");
        assert_eq!(json_path(&["a".into(), "odd key".into()]), "$.a['odd key']");
    }
}
