//! The event's JSON read in one pass, borrowing from its text: the shapes serde fills, with
//! visitors that never fail the whole event for one odd record. A record that is not an object,
//! or repeats a field, becomes a [`RecordEntry`] saying so; its fields stay JSON text
//! ([`RawValue`]) until the decoder reads each one; header bytes are read straight into bytes.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// The event's top level.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawEvent<'a> {
    #[serde(default, borrow)]
    pub event_source: Option<Name<'a>>,
    #[serde(default, borrow)]
    pub records: Option<Groups<'a>>,
}

/// The `records` object's groups, every one as the text gives it: a key given twice is two groups
/// (a map would keep one and lose the other's records without a trace).
pub(super) type Groups<'a> = Entries<Name<'a>, Group<'a>>;

/// A JSON object's members in text order, a key given twice kept twice.
#[derive(Debug)]
pub(super) struct Entries<K, V>(pub Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(1));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A group's records (`"topic-partition": [record, …]`), or `None` when it is not a list.
#[derive(Debug)]
pub(super) struct Group<'a>(pub Option<Vec<RecordEntry<'a>>>);

/// One element of a group's list.
#[derive(Debug)]
pub(super) enum RecordEntry<'a> {
    Fields(RawRecord<'a>),
    /// An object that gives a field twice: which one was meant is unknown.
    Repeated {
        field: &'static str,
        raw: String,
    },
    /// Not an object: its kind in words, and its JSON text.
    NotObject {
        kind: &'static str,
        raw: String,
    },
}

/// One record's fields, each kept as its JSON text (`null` reads as absent): a field of the
/// wrong kind is a problem of that record, reported in its fail record.
#[derive(Debug, Default)]
pub(super) struct RawRecord<'a> {
    pub topic: Option<&'a RawValue>,
    pub partition: Option<&'a RawValue>,
    pub offset: Option<&'a RawValue>,
    pub timestamp: Option<&'a RawValue>,
    pub timestamp_type: Option<&'a RawValue>,
    pub key: Option<&'a RawValue>,
    pub headers: Option<&'a RawValue>,
    pub value: Option<&'a RawValue>,
    /// `{"dataFormat": "AVRO", "schemaId": "…"}`, from an event source mapping with a schema
    /// registry: the value's framing was taken off, and this names its schema.
    pub value_schema_metadata: Option<&'a RawValue>,
}

impl<'a> RawRecord<'a> {
    /// The fields read, as the event names them, in the order of [`RawRecord::slot`].
    const FIELDS: [&'static str; 9] = [
        "topic",
        "partition",
        "offset",
        "timestamp",
        "timestampType",
        "key",
        "headers",
        "value",
        "valueSchemaMetadata",
    ];

    fn slot(&mut self, i: usize) -> &mut Option<&'a RawValue> {
        match i {
            0 => &mut self.topic,
            1 => &mut self.partition,
            2 => &mut self.offset,
            3 => &mut self.timestamp,
            4 => &mut self.timestamp_type,
            5 => &mut self.key,
            6 => &mut self.headers,
            7 => &mut self.value,
            _ => &mut self.value_schema_metadata,
        }
    }

    /// The fields read (the last of each repeated one) as a JSON object, for a fail record.
    fn json_text(&self) -> String {
        let values = [
            self.topic,
            self.partition,
            self.offset,
            self.timestamp,
            self.timestamp_type,
            self.key,
            self.headers,
            self.value,
            self.value_schema_metadata,
        ];
        let fields: Vec<String> = Self::FIELDS
            .iter()
            .zip(values)
            .filter_map(|(name, text)| text.map(|text| format!("{name:?}:{}", text.get())))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// A JSON string, borrowed from the text unless it had escapes.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Name<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for NameVisitor<'a> {
            type Value = Name<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
        }
        deserializer.deserialize_str(NameVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Group<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for GroupVisitor<'a> {
            type Value = Group<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of records")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut records = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(record) = seq.next_element()? {
                    records.push(record);
                }
                Ok(Group(Some(records)))
            }
            // Anything else is read (so the event is still checked as JSON) and marked.
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Group(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Group(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Group(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Group(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Group(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Group(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Group(None))
            }
        }
        deserializer.deserialize_any(GroupVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RecordEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntryVisitor<'a> {
            type Value = RecordEntry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut record = RawRecord::default();
                // One bit per field read.
                const _: () = assert!(RawRecord::FIELDS.len() <= 16);
                let (mut seen, mut repeated) = (0u16, None);
                while let Some(name) = map.next_key::<Name<'de>>()? {
                    let Some(i) = RawRecord::FIELDS.iter().position(|f| *f == name.0) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let text: &'de RawValue = map.next_value()?;
                    if seen & (1 << i) != 0 {
                        repeated.get_or_insert(RawRecord::FIELDS[i]);
                    }
                    seen |= 1 << i;
                    // `null` is the same as absent.
                    *record.slot(i) = (text.get() != "null").then_some(text);
                }
                Ok(match repeated {
                    None => RecordEntry::Fields(record),
                    Some(field) => RecordEntry::Repeated { field, raw: record.json_text() },
                })
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    items.push(item);
                }
                Ok(not_object("an array", Value::Array(items)))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(not_object("a boolean", Value::Bool(b)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(not_object("a number", Value::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(not_object("a number", Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Ok(not_object("a number", Value::from(n)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(not_object("a string", Value::from(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(not_object("null", Value::Null))
            }
        }
        deserializer.deserialize_any(EntryVisitor(PhantomData))
    }
}

fn not_object<'a>(kind: &'static str, value: Value) -> RecordEntry<'a> {
    RecordEntry::NotObject { kind, raw: value.to_string() }
}

/// `[{"name": [signed bytes]}, …]` read straight into names and bytes; `None` when the headers
/// have any other shape (the caller then reads them as JSON values to say what is wrong).
pub(super) fn headers(raw: &RawValue) -> Option<Vec<(String, Vec<u8>)>> {
    let entries: Vec<HeaderEntry<'_>> = serde_json::from_str(raw.get()).ok()?;
    Some(
        entries
            .into_iter()
            .flat_map(|entry| entry.0.into_iter().map(|(name, bytes)| (name.0.into_owned(), bytes.0)))
            .collect(),
    )
}

/// One element of the headers' list: its names and bytes as the text gives them, a name given
/// twice kept twice (Kafka headers may repeat a name).
type HeaderEntry<'a> = Entries<Name<'a>, HeaderBytes>;

/// A header's value: a list of bytes, signed as Java has them (`-1` is `0xff`), or a string's bytes
/// (some producers of test events write text).
struct HeaderBytes(Vec<u8>);

impl<'de> Deserialize<'de> for HeaderBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = HeaderBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of bytes")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(n) = seq.next_element::<i64>()? {
                    if !(-128..=255).contains(&n) {
                        return Err(de::Error::custom("not a byte"));
                    }
                    bytes.push(n as u8);
                }
                Ok(HeaderBytes(bytes))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(HeaderBytes(s.as_bytes().to_vec()))
            }
        }
        deserializer.deserialize_any(BytesVisitor)
    }
}
