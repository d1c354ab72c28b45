//! [`Val`]: a field's value while one record is mapped.
//!
//! Strings are the bulk of a record, so they get their own variant that can borrow: straight from
//! the record's bytes when the JSON string has no escapes, or from the plan (constants, defaults,
//! `map` tables). Transforms that change nothing (`trim` of trimmed text, `lowercase` of lower-case
//! text) hand the borrow on. A typical record is mapped with few allocations besides its output.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value;

use super::json::{json_equal, json_kind};

#[derive(Debug, PartialEq)]
pub enum Val<'a> {
    /// Text straight from the record: it had no escapes there, so it needs none in the output.
    Raw(&'a str),
    Str(Cow<'a, str>),
    /// The matches of a wildcard path (`$.items[*].sku`), an array kept as the values were found
    /// (mostly text borrowed from the record) until it is written: building a `Value` array would
    /// copy every item only to serialise and free it again.
    List(Vec<Item<'a>>),
    /// A [`Val::List`] lent out by [`Val::reborrow`].
    Items(&'a [Item<'a>]),
    /// Any other JSON value but a string.
    Other(Cow<'a, Value>),
    /// The objects an `items:` field mapped from an array: their output already written, their
    /// fields kept for the expressions that read them (`items.map(i, i.total_cents)`).
    Rows(Box<Rows<'a>>),
    /// The array an `items:` field reads, as the extractor scanned it: each item's values found
    /// by the item fields' own paths, no `Value` tree built. Only its `items:` field sees it (it
    /// has a slot of its own), and turns it into [`Val::Rows`].
    /// Shared, not boxed: the field's state borrows it from the slot without copying the items.
    Array(Rc<ScannedArray<'a>>),
}

/// An array scanned item by item: its JSON text, and the item fields' slots of every item, one
/// item after the other.
#[derive(Clone, Debug, PartialEq)]
pub struct ScannedArray<'a> {
    pub text: &'a str,
    pub len: usize,
    pub slots: Vec<Option<Val<'a>>>,
}

impl<'a> ScannedArray<'a> {
    fn to_value(&self) -> Value {
        // The scanner checked the text as JSON; a number `serde_json` cannot hold becomes null.
        serde_json::from_str(self.text).unwrap_or(Value::Null)
    }
}

/// A field's value during one record's evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldState<'a> {
    Absent,
    Present(Val<'a>),
    /// It already has errors; rules and expressions do not pile more on it.
    Failed,
}

/// What an `items:` field made of an array: the JSON array, and each item's field states.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows<'a> {
    pub json: Vec<u8>,
    pub rows: Vec<Box<[FieldState<'a>]>>,
}

impl Clone for Val<'_> {
    /// Copies of borrowed text — most values — are built in place: as a call, the copy came back
    /// through memory and was moved again with loads that straddle the stores that wrote it,
    /// which stalls.
    #[inline(always)]
    fn clone(&self) -> Self {
        match self {
            Val::Raw(s) => Val::Raw(s),
            Val::Str(Cow::Borrowed(s)) => Val::Str(Cow::Borrowed(s)),
            Val::Items(items) => Val::Items(items),
            other => other.clone_owned(),
        }
    }
}

impl Val<'_> {
    #[inline(never)]
    fn clone_owned(&self) -> Self {
        match self {
            Val::Raw(s) => Val::Raw(s),
            Val::Str(s) => Val::Str(s.clone()),
            Val::List(items) => Val::List(items.clone()),
            Val::Items(items) => Val::Items(items),
            Val::Other(v) => Val::Other(v.clone()),
            Val::Rows(rows) => Val::Rows(rows.clone()),
            Val::Array(array) => Val::Array(array.clone()),
        }
    }
}

impl<'a> Val<'a> {
    pub fn borrowed(value: &'a Value) -> Self {
        match value {
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            other => Val::Other(Cow::Borrowed(other)),
        }
    }

    pub fn owned(value: Value) -> Self {
        match value {
            Value::String(s) => Val::Str(Cow::Owned(s)),
            other => Val::Other(Cow::Owned(other)),
        }
    }

    pub fn text(s: String) -> Self {
        Val::Str(Cow::Owned(s))
    }

    /// The same value, borrowed from `self` (cheap: no copy of the contents).
    pub fn reborrow(&self) -> Val<'_> {
        match self {
            Val::Raw(s) => Val::Raw(s),
            Val::Str(s) => Val::Str(Cow::Borrowed(s)),
            Val::List(items) => Val::Items(items),
            Val::Items(items) => Val::Items(items),
            Val::Other(v) => Val::Other(Cow::Borrowed(v)),
            Val::Rows(rows) => Val::Rows(rows.clone()),
            Val::Array(array) => Val::Array(array.clone()),
        }
    }

    /// The items of a list of matches.
    pub fn items(&self) -> Option<&[Item<'a>]> {
        match self {
            Val::List(items) => Some(items),
            Val::Items(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Raw(s) => Some(s),
            Val::Str(s) => Some(s),
            Val::List(_) | Val::Items(_) | Val::Other(_) | Val::Rows(_) | Val::Array(_) => None,
        }
    }

    /// The JSON value, if this is neither a string nor a list of matches.
    pub fn json(&self) -> Option<&Value> {
        match self {
            Val::Raw(_) | Val::Str(_) | Val::List(_) | Val::Items(_) | Val::Rows(_) | Val::Array(_) => None,
            Val::Other(v) => Some(v),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Other(v) if v.is_null())
    }

    pub fn to_value(&self) -> Value {
        match self {
            Val::Raw(s) => Value::String(s.to_string()),
            Val::Str(s) => Value::String(s.to_string()),
            Val::List(items) => Value::Array(items.iter().map(Item::to_value).collect()),
            Val::Items(items) => Value::Array(items.iter().map(Item::to_value).collect()),
            Val::Other(v) => v.as_ref().clone(),
            Val::Rows(rows) => serde_json::from_slice(&rows.json).expect("rows are written as valid JSON"),
            Val::Array(array) => array.to_value(),
        }
    }

    pub fn into_value(self) -> Value {
        match self {
            Val::Raw(s) => Value::String(s.to_owned()),
            Val::Str(s) => Value::String(s.into_owned()),
            Val::List(items) => Value::Array(items.into_iter().map(Item::into_value).collect()),
            Val::Items(items) => Value::Array(items.iter().map(Item::to_value).collect()),
            Val::Other(v) => v.into_owned(),
            Val::Rows(rows) => serde_json::from_slice(&rows.json).expect("rows are written as valid JSON"),
            Val::Array(array) => array.to_value(),
        }
    }

    /// The number of items of an array value, whatever its form.
    pub fn array_len(&self) -> Option<usize> {
        match self {
            Val::List(items) => Some(items.len()),
            Val::Items(items) => Some(items.len()),
            Val::Rows(rows) => Some(rows.rows.len()),
            Val::Array(array) => Some(array.len),
            Val::Other(v) => v.as_array().map(Vec::len),
            Val::Raw(_) | Val::Str(_) => None,
        }
    }

    /// "a string", "a number"… for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Val::Raw(_) | Val::Str(_) => "a string",
            Val::List(_) | Val::Items(_) | Val::Rows(_) | Val::Array(_) => "an array",
            Val::Other(v) => json_kind(v),
        }
    }

    /// JSON equality with a spec value, where `1` equals `1.0`.
    pub fn equals(&self, other: &Value) -> bool {
        match (self.as_str(), other) {
            (Some(s), Value::String(o)) => s == o,
            (Some(_), _) => false,
            (None, o) if self.items().is_some() || matches!(self, Val::Rows(_) | Val::Array(_)) => {
                json_equal(&self.to_value(), o)
            }
            (None, o) => self.json().is_some_and(|v| json_equal(v, o)),
        }
    }

    /// Appends the value as JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail: no I/O, and map keys are always strings.
        match self {
            Val::Raw(s) => write_quoted(out, s),
            // Most text needs no escaping: copy it.
            Val::Str(s) if !needs_escape(s.as_bytes()) => write_quoted(out, s),
            Val::Str(s) => serde_json::to_writer(&mut *out, s.as_ref()).expect("serialising into memory cannot fail"),
            Val::List(items) => write_items(out, items),
            Val::Items(items) => write_items(out, items),
            Val::Rows(rows) => out.extend_from_slice(&rows.json),
            Val::Array(array) => {
                serde_json::to_writer(&mut *out, &array.to_value()).expect("serialising into memory cannot fail")
            }
            // Integers are most of the non-string outputs; `itoa` writes them without the
            // serializer's dispatch (the digits are the same).
            Val::Other(v) => match v.as_ref() {
                Value::Number(n) if n.is_i64() || n.is_u64() => {
                    let mut digits = itoa::Buffer::new();
                    let text = match n.as_i64() {
                        Some(i) => digits.format(i),
                        None => digits.format(n.as_u64().expect("an integer Number is i64 or u64")),
                    };
                    out.extend_from_slice(text.as_bytes());
                }
                other => serde_json::to_writer(&mut *out, other).expect("serialising into memory cannot fail"),
            },
        }
    }
}

