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
