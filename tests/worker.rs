//! `lambda-stream run` against real Kafka brokers: the worker as a separate process, as operators
//! run it. Accounting (every input in exactly one place), clean SIGTERM, two members sharing a
//! group, SIGKILL and restart, a missing fail topic, exactly-once to a `read_committed` reader, and
//! a broker stopped and restarted mid-stream (on a private broker this test can stop).

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::kafka_util::*;
use crate::util::{TempFile, root};

/// id must be an integer: `{"id": "x7"}` fails with a type error and goes to the fail topic.
const MAPPING: &str = "version: 1\nname: worker-test\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n  - {target: n, source: $.n, type: string}\n";

/// What input `i` is: valid (→ ok), invalid (→ fail) or a tombstone (→ counted skip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Valid,
    Invalid,
    Tombstone,
}

fn kind(i: u64) -> Kind {
    match i % 10 {
        3 => Kind::Invalid,
        7 => Kind::Tombstone,
        _ => Kind::Valid,
    }
}

fn producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("test producer")
}

fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, i: u64) {
    let key = format!("k{i}");
    let value = match kind(i) {
        Kind::Valid => Some(format!(r#"{{"id": {i}, "n": "record {i}", "pad": "{}"}}"#, "x".repeat(64))),
        Kind::Invalid => Some(format!(r#"{{"id": "x{i}"}}"#)),
        Kind::Tombstone => None,
    };
    let mut record = BaseRecord::to(topic).key(&key);
    if let Some(v) = &value {
        record = record.payload(v);
    }
    let mut record = record;
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((e, r)) => {
                assert!(matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)), "{e}");
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn produce_range(brokers: &str, topic: &str, range: std::ops::Range<u64>) {
    let p = producer(brokers);
    for i in range {
        send(&p, topic, i);
    }
    p.flush(Duration::from_secs(60)).expect("inputs produced");
}

/// Where each input id ended up, read from the ok and fail topics (`read_committed`).
#[derive(Default, Debug)]
struct Placed {
    ok: BTreeMap<u64, usize>,
    fail: BTreeMap<u64, usize>,
}

/// How long readers keep reading after the expected count, so that duplicates show up too.
const GRACE: Duration = Duration::from_millis(1500);

impl Placed {
    /// Reads until the outputs of every input in `inputs` could be there (or `timeout`).
    fn read(
        brokers: &str,
        ok: &str,
        fail: &str,
        partitions: i32,
        inputs: std::ops::Range<u64>,
        timeout: Duration,
    ) -> Placed {
        let mut placed = Placed::default();
        let want_ok = inputs.clone().filter(|i| kind(*i) == Kind::Valid).count();
        let want_fail = inputs.filter(|i| kind(*i) == Kind::Invalid).count();
        let (oks, fails) = std::thread::scope(|s| {
            let oks = s.spawn(|| consume_from(brokers, ok, partitions, want_ok, timeout, GRACE));
            let fails = s.spawn(|| consume_from(brokers, fail, partitions, want_fail, timeout, GRACE));
            (oks.join().unwrap(), fails.join().unwrap())
        });
        for m in oks {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            *placed.ok.entry(v["id"].as_u64().expect("an integer id")).or_default() += 1;
        }
        for m in fails {
            let envelope: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            // A JSON object travels embedded in its envelope.
            assert_eq!(envelope["value_encoding"], "json");
            let value = &envelope["value"];
            let id = value["id"].as_str().unwrap().trim_start_matches('x').parse().unwrap();
            *placed.fail.entry(id).or_default() += 1;
        }
        placed
    }

    fn total(&self) -> usize {
        self.ok.values().sum::<usize>() + self.fail.values().sum::<usize>()
    }

    fn duplicates(&self) -> usize {
        self.ok.values().chain(self.fail.values()).map(|n| n - 1).sum()
    }

    /// Every non-tombstone input of `range` is in its right topic at least once, and nothing else
    /// is there.
    fn assert_complete(&self, range: std::ops::Range<u64>) {
        let want_ok: HashSet<u64> = range.clone().filter(|i| kind(*i) == Kind::Valid).collect();
        let want_fail: HashSet<u64> = range.filter(|i| kind(*i) == Kind::Invalid).collect();
        let got_ok: HashSet<u64> = self.ok.keys().copied().collect();
        let got_fail: HashSet<u64> = self.fail.keys().copied().collect();
        let missing_ok: Vec<_> = want_ok.difference(&got_ok).take(10).collect();
        let missing_fail: Vec<_> = want_fail.difference(&got_fail).take(10).collect();
        assert!(missing_ok.is_empty() && missing_fail.is_empty(), "lost: ok {missing_ok:?}, fail {missing_fail:?}");
        assert_eq!(got_ok.len(), want_ok.len(), "unexpected ids on the ok topic");
        assert_eq!(got_fail.len(), want_fail.len(), "unexpected ids on the fail topic");
    }
}

/// The group's committed offsets, per partition.
fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    crate::kafka_util::try_committed(brokers, group, topic, partitions).expect("committed offsets")
}

fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> Vec<Offset> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", "watermarks").create().unwrap();
    (0..partitions)
        .map(|p| Offset::Offset(consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap().1))
        .collect()
}

/// A `lambda-stream run` process; killed if still running when dropped.
pub(crate) struct WorkerProcess {
    child: Child,
    log: PathBuf,
    _dir: TempFile,
}

impl WorkerProcess {
    pub(crate) fn start(
        brokers: &str,
        mapping: &TempFile,
        topics: &str,
        group: &str,
        ok: &str,
        fail: &str,
        extra: &[&str],
    ) -> Self {
        let dir = TempFile::new(&format!("{}.log", unique_topic("worker")), b"");
        let log = dir.path.clone();
        let mut args: Vec<String> = [
            "run",
            "--mapping",
            mapping.arg(),
            "--brokers",
            brokers,
            "--topics",
            topics,
            "--group",
            group,
            "--topic-ok",
            ok,
            "--topic-fail",
            fail,
            "--stats-interval-s",
            "1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A crashed member is detected in 6 s (the broker's consumer-protocol groups are set up
        // alike by scripts/kafka/run); a worker told its protocol keeps the broker's choice.
        if !extra.contains(&"--group-protocol") {
            args.extend(["--session-timeout-s".to_string(), "6".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
            .args(&args)
            .current_dir(root())
            .env_remove("LAMBDA_ENV")
            // WORKER_RUST_LOG=lambda_stream::worker=trace shows every step when debugging.
            .env("RUST_LOG", std::env::var("WORKER_RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("worker starts");
        WorkerProcess { child, log, _dir: dir }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, without the per-record lines (for failure messages).
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains("routed to the fail topic")).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub(crate) fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no `{needle}` in the worker's log within {timeout:?}:\n{}", self.log());
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and stdout.
    fn wait(&mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                self.child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
                return (status, out);
            }
            assert!(started.elapsed() < timeout, "the worker did not exit within {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the totals line it prints on a clean exit.
    pub(crate) fn stop(&mut self) -> serde_json::Value {
        self.signal("-TERM");
        let started = Instant::now();
        let (status, out) = self.wait(Duration::from_secs(20));
        assert!(status.success(), "exit {status:?}:\n{}", self.log());
        assert!(started.elapsed() < Duration::from_secs(15), "a clean stop is bounded");
        serde_json::from_str(out.lines().last().expect("a totals line")).expect("totals JSON")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Topics {
    pub(crate) input: String,
    pub(crate) ok: String,
    pub(crate) fail: String,
    pub(crate) group: String,
}

pub(crate) async fn topics(prefix: &str, partitions: i32) -> Topics {
    let t = Topics {
        input: unique_topic(&format!("{prefix}-in")),
        ok: unique_topic(&format!("{prefix}-ok")),
        fail: unique_topic(&format!("{prefix}-fail")),
        group: unique_topic(&format!("{prefix}-group")),
    };
    create_topics(&[(&t.input, partitions), (&t.ok, partitions), (&t.fail, partitions)]).await;
    t
}

fn mapping() -> TempFile {
    TempFile::new(&format!("{}.yaml", unique_topic("mapping")), MAPPING.as_bytes())
}

fn assert_accounting(totals: &serde_json::Value, n: u64) {
    let get = |k: &str| totals[k].as_u64().unwrap_or_else(|| panic!("{k} in {totals}"));
    assert_eq!(get("received"), n, "{totals}");
    assert_eq!(get("ok") + get("failed") + get("skipped"), get("received"), "{totals}");
    assert_eq!(get("skipped"), (0..n).filter(|i| kind(*i) == Kind::Tombstone).count() as u64, "{totals}");
    assert_eq!(get("failed"), (0..n).filter(|i| kind(*i) == Kind::Invalid).count() as u64, "{totals}");
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_places_every_record_commits_and_stops_cleanly_on_sigterm() {
    let brokers = bootstrap();
    let t = topics("w-basic", 3).await;
    let m = mapping();
    let n = 3000;
    produce_range(&brokers, &t.input, 0..n);
    let mut w = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &[]);
    let placed = Placed::read(&brokers, &t.ok, &t.fail, 3, 0..n, Duration::from_secs(60));
    placed.assert_complete(0..n);
    assert_eq!(placed.duplicates(), 0, "a clean run produces each output once");
    w.wait_for_log("progress", Duration::from_secs(10));
    let totals = w.stop();
    assert_accounting(&totals, n);
    assert!(w.log().contains("worker stopped"));
    // Offsets were committed up to the end of every partition.
    assert_eq!(committed(&brokers, &t.group, &t.input, 3), end_offsets(&brokers, &t.input, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_in_one_group_share_the_partitions() {
    let brokers = bootstrap();
    let t = topics("w-group", 4).await;
    let m = mapping();
    let mut a = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &[]);
    a.wait_for_log("partitions assigned", Duration::from_secs(30));
    let mut b = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &[]);
    b.wait_for_log("partitions assigned", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    let n = 4000;
    produce_range(&brokers, &t.input, 0..n);
    let placed = Placed::read(&brokers, &t.ok, &t.fail, 4, 0..n, Duration::from_secs(60));
    placed.assert_complete(0..n);
    let (ta, tb) = (a.stop(), b.stop());
    let (ra, rb) = (ta["received"].as_u64().unwrap(), tb["received"].as_u64().unwrap());
    assert!(ra > 0 && rb > 0, "both members consumed: {ta} {tb}");
    assert_eq!(ra + rb, n + placed.duplicates() as u64, "{ta} {tb}");
}

/// SIGKILLs `worker` once it has mapped its first batch (and `after` more), checks that it was
/// mid-stream — some of the `n` inputs committed, not all — and gives how many were.
fn kill_mid_stream(
    worker: &mut WorkerProcess,
    after: Duration,
    brokers: &str,
    t: &Topics,
    partitions: i32,
    n: u64,
) -> i64 {
    worker.wait_for_log("record routed to the fail topic", Duration::from_secs(30));
    std::thread::sleep(after);
    worker.signal("-KILL");
    let (status, _) = worker.wait(Duration::from_secs(10));
    assert!(!status.success(), "killed");
    let done_before: i64 = committed(brokers, &t.group, &t.input, partitions)
        .iter()
        .map(|o| if let Offset::Offset(o) = o { *o } else { 0 })
        .sum();
    assert!(done_before < n as i64, "the kill happened mid-stream ({done_before} inputs committed before it)");
    done_before
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_stream_then_restart_loses_nothing() {
    let brokers = bootstrap();
    let t = topics("w-kill", 3).await;
    let m = mapping();
    let n = 30_000;
    produce_range(&brokers, &t.input, 0..n);
    let small = ["--max-batch", "100"];
    let mut first = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &small);
    let done_before = kill_mid_stream(&mut first, Duration::ZERO, &brokers, &t, 3, n);
    let mut second = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &small);
    let placed = Placed::read(&brokers, &t.ok, &t.fail, 3, 0..n, Duration::from_secs(90));
    placed.assert_complete(0..n);
    let totals = second.stop();
    eprintln!(
        "killed after {done_before} committed inputs; after restart: {} outputs for {} placed inputs, {} duplicates; {totals}",
        placed.total(),
        placed.ok.len() + placed.fail.len(),
        placed.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_survives_sigkill_without_duplicates() {
    let brokers = bootstrap();
    let t = topics("w-eos", 3).await;
    let m = mapping();
    let n = 20_000;
    produce_range(&brokers, &t.input, 0..n);
    let txn = unique_topic("txn");
    let args = ["--exactly-once", "--max-batch", "100", "--transactional-id", txn.as_str()];
    let mut first = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &args);
    first.wait_for_log("record routed to the fail topic", Duration::from_secs(30));
    first.signal("-KILL");
    first.wait(Duration::from_secs(10));
    // The restart uses the same transactional id: it fences the dead instance and aborts its open
    // transaction, so read_committed readers are not held up.
    let mut second = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &args);
    let placed = Placed::read(&brokers, &t.ok, &t.fail, 3, 0..n, Duration::from_secs(90));
    placed.assert_complete(0..n);
    assert_eq!(placed.duplicates(), 0, "a read_committed reader sees each input's output once");
    second.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_fail_topic_stops_the_worker_without_committing_past_it() {
    let brokers = bootstrap();
    let input = unique_topic("w-nofail-in");
    let ok = unique_topic("w-nofail-ok");
    let fail = unique_topic("w-nofail-fail");
    let group = unique_topic("w-nofail-group");
    create_topics(&[(&input, 1), (&ok, 1)]).await;
    let m = mapping();
    let n = 200;
    produce_range(&brokers, &input, 0..n);
    let mut w = WorkerProcess::start(
        &brokers,
        &m,
        &input,
        &group,
        &ok,
        &fail,
        &["--delivery-timeout-s", "4", "--producer-property", "message.timeout.ms=1500"],
    );
    let (status, _) = w.wait(Duration::from_secs(40));
    assert_eq!(status.code(), Some(3), "the broker refusing the topic is infrastructure: {}", w.log());
    let log = w.log();
    assert!(log.contains(&fail) && log.contains("stopped without committing past"), "{log}");
    // Nothing committed: the batch that held records for the missing topic was never acknowledged.
    assert_eq!(committed(&brokers, &group, &input, 1), vec![Offset::Invalid]);
    // Once the topic exists, a new worker places everything.
    create_topics(&[(&fail, 1)]).await;
    let mut again = WorkerProcess::start(&brokers, &m, &input, &group, &ok, &fail, &[]);
    let placed = Placed::read(&brokers, &ok, &fail, 1, 0..n, Duration::from_secs(60));
    placed.assert_complete(0..n);
    assert_accounting(&again.stop(), n);
}

/// A broker of this test's own (another port, its own data), so it can be stopped and restarted
/// while the shared one keeps serving the other tests.
struct PrivateBroker {
    home: PathBuf,
    port: u16,
}

impl PrivateBroker {
    fn run(&self, command: &str) {
        let status = Command::new(root().join("scripts/kafka/run"))
            .arg(command)
            .env("KAFKA_HOME", &self.home)
            .env("KAFKA_LIBS", root().join(".kafka/libs"))
            .env("KAFKA_PORT", self.port.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/kafka/run {command} on port {}", self.port);
    }

    fn start(port: u16) -> Self {
        let broker = PrivateBroker { home: std::env::temp_dir().join(unique_topic("private-kafka")), port };
        broker.run("start");
        broker
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.run("stop");
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// A worker of the given mode on a private broker that is stopped for 3 s and restarted while
/// inputs flow: every input must be placed; exactly-once must also show no duplicate.
async fn broker_restart(exactly_once: bool, port: u16) {
    let broker = PrivateBroker::start(port);
    let brokers = broker.brokers();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let names = ["r-in", "r-ok", "r-fail"];
    let new: Vec<_> =
        names.iter().map(|t| rdkafka::admin::NewTopic::new(t, 3, rdkafka::admin::TopicReplication::Fixed(1))).collect();
    for r in admin.create_topics(&new, &rdkafka::admin::AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
    let m = mapping();
    let mut args = vec!["--max-batch", "200", "--delivery-timeout-s", "120"];
    if exactly_once {
        args.extend(["--exactly-once", "--transactional-id", "r-eos"]);
    }
    // A short stall limit: if the worker ever gets stuck in one client call, its watchdog exits
    // (status 3) and, as its supervisor (ECS, Kubernetes, systemd) would, this test restarts it.
    args.extend(["--stall-timeout-s", "45"]);
    let start = || WorkerProcess::start(&brokers, &m, "r-in", "g", "r-ok", "r-fail", &args);
    let mut worker = start();
    worker.wait_for_log("partitions assigned", Duration::from_secs(30));

    // Inputs keep arriving before, during and after the outage (the test producer retries).
    let n = 12_000;
    let feeder = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let p = producer(&brokers);
            for i in 0..n {
                send(&p, "r-in", i);
                if i % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            p.flush(Duration::from_secs(120)).expect("all inputs produced");
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    broker.run("stop");
    std::thread::sleep(Duration::from_secs(3));
    broker.run("start");
    feeder.join().unwrap();

    // Until the group has committed every input, restarting the worker if it exits.
    let mode = if exactly_once { "exactly-once" } else { "at-least-once" };
    let end = end_offsets(&brokers, "r-in", 3);
    let started = Instant::now();
    let mut restarts = 0;
    while crate::kafka_util::try_committed(&brokers, "g", "r-in", 3).ok().as_ref() != Some(&end) {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{mode}: inputs still uncommitted after 240 s; the log ends with:\n{}",
            worker.log_tail()
        );
        if let Some(status) = worker.child.try_wait().unwrap() {
            eprintln!("{mode} worker exited ({status}); restarting it. Its log ended with:\n{}", worker.log_tail());
            assert!(restarts < 3, "{mode}: the worker keeps exiting");
            restarts += 1;
            worker = start();
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    let placed = Placed::read(&brokers, "r-ok", "r-fail", 3, 0..n, Duration::from_secs(60));
    if std::panic::catch_unwind(|| placed.assert_complete(0..n)).is_err() {
        panic!("{mode} lost records; its log ends with:\n{}", worker.log_tail());
    }
    if exactly_once {
        assert_eq!(placed.duplicates(), 0, "exactly-once: no duplicate to a read_committed reader");
    }
    let totals = worker.stop();
    eprintln!("broker restart, {mode}: {} duplicates, {restarts} restarts ({totals})", placed.duplicates());
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_stopped_and_restarted_mid_stream_loses_nothing() {
    broker_restart(false, 19092).await;
}

/// Once, in a clean-clone CI run, the exactly-once worker stopped making progress after the
/// restart without logging why; about twenty runs since have not reproduced it. The worker's
/// watchdog now turns such a stall into exit 3 naming the step, and the test restarts the
/// worker as a supervisor would: the claim under test (no loss, no duplicate) still holds.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_broker_stopped_and_restarted_mid_stream_no_loss_no_duplicate() {
    broker_restart(true, 19192).await;
}

/// SIGHUP with a changed mapping file: the worker checks it, swaps the new mapping in between two
/// batches, and goes on; nothing is lost or duplicated, records before the swap carry the old
/// mapping's header and values, records after it the new one's.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_in_a_changed_mapping_without_losing_or_duplicating_a_record() {
    let brokers = bootstrap();
    let t = topics("w-hup", 3).await;
    let m = mapping();
    let n = 2000;
    produce_range(&brokers, &t.input, 0..n / 2);
    // No interval: only SIGHUP makes it look.
    let mut w = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &["--mapping-refresh-s", "0"]);
    Placed::read(&brokers, &t.ok, &t.fail, 3, 0..n / 2, Duration::from_secs(60)).assert_complete(0..n / 2);
    let v1 = format!("worker-test@{}", lambda_stream::plan::text_version(MAPPING));
    assert!(w.log().contains(&v1), "the start names the mapping: {}", w.log_tail());

    let v2_text = MAPPING.replace("{target: n,", "{target: name,");
    std::fs::write(&m.path, &v2_text).unwrap();
    w.signal("-HUP");
    w.wait_for_log("mapping replaced", Duration::from_secs(10));
    let v2 = format!("worker-test@{}", lambda_stream::plan::text_version(&v2_text));
    produce_range(&brokers, &t.input, n / 2..n);

    let placed = Placed::read(&brokers, &t.ok, &t.fail, 3, 0..n, Duration::from_secs(60));
    placed.assert_complete(0..n);
    assert_eq!(placed.duplicates(), 0, "a swap neither loses nor repeats a record");
    let want_ok = (0..n).filter(|i| kind(*i) == Kind::Valid).count();
    for message in consume_from(&brokers, &t.ok, 3, want_ok, Duration::from_secs(30), GRACE) {
        let value: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let id = value["id"].as_u64().unwrap();
        let (mapping, field) = if id < n / 2 { (&v1, "n") } else { (&v2, "name") };
        assert_eq!(header(&message, "lambda-stream.mapping").as_ref(), Some(mapping), "id {id}");
        assert!(value.get(field).is_some(), "id {id} mapped by {mapping}: {value}");
    }
    assert_accounting(&w.stop(), n);
}

/// Scrapes `url` with Python's HTTP client and parses the text with `prometheus_client`'s parser
/// (installed by `scripts/test`): every sample as `name{label="value",…}` → value.
pub(crate) fn scrape(url: &str) -> std::collections::HashMap<String, f64> {
    let script = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
samples = {}
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        samples[s.name + ("{%s}" % labels if labels else "")] = s.value
print(json.dumps(samples))
"#;
    let out = Command::new("python3").args(["-c", script, url]).output().expect("python3 runs");
    assert!(out.status.success(), "scrape of {url} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the scrape's samples as JSON")
}

fn http_status(url: &str) -> u16 {
    let script = "import sys, urllib.request, urllib.error\ntry:\n  print(urllib.request.urlopen(sys.argv[1], timeout=5).status)\nexcept urllib.error.HTTPError as e:\n  print(e.code)";
    let out = Command::new("python3").args(["-c", script, url]).output().expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a status code")
}

/// `--metrics-addr`: during a run on the real broker the endpoint is scraped with a real HTTP
/// client, the text parses with a Prometheus text-format parser, and the counters equal what was
/// produced and read back; `/healthz` and `/readyz` answer 200 while the worker runs.
#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_endpoint_counts_what_the_worker_placed() {
    let brokers = bootstrap();
    let t = topics("w-metrics", 3).await;
    let m = mapping();
    let n = 1000;
    produce_range(&brokers, &t.input, 0..n);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut w = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &["--metrics-addr", &addr]);
    let placed = Placed::read(&brokers, &t.ok, &t.fail, 3, 0..n, Duration::from_secs(60));
    placed.assert_complete(0..n);
    let url = format!("http://{addr}/metrics");
    // Counters move when a batch is committed, just after its messages are readable.
    let started = Instant::now();
    let samples = loop {
        let samples = scrape(&url);
        if samples.get("lambda_stream_records_received_total") == Some(&(n as f64)) {
            break samples;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "received never reached {n}: {samples:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let get = |k: &str| samples.get(k).copied().unwrap_or_else(|| panic!("no {k} in {samples:?}"));
    assert_eq!(get(r#"lambda_stream_records_total{route="ok"}"#), placed.ok.len() as f64);
    assert_eq!(get(r#"lambda_stream_records_total{route="fail"}"#), placed.fail.len() as f64);
    let tombstones = (0..n).filter(|i| kind(*i) == Kind::Tombstone).count();
    assert_eq!(get(r#"lambda_stream_records_total{route="skipped"}"#), tombstones as f64);
    assert_eq!(get(r#"lambda_stream_field_rule_failures_total{rule="id:type"}"#), placed.fail.len() as f64);
    assert_eq!(get("lambda_stream_assigned_partitions"), 3.0);
    assert!(get("lambda_stream_commits_total") >= 1.0);
    assert!(get("lambda_stream_batch_duration_seconds_count") >= 1.0);
    assert_eq!(get("lambda_stream_in_flight_records"), 0.0, "everything committed");
    assert_eq!(http_status(&format!("http://{addr}/healthz")), 200);
    assert_eq!(http_status(&format!("http://{addr}/readyz")), 200);
    assert_accounting(&w.stop(), n);
}

/// Rebalances are incremental: a member that gives up some partitions to a newcomer keeps the
/// rest, and its gauge and `/readyz` must say so (a readiness probe failing on a member that still
/// works would count it as disrupted for the PodDisruptionBudget).
#[tokio::test(flavor = "multi_thread")]
async fn after_a_member_joins_each_members_gauge_counts_the_partitions_it_kept() {
    let brokers = bootstrap();
    let t = topics("w-gauge", 6).await;
    let m = mapping();
    let addr = || {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("127.0.0.1:{port}")
    };
    let (a_addr, b_addr) = (addr(), addr());
    let mut a = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &["--metrics-addr", &a_addr]);
    a.wait_for_log("partitions assigned", Duration::from_secs(30));
    let mut b = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &["--metrics-addr", &b_addr]);
    b.wait_for_log("partitions assigned", Duration::from_secs(30));
    let gauge =
        |addr: &str| scrape(&format!("http://{addr}/metrics")).get("lambda_stream_assigned_partitions").copied();
    let started = Instant::now();
    let (ga, gb) = loop {
        let (ga, gb) = (gauge(&a_addr), gauge(&b_addr));
        if ga == Some(3.0) && gb == Some(3.0) {
            break (ga, gb);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the members' gauges never showed 3 + 3 of 6 partitions: a {ga:?}, b {gb:?}\n{}",
            a.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!((ga, gb), (Some(3.0), Some(3.0)));
    assert_eq!(http_status(&format!("http://{a_addr}/readyz")), 200, "the member that gave up partitions is ready");
    assert_eq!(http_status(&format!("http://{b_addr}/readyz")), 200);
    b.stop();
    let started = Instant::now();
    while gauge(&a_addr) != Some(6.0) {
        assert!(started.elapsed() < Duration::from_secs(30), "a never took back all 6: {:?}", gauge(&a_addr));
        std::thread::sleep(Duration::from_millis(300));
    }
    a.stop();
}

/// A metrics address that cannot be served (taken) stops the start with a clear error, before
/// the worker joins its group. Exit 3, not 2: the command line is right, the machine's address is
/// not free (the exit-code table's infrastructure row, as an unreachable broker); the same
/// command may start once the address is free again.
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_metrics_address_fails_the_start() {
    let brokers = bootstrap();
    let t = topics("w-metrics-taken", 1).await;
    let m = mapping();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut w = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &["--metrics-addr", &addr]);
    let (status, _) = w.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(3), "{}", w.log());
    assert!(w.log().contains(&format!("cannot serve metrics on {addr}")), "{}", w.log());
}

/// A header name that is not UTF-8 (any producer can write one; the broker does not check) is
/// neither a reason to stop nor to lose the header: the worker maps the record and carries the
/// header on, its name read as Kafka's Java clients read it (U+FFFD for the invalid byte), and a
/// replay of a fail record carrying such a name does the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_header_name_that_is_not_utf8_travels_on_and_stops_nothing() {
    let brokers = bootstrap();
    let t = topics("w-hdr", 1).await;
    let headers: [(&[u8], &[u8]); 2] = [(b"trace\xffid", b"t-1"), (b"tenant", b"acme")];
    produce_raw_headers(&t.input, b"k1", br#"{"id": 1, "n": "one"}"#, &headers);
    produce_raw_headers(&t.input, b"k2", br#"{"id": "x2"}"#, &headers);
    // Ok records carry the source headers the mapping names; fail records carry all of them.
    let listed = format!("{MAPPING}headers: [\"trace\\uFFFDid\", tenant]\n");
    let m = TempFile::new(&format!("{}.yaml", unique_topic("mapping")), listed.as_bytes());
    let mut w = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &[]);
    let ok = consume_from(&brokers, &t.ok, 1, 1, Duration::from_secs(30), Duration::ZERO);
    let fail = consume_from(&brokers, &t.fail, 1, 1, Duration::from_secs(30), Duration::ZERO);
    let totals = w.stop();
    assert_eq!((totals["received"].as_u64(), totals["ok"].as_u64()), (Some(2), Some(1)), "{totals}");
    assert_eq!((ok.len(), fail.len()), (1, 1), "{}", w.log_tail());
    for m in [&ok[0], &fail[0]] {
        assert_eq!(header(m, "trace\u{FFFD}id").as_deref(), Some("t-1"), "the name read as Java reads it");
        assert_eq!(header(m, "tenant").as_deref(), Some("acme"));
    }

    // The fail record again, as another writer could have left it: the raw name kept.
    let raw_fail = unique_topic("w-hdr-rawfail");
    let (ok2, fail2) = (unique_topic("w-hdr-ok2"), unique_topic("w-hdr-fail2"));
    create_topics(&[(&raw_fail, 1), (&ok2, 1), (&fail2, 1)]).await;
    let envelope = fail[0].payload().expect("an envelope");
    let stage: (&[u8], &[u8]) = (b"lambda-stream.error.stage", b"validate");
    produce_raw_headers(&raw_fail, b"k2", envelope, &[stage, headers[0], headers[1]]);
    let fixed = TempFile::new(
        &format!("{}.yaml", unique_topic("fixed")),
        listed.replace("type: integer", "type: string").as_bytes(),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
        .args(["replay", "--brokers", &brokers, "--from", &raw_fail, "--mapping", fixed.arg()])
        .args(["--topic-ok", &ok2, "--topic-fail", &fail2, "--format", "json"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["read"].as_u64(), report["now_ok"].as_u64()), (Some(1), Some(1)), "{report:#}");
    let replayed = consume_from(&brokers, &ok2, 1, 1, Duration::from_secs(30), Duration::ZERO);
    assert_eq!(replayed.len(), 1);
    assert_eq!(header(&replayed[0], "trace\u{FFFD}id").as_deref(), Some("t-1"));
    assert_eq!(header(&replayed[0], "tenant").as_deref(), Some("acme"));
    assert_eq!(header(&replayed[0], "lambda-stream.error.stage"), None, "the old failure's headers stay behind");
}

/// A stop while the group rebalances — a member killed (the group waits out its session) and
/// another joining — ends within 10 s with exit 0, and nothing is lost: what the stopping member
/// could not commit is read again by the partitions' next owner.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_rebalance_stops_within_ten_seconds_and_exits_zero() {
    let brokers = bootstrap();
    let t = topics("w-stop-rebalance", 6).await;
    let m = mapping();
    let n = 20_000;
    produce_range(&brokers, &t.input, 0..n);
    let small = ["--max-batch", "100"];
    let start = || WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &small);
    let mut a = start();
    a.wait_for_log("partitions assigned", Duration::from_secs(30));
    let mut b = start();
    b.wait_for_log("partitions assigned", Duration::from_secs(30));
    let mut c = start();
    c.wait_for_log("partitions assigned", Duration::from_secs(30));
    a.signal("-KILL");
    let _ = a.wait(Duration::from_secs(10));
    let mut d = start();
    std::thread::sleep(Duration::from_millis(500));
    b.signal("-TERM");
    let asked = Instant::now();
    let (status, out) = b.wait(Duration::from_secs(60));
    let took = asked.elapsed();
    assert!(status.success(), "a stop during a rebalance exits 0, got {status:?}:\n{}", b.log_tail());
    assert!(took < Duration::from_secs(10), "stopped in {took:?}, over 10 s:\n{}", b.log_tail());
    let totals: serde_json::Value = serde_json::from_str(out.lines().last().expect("a totals line")).unwrap();
    let placed = Placed::read(&brokers, &t.ok, &t.fail, 6, 0..n, Duration::from_secs(120));
    placed.assert_complete(0..n);
    let (tc, td) = (c.stop(), d.stop());
    eprintln!("stopped in {took:?}; b {totals}; c {tc}; d {td}; {} duplicates", placed.duplicates());
}

/// The chaos tests' inputs: record `i` is sequence number `i / KEYS` of key `c{i % KEYS}`; the
/// Kafka key is the key, so a key's records share one input partition (and, keeping the key, one
/// output partition). Every tenth sequence number carries a text `seq`: a type error, → fail.
const KEYS: u64 = 60;

const KEYED_MAPPING: &str = "version: 1\nname: worker-chaos\nfields:\n  - {target: key, source: $.key, type: string, required: true}\n  - {target: seq, source: $.seq, type: integer, required: true}\n";

fn keyed_valid(i: u64) -> bool {
    (i / KEYS) % 10 != 3
}

fn send_keyed(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, i: u64) {
    let (key, seq) = (format!("c{}", i % KEYS), i / KEYS);
    let value = if keyed_valid(i) {
        format!(r#"{{"key": "{key}", "seq": {seq}}}"#)
    } else {
        format!(r#"{{"key": "{key}", "seq": "x{seq}"}}"#)
    };
    let mut record = BaseRecord::to(topic).key(&key).payload(&value);
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((e, r)) => {
                assert!(matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)), "{e}");
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Produces `per_second` keyed records a second for `seconds` on a thread of its own; the handle
/// returns how many were produced (all acknowledged).
fn produce_steadily(brokers: &str, topic: &str, per_second: u64, seconds: u64) -> std::thread::JoinHandle<u64> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    std::thread::spawn(move || {
        let p = producer(&brokers);
        let started = Instant::now();
        let n = per_second * seconds;
        let tick = Duration::from_millis(10);
        let mut i = 0;
        while i < n {
            // Catch up to where the clock says production should be.
            let due = (started.elapsed().as_millis() as u64 * per_second / 1000).min(n);
            while i < due {
                send_keyed(&p, &topic, i);
                i += 1;
            }
            std::thread::sleep(tick);
        }
        p.flush(Duration::from_secs(60)).expect("inputs produced");
        n
    })
}

/// What the ok and fail topics hold for the keyed inputs: ok outputs as (partition, offset, key,
/// seq) in each partition's offset order, fail outputs as (key, seq).
struct KeyedPlaced {
    ok: Vec<(i32, i64, u64, u64)>,
    fail: Vec<(u64, u64)>,
}

impl KeyedPlaced {
    fn read(brokers: &str, ok: &str, fail: &str, partitions: i32, n: u64, timeout: Duration) -> KeyedPlaced {
        let want_ok = (0..n).filter(|i| keyed_valid(*i)).count();
        let want_fail = n as usize - want_ok;
        let (oks, fails) = std::thread::scope(|s| {
            let oks = s.spawn(|| consume_from(brokers, ok, partitions, want_ok, timeout, GRACE));
            let fails = s.spawn(|| consume_from(brokers, fail, partitions, want_fail, timeout, GRACE));
            (oks.join().unwrap(), fails.join().unwrap())
        });
        let key_number =
            |k: &serde_json::Value| -> u64 { k.as_str().unwrap().trim_start_matches('c').parse().unwrap() };
        let mut placed = KeyedPlaced { ok: Vec::new(), fail: Vec::new() };
        for m in oks {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            placed.ok.push((
                m.partition(),
                m.offset(),
                key_number(&v["key"]),
                v["seq"].as_u64().expect("an integer seq"),
            ));
        }
        placed.ok.sort();
        for m in fails {
            let envelope: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let value = &envelope["value"];
            let seq = value["seq"].as_str().unwrap().trim_start_matches('x').parse().unwrap();
            placed.fail.push((key_number(&value["key"]), seq));
        }
        placed
    }

    fn total(&self) -> usize {
        self.ok.len() + self.fail.len()
    }

    /// Outputs beyond one per input.
    fn duplicates(&self) -> usize {
        let ok: HashSet<(u64, u64)> = self.ok.iter().map(|&(_, _, k, s)| (k, s)).collect();
        let fail: HashSet<&(u64, u64)> = self.fail.iter().collect();
        self.total() - ok.len() - fail.len()
    }

    /// Every input of `0..n` is in its right topic at least once, and nothing else is there.
    fn assert_complete(&self, n: u64) {
        let input = |i: u64| (i % KEYS, i / KEYS);
        let want_ok: HashSet<(u64, u64)> = (0..n).filter(|i| keyed_valid(*i)).map(input).collect();
        let want_fail: HashSet<(u64, u64)> = (0..n).filter(|i| !keyed_valid(*i)).map(input).collect();
        let got_ok: HashSet<(u64, u64)> = self.ok.iter().map(|&(_, _, k, s)| (k, s)).collect();
        let got_fail: HashSet<(u64, u64)> = self.fail.iter().copied().collect();
        let missing_ok: Vec<_> = want_ok.difference(&got_ok).take(10).collect();
        let missing_fail: Vec<_> = want_fail.difference(&got_fail).take(10).collect();
        assert!(
            missing_ok.is_empty() && missing_fail.is_empty(),
            "lost (key, seq): ok {missing_ok:?} of {}, fail {missing_fail:?} of {}",
            want_ok.len() - got_ok.intersection(&want_ok).count(),
            want_fail.len() - got_fail.intersection(&want_fail).count()
        );
        let extra_ok: Vec<_> = got_ok.difference(&want_ok).take(10).collect();
        let extra_fail: Vec<_> = got_fail.difference(&want_fail).take(10).collect();
        assert!(
            extra_ok.is_empty() && extra_fail.is_empty(),
            "unexpected outputs: ok {extra_ok:?}, fail {extra_fail:?}"
        );
    }

    /// Per key, the first copy of each sequence number on the ok topic comes in sequence order
    /// (copies of one already seen may come later: at-least-once redelivers, never reorders).
    fn assert_first_copies_in_key_order(&self) {
        let mut partition_of: BTreeMap<u64, i32> = BTreeMap::new();
        let mut last_new: BTreeMap<u64, u64> = BTreeMap::new();
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        for &(partition, offset, key, seq) in &self.ok {
            let p = *partition_of.entry(key).or_insert(partition);
            assert_eq!(p, partition, "key c{key}'s outputs are on partitions {p} and {partition}");
            if !seen.insert((key, seq)) {
                continue;
            }
            if let Some(&last) = last_new.get(&key) {
                assert!(
                    seq > last,
                    "key c{key}: first copy of seq {seq} at {partition}/{offset} comes after the first copy of seq {last}"
                );
            }
            last_new.insert(key, seq);
        }
        assert_eq!(partition_of.len() as u64, KEYS, "every key has outputs");
    }
}

fn keyed_mapping() -> TempFile {
    TempFile::new(&format!("{}.yaml", unique_topic("mapping")), KEYED_MAPPING.as_bytes())
}

/// Waits until the group's commits reach the end of every input partition: the members keep no
/// commit behind what they placed (nor move one back) once the stream is drained.
fn assert_commits_reach_the_end(brokers: &str, group: &str, topic: &str, partitions: i32) {
    let end = end_offsets(brokers, topic, partitions);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = committed(brokers, group, topic, partitions);
        if now == end {
            return;
        }
        assert!(Instant::now() < deadline, "committed {now:?}, never the end {end:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// SIGTERM; asserts exit 0 within 10 s; returns how long it took and the totals line.
fn stop_within_ten_seconds(w: &mut WorkerProcess, name: &str) -> (Duration, serde_json::Value) {
    w.signal("-TERM");
    let asked = Instant::now();
    let (status, out) = w.wait(Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(status.success(), "{name}: a stop exits 0, got {status:?}:\n{}", w.log_tail());
    assert!(took < Duration::from_secs(10), "{name}: stopped in {took:?}, over 10 s:\n{}", w.log_tail());
    let totals = serde_json::from_str(out.lines().last().expect("a totals line")).expect("totals JSON");
    (took, totals)
}

/// How many times a worker's log says its final commit was refused at stop.
fn refused_at_stop(w: &WorkerProcess) -> usize {
    w.log().matches("the last commit was refused at stop").count()
}

/// The worker's promise under churn, against a steady stream: three members, a fourth joining,
/// one SIGKILLed, one stopped with SIGTERM (exit 0 within 10 s), the killed one restarted. Every
/// input is placed at least once; per key, first copies on the ok topic are in source order; and
/// the duplicates stay within what the pipeline can hold uncommitted at each ownership change.
///
/// The bound, with `--max-batch B`: a member holds at most three batches whose commit has not
/// been taken — the one being gathered (nothing produced yet), the one being mapped and the one
/// with the producer — plus the last settled one while its asynchronous commit is on its way. Only
/// produced-but-uncommitted records come back as duplicates, so a member that loses partitions
/// (killed, stopped with its last commit refused, or giving partitions up in a rebalance: its
/// commit after the revocation may be refused) leaves at most 3 × B to be read again. Here: one
/// kill, one stop, and two joins each taking partitions from every member then alive (3 + 2).
#[tokio::test(flavor = "multi_thread")]
async fn chaos_three_workers_join_kill_stop_restart_account_for_every_record_in_key_order() {
    chaos(&[], "classic").await;
}

/// The same with the protocol left to the worker: the broker offers KIP-848's consumer protocol,
/// so the members speak it (the broker assigns; its group session is 6 s, see scripts/kafka/run).
#[tokio::test(flavor = "multi_thread")]
async fn chaos_on_the_consumer_protocol_the_broker_offers_accounts_for_every_record_in_key_order() {
    chaos(&["--group-protocol", "auto"], "consumer").await;
}

async fn chaos(protocol_args: &[&str], protocol: &str) {
    let brokers = bootstrap();
    let t = topics("w-chaos", 6).await;
    let m = keyed_mapping();
    const B: usize = 100;
    let batch = B.to_string();
    let mut args = vec!["--max-batch", batch.as_str()];
    args.extend_from_slice(protocol_args);
    let start = || WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &args);
    let mut a = start();
    let mut b = start();
    let mut c = start();
    for w in [&a, &b, &c] {
        w.wait_for_log("partitions assigned", Duration::from_secs(30));
        w.wait_for_log(&format!("protocol=\"{protocol}\""), Duration::from_secs(1));
    }
    let (per_second, seconds) = (800, 30);
    let production = produce_steadily(&brokers, &t.input, per_second, seconds);
    let began = Instant::now();
    let at = |s: u64| std::thread::sleep(Duration::from_secs(s).saturating_sub(began.elapsed()));
    at(4);
    let mut d = start();
    at(9);
    a.signal("-KILL");
    let (status, _) = a.wait(Duration::from_secs(10));
    assert!(!status.success(), "killed");
    at(14);
    let (b_took, b_totals) = stop_within_ten_seconds(&mut b, "b (stopped mid-stream)");
    at(18);
    let mut a2 = start();
    let n = production.join().expect("the producer thread");
    let placed = KeyedPlaced::read(&brokers, &t.ok, &t.fail, 6, n, Duration::from_secs(60));
    assert_commits_reach_the_end(&brokers, &t.group, &t.input, 6);
    let mut stops = vec![("b", b_took)];
    let mut totals = vec![("b", b_totals)];
    let mut refused = refused_at_stop(&b);
    for (name, w) in [("c", &mut c), ("d", &mut d), ("a2", &mut a2)] {
        let (took, t) = stop_within_ten_seconds(w, name);
        stops.push((name, took));
        totals.push((name, t));
        refused += refused_at_stop(w);
    }
    eprintln!(
        "{n} inputs, {} outputs, {} duplicates; stops {stops:?}; commits refused at stop: {refused}; totals {totals:?}",
        placed.total(),
        placed.duplicates()
    );
    placed.assert_complete(n);
    placed.assert_first_copies_in_key_order();
    let ownership_changes = 1 /* kill */ + 1 /* stop */ + 3 + 2 /* joins */;
    assert!(
        placed.duplicates() <= ownership_changes * 3 * B,
        "{} duplicates, over {ownership_changes} × 3 × {B}",
        placed.duplicates()
    );
}

/// One member with a backlog (so its batches are full), SIGKILLed mid-stream and restarted:
/// nothing lost, per key the first copies are in source order, and the duplicates are at most the
/// three batches the killed member could hold uncommitted (3 × `--max-batch`; see the chaos test
/// above).
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_and_restart_keeps_each_keys_first_copies_in_order_and_duplicates_within_three_batches() {
    let brokers = bootstrap();
    let t = topics("w-kill-order", 3).await;
    let m = keyed_mapping();
    const B: usize = 100;
    let batch = B.to_string();
    let args = ["--max-batch", batch.as_str()];
    let n = 20_000;
    let p = producer(&brokers);
    for i in 0..n {
        send_keyed(&p, &t.input, i);
    }
    p.flush(Duration::from_secs(60)).expect("inputs produced");
    let mut first = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &args);
    let done_before = kill_mid_stream(&mut first, Duration::from_millis(500), &brokers, &t, 3, n);
    let mut second = WorkerProcess::start(&brokers, &m, &t.input, &t.group, &t.ok, &t.fail, &args);
    let placed = KeyedPlaced::read(&brokers, &t.ok, &t.fail, 3, n, Duration::from_secs(90));
    assert_commits_reach_the_end(&brokers, &t.group, &t.input, 3);
    let (took, totals) = stop_within_ten_seconds(&mut second, "second");
    eprintln!(
        "{n} inputs, {done_before} committed before the kill, {} duplicates; second stopped in {took:?}: {totals}",
        placed.duplicates()
    );
    placed.assert_complete(n);
    placed.assert_first_copies_in_key_order();
    assert!(placed.duplicates() <= 3 * B, "{} duplicates, over 3 × {B}", placed.duplicates());
}
