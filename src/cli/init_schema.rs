//! `lambda-stream init --from-schema orders.avsc`: a starter mapping from the schema of the
//! records it will read.
//!
//! One field per leaf of the schema's record (nested records flattened to dotted targets, arrays
//! of records as `items:` fields), its target in snake case, its `type` the one the schema's type
//! reaches a mapping as (docs/formats.md), `required` where neither the member nor a record around
//! it may be null, `one_of` an enum's symbols; each line says what the schema has there. The
//! mapping names the schema (`source_schema:`) so `validate-mapping` keeps holding it to it. As
//! `init --from` does, it is compiled, and checked against the schema, before it is written.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::error::CliError;
use super::init::{TargetNames, json_path, needs_escape, plain_key, quoted, render, snake_case, yaml_json};
use super::schema_check::{SchemaAt, read_shape};
use crate::diagnostic::Severity;
use crate::plan::schema_check::check_source;
use crate::plan::shape::{Member, Shape, ShapeKind};

/// `lambda-stream init --from-schema`: the starter on standard output, or in `output`.
pub fn run(schema: &str, name: Option<String>, output: Option<&Path>) -> Result<super::exit::Outcome, CliError> {
    let at = SchemaAt::parse(schema, None).map_err(|why| CliError::Usage(format!("--from-schema: {why}")))?;
    let shape = read_shape(&at).map_err(|p| p.into_cli("from-schema"))?;
    let name = name.unwrap_or_else(|| match &at {
        SchemaAt::File(path) => {
            snake_case(&path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
                .replace('_', "-")
        }
        SchemaAt::Registry { subject, .. } => snake_case(subject).replace('_', "-"),
    });
    let named = schema_key(&at, output);
    let text = starter(&shape, &name, &at.to_string(), &named)?;
    super::init::write_starter(&text, output)
}

/// One field of the starter: a leaf of the schema, or an array of records mapped with `items:`.
struct Entry<'s> {
    path: Vec<String>,
    shape: &'s Shape,
    /// Neither it nor a record around it may be null.
    required: bool,
}

/// The starter mapping for records of `shape`, compiled and checked against `shape`.
fn starter(shape: &Shape, name: &str, from: &str, schema_key: &str) -> Result<String, CliError> {
    let ShapeKind::Object(members) = &shape.kind else {
        return Err(CliError::Usage(format!("--from-schema: {from} does not describe records")));
    };
    let mut fields = String::new();
    write_fields(&mut fields, members, "  ", false);
    if fields.is_empty() {
        let _ = writeln!(fields, "  - target: record\n    source: '$'\n    type: object");
    }
    // The schema's name goes in a comment: nothing in it may end the comment's line.
    let from: String = from.chars().map(|c| if needs_escape(c) { '?' } else { c }).collect();
    let name = if name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !name.is_empty() {
        name.to_owned()
    } else {
        quoted(if name.is_empty() { "starter" } else { name })
    };
    let text = format!(
        "# A starter mapping written by `lambda-stream init` from the schema {from}.\n\
         # Every field the schema has, typed as its values reach a mapping (each line says what the\n\
         # schema has there): keep the ones you need, rename their targets, add checks, then run\n\
         # `lambda-stream validate-mapping` on this file, which holds it to the schema.\n\
         version: 1\nname: {name}\n{schema_key}fields:\n{fields}"
    );
    // What `validate-mapping` will do: compile, and hold the mapping to the schema.
    let (spec, _) = crate::plan::load_str(&text).map_err(|d| CliError::Usage(render(&text, &d)))?;
    let refused: Vec<_> = check_source(&spec, shape).into_iter().filter(|d| d.severity == Severity::Error).collect();
    if !refused.is_empty() {
        return Err(CliError::Usage(format!("the starter does not fit its own schema: {}", render(&text, &refused))));
    }
    Ok(text)
}

