//! Protobuf binary records → [`Doc`], by a reader compiled once per registered schema.
//!
//! The schema is `.proto` text, compiled by `protox` (a protobuf compiler in Rust), or a
//! base64 `FileDescriptorProto`, as some clients register it. Imports are the registry's
//! references (by the name the `import` uses), the well-known types (`google/protobuf/*.proto`)
//! and Confluent's own `confluent/type/decimal.proto` and `confluent/meta.proto`, which
//! Confluent's serializers import without registering them. From the descriptors, this module
//! compiles a flat table of messages, and reads the wire format over it itself: only what the
//! mapping reads is built; everything else is stepped over, its wire structure checked.
//!
//! A registered schema is a file, which may hold several messages: the record's body starts
//! with which one it was written with. Confluent writes a path of zig-zag varints (a count, then
//! an index at each level: the file's `i`th message, its `j`th nested message…; a lone `0` is the
//! first message); AWS Glue writes one unsigned varint, an index into every message of the file
//! sorted by full name.
//!
//! Values follow proto3's JSON mapping, with the field names as the `.proto` declares them:
//! 64-bit integers stay exact integers, enums are their value's name, bytes base64 text, the
//! well-known types (`Timestamp`, `Duration`, the wrappers, `Struct`, `Value`, `ListValue`,
//! `FieldMask`, `Empty`, `Any`) their JSON forms, and `confluent.type.Decimal` an exact decimal.
//! A field without presence (a proto3 scalar, a repeated field, a map) that the record does not
//! carry has its default, as the record means it; a field with presence (a message, `optional`,
//! a `oneof` member, proto2) that it does not carry is missing.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{Cardinality, DescriptorPool, Kind, MessageDescriptor, Syntax};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::plan::document::Doc;
use crate::plan::extract::{MemberName, Projection};

/// How deep messages and groups may nest in one record (as for JSON records).
pub const MAX_DEPTH: usize = crate::plan::extract::MAX_DEPTH;

/// What is read below a value: `None` everything, else what the mapping reads.
pub type Below<'a> = Option<Projection<'a>>;

/// The name the registered schema's own file is compiled under.
const SCHEMA_FILE: &str = "registered-schema.proto";

/// Confluent's types, imported by schemas its serializers write and never registered.
const CONFLUENT_FILES: [(&str, &str); 2] = [
    (
        "confluent/type/decimal.proto",
        "syntax = \"proto3\";\npackage confluent.type;\n\
         message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }\n",
    ),
    (
        "confluent/meta.proto",
        "syntax = \"proto3\";\npackage confluent;\nimport \"google/protobuf/descriptor.proto\";\n\
         message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }\n\
         extend google.protobuf.FileOptions { Meta file_meta = 1088; }\n\
         extend google.protobuf.MessageOptions { Meta message_meta = 1088; }\n\
         extend google.protobuf.FieldOptions { Meta field_meta = 1088; }\n\
         extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }\n\
         extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }\n",
    ),
];

/// Which registry framed the record, so how its body names its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageIndexes {
    /// Confluent: a zig-zag count, then a zig-zag index per level (a lone `0`: the first).
    Confluent,
    /// AWS Glue: one unsigned varint into the file's messages sorted by full name.
    Glue,
}

/// A registered Protobuf schema, compiled for reading.
#[derive(Debug)]
pub struct ProtobufReader {
    pub(crate) messages: Vec<Message>,
    /// The schema file's top-level messages, in declaration order (Confluent's first level).
    pub(crate) top: Vec<usize>,
    /// Every message of the schema file, nested ones too, sorted by full name (Glue's index).
    pub(crate) by_name: Vec<usize>,
    /// Each enum's values by number (sorted): the name a number reads as.
    pub(crate) enums: Vec<Vec<(i32, String)>>,
}

/// One message of the table (the writer, [`super::protobuf_writer`], walks it too).
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) full_name: String,
    pub(crate) fields: Vec<Field>,
    /// Field positions by number, for numbers below its length (most schemas): else a search.
    by_number: Vec<u16>,
    /// Messages declared inside it, in declaration order (Confluent's next levels).
    pub(crate) nested: Vec<usize>,
    /// Read as its JSON mapping says, not as an object of its fields.
    pub(crate) special: Option<Special>,
    /// Each real `oneof`'s members, as field positions: setting one unsets the others without
    /// a pass over every field.
    oneof_members: Vec<Vec<usize>>,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) name: MemberName,
    pub(crate) number: u32,
    pub(crate) kind: FieldKind,
    pub(crate) label: Label,
    /// The real `oneof` it belongs to: setting it unsets the others.
    oneof: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    /// proto3 without presence: absent means its default.
    Implicit,
    /// With presence: absent means missing.
    Explicit,
    Repeated,
    /// `map<K, V>`: repeated entries of this entry message (key 1, value 2).
    Map(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Double,
    Float,
    Int32,
    Int64,
    UInt32,
    UInt64,
    SInt32,
    SInt64,
    Fixed32,
    Fixed64,
    SFixed32,
    SFixed64,
    Bool,
    Str,
    Bytes,
    Enum(usize),
    Message(usize),
    /// A proto2 group: a message between a start-group and an end-group tag.
    Group(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Timestamp,
    Duration,
    /// `google.protobuf.*Value` holding a scalar: the scalar.
    Wrapper,
    Struct,
    Value,
    ListValue,
    FieldMask,
    Empty,
    Any,
    /// `confluent.type.Decimal`: unscaled two's-complement bytes and a scale.
    Decimal,
}

/// The protobuf wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const START_GROUP: u8 = 3;
pub(crate) const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;

/// A schema that cannot be read with.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufSchemaError {
    #[error("not a Protobuf schema: {0}")]
    Compile(String),
    #[error("the schema defines no message")]
    NoMessage,
}

/// Why a record does not read with its schema. It never quotes a value of the record (a field
/// may be `sensitive`): only where, and what kind of thing is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (byte {offset} of the Protobuf body{})", if path.is_empty() { String::new() } else { format!(", in `{path}`") })]
pub struct ProtobufError {
    pub message: String,
    /// Where the problem was found, from the start of the body (its message indexes included).
    pub offset: usize,
    /// The field being read, as a path (`order.items[2].sku`).
    pub path: String,
}

