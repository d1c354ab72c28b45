//! YAML with positions, shared by the mapping spec and `environments.yaml`.
//!
//! [`load_yaml`] reads one document with `saphyr` (which keeps a position for every node) into an
//! owned [`Node`] tree; [`Fields`] reads a mapping node against the keys its place allows,
//! reporting unknown ones with a "did you mean" suggestion. Problems are collected, never thrown.

use std::collections::HashMap;

use saphyr::{MarkedYaml, Scalar, YamlData, YamlLoader};
use saphyr_parser::{BufferedInput, Event, Parser, Span, SpannedEventReceiver};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Pos, Spanned, suggestion};

/// A YAML node, owned and position-tagged, detached from the parser's lifetimes.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; keys are the scalar keys' text.
    Map(Vec<(Spanned<String>, Node)>),
}

impl Node {
    /// What kind of node this is, for messages ("expected a list, found a string").
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The node as JSON (for defaults, constants, test inputs and expected outputs).
    pub fn to_json(&self) -> Result<Value, Diagnostic> {
        Ok(match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(Diagnostic::new(self.pos, format!("{f} cannot be represented in JSON")));
                }
            },
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect::<Result<_, _>>()?),
            NodeKind::Map(entries) => {
                let mut object = serde_json::Map::with_capacity(entries.len());
                for (key, value) in entries {
                    object.insert(key.value.clone(), value.to_json()?);
                }
                Value::Object(object)
            }
        })
    }
}

/// Deepest nesting of lists and mappings accepted in a YAML file: far beyond any mapping or
/// settings file, and well inside the stack the tree is built, read and dropped on.
pub const MAX_YAML_DEPTH: usize = 128;

/// Most bytes a YAML file may expand to once its aliases are resolved (scalars' text plus a
/// small cost per node). saphyr bounds the number of nodes aliases produce, not their size: one
/// large scalar aliased a few thousand times fits that budget and still takes gigabytes.
pub const MAX_YAML_EXPANDED_BYTES: usize = 64 * 1024 * 1024;

/// What one node costs in the expanded-size count beside its text: a node of the owned tree is
/// about this large, so a flood of tiny aliased nodes counts too.
const NODE_COST: usize = 64;

/// Watches the parser's events on their way to saphyr's loader and stops passing them on once the
/// file nests deeper than [`MAX_YAML_DEPTH`] or its aliases would expand it past
/// [`MAX_YAML_EXPANDED_BYTES`], with a diagnostic at the node where the limit is crossed: the
/// tree is never built past a limit, and the text is parsed once.
struct Bounded<'input> {
    loader: YamlLoader<'input, MarkedYaml<'input>>,
    /// The expanded size of each open collection so far, and its anchor.
    open: Vec<(usize, usize)>,
    /// The expanded size of each anchored node, once complete.
    anchors: HashMap<usize, usize>,
    /// The whole document's expanded size so far.
    expanded: usize,
    refused: Option<Diagnostic>,
}

impl<'input> Bounded<'input> {
    fn new() -> Self {
        Bounded { loader: YamlLoader::default(), open: Vec::new(), anchors: HashMap::new(), expanded: 0, refused: None }
    }

    fn refuse(&mut self, span: &Span, message: String) {
        let at = Pos::new(span.start.line() as u32, span.start.col() as u32 + 1);
        self.refused = Some(Diagnostic::new(at, message));
    }
}

