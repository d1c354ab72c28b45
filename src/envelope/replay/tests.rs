use super::*;
use crate::destination::Routed;
use crate::destination::tests::{input, plan, router};
use crate::plan::Failure;
use crate::record::{Payload, Source};
use serde_json::Value;

#[test]
fn binary_values_are_base64_in_the_envelope() {
    let Routed::Message(m) = router().route(&plan(), &input(Payload::Value(vec![0xff, 0xfe, 0x00]))) else { panic!() };
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
        assert_eq!(names[6], crate::envelope::HEADER_ID);
        let after_ours: Vec<(String, Vec<u8>)> =
            m.headers[7..].iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
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
            assert_eq!(doc["value_length"], value.len(), "the embedded record's length, for readers to step over it");
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
        assert_eq!(decode(&doc["source"]["key"], &doc["source"]["key_encoding"]), record.source.key.clone().unwrap());
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
            (rebuilt.source.topic.as_str(), rebuilt.source.partition, rebuilt.source.offset, rebuilt.source.timestamp),
            (record.source.topic.as_str(), record.source.partition, record.source.offset, record.source.timestamp)
        );
    }
    // A source record without headers: the envelope says so, and a replay reads none.
    let mut bare = input(Payload::Value(br#"{"id": 1.5}"#.to_vec()));
    bare.source.headers.clear();
    let Routed::Message(m) = router().route(&plan(), &bare) else { panic!() };
    assert_eq!(m.headers.len(), 7, "the function's own headers only");
    let doc: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(doc["source"]["header_count"], 0);
    assert!(ReplayEnvelope::parse(&m.payload).unwrap().source_had_no_headers());
    // Envelopes without the count (written before it) do not say: their headers are read.
    let mut older: serde_json::Map<String, Value> = serde_json::from_slice(&m.payload).unwrap();
    older["source"].as_object_mut().unwrap().remove("header_count");
    assert!(!ReplayEnvelope::parse(&serde_json::to_vec(&older).unwrap()).unwrap().source_had_no_headers());
    let tombstone = br#"{"source":{"topic":"t","partition":0,"offset":1,"timestamp":null},"stage":"x","value":null}"#;
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
            id: None,
        },
        Failure {
            stage: Stage::Rule,
            errors: vec![
                error(Some("a.b"), "cpf", "tab\there / and \\ back"),
                error(None, "record", "não é"),
                error(Some("a.b"), "cpf", "again"),
            ],
            id: None,
        },
        Failure { stage: Stage::Validate, errors: vec![], id: None },
        Failure { stage: Stage::Validate, errors: vec![error(Some("q\"uoted"), "r", "a \u{1} control")], id: None },
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
                let scanned = ReplayEnvelope::scan(bytes).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(straight, scanned, "{}", String::from_utf8_lossy(bytes));
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
        let e = ReplayEnvelope::parse(text.as_bytes()).unwrap_err().to_string();
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
