//! Where an object or array ends, found without checking what is inside it.
//!
//! A replay takes the record embedded in a fail envelope as its text and maps it: the mapping's
//! scan checks every byte of it then. Reading the envelope only has to find where the record
//! ends, and checking it there too would read every byte twice. Strings are followed (a bracket
//! inside one is text), escapes too, and brackets counted; nothing else is looked at. Envelopes
//! that give the record's length (`value_length`) are not delimited at all: this is for those
//! that do not.
//!
//! The rules, the same for both versions below: a backslash takes the byte after it out of play,
//! inside a string or not; an unescaped `"` opens or closes a string; outside strings `{` and `[`
//! go one level down and `}` and `]` one level up (either closes either: telling them apart is
//! the checker's job). For JSON this finds exactly the end of the value; for anything else it
//! finds some end, or none.

/// The offset just past the bracket that closes the one at `bytes[start]` (a `{` or `[`), or
/// `None` when the text ends first.
pub fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    debug_assert!(matches!(bytes.get(start), Some(b'{' | b'[')));
    #[cfg(target_arch = "x86_64")]
    {
        let mut state = State::default();
        let mut pos = start;
        while pos + 64 <= bytes.len() {
            let block: &[u8; 64] = bytes[pos..pos + 64].try_into().expect("64 bytes");
            if let Some(end) = state.block(block) {
                return Some(pos + end);
            }
            pos += 64;
        }
        state.bytes(bytes, pos)
    }
    #[cfg(not(target_arch = "x86_64"))]
    State::default().bytes(bytes, start)
}

/// Where the reading stands between blocks.
#[derive(Default)]
struct State {
    depth: u64,
    in_string: bool,
    /// The next byte is escaped (the last one was a backslash that was not itself escaped).
    escape_next: bool,
}

impl State {
    /// The byte-by-byte version: the tail after the last whole block, and other targets.
    fn bytes(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        for (at, &b) in bytes.iter().enumerate().skip(from) {
            if self.escape_next {
                self.escape_next = false;
                continue;
            }
            match b {
                b'\\' => self.escape_next = true,
                b'"' => self.in_string = !self.in_string,
                _ if self.in_string => {}
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// 64 bytes at once (SSE2, in every x86_64 CPU): bit masks of the quotes, backslashes and
    /// brackets; the escaped bytes from the runs of backslashes, the strings from the quotes
    /// (each bit the parity of the quotes before it), the levels from the brackets outside them.
    /// The offset past the closing bracket when it is in this block.
    #[cfg(target_arch = "x86_64")]
    fn block(&mut self, block: &[u8; 64]) -> Option<usize> {
        let [quote, backslash, open, close] = masks(block);
        let escaped = self.escaped(backslash);
        let quote = quote & !escaped;
        let in_string = prefix_xor(quote) ^ if self.in_string { u64::MAX } else { 0 };
        self.in_string = in_string >> 63 == 1;
        let open = open & !in_string & !escaped;
        // Bracket by bracket: a block holds few, and counting bits takes a long sequence where
        // the CPU baseline has no `popcnt`.
        let mut brackets = open | (close & !in_string & !escaped);
        while brackets != 0 {
            let at = brackets.trailing_zeros();
            brackets &= brackets - 1;
            if open >> at & 1 == 1 {
                self.depth += 1;
            } else {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return Some(at as usize + 1);
                }
            }
        }
        None
    }

    /// The bytes of the block escaped by a backslash (simdjson's method): in each run of
    /// backslashes, every other one escapes the byte after it, counting from the run's start.
    #[cfg(target_arch = "x86_64")]
    fn escaped(&mut self, backslash: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        if backslash == 0 && !self.escape_next {
            return 0;
        }
        let carried = u64::from(self.escape_next);
        // A backslash escaped by the last block's is not the start of an escape.
        let backslash = backslash & !carried;
        let follows_escape = backslash << 1 | carried;
        let odd_starts = backslash & !EVEN & !follows_escape;
        let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
        self.escape_next = overflow;
        (EVEN ^ even_starts << 1) & follows_escape
    }
}

/// Bit `i` of each mask: whether byte `i` is a `"`, a `\`, a `{` or `[`, a `}` or `]`.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // SSE2 intrinsics; see the SAFETY comment
fn masks(block: &[u8; 64]) -> [u64; 4] {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let mut masks = [0u64; 4];
    for lane in 0..4 {
        // SAFETY: SSE2 is in the x86_64 baseline, so these intrinsics are always available; the
        // unaligned load reads `block[16 * lane..16 * lane + 16]`, inside the 64-byte array.
        let bits = unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * lane).cast::<__m128i>());
            let eq = |b: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8));
            [
                _mm_movemask_epi8(eq(b'"')),
                _mm_movemask_epi8(eq(b'\\')),
                _mm_movemask_epi8(_mm_or_si128(eq(b'{'), eq(b'['))),
                _mm_movemask_epi8(_mm_or_si128(eq(b'}'), eq(b']'))),
            ]
        };
        for (mask, bits) in masks.iter_mut().zip(bits) {
            *mask |= u64::from(bits as u16) << (16 * lane);
        }
    }
    masks
}

/// Bit `i` = the parity of the set bits at or below `i`: inside a string, given its quotes.
#[cfg(target_arch = "x86_64")]
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(bytes: &[u8], start: usize) -> Option<usize> {
        State::default().bytes(bytes, start)
    }

    #[test]
    fn json_values_end_where_serde_json_ends_them() {
        let values = [
            r#"{}"#.to_string(),
            r#"[1, 2, {"a": "}"}]"#.into(),
            r#"{"a": "x\"}", "b": ["\\", "\\\"]"], "c": {"d": [[]]}}"#.into(),
            format!(r#"{{"long": "{}", "n": [{}]}}"#, "é}]\\\\".repeat(40), "1,".repeat(100) + "2"),
            format!(r#"{{"k": "{}\"{}"}}"#, "\\".repeat(64), "x".repeat(63)),
        ];
        for value in values {
            serde_json::from_str::<serde_json::Value>(&value).expect("the case is JSON");
            for (before, after) in [("", ""), ("  ", " , \"rest\": 1}"), ("{\"v\":", "}")] {
                let text = format!("{before}{value}{after}");
                let start = before.len();
                let end = start + value.len();
                assert_eq!(balanced_end(text.as_bytes(), start), Some(end), "{text}");
                assert_eq!(scalar(text.as_bytes(), start), Some(end), "{text}");
            }
        }
    }

    #[test]
    fn the_block_and_byte_versions_agree_on_any_text() {
        // Texts of the bytes that matter (and others), of every length around the block size,
        // from a small deterministic generator.
        let alphabet = b"{}[]\"\\a:,1 \xc3\xa9";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..20_000 {
            let len = (next() % 300) as usize + 1;
            let mut text: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            // Most cases open a value at the start; some deep ones stay open across blocks.
            text[0] = if case % 2 == 0 { b'{' } else { b'[' };
            assert_eq!(balanced_end(&text, 0), scalar(&text, 0), "{}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn unterminated_values_have_no_end() {
        for text in [r#"{"a": 1"#, r#"{"a": "}"#, r#"[[]"#, r#"{"a": "\"}"#] {
            assert_eq!(balanced_end(text.as_bytes(), 0), None, "{text}");
            let padded = format!("{text}{}", " ".repeat(130));
            assert_eq!(balanced_end(padded.as_bytes(), 0), None, "{text} padded");
        }
    }
}
