//! Field types: the runtime check of a value against its declared `type`, and the static kinds
//! the compiler uses to refuse steps that can never apply (`range` on a `string`).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::value::Val;

/// The exact decimal text of a value: decimal text as it is (`-12.50`), a JSON number from the
/// text the record wrote it with (`1e2` as `100`), an integer. `None` for anything else, and for
/// text that is not a plain decimal (no sign but `-`, no exponent, no spaces).
pub fn decimal_text<'v>(value: &'v Val<'_>) -> Option<Cow<'v, str>> {
    fn plain(text: &str) -> bool {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (digits, None),
        };
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    }
    let number_text = |text: &str| -> Option<String> {
        if plain(text) {
            return Some(text.to_string());
        }
        // An exponent (`1.5e3`): exact through a decimal, never a float.
        rust_decimal::Decimal::from_scientific(text).ok().map(|d| d.normalize().to_string())
    };
    match value {
        Val::Raw(s) => plain(s).then_some(Cow::Borrowed(*s)),
        Val::Str(s) => plain(s).then_some(Cow::Borrowed(s.as_ref())),
        Val::Written(n) => number_text(n.text).map(Cow::Owned),
        Val::Json(v) => match v.as_ref() {
            Value::Number(n) => number_text(&n.to_string()).map(Cow::Owned),
            _ => None,
        },
        _ => None,
    }
}

/// A declared `type:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// `string`.
    String,
    /// `integer`.
    Integer,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
    /// `datetime`: RFC 3339 text.
    Datetime,
    /// `date`: `YYYY-MM-DD` text.
    Date,
    /// `decimal`: an exact decimal (an Avro or Protobuf decimal, decimal text, or a JSON number
    /// read from its text), written as its decimal text: never through a float.
    Decimal,
    /// `object`.
    Object,
    /// `array`.
    Array,
    /// `any`: no type check.
    Any,
}

