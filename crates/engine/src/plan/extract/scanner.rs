//! The scanner: one pass over a record's bytes, guided by the trie.

use std::fmt;
use std::rc::Rc;

use serde_json::Value;

use super::bytes::next_special_byte;
use super::keys::short_key;
use super::trie::{ItemsCapture, TrieNode};
use crate::plan::path::lookup_all;
use crate::plan::value::{Item, ScannedArray, Val, WholeArray, WrittenNumber};

/// Deepest nesting of arrays and objects accepted (the same limit `serde_json` applies).
pub const MAX_DEPTH: usize = 128;

/// Why a record value is not a JSON object the extractor can read; positions are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// What is wrong.
    pub message: String,
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.message, self.line, self.column)
    }
}

impl std::error::Error for ScanError {}

/// Powers of ten that an `f64` holds exactly.
pub(super) const EXACT_POWERS_OF_TEN: [f64; 16] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A JSON number with a fraction, no exponent and at most 15 digits (`1.25`, `-0.5`), read as
/// serde_json reads it, without its parser: the digits as an integer, divided by a power of ten.
/// Both are exact in an `f64` (below 2^53 and at most 10^15), so the division's rounding is the
/// only one: the correctly rounded value, which serde_json computes too. `None` for other numbers.
pub(super) fn short_decimal(number: &[u8]) -> Option<f64> {
    let (negative, digits) = match number.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, number),
    };
    let dot = digits.iter().position(|b| *b == b'.')?;
    let (whole, fraction) = (&digits[..dot], &digits[dot + 1..]);
    if whole.is_empty()
        || fraction.is_empty()
        || whole.len() + fraction.len() > 15
        || !whole.iter().chain(fraction).all(u8::is_ascii_digit)
    {
        return None;
    }
    let mantissa = whole.iter().chain(fraction).fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    let magnitude = mantissa as f64 / EXACT_POWERS_OF_TEN[fraction.len()];
    Some(if negative { -magnitude } else { magnitude })
}

/// A text capture's given length: a non-negative integer member.
pub(super) fn given_length(value: Option<&Val<'_>>) -> Option<usize> {
    value?.json()?.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// Where an object or array at `start` ends when it is `length` bytes long, as its writer said:
/// the length is taken, not followed through, so only its brackets at both ends are checked
/// (`None` when they say otherwise).
pub(crate) fn end_by_length(bytes: &[u8], start: usize, length: usize) -> Option<usize> {
    let closing = match bytes.get(start)? {
        b'{' => b'}',
        b'[' => b']',
        _ => return None,
    };
    let end = start.checked_add(length)?;
    (length >= 2 && bytes.get(end - 1) == Some(&closing)).then_some(end)
}

/// Where captured values go.
pub(super) struct Captures<'s, 'a> {
    pub(super) slots: &'s mut [Option<Val<'a>>],
    pub(super) multi: &'s [bool],
}

impl<'a> Captures<'_, 'a> {
    pub(super) fn store(&mut self, slot: usize, value: Val<'a>) {
        if self.multi[slot] {
            match &mut self.slots[slot] {
                Some(Val::Matches(items)) => items.push(Item::from_val(value)),
                empty => {
                    // Room for a few matches at once: growing from one item is a reallocation per record.
                    let mut items = Vec::with_capacity(4);
                    items.push(Item::from_val(value));
                    *empty = Some(Val::Matches(items));
                }
            }
        } else {
            self.slots[slot] = Some(value);
        }
    }

    /// [`store`](Self::store) for text from the record, built in its slot: a `Val` made first and
    /// then moved in is copied as two 16-byte loads straddling the word stores that made it, which
    /// stalls (store forwarding fails) on every captured string.
    #[inline(always)]
    pub(super) fn store_raw(&mut self, slot: usize, text: &'a str) {
        if self.multi[slot] {
            self.store(slot, Val::Raw(text));
        } else {
            let cell = &mut self.slots[slot];
            // Emptied first, so the assignment below has nothing to drop and the compiler writes
            // the value straight into the slot instead of building it aside and copying it.
            *cell = None;
            *cell = Some(Val::Raw(text));
        }
    }

    pub(super) fn fill(&mut self, node: &TrieNode, value: Val<'a>) {
        if let (false, Some(outer)) = (node.derived.is_empty(), value.json()) {
            let mut found = Vec::new();
            for (path, slot) in &node.derived {
                found.clear();
                lookup_all(outer, path, &mut found);
                for v in &found {
                    self.store(*slot, Val::owned((*v).clone()));
                }
            }
        }
        if let Some(slot) = node.capture {
            self.store(slot, value);
        }
    }
}

