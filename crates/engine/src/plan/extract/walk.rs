//! The trie's paths looked up in a decoded record ([`Doc`]), filling the same slots a scan of
//! JSON text fills, with the same meaning: a captured value is stored whole, `[*]` collects every
//! match, an `items:` array gets one row of slots per item, and an object the mapping reads may
//! not repeat a key it reads.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::{Number, Value};

use super::scanner::{Captures, MAX_DEPTH};
use super::trie::{Extractor, ItemsCapture, Projection, TrieNode};
use crate::plan::document::Doc;
use crate::plan::value::{ScannedArray, Val, WholeArray};

/// Why a decoded record cannot be read by the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError(pub String);

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WalkError {}

impl Extractor {
    /// [`Extractor::scan_into`] for a decoded record: the slots (all `None`, one per slot) get the
    /// values at the mapping's paths. Fails when the record is not an object, nests deeper than
    /// [`MAX_DEPTH`], or repeats, in an object the mapping reads, a key it reads.
    pub fn walk_into<'a>(&self, doc: &'a Doc<'a>, slots: &mut [Option<Val<'a>>]) -> Result<(), WalkError> {
        debug_assert_eq!(slots.len(), self.multi.len());
        if !matches!(doc, Doc::Object(_)) {
            return Err(WalkError(format!("expected a record (an object), found {}", doc.kind())));
        }
        let mut captures = Captures { slots, multi: &self.multi };
        walk(&self.root, doc, &mut captures, 0)
    }
}

impl Extractor {
    /// Fills the slots from values a decoder found at the points of [`Projection`]s it was
    /// given ([`Extractor::projection`], followed through the record): each value is what the
    /// mapping reads at its point (and below it), in record order. The decoder builds no tree of
    /// the rest of the record, and nothing here walks it.
    pub fn fill_captured<'a>(
        &self,
        captured: &'a [(Projection<'_>, Doc<'a>)],
        slots: &mut [Option<Val<'a>>],
    ) -> Result<(), WalkError> {
        let mut captures = Captures { slots, multi: &self.multi };
        for (point, value) in captured {
            walk(point.node(), value, &mut captures, 0)?;
        }
        Ok(())
    }
}

/// A value as one slot holds it, borrowed from the record where it can be.
pub(crate) fn doc_val<'a>(doc: &'a Doc<'a>) -> Val<'a> {
    match doc {
        Doc::Str(s) => Val::Str(Cow::Borrowed(s)),
        Doc::Decimal(text) => Val::Str(Cow::Borrowed(text)),
        Doc::Int(i) => Val::Json(Cow::Owned(Value::Number((*i).into()))),
        Doc::Float(f) => Val::Json(Cow::Owned(Number::from_f64(*f).map_or(Value::Null, Value::Number))),
        Doc::Bool(b) => Val::Json(Cow::Owned(Value::Bool(*b))),
        Doc::Null => Val::Json(Cow::Owned(Value::Null)),
        Doc::List(_) | Doc::Object(_) => Val::Json(Cow::Owned(doc.to_value())),
    }
}

fn walk<'a>(node: &TrieNode, doc: &'a Doc<'a>, captures: &mut Captures<'_, 'a>, depth: usize) -> Result<(), WalkError> {
    if depth > MAX_DEPTH {
        return Err(WalkError(format!("the record nests deeper than {MAX_DEPTH} levels")));
    }
    if let Some(items) = &node.items {
        walk_items(items, doc, captures, depth)?;
        let others = node.materialize || !node.keys.is_empty() || !node.indexes.is_empty() || node.wildcard.is_some();
        if !others {
            return Ok(());
        }
    }
    if node.materialize {
        captures.fill(node, doc_val(doc));
        return Ok(());
    }
    match doc {
        Doc::Object(members) if !node.keys.is_empty() || node.wildcard.is_some() => {
            // Bit i set = key child i already seen; past 64 keys, a list.
            let mut seen: u64 = 0;
            let mut seen_more: Vec<usize> = Vec::new();
            for (name, value) in members {
                match node.find_key(name) {
                    Some(i) => {
                        let repeated = if i < 64 {
                            let repeated = seen & (1 << i) != 0;
                            seen |= 1 << i;
                            repeated
                        } else if seen_more.contains(&i) {
                            true
                        } else {
                            seen_more.push(i);
                            false
                        };
                        if repeated {
                            return Err(WalkError(format!(
                                "duplicate key \"{}\" in an object the mapping reads",
                                node.keys[i].0
                            )));
                        }
                        walk(&node.keys[i].1, value, captures, depth + 1)?;
                    }
                    None => {
                        if let Some(w) = &node.wildcard {
                            walk(w, value, captures, depth + 1)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Doc::List(items) if !node.indexes.is_empty() || node.wildcard.is_some() => {
            for (index, item) in items.iter().enumerate() {
                match node.indexes.iter().find(|(i, _)| *i == index) {
                    Some((_, child)) => walk(child, item, captures, depth + 1)?,
                    None => {
                        if let Some(w) = &node.wildcard {
                            walk(w, item, captures, depth + 1)?;
                        }
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An `items:` field's array: each item walked with the item fields' trie into its own row.
fn walk_items<'a>(
    capture: &ItemsCapture,
    doc: &'a Doc<'a>,
    captures: &mut Captures<'_, 'a>,
    depth: usize,
) -> Result<(), WalkError> {
    let Doc::List(items) = doc else {
        // Anything but an array is captured as it is, for the field to refuse (a text capture
        // included: only JSON records have text to hand on).
        captures.slots[capture.slot] = Some(doc_val(doc));
        return Ok(());
    };
    if capture.text_only {
        captures.slots[capture.slot] = Some(doc_val(doc));
        return Ok(());
    }
    let width = capture.trie.slot_count();
    let mut slots: Vec<Option<Val<'a>>> = vec![None; width * items.len()];
    for (row, item) in slots.chunks_mut(width.max(1)).zip(items) {
        let mut item_captures = Captures { slots: &mut row[..width], multi: &capture.trie.multi };
        walk(&capture.trie.root, item, &mut item_captures, depth + 1)?;
    }
    let array = ScannedArray { whole: WholeArray::Decoded(items), len: items.len(), slots };
    captures.slots[capture.slot] = Some(Val::ScannedItems(Rc::new(array)));
    Ok(())
}
