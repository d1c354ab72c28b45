//! The fail topic's envelope: what a failed record becomes, and how it is read back.
//!
//! A fail record's value is a JSON envelope (documented in docs/operations.md): where the record
//! came from, why it failed, the mapping and function that failed it, and the record itself — a
//! JSON object embedded as it is, anything else as text or base64. Its headers are named after
//! Kafka Connect's `__connect.errors.*`, so dead-letter tooling that reads those finds its way:
//! `lambda-stream.error.stage`, `.topic`, `.partition`, `.offset`, `.message`.
//!
//! - `cloudevents` — CloudEvents for the outputs that ask for them (binary and structured mode);
//! - `names` — the headers' names, and a record's position as text;
//! - `write` — the envelope and the headers of a fail record;
//! - `read` — the envelope as triage (`lambda-stream failures`) reads it: everything but the value;
//! - `replay` — the envelope as a replay reads it: the source record rebuilt byte for byte,
//!   through the mapping engine's scanner door ([`crate::plan::members`]) or, for the layout this
//!   crate writes, straight through.

pub mod cloudevents;
mod error;
mod names;
mod read;
mod replay;
mod write;

pub use error::EnvelopeError;
pub use names::{
    ERROR_HEADER_PREFIX, HEADER_ID, HEADER_MAPPING, HEADER_MESSAGE, HEADER_OFFSET, HEADER_OK_MAPPING, HEADER_PARTITION,
    HEADER_STAGE, HEADER_TOPIC, position,
};
pub use read::{ReadEnvelope, ReadMapping, ReadSource};
pub use replay::ReplayEnvelope;
pub use write::{
    EnvelopeSource, EnvelopeValue, FailEnvelope, FunctionInfo, MappingInfo, fail_headers, record_id, summary,
    text_or_base64,
};
