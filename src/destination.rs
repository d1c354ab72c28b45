//! Where each record goes: `(Source, Outcome)` → the [`OutMessage`]s for its [`Destination`]: the
//! ok topic, the topics of the mapping's `outputs:` its content chose (one message per output, a
//! CloudEvent where the output says so), or the fail topic. (A *route*, elsewhere, is a source
//! topic with its own mapping: see [`Pipeline`](crate::pipeline::Pipeline).)
//!
//! A fail record's value and headers are the [`envelope`](crate::envelope)'s.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

use crate::envelope::cloudevents::{Event, STRUCTURED_CONTENT_TYPE};
use crate::envelope::{FailEnvelope, FunctionInfo, HEADER_ID, HEADER_OK_MAPPING, MappingInfo, fail_headers, record_id};
use crate::format::wire::SchemaId;
use crate::format::{BatchSchemas, SourceFormat};
use crate::plan::{CloudEventsMode, Failure, Mapped, Outcome, OutputFormat, Plan};
use crate::record::{Input, Payload, Source};

/// A message to produce, with the position of the input it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMessage {
    pub destination: Destination,
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// Header names are mostly this crate's own constants: borrowed, not copied per message.
    pub headers: Vec<(Cow<'static, str>, Vec<u8>)>,
    /// The input record's position (for logs, accounting and partial-batch responses).
    pub origin: Origin,
    /// Why the record failed, exactly when `destination` is `Fail`: kept as data next to the envelope
    /// written from it, so logs and the dry run never parse the envelope back.
    pub failure: Option<Failure>,
    /// The mapping's output (`outputs:`) an ok message goes to, for metrics and the dry run.
    pub output: Option<Arc<str>>,
}

