//! Properties of expressions, and the cases they found.

use crate::plan::load_str;

/// What the checker types a decimal is a decimal at run time, also where an integer is joined
/// with decimals (a list, `? :`, `coalesce`, the sum of no decimals): its field writes decimal
/// text, and never fails on its own type.
#[test]
fn an_integer_joined_with_decimals_is_a_decimal() {
    let spec = r#"version: 1
name: t
fields:
  - { target: i, source: $.i, type: integer }
  - { target: b, source: $.b, type: boolean }
  - { target: list, expr: '[decimal("1.5"), i]' }
  - { target: either, expr: 'b ? decimal("1.5") : i' }
  - { target: first, expr: 'coalesce(i, decimal("1.5"))' }
  - { target: none, expr: 'sum([decimal("1.5")].filter(x, x > 2))' }
  - { target: most, expr: 'max([decimal("1.5"), i])' }
  - { target: text, expr: 'string([decimal("1.5"), i])' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"i": 2, "b": false}"#);
    let expected = serde_json::json!({
        "i": 2, "b": false,
        "list": ["1.5", "2"], "either": "2", "first": "2", "none": "0", "most": "2", "text": "[\"1.5\",\"2\"]",
    });
    assert_eq!(out.ok_value(), Some(expected), "{:?}", out.errors());
}

/// A zero with places is rounded and padded like any other decimal: `round()` and the
/// `to_decimal` transform give it the places asked for instead of failing.
#[test]
fn a_zero_with_places_takes_more_places() {
    let spec = r#"version: 1
name: t
fields:
  - { target: price, source: $.price, type: string, transform: [{ to_decimal: { scale: 3 } }] }
  - { target: rounded, expr: 'round(decimal("0.00"), 3)' }
  - { target: negative, expr: 'round(decimal("-0.0"), 2, "floor")' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"price": "0.00"}"#);
    let expected = serde_json::json!({"price": "0.000", "rounded": "0.000", "negative": "0.00"});
    assert_eq!(out.ok_value(), Some(expected), "{:?}", out.errors());
}

/// `+` joins lists however they were made: a list literal, a list computed into a field, an
/// array of the record.
#[test]
fn lists_read_from_fields_join() {
    let spec = r#"version: 1
name: t
fields:
  - { target: tags, source: $.tags, type: array }
  - { target: counts, expr: '[1, 2]' }
  - { target: twice, expr: 'counts + counts' }
  - { target: more, expr: 'tags + ["x"]' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"tags": ["a", "b"]}"#);
    let expected = serde_json::json!({
        "tags": ["a", "b"], "counts": [1, 2], "twice": [1, 2, 1, 2], "more": ["a", "b", "x"],
    });
    assert_eq!(out.ok_value(), Some(expected), "{:?}", out.errors());
}

/// A zero has no sign, whatever its places: negating one gives it back, as `-0` is the integer 0.
#[test]
fn a_negated_decimal_zero_is_zero() {
    let spec = r#"version: 1
name: t
fields:
  - { target: m, source: $.m, type: string }
  - { target: negated, expr: '-(decimal(m))' }
  - { target: text, expr: 'string(-decimal(m))' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"m": "0.00"}"#);
    assert_eq!(out.ok_value(), Some(serde_json::json!({"m": "0.00", "negated": "0.00", "text": "0.00"})));
    let out = plan.apply(br#"{"m": "-1.50"}"#);
    assert_eq!(out.ok_value(), Some(serde_json::json!({"m": "-1.50", "negated": "1.50", "text": "1.50"})));
}
