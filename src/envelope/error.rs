//! What reading an envelope back can refuse.

/// Why a fail record's value cannot be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a lambda-stream fail envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a lambda-stream fail envelope: {0}")]
    Scan(#[from] Box<crate::plan::extract::ScanError>),
    #[error("not a lambda-stream fail envelope: `{member}` is not {expected}")]
    WrongType { member: &'static str, expected: &'static str },
    #[error("not a lambda-stream fail envelope: {0}")]
    Shape(&'static str),
}
