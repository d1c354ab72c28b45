//! Positions and located problems, shared by the spec loader and the plan compiler.
//!
//! A [`Diagnostic`] is one problem in one file, from where it starts to where it ends, as an error
//! (the mapping is refused) or a warning (it loads). Loading and compiling collect them all (like a
//! compiler); the caller renders each as one line, `FILE:LINE:COL: error: message`, or with a
//! [`SourceFile`] as that line followed by the source lines with the offending text underlined.

use std::fmt;
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A place in a source file: 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1, in characters.
    pub col: u32,
}

impl Pos {
    /// The place at `line` and `col`.
    pub const fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }

    /// The position `chars` characters to the right on the same line. Inside a scalar, use
    /// [`Spanned::pos_at`], which knows where a quoted, escaped or multi-line value was written.
    pub fn shifted(self, chars: usize) -> Self {
        Pos { line: self.line, col: self.col.saturating_add(chars as u32) }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Where each character of a value was written, for a value not written character for character
/// on one line (a quoted value with escapes, a block or a value over several lines). The loader
/// that read the value knows how; it works it out when first asked, since only a value with a
/// problem inside is asked.
pub trait Layout: fmt::Debug + Send + Sync {
    /// Where character `offset` of `value` (the text this layout was made for) was written; past
    /// its end, its end.
    fn pos_at(&self, value: &str, offset: usize) -> Pos;
}

/// Where a value's text lies in its file beyond its first character: where it ends, and for a
/// value not written character for character on one line, its [`Layout`].
#[derive(Clone, Debug, Default)]
pub struct Extent {
    /// Just past the value's last character; `None` when not known (a value made in code).
    pub end: Option<Pos>,
    layout: Option<Arc<dyn Layout>>,
}

impl Extent {
    /// A value whose characters follow each other on one line, ending at `end`.
    pub fn ending(end: Pos) -> Self {
        Extent { end: Some(end), layout: None }
    }

    /// A value ending at `end` whose characters were written as `layout` says.
    pub fn with_layout(end: Pos, layout: Arc<dyn Layout>) -> Self {
        Extent { end: Some(end), layout: Some(layout) }
    }

    /// Whether the value was written other than character for character on one line.
    pub fn has_layout(&self) -> bool {
        self.layout.is_some()
    }

    /// Where character `offset` of `value`, starting at `start`, was written.
    pub fn pos_at(&self, start: Pos, value: &str, offset: usize) -> Pos {
        match &self.layout {
            Some(layout) => layout.pos_at(value, offset),
            None => start.shifted(offset),
        }
    }
}

/// Two extents are the same place when they end at the same place and both have, or both lack, a
/// layout (which is worked out from the same text).
impl PartialEq for Extent {
    fn eq(&self, other: &Self) -> bool {
        self.end == other.end && self.layout.is_some() == other.layout.is_some()
    }
}

/// A value together with where it was written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it starts.
    pub pos: Pos,
    /// Where it ends, and where each character of a string was written.
    pub extent: Extent,
}

impl<T> Spanned<T> {
    /// A value known only by where it starts.
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos, extent: Extent::default() }
    }

    /// A value with where it starts and ends.
    pub fn with_extent(value: T, pos: Pos, extent: Extent) -> Self {
        Spanned { value, pos, extent }
    }

    /// The same place, another value (a scalar's text read as an expression).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Spanned<U> {
        Spanned { value: f(self.value), pos: self.pos, extent: self.extent }
    }
}

impl Spanned<String> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Where character `offset` of the text was written in the file (the error inside a
    /// JSONPath or an expression), on its own line even when the text spans several.
    pub fn pos_at(&self, offset: usize) -> Pos {
        self.extent.pos_at(self.pos, &self.value, offset)
    }
}

/// Whether a diagnostic refuses the mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The mapping is refused.
    #[default]
    Error,
    /// Surely a mistake, but the mapping still loads.
    Warning,
}

impl Severity {
    /// `error` or `warning`, as messages say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a compilation has found so far: errors refuse the mapping, warnings do not. Every phase
/// of the compiler adds to one of these; a phase tells whether its own part compiled by whether
/// [`Diagnostics::len`] (the errors) grew.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Adds a problem, by its severity.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        match diagnostic.severity {
            Severity::Error => self.errors.push(diagnostic),
            Severity::Warning => self.warnings.push(diagnostic),
        }
    }

    /// How many errors (warnings do not count).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// No error so far (there may be warnings).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors so far.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.errors.iter()
    }

    /// The errors and the warnings, each sorted and without repeats.
    pub fn into_parts(mut self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        for list in [&mut self.errors, &mut self.warnings] {
            list.sort();
            list.dedup();
        }
        (self.errors, self.warnings)
    }
}

