//! MSK IAM authentication: the SASL/OAUTHBEARER token Amazon MSK accepts on its IAM listener
//! (port 9098).
//!
//! The token is what AWS's own signers (`aws-msk-iam-sasl-signer-{java,python,go}`) produce: the
//! URL `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect`, presigned with
//! SigV4 (service `kafka-cluster`, signature in the query, valid 900 s), then a `User-Agent`
//! parameter, all base64url-encoded without padding. librdkafka asks for a new token at 80% of the
//! previous one's lifetime, so a token is always fresh and credentials rotated by Lambda are
//! picked up.
//!
//! Signing uses AWS's `aws-sigv4` directly rather than the community `aws-msk-iam-sasl-signer`
//! crate: that crate reads the clock itself (so expiry cannot be tested deterministically) and
//! pulls in an STS client the function never needs. [`sign_token`] is pure; [`MskIamSigner`] adds
//! the credentials provider.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;

/// How long a token is valid, as AWS's signers use.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// librdkafka only uses the principal name on the client side; MSK takes the identity from the
/// signature. A fixed name keeps access key ids out of librdkafka's logs.
pub const PRINCIPAL: &str = "lambda-stream";

#[derive(Debug, thiserror::Error)]
pub enum MskIamError {
    /// Never carries credentials: only what the provider said went wrong (its whole chain: the
    /// provider's own message names the source that failed only in its causes).
    #[error("cannot get AWS credentials for MSK IAM authentication: {}", error_chain(.0))]
    Credentials(#[source] aws_credential_types::provider::error::CredentialsError),
    #[error("cannot get AWS credentials for MSK IAM authentication: no credentials provider is configured")]
    NoProvider,
    #[error("cannot sign the MSK IAM token: {0}")]
    Sign(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot start the credentials runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A signed token and when it stops being valid.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken {
    /// base64url (no padding) of the presigned URL. A secret: never logged.
    pub token: String,
    /// Expiry, in milliseconds since the Unix epoch (what librdkafka wants).
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthToken").field("token", &"<redacted>").field("expires_at_ms", &self.expires_at_ms).finish()
    }
}

/// Signs a token for `region` with `credentials` at time `now`, valid for `lifetime`.
pub fn sign_token(
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
    lifetime: Duration,
) -> Result<AuthToken, MskIamError> {
    let endpoint = format!("https://kafka.{region}.amazonaws.com/?Action=kafka-cluster%3AConnect");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(lifetime);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| MskIamError::Sign(e.into()))?;
    let request = SignableRequest::new("GET", &endpoint, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| MskIamError::Sign(e.into()))?;
    let (instructions, _signature) =
        sign(request, &params.into()).map_err(|e| MskIamError::Sign(e.into()))?.into_parts();

    let mut url = endpoint;
    let mut query = form_urlencoded::Serializer::for_suffix(&mut url, 0);
    for (name, value) in instructions.params() {
        query.append_pair(name, value);
    }
    query.append_pair("User-Agent", concat!("lambda-stream/", env!("CARGO_PKG_VERSION")));
    query.finish();

    let signed_at_ms = now.duration_since(UNIX_EPOCH).map_err(|e| MskIamError::Sign(e.into()))?.as_millis();
    // SigV4 counts the lifetime from the signing time truncated to the second.
    let expires_at_ms = (signed_at_ms / 1000 * 1000 + lifetime.as_millis()) as i64;
    Ok(AuthToken { token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url), expires_at_ms })
}

/// Signs tokens with credentials from a provider (in Lambda: the execution role's, from the
/// environment), asking the provider again for every token so rotated credentials are used.
#[derive(Clone)]
pub struct MskIamSigner {
    region: String,
    provider: SharedCredentialsProvider,
    lifetime: Duration,
    /// Providers may need a tokio runtime (HTTP to the container credentials endpoint), but the
    /// token is asked for from librdkafka's threads, which may themselves be tokio workers. The
    /// signer keeps its own small runtime and drives it from a fresh thread.
    runtime: Arc<SignerRuntime>,
}

/// The signer's runtime; dropping it never blocks, so a client can be dropped anywhere (a plain
/// `Runtime` panics when dropped inside another runtime).
struct SignerRuntime(Option<tokio::runtime::Runtime>);

impl SignerRuntime {
    fn new() -> Result<Self, MskIamError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(MskIamError::Runtime)?;
        Ok(SignerRuntime(Some(runtime)))
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.0.as_ref().expect("present until dropped").block_on(f)
    }
}

impl Drop for SignerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl MskIamSigner {
    pub fn new(region: impl Into<String>, provider: SharedCredentialsProvider) -> Result<Self, MskIamError> {
        let runtime = SignerRuntime::new()?;
        Ok(MskIamSigner { region: region.into(), provider, lifetime: TOKEN_LIFETIME, runtime: Arc::new(runtime) })
    }

    /// The default AWS credentials chain (environment, web identity, container, instance).
    pub fn from_default_chain(region: impl Into<String>) -> Result<Self, MskIamError> {
        let region = region.into();
        let runtime = SignerRuntime::new()?;
        let loaded = off_runtime(|| {
            runtime.block_on(
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(aws_config::Region::new(region.clone()))
                    .load(),
            )
        });
        let provider = loaded.credentials_provider().ok_or(MskIamError::NoProvider)?;
        Ok(MskIamSigner { region, provider, lifetime: TOKEN_LIFETIME, runtime: Arc::new(runtime) })
    }