/// The fields of one scope (the record, or an array's items: `in_items`) at `indent`. Inside
/// `items:`, a source is a plain path, which cannot hold every key: a field whose key path it
/// cannot write is left out, with a comment that says so.
fn write_fields(out: &mut String, members: &[Member], indent: &str, in_items: bool) {
    let mut entries = Vec::new();
    collect(members, &mut Vec::new(), true, &mut entries);
    let mut names = TargetNames::default();
    for entry in &entries {
        if in_items && !entry.path.iter().all(|key| plain_key(key)) {
            let keys = yaml_json(&Value::from(entry.path.iter().map(|k| Value::from(k.as_str())).collect::<Vec<_>>()));
            let _ = writeln!(
                out,
                "{indent}# left out: an item's source is a plain path, which cannot read the keys {keys}"
            );
            continue;
        }
        let target = names.target(&entry.path);
        let written = if matches!(target.as_str(), "true" | "false" | "null") { quoted(&target) } else { target };
        let _ = writeln!(out, "{indent}- target: {written}");
        let _ = writeln!(out, "{indent}  source: {}", quoted(&json_path(&entry.path)));
        if let ShapeKind::Array(item) = &entry.shape.kind
            && let ShapeKind::Object(fields) = &item.kind
            && !fields.is_empty()
        {
            if entry.required {
                let _ = writeln!(out, "{indent}  {}", said("required: true", "an array of records, never null"));
            }
            let _ = writeln!(out, "{indent}  items:");
            write_fields(out, fields, &format!("{indent}    "), true);
            continue;
        }
        let (ty, why) = field_type(&entry.shape.kind);
        let _ = writeln!(out, "{indent}  {}", said(&format!("type: {ty}"), &why));
        if entry.required {
            let _ = writeln!(out, "{indent}  {}", said("required: true", "never null"));
        }
        if let ShapeKind::Enum(symbols) = &entry.shape.kind {
            let symbols: Vec<String> = symbols.iter().map(|s| yaml_json(&Value::from(s.as_str()))).collect();
            let _ = writeln!(out, "{indent}  validate:\n{indent}    - one_of: [{}]", symbols.join(", "));
        }
    }
}

/// Every field of the starter under `path`: nested records flattened, in the schema's order.
fn collect<'s>(members: &'s [Member], path: &mut Vec<String>, required: bool, out: &mut Vec<Entry<'s>>) {
    for member in members {
        path.push(member.name.clone());
        let required = required && !member.shape.nullable;
        match &member.shape.kind {
            ShapeKind::Object(inner) if !inner.is_empty() => collect(inner, path, required, out),
            _ => out.push(Entry { path: path.clone(), shape: &member.shape, required }),
        }
        path.pop();
    }
}

/// The field type a value of this kind is mapped as, and what the schema has there.
fn field_type(kind: &ShapeKind) -> (&'static str, String) {
    let ty = match kind {
        ShapeKind::Integer => "integer",
        ShapeKind::Number => "number",
        ShapeKind::Boolean => "boolean",
        ShapeKind::Datetime => "datetime",
        ShapeKind::Date => "date",
        ShapeKind::Decimal => "decimal",
        ShapeKind::Object(_) | ShapeKind::Map(_) => "object",
        ShapeKind::Array(_) => "array",
        ShapeKind::Any => "any",
        ShapeKind::String | ShapeKind::LocalDatetime | ShapeKind::Time | ShapeKind::Bytes | ShapeKind::Enum(_) => {
            "string"
        }
    };
    (ty, kind.describe())
}

/// `text` with what the schema says, aligned where the text is short enough.
fn said(text: &str, why: &str) -> String {
    let why: String = why.chars().map(|c| if needs_escape(c) { '?' } else { c }).collect();
    format!("{text:<30} # schema: {why}")
}

