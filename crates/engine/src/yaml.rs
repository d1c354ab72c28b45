//! YAML with positions, shared by the mapping spec and `environments.yaml`.
//!
//! [`load_yaml`] reads one document with `saphyr` (which keeps a position for every node) into an
//! owned [`Node`] tree; [`Fields`] reads a mapping node against the keys its place allows,
//! reporting unknown ones with a "did you mean" suggestion. Problems are collected, never thrown.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use saphyr::{MarkedYaml, Scalar, YamlData, YamlLoader};
use saphyr_parser::{BufferedInput, Event, Parser, ScalarStyle, Span, SpannedEventReceiver};
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Extent, Layout, Pos, Spanned, suggestion};

/// A YAML node, owned and position-tagged, detached from the parser's lifetimes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it holds.
    pub kind: NodeKind,
    /// Where a scalar ends, and where each character of a string was written.
    pub extent: Extent,
}

/// What a YAML node holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum NodeKind {
    /// `null`, `~` or nothing.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
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

    /// The text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// `value`, located where this node was written.
    pub fn spanned<T>(&self, value: T) -> Spanned<T> {
        Spanned::with_extent(value, self.pos, self.extent.clone())
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
    /// Where each literal (`|`) or folded (`>`) scalar starts (a character index): the tree
    /// keeps their text, not how it was written.
    blocks: HashSet<usize>,
}

impl<'input> Bounded<'input> {
    fn new() -> Self {
        Bounded {
            loader: YamlLoader::default(),
            open: Vec::new(),
            anchors: HashMap::new(),
            expanded: 0,
            refused: None,
            blocks: HashSet::new(),
        }
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
            Event::Scalar(value, style, anchor, _) => {
                if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                    self.blocks.insert(span.start.index());
                }
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
            let chars: Vec<char> = text.chars().collect();
            let src = Source { chars: &chars, blocks: &bounded.blocks, located: RefCell::default() };
            convert(&docs[0], Pos::new(1, 1), &src, diags)
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

/// The file's text, and what the tree forgot of how its scalars were written.
struct Source<'t> {
    chars: &'t [char],
    /// Where each literal or folded block scalar starts.
    blocks: &'t HashSet<usize>,
    /// Each string scalar located with a layout, by where it starts.
    located: RefCell<HashMap<usize, (Pos, Extent)>>,
}

impl Source<'_> {
    fn at(&self, index: usize) -> Option<char> {
        self.chars.get(index).copied()
    }
}

/// `parent` is where the enclosing node starts: saphyr gives some nodes (the empty value under a
/// tag, `key: !tag`) no position at all (line 0), and those borrow their parent's (found by
/// fuzzing the mapping loader).
fn convert(node: &MarkedYaml<'_>, parent: Pos, src: &Source<'_>, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let (pos, extent) = match pos_of(node) {
        Pos { line: 0, .. } => (parent, Extent::default()),
        _ => locate(node, src),
    };
    let kind = match &node.data {
        YamlData::Value(scalar) => scalar_kind(scalar),
        YamlData::Representation(text, _, _) => NodeKind::Str(text.to_string()),
        YamlData::Sequence(items) => NodeKind::Seq(items.iter().filter_map(|n| convert(n, pos, src, diags)).collect()),
        YamlData::Mapping(entries) => {
            let entries: Vec<(&MarkedYaml<'_>, &MarkedYaml<'_>)> = entries.iter().collect();
            let flow = src.at(node.span.start.index()) == Some('{');
            let mut out = Vec::with_capacity(entries.len());
            let mut i = 0;
            while i < entries.len() {
                let (key, value) = entries[i];
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
                        i += 1;
                        continue;
                    }
                };
                let (key_pos, key_extent) = match key_pos.line {
                    0 => (key_pos, Extent::default()),
                    _ => locate(key, src),
                };
                let split = if flow { split_value(&entries[i..], src) } else { None };
                let converted = match split {
                    Some(split) => {
                        let what = &split.intended;
                        diags.push(
                            Diagnostic::new(
                                split.node.pos,
                                format!(
                                    "inside `{{ … }}` a `, ` ends the value of `{key_text}`, so `{}` was read as a key of its own; quote the value: `{key_text}: {}`",
                                    split.cut_at,
                                    single_quoted(what)
                                ),
                            )
                            .spanning(&split.node.extent),
                        );
                        i += split.entries;
                        Some(split.node)
                    }
                    None => {
                        i += 1;
                        convert(value, key_pos, src, diags)
                    }
                };
                if let Some(value) = converted {
                    out.push((Spanned::with_extent(key_text, key_pos, key_extent), value));
                }
            }
            NodeKind::Map(out)
        }
        YamlData::Tagged(tag, inner) => {
            diags.push(Diagnostic::new(pos, format!("YAML tags are not supported (found `{tag}`)")));
            return convert(inner, pos, src, diags);
        }
        YamlData::Alias(_) | YamlData::BadValue => {
            diags.push(Diagnostic::new(pos, "this value cannot be read (bad scalar or unresolved alias)"));
            return None;
        }
    };
    Some(Node { pos, kind, extent })
}

