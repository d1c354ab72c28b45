//! `parameter://` values from AWS Systems Manager Parameter Store, read once at cold start.
//!
//! The settings are first read with a [`RecordingResolver`] to learn which parameters they name;
//! those are fetched together (`GetParameters`, decrypted, ten names per call) with the Lambda's own
//! credentials; then the settings are read again from the fetched values. Errors name the
//! parameter and what went wrong, never a value.

use std::cell::RefCell;
use std::collections::HashMap;

use aws_sdk_ssm::Client;

use super::{ConfigError, ParameterError, ParameterResolver, Settings};

/// Answers every reference with a placeholder and remembers the names asked for.
#[derive(Default)]
pub struct RecordingResolver {
    pub names: RefCell<Vec<String>>,
}

impl ParameterResolver for RecordingResolver {
    fn resolve(&self, name: &str) -> Result<String, ParameterError> {
        let mut names = self.names.borrow_mut();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        Ok("placeholder:1".into())
    }

    fn gives_values(&self) -> bool {
        false
    }
}

/// Parameters already fetched; unknown names are errors (with why they were not fetched).
#[derive(Default)]
pub struct FetchedParameters {
    pub values: HashMap<String, String>,
    pub problems: HashMap<String, ParameterError>,
}

impl ParameterResolver for FetchedParameters {
    fn resolve(&self, name: &str) -> Result<String, ParameterError> {
        match (self.values.get(name), self.problems.get(name)) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Err(ParameterError::NotFetched),
        }
    }
}

/// Fetches `names` from Parameter Store (SecureStrings decrypted).
pub async fn fetch(client: &Client, names: &[String]) -> FetchedParameters {
    let mut fetched = FetchedParameters::default();
    for chunk in names.chunks(10) {
        match client.get_parameters().set_names(Some(chunk.to_vec())).with_decryption(true).send().await {
            Ok(out) => {
                for p in out.parameters() {
                    if let (Some(name), Some(value)) = (p.name(), p.value()) {
                        fetched.values.insert(name.to_string(), value.to_string());
                    }
                }
                for missing in out.invalid_parameters() {
                    fetched.problems.insert(missing.clone(), ParameterError::NotFound);
                }
            }
            Err(e) => {
                // The SDK's message names the operation and the AWS error code (for example
                // AccessDeniedException); it carries no parameter values.
                let why = ParameterError::Ssm(std::sync::Arc::new(e));
                for name in chunk {
                    fetched.problems.insert(name.clone(), why.clone());
                }
            }
        }
    }
    fetched
}

/// Settings from the environment and `environments.yaml`, with `parameter://` values read from SSM.
/// `client` is only called when some setting is a `parameter://` reference.
pub async fn settings_with_parameters(
    get: impl Fn(&str) -> Option<String>,
    client: impl AsyncFnOnce() -> Client,
) -> Result<Settings, ConfigError> {
    let recorder = RecordingResolver::default();
    Settings::from_lookup(&get, &recorder)?;
    let names = recorder.names.into_inner();
    if names.is_empty() {
        return Settings::from_lookup(&get, &super::NoParameterStore);
    }
    let fetched = fetch(&client().await, &names).await;
    Settings::from_lookup(&get, &fetched)
}

/// The SSM client of a Lambda: region and credentials from the function's environment.
pub async fn lambda_client() -> Client {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Client::new(&config)
}
