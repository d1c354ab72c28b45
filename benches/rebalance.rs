//! `scripts/bench rebalance` (starts the local broker, then `cargo bench --bench rebalance`).
//!
//! Does a member joining or leaving pause the members that keep their partitions? Two
//! `lambda-stream run` workers share six partitions while a steady producer writes 100 records/s
//! to each; a third member joins, then one of the first two stops (SIGTERM). The ok topic stamps
//! each record with the broker's clock when it is appended (`LogAppendTime`), so the gaps between
//! consecutive outputs of a source partition show when that partition stopped producing.
//!
//! A partition is *kept* when the same member owns it before the join and after the leave (read
//! from the members' `partitions assigned` / `partitions revoked` lines). Reported per protocol:
//! the longest gap of kept partitions from just before the join to after the leave, the longest
//! gap in the steady state before (what one batch cycle — poll, map, deliver — costs), and the
//! longest gap of partitions that changed hands (their handover). The eager `range` assignor runs
//! as a reference: it revokes every partition at each rebalance.
//! Without `--bench` (as `cargo test --all-targets` runs it) it runs the consumer protocol once,
//! shortened, and checks the kept partitions did not stop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

// Each broker bench uses part of what they share.
#[allow(dead_code)]
mod support;
use support::{WorkerProcess, delete_topics, median};

const PARTITIONS: i32 = 6;
const PER_PARTITION_PER_SECOND: u64 = 100;
const MAPPING: &str = "version: 1\nname: rebalance-bench\nfields:\n  - {target: key, source: $.key, type: string, required: true}\n  - {target: seq, source: $.seq, type: integer, required: true}\n";

struct Scenario {
    name: &'static str,
    args: &'static [&'static str],
}

const SCENARIOS: [Scenario; 3] = [
    Scenario { name: "consumer (KIP-848)", args: &["--group-protocol", "consumer"] },
    Scenario { name: "classic, cooperative-sticky", args: &["--group-protocol", "classic"] },
    Scenario {
        name: "classic, eager range (reference)",
        args: &["--group-protocol", "classic", "--consumer-property", "partition.assignment.strategy=range"],
    },
];

/// When things happen, from the first produced record.
struct Timeline {
    join: Duration,
    leave: Duration,
    end: Duration,
}

#[derive(Default)]
struct Gaps {
    steady: Duration,
    kept: Duration,
    moved: Duration,
    kept_partitions: usize,
    /// When the longest kept gap began, from the join (negative: before it).
    kept_gap_from_join_ms: i64,
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let brokers = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (rounds, timeline, scenarios) = if quick {
        let t = Timeline { join: Duration::from_secs(3), leave: Duration::from_secs(5), end: Duration::from_secs(8) };
        (1, t, &SCENARIOS[..1])
    } else if let Ok(only) = std::env::var("REBALANCE_BENCH_SCENARIO") {
        let t = Timeline { join: Duration::from_secs(8), leave: Duration::from_secs(14), end: Duration::from_secs(22) };
        let only: usize = only.parse().expect("REBALANCE_BENCH_SCENARIO: 0, 1 or 2");
        (1, t, &SCENARIOS[only..=only])
    } else {
        let t = Timeline { join: Duration::from_secs(8), leave: Duration::from_secs(14), end: Duration::from_secs(22) };
        (3, t, &SCENARIOS[..])
    };
    for scenario in scenarios {
        let mut all = Vec::new();
        for round in 0..rounds {
            let gaps = runtime.block_on(run(&brokers, scenario, &timeline, round));
            eprintln!(
                "{}: round {round}: steady {:?}, kept {:?} ({} partitions; the longest began {} ms after the join, the leave at {} ms), handed over {:?}",
                scenario.name,
                gaps.steady,
                gaps.kept,
                gaps.kept_partitions,
                gaps.kept_gap_from_join_ms,
                (timeline.leave - timeline.join).as_millis(),
                gaps.moved
            );
            all.push(gaps);
        }
        let ms = |f: fn(&Gaps) -> Duration| {
            let mut v: Vec<f64> = all.iter().map(|g| f(g).as_secs_f64() * 1000.0).collect();
            (median(&mut v), v.iter().cloned().fold(0.0, f64::max))
        };
        let (steady, kept, moved) = (ms(|g| g.steady), ms(|g| g.kept), ms(|g| g.moved));
        let kept = if all.iter().all(|g| g.kept_partitions > 0) {
            format!("{:.0} ms ({:.0})", kept.0, kept.1)
        } else {
            "none kept its owner".to_string()
        };
        println!(
            "{:34} longest gap, median (worst) of {rounds}: steady {:.0} ms ({:.0}); kept partitions during join+leave {kept}; partitions handed over {:.0} ms ({:.0})",
            scenario.name, steady.0, steady.1, moved.0, moved.1
        );
        if quick {
            let g = &all[0];
            assert!(g.kept_partitions > 0, "no partition kept its owner");
            // Generous on a loaded test machine: an eager rebalance pauses kept partitions for
            // the whole join round; an incremental one not at all.
            assert!(g.kept < Duration::from_secs(2), "kept partitions stopped for {:?}", g.kept);
        }
    }
}