/// Where a node starts and, for a scalar, where it ends and how its text was written. A quoted
/// scalar starts at its first character, not its quote, so an offset into it (a JSONPath's, an
/// expression's) lands on the character.
fn locate(node: &MarkedYaml<'_>, src: &Source<'_>) -> (Pos, Extent) {
    let start = pos_of(node);
    let (from, to) = (node.span.start.index(), node.span.end.index().min(src.chars.len()));
    match &node.data {
        YamlData::Value(Scalar::String(value)) if from < to => {
            // An alias repeats its anchor's scalar: one layout serves every copy.
            if let Some(known) = src.located.borrow().get(&from) {
                return known.clone();
            }
            let style = match src.at(from) {
                Some('"') => Style::DoubleQuoted,
                Some('\'') => Style::SingleQuoted,
                _ if src.blocks.contains(&from) => Style::Block,
                _ => Style::Plain,
            };
            let located = locate_text(&src.chars[from..to], start, style, value);
            if located.1.has_layout() {
                src.located.borrow_mut().insert(from, located.clone());
            }
            located
        }
        YamlData::Value(_) if from < to => {
            (start, Extent::ending(Pos::new(node.span.end.line() as u32, node.span.end.col() as u32 + 1)))
        }
        _ => (start, Extent::default()),
    }
}

/// How a scalar was written, which says how its source text became its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// Literal (`|`) or folded (`>`): the text starts on the line after the indicator, at the
    /// block's indentation.
    Block,
}

/// Locates `value`, written as `raw` (the scalar's source text, quotes included) from `start`:
/// where it starts and ends, and unless it is written as it reads on one line, its layout.
fn locate_text(raw: &[char], start: Pos, style: Style, value: &str) -> (Pos, Extent) {
    let (start, content) = match style {
        Style::SingleQuoted | Style::DoubleQuoted => {
            let close = raw.len() - usize::from(raw.len() > 1 && raw.last() == raw.first());
            (start.shifted(1), &raw[1..close])
        }
        Style::Plain | Style::Block => (start, raw),
    };
    if !content.contains(&'\n') && content.iter().copied().eq(value.chars()) {
        return (start, Extent::ending(start.shifted(content.len())));
    }
    let indent = start.col.saturating_sub(1) as usize;
    let mut pieces = Pieces::new(content, start, style, indent);
    let end = match style {
        // A block's text ends at its last character; its trailing line breaks are layout.
        Style::Block => {
            pieces.filter(|p| matches!(p.gives, Gives::Char(c) if !c.is_whitespace())).last().map_or(start, |p| p.end)
        }
        _ => {
            pieces.by_ref().for_each(drop);
            pieces.pos
        }
    };
    let written = Written { content: content.iter().collect(), start, style, runs: OnceLock::new() };
    (start, Extent::with_layout(end, Arc::new(written)))
}

/// A scalar's source text, to find where each character of its value was written when asked.
#[derive(Debug)]
struct Written {
    content: String,
    start: Pos,
    style: Style,
    /// From each `(offset, pos)` on, character `offset + k` of the value was written `k` columns
    /// right of `pos`; the last is the value's end.
    runs: OnceLock<Box<[(usize, Pos)]>>,
}

impl Layout for Written {
    fn pos_at(&self, value: &str, offset: usize) -> Pos {
        let runs = self.runs.get_or_init(|| {
            let content: Vec<char> = self.content.chars().collect();
            let indent = self.start.col.saturating_sub(1) as usize;
            runs(value, Pieces::new(&content, self.start, self.style, indent), self.start)
        });
        let Some(&(len, _)) = runs.last() else { return self.start };
        let offset = offset.min(len);
        let (from, pos) = runs[runs.partition_point(|(o, _)| *o <= offset).saturating_sub(1)];
        pos.shifted(offset - from)
    }
}

/// What a piece of a scalar's source text gives its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gives {
    /// This character (an escape's, or a doubled `''`'s, for those).
    Char(char),
    /// A line break and the next line's indentation: a space, a line break or nothing once folded.
    Break,
}

