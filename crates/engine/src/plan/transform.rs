//! Transforms: value → value steps applied in order before the type check.
//!
//! Each is resolved from its spec (name + argument) once at compile time; regexes are compiled then.
//! Each is described in the catalogue ([`super::catalogue::transforms`]): its name, whether it takes
//! an argument and which keys, and the kinds of value it takes come from there.
//! At run time a transform either returns the new value or a [`StepError`]: a wrong JSON type is a
//! `type` error, anything else is named after the transform.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::catalogue::Argument;
use super::catalogue::transforms::{self, TransformDoc};
use super::dates;
use super::expr::code::MAX_DATETIME_PATTERN_CHARS;
use super::expr::eval::mask;
use super::expr::{Rounding, rescale};
use super::json::CodeTable;
use super::numbers::exact_decimal;
use super::outcome::StepError;
use super::pattern::{Pattern, compile_regex};
use super::types::{Kind, describe};
use super::value::Val;
use crate::diagnostic::{Diagnostic, Diagnostics, suggestion};
use crate::spec::{Node, NodeKind, StepSpec};

/// A compiled `transform:` step, with its argument.
#[derive(Debug)]
pub enum Transform {
    /// `trim`: removes leading and trailing whitespace.
    Trim,
    /// `lowercase`.
    Lowercase,
    /// `uppercase`.
    Uppercase,
    /// `digits_only`: keeps the digits of the text.
    DigitsOnly,
    /// `literal`: the replacement has no `$` group reference (decided once, at compile time).
    Replace {
        /// What is replaced.
        pattern: Pattern,
        /// What it is replaced with.
        with: String,
        /// Whether `with` is taken literally.
        literal: bool,
    },
    /// `truncate`: keeps at most `max` characters.
    Truncate {
        /// The most characters kept.
        max: usize,
    },
    /// `map`: a value looked up in a table.
    Map {
        /// Values to their replacements.
        values: CodeTable,
        /// The replacement of a value the table does not hold; without one, such a value fails the field.
        default: Option<Value>,
    },
    /// `to_integer`.
    ToInteger,
    /// `to_number`.
    ToNumber,
    /// `to_string`.
    ToString,
    /// `multiply` by a factor.
    Multiply(Factor),
    /// `divide` by a factor.
    Divide(Factor),
    /// Lower-case hex SHA-256 of the text.
    Sha256,
    /// Keeps the first and last characters, masks the rest.
    Mask {
        /// How many characters are shown at the start.
        keep_first: usize,
        /// How many characters are shown at the end.
        keep_last: usize,
        /// The character that replaces the others.
        with: char,
    },
    /// Local date and time text in a format and an IANA zone → RFC 3339 in UTC.
    ParseDatetime {
        /// The format the text is read with.
        format: dates::DateFormat,
        /// The zone the text is local to; UTC without one.
        zone: Option<chrono_tz::Tz>,
    },
    /// Date text in a format → `YYYY-MM-DD`.
    ParseDate {
        /// The format the text is read with.
        format: dates::DateFormat,
    },
    /// A number, or a number in text → a decimal string with exactly `scale` digits after the point.
    ToDecimal {
        /// How many digits after the point.
        scale: u32,
        /// How a value with more digits is rounded.
        rounding: Rounding,
    },
}

