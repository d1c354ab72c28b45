//! What the broker benches share: topics, the worker's commit watch, medians.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The sum of the group's committed offsets over `partitions` partitions of `topic`.
pub fn committed(consumer: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let Ok(got) = consumer.committed_offsets(tpl, Duration::from_secs(5)) else { return 0 };
    got.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum()
}

/// Watches `group`'s commits on `input` until `records` are committed, then sends `stop`; returns
/// the rate from the first commit seen to the last (the group join is left out).
pub fn watch_commits(
    brokers: &str,
    group: &str,
    input: &str,
    partitions: i32,
    records: i64,
    stop: tokio::sync::oneshot::Sender<()>,
) -> f64 {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let watch_started = Instant::now();
    let mut first: Option<(Instant, i64)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = committed(&consumer, input, partitions);
        if done > 0 && first.is_none() {
            first = Some((Instant::now(), done));
        }
        if done >= records {
            let (t0, c0) = first.unwrap();
            let _ = stop.send(());
            // A small run can finish before the first commit is seen: then the only interval
            // there is runs from the start (group join included, so slower).
            let (count, since) = if done > c0 { (done - c0, t0) } else { (done, watch_started) };
            return count as f64 / since.elapsed().as_secs_f64().max(1e-6);
        }
        assert!(Instant::now() < deadline, "the worker did not finish ({done} of {records} committed)");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let new: Vec<NewTopic> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
}

pub async fn delete_topics(brokers: &str, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let _ = admin.delete_topics(topics, &AdminOptions::new()).await;
}
