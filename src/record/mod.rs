//! Kafka event → records: what a Lambda event (Amazon MSK or self-managed Kafka) carries.
//!
//! The event is `{"eventSource": "aws:kafka" | "SelfManagedKafka", "records": {"topic-partition":
//! [record, …]}, …}`, each record with base64 `key` and `value` and headers as *signed* bytes.
//!
//! Decoding is deliberately lenient per record, strict per field: `aws_lambda_events`' typed
//! `KafkaRecord` requires `headers`, so one record without them makes the whole event fail to
//! deserialize — and Lambda retries that batch forever. Here every record is decoded on its own;
//! a record that cannot be decoded becomes an [`Input`] whose value is a [`Payload::Undecodable`]
//! (it goes to the fail topic with stage `decode`), never an error for the batch.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
mod raw;

use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

use raw::{RawEvent, RawRecord, RecordEntry};

/// Where a record came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    pub topic: String,
    pub partition: i32,
    /// `None` only when the event did not say (the record is then still routed, to the fail topic).
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    pub timestamp_type: Option<String>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The event's grouping key for this record (`topic-partition`), as given.
    pub group: String,
    /// The schema of a value whose registry framing was taken off before it arrived (the
    /// `valueSchemaMetadata` of an event source mapping with a schema registry).
    pub value_schema_id: Option<crate::format::wire::SchemaId>,
    /// The format the record says its value is in, over its route's: a replayed fail record's
    /// (its envelope's `value_format`).
    pub value_format: Option<crate::format::SourceFormat>,
}

impl Source {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }
}

/// A record's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Value(Vec<u8>),
    /// Value null or absent: a Kafka delete marker. Skipped, and counted.
    Tombstone,
    /// The record could not be read; `raw` is what the event held, for the fail record.
    Undecodable {
        reason: String,
        raw: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub source: Source,
    pub payload: Payload,
}

/// An event that is not a Kafka event at all (the whole invocation is refused).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the event has no `records` object; is this a Kafka event?")]
    NoRecords,
    #[error("`records[\"{0}\"]` is not a list of records")]
    BadGroup(String),
}

/// A decoded event: its source kind and its records, in event order (per partition, offset order).
#[derive(Debug)]
pub struct Event {
    pub event_source: Option<String>,
    pub inputs: Vec<Input>,
}

/// Decodes a Lambda Kafka event from its bytes. Only a malformed *event* is an error; malformed
/// *records* are inputs with an undecodable payload.
///
/// The whole event must be JSON, as the Lambda runtime requires before it hands us the event
/// (fuzzing found that deserializing straight into the event's fields skipped, unchecked, fields
/// we do not read; `process --event` then accepted files Lambda would refuse): the text is
/// checked first, then decoded by [`decode_event_text`].
pub fn decode_event(bytes: &[u8]) -> Result<Event, EventError> {
    let checked: &RawValue = serde_json::from_slice(bytes)?;
    decode_event_text(checked.get())
}

/// Decodes an event whose text is known to be JSON (the Lambda runtime checked it). Values,
/// keys and names are read straight from the text; only the base64 payloads are decoded into
/// bytes of their own, and no JSON tree of the event is ever built.
pub fn decode_event_text(text: &str) -> Result<Event, EventError> {
    let raw: RawEvent<'_> = serde_json::from_str(text)?;
    let mut groups = raw.records.ok_or(EventError::NoRecords)?.0;
    // Groups in key order, a repeated key's groups in event order (the sort is stable): every
    // group is read, none replaces another.
    groups.sort_by(|(a, _), (b, _)| a.cmp(b));
    let mut inputs = Vec::with_capacity(groups.iter().map(|(_, g)| g.0.as_ref().map_or(0, Vec::len)).sum());
    for (group, records) in groups {
        let group = group.0;
        let Some(records) = records.0 else { return Err(EventError::BadGroup(group.into_owned())) };
        let (group_topic, group_partition) = split_group(&group);
        for record in records {
            inputs.push(decode_record(record, &group, group_topic, group_partition));
        }
    }
    Ok(Event { event_source: raw.event_source.map(|s| s.0.into_owned()), inputs })
}

