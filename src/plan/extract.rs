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

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

use super::path::{Segment, lookup_all};
use super::value::{Item, ScannedArray, Val, WrittenNumber};
use std::rc::Rc;

/// Deepest nesting of arrays and objects accepted (the same limit `serde_json` applies).
pub const MAX_DEPTH: usize = 128;

/// Why a record value is not a JSON object the extractor can read; positions are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.message, self.line, self.column)
    }
}

/// The trie of every prefix the mapping reads; `slot`s number the values it captures.
#[derive(Debug, Default)]
pub struct Extractor {
    root: TrieNode,
    /// Per slot: whether it collects every match (its path has a wildcard) into an array.
    multi: Vec<bool>,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// The slot that receives the value here.
    capture: Option<usize>,
    /// Parse the value here into a `Value` (set by `finish` for captures and for nodes whose
    /// children are easier to serve from a materialised value).
    materialize: bool,
    /// Slots below a materialised node, filled by looking inside its value.
    derived: Vec<(Vec<Segment>, usize)>,
    keys: Vec<(Box<str>, TrieNode)>,
    /// While paths are added, the position of each key in `keys` once a node has more than a few:
    /// a search of `keys` per added path made compiling tens of thousands of sibling fields
    /// quadratic. Emptied by `finish`; records are matched through `key_table`.
    key_positions: HashMap<Box<str>, usize>,
    /// Open-addressing index over `keys` (length a power of two), so matching a record's key costs
    /// one probe instead of a scan of `keys`: slot = `key_hash(…, key_seed) >> key_shift`.
    key_table: Vec<KeyEntry>,
    key_seed: u64,
    key_shift: u32,
    /// No two keys share a slot: a key not in its slot is not in the table.
    one_probe: bool,
    /// The slot of a capture whose text can be stored as it stands: a materialised capture with
    /// nothing derived from it and no `items:` (set by `finish`).
    text_leaf: Option<usize>,
    indexes: Vec<(usize, TrieNode)>,
    wildcard: Option<Box<TrieNode>>,
    /// The array here is an `items:` field's: each item is scanned with the item fields' trie;
    /// or the value here is captured as its JSON text ([`Extractor::add_text`]).
    items: Option<Box<ItemsCapture>>,
}

/// An `items:` field's array: its own slot, and the trie of the paths its item fields read. Or,
/// with `text_only` (and no item paths), a value captured as its JSON text: served by the same
/// out-of-line step, so the scan of every other value pays nothing for it.
#[derive(Debug)]
struct ItemsCapture {
    slot: usize,
    trie: Extractor,
    text_only: bool,
    /// For a text capture: the slot of a member met before it that gives its length in bytes
    /// ([`Extractor::add_text_with_length`]).
    length_slot: Option<usize>,
}

/// Powers of ten that an `f64` holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 16] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A JSON number with a fraction, no exponent and at most 15 digits (`1.25`, `-0.5`), read as
/// serde_json reads it, without its parser: the digits as an integer, divided by a power of ten.
/// Both are exact in an `f64` (below 2^53 and at most 10^15), so the division's rounding is the
/// only one: the correctly rounded value, which serde_json computes too. `None` for other numbers.
fn short_decimal(number: &[u8]) -> Option<f64> {
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
fn given_length(value: Option<&Val<'_>>) -> Option<usize> {
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

/// One entry of a node's key index: the key's length and [`key_words`], so a probe compares keys
/// of up to 16 bytes (most field names) without following a pointer to the key's text.
#[derive(Debug, Clone, Copy)]
struct KeyEntry {
    words: (u64, u64),
    len: u32,
    /// Index into `keys`.
    index: u32,
}

impl KeyEntry {
    const EMPTY: KeyEntry = KeyEntry { words: (0, 0), len: u32::MAX, index: 0 };
}

/// Two words that, with the key's length, determine a key of up to 16 bytes: its bytes zero-padded
/// to 16 (longer keys: their first and last 8 bytes).
fn key_words(key: &[u8]) -> (u64, u64) {
    let n = key.len();
    if n > 16 {
        let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"));
        return (word(0), word(n - 8));
    }
    let mut padded = [0u8; 16];
    padded[..n].copy_from_slice(key);
    (
        u64::from_le_bytes(padded[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(padded[8..].try_into().expect("8 bytes")),
    )
}

/// Masks that keep the first `n` bytes (0 to 16) of two little-endian words.
const KEY_MASKS: [(u64, u64); 17] = {
    let mut masks = [(0, 0); 17];
    let mut n = 0;
    while n <= 16 {
        let low = if n >= 8 { u64::MAX } else { (1 << (8 * n)) - 1 };
        let high = if n >= 16 {
            u64::MAX
        } else if n <= 8 {
            0
        } else {
            (1 << (8 * (n - 8))) - 1
        };
        masks[n] = (low, high);
        n += 1;
    }
    masks
};

/// [`key_words`] of the key `bytes[start..start + len]`, read from the record without a branch on
/// its length when 16 bytes are there to read: key lengths vary from one key to the next, and a
/// branch on them mispredicts.
#[inline(always)]
fn key_words_at(bytes: &[u8], start: usize, len: usize) -> (u64, u64) {
    match bytes.get(start..start + 16) {
        Some(chunk) if len <= 16 => {
            let (low, high) = KEY_MASKS[len];
            (
                u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")) & low,
                u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes")) & high,
            )
        }
        _ => key_words(&bytes[start..start + len]),
    }
}

/// A key of at most 15 plain bytes (ASCII, no escape) that closes within the 16 bytes read at
/// `start`: its length and [`key_words`], from one read of those bytes — its end is found in the
/// same 16 bytes the key is then compared by, without a loop. Most keys are like that; `None`
/// sends the others (and a key near the record's end) the long way.
#[inline(always)]
fn short_key(bytes: &[u8], start: usize) -> Option<(usize, (u64, u64))> {
    let chunk: &[u8; 16] = bytes.get(start..start.checked_add(16)?)?.try_into().expect("16 bytes");
    let len = first_special_of_16(chunk);
    if len >= 16 || chunk[len] != b'"' {
        return None;
    }
    let (keep_low, keep_high) = KEY_MASKS[len];
    let low = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
    let high = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
    Some((len, (low & keep_low, high & keep_high)))
}

/// The index of the first quote, backslash, control or non-ASCII byte of `chunk`; 16 for none.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)] // SSE2 intrinsics; see the SAFETY comment
fn first_special_of_16(chunk: &[u8; 16]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is in the x86_64 baseline, so these intrinsics are always available; the one
    // load is unaligned (`loadu`) and reads the 16 bytes of `chunk`.
    let mask = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let special = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)), _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))),
            _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v),
        );
        (_mm_movemask_epi8(special) | _mm_movemask_epi8(v)) as u32
    };
    (mask | 1 << 16).trailing_zeros() as usize
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn first_special_of_16(chunk: &[u8; 16]) -> usize {
    swar_first_special_of_16(chunk)
}