/// A numeric argument, kept exact when it is an integer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Factor {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Transform {
    /// The transform's name as a mapping writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Trim => "trim",
            Transform::Lowercase => "lowercase",
            Transform::Uppercase => "uppercase",
            Transform::DigitsOnly => "digits_only",
            Transform::Replace { .. } => "replace",
            Transform::Truncate { .. } => "truncate",
            Transform::Map { .. } => "map",
            Transform::ToInteger => "to_integer",
            Transform::ToNumber => "to_number",
            Transform::ToString => "to_string",
            Transform::Multiply(_) => "multiply",
            Transform::Divide(_) => "divide",
            Transform::Sha256 => "sha256",
            Transform::Mask { .. } => "mask",
            Transform::ParseDatetime { .. } => "parse_datetime",
            Transform::ParseDate { .. } => "parse_date",
            Transform::ToDecimal { .. } => "to_decimal",
        }
    }

    /// The transform's description in the catalogue.
    pub fn doc(&self) -> &'static TransformDoc {
        transforms::find(self.name()).expect("every transform is in the catalogue")
    }

    /// Compiles one step, or reports why it cannot be (an unknown name, a bad argument) in `diags`.
    pub fn compile(step: &StepSpec, diags: &mut Diagnostics) -> Option<Transform> {
        let name = step.name.as_str();
        let pos = step.name.pos;
        let unknown = |diags: &mut Diagnostics| {
            let names: Vec<&str> = transforms::names().collect();
            diags.push(Diagnostic::new(
                pos,
                format!(
                    "unknown transform `{name}`{}; known transforms: {}",
                    suggestion(name, names.iter().copied()),
                    names.join(", ")
                ),
            ));
            None
        };
        let Some(doc) = transforms::find(name) else { return unknown(diags) };
        let arg = match (&doc.argument, &step.arg) {
            (Argument::None, None) => {
                return match name {
                    "trim" => Some(Transform::Trim),
                    "lowercase" => Some(Transform::Lowercase),
                    "uppercase" => Some(Transform::Uppercase),
                    "digits_only" => Some(Transform::DigitsOnly),
                    "to_integer" => Some(Transform::ToInteger),
                    "to_number" => Some(Transform::ToNumber),
                    "to_string" => Some(Transform::ToString),
                    "sha256" => Some(Transform::Sha256),
                    _ => unknown(diags),
                };
            }
            (Argument::None, Some(arg)) => {
                diags.push(Diagnostic::new(arg.pos, format!("transform `{name}` takes no argument")));
                return None;
            }
            (argument, None) => {
                diags.push(Diagnostic::new(
                    pos,
                    format!("transform `{name}` needs an argument: `{name}: {}`", argument.usage()),
                ));
                return None;
            }
            (_, Some(arg)) => arg,
        };
        match name {
            "mask" => compile_mask(arg, doc, diags),
            "parse_datetime" | "parse_date" => compile_date_parse(name, arg, doc, diags),
            "to_decimal" => compile_to_decimal(arg, doc, diags),
            "replace" => compile_replace(name, arg, doc, diags),
            "truncate" => compile_truncate(arg, doc, diags),
            "map" => compile_map(arg, doc, diags),
            "multiply" | "divide" => compile_factor(name, arg, diags),
            _ => unknown(diags),
        }
    }

    /// Whether the transform can take a value of this static kind.
    pub fn accepts(&self, kind: Kind) -> bool {
        self.doc().takes.accepts(kind)
    }

    /// What the transform accepts, for messages.
    pub fn input_description(&self) -> &'static str {
        self.doc().takes.describe()
    }

    /// The static kind of the result.
    pub fn output(&self, input: Kind) -> Kind {
        match self {
            Transform::Map { values, default } => {
                let mut kinds = values.values().chain(default.iter()).map(Kind::of);
                match kinds.next() {
                    Some(first) if kinds.all(|k| k == first) => first,
                    _ => Kind::Unknown,
                }
            }
            Transform::ToInteger => Kind::Int,
            Transform::ToNumber => match input {
                Kind::Int => Kind::Int,
                _ => Kind::Num,
            },
            Transform::ToString => Kind::Str,
            Transform::Multiply(Factor::Int(_)) if input == Kind::Int => Kind::Int,
            Transform::Multiply(_) | Transform::Divide(_) => Kind::Num,
            _ => Kind::Str,
        }
    }

    /// Applies the transform to `value` in place; an unchanged value is left untouched. Moving a
    /// `Val` in and out of every step stalled: its 32 bytes are copied as two 16-byte loads that
    /// straddle the word stores that built it, so store forwarding fails and each move waits for
    /// the stores to retire (seen in `perf annotate` as samples piling on those loads).
    ///
    /// One arm per transform: a flat dispatch table, long because the transforms are many, not
    /// because any arm is.
    pub fn apply<'v>(&'v self, value: &mut Val<'v>, sensitive: bool) -> Result<(), Box<StepError>> {
        let wrong_type = |value: &Val<'_>| {
            Box::new(StepError {
                rule: "type".into(),
                message: format!(
                    "transform `{}` takes {}, found {}",
                    self.name(),
                    self.input_description(),
                    describe(value, sensitive)
                ),
            })
        };
        let failed = |message: String| Box::new(StepError { rule: self.name().into(), message });
        // String transforms: unchanged text keeps its borrow, so no allocation.
        let text: &str = match (value.as_str(), self.takes_text()) {
            (Some(s), true) => s,
            (None, true) => return Err(wrong_type(value)),
            _ => "",
        };
        let changed = match self {
            Transform::Trim => {
                let trimmed = trim_whitespace(text);
                if trimmed.len() == text.len() {
                    return Ok(());
                }
                // Borrowed values keep borrowing, without trimming a second time.
                let range = range_in(text, trimmed);
                narrowed(value, range)
            }
            // ASCII text (nearly all of it) takes the byte-wise path: the Unicode case mapping
            // looks every character up in tables.
            Transform::Lowercase if text.is_ascii() => {
                if !text.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Ok(());
                }
                Val::text(text.to_ascii_lowercase())
            }
            Transform::Uppercase if text.is_ascii() => {
                if !text.bytes().any(|b| b.is_ascii_lowercase()) {
                    return Ok(());
                }
                Val::text(text.to_ascii_uppercase())
            }
            Transform::Lowercase => {
                if !text.chars().any(char::is_uppercase) {
                    return Ok(());
                }
                Val::text(text.to_lowercase())
            }
            Transform::Uppercase => {
                if !text.chars().any(char::is_lowercase) {
                    return Ok(());
                }
                Val::text(text.to_uppercase())
            }
            Transform::DigitsOnly => {
                if text.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(());
                }
                // Sized once: collecting from a filter grows the string from nothing (two allocations
                // for a CPF). Bytes, not chars: no byte of a multi-byte character is an ASCII digit.
                let mut digits = String::with_capacity(text.len());
                digits.extend(text.bytes().filter(u8::is_ascii_digit).map(char::from));
                Val::text(digits)
            }
            Transform::Replace { pattern, with, literal } => match pattern.replace_all(text, with, *literal) {
                Cow::Borrowed(kept) if kept.len() == text.len() => return Ok(()),
                // A prefix removed (`^BR-` with `''`): the rest is a range of the value's text.
                Cow::Borrowed(kept) => {
                    let range = range_in(text, kept);
                    narrowed(value, range)
                }
                Cow::Owned(replaced) => Val::text(replaced),
            },
            Transform::Truncate { max } => match text.char_indices().nth(*max) {
                None => return Ok(()),
                Some((cut, _)) => narrowed(value, 0..cut),
            },
            Transform::Map { values, default } => {
                let found = match (value.as_str(), value.json()) {
                    (Some(s), _) => values.get(s),
                    (None, Some(v)) if v.is_number() || v.is_boolean() => values.get(&v.to_string()),
                    _ => return Err(wrong_type(value)),
                };
                match found.or(default.as_ref()) {
                    Some(mapped) => Val::borrowed(mapped),
                    None => {
                        return Err(failed(format!(
                            "{} is not in the map and the map has no default",
                            describe(value, sensitive)
                        )));
                    }
                }
            }
            Transform::ToInteger => match &*value {
                Val::Json(v) if v.as_i64().is_some() => return Ok(()),
                // An integer written another way (`1234567890123456789`, `1e3` is not one).
                Val::Written(n) if n.value.as_i64().is_some() => Val::owned(n.value.clone()),
                Val::Json(_) | Val::Written(_) if value.json().is_some_and(Value::is_number) => {
                    let f = value.json().and_then(Value::as_f64).unwrap_or(f64::NAN);
                    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                        Val::owned(Value::from(f as i64))
                    } else {
                        return Err(failed(format!(
                            "{} is not a whole number within 64 bits",
                            describe(value, sensitive)
                        )));
                    }
                }
                Val::Raw(_) | Val::Str(_) => match parse_integer(value.as_str().unwrap_or_default().trim()) {
                    Some(n) if n.is_i64() => Val::owned(Value::Number(n)),
                    Some(_) => {
                        return Err(failed(format!(
                            "{} is beyond a signed 64-bit integer",
                            describe(value, sensitive)
                        )));
                    }
                    None => {
                        return Err(failed(format!(
                            "expected an integer in text, found {}",
                            describe(value, sensitive)
                        )));
                    }
                },
                Val::Json(_)
                | Val::Written(_)
                | Val::Matches(_)
                | Val::LentMatches(_)
                | Val::MappedItems(_)
                | Val::ScannedItems(_) => {
                    return Err(wrong_type(value));
                }
            },
            Transform::ToNumber => match &*value {
                Val::Json(v) if v.is_number() => return Ok(()),
                Val::Written(_) => return Ok(()),
                Val::Raw(_) | Val::Str(_) => {
                    let t = value.as_str().unwrap_or_default().trim();
                    let parsed = parse_integer(t)
                        .or_else(|| t.parse::<f64>().ok().and_then(Number::from_f64).filter(|_| looks_numeric(t)));
                    match parsed {
                        Some(n) => Val::owned(Value::Number(n)),
                        None => {
                            return Err(failed(format!(
                                "expected a number in text, found {}",
                                describe(value, sensitive)
                            )));
                        }
                    }
                }
                Val::Json(_) | Val::Matches(_) | Val::LentMatches(_) | Val::MappedItems(_) | Val::ScannedItems(_) => {
                    return Err(wrong_type(value));
                }
            },
            Transform::ToString => match &*value {
                Val::Raw(_) | Val::Str(_) => return Ok(()),
                Val::Matches(_) | Val::LentMatches(_) | Val::MappedItems(_) | Val::ScannedItems(_) => {
                    Val::text(value.to_value().to_string())
                }
                // The number's text as the record writes it (`1.50` stays `"1.50"`).
                Val::Written(n) => Val::text(n.text.to_owned()),
                Val::Json(v) => match v.as_ref() {
                    // Integers (ids, codes) are the usual case: `itoa` writes them without the
                    // formatting machinery and its buffer regrowth.
                    Value::Number(n) => Val::text(match n.as_i64() {
                        Some(i) => itoa::Buffer::new().format(i).to_owned(),
                        None => n.to_string(),
                    }),
                    other => Val::text(serde_json::to_string(other).expect("a Value always serialises")),
                },
            },
            Transform::Multiply(factor) | Transform::Divide(factor) => {
                let divide = matches!(self, Transform::Divide(_));
                match arithmetic(value.json(), *factor, divide) {
                    Ok(v) => Val::owned(v),
                    Err(None) => return Err(wrong_type(value)),
                    // The message quotes the operand: a sensitive one is described, not shown.
                    Err(Some(_)) if sensitive => {
                        return Err(failed(format!(
                            "{} gives no 64-bit integer or finite number when {}",
                            describe(value, true),
                            if divide { "divided" } else { "multiplied" }
                        )));
                    }
                    Err(Some(m)) => return Err(failed(m)),
                }
            }
            Transform::Sha256 => {
                use sha2::Digest;
                Val::text(crate::plan::expr::hex(&sha2::Sha256::digest(text.as_bytes())))
            }
            Transform::Mask { keep_first, keep_last, with } => Val::text(mask(text, *keep_first, *keep_last, *with)),
            Transform::ParseDatetime { format, zone } => match dates::parse_datetime(text, format, *zone) {
                Ok(utc) => Val::text(utc),
                Err(why) => return Err(failed(format!("{} {why}", describe(value, sensitive)))),
            },
            Transform::ParseDate { format } => match dates::parse_date(text, format) {
                Ok(day) => Val::text(day),
                Err(why) => return Err(failed(format!("{} {why}", describe(value, sensitive)))),
            },
            Transform::ToDecimal { scale, rounding } => {
                let parsed = match (value.as_str(), value.json()) {
                    // Exactly as `decimal()` reads it: a value a decimal cannot hold is refused,
                    // never rounded before `scale` is applied.
                    (Some(s), _) => exact_decimal(s),
                    (None, Some(Value::Number(n))) => exact_decimal(&n.to_string()),
                    _ => return Err(wrong_type(value)),
                };
                match parsed.and_then(|d| rescale(d, *scale, *rounding)) {
                    Some(d) => Val::text(d.to_string()),
                    None => {
                        return Err(failed(format!(
                            "expected a decimal number that fits `scale: {scale}` exactly before rounding (at most 28 digits after the point, 96 bits in all), found {}",
                            describe(value, sensitive)
                        )));
                    }
                }
            }
        };
        value.set(changed);
        Ok(())
    }

    /// Whether the transform works on text only: the catalogue's `Takes::Text`, as a match, since
    /// it runs for every step of every record (a test holds the two together).
    fn takes_text(&self) -> bool {
        matches!(
            self,
            Transform::Trim
                | Transform::Lowercase
                | Transform::Uppercase
                | Transform::DigitsOnly
                | Transform::Replace { .. }
                | Transform::Truncate { .. }
                | Transform::Sha256
                | Transform::Mask { .. }
                | Transform::ParseDatetime { .. }
                | Transform::ParseDate { .. }
        )
    }
}

