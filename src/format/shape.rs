//! A registered schema as the [`Shape`] of the records it describes, as the readers present them
//! to a mapping (docs/formats.md): [`shape_of`] for any kind, by way of [`avro_shape`],
//! [`protobuf_shape`] and [`json_schema_shape`].
//!
//! Avro: `int`/`long` an integer, `float`/`double` a number, a decimal its
//! exact text, a timestamp RFC 3339 text in UTC, a local timestamp the same without a zone, a
//! date `YYYY-MM-DD`, a time `HH:MM:SS.fff`, a uuid text, an enum its symbol, bytes and fixed
//! base64 text, `["null", T]` a `T` that may be missing, another union any value, a map an object
//! of any keys, a duration an object of `months`, `days` and `millis`.
//!
//! Named types are resolved wherever they are used, references included. A recursive type (a
//! linked list, a tree) is followed a few levels down and is any value below; a schema so large
//! that its shape would have more than [`MAX_NODES`] parts is any value past them.

use std::collections::HashMap;

use apache_avro::Schema;

use crate::plan::shape::{Member, Shape, ShapeKind};

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor, Syntax};

use super::protobuf::{ProtoFile, ProtobufSchemaError, compile_pool, schema_file};

/// How many times a named type is followed inside itself: a path that deep into a recursive type
/// is checked, one deeper reads any value.
pub const RECURSION_LEVELS: usize = 3;

/// How many parts (members, items, values) a shape has at most; past them, any value.
pub const MAX_NODES: usize = 100_000;

/// How deep types nest in a shape at most; deeper, any value.
pub const MAX_DEPTH: usize = 64;

/// A schema that does not describe records a mapping reads.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    #[error("{0}")]
    Protobuf(#[from] super::protobuf::ProtobufSchemaError),
    #[error("not a JSON Schema: {0}")]
    JsonSchema(String),
    #[error("a {0} schema, which has no shape here; kinds: AVRO, PROTOBUF, JSON")]
    UnknownKind(String),
    #[error("not an Avro schema: {0}")]
    Parse(#[from] apache_avro::Error),
    #[error("the schema refers to `{0}`, which neither it nor its references define")]
    UnknownName(String),
    #[error("the schema's top type is {0}, not a record: a mapping reads and writes records")]
    NotARecord(String),
}

/// The shape of the records `schema` (Avro schema text) describes; `references` are the texts of
/// the schemas it names types from, those they depend on first (a registry's references).
pub fn avro_shape(schema: &str, references: &[String]) -> Result<Shape, ShapeError> {
    let (root, named) = if references.is_empty() {
        (Schema::parse_str(schema)?, Vec::new())
    } else {
        Schema::parse_str_with_list(schema, references)?
    };
    let mut converter = Converter::default();
    for schema in named.iter().chain([&root]) {
        converter.register(schema);
    }
    let shape = converter.shape(&root, 0)?;
    match shape.kind {
        ShapeKind::Object(_) => Ok(shape),
        other => Err(ShapeError::NotARecord(other.describe())),
    }
}

#[derive(Default)]
struct Converter<'s> {
    /// Named types by full name.
    definitions: HashMap<String, &'s Schema>,
    /// The named types being converted, outermost first: the way to the current one.
    open: Vec<String>,
    nodes: usize,
}

impl<'s> Converter<'s> {
    /// Records every named type defined in `schema`.
    fn register(&mut self, schema: &'s Schema) {
        super::avro::named_types(schema, &mut self.definitions);
    }