impl<'input> SpannedEventReceiver<'input> for Bounded<'input> {
    fn on_event(&mut self, event: Event<'input>, span: Span) {
        if self.refused.is_some() {
            return;
        }
        let completed = match &event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() >= MAX_YAML_DEPTH {
                    let message = format!("YAML nested deeper than {MAX_YAML_DEPTH} levels of lists and mappings");
                    return self.refuse(&span, message);
                }
                self.open.push((NODE_COST, *anchor));
                self.expanded = self.expanded.saturating_add(NODE_COST);
                None
            }
            Event::SequenceEnd | Event::MappingEnd => self.open.pop(),
            Event::Scalar(value, _, anchor, _) => {
                let size = NODE_COST + value.len();
                self.expanded = self.expanded.saturating_add(size);
                Some((size, *anchor))
            }
            Event::Alias(id) => {
                let size = self.anchors.get(id).copied().unwrap_or(NODE_COST);
                self.expanded = self.expanded.saturating_add(size);
                Some((size, 0))
            }
            _ => None,
        };
        if let Some((size, anchor)) = completed {
            if anchor != 0 {
                self.anchors.insert(anchor, size);
            }
            if let Some((parent, _)) = self.open.last_mut() {
                *parent = parent.saturating_add(size);
            }
        }
        if self.expanded > MAX_YAML_EXPANDED_BYTES {
            let message = format!(
                "aliases expand this file past {} MiB (a YAML bomb?); write the values out or use fewer aliases",
                MAX_YAML_EXPANDED_BYTES / (1024 * 1024)
            );
            return self.refuse(&span, message);
        }
        self.loader.on_event(event, span);
    }
}

/// Loads a single YAML document into an owned [`Node`] tree.
pub fn load_yaml(text: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let mut bounded = Bounded::new();
    // Event by event rather than through `Parser::load`, which descends recursively into each
    // nested collection: past a limit, parsing stops here instead of reading on.
    let mut parsed = Ok(());
    for event in Parser::new(BufferedInput::new(text.chars())) {
        match event {
            Ok((event, span)) => bounded.on_event(event, span),
            Err(e) => {
                parsed = Err(e);
                break;
            }
        }
        if bounded.refused.is_some() {
            break;
        }
    }
    if let Some(refused) = bounded.refused {
        diags.push(refused);
        return None;
    }
    let docs = match parsed.err().or_else(|| bounded.loader.error().cloned()) {
        None => bounded.loader.into_documents(),
        Some(e) => {
            let m = e.marker();
            diags.push(explain_yaml_error(text, e.info(), Pos::new(m.line() as u32, m.col() as u32 + 1)));
            return None;
        }
    };
    match docs.len() {
        0 => {
            diags.push(Diagnostic::new(Pos::new(1, 1), "the file is empty; expected a mapping spec"));
            None
        }
        1 => {
            // Quoted scalars are located at their first character, not their quote, so offsets
            // into them (a JSONPath, an expression) land on the right column.
            let chars: Vec<char> = text.chars().collect();
            convert(&docs[0], Pos::new(1, 1), &chars, diags)
        }
        _ => {
            let second = pos_of(&docs[1]);
            diags.push(Diagnostic::new(second, "expected one YAML document, found several"));
            None
        }
    }
}

fn pos_of(node: &MarkedYaml<'_>) -> Pos {
    Pos::new(node.span.start.line() as u32, node.span.start.col() as u32 + 1)
}

