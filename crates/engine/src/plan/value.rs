//! [`Val`]: a field's value while one record is mapped.
//!
//! Strings are the bulk of a record, so they get their own variant that can borrow: straight from
//! the record's bytes when the JSON string has no escapes, or from the plan (constants, defaults,
//! `map` tables). Transforms that change nothing (`trim` of trimmed text, `lowercase` of lower-case
//! text) hand the borrow on. A typical record is mapped with few allocations besides its output.

use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::rc::Rc;

use serde_json::Value;

use super::document::Doc;
use super::json::{json_equal, json_kind};

/// A value of a field or a path while one record is mapped, borrowing from the record where it can.
#[derive(Debug, PartialEq)]
pub enum Val<'a> {
    /// Text straight from the record: it had no escapes there, so it needs none in the output.
    Raw(&'a str),
    /// Text, borrowed or built.
    Str(Cow<'a, str>),
    /// The matches of a wildcard path (`$.items[*].sku`), an array kept as the values were found
    /// (mostly text borrowed from the record) until it is written: building a `Value` array would
    /// copy every item only to serialise and free it again.
    Matches(Vec<Item<'a>>),
    /// A [`Val::Matches`] lent out by [`Val::reborrow`].
    LentMatches(&'a [Item<'a>]),
    /// Any other JSON value but a string.
    Json(Cow<'a, Value>),
    /// A number from the record whose text is not the one its value would be written with
    /// (`1e3`, `1.50`, `99999999999999999999`): messages quote it as written. Boxed, as it is
    /// rare, to keep every other value small.
    Written(Box<WrittenNumber<'a>>),
    /// The objects an `items:` field mapped from an array: their output already written, their
    /// fields kept for the expressions that read them (`items.map(i, i.total_cents)`).
    MappedItems(Box<Rows<'a>>),
    /// The array an `items:` field reads, as the extractor scanned it: each item's values found
    /// by the item fields' own paths, no `Value` tree built. Only its `items:` field sees it (it
    /// has a slot of its own), and turns it into [`Val::MappedItems`].
    /// Shared, not boxed: the field's state borrows it from the slot without copying the items.
    ScannedItems(Rc<ScannedArray<'a>>),
}

/// An array scanned item by item: the whole array, and the item fields' slots of every item,
/// one item after the other.
#[derive(Clone, Debug, PartialEq)]
pub struct ScannedArray<'a> {
    /// The whole array, for an expression that reads it as a value.
    pub whole: WholeArray<'a>,
    /// How many items it has.
    pub len: usize,
    /// The item fields' slots, item after item.
    pub slots: Vec<Option<Val<'a>>>,
}

/// Where a [`ScannedArray`] came from.
#[derive(Clone, Debug, PartialEq)]
pub enum WholeArray<'a> {
    /// Its JSON text in the record.
    Text(&'a str),
    /// Its items in a decoded record.
    Decoded(&'a [Doc<'a>]),
}

impl<'a> ScannedArray<'a> {
    fn to_value(&self) -> Value {
        match self.whole {
            // The scanner checked the text as JSON; a number `serde_json` cannot hold becomes null.
            WholeArray::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            WholeArray::Decoded(items) => Value::Array(items.iter().map(Doc::to_value).collect()),
        }
    }
}

/// A number and its text in the record.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenNumber<'a> {
    /// The number's value.
    pub value: Value,
    /// The number as the record writes it.
    pub text: &'a str,
}

/// A field's value during one record's evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldState<'a> {
    /// No value: left out of the output.
    Absent,
    /// A value.
    Present(Val<'a>),
    /// It already has errors; rules and expressions do not pile more on it.
    Failed,
}

/// A record's per-field values on the stack, dropped by hand. Most of them own nothing (text
/// borrowed from the record or the plan, small numbers), yet the drop the compiler generates for
/// the whole array visits every entry with a call and a jump on its variant; here an entry is
/// dropped only when it owns something.
pub(super) struct Scratch<T: Scrap, const N: usize> {
    entries: ManuallyDrop<[T; N]>,
    /// How many entries were handed out; the others were never touched.
    used: usize,
}

/// What [`Scratch`] needs of its entries.
pub(super) trait Scrap: Sized {
    const EMPTY: Self;
    /// Whether dropping this value frees anything. Forgetting a value for which this is `false`
    /// must leak nothing.
    fn owns(&self) -> bool;
}

impl<T: Scrap, const N: usize> Scratch<T, N> {
    pub(super) fn new() -> Self {
        Scratch { entries: ManuallyDrop::new([const { T::EMPTY }; N]), used: 0 }
    }

    /// The first `len` entries (at most `N`).
    pub(super) fn first(&mut self, len: usize) -> &mut [T] {
        self.used = len;
        &mut self.entries[..len]
    }
}

impl<T: Scrap, const N: usize> Drop for Scratch<T, N> {
    fn drop(&mut self) {
        for entry in &mut self.entries[..self.used] {
            if entry.owns() {
                // Drops the value; the array itself is never dropped, and what is left owns nothing.
                *entry = T::EMPTY;
            }
        }
    }
}

impl Val<'_> {
    /// Whether the value holds memory of its own (see [`Scrap::owns`]).
    #[inline]
    fn owns(&self) -> bool {
        match self {
            Val::Raw(_) | Val::LentMatches(_) | Val::Str(Cow::Borrowed(_)) | Val::Json(Cow::Borrowed(_)) => false,
            Val::Json(Cow::Owned(v)) => !matches!(v, Value::Null | Value::Bool(_) | Value::Number(_)),
            Val::Str(Cow::Owned(_))
            | Val::Matches(_)
            | Val::MappedItems(_)
            | Val::ScannedItems(_)
            | Val::Written(_) => true,
        }
    }
}

impl<'a> Val<'a> {
    /// Replaces the value, dropping the old one only when it owns something: the generated drop
    /// is an out-of-line call with a jump on the variant, paid for every transform's result even
    /// though most old values are text borrowed from the record.
    #[inline]
    pub(super) fn set(&mut self, new: Val<'a>) {
        let old = std::mem::replace(self, new);
        if old.owns() {
            drop(old);
        } else {
            // Owns nothing (see `owns`): forgetting it leaks nothing.
            std::mem::forget(old);
        }
    }
}

impl Scrap for Option<Val<'_>> {
    const EMPTY: Self = None;
    #[inline]
    fn owns(&self) -> bool {
        self.as_ref().is_some_and(Val::owns)
    }
}