/// A schema file registered under `name` with `text`: `.proto` text, or a base64
/// `FileDescriptorProto`.
#[derive(Clone, Debug)]
pub struct ProtoFile<'t> {
    pub name: &'t str,
    pub text: &'t str,
}

/// The registry's schema files, served to the compiler by the names the imports use.
struct Registered(HashMap<String, String>);

impl FileResolver for Registered {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let Some(text) = self.0.get(name) else { return Err(protox::Error::file_not_found(name)) };
        source_file(name, text)
    }
}

/// A file from `.proto` text, or from a base64 `FileDescriptorProto` (which has no `;`).
fn source_file(name: &str, text: &str) -> Result<File, protox::Error> {
    if !text.contains(';')
        && let Ok(bytes) = BASE64.decode(text.trim())
        && let Ok(mut file) = File::decode_file_descriptor_proto(bytes.as_slice())
    {
        if file.name().is_empty() || file.name() != name {
            // The import names it; the descriptor's own name may differ (or be empty).
            let mut descriptor = file.file_descriptor_proto().clone();
            descriptor.name = Some(name.to_string());
            file = File::from_file_descriptor_proto(descriptor);
        }
        return Ok(file);
    }
    File::from_source(name, text)
}

/// Compiles `schema` (and what it imports) into a descriptor pool; the schema's own file is
/// named [`SCHEMA_FILE`].
pub fn compile_pool(schema: &str, references: &[ProtoFile<'_>]) -> Result<DescriptorPool, ProtobufSchemaError> {
    let mut files: HashMap<String, String> =
        references.iter().map(|r| (r.name.to_string(), r.text.to_string())).collect();
    for (name, text) in CONFLUENT_FILES {
        files.entry(name.into()).or_insert_with(|| text.into());
    }
    files.insert(SCHEMA_FILE.into(), schema.to_string());
    let mut resolver = ChainFileResolver::new();
    resolver.add(Registered(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file(SCHEMA_FILE).map_err(|e| ProtobufSchemaError::Compile(compile_message(&e)))?;
    Ok(compiler.descriptor_pool())
}

/// protox's message, with the name of the file we made up left out.
fn compile_message(e: &protox::Error) -> String {
    let text = e.to_string();
    text.replace(&format!("{SCHEMA_FILE}:"), "line ").replace(SCHEMA_FILE, "the schema")
}

impl ProtobufReader {
    /// Compiles a registered schema; `references` are the files it imports, by import name.
    pub fn new(schema: &str, references: &[ProtoFile<'_>]) -> Result<Self, ProtobufSchemaError> {
        let pool = compile_pool(schema, references)?;
        Self::from_pool(&pool)
    }

    fn from_pool(pool: &DescriptorPool) -> Result<Self, ProtobufSchemaError> {
        let file = pool.get_file_by_name(SCHEMA_FILE).ok_or(ProtobufSchemaError::NoMessage)?;
        let index: HashMap<String, usize> =
            pool.all_messages().enumerate().map(|(i, m)| (m.full_name().to_string(), i)).collect();
        let enums: HashMap<String, usize> =
            pool.all_enums().enumerate().map(|(i, e)| (e.full_name().to_string(), i)).collect();
        let enum_values: Vec<Vec<(i32, String)>> = pool
            .all_enums()
            .map(|e| {
                let mut values: Vec<(i32, String)> = e.values().map(|v| (v.number(), v.name().to_string())).collect();
                // Aliases (`allow_alias`) share a number: the first declared names it.
                values.sort_by_key(|(n, _)| *n);
                values.dedup_by_key(|(n, _)| *n);
                values
            })
            .collect();
        let messages = pool.all_messages().map(|m| compile_message_table(&m, &index, &enums)).collect();
        let top: Vec<usize> = file.messages().map(|m| index[m.full_name()]).collect();
        if top.is_empty() {
            return Err(ProtobufSchemaError::NoMessage);
        }
        let mut in_file = Vec::new();
        let mut stack: Vec<MessageDescriptor> = file.messages().collect();
        while let Some(message) = stack.pop() {
            in_file.push(message.full_name().to_string());
            stack.extend(message.child_messages());
        }
        in_file.sort();
        let by_name = in_file.iter().map(|name| index[name.as_str()]).collect();
        Ok(ProtobufReader { messages, top, by_name, enums: enum_values })
    }
}

/// One message's table, from its descriptor.
fn compile_message_table(
    message: &MessageDescriptor,
    index: &HashMap<String, usize>,
    enums: &HashMap<String, usize>,
) -> Message {
    let proto3 = message.parent_file().syntax() == Syntax::Proto3;
    let oneofs: Vec<String> =
        message.oneofs().filter(|o| !o.is_synthetic()).map(|o| o.full_name().to_string()).collect();
    let fields: Vec<Field> = message
        .fields()
        .map(|f| {
            let kind = match f.kind() {
                Kind::Double => FieldKind::Double,
                Kind::Float => FieldKind::Float,
                Kind::Int32 => FieldKind::Int32,
                Kind::Int64 => FieldKind::Int64,
                Kind::Uint32 => FieldKind::UInt32,
                Kind::Uint64 => FieldKind::UInt64,
                Kind::Sint32 => FieldKind::SInt32,
                Kind::Sint64 => FieldKind::SInt64,
                Kind::Fixed32 => FieldKind::Fixed32,
                Kind::Fixed64 => FieldKind::Fixed64,
                Kind::Sfixed32 => FieldKind::SFixed32,
                Kind::Sfixed64 => FieldKind::SFixed64,
                Kind::Bool => FieldKind::Bool,
                Kind::String => FieldKind::Str,
                Kind::Bytes => FieldKind::Bytes,
                Kind::Enum(e) => FieldKind::Enum(enums[e.full_name()]),
                Kind::Message(m) if f.is_group() => FieldKind::Group(index[m.full_name()]),
                Kind::Message(m) => FieldKind::Message(index[m.full_name()]),
            };
            let label = match (f.cardinality(), f.kind()) {
                (Cardinality::Repeated, Kind::Message(entry)) if f.is_map() => Label::Map(index[entry.full_name()]),
                (Cardinality::Repeated, _) => Label::Repeated,
                _ if f.supports_presence() || !proto3 => Label::Explicit,
                _ => Label::Implicit,
            };
            let oneof = f
                .containing_oneof()
                .filter(|o| !o.is_synthetic())
                .and_then(|o| oneofs.iter().position(|name| name == o.full_name()));
            Field { name: MemberName::new(f.name()), number: f.number(), kind, label, oneof }
        })
        .collect();
    // Numbers up to a few hundred get a direct table; a sparse message searches instead.
    let dense = fields.iter().map(|f| f.number).max().unwrap_or(0).min(1024) as usize + 1;
    let mut by_number = vec![u16::MAX; dense];
    for (i, field) in fields.iter().enumerate() {
        if let Some(slot) = by_number.get_mut(field.number as usize) {
            *slot = i as u16;
        }
    }
    let special = match message.full_name() {
        "google.protobuf.Timestamp" => Some(Special::Timestamp),
        "google.protobuf.Duration" => Some(Special::Duration),
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => Some(Special::Wrapper),
        "google.protobuf.Struct" => Some(Special::Struct),
        "google.protobuf.Value" => Some(Special::Value),
        "google.protobuf.ListValue" => Some(Special::ListValue),
        "google.protobuf.FieldMask" => Some(Special::FieldMask),
        "google.protobuf.Empty" => Some(Special::Empty),
        "google.protobuf.Any" => Some(Special::Any),
        "confluent.type.Decimal" => Some(Special::Decimal),
        _ => None,
    };
    let mut oneof_members = vec![Vec::new(); oneofs.len()];
    for (i, field) in fields.iter().enumerate() {
        if let Some(oneof) = field.oneof {
            oneof_members[oneof].push(i);
        }
    }
    Message {
        full_name: message.full_name().to_string(),
        fields,
        by_number,
        nested: message.child_messages().map(|m| index[m.full_name()]).collect(),
        special,
        oneof_members,
    }
}

impl Message {
    fn field(&self, number: u32) -> Option<usize> {
        match self.by_number.get(number as usize) {
            Some(&u16::MAX) => None,
            Some(&i) => Some(i as usize),
            None => self.fields.iter().position(|f| f.number == number),
        }
    }
}

impl FieldKind {
    /// The wire type a single value of it is written with.
    pub(crate) fn wire_type(self) -> u8 {
        match self {
            FieldKind::Double | FieldKind::Fixed64 | FieldKind::SFixed64 => FIXED64,
            FieldKind::Float | FieldKind::Fixed32 | FieldKind::SFixed32 => FIXED32,
            FieldKind::Str | FieldKind::Bytes | FieldKind::Message(_) => LEN,
            FieldKind::Group(_) => START_GROUP,
            _ => VARINT,
        }
    }

    /// Whether a repeated field of it may be packed (scalars of fixed or varint width).
    pub(crate) fn packable(self) -> bool {
        matches!(self.wire_type(), VARINT | FIXED32 | FIXED64)
    }
}

/// What a message being read holds so far, field by field: a field may come more than once (the
/// last value wins; a message merges; a repeated field appends), in any order.
#[derive(Debug)]
enum Slot<'a> {
    Unset,
    One(Doc<'a>),
    /// A singular message, kept open so that a later occurrence merges into it, and what the
    /// mapping reads of it.
    Message(Vec<Slot<'a>>, Below<'a>),
    List(Vec<Doc<'a>>),
    Map(Vec<(Cow<'a, str>, Doc<'a>)>),
}

/// What is read below member `name` of a message read with `below`: `None` skip it.
fn member_below<'p>(below: Below<'p>, name: &MemberName) -> Option<Below<'p>> {
    match below {
        None => Some(None),
        Some(projection) if projection.whole() => Some(None),
        Some(projection) => projection.member_named(name).map(|p| if p.whole() { None } else { Some(p) }),
    }
}

fn element_below(below: Below<'_>, index: usize) -> Option<Below<'_>> {
    match below {
        None => Some(None),
        Some(projection) if projection.whole() => Some(None),
        Some(projection) => projection.element(index).map(|p| if p.whole() { None } else { Some(p) }),
    }
}

impl ProtobufReader {
    /// Reads one record body (after the registry's 5- or 18-byte header: the message indexes,
    /// then the message) into a tree of what `projection` says the mapping reads (`None`:
    /// everything).
    pub fn read<'a>(
        &'a self,
        bytes: &'a [u8],
        indexes: MessageIndexes,
        projection: Below<'a>,
    ) -> Result<Doc<'a>, ProtobufError> {
        let read = |track: bool| {
            let mut reading = Reading { bytes, pos: 0, path: Vec::new(), track };
            let message = reading.message_index(self, indexes)?;
            let slots = reading.message(self, message, bytes.len(), None, projection, 0)?;
            self.finish(message, slots, projection).map_err(|e| reading.error(e))
        };
        // A record that fails is read again, keeping the path, to say where the problem is.
        read(false).map_err(|first| read(true).err().unwrap_or(first))
    }

    /// The full name of the message a record body says it was written with.
    pub fn message_name(&self, bytes: &[u8], indexes: MessageIndexes) -> Result<&str, ProtobufError> {
        let mut reading = Reading { bytes, pos: 0, path: Vec::new(), track: false };
        let message = reading.message_index(self, indexes)?;
        Ok(&self.messages[message].full_name)
    }

    /// The object a message's slots make, or its JSON form for a well-known type; `Err` says
    /// which well-known value is out of its range, and where.
    fn finish<'a>(&'a self, message: usize, slots: Vec<Slot<'a>>, below: Below<'_>) -> Result<Doc<'a>, String> {
        let table = &self.messages[message];
        let mut members = Vec::with_capacity(slots.len().min(16));
        for (field, slot) in table.fields.iter().zip(slots) {
            // A slot is set only for a field the mapping reads; an unset one is looked up, for
            // its default, unless it has none.
            if matches!(slot, Slot::Unset)
                && (field.label == Label::Explicit || member_below(below, &field.name).is_none())
            {
                continue;
            }
            let value = match slot {
                Slot::One(doc) => doc,
                Slot::Message(inner, field_below) => match field.kind {
                    FieldKind::Message(m) | FieldKind::Group(m) => self.finish(m, inner, field_below).map_err(|e| {
                        format!("{}{}{e}", field.name.as_str(), if e.starts_with('.') { "" } else { ": " })
                    })?,
                    _ => continue,
                },
                Slot::List(items) => Doc::List(items),
                Slot::Map(entries) => Doc::Object(last_of_each_key(entries)),
                Slot::Unset => match field.label {
                    Label::Implicit => self.default_of(field.kind),
                    Label::Repeated => Doc::List(Vec::new()),
                    Label::Map(_) => Doc::Object(Vec::new()),
                    Label::Explicit => continue,
                },
            };
            members.push((Cow::Borrowed(field.name.as_str()), value));
        }
        match table.special {
            None => Ok(Doc::Object(members)),
            Some(special) => special_form(special, members),
        }
    }

    /// A proto3 field's value when the record does not carry it.
    fn default_of(&self, kind: FieldKind) -> Doc<'static> {
        match kind {
            FieldKind::Double | FieldKind::Float => Doc::Float(0.0),
            FieldKind::Bool => Doc::Bool(false),
            FieldKind::Str | FieldKind::Bytes => Doc::Str(Cow::Borrowed("")),
            FieldKind::Enum(e) => self.enum_doc(e, 0),
            FieldKind::Message(_) | FieldKind::Group(_) => Doc::Null,
            _ => Doc::Int(0),
        }
    }

    fn enum_doc(&self, e: usize, number: i32) -> Doc<'static> {
        let values = &self.enums[e];
        match values.binary_search_by_key(&number, |(n, _)| *n) {
            // Enum names live as long as the reader; an owned copy keeps `Doc` simple.
            Ok(i) => Doc::Str(Cow::Owned(values[i].1.clone())),
            // An open enum keeps numbers it has no name for, as the JSON mapping writes them.
            Err(_) => Doc::Int(i64::from(number)),
        }
    }
}