/// The static kind of a value of kind `kind` after `transforms`, in order; or the first step that
/// cannot take what it receives, with what it receives. The compiler follows a field's value so
/// from what it knows of it (nothing, or a const), a schema check from what the schema says.
pub fn kind_after(kind: Kind, transforms: &[Transform]) -> Result<Kind, (usize, Kind)> {
    transforms.iter().enumerate().try_fold(kind, |kind, (i, transform)| {
        if transform.accepts(kind) { Ok(transform.output(kind)) } else { Err((i, kind)) }
    })
}

/// `mask: {keep_first, keep_last, with}`.
fn compile_mask(arg: &Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<Transform> {
    let args = args_map(arg, doc, diags)?;
    let count = |key: &str, diags: &mut Diagnostics| -> Option<usize> {
        match args.iter().find(|(k, _)| k == key).map(|(_, n)| *n) {
            None => Some(0),
            Some(Node { kind: NodeKind::Int(n), .. }) if *n >= 0 => Some(*n as usize),
            Some(n) => {
                diags.push(Diagnostic::new(n.pos, format!("`{key}` must be a whole number ≥ 0")));
                None
            }
        }
    };
    let keep_first = count("keep_first", diags)?;
    let keep_last = count("keep_last", diags)?;
    let with = match args.iter().find(|(k, _)| k == "with").map(|(_, n)| *n) {
        None => '*',
        Some(n) => match n.as_str().map(|s| (s.chars().count(), s.chars().next())) {
            Some((1, Some(c))) => c,
            _ => {
                diags.push(Diagnostic::new(n.pos, "`with` is the one character that masks, like '*'"));
                return None;
            }
        },
    };
    Some(Transform::Mask { keep_first, keep_last, with })
}

/// `parse_datetime` / `parse_date: {format, zone}`: the format checked and kept parsed.
fn compile_date_parse(name: &str, arg: &Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<Transform> {
    let args = args_map(arg, doc, diags)?;
    let (format, format_pos) = string_arg(&args, arg, "format", name, diags)?;
    // As a `format_datetime` pattern: its items are held with the plan, and a record
    // that does not match it is told the format.
    let chars = format.chars().count();
    if chars > MAX_DATETIME_PATTERN_CHARS {
        diags.push(Diagnostic::new(
            format_pos,
            format!("the format has {chars} characters; a format has at most {MAX_DATETIME_PATTERN_CHARS} characters"),
        ));
        return None;
    }
    let parsed = match dates::DateFormat::new(&format, name == "parse_datetime") {
        Ok(f) => f,
        Err(bad) => {
            diags.push(Diagnostic::new(format_pos, format!("format `{format}`: {bad}")));
            return None;
        }
    };
    if name == "parse_date" {
        return Some(Transform::ParseDate { format: parsed });
    }
    let zone = match args.iter().find(|(k, _)| k == "zone").map(|(_, n)| *n) {
        None => None,
        Some(node) => match node.as_str().map(|z| (z, z.parse::<chrono_tz::Tz>())) {
            Some((_, Ok(tz))) => Some(tz),
            Some((z, Err(_))) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                diags.push(Diagnostic::new(
                    node.pos,
                    format!(
                        "unknown time zone `{z}`{}; use an IANA name like `America/Sao_Paulo` or `UTC`",
                        suggestion(z, names)
                    ),
                ));
                return None;
            }
            None => {
                diags.push(Diagnostic::new(node.pos, "`zone` is an IANA time zone name, like `America/Sao_Paulo`"));
                return None;
            }
        },
    };
    if zone.is_none() && !dates::has_offset(&format) {
        diags.push(Diagnostic::new(
            arg.pos,
            "`parse_datetime` needs a `zone` (like `America/Sao_Paulo`) unless the format reads an offset (`%z`)",
        ));
        return None;
    }
    Some(Transform::ParseDatetime { format: parsed, zone })
}

/// `to_decimal: {scale, rounding}`.
fn compile_to_decimal(arg: &Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<Transform> {
    let args = args_map(arg, doc, diags)?;
    let scale = match args.iter().find(|(k, _)| k == "scale").map(|(_, n)| *n) {
        Some(Node { kind: NodeKind::Int(n), .. }) if (0..=28).contains(n) => *n as u32,
        Some(n) => {
            diags.push(Diagnostic::new(n.pos, "`scale` is the number of digits after the point, 0 to 28"));
            return None;
        }
        None => {
            diags.push(Diagnostic::new(arg.pos, "`to_decimal` needs `scale`"));
            return None;
        }
    };
    let rounding = match args.iter().find(|(k, _)| k == "rounding").map(|(_, n)| *n) {
        None => Rounding::HalfEven,
        Some(n) => match n.as_str().and_then(Rounding::from_name) {
            Some(r) => r,
            None => {
                diags.push(Diagnostic::new(n.pos, format!("`rounding` is one of {}", Rounding::NAMES.join(", "))));
                return None;
            }
        },
    };
    Some(Transform::ToDecimal { scale, rounding })
}

/// `replace: {pattern, with}`: the regex compiled, the replacement checked against its groups.
fn compile_replace(name: &str, arg: &Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<Transform> {
    let args = args_map(arg, doc, diags)?;
    let pattern = string_arg(&args, arg, "pattern", name, diags)?;
    let with = string_arg(&args, arg, "with", name, diags)?;
    let pattern = compile_regex(&pattern.0, pattern.1, diags)?;
    // Pointed at the replacement itself: inside a quoted scalar a column would be off
    // by the quote and by every escape; the message quotes the reference.
    if let Err(message) = pattern.check_replacement(&with.0) {
        diags.push(Diagnostic::new(with.1, message));
        return None;
    }
    Some(Transform::Replace { pattern, literal: !with.0.contains('$'), with: with.0 })
}

/// `truncate: {max}`.
fn compile_truncate(arg: &Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<Transform> {
    let args = args_map(arg, doc, diags)?;
    let Some(max) = args.iter().find(|(k, _)| k == "max").map(|(_, n)| n) else {
        diags.push(Diagnostic::new(arg.pos, "`truncate` needs `max`"));
        return None;
    };
    match max.kind {
        NodeKind::Int(n) if n > 0 => Some(Transform::Truncate { max: n as usize }),
        _ => {
            diags.push(Diagnostic::new(max.pos, "`max` must be a positive integer"));
            None
        }
    }
}

/// `map: {values, default}`.
fn compile_map(arg: &Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<Transform> {
    let args = args_map(arg, doc, diags)?;
    let Some(values) = args.iter().find(|(k, _)| k == "values").map(|(_, n)| n) else {
        diags.push(Diagnostic::new(arg.pos, "`map` needs `values`"));
        return None;
    };
    let table = value_table(values, diags)?;
    let default = match args.iter().find(|(k, _)| k == "default") {
        None => None,
        Some((_, n)) => match n.to_json() {
            Ok(v) => Some(v),
            Err(d) => {
                diags.push(d);
                return None;
            }
        },
    };
    Some(Transform::Map { values: table, default })
}

/// `multiply` / `divide` by a number (never zero).
fn compile_factor(name: &str, arg: &Node, diags: &mut Diagnostics) -> Option<Transform> {
    let factor = match arg.kind {
        NodeKind::Int(n) => Factor::Int(n),
        NodeKind::Float(f) if f.is_finite() => Factor::Float(f),
        _ => {
            diags.push(Diagnostic::new(arg.pos, format!("`{name}` takes a number, found {}", arg.kind_name())));
            return None;
        }
    };
    if name == "divide" {
        if matches!(factor, Factor::Int(0)) || matches!(factor, Factor::Float(f) if f == 0.0) {
            diags.push(Diagnostic::new(arg.pos, "`divide` by zero"));
            return None;
        }
        Some(Transform::Divide(factor))
    } else {
        Some(Transform::Multiply(factor))
    }
}

fn parse_integer(s: &str) -> Option<Number> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    s.parse::<i64>().map(Number::from).ok().or_else(|| s.parse::<u64>().map(Number::from).ok())
}

/// Where `part`, a slice of `text`, lies in it.
fn range_in(text: &str, part: &str) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - text.as_ptr() as usize;
    debug_assert!(start + part.len() <= text.len(), "part is a slice of text");
    start..start + part.len()
}

/// `value`'s text narrowed to `range`: text borrowed from the record stays borrowed (and `Raw`
/// stays `Raw`: a part of text without escapes has none either).
fn narrowed<'v>(value: &Val<'v>, range: std::ops::Range<usize>) -> Val<'v> {
    match value {
        Val::Raw(s) => Val::Raw(&s[range]),
        Val::Str(Cow::Borrowed(s)) => Val::Str(Cow::Borrowed(&s[range])),
        other => Val::text(other.as_str().map_or_else(String::new, |s| s[range].to_owned())),
    }
}

/// Rust's float parser also takes `inf`, `NaN` and `1e5`-free oddities like `infinity`; JSON does not.
fn looks_numeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// Integer × integer and exact integer ÷ integer stay integers; everything else is a float.
/// `Err(None)` means the value is not a number; `Err(Some(msg))` an overflow.
fn arithmetic(value: Option<&Value>, factor: Factor, divide: bool) -> Result<Value, Option<String>> {
    let Some(Value::Number(n)) = value else { return Err(None) };
    if let (Some(a), Factor::Int(b)) = (n.as_i64(), factor) {
        if divide {
            // Checked: `i64::MIN / -1` overflows (and would panic); it takes the float path below.
            if let (Some(0), Some(quotient)) = (a.checked_rem(b), a.checked_div(b)) {
                return Ok(Value::from(quotient));
            }
        } else {
            return a
                .checked_mul(b)
                .map(Value::from)
                .ok_or_else(|| Some(format!("{a} × {b} overflows a 64-bit integer")));
        }
    }
    let a = n.as_f64().ok_or(None)?;
    let b = match factor {
        Factor::Int(i) => i as f64,
        Factor::Float(f) => f,
    };
    let result = if divide { a / b } else { a * b };
    Number::from_f64(result)
        .map(Value::Number)
        .ok_or_else(|| Some(format!("the result of {a} and {b} is not a finite number")))
}

/// A `values:` mapping of codes to values (the `map` transform, `lookups:` tables). A value that
/// JSON cannot hold is reported and left out.
pub fn value_table(values: &Node, diags: &mut Diagnostics) -> Option<CodeTable> {
    let NodeKind::Map(entries) = &values.kind else {
        diags.push(Diagnostic::new(values.pos, format!("`values` must be a mapping, found {}", values.kind_name())));
        return None;
    };
    let mut table = CodeTable::with_capacity_and_hasher(entries.len(), Default::default());
    // Keys are matched as text, so `1`, `1.0` and `"1"` (or `true` and `"true"`) are one key:
    // two of them would silently keep the last, and the table would not say what it was written
    // to say.
    let mut first_at: std::collections::HashMap<&str, crate::diagnostic::Pos> =
        std::collections::HashMap::with_capacity(entries.len());
    for (from, to) in entries {
        if let Some(first) = first_at.insert(from.value.as_str(), from.pos) {
            diags.push(Diagnostic::new(
                from.pos,
                format!(
                    "duplicate key `{}` in `values` (first at line {}, column {}); keys are matched as text, so \
                     `1`, `1.0` and `\"1\"` are the same key",
                    from.value, first.line, first.col
                ),
            ));
            continue;
        }
        match to.to_json() {
            Ok(v) => {
                table.insert(from.value.clone(), v);
            }
            Err(d) => diags.push(d),
        }
    }
    Some(table)
}

type ArgMap<'a> = Vec<(String, &'a Node)>;

