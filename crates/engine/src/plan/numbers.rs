//! Exact decimals from text, one reading for every place that makes one: the `decimal()`
//! function, the `to_decimal` transform and the reading of a computed decimal field.
//!
//! A decimal holds a 96-bit integer and up to 28 digits after the point. Text that needs more is
//! refused, never rounded: `"12345678901234567890.123456789012345"` has 35 significant digits,
//! and silently keeping 28 of them would change an amount without a word.

use rust_decimal::Decimal;

/// The decimal `text` (surrounding white space ignored) writes, exactly; `None` when it is not a
/// decimal number or a decimal cannot hold it without rounding. Scientific notation is read
/// exactly too (`1.5e3` is `1500`, `25e-1` is `2.5`).
pub fn exact_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    // `Decimal::from_str_exact` refuses what it would have to round; `+`, `_` and other spellings
    // it tolerates are not numbers in a record.
    let body = mantissa.strip_prefix('-').unwrap_or(mantissa);
    let digits_and_point = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|&b| b == b'.').count() <= 1
        && body.bytes().any(|b| b.is_ascii_digit());
    if !digits_and_point {
        return None;
    }
    // Zeros at the end of a long fraction hold no digit of the value: `1.000…0` with 40 zeros is
    // 1, which a decimal holds, though not with 40 places.
    let mantissa = match mantissa.split_once('.') {
        Some((_, fraction)) if fraction.len() > 28 => mantissa.trim_end_matches('0'),
        _ => mantissa,
    };
    let mut value = Decimal::from_str_exact(mantissa).ok()?;
    let Some(exponent) = exponent else { return Some(value) };
    // One sign at most, then digits: `i32::from_str` would also take the `+` of `1e+-2`.
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exponent: i32 = exponent.strip_prefix('+').unwrap_or(exponent).parse().ok()?;
    if value.is_zero() {
        // Any exponent of zero is zero (and `0e999999999` must not loop).
        return Some(Decimal::ZERO);
    }
    if exponent >= 0 {
        let scale_down = (exponent as u32).min(value.scale());
        value.set_scale(value.scale() - scale_down).ok()?;
        for _ in scale_down..exponent as u32 {
            value = value.checked_mul(Decimal::TEN)?;
        }
    } else {
        // Trailing zeros of the mantissa are free digits before the scale limit is reached
        // (`100e-30` is `1e-28`).
        let (mut mantissa, mut scale) = (value.mantissa(), value.scale() + exponent.unsigned_abs());
        while scale > 28 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
            if mantissa == 0 {
                return Some(Decimal::ZERO);
            }
        }
        if scale > 28 {
            return None;
        }
        return Some(Decimal::from_i128_with_scale(mantissa, scale));
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exactly_or_refuses() {
        let read = |t: &str| exact_decimal(t).map(|d| d.to_string());
        assert_eq!(read("12.50"), Some("12.50".into()));
        assert_eq!(read(" -0.001 "), Some("-0.001".into()));
        assert_eq!(read("1.5e3"), Some("1500".into()));
        assert_eq!(read("25E-1"), Some("2.5".into()));
        assert_eq!(read("1e+2"), Some("100".into()));
        assert_eq!(read("100e-30"), Some("0.0000000000000000000000000001".into()));
        assert_eq!(read("79228162514264337593543950335"), Some("79228162514264337593543950335".into()));
        // More digits than a decimal holds: refused, not rounded.
        assert_eq!(read("12345678901234567890.123456789012345"), None);
        assert_eq!(read("79228162514264337593543950336"), None);
        assert_eq!(read("0.00000000000000000000000000001"), None);
        assert_eq!(read("1e-29"), None);
        assert_eq!(read("1e29"), None);
        assert_eq!(read(&format!("1.{}", "0".repeat(40))), Some("1".into()));
        assert_eq!(read(&format!("0.{}5", "0".repeat(27))), Some("0.0000000000000000000000000005".into()));
        assert_eq!(read("0e999999999"), Some("0".into()));
        assert_eq!(read("1e999999999"), None);
        assert_eq!(read("1e-2147483648"), None);
        for not_a_number in ["", "-", ".", "1.2.3", "+1", "1_000", "abc", "1e", "e3", "0x10", "NaN", "inf"] {
            assert_eq!(read(not_a_number), None, "{not_a_number:?}");
        }
    }

    #[test]
    fn an_exponent_is_digits_after_at_most_one_sign() {
        let read = |t: &str| exact_decimal(t).map(|d| d.to_string());
        assert_eq!(read("1e+2"), Some("100".into()));
        assert_eq!(read("1e-2"), Some("0.01".into()));
        for odd in ["1e+-2", "1e++2", "1e-+2", "1e--2", "1e+", "1e-", "1e 2", "1e2 5", "1e٢"] {
            assert_eq!(read(odd), None, "{odd:?}");
        }
    }
}