pub(super) struct Scanner<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

/// Boxed so the `Ok` path of every scanner step stays a register-sized `Result`.
pub(super) type Scan<T = ()> = Result<T, Box<ScanError>>;

impl<'a> Scanner<'a> {
    /// The text of `bytes[start..end]` without a second UTF-8 check.
    ///
    /// # Safety
    ///
    /// `start..end` must be a range this scanner has accepted — a string's contents (between its
    /// quotes) or a whole value — with `Ok` from the step that scanned it. Such a range is UTF-8:
    /// the scanner accepts non-ASCII bytes only inside strings, where `skip_string` checks each
    /// character as UTF-8, and outside strings only ASCII (structure, numbers, literals,
    /// whitespace); and it starts and ends at ASCII bytes (quotes, brackets, digits), so on
    /// character boundaries. A range delimited without being scanned (`text_delimited`) is not
    /// one.
    #[inline]
    #[allow(unsafe_code)]
    pub(super) unsafe fn scanned_text(&self, start: usize, end: usize) -> &'a str {
        let bytes = &self.bytes[start..end];
        debug_assert!(std::str::from_utf8(bytes).is_ok(), "only scanned ranges are read as text");
        // SAFETY: the caller passes a range the scan accepted, UTF-8 as the contract above says.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    #[cold]
    pub(super) fn error(&mut self, message: String) -> Box<ScanError> {
        let upto = &self.bytes[..self.pos.min(self.bytes.len())];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = upto.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        Box::new(ScanError { message, line, column: self.pos - line_start + 1 })
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    pub(super) fn expect(&mut self, byte: u8, what: &str) -> Scan {
        // Compact JSON (what producers send) has the byte right here.
        if self.peek() == Some(byte) {
            self.pos += 1;
            return Ok(());
        }
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    #[cold]
    pub(super) fn unexpected(&mut self, expected: &str) -> Box<ScanError> {
        match self.peek() {
            None => self.error(format!("unexpected end of input; expected {expected}")),
            Some(b) if b >= 0x80 => match utf8_char_at(self.bytes, self.pos) {
                None => self.error(format!("{}; expected {expected}", invalid_utf8(b))),
                Some(width) => {
                    let found = String::from_utf8_lossy(&self.bytes[self.pos..self.pos + width]).into_owned();
                    self.error(format!("expected {expected}, found `{found}`"))
                }
            },
            Some(b) => self.error(format!("expected {expected}, found `{}`", char::from(b))),
        }
    }

    /// Text that is not JSON at all, at the cursor: what it starts with, for the eye.
    #[cold]
    pub(super) fn not_json(&mut self) -> Box<ScanError> {
        let rest = &self.bytes[self.pos..];
        let shown: String = String::from_utf8_lossy(&rest[..rest.len().min(24)]).chars().take(16).collect();
        let more = if rest.len() > shown.len() { "…" } else { "" };
        self.error(format!("not JSON: the text starts `{shown}{more}`"))
    }

    pub(super) fn enter(&mut self, depth: usize) -> Scan<usize> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        Ok(depth + 1)
    }

    /// A value at a trie node.
    pub(super) fn value(&mut self, node: &TrieNode, captures: &mut Captures<'_, 'a>, depth: usize) -> Scan {
        self.skip_ws();
        if let Some(items) = &node.items {
            return self.items_and_value(node, items, captures, depth);
        }
        self.value_here(node, captures, depth)
    }

    /// An `items:` array, and then, when other fields read it too, the value for them. Out of
    /// line, so that [`value`](Self::value), the scan's recursion, stays small enough for the
    /// compiler to inline the key lookup into it.
    #[inline(never)]
    pub(super) fn items_and_value(
        &mut self,
        node: &TrieNode,
        items: &ItemsCapture,
        captures: &mut Captures<'_, 'a>,
        depth: usize,
    ) -> Scan {
        let start = self.pos;
        self.items(items, captures, depth)?;
        let others = node.materialize || !node.keys.is_empty() || !node.indexes.is_empty() || node.wildcard.is_some();
        if !others {
            return Ok(());
        }
        // Other fields read this value too: scan it again for them.
        self.pos = start;
        self.value_here(node, captures, depth)
    }

    /// A value at a trie node, whitespace skipped, the node's `items` already served.
    #[inline(always)]
    pub(super) fn value_here(&mut self, node: &TrieNode, captures: &mut Captures<'_, 'a>, depth: usize) -> Scan {
        if node.materialize {
            let start = self.pos;
            // Strings are the common capture; their scan already says whether they had escapes.
            if self.peek() == Some(b'"') && !self.skip_string()? {
                // Text has no derived captures; it goes straight into its slot.
                if let Some(slot) = node.capture {
                    // SAFETY: `skip_string` accepted the string at `start`; its contents lie
                    // between its quotes.
                    #[allow(unsafe_code)]
                    let text = unsafe { self.scanned_text(start + 1, self.pos - 1) };
                    captures.store_raw(slot, text);
                }
                return Ok(());
            }
            if self.pos == start {
                self.skip_value(depth)?;
            }
            // SAFETY: the value from `start` was accepted, by `skip_string` above (an escaped
            // string) or by `skip_value`.
            #[allow(unsafe_code)]
            let value = unsafe { self.parse_captured(start)? };
            captures.fill(node, value);
            return Ok(());
        }
        match self.peek() {
            Some(b'{') if !node.keys.is_empty() || node.wildcard.is_some() => self.object(node, captures, depth),
            Some(b'[') if !node.indexes.is_empty() || node.wildcard.is_some() => self.array(node, captures, depth),
            _ => self.skip_value(depth),
        }
    }

    /// An `items:` field's array, each item scanned with the item fields' trie into its own row
    /// of slots.
    pub(super) fn items(&mut self, capture: &ItemsCapture, captures: &mut Captures<'_, 'a>, depth: usize) -> Scan {
        let start = self.pos;
        if capture.text_only {
            let text = match self.peek() {
                Some(b'{' | b'[') => {
                    let given = capture.length_slot.and_then(|slot| given_length(captures.slots[slot].as_ref()));
                    match given.and_then(|length| end_by_length(self.bytes, start, length)) {
                        Some(end) => self.pos = end,
                        None => self.skip_balanced()?,
                    }
                    // Not scanned byte by byte: its UTF-8 is checked here (a fast pass).
                    let delimited = &self.bytes[start..self.pos];
                    std::str::from_utf8(delimited).map_err(|e| {
                        let at = start + e.valid_up_to();
                        self.error_at(at, &invalid_utf8(self.bytes[at]))
                    })?
                }
                _ => {
                    self.skip_value(depth)?;
                    // SAFETY: `skip_value` accepted the value from `start` to the cursor.
                    #[allow(unsafe_code)]
                    unsafe {
                        self.scanned_text(start, self.pos)
                    }
                }
            };
            captures.slots[capture.slot] = Some(Val::Raw(text));
            return Ok(());
        }
        if self.peek() != Some(b'[') {
            self.skip_value(depth)?;
            // SAFETY: `skip_value` accepted the value from `start`.
            #[allow(unsafe_code)]
            let value = unsafe { self.parse_captured(start)? };
            captures.slots[capture.slot] = Some(value);
            return Ok(());
        }
        let width = capture.trie.slot_count();
        let mut slots: Vec<Option<Val<'a>>> = Vec::new();
        let mut len = 0;
        self.elements(depth, |scanner, _, depth| {
            slots.resize(slots.len() + width, None);
            let row = slots.len() - width;
            len += 1;
            let mut item_captures = Captures { slots: &mut slots[row..], multi: &capture.trie.multi };
            scanner.value(&capture.trie.root, &mut item_captures, depth)
        })?;
        // SAFETY: `elements` accepted the array from `start` to the cursor.
        #[allow(unsafe_code)]
        let text = unsafe { self.scanned_text(start, self.pos) };
        captures.slots[capture.slot] =
            Some(Val::ScannedItems(Rc::new(ScannedArray { whole: WholeArray::Text(text), len, slots })));
        Ok(())
    }

    pub(super) fn object(&mut self, node: &TrieNode, captures: &mut Captures<'_, 'a>, depth: usize) -> Scan {
        let depth = self.enter(depth)?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        // Bit i set = key child i already seen (more than 64 mapped keys in one object fall back to
        // a list, still catching duplicates).
        let mut seen: u64 = 0;
        let mut seen_more: Vec<usize> = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a string key"));
            }
            let key_start = self.pos;
            let matched = self.key(node)?;
            self.expect(b':', "`:` after an object key")?;
            match matched {
                Some(i) => {
                    let repeated = if i < 64 {
                        let r = seen & (1 << i) != 0;
                        seen |= 1 << i;
                        r
                    } else if seen_more.contains(&i) {
                        true
                    } else {
                        seen_more.push(i);
                        false
                    };
                    if repeated {
                        self.pos = key_start;
                        return Err(
                            self.error(format!("duplicate key \"{}\" in an object the mapping reads", node.keys[i].0))
                        );
                    }
                    let child = &node.keys[i].1;
                    // Text captured as it stands (most captures) is read here, without the call
                    // into `value`; anything else, escaped text included, goes through it.
                    let start = self.pos;
                    match (child.text_leaf, self.peek()) {
                        (Some(slot), Some(b'"')) if !self.skip_string()? => {
                            // SAFETY: `skip_string` accepted the string at `start`; its contents
                            // lie between its quotes.
                            #[allow(unsafe_code)]
                            let text = unsafe { self.scanned_text(start + 1, self.pos - 1) };
                            captures.store_raw(slot, text);
                        }
                        _ => {
                            self.pos = start;
                            self.value(child, captures, depth)?;
                        }
                    }
                }
                None => match (&node.wildcard, self.peek()) {
                    (Some(w), _) => self.value(w, captures, depth)?,
                    // Unread text, the usual unread value, is skipped here without a call.
                    (None, Some(b'"')) => {
                        self.skip_string()?;
                    }
                    (None, _) => self.skip_value(depth)?,
                },
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected("`,` or `}` in an object")),
            }
        }
    }

    pub(super) fn array(&mut self, node: &TrieNode, captures: &mut Captures<'_, 'a>, depth: usize) -> Scan {
        self.elements(depth, |scanner, index, depth| match node.indexes.iter().find(|(i, _)| *i == index) {
            Some((_, child)) => scanner.value(child, captures, depth),
            None => match &node.wildcard {
                Some(w) => scanner.value(w, captures, depth),
                None => scanner.skip_value(depth),
            },
        })
    }

    /// The elements of an array, at its `[`: `each(scanner, index, depth)` reads one; the nesting
    /// limit, the commas and the closing bracket are checked here for every array the trie reads.
    #[inline(always)]
    pub(super) fn elements(&mut self, depth: usize, mut each: impl FnMut(&mut Self, usize, usize) -> Scan) -> Scan {
        let depth = self.enter(depth)?;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut index = 0usize;
        loop {
            each(self, index, depth)?;
            index += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected("`,` or `]` in an array")),
            }
        }
    }

    /// Reads an object key (at its opening quote) and finds it among the node's keys.
    pub(super) fn key(&mut self, node: &TrieNode) -> Scan<Option<usize>> {
        let start = self.pos + 1;
        if let Some((len, words)) = short_key(self.bytes, start) {
            self.pos = start + len + 1;
            return Ok(node.find_short_key(words, len));
        }
        let escaped = self.skip_string()?;
        if !escaped {
            return Ok(node.find_key_at(self.bytes, start, self.pos - 1 - start));
        }
        if node.keys.is_empty() {
            return Ok(None);
        }
        // SAFETY: the key's string, from its opening quote at `start - 1`, was just accepted.
        #[allow(unsafe_code)]
        let key = unsafe { self.scanned_text(start - 1, self.pos) };
        let decoded: String = serde_json::from_str(key).map_err(|e| {
            self.pos = start - 1;
            self.error(format!("invalid string: {}", strip_position(&e)))
        })?;
        Ok(node.find_key(&decoded))
    }

    /// Skips a string (at its opening quote), validating it; returns whether it had escapes.
    /// Inlined into its three callers: strings are short, and the call itself (saving registers,
    /// reloading the vector constants) cost as much as scanning a typical one.
    #[inline(always)]
    pub(super) fn skip_string(&mut self) -> Scan<bool> {
        // A local cursor: the compiler keeps it in a register instead of going through `self`.
        let bytes = self.bytes;
        let mut pos = self.pos + 1;
        let mut escaped = false;
        loop {
            pos = next_special_byte(bytes, pos);
            match bytes.get(pos) {
                Some(b'"') => {
                    self.pos = pos + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 2,
                        Some(b'u')
                            if bytes.get(pos + 2..pos + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            pos += 6;
                        }
                        Some(b'u') => return Err(self.error_at(pos, "invalid \\u escape in string")),
                        _ => return Err(self.error_at(pos, "invalid escape in string")),
                    }
                }
                Some(&b) if b >= 0x80 => match utf8_char_at(bytes, pos) {
                    Some(width) => pos += width,
                    None => return Err(self.error_at(pos, &invalid_utf8(b))),
                },
                Some(_) => return Err(self.error_at(pos, "control character in string (it must be escaped)")),
                None => return Err(self.error_at(pos, "unterminated string")),
            }
        }
    }

    /// Skips an object or array (at its opening bracket) to its matching closing bracket, going
    /// through strings (and their escapes) but checking nothing else, UTF-8 included: see
    /// [`Extractor::add_text`]. Its range is not to be read with `scanned_text`.
    pub(super) fn skip_balanced(&mut self) -> Scan {
        match crate::plan::delimit::balanced_end(self.bytes, self.pos) {
            Some(end) => {
                self.pos = end;
                Ok(())
            }
            None => Err(self.error("unexpected end of input inside a value".into())),
        }
    }

    #[cold]
    pub(super) fn error_at(&mut self, pos: usize, message: &str) -> Box<ScanError> {
        self.pos = pos;
        self.error(message.into())
    }

    pub(super) fn skip_number(&mut self) -> Scan {
        let digits = |s: &mut Self| {
            let start = s.pos;
            while let Some(b'0'..=b'9') = s.peek() {
                s.pos += 1;
            }
            s.pos > start
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.unexpected("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.unexpected("a digit after the decimal point"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.unexpected("a digit in the exponent"));
            }
        }
        Ok(())
    }

    pub(super) fn skip_literal(&mut self, literal: &[u8]) -> Scan {
        if self.bytes[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(self.error("invalid literal (expected true, false or null)".into()))
        }
    }

    /// Skips any value, validating it.
    pub(super) fn skip_value(&mut self, depth: usize) -> Scan {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.skip_string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(b't') => self.skip_literal(b"true"),
            Some(b'f') => self.skip_literal(b"false"),
            Some(b'n') => self.skip_literal(b"null"),
            Some(b'{') => {
                let depth = self.enter(depth)?;
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.unexpected("a string key"));
                    }
                    self.skip_string()?;
                    self.expect(b':', "`:` after an object key")?;
                    self.skip_value(depth)?;
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.unexpected("`,` or `}` in an object")),
                    }
                }
            }
            Some(b'[') => {
                let depth = self.enter(depth)?;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth)?;
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(self.unexpected("`,` or `]` in an array")),
                    }
                }
            }
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    /// Turns the (already validated) text from `start` to the cursor into a `Value`, with fast paths
    /// for the common leaves.
    #[inline(always)]
    ///
    /// # Safety
    ///
    /// The scan must have accepted the value from `start` to the cursor (see `scanned_text`).
    #[allow(unsafe_code)]
    pub(super) unsafe fn parse_captured(&mut self, start: usize) -> Scan<Val<'a>> {
        // SAFETY: this function's own contract.
        let raw = unsafe { self.scanned_text(start, self.pos) };
        let bytes = raw.as_bytes();
        match bytes[0] {
            b't' => return Ok(Val::owned(Value::Bool(true))),
            b'f' => return Ok(Val::owned(Value::Bool(false))),
            b'n' => return Ok(Val::owned(Value::Null)),
            b'-' | b'0'..=b'9' => {
                let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
                // A number without fraction or exponent is an integer, `-0` included (it is 0);
                // see `integer_negative_zeros` for the same rule inside arrays and objects.
                if digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
                    let magnitude = digits.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
                    return Ok(Val::owned(Value::from(if bytes[0] == b'-' { -magnitude } else { magnitude })));
                }
                if let Some(f) = short_decimal(bytes) {
                    // `1.50` is the float 1.5: its text is kept for messages (`1.5` is not).
                    if bytes.last() == Some(&b'0') {
                        return Ok(written(Value::from(f), raw));
                    }
                    return Ok(Val::owned(Value::from(f)));
                }
            }
            _ => {}
        }
        // A captured object or array may be read anywhere inside (by a filter, or as a whole), so
        // it is held to the same rules as the objects the scanner reads: a repeated key is refused.
        let parsed = match integer_negative_zeros(raw) {
            Some(text) => serde_json::from_str::<StrictValue>(&text),
            None => serde_json::from_str::<StrictValue>(raw),
        };
        match parsed {
            // A float beyond the short forms (`1e3`, `99999999999999999999`, 17 digits): its text
            // is kept for messages, which would otherwise quote `1000.0` or `1e20`.
            Ok(StrictValue(v)) if v.is_f64() => Ok(written(v, raw)),
            Ok(StrictValue(v)) => Ok(Val::owned(v)),
            Err(e) => {
                // serde_json counts from the start of the capture; the error points into the record.
                self.pos = start + offset_of(raw, e.line(), e.column()).saturating_sub(1);
                Err(self.error(format!("invalid value: {}", strip_position(&e))))
            }
        }
    }
}