impl FieldType {
    /// The types as a mapping writes them.
    pub const NAMES: &'static [&'static str] =
        &["string", "integer", "number", "decimal", "boolean", "datetime", "date", "object", "array", "any"];

    /// The type a mapping names, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => FieldType::String,
            "integer" => FieldType::Integer,
            "number" => FieldType::Number,
            "boolean" => FieldType::Boolean,
            "datetime" => FieldType::Datetime,
            "date" => FieldType::Date,
            "decimal" => FieldType::Decimal,
            "object" => FieldType::Object,
            "array" => FieldType::Array,
            "any" => FieldType::Any,
            _ => return None,
        })
    }

    /// The type as a mapping writes it.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Datetime => "datetime",
            FieldType::Date => "date",
            FieldType::Decimal => "decimal",
            FieldType::Object => "object",
            FieldType::Array => "array",
            FieldType::Any => "any",
        }
    }

    /// Whether values of this type are JSON strings in the output (so string validators apply).
    pub fn is_textual(self) -> bool {
        matches!(self, FieldType::String | FieldType::Datetime | FieldType::Date)
    }

    /// Whether it is `integer` or `number`.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Number)
    }

    /// Whether a value of static kind `kind` may have this type (decided at run time when unknown).
    pub fn accepts(self, kind: Kind) -> bool {
        match (self, kind) {
            (FieldType::Any, _) | (_, Kind::Unknown) => true,
            (FieldType::Decimal, Kind::Str | Kind::Int | Kind::Num) => true,
            (t, Kind::Str) => t.is_textual(),
            (t, Kind::Int | Kind::Num) => t.is_numeric(),
            (FieldType::Boolean, Kind::Bool) => true,
            _ => false,
        }
    }

    /// Checks `value` against the type. Datetimes come back normalised to UTC (`…Z`).
    /// The error is the message of a `type` error.
    pub fn check(self, value: &mut Val<'_>, sensitive: bool) -> Result<(), String> {
        let ok = match (self, &*value) {
            (FieldType::Any, _) | (FieldType::String, Val::Raw(_) | Val::Str(_)) => true,
            (FieldType::Datetime, Val::Raw(_) | Val::Str(_)) => {
                return match normalize_datetime(value.as_str().unwrap_or_default()) {
                    Some(Cow::Borrowed(_)) => Ok(()),
                    Some(Cow::Owned(normalized)) => {
                        *value = Val::text(normalized);
                        Ok(())
                    }
                    None => Err(match refused_datetime(value.as_str().unwrap_or_default()) {
                        Some(why) => format!("{why}, found {}", describe(value, sensitive)),
                        None => format!("expected an RFC 3339 datetime, found {}", describe(value, sensitive)),
                    }),
                };
            }
            (FieldType::Date, Val::Raw(_) | Val::Str(_)) => {
                if value.as_str().and_then(iso_date).is_some() {
                    true
                } else {
                    return Err(format!("expected a date as YYYY-MM-DD, found {}", describe(value, sensitive)));
                }
            }
            (FieldType::Decimal, _) => {
                // Written as text: a number becomes its exact decimal text.
                let text = match decimal_text(value) {
                    None => return Err(format!("expected a decimal number, found {}", describe(value, sensitive))),
                    Some(_) if matches!(value, Val::Raw(_) | Val::Str(_)) => return Ok(()),
                    Some(text) => text.into_owned(),
                };
                *value = Val::text(text);
                return Ok(());
            }
            // Integers are signed 64-bit: 2^63 and above is not one, though JSON can write it.
            (FieldType::Integer, Val::Json(v)) => v.as_i64().is_some(),
            (FieldType::Integer, Val::Written(n)) => n.value.as_i64().is_some(),
            (FieldType::Number, Val::Json(v)) => v.is_number(),
            (FieldType::Number, Val::Written(_)) => true,
            (FieldType::Boolean, Val::Json(v)) => v.is_boolean(),
            (FieldType::Object, Val::Json(v)) => v.is_object(),
            (FieldType::Array, Val::Json(v)) => v.is_array(),
            (FieldType::Array, Val::Matches(_) | Val::LentMatches(_) | Val::MappedItems(_)) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            let expected = match self {
                FieldType::Integer => "an integer",
                FieldType::Number => "a number",
                FieldType::Boolean => "a boolean",
                FieldType::Object => "an object",
                FieldType::Array => "an array",
                FieldType::Datetime => "an RFC 3339 datetime string",
                FieldType::Date => "a YYYY-MM-DD date string",
                FieldType::Decimal => "a decimal number",
                FieldType::String | FieldType::Any => "a string",
            };
            Err(format!("expected {expected}, found {}", describe(value, sensitive)))
        }
    }
}

/// What the compiler knows about a value's JSON type between transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not known (the record's value, or `null`).
    Unknown,
    /// A string.
    Str,
    /// An integer for sure.
    Int,
    /// A number, integer or not.
    Num,
    /// A boolean.
    Bool,
    /// An object.
    Obj,
    /// An array.
    Arr,
}

impl Kind {
    /// The kind of a JSON value.
    pub fn of(value: &Value) -> Kind {
        match value {
            Value::String(_) => Kind::Str,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(_) => Kind::Num,
            Value::Bool(_) => Kind::Bool,
            Value::Object(_) => Kind::Obj,
            Value::Array(_) => Kind::Arr,
            Value::Null => Kind::Unknown,
        }
    }

    /// The kind as messages name it.
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
/// Borrows `s` when it already is in that form.
pub fn normalize_datetime(s: &str) -> Option<Cow<'_, str>> {
    let Some(utc) = CommonDateTime::parse(s) else {
        return normalize_with_chrono(s).map(|n| if n == s { Cow::Borrowed(s) } else { Cow::Owned(n) });
    };
    let mut buf = [0u8; CommonDateTime::MAX_LEN];
    let text = utc.write_utc(&mut buf);
    Some(if text == s { Cow::Borrowed(s) } else { Cow::Owned(text.to_owned()) })
}

