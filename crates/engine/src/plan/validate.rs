//! Validators: checks on the final, type-checked value of a field. A failing validator gives an
//! error named after it (`cpf`, `range`, …); every validator of a field runs, so a record reports
//! all its problems at once.
//!
//! Each is described in the catalogue ([`super::catalogue::validators`]): its name, whether it takes
//! an argument and the field types it fits come from there.

use serde_json::{Number, Value};

use super::catalogue::Argument;
use super::catalogue::validators::{self, ValidatorDoc};
use super::codes;
use super::json::compare;
use super::outcome::StepError;
use super::pattern::{Pattern, compile_regex};
use super::types::{FieldType, describe, is_rfc3339, iso_date};
use super::value::Val;
use crate::diagnostic::{Diagnostic, Diagnostics, suggestion};
use crate::spec::{Node, NodeKind, StepSpec};

/// A compiled `validate:` step: one check of a field's value, with its argument.
#[derive(Debug)]
pub enum Validator {
    /// `pattern: REGEX`: the text matches the expression.
    Pattern(Pattern),
    /// `one_of: [..]`: the value is one of these.
    OneOf(Vec<Value>),
    /// `range: {min, max}`: the number lies within these bounds (each inclusive, each optional).
    Range {
        /// The least value allowed, if any.
        min: Option<Number>,
        /// The greatest value allowed, if any.
        max: Option<Number>,
    },
    /// `length: {min, max}`: the length (characters of a text, items of an array) lies within
    /// these bounds.
    Length {
        /// The shortest length allowed, if any.
        min: Option<usize>,
        /// The longest length allowed, if any.
        max: Option<usize>,
    },
    /// `email`: an e-mail address.
    Email,
    /// `uuid`: a UUID in its hyphenated form.
    Uuid,
    /// `datetime`: an RFC 3339 date and time.
    Datetime,
    /// `date`: a `YYYY-MM-DD` calendar date.
    Date,
    /// `cpf`: a Brazilian individual taxpayer number with valid check digits.
    Cpf,
    /// `cnpj`: a Brazilian company taxpayer number with valid check digits.
    Cnpj,
    /// `cep`: a Brazilian postal code.
    Cep,
    /// `country`: an ISO 3166-1 alpha-2 country code.
    Country,
    /// `currency`: an ISO 4217 currency code.
    Currency,
    /// `e164`: a phone number in E.164 form.
    E164,
    /// `iban`: an IBAN with valid check digits and its country's format.
    Iban,
    /// `luhn`: digits whose Luhn check digit is right.
    Luhn,
    /// `timezone`: an IANA time zone name.
    Timezone,
}

/// Up to this many allowed values a failed `one_of` lists them all; past it, it says how many
/// there are and which one is nearest to the value found.
const ONE_OF_LISTED: usize = 10;