/// The portable version: two words, each read as `swar_special_byte_offset` reads one.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))] // x86_64 uses it in tests only
#[inline(always)]
fn swar_first_special_of_16(chunk: &[u8; 16]) -> usize {
    let low = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
    let high = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
    let stops = u128::from(swar_special_bits(low)) | (u128::from(swar_special_bits(high)) << 64);
    ((stops.trailing_zeros() / 8) as usize).min(16)
}

#[inline(always)]
fn key_hash(words: (u64, u64), len: usize, seed: u64) -> u64 {
    (words.0 ^ words.1.rotate_left(29) ^ len as u64).wrapping_mul(seed)
}

/// `a == b` for short byte strings (object keys), without a call to `memcmp`: keys are a few bytes
/// long, and the call and its length dispatch cost more than comparing two overlapping words.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        // Two words that may overlap cover every byte.
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

impl TrieNode {
    /// The position of child `key` in `keys`, added if new.
    fn key_position(&mut self, key: &str) -> usize {
        /// Below this many keys a scan is cheaper than hashing.
        const SCANNED: usize = 16;
        if self.keys.len() < SCANNED {
            if let Some(i) = self.keys.iter().position(|(name, _)| &**name == key) {
                return i;
            }
        } else {
            if self.key_positions.is_empty() {
                self.key_positions = self.keys.iter().enumerate().map(|(i, (name, _))| (name.clone(), i)).collect();
            }
            if let Some(&i) = self.key_positions.get(key) {
                return i;
            }
            self.key_positions.insert(key.into(), self.keys.len());
        }
        self.keys.push((key.into(), TrieNode::default()));
        self.keys.len() - 1
    }

    /// Builds the key index. A node with few keys (most of them) gets a table where no two keys
    /// share a slot: a key is then found, or known absent, with one probe and no loop; the
    /// multiplier that spreads them so is searched for here. Other nodes probe linearly.
    fn build_key_table(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let entries: Vec<KeyEntry> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, (key, _))| KeyEntry {
                words: key_words(key.as_bytes()),
                len: u32::try_from(key.len()).expect("a key shorter than 4 GiB"),
                index: u32::try_from(i).expect("fewer than 2^32 keys in one object of a mapping"),
            })
            .collect();
        if entries.len() <= ONE_PROBE_MAX_KEYS {
            for size in [4, 8].map(|f| (entries.len() * f).next_power_of_two().max(8)) {
                let shift = 64 - size.trailing_zeros();
                let mut table = vec![KeyEntry::EMPTY; size];
                for seed in (0..ONE_PROBE_SEEDS).map(spread_seed) {
                    table.fill(KeyEntry::EMPTY);
                    let placed = entries.iter().all(|e| {
                        let slot = &mut table[(key_hash(e.words, e.len as usize, seed) >> shift) as usize];
                        let free = slot.len == u32::MAX;
                        *slot = *e;
                        free
                    });
                    if placed {
                        self.key_table = table;
                        self.key_seed = seed;
                        self.key_shift = shift;
                        self.one_probe = true;
                        return;
                    }
                }
            }
        }
        let size = (entries.len() * 2).next_power_of_two().max(8);
        let mut table = vec![KeyEntry::EMPTY; size];
        let (seed, shift) = (spread_seed(0), 64 - size.trailing_zeros());
        for e in entries {
            let mut slot = (key_hash(e.words, e.len as usize, seed) >> shift) as usize;
            while table[slot].len != u32::MAX {
                slot = (slot + 1) & (size - 1);
            }
            table[slot] = e;
        }
        self.key_table = table;
        self.key_seed = seed;
        self.key_shift = shift;
        self.one_probe = false;
    }

    /// The key `bytes[start..start + len]` (text without escapes) among the node's keys.
    // Always inlined: called once per key of every object the mapping reads, and as a call its
    // register saving cost as much as the lookup.
    #[inline(always)]
    fn find_key_at(&self, bytes: &[u8], start: usize, len: usize) -> Option<usize> {
        if self.key_table.is_empty() {
            return None;
        }
        let words = key_words_at(bytes, start, len);
        // Up to 16 bytes, the words are the whole key.
        self.probe(words, len, |i| len <= 16 || same_bytes(self.keys[i].0.as_bytes(), &bytes[start..start + len]))
    }

    /// [`TrieNode::find_key_at`] for a key of at most 16 bytes, given by its words.
    #[inline(always)]
    fn find_short_key(&self, words: (u64, u64), len: usize) -> Option<usize> {
        debug_assert!(len <= 16);
        if self.key_table.is_empty() {
            return None;
        }
        self.probe(words, len, |_| true)
    }

    /// The key index's probe: the first entry with these words and length that `is_key` confirms
    /// (a key longer than 16 bytes is more than its words), or `None` at an empty slot — at the
    /// first slot, in a one-probe table.
    #[inline(always)]
    fn probe(&self, words: (u64, u64), len: usize, is_key: impl Fn(usize) -> bool) -> Option<usize> {
        let mut slot = (key_hash(words, len, self.key_seed) >> self.key_shift) as usize;
        loop {
            let entry = &self.key_table[slot];
            if entry.len as usize == len && entry.words == words {
                let i = entry.index as usize;
                if is_key(i) {
                    return Some(i);
                }
            } else if self.one_probe || entry.len == u32::MAX {
                return None;
            }
            slot = (slot + 1) & (self.key_table.len() - 1);
        }
    }

    fn find_key(&self, key: &str) -> Option<usize> {
        self.find_key_at(key.as_bytes(), 0, key.len())
    }
}

/// Nodes with at most this many keys get a one-probe table (when a multiplier is found).
const ONE_PROBE_MAX_KEYS: usize = 64;
/// Multipliers tried per table size.
const ONE_PROBE_SEEDS: u64 = 256;

