//! The AWS Lambda function: the handler (`Function`), shared with `process --event`, and in
//! `runtime` (with the `kafka` feature) the Runtime API glue, the only `lambda_runtime` import.
//!
//! Cold start builds everything once — settings, the compiled mapping, one idempotent producer —
//! and logs `init_ms`. Each invocation decodes the Kafka event, runs the shared pipeline and
//! returns a summary; if any delivery failed it returns an error so Lambda retries the batch
//! (or, in partial-batch mode, names the first failed record of each partition).

#[cfg(feature = "kafka")]
pub mod runtime;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::pipeline::{BatchReport, Pipeline};
use crate::record;
use crate::sink::Sink;

/// What an invocation can fail with (the batch is then retried by Lambda).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the invocation event is not a Kafka event: {0}")]
    Event(#[from] record::EventError),
    #[error("{count} of {total} messages were not delivered (first: {first}); the batch will be retried")]
    Undelivered {
        count: usize,
        total: usize,
        #[source]
        first: crate::sink::SinkError,
    },
    /// The schema registry could not answer: no record was mapped, the batch is retried.
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Registry(#[from] crate::format::registry::RegistryError),
}

/// Everything built at cold start and borrowed by every invocation.
pub struct Function<S> {
    pub pipeline: Pipeline,
    pub sink: S,
    pub partial_batch: bool,
    pub delivery_margin: Duration,
}

impl<S: Sink> Function<S> {
    /// Handles one event, given as its JSON text; `deadline` is when Lambda will stop the function.
    pub async fn handle(&self, event: &str, deadline: Instant) -> Result<Value, HandlerError> {
        let report = self.run_event(event, deadline).await?;
        self.respond(&report)
    }

    /// Decodes the event and runs the batch, keeping the whole report (the CLI prints it).
    /// `duration_ms` is the handler's own time: from the event's text to the last acknowledgement.
    pub async fn run_event(&self, event: &str, deadline: Instant) -> Result<BatchReport, HandlerError> {
        let started = Instant::now();
        let event = record::decode_event_text(event)?;
        // Stop waiting for the broker early enough to answer before Lambda kills us.
        let deliver_by = deadline.checked_sub(self.delivery_margin).unwrap_or(deadline);
        #[cfg(feature = "kafka")]
        let schemas = self.pipeline.prepare(&event.inputs).await?;
        #[cfg(not(feature = "kafka"))]
        let schemas = self.pipeline.local_schemas();
        let mut report = self.pipeline.run_batch_in(&self.sink, &event.inputs, deliver_by, &schemas).await;
        report.summary.duration_ms = started.elapsed().as_millis() as u64;
        report.event_source = event.event_source;
        log_summary(&report, report.event_source.as_deref());
        Ok(report)
    }

    /// The invocation's answer: the summary, a partial-batch response, or an error to retry.
    pub fn respond(&self, report: &BatchReport) -> Result<Value, HandlerError> {
        let summary = serde_json::to_value(&report.summary).expect("a summary always serialises");
        if report.undelivered.is_empty() {
            return Ok(summary);
        }
        if self.partial_batch
            && let Some(items) = report.batch_item_failures()
        {
            let failures: Vec<Value> = items.iter().map(|i| json!({"itemIdentifier": i})).collect();
            let mut response = json!({ "batchItemFailures": failures });
            response["summary"] = summary;
            return Ok(response);
        }
        Err(HandlerError::Undelivered {
            count: report.undelivered.len(),
            total: report.routed.iter().map(|r| r.messages().len()).sum(),
            first: report.undelivered[0].1.clone(),
        })
    }
}

fn log_summary(report: &BatchReport, event_source: Option<&str>) {
    let s = &report.summary;
    tracing::info!(
        event_source = event_source.unwrap_or(""),
        mapping = %s.mapping,
        received = s.received,
        ok = s.ok,
        failed = s.failed,
        skipped = s.skipped,
        dropped = s.dropped,
        undelivered = report.undelivered.len(),
        duration_ms = s.duration_ms,
        "batch done"
    );
    if let Some((origin, error)) = report.undelivered.first() {
        tracing::error!(topic = %origin.topic, partition = origin.partition, offset = origin.offset, %error, "delivery failed");
    }
}

/// The Lambda deadline (milliseconds since the epoch) as an `Instant`.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