impl Validator {
    /// The validator's name as a mapping writes it.
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
            Validator::Country => "country",
            Validator::Currency => "currency",
            Validator::E164 => "e164",
            Validator::Iban => "iban",
            Validator::Luhn => "luhn",
            Validator::Timezone => "timezone",
        }
    }

    /// Resolves a validator and checks it fits the field's declared type.
    pub fn compile(step: &StepSpec, field_type: FieldType, diags: &mut Diagnostics) -> Option<Validator> {
        let name = step.name.as_str();
        let pos = step.name.pos;
        let before = diags.len();
        let unknown = |diags: &mut Diagnostics| {
            let names: Vec<&str> = validators::names().collect();
            diags.push(Diagnostic::new(
                pos,
                format!(
                    "unknown validator `{name}`{}; known validators: {}",
                    suggestion(name, names.iter().copied()),
                    names.join(", ")
                ),
            ));
            None
        };
        let Some(doc) = validators::find(name) else { return unknown(diags) };
        if doc.argument == Argument::None
            && let Some(arg) = &step.arg
        {
            diags.push(Diagnostic::new(arg.pos, format!("validator `{name}` takes no argument")));
            return None;
        }
        let validator = match name {
            "email" => Validator::Email,
            "uuid" => Validator::Uuid,
            "datetime" => Validator::Datetime,
            "date" => Validator::Date,
            "cpf" => Validator::Cpf,
            "cnpj" => Validator::Cnpj,
            "cep" => Validator::Cep,
            "country" => Validator::Country,
            "currency" => Validator::Currency,
            "e164" => Validator::E164,
            "iban" => Validator::Iban,
            "luhn" => Validator::Luhn,
            "timezone" => Validator::Timezone,
            "pattern" => {
                let Some(Node { kind: NodeKind::Str(p), pos, .. }) = &step.arg else {
                    diags.push(Diagnostic::new(pos, "`pattern` takes a regex string: `pattern: '^[A-Z]{2}$'`"));
                    return None;
                };
                Validator::Pattern(compile_regex(p, *pos, diags)?)
            }
            "one_of" => compile_one_of(step, field_type, diags)?,
            "range" => compile_range(step, diags)?,
            "length" => compile_length(step, diags)?,
            _ => return unknown(diags),
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

    /// The validator's description in the catalogue.
    pub fn doc(&self) -> &'static ValidatorDoc {
        validators::find(self.name()).expect("every validator is in the catalogue")
    }

    fn fits(&self, t: FieldType) -> bool {
        self.doc().applies_to.fits(t)
    }

    fn applies_to(&self) -> &'static str {
        self.doc().applies_to.describe()
    }

    /// Checks a value; with `sensitive`, the message leaves the value out.
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
                if allowed.len() <= ONE_OF_LISTED {
                    let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
                    return fail(format!("expected one of [{}]", list.join(", ")));
                }
                // A long list (every country, every product code) would drown the value: its size,
                // its first values, and the allowed value nearest to what was found, which is left
                // out for a sensitive field as it would tell what the value nearly is.
                let first: Vec<String> = allowed.iter().take(2).map(Value::to_string).collect();
                let nearest = match value.as_str() {
                    Some(s) if !sensitive => nearest_allowed(s, allowed),
                    _ => None,
                };
                Err(Box::new(StepError {
                    rule: self.name().into(),
                    message: format!(
                        "expected one of {} values ({}, …), found {}{}",
                        allowed.len(),
                        first.join(", "),
                        describe(value, sensitive),
                        nearest.map(|n| format!("; nearest: {n}")).unwrap_or_default()
                    ),
                }))
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
                    Validator::Date => iso_date(s).is_some(),
                    Validator::Cpf => is_cpf(s),
                    Validator::Cnpj => is_cnpj(s),
                    Validator::Cep => is_cep(s),
                    Validator::Country => is_country(s),
                    Validator::Currency => is_currency(s),
                    Validator::E164 => is_e164(s),
                    Validator::Iban => is_iban(s),
                    Validator::Luhn => is_luhn(s),
                    Validator::Timezone => is_timezone(s),
                    _ => unreachable!("non-text validators are matched above"),
                };
                if ok { Ok(()) } else { fail(self.expectation(s, sensitive)) }
            }
        }
    }

    /// What a text validator wants, for its error message (built only when a check fails). `s` is
    /// the refused value: some messages say what kind of mistake it holds (a wrong check digit, a
    /// space), never any of its text; a hint that would tell what the value nearly is (a valid
    /// code in lower case) is left out for a sensitive field.
    fn expectation(&self, s: &str, sensitive: bool) -> String {
        match self {
            Validator::Pattern(re) => format!("expected text matching /{}/", re.as_str()),
            Validator::Email => "expected an e-mail address".into(),
            Validator::Uuid => "expected a UUID (8-4-4-4-12 hex digits)".into(),
            Validator::Datetime => "expected an RFC 3339 datetime".into(),
            Validator::Date => "expected a date as YYYY-MM-DD".into(),
            Validator::Cpf => "expected a valid CPF (11 digits, check digits must match)".into(),
            Validator::Cnpj => "expected a valid CNPJ (14 characters, check digits must match)".into(),
            Validator::Cep => "expected a CEP (8 digits, optionally 5-3 with a hyphen)".into(),
            Validator::Country => {
                let hint =
                    if !sensitive && s.len() == 2 && is_country(&s.to_ascii_uppercase()) { UPPERCASE_HINT } else { "" };
                format!("expected an assigned ISO 3166-1 alpha-2 country code in upper case, such as BR{hint}")
            }
            Validator::Currency => {
                let hint = if !sensitive && s.len() == 3 && is_currency(&s.to_ascii_uppercase()) {
                    UPPERCASE_HINT
                } else {
                    ""
                };
                format!("expected a current ISO 4217 currency code in upper case, such as BRL{hint}")
            }
            Validator::E164 => "expected an E.164 phone number: + and 8 to 15 digits, nothing else".into(),
            Validator::Iban => iban_expectation(s).into(),
            Validator::Luhn => luhn_expectation(s).into(),
            Validator::Timezone => "expected an IANA time zone name such as America/Sao_Paulo (case-sensitive)".into(),
            other => format!("expected a value accepted by `{}`", other.name()),
        }
    }
}

