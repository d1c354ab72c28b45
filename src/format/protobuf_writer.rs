//! Mapped records → Protobuf bodies, over the message table [`super::protobuf`] compiles: its
//! reading run backwards. Values arrive in the forms the reader gives them (proto3's JSON
//! mapping): an enum by its name (or number), 64-bit integers as numbers or decimal text, bytes
//! as base64 text, a Timestamp as RFC 3339 text, a Duration as `1.5s`, a wrapper as its value,
//! `Struct`/`Value`/`ListValue` as any JSON, a `confluent.type.Decimal` as decimal text. A member
//! the record leaves out (or null) is not written: a reader takes it as the field's default, or
//! as missing where the field has presence. Fields are written in declaration order; repeated
//! scalars packed, as proto3 writes them.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::plan::document::Doc;

use super::protobuf::{END_GROUP, FieldKind, LEN, Label, ProtobufReader, START_GROUP, Special, VARINT};

/// Nesting bound, as for reading.
const MAX_DEPTH: usize = super::protobuf::MAX_DEPTH;

/// Why a mapped record cannot be written with the schema's message. It names where and what
/// kind of value, never the value (a field may be `sensitive`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("`{path}`: ") })]
pub struct ProtobufWriteError {
    pub message: String,
    /// The output field, as a path (`customer.address.zip`).
    pub path: String,
}

impl ProtobufReader {
    /// The message a schema's records are written with unless one is named: its first.
    pub fn first_message(&self) -> usize {
        self.top[0]
    }

    /// The message with full name `name` (`com.example.Billing`), or a top-level one named so.
    pub fn message_named(&self, name: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|m| m.full_name == name)
            .or_else(|| self.top.iter().copied().find(|&m| self.messages[m].full_name.rsplit('.').next() == Some(name)))
    }

    /// The message indexes Confluent's framing writes before a body of `message`: its path from
    /// the file's top level, zig-zag varints after their count; the first message is one `0`.
    pub fn confluent_indexes(&self, message: usize) -> Vec<u8> {
        fn path_to(reader: &ProtobufReader, choices: &[usize], target: usize, path: &mut Vec<usize>) -> bool {
            for (i, &m) in choices.iter().enumerate() {
                path.push(i);
                if m == target || path_to(reader, &reader.messages[m].nested, target, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        let mut path = Vec::new();
        if !path_to(self, &self.top, message, &mut path) || path == [0] {
            return vec![0];
        }
        let mut out = Vec::new();
        write_varint(&mut out, zigzag(path.len() as i64));
        for i in path {
            write_varint(&mut out, zigzag(i as i64));
        }
        out
    }

    /// The message index AWS Glue's framing writes before a body of `message`: its place among
    /// the file's messages sorted by full name, one unsigned varint.
    pub fn glue_index(&self, message: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, self.by_name.iter().position(|&m| m == message).unwrap_or(0) as u64);
        out
    }

    /// Writes a mapped record as a body of `message` (without the message indexes).
    pub fn write(&self, message: usize, value: &Doc<'_>, out: &mut Vec<u8>) -> Result<(), ProtobufWriteError> {
        let mut writing = Writing { reader: self, path: Vec::new() };
        writing.message(message, value, out, 0).map_err(|message| {
            let mut path = String::new();
            // Pushed innermost first, on the way out of the failure.
            for part in writing.path.iter().rev() {
                if !path.is_empty() && !part.starts_with('[') {
                    path.push('.');
                }
                path.push_str(part);
            }
            ProtobufWriteError { message, path }
        })
    }
}

struct Writing<'r> {
    reader: &'r ProtobufReader,
    path: Vec<String>,
}