impl Scrap for FieldState<'_> {
    const EMPTY: Self = FieldState::Absent;
    #[inline]
    fn owns(&self) -> bool {
        match self {
            FieldState::Present(v) => v.owns(),
            FieldState::Absent | FieldState::Failed => false,
        }
    }
}

/// What an `items:` field made of an array: the JSON array, and each item's field states.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows<'a> {
    /// The JSON array of the mapped items, as written to the output.
    pub json: Vec<u8>,
    /// The field states of each item.
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
            Val::LentMatches(items) => Val::LentMatches(items),
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
            Val::Matches(items) => Val::Matches(items.clone()),
            Val::LentMatches(items) => Val::LentMatches(items),
            Val::Json(v) => Val::Json(v.clone()),
            Val::Written(n) => Val::Written(n.clone()),
            Val::MappedItems(rows) => Val::MappedItems(rows.clone()),
            Val::ScannedItems(array) => Val::ScannedItems(array.clone()),
        }
    }
}

impl<'a> Val<'a> {
    /// A JSON value, borrowed.
    pub fn borrowed(value: &'a Value) -> Self {
        match value {
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            other => Val::Json(Cow::Borrowed(other)),
        }
    }

    /// A JSON value, owned.
    pub fn owned(value: Value) -> Self {
        match value {
            Value::String(s) => Val::Str(Cow::Owned(s)),
            other => Val::Json(Cow::Owned(other)),
        }
    }

    /// A string.
    pub fn text(s: String) -> Self {
        Val::Str(Cow::Owned(s))
    }

