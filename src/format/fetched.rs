//! What asking a registry for a schema gives: the schema, word that it has none, or an error
//! that says the registry could not answer. Shared by every kind of registry.

/// A registry that could not answer: an infrastructure failure (the batch is retried), never a
/// record's fault.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("the schema registry at {url} cannot be reached: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the schema registry at {url} answered {status}{}: {message}", code.map(|c| format!(" (error code {c})")).unwrap_or_default())]
    Refused { url: String, status: u16, code: Option<i64>, message: String },
    #[error("the schema registry at {url} answered with something that is not a schema: {why}")]
    BadAnswer { url: String, why: String },
}

/// What a registry has under an id.
#[derive(Debug)]
pub enum Fetched {
    Schema(super::RegisteredSchema),
    /// It has no such schema (or not all of its references): the records naming it fail.
    Missing(String),
}