/// `"orders-3"` → (`"orders"`, 3); topics may contain `-`, so split at the last one.
fn split_group(group: &str) -> (Option<&str>, Option<i32>) {
    match group.rsplit_once('-') {
        Some((topic, partition)) => match partition.parse() {
            Ok(p) => (Some(topic), Some(p)),
            Err(_) => (None, None),
        },
        None => (None, None),
    }
}

fn decode_record(
    record: RecordEntry<'_>,
    group: &str,
    group_topic: Option<&str>,
    group_partition: Option<i32>,
) -> Input {
    let (reason, raw) = match record {
        RecordEntry::Fields(fields) => return decode_fields(fields, group, group_topic, group_partition),
        RecordEntry::NotObject { kind, raw } => (format!("the record is {kind}, not an object"), raw),
        RecordEntry::Repeated { field, raw } => (format!("the record gives `{field}` more than once"), raw),
    };
    let source = Source {
        topic: group_topic.unwrap_or(group).to_owned(),
        partition: group_partition.unwrap_or(-1),
        group: group.to_owned(),
        ..Source::default()
    };
    Input { source, payload: Payload::Undecodable { reason, raw: Some(raw) } }
}

fn decode_fields(fields: RawRecord<'_>, group: &str, group_topic: Option<&str>, group_partition: Option<i32>) -> Input {
    let mut problems: Vec<String> = Vec::new();
    let topic = match fields.topic.map(|t| (t, text(t))) {
        Some((_, Some(t))) => t.into_owned(),
        Some((other, None)) => {
            problems.push(format!("`topic` is {}", kind(other)));
            group_topic.unwrap_or(group).to_owned()
        }
        None => group_topic.unwrap_or(group).to_owned(),
    };
    let partition = match fields.partition.map(|v| integer(v).and_then(|p| i32::try_from(p).ok())) {
        Some(Some(p)) => p,
        Some(None) => {
            problems.push("`partition` is not a 32-bit integer".into());
            group_partition.unwrap_or(-1)
        }
        None => group_partition.unwrap_or(-1),
    };
    let offset = match fields.offset {
        Some(v) => match integer(v) {
            Some(o) => Some(o),
            None => {
                problems.push("`offset` is not an integer".into());
                None
            }
        },
        None => {
            problems.push("`offset` is missing".into());
            None
        }
    };
    let timestamp = fields.timestamp.and_then(integer);
    let timestamp_type = fields.timestamp_type.and_then(text).map(Cow::into_owned);
    let key = match fields.key.map(|k| (k, text(k))) {
        None => None,
        Some((_, Some(k))) => match BASE64.decode(k.as_bytes()) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                problems.push(format!("`key` is not base64: {e}"));
                Some(k.into_owned().into_bytes())
            }
        },
        Some((other, None)) => {
            problems.push(format!("`key` is {}, not a base64 string", kind(other)));
            None
        }
    };
    let headers = match fields.headers {
        None => Vec::new(),
        Some(h) => match raw::headers(h) {
            Some(headers) => headers,
            // Not the usual shape: read as JSON values to say what is wrong.
            None => match serde_json::from_str::<Value>(h.get()) {
                Ok(h) => decode_headers(h, &mut problems),
                Err(e) => {
                    problems.push(format!("`headers` cannot be read: {e}"));
                    Vec::new()
                }
            },
        },
    };
    let value_schema_id = fields.value_schema_metadata.and_then(|m| schema_metadata(m, &mut problems));
    let source = Source {
        topic,
        partition,
        offset,
        timestamp,
        timestamp_type,
        key,
        headers,
        group: group.to_owned(),
        value_schema_id,
        value_format: None,
    };
    let payload = match fields.value.map(|v| (v, text(v))) {
        None if problems.is_empty() => Payload::Tombstone,
        None => Payload::Undecodable { reason: problems.join("; "), raw: None },
        Some((_, Some(text))) => match BASE64.decode(text.as_bytes()) {
            Ok(bytes) if problems.is_empty() => Payload::Value(bytes),
            Ok(_) => Payload::Undecodable { reason: problems.join("; "), raw: Some(text.into_owned()) },
            Err(e) => {
                problems.push(format!("`value` is not base64: {e}"));
                Payload::Undecodable { reason: problems.join("; "), raw: Some(text.into_owned()) }
            }
        },
        Some((other, None)) => {
            problems.push(format!("`value` is {}, not a base64 string", kind(other)));
            Payload::Undecodable { reason: problems.join("; "), raw: Some(other.get().to_owned()) }
        }
    };
    Input { source, payload }
}