/// `parent` is where the enclosing node starts: saphyr gives some nodes (the empty value under a
/// tag, `key: !tag`) no position at all (line 0), and those borrow their parent's (found by
/// fuzzing the mapping loader).
fn convert(node: &MarkedYaml<'_>, parent: Pos, text: &[char], diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let pos = match pos_of(node) {
        Pos { line: 0, .. } => parent,
        pos if matches!(node.data, YamlData::Value(Scalar::String(_)))
            && matches!(text.get(node.span.start.index()), Some('\'' | '"')) =>
        {
            pos.shifted(1)
        }
        pos => pos,
    };
    let kind = match &node.data {
        YamlData::Value(scalar) => scalar_kind(scalar),
        YamlData::Representation(text, _, _) => NodeKind::Str(text.to_string()),
        YamlData::Sequence(items) => NodeKind::Seq(items.iter().filter_map(|n| convert(n, pos, text, diags)).collect()),
        YamlData::Mapping(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key_pos = match pos_of(key) {
                    Pos { line: 0, .. } => pos,
                    key_pos => key_pos,
                };
                let key_text = match &key.data {
                    YamlData::Value(Scalar::String(s)) => s.to_string(),
                    YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                    YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
                    YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
                    YamlData::Value(Scalar::Null) => "null".to_string(),
                    _ => {
                        diags.push(Diagnostic::new(key_pos, "mapping keys must be plain scalars"));
                        continue;
                    }
                };
                if let Some(value) = convert(value, key_pos, text, diags) {
                    out.push((Spanned::new(key_text, key_pos), value));
                }
            }
            NodeKind::Map(out)
        }
        YamlData::Tagged(tag, inner) => {
            diags.push(Diagnostic::new(pos, format!("YAML tags are not supported (found `{tag}`)")));
            return convert(inner, pos, text, diags);
        }
        YamlData::Alias(_) | YamlData::BadValue => {
            diags.push(Diagnostic::new(pos, "this value cannot be read (bad scalar or unresolved alias)"));
            return None;
        }
    };
    Some(Node { pos, kind })
}

fn scalar_kind(scalar: &Scalar<'_>) -> NodeKind {
    match scalar {
        Scalar::Null => NodeKind::Null,
        Scalar::Boolean(b) => NodeKind::Bool(*b),
        Scalar::Integer(i) => NodeKind::Int(*i),
        Scalar::FloatingPoint(f) => NodeKind::Float(f.into_inner()),
        Scalar::String(s) => NodeKind::Str(s.to_string()),
    }
}

