//! The one-pass extractor: the hot path of every record.
//!
//! All source prefixes of a mapping go into one trie. [`Extractor::scan`] walks the record's bytes
//! once, descending only into keys, indexes and wildcards the trie names; everything else is
//! skipped — validated as JSON but never decoded or allocated. Only values at the trie's capture
//! points become `serde_json::Value`s.
//!
//! Why hand-written: driving `serde_json`'s deserializer with `IgnoredAny` cost about half of
//! `Plan::apply` on the reference record (generic visitor dispatch, a UTF-8 check per key, a
//! `Value` tree for every `[*]`). This scanner checks UTF-8 only where it can occur (inside
//! strings, as part of the vector string scan, so ASCII text costs nothing extra), compares raw
//! key bytes (decoding only keys that contain escapes), and skips with a tight byte loop. Captured
//! values that are not plain strings, small integers or literals are still parsed by `serde_json`,
//! so number semantics (big integers become floats, `1e999` is refused) stay `serde_json`'s.
//!
//! The scanner accepts exactly JSON (RFC 8259): one value, no trailing characters, no control
//! characters in strings, valid escapes and numbers. Nesting is limited to [`MAX_DEPTH`] levels, as
//! in `serde_json`, so hostile input cannot exhaust the stack.

//!
//! Its parts, each depending only on the ones listed before it:
//! - `bytes` — where the next quote, backslash, control or non-ASCII byte is (SSE2, SWAR);
//! - `keys` — object keys as two machine words, for one-probe key tables;
//! - `trie` — [`Extractor`]: the trie of the paths a mapping reads, built and finished;
//! - `scanner` — the one pass over a record, guided by the trie;
//! - `walk` — the same paths looked up in a record decoded from a binary format;
//! - this module — the scan's entry points.

mod bytes;
mod keys;
mod scanner;
mod trie;
mod walk;

use super::value::Val;
use scanner::{Captures, Scanner};
pub use scanner::{MAX_DEPTH, ScanError};
pub use trie::{Extractor, MemberName, Projection};
pub use walk::WalkError;

pub(crate) use bytes::next_special_byte;
#[cfg(test)]
use bytes::{special_byte_offset, swar_special_byte_offset};
pub(crate) use scanner::end_by_length;

impl Extractor {
    /// Scans one record value, returning one entry per slot (`None` = no match). Multi slots
    /// hold an array of their matches. Fails when the bytes are not one JSON object, or when an
    /// object the mapping reads repeats a key it reads (which value was meant is ambiguous).
    pub fn scan<'a>(&self, bytes: &'a [u8]) -> Result<Vec<Option<Val<'a>>>, Box<ScanError>> {
        let mut slots = vec![None; self.multi.len()];
        self.scan_into(bytes, &mut slots)?;
        Ok(slots)
    }

    /// [`scan`](Self::scan) into the caller's slots (all `None`, one per slot), so the hot path
    /// keeps them where it created them instead of moving them out of a `Result`.
    pub fn scan_into<'a>(&self, bytes: &'a [u8], slots: &mut [Option<Val<'a>>]) -> Result<(), Box<ScanError>> {
        debug_assert_eq!(slots.len(), self.multi.len());
        // A UTF-8 byte-order mark, which some editors and Windows tools write, is not part of the
        // value (RFC 8259 lets a parser ignore it).
        let mut scanner = Scanner { bytes, pos: if bytes.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 } };
        scanner.skip_ws();
        let found = match scanner.peek() {
            Some(b'{') => None,
            Some(b'[') => Some("an array"),
            Some(b'"') => Some("a string"),
            Some(b'-' | b'0'..=b'9') => Some("a number"),
            Some(b't' | b'f') => Some("a boolean"),
            Some(b'n') => Some("null"),
            Some(_) => return Err(scanner.not_json()),
            None => return Err(scanner.error("the value is empty".into())),
        };
        if let Some(found) = found {
            // `nope` starts like `null` and `12ab` like a number: only a whole JSON value is one.
            let start = scanner.pos;
            if let Err(mut e) = scanner.skip_value(0) {
                e.message = format!("not JSON: {}", e.message);
                return Err(e);
            }
            scanner.skip_ws();
            if scanner.pos != bytes.len() {
                return Err(scanner.error("not JSON: text after the value".into()));
            }
            scanner.pos = start;
            return Err(scanner.error(format!("expected a JSON object, found {found}")));
        }
        let mut captures = Captures { slots, multi: &self.multi };
        scanner.value(&self.root, &mut captures, 0)?;
        scanner.skip_ws();
        if scanner.pos != bytes.len() {
            return Err(scanner.error("trailing characters after the JSON object".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