    fn shape(&mut self, schema: &'s Schema, depth: usize) -> Result<Shape, ShapeError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES || depth > MAX_DEPTH {
            return Ok(Shape::of(ShapeKind::Any));
        }
        let kind = match schema {
            Schema::Null => return Ok(Shape::of(ShapeKind::Any).or_null()),
            Schema::Boolean => ShapeKind::Boolean,
            Schema::Int | Schema::Long => ShapeKind::Integer,
            Schema::Float | Schema::Double => ShapeKind::Number,
            Schema::Bytes | Schema::Fixed(_) => ShapeKind::Bytes,
            Schema::String | Schema::Uuid(_) => ShapeKind::String,
            Schema::Enum(e) => ShapeKind::Enum(e.symbols.clone()),
            Schema::Decimal(_) | Schema::BigDecimal => ShapeKind::Decimal,
            Schema::Date => ShapeKind::Date,
            Schema::TimeMillis | Schema::TimeMicros => ShapeKind::Time,
            Schema::TimestampMillis | Schema::TimestampMicros | Schema::TimestampNanos => ShapeKind::Datetime,
            Schema::LocalTimestampMillis | Schema::LocalTimestampMicros | Schema::LocalTimestampNanos => {
                ShapeKind::LocalDatetime
            }
            Schema::Duration(_) => ShapeKind::Object(
                ["months", "days", "millis"].map(|n| Member::new(n, Shape::of(ShapeKind::Integer))).to_vec(),
            ),
            Schema::Array(a) => ShapeKind::Array(Box::new(self.shape(&a.items, depth + 1)?)),
            Schema::Map(m) => ShapeKind::Map(Box::new(self.shape(&m.types, depth + 1)?)),
            Schema::Union(u) => return self.union(u.variants(), depth),
            Schema::Record(r) => {
                let name = r.name.to_string();
                return self.named(name, depth, |this| {
                    let members = r.fields.iter().map(|f| {
                        let member = Member::new(f.name.clone(), this.shape(&f.schema, depth + 1)?);
                        Ok(if f.default.is_some() { member.with_default() } else { member })
                    });
                    Ok(ShapeKind::Object(members.collect::<Result<_, ShapeError>>()?))
                });
            }
            Schema::Ref { name } => {
                let full = name.to_string();
                let definition = *self.definitions.get(&full).ok_or_else(|| ShapeError::UnknownName(full.clone()))?;
                return self.shape(definition, depth);
            }
        };
        Ok(Shape::of(kind))
    }

    /// A record: followed inside itself [`RECURSION_LEVELS`] times, then any value.
    fn named(
        &mut self,
        name: String,
        depth: usize,
        convert: impl FnOnce(&mut Self) -> Result<ShapeKind, ShapeError>,
    ) -> Result<Shape, ShapeError> {
        if self.open.iter().filter(|open| **open == name).count() >= RECURSION_LEVELS || depth > MAX_DEPTH {
            return Ok(Shape::of(ShapeKind::Any));
        }
        self.open.push(name);
        let kind = convert(self);
        self.open.pop();
        Ok(Shape::of(kind?))
    }

    /// `["null", T]` is a `T` that may be missing; branches of one kind are that kind; others,
    /// any value (the record has the branch's value).
    fn union(&mut self, variants: &'s [Schema], depth: usize) -> Result<Shape, ShapeError> {
        let nullable = variants.iter().any(|v| matches!(v, Schema::Null));
        let mut branches = Vec::new();
        for variant in variants.iter().filter(|v| !matches!(v, Schema::Null)) {
            branches.push(self.shape(variant, depth + 1)?);
        }
        let mut shape = match branches.len() {
            0 => Shape::of(ShapeKind::Any),
            1 => branches.remove(0),
            _ if branches.iter().all(|b| b.kind == branches[0].kind) => branches.remove(0),
            _ => Shape::of(ShapeKind::Any),
        };
        shape.nullable |= nullable;
        Ok(shape)
    }
}