/// A map's entries with each key once, its last value (as protobuf merges a map), in the order
/// the keys first came.
fn last_of_each_key<'a>(entries: Vec<(Cow<'a, str>, Doc<'a>)>) -> Vec<(Cow<'a, str>, Doc<'a>)> {
    let mut at: HashMap<Cow<'a, str>, usize> = HashMap::with_capacity(entries.len());
    let mut out: Vec<(Cow<'a, str>, Doc<'a>)> = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        match at.get(&key) {
            Some(&i) => out[i].1 = value,
            None => {
                at.insert(key.clone(), out.len());
                out.push((key, value));
            }
        }
    }
    out
}

/// A well-known type's JSON form, from its fields (read whole, already in their own forms).
fn special_form<'a>(special: Special, members: Vec<(Cow<'a, str>, Doc<'a>)>) -> Result<Doc<'a>, String> {
    let take = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let int = |name: &str| match take(name) {
        Some(Doc::Int(i)) => i,
        _ => 0,
    };
    Ok(match special {
        Special::Timestamp => Doc::Str(
            timestamp_text(int("seconds"), int("nanos"))
                .ok_or("a Timestamp outside years 1 to 9999, or with nanos outside a second")?
                .into(),
        ),
        Special::Duration => Doc::Str(
            duration_text(int("seconds"), int("nanos"))
                .ok_or("a Duration beyond 10,000 years, or with nanos of another sign or beyond a second")?
                .into(),
        ),
        Special::Wrapper => take("value").unwrap_or(Doc::Null),
        Special::Struct => take("fields").unwrap_or(Doc::Object(Vec::new())),
        Special::ListValue => take("values").unwrap_or(Doc::List(Vec::new())),
        Special::Value => match members.into_iter().next() {
            Some((name, _)) if name == "null_value" => Doc::Null,
            Some((_, value)) => value,
            None => Doc::Null,
        },
        Special::FieldMask => match take("paths") {
            Some(Doc::List(paths)) => {
                let paths: Vec<String> = paths
                    .iter()
                    .map(|p| match p {
                        Doc::Str(s) => lower_camel(s),
                        _ => String::new(),
                    })
                    .collect();
                Doc::Str(paths.join(",").into())
            }
            _ => Doc::Str("".into()),
        },
        Special::Empty => Doc::Object(Vec::new()),
        Special::Any => Doc::Object(vec![
            ("@type".into(), take("type_url").unwrap_or(Doc::Str("".into()))),
            ("value".into(), take("value").unwrap_or(Doc::Str("".into()))),
        ]),
        Special::Decimal => {
            let scale = int("scale");
            // `value` arrives as base64 text (the form of every bytes field): decoded again here,
            // as this type is rare and its bytes short.
            let unscaled = match take("value") {
                Some(Doc::Str(text)) => BASE64.decode(text.as_bytes()).ok(),
                _ => None,
            };
            match unscaled {
                Some(raw) if raw.len() <= 16 && (0..=76).contains(&scale) => {
                    Doc::Decimal(super::avro::scaled_text(unscaled_i128(&raw), scale as usize))
                }
                _ => return Err("a confluent.type.Decimal wider than 128 bits or with a negative scale".into()),
            }
        }
    })
}

