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

/// The most of a registry's answer that is read: far beyond any schema, so a registry (or
/// something else at its address) cannot make the process hold an answer of any size.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// A registry's answer body, read up to [`MAX_ANSWER_BYTES`].
#[cfg(feature = "kafka")]
pub async fn answer_body(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(RegistryError::BadAnswer {
                        url: url.to_string(),
                        why: format!("an answer of more than {} MiB", MAX_ANSWER_BYTES >> 20),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(RegistryError::Unreachable { url: url.to_string(), source: Box::new(e) }),
        }
    }
}
