//! The exit-code table every command follows (docs/operations.md#exit-codes), pinned row by row
//! where no broker, S3 or SSM is needed: nothing listens on 127.0.0.1:1, so a cluster there is
//! unreachable, and a mapping or a command line is checked before any cluster is asked.

use std::process::Output;

use crate::util::{lambda_stream, stderr, stdout};

/// A mapping that does not compile.
const BROKEN: &str = "tests/fixtures/broken/types.yaml";
const MAPPING: &str = "mappings/orders-to-billing.yaml";
/// Nothing listens there: connections are refused at once.
#[cfg(feature = "kafka")]
const NO_BROKER: &str = "127.0.0.1:1";

fn assert_exit(out: &Output, code: i32, said: &str, what: &str) {
    let all = format!("{}{}", stdout(out), stderr(out));
    assert_eq!(out.status.code(), Some(code), "{what}: {all}");
    assert!(all.contains(said), "{what}: expected {said:?} in:\n{all}");
    assert!(!all.contains("panicked"), "{what}: {all}");
}

/// 1: a mapping refused (or its embedded tests failing), whichever command reads it.
#[test]
fn a_refused_mapping_exits_1() {
    let failing_tests = "tests/fixtures/broken/failing-tests.yaml";
    for (args, said) in [
        (vec!["validate-mapping", BROKEN], "the mapping is refused"),
        (vec!["validate-mapping", failing_tests], "FAILED"),
        (vec!["process", "--mapping", BROKEN, "--input", "tests/fixtures/orders.jsonl"], "is invalid"),
        (vec!["explain", "--mapping", BROKEN, "--input", "tests/fixtures/order.json"], "is invalid"),
        (vec!["diff-mapping", MAPPING, BROKEN, "--input", "tests/fixtures/orders.jsonl"], "is invalid"),
    ] {
        assert_exit(&lambda_stream(&args), 1, said, &args.join(" "));
    }
}

/// 1 also for the commands that reach a cluster: the mapping is refused before the cluster is
/// asked anything.
#[cfg(feature = "kafka")]
#[test]
fn a_refused_mapping_exits_1_before_any_cluster_is_asked() {
    let replay = [
        "replay",
        "--brokers",
        NO_BROKER,
        "--from",
        "orders.fail",
        "--mapping",
        BROKEN,
        "--topic-ok",
        "ok",
        "--topic-fail",
        "fail",
    ];
    let run = [
        "run",
        "--brokers",
        NO_BROKER,
        "--mapping",
        BROKEN,
        "--topics",
        "in",
        "--group",
        "g",
        "--topic-ok",
        "ok",
        "--topic-fail",
        "fail",
    ];
    for args in [&replay[..], &run[..]] {
        assert_exit(&lambda_stream(args), 1, "is invalid", &args.join(" "));
    }
}

/// 2: a usage error, or input that cannot be read.
#[test]
fn a_usage_error_or_unreadable_input_exits_2() {
    for (args, said) in [
        (vec!["validate-mapping", "--format", "xml", "x.yaml"], "invalid value 'xml'"),
        (vec!["explain", "--mapping", MAPPING, "--input", "tests/fixtures/order.json", "--field", "nope"], "no target"),
        (vec!["validate-mapping", "does/not/exist.yaml"], "cannot read file"),
        (vec!["process", "--mapping", "does/not/exist.yaml", "--input", "-"], "cannot read mapping file"),
        (vec!["init", "--from", "does/not/exist.jsonl"], "cannot read does/not/exist.jsonl"),
    ] {
        assert_exit(&lambda_stream(&args), 2, said, &args.join(" "));
    }
    let no_command = lambda_stream(&[]);
    assert_eq!(no_command.status.code(), Some(2), "no command: the help, and 2");
    assert!(stdout(&no_command).contains("Usage:"), "{}", stdout(&no_command));
}

/// 2 for the commands that reach a cluster too, when what they were asked cannot be done
/// whatever the cluster says.
#[cfg(feature = "kafka")]
#[test]
fn a_usage_error_of_a_cluster_command_exits_2_without_asking_the_cluster() {
    let same_topic = [
        "replay",
        "--brokers",
        NO_BROKER,
        "--from",
        "f",
        "--mapping",
        MAPPING,
        "--topic-ok",
        "ok",
        "--topic-fail",
        "f",
    ];
    let bad_time = ["failures", "--brokers", NO_BROKER, "--topic", "f", "--since", "yesterday"];
    let no_group = [
        "run",
        "--brokers",
        NO_BROKER,
        "--mapping",
        MAPPING,
        "--topics",
        "in",
        "--topic-ok",
        "ok",
        "--topic-fail",
        "f",
    ];
    for (args, said) in [
        (&same_topic[..], "would feed itself"),
        (&bad_time[..], "is not a duration ago"),
        (&no_group[..], "the consumer group is required"),
    ] {
        assert_exit(&lambda_stream(args), 2, said, &args.join(" "));
    }
}

/// 3: `failures` on a cluster that cannot be reached says which, instead of a usage error.
#[cfg(feature = "kafka")]
#[test]
fn failures_on_an_unreachable_cluster_exits_3() {
    let out = lambda_stream(&["failures", "--brokers", NO_BROKER, "--topic", "orders.fail"]);
    assert_exit(&out, 3, &format!("cannot read topic `orders.fail` from {NO_BROKER}"), "failures");
}

/// 3: so does `replay`, once its mapping is loaded.
#[cfg(feature = "kafka")]
#[test]
fn replay_on_an_unreachable_cluster_exits_3() {
    let out = lambda_stream(&[
        "replay",
        "--brokers",
        NO_BROKER,
        "--from",
        "orders.fail",
        "--mapping",
        MAPPING,
        "--topic-ok",
        "ok",
        "--topic-fail",
        "fail",
    ]);
    assert_exit(&out, 3, &format!("cannot read topic `orders.fail` from {NO_BROKER}"), "replay");
}

/// 3: an address that cannot be listened on is the machine's, not the command line's: `run`'s
/// metrics address (bound before the worker reaches its cluster) and the playground's port.
#[test]
fn an_address_taken_exits_3() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = lambda_stream(&[
        "playground",
        "--mapping",
        MAPPING,
        "--samples",
        "tests/fixtures/orders.jsonl",
        "--port",
        &port,
    ]);
    assert_exit(&out, 3, &format!("cannot listen on 127.0.0.1:{port}"), "playground");
    #[cfg(feature = "kafka")]
    {
        let addr = format!("127.0.0.1:{port}");
        let out = lambda_stream(&[
            "run",
            "--brokers",
            NO_BROKER,
            "--mapping",
            MAPPING,
            "--topics",
            "in",
            "--group",
            "g",
            "--topic-ok",
            "ok",
            "--topic-fail",
            "fail",
            "--metrics-addr",
            &addr,
        ]);
        assert_exit(&out, 3, &format!("cannot serve metrics on {addr}"), "run --metrics-addr");
    }
}