    /// Tokens valid for `lifetime` instead of 900 s (tests of librdkafka's refresh).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// A token signed now with freshly provided credentials. Blocks the calling thread (librdkafka
    /// calls this once per token lifetime).
    pub fn token(&self) -> Result<AuthToken, MskIamError> {
        let credentials = off_runtime(|| self.runtime.block_on(self.provider.provide_credentials()))
            // The provider's error says which source failed; it holds no secret.
            .map_err(MskIamError::Credentials)?;
        sign_token(&self.region, &credentials, SystemTime::now(), self.lifetime)
    }
}

/// Runs `f` on a scoped thread that belongs to no tokio runtime, so `block_on` is allowed even when
/// the caller is a runtime worker.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn decode(token: &str) -> (String, HashMap<String, String>) {
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'), "base64url, unpadded: {token}");
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap();
        let (base, query) = url.split_once('?').unwrap();
        let params = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        (base.to_string(), params)
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn token_is_a_presigned_connect_url() {
        let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test");
        // 2026-11-26T12:00:00Z
        let token = sign_token("sa-east-1", &creds, at(1_795_694_400), TOKEN_LIFETIME).unwrap();
        let (base, p) = decode(&token.token);
        assert_eq!(base, "https://kafka.sa-east-1.amazonaws.com/");
        assert_eq!(p["Action"], "kafka-cluster:Connect");
        assert_eq!(p["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(p["X-Amz-Credential"], "AKIDEXAMPLE/20261126/sa-east-1/kafka-cluster/aws4_request");
        assert_eq!(p["X-Amz-Date"], "20261126T120000Z");
        assert_eq!(p["X-Amz-Expires"], "900");
        assert_eq!(p["X-Amz-SignedHeaders"], "host");
        assert!(!p.contains_key("X-Amz-Security-Token"));
        let signature = &p["X-Amz-Signature"];
        assert!(signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()), "{signature}");
        assert!(p["User-Agent"].starts_with("lambda-stream/"));
        // The URL parameters are, in order: Action, the signing ones, User-Agent last (as AWS's
        // signers put them); the secret key appears nowhere.
        let url =
            String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token.token).unwrap()).unwrap();
        assert!(url.contains("?Action=kafka-cluster%3AConnect&X-Amz-"), "{url}");
        assert!(!url.contains("wJalrXUtnFEMI"));
        assert_eq!(token.expires_at_ms, (1_795_694_400 + 900) * 1000);
        assert!(!format!("{token:?}").contains(&token.token));
    }

    #[test]
    fn signature_depends_on_time_key_and_region_and_carries_the_session_token() {
        let creds = Credentials::new("AKID", "secret", Some("session/token+x=".into()), None, "test");
        let sig = |region: &str, creds: &Credentials, secs| {
            let t = sign_token(region, creds, at(secs), TOKEN_LIFETIME).unwrap();
            decode(&t.token).1
        };
        let a = sig("us-east-1", &creds, 1_795_694_400);
        assert_eq!(a["X-Amz-Security-Token"], "session/token+x=");
        assert_eq!(a, sig("us-east-1", &creds, 1_795_694_400), "signing is deterministic");
        assert_ne!(a["X-Amz-Signature"], sig("us-east-1", &creds, 1_795_694_401)["X-Amz-Signature"]);
        assert_ne!(a["X-Amz-Signature"], sig("us-west-2", &creds, 1_795_694_400)["X-Amz-Signature"]);
        let other = Credentials::new("AKID", "secret2", Some("session/token+x=".into()), None, "test");
        assert_ne!(a["X-Amz-Signature"], sig("us-east-1", &other, 1_795_694_400)["X-Amz-Signature"]);
    }

    #[test]
    fn expiry_follows_the_lifetime_from_the_signing_second() {
        let creds = Credentials::new("AKID", "secret", None, None, "test");
        let t =
            sign_token("eu-west-1", &creds, at(1_000) + Duration::from_millis(700), Duration::from_secs(60)).unwrap();
        assert_eq!(t.expires_at_ms, 1_060_000);
        assert_eq!(decode(&t.token).1["X-Amz-Expires"], "60");
    }

    /// Hands out a new access key id on every call, as rotated role credentials would.
    #[derive(Debug, Default)]
    struct Rotating(AtomicUsize);
    impl ProvideCredentials for Rotating {
        fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                format!("AKID{n}"),
                "secret",
                None,
                None,
                "rotating",
            )))
        }
    }

    #[test]
    fn each_token_asks_the_provider_again() {
        let signer = MskIamSigner::new("us-east-1", SharedCredentialsProvider::new(Rotating::default())).unwrap();
        let first = signer.token().unwrap();
        let second = signer.token().unwrap();
        assert!(decode(&first.token).1["X-Amz-Credential"].starts_with("AKID0/"));
        assert!(decode(&second.token).1["X-Amz-Credential"].starts_with("AKID1/"));
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!((now_ms + 898_000..=now_ms + 900_000).contains(&second.expires_at_ms), "{}", second.expires_at_ms);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn signs_from_inside_a_tokio_runtime() {
        // librdkafka may ask from a runtime worker (the stream consumer polls there).
        let signer = MskIamSigner::new("us-east-1", SharedCredentialsProvider::new(Rotating::default())).unwrap();
        assert!(signer.token().is_ok());
    }

    #[test]
    fn provider_errors_are_named_without_secrets() {
        #[derive(Debug)]
        struct Refusing;
        impl ProvideCredentials for Refusing {
            fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded("no role attached"),
                ))
            }
        }
        let signer = MskIamSigner::new("us-east-1", SharedCredentialsProvider::new(Refusing)).unwrap();
        let e = signer.token().unwrap_err().to_string();
        assert!(e.contains("no role attached"), "{e}");
    }
}
