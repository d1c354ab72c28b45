//! Property tests: applying a plan never panics, whatever the input, and its outcome is coherent.

use lambda_stream::mapping_file;
use lambda_stream::plan::{self, Outcome, Plan};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::OnceLock;

fn shipped_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        mapping_file::load_file(&crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap().1
    })
}

fn payments_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        mapping_file::load_file(&crate::util::root().join("mappings/payments-to-ledger.yaml")).unwrap().1
    })
}

/// Every expression the mapping reference and the payments mapping use, as material for mutation.
const EXPRESSION_PIECES: &[&str] = &[
    "amount_cents",
    "a",
    "b",
    "items",
    "i",
    "$.x",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "+",
    "-",
    "*",
    "/",
    "%",
    "==",
    "<=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    "in",
    "has(",
    "size(",
    "sum(",
    "map(",
    "round(",
    "decimal(",
    "\"x\"",
    "'y'",
    "1",
    "2.5",
    "null",
    "true",
    "9223372036854775807",
    "-9223372036854775808",
    " ",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![Just("PAID"), Just("529.982.247-25"), Just("2026-11-01T10:00:00Z"), Just(" sp "), Just("G")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("order".to_string()),
                    Just("customer".to_string()),
                    Just("id".to_string()),
                    Just("status".to_string()),
                    Just("items".to_string()),
                    Just("sku".to_string()),
                    Just("address".to_string()),
                    Just("shipping".to_string()),
                    Just("payment".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check_coherent(outcome: &Outcome) {
    match outcome {
        Outcome::Mapped(m) => {
            let v: Value = serde_json::from_slice(&m.value).expect("ok output is valid JSON");
            assert!(v.is_object());
        }
        Outcome::Failed(f) => assert!(!f.errors.is_empty(), "a failure always explains itself"),
        Outcome::Dropped => panic!("these mappings have no `drop:`"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn apply_never_panics_on_arbitrary_json(value in arb_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        check_coherent(&shipped_plan().apply(&bytes));
    }

    #[test]
    fn apply_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_coherent(&shipped_plan().apply(&bytes));
    }

    #[test]
    fn the_payments_mapping_never_panics_on_arbitrary_json(value in arb_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let outcome = payments_plan().apply(&bytes);
        if let Outcome::Failed(f) = &outcome {
            prop_assert!(!f.errors.is_empty());
        }
    }

    #[test]
    fn expressions_of_any_shape_compile_or_are_refused_without_panicking(
        pieces in prop::collection::vec(prop::sample::select(EXPRESSION_PIECES), 0..24),
        a in arb_json(),
        b in arb_json(),
    ) {
        let text = pieces.concat();
        let spec = format!(
            "version: 1\nname: p\nfields:\n  - {{target: a, source: $.a, type: any}}\n  - {{target: b, source: $.b, type: any}}\n  - target: c\n    expr: '{}'\n",
            text.replace('\'', "''")
        );
        match plan::load_str(&spec) {
            Err(diagnostics) => prop_assert!(diagnostics.iter().all(|d| d.pos.line >= 1 && d.pos.col >= 1)),
            // Whatever compiles runs on any record without panicking.
            Ok((_, p)) => {
                let bytes = serde_json::to_vec(&serde_json::json!({"a": a, "b": b})).unwrap();
                let _ = p.apply(&bytes);
            }
        }
    }

    #[test]
    fn apply_is_deterministic(value in arb_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        prop_assert_eq!(shipped_plan().apply(&bytes), shipped_plan().apply(&bytes));
    }

    #[test]
    fn huge_numbers_in_any_field_never_panic(digits in "[1-9][0-9]{18,400}", exp in 300i32..400) {
        for text in [format!("{{\"payment\":{{\"amount_cents\":{digits}}}}}"), format!("{{\"shipping\":{{\"weight_kg\":1e{exp}}}}}"), format!("{{\"customer\":{{\"loyalty_points\":\"{digits}\"}}}}")] {
            check_coherent(&shipped_plan().apply(text.as_bytes()));
        }
    }
}

#[test]
fn deep_nesting_is_refused_cleanly() {
    for depth in [10usize, 127, 128, 129, 1_000, 100_000] {
        for (open, close) in [("[", "]"), ("{\"order\":", "}")] {
            let text = format!("{{\"order\":{}1{}}}", open.repeat(depth), close.repeat(depth));
            check_coherent(&shipped_plan().apply(text.as_bytes()));
        }
    }
}

#[test]
fn deep_nesting_under_unmapped_keys_is_also_safe() {
    let text = format!("{{\"junk\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    check_coherent(&shipped_plan().apply(text.as_bytes()));
}

/// A plan that reads keys random documents rarely contain, so acceptance depends on JSON
/// validity alone (duplicate keys of mapped objects are the one deliberate difference).
fn validity_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = "version: 1\nname: v\nfields:\n  - {target: a, source: '$.zz.q', type: any}\n  - {target: b, source: '$.yy[*].w', type: array}\n";
        plan::load_str(spec).unwrap().1
    })
}

/// JSON-ish text: valid documents, then mangled by cutting, inserting or replacing bytes.
fn arb_jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just("{".as_bytes().to_vec()),
        Just("}".as_bytes().to_vec()),
        Just("[".as_bytes().to_vec()),
        Just("]".as_bytes().to_vec()),
        Just(",".as_bytes().to_vec()),
        Just(":".as_bytes().to_vec()),
        Just("\"k\"".as_bytes().to_vec()),
        Just("\"zz\"".as_bytes().to_vec()),
        Just("\"yy\"".as_bytes().to_vec()),
        Just("\"w\"".as_bytes().to_vec()),
        Just("1".as_bytes().to_vec()),
        Just("-0.5e3".as_bytes().to_vec()),
        Just("true".as_bytes().to_vec()),
        Just("null".as_bytes().to_vec()),
        Just(" ".as_bytes().to_vec()),
        Just("\"a\\\"b\"".as_bytes().to_vec()),
        Just("\"\\u00e9\"".as_bytes().to_vec()),
        Just("01".as_bytes().to_vec()),
        Just("1.".as_bytes().to_vec()),
        Just("\"\t\"".as_bytes().to_vec()),
        // UTF-8, valid and not: inside strings, and where no string is.
        Just("\"é😀\"".as_bytes().to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(b"\"\xff\"".to_vec()),
        Just(b"\"\xc3\"".to_vec()),
        Just(b"\"\xed\xa0\x80\"".to_vec()),
        Just(b"\"\xc0\xaf\"".to_vec()),
        Just(b"\"\xf4\x90\x80\x80\"".to_vec()),
        Just(b"\xe2\x82".to_vec()),
    ];
    let mangled = prop::collection::vec(token, 0..24).prop_map(|t| t.concat());
    let valid = arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap());
    let cut = (arb_json(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
        let bytes = serde_json::to_vec(&v).unwrap();
        let at = i.index(bytes.len() + 1);
        bytes[..at].to_vec()
    });
    prop_oneof![mangled, valid, cut]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_scanner_accepts_exactly_what_serde_json_accepts(bytes in arb_jsonish()) {
        let serde_ok = serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v.is_object());
        let outcome = validity_plan().apply(&bytes);
        let decode_failed = matches!(&outcome, Outcome::Failed(f) if f.stage == plan::Stage::Decode);
        if decode_failed && serde_ok {
            // The one deliberate difference: a repeated key in an object the mapping reads.
            let message = &outcome.errors()[0].message;
            prop_assert!(message.contains("duplicate key"), "{} refused: {message}", String::from_utf8_lossy(&bytes));
        } else {
            prop_assert_eq!(!decode_failed, serde_ok, "{}: {:?}", String::from_utf8_lossy(&bytes), outcome);
        }
    }
}
