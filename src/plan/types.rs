//! Field types: the runtime check of a value against its declared `type`, and the static kinds
//! the compiler uses to refuse steps that can never apply (`range` on a `string`).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

use super::path::json_kind;

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
    pub fn check<'v>(self, value: Cow<'v, Value>, sensitive: bool) -> Result<Cow<'v, Value>, String> {
        let ok = match (self, value.as_ref()) {
            (FieldType::Any, _) => true,
            (FieldType::String, Value::String(_)) => true,
            (FieldType::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (FieldType::Number, Value::Number(_)) => true,
            (FieldType::Boolean, Value::Bool(_)) => true,
            (FieldType::Object, Value::Object(_)) => true,
            (FieldType::Array, Value::Array(_)) => true,
            (FieldType::Datetime, Value::String(s)) => {
                return match normalize_datetime(s) {
                    Some(normalized) if normalized == *s => Ok(value),
                    Some(normalized) => Ok(Cow::Owned(Value::String(normalized))),
                    None => Err(format!("expected an RFC 3339 datetime, found {}", describe(&value, sensitive))),
                };
            }
            (FieldType::Date, Value::String(s)) => {
                if parse_date(s).is_some() {
                    true
                } else {
                    return Err(format!("expected a date as YYYY-MM-DD, found {}", describe(&value, sensitive)));
                }
            }
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

/// RFC 3339 in, RFC 3339 UTC with `Z` out; sub-second digits are kept as given (in groups of 3).
pub fn normalize_datetime(s: &str) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(s).ok()?;
    Some(parsed.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true))
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
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// How a value is shown in an error message: its kind, and its text unless the field is sensitive.
pub fn describe(value: &Value, sensitive: bool) -> String {
    if sensitive {
        return format!("{} (value hidden: sensitive field)", json_kind(value));
    }
    const MAX: usize = 80;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        format!("{} {text}", json_kind(value))
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{} {cut}…", json_kind(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(t: FieldType, v: Value) -> Result<Value, String> {
        t.check(Cow::Owned(v), false).map(Cow::into_owned)
    }

    #[test]
    fn datetimes_are_normalised_to_utc() {
        assert_eq!(check(FieldType::Datetime, json!("2026-11-01T10:00:00-03:00")), Ok(json!("2026-11-01T13:00:00Z")));
        assert_eq!(
            check(FieldType::Datetime, json!("2026-11-01T10:00:00.250+00:00")),
            Ok(json!("2026-11-01T10:00:00.250Z"))
        );
        assert!(check(FieldType::Datetime, json!("2026-11-01")).unwrap_err().contains("RFC 3339"));
        assert!(check(FieldType::Datetime, json!(1700000000)).is_err());
    }

    #[test]
    fn dates_are_strict() {
        assert!(check(FieldType::Date, json!("2026-02-28")).is_ok());
        assert!(check(FieldType::Date, json!("2026-02-30")).is_err());
        assert!(check(FieldType::Date, json!("2026-2-3")).is_err());
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
        let msg = FieldType::Integer.check(Cow::Owned(json!("secret-123")), true).unwrap_err();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("hidden"), "{msg}");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let msg = describe(&json!("x".repeat(500)), false);
        assert!(msg.chars().count() < 100, "{msg}");
        assert!(msg.ends_with('…'));
    }
}
