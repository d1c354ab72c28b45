//! Source paths and the one-pass extractor.
//!
//! Every `source:` is an RFC 9535 JSONPath. Most are plain (`$.order.id`, `$.items[0]`,
//! `$['odd key']`): a chain of names and non-negative indexes. We split each path into its longest
//! plain *prefix* and an optional *tail* (`$.items[*].sku` → prefix `items`, tail `[*].sku`).
//!
//! All prefixes of a mapping go into one trie. Applying the plan walks the record's bytes once with
//! serde, descending only into keys the trie names and skipping everything else without allocating
//! (`IgnoredAny`); only the values at the trie's leaves are materialised as `serde_json::Value`.
//! That is why mapping a 1.3 KB record costs much less than parsing it into a `Value`.
//! Tails are evaluated by `serde_json_path` on the materialised prefix value.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json_path::JsonPath;

/// One step of a plain path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(Box<str>),
    Index(usize),
}

/// A compiled `source:`.
#[derive(Debug)]
pub struct SourcePath {
    pub prefix: Vec<Segment>,
    /// The non-plain remainder, as a query rooted at the prefix's value.
    pub tail: Option<JsonPath>,
}

/// A JSONPath that does not parse: where (character offset in the path) and why.
#[derive(Debug, PartialEq)]
pub struct PathError {
    pub offset: usize,
    pub message: String,
}

/// Parses and splits a source path. The whole path is checked by `serde_json_path` first, so the
/// error messages are the RFC 9535 parser's.
pub fn parse_source(text: &str) -> Result<SourcePath, PathError> {
    if !text.starts_with('$') {
        return Err(PathError {
            offset: 0,
            message: format!("a JSONPath starts at the root `$`, like `$.{}`", text.trim_start_matches('.')),
        });
    }
    if let Err(e) = JsonPath::parse(text) {
        return Err(PathError {
            offset: text[..e.position().min(text.len())].chars().count(),
            message: e.message().to_string(),
        });
    }
    let (prefix, rest) = plain_prefix(text);
    if rest.is_empty() {
        return Ok(SourcePath { prefix, tail: None });
    }
    // A `$` in the tail (an absolute query inside a filter) needs the whole document as its root.
    let (prefix, tail_text) =
        if rest.contains('$') { (Vec::new(), text.to_string()) } else { (prefix, format!("${rest}")) };
    let tail = JsonPath::parse(&tail_text).map_err(|e| PathError { offset: 0, message: e.message().to_string() })?;
    Ok(SourcePath { prefix, tail: Some(tail) })
}

/// The longest run of plain segments after `$`, and the text that follows it.
fn plain_prefix(text: &str) -> (Vec<Segment>, &str) {
    let mut segments = Vec::new();
    let Some(mut rest) = text.strip_prefix('$') else { return (segments, text) };
    loop {
        match plain_segment(rest) {
            Some((segment, after)) => {
                segments.push(segment);
                rest = after;
            }
            None => return (segments, rest),
        }
    }
}

fn is_name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn plain_segment(s: &str) -> Option<(Segment, &str)> {
    if let Some(after_dot) = s.strip_prefix('.') {
        let mut chars = after_dot.char_indices();
        let (_, first) = chars.next()?;
        if !is_name_first(first) {
            return None;
        }
        let end = chars.find(|(_, c)| !(is_name_first(*c) || c.is_ascii_digit())).map_or(after_dot.len(), |(i, _)| i);
        return Some((Segment::Key(after_dot[..end].into()), &after_dot[end..]));
    }
    let inner = s.strip_prefix('[')?;
    let inner = inner.trim_start_matches([' ', '\t', '\n', '\r']);
    let (segment, after) = match inner.chars().next()? {
        quote @ ('\'' | '"') => {
            let body = &inner[1..];
            let end = body.find(quote)?;
            let name = &body[..end];
            if name.contains('\\') {
                return None; // escapes: leave to the full JSONPath evaluator
            }
            (Segment::Key(name.into()), &body[end + 1..])
        }
        c if c.is_ascii_digit() => {
            let end = inner.find(|c: char| !c.is_ascii_digit()).unwrap_or(inner.len());
            let digits = &inner[..end];
            if digits.len() > 1 && digits.starts_with('0') {
                return None;
            }
            (Segment::Index(digits.parse().ok()?), &inner[end..])
        }
        _ => return None,
    };
    let after = after.trim_start_matches([' ', '\t', '\n', '\r']).strip_prefix(']')?;
    Some((segment, after))
}

