//! The registries' wire framings: which schema a record was written with, and where its body
//! starts.
//!
//! - Confluent: byte 0 is `0`, bytes 1–4 the schema id (big-endian), then the body. For Protobuf
//!   the body starts with the message indexes (zig-zag varints: a count, then the path; a lone
//!   `0` means the first message).
//! - AWS Glue Schema Registry: byte 0 is `3` (the header version), byte 1 the compression (`0`
//!   none, `5` zlib), bytes 2–17 the schema version's UUID, then the body (zlib-compressed when
//!   byte 1 says so).

use std::borrow::Cow;
use std::fmt;
use std::io::Read as _;

/// Which schema a record names: a Confluent id or a Glue schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SchemaId {
    Confluent(u32),
    Glue([u8; 16]),
}

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaId::Confluent(id) => write!(f, "{id}"),
            SchemaId::Glue(uuid) => {
                let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
                write!(f, "{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
            }
        }
    }
}

impl SchemaId {
    /// An id as Lambda's schema metadata writes it: a Confluent id in decimal, a Glue version as
    /// its UUID text.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(id) = text.parse::<u32>() {
            return Some(SchemaId::Confluent(id));
        }
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || text.len() != 36 {
            return None;
        }
        let mut uuid = [0u8; 16];
        for (i, byte) in uuid.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(SchemaId::Glue(uuid))
    }

    /// The registry kind, for messages and the fail envelope.
    pub fn registry(&self) -> &'static str {
        match self {
            SchemaId::Confluent(_) => "confluent",
            SchemaId::Glue(_) => "glue",
        }
    }
}

/// A record's framing taken off: its schema and its body.
#[derive(Debug, PartialEq, Eq)]
pub struct Framed<'a> {
    pub schema: SchemaId,
    pub body: Cow<'a, [u8]>,
}

/// Why a value is not framed as a registry frames it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the value is empty: a framed record has at least a 5-byte header")]
    Empty,
    #[error(
        "the value starts with byte {0:#04x}, which is neither Confluent's framing (0) nor AWS Glue's (3): \
         was it written without a schema registry?"
    )]
    UnknownMagic(u8),
    #[error("the value is {len} bytes, shorter than the {framing} header of {header} bytes")]
    Short { framing: &'static str, len: usize, header: usize },
    #[error("AWS Glue framing with compression byte {0}; only 0 (none) and 5 (zlib) exist")]
    GlueCompression(u8),
    #[error("AWS Glue framing says zlib, but the body does not inflate: {0}")]
    Inflate(String),
    #[error("the body inflates to more than {0} bytes")]
    TooLarge(usize),
}

/// Glue bodies inflate to at most this: more is a compression bomb, not a Kafka record.
pub const MAX_INFLATED: usize = 16 << 20;

/// Takes the framing off a record value.
pub fn unframe(value: &[u8]) -> Result<Framed<'_>, WireError> {
    match value.first() {
        None => Err(WireError::Empty),
        Some(0) => {
            if value.len() < 5 {
                return Err(WireError::Short { framing: "Confluent", len: value.len(), header: 5 });
            }
            let id = u32::from_be_bytes(value[1..5].try_into().expect("4 bytes"));
            Ok(Framed { schema: SchemaId::Confluent(id), body: Cow::Borrowed(&value[5..]) })
        }
        Some(3) => {
            if value.len() < 18 {
                return Err(WireError::Short { framing: "AWS Glue", len: value.len(), header: 18 });
            }
            let uuid: [u8; 16] = value[2..18].try_into().expect("16 bytes");
            let body = match value[1] {
                0 => Cow::Borrowed(&value[18..]),
                5 => Cow::Owned(inflate(&value[18..])?),
                other => return Err(WireError::GlueCompression(other)),
            };
            Ok(Framed { schema: SchemaId::Glue(uuid), body })
        }
        Some(&other) => Err(WireError::UnknownMagic(other)),
    }
}

/// The schema a framed value names, from its header alone (nothing inflated).
pub fn schema_id_of(value: &[u8]) -> Option<SchemaId> {
    match value.first()? {
        0 if value.len() >= 5 => Some(SchemaId::Confluent(u32::from_be_bytes(value[1..5].try_into().ok()?))),
        3 if value.len() >= 18 => Some(SchemaId::Glue(value[2..18].try_into().ok()?)),
        _ => None,
    }
}

fn inflate(compressed: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(compressed).take(MAX_INFLATED as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| WireError::Inflate(e.to_string()))?;
    if out.len() > MAX_INFLATED {
        return Err(WireError::TooLarge(MAX_INFLATED));
    }
    Ok(out)
}

/// The Confluent framing of a body written with schema `id`.
pub fn confluent_frame(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn confluent_and_glue_framings_are_read() {
        let framed = confluent_frame(258, b"body");
        assert_eq!(unframe(&framed).unwrap(), Framed { schema: SchemaId::Confluent(258), body: b"body"[..].into() });
        let uuid = SchemaId::parse("a2b7c3d4-0000-4000-8000-000000000001").unwrap();
        let SchemaId::Glue(bytes) = uuid else { panic!("a UUID is a Glue id") };
        assert_eq!(uuid.to_string(), "a2b7c3d4-0000-4000-8000-000000000001");
        let mut glue = vec![3, 0];
        glue.extend_from_slice(&bytes);
        glue.extend_from_slice(b"body");
        assert_eq!(unframe(&glue).unwrap().body.as_ref(), b"body");
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(b"a compressed body").unwrap();
        let mut glue = vec![3, 5];
        glue.extend_from_slice(&bytes);
        glue.extend_from_slice(&zlib.finish().unwrap());
        assert_eq!(unframe(&glue).unwrap().body.as_ref(), b"a compressed body");
        assert_eq!(unframe(&glue).unwrap().schema, uuid);
    }

    #[test]
    fn bad_framings_say_what_is_wrong() {
        assert_eq!(unframe(b""), Err(WireError::Empty));
        assert_eq!(unframe(b"{\"a\":1}"), Err(WireError::UnknownMagic(b'{')));
        assert!(matches!(unframe(&[0, 0, 1]), Err(WireError::Short { header: 5, .. })));
        let mut glue = vec![3, 9];
        glue.extend_from_slice(&[0; 16]);
        assert_eq!(unframe(&glue), Err(WireError::GlueCompression(9)));
        glue[1] = 5;
        glue.extend_from_slice(b"not zlib");
        assert!(matches!(unframe(&glue), Err(WireError::Inflate(_))));
        assert_eq!(SchemaId::parse("not-an-id"), None);
        assert_eq!(SchemaId::parse("17"), Some(SchemaId::Confluent(17)));
    }

    #[test]
    fn a_compression_bomb_is_refused() {
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        zlib.write_all(&vec![0u8; MAX_INFLATED + 10]).unwrap();
        let mut glue = vec![3, 5];
        glue.extend_from_slice(&[0; 16]);
        glue.extend_from_slice(&zlib.finish().unwrap());
        assert_eq!(unframe(&glue), Err(WireError::TooLarge(MAX_INFLATED)));
    }
}
