//! Writing a fail record: its envelope and its headers.

use std::borrow::Cow;

use serde::Serialize;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::names::{
    HEADER_ID, HEADER_MAPPING, HEADER_MESSAGE, HEADER_OFFSET, HEADER_PARTITION, HEADER_STAGE, HEADER_TOPIC,
};
use crate::plan::{FieldError, Stage};
use crate::record::Source;

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
    /// The value's record format when it is not plain JSON (`avro`, `json-schema`): the value is
    /// then kept as base64 of its bytes as they arrived, framing included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_format: Option<&'static str>,
    /// The schema the value names (a Confluent id, a Glue schema version), when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<String>,
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

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl<'a> FailEnvelope<'a> {
    /// The envelope of `source`'s record, failed at `stage` with `errors`; `value` is the record's
    /// value (`None`: a tombstone, or a value that could not be read at all).
    pub fn of(
        source: &'a Source,
        stage: Stage,
        errors: &'a [FieldError],
        mapping: MappingInfo<'a>,
        function: FunctionInfo<'a>,
        value: Option<&'a [u8]>,
    ) -> Self {
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
        FailEnvelope {
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
            mapping,
            function,
            failed_at: now_rfc3339(),
            value_length,
            value,
            value_encoding,
            value_format: None,
            schema_id: None,
        }
    }

    /// The envelope of a value in a registry's format: its bytes kept as base64, whatever they
    /// happen to look like, with the format and the schema they name.
    pub fn in_format(mut self, format: &'static str, schema_id: Option<String>, value: Option<&[u8]>) -> Self {
        if let Some(bytes) = value {
            self.value = Some(EnvelopeValue::Text(BASE64.encode(bytes)));
            self.value_encoding = "base64";
            self.value_length = None;
        }
        self.value_format = Some(format);
        self.schema_id = schema_id;
        self
    }

    /// The envelope as the fail record's value.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the envelope always serialises")
    }
}

/// The fail record's headers: the `lambda-stream.error.*` ones and `lambda-stream.id`, then every
/// header of the source record in its order (a replay of the failure restores them: trace context and the like).
pub fn fail_headers(
    stage: Stage,
    source: &Source,
    errors: &[FieldError],
    mapping_name: &str,
    id: &str,
) -> Vec<(Cow<'static, str>, Vec<u8>)> {
    let mut headers = Vec::with_capacity(7 + source.headers.len());
    headers.extend([
        (HEADER_STAGE.into(), stage.as_str().as_bytes().to_vec()),
        (HEADER_TOPIC.into(), source.topic.as_bytes().to_vec()),
        (HEADER_PARTITION.into(), source.partition.to_string().into_bytes()),
        (HEADER_OFFSET.into(), source.offset.map_or_else(String::new, |o| o.to_string()).into_bytes()),
        (HEADER_MESSAGE.into(), summary(errors).into_bytes()),
        (HEADER_MAPPING.into(), mapping_name.as_bytes().to_vec()),
        (HEADER_ID.into(), id.as_bytes().to_vec()),
    ]);
    // A source header of the id's name (a replayed failure's own) is the one just written.
    headers
        .extend(source.headers.iter().filter(|(k, _)| k != HEADER_ID).map(|(k, v)| (Cow::Owned(k.clone()), v.clone())));
    headers
}

/// The stable id of a source record: the mapping's `dedupe_key:` value when it has one (`key`),
/// else its position, `topic/partition/offset`. A replay reads its records with their original
/// positions, so a replayed record keeps its id either way.
pub fn record_id(key: Option<&str>, source: &Source) -> String {
    match key {
        Some(key) => key.to_string(),
        None => super::names::position(&source.topic, source.partition, source.offset),
    }
}

/// Bytes as text when they are UTF-8, else base64; and which one it is.
pub fn text_or_base64(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (BASE64.encode(bytes), "base64"),
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