/// The errors by position in the order found.
impl std::ops::Index<usize> for Diagnostics {
    type Output = Diagnostic;

    fn index(&self, i: usize) -> &Diagnostic {
        &self.errors[i]
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<I: IntoIterator<Item = Diagnostic>>(&mut self, iter: I) {
        for d in iter {
            self.push(d);
        }
    }
}

/// One located problem: an error refuses the mapping, a warning does not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// Whether it refuses the mapping.
    pub severity: Severity,
    /// Where the problem is.
    pub pos: Pos,
    /// What the problem is.
    pub message: String,
    /// Just past the offending text, when the code that found the problem knows it; otherwise a
    /// [`SourceFile`] takes the token written at `pos`.
    pub end: Option<Pos>,
}

impl Diagnostic {
    /// An error at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, pos, message: message.into(), end: None }
    }

    /// A warning at `pos`: the mapping still loads.
    pub fn warning(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::new(pos, message) }
    }

    /// The same diagnostic, ending just before `end`.
    pub fn until(self, end: Pos) -> Self {
        Diagnostic { end: Some(end.max(self.pos)), ..self }
    }

    /// The same diagnostic, ending where a value ends, when that is known.
    pub fn spanning(self, extent: &Extent) -> Self {
        match extent.end {
            Some(end) => self.until(end),
            None => self,
        }
    }

    /// One line, the way compilers write it, so editors and CI logs can jump to it:
    /// `FILE:LINE:COL: error: message`.
    pub fn render(&self, file: &str) -> String {
        format!("{file}:{}:{}: {}: {}", self.pos.line, self.pos.col, self.severity, self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.pos, self.severity, self.message)
    }
}

/// A file's text, to show diagnostics in it.
pub struct SourceFile<'a> {
    name: &'a str,
    text: &'a str,
    /// The byte offset where each line starts: after a `\n`, or after a `\r` that no `\n` follows.
    lines: Vec<usize>,
    /// Whether each line is ASCII, so that a column is a byte offset: a file of one long line has
    /// all its problems on it, and counting characters up to each would take time for each.
    ascii: Vec<bool>,
}

