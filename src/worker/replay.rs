//! `lambda-stream replay`: the records of a fail topic, rebuilt from their envelopes and run
//! through a (fixed) mapping again — a batch job over the fail topic as it was when it started.
//!
//! Offsets are committed under a consumer group only after the batch's messages are delivered
//! (at-least-once), so an interrupted replay resumes where it stopped and a second replay of the
//! same range with the same group finds nothing left.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use crate::pipeline::Pipeline;
use crate::record::{Input, Payload, Source};
use crate::route::{ReadEnvelope, Routed};
use crate::sink::Sink;
use crate::sink::kafka::KafkaSink;

/// On every replayed message: where in the fail topic it came from (`topic/partition/offset`).
pub const HEADER_REPLAY_FROM: &str = "lambda-stream.replay.from";
/// On every replayed message: the original source record (`topic/partition/offset`).
pub const HEADER_REPLAY_OF: &str = "lambda-stream.replay.of";

/// What to replay and how.
pub struct ReplayOptions {
    pub brokers: String,
    pub from: String,
    pub group: String,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only records whose errors include this `field:rule`.
    pub only_rule: Option<String>,
    /// Produce and commit nothing; count what would happen.
    pub dry_run: bool,
}

/// What a replay did (or, dry, would do).
#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub read: u64,
    pub now_ok: u64,
    pub still_failing: u64,
    /// Dropped by the new mapping's `drop:` (or a tombstone): skipped, counted.
    pub skipped: u64,
    /// Not lambda-stream fail envelopes: counted, not replayed, never silently dropped.
    pub not_ours: u64,
    /// Left out by `--where`.
    pub not_selected: u64,
    /// Per `field:rule` of the old failures: how many records now pass, how many still fail, and
    /// the new errors of those (by `field:rule`).
    pub by_old_rule: BTreeMap<String, RuleOutcome>,
}

#[derive(Debug, Default, Serialize)]
pub struct RuleOutcome {
    pub now_ok: u64,
    pub still_failing: u64,
    pub new_errors: BTreeMap<String, u64>,
}

fn decode(text: &Option<String>, encoding: &str) -> Option<Vec<u8>> {
    let text = text.as_ref()?;
    match encoding {
        "base64" => base64::engine::general_purpose::STANDARD.decode(text).ok(),
        _ => Some(text.as_bytes().to_vec()),
    }
}

/// Rebuilds the source record of a fail record: key, value, original headers, timestamp and
/// position. `None` when it is not one of ours (or its value cannot be decoded).
pub fn rebuild(envelope: &ReadEnvelope, fail_headers: &[(String, Vec<u8>)]) -> Option<Input> {
    let value = match &envelope.value {
        None => Payload::Tombstone,
        Some(raw) if raw.get() == "null" => Payload::Tombstone,
        Some(_) => Payload::Value(decode(&Some(envelope.value_text()?), &envelope.value_encoding)?),
    };
    let s = &envelope.source;
    let headers = fail_headers.iter().filter(|(k, _)| !k.starts_with("lambda-stream.error.")).cloned().collect();
    Some(Input {
        source: Source {
            topic: s.topic.clone(),
            partition: s.partition,
            offset: s.offset,
            timestamp: s.timestamp,
            key: decode(&s.key, &s.key_encoding),
            headers,
            group: format!("{}-{}", s.topic, s.partition),
            ..Source::default()
        },
        payload: value,
    })
}

fn rules(errors: &[crate::plan::FieldError]) -> Vec<String> {
    let mut r: Vec<String> =
        errors.iter().map(|e| format!("{}:{}", e.field.as_deref().unwrap_or("-"), e.rule)).collect();
    r.dedup();
    r
}

