//! Where routed messages go: Kafka ([`KafkaSink`], in `kafka`, the only `rdkafka` import of the
//! crate, built with the `kafka` feature), or memory (tests and the local dry run).
//!
//! [`Sink::send_all`] delivers a batch and reports, per message and in order, whether it was
//! delivered. It never drops a message silently: a message whose delivery was not confirmed by the
//! deadline is reported as failed, and the caller returns an error so the batch is retried.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::destination::OutMessage;

#[cfg(feature = "kafka")]
pub mod kafka;

/// A cause from the Kafka client (an `rdkafka::error::KafkaError`), kept whole as the error's
/// source. Named as a trait object: only `sink::kafka` and the worker talk to `rdkafka`, so its
/// types stay out of this module's interface. Shared, because one failure can be every message's.
pub type ClientError = Arc<dyn std::error::Error + Send + Sync>;

/// Why the producer could not be made, or a message was not delivered. Never carries credentials:
/// only topic names and client errors.
#[derive(Clone, Debug, thiserror::Error)]
pub enum SinkError {
    /// The Kafka client refused its configuration (a property it does not know, a value it does
    /// not take, a certificate file it cannot read).
    #[error("cannot create the Kafka producer: {0}")]
    Config(#[source] ClientError),
    /// The producer could not start: its MSK IAM signer, or its transactional id's registration
    /// with the brokers.
    #[error("cannot create the Kafka producer: {0}")]
    Create(#[source] ClientError),
    #[error("delivery to topic `{topic}` failed: {source}")]
    Delivery { topic: String, source: ClientError },
    /// Delivery failed for a reason of this program's (the producer closed, a test's failure).
    #[error("delivery to topic `{topic}` failed: {reason}")]
    Failed { topic: String, reason: &'static str },
    #[error("delivery to topic `{topic}` was not confirmed before the deadline")]
    Timeout { topic: String },
}

pub type Delivery = Result<(), SinkError>;

pub trait Sink: Send + Sync {
    /// Delivers every message, in order per destination partition; returns one result per message.
    fn send_all(&self, messages: &[&OutMessage], deadline: Instant) -> impl Future<Output = Vec<Delivery>> + Send;
}

/// Producer settings; the defaults are what the Lambda uses (docs/deployment.md).
#[derive(Clone)]
pub struct ProducerSettings {
    pub brokers: String,
    /// Extra librdkafka properties (security settings come in here), applied last.
    pub extra: Vec<(String, String)>,
    pub linger_ms: u32,
    pub compression: String,
    /// Upper bound on one message's delivery, whatever the invocation's deadline.
    pub message_timeout_ms: u32,
    /// MSK IAM (SASL/OAUTHBEARER): the region whose `kafka-cluster` endpoint tokens are signed for.
    pub msk_iam_region: Option<String>,
    /// Makes the producer transactional (the worker's `--exactly-once`).
    pub transactional_id: Option<String>,
}

/// Properties whose values are secrets: never printed.
const SECRET_PROPERTIES: &[&str] = &["sasl.password", "sasl.oauthbearer.client.secret", "ssl.key.password"];

impl std::fmt::Debug for ProducerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), if SECRET_PROPERTIES.contains(&k.as_str()) { "<redacted>" } else { v.as_str() }))
            .collect();
        f.debug_struct("ProducerSettings")
            .field("brokers", &self.brokers)
            .field("extra", &extra)
            .field("linger_ms", &self.linger_ms)
            .field("compression", &self.compression)
            .field("message_timeout_ms", &self.message_timeout_ms)
            .field("msk_iam_region", &self.msk_iam_region)
            .field("transactional_id", &self.transactional_id)
            .finish()
    }
}

impl ProducerSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        ProducerSettings {
            brokers: brokers.into(),
            extra: Vec::new(),
            linger_ms: 5,
            compression: "lz4".into(),
            message_timeout_ms: 30_000,
            msk_iam_region: None,
            transactional_id: None,
        }
    }
}

/// Keeps messages in memory; can be told to fail deliveries to a topic (for tests of routing).
#[derive(Default)]
pub struct MemorySink {
    pub delivered: Mutex<Vec<OutMessage>>,
    pub failing_topic: Option<String>,
}

impl Sink for MemorySink {
    async fn send_all(&self, messages: &[&OutMessage], _deadline: Instant) -> Vec<Delivery> {
        let mut delivered = self.delivered.lock().expect("not poisoned");
        messages
            .iter()
            .map(|m| {
                if self.failing_topic.as_deref() == Some(m.topic.as_str()) {
                    Err(SinkError::Failed { topic: m.topic.clone(), reason: "injected failure" })
                } else {
                    delivered.push((*m).clone());
                    Ok(())
                }
            })
            .collect()
    }
}
