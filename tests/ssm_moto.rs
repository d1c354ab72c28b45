//! `parameter://` resolution against a real AWS API emulator: `moto` in server mode on 127.0.0.1
//! (installed by `scripts/test`), spoken to by the AWS SDK for Rust — no mock of the SDK.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ssm::Client;
use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ssm::types::ParameterType;
use lambda_stream::config::ssm::settings_with_parameters;

/// moto in server mode on a free port of 127.0.0.1, stopped when dropped (shared with the S3 tests).
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start(require_auth: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if require_auth {
            // Every request is checked against moto's IAM: unknown keys are refused.
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd.spawn().expect("python3 -m moto.server (scripts/test installs moto[server])");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto did not start on {port}; is moto[server] installed? (scripts/test installs it)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, port }
    }

    fn client(&self, key: &str) -> Client {
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("sa-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{}", self.port))
            .credentials_provider(Credentials::new(key, "secret", None, None, "test"))
            .build();
        Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn environments_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("environments.yaml");
    std::fs::write(
        &path,
        "version: 1\nacme:\n  prod:\n    lambda_name: orders\n    msk_servers: parameter://acme/kafka/bootstrap\n    source_topics: [in]\n    topic_ok: parameter://acme/topics/ok\n    topic_fail: out.fail\n    mapping: m.yaml\n",
    )
    .unwrap();
    path
}

fn lookup(file: &std::path::Path) -> impl Fn(&str) -> Option<String> + use<> {
    let file = file.display().to_string();
    move |name| match name {
        "ENVIRONMENTS_FILE" => Some(file.clone()),
        "LAMBDA_ENV" => Some("acme".into()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_are_resolved_from_ssm_securestrings_included() {
    let moto = Moto::start(false);
    let client = moto.client("test");
    for (name, value, kind) in [
        ("/acme/kafka/bootstrap", "b-1.msk:9098,b-2.msk:9098", ParameterType::SecureString),
        ("/acme/topics/ok", "billing.records.v1", ParameterType::String),
    ] {
        client.put_parameter().name(name).value(value).r#type(kind).send().await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("ls-ssm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = environments_file(&dir);
    let settings = settings_with_parameters(lookup(&file), async || moto.client("test")).await.unwrap();
    assert_eq!(settings.producer.brokers, "b-1.msk:9098,b-2.msk:9098", "SecureString decrypted");
    assert_eq!(settings.topic_ok, "billing.records.v1");
    assert_eq!(settings.topic_fail, "out.fail");

    // A missing parameter fails, naming it and never a value.
    client.delete_parameter().name("/acme/topics/ok").send().await.unwrap();
    let e = settings_with_parameters(lookup(&file), async || moto.client("test")).await.unwrap_err().to_string();
    assert!(e.contains("`topic_ok` refers to parameter `/acme/topics/ok`") && e.contains("ParameterNotFound"), "{e}");
    assert!(!e.contains("b-1.msk"), "no parameter values in errors: {e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_fail_naming_the_parameter() {
    let moto = Moto::start(true);
    let dir = std::env::temp_dir().join(format!("ls-ssm-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = environments_file(&dir);
    let e = settings_with_parameters(lookup(&file), async || moto.client("AKIAUNKNOWNKEY000000"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("parameter `/acme/kafka/bootstrap`"), "{e}");
    assert!(
        e.contains("UnrecognizedClientException") || e.contains("InvalidClientTokenId") || e.contains("AccessDenied"),
        "{e}"
    );
    assert!(!e.contains("secret"), "no credentials in errors: {e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn no_references_means_no_aws_call() {
    let dir = std::env::temp_dir().join(format!("ls-ssm-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("environments.yaml");
    std::fs::write(&path, "version: 1\nacme:\n  prod: {lambda_name: f, msk_servers: 'b:9092', source_topics: [in], topic_ok: o, topic_fail: f, mapping: m.yaml}\n").unwrap();
    let settings =
        settings_with_parameters(lookup(&path), async || -> Client { panic!("SSM must not be called") }).await.unwrap();
    assert_eq!(settings.producer.brokers, "b:9092");
    std::fs::remove_dir_all(dir).unwrap();
}
