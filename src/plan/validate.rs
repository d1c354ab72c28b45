//! Validators: checks on the final, type-checked value of a field. A failing validator gives an
//! error named after it (`cpf`, `range`, …); every validator of a field runs, so a record reports
//! all its problems at once.

use serde_json::{Number, Value};

use super::json::compare;
use super::outcome::StepError;
use super::pattern::{Pattern, compile_regex};
use super::types::{FieldType, describe, is_rfc3339, parse_date};
use super::value::Val;
use crate::diagnostic::{Diagnostic, suggestion};
use crate::spec::{Node, NodeKind, StepSpec};

#[derive(Debug)]
pub enum Validator {
    Pattern(Pattern),
    OneOf(Vec<Value>),
    Range { min: Option<Number>, max: Option<Number> },
    Length { min: Option<usize>, max: Option<usize> },
    Email,
    Uuid,
    Datetime,
    Date,
    Cpf,
    Cnpj,
    Cep,
}

pub const NAMES: &[&str] =
    &["pattern", "one_of", "range", "length", "email", "uuid", "datetime", "date", "cpf", "cnpj", "cep"];

impl Validator {
    pub fn name(&self) -> &'static str {
        match self {
            Validator::Pattern(_) => "pattern",
            Validator::OneOf(_) => "one_of",
            Validator::Range { .. } => "range",
            Validator::Length { .. } => "length",
            Validator::Email => "email",
            Validator::Uuid => "uuid",
            Validator::Datetime => "datetime",
            Validator::Date => "date",
            Validator::Cpf => "cpf",
            Validator::Cnpj => "cnpj",
            Validator::Cep => "cep",
        }
    }

    /// Resolves a validator and checks it fits the field's declared type.
    pub fn compile(step: &StepSpec, field_type: FieldType, diags: &mut Vec<Diagnostic>) -> Option<Validator> {
        let name = step.name.as_str();
        let pos = step.name.pos;
        let before = diags.len();
        let validator = match name {
            "email" | "uuid" | "datetime" | "date" | "cpf" | "cnpj" | "cep" => {
                if let Some(arg) = &step.arg {
                    diags.push(Diagnostic::new(arg.pos, format!("validator `{name}` takes no argument")));
                    return None;
                }
                match name {
                    "email" => Validator::Email,
                    "uuid" => Validator::Uuid,
                    "datetime" => Validator::Datetime,
                    "date" => Validator::Date,
                    "cpf" => Validator::Cpf,
                    "cnpj" => Validator::Cnpj,
                    _ => Validator::Cep,
                }
            }
            "pattern" => {
                let Some(Node { kind: NodeKind::Str(p), pos, .. }) = &step.arg else {
                    diags.push(Diagnostic::new(pos, "`pattern` takes a regex string: `pattern: '^[A-Z]{2}$'`"));
                    return None;
                };
                Validator::Pattern(compile_regex(p, *pos, diags)?)
            }
            "one_of" => {
                let Some(Node { kind: NodeKind::Seq(items), pos: list_pos, .. }) = &step.arg else {
                    diags.push(Diagnostic::new(pos, "`one_of` takes a list of allowed values: `one_of: [A, B]`"));
                    return None;
                };
                if items.is_empty() {
                    diags.push(Diagnostic::new(*list_pos, "`one_of` needs at least one value"));
                }
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match item.to_json() {
                        Ok(v) => {
                            if let Err(msg) = field_type.check(&mut Val::borrowed(&v), false) {
                                diags.push(Diagnostic::new(
                                    item.pos,
                                    format!(
                                        "`one_of` value does not fit the field's type `{}`: {msg}",
                                        field_type.name()
                                    ),
                                ));
                            }
                            values.push(v);
                        }
                        Err(d) => diags.push(d),
                    }
                }
                Validator::OneOf(values)
            }
            "range" => {
                let (min, max) = bounds(step, diags, |n| match n.kind {
                    NodeKind::Int(i) => Some(Number::from(i)),
                    NodeKind::Float(f) => Number::from_f64(f),
                    _ => None,
                })?;
                if let (Some(lo), Some(hi)) = (&min, &max)
                    && lo.as_f64() > hi.as_f64()
                {
                    diags.push(Diagnostic::new(pos, format!("`range` has min {lo} above max {hi}")));
                }
                Validator::Range { min, max }
            }
            "length" => {
                let (min, max) = bounds(step, diags, |n| match n.kind {
                    NodeKind::Int(i) if i >= 0 => Some(i as usize),
                    _ => None,
                })?;
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    diags.push(Diagnostic::new(pos, format!("`length` has min {lo} above max {hi}")));
                }
                Validator::Length { min, max }
            }
            _ => {
                diags.push(Diagnostic::new(
                    pos,
                    format!(
                        "unknown validator `{name}`{}; known validators: {}",
                        suggestion(name, NAMES.iter().copied()),
                        NAMES.join(", ")
                    ),
                ));
                return None;
            }
        };
        if !validator.fits(field_type) {
            diags.push(Diagnostic::new(
                pos,
                format!(
                    "validator `{name}` cannot apply to a field of type `{}`; it checks {}",
                    field_type.name(),
                    validator.applies_to()
                ),
            ));
            return None;
        }
        (diags.len() == before).then_some(validator)
    }

    fn fits(&self, t: FieldType) -> bool {
        match self {
            Validator::OneOf(_) => !matches!(t, FieldType::Object | FieldType::Array),
            Validator::Range { .. } => t.is_numeric(),
            Validator::Length { .. } => t.is_textual() || t == FieldType::Array,
            _ => t.is_textual(),
        }
    }

    fn applies_to(&self) -> &'static str {
        match self {
            Validator::OneOf(_) => "strings, numbers and booleans",
            Validator::Range { .. } => "integers and numbers",
            Validator::Length { .. } => "strings and arrays",
            _ => "strings (types string, datetime, date)",
        }
    }

    pub fn check(&self, value: &Val<'_>, sensitive: bool) -> Result<(), Box<StepError>> {
        let fail = |expected: String| {
            Err(Box::new(StepError {
                rule: self.name().into(),
                message: format!("{expected}, found {}", describe(value, sensitive)),
            }))
        };
        // Types were checked before validators run; a mismatch here means a value of another
        // JSON type under `any`, and it fails the validator rather than passing silently.
        match self {
            Validator::OneOf(allowed) => {
                if allowed.iter().any(|a| value.equals(a)) {
                    return Ok(());
                }
                let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                fail(format!("expected one of [{}]", list.join(", ")))
            }
            Validator::Range { min, max } => {
                let Some(Value::Number(n)) = value.json() else { return fail(range_text(min, max)) };
                let below = min.as_ref().is_some_and(|lo| compare(n, lo).is_lt());
                let above = max.as_ref().is_some_and(|hi| compare(n, hi).is_gt());
                if below || above { fail(range_text(min, max)) } else { Ok(()) }
            }
            Validator::Length { min, max } => {
                let len = match (value.as_str(), value.array_len()) {
                    (Some(s), _) => s.chars().count(),
                    (None, Some(n)) => n,
                    _ => return fail("expected a string or an array".into()),
                };
                if min.is_some_and(|lo| len < lo) || max.is_some_and(|hi| len > hi) {
                    let bounds = match (min, max) {
                        (Some(lo), Some(hi)) => format!("between {lo} and {hi}"),
                        (Some(lo), None) => format!("at least {lo}"),
                        (None, Some(hi)) => format!("at most {hi}"),
                        (None, None) => unreachable!("a length check with no bound never fails"),
                    };
                    let unit = if value.as_str().is_some() { "characters" } else { "items" };
                    return Err(Box::new(StepError {
                        rule: "length".into(),
                        message: format!("expected {bounds} {unit}, found {len} ({})", describe(value, sensitive)),
                    }));
                }
                Ok(())
            }
            text_check => {
                let Some(s) = value.as_str() else { return fail(format!("expected a string for `{}`", self.name())) };
                let ok = match text_check {
                    Validator::Pattern(re) => re.is_match(s),
                    Validator::Email => is_email(s),
                    Validator::Uuid => is_uuid(s),
                    Validator::Datetime => is_rfc3339(s),
                    Validator::Date => parse_date(s).is_some(),
                    Validator::Cpf => is_cpf(s),
                    Validator::Cnpj => is_cnpj(s),
                    Validator::Cep => is_cep(s),
                    _ => unreachable!("non-text validators are matched above"),
                };
                if ok { Ok(()) } else { fail(self.expectation()) }
            }
        }
    }

    /// What a text validator wants, for its error message (built only when a check fails).
    fn expectation(&self) -> String {
        match self {
            Validator::Pattern(re) => format!("expected text matching /{}/", re.as_str()),
            Validator::Email => "expected an e-mail address".into(),
            Validator::Uuid => "expected a UUID (8-4-4-4-12 hex digits)".into(),
            Validator::Datetime => "expected an RFC 3339 datetime".into(),
            Validator::Date => "expected a date as YYYY-MM-DD".into(),
            Validator::Cpf => "expected a valid CPF (11 digits, check digits must match)".into(),
            Validator::Cnpj => "expected a valid CNPJ (14 characters, check digits must match)".into(),
            Validator::Cep => "expected a CEP (8 digits, optionally 5-3 with a hyphen)".into(),
            other => format!("expected a value accepted by `{}`", other.name()),
        }
    }
}

