//! Positions and located problems, shared by the spec loader and the plan compiler.
//!
//! A [`Diagnostic`] is one problem in one file at one place. Loading and compiling collect them all
//! (like a compiler) and the caller renders them as `FILE:LINE:COL: error: message`.

use std::fmt;

/// A place in a source file: 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }

    /// The position `chars` characters to the right on the same line (for pointing inside a scalar).
    pub fn shifted(self, chars: usize) -> Self {
        Pos { line: self.line, col: self.col.saturating_add(chars as u32) }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value together with where it was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> Spanned<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

impl Spanned<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// One located problem. Every diagnostic is an error: a mapping either compiles cleanly or is refused.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
}

impl Diagnostic {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic { pos, message: message.into() }
    }

    /// Renders the diagnostic the way compilers do, so editors and CI logs can jump to it.
    pub fn render(&self, file: &str) -> String {
        format!("{file}:{}:{}: error: {}", self.pos.line, self.pos.col, self.message)
    }

    /// The same, as a warning: the mapping still loads.
    pub fn render_warning(&self, file: &str) -> String {
        format!("{file}:{}:{}: warning: {}", self.pos.line, self.pos.col, self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.pos, self.message)
    }
}

/// `did you mean `x`?` for a misspelt name, when one of the known names is close enough.
pub fn suggestion<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let best = known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!("; did you mean `{k}`?"),
        None => String::new(),
    }
}
