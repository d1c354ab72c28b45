//! User regexes (`pattern` validators, `replace` transforms), compiled once.
//!
//! Most patterns in mapping files are anchored runs of literals and character classes:
//! `^\d{4}-\d{6}$`, `^[A-Z]{2}$`, `^BR-`. Those are matched here by a short list of steps (a class
//! and how many times it repeats), walked once over the text. Why: `regex` answers them correctly
//! but through its general machinery (a cache taken from a pool, a lazy DFA, prefilters), which
//! costs more per call than the whole walk on the short values of a record; and in the worker, whose mapping thread is not the pool's owner, taking the cache also goes through the
//! pool's slow path (a mutex), which showed in its profile. Every other pattern,
//! and every pattern whose steps could need backtracking, goes to `regex`. The walk gives exactly
//! `regex`'s answers (Unicode classes included: `\d` matches `٣`); a property test holds it to that.

use std::borrow::Cow;

use regex::Regex;

use crate::diagnostic::{Diagnostic, Diagnostics, Pos};
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A compiled user regex, with its fast walk when its shape allows one.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
    anchored: Option<Anchored>,
}

/// `^` followed by steps, and `$` at the end when `whole`.
#[derive(Debug, Clone)]
struct Anchored {
    steps: Box<[Step]>,
    whole: bool,
}

/// One class repeated `min..=max` times (greedily).
#[derive(Debug, Clone)]
struct Step {
    /// The ASCII members, one bit per character.
    ascii: u128,
    /// The members beyond ASCII, as sorted, disjoint inclusive ranges.
    wide: Box<[(char, char)]>,
    min: u32,
    max: u32,
}

impl Step {
    #[inline]
    fn contains(&self, c: char) -> bool {
        let code = c as u32;
        if code < 128 {
            return self.ascii & (1u128 << code) != 0;
        }
        self.wide
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    std::cmp::Ordering::Less
                } else if lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    fn of_class(ranges: impl Iterator<Item = (char, char)>, min: u32, max: u32) -> Step {
        let mut ascii = 0u128;
        let mut wide = Vec::new();
        for (lo, hi) in ranges {
            for code in (lo as u32)..=(hi as u32).min(127) {
                ascii |= 1u128 << code;
            }
            if hi as u32 >= 128 {
                wide.push((lo.max('\u{80}'), hi));
            }
        }
        Step { ascii, wide: wide.into(), min, max }
    }

    fn of_char(c: char) -> Step {
        Step::of_class(std::iter::once((c, c)), 1, 1)
    }

    /// Whether some character is in both classes.
    fn overlaps(&self, other: &Step) -> bool {
        self.ascii & other.ascii != 0
            || self.wide.iter().any(|&(lo, hi)| other.wide.iter().any(|&(olo, ohi)| lo <= ohi && olo <= hi))
    }
}

impl Pattern {
    /// Compiles `pattern`; the error is `regex`'s.
    pub fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        let regex = Regex::new(pattern)?;
        // `regex` accepted it, so its own parser (same defaults: Unicode on) does too.
        let anchored = regex_syntax::parse(pattern).ok().and_then(|hir| Anchored::of(&hir));
        Ok(Pattern { regex, anchored })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the fast walk serves this pattern (the tests check which patterns take it).
    pub fn is_walked(&self) -> bool {
        self.anchored.is_some()
    }