/// The schema id of `valueSchemaMetadata` (`{"dataFormat", "schemaId"}`): a Confluent id in
/// decimal or a Glue schema version's UUID.
fn schema_metadata(raw: &RawValue, problems: &mut Vec<String>) -> Option<crate::format::wire::SchemaId> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        #[serde(rename = "schemaId")]
        schema_id: Option<String>,
    }
    match serde_json::from_str::<Metadata>(raw.get()) {
        Ok(Metadata { schema_id: Some(id) }) => match crate::format::wire::SchemaId::parse(&id) {
            Some(id) => Some(id),
            None => {
                problems.push(format!("`valueSchemaMetadata.schemaId` {id:?} is neither a number nor a UUID"));
                None
            }
        },
        Ok(Metadata { schema_id: None }) => None,
        Err(e) => {
            problems.push(format!("`valueSchemaMetadata` cannot be read: {e}"));
            None
        }
    }
}

/// A JSON string's text: borrowed when it has no escapes (base64 never has), else unescaped.
/// `None` when the value is not a string.
fn text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let json = raw.get();
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(json).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A JSON integer that fits 64 bits (`3.0` is not one, as `Value::as_i64` has it).
fn integer(raw: &RawValue) -> Option<i64> {
    serde_json::from_str(raw.get()).ok()
}

/// Lambda sends headers as `[{"name": [signed bytes]}, …]`; bytes above 127 arrive negative.
fn decode_headers(headers: Value, problems: &mut Vec<String>) -> Vec<(String, Vec<u8>)> {
    let Value::Array(entries) = headers else {
        problems.push(format!("`headers` is {}, not a list", value_kind(&headers)));
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let Value::Object(map) = entry else {
            problems.push(format!("a header is {}, not an object", value_kind(&entry)));
            continue;
        };
        for (name, bytes) in map {
            let decoded = match &bytes {
                Value::Array(items) => items
                    .iter()
                    .map(|b| b.as_i64().filter(|n| (-128..=255).contains(n)).map(|n| n as u8))
                    .collect::<Option<Vec<u8>>>(),
                // Some producers of test events put text; accept it as its bytes.
                Value::String(s) => Some(s.as_bytes().to_vec()),
                _ => None,
            };
            match decoded {
                Some(value) => out.push((name, value)),
                None => problems.push(format!("header `{name}` is not a list of bytes")),
            }
        }
    }
    out
}

