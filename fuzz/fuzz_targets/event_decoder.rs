//! The Lambda event decoder on arbitrary bytes: never panics; a decoded event accounts for every
//! record it holds (each one an input, decodable or not).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lambda_stream::record::decode_event;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = decode_event(data) else { return };
    let value: serde_json::Value = serde_json::from_slice(data).expect("a decoded event is JSON");
    let records: usize = value["records"].as_object().map_or(0, |groups| {
        groups.values().map(|g| g.as_array().map_or(0, Vec::len)).sum()
    });
    assert_eq!(event.inputs.len(), records, "one input per record");
});
