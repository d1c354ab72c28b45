//! YAML with positions, shared by the mapping spec and `environments.yaml`.
//!
//! [`load_yaml`] reads one document with `saphyr` (which keeps a position for every node) into an
//! owned [`Node`] tree; [`Fields`] reads a mapping node against the keys its place allows,
//! reporting unknown ones with a "did you mean" suggestion. Problems are collected, never thrown.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
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

/// Loads a single YAML document into an owned [`Node`] tree.
pub fn load_yaml(text: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let docs = match MarkedYaml::load_from_str(text) {
        Ok(docs) => docs,
        Err(e) => {
            let m = e.marker();
            diags.push(Diagnostic::new(
                Pos::new(m.line() as u32, m.col() as u32 + 1),
                format!("invalid YAML: {}", e.info()),
            ));
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
