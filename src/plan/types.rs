//! Field types: the runtime check of a value against its declared `type`, and the static kinds
//! the compiler uses to refuse steps that can never apply (`range` on a `string`).

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

use super::value::Val;

/// A declared `type:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Datetime,
    Date,
    Object,
    Array,
    Any,
}

impl FieldType {
    pub const NAMES: &'static [&'static str] =
        &["string", "integer", "number", "boolean", "datetime", "date", "object", "array", "any"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => FieldType::String,
            "integer" => FieldType::Integer,
            "number" => FieldType::Number,
            "boolean" => FieldType::Boolean,
            "datetime" => FieldType::Datetime,
            "date" => FieldType::Date,
            "object" => FieldType::Object,
            "array" => FieldType::Array,
            "any" => FieldType::Any,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Datetime => "datetime",
            FieldType::Date => "date",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::Any => "any",
        }
    }

    /// Whether values of this type are JSON strings in the output (so string validators apply).
    pub fn is_textual(self) -> bool {
        matches!(self, FieldType::String | FieldType::Datetime | FieldType::Date)
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Number)
    }

    /// Whether a value of static kind `kind` may have this type (decided at run time when unknown).
    pub fn accepts(self, kind: Kind) -> bool {
        match (self, kind) {
            (FieldType::Any, _) | (_, Kind::Unknown) => true,
            (t, Kind::Str) => t.is_textual(),
            (t, Kind::Int | Kind::Num) => t.is_numeric(),
            (FieldType::Boolean, Kind::Bool) => true,
            _ => false,
        }
    }

    /// Checks `value` against the type. Datetimes come back normalised to UTC (`…Z`).
    /// The error is the message of a `type` error.
    pub fn check<'v>(self, value: Val<'v>, sensitive: bool) -> Result<Val<'v>, String> {
        let ok = match (self, &value) {
            (FieldType::Any, _) | (FieldType::String, Val::Raw(_) | Val::Str(_)) => true,
            (FieldType::Datetime, Val::Raw(_) | Val::Str(_)) => {
                return match normalize_datetime(value.as_str().unwrap_or_default()) {
                    Some(normalized) if value.as_str() == Some(normalized.as_str()) => Ok(value),
                    Some(normalized) => Ok(Val::text(normalized)),
                    None => Err(format!("expected an RFC 3339 datetime, found {}", describe(&value, sensitive))),
                };
            }
            (FieldType::Date, Val::Raw(_) | Val::Str(_)) => {
                if value.as_str().and_then(parse_date).is_some() {
                    true
                } else {
                    return Err(format!("expected a date as YYYY-MM-DD, found {}", describe(&value, sensitive)));
                }
            }
            (FieldType::Integer, Val::Other(v)) => v.as_i64().is_some() || v.as_u64().is_some(),
            (FieldType::Number, Val::Other(v)) => v.is_number(),
            (FieldType::Boolean, Val::Other(v)) => v.is_boolean(),
            (FieldType::Object, Val::Other(v)) => v.is_object(),
            (FieldType::Array, Val::Other(v)) => v.is_array(),
            _ => false,
        };
        if ok {
            Ok(value)
        } else {
            let expected = match self {
                FieldType::Integer => "an integer",
                FieldType::Number => "a number",
                FieldType::Boolean => "a boolean",
                FieldType::Object => "an object",
                FieldType::Array => "an array",
                FieldType::Datetime => "an RFC 3339 datetime string",
                FieldType::Date => "a YYYY-MM-DD date string",
                FieldType::String | FieldType::Any => "a string",
            };
            Err(format!("expected {expected}, found {}", describe(&value, sensitive)))
        }
    }
}

/// What the compiler knows about a value's JSON type between transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unknown,
    Str,
    /// An integer for sure.
    Int,
    /// A number, integer or not.
    Num,
    Bool,
    Obj,
    Arr,
}

impl Kind {
    pub fn of(value: &Value) -> Kind {
        match value {
            Value::String(_) => Kind::Str,
            Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
            Value::Number(_) => Kind::Num,
            Value::Bool(_) => Kind::Bool,
            Value::Object(_) => Kind::Obj,
            Value::Array(_) => Kind::Arr,
            Value::Null => Kind::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Unknown => "any value",
            Kind::Str => "a string",
            Kind::Int => "an integer",
            Kind::Num => "a number",
            Kind::Bool => "a boolean",
            Kind::Obj => "an object",
            Kind::Arr => "an array",
        }
    }
}