/// Reads `{min, max}`, at least one present, each through `read`.
fn bounds<T>(
    step: &StepSpec,
    diags: &mut Vec<Diagnostic>,
    read: impl Fn(&Node) -> Option<T>,
) -> Option<(Option<T>, Option<T>)> {
    let name = step.name.as_str();
    let Some(Node { kind: NodeKind::Map(entries), pos, .. }) = &step.arg else {
        diags.push(Diagnostic::new(
            step.name.pos,
            format!("`{name}` takes `{{min: N, max: N}}` (either may be left out)"),
        ));
        return None;
    };
    let (mut min, mut max, mut ok) = (None, None, true);
    for (key, node) in entries {
        let slot = match key.as_str() {
            "min" => &mut min,
            "max" => &mut max,
            other => {
                diags.push(Diagnostic::new(
                    key.pos,
                    format!("unknown key `{other}` in `{name}`; allowed keys: min, max"),
                ));
                ok = false;
                continue;
            }
        };
        match read(node) {
            Some(v) => *slot = Some(v),
            None => {
                let what = if name == "length" { "a non-negative integer" } else { "a number" };
                diags.push(Diagnostic::new(
                    node.pos,
                    format!("`{name}` bound `{}` must be {what}, found {}", key.value, node.kind_name()),
                ));
                ok = false;
            }
        }
    }
    if min.is_none() && max.is_none() && ok {
        diags.push(Diagnostic::new(*pos, format!("`{name}` needs `min`, `max` or both")));
        ok = false;
    }
    ok.then_some((min, max))
}