    /// Whether the expression matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        match &self.anchored {
            Some(a) => a.match_len(text).is_some(),
            None => self.regex.is_match(text),
        }
    }

    /// Checks that every group a replacement names exists in this pattern, reading the
    /// replacement as `regex` does: `$name` takes the longest run of letters, digits and `_` (so
    /// `$1T` names a group `1T`, not group 1 then `T`), `${name}` is braced, `$$` is a `$`, and a
    /// `$` followed by anything else is itself. `regex` replaces a group that does not exist with
    /// nothing, silently; here it is refused, with a message naming the reference.
    pub fn check_replacement(&self, with: &str) -> Result<(), String> {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut rest = with;
        while let Some(at) = rest.find('$') {
            let after = &rest[at + 1..];
            let (name, reference, skip) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) => (&braced[..end], &rest[at..at + end + 3], end + 3),
                    None => ("", "", 1),
                }
            } else if after.starts_with('$') {
                ("", "", 2)
            } else {
                let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
                (&after[..end], &rest[at..at + 1 + end], 1 + end)
            };
            if !name.is_empty() && !self.has_group(name) {
                let digits_then_text = name.find(|c: char| !c.is_ascii_digit()).filter(|&i| i > 0);
                let hint = match digits_then_text {
                    Some(i) => format!(
                        "; to follow group {} with `{}`, write `${{{}}}{}`",
                        &name[..i],
                        &name[i..],
                        &name[..i],
                        &name[i..]
                    ),
                    None => String::new(),
                };
                return Err(format!(
                    "replacement `{with}` refers to group `{reference}`, which the pattern does not have ({}){hint}",
                    self.groups()
                ));
            }
            rest = &rest[at + skip..];
        }
        Ok(())
    }

    fn has_group(&self, name: &str) -> bool {
        match name.parse::<usize>() {
            Ok(index) => index < self.regex.captures_len(),
            Err(_) => self.regex.capture_names().flatten().any(|n| n == name),
        }
    }

    /// "groups 0 to 2 and `y`", for messages.
    fn groups(&self) -> String {
        let last = self.regex.captures_len() - 1;
        let mut text =
            if last == 0 { "only group 0, the whole match".to_string() } else { format!("groups 0 to {last}") };
        let names: Vec<String> = self.regex.capture_names().flatten().map(|n| format!("`{n}`")).collect();
        if !names.is_empty() {
            text.push_str(&format!(" and {}", names.join(", ")));
        }
        text
    }

    /// `Regex::replace_all(text, with)`, where `literal` says that `with` has no `$` group
    /// reference (decided once, at compile time). A literal replacement is spliced in directly:
    /// `Regex::replace_all` checks the replacement for `$` and walks the matches through an
    /// enumerated, peekable iterator on every call, which cost as much as the search itself for a
    /// typical short value.
    pub fn replace_all<'t>(&self, text: &'t str, with: &str, literal: bool) -> Cow<'t, str> {
        if !literal {
            return self.regex.replace_all(text, with);
        }
        if let Some(a) = &self.anchored {
            // `^` (not multi-line) matches only at the start: at most one match, at 0.
            return match a.match_len(text) {
                None => Cow::Borrowed(text),
                // Removing a prefix (the usual use): the rest, borrowed.
                Some(len) if with.is_empty() => Cow::Borrowed(&text[len..]),
                Some(len) => {
                    let mut out = String::with_capacity(with.len() + text.len() - len);
                    out.push_str(with);
                    out.push_str(&text[len..]);
                    Cow::Owned(out)
                }
            };
        }
        let mut matches = self.regex.find_iter(text);
        let Some(first) = matches.next() else { return Cow::Borrowed(text) };
        let mut out = String::with_capacity(text.len());
        let mut copied_to = 0;
        for m in std::iter::once(first).chain(matches) {
            out.push_str(&text[copied_to..m.start()]);
            out.push_str(with);
            copied_to = m.end();
        }
        out.push_str(&text[copied_to..]);
        Cow::Owned(out)
    }
}

impl Anchored {
    /// The steps of `^…` or `^…$` built of literals, classes and counted repetitions of them, or
    /// `None` for any other shape.
    fn of(hir: &Hir) -> Option<Anchored> {
        let parts: &[Hir] = match hir.kind() {
            HirKind::Concat(parts) => parts,
            _ => return None,
        };
        let (first, mut rest) = parts.split_first()?;
        if *first.kind() != HirKind::Look(Look::Start) {
            return None;
        }
        let mut whole = false;
        if let Some((last, init)) = rest.split_last()
            && *last.kind() == HirKind::Look(Look::End)
        {
            whole = true;
            rest = init;
        }
        let mut steps = Vec::new();
        for part in rest {
            push_steps(part, &mut steps)?;
        }
        if steps.is_empty() || !greedy_is_exact(&steps) {
            return None;
        }
        Some(Anchored { steps: steps.into(), whole })
    }

    /// The length of the match at the start of `text`, if there is one.
    #[inline]
    fn match_len(&self, text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        let mut pos = 0;
        for step in &*self.steps {
            let mut count = 0;
            while count < step.max {
                let Some(&b) = bytes.get(pos) else { break };
                let (c, width) = if b < 0x80 {
                    (char::from(b), 1)
                } else {
                    let c = text[pos..].chars().next().expect("pos is on a char boundary");
                    (c, c.len_utf8())
                };
                if !step.contains(c) {
                    break;
                }
                pos += width;
                count += 1;
            }
            if count < step.min {
                return None;
            }
        }
        (!self.whole || pos == bytes.len()).then_some(pos)
    }
}

/// Appends the steps of one part of the top-level concatenation; `None` if it is not a literal, a
/// class, a counted repetition of a single character or class, or a group of those.
fn push_steps(part: &Hir, steps: &mut Vec<Step>) -> Option<()> {
    match part.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => steps.extend(std::str::from_utf8(&lit.0).ok()?.chars().map(Step::of_char)),
        HirKind::Class(Class::Unicode(class)) => {
            steps.push(Step::of_class(class.ranges().iter().map(|r| (r.start(), r.end())), 1, 1));
        }
        HirKind::Repetition(rep) => {
            let max = rep.max.unwrap_or(u32::MAX);
            // A lazy repetition of varying count prefers fewer; the walk is greedy.
            if !rep.greedy && rep.min != max {
                return None;
            }
            let mut inner = Vec::new();
            push_steps(&rep.sub, &mut inner)?;
            let [step] = <[Step; 1]>::try_from(inner).ok()?;
            if (step.min, step.max) != (1, 1) {
                return None;
            }
            steps.push(Step { min: rep.min, max, ..step });
        }
        // A group changes nothing about what matches; the walk does not report groups (a
        // replacement that uses them goes to `regex`).
        HirKind::Capture(capture) => match capture.sub.kind() {
            HirKind::Concat(parts) => {
                for p in parts {
                    push_steps(p, steps)?;
                }
            }
            _ => push_steps(&capture.sub, steps)?,
        },
        _ => return None,
    }
    Some(())
}