/// The entries of an argument mapping, every key one the transform's description allows.
fn args_map<'a>(arg: &'a Node, doc: &TransformDoc, diags: &mut Diagnostics) -> Option<ArgMap<'a>> {
    let (name, allowed) = (doc.name, doc.argument.keys());
    let NodeKind::Map(entries) = &arg.kind else {
        diags.push(Diagnostic::new(
            arg.pos,
            format!("the argument of `{name}` must be a mapping, found {}", arg.kind_name()),
        ));
        return None;
    };
    let mut ok = true;
    for (k, _) in entries {
        if !allowed.contains(&k.as_str()) {
            ok = false;
            diags.push(Diagnostic::new(
                k.pos,
                format!(
                    "unknown key `{}` in `{name}`{}; allowed keys: {}",
                    k.value,
                    suggestion(&k.value, allowed.iter().copied()),
                    allowed.join(", ")
                ),
            ));
        }
    }
    ok.then(|| entries.iter().map(|(k, v)| (k.value.clone(), v)).collect())
}

fn string_arg(
    args: &ArgMap<'_>,
    arg: &Node,
    key: &str,
    name: &str,
    diags: &mut Diagnostics,
) -> Option<(String, crate::diagnostic::Pos)> {
    match args.iter().find(|(k, _)| k == key) {
        None => {
            diags.push(Diagnostic::new(arg.pos, format!("`{name}` needs `{key}`")));
            None
        }
        Some((_, node)) => match &node.kind {
            NodeKind::Str(s) => Some((s.clone(), node.pos)),
            _ => {
                diags.push(Diagnostic::new(node.pos, format!("`{key}` must be a string, found {}", node.kind_name())));
                None
            }
        },
    }
}