/// Whether `s` is an RFC 3339 datetime (as chrono's `parse_from_rfc3339` decides) that a
/// `datetime` field takes: not a leap second, and within years 0000 to 9999 in UTC.
pub fn is_rfc3339(s: &str) -> bool {
    CommonDateTime::parse(s).is_some() || normalize_with_chrono(s).is_some()
}

/// Why RFC 3339 text is still not taken as a datetime, if it is RFC 3339 at all: its UTC time has
/// a year RFC 3339 cannot write, or it is a leap second.
pub fn refused_datetime(s: &str) -> Option<&'static str> {
    use chrono::Timelike;
    let t = DateTime::parse_from_rfc3339(s).ok()?;
    Some(if t.nanosecond() >= 1_000_000_000 { LEAP_SECOND } else { OUT_OF_YEARS })
}

/// The error of a time whose UTC year RFC 3339 cannot write (`-0001`, `+10000`).
pub const OUT_OF_YEARS: &str = "the time falls outside years 0000 to 9999 in UTC, which RFC 3339 cannot write";

/// The error of a leap second (`23:59:60`): refused rather than moved to another second, as most
/// systems downstream cannot store one.
pub const LEAP_SECOND: &str = "a leap second (`:60`) is not taken: most systems downstream cannot store one";

/// A datetime in the shape nearly every producer writes — `YYYY-MM-DDTHH:MM:SS`, up to nine
/// fraction digits, then `Z` or `±HH:MM` — already shifted to UTC.
///
/// Why by hand: chrono's general RFC 3339 parser and its time-zone conversion cost more than the
/// rest of the field's work. [`CommonDateTime::parse`] never refuses: anything outside this shape
/// or its easy ranges (leap seconds, lower-case `t`/`z`, a space separator, more than nine
/// fraction digits, a shift out of years 0000–9999) returns `None`, and chrono decides. A property
/// test checks that both give the same answer.
#[derive(Debug, PartialEq, Eq)]
struct CommonDateTime {
    year: u32,
    month: u32,
    day: u32,
    /// Minutes since midnight.
    minutes: u32,
    second: u32,
    nanos: u32,
}

impl CommonDateTime {
    const MAX_LEN: usize = "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ".len();

    fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let number = |digits: &[u8]| {
            digits.iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (mut year, mut month, mut day) = (number(&b[0..4])?, number(&b[5..7])?, number(&b[8..10])?);
        let (hour, minute, second) = (number(&b[11..13])?, number(&b[14..16])?, number(&b[17..19])?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let mut rest = &b[19..];
        let mut nanos = 0;
        if let [b'.', fraction @ ..] = rest {
            let digits = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            nanos = number(&fraction[..digits])? * 10u32.pow(9 - digits as u32);
            rest = &fraction[digits..];
        }
        let offset = match *rest {
            [b'Z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (hours, mins) = (number(&[h1, h2])?, number(&[m1, m2])?);
                if hours > 23 || mins > 59 {
                    return None;
                }
                let offset = (hours * 60 + mins) as i32;
                if sign == b'-' { -offset } else { offset }
            }
            _ => return None,
        };
        // Local time minus its offset is UTC: at most one day earlier or later.
        let mut minutes = (hour * 60 + minute) as i32 - offset;
        if minutes < 0 {
            minutes += 24 * 60;
            if day > 1 {
                day -= 1;
            } else if month > 1 {
                month -= 1;
                day = days_in_month(year, month);
            } else if year > 0 {
                (year, month, day) = (year - 1, 12, 31);
            } else {
                return None;
            }
        } else if minutes >= 24 * 60 {
            minutes -= 24 * 60;
            if day < days_in_month(year, month) {
                day += 1;
            } else if month < 12 {
                (month, day) = (month + 1, 1);
            } else if year < 9999 {
                (year, month, day) = (year + 1, 1, 1);
            } else {
                return None;
            }
        }
        Some(CommonDateTime { year, month, day, minutes: minutes as u32, second, nanos })
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z`, the one form datetimes leave in (both paths use it).
    fn write_utc<'b>(&self, buf: &'b mut [u8; Self::MAX_LEN]) -> &'b str {
        let mut len = 0;
        let mut put = |n: u32, width: usize, after: Option<u8>| {
            // Last digit first, dividing by the constant 10 (a multiply): dividing by a computed
            // power of ten is a hardware division per digit, slow enough to show in a profile.
            let mut rest = n;
            for slot in buf[len..len + width].iter_mut().rev() {
                *slot = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            len += width;
            if let Some(separator) = after {
                buf[len] = separator;
                len += 1;
            }
        };
        put(self.year, 4, Some(b'-'));
        put(self.month, 2, Some(b'-'));
        put(self.day, 2, Some(b'T'));
        put(self.minutes / 60, 2, Some(b':'));
        put(self.minutes % 60, 2, Some(b':'));
        match self.nanos {
            0 => put(self.second, 2, Some(b'Z')),
            n if n % 1_000_000 == 0 => {
                put(self.second, 2, Some(b'.'));
                put(n / 1_000_000, 3, Some(b'Z'));
            }
            n if n % 1_000 == 0 => {
                put(self.second, 2, Some(b'.'));
                put(n / 1_000, 6, Some(b'Z'));
            }
            n => {
                put(self.second, 2, Some(b'.'));
                put(n, 9, Some(b'Z'));
            }
        }
        std::str::from_utf8(&buf[..len]).expect("digits and ASCII separators")
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The general path, for what [`CommonDateTime`] leaves to chrono.
fn normalize_with_chrono(s: &str) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let utc = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    // A year RFC 3339 cannot write (`-0001`, `+10000`), and a leap second (chrono counts it as
    // :59 plus a second), are refused.
    let Ok(year @ 0..=9999) = u32::try_from(utc.year()) else { return None };
    if utc.nanosecond() >= 1_000_000_000 {
        return None;
    }
    // Written by hand: chrono's formatter interprets a format string on every call.
    let parts = CommonDateTime {
        year,
        month: utc.month(),
        day: utc.day(),
        minutes: utc.hour() * 60 + utc.minute(),
        second: utc.second(),
        nanos: utc.nanosecond(),
    };
    Some(parts.write_utc(&mut [0; CommonDateTime::MAX_LEN]).to_owned())
}

/// A date as the `date` type holds it: strictly `YYYY-MM-DD`, and a real calendar day (the
/// `parse_date` transform, [`super::dates::parse_date`], reads other formats into this one).
pub fn iso_date(s: &str) -> Option<NaiveDate> {
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

/// How a value is shown in an error message: its kind, and its text unless the field is sensitive.
pub fn describe(value: &Val<'_>, sensitive: bool) -> String {
    if sensitive {
        return format!("{} (value hidden: sensitive field)", value.kind_name());
    }
    const MAX: usize = 80;
    // A number as the record writes it (`1e3`, not `1000.0`).
    let text = match value.written() {
        Some(written) => written.to_owned(),
        None => value.to_value().to_string(),
    };
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
        let mut v = Val::owned(v);
        t.check(&mut v, false).map(|()| v.into_value())
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
    fn common_datetimes_take_the_fast_path() {
        let parsed =
            |s: &str| CommonDateTime::parse(s).map(|d| d.write_utc(&mut [0; CommonDateTime::MAX_LEN]).to_owned());
        assert_eq!(parsed("2026-11-01T10:00:00-03:00").as_deref(), Some("2026-11-01T13:00:00Z"));
        assert_eq!(parsed("2024-02-29T23:00:00-03:00").as_deref(), Some("2024-03-01T02:00:00Z"));
        assert_eq!(parsed("2025-03-01T01:00:00.5+02:00").as_deref(), Some("2025-02-28T23:00:00.500Z"));
        assert_eq!(parsed("2026-11-01T10:00:00.123456789Z").as_deref(), Some("2026-11-01T10:00:00.123456789Z"));
        // Left to chrono: out of the fast path's shape or ranges.
        for other in [
            "2026-11-01t10:00:00Z",
            "2026-11-01 10:00:00Z",
            "2026-11-01T10:00:00z",
            "2016-12-31T23:59:60Z",
            "2026-11-01T10:00:00.1234567891Z",
            "0000-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "2026-02-29T10:00:00Z",
        ] {
            assert_eq!(CommonDateTime::parse(other), None, "{other}");
        }
        // An already normalised value is handed back borrowed.
        assert!(matches!(normalize_datetime("2026-11-01T13:00:00Z"), Some(Cow::Borrowed(_))));
    }

    /// RFC 3339 text whose UTC form RFC 3339 cannot write (a year before 0000 or after 9999), and
    /// a leap second, which most systems downstream cannot store: field errors that say which.
    #[test]
    fn datetimes_out_of_range_or_on_a_leap_second_are_refused() {
        for (text, why) in [
            ("0000-01-01T00:30:00+01:00", "outside years 0000 to 9999"),
            ("9999-12-31T23:30:00-01:00", "outside years 0000 to 9999"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2016-12-31T21:59:60.5-02:00", "leap second"),
        ] {
            let e = check(FieldType::Datetime, json!(text)).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
            assert!(!is_rfc3339(text), "{text} is not offered as a datetime guess");
        }
        let hidden = FieldType::Datetime.check(&mut Val::owned(json!("2016-12-31T23:59:60Z")), true).unwrap_err();
        assert!(!hidden.contains("2016"), "{hidden}");
        assert_eq!(check(FieldType::Datetime, json!("0000-01-01T00:00:00Z")), Ok(json!("0000-01-01T00:00:00Z")));
        assert_eq!(check(FieldType::Datetime, json!("9999-12-31T23:59:59Z")), Ok(json!("9999-12-31T23:59:59Z")));
    }

    /// Text shaped like a datetime, with every part sometimes out of range or in an unusual form.
    fn datetime_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let year = prop_oneof![0u32..=9999, Just(0), Just(9999), Just(2024), Just(1900), Just(2000)];
        let date = (year, 0u32..=13, 0u32..=32);
        let time = (0u32..=24, 0u32..=60, prop_oneof![0u32..=59, 59u32..=61]);
        let separator = prop::sample::select(vec!["T", "T", "T", "t", " "]);
        let fraction = prop::option::of("[0-9]{0,11}");
        let offset = prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (prop::sample::select(vec!['+', '-']), 0u32..=25, 0u32..=61)
                .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
            Just("+0300".to_owned()),
            Just(String::new()),
        ];
        (date, separator, time, fraction, offset).prop_map(|((y, mo, d), sep, (h, mi, s), fraction, offset)| {
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{fraction}{offset}")
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn the_fast_datetime_path_agrees_with_chrono(s in datetime_like()) {
            let expected = normalize_with_chrono(&s);
            proptest::prop_assert_eq!(normalize_datetime(&s).map(Cow::into_owned), expected.clone(), "{}", s);
            proptest::prop_assert_eq!(is_rfc3339(&s), expected.is_some(), "{}", s);
        }
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
        assert!(check(FieldType::Integer, json!(i64::MAX)).is_ok());
        assert!(
            check(FieldType::Integer, json!(i64::MAX as u64 + 1)).is_err(),
            "2^63 is beyond a signed 64-bit integer"
        );
        assert!(check(FieldType::Integer, json!(u64::MAX)).is_err());
        assert!(check(FieldType::Number, json!(12.5)).is_ok());
        assert!(check(FieldType::String, json!(12)).is_err());
        assert!(check(FieldType::Boolean, json!("true")).is_err());
    }

    #[test]
    fn sensitive_values_are_never_echoed() {
        let msg = FieldType::Integer.check(&mut Val::owned(json!("secret-123")), true).unwrap_err();
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