impl<'a> SourceFile<'a> {
    /// The file `name` (as messages show it) whose text is `text`.
    pub fn new(name: &'a str, text: &'a str) -> Self {
        // Lines end as YAML ends them, whose positions these are: at `\n`, `\r\n` and a lone `\r`.
        let bytes = text.as_bytes();
        let breaks = memchr::memchr2_iter(b'\n', b'\r', bytes)
            .filter(|&i| bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n'));
        let lines: Vec<usize> = std::iter::once(0).chain(breaks.map(|i| i + 1)).collect();
        let ends = lines.iter().skip(1).copied().chain([text.len()]);
        let ascii = lines.iter().zip(ends).map(|(&start, end)| text.as_bytes()[start..end].is_ascii()).collect();
        SourceFile { name, text, lines, ascii }
    }

    /// Line `line` (1-based) without its line break, and the byte offset it starts at.
    fn line(&self, line: u32) -> Option<(usize, &'a str)> {
        let start = *self.lines.get((line as usize).checked_sub(1)?)?;
        let end = self.lines.get(line as usize).map_or(self.text.len(), |next| next - 1);
        let text = &self.text[start..end];
        Some((start, text.strip_suffix('\r').unwrap_or(text)))
    }

    /// The byte offset of `pos`: past the end of its line when the column is, at the end of the
    /// text when the line is.
    fn offset(&self, pos: Pos) -> usize {
        let column = pos.col.saturating_sub(1) as usize;
        match self.line(pos.line) {
            Some((start, line)) if self.ascii[pos.line as usize - 1] => start + column.min(line.len()),
            Some((start, line)) => start + line.char_indices().nth(column).map_or(line.len(), |(i, _)| i),
            None => self.text.len(),
        }
    }

    /// Where a diagnostic's text ends: its own end, or the end of the token written at its start.
    pub fn end_of(&self, d: &Diagnostic) -> Pos {
        if let Some(end) = d.end {
            return end.max(d.pos);
        }
        let Some((start, line)) = self.line(d.pos.line) else { return d.pos };
        let at = self.offset(d.pos) - start;
        d.pos.shifted(yaml_token_len(line, at))
    }

    /// The diagnostic as its one line, then the source lines it covers with the text underlined,
    /// the way rustc shows them; ends with a line break.
    pub fn render(&self, d: &Diagnostic) -> String {
        let title = d.render(self.name);
        let end = self.end_of(d);
        // Without the text (a file that could not be read again) there is nothing to show.
        let (Some((first, _)), Some((last_start, last)), false) =
            (self.line(d.pos.line), self.line(end.line), self.text.is_empty())
        else {
            return format!("{title}\n");
        };
        // Only the lines the diagnostic covers go to the renderer, which reads all it is given;
        // of a long line, only the part around the text (a mapping written as one line of JSON
        // would otherwise cost the whole line for each of its problems). The renderer shows less
        // than that part of a line, so what it shows is the same.
        let excerpt = &self.text[first..last_start + last.len()];
        let from = self.offset(d.pos) - first;
        let to = (self.offset(end) - first).clamp(from, excerpt.len());
        let cut_before = floor_char_boundary(excerpt, from.saturating_sub(SHOWN_AROUND));
        let last_line = last_start - first;
        let shown_to = if last_line == 0 { to.min(from + SHOWN_AROUND) } else { to };
        let cut_after = ceil_char_boundary(excerpt, shown_to.max(last_line).saturating_add(SHOWN_AROUND));
        let excerpt = &excerpt[cut_before..cut_after];
        let (from, to) = (from - cut_before, to.min(cut_after) - cut_before);
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let report = [Group::with_title(level.no_name().primary_title(&title)).element(
            Snippet::source(excerpt).line_start(d.pos.line as usize).annotation(AnnotationKind::Primary.span(from..to)),
        )];
        let mut out = Renderer::plain().render(&report);
        out.push('\n');
        out
    }
}

/// How many bytes of a long line on either side of a diagnostic's text go to the renderer: more
/// than it shows of a line.
const SHOWN_AROUND: usize = 1024;

/// The char boundary at or before byte `at` of `text` (its end, past it).
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The char boundary at or after byte `at` of `text` (its end, past it).
fn ceil_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// How many characters the YAML token at byte `at` of `line` has (expressions have their own,
/// `expr::syntax::token_len`): a quoted scalar to its closing
/// quote, a `[…]` or `{…}` to its closing bracket, otherwise a plain word up to the next space,
/// `:`, `,` or bracket. At least one character, unless `at` is past the line's end.
fn yaml_token_len(line: &str, at: usize) -> usize {
    let rest = line.get(at..).unwrap_or_default();
    let mut chars = rest.chars();
    let Some(first) = chars.next() else { return 0 };
    let len = match first {
        '"' | '\'' => {
            let mut escaped = false;
            let close = rest.char_indices().skip(1).find(|&(_, c)| {
                let closes = c == first && !escaped;
                escaped = first == '"' && c == '\\' && !escaped;
                closes
            });
            close.map_or(rest.chars().count(), |(i, _)| rest[..=i].chars().count())
        }
        '[' | '{' => {
            let mut depth = 0usize;
            let close = rest.char_indices().find(|&(_, c)| {
                match c {
                    '[' | '{' => depth += 1,
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                depth == 0
            });
            close.map_or(rest.chars().count(), |(i, _)| rest[..=i].chars().count())
        }
        _ => rest.chars().take_while(|c| !c.is_whitespace() && !matches!(c, ':' | ',' | '[' | ']' | '{' | '}')).count(),
    };
    len.max(1)
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

/// The most characters of an expression a diagnostic quotes; a longer one is cut there (`…`).
/// Every problem of an expression quotes it and the source line shown with it marks the place, so
/// a long expression with thousands of problems must not be quoted whole in each.
const QUOTED_CHARS: usize = 120;

/// An expression as a diagnostic's first line quotes it: on one line (a `|` block's lines joined),
/// with a tab or another control character written as an escape, cut after [`QUOTED_CHARS`].
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().nth(QUOTED_CHARS).is_none() && !text.contains(char::is_control) {
        return text.into();
    }
    let mut shown = String::new();
    let mut count = 0;
    'lines: for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !shown.is_empty() {
            shown.push(' ');
            count += 1;
        }
        for c in line.chars() {
            if count == QUOTED_CHARS {
                shown.push('…');
                break 'lines;
            }
            if c.is_control() {
                shown.extend(c.escape_default());
            } else {
                shown.push(c);
            }
            count += 1;
        }
    }
    shown.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        "version: 1\nfields:\n  - target: total\n    expr: >-\n      size(items) +\n      sizee(items)\n";

    #[test]
    fn a_diagnostic_shows_its_line_with_the_text_underlined_under_its_one_line_form() {
        let d = Diagnostic::new(Pos::new(6, 7), "unknown function `sizee`").until(Pos::new(6, 12));
        let shown = SourceFile::new("m.yaml", TEXT).render(&d);
        assert_eq!(
            shown,
            "m.yaml:6:7: error: unknown function `sizee`\n  |\n6 |       sizee(items)\n  |       ^^^^^\n"
        );
    }