/// `str::trim`, with ASCII ends handled byte by byte: `str::trim` decodes and classifies every
/// character it looks at, which cost more than the rest of a `trim` step. An end that is not ASCII
/// (it may be Unicode white space, such as U+00A0) goes to `str::trim`.
fn trim_whitespace(s: &str) -> &str {
    // Exactly the ASCII characters `char::is_whitespace` accepts (U+000B included, unlike
    // `u8::is_ascii_whitespace`).
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r');
    let bytes = s.as_bytes();
    // Most values are already trimmed: two byte checks say so.
    if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last())
        && first.is_ascii()
        && last.is_ascii()
        && !is_space(first)
        && !is_space(last)
    {
        return s;
    }
    let start = bytes.iter().position(|&b| !is_space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !is_space(b)).map_or(start, |i| i + 1);
    if !bytes[start..end].first().is_none_or(u8::is_ascii) || !bytes[start..end].last().is_none_or(u8::is_ascii) {
        return s.trim();
    }
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::{Pos, Spanned};
    use regex::Regex;
    use serde_json::json;

    /// `t` applied to `v`, the result returned (the tests' by-value view of the in-place step).
    fn applied<'v>(t: &'v Transform, v: Val<'v>) -> Result<Val<'v>, Box<StepError>> {
        let mut v = v;
        t.apply(&mut v, false).map(|()| v)
    }

    fn t(name: &str, arg: Option<NodeKind>) -> Transform {
        let step = StepSpec {
            name: Spanned::new(name.into(), Pos::new(1, 1)),
            arg: arg.map(|kind| Node { pos: Pos::new(1, 10), kind, ..Node::default() }),
            when: None,
        };
        let mut diags = crate::diagnostic::Diagnostics::default();
        let t = Transform::compile(&step, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        t.unwrap()
    }

    fn run(t: &Transform, v: Value) -> Result<Value, Box<StepError>> {
        applied(t, Val::owned(v)).map(Val::into_value)
    }

    fn yaml(text: &str) -> NodeKind {
        crate::spec::load_yaml(text, &mut vec![]).unwrap().kind
    }

    #[test]
    fn string_transforms() {
        assert_eq!(run(&t("trim", None), json!("  a b ")).unwrap(), json!("a b"));
        assert_eq!(run(&t("lowercase", None), json!("ÀB")).unwrap(), json!("àb"));
        assert_eq!(run(&t("uppercase", None), json!("sp")).unwrap(), json!("SP"));
        // The ASCII path and the Unicode path agree on what they share.
        assert_eq!(run(&t("lowercase", None), json!("Ana.Souza@Example.COM")).unwrap(), json!("ana.souza@example.com"));
        assert_eq!(run(&t("uppercase", None), json!(" sp-1 ")).unwrap(), json!(" SP-1 "));
        assert_eq!(run(&t("uppercase", None), json!("são")).unwrap(), json!("SÃO"));
        assert_eq!(run(&t("lowercase", None), json!("already lower")).unwrap(), json!("already lower"));
        assert_eq!(run(&t("digits_only", None), json!("123.456.789-09")).unwrap(), json!("12345678909"));
        assert_eq!(run(&t("digits_only", None), json!("٣ 4ção5 ")).unwrap(), json!("45"));
        assert_eq!(run(&t("truncate", Some(yaml("{max: 3}"))), json!("çãoxyz")).unwrap(), json!("ção"));
        assert_eq!(run(&t("truncate", Some(yaml("{max: 3}"))), json!("ab")).unwrap(), json!("ab"));
        let replace = t("replace", Some(yaml("{pattern: '\\s+', with: ' '}")));
        assert_eq!(run(&replace, json!("a   b\t c")).unwrap(), json!("a b c"));
    }

    #[test]
    fn removing_a_prefix_keeps_borrowing_the_rest() {
        let strip = t("replace", Some(yaml("{pattern: '^BR-', with: ''}")));
        let raw = applied(&strip, Val::Raw("BR-2026-000123")).unwrap();
        assert!(matches!(raw, Val::Raw("2026-000123")), "{raw:?}");
        let borrowed = applied(&strip, Val::Str(Cow::Borrowed("BR-x"))).unwrap();
        assert!(matches!(borrowed, Val::Str(Cow::Borrowed("x"))), "{borrowed:?}");
        let owned = applied(&strip, Val::text("BR-é".to_owned())).unwrap();
        assert_eq!(owned.as_str(), Some("é"));
        let untouched = applied(&strip, Val::Raw("US-1")).unwrap();
        assert!(matches!(untouched, Val::Raw("US-1")), "{untouched:?}");
        assert_eq!(run(&strip, json!("BR-BR-1")).unwrap(), json!("BR-1"), "only the start is anchored");
    }

    #[test]
    fn trimming_borrowed_text_keeps_borrowing_the_trimmed_part() {
        let trim = t("trim", None);
        for text in ["  a b ", "\u{3000}ção\u{a0}", "x", " ", "\tleft", "right\n"] {
            let raw = applied(&trim, Val::Raw(text)).unwrap();
            assert!(matches!(raw, Val::Raw(s) if s == text.trim()), "{text:?} -> {raw:?}");
            let borrowed = applied(&trim, Val::Str(Cow::Borrowed(text))).unwrap();
            assert!(matches!(&borrowed, Val::Str(Cow::Borrowed(s)) if *s == text.trim()), "{text:?} -> {borrowed:?}");
        }
    }

    proptest::proptest! {
        /// The literal-replacement path gives exactly what `Regex::replace_all` gives, empty
        /// matches and non-ASCII text included.
        #[test]
        fn replace_agrees_with_regex_replace_all(text in "[ab -çã]{0,12}", with in "[x$1-]{0,3}") {
            for pattern in ["^BR-", "a", "a*", "\\s+", "^", "$", "(a)(b)?", "ç|-", "\\b"] {
                let re = Regex::new(pattern).unwrap();
                proptest::prop_assert_eq!(Pattern::new(pattern).unwrap().replace_all(&text, &with, !with.contains('$')), re.replace_all(&text, with.as_str()), "/{}/ {:?} {:?}", pattern, text, with);
            }
        }

        #[test]
        fn trim_agrees_with_str_trim(s in "[ \\t\\n\\r\\x0b\\x0c\\u{85}\\u{a0}\\u{2003}\\u{3000}aé😀-]{0,12}") {
            proptest::prop_assert_eq!(trim_whitespace(&s), s.trim());
        }
    }

    #[test]
    fn trim_handles_every_white_space_end() {
        for s in ["\u{0b}abc\u{0c}", "\u{a0} a \u{a0}", "  ", "", "é ", " \u{3000}x\u{2003}", "a\u{85}", "plain"] {
            assert_eq!(trim_whitespace(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn wrong_json_type_is_a_type_error() {
        let e = run(&t("trim", None), json!(12)).unwrap_err();
        assert_eq!(e.rule, "type");
        assert!(e.message.contains("`trim` takes a string, found a number 12"), "{}", e.message);
    }

    #[test]
    fn conversions() {
        assert_eq!(run(&t("to_integer", None), json!(" 42 ")).unwrap(), json!(42));
        assert_eq!(run(&t("to_integer", None), json!(42.0)).unwrap(), json!(42));
        assert_eq!(run(&t("to_integer", None), json!("-9223372036854775808")).unwrap(), json!(i64::MIN));
        let beyond = run(&t("to_integer", None), json!("18446744073709551615")).unwrap_err();
        assert_eq!((beyond.rule.as_str(), beyond.message.contains("beyond a signed 64-bit")), ("to_integer", true));
        assert_eq!(run(&t("to_integer", None), json!("4.5")).unwrap_err().rule, "to_integer");
        assert_eq!(run(&t("to_integer", None), json!(4.5)).unwrap_err().rule, "to_integer");
        assert_eq!(run(&t("to_integer", None), json!(true)).unwrap_err().rule, "type");
        assert_eq!(run(&t("to_number", None), json!("12.50")).unwrap(), json!(12.5));
        assert_eq!(run(&t("to_number", None), json!("12")).unwrap(), json!(12));
        assert_eq!(run(&t("to_number", None), json!("inf")).unwrap_err().rule, "to_number");
        assert_eq!(run(&t("to_number", None), json!("NaN")).unwrap_err().rule, "to_number");
        assert_eq!(run(&t("to_string", None), json!(12)).unwrap(), json!("12"));
        assert_eq!(run(&t("to_string", None), json!(i64::MIN)).unwrap(), json!(i64::MIN.to_string()));
        assert_eq!(run(&t("to_string", None), json!(u64::MAX)).unwrap(), json!(u64::MAX.to_string()));
        assert_eq!(run(&t("to_string", None), json!(2.5)).unwrap(), json!("2.5"));
        assert_eq!(run(&t("to_string", None), json!(true)).unwrap(), json!("true"));
    }

    #[test]
    fn arithmetic_keeps_integers_exact() {
        assert_eq!(run(&t("multiply", Some(NodeKind::Int(100))), json!(12)).unwrap(), json!(1200));
        assert_eq!(run(&t("multiply", Some(NodeKind::Float(100.0))), json!(12.34)).unwrap(), json!(1234.0));
        assert_eq!(run(&t("divide", Some(NodeKind::Int(100))), json!(1200)).unwrap(), json!(12));
        assert_eq!(run(&t("divide", Some(NodeKind::Int(100))), json!(1234)).unwrap(), json!(12.34));
        // The one integer division that overflows goes to floating point instead of panicking.
        assert_eq!(run(&t("divide", Some(NodeKind::Int(-1))), json!(i64::MIN)).unwrap(), json!(-(i64::MIN as f64)));
        assert_eq!(run(&t("divide", Some(NodeKind::Int(-1))), json!(-8)).unwrap(), json!(8));
        assert_eq!(run(&t("multiply", Some(NodeKind::Int(i64::MAX))), json!(3)).unwrap_err().rule, "multiply");
        assert_eq!(run(&t("divide", Some(NodeKind::Int(2))), json!("4")).unwrap_err().rule, "type");
        let mut diags = crate::diagnostic::Diagnostics::default();
        let step = StepSpec {
            name: Spanned::new("divide".into(), Pos::new(1, 1)),
            arg: Some(Node { pos: Pos::new(1, 9), kind: NodeKind::Int(0), ..Node::default() }),
            when: None,
        };
        assert!(Transform::compile(&step, &mut diags).is_none());
        assert!(diags[0].message.contains("by zero"));
    }

    #[test]
    fn map_looks_up_text_and_falls_back_to_default() {
        let m = t("map", Some(yaml("{values: {C: CREDIT, D: DEBIT, '1': one}}")));
        assert_eq!(run(&m, json!("C")).unwrap(), json!("CREDIT"));
        assert_eq!(run(&m, json!(1)).unwrap(), json!("one"));
        assert_eq!(run(&m, json!("X")).unwrap_err().rule, "map");
        let with_default = t("map", Some(yaml("{values: {C: CREDIT}, default: OTHER}")));
        assert_eq!(run(&with_default, json!("X")).unwrap(), json!("OTHER"));
        assert_eq!(run(&with_default, json!([1])).unwrap_err().rule, "type");
    }

    /// The messages of a step that does not compile.
    fn refusal(step: &StepSpec) -> String {
        let mut diags = crate::diagnostic::Diagnostics::default();
        assert!(Transform::compile(step, &mut diags).is_none(), "{step:?} compiles");
        diags.iter().map(|d| d.message.as_str()).collect::<Vec<_>>().join("\n")
    }

    /// The compiler and the catalogue agree: each example compiles to the transform it names, which
    /// takes what the description says, and the argument is checked as described.
    #[test]
    fn every_catalogue_entry_compiles_as_it_is_described() {
        use crate::plan::catalogue::{example_step, transforms::Takes};
        for doc in transforms::CATALOGUE {
            let name = doc.name;
            let step = example_step(doc.example);
            assert_eq!(step.name.value, name, "the example of `{name}` uses another transform");
            let mut diags = crate::diagnostic::Diagnostics::default();
            let t = Transform::compile(&step, &mut diags).unwrap_or_else(|| panic!("{name}: {diags:?}"));
            assert_eq!(t.name(), name);
            assert_eq!(t.takes_text(), doc.takes == Takes::Text, "`{name}` takes text only, or not");
            match &doc.argument {
                Argument::None => {
                    let given =
                        StepSpec { arg: Some(Node { kind: NodeKind::Int(1), ..Node::default() }), ..step.clone() };
                    assert_eq!(refusal(&given), format!("transform `{name}` takes no argument"));
                }
                argument => {
                    let bare = StepSpec { arg: None, ..step.clone() };
                    assert_eq!(
                        refusal(&bare),
                        format!("transform `{name}` needs an argument: `{name}: {}`", argument.usage())
                    );
                }
            }
            let Argument::Keys { keys, .. } = &doc.argument else { continue };
            let entries = |step: &StepSpec| match &step.arg {
                Some(Node { kind: NodeKind::Map(entries), .. }) => entries.clone(),
                other => panic!("the example of `{name}` has no argument mapping: {other:?}"),
            };
            let with_entries = |entries| StepSpec {
                arg: Some(Node { kind: NodeKind::Map(entries), ..step.arg.clone().unwrap() }),
                ..step.clone()
            };
            let mut unknown = entries(&step);
            unknown.push((Spanned::new("bogus".into(), Pos::new(1, 1)), Node::default()));
            let allowed: Vec<&str> = keys.iter().map(|k| k.name).collect();
            assert_eq!(
                refusal(&with_entries(unknown)),
                format!("unknown key `bogus` in `{name}`; allowed keys: {}", allowed.join(", "))
            );
            for key in keys.iter() {
                let mut without = entries(&step);
                without.retain(|(k, _)| k.value != key.name);
                let needs = format!("`{name}` needs `{}`", key.name);
                if key.required {
                    assert_eq!(refusal(&with_entries(without)), needs);
                } else {
                    let mut diags = crate::diagnostic::Diagnostics::default();
                    Transform::compile(&with_entries(without), &mut diags);
                    assert!(diags.iter().all(|d| d.message != needs), "`{}` is optional in `{name}`", key.name);
                }
            }
        }
    }

    #[test]
    fn bad_arguments_are_diagnosed() {
        let mut diags = crate::diagnostic::Diagnostics::default();
        let step = |name: &str, arg: Option<&str>| StepSpec {
            name: Spanned::new(name.into(), Pos::new(3, 7)),
            arg: arg.map(|a| crate::spec::load_yaml(a, &mut vec![]).unwrap()),
            when: None,
        };
        assert!(Transform::compile(&step("trimm", None), &mut diags).is_none());
        assert!(Transform::compile(&step("replace", Some("{pattern: '(', with: x}")), &mut diags).is_none());
        assert!(Transform::compile(&step("truncate", Some("{max: 0}")), &mut diags).is_none());
        assert!(Transform::compile(&step("trim", Some("yes")), &mut diags).is_none());
        assert!(Transform::compile(&step("replace", None), &mut diags).is_none());
        let messages: Vec<_> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(messages[0].contains("unknown transform `trimm`; did you mean `trim`?"), "{messages:?}");
        assert!(messages[1].contains("invalid regex `(`"), "{messages:?}");
        assert!(messages[2].contains("positive integer"), "{messages:?}");
        assert!(messages[3].contains("takes no argument"), "{messages:?}");
        assert!(messages[4].contains("needs an argument"), "{messages:?}");
    }
}
