//! The Kafka sink: one idempotent (optionally transactional) producer, and the client context
//! shared with the worker's consumer (MSK IAM tokens, rate-limited error logs), and the librdkafka
//! glue both read records with (a consumed record's headers, byte for byte).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use rdkafka::client::OAuthToken;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, ClientContext};

use super::{Delivery, ProducerSettings, Sink, SinkError};
use crate::destination::OutMessage;
use crate::msk_iam::{MskIamSigner, PRINCIPAL};

/// A transactional call failed; what to do next follows librdkafka's classification.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TransactionError {
    /// Abort the transaction and run the batch again in a new one.
    #[error("transaction must be aborted: {0}")]
    Abortable(#[source] KafkaError),
    /// A message of the transaction was not delivered: abort, and run the batch again.
    #[error("transaction must be aborted: {0}")]
    Undelivered(#[source] SinkError),
    /// The consumer has no group metadata yet to commit the offsets under: abort, and run again.
    #[error("transaction must be aborted: no consumer group metadata yet")]
    NoGroupMetadata,
    /// The same call may be retried.
    #[error("transaction call may be retried: {0}")]
    Retriable(#[source] KafkaError),
    /// The producer is unusable (for example fenced by a newer instance): stop.
    #[error("fatal transactional producer error: {0}")]
    Fatal(#[source] KafkaError),
}

impl From<KafkaError> for TransactionError {
    fn from(e: KafkaError) -> Self {
        match &e {
            KafkaError::Transaction(t) if t.is_fatal() => TransactionError::Fatal(e),
            KafkaError::Transaction(t) if t.txn_requires_abort() => TransactionError::Abortable(e),
            KafkaError::Transaction(t) if t.is_retriable() => TransactionError::Retriable(e),
            // Anything else (a timeout, a state error) is treated as needing an abort; an abort
            // that then fails fatally stops the worker.
            _ => TransactionError::Abortable(e),
        }
    }
}

/// Whether librdkafka refused a client's configuration (a property it does not know, a value it
/// does not take, a certificate it cannot load, a topic list it cannot subscribe to) rather than
/// failing to reach or use the cluster: the first is fixed by changing the settings, the second
/// may pass by itself.
pub fn is_configuration(e: &KafkaError) -> bool {
    matches!(
        e,
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) | KafkaError::Nul(_) | KafkaError::Subscription(_)
    )
}

/// A producer that could not be made: its configuration refused, or the client unable to start.
fn creation_error(e: KafkaError) -> SinkError {
    if is_configuration(&e) { SinkError::Config(Arc::new(e)) } else { SinkError::Create(Arc::new(e)) }
}

impl ProducerSettings {
    /// The client context: with MSK IAM, a signer with the default AWS credentials chain.
    pub fn context(&self) -> Result<KafkaContext, SinkError> {
        let msk_iam = match &self.msk_iam_region {
            Some(region) => Some(MskIamSigner::from_default_chain(region).map_err(|e| SinkError::Create(Arc::new(e)))?),
            None => None,
        };
        Ok(KafkaContext::new(msk_iam))
    }

    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            // Idempotent: retries never duplicate or reorder within a partition.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            // Batches form while a Lambda batch is being enqueued; 5 ms is negligible latency.
            .set("linger.ms", self.linger_ms.to_string())
            .set("compression.type", &self.compression)
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("socket.keepalive.enable", "true")
            .set("client.id", "lambda-stream");
        if let Some(id) = &self.transactional_id {
            config.set("transactional.id", id);
        }
        for (k, v) in &self.extra {
            config.set(k, v);
        }
        config
    }
}

/// What every Kafka client of the crate carries: the MSK IAM signer when that is the
/// authentication, whose tokens librdkafka asks for at start and at 80% of each one's lifetime.
#[derive(Default)]
pub struct KafkaContext {
    pub msk_iam: Option<MskIamSigner>,
    /// The last client error logged and when: librdkafka repeats the same error (all brokers
    /// down) many times a second while a broker is away; once per interval is enough.
    last_error: Mutex<Option<(String, Instant)>>,
}

impl KafkaContext {
    pub fn new(msk_iam: Option<MskIamSigner>) -> Self {
        KafkaContext { msk_iam, last_error: Mutex::new(None) }
    }
}

/// How often the same client error is logged again.
const REPEATED_ERROR_INTERVAL: Duration = Duration::from_secs(10);

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        let mut last = self.last_error.lock().expect("not poisoned");
        if let Some((previous, at)) = last.as_ref()
            && *previous == text
            && at.elapsed() < REPEATED_ERROR_INTERVAL
        {
            return;
        }
        tracing::error!(error = %text, "Kafka client error");
        *last = Some((text, Instant::now()));
    }

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let signer = self.msk_iam.as_ref().ok_or("sasl.mechanism OAUTHBEARER needs `security: iam` (MSK IAM)")?;
        let token = signer.token().inspect_err(|e| tracing::error!(error = %e, "MSK IAM token refresh failed"))?;
        Ok(OAuthToken { token: token.token, principal_name: PRINCIPAL.into(), lifetime_ms: token.expires_at_ms })
    }
}

