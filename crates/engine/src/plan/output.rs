//! Writes the output object straight to bytes, in spec order, nesting dotted targets.
//!
//! Keys are escaped once at compile time; a record only appends. A nested object whose fields are
//! all absent is left out rather than written as `{}`.

use super::value::{FieldState, append};

#[derive(Debug, Default)]
pub struct OutputTree {
    root: Vec<OutNode>,
}

#[derive(Debug)]
enum OutNode {
    Leaf { key: Box<[u8]>, field: usize },
    Object { name: String, key: Box<[u8]>, children: Vec<OutNode> },
}

/// `,"name":` with JSON escaping, ready to append: [`member_key`] takes it with or without the
/// comma, so a member's separator and key are one copy.
fn key_bytes(name: &str) -> Box<[u8]> {
    let mut out = vec![b','];
    serde_json::to_writer(&mut out, name).expect("a str always serialises");
    out.push(b':');
    out.into_boxed_slice()
}

/// A member's key as written: after another member, with its comma.
#[inline(always)]
fn member_key(key: &[u8], after_another: bool) -> &[u8] {
    &key[usize::from(!after_another)..]
}

impl OutputTree {
    /// The written targets, with their field indexes, in spec order; the compiler has already
    /// refused duplicates and overlaps.
    pub fn build<'a>(targets: impl Iterator<Item = (usize, &'a str)>) -> Self {
        let mut tree = OutputTree::default();
        for (field, target) in targets {
            let mut level = &mut tree.root;
            let mut segments = target.split('.').peekable();
            while let Some(segment) = segments.next() {
                if segments.peek().is_none() {
                    level.push(OutNode::Leaf { key: key_bytes(segment), field });
                    break;
                }
                let existing = level.iter().position(|n| matches!(n, OutNode::Object { name, .. } if name == segment));
                let index = existing.unwrap_or_else(|| {
                    level.push(OutNode::Object {
                        name: segment.to_owned(),
                        key: key_bytes(segment),
                        children: Vec::new(),
                    });
                    level.len() - 1
                });
                level = match &mut level[index] {
                    OutNode::Object { children, .. } => children,
                    OutNode::Leaf { .. } => unreachable!("overlapping targets are refused at compile time"),
                };
            }
        }
        tree
    }

    pub fn write(&self, states: &[FieldState<'_>], out: &mut Vec<u8>) {
        write_object(&self.root, states, out);
    }
}

/// Appends `{…}`; returns whether any member was written.
fn write_object(nodes: &[OutNode], states: &[FieldState<'_>], out: &mut Vec<u8>) -> bool {
    out.push(b'{');
    let mut wrote = false;
    for node in nodes {
        match node {
            OutNode::Leaf { key, field } => {
                if let FieldState::Present(value) = &states[*field] {
                    append(out, member_key(key, wrote));
                    value.write_json(out);
                    wrote = true;
                }
            }
            OutNode::Object { key, children, .. } => {
                let mark = out.len();
                append(out, member_key(key, wrote));
                if write_object(children, states, out) {
                    wrote = true;
                } else {
                    out.truncate(mark);
                }
            }
        }
    }
    out.push(b'}');
    wrote
}