fn unscaled_i128(raw: &[u8]) -> i128 {
    if raw.is_empty() {
        return 0;
    }
    let fill = if raw[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [fill; 16];
    wide[16 - raw.len()..].copy_from_slice(raw);
    i128::from_be_bytes(wide)
}

/// `field_name` → `fieldName`, as the JSON mapping writes a field mask's paths.
fn lower_camel(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as the JSON mapping writes it; `None`
/// outside years 1 to 9999 or nanos outside a second.
fn timestamp_text(seconds: i64, nanos: i64) -> Option<String> {
    const MIN: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if !(MIN..=MAX).contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    let at = chrono::DateTime::from_timestamp(seconds, nanos as u32)?;
    let mut text = at.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string();
    text.push_str(&fraction(nanos));
    text.push('Z');
    Some(text)
}

/// `1.5s`, `-0.000001s`: seconds with 0, 3, 6 or 9 fractional digits.
fn duration_text(seconds: i64, nanos: i64) -> Option<String> {
    const MAX: i64 = 315_576_000_000;
    if !(-MAX..=MAX).contains(&seconds)
        || nanos.abs() >= 1_000_000_000
        || (seconds != 0 && nanos.signum() * seconds.signum() < 0)
    {
        return None;
    }
    let negative = seconds < 0 || nanos < 0;
    Some(format!("{}{}{}s", if negative { "-" } else { "" }, seconds.unsigned_abs(), fraction(nanos.abs())))
}

fn fraction(nanos: i64) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

/// One record being read.
struct Reading<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The fields and indexes being read, for messages: kept only when a record that failed is
    /// read again to say where.
    path: Vec<PathPart<'a>>,
    track: bool,
}

enum PathPart<'a> {
    Field(&'a str),
    Index(usize),
}

impl<'a> Reading<'a> {
    fn error(&self, message: impl Into<String>) -> ProtobufError {
        use super::record_path::{Step, text};
        let path = text(self.path.iter().map(|part| match part {
            PathPart::Field(name) => Step::Field(name),
            PathPart::Index(i) => Step::Index(*i as u64),
        }));
        ProtobufError { message: message.into(), offset: self.pos, path }
    }

    fn truncated(&self, what: &str) -> ProtobufError {
        self.error(format!("the record ends in the middle of {what}: it is truncated or not this schema's"))
    }

    #[inline(always)]
    fn enter(&mut self, part: PathPart<'a>) {
        if self.track {
            self.path.push(part);
        }
    }

    #[inline(always)]
    fn leave(&mut self) {
        if self.track {
            self.path.pop();
        }
    }

    fn varint(&mut self, end: usize) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            if self.pos >= end {
                return Err(self.truncated("a varint"));
            }
            let byte = self.bytes[self.pos];
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(self.error("a varint longer than 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("a varint longer than 64 bits"))
    }

    fn take(&mut self, len: usize, end: usize, what: &str) -> Result<&'a [u8], ProtobufError> {
        if end - self.pos < len {
            return Err(self.truncated(what));
        }
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }

    /// A length-delimited value's end: its length must fit in what is left of `end`.
    fn length_end(&mut self, end: usize, what: &str) -> Result<usize, ProtobufError> {
        let at = self.pos;
        let len = self.varint(end)?;
        let left = end - self.pos;
        if len > left as u64 {
            self.pos = at;
            return Err(self.error(format!("{what} of {len} bytes, but only {left} bytes are left")));
        }
        Ok(self.pos + len as usize)
    }

    /// Which message of the schema the body was written with.
    fn message_index(&mut self, reader: &ProtobufReader, indexes: MessageIndexes) -> Result<usize, ProtobufError> {
        let end = self.bytes.len();
        match indexes {
            MessageIndexes::Glue => {
                let at = self.pos;
                let index = self.varint(end)?;
                usize::try_from(index).ok().and_then(|i| reader.by_name.get(i)).copied().ok_or_else(|| {
                    self.pos = at;
                    self.error(format!("message index {index}, but the schema has {} messages", reader.by_name.len()))
                })
            }
            MessageIndexes::Confluent => {
                let count = zigzag(self.varint(end)?);
                if count == 0 {
                    return Ok(reader.top[0]);
                }
                if !(1..=MAX_DEPTH as i64).contains(&count) {
                    return Err(self.error(format!("a message index path of {count} levels")));
                }
                let mut choices = &reader.top;
                let mut message = None;
                for level in 0..count {
                    let index = zigzag(self.varint(end)?);
                    let found = usize::try_from(index).ok().and_then(|i| choices.get(i)).copied();
                    let Some(found) = found else {
                        return Err(self.error(format!(
                            "message index {index} at level {level}, where the schema has {} messages",
                            choices.len()
                        )));
                    };
                    message = Some(found);
                    choices = &reader.messages[found].nested;
                }
                Ok(message.expect("at least one level"))
            }
        }
    }

    /// Reads a message's fields up to `end` (or, for a group, up to its end-group tag).
    fn message(
        &mut self,
        reader: &'a ProtobufReader,
        message: usize,
        end: usize,
        group: Option<u32>,
        below: Below<'a>,
        depth: usize,
    ) -> Result<Vec<Slot<'a>>, ProtobufError> {
        let mut slots: Vec<Slot<'a>> = Vec::new();
        slots.resize_with(reader.messages[message].fields.len(), || Slot::Unset);
        self.fill(reader, message, &mut slots, end, group, below, depth)?;
        Ok(slots)
    }

    #[allow(clippy::too_many_arguments)]
    fn fill(
        &mut self,
        reader: &'a ProtobufReader,
        message: usize,
        slots: &mut [Slot<'a>],
        end: usize,
        group: Option<u32>,
        below: Below<'a>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("messages nested deeper than {MAX_DEPTH} levels")));
        }
        let table = &reader.messages[message];
        while self.pos < end {
            let at = self.pos;
            let tag = self.varint(end)?;
            let (number, wire) = (tag >> 3, (tag & 7) as u8);
            if number == 0 || number > 536_870_911 {
                self.pos = at;
                return Err(self.error(format!("a field number {number}, which no message can have")));
            }
            let number = number as u32;
            if wire == END_GROUP {
                if group == Some(number) {
                    return Ok(());
                }
                self.pos = at;
                return Err(self.error(format!("an end-group tag for field {number}, which opened no group")));
            }
            let Some(i) = table.field(number) else {
                self.skip(wire, number, end, depth)?;
                continue;
            };
            let field = &table.fields[i];
            if let Some(oneof) = field.oneof {
                // A oneof holds one member: the last one the record sets.
                for &other in &table.oneof_members[oneof] {
                    if other != i {
                        slots[other] = Slot::Unset;
                    }
                }
            }
            match member_below(below, &field.name) {
                None => self.skip(wire, number, end, depth)?,
                Some(field_below) => {
                    self.enter(PathPart::Field(field.name.as_str()));
                    self.field(reader, field, &mut slots[i], wire, end, field_below, depth)?;
                    self.leave();
                }
            }
        }
        if group.is_some() {
            return Err(self.truncated("a group"));
        }
        Ok(())
    }

    /// One occurrence of `field` in the record, into its slot.
    #[allow(clippy::too_many_arguments)]
    fn field(
        &mut self,
        reader: &'a ProtobufReader,
        field: &'a Field,
        slot: &mut Slot<'a>,
        wire: u8,
        end: usize,
        below: Below<'a>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        let expected = field.kind.wire_type();
        match field.label {
            Label::Map(entry) => {
                self.expect_wire(wire, LEN, field)?;
                let entry_end = self.length_end(end, "a map entry")?;
                let entry_slots = self.message(reader, entry, entry_end, None, None, depth + 1)?;
                let (key, value) = self.map_entry(reader, entry, entry_slots)?;
                if !matches!(slot, Slot::Map(_)) {
                    *slot = Slot::Map(Vec::new());
                }
                let Slot::Map(entries) = slot else { unreachable!("a map slot was just made") };
                let wanted = match below {
                    None => true,
                    Some(projection) => projection.whole() || projection.member(&key).is_some(),
                };
                if wanted {
                    // A key the record repeats is settled when the message is finished: checking
                    // each entry against the earlier ones here would be quadratic in the record.
                    entries.push((key, value));
                }
            }
            Label::Repeated => {
                if !matches!(slot, Slot::List(_)) {
                    *slot = Slot::List(Vec::new());
                }
                let Slot::List(items) = slot else { unreachable!("a list slot was just made") };
                if wire == LEN && field.kind.packable() {
                    let packed_end = self.length_end(end, "a packed repeated field")?;
                    while self.pos < packed_end {
                        let item = self.scalar(reader, field.kind, packed_end)?;
                        items.push(if element_below(below, items.len()).is_some() { item } else { Doc::Null });
                    }
                } else {
                    self.expect_wire(wire, expected, field)?;
                    let index = items.len();
                    self.enter(PathPart::Index(index));
                    let item = match element_below(below, index) {
                        Some(item_below) => self.single(reader, field, end, item_below, depth)?,
                        None => {
                            self.skip(wire, field.number, end, depth)?;
                            Doc::Null
                        }
                    };
                    self.leave();
                    items.push(item);
                }
            }
            Label::Implicit | Label::Explicit => match field.kind {
                FieldKind::Message(m) | FieldKind::Group(m) => {
                    self.expect_wire(wire, expected, field)?;
                    // A message the record sets twice is the two merged.
                    let below = if reader.messages[m].special.is_some() { None } else { below };
                    if !matches!(slot, Slot::Message(..)) {
                        let mut fresh = Vec::new();
                        fresh.resize_with(reader.messages[m].fields.len(), || Slot::Unset);
                        *slot = Slot::Message(fresh, below);
                    }
                    let Slot::Message(inner, _) = slot else { unreachable!("a message slot was just made") };
                    if wire == START_GROUP {
                        self.fill(reader, m, inner, end, Some(field.number), below, depth + 1)?;
                    } else {
                        let inner_end = self.length_end(end, "a message")?;
                        self.fill(reader, m, inner, inner_end, None, below, depth + 1)?;
                    }
                }
                kind => {
                    self.expect_wire(wire, expected, field)?;
                    *slot = Slot::One(self.scalar(reader, kind, end)?);
                }
            },
        }
        Ok(())
    }

    /// One item of a repeated field, written unpacked.
    fn single(
        &mut self,
        reader: &'a ProtobufReader,
        field: &'a Field,
        end: usize,
        below: Below<'a>,
        depth: usize,
    ) -> Result<Doc<'a>, ProtobufError> {
        let (m, inner_end, group) = match field.kind {
            FieldKind::Message(m) => (m, self.length_end(end, "a message")?, None),
            FieldKind::Group(m) => (m, end, Some(field.number)),
            kind => return self.scalar(reader, kind, end),
        };
        let below = if reader.messages[m].special.is_some() { None } else { below };
        let slots = self.message(reader, m, inner_end, group, below, depth + 1)?;
        reader.finish(m, slots, below).map_err(|e| self.error(e))
    }

    /// A map entry's key, as text (the JSON mapping's object keys), and its value.
    fn map_entry(
        &self,
        reader: &'a ProtobufReader,
        entry: usize,
        slots: Vec<Slot<'a>>,
    ) -> Result<(Cow<'a, str>, Doc<'a>), ProtobufError> {
        let Doc::Object(members) = reader.finish(entry, slots, None).map_err(|e| self.error(e))? else {
            return Err(self.error("a map entry that is not a message"));
        };
        let mut key = Cow::Borrowed("");
        let mut value = Doc::Null;
        for (name, member) in members {
            match (name.as_ref(), member) {
                ("key", Doc::Str(text)) => key = text,
                ("key", Doc::Int(n)) => key = Cow::Owned(n.to_string()),
                ("key", Doc::Bool(b)) => key = Cow::Borrowed(if b { "true" } else { "false" }),
                ("key", Doc::Decimal(text)) => key = Cow::Owned(text),
                ("value", member) => value = member,
                _ => {}
            }
        }
        Ok((key, value))
    }

    fn expect_wire(&self, wire: u8, expected: u8, field: &Field) -> Result<(), ProtobufError> {
        if wire == expected {
            return Ok(());
        }
        Err(self.error(format!(
            "field {} is written with wire type {wire} ({}), but its schema type is written with {expected} ({}): \
             the record was not written with this schema",
            field.number,
            wire_name(wire),
            wire_name(expected)
        )))
    }

    fn scalar(&mut self, reader: &'a ProtobufReader, kind: FieldKind, end: usize) -> Result<Doc<'a>, ProtobufError> {
        Ok(match kind {
            FieldKind::Double => float_doc(f64::from_le_bytes(self.fixed::<8>(end)?)),
            // The shortest text of the 32-bit value, read as a 64-bit one: `0.1`, not
            // `0.10000000149011612`, as the JSON mapping writes a float.
            FieldKind::Float => {
                let value = f32::from_le_bytes(self.fixed::<4>(end)?);
                float_doc(if value.is_finite() {
                    value.to_string().parse().unwrap_or(f64::from(value))
                } else {
                    f64::from(value)
                })
            }
            // Negative int32s are written sign-extended to 64 bits; the low 32 are the value.
            FieldKind::Int32 => Doc::Int(i64::from(self.varint(end)? as i32)),
            FieldKind::Int64 => Doc::Int(self.varint(end)? as i64),
            FieldKind::UInt32 => Doc::Int(i64::from(self.varint(end)? as u32)),
            FieldKind::UInt64 => unsigned_doc(self.varint(end)?),
            FieldKind::SInt32 => Doc::Int(zigzag(u64::from(self.varint(end)? as u32))),
            FieldKind::SInt64 => Doc::Int(zigzag(self.varint(end)?)),
            FieldKind::Fixed32 => Doc::Int(i64::from(u32::from_le_bytes(self.fixed::<4>(end)?))),
            FieldKind::Fixed64 => unsigned_doc(u64::from_le_bytes(self.fixed::<8>(end)?)),
            FieldKind::SFixed32 => Doc::Int(i64::from(i32::from_le_bytes(self.fixed::<4>(end)?))),
            FieldKind::SFixed64 => Doc::Int(i64::from_le_bytes(self.fixed::<8>(end)?)),
            FieldKind::Bool => Doc::Bool(self.varint(end)? != 0),
            FieldKind::Enum(e) => reader.enum_doc(e, self.varint(end)? as i32),
            FieldKind::Str => {
                let at = self.pos;
                let text_end = self.length_end(end, "a string")?;
                let bytes = &self.bytes[self.pos..text_end];
                match simdutf8::basic::from_utf8(bytes) {
                    Ok(text) => {
                        self.pos = text_end;
                        Doc::Str(Cow::Borrowed(text))
                    }
                    Err(_) => {
                        let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| bytes.len());
                        self.pos = at;
                        return Err(self.error(format!("a string that is not UTF-8 (byte {valid} of it)")));
                    }
                }
            }
            FieldKind::Bytes => {
                let bytes_end = self.length_end(end, "bytes")?;
                let raw = &self.bytes[self.pos..bytes_end];
                self.pos = bytes_end;
                Doc::Str(Cow::Owned(BASE64.encode(raw)))
            }
            FieldKind::Message(_) | FieldKind::Group(_) => {
                return Err(self.error("a message where a packed scalar was expected"));
            }
        })
    }

    fn fixed<const N: usize>(&mut self, end: usize) -> Result<[u8; N], ProtobufError> {
        let raw = self.take(N, end, "a fixed-width number")?;
        Ok(raw.try_into().expect("N bytes"))
    }

    /// Steps over a value of wire type `wire` (a field the mapping does not read, or one the
    /// schema does not have), checking its structure.
    fn skip(&mut self, wire: u8, number: u32, end: usize, depth: usize) -> Result<(), ProtobufError> {
        match wire {
            VARINT => {
                self.varint(end)?;
            }
            FIXED64 => {
                self.take(8, end, "a fixed-width number")?;
            }
            FIXED32 => {
                self.take(4, end, "a fixed-width number")?;
            }
            LEN => {
                let value_end = self.length_end(end, "a length-delimited value")?;
                self.pos = value_end;
            }
            START_GROUP => {
                if depth >= MAX_DEPTH {
                    return Err(self.error(format!("groups nested deeper than {MAX_DEPTH} levels")));
                }
                loop {
                    let at = self.pos;
                    let tag = self.varint(end)?;
                    let (inner, inner_wire) = (tag >> 3, (tag & 7) as u8);
                    if inner_wire == END_GROUP {
                        if inner == u64::from(number) {
                            return Ok(());
                        }
                        self.pos = at;
                        return Err(self.error(format!("an end-group tag for field {inner} inside group {number}")));
                    }
                    if inner == 0 || inner > 536_870_911 {
                        self.pos = at;
                        return Err(self.error(format!("a field number {inner}, which no message can have")));
                    }
                    self.skip(inner_wire, inner as u32, end, depth + 1)?;
                }
            }
            other => {
                return Err(self.error(format!("wire type {other}, which protobuf does not have")));
            }
        }
        Ok(())
    }
}