/// The plain consumers of the fail topic's readers (no rebalance handling: they assign).
impl rdkafka::consumer::ConsumerContext for KafkaContext {}

impl rdkafka::producer::ProducerContext for KafkaContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}

/// Produces to Kafka with one idempotent producer, created once and shared by every invocation.
pub struct KafkaSink {
    producer: FutureProducer<KafkaContext>,
}

impl KafkaSink {
    pub fn new(settings: &ProducerSettings) -> Result<Self, SinkError> {
        let producer: FutureProducer<KafkaContext> =
            settings.client_config().create_with_context(settings.context()?).map_err(creation_error)?;
        if settings.transactional_id.is_some() {
            // Fences any older producer with the same id and recovers its unfinished transaction.
            producer.init_transactions(Duration::from_secs(30)).map_err(creation_error)?;
        }
        Ok(KafkaSink { producer })
    }

    pub fn begin_transaction(&self) -> Result<(), TransactionError> {
        self.producer.begin_transaction().map_err(TransactionError::from)
    }

    /// Adds the consumed offsets to the open transaction and commits it: outputs and offsets become
    /// visible together, or not at all.
    pub fn commit_transaction_with_offsets(
        &self,
        offsets: &rdkafka::TopicPartitionList,
        group: &rdkafka::consumer::ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), TransactionError> {
        self.producer.send_offsets_to_transaction(offsets, group, timeout)?;
        self.producer.commit_transaction(timeout)?;
        Ok(())
    }

    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), TransactionError> {
        self.producer.abort_transaction(timeout).map_err(TransactionError::from)
    }

    /// Waits up to `timeout` for anything still queued (used before a process exits).
    pub fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        self.producer
            .flush(Timeout::After(timeout))
            .map_err(|e| SinkError::Delivery { topic: "*".into(), source: Arc::new(e) })
    }
}

