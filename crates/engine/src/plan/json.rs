//! JSON values as the engine sees them: their kind in messages, equality and number comparison
//! that treat `1` and `1.0` alike and compare 64-bit integers exactly, and tables of codes to
//! values. A leaf: it uses nothing else of the crate.

use std::collections::HashMap;

use serde_json::{Number, Value};

/// Codes to values: a `map` transform's `values:`, a `lookups:` table. Its keys come from the
/// mapping and it is read once per record, so it hashes with foldhash: std's SipHash, made for
/// keys an attacker picks, cost more than the rest of the lookup.
pub type CodeTable = HashMap<String, Value, foldhash::fast::RandomState>;

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

/// Compares exactly when both are integers, as floats otherwise.
pub fn compare(a: &Number, b: &Number) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let (x, y) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
    x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
}

/// JSON equality where `1` equals `1.0`.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y).is_eq(),
        _ => a == b,
    }
}