/// The shape of the records of a Protobuf schema's first message (the one a Confluent record
/// with the lone index `0` is written with), as the Protobuf reader presents them; `references`
/// are the files it imports, by import name.
pub fn protobuf_shape(schema: &str, references: &[ProtoFile<'_>]) -> Result<Shape, ShapeError> {
    let pool = compile_pool(schema, references)?;
    let first = schema_file(&pool).and_then(|f| f.messages().next()).ok_or(ProtobufSchemaError::NoMessage)?;
    Ok(proto_message(&first, &mut Vec::new(), &mut 0))
}
/// A message's shape; `open` are the messages being converted (a recursive one is followed
/// [`RECURSION_LEVELS`] times, then any value).
fn proto_message(message: &MessageDescriptor, open: &mut Vec<String>, nodes: &mut usize) -> Shape {
    *nodes += 1;
    let name = message.full_name().to_string();
    if *nodes > MAX_NODES || open.len() > MAX_DEPTH || open.iter().filter(|o| **o == name).count() >= RECURSION_LEVELS {
        return Shape::of(ShapeKind::Any);
    }
    if let Some(special) = proto_well_known(&name) {
        return special;
    }
    open.push(name);
    let proto3 = message.parent_file().syntax() == Syntax::Proto3;
    let members = message
        .fields()
        .map(|f| {
            let shape = proto_field(&f, proto3, open, nodes);
            // Every protobuf field may be left out of a record: it reads as its default, or
            // as missing when it has presence.
            Member::new(f.name(), shape).with_default()
        })
        .collect();
    open.pop();
    Shape::object(members)
}

fn proto_field(f: &FieldDescriptor, proto3: bool, open: &mut Vec<String>, nodes: &mut usize) -> Shape {
    if f.is_map() {
        let Kind::Message(entry) = f.kind() else { return Shape::of(ShapeKind::Any) };
        let value = proto_single(&entry.map_entry_value_field(), open, nodes);
        return Shape::of(ShapeKind::Map(Box::new(value)));
    }
    let one = proto_single(f, open, nodes);
    if f.cardinality() == Cardinality::Repeated {
        return Shape::array(one);
    }
    if f.supports_presence() || !proto3 { one.or_null() } else { one }
}

fn proto_single(f: &FieldDescriptor, open: &mut Vec<String>, nodes: &mut usize) -> Shape {
    Shape::of(match f.kind() {
        Kind::Double | Kind::Float => ShapeKind::Number,
        Kind::Bool => ShapeKind::Boolean,
        Kind::String => ShapeKind::String,
        Kind::Bytes => ShapeKind::Bytes,
        Kind::Enum(e) => ShapeKind::Enum(e.values().map(|v| v.name().to_string()).collect()),
        Kind::Message(m) => return proto_message(&m, open, nodes),
        _ => ShapeKind::Integer,
    })
}

fn proto_well_known(name: &str) -> Option<Shape> {
    let scalar = |kind| Some(Shape::of(kind));
    match name {
        "google.protobuf.Timestamp" => scalar(ShapeKind::Datetime),
        "google.protobuf.Duration" | "google.protobuf.FieldMask" | "google.protobuf.StringValue" => {
            scalar(ShapeKind::String)
        }
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => scalar(ShapeKind::Number),
        "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value" => scalar(ShapeKind::Integer),
        "google.protobuf.BoolValue" => scalar(ShapeKind::Boolean),
        "google.protobuf.BytesValue" => scalar(ShapeKind::Bytes),
        "google.protobuf.Struct" => scalar(ShapeKind::Map(Box::new(Shape::of(ShapeKind::Any)))),
        "google.protobuf.Value" => scalar(ShapeKind::Any),
        "google.protobuf.ListValue" => Some(Shape::array(Shape::of(ShapeKind::Any))),
        "google.protobuf.Empty" => Some(Shape::object(Vec::new())),
        "google.protobuf.Any" => Some(Shape::object(vec![
            Member::new("@type", Shape::of(ShapeKind::String)),
            Member::new("value", Shape::of(ShapeKind::Bytes)),
        ])),
        "confluent.type.Decimal" => scalar(ShapeKind::Decimal),
        _ => None,
    }
}

/// The shape of the records a JSON Schema describes: `type` (one, or several with `null`),
/// `properties` and `required` (a property not required may be missing), `items`,
/// `additionalProperties` (an object of any keys), `enum`, string `format`s `date-time`, `date`
/// and `time`, `oneOf`/`anyOf` as unions, and local `$ref`s (`#/definitions/…`, `#/$defs/…`).
/// What it cannot tell (`allOf`, a remote `$ref`, a condition) is any value.
pub fn json_schema_shape(schema: &str) -> Result<Shape, ShapeError> {
    let root: serde_json::Value = serde_json::from_str(schema).map_err(|e| ShapeError::JsonSchema(e.to_string()))?;
    if !root.is_object() {
        return Err(ShapeError::JsonSchema("the schema is not a JSON object".into()));
    }
    let mut converter = JsonSchemaConverter { root: &root, open: Vec::new(), nodes: 0 };
    let shape = converter.shape(&root, 0);
    match shape.kind {
        ShapeKind::Object(_) | ShapeKind::Map(_) => Ok(shape),
        other => Err(ShapeError::NotARecord(other.describe())),
    }
}

struct JsonSchemaConverter<'s> {
    root: &'s serde_json::Value,
    /// The `$ref`s being followed, outermost first.
    open: Vec<&'s str>,
    nodes: usize,
}