fn owned_headers(headers: &[(std::borrow::Cow<'static, str>, Vec<u8>)]) -> OwnedHeaders {
    headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (key, value)| {
        h.insert(Header { key, value: Some(value.as_slice()) })
    })
}

/// A message handed to librdkafka whose acknowledgement has not been awaited yet.
pub struct PendingDelivery {
    topic: String,
    acknowledgement: Result<DeliveryFuture, SinkError>,
}

impl KafkaSink {
    /// Hands every message to the producer, in order (per-partition order is the order of this
    /// call), waiting for queue space if the producer is full. The wait is a timer, not a sleep of
    /// the thread: this runs on the async runtime, whose other tasks (the worker's heartbeat, the
    /// next batch's consumer) must go on meanwhile. Acknowledgements are awaited separately
    /// ([`KafkaSink::confirm`]), so the caller can do other work meanwhile.
    pub async fn enqueue<M: std::borrow::Borrow<OutMessage> + Sync>(&self, messages: &[M]) -> Vec<PendingDelivery> {
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages.iter().map(M::borrow) {
            let mut record = FutureRecord::to(&m.topic).payload(&m.payload);
            // librdkafka allocates a header list even for none: only make one when needed.
            if !m.headers.is_empty() {
                record = record.headers(owned_headers(&m.headers));
            }
            if let Some(key) = &m.key {
                record = record.key(key);
            }
            let acknowledgement = loop {
                match self.producer.send_result(record) {
                    Ok(future) => break Ok(future),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The producer's own thread drains the queue; wait a moment for room.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((e, _)) => {
                        break Err(SinkError::Delivery { topic: m.topic.clone(), source: Arc::new(e) });
                    }
                }
            };
            pending.push(PendingDelivery { topic: m.topic.clone(), acknowledgement });
        }
        pending
    }

    /// Waits for the broker's acknowledgement of each pending message, each bounded by `deadline`.
    pub async fn confirm(&self, pending: Vec<PendingDelivery>, deadline: Instant) -> Vec<Delivery> {
        self.confirm_placed(pending, deadline).await.into_iter().map(|r| r.map(|_| ())).collect()
    }

    /// [`KafkaSink::confirm`], with where each delivered message was written: (partition, offset).
    pub async fn confirm_placed(
        &self,
        pending: Vec<PendingDelivery>,
        deadline: Instant,
    ) -> Vec<Result<(i32, i64), SinkError>> {
        // Acknowledgements are awaited in order under one shared timer (a timer per message costs
        // more than the message); every message is in flight meanwhile. Once the deadline has
        // passed, the rest are only checked: those acknowledged in time still count as delivered.
        let timer = tokio::time::sleep_until(deadline.into());
        tokio::pin!(timer);
        let mut expired = false;
        let mut results = Vec::with_capacity(pending.len());
        for p in pending {
            let future = match p.acknowledgement {
                Ok(future) => future,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let outcome = if expired {
                future.now_or_never()
            } else {
                tokio::select! {
                    biased;
                    acknowledged = future => Some(acknowledged),
                    () = &mut timer => { expired = true; None }
                }
            };
            results.push(match outcome {
                Some(Ok(Ok(placed))) => Ok((placed.partition, placed.offset)),
                Some(Ok(Err((e, _)))) => Err(SinkError::Delivery { topic: p.topic, source: Arc::new(e) }),
                Some(Err(_canceled)) => Err(SinkError::Failed { topic: p.topic, reason: "the producer was closed" }),
                None => Err(SinkError::Timeout { topic: p.topic }),
            });
        }
        if expired {
            // Drop what is still queued so it does not mix with the next invocation's work (the
            // batch is retried: at-least-once). In-flight requests finish on their own.
            self.producer.purge(PurgeConfig::default().queue());
        }
        results
    }
}

impl Sink for KafkaSink {
    async fn send_all(&self, messages: &[&OutMessage], deadline: Instant) -> Vec<Delivery> {
        // Enqueueing everything first pipelines the batch: librdkafka batches and sends while
        // the acknowledgements are awaited together.
        let pending = self.enqueue(messages).await;
        self.confirm(pending, deadline).await
    }
}

/// A consumed record's headers in order, as `(name, value)` bytes (a header without a value reads
/// as an empty one), straight from librdkafka.
///
/// Not through rdkafka's `Headers::iter`: it turns every name into `&str` with an `unwrap`, so a
/// record whose header name is not UTF-8 (any producer can write one; the broker does not check)
/// would panic the consumer on that record again at every restart. And the replay skips most of a
/// fail record's headers by their prefix, which needs no UTF-8 check at all.
#[allow(unsafe_code)] // librdkafka's header accessors; see the SAFETY comments
pub(crate) fn record_headers<'m>(
    m: &'m rdkafka::message::BorrowedMessage<'_>,
) -> impl Iterator<Item = (&'m [u8], &'m [u8])> + 'm {
    use rdkafka::bindings as rd;
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `m.ptr()` is the message `m` borrows, alive for `'m`. librdkafka parses its headers on
    // the first call and keeps them with the message (freed with it, never while it is borrowed);
    // on any error (none, or unparsable) the pointer is left null and no header is read.
    let found = unsafe { rd::rd_kafka_message_headers(m.ptr(), &mut headers) };
    let count = if found == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !headers.is_null() {
        // SAFETY: `headers` is the message's valid header list.
        unsafe { rd::rd_kafka_header_cnt(headers) }
    } else {
        0
    };
    (0..count).filter_map(move |i| {
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
        // SAFETY: `i < count` indexes the list; the name is a NUL-terminated copy and the value a
        // buffer of `size` bytes (or null), both owned by the list, which nothing modifies while the
        // message is borrowed: they live for `'m`.
        unsafe {
            let got = rd::rd_kafka_header_get_all(headers, i, &mut name, &mut value, &mut size);
            if got != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                return None;
            }
            let name: &'m [u8] = std::ffi::CStr::from_ptr(name).to_bytes();
            let value: &'m [u8] = if value.is_null() { &[] } else { std::slice::from_raw_parts(value.cast(), size) };
            Some((name, value))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
    use rdkafka::producer::BaseProducer;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting(Arc<AtomicUsize>);
    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(Credentials::new(format!("AKID{n}"), "secret", None, None, "test")))
        }
    }

    /// librdkafka asks for a token as the client starts and again before the previous one
    /// expires (at 80% of its lifetime): with 2-second tokens, several within 4 seconds. No broker
    /// is needed for the refresh schedule; the port is closed.
    #[test]
    fn librdkafka_refreshes_msk_iam_tokens_before_they_expire() {
        let calls = Arc::new(AtomicUsize::new(0));
        let signer = MskIamSigner::new("us-east-1", SharedCredentialsProvider::new(Counting(calls.clone())))
            .unwrap()
            .with_lifetime(Duration::from_secs(2));
        let mut settings = ProducerSettings::new("127.0.0.1:1");
        settings.extra.push(("security.protocol".into(), "sasl_plaintext".into()));
        settings.extra.push(("sasl.mechanism".into(), "OAUTHBEARER".into()));
        let producer: BaseProducer<KafkaContext> =
            settings.client_config().create_with_context(KafkaContext::new(Some(signer))).unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(4) {
            producer.poll(Duration::from_millis(100));
        }
        // Expiry is the signing second + 2 s, so a token lives 1 to 2 s from when it is handed
        // over and is refreshed every 0.8 to 1.6 s: 3 to 6 tokens in 4 s. One would mean no
        // refresh; many more, a refresh loop.
        let n = calls.load(Ordering::SeqCst);
        assert!((2..=6).contains(&n), "{n} tokens in 4 s with a 2 s lifetime");
    }

    /// A full producer queue is waited out on a timer: other tasks of the same runtime thread keep
    /// running meanwhile. The broker address is closed, so the first message stays queued until
    /// its timeout frees the room the second one waits for.
    #[test]
    fn a_full_queue_is_waited_for_without_blocking_the_runtime() {
        let mut settings = ProducerSettings::new("127.0.0.1:1");
        settings.message_timeout_ms = 1500;
        settings.extra.push(("queue.buffering.max.messages".into(), "1".into()));
        let sink = KafkaSink::new(&settings).unwrap();
        let message = |n: u8| OutMessage {
            destination: crate::destination::Destination::Ok,
            topic: "t".into(),
            key: None,
            payload: vec![n],
            headers: Vec::new(),
            origin: crate::destination::Origin {
                group: "s-0".into(),
                topic: "s".into(),
                partition: 0,
                offset: Some(i64::from(n)),
            },
            failure: None,
            output: None,
        };
        let messages = [message(1), message(2)];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let (enqueued_at, ticked_at) = runtime.block_on(async {
            let ticker = tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Instant::now()
            });
            let pending = sink.enqueue(&messages).await;
            let enqueued_at = Instant::now();
            assert_eq!(pending.len(), 2);
            (enqueued_at, ticker.await.unwrap())
        });
        assert!(
            ticked_at + Duration::from_millis(500) < enqueued_at,
            "the other task ran only {:?} after enqueueing, not while it waited",
            ticked_at.checked_duration_since(enqueued_at)
        );
    }

    #[test]
    fn oauthbearer_without_iam_is_refused_with_a_reason() {
        let Err(e) = KafkaContext::default().generate_oauth_token(None) else { panic!("a token without a signer") };
        let e = e.to_string();
        assert!(e.contains("security: iam"), "{e}");
    }
}
