//! Byte classes: where the next quote, backslash, control or non-ASCII byte is (SSE2, SWAR).

/// The index of the first quote, backslash, control or non-ASCII byte of `chunk`; 16 for none.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)] // SSE2 intrinsics; see the SAFETY comment
pub(super) fn first_special_of_16(chunk: &[u8; 16]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is in the x86_64 baseline, so these intrinsics are always available; the one
    // load is unaligned (`loadu`) and reads the 16 bytes of `chunk`.
    let mask = unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let special = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)), _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8))),
            _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v),
        );
        (_mm_movemask_epi8(special) | _mm_movemask_epi8(v)) as u32
    };
    (mask | 1 << 16).trailing_zeros() as usize
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn first_special_of_16(chunk: &[u8; 16]) -> usize {
    swar_first_special_of_16(chunk)
}

/// The portable version: two words, each read as `swar_special_byte_offset` reads one.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))] // x86_64 uses it in tests only
#[inline(always)]
pub(super) fn swar_first_special_of_16(chunk: &[u8; 16]) -> usize {
    let low = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
    let high = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
    let stops = u128::from(swar_special_bits(low)) | (u128::from(swar_special_bits(high)) << 64);
    ((stops.trailing_zeros() / 8) as usize).min(16)
}

/// The offset of the first `"`, `\\`, control character or non-ASCII byte in `bytes`
/// (`bytes.len()` if none): where a string scan must look closer (its end, an escape, an error, or
/// a character to check as UTF-8). String bytes are the bulk of a record, so this loop is most of
/// the scan: sixteen bytes at a time with SSE2 (part of every x86_64 CPU), then eight at a time
/// (SWAR) for the last bytes.
#[inline]
pub(crate) fn special_byte_offset(bytes: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    match sse2_blocks(bytes) {
        Ok(found) => found,
        Err(tail) => tail + swar_special_byte_offset(&bytes[tail..]),
    }
    #[cfg(not(target_arch = "x86_64"))]
    swar_special_byte_offset(bytes)
}

/// The position of the first quote, backslash, control or non-ASCII byte at or after `pos` (the
/// end of `bytes` if none): sixteen bytes at a time while there are that many (most strings end in
/// the first read), the rest by [`special_byte_offset`].
#[inline(always)]
pub(crate) fn next_special_byte(bytes: &[u8], mut pos: usize) -> usize {
    loop {
        match bytes.get(pos..pos + 16) {
            Some(chunk) => {
                let found = first_special_of_16(chunk.try_into().expect("16 bytes"));
                pos += found;
                if found < 16 {
                    return pos;
                }
            }
            None => return pos + special_byte_offset(&bytes[pos..]),
        }
    }
}

/// Scans whole 16-byte blocks: `Ok(offset)` of the first special byte, or `Err(start)` of the
/// bytes left after the last whole block.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn sse2_blocks(bytes: &[u8]) -> Result<usize, usize> {
    let mut blocks = bytes.chunks_exact(16);
    for (i, block) in blocks.by_ref().enumerate() {
        let found = first_special_of_16(block.try_into().expect("16 bytes"));
        if found < 16 {
            return Ok(i * 16 + found);
        }
    }
    Err(bytes.len() - blocks.remainder().len())
}

/// The high bit of each quote, backslash, control or non-ASCII byte of `word` (eight bytes,
/// little-endian). Exact for the lowest such byte, which is all its readers look at: a borrow can
/// mark a byte above it.
#[inline(always)]
pub(super) fn swar_special_bits(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of a byte is set where the byte was zero.
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
        | (word & HIGH)
}

/// The portable version: eight bytes at a time in a `u64`.
#[inline]
pub(crate) fn swar_special_byte_offset(bytes: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(chunk) = bytes.get(pos..pos + 8) {
        let stop = swar_special_bits(u64::from_le_bytes(chunk.try_into().expect("an 8-byte slice")));
        if stop != 0 {
            return pos + (stop.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = bytes.get(pos) {
        if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
            return pos;
        }
        pos += 1;
    }
    pos
}