/// The `n`th multiplier to try: odd, with its bits spread (SplitMix64's finaliser).
fn spread_seed(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

impl Extractor {
    /// Registers a prefix and returns its slot; equal prefixes share one slot.
    pub fn add(&mut self, prefix: &[Segment]) -> usize {
        let node = Self::node(&mut self.root, prefix);
        let multi = &mut self.multi;
        *node.capture.get_or_insert_with(|| {
            multi.push(prefix.iter().any(Segment::is_wildcard));
            multi.len() - 1
        })
    }

    /// Registers a prefix whose slot receives the JSON text of the value there, not parsed, as
    /// [`Val::Raw`] — text that is JSON, not a string value: for readers that take a member's
    /// bytes as they are and hand them to a scan of their own (a replay takes a fail envelope's
    /// embedded record this way, and maps it). An object or array is only delimited: its strings
    /// and brackets followed to its end, its contents left for that scan to check, which would
    /// otherwise read every byte twice. Any other value is checked. Nothing else may be read
    /// below it.
    pub fn add_text(&mut self, prefix: &[Segment]) -> usize {
        self.add_text_capture(prefix, None)
    }

    /// [`Extractor::add_text`], with the text's length given by an integer member met before it
    /// (at `length`; its slot is the second value returned): an object or array whose length is
    /// given, and whose last byte closes its first, is taken without being delimited — its bytes
    /// are the reader's to check, as a delimited text's contents are. A missing or unusable
    /// length is ignored: the text is delimited. A wrong length cannot pass for a right one: the
    /// scan goes on after the text it gives, so the document around it no longer reads, or the
    /// text itself does not.
    pub fn add_text_with_length(&mut self, prefix: &[Segment], length: &[Segment]) -> (usize, usize) {
        let length_slot = self.add(length);
        (self.add_text_capture(prefix, Some(length_slot)), length_slot)
    }

    fn add_text_capture(&mut self, prefix: &[Segment], length_slot: Option<usize>) -> usize {
        self.multi.push(false);
        let slot = self.multi.len() - 1;
        let node = Self::node(&mut self.root, prefix);
        debug_assert!(node.items.is_none(), "one capture of a value's text");
        node.items = Some(Box::new(ItemsCapture { slot, trie: Extractor::default(), text_only: true, length_slot }));
        slot
    }

    /// Registers the array of an `items:` field (a prefix without wildcards) and returns its own
    /// slot. The slot receives a [`Val::Array`]: for each item, the values at `item_paths` (plain
    /// paths into the item), found by scanning the item as a record is scanned — no `Value` of
    /// the array is built. Anything but an array is captured as it is, for the field to refuse.
    pub fn add_items(&mut self, prefix: &[Segment], item_paths: &[Vec<Segment>]) -> usize {
        debug_assert!(!prefix.iter().any(Segment::is_wildcard), "one array per record");
        let node = Self::node(&mut self.root, prefix);
        if node.items.is_some() {
            // A second `items:` field on the same array reads the captured value instead.
            return self.add(prefix);
        }
        let mut trie = Extractor::default();
        for path in item_paths {
            trie.add(path);
        }
        trie.finish();
        self.multi.push(false);
        let slot = self.multi.len() - 1;
        node.items = Some(Box::new(ItemsCapture { slot, trie, text_only: false, length_slot: None }));
        slot
    }

    fn node<'n>(root: &'n mut TrieNode, prefix: &[Segment]) -> &'n mut TrieNode {
        let mut node = root;
        for segment in prefix {
            node = match segment {
                Segment::Key(k) => {
                    let i = node.key_position(k);
                    &mut node.keys[i].1
                }
                Segment::Index(idx) => {
                    let i = node.indexes.iter().position(|(n, _)| n == idx).unwrap_or_else(|| {
                        node.indexes.push((*idx, TrieNode::default()));
                        node.indexes.len() - 1
                    });
                    &mut node.indexes[i].1
                }
                Segment::Wildcard => node.wildcard.get_or_insert_with(Box::default),
            };
        }
        node
    }

    /// Whether the slot holds every match of a wildcard path, as an array.
    pub fn is_multi(&self, slot: usize) -> bool {
        self.multi[slot]
    }

    pub fn slot_count(&self) -> usize {
        self.multi.len()
    }

    /// Call once after the last `add`. Captures nested inside other captures become lookups in the
    /// outer value, and so do the children of a node that has both a wildcard and named children
    /// (one value cannot be handed to two trie nodes while streaming).
    pub fn finish(&mut self) {
        fn fold(node: &mut TrieNode) {
            node.key_positions = HashMap::new();
            node.build_key_table();
            let mixed = node.wildcard.is_some() && (!node.keys.is_empty() || !node.indexes.is_empty());
            if node.capture.is_some() || mixed {
                let mut derived = Vec::new();
                collect(node, &mut Vec::new(), &mut derived, true);
                node.text_leaf = node.capture.filter(|_| derived.is_empty() && node.items.is_none());
                node.derived = derived;
                node.materialize = true;
                node.keys.clear();
                node.key_table.clear();
                node.indexes.clear();
                node.wildcard = None;
            } else {
                node.keys.iter_mut().for_each(|(_, n)| fold(n));
                node.indexes.iter_mut().for_each(|(_, n)| fold(n));
                if let Some(w) = node.wildcard.as_deref_mut() {
                    fold(w);
                }
            }
        }
        fn collect(node: &TrieNode, path: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, usize)>, top: bool) {
            if let (false, Some(slot)) = (top, node.capture) {
                out.push((path.clone(), slot));
            }
            // Inside a value parsed whole, an `items:` array is looked up in it like any capture.
            if let (false, Some(items)) = (top, &node.items) {
                out.push((path.clone(), items.slot));
            }
            for (k, child) in &node.keys {
                path.push(Segment::Key(k.clone()));
                collect(child, path, out, false);
                path.pop();
            }
            for (i, child) in &node.indexes {
                path.push(Segment::Index(*i));
                collect(child, path, out, false);
                path.pop();
            }
            if let Some(w) = &node.wildcard {
                path.push(Segment::Wildcard);
                collect(w, path, out, false);
                path.pop();
            }
        }
        fold(&mut self.root);
    }

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
        let mut sink = Sink { slots, multi: &self.multi };
        scanner.value(&self.root, &mut sink, 0)?;
        scanner.skip_ws();
        if scanner.pos != bytes.len() {
            return Err(scanner.error("trailing characters after the JSON object".into()));
        }
        Ok(())
    }
}

/// Where captured values go.
struct Sink<'s, 'a> {
    slots: &'s mut [Option<Val<'a>>],
    multi: &'s [bool],
}

