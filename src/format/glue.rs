//! AWS Glue Schema Registry: a record's schema version, by its UUID, through Glue's
//! `GetSchemaVersion` API.
//!
//! One JSON call signed with SigV4 (`aws-sigv4`, already used for MSK IAM), with credentials from
//! the default chain (in Lambda, the execution role's). The generated `aws-sdk-glue` crate would
//! bring Glue's whole API — hundreds of operations — into every build of the function for this
//! one read, at a large cost in build time and binary size.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde::Deserialize;

use super::RegisteredSchema;
use super::fetched::{Fetched, RegistryError};
use super::wire::SchemaId;

/// Glue Schema Registry in one region, with the process's AWS credentials.
pub struct GlueRegistry {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SchemaVersion {
    schema_definition: Option<String>,
    data_format: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct GlueErrorAnswer {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

impl GlueRegistry {
    /// The registry `spec` names: `glue`, `glue:REGION`, or a registry's ARN
    /// (`arn:aws:glue:REGION:ACCOUNT:registry/NAME`, as an event source mapping names it). The
    /// region defaults to the process's (`AWS_REGION`); the endpoint is Glue's in that region
    /// unless `AWS_ENDPOINT_URL_GLUE` or `AWS_ENDPOINT_URL` says otherwise, as for the AWS SDKs.
    pub async fn new(spec: &str, timeout: Duration) -> Result<Self, RegistryError> {
        let region = region_of(spec);
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let config = loader.load().await;
        let region = config.region().map(|r| r.to_string()).ok_or_else(|| RegistryError::BadAnswer {
            url: spec.into(),
            why: "no AWS region: name one (glue:REGION or the registry's ARN) or set AWS_REGION".into(),
        })?;
        let credentials = config.credentials_provider().ok_or_else(|| RegistryError::BadAnswer {
            url: spec.into(),
            why: "no AWS credentials provider is configured".into(),
        })?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_GLUE")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("https://glue.{region}.amazonaws.com"));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| RegistryError::Unreachable { url: endpoint.clone(), source: Box::new(e) })?;
        Ok(GlueRegistry { http, endpoint: endpoint.trim_end_matches('/').to_string(), region, credentials })
    }

    /// Where requests go, for messages.
    pub fn url(&self) -> &str {
        &self.endpoint
    }

    /// The schema version `id` (a UUID).
    pub async fn schema_version(&self, id: SchemaId) -> Result<Fetched, RegistryError> {
        let body = serde_json::json!({ "SchemaVersionId": id.to_string() }).to_string();
        let unreachable = |e: Box<dyn std::error::Error + Send + Sync>| RegistryError::Unreachable {
            url: self.endpoint.clone(),
            source: e,
        };
        let credentials = self.credentials.provide_credentials().await.map_err(|e| unreachable(Box::new(e)))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("glue")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| unreachable(e.into()))?;
        let url = format!("{}/", self.endpoint);
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "AWSGlue.GetSchemaVersion")];
        let signable =
            SignableRequest::new("POST", &url, headers.iter().copied(), SignableBody::Bytes(body.as_bytes()))
                .map_err(|e| unreachable(e.into()))?;
        let (instructions, _) = sign(signable, &params.into()).map_err(|e| unreachable(e.into()))?.into_parts();
        let mut request = self.http.post(&url).body(body);
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| unreachable(Box::new(e)))?;
        let status = response.status();
        let text = super::fetched::answer_body(response, &self.endpoint).await?;
        if status.is_success() {
            let version: SchemaVersion = serde_json::from_slice(&text)
                .map_err(|e| RegistryError::BadAnswer { url: self.endpoint.clone(), why: e.to_string() })?;
            return Ok(match (version.schema_definition, version.status.as_deref()) {
                (Some(text), None | Some("AVAILABLE")) => Fetched::Schema(RegisteredSchema {
                    kind: version.data_format.unwrap_or_else(|| "AVRO".into()),
                    text,
                    references: Vec::new(),
                }),
                (_, status) => Fetched::Missing(format!(
                    "Glue schema version {id} is {}",
                    status.unwrap_or("without a definition").to_ascii_lowercase()
                )),
            });
        }
        let error: Option<GlueErrorAnswer> = serde_json::from_slice(&text).ok();
        let kind = error.as_ref().and_then(|e| e.kind.clone()).unwrap_or_default();
        let message = error.and_then(|e| e.message).unwrap_or_default();
        // `__type` may carry a namespace prefix (`com.amazonaws…#EntityNotFoundException`).
        if kind.ends_with("EntityNotFoundException") {
            return Ok(Fetched::Missing(format!("Glue has no schema version {id}")));
        }
        Err(RegistryError::Refused {
            url: self.endpoint.clone(),
            status: status.as_u16(),
            code: None,
            message: format!("{} {message}", kind.rsplit('#').next().unwrap_or_default()).trim().to_string(),
        })
    }
}

/// The region a registry spec names, if it names one.
fn region_of(spec: &str) -> Option<String> {
    if let Some(arn) = spec.strip_prefix("arn:") {
        // arn:PARTITION:glue:REGION:ACCOUNT:registry/NAME
        return arn.split(':').nth(2).filter(|r| !r.is_empty()).map(str::to_string);
    }
    spec.strip_prefix("glue:").filter(|r| !r.is_empty()).map(str::to_string)
}

/// Whether a registry setting names AWS Glue Schema Registry rather than a REST URL.
pub fn is_glue(spec: &str) -> bool {
    spec == "glue" || spec.starts_with("glue:") || spec.starts_with("arn:aws") && spec.contains(":glue:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_registry_settings_name_their_region() {
        assert!(is_glue("glue") && is_glue("glue:sa-east-1"));
        assert!(is_glue("arn:aws:glue:us-east-1:123456789012:registry/orders"));
        assert!(!is_glue("https://psrc.example.com") && !is_glue("http://127.0.0.1:8081"));
        assert_eq!(region_of("glue:sa-east-1").as_deref(), Some("sa-east-1"));
        assert_eq!(region_of("arn:aws:glue:us-east-1:123456789012:registry/orders").as_deref(), Some("us-east-1"));
        assert_eq!(region_of("glue"), None);
    }
}