/// "a string", "an object"… of a JSON value, by its first character.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn value_kind(value: &Value) -> &'static str {
    crate::plan::json::json_kind(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &[u8]) -> String {
        BASE64.encode(s)
    }

    fn event(records: Value) -> Event {
        decode_event(&serde_json::to_vec(&json!({"eventSource": "aws:kafka", "records": records})).unwrap()).unwrap()
    }

    #[test]
    fn reads_the_schema_id_an_event_source_mapping_with_a_registry_gives() {
        let record = |metadata: Value| json!({"topic": "orders", "partition": 0, "offset": 1, "value": b64(b"body"), "valueSchemaMetadata": metadata});
        let e = event(json!({"orders-0": [
            record(json!({"dataFormat": "AVRO", "schemaId": "42"})),
            record(json!({"dataFormat": "PROTOBUF", "schemaId": "12345678-1234-1234-1234-123456789012"})),
            record(json!({"dataFormat": "AVRO", "schemaId": "forty-two"})),
        ]}));
        // Every field, the metadata given twice: refused, never a panic.
        let repeated = br#"{"eventSource":"aws:kafka","records":{"orders-0":[{"topic":"orders","partition":0,
            "offset":4,"timestamp":1,"timestampType":"CREATE_TIME","key":null,"headers":[],"value":"eA==",
            "valueSchemaMetadata":{"schemaId":"1"},"valueSchemaMetadata":{"schemaId":"2"}}]}}"#;
        let repeated = decode_event(repeated).unwrap();
        use crate::format::wire::SchemaId;
        assert_eq!(e.inputs[0].source.value_schema_id, Some(SchemaId::Confluent(42)));
        assert_eq!(e.inputs[1].source.value_schema_id, SchemaId::parse("12345678-1234-1234-1234-123456789012"));
        assert!(matches!(&e.inputs[2].payload, Payload::Undecodable { reason, .. } if reason.contains("forty-two")));
        assert!(
            matches!(&repeated.inputs[0].payload, Payload::Undecodable { reason, .. } if reason.contains("valueSchemaMetadata"))
        );
    }

    #[test]
    fn decodes_msk_records_with_signed_header_bytes() {
        let e = event(json!({"orders-0": [{
            "topic": "orders", "partition": 0, "offset": 15, "timestamp": 1_700_000_000_000_i64,
            "timestampType": "CREATE_TIME", "key": b64(b"k1"), "value": b64(b"{\"a\":1}"),
            "headers": [{"traceparent": [48, 48]}, {"bin": [-1, -128, 127]}]
        }]}));
        assert_eq!(e.event_source.as_deref(), Some("aws:kafka"));
        let input = &e.inputs[0];
        assert_eq!(input.source.topic, "orders");
        assert_eq!(input.source.offset, Some(15));
        assert_eq!(input.source.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(input.source.header("traceparent"), Some(&b"00"[..]));
        assert_eq!(input.source.header("bin"), Some(&[0xff, 0x80, 0x7f][..]));
        assert_eq!(input.payload, Payload::Value(b"{\"a\":1}".to_vec()));
    }

    #[test]
    fn missing_headers_key_and_null_value_are_fine() {
        let e = event(json!({"my-topic-2": [
            {"topic": "my-topic", "partition": 2, "offset": 1, "timestamp": 0, "value": b64(b"{}")},
            {"topic": "my-topic", "partition": 2, "offset": 2, "timestamp": 0, "value": null},
            {"topic": "my-topic", "partition": 2, "offset": 3, "timestamp": 0}
        ]}));
        assert_eq!(e.inputs[0].payload, Payload::Value(b"{}".to_vec()));
        assert!(e.inputs[0].source.headers.is_empty());
        assert_eq!(e.inputs[0].source.key, None);
        assert_eq!(e.inputs[1].payload, Payload::Tombstone);
        assert_eq!(e.inputs[2].payload, Payload::Tombstone);
    }

    #[test]
    fn per_partition_order_is_kept() {
        let recs: Vec<Value> =
            (0..50).map(|o| json!({"topic": "t", "partition": 1, "offset": o, "value": b64(b"{}")})).collect();
        let e = event(json!({"t-1": recs}));
        let offsets: Vec<i64> = e.inputs.iter().map(|i| i.source.offset.unwrap()).collect();
        assert_eq!(offsets, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn bad_records_become_undecodable_inputs_not_errors() {
        let e = event(json!({"t-0": [
            {"topic": "t", "partition": 0, "offset": 1, "value": "%%% not base64 %%%"},
            {"topic": "t", "partition": 0, "offset": 2, "value": 42},
            {"topic": "t", "partition": 0, "offset": 3, "value": b64(b"{}"), "headers": "nope"},
            "not an object",
            {"topic": "t", "partition": "zero", "offset": 5, "value": b64(b"{}")},
            {"partition": 0, "value": b64(b"{}")}
        ]}));
        assert_eq!(e.inputs.len(), 6);
        let reasons: Vec<String> = e
            .inputs
            .iter()
            .map(|i| match &i.payload {
                Payload::Undecodable { reason, .. } => reason.clone(),
                other => panic!("expected undecodable, got {other:?}"),
            })
            .collect();
        assert!(reasons[0].contains("`value` is not base64"), "{reasons:?}");
        assert!(reasons[1].contains("`value` is a number"), "{reasons:?}");
        assert!(reasons[2].contains("`headers` is a string"), "{reasons:?}");
        assert!(reasons[3].contains("not an object"), "{reasons:?}");
        assert!(reasons[4].contains("`partition` is not a 32-bit integer"), "{reasons:?}");
        assert!(reasons[5].contains("`offset` is missing"), "{reasons:?}");
        assert_eq!(e.inputs[3].source.topic, "t", "position falls back to the group key");
        assert_eq!(e.inputs[5].source.topic, "t");
    }

    #[test]
    fn group_keys_that_are_not_topic_partition_still_work() {
        let e = event(json!({"weird": [{"topic": "real", "partition": 4, "offset": 9, "value": b64(b"{}")}]}));
        assert_eq!(e.inputs[0].source.topic, "real");
        assert_eq!(e.inputs[0].source.partition, 4);
        let e = event(json!({"weird": [{"offset": 9, "value": b64(b"{}")}]}));
        assert_eq!(e.inputs[0].source.topic, "weird");
        assert_eq!(e.inputs[0].source.partition, -1);
        assert_eq!(split_group("my-topic-12"), (Some("my-topic"), Some(12)));
    }

    /// The text is read as JSON, not as bytes: escapes in names are unescaped, a repeated field
    /// makes its record undecodable (which copy was meant?), and fields the decoder does not
    /// read are still checked as JSON.
    #[test]
    fn records_are_read_from_the_event_text_as_json() {
        let text = format!(
            r#"{{"records": {{"t-0": [
                {{"topic": "or\u0064ers", "partition": 0, "offset": 1, "key": "{k}", "value": "{v}", "extra": [1, {{"x": null}}]}},
                {{"topic": "t", "partition": 0, "offset": 2, "value": "{v}", "value": "{v}"}}
            ]}}}}"#,
            k = b64(b"k1"),
            v = b64(br#"{"id": 1}"#)
        );
        let e = decode_event(text.as_bytes()).unwrap();
        assert_eq!(e.inputs[0].source.topic, "orders");
        assert_eq!(e.inputs[0].source.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(e.inputs[0].payload, Payload::Value(br#"{"id": 1}"#.to_vec()));
        assert!(
            matches!(&e.inputs[1].payload, Payload::Undecodable { reason, .. } if reason.contains("gives `value` more than once")),
            "{:?}",
            e.inputs[1].payload
        );
        assert!(decode_event(br#"{"records": {}, "unread": [1, 2,]}"#).is_err(), "unread fields are checked too");
        assert!(decode_event(b"{\"records\": {}, \"unread\": \"\xff\"}").is_err(), "and must be UTF-8");
    }

    /// JSON text may give a key twice; Lambda's grouping is only a grouping, so a repeated
    /// `topic-partition` is two groups, and a header name repeated inside one entry two headers.
    #[test]
    fn a_repeated_group_or_header_name_keeps_every_record_and_header() {
        let v = b64(b"{}");
        let text = format!(
            r#"{{"records": {{"t-0": [{{"offset": 1, "value": "{v}", "headers": [{{"h": [49], "h": [50]}}]}}],
                 "s-0": [{{"offset": 2, "value": "{v}"}}],
                 "t-0": [{{"offset": 3, "value": "{v}"}}, {{"offset": 4, "value": "{v}"}}]}}}}"#
        );
        let e = decode_event(text.as_bytes()).unwrap();
        let offsets: Vec<(&str, i64)> =
            e.inputs.iter().map(|i| (i.source.group.as_str(), i.source.offset.unwrap())).collect();
        assert_eq!(offsets, [("s-0", 2), ("t-0", 1), ("t-0", 3), ("t-0", 4)]);
        assert_eq!(e.inputs[1].source.headers, [("h".to_string(), b"1".to_vec()), ("h".to_string(), b"2".to_vec())]);
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(matches!(decode_event(b"nope"), Err(EventError::NotJson(_))));
        assert!(matches!(decode_event(b"{}"), Err(EventError::NoRecords)));
        assert!(matches!(decode_event(br#"{"records": {"t-0": 5}}"#), Err(EventError::BadGroup(_))));
        let empty = decode_event(br#"{"eventSource": "SelfManagedKafka", "records": {}}"#).unwrap();
        assert!(empty.inputs.is_empty());
    }
}