/// `one_of: [values]`: each value must fit the field's type.
fn compile_one_of(step: &StepSpec, field_type: FieldType, diags: &mut Diagnostics) -> Option<Validator> {
    let Some(Node { kind: NodeKind::Seq(items), pos: list_pos, .. }) = &step.arg else {
        diags.push(Diagnostic::new(step.name.pos, "`one_of` takes a list of allowed values: `one_of: [A, B]`"));
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
                        format!("`one_of` value does not fit the field's type `{}`: {msg}", field_type.name()),
                    ));
                }
                values.push(v);
            }
            Err(d) => diags.push(d),
        }
    }
    Some(Validator::OneOf(values))
}

/// `range: {min, max}` over numbers.
fn compile_range(step: &StepSpec, diags: &mut Diagnostics) -> Option<Validator> {
    let (min, max) = bounds(step, diags, |n| match n.kind {
        NodeKind::Int(i) => Some(Number::from(i)),
        NodeKind::Float(f) => Number::from_f64(f),
        _ => None,
    })?;
    if let (Some(lo), Some(hi)) = (&min, &max)
        && lo.as_f64() > hi.as_f64()
    {
        diags.push(Diagnostic::new(step.name.pos, format!("`range` has min {lo} above max {hi}")));
    }
    Some(Validator::Range { min, max })
}

/// `length: {min, max}` in characters.
fn compile_length(step: &StepSpec, diags: &mut Diagnostics) -> Option<Validator> {
    let (min, max) = bounds(step, diags, |n| match n.kind {
        NodeKind::Int(i) if i >= 0 => Some(i as usize),
        _ => None,
    })?;
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        diags.push(Diagnostic::new(step.name.pos, format!("`length` has min {lo} above max {hi}")));
    }
    Some(Validator::Length { min, max })
}

