//! Source paths and the one-pass extractor.
//!
//! Every `source:` is an RFC 9535 JSONPath. Most are plain (`$.order.id`, `$.items[0]`,
//! `$['odd key']`): a chain of names and non-negative indexes. We split each path into its longest
//! plain *prefix* and an optional *tail* (`$.items[*].sku` → prefix `items`, tail `[*].sku`).
//!
//! Wildcards (`[*]`, `.*`) count as plain when everything after them is plain too
//! (`$.items[*].sku`): the extractor ([`super::extract`]) collects their matches in one pass.
//! Tails are evaluated by `serde_json_path` on the materialised prefix value.

use serde_json::Value;
use serde_json_path::JsonPath;

/// One step of a plain path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A member of an object, by name.
    Key(Box<str>),
    /// An element of an array, by index.
    Index(usize),
    /// `[*]` or `.*`: every element of an array, every member value of an object.
    Wildcard,
}

impl Segment {
    /// Whether it is `[*]`.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Segment::Wildcard)
    }
}

/// A compiled `source:`.
#[derive(Debug)]
pub struct SourcePath {
    /// The plain steps the extractor follows.
    pub prefix: Vec<Segment>,
    /// The non-plain remainder, as a query rooted at the prefix's value.
    pub tail: Option<JsonPath>,
}

/// A JSONPath that does not parse: where (character offset in the path) and why.
#[derive(Debug, PartialEq)]
pub struct PathError {
    /// The character offset in the path.
    pub offset: usize,
    /// What is wrong.
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
    check_nesting(text)?;
    if let Err(e) = JsonPath::parse(text) {
        return Err(common_mistake(text).unwrap_or_else(|| PathError {
            offset: text[..e.position().min(text.len())].chars().count(),
            message: e.message().to_string(),
        }));
    }
    let (segments, rest) = plain_prefix(text);
    let mut prefix: Vec<Segment> = segments.iter().map(|(s, _)| s.clone()).collect();
    if rest.is_empty() {
        return Ok(SourcePath { prefix, tail: None });
    }
    // The extractor takes wildcards only in all-plain paths; otherwise the tail starts at the first.
    let mut rest = rest;
    if let Some(first) = segments.iter().position(|(s, _)| s.is_wildcard()) {
        prefix.truncate(first);
        rest = &text[segments[first].1..];
    }
    // A `$` in the tail (an absolute query inside a filter) needs the whole document as its root.
    let (prefix, tail_text) =
        if rest.contains('$') { (Vec::new(), text.to_string()) } else { (prefix, format!("${rest}")) };
    let tail = JsonPath::parse(&tail_text).map_err(|e| PathError { offset: 0, message: e.message().to_string() })?;
    Ok(SourcePath { prefix, tail: Some(tail) })
}

/// Deepest nesting of brackets and parentheses a source path may have. The JSONPath parser
/// descends recursively into each one: thousands of nested `(` in a filter exhaust the stack, so
/// the depth is checked before the text reaches it.
pub const MAX_PATH_NESTING: usize = 32;

fn check_nesting(text: &str) -> Result<(), PathError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (offset, c) in text.chars().enumerate() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' => {
                    depth += 1;
                    if depth > MAX_PATH_NESTING {
                        return Err(PathError {
                            offset,
                            message: format!("brackets and parentheses nest deeper than {MAX_PATH_NESTING} levels"),
                        });
                    }
                }
                ')' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    Ok(())
}

