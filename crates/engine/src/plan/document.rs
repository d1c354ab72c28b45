//! [`Doc`]: a record decoded from a binary format (Avro, Protobuf), as the plan reads it.
//!
//! A JSON record is scanned straight from its text ([`super::extract`]); a record in a binary
//! format is first decoded, by a reader that knows its schema, into this small tree, and the
//! plan's paths are then looked up in the tree by the same trie ([`super::Extractor::walk`]).
//! No JSON text is written in between. The tree borrows what it can: field names from the
//! schema, text from the record's bytes.
//!
//! The tree only has the kinds a mapping can tell apart. A format's richer types arrive already
//! in the form the output writes them: an exact decimal as its decimal text, a timestamp as
//! RFC 3339 text, bytes as base64 text. Which format type becomes which kind is the reader's
//! table (docs/formats.md); an exact decimal keeps a kind of its own so that a `decimal` field
//! knows it was exact, and an untyped field writes it as text, never through a float.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// A decoded record, or a value inside one.
#[derive(Clone, Debug, PartialEq)]
pub enum Doc<'a> {
    /// `null`: an array item or map value that is null. A record field whose union chose `null`
    /// is left out of its object instead, as a JSON record would leave it out.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (every integer width of the format).
    Int(i64),
    /// A floating-point number. Never NaN or infinite: a reader refuses those (JSON has no way to
    /// write them).
    Float(f64),
    /// An exact decimal, as its decimal text (`-12.50`): never a float on the way.
    Decimal(String),
    /// Text.
    Str(Cow<'a, str>),
    /// An array.
    List(Vec<Doc<'a>>),
    /// A record or a map, its members in the record's order.
    Object(Vec<(Cow<'a, str>, Doc<'a>)>),
}

impl Doc<'_> {
    /// The value as JSON: decimals become their text, so nothing is rounded.
    pub fn to_value(&self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Int(i) => Value::Number((*i).into()),
            // A reader never builds a non-finite float; should one slip through, null is what
            // serde_json would write for it.
            Doc::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Doc::Decimal(text) => Value::String(text.clone()),
            Doc::Str(s) => Value::String(s.to_string()),
            Doc::List(items) => Value::Array(items.iter().map(Doc::to_value).collect()),
            Doc::Object(members) => {
                let mut map = Map::new();
                for (name, value) in members {
                    map.insert(name.to_string(), value.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// "a string", "an object"… for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Doc::Null => "null",
            Doc::Bool(_) => "a boolean",
            Doc::Int(_) | Doc::Float(_) => "a number",
            Doc::Decimal(_) => "a decimal",
            Doc::Str(_) => "a string",
            Doc::List(_) => "an array",
            Doc::Object(_) => "an object",
        }
    }

    /// The member `name` of an object.
    pub fn get(&self, name: &str) -> Option<&Self> {
        match self {
            Doc::Object(members) => members.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<'a> Doc<'a> {
    /// Parses JSON text into a tree that borrows its text from `json` wherever it has no escapes
    /// (a mapped record on its way to a binary format: cheaper than a `Value`, which owns every
    /// string and sorts every object). An integer beyond 64 signed bits is kept exact, as
    /// [`Doc::Decimal`] text.
    pub fn from_json(json: &'a [u8]) -> Result<Self, serde_json::Error> {
        let mut reader = serde_json::Deserializer::from_slice(json);
        let doc = serde::Deserialize::deserialize(&mut reader)?;
        reader.end()?;
        Ok(doc)
    }
}

impl<'de> serde::Deserialize<'de> for Doc<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> serde::de::Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Doc::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Doc::Int(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(n).map_or_else(|_| Doc::Decimal(n.to_string()), Doc::Int))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Doc::Float(n))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Doc::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Doc::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Doc::Str(Cow::Owned(s)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Doc::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Doc::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(Key(name)) = map.next_key()? {
            members.push((name, map.next_value()?));
        }
        Ok(Doc::Object(members))
    }
}

/// An object's member name, borrowed from the text when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_stay_exact_text_in_json() {
        let doc = Doc::Object(vec![
            ("amount".into(), Doc::Decimal("12345678901234567890.10".into())),
            ("n".into(), Doc::Int(i64::MIN)),
            ("tags".into(), Doc::List(vec![Doc::Str("a".into()), Doc::Null])),
        ]);
        assert_eq!(
            doc.to_value(),
            serde_json::json!({"amount": "12345678901234567890.10", "n": i64::MIN, "tags": ["a", null]})
        );
        assert_eq!(doc.get("n"), Some(&Doc::Int(i64::MIN)));
        assert_eq!(doc.get("nope"), None);
        assert_eq!(Doc::Float(f64::NAN).to_value(), Value::Null);
    }

    #[test]
    fn json_text_parses_into_a_tree_that_borrows_its_text() {
        let text =
            br#"{"a": "plain", "b": "esc\"aped", "n": -3, "big": 18446744073709551615, "f": 1.5, "l": [null, true]}"#;
        let doc = Doc::from_json(text).unwrap();
        assert!(matches!(doc.get("a"), Some(Doc::Str(Cow::Borrowed("plain")))));
        assert_eq!(doc.get("b"), Some(&Doc::Str("esc\"aped".into())));
        assert_eq!(doc.get("big"), Some(&Doc::Decimal("18446744073709551615".into())));
        assert_eq!(doc.get("l"), Some(&Doc::List(vec![Doc::Null, Doc::Bool(true)])));
        assert_eq!(doc.get("f"), Some(&Doc::Float(1.5)));
        assert!(Doc::from_json(b"{} extra").is_err());
    }
}
