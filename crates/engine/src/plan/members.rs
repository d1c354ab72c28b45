//! The scanner's door for documents that are not records: name the members to read once, then
//! read them from each document in one pass. The fail envelope's reader uses it; it sees member
//! values as text, integers, raw JSON text and rows, never the scanner's own value types.
//!
//! It keeps the scanner's promises: the document must be one JSON object (RFC 8259), members it
//! does not name are skipped without being built, and text without escapes is borrowed.

use std::borrow::Cow;

use super::extract::{Extractor, ScanError};
use super::path::Segment;
use super::value::Val;

/// The most members (rows count as one, plus one per column) one reader can name.
pub const MAX_MEMBERS: usize = 16;

/// A member named by [`MembersReaderBuilder::member`] or
/// [`MembersReaderBuilder::text_with_length`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member(usize);

/// An array of objects named by [`MembersReaderBuilder::rows`]: per element, its columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    slot: usize,
    width: usize,
}

/// Names the members a [`MembersReader`] reads.
#[derive(Debug, Default)]
pub struct MembersReaderBuilder {
    extractor: Extractor,
}

/// Reads the named members of a JSON object in one pass (built once, used for every document).
#[derive(Debug)]
pub struct MembersReader {
    extractor: Extractor,
}

/// One document's members; each is taken once.
pub struct Members<'a> {
    slots: [Option<Val<'a>>; MAX_MEMBERS],
}

/// A member of another type than the reader asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongType {
    /// Not a string.
    NotText,
    /// Not an integer.
    NotInteger,
    /// Not an array.
    NotArray,
}

fn path(keys: &[&str]) -> Vec<Segment> {
    keys.iter().map(|k| Segment::Key((*k).into())).collect()
}

impl MembersReaderBuilder {
    /// The member at `keys` (`["source", "topic"]`: `topic` inside the object `source`).
    pub fn member(&mut self, keys: &[&str]) -> Member {
        Member(self.extractor.add(&path(keys)))
    }

    /// The JSON text of the member at `keys`, as it stands in the document. When the member at
    /// `length` (met before it) gives its length in bytes, an object or array there is taken by
    /// that length, checked only at its brackets: the reader of the text checks the rest. Without
    /// one, the text is delimited.
    pub fn text_with_length(&mut self, keys: &[&str], length: &[&str]) -> Member {
        Member(self.extractor.add_text_with_length(&path(keys), &path(length)).0)
    }

    /// The array at `keys`, read as rows: for each element, the members at `columns` inside it.
    pub fn rows(&mut self, keys: &[&str], columns: &[&[&str]]) -> Rows {
        let columns: Vec<Vec<Segment>> = columns.iter().map(|c| path(c)).collect();
        Rows { slot: self.extractor.add_items(&path(keys), &columns), width: columns.len() }
    }

    /// # Panics
    /// When more than [`MAX_MEMBERS`] members are named: a reader is built from a fixed list in
    /// the code, so that is a defect there, found the first time it runs.
    pub fn build(mut self) -> MembersReader {
        self.extractor.finish();
        assert!(self.extractor.slot_count() <= MAX_MEMBERS, "at most {MAX_MEMBERS} members");
        MembersReader { extractor: self.extractor }
    }
}

impl MembersReader {
    /// Reads one document; `Err` says why it is not a JSON object the scanner accepts.
    pub fn read<'a>(&self, bytes: &'a [u8]) -> Result<Members<'a>, Box<ScanError>> {
        let mut members = Members { slots: [const { None }; MAX_MEMBERS] };
        self.extractor.scan_into(bytes, &mut members.slots[..self.extractor.slot_count()])?;
        Ok(members)
    }
}