fn range_text(min: &Option<Number>, max: &Option<Number>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("expected a number from {lo} to {hi}"),
        (Some(lo), None) => format!("expected a number of at least {lo}"),
        (None, Some(hi)) => format!("expected a number of at most {hi}"),
        (None, None) => "expected a number".into(),
    }
}

/// Byte classes for the e-mail and UUID checks, one table lookup per byte.
const LOCAL: u8 = 1; // allowed in the local part (RFC 5322 atext, plus `.`)
const LABEL: u8 = 2; // allowed in a domain label: ASCII letters, digits, `-`
const ALPHA: u8 = 4; // ASCII letters (a top-level domain)
const HEX: u8 = 8;

static BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut class = 0;
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'/'
                    | b'='
                    | b'?'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'{'
                    | b'|'
                    | b'}'
                    | b'~'
                    | b'.'
                    | b'-'
            )
        {
            class |= LOCAL;
        }
        if c.is_ascii_alphanumeric() || c == b'-' {
            class |= LABEL;
        }
        if c.is_ascii_alphabetic() {
            class |= ALPHA;
        }
        if c.is_ascii_hexdigit() {
            class |= HEX;
        }
        table[b] = class;
        b += 1;
    }
    table
};

/// A pragmatic address check (what a form would accept): `local@domain`, the local part dot-atom
/// text of at most 64 bytes, the domain at least two labels of letters, digits and inner hyphens
/// (at most 63 each), the last one all letters and at least two long. Byte-table loops, no
/// splitting into strings and no substring searches: this runs on every record.
pub fn is_email(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > 254 {
        return false;
    }
    // The local part cannot hold `@`, so the split is at the only one.
    let Some(at) = b.iter().position(|&c| c == b'@') else { return false };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local[0] != b'.'
        && local[local.len() - 1] != b'.'
        && local.iter().all(|&c| BYTE_CLASS[usize::from(c)] & LOCAL != 0)
        && !local.windows(2).any(|pair| pair == b"..");
    if !local_ok {
        return false;
    }
    // Labels: [label_start, i) at each `.` and at the end.
    let mut label_start = 0;
    let mut labels = 0;
    let mut tld_alpha = true;
    for i in 0..=domain.len() {
        let c = domain.get(i).copied().unwrap_or(b'.');
        if c != b'.' {
            let class = BYTE_CLASS[usize::from(c)];
            if class & LABEL == 0 {
                return false;
            }
            tld_alpha &= class & ALPHA != 0;
            continue;
        }
        let label = &domain[label_start..i];
        if label.is_empty() || label.len() > 63 || label[0] == b'-' || label[label.len() - 1] == b'-' {
            return false;
        }
        labels += 1;
        if i < domain.len() {
            label_start = i + 1;
            tld_alpha = true;
        }
    }
    labels >= 2 && tld_alpha && domain.len() - label_start >= 2
}