/// Runs the replay to the end of the fail topic as it was when it started (or to `until`).
pub async fn replay(
    options: &ReplayOptions,
    pipeline: &Pipeline,
    sink: Option<&KafkaSink>,
    mut progress: impl FnMut(&ReplayReport),
) -> Result<ReplayReport, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("group.id", &options.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.queue.backoff.ms", "10")
        .set("max.partition.fetch.bytes", "16777216")
        .create()
        .map_err(|e| format!("cannot create a consumer: {e}"))?;
    let timeout = Duration::from_secs(10);
    let topic = options.from.as_str();
    let partitions = super::range::partitions_of(&consumer, topic, None, timeout)?;
    if partitions.is_empty() {
        return Err(format!("topic `{topic}` does not exist"));
    }
    let mut all = TopicPartitionList::new();
    for p in &partitions {
        all.add_partition(topic, *p);
    }
    let committed =
        consumer.committed_offsets(all, timeout).map_err(|e| format!("cannot read committed offsets: {e}"))?;
    let at_time = |ms: i64| super::range::offsets_at(&consumer, topic, &partitions, ms, timeout);
    let since = options.since_ms.map(&at_time).transpose()?;
    let until = options.until_ms.map(&at_time).transpose()?;
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for (i, p) in partitions.iter().enumerate() {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, timeout)
            .map_err(|e| format!("cannot read the end of `{topic}`: {e}"))?;
        let resumed = committed.find_partition(topic, *p).and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        });
        let from_time = since.as_ref().map(|s| s[i].unwrap_or(high));
        // A dry run ignores the group's progress: it looks at the whole range.
        let start = if options.dry_run { from_time.unwrap_or(low) } else { resumed.or(from_time).unwrap_or(low) };
        starts.push(start.clamp(low, high));
        ends.push(until.as_ref().map_or(high, |u| u[i].unwrap_or(high).min(high)));
    }
    let mut report = ReplayReport::default();
    for (i, p) in partitions.iter().enumerate() {
        if starts[i] >= ends[i] {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, *p, Offset::Offset(starts[i])).map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| format!("cannot read partition {p}: {e}"))?;
        let mut next = starts[i];
        while next < ends[i] {
            // A batch: up to 1,000 records of this partition.
            let mut inputs = Vec::new();
            let mut origins = Vec::new();
            while inputs.len() < 1000 && next < ends[i] {
                let m = match consumer.poll(timeout) {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(format!("cannot read `{topic}` partition {p}: {e}")),
                    None => {
                        return Err(format!("no record from `{topic}` partition {p} within {} s", timeout.as_secs()));
                    }
                };
                next = m.offset() + 1;
                report.read += 1;
                let headers: Vec<(String, Vec<u8>)> = m
                    .headers()
                    .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec())).collect())
                    .unwrap_or_default();
                let envelope = m.payload().map(ReadEnvelope::parse);
                let Some(Ok(envelope)) = envelope else {
                    report.not_ours += 1;
                    continue;
                };
                let old_rules = rules(&envelope.errors);
                if let Some(only) = &options.only_rule
                    && !old_rules.contains(only)
                {
                    report.not_selected += 1;
                    continue;
                }
                let Some(input) = rebuild(&envelope, &headers) else {
                    report.not_ours += 1;
                    continue;
                };
                origins.push((format!("{topic}/{p}/{}", m.offset()), old_rules));
                inputs.push(input);
            }
            let mut routed = pipeline.route_all(&inputs);
            for ((from, old_rules), (r, input)) in origins.iter().zip(routed.iter_mut().zip(&inputs)) {
                let outcome = match r {
                    Routed::Message(m) => {
                        let of = format!(
                            "{}/{}/{}",
                            input.source.topic,
                            input.source.partition,
                            input.source.offset.map_or_else(|| "?".into(), |o| o.to_string())
                        );
                        m.headers.push((HEADER_REPLAY_FROM.into(), from.clone().into_bytes()));
                        m.headers.push((HEADER_REPLAY_OF.into(), of.into_bytes()));
                        Some(m.failure.as_ref().map(|f| rules(&f.errors)))
                    }
                    Routed::Skipped(..) => None,
                };
                match &outcome {
                    None => report.skipped += 1,
                    Some(None) => report.now_ok += 1,
                    Some(Some(_)) => report.still_failing += 1,
                }
                for old in old_rules {
                    let row = report.by_old_rule.entry(old.clone()).or_default();
                    match &outcome {
                        Some(None) => row.now_ok += 1,
                        Some(Some(new)) => {
                            row.still_failing += 1;
                            for n in new {
                                *row.new_errors.entry(n.clone()).or_default() += 1;
                            }
                        }
                        None => {}
                    }
                }
            }
            if let Some(sink) = sink {
                let messages: Vec<_> = routed.iter().filter_map(Routed::message).collect();
                let deadline = Instant::now() + Duration::from_secs(60);
                let delivered = sink.send_all(&messages, deadline).await;
                if let Some(Err(e)) = delivered.into_iter().find(Result::is_err) {
                    return Err(format!("delivery failed, nothing past the last commit is committed: {e}"));
                }
                let mut offsets = TopicPartitionList::new();
                offsets.add_partition_offset(topic, *p, Offset::Offset(next)).map_err(|e| e.to_string())?;
                consumer.commit(&offsets, CommitMode::Sync).map_err(|e| format!("cannot commit: {e}"))?;
            }
            progress(&report);
        }
    }
    Ok(report)
}
