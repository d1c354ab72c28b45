//! Where each record goes: `(Source, Outcome)` → an [`OutMessage`] for the ok or the fail topic.
//!
//! The fail record is a JSON envelope (documented in docs/operations.md) and carries headers named after
//! Kafka Connect's `__connect.errors.*`, so dead-letter tooling that reads those finds its way:
//! `lambda-stream.error.stage`, `.topic`, `.partition`, `.offset`, `.message`.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use serde_json::Value;

use crate::plan::extract::Extractor;
use crate::plan::path::Segment;
use crate::plan::value::Val;
use crate::plan::{Failure, FieldError, Outcome, Plan, Stage};
use crate::record::{Input, Payload, Source};

/// A message to produce, with the position of the input it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMessage {
    pub route: Route,
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Header names are mostly this crate's own constants: borrowed, not copied per message.
    pub headers: Vec<(Cow<'static, str>, Vec<u8>)>,
    /// The input record's position (for logs, accounting and partial-batch responses).
    pub origin: Origin,
    /// Why the record failed, exactly when `route` is `Fail`: kept as data next to the envelope
    /// written from it, so logs and the dry run never parse the envelope back.
    pub failure: Option<Failure>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    Ok,
    Fail,
}

/// An input record's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
}

impl Origin {
    pub fn of(source: &Source) -> Self {
        Origin {
            group: source.group.clone(),
            topic: source.topic.clone(),
            partition: source.partition,
            offset: source.offset,
        }
    }
}

/// What happened to one input record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    Message(OutMessage),
    /// Nothing to produce: counted, never silent.
    Skipped(Origin, SkipReason),
}

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SkipReason {
    /// A tombstone (null value): nothing to map.
    Tombstone,
    /// The mapping's `drop:` holds for it (test events and the like).
    Dropped,
}

impl Routed {
    /// The message to produce, unless the input was skipped.
    pub fn message(&self) -> Option<&OutMessage> {
        match self {
            Routed::Message(m) => Some(m),
            Routed::Skipped(..) => None,
        }
    }
}

/// Who is routing: names that go into every fail record.
#[derive(Clone, Debug)]
pub struct Router {
    pub topic_ok: String,
    pub topic_fail: String,
    pub function_name: String,
    pub function_env: String,
}

/// What every header a fail record adds begins with; a replay leaves those out.
pub const ERROR_HEADER_PREFIX: &str = "lambda-stream.error.";
pub const HEADER_STAGE: &str = "lambda-stream.error.stage";
pub const HEADER_TOPIC: &str = "lambda-stream.error.topic";
pub const HEADER_PARTITION: &str = "lambda-stream.error.partition";
pub const HEADER_OFFSET: &str = "lambda-stream.error.offset";
pub const HEADER_MESSAGE: &str = "lambda-stream.error.message";
pub const HEADER_MAPPING: &str = "lambda-stream.error.mapping";
/// On ok records: the mapping that made it, `name@version`.
pub const HEADER_OK_MAPPING: &str = "lambda-stream.mapping";

/// The fail topic's JSON document.
#[derive(Debug, Serialize)]
pub struct FailEnvelope<'a> {
    pub source: EnvelopeSource<'a>,
    pub stage: Stage,
    pub errors: &'a [FieldError],
    pub mapping: MappingInfo<'a>,
    pub function: FunctionInfo<'a>,
    pub failed_at: String,
    /// The length in bytes of an embedded JSON `value` as it stands in the envelope: a reader
    /// steps over the record without following its brackets (a replay reads the record anyway,
    /// when it maps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_length: Option<usize>,
    /// The original value (see `value_encoding`).
    pub value: Option<EnvelopeValue<'a>>,
    pub value_encoding: &'static str,
}

/// A record's value in its fail envelope. A JSON object is embedded as it is: its exact bytes,
/// readable as part of the envelope, with nothing to escape on the way in or to unescape on the
/// way back (as a quoted string, a JSON document has an escape at each of its quotes, and reading
/// those back cost a replay more than mapping the record). Anything else travels as text when it
/// is UTF-8, else as base64.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EnvelopeValue<'a> {
    Json(&'a serde_json::value::RawValue),
    Text(String),
}

impl<'a> EnvelopeValue<'a> {
    /// The value and its `value_encoding`: `json`, `utf8` or `base64`.
    pub fn of(bytes: &'a [u8]) -> (Self, &'static str) {
        if let Some(json) = embeddable_json(bytes) {
            return (EnvelopeValue::Json(json), "json");
        }
        let (text, encoding) = text_or_base64(bytes);
        (EnvelopeValue::Text(text), encoding)
    }
}

/// The deepest value embedded in an envelope: far beyond real records, well within what JSON
/// readers accept (serde_json: 128 levels).
const EMBED_MAX_DEPTH: usize = 64;

/// How deep the arrays and objects of valid JSON text nest.
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    deepest
}

/// `bytes` as a JSON object that can be embedded in the envelope and read back byte for byte: an
/// object from its first byte to its last (surrounding whitespace would be lost), that serde_json
/// reads as a value (so no number beyond `f64`, no `\u` escape of half a surrogate pair alone)
/// and nested no deeper than `EMBED_MAX_DEPTH`.
fn embeddable_json(bytes: &[u8]) -> Option<&serde_json::value::RawValue> {
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return None;
    }
    if memchr::memchr2_iter(b'{', b'[', bytes).nth(EMBED_MAX_DEPTH).is_some() && nesting_depth(bytes) > EMBED_MAX_DEPTH
    {
        return None;
    }
    serde_json::from_slice::<Readable>(bytes).ok()?;
    let json: &serde_json::value::RawValue = serde_json::from_slice(bytes).ok()?;
    (json.get().len() == bytes.len()).then_some(json)
}

/// A JSON value read as serde_json reads one into a `Value` (every string decoded, every number
/// in range), and thrown away as it is read: nothing is built.
struct Readable;