/// Reads `{min, max}`, at least one present, each through `read`.
fn bounds<T>(
    step: &StepSpec,
    diags: &mut Diagnostics,
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

/// Whether `s` is a CPF: 11 digits (`.`, `-`, `/` allowed between them) with valid check digits.
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

/// Whether `s` is a CEP: 8 digits, or 5-3 with a hyphen.
pub fn is_cep(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        8 => b.iter().all(u8::is_ascii_digit),
        9 => b[5] == b'-' && b[..5].iter().chain(&b[6..]).all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Added to a code validator's message when the value is a code written in lower case.
const UPPERCASE_HINT: &str = " (the `uppercase` transform makes it one)";

/// `country`: an assigned ISO 3166-1 alpha-2 code, upper case (`BR`). User-assigned codes such as
/// `XK` are not assigned codes.
pub fn is_country(s: &str) -> bool {
    codes::COUNTRIES.contains(s)
}

/// `currency`: an alphabetic code of ISO 4217 list one (current currencies and funds), upper case
/// (`BRL`); withdrawn codes (`DEM`) fail.
pub fn is_currency(s: &str) -> bool {
    codes::CURRENCIES.contains(s)
}

/// `e164`: an E.164 phone number as it is sent, `^\+[1-9]\d{7,14}$`: `+`, a country code that
/// does not start with 0, 8 to 15 ASCII digits in all, no spaces or punctuation.
pub fn is_e164(s: &str) -> bool {
    let b = s.as_bytes();
    (9..=16).contains(&b.len()) && b[0] == b'+' && b[1] != b'0' && b[1..].iter().all(u8::is_ascii_digit)
}

/// `iban`: an ISO 13616 IBAN: its country in the SWIFT IBAN registry, that country's length and
/// BBAN format, and mod-97 check digits. Electronic form (`DE89370400440532013000`) or the
/// print form in groups of four (`DE89 3704 0044 0532 0130 00`); the country code upper case.
pub fn is_iban(s: &str) -> bool {
    s.parse::<iban::Iban>().is_ok()
}

/// What was wrong with a refused IBAN, without quoting any of it.
fn iban_expectation(s: &str) -> &'static str {
    use iban::{ParseBaseIbanError, ParseIbanError};
    match s.parse::<iban::Iban>() {
        Err(ParseIbanError::InvalidBaseIban { source: ParseBaseIbanError::InvalidChecksum }) => {
            "expected an IBAN whose check digits match (ISO 13616 mod 97)"
        }
        Err(ParseIbanError::InvalidBban(_)) => "expected an IBAN of its country's length and format",
        Err(ParseIbanError::UnknownCountry(_)) => "expected an IBAN of a country in the IBAN registry",
        _ => {
            "expected an IBAN: country code in upper case, check digits, then the account, without spaces or in \
             groups of four"
        }
    }
}

/// `luhn`: ASCII digits only, at least two, the last a Luhn (mod 10) check digit over the others:
/// payment card numbers, IMEIs. Spaces and hyphens fail: the value checked is the value after the
/// field's transforms, and `digits_only` removes them.
pub fn is_luhn(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 2 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // From the check digit leftwards, every second digit is doubled (its digits summed).
    let sum: u32 = b
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 { if d > 4 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What was wrong with a value `luhn` refused, without quoting it.
fn luhn_expectation(s: &str) -> &'static str {
    if !s.bytes().all(|c| c.is_ascii_digit()) {
        "expected digits only for a Luhn check (the `digits_only` transform removes spaces and hyphens)"
    } else if s.len() < 2 {
        "expected at least 2 digits for a Luhn check"
    } else {
        "expected digits whose last is their Luhn check digit"
    }
}

/// `timezone`: an IANA time zone name the program's tz database knows (`America/Sao_Paulo`,
/// `UTC`), exactly as written there: the names the zone transforms and functions accept.
pub fn is_timezone(s: &str) -> bool {
    s.parse::<chrono_tz::Tz>().is_ok()
}

/// The longest refused value that is given a nearest allowed one. The hint is for codes and
/// names, and each edit distance costs the product of two lengths: long allowed values and a
/// record value as long would take seconds per record.
const NEAREST_LONGEST: usize = 64;

/// The allowed string nearest to `found` by edit distance, ignoring case, when one is close
/// enough to be what was meant; rendered as JSON.
fn nearest_allowed(found: &str, allowed: &[Value]) -> Option<String> {
    let len = found.chars().count();
    if len > NEAREST_LONGEST {
        return None;
    }
    let mut lowered: Option<String> = None;
    let mut best: Option<(usize, f64, &str)> = None;
    for candidate in allowed.iter().filter_map(Value::as_str) {
        let candidate_len = candidate.chars().count();
        let limit = 2.max(candidate_len / 4);
        // The distance is at least the difference in length: a far longer value (a whole
        // document) is never compared character by character with every candidate.
        if len.abs_diff(candidate_len) > limit {
            continue;
        }
        let found = lowered.get_or_insert_with(|| found.to_lowercase());
        let candidate_lower = candidate.to_lowercase();
        let distance = strsim::damerau_levenshtein(found, &candidate_lower);
        // As for misspelt names: never a candidate every character of which would change.
        if distance > limit || distance >= candidate_len.max(1) {
            continue;
        }
        // Ties go to the candidate sharing the longer start (`BRA` is nearer `BR` than `BA`).
        let similarity = strsim::jaro_winkler(found, &candidate_lower);
        if best.is_none_or(|(d, sim, _)| distance < d || (distance == d && similarity > sim)) {
            best = Some((distance, similarity, candidate));
        }
    }
    best.map(|(_, _, candidate)| Value::from(candidate).to_string())
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
        let mut diags = crate::diagnostic::Diagnostics::default();
        Validator::compile(&step, t, &mut diags).ok_or_else(|| diags.into_parts().0)
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

    /// The compiler and the catalogue agree: each example compiles, for a field of its passing
    /// value's type, to the validator it names; it fits exactly the types the description says, and
    /// an argument is checked as described.
    #[test]
    fn every_catalogue_entry_compiles_as_it_is_described() {
        use crate::plan::catalogue::example_step;
        for doc in validators::CATALOGUE {
            let name = doc.name;
            let step = example_step(doc.example);
            assert_eq!(step.name.value, name, "the example of `{name}` uses another validator");
            let compile = |step: &StepSpec, t: FieldType| {
                let mut diags = crate::diagnostic::Diagnostics::default();
                Validator::compile(step, t, &mut diags).ok_or(diags)
            };
            let field_type = match serde_json::from_str(doc.example_passes).unwrap() {
                Value::String(_) => FieldType::String,
                Value::Number(n) if n.is_i64() => FieldType::Integer,
                other => panic!("no field type for {other}"),
            };
            let v = compile(&step, field_type).unwrap_or_else(|d| panic!("{name}: {d:?}"));
            assert_eq!(v.name(), name);
            for t in FieldType::NAMES.iter().map(|n| FieldType::from_name(n).unwrap()) {
                let refused = compile(&step, t).err().unwrap_or_default();
                let cannot = format!(
                    "validator `{name}` cannot apply to a field of type `{}`; it checks {}",
                    t.name(),
                    doc.applies_to.describe()
                );
                assert_eq!(!doc.applies_to.fits(t), refused.iter().any(|d| d.message == cannot), "`{name}` on {t:?}");
            }
            match &doc.argument {
                Argument::None => {
                    let given =
                        StepSpec { arg: Some(Node { kind: NodeKind::Int(1), ..Node::default() }), ..step.clone() };
                    let e = compile(&given, field_type).unwrap_err();
                    assert_eq!(e[0].message, format!("validator `{name}` takes no argument"));
                }
                _ => assert!(compile(&StepSpec { arg: None, ..step.clone() }, field_type).is_err(), "{name}"),
            }
            if let Argument::Keys { keys, at_least_one } = &doc.argument {
                let listed: Vec<String> = keys.iter().map(|k| format!("`{}`", k.name)).collect();
                let mut none = step.arg.clone().unwrap();
                none.kind = NodeKind::Map(vec![]);
                let e = compile(&StepSpec { arg: Some(none), ..step.clone() }, field_type);
                let needs = format!("`{name}` needs {} or both", listed.join(", "));
                assert_eq!(*at_least_one, e.is_err_and(|e| e[0].message == needs), "{name}");
                let mut arg = step.arg.clone().unwrap();
                let NodeKind::Map(entries) = &mut arg.kind else { panic!("{name}") };
                entries.push((Spanned::new("bogus".into(), Pos::new(1, 1)), Node::default()));
                let allowed: Vec<&str> = keys.iter().map(|k| k.name).collect();
                let e = compile(&StepSpec { arg: Some(arg), ..step }, field_type).unwrap_err();
                assert_eq!(
                    e[0].message,
                    format!("unknown key `bogus` in `{name}`; allowed keys: {}", allowed.join(", "))
                );
            }
        }
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

    fn message(name: &str, value: &str, sensitive: bool) -> String {
        let e = v(name, None, FieldType::String).unwrap().check(&Val::owned(json!(value)), sensitive).unwrap_err();
        assert_eq!(e.rule, name);
        e.message
    }

    #[test]
    fn country_and_currency_codes() {
        assert!(is_country("BR") && is_country("US") && is_country("GB"));
        assert!(!is_country("XK"), "user-assigned, not an assigned code");
        assert!(!is_country("br") && !is_country("BRA") && !is_country(" BR"));
        assert!(is_currency("BRL") && is_currency("USD") && is_currency("EUR"));
        assert!(!is_currency("DEM") && !is_currency("brl") && !is_currency("BR"));
        assert_eq!(
            message("country", "XK", false),
            r#"expected an assigned ISO 3166-1 alpha-2 country code in upper case, such as BR, found a string "XK""#
        );
        assert_eq!(
            message("country", "br", false),
            "expected an assigned ISO 3166-1 alpha-2 country code in upper case, such as BR (the `uppercase` \
             transform makes it one), found a string \"br\""
        );
        assert_eq!(
            message("currency", "DEM", false),
            r#"expected a current ISO 4217 currency code in upper case, such as BRL, found a string "DEM""#
        );
        assert!(message("currency", "usd", false).contains("`uppercase`"));
        assert!(!message("currency", "usd", true).contains("uppercase`"), "no hint about a sensitive value");
    }

    #[test]
    fn e164_phone_numbers() {
        assert!(is_e164("+5511987654321"));
        assert!(is_e164("+12025550123"));
        assert!(is_e164("+12345678"), "8 digits, the fewest");
        assert!(is_e164("+123456789012345"), "15 digits, the most");
        assert!(!is_e164("+1234567"), "7 digits");
        assert!(!is_e164("+1234567890123456"), "16 digits");
        assert!(!is_e164("5511987654321"), "no +");
        assert!(!is_e164("+0511987654321"), "no country code starts with 0");
        assert!(!is_e164("+55 11 98765-4321"));
        assert!(!is_e164("+55١١987654321"), "only ASCII digits");
        assert!(!is_e164("++5511987654321") && !is_e164("+") && !is_e164(""));
        assert_eq!(
            message("e164", "11 98765-4321", false),
            r#"expected an E.164 phone number: + and 8 to 15 digits, nothing else, found a string "11 98765-4321""#
        );
    }

    #[test]
    fn ibans() {
        assert!(is_iban("DE89370400440532013000"));
        assert!(is_iban("GB82WEST12345698765432"));
        assert!(is_iban("BR1800360305000010009795493C1"));
        assert!(is_iban("DE89 3704 0044 0532 0130 00"), "the print form, groups of four");
        assert!(!is_iban("DE89 37040044 0532 0130 00"), "spaces elsewhere");
        assert!(!is_iban("de89370400440532013000"), "the country code is upper case");
        assert!(!is_iban("") && !is_iban("DE"));
        let msg = |s| message("iban", s, false);
        assert!(msg("DE88370400440532013000").starts_with("expected an IBAN whose check digits match"));
        assert!(
            msg("DE5137040044053201300").starts_with("expected an IBAN of its country's length"),
            "one short, check digits right"
        );
        assert!(msg("US64SVBKUS6S3300958879").starts_with("expected an IBAN of a country in the IBAN registry"));
        assert!(msg("DE89-3704").starts_with("expected an IBAN: country code in upper case"));
        let hidden = message("iban", "DE88370400440532013000", true);
        assert!(!hidden.contains("DE88") && !hidden.contains("3704"), "{hidden}");
    }

    #[test]
    fn luhn_check_digits() {
        assert!(is_luhn("4111111111111111"));
        assert!(is_luhn("79927398713"));
        assert!(is_luhn("490154203237518"), "an IMEI");
        assert!(is_luhn("00"));
        assert!(!is_luhn("4111111111111112"));
        assert!(!is_luhn("79927398710"));
        assert!(!is_luhn("0") && !is_luhn(""), "a check digit needs a digit to check");
        assert!(!is_luhn("4111 1111 1111 1111"), "spaces are not removed by the check");
        assert!(!is_luhn("4111-1111-1111-1111") && !is_luhn("411111111111111a"));
        assert!(message("luhn", "4111 1111 1111 1111", false).contains("`digits_only`"));
        assert!(message("luhn", "4111111111111112", false).starts_with("expected digits whose last is their Luhn"));
        assert!(message("luhn", "7", false).starts_with("expected at least 2 digits"));
        let hidden = message("luhn", "4111111111111112", true);
        assert!(!hidden.contains("4111"), "{hidden}");
    }

    #[test]
    fn time_zone_names() {
        assert!(is_timezone("America/Sao_Paulo") && is_timezone("Europe/London") && is_timezone("UTC"));
        assert!(!is_timezone("america/sao_paulo"), "names are case-sensitive");
        assert!(!is_timezone("America/Rio") && !is_timezone("GMT+3") && !is_timezone(""));
        assert!(message("timezone", "Brasilia", false).starts_with("expected an IANA time zone name"));
        // The same database as the zone transforms: every name they know passes.
        assert!(chrono_tz::TZ_VARIANTS.iter().all(|z| is_timezone(z.name())));
    }

    #[test]
    fn parameterless_validators_take_no_argument_and_need_text() {
        for name in ["country", "currency", "e164", "iban", "luhn", "timezone"] {
            let e = v(name, Some("true"), FieldType::String).unwrap_err();
            assert_eq!(e[0].message, format!("validator `{name}` takes no argument"));
            let e = v(name, None, FieldType::Integer).unwrap_err();
            assert!(e[0].message.contains("cannot apply to a field of type `integer`"), "{e:?}");
            assert!(v(name, None, FieldType::String).is_ok());
        }
        let e = v("countyr", None, FieldType::String).unwrap_err();
        assert!(e[0].message.contains("did you mean `country`?"), "{e:?}");
    }

    #[test]
    fn a_long_one_of_counts_its_values_and_names_the_nearest() {
        let codes: Vec<String> = ('A'..='Z').flat_map(|a| ('A'..='Z').map(move |b| format!("{a}{b}"))).collect();
        let o = v("one_of", Some(&format!("[{}]", codes.join(", "))), FieldType::String).unwrap();
        let e = o.check(&Val::owned(json!("br")), false).unwrap_err();
        assert_eq!(e.message, r#"expected one of 676 values ("AA", "AB", …), found a string "br"; nearest: "BR""#);
        let e = o.check(&Val::owned(json!("BRA")), false).unwrap_err();
        assert!(e.message.ends_with(r#"; nearest: "BR""#), "ties go to the longer shared start: {}", e.message);
        let e = o.check(&Val::owned(json!("a long sentence, nothing like a code")), false).unwrap_err();
        assert!(!e.message.contains("nearest"), "{}", e.message);
        let e = o.check(&Val::owned(json!("br")), true).unwrap_err();
        assert_eq!(
            e.message, r#"expected one of 676 values ("AA", "AB", …), found a string (value hidden: sensitive field)"#,
            "no nearest value for a sensitive field: it would tell what the value nearly is"
        );
        let numbers = v("one_of", Some("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"), FieldType::Integer).unwrap();
        assert_eq!(
            numbers.check(&Val::owned(json!(12)), false).unwrap_err().message,
            "expected one of 11 values (1, 2, …), found a number 12"
        );
        // Ten values are still listed whole.
        let ten = v("one_of", Some("[A, B, C, D, E, F, G, H, I, J]"), FieldType::String).unwrap();
        assert!(ten.check(&Val::owned(json!("K")), false).unwrap_err().message.starts_with(r#"expected one of ["A","#));
    }

    #[test]
    fn sensitive_values_stay_out_of_messages() {
        let e = Validator::Cpf.check(&Val::owned(json!("123.456.789-00")), true).unwrap_err();
        assert!(!e.message.contains("123"), "{}", e.message);
    }
}