/// A mapping node checked against the keys its place allows.
pub struct Fields<'a> {
    entries: &'a [(Spanned<String>, Node)],
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping whose keys must be among `allowed`; reports the others.
    pub fn read(node: &'a Node, what: &str, allowed: &[&str], diags: &mut Vec<Diagnostic>) -> Option<Self> {
        let NodeKind::Map(entries) = &node.kind else {
            diags.push(Diagnostic::new(node.pos, format!("{what} must be a mapping, found {}", node.kind_name())));
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.as_str()) {
                diags.push(Diagnostic::new(
                    key.pos,
                    format!(
                        "unknown key `{}` in {what}{}; allowed keys: {}",
                        key.value,
                        suggestion(&key.value, allowed.iter().copied()),
                        allowed.join(", ")
                    ),
                ));
            }
        }
        Some(Fields { entries })
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }

    pub fn string(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<String>> {
        self.get(key).and_then(|node| expect_string(node, key, diags))
    }

    pub fn boolean(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<bool>> {
        let node = self.get(key)?;
        match node.kind {
            NodeKind::Bool(b) => Some(Spanned::new(b, node.pos)),
            _ => {
                diags.push(Diagnostic::new(
                    node.pos,
                    format!("`{key}` must be true or false, found {}", node.kind_name()),
                ));
                None
            }
        }
    }

    pub fn list(&self, key: &str, diags: &mut Vec<Diagnostic>) -> &'a [Node] {
        match self.get(key) {
            None => &[],
            Some(Node { kind: NodeKind::Seq(items), .. }) => items,
            Some(node) => {
                diags.push(Diagnostic::new(node.pos, format!("`{key}` must be a list, found {}", node.kind_name())));
                &[]
            }
        }
    }

    pub fn string_list(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<Spanned<String>> {
        self.list(key, diags).iter().filter_map(|n| expect_string(n, key, diags)).collect()
    }
}

pub fn expect_string(node: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<String>> {
    match &node.kind {
        NodeKind::Str(s) => Some(Spanned::new(s.clone(), node.pos)),
        _ => {
            diags.push(Diagnostic::new(node.pos, format!("`{what}` must be a string, found {}", node.kind_name())));
            None
        }
    }
}

impl<'a> Fields<'a> {
    /// The entries, in file order.
    pub fn entries(&self) -> &'a [(Spanned<String>, Node)] {
        self.entries
    }
}

/// A YAML parser error in the terms of a mapping file, at the place to fix: the parser's own
/// words name its state ("while scanning a plain scalar"), and some point past the mistake.
fn explain_yaml_error(text: &str, info: &str, at: Pos) -> Diagnostic {
    let line_text = |line: u32| text.lines().nth(line.saturating_sub(1) as usize).unwrap_or_default();
    let tab_here = line_text(at.line).chars().nth(at.col.saturating_sub(1) as usize) == Some('\t');
    if info.contains("found a tab") || (tab_here && info.contains("cannot start any token")) {
        // The tab itself, which the parser may report on an earlier line.
        let from: usize = text.lines().take(at.line.saturating_sub(1) as usize).map(|l| l.len() + 1).sum();
        if let Some(offset) = text.get(from..).and_then(|rest| rest.find('\t')) {
            let before = &text[..from + offset];
            let line = before.matches('\n').count() as u32 + 1;
            let col = before.rsplit('\n').next().unwrap_or_default().chars().count() as u32 + 1;
            return Diagnostic::new(
                Pos::new(line, col),
                "a tab character: YAML indents with spaces only; replace the tab with spaces",
            );
        }
    }
    if info.contains("duplicated key") {
        let here = line_text(at.line);
        let key = key_at(here, at.col);
        if let Some(key) = key {
            let first = first_occurrence(text, at.line, key);
            let said = match first {
                Some(line) => format!(" (first on line {line})"),
                None => String::new(),
            };
            return Diagnostic::new(
                at,
                format!("`{key}` is given twice in the same block{said}; a block takes each key once: keep one"),
            );
        }
    }
    if info.contains("unknown escape character") {
        let here = line_text(at.line);
        let start = here.char_indices().nth(at.col.saturating_sub(1) as usize).map(|(i, _)| i).unwrap_or(0);
        if let Some(quoted) = here[start..].strip_prefix('"').and_then(|rest| rest.split('"').next()) {
            let suggestion = format!("'{}'", quoted.replace('\'', "''"));
            return Diagnostic::new(
                at,
                format!(
                    "in double quotes YAML reads `\\` as the start of an escape, and `{}` is not one; write a pattern in single quotes, where backslashes stay as written: {suggestion}",
                    unknown_escape(quoted).unwrap_or("\\")
                ),
            );
        }
    }
    if info.contains("did not find expected") || info.contains("mapping values are not allowed") {
        if let Some(d) = unquoted_flow_value(line_text(at.line), at.line) {
            return d;
        }
        if let Some(d) = misaligned_key(text, at.line) {
            return d;
        }
    }
    Diagnostic::new(at, format!("invalid YAML: {info}"))
}

/// `pattern: [A-Z]{2}` — a value starting with `[` or `{`, which YAML reads as a list or a
/// mapping, and the rest of the line then makes no sense to it.
fn unquoted_flow_value(line: &str, number: u32) -> Option<Diagnostic> {
    let (key_part, rest) = line.split_once(": ")?;
    let value = rest.trim();
    let opener = value.chars().next().filter(|c| matches!(c, '[' | '{'))?;
    // Only when text follows the closed list or mapping (`[A-Z]{2}`): an unclosed `[a, b` is a
    // list with a missing bracket, and the parser's words fit it.
    let mut depth = 0usize;
    let close = value.char_indices().find_map(|(i, c)| {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        (depth == 0).then_some(i)
    })?;
    let after = value[close + 1..].trim();
    if after.is_empty() || after.starts_with('#') {
        return None;
    }
    let key = key_part.trim().trim_start_matches("- ").trim();
    let col = key_part.chars().count() + 2 + (rest.chars().count() - rest.trim_start().chars().count()) + 1;
    let read_as = if opener == '[' { "a list" } else { "a mapping" };
    Some(Diagnostic::new(
        Pos::new(number, col as u32),
        format!(
            "the value of `{key}` starts with `{opener}`, which YAML reads as {read_as}; quote it to mean text: '{}'",
            value.replace('\'', "''")
        ),
    ))
}

/// A key indented differently from the key above it in the same block.
fn misaligned_key(text: &str, number: u32) -> Option<Diagnostic> {
    let lines: Vec<&str> = text.lines().collect();
    let here = *lines.get(number.checked_sub(1)? as usize)?;
    let key = here.trim_start().split(':').next()?.trim();
    if key.is_empty() || !here.contains(':') || here.trim_start().starts_with('-') {
        return None;
    }
    let indent = here.len() - here.trim_start().len();
    let above =
        lines[..number as usize - 1].iter().rev().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let (mut above_indent, mut above_body) = (above.len() - above.trim_start().len(), above.trim_start());
    if let Some(after) = above_body.strip_prefix("- ") {
        above_indent += 2;
        above_body = after;
    }
    let above_key = above_body.split(':').next()?.trim();
    if above_indent == indent || above_key.is_empty() {
        return None;
    }
    Some(Diagnostic::new(
        Pos::new(number, indent as u32 + 1),
        format!(
            "`{key}` is indented {indent} spaces, but `{above_key}` on the line above is at {above_indent}: the keys of one block line up"
        ),
    ))
}

/// The key (`name:`, or `- name:`) starting at 1-based column `col` of `line`.
fn key_at(line: &str, col: u32) -> Option<&str> {
    let start = line.char_indices().nth(col.saturating_sub(1) as usize).map(|(i, _)| i)?;
    let rest = line[start..].trim_start_matches("- ");
    let key = rest.split(':').next()?.trim();
    (!key.is_empty() && rest.contains(':')).then_some(key)
}

/// The line before `line` where the same block first gives `key`: walking up at the same
/// indentation until the block starts.
fn first_occurrence(text: &str, line: u32, key: &str) -> Option<u32> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)? as usize)?;
    let indent = here.len() - here.trim_start().len();
    for n in (0..line.saturating_sub(1) as usize).rev() {
        let l = lines[n];
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let i = l.len() - l.trim_start().len();
        let body = l.trim_start();
        // `- key:` opens the block at the list item's indentation plus two.
        let (i, body) = match body.strip_prefix("- ") {
            Some(after) => (i + 2, after),
            None => (i, body),
        };
        if i == indent && body.split(':').next().map(str::trim) == Some(key) {
            return Some(n as u32 + 1);
        }
        if i < indent {
            return None;
        }
    }
    None
}