pub(super) fn written(value: Value, text: &str) -> Val<'_> {
    Val::Written(Box::new(WrittenNumber { value, text }))
}

/// The JSON number rules, once: a number written without a fraction or an exponent is an
/// integer (`-0` is the integer 0); with either it is a float (`1.0`, `-0.0`, `1e3`). serde_json
/// reads `-0` as the float -0.0, so in a captured array or object the sign of each `-0` token is
/// blanked out (a space: offsets in error messages stay right) before it parses. `None` when the
/// text has no such token, which is nearly always.
pub(super) fn integer_negative_zeros(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut found = memchr::memmem::find_iter(bytes, b"-0").peekable();
    found.peek()?;
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut next_candidate = found.next();
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if Some(i) == next_candidate
            && !matches!(bytes.get(i + 2), Some(b'0'..=b'9' | b'.' | b'e' | b'E'))
            && !matches!(i.checked_sub(1).map(|p| bytes[p]), Some(b'e' | b'E'))
        {
            out.get_or_insert_with(|| bytes.to_vec())[i] = b' ';
        }
        while next_candidate.is_some_and(|c| c <= i) {
            next_candidate = found.next();
        }
    }
    // Only an ASCII minus became an ASCII space: still UTF-8.
    out.map(|v| String::from_utf8(v).expect("a byte of ASCII replaced by ASCII"))
}

/// The byte offset in `text` of a 1-based line and column (columns as serde_json counts them,
/// in bytes).
pub(super) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (line_start + column).min(text.len())
}

/// A `Value` that refuses a key repeated in any of its objects.
pub(super) struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

pub(super) struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

/// The width of the valid UTF-8 character at `bytes[pos]` (a non-ASCII byte), or `None`.
#[inline]
pub(super) fn utf8_char_at(bytes: &[u8], pos: usize) -> Option<usize> {
    let width = match bytes[pos] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    // `from_utf8` on the few bytes refuses overlong forms, surrogates and values past U+10FFFF.
    let char_bytes = bytes.get(pos..pos + width)?;
    std::str::from_utf8(char_bytes).ok().map(|_| width)
}

#[cold]
pub(super) fn invalid_utf8(byte: u8) -> String {
    format!("invalid UTF-8 (byte {byte:#04x} does not start a character)")
}

/// `serde_json`'s message without its " at line L column C" (positions are relative to a slice).
pub(super) fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
