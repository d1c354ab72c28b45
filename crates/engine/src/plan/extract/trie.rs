//! The trie of the paths a mapping reads, and its nodes' key tables.

use std::collections::HashMap;

use super::keys::{KeyEntry, key_hash, key_words, key_words_at, same_bytes};
use crate::plan::path::Segment;

/// The trie of every prefix the mapping reads; `slot`s number the values it captures.
#[derive(Debug, Default)]
pub struct Extractor {
    pub(super) root: TrieNode,
    /// Per slot: whether it collects every match (its path has a wildcard) into an array.
    pub(super) multi: Vec<bool>,
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
    /// slot. The slot receives a [`Val::ScannedItems`]: for each item, the values at `item_paths` (plain
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

    /// How many slots a record fills.
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
}

#[derive(Debug, Default)]
pub(super) struct TrieNode {
    /// The slot that receives the value here.
    pub(super) capture: Option<usize>,
    /// Parse the value here into a `Value` (set by `finish` for captures and for nodes whose
    /// children are easier to serve from a materialised value).
    pub(super) materialize: bool,
    /// Slots below a materialised node, filled by looking inside its value.
    pub(super) derived: Vec<(Vec<Segment>, usize)>,
    pub(super) keys: Vec<(Box<str>, TrieNode)>,
    /// While paths are added, the position of each key in `keys` once a node has more than a few:
    /// a search of `keys` per added path made compiling tens of thousands of sibling fields
    /// quadratic. Emptied by `finish`; records are matched through `key_table`.
    pub(super) key_positions: HashMap<Box<str>, usize>,
    /// Open-addressing index over `keys` (length a power of two), so matching a record's key costs
    /// one probe instead of a scan of `keys`: slot = `key_hash(…, key_seed) >> key_shift`.
    pub(super) key_table: Vec<KeyEntry>,
    pub(super) key_seed: u64,
    pub(super) key_shift: u32,
    /// No two keys share a slot: a key not in its slot is not in the table.
    pub(super) one_probe: bool,
    /// The slot of a capture whose text can be stored as it stands: a materialised capture with
    /// nothing derived from it and no `items:` (set by `finish`).
    pub(super) text_leaf: Option<usize>,
    pub(super) indexes: Vec<(usize, TrieNode)>,
    pub(super) wildcard: Option<Box<TrieNode>>,
    /// The array here is an `items:` field's: each item is scanned with the item fields' trie;
    /// or the value here is captured as its JSON text ([`Extractor::add_text`]).
    pub(super) items: Option<Box<ItemsCapture>>,
}

/// An `items:` field's array: its own slot, and the trie of the paths its item fields read. Or,
/// with `text_only` (and no item paths), a value captured as its JSON text: served by the same
/// out-of-line step, so the scan of every other value pays nothing for it.
#[derive(Debug)]
pub(super) struct ItemsCapture {
    pub(super) slot: usize,
    pub(super) trie: Extractor,
    pub(super) text_only: bool,
    /// For a text capture: the slot of a member met before it that gives its length in bytes
    /// ([`Extractor::add_text_with_length`]).
    pub(super) length_slot: Option<usize>,
}

impl TrieNode {
    /// The position of child `key` in `keys`, added if new.
    pub(super) fn key_position(&mut self, key: &str) -> usize {
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
    pub(super) fn build_key_table(&mut self) {
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
    pub(super) fn find_key_at(&self, bytes: &[u8], start: usize, len: usize) -> Option<usize> {
        if self.key_table.is_empty() {
            return None;
        }
        let words = key_words_at(bytes, start, len);
        // Up to 16 bytes, the words are the whole key.
        self.probe(words, len, |i| len <= 16 || same_bytes(self.keys[i].0.as_bytes(), &bytes[start..start + len]))
    }

    /// [`TrieNode::find_key_at`] for a key of at most 16 bytes, given by its words.
    #[inline(always)]
    pub(super) fn find_short_key(&self, words: (u64, u64), len: usize) -> Option<usize> {
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
    pub(super) fn probe(&self, words: (u64, u64), len: usize, is_key: impl Fn(usize) -> bool) -> Option<usize> {
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

    pub(super) fn find_key(&self, key: &str) -> Option<usize> {
        self.find_key_at(key.as_bytes(), 0, key.len())
    }
}

/// Nodes with at most this many keys get a one-probe table (when a multiplier is found).
pub(super) const ONE_PROBE_MAX_KEYS: usize = 64;
/// Multipliers tried per table size.
pub(super) const ONE_PROBE_SEEDS: u64 = 256;

/// The `n`th multiplier to try: odd, with its bits spread (SplitMix64's finaliser).
pub(super) fn spread_seed(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// A member name prepared for [`Projection::member_named`].
#[derive(Clone, Debug)]
pub struct MemberName {
    text: Box<str>,
    words: (u64, u64),
}

impl MemberName {
    /// Prepares `name`.
    pub fn new(name: &str) -> Self {
        MemberName { text: name.into(), words: super::keys::key_words(name.as_bytes()) }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// What a mapping reads below one point of a record, for a decoder that builds a record's tree
/// ([`crate::plan::document::Doc`]): it builds only the members the mapping reads, and skips the
/// rest without building them. A decoder that ignores it builds the whole record; the mapping
/// reads the same either way.
#[derive(Clone, Copy, Debug)]
pub struct Projection<'p>(&'p TrieNode);

impl<'p> Projection<'p> {
    pub(super) fn node(&self) -> &'p TrieNode {
        self.0
    }

    /// Whether the value here is read whole (captured, or an `items:` array): build all of it.
    pub fn whole(&self) -> bool {
        self.0.materialize || self.0.items.is_some()
    }

    /// What is read below member `name` of an object here; `None`: nothing, skip it.
    pub fn member(&self, name: &str) -> Option<Projection<'p>> {
        match self.0.find_key(name) {
            Some(i) => Some(Projection(&self.0.keys[i].1)),
            None => self.0.wildcard.as_deref().map(Projection),
        }
    }

    /// [`member`](Self::member) by a name prepared once ([`MemberName`]): a decoder that meets
    /// the same names in every record (a schema's fields) looks them up without hashing them
    /// again.
    #[inline]
    pub fn member_named(&self, name: &MemberName) -> Option<Projection<'p>> {
        let node = self.0;
        let found = if node.key_table.is_empty() {
            None
        } else {
            let len = name.text.len();
            node.probe(name.words, len, |i| len <= 16 || *node.keys[i].0 == *name.text)
        };
        match found {
            Some(i) => Some(Projection(&node.keys[i].1)),
            None => node.wildcard.as_deref().map(Projection),
        }
    }

    /// What is read below item `index` of an array here; `None`: nothing, skip it.
    pub fn element(&self, index: usize) -> Option<Projection<'p>> {
        match self.0.indexes.iter().find(|(i, _)| *i == index) {
            Some((_, node)) => Some(Projection(node)),
            None => self.0.wildcard.as_deref().map(Projection),
        }
    }
}

impl Extractor {
    /// What the mapping reads of a record ([`Projection`]).
    pub fn projection(&self) -> Projection<'_> {
        Projection(&self.root)
    }
}