async fn run(brokers: &str, scenario: &Scenario, timeline: &Timeline, round: usize) -> Gaps {
    let tag = format!("{}-{round}", std::process::id());
    let (input, ok, fail, group) =
        (format!("rb-in-{tag}"), format!("rb-ok-{tag}"), format!("rb-fail-{tag}"), format!("rb-group-{tag}"));
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let topics = [
        NewTopic::new(&input, PARTITIONS, TopicReplication::Fixed(1)),
        NewTopic::new(&ok, PARTITIONS, TopicReplication::Fixed(1)).set("message.timestamp.type", "LogAppendTime"),
        NewTopic::new(&fail, 1, TopicReplication::Fixed(1)),
    ];
    for r in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("lambda-stream-rebalance-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mapping = dir.join("mapping.yaml");
    std::fs::write(&mapping, MAPPING).unwrap();
    let start = |name: &str| {
        Member::start(&dir.join(format!("{name}.log")), brokers, &mapping, &input, &ok, &fail, &group, scenario.args)
    };
    let mut a = start("a");
    let mut b = start("b");
    for m in [&a, &b] {
        m.wait_for("partitions assigned");
    }
    // Both members hold partitions before the producer starts: the steady state is two members.
    while a.owned().len() + b.owned().len() < PARTITIONS as usize || a.owned().is_empty() || b.owned().is_empty() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let producing = Arc::new(AtomicBool::new(true));
    let producer_thread = {
        let (brokers, input, producing) = (brokers.to_string(), input.clone(), Arc::clone(&producing));
        std::thread::spawn(move || produce_steadily(&brokers, &input, &producing))
    };
    let began = Instant::now();
    let at = |t: Duration| std::thread::sleep(t.saturating_sub(began.elapsed()));
    at(timeline.join);
    let before: Vec<BTreeSet<i32>> = vec![a.owned(), b.owned()];
    let join_at = began.elapsed();
    let mut c = start("c");
    at(timeline.leave);
    let leave_at = began.elapsed();
    let b_status = b.stop();
    assert!(b_status.success(), "the leaving member exits 0");
    at(timeline.end);
    producing.store(false, Ordering::Relaxed);
    let produced = producer_thread.join().unwrap();
    let after = [a.owned(), c.owned()];
    let kept: BTreeSet<i32> = before[0].intersection(&after[0]).copied().collect();
    let outputs = read_ok(brokers, &ok, produced);
    let (a_status, c_status) = (a.stop(), c.stop());
    assert!(a_status.success() && c_status.success());
    delete_topics(brokers, &[&input, &ok, &fail]).await;
    let _ = std::fs::remove_dir_all(&dir);

    // Appended times relative to the first output, per source partition.
    let first = outputs.values().flat_map(|v| v.first()).min().copied().unwrap_or(0);
    let window = (join_at.as_millis() as i64 - 500, leave_at.as_millis() as i64 + 3000);
    let mut gaps = Gaps { kept_partitions: kept.len(), ..Gaps::default() };
    // Output times are the broker's, event times the bench's: the same clock on one machine, but
    // not the same origin. The first output left the producer's first second: align on it.
    let origin = first;
    for (partition, times) in &outputs {
        for pair in times.windows(2) {
            let (t0, t1) = (pair[0] - origin, pair[1] - origin);
            let gap = Duration::from_millis((t1 - t0) as u64);
            if t1 < window.0 && t0 > 1000 {
                gaps.steady = gaps.steady.max(gap);
            } else if t1 >= window.0 && t0 <= window.1 {
                if kept.contains(partition) {
                    if gap > gaps.kept {
                        gaps.kept = gap;
                        gaps.kept_gap_from_join_ms = t0 - join_at.as_millis() as i64;
                    }
                } else {
                    gaps.moved = gaps.moved.max(gap);
                }
            }
        }
    }
    gaps
}

/// One `lambda-stream run` process, its log in a file.
struct Member {
    process: WorkerProcess,
    log: PathBuf,
}

impl Member {
    #[allow(clippy::too_many_arguments)]
    fn start(
        log: &std::path::Path,
        brokers: &str,
        mapping: &std::path::Path,
        input: &str,
        ok: &str,
        fail: &str,
        group: &str,
        extra: &[&str],
    ) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
            .args(["run", "--mapping"])
            .arg(mapping)
            .args(["--brokers", brokers, "--topics", input, "--group", group, "--topic-ok", ok, "--topic-fail", fail])
            .args(["--stats-interval-s", "0"])
            .args(extra)
            .env_remove("LAMBDA_ENV")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("the worker starts");
        Member { process: WorkerProcess(child), log: log.to_path_buf() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, needle: &str) {
        let started = Instant::now();
        while !self.log().contains(needle) {
            assert!(started.elapsed() < Duration::from_secs(30), "no `{needle}` in the log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The source partitions this member owns now, replaying its assignment lines in order.
    fn owned(&self) -> BTreeSet<i32> {
        let mut owned = BTreeSet::new();
        for line in self.log().lines() {
            let assigned = line.contains("partitions assigned");
            if !assigned && !line.contains("partitions revoked") {
                continue;
            }
            let Some(list) = line.split("partitions=").nth(1) else { continue };
            for tp in list.split_whitespace().next().unwrap_or_default().split(',') {
                let Some(p) = tp.rsplit('-').next().and_then(|p| p.parse().ok()) else { continue };
                if assigned {
                    owned.insert(p);
                } else {
                    owned.remove(&p);
                }
            }
        }
        owned
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let stopped = self.process.stop();
        stopped.unwrap_or_else(|| panic!("the member did not stop:\n{}", self.log()))
    }
}

/// Writes `PER_PARTITION_PER_SECOND` records a second to every partition, each naming its
/// partition and sequence number; returns how many.
fn produce_steadily(brokers: &str, topic: &str, producing: &AtomicBool) -> u64 {
    let producer: rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "1").create().unwrap();
    let started = Instant::now();
    let mut seq = 0u64;
    while producing.load(Ordering::Relaxed) {
        for p in 0..PARTITIONS {
            let key = format!("p{p}");
            let value = format!(r#"{{"key": "{key}", "seq": {seq}}}"#);
            support::send(&producer, BaseRecord::to(topic).partition(p).key(&key).payload(value.as_bytes()));
        }
        seq += 1;
        let due = started + Duration::from_micros(seq * 1_000_000 / PER_PARTITION_PER_SECOND);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    seq * PARTITIONS as u64
}

/// Reads the ok topic until `expected` records (at least once each); per source partition, the
/// broker's append times in milliseconds, in order.
fn read_ok(brokers: &str, topic: &str, expected: u64) -> BTreeMap<i32, Vec<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("rb-reader-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen: BTreeMap<i32, BTreeMap<u64, i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let count = |seen: &BTreeMap<i32, BTreeMap<u64, i64>>| seen.values().map(|s| s.len() as u64).sum::<u64>();
    while count(&seen) < expected {
        assert!(Instant::now() < deadline, "only {} of {expected} records reached the ok topic", count(&seen));
        let Some(message) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = message.unwrap();
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let partition: i32 = value["key"].as_str().unwrap()[1..].parse().unwrap();
        let seq = value["seq"].as_u64().unwrap();
        let Timestamp::LogAppendTime(at) = message.timestamp() else { panic!("the ok topic stamps append times") };
        // The first copy of a record is when its partition produced it.
        seen.entry(partition).or_default().entry(seq).or_insert(at);
    }
    seen.into_iter().map(|(p, by_seq)| (p, by_seq.into_values().collect())).collect()
}