/// RFC 3339 in, RFC 3339 UTC with `Z` out; sub-second digits are kept (in groups of 3).
pub fn normalize_datetime(s: &str) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let utc = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    // Written by hand: chrono's formatter interprets a format string on every call.
    let mut out = String::with_capacity(30);
    let year = utc.year();
    if !(0..=9999).contains(&year) {
        return Some(utc.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    }
    push_digits(&mut out, year as u32, 4);
    out.push('-');
    push_digits(&mut out, utc.month(), 2);
    out.push('-');
    push_digits(&mut out, utc.day(), 2);
    out.push('T');
    push_digits(&mut out, utc.hour(), 2);
    out.push(':');
    push_digits(&mut out, utc.minute(), 2);
    out.push(':');
    push_digits(&mut out, utc.second(), 2);
    let nanos = utc.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        out.push('.');
        if nanos % 1_000_000 == 0 {
            push_digits(&mut out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            push_digits(&mut out, nanos / 1_000, 6);
        } else {
            push_digits(&mut out, nanos, 9);
        }
    }
    out.push('Z');
    Some(out)
}

/// Appends `n` as exactly `width` decimal digits (zero-padded).
fn push_digits(out: &mut String, n: u32, width: u32) {
    for i in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u32.pow(i) % 10) as u8));
    }
}

/// Strictly `YYYY-MM-DD`, and a real calendar day.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let number = |range: std::ops::Range<usize>| b[range].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    NaiveDate::from_ymd_opt(number(0..4) as i32, number(5..7), number(8..10))
}

/// "an array", "a string"… for messages about JSON values.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How a value is shown in an error message: its kind, and its text unless the field is sensitive.
pub fn describe(value: &Val<'_>, sensitive: bool) -> String {
    if sensitive {
        return format!("{} (value hidden: sensitive field)", value.kind_name());
    }
    const MAX: usize = 80;
    let text = value.to_value().to_string();
    if text.chars().count() <= MAX {
        format!("{} {text}", value.kind_name())
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{} {cut}…", value.kind_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(t: FieldType, v: Value) -> Result<Value, String> {
        t.check(Val::owned(v), false).map(Val::into_value)
    }

    #[test]
    fn datetimes_are_normalised_to_utc() {
        assert_eq!(check(FieldType::Datetime, json!("2026-11-01T10:00:00-03:00")), Ok(json!("2026-11-01T13:00:00Z")));
        assert_eq!(
            check(FieldType::Datetime, json!("2026-11-01T10:00:00.250+00:00")),
            Ok(json!("2026-11-01T10:00:00.250Z"))
        );
        assert_eq!(
            check(FieldType::Datetime, json!("2026-11-01T10:00:00.000123-00:30")),
            Ok(json!("2026-11-01T10:30:00.000123Z"))
        );
        assert_eq!(
            check(FieldType::Datetime, json!("2026-11-01T10:00:00.000000001Z")),
            Ok(json!("2026-11-01T10:00:00.000000001Z"))
        );
        assert_eq!(check(FieldType::Datetime, json!("2026-12-31T23:30:00-01:00")), Ok(json!("2027-01-01T00:30:00Z")));
        assert_eq!(check(FieldType::Datetime, json!("0001-01-01T00:00:00+01:00")), Ok(json!("0000-12-31T23:00:00Z")));
        assert!(check(FieldType::Datetime, json!("2026-11-01")).unwrap_err().contains("RFC 3339"));
        assert!(check(FieldType::Datetime, json!(1700000000)).is_err());
    }

    #[test]
    fn dates_are_strict() {
        assert!(check(FieldType::Date, json!("2026-02-28")).is_ok());
        assert!(check(FieldType::Date, json!("2026-02-30")).is_err());
        assert!(check(FieldType::Date, json!("2026-2-3")).is_err());
        assert!(check(FieldType::Date, json!("2024-02-29")).is_ok());
        assert!(check(FieldType::Date, json!("2025-02-29")).is_err());
        assert!(check(FieldType::Date, json!("2026-13-01")).is_err());
        assert!(check(FieldType::Date, json!("2026-00-10")).is_err());
    }

    #[test]
    fn no_silent_coercion() {
        assert!(
            check(FieldType::Integer, json!("12")).unwrap_err().contains("expected an integer, found a string \"12\"")
        );
        assert!(check(FieldType::Integer, json!(12.5)).is_err());
        assert!(check(FieldType::Integer, json!(12.0)).is_err());
        assert!(check(FieldType::Integer, json!(u64::MAX)).is_ok());
        assert!(check(FieldType::Number, json!(12.5)).is_ok());
        assert!(check(FieldType::String, json!(12)).is_err());
        assert!(check(FieldType::Boolean, json!("true")).is_err());
    }

    #[test]
    fn sensitive_values_are_never_echoed() {
        let msg = FieldType::Integer.check(Val::owned(json!("secret-123")), true).unwrap_err();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("hidden"), "{msg}");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let msg = describe(&Val::owned(json!("x".repeat(500))), false);
        assert!(msg.chars().count() < 100, "{msg}");
        assert!(msg.ends_with('…'));
    }
}