/// The first `\x` in double-quoted text that YAML has no escape for.
fn unknown_escape(quoted: &str) -> Option<&str> {
    const KNOWN: &str = "0abtnvfre \"/\\N_LPxuU\t";
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            let (j, next) = chars.next()?;
            if !KNOWN.contains(next) {
                return quoted.get(i..j + next.len_utf8());
            }
        }
    }
    None
}

#[cfg(test)]
mod explain_tests {
    use super::*;

    fn first_error(text: &str) -> String {
        let mut diags = Vec::new();
        assert!(load_yaml(text, &mut diags).is_none(), "expected {text:?} to be refused");
        format!("{}: {}", diags[0].pos, diags[0].message)
    }

    #[test]
    fn an_unclosed_list_keeps_the_parsers_words() {
        let e = first_error("a:\n  values: [x, y\n  b: 1\n");
        assert!(e.contains("invalid YAML"), "{e}");
    }

    #[test]
    fn a_stray_character_is_not_blamed_on_a_later_tab() {
        let e = first_error("a: 1\nb: `x`\nc:\td\n");
        assert!(!e.contains("tab"), "{e}");
    }

    #[test]
    fn a_key_repeated_on_a_list_items_first_line_is_found() {
        let e = first_error("fields:\n  - target: a\n    target: b\n");
        assert!(e.starts_with("3:5: `target` is given twice in the same block (first on line 2)"), "{e}");
    }
}
