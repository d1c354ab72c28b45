//! Reading an envelope back for triage.

use super::error::EnvelopeError;
use crate::plan::FieldError;

/// A fail record's envelope as triage reads it back (the writer is [`FailEnvelope`]). The value is
/// not read: triage looks at millions of envelopes and never at their values.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ReadEnvelope {
    pub source: ReadSource,
    pub stage: String,
    #[serde(default)]
    pub errors: Vec<FieldError>,
    #[serde(default)]
    pub mapping: ReadMapping,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct ReadSource {
    pub topic: String,
    pub partition: i32,
    pub offset: Option<i64>,
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    #[serde(default = "utf8")]
    pub key_encoding: String,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ReadMapping {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

fn utf8() -> String {
    "utf8".into()
}

impl ReadEnvelope {
    /// Reads a fail record's value; `Err` says why it is not one of ours.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// `name@version` of the mapping that failed it (`(none)` for a record no route took).
    pub fn mapping_identity(&self) -> String {
        match (self.mapping.name.as_str(), self.mapping.version.as_str()) {
            ("", _) => "(none)".into(),
            (name, "") => name.into(),
            (name, version) => format!("{name}@{version}"),
        }
    }
}