/// Which of its topics a message goes to (`ok` or `fail` in logs, metrics and JSON output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
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
    /// A record the mapping's `outputs:` send to several outputs: one ok message each. The record
    /// counts once (`ok`); each message is delivered and accounted for on its own.
    Fanout(Vec<OutMessage>),
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
    /// The messages to produce: none for a skipped input, several for a record fanned out.
    pub fn messages(&self) -> &[OutMessage] {
        match self {
            Routed::Message(m) => std::slice::from_ref(m),
            Routed::Fanout(messages) => messages,
            Routed::Skipped(..) => &[],
        }
    }

    /// Moves the messages to produce onto `out`.
    pub fn append_to(self, out: &mut Vec<OutMessage>) {
        match self {
            Routed::Message(m) => out.push(m),
            Routed::Fanout(messages) => out.extend(messages),
            Routed::Skipped(..) => {}
        }
    }

    /// The first message: the fail message of a failed record, the ok message of a mapped one.
    pub fn first(&self) -> Option<&OutMessage> {
        self.messages().first()
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

impl Router {
    /// Maps and routes one input: the single path shared by the Lambda handler, `process` and
    /// the worker.
    pub fn route(&self, plan: &Plan, input: &Input) -> Routed {
        self.route_format(plan, input, SourceFormat::Json, &BatchSchemas::none())
    }

    /// [`Router::route`] for a value in `format`, read with the batch's `schemas`.
    pub fn route_format(&self, plan: &Plan, input: &Input, format: SourceFormat, schemas: &BatchSchemas) -> Routed {
        match &input.payload {
            Payload::Tombstone => Routed::Skipped(Origin::of(&input.source), SkipReason::Tombstone),
            Payload::Value(bytes) => {
                let applied = schemas.apply(plan, format, bytes, input.source.value_schema_id);
                match applied.outcome {
                    Outcome::Mapped(m) if m.deliveries.is_empty() => {
                        Routed::Message(self.ok_message(plan, &input.source, m.value, m.key, m.id.as_deref()))
                    }
                    Outcome::Mapped(m) => self.output_messages(plan, &input.source, m),
                    Outcome::Failed(f) if format == SourceFormat::Json => {
                        Routed::Message(self.fail_message(Some(plan), &input.source, f, Some(bytes)))
                    }
                    Outcome::Failed(f) => Routed::Message(self.fail_message_in_format(
                        Some(plan),
                        &input.source,
                        f,
                        Some(bytes),
                        format,
                        applied.schema,
                    )),
                    Outcome::Dropped => Routed::Skipped(Origin::of(&input.source), SkipReason::Dropped),
                }
            }
            Payload::Undecodable { reason, raw } => {
                let failure = Failure::of_record("record", reason.clone());
                let raw = raw.as_deref().map(str::as_bytes);
                Routed::Message(self.fail_message(Some(plan), &input.source, failure, raw))
            }
        }
    }

    fn ok_message(
        &self,
        plan: &Plan,
        source: &Source,
        value: Vec<u8>,
        key: Option<Vec<u8>>,
        id: Option<&str>,
    ) -> OutMessage {
        OutMessage {
            destination: Destination::Ok,
            topic: self.topic_ok.clone(),
            key: key.or_else(|| source.key.clone()),
            payload: value,
            headers: ok_headers(plan, source, record_id(id, source)),
            origin: Origin::of(source),
            failure: None,
            output: None,
        }
    }

    /// The messages of a record the mapping's `outputs:` route: one per output it chose, each
    /// with that output's topic, key and value, as a CloudEvent where the output says so.
    fn output_messages(&self, plan: &Plan, source: &Source, mapped: Mapped) -> Routed {
        let Mapped { value, key, id, deliveries } = mapped;
        let id = record_id(id.as_deref(), source);
        // The id again for the CloudEvents `id`, copied only when an output writes an event.
        let event_id = if deliveries.iter().any(|d| d.event.is_some()) { id.clone() } else { String::new() };
        let mut headers = Some(ok_headers(plan, source, id));
        let mut origin = Some(Origin::of(source));
        let mut record_key = Some(key.or_else(|| source.key.clone()));
        // The record's whole value, its headers and its origin are moved into the last message
        // that needs them, copied for the others: a record that goes to one output copies nothing.
        let mut sharing = deliveries.iter().filter(|d| d.value.is_none()).count();
        let mut whole = Some(value);
        let count = deliveries.len();
        let mut messages = Vec::with_capacity(count);
        for (i, delivery) in deliveries.into_iter().enumerate() {
            let last = i + 1 == count;
            let output = &plan.outputs()[delivery.output];
            let payload = match delivery.value {
                Some(own) => own,
                None => {
                    sharing -= 1;
                    if sharing == 0 { whole.take().unwrap_or_default() } else { whole.clone().unwrap_or_default() }
                }
            };
            let mut message = OutMessage {
                destination: Destination::Ok,
                topic: output.topics()[delivery.topic].clone(),
                key: match delivery.key {
                    Some(own) => Some(own),
                    None => take_or_clone(&mut record_key, last).flatten(),
                },
                payload,
                headers: take_or_clone(&mut headers, last).unwrap_or_default(),
                origin: take_or_clone(&mut origin, last).unwrap_or_else(|| Origin::of(source)),
                failure: None,
                output: Some(Arc::clone(output.shared_name())),
            };
            if let (Some(mode), Some(attributes)) = (output.cloud_events(), &delivery.event) {
                let event = Event {
                    attributes,
                    id: &event_id,
                    timestamp_ms: source.timestamp,
                    content_type: media_type(plan.output().format),
                };
                match mode {
                    CloudEventsMode::Binary => event.push_headers(&mut message.headers),
                    CloudEventsMode::Structured => {
                        message.payload = event.structured(&message.payload);
                        message.headers.retain(|(name, _)| name != "content-type");
                        message.headers.push(("content-type".into(), STRUCTURED_CONTENT_TYPE.into()));
                    }
                }
            }
            if count == 1 {
                return Routed::Message(message);
            }
            messages.push(message);
        }
        Routed::Fanout(messages)
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
        self.fail_message_with(plan, source, failure, value, |envelope| envelope)
    }

    /// [`Router::fail_message`] for a value in a registry's format: its envelope keeps the bytes
    /// as base64 with the format and the schema id, so `failures` shows them and a replay reads
    /// them again.
    pub fn fail_message_in_format(
        &self,
        plan: Option<&Plan>,
        source: &Source,
        failure: Failure,
        value: Option<&[u8]>,
        format: SourceFormat,
        schema: Option<SchemaId>,
    ) -> OutMessage {
        self.fail_message_with(plan, source, failure, value, |envelope| {
            envelope.in_format(format.as_str(), schema.map(|id| id.to_string()), value)
        })
    }

    fn fail_message_with(
        &self,
        plan: Option<&Plan>,
        source: &Source,
        failure: Failure,
        value: Option<&[u8]>,
        finish: impl FnOnce(FailEnvelope<'_>) -> FailEnvelope<'_>,
    ) -> OutMessage {
        let (stage, errors) = (failure.stage, failure.errors.as_slice());
        let mapping_name = plan.map_or("", Plan::name);
        let mapping = MappingInfo { name: mapping_name, version: plan.map_or("", Plan::version) };
        let function = FunctionInfo { name: &self.function_name, env: &self.function_env };
        let payload = finish(FailEnvelope::of(source, stage, errors, mapping, function, value)).to_json();
        let headers = fail_headers(stage, source, errors, mapping_name, &record_id(failure.id.as_deref(), source));
        OutMessage {
            destination: Destination::Fail,
            topic: self.topic_fail.clone(),
            key: source.key.clone(),
            payload,
            headers,
            origin: Origin::of(source),
            failure: Some(failure),
            output: None,
        }
    }
}

/// Messages per output of the mapping's `outputs:`, in order of first appearance: a record fanned
/// out to three outputs counts once in each.
pub fn output_counts<'a>(messages: impl Iterator<Item = &'a OutMessage>) -> Vec<(&'a str, u64)> {
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for output in messages.filter_map(|m| m.output.as_deref()) {
        // A mapping has a handful of outputs: a short list beats a map.
        match counts.iter_mut().find(|(name, _)| *name == output) {
            Some((_, n)) => *n += 1,
            None => counts.push((output, 1)),
        }
    }
    counts
}

/// What `held` holds: moved out for its `last` user, copied for the others.
fn take_or_clone<T: Clone>(held: &mut Option<T>, last: bool) -> Option<T> {
    if last { held.take() } else { held.clone() }
}

/// The headers of an ok message: the source headers the mapping's `headers:` pass on, the
/// mapping's identity, and the record's stable id.
fn ok_headers(plan: &Plan, source: &Source, id: String) -> Vec<(Cow<'static, str>, Vec<u8>)> {
    let mut headers: Vec<(Cow<'static, str>, Vec<u8>)> = Vec::with_capacity(plan.headers().len() + 2);
    headers.extend(
        plan.headers()
            .iter()
            .filter(|name| *name != HEADER_ID)
            .filter_map(|name| source.header(name).map(|v| (name.clone().into(), v.to_vec()))),
    );
    headers.push((HEADER_OK_MAPPING.into(), plan.identity().into_bytes()));
    headers.push((HEADER_ID.into(), id.into_bytes()));
    headers
}

/// The media type of a mapped record written in `format`, as CloudEvents' `content-type` says it.
fn media_type(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Json => "application/json",
        OutputFormat::Avro => "application/avro",
        OutputFormat::Protobuf => "application/protobuf",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::envelope::{HEADER_MESSAGE, HEADER_OFFSET, HEADER_PARTITION, HEADER_STAGE, HEADER_TOPIC};
    use serde_json::{Value, json};

    pub(crate) fn plan() -> Plan {
        crate::plan::load_str(
            "version: 1\nname: m\nheaders: [traceparent]\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n",
        )
        .unwrap()
        .1
    }

    pub(crate) fn router() -> Router {
        Router {
            topic_ok: "ok".into(),
            topic_fail: "fail".into(),
            function_name: "fn".into(),
            function_env: "dev".into(),
        }
    }

    pub(crate) fn input(value: Payload) -> Input {
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
        assert_eq!(m.destination, Destination::Ok);
        assert_eq!(m.topic, "ok");
        assert_eq!(m.key.as_deref(), Some(&b"k-1"[..]));
        assert_eq!(m.payload, br#"{"id":7}"#);
        // The mapping's identity: its name and the first 12 hex digits of its text's SHA-256.
        let identity = format!("m@{}", plan().version());
        assert_eq!(plan().version().len(), 12);
        assert_eq!(
            m.headers,
            vec![
                ("traceparent".into(), b"00-abc".to_vec()),
                (HEADER_OK_MAPPING.into(), identity.into_bytes()),
                (HEADER_ID.into(), b"orders/3/42".to_vec()),
            ]
        );
        assert_eq!(m.origin.offset, Some(42));
    }

    #[test]
    fn a_dedupe_key_is_the_id_of_the_ok_and_the_fail_message_alike() {
        let (_, plan) = crate::plan::load_str(
            "version: 1\nname: m\ndedupe_key: $.event_id\nfields:\n  - {target: id, source: $.id, type: integer}\n",
        )
        .unwrap();
        let id_of = |value: &[u8]| {
            let Routed::Message(m) = router().route(&plan, &input(Payload::Value(value.to_vec()))) else { panic!() };
            let id = m.headers.iter().find(|(k, _)| k == HEADER_ID).map(|(_, v)| String::from_utf8(v.clone()).unwrap());
            (m.destination, id.unwrap())
        };
        assert_eq!(id_of(br#"{"event_id": "e-7", "id": 1}"#), (Destination::Ok, "e-7".to_string()));
        assert_eq!(id_of(br#"{"event_id": "e-7", "id": "x"}"#), (Destination::Fail, "e-7".to_string()));
        assert_eq!(id_of(br#"{"event_id": 42, "id": 1}"#), (Destination::Ok, "42".to_string()));
        // Without a value for the key, the record's position is its id.
        assert_eq!(id_of(br#"{"id": 1}"#), (Destination::Ok, "orders/3/42".to_string()));
        assert_eq!(id_of(b"not json"), (Destination::Fail, "orders/3/42".to_string()));
        let refused = crate::plan::load_str("version: 1\nname: m\ndedupe_key: $.a == 1\nfields: []\n").unwrap_err();
        assert!(refused.iter().any(|d| d.message.contains("`dedupe_key` is an id")), "{refused:?}");
    }

    #[test]
    fn fail_records_carry_the_envelope_and_headers() {
        let Routed::Message(m) = router().route(&plan(), &input(Payload::Value(br#"{"id": "x"}"#.to_vec()))) else {
            panic!()
        };
        assert_eq!(m.destination, Destination::Fail);
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
        // The same id the record's ok message would carry: its position.
        assert_eq!(header(HEADER_ID).as_deref(), Some("orders/3/42"));
        assert!(header(HEADER_MESSAGE).unwrap().starts_with("id: expected an integer"), "{:?}", header(HEADER_MESSAGE));
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

    const OUTPUTS: &str = r#"version: 1
name: pay
fields:
  - {target: id, source: $.id, type: integer, required: true}
  - {target: region, source: $.region, type: string}
outputs:
  - {name: audit, all: true, topic: pay.audit}
  - name: regional
    when: region != null
    topic: '"pay." + region'
    topics: [pay.br, pay.us]
    key: id
    fields: [id]
    envelope: cloudevents
    type: com.example.pay
    source: {expr: '"/pay/" + region'}
  - {name: rest, topic: pay.rest, envelope: cloudevents-structured, type: com.example.pay, source: /pay}
"#;

    fn header<'m>(m: &'m OutMessage, name: &str) -> Option<&'m str> {
        m.headers.iter().find(|(k, _)| k == name).map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn a_record_fanned_out_is_one_message_per_output_each_with_its_topic_key_value_and_envelope() {
        let (_, plan) = crate::plan::load_str(OUTPUTS).unwrap();
        let routed = router().route(&plan, &input(Payload::Value(br#"{"id": 7, "region": "br"}"#.to_vec())));
        let Routed::Fanout(messages) = &routed else { panic!("{routed:?}") };
        let topics: Vec<(&str, Option<&str>)> =
            messages.iter().map(|m| (m.topic.as_str(), m.output.as_deref())).collect();
        assert_eq!(topics, [("pay.audit", Some("audit")), ("pay.br", Some("regional"))]);
        let (audit, regional) = (&messages[0], &messages[1]);
        assert_eq!(audit.payload, br#"{"id":7,"region":"br"}"#);
        assert_eq!(audit.key.as_deref(), Some(&b"k-1"[..]), "the source key: the output has none of its own");
        assert_eq!(header(audit, "ce_id"), None);
        assert_eq!(regional.payload, br#"{"id":7}"#);
        assert_eq!(regional.key.as_deref(), Some(&b"7"[..]));
        for (name, value) in [
            ("ce_specversion", "1.0"),
            ("ce_id", "orders/3/42"),
            ("ce_source", "/pay/br"),
            ("ce_type", "com.example.pay"),
            ("ce_time", "2023-11-14T22:13:20.000Z"),
            ("content-type", "application/json"),
            (HEADER_ID, "orders/3/42"),
        ] {
            assert_eq!(header(regional, name), Some(value), "{name}");
        }
        assert!(messages.iter().all(|m| m.destination == Destination::Ok && m.origin.offset == Some(42)));
    }

    #[test]
    fn a_structured_cloud_event_holds_the_record_as_data_and_a_route_failure_goes_to_the_fail_topic() {
        let (_, plan) = crate::plan::load_str(OUTPUTS).unwrap();
        let routed = router().route(&plan, &input(Payload::Value(br#"{"id": 8}"#.to_vec())));
        let Routed::Fanout(messages) = &routed else { panic!("{routed:?}") };
        let rest = &messages[1];
        assert_eq!(rest.topic, "pay.rest");
        assert_eq!(header(rest, "content-type"), Some("application/cloudevents+json; charset=UTF-8"));
        let event: Value = serde_json::from_slice(&rest.payload).unwrap();
        assert_eq!(
            event,
            json!({"specversion": "1.0", "id": "orders/3/42", "source": "/pay", "type": "com.example.pay", "time": "2023-11-14T22:13:20.000Z", "datacontenttype": "application/json", "data": {"id": 8}})
        );
        let routed = router().route(&plan, &input(Payload::Value(br#"{"id": 9, "region": "fr"}"#.to_vec())));
        let m = routed.first().unwrap();
        assert_eq!((m.destination, m.topic.as_str(), m.output.as_deref()), (Destination::Fail, "fail", None));
        let doc: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(doc["stage"], "route");
        assert_eq!(header(m, HEADER_ID), Some("orders/3/42"));
        assert!(doc["errors"][0]["message"].as_str().unwrap().contains("computed `pay.fr`"), "{doc}");
    }

    #[test]
    fn output_counts_count_each_message_of_a_fanout() {
        let (_, plan) = crate::plan::load_str(OUTPUTS).unwrap();
        let routed: Vec<Routed> = [&br#"{"id": 1, "region": "us"}"#[..], br#"{"id": 2}"#, br#"{"id": "x"}"#]
            .iter()
            .map(|v| router().route(&plan, &input(Payload::Value(v.to_vec()))))
            .collect();
        let counts = output_counts(routed.iter().flat_map(Routed::messages));
        assert_eq!(counts, [("audit", 2), ("regional", 1), ("rest", 1)]);
    }
}