/// A piece of source text: what it gives, where it starts and where it ends.
#[derive(Clone, Copy)]
struct Piece {
    gives: Gives,
    at: Pos,
    end: Pos,
}

/// A scalar's source text cut into what each piece gives its value: escapes and `''` decoded,
/// line breaks with the indentation that follows them (all of it, or a block's own).
struct Pieces<'c> {
    content: &'c [char],
    next: usize,
    /// Where the next piece starts.
    pos: Pos,
    style: Style,
    block_indent: usize,
}

impl<'c> Pieces<'c> {
    fn new(content: &'c [char], start: Pos, style: Style, block_indent: usize) -> Self {
        Pieces { content, next: 0, pos: start, style, block_indent }
    }

    /// Past a line break (one character, or two for an escaped one): the next line's
    /// indentation, which the value leaves out.
    fn new_line(&mut self, width: usize) {
        self.next += width;
        self.pos = Pos::new(self.pos.line + 1, 1);
        let mut n = 0;
        while let Some(&c) = self.content.get(self.next) {
            let skipped = match self.style {
                Style::Block => c == ' ' && n < self.block_indent,
                _ => c == ' ' || c == '\t',
            };
            if !skipped {
                break;
            }
            self.next += 1;
            n += 1;
            self.pos = self.pos.shifted(1);
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        loop {
            let &c = self.content.get(self.next)?;
            let at = self.pos;
            let following = self.content.get(self.next + 1).copied();
            let (gives, width) = match (c, self.style, following) {
                ('\n', _, _) => {
                    self.new_line(1);
                    return Some(Piece { gives: Gives::Break, at, end: self.pos });
                }
                // An escaped line break joins the lines: it gives nothing.
                ('\\', Style::DoubleQuoted, Some('\n')) => {
                    self.new_line(2);
                    continue;
                }
                ('\\', Style::DoubleQuoted, Some(_)) => {
                    let (made, len) = unescape(&self.content[self.next + 1..]);
                    (made, 1 + len)
                }
                ('\'', Style::SingleQuoted, Some('\'')) => ('\'', 2),
                (c, _, _) => (c, 1),
            };
            self.next += width;
            self.pos = self.pos.shifted(width);
            return Some(Piece { gives: Gives::Char(gives), at, end: self.pos });
        }
    }
}

/// The character a double-quoted escape gives (`rest` follows the backslash), and how many
/// characters of `rest` it takes.
fn unescape(rest: &[char]) -> (char, usize) {
    let hex = |n: usize| {
        let digits: String = rest.iter().skip(1).take(n).collect();
        let c = u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
        (c, 1 + digits.chars().count())
    };
    match rest[0] {
        'x' => hex(2),
        'u' => hex(4),
        'U' => hex(8),
        c => {
            let made = match c {
                '0' => '\0',
                'a' => '\u{7}',
                'b' => '\u{8}',
                't' => '\t',
                'n' => '\n',
                'v' => '\u{b}',
                'f' => '\u{c}',
                'r' => '\r',
                'e' => '\u{1b}',
                'N' => '\u{85}',
                '_' => '\u{a0}',
                'L' => '\u{2028}',
                'P' => '\u{2029}',
                other => other,
            };
            (made, 1)
        }
    }
}

/// How far past a mismatch the alignment looks for the character it expected: the value and the
/// pieces come from the same text, so a mismatch is a layout rule not modelled here, and is short.
const RESYNC_WINDOW: usize = 16;

/// Where each character of `value` was written, as runs (see [`Written::runs`]): the value's
/// characters are matched in order against the pieces, skipping the indentation, line breaks and
/// trailing spaces that folding leaves out. Each piece is looked at a bounded number of times.
fn runs(value: &str, pieces: Pieces<'_>, start: Pos) -> Box<[(usize, Pos)]> {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut ahead = Ahead { pieces, seen: VecDeque::new() };
    let mut runs = Vec::new();
    let mut continued = None;
    let mut after = start;
    let mut len = 0;
    for c in value.chars() {
        let found = if blank(c) {
            match ahead.get(0).map(|p| p.gives) {
                Some(Gives::Char(g)) if g == c => Some(0),
                Some(Gives::Break) if c == ' ' || c == '\n' => Some(0),
                _ => None,
            }
        } else {
            // Past what the value leaves out; a character the value does not have there is
            // looked for a little further, and otherwise the value goes on from there.
            while ahead.get(0).is_some_and(|p| !matches!(p.gives, Gives::Char(g) if !blank(g))) {
                ahead.skip(1);
            }
            (0..RESYNC_WINDOW)
                .map_while(|k| ahead.get(k).map(|p| (k, p)))
                .find(|(_, p)| p.gives == Gives::Char(c))
                .map(|(k, _)| k)
        };
        let at = match found {
            Some(k) => {
                let piece = ahead.get(k).expect("looked at");
                ahead.skip(k + 1);
                after = piece.end;
                piece.at
            }
            None => ahead.get(0).map_or(after, |p| p.at),
        };
        if continued != Some(at) {
            runs.push((len, at));
        }
        continued = Some(at.shifted(1));
        len += 1;
    }
    runs.push((len, after));
    runs.into_boxed_slice()
}

/// The pieces, with the few ahead that were looked at kept.
struct Ahead<'c> {
    pieces: Pieces<'c>,
    seen: VecDeque<Piece>,
}

