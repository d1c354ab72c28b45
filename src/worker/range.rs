//! Reading a stretch of a topic — from a point in time to the end it had when the read started (or
//! to another point in time) — without a consumer group and committing nothing: what `failures`
//! needs to look at a fail topic without disturbing anyone's offsets.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use crate::sink::kafka::KafkaContext;
use crate::sink::{ProducerSettings, SinkError};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Why a topic could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    /// The client's context (its MSK IAM signer) could not be made.
    #[error(transparent)]
    Context(#[from] SinkError),
    #[error("cannot create a consumer: {0}")]
    Consumer(#[source] KafkaError),
    #[error("topic `{topic}` does not exist or has no such partition")]
    NoSuchTopic { topic: String },
    /// The cluster did not answer for the topic: unreachable, or refusing the client.
    #[error("cannot read topic `{topic}` from {brokers}: {source}")]
    Metadata { topic: String, brokers: Box<str>, source: KafkaError },
    #[error("cannot read the end of `{topic}`: {source}")]
    End { topic: String, source: KafkaError },
    #[error("cannot find offsets for times: {0}")]
    OffsetsForTimes(#[source] KafkaError),
    #[error("cannot read `{topic}` partition {partition}: {source}")]
    Partition { topic: String, partition: i32, source: KafkaError },
    /// The partition has more records (its end was read before), so the broker is not answering.
    #[error("no record from `{topic}` partition {partition} within {} s", .within.as_secs())]
    Silent { topic: String, partition: i32, within: Duration },
}

/// One record of the stretch.
pub struct RangeRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (milliseconds since the epoch), if it has one.
    pub timestamp: Option<i64>,
    pub payload: Option<&'a [u8]>,
}

/// Where to read: times in milliseconds since the epoch.
pub struct Range {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub partition: Option<i32>,
}

/// Reads `topic` over `range`, calling `each` for every record in partition order, and `progress`
/// with (records read, records to read) now and then. Returns the records read.
pub fn read_range(
    cluster: &ProducerSettings,
    topic: &str,
    range: &Range,
    mut each: impl FnMut(RangeRecord<'_>),
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, RangeError> {
    let consumer = reader(cluster, "lambda-stream-failures")?;
    let timeout = Duration::from_secs(10);
    let partitions = partitions_of(&consumer, &cluster.brokers, topic, range.partition, timeout)?;
    if partitions.is_empty() {
        return Err(RangeError::NoSuchTopic { topic: topic.to_owned() });
    }
    // Start and end offsets per partition: the end is where the topic ended when the read began
    // (or the first offset at `until`), so a busy topic's read still ends.
    let at = |ms: i64| -> Result<Vec<i64>, RangeError> {
        Ok(offsets_at(&consumer, topic, &partitions, ms, timeout)?.into_iter().map(|o| o.unwrap_or(i64::MAX)).collect())
    };
    let watermarks: Vec<(i64, i64)> =
        partitions.iter().map(|p| end_of(&consumer, topic, *p, timeout)).collect::<Result<_, _>>()?;
    let starts: Vec<i64> = match range.since_ms {
        Some(ms) => at(ms)?.iter().zip(&watermarks).map(|(o, (low, high))| (*o).clamp(*low, *high)).collect(),
        None => watermarks.iter().map(|(low, _)| *low).collect(),
    };
    let ends: Vec<i64> = match range.until_ms {
        Some(ms) => at(ms)?.iter().zip(&watermarks).map(|(o, (_, high))| (*o).min(*high)).collect(),
        None => watermarks.iter().map(|(_, high)| *high).collect(),
    };
    let total: u64 = starts.iter().zip(&ends).map(|(s, e)| (e - s).max(0) as u64).sum();
    let mut read = 0u64;
    progress(0, total);
    for (i, p) in partitions.iter().enumerate() {
        if starts[i] >= ends[i] {
            continue;
        }
        assign(&consumer, topic, *p, starts[i])?;
        while let Some(m) = next_record(&consumer, topic, *p, timeout)? {
            if m.offset() >= ends[i] {
                break;
            }
            each(RangeRecord {
                partition: *p,
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                payload: m.payload(),
            });
            read += 1;
            if read.is_multiple_of(10_000) {
                progress(read, total);
            }
            if m.offset() + 1 >= ends[i] {
                break;
            }
        }
    }
    progress(read, total);
    Ok(read)
}

/// The consumer of the fail topic's readers: assigned partitions, no commits of its own, an end
/// of partition reported, committed records only; it reads ahead in large fetches, without
/// librdkafka's one-second pause once its prefetch queue is full (the worker's consumer sets the
/// same, for the same reason).
pub(super) fn reader(cluster: &ProducerSettings, group: &str) -> Result<BaseConsumer<KafkaContext>, RangeError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &cluster.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.queue.backoff.ms", "10")
        .set("max.partition.fetch.bytes", "16777216")
        .set("queued.max.messages.kbytes", "262144");
    for (k, v) in &cluster.extra {
        config.set(k, v);
    }
    config.create_with_context(cluster.context()?).map_err(RangeError::Consumer)
}

/// The low and high watermarks of `partition` of `topic`.
pub(super) fn end_of<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<(i64, i64), RangeError> {
    consumer
        .fetch_watermarks(topic, partition, timeout)
        .map_err(|source| RangeError::End { topic: topic.to_owned(), source })
}

/// Points the reader at `partition` of `topic` from `offset` (and at nothing else).
pub(super) fn assign<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), RangeError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .and_then(|()| consumer.assign(&tpl))
        .map_err(|source| RangeError::Partition { topic: topic.to_owned(), partition, source })
}

/// The assigned partition's next record; `None` at its end. No record within `timeout` is an
/// error: the partition has more (its end was read before), so the broker is not answering.
pub(super) fn next_record<'c, C: ConsumerContext>(
    consumer: &'c BaseConsumer<C>,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Option<BorrowedMessage<'c>>, RangeError> {
    match consumer.poll(timeout) {
        Some(Ok(m)) => Ok(Some(m)),
        Some(Err(KafkaError::PartitionEOF(_))) => Ok(None),
        Some(Err(source)) => Err(RangeError::Partition { topic: topic.to_owned(), partition, source }),
        None => Err(RangeError::Silent { topic: topic.to_owned(), partition, within: timeout }),
    }
}

/// The partitions of `topic` (only `only`, when given); empty when the topic does not exist.
/// `brokers` (the bootstrap servers) is named in the error when the cluster does not answer.
pub(super) fn partitions_of<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    brokers: &str,
    topic: &str,
    only: Option<i32>,
    timeout: Duration,
) -> Result<Vec<i32>, RangeError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|source| RangeError::Metadata {
        topic: topic.to_owned(),
        brokers: brokers.into(),
        source,
    })?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .filter(|p| only.is_none_or(|only| only == *p))
        .collect())
}

/// Per partition, the first offset at or after `ms` (milliseconds since the epoch); `None` when
/// no record is that recent.
pub(super) fn offsets_at<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: &[i32],
    ms: i64,
    timeout: Duration,
) -> Result<Vec<Option<i64>>, RangeError> {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(ms)).map_err(|source| RangeError::Partition {
            topic: topic.to_owned(),
            partition: *p,
            source,
        })?;
    }
    let found = consumer.offsets_for_times(tpl, timeout).map_err(RangeError::OffsetsForTimes)?;
    Ok(found.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { Some(o) } else { None }).collect())
}
