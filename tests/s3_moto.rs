//! Mappings in S3, against moto in server mode (a real S3 API on 127.0.0.1, spoken to by the AWS
//! SDK for Rust): the cold start's load with the object's version as the mapping's version, a
//! refresh that finds nothing new and downloads nothing, one that picks up a new version, one that
//! refuses a broken mapping and keeps the old, a missing object named with bucket and key, and an
//! object too large for a mapping refused by its length.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use lambda_stream::destination::Router;
use lambda_stream::mapping_source::{Location, MappingSource, Refresh, Refresher, SourceError};
use lambda_stream::pipeline::Pipeline;

use crate::ssm_moto::Moto;

fn client(moto: &Moto) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("sa-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{}", moto.port))
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

async fn versioned_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::SaEast1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .unwrap();
}

/// Publishes a mapping text; returns the object's new version id.
async fn publish(s3: &Client, bucket: &str, key: &str, text: &str) -> String {
    let put = s3.put_object().bucket(bucket).key(key).body(ByteStream::from(text.as_bytes().to_vec())).send().await;
    put.unwrap().version_id().unwrap().to_owned()
}

fn router() -> Router {
    Router { topic_ok: "ok".into(), topic_fail: "fail".into(), function_name: "f".into(), function_env: "e".into() }
}