fn zigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

/// A `uint64` or `fixed64`: an exact integer, as decimal text beyond a signed 64-bit one.
fn unsigned_doc<'a>(value: u64) -> Doc<'a> {
    match i64::try_from(value) {
        Ok(value) => Doc::Int(value),
        Err(_) => Doc::Decimal(value.to_string()),
    }
}

/// A float, or the JSON mapping's text for one that is not finite.
fn float_doc<'a>(value: f64) -> Doc<'a> {
    if value.is_nan() {
        Doc::Str(Cow::Borrowed("NaN"))
    } else if value.is_infinite() {
        Doc::Str(Cow::Borrowed(if value > 0.0 { "Infinity" } else { "-Infinity" }))
    } else {
        Doc::Float(value)
    }
}

fn wire_name(wire: u8) -> &'static str {
    match wire {
        VARINT => "varint",
        FIXED64 => "64-bit",
        LEN => "length-delimited",
        START_GROUP => "start group",
        END_GROUP => "end group",
        FIXED32 => "32-bit",
        _ => "none",
    }
}

/// The registered schema's own file in a pool [`compile_pool`] made.
pub fn schema_file(pool: &DescriptorPool) -> Option<prost_reflect::FileDescriptor> {
    pool.get_file_by_name(SCHEMA_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn tag(number: u32, wire: u8) -> Vec<u8> {
        varint(u64::from(number) << 3 | u64::from(wire))
    }

    fn varint(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn len_field(number: u32, inner: &[u8]) -> Vec<u8> {
        [tag(number, LEN), varint(inner.len() as u64), inner.to_vec()].concat()
    }

    const SCHEMA: &str = r#"
        syntax = "proto3";
        package t;
        message Outer {
          int64 n = 1;
          Inner inner = 2;
          repeated int32 xs = 3;
          oneof pick { string a = 4; int64 b = 5; }
          message Deep { string s = 1; }
        }
        message Inner { string x = 1; string y = 2; }
    "#;

    fn read(schema: &str, body: &[u8]) -> Value {
        let reader = ProtobufReader::new(schema, &[]).unwrap();
        reader.read(body, MessageIndexes::Confluent, None).unwrap().to_value()
    }

    #[test]
    fn a_field_set_twice_keeps_the_last_value_and_a_message_set_twice_merges() {
        let body = [
            vec![0],
            tag(1, VARINT),
            varint(1),
            len_field(2, &len_field(1, b"x1")),
            tag(1, VARINT),
            varint(2),
            len_field(2, &len_field(2, b"y2")),
        ]
        .concat();
        let got = read(SCHEMA, &body);
        assert_eq!(got["n"], 2);
        assert_eq!(got["inner"], json!({"x": "x1", "y": "y2"}));
    }

    #[test]
    fn packed_and_unpacked_items_of_one_field_append_in_order() {
        let packed: Vec<u8> = [varint(1), varint(2)].concat();
        let body = [vec![0], len_field(3, &packed), tag(3, VARINT), varint(3)].concat();
        assert_eq!(read(SCHEMA, &body)["xs"], json!([1, 2, 3]));
    }

    #[test]
    fn a_oneof_holds_the_member_set_last() {
        let body = [vec![0], tag(5, VARINT), varint(9), len_field(4, b"a")].concat();
        let got = read(SCHEMA, &body);
        assert_eq!((got["a"].clone(), got.get("b")), (json!("a"), None));
    }

    #[test]
    fn message_indexes_name_nested_and_later_messages_either_way_they_are_written() {
        let reader = ProtobufReader::new(SCHEMA, &[]).unwrap();
        // Confluent: a lone 0, or the same path written out (count 1, index 0), is Outer; [0, 0]
        // its first nested message; [1] the second top-level one.
        for (indexes, name) in
            [(vec![0], "t.Outer"), (vec![2, 0], "t.Outer"), (vec![4, 0, 0], "t.Outer.Deep"), (vec![2, 2], "t.Inner")]
        {
            assert_eq!(reader.message_name(&indexes, MessageIndexes::Confluent).unwrap(), name, "{indexes:?}");
        }
        // Glue: sorted by full name, nested ones included: t.Inner, t.Outer, t.Outer.Deep.
        for (index, name) in [(0u8, "t.Inner"), (1, "t.Outer"), (2, "t.Outer.Deep")] {
            assert_eq!(reader.message_name(&[index], MessageIndexes::Glue).unwrap(), name);
        }
        assert!(reader.message_name(&[3], MessageIndexes::Glue).unwrap_err().message.contains("has 3 messages"));
    }

    #[test]
    fn proto2_groups_and_fields_without_presence_read_as_proto2_says() {
        let schema = r#"
            syntax = "proto2";
            message M {
              optional int32 a = 1;
              optional group G = 2 { optional string s = 3; }
              optional string unset = 4;
            }
        "#;
        let body =
            [vec![0], tag(2, START_GROUP), len_field(3, b"in"), tag(2, END_GROUP), tag(1, VARINT), varint(7)].concat();
        // proto2 fields have presence: an unset one is missing, not a default.
        assert_eq!(read(schema, &body), json!({"a": 7, "g": {"s": "in"}}));
    }

    #[test]
    fn a_schema_registered_as_a_base64_descriptor_reads_as_its_text_does() {
        let pool = compile_pool(SCHEMA, &[]).unwrap();
        let file = pool.get_file_by_name(SCHEMA_FILE).unwrap();
        let descriptor = BASE64.encode(prost::Message::encode_to_vec(file.file_descriptor_proto()));
        let body = [vec![0], tag(1, VARINT), varint(5)].concat();
        assert_eq!(read(&descriptor, &body), read(SCHEMA, &body));
    }

    #[test]
    fn imports_resolve_to_references_by_their_import_name() {
        let money = ProtoFile {
            name: "money/v1/money.proto",
            text: "syntax = \"proto3\"; package money; message Money { int64 cents = 1; }",
        };
        let schema = "syntax = \"proto3\"; import \"money/v1/money.proto\"; message Order { money.Money total = 1; }";
        let reader = ProtobufReader::new(schema, &[money]).unwrap();
        let body = [vec![0], len_field(1, &[tag(1, VARINT), varint(250)].concat())].concat();
        assert_eq!(
            reader.read(&body, MessageIndexes::Confluent, None).unwrap().to_value(),
            json!({"total": {"cents": 250}})
        );
        let missing = ProtobufReader::new(schema, &[]).unwrap_err().to_string();
        assert!(missing.contains("money/v1/money.proto"), "{missing}");
    }

    #[test]
    fn only_what_the_mapping_reads_is_built() {
        let spec = "version: 1\nname: t\nfields:\n  - {target: x, source: $.inner.x, type: string}\n";
        let (spec, problems) = crate::spec::parse(spec);
        assert!(problems.is_empty(), "{problems:?}");
        let plan = crate::plan::compile(&spec).unwrap();
        let reader = ProtobufReader::new(SCHEMA, &[]).unwrap();
        let body =
            [vec![0], tag(1, VARINT), varint(1), len_field(2, &[len_field(1, b"x1"), len_field(2, b"y2")].concat())]
                .concat();
        let doc = reader.read(&body, MessageIndexes::Confluent, Some(plan.projection())).unwrap();
        assert_eq!(doc.to_value(), json!({"inner": {"x": "x1"}}));
    }

    #[test]
    fn a_map_of_many_entries_reads_in_time_linear_in_its_size() {
        // 200,000 distinct keys and one repeated: a check per entry against every earlier one
        // would take minutes; a record must not stall its partition.
        let schema = "syntax = \"proto3\"; message M { map<string, int64> m = 1; }";
        let reader = ProtobufReader::new(schema, &[]).unwrap();
        let mut body = vec![0];
        let entry = |key: &str, value: u64| {
            let inner = [len_field(1, key.as_bytes()), tag(2, VARINT), varint(value)].concat();
            len_field(1, &inner)
        };
        for i in 0..200_000u64 {
            body.extend(entry(&format!("k{i}"), i));
        }
        body.extend(entry("k7", 700));
        let started = std::time::Instant::now();
        let doc = reader.read(&body, MessageIndexes::Confluent, None).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
        let Doc::Object(members) = doc.get("m").unwrap() else { panic!() };
        assert_eq!(members.len(), 200_000, "a repeated key is one member");
        assert_eq!(doc.get("m").unwrap().get("k7"), Some(&Doc::Int(700)), "the last entry of a key wins");
    }

    #[test]
    fn well_known_values_out_of_range_fail_and_name_where() {
        let schema = "syntax = \"proto3\"; import \"google/protobuf/timestamp.proto\"; \
                      message M { google.protobuf.Timestamp at = 1; }";
        let reader = ProtobufReader::new(schema, &[]).unwrap();
        let body = [vec![0], len_field(1, &[tag(2, VARINT), varint(2_000_000_000)].concat())].concat();
        let e = reader.read(&body, MessageIndexes::Confluent, None).unwrap_err();
        assert!(e.message.starts_with("at: a Timestamp outside"), "{e}");
    }
}
