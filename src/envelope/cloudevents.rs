//! CloudEvents 1.0 in the Kafka protocol binding, for outputs that say `envelope: cloudevents`.
//!
//! - Binary mode: the attributes are `ce_*` headers and the mapped record is the value, with its
//!   media type in `content-type`. Consumers that do not know CloudEvents read the record as
//!   before.
//! - Structured mode: one `application/cloudevents+json` document holds the attributes and the
//!   record as `data`, for consumers that take whole events.
//!
//! `id` is the record's stable id (`lambda-stream.id`): the same on every retry and replay, which
//! is what CloudEvents asks of a duplicate (same `source` and `id`). `time` is the source
//! record's Kafka timestamp, left out when the record has none.

use std::borrow::Cow;

use crate::plan::EventAttributes;

/// The CloudEvents version written.
pub const SPEC_VERSION: &str = "1.0";

/// The `content-type` of a structured-mode event.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// The attributes of one event: the mapping's `type` and `source`, the host's `id` and `time`.
pub struct Event<'a> {
    pub attributes: &'a EventAttributes,
    pub id: &'a str,
    /// The source record's timestamp, in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// The media type of the mapped record (`application/json`, `application/avro`, …).
    pub content_type: &'static str,
}

impl Event<'_> {
    fn time(&self) -> Option<String> {
        // Kafka writes -1 for a record without a timestamp.
        let at = chrono::DateTime::from_timestamp_millis(self.timestamp_ms.filter(|t| *t >= 0)?)?;
        Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    /// Binary mode: the `ce_*` headers and `content-type`, appended to `headers`.
    pub fn push_headers(&self, headers: &mut Vec<(Cow<'static, str>, Vec<u8>)>) {
        // The event's own attributes only: a source header of those names passed on by the
        // mapping's `headers:` would be a second, contradicting value.
        headers.retain(|(name, _)| !name.starts_with("ce_") && name != "content-type");
        headers.push(("ce_specversion".into(), SPEC_VERSION.into()));
        headers.push(("ce_id".into(), self.id.as_bytes().to_vec()));
        headers.push(("ce_source".into(), self.attributes.source.as_bytes().to_vec()));
        headers.push(("ce_type".into(), self.attributes.event_type.as_bytes().to_vec()));
        if let Some(time) = self.time() {
            headers.push(("ce_time".into(), time.into_bytes()));
        }
        headers.push(("content-type".into(), self.content_type.as_bytes().to_vec()));
    }

    /// Structured mode: the event document around `data`, a JSON value's bytes.
    pub fn structured(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 160);
        let member = |name: &str, value: &str, out: &mut Vec<u8>| {
            out.extend_from_slice(if out.is_empty() { b"{" } else { b"," });
            serde_json::to_writer(&mut *out, name).expect("text serialises");
            out.push(b':');
            serde_json::to_writer(&mut *out, value).expect("text serialises");
        };
        member("specversion", SPEC_VERSION, &mut out);
        member("id", self.id, &mut out);
        member("source", &self.attributes.source, &mut out);
        member("type", &self.attributes.event_type, &mut out);
        if let Some(time) = self.time() {
            member("time", &time, &mut out);
        }
        member("datacontenttype", "application/json", &mut out);
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn attributes() -> EventAttributes {
        EventAttributes { event_type: "com.example.payment".into(), source: "/payments/\"br\"".into() }
    }

    #[test]
    fn binary_mode_puts_the_attributes_in_ce_headers() {
        let attributes = attributes();
        let event = Event {
            attributes: &attributes,
            id: "orders/0/7",
            timestamp_ms: Some(1_700_000_000_123),
            content_type: "application/json",
        };
        let mut headers = Vec::new();
        event.push_headers(&mut headers);
        let text: Vec<(String, String)> =
            headers.into_iter().map(|(k, v)| (k.into_owned(), String::from_utf8(v).unwrap())).collect();
        let expected = [
            ("ce_specversion", "1.0"),
            ("ce_id", "orders/0/7"),
            ("ce_source", "/payments/\"br\""),
            ("ce_type", "com.example.payment"),
            ("ce_time", "2023-11-14T22:13:20.123Z"),
            ("content-type", "application/json"),
        ];
        assert_eq!(text, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn structured_mode_is_one_json_document_with_the_record_as_data() {
        let attributes = attributes();
        let event = Event { attributes: &attributes, id: "e-1", timestamp_ms: None, content_type: "application/json" };
        let doc: Value = serde_json::from_slice(&event.structured(br#"{"a":1}"#)).unwrap();
        assert_eq!(
            doc,
            json!({"specversion": "1.0", "id": "e-1", "source": "/payments/\"br\"", "type": "com.example.payment", "datacontenttype": "application/json", "data": {"a": 1}}),
            "no timestamp: no `time`"
        );
    }
}