fn write_items(out: &mut Vec<u8>, items: &[Item<'_>]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item.as_val().write_json(out);
    }
    out.push(b']');
}

/// One match in a [`Val::List`]. Not a `Val` itself, so `Val` stays non-recursive and dropping one
/// stays a few inlined checks instead of a call per value.
#[derive(Clone, Debug, PartialEq)]
pub enum Item<'a> {
    /// Text straight from the record, without escapes.
    Raw(&'a str),
    Json(Value),
}

impl<'a> Item<'a> {
    pub fn from_val(value: Val<'a>) -> Self {
        match value {
            Val::Raw(s) => Item::Raw(s),
            other => Item::Json(other.into_value()),
        }
    }

    pub fn as_val(&self) -> Val<'_> {
        match self {
            Item::Raw(s) => Val::Raw(s),
            Item::Json(v) => Val::borrowed(v),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Item::Raw(s) => Value::String((*s).to_owned()),
            Item::Json(v) => v.clone(),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Item::Raw(s) => Value::String(s.to_owned()),
            Item::Json(v) => v,
        }
    }
}

fn write_quoted(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether JSON needs escapes for this text. Written as a fold without early exit so it compiles to
/// branch-free vector code: output strings are short, and a data-dependent exit mispredicts.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| found | (b == b'"') | (b == b'\\') | (b < 0x20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        for value in [
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(1.25),
            json!(-0.0),
            json!(1e300),
            json!(true),
            json!(null),
            json!(["a", 1, {"b": [2.5]}]),
            json!({"k": "v\n"}),
        ] {
            let mut out = Vec::new();
            Val::owned(value.clone()).write_json(&mut out);
            assert_eq!(out, serde_json::to_vec(&value).unwrap(), "{value}");
        }
    }

    #[test]
    fn strings_are_written_as_valid_json() {
        for text in ["plain", "", "ção 😀", "quote \" here", "back\\slash", "new\nline", "\u{1f}", "tab\there"] {
            let mut out = Vec::new();
            Val::Str(Cow::Borrowed(text)).write_json(&mut out);
            assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), json!(text), "{text:?}");
            assert_eq!(out, serde_json::to_vec(text).unwrap());
        }
    }
}