/// Canonical hyphenated UUID, any version, either case.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b[8] == b'-'
        && b[13] == b'-'
        && b[18] == b'-'
        && b[23] == b'-'
        && b.iter().enumerate().all(|(i, &c)| BYTE_CLASS[usize::from(c)] & HEX != 0 || matches!(i, 8 | 13 | 18 | 23))
}

/// The characters of a document number with the usual punctuation (`.`, `-`, `/`) removed, in a
/// stack buffer; `None` when anything else is there or there are more than 14.
fn document_chars(s: &str) -> Option<([u8; 14], usize)> {
    let mut out = [0u8; 14];
    let mut len = 0;
    for b in s.bytes() {
        match b {
            b'.' | b'-' | b'/' => {}
            b'0'..=b'9' | b'A'..=b'Z' => {
                *out.get_mut(len)? = b;
                len += 1;
            }
            _ => return None,
        }
    }
    Some((out, len))
}

/// Mod-11 check digit over `values` with `weights`, the way CPF and CNPJ compute it.
fn mod11(values: &[u32], weights: &[u32]) -> u32 {
    let sum: u32 = values.iter().zip(weights).map(|(v, w)| v * w).sum();
    let r = sum % 11;
    if r < 2 { 0 } else { 11 - r }
}

pub fn is_cpf(s: &str) -> bool {
    let Some((buf, len)) = document_chars(s) else { return false };
    let chars = &buf[..len];
    if chars.len() != 11 || !chars.iter().all(u8::is_ascii_digit) || chars.iter().all(|c| *c == chars[0]) {
        return false;
    }
    let d: [u32; 11] = std::array::from_fn(|i| u32::from(chars[i] - b'0'));
    let first = mod11(&d[..9], &[10, 9, 8, 7, 6, 5, 4, 3, 2]);
    let second = mod11(&d[..10], &[11, 10, 9, 8, 7, 6, 5, 4, 3, 2]);
    d[9] == first && d[10] == second
}