impl Ahead<'_> {
    fn get(&mut self, k: usize) -> Option<Piece> {
        while self.seen.len() <= k {
            let piece = self.pieces.next()?;
            self.seen.push_back(piece);
        }
        self.seen.get(k).copied()
    }

    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            if self.seen.pop_front().is_none() {
                self.pieces.next();
            }
        }
    }
}

/// `key: f(a, b)` inside `{ … }`: YAML ends the plain value at `, ` (and a `: ` after it starts
/// another key), so `b)` becomes a key of its own. Found from the entry at `entries[0]`: its
/// value, plain, followed by entries that cannot be keys of their own — written without `:`, or
/// while a bracket of the value is still open.
struct Split {
    /// The value as meant, located from the start of the cut value to the end of the last piece.
    node: Node,
    intended: String,
    /// The first piece read as a key.
    cut_at: String,
    /// How many entries the value covers (its own included).
    entries: usize,
}

fn split_value(entries: &[(&MarkedYaml<'_>, &MarkedYaml<'_>)], src: &Source<'_>) -> Option<Split> {
    let (_, value) = entries[0];
    let from = value.span.start.index();
    let plain = matches!(value.data, YamlData::Value(ref s) if !matches!(s, Scalar::Null))
        && !matches!(src.at(from), Some('"' | '\'') | None)
        && !src.blocks.contains(&from);
    if !plain || value.span.start.line() == 0 {
        return None;
    }
    let mut to = value.span.end.index().min(src.chars.len());
    // How many more `(` and `[` than `)` and `]` the value has so far.
    let mut open = unclosed(src.chars.get(from..to).unwrap_or_default());
    let mut covered = 1;
    for (key, value) in &entries[1..] {
        let key_end = key.span.end.index();
        let after_key = src.chars.get(key_end..).unwrap_or_default().iter().find(|c| !c.is_whitespace());
        let bare = matches!(after_key, Some(',' | '}'));
        if !(bare || open > 0) || key.span.start.line() == 0 {
            break;
        }
        let next = if bare || value.span.start.line() == 0 { key_end } else { value.span.end.index().max(key_end) };
        let next = next.min(src.chars.len()).max(to);
        open += unclosed(&src.chars[to..next]);
        to = next;
        covered += 1;
    }
    if covered == 1 {
        return None;
    }
    let written = src.chars.get(from..to)?;
    // Lines folded as a plain scalar folds them: a line break and its indentation, one space.
    let mut intended = String::with_capacity(written.len());
    for line in written.iter().collect::<String>().split('\n') {
        if !intended.is_empty() {
            intended.push(' ');
        }
        intended.push_str(if intended.is_empty() { line.trim_end() } else { line.trim() });
    }
    let start = pos_of(value);
    let (pos, extent) = locate_text(written, start, Style::Plain, &intended);
    let cut = entries[1].0;
    let cut_at: String = src.chars.get(cut.span.start.index()..cut.span.end.index())?.iter().collect();
    Some(Split {
        node: Node { pos, kind: NodeKind::Str(intended.clone()), extent },
        intended,
        cut_at,
        entries: covered,
    })
}

/// How many more `(` and `[` than `)` and `]` `text` has.
fn unclosed(text: &[char]) -> isize {
    text.iter()
        .map(|c| match c {
            '(' | '[' => 1,
            ')' | ']' => -1,
            _ => 0,
        })
        .sum()
}

/// `text` in single quotes, as YAML writes it.
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
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