impl<'de> serde::Deserialize<'de> for Readable {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Readable)
    }
}

impl<'de> serde::de::Visitor<'de> for Readable {
    type Value = Readable;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_str<E>(self, _: &str) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_unit<E>(self) -> Result<Readable, E> {
        Ok(Readable)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(Readable)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
        while map.next_entry::<Readable, Readable>()?.is_some() {}
        Ok(Readable)
    }
}

#[derive(Debug, Serialize)]
pub struct EnvelopeSource<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    /// The key as text when it is UTF-8, else base64 (see `key_encoding`).
    pub key: Option<String>,
    pub key_encoding: &'static str,
    /// How many of the fail record's headers are the source record's (they follow the
    /// `lambda-stream.error.*` ones): none, and a replay does not read the record's headers.
    pub header_count: usize,
}

#[derive(Debug, Serialize)]
pub struct MappingInfo<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

#[derive(Debug, Serialize)]
pub struct FunctionInfo<'a> {
    pub name: &'a str,
    pub env: &'a str,
}

/// A fail record's envelope as triage reads it back (the writer is [`FailEnvelope`]). The value is
/// not read: triage looks at millions of envelopes and never at their values.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ReadEnvelope {
    pub source: ReadSource,
    pub stage: String,
    #[serde(default)]
    pub errors: Vec<FieldError>,
    #[serde(default)]
    pub mapping: ReadMapping,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct ReadSource {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    #[serde(default = "utf8")]
    pub key_encoding: String,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ReadMapping {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

fn utf8() -> String {
    "utf8".into()
}

impl ReadEnvelope {
    /// Reads a fail record's value; `Err` says why it is not one of ours.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a lambda-stream fail envelope: {e}"))
    }

    /// `name@version` of the mapping that failed it (`(none)` for a record no route took).
    pub fn mapping_identity(&self) -> String {
        match (self.mapping.name.as_str(), self.mapping.version.as_str()) {
            ("", _) => "(none)".into(),
            (name, "") => name.into(),
            (name, version) => format!("{name}@{version}"),
        }
    }
}

/// What a replay reads of a fail envelope: where the record came from, its key and value, and its
/// errors' `field:rule`s. Read by the mapping engine's scanner, which skips the envelope's other
/// members without building them and borrows text that has no escapes; the value is taken as the
/// JSON text it is in the envelope, and its bytes are copied once into the rebuilt record (an
/// embedded JSON object as it is, text unescaped, base64 decoded).
#[derive(Debug, PartialEq)]
pub struct ReplayEnvelope<'a> {
    source: ReplaySource<'a>,
    errors: Vec<ErrorKey<'a>>,
    /// The value's JSON text in the envelope (`null` or absent: a tombstone).
    value: Option<&'a str>,
    value_encoding: Option<Cow<'a, str>>,
}

#[derive(Debug, PartialEq)]
struct ReplaySource<'a> {
    topic: Cow<'a, str>,
    partition: i32,
    offset: Option<i64>,
    timestamp: Option<i64>,
    key: Option<Cow<'a, str>>,
    key_encoding: Option<Cow<'a, str>>,
    /// `None` in envelopes written before it was.
    header_count: Option<i64>,
}

#[derive(Debug, PartialEq)]
struct ErrorKey<'a> {
    field: Option<Cow<'a, str>>,
    rule: Cow<'a, str>,
}

/// The envelope members a replay reads, in the order of the reader's first slots; then the
/// value's length and text, then `errors` with each error's `field` and `rule`.
const ENVELOPE_MEMBERS: [&[&str]; 8] = [
    &["source", "topic"],
    &["source", "partition"],
    &["source", "offset"],
    &["source", "timestamp"],
    &["source", "key"],
    &["source", "key_encoding"],
    &["source", "header_count"],
    &["value_encoding"],
];

/// The reader's slots: the members above, the value's length and text, and the errors.
const ENVELOPE_SLOTS: usize = ENVELOPE_MEMBERS.len() + 3;

/// The scanner of fail envelopes, built once.
struct EnvelopeReader {
    extractor: Extractor,
    value: usize,
    errors: usize,
}

fn envelope_reader() -> &'static EnvelopeReader {
    static READER: std::sync::OnceLock<EnvelopeReader> = std::sync::OnceLock::new();
    READER.get_or_init(|| {
        let path = |keys: &[&str]| keys.iter().map(|k| Segment::Key((*k).into())).collect::<Vec<_>>();
        let mut extractor = Extractor::default();
        for (i, member) in ENVELOPE_MEMBERS.iter().enumerate() {
            let slot = extractor.add(&path(member));
            debug_assert_eq!(slot, i, "slots are numbered in the order added");
        }
        // Envelopes written before `value_length` are read too: their record is delimited.
        let (value, _) = extractor.add_text_with_length(&path(&["value"]), &path(&["value_length"]));
        let errors = extractor.add_items(&path(&["errors"]), &[path(&["field"]), path(&["rule"])]);
        extractor.finish();
        assert_eq!(extractor.slot_count(), ENVELOPE_SLOTS, "a slot for each member read");
        EnvelopeReader { extractor, value, errors }
    })
}