/// Follows a plain path inside an already materialised value.
pub fn lookup<'v>(mut value: &'v Value, path: &[Segment]) -> Option<&'v Value> {
    for segment in path {
        value = match (segment, value) {
            (Segment::Key(k), Value::Object(map)) => map.get(&**k)?,
            (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The trie of every prefix the mapping reads; `slot`s number the values it captures.
#[derive(Debug, Default)]
pub struct Extractor {
    root: TrieNode,
    slots: usize,
}

#[derive(Debug, Default)]
struct TrieNode {
    /// Materialise the value here into this slot.
    capture: Option<usize>,
    /// Slots under a captured node, filled by looking inside its value instead of scanning again.
    derived: Vec<(Vec<Segment>, usize)>,
    keys: Vec<(Box<str>, TrieNode)>,
    indexes: Vec<(usize, TrieNode)>,
}

impl Extractor {
    /// Registers a prefix and returns its slot; equal prefixes share one slot.
    pub fn add(&mut self, prefix: &[Segment]) -> usize {
        let mut node = &mut self.root;
        for segment in prefix {
            node = match segment {
                Segment::Key(k) => {
                    let i = match node.keys.iter().position(|(name, _)| name == k) {
                        Some(i) => i,
                        None => {
                            node.keys.push((k.clone(), TrieNode::default()));
                            node.keys.len() - 1
                        }
                    };
                    &mut node.keys[i].1
                }
                Segment::Index(idx) => {
                    let i = match node.indexes.iter().position(|(n, _)| n == idx) {
                        Some(i) => i,
                        None => {
                            node.indexes.push((*idx, TrieNode::default()));
                            node.indexes.len() - 1
                        }
                    };
                    &mut node.indexes[i].1
                }
            };
        }
        *node.capture.get_or_insert_with(|| {
            self.slots += 1;
            self.slots - 1
        })
    }

    /// Call once after the last `add`: captures nested inside other captures become lookups.
    pub fn finish(&mut self) {
        fn fold(node: &mut TrieNode) {
            if node.capture.is_some() {
                let mut derived = Vec::new();
                collect(node, &mut Vec::new(), &mut derived, true);
                node.derived = derived;
                node.keys.clear();
                node.indexes.clear();
            } else {
                node.keys.iter_mut().for_each(|(_, n)| fold(n));
                node.indexes.iter_mut().for_each(|(_, n)| fold(n));
            }
        }
        fn collect(node: &TrieNode, path: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, usize)>, top: bool) {
            if let (false, Some(slot)) = (top, node.capture) {
                out.push((path.clone(), slot));
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
        }
        fold(&mut self.root);
    }

    pub fn slot_count(&self) -> usize {
        self.slots
    }

    /// Scans one JSON document, filling `slots` (one per registered prefix; `None` = absent).
    /// Fails when the bytes are not one JSON object, or when an object the mapping reads has a
    /// duplicate key (which value was meant is ambiguous).
    pub fn scan(&self, bytes: &[u8]) -> Result<Vec<Option<Value>>, serde_json::Error> {
        let mut slots = vec![None; self.slots];
        let mut de = serde_json::Deserializer::from_slice(bytes);
        if let Some(slot) = self.root.capture {
            let value = Value::deserialize(&mut de)?;
            if !value.is_object() {
                return Err(de::Error::custom(format_args!("expected a JSON object, found {}", json_kind(&value))));
            }
            fill_derived(&self.root, &value, &mut slots);
            slots[slot] = Some(value);
        } else {
            de.deserialize_any(NodeVisitor { node: &self.root, slots: &mut slots, root: true })?;
        }
        de.end()?;
        Ok(slots)
    }
}

use serde::Deserialize;

fn fill_derived(node: &TrieNode, value: &Value, slots: &mut [Option<Value>]) {
    for (path, slot) in &node.derived {
        slots[*slot] = lookup(value, path).cloned();
    }
}

/// "an array", "a string"… for messages about JSON values.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct NodeSeed<'t, 's> {
    node: &'t TrieNode,
    slots: &'s mut [Option<Value>],
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        match self.node.capture {
            Some(slot) => {
                let value = Value::deserialize(de)?;
                fill_derived(self.node, &value, self.slots);
                self.slots[slot] = Some(value);
                Ok(())
            }
            None => de.deserialize_any(NodeVisitor { node: self.node, slots: self.slots, root: false }),
        }
    }
}

struct NodeVisitor<'t, 's> {
    node: &'t TrieNode,
    slots: &'s mut [Option<Value>],
    /// The document root must be an object; deeper nodes of another type simply have no children.
    root: bool,
}

impl NodeVisitor<'_, '_> {
    fn not_object<E: de::Error>(&self, found: &str) -> Result<(), E> {
        if self.root { Err(E::custom(format_args!("expected a JSON object, found {found}"))) } else { Ok(()) }
    }
}

/// Matches an object key against the trie's children without allocating.
struct KeySeed<'t>(&'t [(Box<str>, TrieNode)]);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<usize>, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(name, _)| **name == *key))
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Bit i set = child i already seen; mapped objects rarely have more than 64 mapped keys,
        // and beyond that duplicates are still caught by the slower list.
        let mut seen: u64 = 0;
        let mut seen_more: Vec<usize> = Vec::new();
        while let Some(matched) = map.next_key_seed(KeySeed(&self.node.keys))? {
            match matched {
                Some(i) => {
                    let duplicate = if i < 64 {
                        let dup = seen & (1 << i) != 0;
                        seen |= 1 << i;
                        dup
                    } else if seen_more.contains(&i) {
                        true
                    } else {
                        seen_more.push(i);
                        false
                    };
                    if duplicate {
                        return Err(de::Error::custom(format_args!(
                            "duplicate key \"{}\" in the input",
                            self.node.keys[i].0
                        )));
                    }
                    map.next_value_seed(NodeSeed { node: &self.node.keys[i].1, slots: self.slots })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.root {
            return Err(de::Error::custom("expected a JSON object, found an array"));
        }
        let mut index = 0usize;
        loop {
            let child = self.node.indexes.iter().find(|(i, _)| *i == index);
            let more = match child {
                Some((_, node)) => seq.next_element_seed(NodeSeed { node, slots: self.slots })?.is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_object("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_object("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_object("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_object("a number")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_object("a string")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_object("null")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(path: &str) -> Vec<Segment> {
        parse_source(path).unwrap().prefix
    }

    #[test]
    fn plain_paths_have_no_tail() {
        let p = parse_source("$.order.items[0]['odd key'][\"x y\"]").unwrap();
        assert!(p.tail.is_none());
        assert_eq!(
            p.prefix,
            vec![
                Segment::Key("order".into()),
                Segment::Key("items".into()),
                Segment::Index(0),
                Segment::Key("odd key".into()),
                Segment::Key("x y".into())
            ]
        );
    }

    #[test]
    fn non_plain_paths_split_at_the_first_non_plain_segment() {
        let p = parse_source("$.order.items[*].sku").unwrap();
        assert_eq!(p.prefix, keys("$.order.items"));
        let v = json!([{"sku": "a"}, {"sku": "b"}]);
        let found: Vec<_> = p.tail.unwrap().query(&v).all().into_iter().cloned().collect();
        assert_eq!(found, vec![json!("a"), json!("b")]);
        assert!(parse_source("$.a[-1]").unwrap().tail.is_some());
        assert!(parse_source("$.a[01]").is_err(), "leading zeros are not RFC 9535");
    }

    #[test]
    fn absolute_queries_in_filters_use_the_whole_document() {
        let p = parse_source("$.items[?@.price > $.min].sku").unwrap();
        assert!(p.prefix.is_empty());
        assert!(p.tail.is_some());
    }

    #[test]
    fn invalid_paths_report_an_offset() {
        let e = parse_source("$.a[?@.b ==]").unwrap_err();
        assert!(e.offset > 0, "{e:?}");
        assert!(parse_source("order.id").is_err());
    }

    #[test]
    fn scan_captures_only_registered_prefixes() {
        let mut x = Extractor::default();
        let a = x.add(&keys("$.a.b"));
        let c = x.add(&keys("$.c[1]"));
        let missing = x.add(&keys("$.nope"));
        x.finish();
        let slots = x.scan(br#"{"z": [1, {"q": 2}], "a": {"b": "B", "x": 1}, "c": [10, 20, 30]}"#).unwrap();
        assert_eq!(slots[a], Some(json!("B")));
        assert_eq!(slots[c], Some(json!(20)));
        assert_eq!(slots[missing], None);
    }

    #[test]
    fn nested_captures_are_derived_from_the_outer_value() {
        let mut x = Extractor::default();
        let inner = x.add(&keys("$.a.b"));
        let outer = x.add(&keys("$.a"));
        x.finish();
        let slots = x.scan(br#"{"a": {"b": 1}}"#).unwrap();
        assert_eq!(slots[outer], Some(json!({"b": 1})));
        assert_eq!(slots[inner], Some(json!(1)));
    }

    #[test]
    fn scan_rejects_non_objects_bad_json_and_duplicate_mapped_keys() {
        let mut x = Extractor::default();
        x.add(&keys("$.a"));
        x.finish();
        assert!(x.scan(b"[1,2]").unwrap_err().to_string().contains("expected a JSON object, found an array"));
        assert!(x.scan(b"\"s\"").unwrap_err().to_string().contains("found a string"));
        assert!(x.scan(b"{\"a\": 1").is_err());
        assert!(x.scan(b"{\"a\": 1} x").is_err());
        assert!(x.scan(br#"{"a": 1, "a": 2}"#).unwrap_err().to_string().contains("duplicate key \"a\""));
        // Duplicates the mapping never reads do not matter.
        assert!(x.scan(br#"{"a": 1, "b": 2, "b": 3}"#).is_ok());
    }

    #[test]
    fn escaped_keys_in_the_input_still_match() {
        let mut x = Extractor::default();
        let s = x.add(&keys("$.café"));
        x.finish();
        let slots = x.scan(br#"{"caf\u00e9": 1}"#).unwrap();
        assert_eq!(slots[s], Some(json!(1)));
    }
}