impl<'a> Members<'a> {
    fn take(&mut self, member: Member) -> Option<Val<'a>> {
        self.slots[member.0].take()
    }

    /// A member's text; `None` when absent or null.
    pub fn text(&mut self, member: Member) -> Result<Option<Cow<'a, str>>, WrongType> {
        text(self.take(member))
    }

    /// A member's integer; `None` when absent or null.
    pub fn integer(&mut self, member: Member) -> Result<Option<i64>, WrongType> {
        match self.take(member) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => v.json().and_then(serde_json::Value::as_i64).map(Some).ok_or(WrongType::NotInteger),
        }
    }

    /// A [`MembersReaderBuilder::text_with_length`] member's JSON text; `None` when absent or
    /// `null`.
    pub fn json_text(&mut self, member: Member) -> Option<&'a str> {
        match self.take(member) {
            Some(Val::Raw(json)) => Some(json).filter(|json| *json != "null"),
            _ => None,
        }
    }

    /// The rows' columns as text (`None`: absent or null); no rows when the array is absent.
    pub fn text_rows(&mut self, rows: Rows) -> Result<Vec<Vec<Option<Cow<'a, str>>>>, WrongType> {
        match self.slots[rows.slot].take() {
            None => Ok(Vec::new()),
            Some(Val::ScannedItems(array)) => {
                let array = std::rc::Rc::try_unwrap(array).unwrap_or_else(|shared| (*shared).clone());
                let mut cells = array.slots.into_iter();
                let mut out = Vec::with_capacity(array.len);
                for _ in 0..array.len {
                    out.push((0..rows.width).map(|_| text(cells.next().flatten())).collect::<Result<_, _>>()?);
                }
                Ok(out)
            }
            Some(_) => Err(WrongType::NotArray),
        }
    }
}

fn text(value: Option<Val<'_>>) -> Result<Option<Cow<'_, str>>, WrongType> {
    match value {
        None => Ok(None),
        Some(Val::Raw(text)) => Ok(Some(Cow::Borrowed(text))),
        Some(Val::Str(text)) => Ok(Some(text)),
        Some(v) if v.is_null() => Ok(None),
        Some(_) => Err(WrongType::NotText),
    }
}

/// Where an object or array at `start` ends when it is `length` bytes long, as its writer said:
/// only its brackets at both ends are checked (`None` when they say otherwise).
pub fn end_by_length(bytes: &[u8], start: usize, length: usize) -> Option<usize> {
    super::extract::end_by_length(bytes, start, length)
}

/// The position of the first quote, backslash, control or non-ASCII byte at or after `pos` (the
/// end of `bytes` if none): where a reader stepping through a string must look closer.
pub fn next_special_byte(bytes: &[u8], pos: usize) -> usize {
    super::extract::next_special_byte(bytes, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_read_as_asked_and_refused_when_of_another_type() {
        let mut b = MembersReaderBuilder::default();
        let (topic, partition, missing) = (b.member(&["s", "topic"]), b.member(&["s", "p"]), b.member(&["x"]));
        let value = b.text_with_length(&["v"], &["n"]);
        let rows = b.rows(&["errors"], &[&["field"], &["rule"]]);
        let reader = b.build();
        let doc =
            br#"{"s":{"topic":"t\u0031","p":3},"n":9,"v":{"a":[1]},"errors":[{"rule":"r"},{"field":"f","rule":"q"}]}"#;
        let mut m = reader.read(doc).unwrap();
        assert_eq!(m.text(topic), Ok(Some(Cow::Owned("t1".into()))));
        assert_eq!(m.integer(partition), Ok(Some(3)));
        assert_eq!(m.text(missing), Ok(None));
        assert_eq!(m.json_text(value), Some(r#"{"a":[1]}"#));
        let read = m.text_rows(rows).unwrap();
        assert_eq!(read, vec![vec![None, Some("r".into())], vec![Some("f".into()), Some("q".into())]]);
        let mut m = reader.read(br#"{"s":{"topic":1,"p":"3"},"errors":{}}"#).unwrap();
        assert_eq!(m.text(topic), Err(WrongType::NotText));
        assert_eq!(m.integer(partition), Err(WrongType::NotInteger));
        assert_eq!(m.text_rows(rows), Err(WrongType::NotArray));
        assert!(reader.read(b"[1]").is_err(), "only an object is a document");
    }
}