fn kind_of(value: &Doc<'_>) -> &'static str {
    match value {
        Doc::Str(_) => "text",
        other => other.kind(),
    }
}

impl Writing<'_> {
    fn message(&mut self, m: usize, value: &Doc<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let reader = self.reader;
        let table = &reader.messages[m];
        if let Some(special) = table.special {
            return self.special(m, special, value, out, depth);
        }
        let Doc::Object(members) = value else {
            return Err(format!("the schema has a message here, the record {}", kind_of(value)));
        };
        let mut next = 0;
        for field in &table.fields {
            let name = field.name.as_str();
            let at = match members.get(next) {
                Some((n, _)) if n == name => Some(next),
                _ => members.iter().position(|(n, _)| n == name),
            };
            let Some(at) = at else { continue };
            next = at + 1;
            let member = &members[at].1;
            if matches!(member, Doc::Null) {
                continue;
            }
            if let Err(e) = self.field(field.number, field.kind, field.label, member, out, depth) {
                self.path.push(name.to_string());
                return Err(e);
            }
        }
        Ok(())
    }

    fn field(
        &mut self,
        number: u32,
        kind: FieldKind,
        label: Label,
        value: &Doc<'_>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        match (label, value) {
            (Label::Map(entry), Doc::Object(entries)) => {
                let table = &self.reader.messages[entry];
                let (key, item) = (&table.fields[0], &table.fields[1]);
                let mut buf = Vec::new();
                for (k, v) in entries {
                    buf.clear();
                    let key_value = map_key(key.kind, k)?;
                    let written =
                        self.single(key.number, key.kind, &key_value, &mut buf, depth).and_then(|()| match v {
                            Doc::Null => Ok(()),
                            v => self.single(item.number, item.kind, v, &mut buf, depth),
                        });
                    if let Err(e) = written {
                        self.path.push(format!("[{k:?}]"));
                        return Err(e);
                    }
                    write_tag(out, number, LEN);
                    write_varint(out, buf.len() as u64);
                    out.extend_from_slice(&buf);
                }
                Ok(())
            }
            (Label::Map(_), other) => Err(format!("the schema has a map here, the record {}", kind_of(other))),
            (Label::Repeated, Doc::List(items)) if kind.packable() => {
                let mut buf = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if let Err(e) = self.scalar(kind, item, &mut buf) {
                        self.path.push(format!("[{i}]"));
                        return Err(e);
                    }
                }
                if !items.is_empty() {
                    write_tag(out, number, LEN);
                    write_varint(out, buf.len() as u64);
                    out.extend_from_slice(&buf);
                }
                Ok(())
            }
            (Label::Repeated, Doc::List(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Err(e) = self.single(number, kind, item, out, depth) {
                        self.path.push(format!("[{i}]"));
                        return Err(e);
                    }
                }
                Ok(())
            }
            (Label::Repeated, other) => {
                Err(format!("the schema has a repeated field here, the record {}", kind_of(other)))
            }
            (Label::Implicit | Label::Explicit, value) => self.single(number, kind, value, out, depth),
        }
    }

    /// One value of field `number`, its tag first.
    fn single(
        &mut self,
        number: u32,
        kind: FieldKind,
        value: &Doc<'_>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        match kind {
            FieldKind::Message(m) => {
                let mut buf = Vec::new();
                self.message(m, value, &mut buf, depth + 1)?;
                write_tag(out, number, LEN);
                write_varint(out, buf.len() as u64);
                out.extend_from_slice(&buf);
            }
            FieldKind::Group(m) => {
                write_tag(out, number, START_GROUP);
                self.message(m, value, out, depth + 1)?;
                write_tag(out, number, END_GROUP);
            }
            FieldKind::Str | FieldKind::Bytes => {
                let raw: Cow<'_, [u8]> = match (kind, value) {
                    (FieldKind::Str, Doc::Str(text)) => Cow::Borrowed(text.as_bytes()),
                    (FieldKind::Bytes, Doc::Str(text)) => Cow::Owned(
                        BASE64
                            .decode(text.as_bytes())
                            .map_err(|_| "the schema has bytes here: base64 text, which this is not".to_string())?,
                    ),
                    (FieldKind::Str, other) => {
                        return Err(format!("the schema has a string here, the record {}", kind_of(other)));
                    }
                    (_, other) => return Err(format!("the schema has bytes here, the record {}", kind_of(other))),
                };
                write_tag(out, number, LEN);
                write_varint(out, raw.len() as u64);
                out.extend_from_slice(&raw);
            }
            scalar => {
                write_tag(out, number, scalar.wire_type());
                self.scalar(scalar, value, out)?;
            }
        }
        Ok(())
    }

    /// A scalar's payload (no tag): varint, fixed 32 or 64 bits.
    fn scalar(&self, kind: FieldKind, value: &Doc<'_>, out: &mut Vec<u8>) -> Result<(), String> {
        let wrong = |expected: &str| format!("the schema has {expected} here, the record {}", kind_of(value));
        match kind {
            FieldKind::Double | FieldKind::Float => {
                let f = float_of(value).ok_or_else(|| wrong("a number"))?;
                if kind == FieldKind::Double {
                    out.extend_from_slice(&f.to_le_bytes());
                } else {
                    out.extend_from_slice(&(f as f32).to_le_bytes());
                }
            }
            FieldKind::Bool => match value {
                Doc::Bool(b) => out.push(u8::from(*b)),
                _ => return Err(wrong("a boolean")),
            },
            FieldKind::Enum(e) => {
                let number = match value {
                    Doc::Str(name) => self.reader.enums[e]
                        .iter()
                        .find(|(_, n)| n == name)
                        .map(|(number, _)| *number)
                        .ok_or_else(|| "not a value of the schema's enum".to_string())?,
                    Doc::Int(n) => i32::try_from(*n).map_err(|_| wrong("an enum number (32 bits)"))?,
                    _ => return Err(wrong("an enum value")),
                };
                write_varint(out, i64::from(number) as u64);
            }
            integer => {
                let n = integer_of(value).ok_or_else(|| wrong("a whole number"))?;
                let fits = |lo: i128, hi: i128| (lo..=hi).contains(&n);
                let range = || wrong("a whole number in its type's range");
                match integer {
                    FieldKind::Int32 if fits(i32::MIN.into(), i32::MAX.into()) => write_varint(out, n as i64 as u64),
                    FieldKind::Int64 if fits(i64::MIN.into(), i64::MAX.into()) => write_varint(out, n as i64 as u64),
                    FieldKind::UInt32 if fits(0, u32::MAX.into()) => write_varint(out, n as u64),
                    FieldKind::UInt64 if fits(0, u64::MAX.into()) => write_varint(out, n as u64),
                    FieldKind::SInt32 if fits(i32::MIN.into(), i32::MAX.into()) => write_varint(out, zigzag(n as i64)),
                    FieldKind::SInt64 if fits(i64::MIN.into(), i64::MAX.into()) => write_varint(out, zigzag(n as i64)),
                    FieldKind::Fixed32 if fits(0, u32::MAX.into()) => out.extend_from_slice(&(n as u32).to_le_bytes()),
                    FieldKind::Fixed64 if fits(0, u64::MAX.into()) => out.extend_from_slice(&(n as u64).to_le_bytes()),
                    FieldKind::SFixed32 if fits(i32::MIN.into(), i32::MAX.into()) => {
                        out.extend_from_slice(&(n as i32).to_le_bytes())
                    }
                    FieldKind::SFixed64 if fits(i64::MIN.into(), i64::MAX.into()) => {
                        out.extend_from_slice(&(n as i64).to_le_bytes())
                    }
                    _ => return Err(range()),
                }
            }
        }
        Ok(())
    }

    /// A well-known type from its JSON form.
    fn special(
        &mut self,
        m: usize,
        special: Special,
        value: &Doc<'_>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        let wrong = |expected: &str| format!("the schema has {expected} here, the record {}", kind_of(value));
        match (special, value) {
            (Special::Timestamp, Doc::Str(text)) => {
                let at = chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| "the schema has a Timestamp here; this is not RFC 3339 date-time text".to_string())?;
                seconds_and_nanos(out, at.timestamp(), i64::from(at.timestamp_subsec_nanos()));
            }
            (Special::Duration, Doc::Str(text)) => {
                let (seconds, nanos) = duration_of(text).ok_or_else(|| wrong("a Duration (`1.5s`)"))?;
                seconds_and_nanos(out, seconds, nanos);
            }
            (Special::Wrapper, value) => {
                let field = &self.reader.messages[m].fields[0];
                self.single(field.number, field.kind, value, out, depth)?;
            }
            (Special::Struct, Doc::Object(_)) => {
                let field = &self.reader.messages[m].fields[0];
                self.field(field.number, field.kind, field.label, value, out, depth)?;
            }
            (Special::ListValue, Doc::List(_)) => {
                let field = &self.reader.messages[m].fields[0];
                self.field(field.number, field.kind, field.label, value, out, depth)?;
            }
            (Special::Value, value) => self.json_value(m, value, out, depth)?,
            (Special::FieldMask, Doc::Str(text)) => {
                for path in text.split(',').filter(|p| !p.is_empty()) {
                    let snake = snake_case(path);
                    write_tag(out, 1, LEN);
                    write_varint(out, snake.len() as u64);
                    out.extend_from_slice(snake.as_bytes());
                }
            }
            (Special::Empty, Doc::Object(_)) => {}
            (Special::Any, Doc::Object(members)) => {
                let get = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                if let Some(url) = get("@type") {
                    self.single(1, FieldKind::Str, url, out, depth)?;
                }
                if let Some(bytes) = get("value") {
                    self.single(2, FieldKind::Bytes, bytes, out, depth)?;
                }
            }
            (Special::Decimal, Doc::Str(_) | Doc::Decimal(_) | Doc::Int(_) | Doc::Float(_)) => {
                let text = match value {
                    Doc::Str(text) => text.to_string(),
                    Doc::Decimal(text) => text.clone(),
                    Doc::Int(n) => n.to_string(),
                    Doc::Float(f) => f.to_string(),
                    _ => unreachable!("matched a number or text"),
                };
                let scale = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                if text.contains(['e', 'E']) {
                    return Err("the schema has a decimal here; write it without an exponent".into());
                }
                let unscaled = super::avro::unscaled_of(&text, scale)?;
                let raw = super::avro::twos_complement(unscaled, None).unwrap_or_default();
                write_tag(out, 1, LEN);
                write_varint(out, raw.len() as u64);
                out.extend_from_slice(&raw);
                let digits = unscaled.unsigned_abs().to_string().len();
                write_tag(out, 2, VARINT);
                write_varint(out, digits.max(scale) as u64);
                if scale > 0 {
                    write_tag(out, 3, VARINT);
                    write_varint(out, scale as u64);
                }
            }
            (Special::Timestamp, _) => return Err(wrong("a Timestamp (RFC 3339 text)")),
            (Special::Duration, _) => return Err(wrong("a Duration (`1.5s`)")),
            (Special::Struct | Special::Empty | Special::Any, _) => return Err(wrong("an object")),
            (Special::ListValue, _) => return Err(wrong("an array")),
            (Special::FieldMask, _) => return Err(wrong("a field mask (text)")),
            (Special::Decimal, _) => return Err(wrong("a decimal (text or a number)")),
        }
        Ok(())
    }

    /// A `google.protobuf.Value` from any JSON value: the member of its `kind` oneof that fits.
    fn json_value(&mut self, m: usize, value: &Doc<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
        let fields = &self.reader.messages[m].fields;
        let by_name = |name: &str| fields.iter().find(|f| f.name.as_str() == name);
        let (name, inner): (&str, Cow<'_, Doc<'_>>) = match value {
            Doc::Null => {
                write_tag(out, 1, VARINT);
                write_varint(out, 0);
                return Ok(());
            }
            Doc::Int(n) => ("number_value", Cow::Owned(Doc::Float(*n as f64))),
            Doc::Float(_) => ("number_value", Cow::Borrowed(value)),
            Doc::Decimal(text) => ("string_value", Cow::Owned(Doc::Str(Cow::Owned(text.clone())))),
            Doc::Str(_) => ("string_value", Cow::Borrowed(value)),
            Doc::Bool(_) => ("bool_value", Cow::Borrowed(value)),
            Doc::Object(_) => ("struct_value", Cow::Borrowed(value)),
            Doc::List(_) => ("list_value", Cow::Borrowed(value)),
        };
        let field = by_name(name).ok_or_else(|| format!("google.protobuf.Value has no `{name}`"))?;
        self.single(field.number, field.kind, &inner, out, depth)
    }
}

