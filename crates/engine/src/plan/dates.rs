//! Dates and times by format and time zone: `parse_datetime` and `parse_date`.
//!
//! Formats are chrono's strftime (`%d/%m/%Y %H:%M:%S`, `%Y%m%d`), checked at compile time. Local
//! times are placed in an IANA zone (`America/Sao_Paulo`, from the bundled tz database, so the
//! answer does not depend on the machine) and written in UTC. A day that does not exist
//! (`30/02/2026`) and a local time a clock change skips are errors that say so; a local time a
//! clock change repeats takes the earlier of its two instants, as `java.time` and Python do.

use chrono::format::{Fixed, Item, Numeric, ParseErrorKind, Parsed, StrftimeItems};
use chrono::{Datelike, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

/// Why a format cannot be used, if it cannot: unknown `%` codes, or a datetime format without a
/// time or a date without a day.
pub fn format_problem(format: &str, needs_time: bool) -> Option<String> {
    let items: Vec<Item<'_>> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Some(
            "has an unknown or incomplete `%` code (see chrono's strftime codes: %Y %m %d %H %M %S %z …)".into(),
        );
    }
    let has = |wanted: &[Numeric]| items.iter().any(|i| matches!(i, Item::Numeric(n, _) if wanted.contains(n)));
    let has_fixed = |wanted: Fixed| items.iter().any(|i| matches!(i, Item::Fixed(f) if *f == wanted));
    let full_date = has_fixed(Fixed::RFC3339)
        || (has(&[Numeric::Year])
            && (has(&[Numeric::Ordinal])
                || (has(&[Numeric::Month]) || has_fixed(Fixed::ShortMonthName) || has_fixed(Fixed::LongMonthName))
                    && has(&[Numeric::Day])));
    if !full_date {
        return Some("does not read a full date (a year, a month and a day, like `%Y-%m-%d`)".into());
    }
    if needs_time && !has_fixed(Fixed::RFC3339) && !has(&[Numeric::Hour, Numeric::Hour12]) {
        return Some("reads no time; use `parse_date` for dates".into());
    }
    None
}

/// Whether the format reads a UTC offset itself (then no zone is needed).
pub fn has_offset(format: &str) -> bool {
    StrftimeItems::new(format).any(|i| {
        matches!(
            i,
            Item::Fixed(
                Fixed::TimezoneOffset
                    | Fixed::TimezoneOffsetColon
                    | Fixed::TimezoneOffsetColonZ
                    | Fixed::TimezoneOffsetZ
                    | Fixed::RFC3339
            )
        )
    })
}

fn why(kind: ParseErrorKind, format: &str) -> String {
    match kind {
        ParseErrorKind::OutOfRange | ParseErrorKind::Impossible => {
            "is not a real date or time: that day (or hour) does not exist".into()
        }
        _ => format!("does not match the format `{format}`"),
    }
}

/// A format, parsed once: chrono's `parse_from_str` re-reads the format text on every call.
#[derive(Debug)]
pub struct DateFormat {
    text: String,
    items: Vec<Item<'static>>,
    offset: bool,
}

impl DateFormat {
    /// The format, or why it cannot be used.
    pub fn new(text: &str, needs_time: bool) -> Result<Self, String> {
        if let Some(problem) = format_problem(text, needs_time) {
            return Err(problem);
        }
        let items = StrftimeItems::new(text).parse_to_owned().map_err(|e| e.to_string())?;
        Ok(DateFormat { text: text.to_owned(), items, offset: has_offset(text) })
    }

    fn parse(&self, text: &str) -> Result<Parsed, String> {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).map_err(|e| why(e.kind(), &self.text))?;
        Ok(parsed)
    }
}