impl<'s> JsonSchemaConverter<'s> {
    fn shape(&mut self, schema: &'s serde_json::Value, depth: usize) -> Shape {
        use serde_json::Value;
        self.nodes += 1;
        if self.nodes > MAX_NODES || depth > MAX_DEPTH {
            return Shape::of(ShapeKind::Any);
        }
        let Value::Object(schema) = schema else { return Shape::of(ShapeKind::Any) };
        if let Some(Value::String(reference)) = schema.get("$ref") {
            return self.reference(reference, depth);
        }
        if let Some(Value::Array(branches)) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
            return self.union(branches, depth);
        }
        if let Some(Value::Array(symbols)) = schema.get("enum") {
            let nullable = symbols.iter().any(Value::is_null);
            let texts: Option<Vec<String>> =
                symbols.iter().filter(|s| !s.is_null()).map(|s| s.as_str().map(str::to_string)).collect();
            if let Some(texts) = texts {
                let shape = Shape::of(ShapeKind::Enum(texts));
                return if nullable { shape.or_null() } else { shape };
            }
            return Shape::of(ShapeKind::Any);
        }
        let (types, nullable): (Vec<&str>, bool) = match schema.get("type") {
            Some(Value::String(t)) => (vec![t.as_str()], t == "null"),
            Some(Value::Array(ts)) => {
                let names: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
                (names.iter().copied().filter(|t| *t != "null").collect(), names.contains(&"null"))
            }
            _ if schema.contains_key("properties") => (vec!["object"], false),
            _ => (Vec::new(), false),
        };
        let shape = match types.as_slice() {
            ["object"] => self.object(schema, depth),
            ["array"] => match schema.get("items") {
                Some(items) => Shape::array(self.shape(items, depth + 1)),
                None => Shape::array(Shape::of(ShapeKind::Any)),
            },
            ["string"] => Shape::of(match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => ShapeKind::Datetime,
                Some("date") => ShapeKind::Date,
                Some("time") => ShapeKind::Time,
                _ => ShapeKind::String,
            }),
            ["integer"] => Shape::of(ShapeKind::Integer),
            ["number"] => Shape::of(ShapeKind::Number),
            ["boolean"] => Shape::of(ShapeKind::Boolean),
            _ => Shape::of(ShapeKind::Any),
        };
        if nullable { shape.or_null() } else { shape }
    }

    fn object(&mut self, schema: &'s serde_json::Map<String, serde_json::Value>, depth: usize) -> Shape {
        use serde_json::Value;
        let required: Vec<&str> = match schema.get("required") {
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        match schema.get("properties") {
            Some(Value::Object(properties)) => Shape::object(
                properties
                    .iter()
                    .map(|(name, property)| {
                        let shape = self.shape(property, depth + 1);
                        if required.contains(&name.as_str()) {
                            Member::new(name.clone(), shape)
                        } else {
                            // A property not required may be left out: missing when read, and
                            // not needed of a writer.
                            Member::new(name.clone(), shape.or_null()).with_default()
                        }
                    })
                    .collect(),
            ),
            _ => match schema.get("additionalProperties") {
                Some(values @ Value::Object(_)) => Shape::of(ShapeKind::Map(Box::new(self.shape(values, depth + 1)))),
                _ => Shape::of(ShapeKind::Map(Box::new(Shape::of(ShapeKind::Any)))),
            },
        }
    }

    /// A local reference, followed [`RECURSION_LEVELS`] times inside itself; another, any value.
    fn reference(&mut self, reference: &'s str, depth: usize) -> Shape {
        let Some(pointer) = reference.strip_prefix('#') else { return Shape::of(ShapeKind::Any) };
        let Some(target) = self.root.pointer(pointer) else { return Shape::of(ShapeKind::Any) };
        if self.open.iter().filter(|o| **o == reference).count() >= RECURSION_LEVELS {
            return Shape::of(ShapeKind::Any);
        }
        self.open.push(reference);
        let shape = self.shape(target, depth + 1);
        self.open.pop();
        shape
    }

    /// As an Avro union: `null` and one other is that other, possibly missing.
    fn union(&mut self, branches: &'s [serde_json::Value], depth: usize) -> Shape {
        let mut shapes: Vec<Shape> = branches.iter().map(|b| self.shape(b, depth + 1)).collect();
        let nullable = shapes.iter().any(|s| s.nullable && s.kind == ShapeKind::Any)
            || branches.iter().any(|b| b.get("type").and_then(serde_json::Value::as_str) == Some("null"));
        shapes.retain(|s| !(s.kind == ShapeKind::Any && s.nullable));
        let mut shape = match shapes.len() {
            1 => shapes.remove(0),
            n if n > 1 && shapes.iter().all(|s| s.kind == shapes[0].kind) => shapes.remove(0),
            _ => Shape::of(ShapeKind::Any),
        };
        shape.nullable |= nullable;
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/avro/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn kind_of<'s>(shape: &'s Shape, path: &[&str]) -> &'s Shape {
        path.iter().fold(shape, |at, name| &at.member(name).unwrap_or_else(|| panic!("no {name}")).shape)
    }

    #[test]
    fn every_avro_type_has_the_kind_the_reader_gives_it() {
        let shape = avro_shape(&fixture("types.avsc"), &[]).unwrap();
        let expected = [
            ("int_field", ShapeKind::Integer),
            ("long_field", ShapeKind::Integer),
            ("float_field", ShapeKind::Number),
            ("double_field", ShapeKind::Number),
            ("boolean_field", ShapeKind::Boolean),
            ("string_field", ShapeKind::String),
            ("bytes_field", ShapeKind::Bytes),
            ("fixed_field", ShapeKind::Bytes),
            ("enum_field", ShapeKind::Enum(vec!["CREATED".into(), "PAID".into(), "SHIPPED".into()])),
            ("decimal_field", ShapeKind::Decimal),
            ("decimal_fixed", ShapeKind::Decimal),
            ("timestamp_millis", ShapeKind::Datetime),
            ("timestamp_micros", ShapeKind::Datetime),
            ("date_field", ShapeKind::Date),
            ("time_millis", ShapeKind::Time),
            ("uuid_field", ShapeKind::String),
            ("string_or_long", ShapeKind::Any),
            ("map_of_long", ShapeKind::Map(Box::new(Shape::of(ShapeKind::Integer)))),
            ("array_of_string", ShapeKind::Array(Box::new(Shape::of(ShapeKind::String)))),
        ];
        for (name, kind) in expected {
            assert_eq!(kind_of(&shape, &[name]).kind, kind, "{name}");
            assert!(!kind_of(&shape, &[name]).nullable || name == "string_or_long", "{name}");
        }
        let optional = shape.member("optional_null").unwrap();
        assert_eq!(
            (&optional.shape.kind, optional.shape.nullable, optional.has_default),
            (&ShapeKind::String, true, true)
        );
        assert!(kind_of(&shape, &["string_or_long"]).nullable);
        assert_eq!(kind_of(&shape, &["nested", "count"]).kind, ShapeKind::Integer);
        let ShapeKind::Array(line) = &kind_of(&shape, &["array_of_record"]).kind else { panic!() };
        assert_eq!(kind_of(line, &["sku"]).kind, ShapeKind::String);
    }

    #[test]
    fn a_recursive_type_is_followed_a_few_levels_then_is_any_value() {
        let shape = avro_shape(&fixture("hostile-recursive.avsc"), &[]).unwrap();
        let mut at = &shape;
        for _ in 0..RECURSION_LEVELS - 1 {
            at = kind_of(at, &["next"]);
            assert!(at.nullable && matches!(at.kind, ShapeKind::Object(_)), "{at:?}");
        }
        assert_eq!(kind_of(at, &["next"]).kind, ShapeKind::Any);
    }

    #[test]
    fn a_tree_with_many_recursive_fields_stays_small() {
        let children: Vec<String> = (0..40).map(|i| format!(r#"{{"name": "c{i}", "type": ["null", "T"]}}"#)).collect();
        let schema = format!(r#"{{"type": "record", "name": "T", "fields": [{}]}}"#, children.join(","));
        let started = std::time::Instant::now();
        let shape = avro_shape(&schema, &[]).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(kind_of(&shape, &["c0"]).kind, ShapeKind::Object(_)));
    }

    #[test]
    fn named_types_from_references_resolve_and_a_top_type_must_be_a_record() {
        let reference =
            r#"{"type": "record", "name": "Money", "namespace": "x", "fields": [{"name": "cents", "type": "long"}]}"#;
        let schema =
            r#"{"type": "record", "name": "Order", "namespace": "x", "fields": [{"name": "total", "type": "Money"}]}"#;
        let shape = avro_shape(schema, &[reference.to_string()]).unwrap();
        assert_eq!(kind_of(&shape, &["total", "cents"]).kind, ShapeKind::Integer);
        let refused = avro_shape(schema, &[]).unwrap_err().to_string();
        assert!(refused.starts_with("not an Avro schema"), "{refused}");
        assert_eq!(
            avro_shape(r#"{"type": "array", "items": "long"}"#, &[]).unwrap_err().to_string(),
            "the schema's top type is an array, not a record: a mapping reads and writes records"
        );
    }

    #[test]
    fn protobuf_fields_have_the_kinds_the_reader_gives_them() {
        let schema = r#"
            syntax = "proto3";
            import "google/protobuf/timestamp.proto";
            message M {
              int64 n = 1;
              optional string maybe = 2;
              repeated string tags = 3;
              map<string, double> rates = 4;
              google.protobuf.Timestamp at = 5;
              M next = 6;
              enum Kind { A = 0; B = 1; }
              Kind kind = 7;
            }
        "#;
        let shape = protobuf_shape(schema, &[]).unwrap();
        assert_eq!(kind_of(&shape, &["n"]).kind, ShapeKind::Integer);
        assert!(!kind_of(&shape, &["n"]).nullable, "a proto3 scalar reads as its default when absent");
        assert!(kind_of(&shape, &["maybe"]).nullable);
        assert_eq!(kind_of(&shape, &["tags"]).kind, ShapeKind::Array(Box::new(Shape::of(ShapeKind::String))));
        assert_eq!(kind_of(&shape, &["rates"]).kind, ShapeKind::Map(Box::new(Shape::of(ShapeKind::Number))));
        assert_eq!(kind_of(&shape, &["at"]).kind, ShapeKind::Datetime);
        assert_eq!(kind_of(&shape, &["kind"]).kind, ShapeKind::Enum(vec!["A".into(), "B".into()]));
        let mut at = &shape;
        for _ in 0..RECURSION_LEVELS - 1 {
            at = kind_of(at, &["next"]);
            assert!(matches!(at.kind, ShapeKind::Object(_)) && at.nullable, "{at:?}");
        }
        assert_eq!(kind_of(at, &["next"]).kind, ShapeKind::Any);
        assert!(shape.member("n").unwrap().has_default, "a writer may leave any protobuf field out");
    }

    #[test]
    fn json_schemas_give_types_formats_requirements_unions_and_references() {
        let schema = r##"{
          "type": "object",
          "required": ["id", "node"],
          "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "either": {"oneOf": [{"type": "null"}, {"type": "number"}]},
            "status": {"enum": ["A", "B", null]},
            "node": {"$ref": "#/definitions/node"},
            "remote": {"$ref": "https://example.com/x.json"}
          },
          "definitions": {
            "node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node"}}}
          }
        }"##;
        let shape = json_schema_shape(schema).unwrap();
        let id = shape.member("id").unwrap();
        assert_eq!((&id.shape.kind, id.optional()), (&ShapeKind::Integer, false));
        let at = shape.member("at").unwrap();
        assert_eq!((&at.shape.kind, at.shape.nullable, at.has_default), (&ShapeKind::Datetime, true, true));
        assert_eq!(kind_of(&shape, &["either"]).kind, ShapeKind::Number);
        assert!(kind_of(&shape, &["either"]).nullable);
        assert!(
            matches!(kind_of(&shape, &["status"]).kind, ShapeKind::Enum(_)) && kind_of(&shape, &["status"]).nullable
        );
        assert_eq!(kind_of(&shape, &["remote"]).kind, ShapeKind::Any);
        assert!(matches!(kind_of(&shape, &["node", "next", "next"]).kind, ShapeKind::Object(_)));
        let refused = json_schema_shape(r#"{"type": "string"}"#).unwrap_err().to_string();
        assert!(refused.contains("not a record"), "{refused}");
    }
}
