//! Expressions evaluated on record values an attacker chooses: widths, counts, offsets, texts and
//! arrays that size what the expressions build (pads, concatenations doubled field after field,
//! replacements, joins, splits, nested macros), conversions of a sensitive field, and arithmetic
//! at the edges of 64-bit integers. Checks: no panic and no abort (every size is bounded, every
//! record has a step budget); no record fails with stage `internal`; a sensitive value never
//! appears in a message; whatever maps is JSON.
#![no_main]

use std::sync::LazyLock;

use lambda_stream_engine::plan::{Outcome, Plan, Stage, load_str};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const MAPPING: &str = r##"version: 1
name: expr-fuzz
limits: { steps: 200000 }
fields:
  - { target: s, source: $.s, type: string }
  - { target: t, source: $.t, type: string }
  - { target: w, source: $.w, type: integer }
  - { target: i, source: $.i, type: integer }
  - { target: j, source: $.j, type: integer }
  - { target: xs, source: $.xs, type: array }
  - { target: card, source: $.card, type: string, sensitive: true }
  - { target: pad_l, expr: 'pad_left(s, w, "0")' }
  - { target: pad_r, expr: 'pad_right(t, w, "😀")' }
  - { target: sub, expr: 'substring(s, i, j)' }
  - { target: d1, expr: 's + t' }
  - { target: d2, expr: 'd1 + d1' }
  - { target: d3, expr: 'd2 + d2' }
  - { target: d4, expr: 'd3 + d3' }
  - { target: d5, expr: 'd4 + d4' }
  - { target: d6, expr: 'd5 + d5' }
  - { target: d7, expr: 'd6 + d6' }
  - { target: d8, expr: 'd7 + d7' }
  - { target: replaced, expr: 'd4.replace(t, d3)' }
  - { target: parts, expr: 'split(d5, t).size()' }
  - { target: joined, expr: 'split(s, "").join(d2)' }
  - { target: upper, expr: 'upper(d6)' }
  - { target: masked, expr: 'mask(d3, i, j, "#")' }
  - { target: pairs, expr: 'xs.all(a, xs.filter(b, b == a).size() >= 1)' }
  - { target: mapped, expr: 'xs.map(a, string(a) + s).size()' }
  - { target: total, expr: 'sum(xs.map(a, i * j))' }
  - { target: scaled, expr: 'w * i - j' }
  - { target: quotient, expr: 'i / j' }
  - { target: rounded, expr: 'round(decimal(w) / 7, 3)' }
  - { target: card_int, expr: 'int(card)' }
  - { target: card_dec, expr: 'decimal(card)' }
  - { target: card_dbl, expr: 'double(card)' }
  - { target: card_time, expr: 'timestamp(card)' }
  - { target: card_sub, expr: 'int(substring(card, i, j))' }
  - { target: card_pad, expr: 'int(pad_left(card, w, "9"))' }
rules:
  - { name: card_number, check: 'int(card) > 0' }
  - { name: card_sized, when: 'double(card) > 0.0', check: 'card.size() > i' }
"##;

static PLAN: LazyLock<Plan> = LazyLock::new(|| load_str(MAPPING).expect("the fuzz mapping compiles").1);

/// A record from arbitrary bytes: JSON objects as they are, anything else taken apart into the
/// mapping's inputs, so most runs reach the expressions.
fn record(data: &[u8]) -> Vec<u8> {
    if let Ok(Value::Object(_)) = serde_json::from_slice::<Value>(data) {
        return data.to_vec();
    }
    let int = |at: usize| {
        let mut bytes = [0u8; 8];
        for (k, b) in bytes.iter_mut().enumerate() {
            *b = data.get(at + k).copied().unwrap_or(0);
        }
        i64::from_le_bytes(bytes)
    };
    let rest = data.get(24..).unwrap_or_default();
    let (s, t) = rest.split_at(rest.len() / 2);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let xs: Vec<i64> = rest.iter().map(|&b| i64::from(b)).collect();
    serde_json::to_vec(&json!({
        "s": text(s), "t": text(t), "w": int(0) % 100_000_000, "i": int(8), "j": int(16), "xs": xs,
        "card": format!("x{}", text(s)),
    }))
    .expect("a JSON value serialises")
}

fuzz_target!(|data: &[u8]| {
    let value = record(data);
    let card = serde_json::from_slice::<Value>(&value)
        .ok()
        .and_then(|v| v.get("card").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    match PLAN.apply(&value) {
        Outcome::Mapped(m) => {
            let out: Value = serde_json::from_slice(&m.value).expect("mapped output is JSON");
            assert!(out.is_object());
        }
        Outcome::Failed(f) => {
            assert_ne!(f.stage, Stage::Internal, "the engine panicked: {:?}", f.errors);
            // Short values are found inside ordinary words; a card worth hiding is longer.
            if card.chars().count() >= 8 {
                for e in &f.errors {
                    assert!(!e.message.contains(&card), "{}:{} echoes the card: {}", e.field_rule(), e.rule, e.message);
                }
            }
        }
        Outcome::Dropped => {}
    }
});