/// Local text in `format` (in `zone`, unless the format has an offset) → RFC 3339 UTC with `Z`.
pub fn parse_datetime(text: &str, format: &DateFormat, zone: Option<Tz>) -> Result<String, String> {
    let parsed = format.parse(text)?;
    let fail = |e: chrono::format::ParseError| why(e.kind(), &format.text);
    let utc = if format.offset {
        parsed.to_datetime().map_err(fail)?.with_timezone(&Utc)
    } else {
        let zone = zone.unwrap_or(Tz::UTC);
        let local = parsed.to_naive_datetime_with_offset(0).map_err(fail)?;
        match zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
            chrono::LocalResult::None => {
                return Err(format!("does not exist in {}: a clock change skips that local time", zone.name()));
            }
        }
    };
    // What a `datetime` field takes: RFC 3339's years, and no leap second.
    if !(0..=9999).contains(&utc.year()) {
        return Err(super::types::OUT_OF_YEARS.into());
    }
    if chrono::Timelike::nanosecond(&utc) >= 1_000_000_000 {
        return Err(super::types::LEAP_SECOND.into());
    }
    Ok(utc.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Date text in `format` → `YYYY-MM-DD`.
pub fn parse_date(text: &str, format: &DateFormat) -> Result<String, String> {
    let day = format.parse(text)?.to_naive_date().map_err(|e| why(e.kind(), &format.text))?;
    // Written by hand: `format("%Y-%m-%d")` reads its format string again for every value.
    if (0..=9999).contains(&day.year()) {
        let (y, m, d) = (day.year() as u32, day.month(), day.day());
        let digit = |n: u32| b'0' + (n % 10) as u8;
        let text = [digit(y / 1000), digit(y / 100), digit(y / 10), digit(y), b'-', digit(m / 10), digit(m), b'-'];
        let mut out = String::with_capacity(10);
        out.push_str(std::str::from_utf8(&text).expect("ASCII digits"));
        out.push(char::from(digit(d / 10)));
        out.push(char::from(digit(d)));
        Ok(out)
    } else {
        Err("the date falls outside years 0000 to 9999, which RFC 3339 cannot write".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_utc_through_the_zone() {
        let sp: Tz = "America/Sao_Paulo".parse().unwrap();
        let f = |text: &str| DateFormat::new(text, true).unwrap();
        let parse_datetime = |text: &str, format: &str, zone| parse_datetime(text, &f(format), zone);
        assert_eq!(
            parse_datetime("2026-11-01 10:00:00", "%Y-%m-%d %H:%M:%S", Some(sp)).unwrap(),
            "2026-11-01T13:00:00Z"
        );
        // Brazil kept daylight saving time until 2019: in January 2018 São Paulo was UTC−2.
        assert_eq!(
            parse_datetime("15/01/2018 10:00:00", "%d/%m/%Y %H:%M:%S", Some(sp)).unwrap(),
            "2018-01-15T12:00:00Z"
        );
        let ny: Tz = "America/New_York".parse().unwrap();
        let gap = parse_datetime("2026-03-08 02:30:00", "%Y-%m-%d %H:%M:%S", Some(ny)).unwrap_err();
        assert!(gap.contains("clock change skips"), "{gap}");
        // 01:30 happens twice on 2026-11-01 in New York: the earlier (EDT, UTC−4) is taken.
        assert_eq!(
            parse_datetime("2026-11-01 01:30:00", "%Y-%m-%d %H:%M:%S", Some(ny)).unwrap(),
            "2026-11-01T05:30:00Z"
        );
        assert_eq!(
            parse_datetime("2026-11-01 10:00:00 -0300", "%Y-%m-%d %H:%M:%S %z", None).unwrap(),
            "2026-11-01T13:00:00Z"
        );
    }

    #[test]
    fn days_that_do_not_exist_say_so() {
        let parse_date = |text: &str, format: &str| parse_date(text, &DateFormat::new(format, false).unwrap());
        let e = parse_date("20260230", "%Y%m%d").unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = parse_date("2026-02-03", "%Y%m%d").unwrap_err();
        assert!(e.contains("does not match the format `%Y%m%d`"), "{e}");
        assert_eq!(parse_date("20260203", "%Y%m%d").unwrap(), "2026-02-03");
        // Written by hand for years 0 to 9999: leading zeros kept, as chrono writes them.
        assert_eq!(parse_date("00420203", "%Y%m%d").unwrap(), "0042-02-03");
        assert_eq!(parse_date("19991231", "%Y%m%d").unwrap(), "1999-12-31");
    }

    /// What `parse_datetime` and `parse_date` write is RFC 3339: a year outside 0000 to 9999
    /// (`-0001-…`, `+10000-…`) is an error, and so is a leap second, as for `type: datetime`.
    #[test]
    fn results_outside_rfc_3339_or_on_a_leap_second_are_errors() {
        let f = |text: &str, needs_time| DateFormat::new(text, needs_time).unwrap();
        let e = parse_datetime("0000-01-01 00:30:00 +0100", &f("%Y-%m-%d %H:%M:%S %z", true), None).unwrap_err();
        assert!(e.contains("outside years 0000 to 9999"), "{e}");
        let e = parse_datetime("-0001-06-01 00:00:00", &f("%Y-%m-%d %H:%M:%S", true), None).unwrap_err();
        assert!(e.contains("outside years 0000 to 9999"), "{e}");
        let e = parse_datetime("2016-12-31 23:59:60", &f("%Y-%m-%d %H:%M:%S", true), None).unwrap_err();
        assert!(e.contains("leap second"), "{e}");
        let e = parse_date("-0001-06-01", &f("%Y-%m-%d", false)).unwrap_err();
        assert!(e.contains("outside years 0000 to 9999"), "{e}");
        let e = parse_date("+10000-06-01", &f("%Y-%m-%d", false)).unwrap_err();
        assert!(e.contains("outside years 0000 to 9999"), "{e}");
        assert_eq!(
            parse_datetime("0000-01-01 00:00:00", &f("%Y-%m-%d %H:%M:%S", true), None).unwrap(),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn formats_are_checked() {
        assert!(format_problem("%Y-%m-%d %H:%M:%S", true).is_none());
        assert!(format_problem("%Y%m%d", false).is_none());
        assert!(format_problem("%Y-%m-%d", true).unwrap().contains("reads no time"));
        assert!(format_problem("%Y-%m-%d %!", false).unwrap().contains("unknown"));
        assert!(format_problem("%m/%d", false).unwrap().contains("full date"));
    }
}
