//! The mapping loader and compiler on arbitrary text: never panics; a refused mapping always says
//! why, with a position inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lambda_stream_engine::plan::load_str;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(diagnostics) = load_str(text) {
        assert!(!diagnostics.is_empty(), "a refusal lists its problems");
        // YAML breaks lines at `\n`, `\r\n` and a lone `\r` (so does the position it reports).
        let breaks = text.replace("\r\n", "\n").bytes().filter(|b| *b == b'\n' || *b == b'\r').count();
        let lines = (breaks + 2) as u32;
        for d in &diagnostics {
            assert!(d.pos.line >= 1 && d.pos.line <= lines, "{d:?} is outside the text ({lines} lines)");
        }
    }
});