/// A map entry's key from its text, as the key's type reads it.
fn map_key(kind: FieldKind, key: &str) -> Result<Doc<'static>, String> {
    Ok(match kind {
        FieldKind::Str => Doc::Str(Cow::Owned(key.to_string())),
        FieldKind::Bool => match key {
            "true" => Doc::Bool(true),
            "false" => Doc::Bool(false),
            _ => return Err("a map key that is not true or false, as the schema's bool keys are".into()),
        },
        _ => match key.parse::<i64>() {
            Ok(n) => Doc::Int(n),
            Err(_) => match key.parse::<u64>() {
                Ok(n) => Doc::Decimal(n.to_string()),
                Err(_) => return Err("a map key that is not a whole number, as the schema's keys are".into()),
            },
        },
    })
}

/// A whole number from a number, or from its decimal text (64-bit integers come as text in
/// proto3's JSON mapping).
fn integer_of(value: &Doc<'_>) -> Option<i128> {
    match value {
        Doc::Int(n) => Some(i128::from(*n)),
        Doc::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(*f as i128),
        Doc::Decimal(text) => text.parse().ok(),
        Doc::Str(text) => text.parse().ok(),
        _ => None,
    }
}

fn float_of(value: &Doc<'_>) -> Option<f64> {
    match value {
        Doc::Int(n) => Some(*n as f64),
        Doc::Float(f) => Some(*f),
        Doc::Decimal(text) => text.parse().ok(),
        Doc::Str(text) => match text.as_ref() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

/// `-1.500s` → (-1, -500000000).
fn duration_of(text: &str) -> Option<(i64, i64)> {
    let number = text.strip_suffix('s')?;
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let nanos: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().ok()? };
    Some(if negative { (-seconds, -nanos) } else { (seconds, nanos) })
}

fn seconds_and_nanos(out: &mut Vec<u8>, seconds: i64, nanos: i64) {
    if seconds != 0 {
        write_tag(out, 1, VARINT);
        write_varint(out, seconds as u64);
    }
    if nanos != 0 {
        write_tag(out, 2, VARINT);
        write_varint(out, nanos as i32 as i64 as u64);
    }
}

/// `customerName` → `customer_name`, as a field mask's paths are declared.
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn write_tag(out: &mut Vec<u8>, number: u32, wire: u8) {
    write_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = r#"
        syntax = "proto3";
        package t;
        import "google/protobuf/timestamp.proto";
        message Billing {
          string id = 1;
          int64 cents = 2;
          repeated string skus = 3;
          map<string, int64> counts = 4;
          Status status = 5;
          google.protobuf.Timestamp at = 6;
          optional string note = 7;
          Line line = 8;
          message Line { uint64 big = 1; }
        }
        enum Status { UNKNOWN = 0; PAID = 1; }
    "#;

    fn doc(json: &str) -> Doc<'_> {
        Doc::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn what_is_written_reads_back_as_it_was_mapped() {
        let reader = ProtobufReader::new(SCHEMA, &[]).unwrap();
        let mapped = r#"{"id": "b-1", "cents": -25990, "skus": ["a", "b"], "counts": {"x": 2},
            "status": "PAID", "at": "2026-11-01T13:00:00.250Z", "note": null,
            "line": {"big": 18446744073709551615}}"#;
        let mut body = vec![0]; // the message indexes: the first message
        reader.write(reader.first_message(), &doc(mapped), &mut body).unwrap();
        let back = reader.read(&body, super::super::protobuf::MessageIndexes::Confluent, None).unwrap().to_value();
        assert_eq!(
            back,
            serde_json::json!({"id": "b-1", "cents": -25990, "skus": ["a", "b"], "counts": {"x": 2},
                "status": "PAID", "at": "2026-11-01T13:00:00.250Z", "line": {"big": "18446744073709551615"}})
        );
    }

    #[test]
    fn a_value_the_schema_cannot_hold_is_refused_with_where() {
        let reader = ProtobufReader::new(SCHEMA, &[]).unwrap();
        let write = |json: &str| {
            let mut out = Vec::new();
            reader.write(reader.first_message(), &doc(json), &mut out).map_err(|e| e.to_string())
        };
        assert_eq!(write(r#"{"status": "LOST"}"#).unwrap_err(), "`status`: not a value of the schema's enum");
        assert_eq!(
            write(r#"{"line": {"big": -1}}"#).unwrap_err(),
            "`line.big`: the schema has a whole number in its type's range here, the record a number"
        );
        assert_eq!(
            write(r#"{"skus": ["a", 7]}"#).unwrap_err(),
            "`skus[1]`: the schema has a string here, the record a number"
        );
    }

    #[test]
    fn field_mask_paths_go_back_to_their_declared_names_whatever_the_text() {
        let schema = "syntax = \"proto3\"; import \"google/protobuf/field_mask.proto\"; \
                      message M { google.protobuf.FieldMask mask = 1; }";
        let reader = ProtobufReader::new(schema, &[]).unwrap();
        for text in ["order.id,customerName", "already_snake,_odd,X"] {
            let json = format!(r#"{{"mask": "{text}"}}"#);
            let mut body = vec![0];
            reader.write(reader.first_message(), &doc(&json), &mut body).unwrap();
            let back = reader.read(&body, super::super::protobuf::MessageIndexes::Confluent, None).unwrap();
            assert!(back.get("mask").is_some(), "{text}");
        }
    }

    #[test]
    fn a_nested_message_is_named_by_its_index_path() {
        let reader = ProtobufReader::new(SCHEMA, &[]).unwrap();
        assert_eq!(reader.confluent_indexes(reader.first_message()), [0]);
        let line = reader.message_named("t.Billing.Line").unwrap();
        // Billing's nested messages are its map's entry type, then Line (as protoc orders them):
        // count 2, index 0, index 1, zig-zag: 4, 0, 2.
        assert_eq!(reader.confluent_indexes(line), [4, 0, 2]);
        assert_eq!(reader.message_named("Billing"), Some(reader.first_message()));
    }
}
