//! How much of a file the program reads at most: a mapping, a lookup table, a record or event, a
//! sample set. A file over its limit (or one that never ends, like `/dev/zero`) is refused with the
//! limit named, after reading at most one byte past it, instead of filling memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// A mapping file (its YAML text). Mappings of thousands of fields are well under 1 MiB.
pub const MAX_MAPPING_BYTES: u64 = 16 << 20;

/// A lookup file (`lookups: {name: {file: …}}`), read once when the mapping is compiled (in the
/// function, at its cold start): a table of codes, held in memory with the plan.
pub const MAX_LOOKUP_BYTES: u64 = 64 << 20;

/// One record or event read whole: a line of `process --input`, the record `explain` reads, a saved
/// Lambda event (`process --event`, `diff-mapping --event`). Lambda's own payload limit is 6 MB.
pub const MAX_RECORD_BYTES: u64 = 64 << 20;

/// A file of sample records read whole (`init --from`, `diff-mapping --input`).
pub const MAX_SAMPLES_BYTES: u64 = 256 << 20;

/// `bytes` as a person reads a limit: `16 MiB`, `512 KiB`, `100 bytes`.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The error of a read that went past `max` (the caller names the file): `what` is what the file
/// holds, as in "larger than 16 MiB, the most a mapping may be".
pub fn too_large(max: u64, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("larger than {}, the most {what} may be", size_text(max)))
}

/// The file's bytes, if there are at most `max` of them. A regular file's size is checked before
/// anything is read; anything else (a pipe, a device) is read up to one byte past the limit.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    match file.metadata() {
        Ok(meta) if meta.is_file() => {
            if meta.len() > max {
                return Err(too_large(max, what));
            }
            // The size is known: one buffer of that size (the file may still grow meanwhile).
            let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0).saturating_add(1));
            file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > max {
                return Err(too_large(max, what));
            }
            Ok(bytes)
        }
        _ => read_to_limit(file, max, what),
    }
}

/// [`read_bounded`] for text: UTF-8, as `std::fs::read_to_string` requires.
pub fn read_text_bounded(path: &Path, max: u64, what: &str) -> io::Result<String> {
    String::from_utf8(read_bounded(path, max, what)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// Everything `reader` gives, if it is at most `max` bytes. Its size unknown, it is read in chunks
/// joined once at the end, so memory holds what was read rather than a doubling buffer's copies.
pub fn read_to_limit(reader: impl Read, max: u64, what: &str) -> io::Result<Vec<u8>> {
    const CHUNK: u64 = 1 << 20;
    let mut reader = reader.take(max.saturating_add(1));
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0u64;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK as usize);
        let n = (&mut reader).take(CHUNK).read_to_end(&mut chunk)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max {
            return Err(too_large(max, what));
        }
        chunks.push(chunk);
    }
    Ok(if chunks.len() == 1 { chunks.pop().unwrap_or_default() } else { chunks.concat() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_one_byte_past_the_limit() {
        assert_eq!(read_to_limit(&b"abc"[..], 3, "a test").unwrap(), b"abc");
        let e = read_to_limit(io::repeat(0), 16 << 20, "a mapping").unwrap_err();
        assert_eq!(e.to_string(), "larger than 16 MiB, the most a mapping may be");
        let e = read_bounded(Path::new("/dev/zero"), 1000, "a test").unwrap_err();
        assert_eq!(e.to_string(), "larger than 1000 bytes, the most a test may be");
        assert_eq!(size_text(64 << 10), "64 KiB");
    }
}