/// A greedy walk (no backtracking) finds `regex`'s leftmost-first match only when giving back a
/// character could never help: every step of varying count must share no character with the
/// steps after it, up to and including the first one that must match at least once.
fn greedy_is_exact(steps: &[Step]) -> bool {
    steps.iter().enumerate().all(|(i, step)| {
        if step.min == step.max {
            return true;
        }
        for next in &steps[i + 1..] {
            if step.overlaps(next) {
                return false;
            }
            if next.min > 0 {
                break;
            }
        }
        true
    })
}

/// Compiles a user regex, pointing at it when it does not compile.
pub fn compile_regex(pattern: &str, pos: Pos, diags: &mut Diagnostics) -> Option<Pattern> {
    match Pattern::new(pattern) {
        Ok(r) => Some(r),
        Err(e) => {
            let detail =
                e.to_string().lines().last().unwrap_or_default().trim().trim_start_matches("error: ").to_owned();
            diags.push(Diagnostic::new(pos, format!("invalid regex `{pattern}`: {detail}")));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_mapping_patterns_are_walked() {
        for p in ["^\\d{4}-\\d{6}$", "^[A-Z]{2}$", "^BR-", "^(\\d{5})-?(\\d{3})$", "^[a-z0-9_]+$", "^.{1,80}$"] {
            assert!(Pattern::new(p).unwrap().is_walked(), "{p}");
        }
        // Unanchored, alternations, lazy ranges, look-arounds and steps that would need
        // backtracking go to `regex`.
        for p in ["\\d+", "^(ab|c)$", "^a{1,3}?$", "^\\w+\\b", "^a*a$", "^\\d{1,3}\\d$", "^a?b?a$", "(?m)^a$"] {
            assert!(!Pattern::new(p).unwrap().is_walked(), "{p}");
        }
    }

    #[test]
    fn unicode_classes_keep_their_unicode_members() {
        let p = Pattern::new("^\\d{2}$").unwrap();
        assert!(p.is_walked());
        assert!(p.is_match("12"));
        assert!(p.is_match("١٢"), "Arabic-Indic digits are \\d in Unicode mode");
        assert!(!p.is_match("1a"));
        assert!(!p.is_match("123"));
        assert!(!p.is_match("1"));
    }

    #[test]
    fn anchored_replacement_replaces_only_at_the_start() {
        let p = Pattern::new("^BR-").unwrap();
        assert_eq!(p.replace_all("BR-2026-BR-1", "", true), "2026-BR-1");
        assert!(matches!(p.replace_all("BR-1", "", true), Cow::Borrowed("1")), "a removed prefix borrows the rest");
        assert_eq!(p.replace_all("BR-1", "US-", true), "US-1");
        assert!(matches!(p.replace_all("XBR-1", "", true), Cow::Borrowed("XBR-1")));
        let optional = Pattern::new("^x*").unwrap();
        assert!(optional.is_walked());
        assert_eq!(optional.replace_all("abc", "-", true), "-abc", "an empty match at the start is replaced too");
    }

    /// Patterns built from a small grammar: `^`, then parts (literals, classes, a group), each
    /// with an optional count, then maybe `$`.
    fn pattern() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let atom = prop::sample::select(vec!["a", "b", "-", "é", "\\d", "[A-Z]", "[a-c]", "[^a]", ".", "\\w", "(ab)"]);
        let count =
            prop::sample::select(vec!["", "", "?", "*", "+", "{2}", "{1,3}", "{0,2}", "{2,}", "{1,2}?", "{2}?"]);
        (prop::collection::vec((atom, count), 1..5), any::<bool>()).prop_map(|(parts, end)| {
            let body: String = parts.into_iter().map(|(a, c)| format!("{a}{c}")).collect();
            format!("^{body}{}", if end { "$" } else { "" })
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The walk answers exactly as `regex` does, for matching and for replacing.
        #[test]
        fn walk_agrees_with_regex(pattern in pattern(), texts in proptest::collection::vec("[ab\\-éA-Z0-9١_c\n]{0,8}", 8)) {
            let p = Pattern::new(&pattern).unwrap();
            let re = Regex::new(&pattern).unwrap();
            for text in &texts {
                proptest::prop_assert_eq!(p.is_match(text), re.is_match(text), "/{}/ {:?} (walked: {})", pattern, text, p.is_walked());
                for with in ["<>", ""] {
                    proptest::prop_assert_eq!(p.replace_all(text, with, true), re.replace_all(text, with), "/{}/ {:?} → {:?}", pattern, text, with);
                }
            }
        }
    }
}
