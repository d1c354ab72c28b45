//! `Plan::apply` (the hand-written scanner and every field step) on arbitrary bytes, with the
//! shipped mapping: never panics; whatever it maps is valid JSON, and it refuses as `json` exactly
//! the values serde_json cannot read as an object (duplicate keys aside, which serde_json allows).
#![no_main]

use std::sync::LazyLock;

use lambda_stream_engine::plan::{Outcome, Plan, load_str};
use libfuzzer_sys::fuzz_target;

static PLAN: LazyLock<Plan> = LazyLock::new(|| {
    load_str(include_str!("../../../../mappings/orders-to-billing.yaml")).expect("the shipped mapping compiles").1
});

fuzz_target!(|data: &[u8]| {
    let outcome = PLAN.apply(data);
    let serde_object = matches!(serde_json::from_slice::<serde_json::Value>(data), Ok(serde_json::Value::Object(_)));
    match outcome {
        Outcome::Mapped(m) => {
            let out: serde_json::Value = serde_json::from_slice(&m.value).expect("mapped output is JSON");
            assert!(out.is_object());
            assert!(serde_object, "mapped a value serde_json refuses");
        }
        Outcome::Failed(f) => {
            let json_refusal = f.errors.iter().any(|e| e.rule == "json");
            let duplicate = f.errors.iter().any(|e| e.message.contains("duplicate key"));
            let too_deep = f.errors.iter().any(|e| e.message.contains("deeper than"));
            if json_refusal && !duplicate && !too_deep {
                assert!(!serde_object, "refused as JSON a value serde_json reads: {:?}", f.errors);
            }
        }
        Outcome::Dropped => assert!(serde_object, "dropped a value serde_json refuses"),
    }
});