    /// The same value, borrowed from `self` (cheap: no copy of the contents).
    pub fn reborrow(&self) -> Val<'_> {
        match self {
            Val::Raw(s) => Val::Raw(s),
            Val::Str(s) => Val::Str(Cow::Borrowed(s)),
            Val::Matches(items) => Val::LentMatches(items),
            Val::LentMatches(items) => Val::LentMatches(items),
            Val::Json(v) => Val::Json(Cow::Borrowed(v)),
            Val::Written(n) => Val::Written(n.clone()),
            Val::MappedItems(rows) => Val::MappedItems(rows.clone()),
            Val::ScannedItems(array) => Val::ScannedItems(array.clone()),
        }
    }

    /// The items of a list of matches.
    pub fn items(&self) -> Option<&[Item<'a>]> {
        match self {
            Val::Matches(items) => Some(items),
            Val::LentMatches(items) => Some(items),
            _ => None,
        }
    }

    /// The text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Raw(s) => Some(s),
            Val::Str(s) => Some(s),
            Val::Matches(_)
            | Val::LentMatches(_)
            | Val::Json(_)
            | Val::Written(_)
            | Val::MappedItems(_)
            | Val::ScannedItems(_) => None,
        }
    }

    /// The record's text of a number, when it is not the text the value would be written with.
    pub fn written(&self) -> Option<&str> {
        match self {
            Val::Written(n) => Some(n.text),
            _ => None,
        }
    }

    /// The JSON value, if this is neither a string nor a list of matches.
    pub fn json(&self) -> Option<&Value> {
        match self {
            Val::Raw(_)
            | Val::Str(_)
            | Val::Matches(_)
            | Val::LentMatches(_)
            | Val::MappedItems(_)
            | Val::ScannedItems(_) => None,
            Val::Json(v) => Some(v),
            Val::Written(n) => Some(&n.value),
        }
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Val::Json(v) if v.is_null())
    }

    /// The value as JSON, copied.
    pub fn to_value(&self) -> Value {
        match self {
            Val::Raw(s) => Value::String(s.to_string()),
            Val::Str(s) => Value::String(s.to_string()),
            Val::Matches(items) => Value::Array(items.iter().map(Item::to_value).collect()),
            Val::LentMatches(items) => Value::Array(items.iter().map(Item::to_value).collect()),
            Val::Json(v) => v.as_ref().clone(),
            Val::Written(n) => n.value.clone(),
            Val::MappedItems(rows) => serde_json::from_slice(&rows.json).expect("rows are written as valid JSON"),
            Val::ScannedItems(array) => array.to_value(),
        }
    }

    /// The value as JSON.
    pub fn into_value(self) -> Value {
        match self {
            Val::Raw(s) => Value::String(s.to_owned()),
            Val::Str(s) => Value::String(s.into_owned()),
            Val::Matches(items) => Value::Array(items.into_iter().map(Item::into_value).collect()),
            Val::LentMatches(items) => Value::Array(items.iter().map(Item::to_value).collect()),
            Val::Json(v) => v.into_owned(),
            Val::Written(n) => n.value,
            Val::MappedItems(rows) => serde_json::from_slice(&rows.json).expect("rows are written as valid JSON"),
            Val::ScannedItems(array) => array.to_value(),
        }
    }

    /// The number of items of an array value, whatever its form.
    pub fn array_len(&self) -> Option<usize> {
        match self {
            Val::Matches(items) => Some(items.len()),
            Val::LentMatches(items) => Some(items.len()),
            Val::MappedItems(rows) => Some(rows.rows.len()),
            Val::ScannedItems(array) => Some(array.len),
            Val::Json(v) => v.as_array().map(Vec::len),
            Val::Raw(_) | Val::Str(_) | Val::Written(_) => None,
        }
    }

    /// "a string", "a number"… for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Val::Raw(_) | Val::Str(_) => "a string",
            Val::Matches(_) | Val::LentMatches(_) | Val::MappedItems(_) | Val::ScannedItems(_) => "an array",
            Val::Json(v) => json_kind(v),
            Val::Written(_) => "a number",
        }
    }

    /// JSON equality with a spec value, where `1` equals `1.0`.
    pub fn equals(&self, other: &Value) -> bool {
        match (self.as_str(), other) {
            (Some(s), Value::String(o)) => s == o,
            (Some(_), _) => false,
            (None, o) if self.items().is_some() || matches!(self, Val::MappedItems(_) | Val::ScannedItems(_)) => {
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
            Val::Matches(items) => write_items(out, items),
            Val::LentMatches(items) => write_items(out, items),
            Val::MappedItems(rows) => out.extend_from_slice(&rows.json),
            // Written as any number is; the record's text is for messages.
            Val::Written(n) => serde_json::to_writer(&mut *out, &n.value).expect("serialising into memory cannot fail"),
            Val::ScannedItems(array) => {
                serde_json::to_writer(&mut *out, &array.to_value()).expect("serialising into memory cannot fail")
            }
            // Integers are most of the non-string outputs; `itoa` writes them without the
            // serializer's dispatch (the digits are the same).
            Val::Json(v) => match v.as_ref() {
                Value::Number(n) if n.is_i64() || n.is_u64() => {
                    let mut digits = itoa::Buffer::new();
                    let text = match n.as_i64() {
                        Some(i) => digits.format(i),
                        None => digits.format(n.as_u64().expect("an integer Number is i64 or u64")),
                    };
                    append(out, text.as_bytes());
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

/// One match in a [`Val::Matches`]. Not a `Val` itself, so `Val` stays non-recursive and dropping one
/// stays a few inlined checks instead of a call per value.
#[derive(Clone, Debug, PartialEq)]
pub enum Item<'a> {
    /// Text straight from the record, without escapes.
    Raw(&'a str),
    /// Any other JSON value.
    Json(Value),
}

impl<'a> Item<'a> {
    /// A value as one match.
    pub fn from_val(value: Val<'a>) -> Self {
        match value {
            Val::Raw(s) => Item::Raw(s),
            other => Item::Json(other.into_value()),
        }
    }

    /// The match as a value, borrowed.
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
    append(out, s.as_bytes());
    out.push(b'"');
}

/// `out.extend_from_slice(bytes)`, with the short copies that make up most of an output (keys,
/// codes, ids) done inline: as a call to `memcpy`, each paid the call and a branch on its length
/// that the CPU mispredicts as the lengths vary from one field to the next.
#[inline(always)]
#[allow(unsafe_code)] // writes into the vector's spare capacity; see the SAFETY comment
pub(super) fn append(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    let len = out.len();
    if n > 16 || out.capacity() - len < 16 {
        out.extend_from_slice(bytes);
        return;
    }
    let src = bytes.as_ptr();
    // SAFETY: `out` has at least 16 bytes of spare capacity past `len` (checked above) and
    // `n <= 16`, so every write below lands in `out`'s allocation at `len..len + n`; every read is
    // in `bytes` (offsets `0..n`: the two words, or halves, may overlap but stay inside). Those
    // `n` bytes are all written before `set_len` makes them part of the vector, and `u8` has no
    // invalid values. Unaligned reads and writes are used throughout.
    unsafe {
        let dst = out.as_mut_ptr().add(len);
        if n >= 8 {
            let head = src.cast::<u64>().read_unaligned();
            let tail = src.add(n - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(head);
            dst.add(n - 8).cast::<u64>().write_unaligned(tail);
        } else if n >= 4 {
            let head = src.cast::<u32>().read_unaligned();
            let tail = src.add(n - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(head);
            dst.add(n - 4).cast::<u32>().write_unaligned(tail);
        } else if n > 0 {
            // One to three bytes: the first, the middle and the last cover them all.
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        out.set_len(len + n);
    }
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

    #[test]
    fn short_copies_append_exactly_the_bytes_whatever_the_room() {
        let text: Vec<u8> = (0u8..40).map(|i| b'a' + i % 26).collect();
        for n in 0..=text.len() {
            // Before: nothing, a few bytes, and a vector with exactly as much room as it needs
            // (the inline copy needs 16 spare bytes; with fewer it must fall back).
            for (prefix, spare) in [(0, 64), (3, 64), (5, 0), (7, 15), (9, 16)] {
                let mut out = Vec::with_capacity(prefix + n.max(spare));
                out.extend(std::iter::repeat_n(b'#', prefix));
                append(&mut out, &text[..n]);
                let mut expected = vec![b'#'; prefix];
                expected.extend_from_slice(&text[..n]);
                assert_eq!(out, expected, "{n} bytes after {prefix}, {spare} spare");
            }
        }
    }

    #[test]
    fn scratch_drops_what_its_entries_own_and_only_that() {
        let array = Rc::new(ScannedArray { whole: WholeArray::Text("[]"), len: 0, slots: Vec::new() });
        {
            let mut scratch: Scratch<Option<Val<'_>>, 4> = Scratch::new();
            let slots = scratch.first(3);
            slots[0] = Some(Val::ScannedItems(Rc::clone(&array)));
            slots[1] = Some(Val::Raw("borrowed"));
            slots[2] = Some(Val::owned(json!({"owned": ["tree"]})));
            assert_eq!(Rc::strong_count(&array), 2);
        }
        assert_eq!(Rc::strong_count(&array), 1, "the entry holding a share was dropped");
        {
            let mut states: Scratch<FieldState<'_>, 2> = Scratch::new();
            states.first(2)[1] = FieldState::Present(Val::ScannedItems(Rc::clone(&array)));
        }
        assert_eq!(Rc::strong_count(&array), 1);
        for (value, owns) in [
            (Val::Raw("x"), false),
            (Val::Str(Cow::Borrowed("x")), false),
            (Val::owned(json!(12)), false),
            (Val::owned(json!(null)), false),
            (Val::text("x".into()), true),
            (Val::owned(json!([1])), true),
            (Val::Matches(vec![Item::Raw("x")]), true),
        ] {
            assert_eq!(value.owns(), owns, "{value:?}");
        }
    }
}