/// The `source_schema:` line: a registry subject as it is; a file as a path from the folder of
/// the mapping written (`output`). Printed, the mapping has no folder yet: the line is a comment.
fn schema_key(at: &SchemaAt, output: Option<&Path>) -> String {
    match (at, output) {
        (SchemaAt::Registry { .. }, _) => format!("source_schema: {}\n", quoted(&at.to_string())),
        (SchemaAt::File(schema), Some(output)) => {
            let folder = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            match relative_path(folder, schema) {
                Some(path) => format!("source_schema: {}\n", quoted(&path.to_string_lossy())),
                None => format!("# source_schema: {}  # the path from this file's folder\n", schema.display()),
            }
        }
        (SchemaAt::File(schema), None) => {
            format!("# source_schema: {}  # the path from this file's folder\n", schema.display())
        }
    }
}

/// The path from folder `from` to `to`, both as they are on disk (links resolved).
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let (from, to) = (from.canonicalize().ok()?, to.canonicalize().ok()?);
    let common = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    let mut path: PathBuf = from.components().skip(common).map(|_| Component::ParentDir).collect();
    path.extend(to.components().skip(common));
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, kind: ShapeKind) -> Member {
        Member::new(name, Shape::of(kind))
    }

    #[test]
    fn every_leaf_is_a_field_typed_as_the_schema_says_and_records_in_arrays_are_items() {
        let shape = Shape::object(vec![
            member("orderId", ShapeKind::String),
            member("amount", ShapeKind::Decimal),
            member("status", ShapeKind::Enum(vec!["NEW".into(), "PAID".into()])),
            Member::new("channel", Shape::of(ShapeKind::String).or_null()).with_default(),
            Member::new("customer", Shape::object(vec![member("id", ShapeKind::Integer)]).or_null()),
            member("lines", ShapeKind::Array(Box::new(Shape::object(vec![member("sku", ShapeKind::String)])))),
            member("at", ShapeKind::Datetime),
        ]);
        let text = starter(&shape, "orders", "orders.avsc", "").unwrap();
        let fields = text.split_once("fields:\n").unwrap().1;
        let expected = "  - target: order_id
    source: '$.orderId'
    type: string                   # schema: text
    required: true                 # schema: never null
  - target: amount
    source: '$.amount'
    type: decimal                  # schema: an exact decimal (as text)
    required: true                 # schema: never null
  - target: status
    source: '$.status'
    type: string                   # schema: an enum (NEW, PAID)
    required: true                 # schema: never null
    validate:
      - one_of: [\"NEW\", \"PAID\"]
  - target: channel
    source: '$.channel'
    type: string                   # schema: text
  - target: customer.id
    source: '$.customer.id'
    type: integer                  # schema: an integer
  - target: lines
    source: '$.lines'
    required: true                 # schema: an array of records, never null
    items:
      - target: sku
        source: '$.sku'
        type: string                   # schema: text
        required: true                 # schema: never null
  - target: at
    source: '$.at'
    type: datetime                 # schema: a datetime (RFC 3339 text in UTC)
    required: true                 # schema: never null
";
        assert_eq!(fields, expected);
    }

    #[test]
    fn a_schema_file_is_named_from_the_folder_of_the_mapping_written() {
        let dir = std::env::temp_dir().join(format!("lambda-stream-init-schema-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("mappings")).unwrap();
        std::fs::create_dir_all(dir.join("schemas")).unwrap();
        std::fs::write(dir.join("schemas/o.avsc"), "{}").unwrap();
        let at = SchemaAt::File(dir.join("schemas/o.avsc"));
        assert_eq!(schema_key(&at, Some(&dir.join("mappings/o.yaml"))), "source_schema: '../schemas/o.avsc'\n");
        assert!(schema_key(&at, None).starts_with("# source_schema: "));
        let registry = SchemaAt::Registry { subject: "orders-value".into(), version: "3".into() };
        assert_eq!(schema_key(&registry, None), "source_schema: 'registry:orders-value@3'\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