/// CNPJ, numeric or the alphanumeric form Receita Federal issues from July 2026: twelve characters
/// `0-9A-Z` (each worth its ASCII code minus 48), then two numeric check digits.
pub fn is_cnpj(s: &str) -> bool {
    let Some((buf, len)) = document_chars(s) else { return false };
    let chars = &buf[..len];
    if chars.len() != 14 || !chars[12..].iter().all(u8::is_ascii_digit) || chars.iter().all(|c| *c == chars[0]) {
        return false;
    }
    let v: [u32; 14] = std::array::from_fn(|i| u32::from(chars[i] - b'0'));
    let first = mod11(&v[..12], &[5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    let second = mod11(&v[..13], &[6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]);
    v[12] == first && v[13] == second
}

pub fn is_cep(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        8 => b.iter().all(u8::is_ascii_digit),
        9 => b[5] == b'-' && b[..5].iter().chain(&b[6..]).all(u8::is_ascii_digit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Pos, Spanned};
    use serde_json::json;

    fn v(name: &str, arg: Option<&str>, t: FieldType) -> Result<Validator, Vec<Diagnostic>> {
        let step = StepSpec {
            name: Spanned::new(name.into(), Pos::new(2, 9)),
            arg: arg.map(|a| crate::spec::load_yaml(a, &mut vec![]).unwrap()),
            when: None,
        };
        let mut diags = vec![];
        Validator::compile(&step, t, &mut diags).ok_or(diags)
    }

    #[test]
    fn brazilian_documents() {
        assert!(is_cpf("529.982.247-25"));
        assert!(is_cpf("52998224725"));
        assert!(!is_cpf("529.982.247-24"));
        assert!(!is_cpf("111.111.111-11"), "all-same digits are refused");
        assert!(!is_cpf("5299822472"));
        assert!(!is_cpf("529 982 247 25"));
        assert!(!is_cpf("529.982.247-25.1234"), "too many digits");
        assert!(!is_cnpj("11.222.333/0001-81-99999"));
        assert!(is_cnpj("11.222.333/0001-81"));
        assert!(is_cnpj("11222333000181"));
        assert!(!is_cnpj("11.222.333/0001-82"));
        assert!(!is_cnpj("00000000000000"));
        // Alphanumeric CNPJ, the example Receita Federal publishes.
        assert!(is_cnpj("12.ABC.345/01DE-35"));
        assert!(!is_cnpj("12.ABC.345/01DE-36"));
        assert!(is_cep("01310-100"));
        assert!(is_cep("01310100"));
        assert!(!is_cep("1310-100"));
        assert!(!is_cep("01310_100"));
    }

    /// The straightforward versions the one-pass checks replaced, kept as their oracle.
    fn reference_is_email(s: &str) -> bool {
        if s.len() > 254 {
            return false;
        }
        let Some((local, domain)) = s.rsplit_once('@') else { return false };
        // Byte loops, not `str::contains("..")`: setting up a substring searcher cost more than the
        // rest of the check.
        let local_bytes = local.as_bytes();
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local_bytes.windows(2).any(|pair| pair == b"..")
            && local_bytes.iter().all(|&b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#'
                            | b'$'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'*'
                            | b'+'
                            | b'/'
                            | b'='
                            | b'?'
                            | b'^'
                            | b'_'
                            | b'`'
                            | b'{'
                            | b'|'
                            | b'}'
                            | b'~'
                            | b'.'
                            | b'-'
                    )
            });
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let domain_ok = match domain.rsplit_once('.') {
            Some((rest, tld)) => {
                tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()) && rest.split('.').all(label_ok)
            }
            None => false,
        };
        local_ok && domain_ok
    }

    fn reference_is_uuid(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 36
            && b.iter()
                .enumerate()
                .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn the_one_pass_email_check_agrees_with_the_reference(s in "[a-z.@-]{0,3}[A-Za-z0-9.@_+'-]{0,12}@?[a-zA-Z0-9.-]{0,14}[.a-z0-9]{0,4}") {
            proptest::prop_assert_eq!(is_email(&s), reference_is_email(&s), "{:?}", s);
        }

        #[test]
        fn the_table_uuid_check_agrees_with_the_reference(s in "[0-9a-fA-Fg-]{30,38}") {
            proptest::prop_assert_eq!(is_uuid(&s), reference_is_uuid(&s), "{:?}", s);
        }
    }

    #[test]
    fn email_and_uuid() {
        assert!(is_email("ana.silva+news@example.com.br"));
        assert!(!is_email("ana@localhost"));
        assert!(!is_email("ana@@example.com"));
        assert!(!is_email("a na@example.com"));
        assert!(!is_email(".ana@example.com"));
        assert!(!is_email("ana@example.c0m"));
        assert!(!is_email("ana@-example.com"));
        assert!(!is_email("ana@example..com"));
        assert!(!is_email("an..a@example.com"));
        assert!(!is_email("ana.@example.com"));
        assert!(!is_email("an\"a@example.com"));
        assert!(is_email("o'brien_{x}@example.com"));
        assert!(is_email("a@b.example.org"));
        assert!(is_uuid("3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f"));
        assert!(is_uuid("3F1C2A9E-8B7D-4C6E-9F00-1A2B3C4D5E6F"));
        assert!(!is_uuid("3f1c2a9e8b7d4c6e9f001a2b3c4d5e6f"));
        assert!(!is_uuid("3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6g"));
    }

    #[test]
    fn range_is_inclusive_and_exact_for_integers() {
        let r = v("range", Some("{min: 1, max: 100}"), FieldType::Integer).unwrap();
        assert!(r.check(&Val::owned(json!(1)), false).is_ok());
        assert!(r.check(&Val::owned(json!(100)), false).is_ok());
        let e = r.check(&Val::owned(json!(101)), false).unwrap_err();
        assert_eq!(e.rule, "range");
        assert_eq!(e.message, "expected a number from 1 to 100, found a number 101");
        let big = v("range", Some("{max: 9007199254740993}"), FieldType::Integer).unwrap();
        assert!(big.check(&Val::owned(json!(9007199254740994u64)), false).is_err(), "no float rounding at 2^53");
    }

    #[test]
    fn length_counts_characters_and_items() {
        let l = v("length", Some("{min: 2, max: 3}"), FieldType::String).unwrap();
        assert!(l.check(&Val::owned(json!("çã")), false).is_ok());
        assert!(
            l.check(&Val::owned(json!("abcd")), false)
                .unwrap_err()
                .message
                .contains("between 2 and 3 characters, found 4")
        );
        let a = v("length", Some("{min: 1}"), FieldType::Array).unwrap();
        assert!(a.check(&Val::owned(json!([])), false).unwrap_err().message.contains("at least 1 items"));
    }

    #[test]
    fn one_of_and_pattern() {
        let o = v("one_of", Some("[CREATED, PAID]"), FieldType::String).unwrap();
        assert!(o.check(&Val::owned(json!("PAID")), false).is_ok());
        assert_eq!(
            o.check(&Val::owned(json!("paid")), false).unwrap_err().message,
            r#"expected one of ["CREATED", "PAID"], found a string "paid""#
        );
        let p = v("pattern", Some("'^[A-Z]{2}$'"), FieldType::String).unwrap();
        assert!(p.check(&Val::owned(json!("SP")), false).is_ok());
        assert!(p.check(&Val::owned(json!("SPX")), false).is_err());
        let unanchored = v("pattern", Some("'[0-9]'"), FieldType::String).unwrap();
        assert!(unanchored.check(&Val::owned(json!("ab1")), false).is_ok());
    }

    #[test]
    fn validators_must_fit_the_type() {
        let e = v("range", Some("{min: 1}"), FieldType::String).unwrap_err();
        assert!(e[0].message.contains("cannot apply to a field of type `string`"), "{e:?}");
        assert!(v("cpf", None, FieldType::Integer).is_err());
        assert!(v("length", Some("{max: 3}"), FieldType::Integer).is_err());
        let e = v("one_of", Some("[1, two]"), FieldType::Integer).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].pos, Pos::new(1, 5));
        let e = v("range", Some("{min: 5, max: 1}"), FieldType::Integer).unwrap_err();
        assert!(e[0].message.contains("min 5 above max 1"));
        let e = v("rnage", Some("{min: 5}"), FieldType::Integer).unwrap_err();
        assert!(e[0].message.contains("did you mean `range`?"), "{e:?}");
    }

    #[test]
    fn sensitive_values_stay_out_of_messages() {
        let e = Validator::Cpf.check(&Val::owned(json!("123.456.789-00")), true).unwrap_err();
        assert!(!e.message.contains("123"), "{}", e.message);
    }
}
