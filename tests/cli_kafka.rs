//! The command line against the real broker: `process --event` producing to a cluster.

use serde_json::Value;

use crate::util::{lambda_stream, stderr, stdout};

#[test]
fn event_runs_can_produce_to_a_real_cluster() {
    let brokers = crate::kafka_util::bootstrap();
    let (ok, fail) = (crate::kafka_util::unique_topic("cli-ok"), crate::kafka_util::unique_topic("cli-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(&[(&ok, 1), (&fail, 1)]));
    let out = lambda_stream(&[
        "process",
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--event",
        "tests/fixtures/events/self-managed.json",
        "--brokers",
        &brokers,
        "--topic-ok",
        &ok,
        "--topic-fail",
        &fail,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((summary["ok"].as_u64(), summary["skipped"].as_u64()), (Some(1), Some(1)));
    let got = crate::kafka_util::consume(&ok, 1, 1, std::time::Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(crate::kafka_util::json_payload(&got[0])["order_id"], "3d4e5f60-7182-4a3b-a4b5-c6d7e8f9a0b1");
    assert!(stderr(&out).contains("peak RSS"), "{}", stderr(&out));
}

/// `failures` on a real fail topic: the function's fail records (from a saved event) and one
/// record that is not an envelope; counted by stage, rule, mapping and source topic, the stranger
/// counted apart, and `--until` before them all reads nothing.
#[test]
fn failures_triages_a_fail_topic() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let brokers = crate::kafka_util::bootstrap();
    let (ok, fail) = (crate::kafka_util::unique_topic("tri-ok"), crate::kafka_util::unique_topic("tri-fail"));
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(&[(&ok, 1), (&fail, 2)]));
    let args = ["process", "--mapping", "mappings/orders-to-billing.yaml", "--event", "tests/fixtures/events/msk.json"];
    let out = lambda_stream(&[&args[..], &["--brokers", &brokers, "--topic-ok", &ok, "--topic-fail", &fail]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    producer.send(BaseRecord::<(), _>::to(&fail).payload("not an envelope").partition(1)).unwrap();
    producer.flush(std::time::Duration::from_secs(10)).unwrap();

    let out = lambda_stream(&["failures", "--brokers", &brokers, "--topic", &fail, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((t["read"].as_u64(), t["not_ours"].as_u64()), (Some(5), Some(1)), "{t:#}");
    let stages: u64 = t["by_stage"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(stages, 4, "every envelope counted once by stage");
    let rules: Vec<&str> = t["by_rule"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert!(rules.contains(&"customer.document:cpf"), "{rules:?}");
    assert!(t["by_mapping"][0]["value"].as_str().unwrap().starts_with("orders-to-billing@"));
    assert_eq!(t["by_source_topic"][0]["value"], "orders.checkout.v1");
    assert!(t["by_rule"][0]["first_seen_ms"].as_i64().is_some());
    assert!(!stdout(&out).contains("529.982.247-25"), "examples never show a sensitive value");
    assert!(stderr(&out).contains("read 5 of 5 records"), "{}", stderr(&out));

    let text = lambda_stream(&["failures", "--brokers", &brokers, "--topic", &fail, "--since", "1h"]);
    assert!(stdout(&text).contains("5 record(s) read; 1 not lambda-stream fail envelopes"), "{}", stdout(&text));
    let none = lambda_stream(&["failures", "--brokers", &brokers, "--topic", &fail, "--until", "2000-01-01T00:00:00Z"]);
    assert!(stdout(&none).starts_with("0 record(s) read"), "{}", stdout(&none));
    let missing = lambda_stream(&["failures", "--brokers", &brokers, "--topic", "no-such-topic-xyz"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// `replay` after a fix, on the real broker: `--dry-run` counts per old `field:rule` and produces
/// nothing; the replay sends the records that now map to the ok topic — rebuilt with their key,
/// original headers and replay headers — and the rest to the second fail topic; a second replay
/// with the same group finds nothing left; a fail topic that is also `--from` is refused.
#[test]
fn replay_re_drives_failures_through_a_fixed_mapping() {
    let brokers = crate::kafka_util::bootstrap();
    let names: Vec<String> =
        ["rp-ok", "rp-fail", "rp-ok2", "rp-fail2"].iter().map(|p| crate::kafka_util::unique_topic(p)).collect();
    let [ok, fail, ok2, fail2] = &names[..] else { unreachable!() };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::kafka_util::create_topics(&names.iter().map(|t| (t.as_str(), 1)).collect::<Vec<_>>()));
    let args = ["process", "--mapping", "mappings/orders-to-billing.yaml", "--event", "tests/fixtures/events/msk.json"];
    let out = lambda_stream(&[&args[..], &["--brokers", &brokers, "--topic-ok", ok, "--topic-fail", fail]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The fix: the CPF check goes.
    let original = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
    let fixed = crate::util::TempFile::new("fixed.yaml", original.replace("    validate: [cpf]\n", "").as_bytes());
    let replay = |extra: &[&str]| {
        let base = ["replay", "--brokers", &brokers, "--from", fail, "--mapping", fixed.arg(), "--topic-ok", ok2];
        lambda_stream(&[&base[..], &["--topic-fail", fail2, "--format", "json"], extra].concat())
    };

    let dry = replay(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let d: Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(
        (d["read"].as_u64(), d["now_ok"].as_u64(), d["still_failing"].as_u64()),
        (Some(4), Some(1), Some(3)),
        "{d:#}"
    );
    assert_eq!(d["by_old_rule"]["customer.document:cpf"]["now_ok"], 1);
    assert_eq!(d["by_old_rule"]["cancel_reason:cancel_reason_required"]["still_failing"], 1);
    assert!(
        crate::kafka_util::consume(ok2, 1, 1, std::time::Duration::from_secs(2)).is_empty(),
        "a dry run produces nothing"
    );

    let run = replay(&[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let r: Value = serde_json::from_str(&stdout(&run)).unwrap();
    assert_eq!((r["now_ok"].as_u64(), r["still_failing"].as_u64()), (Some(1), Some(3)), "{r:#}");
    let now_ok = crate::kafka_util::consume(ok2, 1, 1, std::time::Duration::from_secs(15));
    assert_eq!(now_ok.len(), 1);
    let m = &now_ok[0];
    assert_eq!(
        crate::kafka_util::key_text(m).as_deref(),
        Some("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"),
        "the mapping's key"
    );
    assert_eq!(crate::kafka_util::header(m, "lambda-stream.replay.of").as_deref(), Some("orders.checkout.v1/0/103"));
    assert_eq!(crate::kafka_util::header(m, "lambda-stream.replay.from"), Some(format!("{fail}/0/1")));
    // The id the first attempt's fail record carried: a consumer deduplicating on it sees one record.
    assert_eq!(crate::kafka_util::header(m, "lambda-stream.id").as_deref(), Some("orders.checkout.v1/0/103"));
    let first_attempt = crate::kafka_util::consume(fail, 1, 4, std::time::Duration::from_secs(15));
    assert!(
        first_attempt
            .iter()
            .any(|f| crate::kafka_util::header(f, "lambda-stream.id").as_deref() == Some("orders.checkout.v1/0/103")),
        "the failure carried the same id"
    );
    assert!(
        crate::kafka_util::header(m, "lambda-stream.error.stage").is_none(),
        "the old failure's headers stay behind"
    );
    let still = crate::kafka_util::consume(fail2, 1, 3, std::time::Duration::from_secs(15));
    assert_eq!(still.len(), 3);
    // Offset 101 had `traceparent` and `source-region`: rebuilt with them, they travel on.
    let from_101 = still
        .iter()
        .find(|m| {
            crate::kafka_util::header(m, "lambda-stream.replay.of").as_deref() == Some("orders.checkout.v1/0/101")
        })
        .expect("the record of offset 101 still fails");
    assert!(crate::kafka_util::header(from_101, "traceparent").is_some(), "the original headers travel");
    use rdkafka::Message as _;
    use rdkafka::message::Headers as _;
    let ids: Vec<&[u8]> = from_101
        .headers()
        .map(|h| h.iter().filter(|h| h.key == "lambda-stream.id").filter_map(|h| h.value).collect())
        .unwrap_or_default();
    assert_eq!(ids, [&b"orders.checkout.v1/0/101"[..]], "one id, the record's own, on a failure of a replay");
    assert!(crate::kafka_util::header(from_101, "source-region").is_some(), "all of them");

    let again = replay(&[]);
    let a: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(a["read"], 0, "the group's commits cover the whole range: {a:#}");

    let same = lambda_stream(&[
        "replay",
        "--brokers",
        &brokers,
        "--from",
        fail,
        "--mapping",
        fixed.arg(),
        "--topic-ok",
        ok2,
        "--topic-fail",
        fail,
    ]);
    assert_eq!(same.status.code(), Some(2));
    assert!(stderr(&same).contains("would feed itself"), "{}", stderr(&same));
}

/// Hostile records on a fail topic — not JSON, an envelope without its source, a value whose
/// base64 is cut short, a huge value — are counted and reported by `failures` and `replay`; none
/// stops them, none is replayed as something it is not.
#[test]
fn hostile_fail_records_are_reported_not_fatal() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let brokers = crate::kafka_util::bootstrap();
    let names: Vec<String> = ["h-fail", "h-ok", "h-fail2"].iter().map(|p| crate::kafka_util::unique_topic(p)).collect();
    let [fail, ok, fail2] = &names[..] else { unreachable!() };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::kafka_util::create_topics(&names.iter().map(|t| (t.as_str(), 1)).collect::<Vec<_>>()));
    let source = r#"{"topic":"orders","partition":0,"offset":5,"timestamp":1,"key":"k","key_encoding":"utf8"}"#;
    let envelope = |value: &str, encoding: &str| {
        format!(
            r#"{{"source":{source},"stage":"validate","errors":[{{"field":"a","rule":"type","message":"m"}}],"mapping":{{"name":"m","version":"v"}},"value":{value},"value_encoding":"{encoding}"}}"#
        )
    };
    let huge = serde_json::to_string(&format!(r#"{{"id": "{}"}}"#, "x".repeat(900_000))).unwrap();
    let records = [
        "{not json".to_string(),
        r#"{"stage":"validate","errors":[]}"#.to_string(),
        envelope(r#""eyJpZCI6""#, "base64").replace("eyJpZCI6", "eyJpZC"),
        envelope(&huge, "utf8"),
    ];
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    for r in &records {
        producer.send(BaseRecord::<(), _>::to(fail).payload(r.as_str())).unwrap();
    }
    producer.flush(std::time::Duration::from_secs(10)).unwrap();

    let out = lambda_stream(&["failures", "--brokers", &brokers, "--topic", fail, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let t: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((t["read"].as_u64(), t["not_ours"].as_u64()), (Some(4), Some(2)), "{t:#}");
    assert!(t["not_ours_example"].as_str().unwrap().contains("offset 0"), "{t:#}");

    let out = lambda_stream(&[
        "replay",
        "--brokers",
        &brokers,
        "--from",
        fail,
        "--mapping",
        "mappings/orders-to-billing.yaml",
        "--topic-ok",
        ok,
        "--topic-fail",
        fail2,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (r["read"].as_u64(), r["not_ours"].as_u64(), r["still_failing"].as_u64()),
        (Some(4), Some(3), Some(1)),
        "{r:#}"
    );
}

/// The sum of `group`'s committed offsets over the partitions of `topic` (0 before any commit).
fn committed_sum(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let offsets = crate::kafka_util::try_committed(brokers, group, topic, partitions).unwrap_or_default();
    offsets.iter().map(|o| if let rdkafka::Offset::Offset(o) = o { *o } else { 0 }).sum()
}

/// Fresh topics of `partitions` partitions each, one per prefix.
fn fresh_topics(prefixes: &[&str], partitions: i32) -> Vec<String> {
    let names: Vec<String> = prefixes.iter().map(|p| crate::kafka_util::unique_topic(p)).collect();
    tokio::runtime::Runtime::new().unwrap().block_on(crate::kafka_util::create_topics(
        &names.iter().map(|t| (t.as_str(), partitions)).collect::<Vec<_>>(),
    ));
    names
}

/// The fail messages the function writes under `mapping`, for inputs it rejects.
fn fail_messages(
    mapping: &str,
    fail_topic: &str,
) -> impl Fn(&lambda_stream::record::Input) -> lambda_stream::destination::OutMessage + use<> {
    let (_, plan) = lambda_stream::plan::load_str(mapping).unwrap();
    let router = lambda_stream::destination::Router {
        topic_ok: "unused".into(),
        topic_fail: fail_topic.into(),
        function_name: "f".into(),
        function_env: "test".into(),
    };
    move |input| {
        let m = router.route(&plan, input).first().expect("a message").clone();
        assert!(m.failure.is_some(), "the mapping rejects the record");
        m
    }
}

/// A replay of 20,000 failures on three partitions, in batches of 100, interrupted by SIGINT (it
/// stops once what it read is delivered and committed, exit 130), then by SIGKILL, then run to
/// the end: every record is placed exactly once — on the ok topic if the fix lets it through,
/// else on the second fail topic — with its key, its original header and the replay headers, and
/// the runs' counts add up. Then the group's offsets are set back to where the replay began, with
/// the record of where the outputs ended then — the state a kill leaves right after everything was
/// delivered and before any commit: the next run finds every record delivered, counts it, and
/// sends nothing again.
#[test]
fn an_interrupted_replay_resumes_without_loss_or_duplicate() {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const N: i64 = 20_000;
    const PARTS: i32 = 3;
    let brokers = crate::kafka_util::bootstrap();
    let names = fresh_topics(&["ri-fail", "ri-ok2", "ri-fail2"], PARTS);
    let [fail, ok2, fail2] = &names[..] else { unreachable!() };
    let wrong = "version: 1\nname: replay-scale\nkey: id\nheaders: [trace]\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n  - {target: code, source: $.code, type: string, validate: [{one_of: [A]}]}\n";
    let fixed = crate::util::TempFile::new("fixed.yaml", wrong.replace("[A]", "[A, B]").as_bytes());
    // The function's fail records: code B (fixed by the new mapping) or Z (still failing).
    let fail_message = fail_messages(wrong, fail);
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "10")
        .set("queue.buffering.max.messages", "100000")
        .create()
        .unwrap();
    let fixable = |i: i64| i % 4 != 0;
    for i in 0..N {
        let partition = (i % i64::from(PARTS)) as i32;
        let value = format!(r#"{{"id": {i}, "code": "{}"}}"#, if fixable(i) { "B" } else { "Z" });
        let input = lambda_stream::record::Input {
            source: lambda_stream::record::Source {
                topic: "src".into(),
                partition,
                offset: Some(i),
                key: Some(format!("k{i}").into_bytes()),
                headers: vec![("trace".into(), format!("t{i}").into_bytes())],
                ..Default::default()
            },
            payload: lambda_stream::record::Payload::Value(value.into_bytes()),
        };
        let m = fail_message(&input);
        let headers =
            m.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(v) }));
        let mut record = BaseRecord::<[u8], [u8]>::to(fail).payload(&m.payload).partition(partition).headers(headers);
        while let Err((_, r)) = producer.send(record) {
            record = r;
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    let group = crate::kafka_util::unique_topic("ri-group");
    let start = || {
        let args = ["replay", "--brokers", &brokers, "--from", fail, "--mapping", fixed.arg(), "--topic-ok", ok2];
        Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
            .args(args)
            .args(["--topic-fail", fail2, "--group", &group, "--max-batch", "100", "--format", "json"])
            .current_dir(crate::util::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("replay starts")
    };
    let committed = || committed_sum(&brokers, &group, fail, PARTS);
    // Waits until the group has committed past `beyond`, then sends `signal`.
    let interrupt = |child: &std::process::Child, beyond: i64, signal: &str| {
        let started = Instant::now();
        while committed() <= beyond {
            assert!(started.elapsed() < Duration::from_secs(60), "the replay commits nothing past {beyond}");
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(status.success());
    };
    let report = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), String::from_utf8_lossy(&out.stderr)))
    };
    let placed = |r: &serde_json::Value| {
        ["now_ok", "still_failing", "skipped", "not_ours", "not_selected", "already_delivered"]
            .iter()
            .map(|k| r[k].as_i64().unwrap())
            .sum::<i64>()
    };

    let first = start();
    interrupt(&first, 2_000, "-INT");
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "SIGINT: stopped on request; {}", stderr(&out));
    let r1 = report(&out);
    assert_eq!(r1["interrupted"], true);
    let c1 = committed();
    assert!(c1 < N, "interrupted before the end ({c1} of {N})");
    assert_eq!(r1["read"].as_i64(), Some(c1), "a stop on request commits exactly what it read: {r1:#}");
    assert_eq!(placed(&r1), c1, "every record read counted once: {r1:#}");

    let second = start();
    interrupt(&second, c1 + 2_000, "-KILL");
    let mut second = second;
    assert!(second.wait().unwrap().code().is_none(), "killed");
    let c2 = committed();
    assert!(c2 < N, "killed before the end ({c2} of {N})");

    let third = start().wait_with_output().unwrap();
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    let r3 = report(&third);
    assert_eq!(r3["read"].as_i64(), Some(N - c2), "the third run starts at the last commit: {r3:#}");
    assert_eq!(placed(&r3), N - c2, "{r3:#}");
    assert_eq!(committed(), N);

    let want_ok = (0..N).filter(|i| fixable(*i)).count();
    let oks = crate::kafka_util::consume(ok2, PARTS, want_ok, Duration::from_secs(60));
    let stills = crate::kafka_util::consume(fail2, PARTS, N as usize - want_ok, Duration::from_secs(60));
    let mut seen = std::collections::HashMap::new();
    for (m, is_ok) in oks.iter().map(|m| (m, true)).chain(stills.iter().map(|m| (m, false))) {
        let of = crate::kafka_util::header(m, "lambda-stream.replay.of").expect("replay.of");
        let i: i64 = of.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(is_ok, fixable(i), "record {i} on the right topic");
        assert_eq!(crate::kafka_util::header(m, "trace"), Some(format!("t{i}")), "the original header travels");
        let from = crate::kafka_util::header(m, "lambda-stream.replay.from").unwrap();
        assert!(from.starts_with(&format!("{fail}/{}/", i % i64::from(PARTS))), "{from}");
        if is_ok {
            assert_eq!(crate::kafka_util::key_text(m), Some(i.to_string()), "the mapping's key");
        }
        *seen.entry(i).or_insert(0) += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).map(|(i, _)| *i).collect();
    assert_eq!(seen.len() as i64, N, "no record lost");
    assert!(
        duplicates.is_empty(),
        "the resumed run sends nothing its killed predecessor delivered ({} duplicates; it counted {})",
        duplicates.len(),
        r3["already_delivered"]
    );
    eprintln!(
        "replay interrupted: SIGINT after {c1}, SIGKILL after {c2} committed; the last run found {} delivered",
        r3["already_delivered"]
    );
    let (ok_before, fail_before) = (oks.len(), stills.len());

    // Back to the start, marked with where the outputs ended before the first run: as if one run
    // had delivered everything and been killed before its first commit.
    {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        let consumer: BaseConsumer =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().unwrap();
        let mut marker = lambda_stream::worker::replay::ResumeMarker::default();
        for topic in [ok2, fail2] {
            for p in 0..PARTS {
                marker.ends.insert((topic.clone(), p), 0);
            }
        }
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTS {
            tpl.add_partition_offset(fail, p, rdkafka::Offset::Offset(0)).unwrap();
            tpl.find_partition(fail, p).unwrap().set_metadata(marker.encode());
        }
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    }
    let again = start().wait_with_output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let r = report(&again);
    assert_eq!((r["read"].as_i64(), r["already_delivered"].as_i64()), (Some(N), Some(N)), "{r:#}");
    assert_eq!(r["now_ok"], 0);
    let oks = crate::kafka_util::consume(ok2, PARTS, ok_before, Duration::from_secs(30));
    let stills = crate::kafka_util::consume(fail2, PARTS, fail_before, Duration::from_secs(30));
    assert_eq!((oks.len(), stills.len()), (ok_before, fail_before), "nothing sent again");
}

/// A fail topic written by the worker with `--exactly-once` holds transactions: their commit
/// markers take offsets, and a transaction may still be open. The replay reads what was committed
/// when it started, ends without waiting for a record past the last marker, and leaves the open
/// transaction to the next run, which resumes there once it is committed.
#[test]
fn a_replay_reads_a_fail_topic_written_in_transactions() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use std::time::Duration;

    let brokers = crate::kafka_util::bootstrap();
    let names = fresh_topics(&["rt-fail", "rt-ok2", "rt-fail2"], 1);
    let [fail, ok2, fail2] = &names[..] else { unreachable!() };
    let wrong = "version: 1\nname: replay-tx\nfields:\n  - {target: id, source: $.id, type: integer, validate: [{range: {max: 0}}]}\n";
    let fail_message = fail_messages(wrong, fail);
    let envelope = |i: i64| {
        let input = lambda_stream::record::Input {
            source: lambda_stream::record::Source { topic: "src".into(), offset: Some(i), ..Default::default() },
            payload: lambda_stream::record::Payload::Value(format!(r#"{{"id": {i}}}"#).into_bytes()),
        };
        fail_message(&input).payload
    };
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", crate::kafka_util::unique_topic("rt-tx"))
        .create()
        .unwrap();
    let t = Duration::from_secs(30);
    producer.init_transactions(t).unwrap();
    for batch in 0..2 {
        producer.begin_transaction().unwrap();
        for i in 1..=5 {
            producer.send(BaseRecord::<(), _>::to(fail).payload(&envelope(batch * 5 + i))).unwrap();
        }
        producer.commit_transaction(t).unwrap();
    }
    // A third transaction, left open.
    producer.begin_transaction().unwrap();
    producer.send(BaseRecord::<(), _>::to(fail).payload(&envelope(11))).unwrap();
    producer.flush(t).unwrap();

    let fixed = crate::util::TempFile::new("fixed.yaml", wrong.replace("validate: [{range: {max: 0}}]", "").as_bytes());
    let replay = || {
        let args = ["replay", "--brokers", &brokers, "--from", fail, "--mapping", fixed.arg(), "--topic-ok", ok2];
        lambda_stream(&[&args[..], &["--topic-fail", fail2, "--format", "json"]].concat())
    };
    let started = std::time::Instant::now();
    let out = replay();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(8), "no wait for a record past the last marker");
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((r["read"].as_u64(), r["now_ok"].as_u64()), (Some(10), Some(10)), "{r:#}");
    assert_eq!(crate::kafka_util::consume(ok2, 1, 10, Duration::from_secs(15)).len(), 10);

    producer.commit_transaction(t).unwrap();
    let out = replay();
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((r["read"].as_u64(), r["now_ok"].as_u64()), (Some(1), Some(1)), "the next run resumes there: {r:#}");
    let out = replay();
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["read"], 0, "{r:#}");
}