/// The envelope exactly as this crate writes it — its members in their order, compact, with a
/// JSON record embedded by its length and no escape in the text a replay keeps — read straight
/// through: nearly every envelope a replay reads is one, and reading it this way costs a fraction
/// of the general scan (which skips members by looking each one up). Anything else at all, even
/// one space, and the general scan reads the envelope instead (`None`): this reader only ever
/// accepts what that scan would accept, and reads the same from it (a unit test holds the two
/// together on envelopes of every shape and on every cut and changed byte of them).
struct OwnLayout<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> OwnLayout<'a> {
    fn read(bytes: &'a [u8]) -> Option<ReplayEnvelope<'a>> {
        let mut r = OwnLayout { bytes, pos: 0 };
        r.literal(br#"{"source":{"topic":"#)?;
        let topic = r.plain_string()?;
        r.literal(br#","partition":"#)?;
        let partition = i32::try_from(r.integer()?).ok()?;
        r.literal(br#","offset":"#)?;
        let offset = r.or_null(Self::integer)?;
        r.literal(br#","timestamp":"#)?;
        let timestamp = r.or_null(Self::integer)?;
        r.literal(br#","key":"#)?;
        let key = r.or_null(Self::plain_string)?;
        r.literal(br#","key_encoding":"#)?;
        let key_encoding = r.plain_string()?;
        r.literal(br#","header_count":"#)?;
        let header_count = r.integer()?;
        r.literal(br#"},"stage":"#)?;
        r.skip_string()?;
        r.literal(br#","errors":["#)?;
        let mut errors = Vec::new();
        if !r.eat(b']') {
            loop {
                r.literal(br#"{"field":"#)?;
                let field = r.or_null(Self::plain_string)?;
                r.literal(br#","rule":"#)?;
                let rule = r.plain_string()?;
                r.literal(br#","message":"#)?;
                r.skip_string()?;
                r.literal(b"}")?;
                errors.push(ErrorKey { field: field.map(Cow::Borrowed), rule: Cow::Borrowed(rule) });
                if r.eat(b']') {
                    break;
                }
                r.literal(b",")?;
            }
        }
        r.literal(br#","mapping":{"name":"#)?;
        r.skip_string()?;
        r.literal(br#","version":"#)?;
        r.skip_string()?;
        r.literal(br#"},"function":{"name":"#)?;
        r.skip_string()?;
        r.literal(br#","env":"#)?;
        r.skip_string()?;
        r.literal(br#"},"failed_at":"#)?;
        r.skip_string()?;
        r.literal(br#","value_length":"#)?;
        let length = usize::try_from(r.integer()?).ok()?;
        r.literal(br#","value":"#)?;
        let value = r.embedded(length)?;
        r.literal(br#","value_encoding":"#)?;
        let value_encoding = r.plain_string()?;
        r.literal(b"}")?;
        if r.pos != bytes.len() {
            return None;
        }
        Some(ReplayEnvelope {
            source: ReplaySource {
                topic: Cow::Borrowed(topic),
                partition,
                offset,
                timestamp,
                key: key.map(Cow::Borrowed),
                key_encoding: Some(Cow::Borrowed(key_encoding)),
                header_count: Some(header_count),
            },
            errors,
            value: Some(value),
            value_encoding: Some(Cow::Borrowed(value_encoding)),
        })
    }

    fn literal(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(expected.len())?;
        (self.bytes.get(self.pos..end)? == expected).then(|| self.pos = end)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.pos) == Some(&byte);
        self.pos += usize::from(found);
        found
    }

    /// `null`, or what `read` reads.
    fn or_null<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.literal(b"null").is_some() { Some(None) } else { read(self).map(Some) }
    }

    /// A string without escapes or control characters, its UTF-8 checked.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.literal(b"\"")?;
        let start = self.pos;
        self.skip_to_closing_quote(false)?;
        let text = &self.bytes[start..self.pos];
        self.pos += 1;
        std::str::from_utf8(text).ok()
    }

    /// A string whose text is not kept: simple escapes allowed (`\u` is left to the general scan).
    fn skip_string(&mut self) -> Option<()> {
        self.literal(b"\"")?;
        let start = self.pos;
        if self.skip_to_closing_quote(true)? {
            std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
        }
        self.pos += 1;
        Some(())
    }

    /// Moves to the quote that closes the string, sixteen bytes at a time as the scanner does;
    /// `None` at a control character, at an escape (unless `escapes`, and then at `\u` or one that
    /// is not JSON) or at the end. `Some(true)` when the text has non-ASCII bytes (to check as
    /// UTF-8).
    fn skip_to_closing_quote(&mut self, escapes: bool) -> Option<bool> {
        let mut non_ascii = false;
        loop {
            self.pos = crate::plan::extract::next_special_byte(self.bytes, self.pos);
            match *self.bytes.get(self.pos)? {
                b'"' => return Some(non_ascii),
                b'\\' if escapes => match self.bytes.get(self.pos + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                    _ => return None,
                },
                0x80.. => {
                    non_ascii = true;
                    self.pos += 1;
                }
                _ => return None,
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)` within i64; a fraction or exponent is left to the general scan (the
    /// literal after the number does not match).
    fn integer(&mut self) -> Option<i64> {
        let negative = self.eat(b'-');
        let start = self.pos;
        let mut value: i64 = 0;
        while let Some(digit) = self.bytes.get(self.pos).filter(|b| b.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_sub(i64::from(digit - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        // No digits, a leading zero (not JSON), or `-0` (a float to serde_json, so not an integer).
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') || (negative && value == 0) {
            return None;
        }
        if negative { Some(value) } else { value.checked_neg() }
    }

    /// The embedded record of `length` bytes: an object or array by its brackets at both ends, its
    /// UTF-8 checked (its JSON is the mapping's to check, as with the general scan).
    fn embedded(&mut self, length: usize) -> Option<&'a str> {
        let start = self.pos;
        self.pos = crate::plan::extract::end_by_length(self.bytes, start, length)?;
        std::str::from_utf8(&self.bytes[start..self.pos]).ok()
    }
}

/// A member's text; `None` when absent or null; `Err` names a member of another type.
fn text_member<'a>(value: Option<Val<'a>>, name: &str) -> Result<Option<Cow<'a, str>>, String> {
    match value {
        None => Ok(None),
        Some(Val::Raw(text)) => Ok(Some(Cow::Borrowed(text))),
        Some(Val::Str(text)) => Ok(Some(text)),
        Some(v) if v.is_null() => Ok(None),
        Some(_) => Err(format!("`{name}` is not text")),
    }
}

/// A member's integer; `None` when absent or null.
fn integer_member(value: Option<Val<'_>>, name: &str) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => v.json().and_then(Value::as_i64).map(Some).ok_or_else(|| format!("`{name}` is not an integer")),
    }
}

/// Text back to bytes by its encoding (`utf8`, the default, or `base64`); `None` when it does
/// not decode.
fn decode_text(text: Cow<'_, str>, encoding: Option<&str>) -> Option<Vec<u8>> {
    match encoding {
        None | Some("utf8") => Some(text.into_owned().into_bytes()),
        Some("base64") => BASE64.decode(text.as_bytes()).ok(),
        Some(_) => None,
    }
}

impl<'a> ReplayEnvelope<'a> {
    /// `Err` says why it is not one of ours.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        Self::read(bytes).map_err(|why| format!("not a lambda-stream fail envelope: {why}"))
    }

    fn read(bytes: &'a [u8]) -> Result<Self, String> {
        match OwnLayout::read(bytes) {
            Some(envelope) => Ok(envelope),
            None => Self::scan(bytes),
        }
    }

    /// Any envelope, whatever its layout, by the mapping engine's scanner.
    fn scan(bytes: &'a [u8]) -> Result<Self, String> {
        let reader = envelope_reader();
        let mut slots: [Option<Val<'a>>; ENVELOPE_SLOTS] = [const { None }; ENVELOPE_SLOTS];
        reader.extractor.scan_into(bytes, &mut slots).map_err(|e| e.to_string())?;
        let mut take = |i: usize| slots[i].take();
        let [topic, partition, offset, timestamp, key, key_encoding, header_count, value_encoding] =
            std::array::from_fn(&mut take);
        // Both are found only inside a `source` object: without one, the envelope is refused here.
        let source = ReplaySource {
            topic: text_member(topic, "source.topic")?.ok_or("no `source.topic`")?,
            partition: integer_member(partition, "source.partition")?
                .and_then(|p| i32::try_from(p).ok())
                .ok_or("no `source.partition`, a partition number")?,
            offset: integer_member(offset, "source.offset")?,
            timestamp: integer_member(timestamp, "source.timestamp")?,
            key: text_member(key, "source.key")?,
            key_encoding: text_member(key_encoding, "source.key_encoding")?,
            header_count: integer_member(header_count, "source.header_count")?,
        };
        let value = match slots[reader.value].take() {
            Some(Val::Raw(json)) => Some(json).filter(|json| *json != "null"),
            _ => None,
        };
        let errors = match slots[reader.errors].take() {
            None => Vec::new(),
            Some(Val::Array(array)) => {
                let array = std::rc::Rc::try_unwrap(array).unwrap_or_else(|shared| (*shared).clone());
                let mut cells = array.slots.into_iter();
                let mut errors = Vec::with_capacity(array.len);
                while let (Some(field), Some(rule)) = (cells.next(), cells.next()) {
                    errors.push(ErrorKey {
                        field: text_member(field, "errors[].field")?,
                        rule: text_member(rule, "errors[].rule")?.ok_or("an error without its `rule`")?,
                    });
                }
                errors
            }
            Some(_) => return Err("`errors` is not an array".into()),
        };
        Ok(ReplayEnvelope { source, errors, value, value_encoding: text_member(value_encoding, "value_encoding")? })
    }

    /// The failure's `field:rule`s in order, each once (`-` for a record-level error).
    pub fn rules(&self) -> Vec<String> {
        crate::plan::distinct_field_rules(
            self.errors.iter().map(|e| crate::plan::field_rule(e.field.as_deref(), &e.rule)),
        )
    }

    /// The envelope says the source record had no headers: the fail record's are all its own
    /// `lambda-stream.error.*`, and a replay need not read them. (Envelopes written before the
    /// count say nothing: their headers are read.)
    pub fn source_had_no_headers(&self) -> bool {
        self.source.header_count == Some(0)
    }

    /// Writes a key that tells apart any two envelopes whose errors' `(field, rule)` pairs differ
    /// (each part's length before its bytes, so no text can pass for another): equal keys, equal
    /// [`ReplayEnvelope::rules`], for keeping each distinct list once.
    pub fn write_rules_key(&self, key: &mut Vec<u8>) {
        for e in &self.errors {
            for part in [e.field.as_deref(), Some(e.rule.as_ref())] {
                match part {
                    None => key.push(0),
                    Some(text) => {
                        key.push(1);
                        key.extend_from_slice(&(text.len() as u64).to_le_bytes());
                        key.extend_from_slice(text.as_bytes());
                    }
                }
            }
        }
    }

    /// Where the source record was: `topic/partition/offset`.
    pub fn origin(&self) -> String {
        let s = &self.source;
        position(&s.topic, s.partition, s.offset)
    }

    /// The source record: key, value, headers (the fail record's, without its own
    /// `lambda-stream.error.*`; a name that is not UTF-8 read with U+FFFD for each invalid
    /// sequence, as the worker reads it), timestamp and position. `None` when the key or the value
    /// does not decode by its encoding.
    pub fn into_input<'h>(self, fail_headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>) -> Option<Input> {
        let payload = match (self.value, self.value_encoding.as_deref()) {
            (None, _) => Payload::Tombstone,
            (Some(json), Some("json")) => Payload::Value(json.as_bytes().to_vec()),
            (Some(text), encoding) => {
                let text: Cow<'_, str> = serde_json::from_str(text).ok()?;
                Payload::Value(decode_text(text, encoding)?)
            }
        };
        let s = self.source;
        let key = match s.key {
            None => None,
            Some(k) => Some(decode_text(k, s.key_encoding.as_deref())?),
        };
        let headers = fail_headers
            .into_iter()
            .filter(|(k, _)| !k.starts_with(ERROR_HEADER_PREFIX.as_bytes()))
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.to_vec()))
            .collect();
        Some(Input {
            source: Source {
                topic: s.topic.into_owned(),
                partition: s.partition,
                offset: s.offset,
                timestamp: s.timestamp,
                key,
                headers,
                ..Source::default()
            },
            payload,
        })
    }
}

/// `topic/partition/offset` (`?` for an unknown offset), written without the formatting
/// machinery: a replay writes two for every record.
pub fn position(topic: &str, partition: i32, offset: Option<i64>) -> String {
    let mut digits = itoa::Buffer::new();
    let mut text = String::with_capacity(topic.len() + 24);
    text.push_str(topic);
    text.push('/');
    text.push_str(digits.format(partition));
    text.push('/');
    text.push_str(offset.map_or("?", |o| digits.format(o)));
    text
}

/// Bytes as text when they are UTF-8, else base64; and which one it is.
pub fn text_or_base64(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (BASE64.encode(bytes), "base64"),
    }
}

impl Router {
    /// Maps and routes one input: the single path shared by the Lambda handler, `process` and
    /// the worker.
    pub fn route(&self, plan: &Plan, input: &Input) -> Routed {
        match &input.payload {
            Payload::Tombstone => Routed::Skipped(Origin::of(&input.source), SkipReason::Tombstone),
            Payload::Value(bytes) => match plan.apply(bytes) {
                Outcome::Mapped(m) => Routed::Message(self.ok_message(plan, &input.source, m.value, m.key)),
                Outcome::Failed(f) => Routed::Message(self.fail_message(Some(plan), &input.source, f, Some(bytes))),
                Outcome::Dropped => Routed::Skipped(Origin::of(&input.source), SkipReason::Dropped),
            },
            Payload::Undecodable { reason, raw } => {
                let failure = Failure::of_record("record", reason.clone());
                let raw = raw.as_deref().map(str::as_bytes);
                Routed::Message(self.fail_message(Some(plan), &input.source, failure, raw))
            }
        }
    }

    fn ok_message(&self, plan: &Plan, source: &Source, value: Vec<u8>, key: Option<Vec<u8>>) -> OutMessage {
        let mut headers: Vec<(Cow<'static, str>, Vec<u8>)> = Vec::with_capacity(plan.headers().len() + 1);
        headers.extend(
            plan.headers().iter().filter_map(|name| source.header(name).map(|v| (name.clone().into(), v.to_vec()))),
        );
        headers.push((HEADER_OK_MAPPING.into(), plan.identity().into_bytes()));
        OutMessage {
            route: Route::Ok,
            topic: self.topic_ok.clone(),
            key: key.or_else(|| source.key.clone()),
            payload: value,
            headers,
            origin: Origin::of(source),
            failure: None,
        }
    }

    /// The fail message of a record: its envelope names `plan`, or no mapping (`None`: a record no
    /// route takes).
    pub fn fail_message(
        &self,
        plan: Option<&Plan>,
        source: &Source,
        failure: Failure,
        value: Option<&[u8]>,
    ) -> OutMessage {
        let (stage, errors) = (failure.stage, failure.errors.as_slice());
        let (key, key_encoding) = match &source.key {
            Some(k) => {
                let (text, encoding) = text_or_base64(k);
                (Some(text), encoding)
            }
            None => (None, "utf8"),
        };
        let (value, value_encoding) = match value {
            Some(v) => {
                let (value, encoding) = EnvelopeValue::of(v);
                (Some(value), encoding)
            }
            None => (None, "utf8"),
        };
        let value_length = match &value {
            Some(EnvelopeValue::Json(json)) => Some(json.get().len()),
            _ => None,
        };
        let envelope = FailEnvelope {
            source: EnvelopeSource {
                topic: &source.topic,
                partition: source.partition,
                offset: source.offset,
                timestamp: source.timestamp,
                key,
                key_encoding,
                header_count: source.headers.len(),
            },
            stage,
            errors,
            mapping: MappingInfo { name: plan.map_or("", Plan::name), version: plan.map_or("", Plan::version) },
            function: FunctionInfo { name: &self.function_name, env: &self.function_env },
            failed_at: now_rfc3339(),
            value_length,
            value,
            value_encoding,
        };
        let payload = serde_json::to_vec(&envelope).expect("the envelope always serialises");
        let mut headers = Vec::with_capacity(6 + source.headers.len());
        headers.extend([
            (HEADER_STAGE.into(), stage.as_str().as_bytes().to_vec()),
            (HEADER_TOPIC.into(), source.topic.as_bytes().to_vec()),
            (HEADER_PARTITION.into(), source.partition.to_string().into_bytes()),
            (HEADER_OFFSET.into(), source.offset.map_or_else(String::new, |o| o.to_string()).into_bytes()),
            (HEADER_MESSAGE.into(), summary(errors).into_bytes()),
            (HEADER_MAPPING.into(), plan.map_or("", Plan::name).as_bytes().to_vec()),
        ]);
        // Every header of the source record after ours, in its order: a replay of the failure
        // restores them (trace context and the like).
        headers.extend(source.headers.iter().map(|(k, v)| (Cow::Owned(k.clone()), v.clone())));
        OutMessage {
            route: Route::Fail,
            topic: self.topic_fail.clone(),
            key: source.key.clone(),
            payload,
            headers,
            origin: Origin::of(source),
            failure: Some(failure),
        }
    }
}

/// One line for the `.message` header: the first error, and how many more.
pub fn summary(errors: &[FieldError]) -> String {
    let Some(first) = errors.first() else { return String::new() };
    let field = first.field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default();
    let more = match errors.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    format!("{field}{} ({}){more}", first.message, first.rule)
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn plan() -> Plan {
        crate::plan::load_str(
            "version: 1\nname: m\nheaders: [traceparent]\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n",
        )
        .unwrap()
        .1
    }

    fn router() -> Router {
        Router {
            topic_ok: "ok".into(),
            topic_fail: "fail".into(),
            function_name: "fn".into(),
            function_env: "dev".into(),
        }
    }

    fn input(value: Payload) -> Input {
        Input {
            source: Source {
                topic: "orders".into(),
                partition: 3,
                offset: Some(42),
                timestamp: Some(1_700_000_000_000),
                key: Some(b"k-1".to_vec()),
                headers: vec![("traceparent".into(), b"00-abc".to_vec()), ("other".into(), b"x".to_vec())],
                group: "orders-3".into(),
                ..Source::default()
            },
            payload: value,
        }
    }

    #[test]
    fn ok_records_keep_the_key_and_pass_selected_headers() {
        let Routed::Message(m) = router().route(&plan(), &input(Payload::Value(br#"{"id": 7}"#.to_vec()))) else {
            panic!()
        };
        assert_eq!(m.route, Route::Ok);
        assert_eq!(m.topic, "ok");
        assert_eq!(m.key.as_deref(), Some(&b"k-1"[..]));
        assert_eq!(m.payload, br#"{"id":7}"#);
        // The mapping's identity: its name and the first 12 hex digits of its text's SHA-256.
        let identity = format!("m@{}", plan().version());
        assert_eq!(plan().version().len(), 12);
        assert_eq!(
            m.headers,
            vec![("traceparent".into(), b"00-abc".to_vec()), (HEADER_OK_MAPPING.into(), identity.into_bytes())]
        );
        assert_eq!(m.origin.offset, Some(42));
    }

    #[test]
    fn fail_records_carry_the_envelope_and_headers() {
        let Routed::Message(m) = router().route(&plan(), &input(Payload::Value(br#"{"id": "x"}"#.to_vec()))) else {
            panic!()
        };
        assert_eq!(m.route, Route::Fail);
        assert_eq!(m.topic, "fail");
        assert_eq!(m.key.as_deref(), Some(&b"k-1"[..]));
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(
            doc["source"],
            json!({"topic": "orders", "partition": 3, "offset": 42, "timestamp": 1_700_000_000_000_i64, "key": "k-1", "key_encoding": "utf8", "header_count": 2})
        );
        assert_eq!(doc["stage"], "validate");
        assert_eq!(doc["errors"][0]["rule"], "type");
        assert_eq!(doc["mapping"], json!({"name": "m", "version": plan().version()}));
        assert_eq!(doc["function"], json!({"name": "fn", "env": "dev"}));
        assert_eq!(doc["value"], json!({"id": "x"}), "a JSON object is embedded as it is");
        assert_eq!(doc["value_encoding"], "json");
        assert!(doc["failed_at"].as_str().unwrap().ends_with('Z'));
        let header =
            |name: &str| m.headers.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8(v.clone()).unwrap());
        assert_eq!(header(HEADER_STAGE).as_deref(), Some("validate"));
        assert_eq!(header(HEADER_TOPIC).as_deref(), Some("orders"));
        assert_eq!(header(HEADER_PARTITION).as_deref(), Some("3"));
        assert_eq!(header(HEADER_OFFSET).as_deref(), Some("42"));
        assert!(header(HEADER_MESSAGE).unwrap().starts_with("id: expected an integer"), "{:?}", header(HEADER_MESSAGE));
    }

    #[test]
    fn binary_values_are_base64_in_the_envelope() {
        let Routed::Message(m) = router().route(&plan(), &input(Payload::Value(vec![0xff, 0xfe, 0x00]))) else {
            panic!()
        };
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(doc["stage"], "decode");
        assert_eq!(doc["value"], "//4A");
        assert_eq!(doc["value_encoding"], "base64");
    }

    /// What a replay needs is in the fail record: the source headers after the error headers,
    /// and key and value that decode back to the exact source bytes, binary ones included.
    #[test]
    fn a_fail_record_rebuilds_the_exact_source_record() {
        // Each value with the encoding it travels in: an object embedded as it is (escapes, key
        // order, repeated keys and inner spacing kept), text for what could not be read back byte
        // for byte that way, base64 for bytes that are not UTF-8.
        let deepest = format!("{{\"a\":{}{}}}", "[".repeat(64), "]".repeat(64));
        let deep = format!("{{\"a\":{}\"]]\\\"[[\"{}}}", "[".repeat(63), "]".repeat(63));
        let wide = format!("{{\"a\":[{}]}}", vec!["{}"; 500].join(","));
        let values: [(&[u8], &str); 13] = [
            (br#"{"n":1e400}"#, "utf8"),
            (br#"{"n":1e300,"m":-18446744073709551617}"#, "json"),
            (deepest.as_bytes(), "utf8"),
            (deep.as_bytes(), "json"),
            (wide.as_bytes(), "json"),
            (br#"{"id": "x"}"#, "json"),
            (br#"{"a":"\u00e9\ud83d\ude00\"\n","a":[1 , 2]}"#, "json"),
            (br#" {"id": "x"}"#, "utf8"),
            (b"{\"id\": \"x\"}\n", "utf8"),
            (br#"{"a":"\ud800"}"#, "utf8"),
            (br#"{"a":1,}"#, "utf8"),
            (br#"[{"id": "x"}]"#, "utf8"),
            (&[0xff, 0xfe, 0x00, b'{'], "base64"),
        ];
        for (value, encoding) in values {
            let value = value.to_vec();
            let mut record = input(Payload::Value(value.clone()));
            record.source.key = Some(vec![0x00, 0x9f, b'k']);
            let Routed::Message(m) = router().route(&plan(), &record) else { panic!() };
            let names: Vec<&str> = m.headers.iter().map(|(k, _)| k.as_ref()).collect();
            assert_eq!(names[..6].iter().filter(|n| n.starts_with("lambda-stream.error.")).count(), 6);
            let after_ours: Vec<(String, Vec<u8>)> =
                m.headers[6..].iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            assert_eq!(after_ours, record.source.headers, "source headers after ours, in order");
            let doc: Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(doc["value_encoding"], encoding, "{}", String::from_utf8_lossy(&value));
            let decode = |text: &Value, encoding: &Value| match encoding.as_str().unwrap() {
                "utf8" => text.as_str().unwrap().as_bytes().to_vec(),
                "base64" => BASE64.decode(text.as_str().unwrap()).unwrap(),
                other => panic!("{other}"),
            };
            if encoding == "json" {
                // The envelope's own text holds the value's bytes.
                #[derive(serde::Deserialize)]
                struct Embedded<'a> {
                    #[serde(borrow)]
                    value: &'a serde_json::value::RawValue,
                }
                let embedded: Embedded<'_> = serde_json::from_slice(&m.payload).unwrap();
                assert_eq!(embedded.value.get().as_bytes(), value.as_slice());
                assert_eq!(
                    doc["value_length"],
                    value.len(),
                    "the embedded record's length, for readers to step over it"
                );
                // An envelope written without the length (by an earlier version) rebuilds the same.
                let mut older: serde_json::Map<String, Value> = serde_json::from_slice(&m.payload).unwrap();
                older.remove("value_length");
                let older = serde_json::to_vec(&older).unwrap();
                let rebuilt = ReplayEnvelope::parse(&older).unwrap().into_input([]).unwrap();
                assert_eq!(rebuilt.payload, Payload::Value(serde_json::to_vec(&doc["value"]).unwrap()));
            } else {
                assert_eq!(decode(&doc["value"], &doc["value_encoding"]), value);
                assert!(doc.get("value_length").is_none(), "only an embedded record has a length");
            }
            assert_eq!(
                decode(&doc["source"]["key"], &doc["source"]["key_encoding"]),
                record.source.key.clone().unwrap()
            );
            assert_eq!(doc["source"]["timestamp"], 1_700_000_000_000_i64);
            // And as a replay rebuilds it: the same record, byte for byte.
            let rebuilt = ReplayEnvelope::parse(&m.payload)
                .unwrap()
                .into_input(m.headers.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
                .unwrap();
            assert_eq!(rebuilt.payload, record.payload);
            assert_eq!(rebuilt.source.key, record.source.key);
            assert_eq!(rebuilt.source.headers, record.source.headers);
            assert_eq!(doc["source"]["header_count"], 2, "the source's headers are counted");
            assert!(!ReplayEnvelope::parse(&m.payload).unwrap().source_had_no_headers());
            assert_eq!(
                (
                    rebuilt.source.topic.as_str(),
                    rebuilt.source.partition,
                    rebuilt.source.offset,
                    rebuilt.source.timestamp
                ),
                (record.source.topic.as_str(), record.source.partition, record.source.offset, record.source.timestamp)
            );
        }
        // A source record without headers: the envelope says so, and a replay reads none.
        let mut bare = input(Payload::Value(br#"{"id": 1.5}"#.to_vec()));
        bare.source.headers.clear();
        let Routed::Message(m) = router().route(&plan(), &bare) else { panic!() };
        assert_eq!(m.headers.len(), 6, "the function's own headers only");
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(doc["source"]["header_count"], 0);
        assert!(ReplayEnvelope::parse(&m.payload).unwrap().source_had_no_headers());
        // Envelopes without the count (written before it) do not say: their headers are read.
        let mut older: serde_json::Map<String, Value> = serde_json::from_slice(&m.payload).unwrap();
        older["source"].as_object_mut().unwrap().remove("header_count");
        assert!(!ReplayEnvelope::parse(&serde_json::to_vec(&older).unwrap()).unwrap().source_had_no_headers());
        let tombstone =
            br#"{"source":{"topic":"t","partition":0,"offset":1,"timestamp":null},"stage":"x","value":null}"#;
        assert_eq!(ReplayEnvelope::parse(tombstone).unwrap().into_input([]).unwrap().payload, Payload::Tombstone);
        let cut = br#"{"source":{"topic":"t","partition":0,"offset":1,"timestamp":null},"value":"eyJ","value_encoding":"base64"}"#;
        assert!(ReplayEnvelope::parse(cut).unwrap().into_input([]).is_none(), "cut base64: not rebuilt");
        let escaped = br#"{"source":{"topic":"t","partition":0,"offset":1,"timestamp":null},"errors":[{"field":"a","rule":"r","message":"m"},{"field":"a","rule":"r","message":"n"},{"field":null,"rule":"record","message":"o"}],"value":"{\"a\": \"\u00e9\"}"}"#;
        let e = ReplayEnvelope::parse(escaped).unwrap();
        assert_eq!(e.rules(), ["a:r", "-:record"]);
        assert_eq!(e.origin(), "t/0/1");
        assert_eq!(e.into_input([]).unwrap().payload, Payload::Value("{\"a\": \"é\"}".as_bytes().to_vec()));
    }

    /// The straight read of this crate's own envelopes reads exactly what the general scan reads,
    /// and leaves to the scan whatever it is not sure of: envelopes of the shapes the function
    /// writes (it reads those itself), then each of them cut at every byte and with every byte
    /// changed to each of a handful of others.
    #[test]
    fn own_envelopes_read_straight_through_as_the_scan_reads_them() {
        use crate::plan::{FieldError, Stage};
        let error = |field: Option<&str>, rule: &str, message: &str| FieldError {
            field: field.map(str::to_owned),
            rule: rule.into(),
            message: message.into(),
        };
        let failures = [
            Failure {
                stage: Stage::Validate,
                errors: vec![error(Some("status"), "one_of", r#"expected one of ["A"], found "B""#)],
            },
            Failure {
                stage: Stage::Rule,
                errors: vec![
                    error(Some("a.b"), "cpf", "tab\there / and \\ back"),
                    error(None, "record", "não é"),
                    error(Some("a.b"), "cpf", "again"),
                ],
            },
            Failure { stage: Stage::Validate, errors: vec![] },
            Failure { stage: Stage::Validate, errors: vec![error(Some("q\"uoted"), "r", "a \u{1} control")] },
        ];
        let values: [&[u8]; 4] = ["{\"id\":\"x\",\"s\":\"é\"}".as_bytes(), b"[1,2]", b"{}", b"not json"];
        let sources = [
            input(Payload::Tombstone).source,
            Source { key: None, offset: None, timestamp: None, headers: vec![], ..input(Payload::Tombstone).source },
            Source {
                key: Some(vec![0xff, 0x00]),
                topic: "tópico".into(),
                partition: -1,
                ..input(Payload::Tombstone).source
            },
            Source { offset: Some(i64::MAX), timestamp: Some(-5), ..input(Payload::Tombstone).source },
        ];
        let same = |bytes: &[u8]| -> bool {
            match OwnLayout::read(bytes) {
                None => false,
                Some(straight) => {
                    assert_eq!(
                        Ok(&straight),
                        ReplayEnvelope::scan(bytes).as_ref(),
                        "{}",
                        String::from_utf8_lossy(bytes)
                    );
                    true
                }
            }
        };
        let (mut envelopes, mut straight) = (0, 0);
        for failure in &failures {
            for value in values {
                for source in &sources {
                    let m = router().fail_message(Some(&plan()), source, failure.clone(), Some(value));
                    let text = &m.payload;
                    envelopes += 1;
                    let read = same(text);
                    // Not its own to read: a value not embedded (not an object), a `\u` escape, an escape in
                    // kept text.
                    let own_shape = value.starts_with(b"{")
                        && !text.windows(2).any(|w| w == b"\\u")
                        && !failure.errors.iter().any(|e| e.field.as_deref().is_some_and(|f| f.contains('"')));
                    assert_eq!(read, own_shape, "{}", String::from_utf8_lossy(text));
                    straight += usize::from(read);
                    let mut changed = text.clone();
                    for at in 0..text.len() {
                        same(&text[..at]);
                        for byte in [b'"', b'\\', b'}', b'0', b'-', b' ', 0x01, 0xc3, b'n'] {
                            changed[at] = byte;
                            same(&changed);
                        }
                        changed[at] = text[at];
                    }
                }
            }
        }
        // Two object values, four sources, three failures without a `\u` or a quoted field name.
        assert_eq!((straight, envelopes), (24, 64), "envelopes read straight through, of all");
    }

    /// What is not a fail envelope of ours is refused with the reason, whatever its shape.
    #[test]
    fn envelopes_of_another_shape_are_refused_with_the_reason() {
        let source = r#""source":{"topic":"t","partition":0,"offset":1}"#;
        let refused = [
            (r#"{"value":{"a":1},"value_encoding":"json"}"#.to_string(), "no `source.topic`"),
            (r#"{"source":"t","value":{}}"#.into(), "no `source.topic`"),
            (r#"{"source":{"topic":"t","partition":"0"}}"#.into(), "`source.partition` is not an integer"),
            (r#"{"source":{"topic":"t","partition":4294967296}}"#.into(), "a partition number"),
            (r#"{"source":{"topic":7,"partition":0}}"#.into(), "`source.topic` is not text"),
            (format!(r#"{{{source},"errors":{{"rule":"r"}}}}"#), "`errors` is not an array"),
            (format!(r#"{{{source},"errors":[{{"field":"a"}}]}}"#), "without its `rule`"),
            (format!(r#"{{{source},"value":{{}},"value":{{}}}}"#), "duplicate key \"value\""),
            (r#"[1]"#.into(), "expected a JSON object"),
        ];
        for (text, why) in refused {
            let e = ReplayEnvelope::parse(text.as_bytes()).unwrap_err();
            assert!(e.starts_with("not a lambda-stream fail envelope: ") && e.contains(why), "{text}: {e}");
        }
        // An embedded value is taken as its exact text; a string one is unescaped.
        let embedded = format!(r#"{{{source},"value": {{"a" : [1, "\u00e9"]}} ,"value_encoding":"json"}}"#);
        let input = ReplayEnvelope::parse(embedded.as_bytes()).unwrap().into_input([]).unwrap();
        assert_eq!(input.payload, Payload::Value(br#"{"a" : [1, "\u00e9"]}"#.to_vec()));
        let quoted = format!(r#"{{{source},"value":"{{\"a\": 1}}","value_encoding":"utf8"}}"#);
        let input = ReplayEnvelope::parse(quoted.as_bytes()).unwrap().into_input([]).unwrap();
        assert_eq!(input.payload, Payload::Value(br#"{"a": 1}"#.to_vec()));
        // An embedded object is delimited, not checked: mapped again, its record is checked like
        // any other and refused with the reason.
        let broken = format!(r#"{{{source},"value":{{"a":}},"value_encoding":"json"}}"#);
        let input = ReplayEnvelope::parse(broken.as_bytes()).unwrap().into_input([]).unwrap();
        assert_eq!(input.payload, Payload::Value(br#"{"a":}"#.to_vec()));
        let Routed::Message(m) = router().route(&plan(), &input) else { panic!("a fail message") };
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(doc["errors"][0]["rule"], "json", "{doc}");
        assert!(doc["errors"][0]["message"].as_str().unwrap().contains("expected a JSON value"), "{doc}");
    }

    #[test]
    fn undecodable_records_and_tombstones() {
        let undecodable = Payload::Undecodable { reason: "`value` is not base64".into(), raw: Some("%%%".into()) };
        let Routed::Message(m) = router().route(&plan(), &input(undecodable)) else { panic!() };
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(doc["stage"], "decode");
        assert_eq!(doc["errors"][0], json!({"field": null, "rule": "record", "message": "`value` is not base64"}));
        assert_eq!(doc["value"], "%%%");
        assert!(
            matches!(router().route(&plan(), &input(Payload::Tombstone)), Routed::Skipped(o, SkipReason::Tombstone) if o.offset == Some(42))
        );
    }
}