impl<'a> Sink<'_, 'a> {
    fn store(&mut self, slot: usize, value: Val<'a>) {
        if self.multi[slot] {
            match &mut self.slots[slot] {
                Some(Val::List(items)) => items.push(Item::from_val(value)),
                empty => {
                    // Room for a few matches at once: growing from one item is a reallocation per record.
                    let mut items = Vec::with_capacity(4);
                    items.push(Item::from_val(value));
                    *empty = Some(Val::List(items));
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
    fn store_raw(&mut self, slot: usize, text: &'a str) {
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

    fn fill(&mut self, node: &TrieNode, value: Val<'a>) {
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

/// The offset of the first `"`, `\\`, control character or non-ASCII byte in `bytes`
/// (`bytes.len()` if none): where a string scan must look closer (its end, an escape, an error, or
/// a character to check as UTF-8). String bytes are the bulk of a record, so this loop is most of
/// the scan: sixteen bytes at a time with SSE2 (part of every x86_64 CPU), then eight at a time
/// (SWAR) for the last bytes.
#[inline]
pub(crate) fn special_byte_offset(bytes: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    match sse2_blocks(bytes) {
        Ok(found) => found,
        Err(tail) => tail + swar_special_byte_offset(&bytes[tail..]),
    }
    #[cfg(not(target_arch = "x86_64"))]
    swar_special_byte_offset(bytes)
}

/// The position of the first quote, backslash, control or non-ASCII byte at or after `pos` (the
/// end of `bytes` if none): sixteen bytes at a time while there are that many (most strings end in
/// the first read), the rest by [`special_byte_offset`].
#[inline(always)]
pub(crate) fn next_special_byte(bytes: &[u8], mut pos: usize) -> usize {
    loop {
        match bytes.get(pos..pos + 16) {
            Some(chunk) => {
                let found = first_special_of_16(chunk.try_into().expect("16 bytes"));
                pos += found;
                if found < 16 {
                    return pos;
                }
            }
            None => return pos + special_byte_offset(&bytes[pos..]),
        }
    }
}

/// Scans whole 16-byte blocks: `Ok(offset)` of the first special byte, or `Err(start)` of the
/// bytes left after the last whole block.
#[cfg(target_arch = "x86_64")]
#[inline]
fn sse2_blocks(bytes: &[u8]) -> Result<usize, usize> {
    let mut blocks = bytes.chunks_exact(16);
    for (i, block) in blocks.by_ref().enumerate() {
        let found = first_special_of_16(block.try_into().expect("16 bytes"));
        if found < 16 {
            return Ok(i * 16 + found);
        }
    }
    Err(bytes.len() - blocks.remainder().len())
}

/// The high bit of each quote, backslash, control or non-ASCII byte of `word` (eight bytes,
/// little-endian). Exact for the lowest such byte, which is all its readers look at: a borrow can
/// mark a byte above it.
#[inline(always)]
fn swar_special_bits(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of a byte is set where the byte was zero.
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
        | (word & HIGH)
}

/// The portable version: eight bytes at a time in a `u64`.
#[inline]
pub(crate) fn swar_special_byte_offset(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let stop = swar_special_bits(u64::from_le_bytes(chunk.try_into().expect("an 8-byte slice")));
        if stop != 0 {
            return pos + (stop.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
            return pos;
        }
        pos += 1;
    }
    pos
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Boxed so the `Ok` path of every scanner step stays a register-sized `Result`.
type Scan<T = ()> = Result<T, Box<ScanError>>;

impl<'a> Scanner<'a> {
    /// The text of `bytes[start..end]`, a range the scan has already gone through.
    #[inline]
    #[allow(unsafe_code)] // skips a second UTF-8 check; see the SAFETY comment
    fn scanned_text(&self, start: usize, end: usize) -> &'a str {
        let bytes = &self.bytes[start..end];
        debug_assert!(std::str::from_utf8(bytes).is_ok(), "only scanned ranges are read as text");
        // SAFETY: the scanner reads every byte of a range before it is read as text, and accepts
        // non-ASCII bytes only inside strings, where `skip_string` checks each character as
        // UTF-8; outside strings it accepts only ASCII (structure, numbers, literals, whitespace).
        // Ranges start and end at ASCII bytes (quotes, brackets, digits), so on char boundaries.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    #[cold]
    fn error(&mut self, message: String) -> Box<ScanError> {
        let upto = &self.bytes[..self.pos.min(self.bytes.len())];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = upto.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        Box::new(ScanError { message, line, column: self.pos - line_start + 1 })
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8, what: &str) -> Scan {
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
    fn unexpected(&mut self, expected: &str) -> Box<ScanError> {
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
    fn not_json(&mut self) -> Box<ScanError> {
        let rest = &self.bytes[self.pos..];
        let shown: String = String::from_utf8_lossy(&rest[..rest.len().min(24)]).chars().take(16).collect();
        let more = if rest.len() > shown.len() { "…" } else { "" };
        self.error(format!("not JSON: the text starts `{shown}{more}`"))
    }

    fn enter(&mut self, depth: usize) -> Scan<usize> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        Ok(depth + 1)
    }

    /// A value at a trie node.
    fn value(&mut self, node: &TrieNode, sink: &mut Sink<'_, 'a>, depth: usize) -> Scan {
        self.skip_ws();
        if let Some(items) = &node.items {
            return self.items_and_value(node, items, sink, depth);
        }
        self.value_here(node, sink, depth)
    }

    /// An `items:` array, and then, when other fields read it too, the value for them. Out of
    /// line, so that [`value`](Self::value), the scan's recursion, stays small enough for the
    /// compiler to inline the key lookup into it.
    #[inline(never)]
    fn items_and_value(
        &mut self,
        node: &TrieNode,
        items: &ItemsCapture,
        sink: &mut Sink<'_, 'a>,
        depth: usize,
    ) -> Scan {
        let start = self.pos;
        self.items(items, sink, depth)?;
        let others = node.materialize || !node.keys.is_empty() || !node.indexes.is_empty() || node.wildcard.is_some();
        if !others {
            return Ok(());
        }
        // Other fields read this value too: scan it again for them.
        self.pos = start;
        self.value_here(node, sink, depth)
    }

    /// A value at a trie node, whitespace skipped, the node's `items` already served.
    #[inline(always)]
    fn value_here(&mut self, node: &TrieNode, sink: &mut Sink<'_, 'a>, depth: usize) -> Scan {
        if node.materialize {
            let start = self.pos;
            // Strings are the common capture; their scan already says whether they had escapes.
            if self.peek() == Some(b'"') && !self.skip_string()? {
                // Text has no derived captures; it goes straight into its slot.
                if let Some(slot) = node.capture {
                    sink.store_raw(slot, self.scanned_text(start + 1, self.pos - 1));
                }
                return Ok(());
            }
            if self.pos == start {
                self.skip_value(depth)?;
            }
            let value = self.parse_captured(start)?;
            sink.fill(node, value);
            return Ok(());
        }
        match self.peek() {
            Some(b'{') if !node.keys.is_empty() || node.wildcard.is_some() => self.object(node, sink, depth),
            Some(b'[') if !node.indexes.is_empty() || node.wildcard.is_some() => self.array(node, sink, depth),
            _ => self.skip_value(depth),
        }
    }

    /// An `items:` field's array, each item scanned with the item fields' trie into its own row
    /// of slots.
    fn items(&mut self, capture: &ItemsCapture, sink: &mut Sink<'_, 'a>, depth: usize) -> Scan {
        let start = self.pos;
        if capture.text_only {
            let text = match self.peek() {
                Some(b'{' | b'[') => {
                    let given = capture.length_slot.and_then(|slot| given_length(sink.slots[slot].as_ref()));
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
                    self.scanned_text(start, self.pos)
                }
            };
            sink.slots[capture.slot] = Some(Val::Raw(text));
            return Ok(());
        }
        if self.peek() != Some(b'[') {
            self.skip_value(depth)?;
            let value = self.parse_captured(start)?;
            sink.slots[capture.slot] = Some(value);
            return Ok(());
        }
        let width = capture.trie.slot_count();
        let mut slots: Vec<Option<Val<'a>>> = Vec::new();
        let mut len = 0;
        self.elements(depth, |scanner, _, depth| {
            slots.resize(slots.len() + width, None);
            let row = slots.len() - width;
            len += 1;
            let mut item_sink = Sink { slots: &mut slots[row..], multi: &capture.trie.multi };
            scanner.value(&capture.trie.root, &mut item_sink, depth)
        })?;
        let text = self.scanned_text(start, self.pos);
        sink.slots[capture.slot] = Some(Val::Array(Rc::new(ScannedArray { text, len, slots })));
        Ok(())
    }

    fn object(&mut self, node: &TrieNode, sink: &mut Sink<'_, 'a>, depth: usize) -> Scan {
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
                            sink.store_raw(slot, self.scanned_text(start + 1, self.pos - 1));
                        }
                        _ => {
                            self.pos = start;
                            self.value(child, sink, depth)?;
                        }
                    }
                }
                None => match (&node.wildcard, self.peek()) {
                    (Some(w), _) => self.value(w, sink, depth)?,
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

    fn array(&mut self, node: &TrieNode, sink: &mut Sink<'_, 'a>, depth: usize) -> Scan {
        self.elements(depth, |scanner, index, depth| match node.indexes.iter().find(|(i, _)| *i == index) {
            Some((_, child)) => scanner.value(child, sink, depth),
            None => match &node.wildcard {
                Some(w) => scanner.value(w, sink, depth),
                None => scanner.skip_value(depth),
            },
        })
    }

    /// The elements of an array, at its `[`: `each(scanner, index, depth)` reads one; the nesting
    /// limit, the commas and the closing bracket are checked here for every array the trie reads.
    #[inline(always)]
    fn elements(&mut self, depth: usize, mut each: impl FnMut(&mut Self, usize, usize) -> Scan) -> Scan {
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
    fn key(&mut self, node: &TrieNode) -> Scan<Option<usize>> {
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
        let decoded: String = serde_json::from_str(self.scanned_text(start - 1, self.pos)).map_err(|e| {
            self.pos = start - 1;
            self.error(format!("invalid string: {}", strip_position(&e)))
        })?;
        Ok(node.find_key(&decoded))
    }

    /// Skips a string (at its opening quote), validating it; returns whether it had escapes.
    /// Inlined into its three callers: strings are short, and the call itself (saving registers,
    /// reloading the vector constants) cost as much as scanning a typical one.
    #[inline(always)]
    fn skip_string(&mut self) -> Scan<bool> {
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
    fn skip_balanced(&mut self) -> Scan {
        match super::delimit::balanced_end(self.bytes, self.pos) {
            Some(end) => {
                self.pos = end;
                Ok(())
            }
            None => Err(self.error("unexpected end of input inside a value".into())),
        }
    }

    #[cold]
    fn error_at(&mut self, pos: usize, message: &str) -> Box<ScanError> {
        self.pos = pos;
        self.error(message.into())
    }

    fn skip_number(&mut self) -> Scan {
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

    fn skip_literal(&mut self, literal: &[u8]) -> Scan {
        if self.bytes[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Ok(())
        } else {
            Err(self.error("invalid literal (expected true, false or null)".into()))
        }
    }

    /// Skips any value, validating it.
    fn skip_value(&mut self, depth: usize) -> Scan {
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
    fn parse_captured(&mut self, start: usize) -> Scan<Val<'a>> {
        let raw = self.scanned_text(start, self.pos);
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

fn written(value: Value, text: &str) -> Val<'_> {
    Val::Written(Box::new(WrittenNumber { value, text }))
}

/// The JSON number rules, once: a number written without a fraction or an exponent is an
/// integer (`-0` is the integer 0); with either it is a float (`1.0`, `-0.0`, `1e3`). serde_json
/// reads `-0` as the float -0.0, so in a captured array or object the sign of each `-0` token is
/// blanked out (a space: offsets in error messages stay right) before it parses. `None` when the
/// text has no such token, which is nearly always.
fn integer_negative_zeros(raw: &str) -> Option<String> {
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
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    (line_start + column).min(text.len())
}

/// A `Value` that refuses a key repeated in any of its objects.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

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
fn utf8_char_at(bytes: &[u8], pos: usize) -> Option<usize> {
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
fn invalid_utf8(byte: u8) -> String {
    format!("invalid UTF-8 (byte {byte:#04x} does not start a character)")
}

/// `serde_json`'s message without its " at line L column C" (positions are relative to a slice).
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::path::parse_source;
    use serde_json::json;

    /// Scans and turns every slot into a plain `Value` for comparisons.
    fn values(x: &Extractor, bytes: &[u8]) -> Vec<Option<Value>> {
        x.scan(bytes).unwrap().into_iter().map(|v| v.map(Val::into_value)).collect()
    }

    fn extractor(paths: &[&str]) -> (Extractor, Vec<usize>) {
        let mut x = Extractor::default();
        let slots = paths.iter().map(|p| x.add(&parse_source(p).unwrap().prefix)).collect();
        x.finish();
        (x, slots)
    }

    #[test]
    fn special_bytes_are_found_at_every_offset() {
        for len in 0..40 {
            let plain = "a".repeat(len);
            assert_eq!(special_byte_offset(plain.as_bytes()), len);
            for at in 0..len {
                for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                    let mut bytes = plain.clone().into_bytes();
                    bytes[at] = special;
                    assert_eq!(special_byte_offset(&bytes), at, "{special:#x} at {at} of {len}");
                }
            }
        }
        // Bytes just above the specials are not special; non-ASCII bytes are (checked as UTF-8).
        assert_eq!(special_byte_offset("#]!\x20cao~\x7f".as_bytes()), "#]!\x20cao~\x7f".len());
        assert_eq!(special_byte_offset("#]!\x20ção".as_bytes()), 4);
    }

    #[test]
    fn the_vector_and_portable_scans_agree_with_a_byte_loop() {
        // Every byte value at every position of blocks around the 16-byte boundary, on a
        // background of high bytes (signed-compare mistakes would show there).
        for background in [b'a', 0x80, 0xff, 0x20] {
            for len in [15, 16, 17, 31, 32, 33, 48] {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut bytes = vec![background; len];
                        bytes[at] = b;
                        let naive = bytes
                            .iter()
                            .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))
                            .unwrap_or(len);
                        assert_eq!(special_byte_offset(&bytes), naive, "{b:#x} at {at} of {len} on {background:#x}");
                        assert_eq!(swar_special_byte_offset(&bytes), naive);
                    }
                }
            }
        }
    }

    #[test]
    fn key_index_finds_every_key_and_only_those() {
        // Keys of every length, short and long (over 16 bytes only the first and last 8 are in
        // the words); a large node (probed) and small ones (one probe).
        let names: Vec<String> = (0..300)
            .map(|i| format!("k{i}"))
            .chain((0..50).map(|i| format!("medium_{i:03}")))
            .chain((0..50).map(|i| format!("a_rather_long_field_name_{i}_of_the_record")))
            .chain(["".into(), "a".into(), "ab".into(), "abcdefgh".into(), "abcdefghijklmnop".into()])
            .collect();
        let small: Vec<String> =
            ["id", "number", "status", "created_at", "a_rather_long_field_name_of_the_order", "x", ""]
                .map(String::from)
                .into();
        for (names, one_probe) in [(&names, false), (&small, true), (&names[..40].to_vec(), true)] {
            let mut node = TrieNode::default();
            for n in names {
                node.keys.push((n.as_str().into(), TrieNode::default()));
            }
            node.build_key_table();
            assert_eq!(node.one_probe, one_probe, "{} keys", names.len());
            for (i, n) in names.iter().enumerate() {
                assert_eq!(node.find_key(n), Some(i), "{n}");
                // Read from inside a record too: with 16 bytes to read past the key, and without.
                let record = format!("{{\"{n}\":1,\"padding\":\"................\"}}");
                assert_eq!(node.find_key_at(record.as_bytes(), 2, n.len()), Some(i), "{n} in a record");
                let at_end = format!("\"{n}");
                assert_eq!(node.find_key_at(at_end.as_bytes(), 1, n.len()), Some(i), "{n} at the end");
            }
            for missing in ["k300", "b", "k-1", "abc", "K1", "medium_050", "abcdefgi", "abcdefghijklmnoq", "ids"] {
                assert_eq!(node.find_key(missing), None, "{missing}");
            }
            // A key that differs from a registered one in any single byte is not found.
            for name in names.iter().filter(|n| !n.is_empty()) {
                for at in 0..name.len() {
                    let mut changed = name.clone().into_bytes();
                    changed[at] = b'#';
                    let changed = String::from_utf8(changed).unwrap();
                    assert_eq!(node.find_key(&changed), None, "{name} with byte {at} changed");
                }
            }
        }
        assert_eq!(TrieNode::default().find_key("x"), None);
    }

    #[test]
    fn key_words_read_from_a_record_are_the_key_s_own() {
        let record: Vec<u8> = (0..64u8).map(|i| b'A' + i % 50).collect();
        for start in 0..record.len() {
            for len in 0..=(record.len() - start).min(24) {
                assert_eq!(
                    key_words_at(&record, start, len),
                    key_words(&record[start..start + len]),
                    "{len} bytes at {start}"
                );
            }
        }
    }

    #[test]
    fn short_key_comparison_sees_every_byte() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same_bytes(&a, &a.clone()), "length {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "length {n}, byte {at} differs");
            }
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0, "length {n} vs shorter");
        }
    }

    #[test]
    fn captures_only_registered_prefixes() {
        let (x, s) = extractor(&["$.a.b", "$.c[1]", "$.nope"]);
        let slots = values(&x, br#"{"z": [1, {"q": 2}], "a": {"b": "B", "x": 1}, "c": [10, 20, 30]}"#);
        assert_eq!(slots[s[0]], Some(json!("B")));
        assert_eq!(slots[s[1]], Some(json!(20)));
        assert_eq!(slots[s[2]], None);
    }

    #[test]
    fn captured_text_is_the_same_whether_plain_escaped_or_not_text() {
        let (x, s) = extractor(&["$.a", "$.b", "$.c", "$.d", "$.w[*]"]);
        let record = br#"{"a": "plain", "b": "S\u00e3o \"quoted\"", "c": 12, "skipped": "x\ny", "d": {"k": "v"}, "w": ["p", "e\u00e9"]}"#;
        let slots = values(&x, record);
        assert_eq!(slots[s[0]], Some(json!("plain")));
        assert_eq!(slots[s[1]], Some(json!("São \"quoted\"")));
        assert_eq!(slots[s[2]], Some(json!(12)));
        assert_eq!(slots[s[3]], Some(json!({"k": "v"})));
        assert_eq!(slots[s[4]], Some(json!(["p", "eé"])));
        // Plain text is lent from the record, not copied.
        assert!(matches!(x.scan(record).unwrap()[s[0]], Some(Val::Raw("plain"))));
        // An unread string is still checked.
        assert!(x.scan(br#"{"a": "ok", "skipped": "bad \x escape"}"#).is_err());
    }

    #[test]
    fn text_captures_delimit_objects_and_leave_their_contents_to_the_reader() {
        let mut x = Extractor::default();
        let value = x.add_text(&parse_source("$.value").unwrap().prefix);
        let after = x.add(&parse_source("$.after").unwrap().prefix);
        x.finish();
        let text = |record: &str| -> Result<Option<String>, String> {
            let slots = x.scan(record.as_bytes()).map_err(|e| e.to_string())?;
            Ok(slots[value].as_ref().map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| format!("{v:?}"))))
        };
        let embedded = r#"{"a": "}]\"{[", "b": [1, {"c": "\\"}], "é": "ü"}"#;
        let record = format!(r#"{{"value": {embedded}, "after": 7}}"#);
        let slots = x.scan(record.as_bytes()).unwrap();
        assert!(matches!(slots[value], Some(Val::Raw(t)) if t == embedded), "{:?}", slots[value]);
        assert_eq!(slots[after].clone().map(Val::into_value), Some(json!(7)), "the members after it are read");
        // Only delimited: contents that are not JSON are for the reader of the text to refuse.
        assert_eq!(text(r#"{"value": {"a": tru}}"#), Ok(Some(r#"{"a": tru}"#.into())));
        // Other values are checked as any value is.
        assert_eq!(text(r#"{"value": "text"}"#), Ok(Some(r#""text""#.into())));
        assert!(text(r#"{"value": tru}"#).is_err());
        // What cannot be delimited, or is not UTF-8, or breaks the envelope around it, is refused.
        for broken in
            [r#"{"value": {"a": "b}"#, r#"{"value": {"a": [1}"#, r#"{"value": {"a": 1}}}"#, r#"{"value": [1]] }"#]
        {
            assert!(text(broken).is_err(), "{broken}");
        }
        let mut not_utf8 = br#"{"value": {"a": "x"}}"#.to_vec();
        not_utf8[17] = 0xff;
        assert!(x.scan(&not_utf8).is_err());
    }

    #[test]
    fn a_text_of_given_length_is_taken_without_being_delimited() {
        let mut x = Extractor::default();
        let (value, length) = x.add_text_with_length(
            &parse_source("$.value").unwrap().prefix,
            &parse_source("$.value_length").unwrap().prefix,
        );
        let after = x.add(&parse_source("$.after").unwrap().prefix);
        x.finish();
        let text = |record: &str| -> Result<String, String> {
            let slots = x.scan(record.as_bytes()).map_err(|e| e.to_string())?;
            assert_eq!(slots[after].clone().map(Val::into_value), Some(json!(7)), "{record}");
            match &slots[value] {
                Some(Val::Raw(t)) => Ok((*t).to_owned()),
                other => Err(format!("{other:?}")),
            }
        };
        let envelope =
            |length: &str, embedded: &str| format!(r#"{{"value_length": {length}, "value": {embedded}, "after": 7}}"#);
        // Taken as given: brackets that do not balance show it was not delimited.
        let unbalanced = r#"{"a": [}"#;
        assert_eq!(text(&envelope(&unbalanced.len().to_string(), unbalanced)), Ok(unbalanced.into()));
        assert!(text(&envelope("null", unbalanced)).is_err(), "without a length it is delimited, and fails");
        let embedded = r#"{"a": {"b": "}"}, "c": [1]}"#;
        let n = embedded.len();
        assert_eq!(text(&envelope(&n.to_string(), embedded)), Ok(embedded.into()));
        let record = envelope(&n.to_string(), embedded);
        let length_read = x.scan(record.as_bytes()).unwrap()[length].clone().map(Val::into_value);
        assert_eq!(length_read, Some(json!(n)), "the length is read as a member too");
        // A length that does not end on the closing bracket, or is not a length, is ignored.
        for unusable in [
            (n - 1).to_string(),
            (n + 1).to_string(),
            "100000".into(),
            "-3".into(),
            "1".into(),
            "0".into(),
            r#""27""#.into(),
        ] {
            assert_eq!(text(&envelope(&unusable, embedded)), Ok(embedded.into()), "{unusable}");
        }
        // A wrong length that ends on a closing bracket inside the record: the envelope no longer reads.
        let inner_end = embedded.find(r#""}"}"#).unwrap() + 4;
        assert_eq!(&embedded[..inner_end], r#"{"a": {"b": "}"}"#);
        assert!(text(&envelope(&inner_end.to_string(), embedded)).is_err());
        // After the text: its UTF-8 is still checked.
        let mut not_utf8 = envelope("10", r#"{"a": "x"}"#).into_bytes();
        let at = not_utf8.iter().position(|b| *b == b'x').unwrap();
        not_utf8[at] = 0xff;
        assert!(x.scan(&not_utf8).is_err());
    }

    /// A seeded xorshift generator: the same random cases on every run.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn short_keys_are_read_as_the_long_way_reads_them() {
        // Keys of every length up to 20, with a quote, backslash, control or non-ASCII byte at
        // random places, followed by `":` and more: where the short read answers, it finds the
        // key's end and words exactly; it leaves everything else to the long way.
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let (mut short, mut long) = (0, 0);
        for _ in 0..100_000 {
            let len = (next() % 21) as usize;
            let mut key: Vec<u8> = (0..len).map(|_| b'a' + (next() % 26) as u8).collect();
            if len > 0 && next().is_multiple_of(4) {
                key[(next() % len as u64) as usize] = [b'\\', 0x01, 0xc3, b'\t'][(next() % 4) as usize];
            }
            let mut record = b"{\"".to_vec();
            record.extend_from_slice(&key);
            record.extend_from_slice(b"\":1,\"tail\":\"0123456789abcdef\"}");
            let cut = next().is_multiple_of(3).then(|| (next() as usize) % record.len());
            let record = &record[..cut.unwrap_or(record.len())];
            match short_key(record, 2) {
                Some((n, words)) => {
                    short += 1;
                    assert!(n < 16 && !key[..n].iter().any(|b| matches!(b, b'"' | b'\\') || !(0x20..0x80).contains(b)));
                    assert_eq!(n, len, "{:?}", String::from_utf8_lossy(record));
                    assert_eq!(words, key_words(&key), "{:?}", String::from_utf8_lossy(&key));
                }
                None => long += 1,
            }
        }
        assert!(short > 30_000 && long > 30_000, "both ways taken: {short} short, {long} long");
        // The portable reading of 16 bytes agrees with the one in use, at every position.
        for _ in 0..20_000 {
            let mut chunk: [u8; 16] = std::array::from_fn(|_| b' ' + (next() % 95) as u8);
            for _ in 0..(next() % 3) {
                chunk[(next() % 16) as usize] = [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff][(next() % 7) as usize];
            }
            let expected =
                chunk.iter().position(|b| matches!(b, b'"' | b'\\') || !(0x20..0x80).contains(b)).unwrap_or(16);
            assert_eq!(first_special_of_16(&chunk), expected, "{chunk:?}");
            assert_eq!(swar_first_special_of_16(&chunk), expected, "{chunk:?}");
        }
        // At the record's end, or past it: the long way.
        assert_eq!(short_key(br#"{"a":1}"#, 2), None);
        assert_eq!(short_key(b"", usize::MAX), None);
    }

    #[test]
    fn short_decimals_read_as_serde_json_reads_them() {
        // Every length and position of the point, random digits, both signs: the same bits.
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for _ in 0..200_000 {
            let digits = 2 + (next() % 14) as usize;
            let point = 1 + (next() % (digits as u64 - 1)) as usize;
            let mut text: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            if text.starts_with('0') && point > 1 {
                text.replace_range(..1, "1");
            }
            text.insert(point, '.');
            if next().is_multiple_of(2) {
                text.insert(0, '-');
            }
            let expected: f64 = serde_json::from_str(&text).unwrap();
            let fast = short_decimal(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(fast.to_bits(), expected.to_bits(), "{text}");
            checked += 1;
        }
        assert_eq!(checked, 200_000);
        for text in ["-0.0", "0.1", "0.3", "123456789012.345", "12345678901234.5", "-99999999999999.9"] {
            let expected: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(short_decimal(text.as_bytes()).map(f64::to_bits), Some(expected.to_bits()), "{text}");
        }
        // Sixteen digits, an exponent, no fraction (or not JSON): left to serde_json or refused before.
        for text in ["1234567890123.456", "1.5e3", "1e5", "12", "1.", ".5", "-", "1.2.3"] {
            assert_eq!(short_decimal(text.as_bytes()), None, "{text}");
        }
        let (x, s) = extractor(&["$.w"]);
        assert_eq!(values(&x, br#"{"w": 1.25}"#)[s[0]], Some(json!(1.25)));
        assert_eq!(
            values(&x, br#"{"w": -0.0}"#)[s[0]].clone().map(|v| v.as_f64().unwrap().to_bits()),
            Some((-0.0f64).to_bits())
        );
    }

    #[test]
    fn nested_captures_are_derived_from_the_outer_value() {
        let (x, s) = extractor(&["$.a.b", "$.a"]);
        let slots = values(&x, br#"{"a": {"b": 1}}"#);
        assert_eq!(slots[s[1]], Some(json!({"b": 1})));
        assert_eq!(slots[s[0]], Some(json!(1)));
    }

    #[test]
    fn wildcards_collect_every_match_in_order() {
        let (x, s) = extractor(&["$.items[*].sku", "$.o.*", "$.items[0].sku"]);
        let slots = values(&x, br#"{"items": [{"sku": "a"}, {"qty": 1}, {"sku": "c"}], "o": {"x": 1, "y": [2]}}"#);
        assert_eq!(slots[s[0]], Some(json!(["a", "c"])));
        assert_eq!(slots[s[1]], Some(json!([1, [2]])));
        assert_eq!(slots[s[2]], Some(json!("a")), "a wildcard beside an index is served from the materialised array");
        assert!(x.is_multi(s[0]) && x.is_multi(s[1]) && !x.is_multi(s[2]));
        let slots = values(&x, br#"{"items": []}"#);
        assert_eq!(slots[s[0]], None, "no match leaves the slot empty");
    }

    #[test]
    fn values_keep_serde_json_number_semantics() {
        let (x, s) = extractor(&["$.a", "$.b", "$.c", "$.d", "$.e"]);
        let slots = values(
            &x,
            br#"{"a": -42, "b": 18446744073709551615, "c": 123456789012345678901234567890, "d": 1.5e3, "e": "x\"y"}"#,
        );
        assert_eq!(slots[s[0]], Some(json!(-42)));
        assert_eq!(slots[s[1]], Some(json!(u64::MAX)));
        assert_eq!(slots[s[2]], Some(json!(1.2345678901234568e29)));
        assert_eq!(slots[s[3]], Some(json!(1500.0)));
        assert_eq!(slots[s[4]], Some(json!("x\"y")));
        assert!(x.scan(br#"{"a": 1e999}"#).unwrap_err().message.contains("number out of range"));
    }

    #[test]
    fn rejects_what_is_not_json() {
        let (x, _) = extractor(&["$.a"]);
        let cases: &[(&[u8], &str)] = &[
            (b"", "the value is empty"),
            (b"   ", "the value is empty"),
            (b"[1,2]", "expected a JSON object, found an array"),
            (b"\"s\"", "found a string"),
            (b"42", "found a number"),
            (b"null", "expected a JSON object, found null"),
            (b"true", "found a boolean"),
            // Text that only starts like a JSON value is not JSON, and says so where it stops.
            (b"nul", "not JSON: "),
            (b"nope", "not JSON: invalid literal"),
            (b"12ab", "not JSON: text after the value at line 1 column 3"),
            (b"hello world", "not JSON: the text starts `hello world` at line 1 column 1"),
            (b"{\"a\": 1", "unexpected end of input"),
            (b"{\"a\": 1} x", "trailing characters"),
            (b"{\"a\": 01}", "expected `,` or `}`"),
            (b"{\"b\": [1,]}", "expected a JSON value, found `]`"),
            (b"{\"b\": tru}", "invalid literal"),
            (b"{\"b\": \"a\tb\"}", "control character"),
            (b"{\"b\": \"\\x\"}", "invalid escape"),
            (b"{\"b\": \"\\u12\"}", "invalid \\u escape"),
            (b"{\"b\": 1.}", "a digit after the decimal point"),
            (b"{\"b\": -}", "expected a digit"),
            (b"{b: 1}", "expected a string key"),
            (b"{\"b\" 1}", "expected `:`"),
            (b"{\"a\": \"\xff\"}", "invalid UTF-8"),
            (b"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""),
        ];
        for (input, want) in cases {
            let e = x.scan(input).expect_err(&String::from_utf8_lossy(input));
            assert!(e.to_string().contains(want), "{:?}: {e}", String::from_utf8_lossy(input));
        }
        assert!(x.scan(br#"{"a": 1, "b": 2, "b": 3}"#).is_ok(), "duplicates the mapping never reads do not matter");
        assert!(x.scan(b" {\"a\":1} \n").is_ok());
        // A UTF-8 byte-order mark before the value is not part of it.
        assert_eq!(x.scan(b"\xEF\xBB\xBF{\"a\":1}").unwrap()[0], Some(Val::owned(json!(1))));
        assert!(x.scan(b"{\"a\":1}\xEF\xBB\xBF").is_err(), "only at the start");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let (x, _) = extractor(&["$.a"]);
        let e = x.scan(b"{\n  \"a\": 1,\n  \"b\": ?\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 8));
    }

    #[test]
    fn nesting_is_limited() {
        let (x, _) = extractor(&["$.a"]);
        let ok = format!("{{\"b\":{}1{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(x.scan(ok.as_bytes()).is_ok());
        let deep = format!("{{\"b\":{}1{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(x.scan(deep.as_bytes()).unwrap_err().message.contains("nesting deeper than 128"));
        let hostile = format!("{{\"a\":{}", "[".repeat(1_000_000));
        assert!(x.scan(hostile.as_bytes()).is_err());
    }

    #[test]
    fn escaped_keys_still_match() {
        let (x, s) = extractor(&["$.café", "$['a\"b']"]);
        let slots = values(&x, br#"{"caf\u00e9": 1, "a\"b": 2}"#);
        assert_eq!(slots[s[0]], Some(json!(1)));
        assert_eq!(slots[s[1]], Some(json!(2)), "a double quote inside single quotes needs no escape");
    }

    #[test]
    fn numbers_follow_the_json_number_rules_whether_leaf_or_nested() {
        let (x, s) = extractor(&["$.leaf", "$.nested"]);
        // Without fraction or exponent, an integer (`-0` is 0); with either, a float.
        for (literal, integer) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("-1", Some(-1)),
            ("7", Some(7)),
            ("123456789012345678", Some(123456789012345678)),
            ("-123456789012345678", Some(-123456789012345678)),
            ("-0.0", None),
            ("0.0", None),
            ("1e2", None),
            ("1e-0", None),
            ("-0e0", None),
        ] {
            let text = format!(r#"{{"leaf": {literal}, "nested": [{literal}, "-0", {{"k": {literal}}}]}}"#);
            let slots = values(&x, text.as_bytes());
            let leaf = slots[s[0]].clone().expect("the leaf is found");
            let nested = slots[s[1]].clone().expect("the array is found");
            assert_eq!(leaf.as_i64(), integer, "leaf {literal}");
            assert_eq!(nested[0].as_i64(), integer, "in an array: {literal}");
            assert_eq!(nested[2]["k"].as_i64(), integer, "in an object: {literal}");
            assert_eq!(nested[1], Value::from("-0"), "a string is never touched");
            if integer.is_none() {
                let float: f64 = literal.parse().unwrap();
                assert_eq!(leaf.as_f64(), Some(float), "leaf {literal}");
                assert!(leaf.is_f64() && nested[0].is_f64(), "{literal} stays a float");
            }
        }
    }

    #[test]
    fn agrees_with_serde_json_on_what_is_valid() {
        let (x, _) = extractor(&["$.a.b", "$.c[*]"]);
        for text in [
            r#"{"a": {"b": [1, 2.5e-3, -0, "\ud83d\ude00", null, true, false, {}]}, "c": [{"d": []}]}"#,
            r#"{"a": "not an object", "c": 3}"#,
            r#"{"a": {"b": 1}, "c": [1, 2, 3], "z": {"deep": [[[[{"x": "y"}]]]]}}"#,
        ] {
            assert!(serde_json::from_str::<Value>(text).is_ok());
            assert!(x.scan(text.as_bytes()).is_ok(), "{text}");
        }
    }
}
