//! AWS Glue Schema Registry: a record's schema version, by its UUID, through Glue's
//! `GetSchemaVersion` API; and, for writing, a schema's version by its definition
//! (`GetSchemaByDefinition`), registered only when asked (`RegisterSchemaVersion`, or
//! `CreateSchema` for a schema Glue does not have yet).
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
        let answer = self.call("GetSchemaVersion", serde_json::json!({ "SchemaVersionId": id.to_string() })).await?;
        match answer {
            Ok(version) => Ok(available(version, &format!("Glue schema version {id}"))?.1),
            Err(GlueRefusal::NotFound) => Ok(Fetched::Missing(format!("Glue has no schema version {id}"))),
            Err(GlueRefusal::Other(e)) => Err(e),
        }
    }

    /// The version of schema `name` in registry `registry` (`latest` or a number): its UUID and
    /// its schema.
    pub async fn schema_by_name(
        &self,
        registry: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<(SchemaId, Fetched)>, RegistryError> {
        let number = match version {
            "latest" => serde_json::json!({"LatestVersion": true}),
            n => serde_json::json!({"VersionNumber": n.parse::<i64>().unwrap_or(0)}),
        };
        let body = serde_json::json!({
            "SchemaId": {"RegistryName": registry, "SchemaName": name},
            "SchemaVersionNumber": number,
        });
        match self.call("GetSchemaVersion", body).await? {
            Ok(version) => {
                let what = format!("Glue schema `{name}` version {version}", version = version_text(version.clone()));
                let (id, fetched) = available(version, &what)?;
                Ok(id.map(|id| (id, fetched)))
            }
            Err(GlueRefusal::NotFound) => Ok(None),
            Err(GlueRefusal::Other(e)) => Err(e),
        }
    }

    /// The UUID of the version of schema `name` (in `registry`) whose definition is `definition`,
    /// if there is one; with `register`, registered as a new version (or a new schema of
    /// `data_format`) when there is not.
    pub async fn version_of(
        &self,
        registry: &str,
        name: &str,
        definition: &str,
        data_format: &str,
        register: bool,
    ) -> Result<Option<SchemaId>, RegistryError> {
        let schema = serde_json::json!({"RegistryName": registry, "SchemaName": name});
        let found = self
            .call("GetSchemaByDefinition", serde_json::json!({"SchemaId": schema, "SchemaDefinition": definition}))
            .await?;
        let answer = match found {
            Ok(answer) => Some(answer),
            Err(GlueRefusal::NotFound) => None,
            Err(GlueRefusal::Other(e)) => return Err(e),
        };
        if let Some(id) = answer.as_ref().and_then(version_id) {
            return Ok(Some(id));
        }
        if !register {
            return Ok(None);
        }
        let registered = self
            .call("RegisterSchemaVersion", serde_json::json!({"SchemaId": schema, "SchemaDefinition": definition}))
            .await?;
        let registered = match registered {
            Ok(answer) => answer,
            // No such schema yet: created, with this definition as its first version.
            Err(GlueRefusal::NotFound) => self
                .call(
                    "CreateSchema",
                    serde_json::json!({
                        "RegistryId": {"RegistryName": registry},
                        "SchemaName": name,
                        "DataFormat": data_format,
                        "Compatibility": "BACKWARD",
                        "SchemaDefinition": definition,
                    }),
                )
                .await?
                .map_err(GlueRefusal::into_error)?,
            Err(GlueRefusal::Other(e)) => return Err(e),
        };
        Ok(version_id(&registered))
    }

    /// One Glue API call, signed: its answer, or Glue's refusal.
    async fn call(
        &self,
        operation: &str,
        body: serde_json::Value,
    ) -> Result<Result<serde_json::Value, GlueRefusal>, RegistryError> {
        let body = body.to_string();
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
        let target = format!("AWSGlue.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
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
            return serde_json::from_slice(&text)
                .map(Ok)
                .map_err(|e| RegistryError::BadAnswer { url: self.endpoint.clone(), why: e.to_string() });
        }
        let error: Option<GlueErrorAnswer> = serde_json::from_slice(&text).ok();
        let kind = error.as_ref().and_then(|e| e.kind.clone()).unwrap_or_default();
        let message = error.and_then(|e| e.message).unwrap_or_default();
        // `__type` may carry a namespace prefix (`com.amazonaws…#EntityNotFoundException`).
        if kind.ends_with("EntityNotFoundException") {
            return Ok(Err(GlueRefusal::NotFound));
        }
        Ok(Err(GlueRefusal::Other(RegistryError::Refused {
            url: self.endpoint.clone(),
            status: status.as_u16(),
            code: None,
            message: format!("{} {message}", kind.rsplit('#').next().unwrap_or_default()).trim().to_string(),
        })))
    }
}

/// Why Glue did not answer a call.
enum GlueRefusal {
    /// It has no such registry, schema or version.
    NotFound,
    Other(RegistryError),
}

impl GlueRefusal {
    fn into_error(self) -> RegistryError {
        match self {
            GlueRefusal::NotFound => RegistryError::BadAnswer {
                url: "AWS Glue".into(),
                why: "the registry does not exist (EntityNotFoundException)".into(),
            },
            GlueRefusal::Other(e) => e,
        }
    }
}

/// The version's UUID in an answer.
fn version_id(answer: &serde_json::Value) -> Option<SchemaId> {
    answer.get("SchemaVersionId").and_then(serde_json::Value::as_str).and_then(SchemaId::parse)
}

fn version_text(answer: serde_json::Value) -> String {
    answer.get("VersionNumber").map_or_else(|| "?".into(), ToString::to_string)
}

/// A `GetSchemaVersion` answer: the version's UUID, and its schema if it is available.
fn available(answer: serde_json::Value, what: &str) -> Result<(Option<SchemaId>, Fetched), RegistryError> {
    let id = version_id(&answer);
    let version: SchemaVersion = serde_json::from_value(answer)
        .map_err(|e| RegistryError::BadAnswer { url: "AWS Glue".into(), why: e.to_string() })?;
    let fetched = match (version.schema_definition, version.status.as_deref()) {
        (Some(text), None | Some("AVAILABLE")) => Fetched::Schema(RegisteredSchema {
            kind: version.data_format.unwrap_or_else(|| "AVRO".into()),
            text,
            references: Vec::new(),
        }),
        (_, status) => {
            Fetched::Missing(format!("{what} is {}", status.unwrap_or("without a definition").to_ascii_lowercase()))
        }
    };
    Ok((id, fetched))
}

/// The registry a spec names (an ARN's `registry/NAME`), else Glue's default registry.
pub fn registry_name(spec: &str) -> &str {
    spec.rsplit_once(":registry/").map_or("default-registry", |(_, name)| name)
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