const V1: &str = "version: 1\nname: orders\nfields:\n  - { source: $.a, target: a, type: integer }\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_in_s3_loads_refreshes_and_refuses_a_broken_version() {
    let moto = Moto::start(false);
    let s3 = client(&moto);
    versioned_bucket(&s3, "mappings").await;
    let v1 = publish(&s3, "mappings", "orders.yaml", V1).await;

    let location = Location::parse("s3://mappings/orders.yaml").unwrap();
    let source = MappingSource::with_s3_client(location, s3.clone());
    let (refresher, plan) = Refresher::load(source, Duration::from_secs(1)).await.unwrap();
    assert_eq!(plan.identity(), format!("orders@{v1}"), "the S3 version id is the mapping's version");
    let pipeline = Pipeline::new(plan, router());

    // Nothing new: the conditional GET answers 304, nothing is compiled.
    assert!(matches!(refresher.refresh(&pipeline).await, Refresh::Unchanged));

    let v2_text = V1.replace("target: a", "target: amount");
    let v2 = publish(&s3, "mappings", "orders.yaml", &v2_text).await;
    match refresher.refresh(&pipeline).await {
        Refresh::Replaced(identity) => assert_eq!(identity, format!("orders@{v2}")),
        other => panic!("{other:?}"),
    }
    let lambda_stream::plan::Outcome::Mapped(m) = pipeline.plan().apply(br#"{"a": 5}"#) else { panic!() };
    assert_eq!(m.value, br#"{"amount":5}"#);

    // A broken version is refused with its problems located in the object; v2 stays.
    publish(&s3, "mappings", "orders.yaml", &v2_text.replace("type: integer", "type: integr")).await;
    match refresher.refresh(&pipeline).await {
        Refresh::Rejected(e @ SourceError::Invalid { .. }) => {
            let text = e.to_string();
            assert!(text.contains("s3://mappings/orders.yaml:4:"), "{text}");
            assert!(text.contains("integr"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pipeline.plan().identity(), format!("orders@{v2}"));

    // An unreadable source (the object deleted, a permission taken away) keeps the mapping too.
    s3.delete_object().bucket("mappings").key("orders.yaml").send().await.unwrap();
    match refresher.refresh(&pipeline).await {
        Refresh::Unreadable(e @ SourceError::S3 { .. }) => {
            assert!(e.to_string().contains("s3://mappings/orders.yaml"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pipeline.plan().identity(), format!("orders@{v2}"));

    // A pinned version never changes.
    let pinned = Location::parse(&format!("s3://mappings/orders.yaml?versionId={v1}")).unwrap();
    let (_, plan) = Refresher::load(MappingSource::with_s3_client(pinned, s3.clone()), Duration::ZERO).await.unwrap();
    assert_eq!(plan.identity(), format!("orders@{v1}"));
}

/// The command line reads a published mapping where it lives: `validate-mapping` and
/// `diff-mapping` on `s3://` locations.
#[test]
fn commands_check_and_compare_a_mapping_in_s3() {
    let moto = Moto::start(false);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = client(&moto);
    runtime.block_on(versioned_bucket(&s3, "published"));
    let orders = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
    let v1 = runtime.block_on(publish(&s3, "published", "orders.yaml", &orders));
    let command = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lambda-stream"))
            .args(args)
            .current_dir(crate::util::root())
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", moto.port))
            .env("AWS_REGION", "sa-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKID")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .output()
            .unwrap()
    };
    let out = command(&["validate-mapping", "s3://published/orders.yaml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("s3://published/orders.yaml: ok"), "{text}");
    runtime.block_on(publish(
        &s3,
        "published",
        "orders.yaml",
        &orders.replace("validate: [uuid]", "validate: [uuidd]"),
    ));
    let out = command(&["validate-mapping", "s3://published/orders.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("s3://published/orders.yaml:"), "located in the object");
    let pinned = format!("s3://published/orders.yaml?versionId={v1}");
    let out = command(&[
        "diff-mapping",
        &pinned,
        "mappings/orders-to-billing.yaml",
        "--input",
        "tests/fixtures/orders.jsonl",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the pinned first version is the local file: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = command(&["validate-mapping", "s3://published/nope.yaml"]);
    assert_eq!(out.status.code(), Some(2), "unreadable: {}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_object_fails_the_load_naming_bucket_and_key() {
    let moto = Moto::start(false);
    let s3 = client(&moto);
    versioned_bucket(&s3, "mappings").await;
    let location = Location::parse("s3://mappings/nope.yaml").unwrap();
    let e = Refresher::load(MappingSource::with_s3_client(location, s3), Duration::ZERO).await.err().unwrap();
    let text = e.to_string();
    assert!(text.contains("s3://mappings/nope.yaml") && text.contains("NoSuchKey"), "{text}");
}

/// An object larger than a mapping may be is refused from its length, before its body is read,
/// naming the limit: a refresh never fills the function's memory with it.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_mapping_object_is_refused_by_its_length() {
    let moto = Moto::start(false);
    let s3 = client(&moto);
    versioned_bucket(&s3, "huge").await;
    let padding = format!("# {}\n", "x".repeat(1 << 20));
    let text = format!("{V1}{}", padding.repeat(17));
    publish(&s3, "huge", "orders.yaml", &text).await;
    let location = Location::parse("s3://huge/orders.yaml").unwrap();
    let e = Refresher::load(MappingSource::with_s3_client(location, s3), Duration::ZERO).await.err().unwrap();
    let text = e.to_string();
    assert!(text.contains("s3://huge/orders.yaml") && text.contains("larger than 16 MiB"), "{text}");
}

/// The function behind the Runtime Interface Emulator, its mapping in S3 (moto) and refreshed
/// every second: v1 maps the first invocation; after v2 is published, invocations go on until
/// one is mapped by v2 (within the interval and a second or two); every invocation's ok records
/// carry the one mapping that invocation's summary names, never two.
#[test]
fn the_function_picks_up_a_new_mapping_version_between_invocations() {
    use crate::emulator::Emulated;
    use crate::kafka_util::*;
    use std::path::Path;

    let moto = Moto::start(false);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = client(&moto);
    runtime.block_on(versioned_bucket(&s3, "live"));
    let orders = std::fs::read_to_string(crate::util::root().join("mappings/orders-to-billing.yaml")).unwrap();
    let v1 = runtime.block_on(publish(&s3, "live", "orders.yaml", &orders));
    let brokers = bootstrap();
    let (ok, fail) = (unique_topic("live-ok"), unique_topic("live-fail"));
    runtime.block_on(create_topics(&[(&ok, 1), (&fail, 1)]));
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let env = vec![
        ("LAMBDA_ENV", "test".to_string()),
        ("ENVIRONMENTS_FILE", "none".into()),
        ("MSK_SERVERS", brokers.clone()),
        ("MAPPING_FILE", "s3://live/orders.yaml".into()),
        ("MAPPING_REFRESH_S", "1".into()),
        ("TOPIC_OK", ok.clone()),
        ("TOPIC_FAIL", fail.clone()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "sa-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKID".into()),
        ("AWS_SECRET_ACCESS_KEY", "secret".into()),
    ];
    let function = Emulated::start(Path::new(env!("CARGO_BIN_EXE_lambda-stream")), &env);
    let event = std::fs::read(crate::util::root().join("tests/fixtures/events/msk.json")).unwrap();
    let invoke = || {
        let (status, body) = function.invoke(&event);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let summary: serde_json::Value = serde_json::from_slice(&body).unwrap();
        summary["mapping"].as_str().unwrap().to_owned()
    };
    let mut mappings = vec![invoke()];
    assert_eq!(mappings[0], format!("orders-to-billing@{v1}"));

    // v2 writes the channel in upper case (its embedded tests too, or it would be refused).
    let v2_text = orders
        .replace(
            "    default: web\n    transform: [trim, lowercase]\n    validate:\n      - one_of: [web, app, store]",
            "    default: WEB\n    transform: [trim, uppercase]\n    validate:\n      - one_of: [WEB, APP, STORE]",
        )
        .replace("        channel: app\n", "        channel: APP\n")
        .replace("        channel: web\n", "        channel: WEB\n");
    assert_eq!(v2_text.matches("APP").count(), orders.matches("APP").count() + 2, "the edit applies");
    let v2 = runtime.block_on(publish(&s3, "live", "orders.yaml", &v2_text));
    let published = std::time::Instant::now();
    while mappings.last() != Some(&format!("orders-to-billing@{v2}")) {
        assert!(published.elapsed() < Duration::from_secs(10), "v2 not picked up: {mappings:?}\n{}", function.log());
        std::thread::sleep(Duration::from_millis(300));
        mappings.push(invoke());
    }
    // Each invocation maps 3 ok records; every one carries its invocation's mapping.
    let oks = consume(&ok, 1, 3 * mappings.len(), Duration::from_secs(20));
    assert_eq!(oks.len(), 3 * mappings.len());
    for (i, batch) in oks.chunks(3).enumerate() {
        for m in batch {
            assert_eq!(header(m, "lambda-stream.mapping").as_deref(), Some(mappings[i].as_str()), "invocation {i}");
            let channel = json_payload(m)["channel"].as_str().unwrap().to_owned();
            let v2_made_it = mappings[i].ends_with(v2.as_str());
            assert_eq!(channel == channel.to_uppercase(), v2_made_it, "v2's values with v2's header: {channel}");
        }
    }
    assert!(function.log().contains("\"mapping replaced\""), "{}", function.log());

    // A broken v3: refused with its problems in one log line; the next batches stay on v2.
    runtime.block_on(publish(&s3, "live", "orders.yaml", &v2_text.replace("type: string", "type: strin")));
    std::thread::sleep(Duration::from_millis(1200));
    let refused = std::time::Instant::now();
    while !function.log().contains("new mapping refused") {
        assert!(refused.elapsed() < Duration::from_secs(10), "v3 not refused:\n{}", function.log());
        assert_eq!(invoke(), format!("orders-to-billing@{v2}"));
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(invoke(), format!("orders-to-billing@{v2}"), "the last good mapping stays");
    let log = function.log();
    let line = log.lines().find(|l| l.contains("new mapping refused")).unwrap();
    assert!(line.contains("s3://live/orders.yaml:") && line.contains("strin"), "{line}");
}