    #[test]
    fn a_warning_says_so_and_a_span_over_lines_is_drawn_over_them() {
        let d = Diagnostic::warning(Pos::new(5, 7), "never true").until(Pos::new(6, 19));
        let shown = SourceFile::new("m.yaml", TEXT).render(&d);
        assert!(shown.starts_with("m.yaml:5:7: warning: never true\n"), "{shown}");
        assert!(shown.contains("5 | /       size(items) +\n6 | |       sizee(items)\n"), "{shown}");
        assert!(shown.ends_with("  | |__________________^\n"), "{shown}");
    }

    #[test]
    fn without_an_end_the_token_at_the_start_is_underlined() {
        let file = SourceFile::new("m.yaml", "a: [x, 'y z', {b: c}]\nkey: value # note\n");
        let end = |line, col| file.end_of(&Diagnostic::new(Pos::new(line, col), "m"));
        assert_eq!(end(1, 1), Pos::new(1, 2));
        assert_eq!(end(1, 5), Pos::new(1, 6));
        assert_eq!(end(1, 8), Pos::new(1, 13));
        assert_eq!(end(1, 15), Pos::new(1, 21));
        assert_eq!(end(2, 6), Pos::new(2, 11));
        assert_eq!(end(2, 40), Pos::new(2, 40));
        assert_eq!(end(9, 1), Pos::new(9, 1));
        assert_eq!(file.end_of(&Diagnostic::new(Pos::new(2, 6), "m").until(Pos::new(1, 1))), Pos::new(2, 6));
    }

    #[test]
    fn a_place_past_the_text_shows_the_one_line_alone() {
        let d = Diagnostic::new(Pos::new(40, 1), "somewhere else");
        assert_eq!(SourceFile::new("m.yaml", TEXT).render(&d), "m.yaml:40:1: error: somewhere else\n");
        let d = Diagnostic::new(Pos::new(2, 8), "at the end of a line");
        assert!(SourceFile::new("m.yaml", TEXT).render(&d).ends_with("2 | fields:\n  |        ^\n"));
    }

    /// YAML breaks lines at `\n`, `\r\n` and a lone `\r`, and counts its positions so: the line
    /// shown is the one the position names.
    #[test]
    fn lines_end_where_yaml_ends_them() {
        let file = SourceFile::new("m.yaml", "a: 1\rb: x\r\nc: yy\n");
        let shown = file.render(&Diagnostic::new(Pos::new(3, 4), "here"));
        assert!(shown.ends_with("3 | c: yy\n  |    ^^\n"), "{shown}");
        let shown = file.render(&Diagnostic::new(Pos::new(2, 4), "here"));
        assert!(shown.ends_with("2 | b: x\n  |    ^\n"), "{shown}");
    }

    /// A mapping written as one long line (JSON is YAML) has all its problems on that line: each
    /// is shown from the part of the line around it, in a time that does not grow with the line.
    #[test]
    fn a_problem_on_a_very_long_line_is_shown_from_the_part_around_it() {
        let entry = r#"{"target": "a", "bogus": 1}, "#;
        let text = format!("{{\"fields\": [{}]}}\n", entry.repeat(100_000));
        let file = SourceFile::new("m.json", &text);
        let started = std::time::Instant::now();
        for k in (0..100_000).step_by(1_000).chain([99_999]) {
            let col = 12 + k * entry.len() + 16 + 1;
            let shown = file.render(&Diagnostic::new(Pos::new(1, col as u32), "unknown key `bogus`"));
            assert!(shown.starts_with(&format!("m.json:1:{col}: error: unknown key `bogus`\n")), "{shown}");
            assert!(shown.len() < 1_000, "{} bytes shown", shown.len());
            assert!(shown.contains(r#""bogus": 1}"#) && shown.contains(" ^^^^^^^\n"), "{shown}");
        }
        let elapsed = started.elapsed();
        assert!(elapsed < std::time::Duration::from_secs(5), "took {elapsed:?}");
    }

    #[test]
    fn a_value_without_a_layout_counts_columns_from_its_start() {
        let s = Spanned::with_extent("a + b".to_string(), Pos::new(3, 7), Extent::ending(Pos::new(3, 12)));
        assert_eq!(s.pos_at(4), Pos::new(3, 11));
        assert_eq!(Spanned::new("a".to_string(), Pos::new(2, 2)).pos_at(1), Pos::new(2, 3));
    }
}