/// Gives each diagnostic that has no end the end of the scalar written where it starts (a key,
/// a value, a whole expression), read again from the file's text: the code that finds a problem
/// often knows only where the value it judges starts.
pub fn fill_ends(text: &str, diags: &mut [Diagnostic]) {
    if diags.iter().all(|d| d.end.is_some()) {
        return;
    }
    let Some(root) = load_yaml(text, &mut Vec::new()) else { return };
    let mut ends = HashMap::new();
    let mut pending = vec![&root];
    while let Some(node) = pending.pop() {
        match &node.kind {
            NodeKind::Seq(items) => pending.extend(items),
            NodeKind::Map(entries) => {
                for (key, value) in entries {
                    if let Some(end) = key.extent.end {
                        ends.entry(key.pos).or_insert(end);
                    }
                    pending.push(value);
                }
            }
            _ => {
                if let Some(end) = node.extent.end {
                    ends.entry(node.pos).or_insert(end);
                }
            }
        }
    }
    for d in diags.iter_mut().filter(|d| d.end.is_none()) {
        d.end = ends.get(&d.pos).copied();
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

    /// The value of `key`, if given.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }

    /// The value of `key` as a string; another kind of value is reported in `diags`.
    pub fn string(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<String>> {
        self.get(key).and_then(|node| expect_string(node, key, diags))
    }

    /// The value of `key` as a boolean; another kind of value is reported in `diags`.
    pub fn boolean(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<bool>> {
        let node = self.get(key)?;
        match node.kind {
            NodeKind::Bool(b) => Some(node.spanned(b)),
            _ => {
                diags.push(Diagnostic::new(
                    node.pos,
                    format!("`{key}` must be true or false, found {}", node.kind_name()),
                ));
                None
            }
        }
    }

    /// The items of `key` as a list (none when absent); another kind of value is reported in `diags`.
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

    /// The items of `key` as strings; other kinds of values are reported in `diags`.
    pub fn string_list(&self, key: &str, diags: &mut Vec<Diagnostic>) -> Vec<Spanned<String>> {
        self.list(key, diags).iter().filter_map(|n| expect_string(n, key, diags)).collect()
    }
}

/// The node as a string; another kind of value is reported in `diags`, named `what`.
pub fn expect_string(node: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<Spanned<String>> {
    match &node.kind {
        NodeKind::Str(s) => Some(node.spanned(s.clone())),
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
    if info.contains("did not find expected")
        || info.contains("mapping values are not allowed")
        || info.contains("trailing content after")
    {
        if let Some(d) = unquoted_flow_value(line_text(at.line), at.line) {
            return d;
        }
        if let Some(d) = value_to_quote(line_text(at.line), at) {
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
    let start = Pos::new(number, col as u32);
    Some(
        Diagnostic::new(
            start,
            format!(
                "the value of `{key}` starts with `{opener}`, which YAML reads as {read_as}; quote it to mean text: '{}'",
                value.replace('\'', "''")
            ),
        )
        .until(start.shifted(value.chars().count())),
    )
}

/// `expr: a ? b : c`, `{ target: x, expr: a ? b : c }`, `expr: "a" + b`: a value that YAML
/// cannot read as written — a `: ` in it starts a key, inside `{ … }` a `, ` ends it, and text
/// after a quoted start is refused — found from the entry the parser stopped in. Its key and
/// value, with the value quoted whole.
fn value_to_quote(line: &str, at: Pos) -> Option<Diagnostic> {
    let chars: Vec<char> = line.chars().collect();
    let stop = (at.col.saturating_sub(1) as usize).min(chars.len());
    let is_key_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    // Where an entry starts: after the line's indentation or `- `, or after `{` or `, ` in the
    // innermost open `{ … }`; `(start, depth)`.
    let mut starts: Vec<(usize, usize)> = Vec::new();
    let mut first = chars.iter().position(|c| !c.is_whitespace())?;
    while chars.get(first) == Some(&'-') && chars.get(first + 1) == Some(&' ') {
        first += 2 + chars[first + 2..].iter().take_while(|c| **c == ' ').count();
    }
    starts.push((first, 0));
    let mut open: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut i = first;
    // The bracket depth at the stop, and the `{` it is in, if any.
    let mut at_stop = None;
    while i < chars.len() {
        if i == stop {
            at_stop = Some(open.len());
        }
        let c = chars[i];
        match quote {
            Some('"') if c == '\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if i == 0 || matches!(chars[i - 1], ' ' | '{' | '[' | ',') => quote = Some(c),
                '{' | '[' | '(' => {
                    open.push(c);
                    if c == '{' {
                        starts.push((i + 1, open.len()));
                    }
                }
                '}' | ']' | ')' => {
                    open.pop();
                }
                ',' if open.last() == Some(&'{') => starts.push((i + 1, open.len())),
                ' ' if chars.get(i + 1) == Some(&'#') && open.is_empty() => break,
                _ => {}
            },
        }
        i += 1;
    }
    let end_of_line = i;
    let depth = at_stop.unwrap_or(open.len());
    // The last entry starting before the stop, at the stop's depth or above, that is `key: `.
    let entry = starts.iter().rev().filter(|(s, d)| *s <= stop && *d <= depth).find_map(|&(s, d)| {
        let s = s + chars[s..].iter().take_while(|c| **c == ' ').count();
        let key_len = chars[s..].iter().take_while(|c| is_key_char(**c)).count();
        let colon = s + key_len;
        let spaced = chars.get(colon) == Some(&':') && chars.get(colon + 1).is_none_or(|c| *c == ' ');
        (key_len > 0 && spaced).then_some((s, colon, d))
    });
    let (key_start, colon, d) = entry?;
    let value_start = colon + 1 + chars[colon + 1..].iter().take_while(|c| **c == ' ').count();
    if value_start > stop {
        return None;
    }
    // The value runs to the `}` closing its `{ … }` (or to a `, key: ` after it), else the line's end.
    let value_end = if d > 0 { flow_value_end(&chars, value_start, end_of_line, d, stop) } else { end_of_line };
    let value: String = chars[value_start..value_end].iter().collect::<String>().trim_end().to_string();
    let key: String = chars[key_start..colon].iter().collect();
    if value.is_empty() {
        return None;
    }
    let why = match (value.starts_with(['"', '\'']), d > 0) {
        (true, _) => "YAML takes only the quoted start as the value, and refuses the text after it".to_string(),
        (false, true) => {
            "inside `{ … }` YAML reads `: ` as the start of a key and `, ` as the end of a value".to_string()
        }
        (false, false) => "YAML reads `: ` in it as the start of a key".to_string(),
    };
    let col = |i: usize| line[..line.char_indices().nth(i).map_or(line.len(), |(b, _)| b)].chars().count() as u32 + 1;
    let start = Pos::new(at.line, col(value_start));
    Some(
        Diagnostic::new(
            start,
            format!(
                "the value of `{key}` cannot be read as written: {why}; quote the value: `{key}: {}`",
                single_quoted(&value)
            ),
        )
        .until(start.shifted(value.chars().count())),
    )
}

/// Where a value inside `{ … }` (at bracket depth `d`) ends: at the bracket that closes its
/// mapping, or at a `, key: ` after the stop; else at the line's end.
fn flow_value_end(chars: &[char], value_start: usize, end_of_line: usize, d: usize, stop: usize) -> usize {
    let is_key_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut depth = d;
    let mut quote: Option<char> = None;
    let mut j = value_start;
    while j < end_of_line {
        let c = chars[j];
        match quote {
            Some('"') if c == '\\' => j += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if matches!(chars[j - 1], ' ' | '{' | '[' | ',') => quote = Some(c),
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' if depth == d => break,
                '}' | ']' | ')' => depth -= 1,
                ',' if depth == d && j > stop => {
                    let key = j + 1 + chars[j + 1..end_of_line].iter().take_while(|c| **c == ' ').count();
                    let key_len = chars[key..end_of_line].iter().take_while(|c| is_key_char(**c)).count();
                    if key_len > 0 && chars.get(key + key_len..key + key_len + 2) == Some(&[':', ' ']) {
                        break;
                    }
                }
                _ => {}
            },
        }
        j += 1;
    }
    j.min(end_of_line)
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
    /// Where `first_error` starts and ends.
    fn first_error_span(text: &str) -> (Pos, Option<Pos>) {
        let mut diags = Vec::new();
        assert!(load_yaml(text, &mut diags).is_none(), "expected {text:?} to be refused");
        (diags[0].pos, diags[0].end)
    }

    #[test]
    fn a_colon_in_a_value_inside_a_flow_mapping_says_to_quote_the_value() {
        let text = "fields:\n  - { target: x, expr: a ? b : c, type: string }\n";
        let e = first_error(text);
        assert!(
            e.starts_with(
                "2:24: the value of `expr` cannot be read as written: inside `{ … }` YAML reads `: ` as the start of a key"
            ) && e.ends_with("quote the value: `expr: 'a ? b : c'`"),
            "{e}"
        );
        assert_eq!(first_error_span(text), (Pos::new(2, 24), Some(Pos::new(2, 33))));
    }

    #[test]
    fn a_colon_in_a_value_in_a_block_says_to_quote_the_value() {
        let e = first_error("fields:\n  - target: x\n    expr: has(a) ? a : 'none'\n");
        assert!(e.starts_with("3:11: the value of `expr` cannot be read as written: YAML reads `: ` in it"), "{e}");
        assert!(e.ends_with("quote the value: `expr: 'has(a) ? a : ''none'''`"), "{e}");
    }

    #[test]
    fn a_value_quoted_only_at_its_start_says_to_quote_all_of_it() {
        let e = first_error("fields:\n  - target: x\n    expr: \"A\" + b\n");
        assert!(
            e.starts_with("3:11: the value of `expr` cannot be read as written: YAML takes only the quoted start"),
            "{e}"
        );
        assert!(e.ends_with("quote the value: `expr: '\"A\" + b'`"), "{e}");
    }

    #[test]
    fn an_unclosed_flow_list_keeps_the_parsers_words_though_a_flow_mapping_follows() {
        let e = first_error("a:\n  values: [x, y\n  b: { c: d }\n");
        assert!(e.contains("invalid YAML"), "{e}");
    }

    /// `{ check: size(x) > 0, message: a, b }` parses: as `message: a` and a key `b`.
    #[test]
    fn a_value_cut_by_a_comma_inside_a_flow_mapping_says_to_quote_it_and_reads_it_whole() {
        let mut diags = Vec::new();
        let node = load_yaml("r: { check: size(x) > 0, message: a, b }\n", &mut diags).unwrap();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(
            diags[0].message,
            "inside `{ … }` a `, ` ends the value of `message`, so `b` was read as a key of its own; quote the value: `message: 'a, b'`"
        );
        assert_eq!((diags[0].pos, diags[0].end), (Pos::new(1, 35), Some(Pos::new(1, 39))));
        let NodeKind::Map(top) = &node.kind else { panic!() };
        let NodeKind::Map(rule) = &top[0].1.kind else { panic!() };
        let keys: Vec<&str> = rule.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["check", "message"]);
        assert_eq!(rule[1].1.as_str(), Some("a, b"));
    }

    #[test]
    fn a_call_cut_by_a_comma_inside_a_flow_mapping_is_read_to_its_closing_parenthesis() {
        let mut diags = Vec::new();
        let node = load_yaml("- { target: a, expr: f(x, y) ? g(x, y) : 0, type: integer }\n", &mut diags).unwrap();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.ends_with("quote the value: `expr: 'f(x, y) ? g(x, y) : 0'`"), "{diags:?}");
        let NodeKind::Seq(items) = &node.kind else { panic!() };
        let NodeKind::Map(field) = &items[0].kind else { panic!() };
        let keys: Vec<&str> = field.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["target", "expr", "type"]);
    }

    #[test]
    fn keys_without_values_in_a_flow_mapping_of_their_own_are_left_alone() {
        let mut diags = Vec::new();
        load_yaml("a: { x, y }\nb: { n: 'q, r', m: [1, 2] }\n", &mut diags).unwrap();
        assert!(diags.is_empty(), "{diags:?}");
    }
}

#[cfg(test)]
mod position_tests {
    use super::*;

    /// The string under top-level `key`, located.
    fn scalar(text: &str, key: &str) -> Spanned<String> {
        let mut diags = Vec::new();
        let root = load_yaml(text, &mut diags).unwrap_or_else(|| panic!("{diags:?}"));
        assert!(diags.is_empty(), "{diags:?}");
        let NodeKind::Map(entries) = &root.kind else { panic!("not a mapping") };
        let (_, node) = entries.iter().find(|(k, _)| k.value == key).unwrap();
        node.spanned(node.as_str().unwrap().to_string())
    }

    /// Where the first `needle` in the value was written.
    fn at(s: &Spanned<String>, needle: &str) -> Pos {
        let byte = s.value.find(needle).unwrap_or_else(|| panic!("{needle} not in {:?}", s.value));
        s.pos_at(s.value[..byte].chars().count())
    }

    #[test]
    fn a_folded_block_places_each_line_on_its_own_line() {
        let s = scalar("a: 1\nexpr: >-\n  items +\n  sizee(items)\n\nnext: 2\n", "expr");
        assert_eq!(s.value, "items + sizee(items)");
        assert_eq!(s.pos, Pos::new(3, 3));
        assert_eq!(at(&s, "sizee"), Pos::new(4, 3));
        assert_eq!(at(&s, "(items)"), Pos::new(4, 8));
        assert_eq!(s.extent.end, Some(Pos::new(4, 15)));
    }

    #[test]
    fn a_literal_block_keeps_the_extra_indentation_of_its_lines() {
        let s = scalar("expr: |\n  a\n    + cnt\n  + d\n", "expr");
        assert_eq!(s.value, "a\n  + cnt\n+ d\n");
        assert_eq!(at(&s, "cnt"), Pos::new(3, 7));
        assert_eq!(at(&s, "  + cnt"), Pos::new(3, 3));
        assert_eq!(at(&s, "d"), Pos::new(4, 5));
        assert_eq!(s.extent.end, Some(Pos::new(4, 6)));
    }

    #[test]
    fn a_block_with_an_indentation_indicator_starts_at_its_indentation() {
        let s = scalar("expr: |2-\n    x + y\n", "expr");
        assert_eq!(s.value, "  x + y");
        assert_eq!(at(&s, "y"), Pos::new(2, 9));
    }

    #[test]
    fn escapes_in_double_quotes_take_the_columns_they_were_written_in() {
        let s = scalar("expr: \"a\\tb + \\\"x\\\" + \\u00e9 + nme\"\n", "expr");
        assert_eq!(s.value, "a\tb + \"x\" + é + nme");
        assert_eq!(s.pos, Pos::new(1, 8));
        assert_eq!(at(&s, "b"), Pos::new(1, 11));
        assert_eq!(at(&s, "\"x"), Pos::new(1, 15));
        assert_eq!(at(&s, "é"), Pos::new(1, 23));
        assert_eq!(at(&s, "nme"), Pos::new(1, 32));
        assert_eq!(s.pos_at(s.value.chars().count()), Pos::new(1, 35));
        assert_eq!(s.extent.end, Some(Pos::new(1, 35)));
    }

    #[test]
    fn double_quotes_over_lines_fold_and_join_at_an_escaped_line_break() {
        let s = scalar("expr: \"a +\n  b + \\\n   c\"\n", "expr");
        assert_eq!(s.value, "a + b + c");
        assert_eq!(at(&s, "b"), Pos::new(2, 3));
        assert_eq!(at(&s, "c"), Pos::new(3, 4));
    }

    #[test]
    fn a_doubled_quote_in_single_quotes_is_one_character() {
        let s = scalar("expr: 'it''s + foo\n  + bar'\n", "expr");
        assert_eq!(s.value, "it's + foo + bar");
        assert_eq!(at(&s, "s +"), Pos::new(1, 12));
        assert_eq!(at(&s, "foo"), Pos::new(1, 16));
        assert_eq!(at(&s, "bar"), Pos::new(2, 5));
    }

    #[test]
    fn a_plain_scalar_over_lines_places_each_line_on_its_own_line() {
        let s = scalar("expr: items   \n    +   bar\n", "expr");
        assert_eq!(s.value, "items +   bar");
        assert_eq!(at(&s, "bar"), Pos::new(2, 9));
        assert_eq!(s.extent.end, Some(Pos::new(2, 12)));
    }

    #[test]
    fn windows_line_breaks_are_line_breaks() {
        let s = scalar("a: 1\r\nexpr: >-\r\n  x +\r\n  sizee(x)\r\n", "expr");
        assert_eq!(at(&s, "sizee"), Pos::new(4, 3));
    }

    #[test]
    fn a_one_line_scalar_needs_no_table() {
        let s = scalar("expr: a + b\nq: 'x + y'\n", "expr");
        assert_eq!((s.pos, s.extent.clone()), (Pos::new(1, 7), Extent::ending(Pos::new(1, 12))));
        assert_eq!(at(&s, "b"), Pos::new(1, 11));
        let q = scalar("expr: a + b\nq: 'x + y'\n", "q");
        assert_eq!((q.pos, q.extent), (Pos::new(2, 5), Extent::ending(Pos::new(2, 10))));
    }

    #[test]
    fn a_diagnostic_at_a_scalar_gets_the_scalars_end() {
        let text = "a: 1\nexpr: >-\n  x +\n  y\nkey: 'quoted'\n";
        let mut diags = vec![
            Diagnostic::new(Pos::new(3, 3), "the folded block"),
            Diagnostic::new(Pos::new(5, 7), "the quoted text"),
            Diagnostic::new(Pos::new(5, 1), "a key"),
            Diagnostic::new(Pos::new(3, 5), "inside a scalar: left alone"),
        ];
        fill_ends(text, &mut diags);
        let ends: Vec<Option<Pos>> = diags.iter().map(|d| d.end).collect();
        assert_eq!(ends, [Some(Pos::new(4, 4)), Some(Pos::new(5, 13)), Some(Pos::new(5, 4)), None]);
    }
}
