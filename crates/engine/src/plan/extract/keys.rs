//! Object keys as two machine words: the key tables' entries, hashes and comparisons.

use super::bytes::first_special_of_16;

/// One entry of a node's key index: the key's length and [`key_words`], so a probe compares keys
/// of up to 16 bytes (most field names) without following a pointer to the key's text.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyEntry {
    pub(super) words: (u64, u64),
    pub(super) len: u32,
    /// Index into `keys`.
    pub(super) index: u32,
}

impl KeyEntry {
    pub(super) const EMPTY: KeyEntry = KeyEntry { words: (0, 0), len: u32::MAX, index: 0 };
}

/// Two words that, with the key's length, determine a key of up to 16 bytes: its bytes zero-padded
/// to 16 (longer keys: their first and last 8 bytes).
pub(super) fn key_words(key: &[u8]) -> (u64, u64) {
    let n = key.len();
    if n > 16 {
        let word = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().expect("8 bytes"));
        return (word(0), word(n - 8));
    }
    let mut padded = [0u8; 16];
    padded[..n].copy_from_slice(key);
    (
        u64::from_le_bytes(padded[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(padded[8..].try_into().expect("8 bytes")),
    )
}

/// Masks that keep the first `n` bytes (0 to 16) of two little-endian words.
pub(super) const KEY_MASKS: [(u64, u64); 17] = {
    let mut masks = [(0, 0); 17];
    let mut n = 0;
    while n <= 16 {
        let low = if n >= 8 { u64::MAX } else { (1 << (8 * n)) - 1 };
        let high = if n >= 16 {
            u64::MAX
        } else if n <= 8 {
            0
        } else {
            (1 << (8 * (n - 8))) - 1
        };
        masks[n] = (low, high);
        n += 1;
    }
    masks
};

/// [`key_words`] of the key `bytes[start..start + len]`, read from the record without a branch on
/// its length when 16 bytes are there to read: key lengths vary from one key to the next, and a
/// branch on them mispredicts.
#[inline(always)]
pub(super) fn key_words_at(bytes: &[u8], start: usize, len: usize) -> (u64, u64) {
    match bytes.get(start..start + 16) {
        Some(chunk) if len <= 16 => {
            let (low, high) = KEY_MASKS[len];
            (
                u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")) & low,
                u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes")) & high,
            )
        }
        _ => key_words(&bytes[start..start + len]),
    }
}

/// A key of at most 15 plain bytes (ASCII, no escape) that closes within the 16 bytes read at
/// `start`: its length and [`key_words`], from one read of those bytes — its end is found in the
/// same 16 bytes the key is then compared by, without a loop. Most keys are like that; `None`
/// sends the others (and a key near the record's end) the long way.
#[inline(always)]
pub(super) fn short_key(bytes: &[u8], start: usize) -> Option<(usize, (u64, u64))> {
    let chunk: &[u8; 16] = bytes.get(start..start.checked_add(16)?)?.try_into().expect("16 bytes");
    let len = first_special_of_16(chunk);
    if len >= 16 || chunk[len] != b'"' {
        return None;
    }
    let (keep_low, keep_high) = KEY_MASKS[len];
    let low = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
    let high = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
    Some((len, (low & keep_low, high & keep_high)))
}

#[inline(always)]
pub(super) fn key_hash(words: (u64, u64), len: usize, seed: u64) -> u64 {
    (words.0 ^ words.1.rotate_left(29) ^ len as u64).wrapping_mul(seed)
}

/// `a == b` for short byte strings (object keys), without a call to `memcmp`: keys are a few bytes
/// long, and the call and its length dispatch cost more than comparing two overlapping words.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        // Two words that may overlap cover every byte.
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}