/// What is wrong with a path the JSONPath parser refused, and how to write it, for the mistakes
/// people make most (the parser itself only says where it stopped).
fn common_mistake(text: &str) -> Option<PathError> {
    let chars = |bytes: usize| text[..bytes].chars().count();
    // `$transaction.status`
    if text[1..].starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return Some(PathError { offset: 1, message: format!("after `$`, a name needs a dot: `$.{}`", &text[1..]) });
    }
    // `= 1` in a filter, meant as `==`
    if let Some(filter) = text.find("[?") {
        let bytes = text.as_bytes();
        for (i, _) in text.match_indices('=').filter(|(i, _)| *i > filter) {
            let before = bytes[i - 1];
            let after = bytes.get(i + 1).copied();
            if !matches!(before, b'=' | b'!' | b'<' | b'>') && after != Some(b'=') {
                let fixed = format!("{}=={}", &text[..i], &text[i + 1..]);
                return Some(PathError {
                    offset: chars(i),
                    message: format!("a filter compares with `==`, not `=`: `{fixed}`"),
                });
            }
        }
    }
    // `$.a.sales-channel`: a name with characters the dotted form does not take
    let mut at = 0;
    while let Some(dot) = text[at..].find('.') {
        let start = at + dot + 1;
        let name: &str = text[start..].split(['.', '[']).next().unwrap_or_default();
        let plain = |c: char| c.is_alphanumeric() || c == '_' || !c.is_ascii();
        if !name.is_empty() && !name.chars().all(plain) && !text[..start].contains("[?") {
            let fixed =
                format!("{}['{}']{}", &text[..start - 1], name.replace('\'', "\\'"), &text[start + name.len()..]);
            return Some(PathError {
                offset: chars(start),
                message: format!(
                    "`{name}` has characters a dotted name does not take; write it in brackets and quotes: `{fixed}`"
                ),
            });
        }
        at = start;
    }
    None
}

/// The longest run of plain segments after `$` (each with the byte offset where it starts), and
/// the text after it. Wildcards included: a schema check follows them, the extractor only when
/// nothing but plain segments follows (see [`parse_source`]).
pub fn plain_prefix(text: &str) -> (Vec<(Segment, usize)>, &str) {
    let mut segments = Vec::new();
    let Some(mut rest) = text.strip_prefix('$') else { return (segments, text) };
    loop {
        match plain_segment(rest) {
            Some((segment, after)) => {
                segments.push((segment, text.len() - rest.len()));
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
    if let Some(after) = s.strip_prefix(".*") {
        return Some((Segment::Wildcard, after));
    }
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
        '*' => (Segment::Wildcard, &inner[1..]),
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

/// Every value a plain path (wildcards included) reaches inside an already materialised value.
pub fn lookup_all<'v>(value: &'v Value, path: &[Segment], out: &mut Vec<&'v Value>) {
    let Some((segment, rest)) = path.split_first() else {
        out.push(value);
        return;
    };
    match (segment, value) {
        (Segment::Key(k), Value::Object(map)) => {
            if let Some(v) = map.get(&**k) {
                lookup_all(v, rest, out);
            }
        }
        (Segment::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                lookup_all(v, rest, out);
            }
        }
        (Segment::Wildcard, Value::Array(items)) => items.iter().for_each(|v| lookup_all(v, rest, out)),
        (Segment::Wildcard, Value::Object(map)) => map.values().for_each(|v| lookup_all(v, rest, out)),
        _ => {}
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
        let p = parse_source("$.order.items[?@.qty > 1].sku").unwrap();
        assert_eq!(p.prefix, keys("$.order.items"));
        let v = json!([{"sku": "a", "qty": 2}, {"sku": "b", "qty": 3}, {"sku": "c", "qty": 1}]);
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
    fn wildcards_are_plain_when_all_that_follows_is_plain() {
        let p = parse_source("$.items[*].sku").unwrap();
        assert!(p.tail.is_none());
        assert_eq!(p.prefix, vec![Segment::Key("items".into()), Segment::Wildcard, Segment::Key("sku".into())]);
        assert_eq!(parse_source("$.a.*").unwrap().prefix, vec![Segment::Key("a".into()), Segment::Wildcard]);
        let mixed = parse_source("$.items[*].tags[?@ == 'x']").unwrap();
        assert_eq!(mixed.prefix, vec![Segment::Key("items".into())], "the tail starts at the first wildcard");
        let v = json!([{"tags": ["x", "y"]}, {"tags": ["x"]}]);
        assert_eq!(mixed.tail.unwrap().query(&v).all().len(), 2);
    }

    #[test]
    fn lookup_all_expands_wildcards() {
        let v = json!({"items": [{"sku": "a"}, {"nope": 1}, {"sku": "c"}], "o": {"x": 1, "y": 2}});
        let mut out = Vec::new();
        lookup_all(&v, &parse_source("$.items[*].sku").unwrap().prefix, &mut out);
        assert_eq!(out, vec![&json!("a"), &json!("c")]);
        out.clear();
        lookup_all(&v, &parse_source("$.o.*").unwrap().prefix, &mut out);
        assert_eq!(out, vec![&json!(1), &json!(2)]);
    }
}
