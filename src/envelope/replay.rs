//! Reading an envelope back for a replay: the source record, rebuilt.

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::EnvelopeError;
use super::names::{ERROR_HEADER_PREFIX, HEADER_ID, position};
use crate::plan::members::{self, Member, Members, MembersReader, MembersReaderBuilder, Rows, WrongType};
use crate::record::{Input, Payload, Source};

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
    /// The value's record format, when not JSON (`avro`, `json-schema`).
    value_format: Option<Cow<'a, str>>,
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

/// The members a replay reads, named once.
struct EnvelopeReader {
    members: MembersReader,
    topic: Member,
    partition: Member,
    offset: Member,
    timestamp: Member,
    key: Member,
    key_encoding: Member,
    header_count: Member,
    value_encoding: Member,
    value_format: Member,
    value: Member,
    errors: Rows,
}

fn envelope_reader() -> &'static EnvelopeReader {
    static READER: OnceLock<EnvelopeReader> = OnceLock::new();
    READER.get_or_init(|| {
        let mut b = MembersReaderBuilder::default();
        EnvelopeReader {
            topic: b.member(&["source", "topic"]),
            partition: b.member(&["source", "partition"]),
            offset: b.member(&["source", "offset"]),
            timestamp: b.member(&["source", "timestamp"]),
            key: b.member(&["source", "key"]),
            key_encoding: b.member(&["source", "key_encoding"]),
            header_count: b.member(&["source", "header_count"]),
            value_encoding: b.member(&["value_encoding"]),
            value_format: b.member(&["value_format"]),
            // Envelopes written before `value_length` are read too: their record is delimited.
            value: b.text_with_length(&["value"], &["value_length"]),
            errors: b.rows(&["errors"], &[&["field"], &["rule"]]),
            members: b.build(),
        }
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
            // The layout this reads ends at `value_encoding`: a value in another format is read
            // by the scanner.
            value_format: None,
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
            self.pos = members::next_special_byte(self.bytes, self.pos);
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
        self.pos = members::end_by_length(self.bytes, start, length)?;
        std::str::from_utf8(&self.bytes[start..self.pos]).ok()
    }
}

/// The reader's answer for `member`, named in the error.
fn named<T>(member: &'static str, read: Result<T, WrongType>) -> Result<T, EnvelopeError> {
    read.map_err(|wrong| EnvelopeError::WrongType {
        member,
        expected: match wrong {
            WrongType::NotText => "text",
            WrongType::NotInteger => "an integer",
            WrongType::NotArray => "an array",
        },
    })
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
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        match OwnLayout::read(bytes) {
            Some(envelope) => Ok(envelope),
            None => Self::scan(bytes),
        }
    }

    /// Any envelope, whatever its layout, through the scanner's door.
    fn scan(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let reader = envelope_reader();
        let mut m: Members<'a> = reader.members.read(bytes)?;
        // Both are found only inside a `source` object: without one, the envelope is refused here.
        let source = ReplaySource {
            topic: named("source.topic", m.text(reader.topic))?.ok_or(EnvelopeError::Shape("no `source.topic`"))?,
            partition: named("source.partition", m.integer(reader.partition))?
                .and_then(|p| i32::try_from(p).ok())
                .ok_or(EnvelopeError::Shape("no `source.partition`, a partition number"))?,
            offset: named("source.offset", m.integer(reader.offset))?,
            timestamp: named("source.timestamp", m.integer(reader.timestamp))?,
            key: named("source.key", m.text(reader.key))?,
            key_encoding: named("source.key_encoding", m.text(reader.key_encoding))?,
            header_count: named("source.header_count", m.integer(reader.header_count))?,
        };
        let value = m.json_text(reader.value);
        let mut errors = Vec::new();
        let rows = m.text_rows(reader.errors).map_err(|wrong| match wrong {
            WrongType::NotArray => EnvelopeError::Shape("`errors` is not an array"),
            _ => EnvelopeError::Shape("`errors[]` holds a `field` or `rule` that is not text"),
        })?;
        for row in rows {
            let [field, rule]: [Option<Cow<'a, str>>; 2] = row.try_into().expect("two columns");
            errors.push(ErrorKey { field, rule: rule.ok_or(EnvelopeError::Shape("an error without its `rule`"))? });
        }
        let value_encoding = named("value_encoding", m.text(reader.value_encoding))?;
        let value_format = named("value_format", m.text(reader.value_format))?;
        Ok(ReplayEnvelope { source, errors, value, value_encoding, value_format })
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
    /// A value in a format this program does not know is not rebuilt (`None`).
    pub fn into_input<'h>(self, fail_headers: impl IntoIterator<Item = (&'h [u8], &'h [u8])>) -> Option<Input> {
        let value_format = match self.value_format.as_deref() {
            None => None,
            Some(format) => Some(format.parse::<crate::format::SourceFormat>().ok()?),
        };
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
            // Ours, not the source record's: the replayed messages get their own again.
            .filter(|(k, _)| !k.starts_with(ERROR_HEADER_PREFIX.as_bytes()) && *k != HEADER_ID.as_bytes())
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
                value_format,
                ..Source::default()
            },
            payload,
        })
    }
}

#[cfg(test)]
mod tests;
