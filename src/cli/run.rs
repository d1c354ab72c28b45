//! `lambda-stream run`: the consumer-group worker, with settings from flags, the environment and
//! `environments.yaml`, and a watchdog that exits when the loop stalls.

use std::path::PathBuf;

use super::error::CliError;
use super::exit::{Exit, Outcome};

/// `lambda-stream run`'s flags; each overrides the environment variable named after `env`, which
/// overrides `environments.yaml` (used when `--env` or LAMBDA_ENV names an entry).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The mapping: a file, or an S3 object `s3://bucket/key[?versionId=…]` (env MAPPING_FILE).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Bootstrap servers (env MSK_SERVERS).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topics to consume, comma-separated (env SOURCE_TOPICS).
    #[arg(long)]
    pub topics: Option<String>,
    /// Consumer group id (env CONSUMER_GROUP).
    #[arg(long)]
    pub group: Option<String>,
    /// Destination for mapped records (env TOPIC_OK).
    #[arg(long)]
    pub topic_ok: Option<String>,
    /// Destination for failed records (env TOPIC_FAIL).
    #[arg(long)]
    pub topic_fail: Option<String>,
    /// How source record values are written: json, json-schema, avro or protobuf (env
    /// SOURCE_FORMAT).
    #[arg(long = "format")]
    pub format: Option<String>,
    /// A Confluent-compatible schema registry's base URL (env SCHEMA_REGISTRY_URL); its
    /// credentials from SCHEMA_REGISTRY_USER_INFO or SCHEMA_REGISTRY_BEARER_TOKEN.
    #[arg(long)]
    pub registry: Option<String>,
    /// How ok records are written: json or avro (env OUTPUT_FORMAT); over the mapping's
    /// `output.format`.
    #[arg(long)]
    pub output_format: Option<String>,
    /// The Avro writer schema: a file, or registry:SUBJECT[@VERSION] (env OUTPUT_SCHEMA); over the
    /// mapping's `output.schema`. Default: the latest under `<topic-ok>-value`.
    #[arg(long)]
    pub output_schema: Option<String>,
    /// Register the output schema file under its subject when it is not yet (env
    /// REGISTER_SCHEMAS=true). Without it, a schema the registry does not have stops the start.
    #[arg(long)]
    pub register_schemas: bool,
    /// Environment (account) in environments.yaml (env LAMBDA_ENV).
    #[arg(long)]
    pub env: Option<String>,
    /// Stage under the environment (env LAMBDA_STAGE).
    #[arg(long)]
    pub stage: Option<String>,
    /// The environments file (env ENVIRONMENTS_FILE) (default ./environments.yaml).
    #[arg(long)]
    pub environments: Option<PathBuf>,
    /// Outputs and offsets commit atomically in one transaction per batch.
    #[arg(long)]
    pub exactly_once: bool,
    /// The producer's transactional.id with --exactly-once (default: unique per process). Give a
    /// restarted instance its old id so it fences the dead one at once.
    #[arg(long, requires = "exactly_once")]
    pub transactional_id: Option<String>,
    /// Threads that map a batch (env WORKER_CONCURRENCY) (default: all cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Largest batch (env WORKER_MAX_BATCH).
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Seconds between checks of the mapping for a change, 0 for none; SIGHUP checks at once
    /// (env MAPPING_REFRESH_S, default 60).
    #[arg(long)]
    pub mapping_refresh_s: Option<u64>,
    /// Wait this long for a batch to fill once it has a record.
    #[arg(long, default_value_t = 20)]
    pub max_wait_ms: u64,
    /// Give up (exit 3, nothing committed past the stuck records) after deliveries have failed
    /// this long.
    #[arg(long, default_value_t = 120)]
    pub delivery_timeout_s: u64,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 10)]
    pub stats_interval_s: u64,
    /// Exit with status 3 when the loop stays this long in one step (a client call that never
    /// returns), for the supervisor to restart the worker. Default: the longest bound of any
    /// step (the message timeout + 5 s) plus 60 s.
    #[arg(long, value_parser = clap::value_parser!(u64).range(5..))]
    pub stall_timeout_s: Option<u64>,
    /// How long the group waits for a silent member (a crash, a frozen host) before its
    /// partitions move to the others [default: 45]: shorter moves them sooner, but a pause longer
    /// than it (a network blip) costs a rebalance. A classic-protocol setting: with the consumer
    /// protocol the group's `consumer.session.timeout.ms` on the broker decides, so giving it
    /// makes `auto` choose the classic protocol.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub session_timeout_s: Option<u64>,
    /// How the group shares partitions: `consumer` (KIP-848, Kafka 4.0+ brokers), `classic`
    /// (cooperative-sticky assignment, any broker), or `auto`: the consumer protocol when the
    /// broker offers it. Both move only the partitions that change hands.
    #[arg(long, default_value = "auto", value_parser = ["auto", "classic", "consumer"])]
    pub group_protocol: String,
    /// Serve `/metrics` (Prometheus text format), `/healthz` and `/readyz` on this address, e.g.
    /// 127.0.0.1:9464 (`0.0.0.0:9464` to be scraped from other hosts).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Extra librdkafka consumer property, `key=value` (repeatable).
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    pub consumer_properties: Vec<String>,
    /// Extra librdkafka producer property, `key=value` (repeatable).
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_properties: Vec<String>,
    /// Copy values unmapped to the ok topic (a mirror; the benchmark's baseline).
    #[arg(long)]
    pub pass_through: bool,
    /// Log JSON lines instead of text.
    #[arg(long)]
    pub json_logs: bool,
}

pub(super) fn properties(list: &[String], flag: &str) -> Result<Vec<(String, String)>, CliError> {
    list.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::Usage(format!("{flag} expects KEY=VALUE, found {p:?}"))),
        })
        .collect()
}

/// `lambda-stream run`: settings from flags, the environment and (with an environment named)
/// `environments.yaml`, `parameter://` values from SSM; then the worker until a stop signal. Why it
/// stopped, if not on a signal, is also logged.
pub fn run(args: RunArgs) -> Result<Outcome, CliError> {
    run_worker(args).inspect_err(|e| tracing::error!(error = %e, "worker stopped"))
}

fn run_worker(args: RunArgs) -> Result<Outcome, CliError> {
    use crate::worker::{Worker, WorkerOptions};

    crate::logging::init(args.json_logs, "info");
    let flags = vec![
        ("MAPPING_FILE", args.mapping.as_ref().map(|p| p.display().to_string())),
        ("MSK_SERVERS", args.brokers.clone()),
        ("SOURCE_TOPICS", args.topics.clone()),
        ("CONSUMER_GROUP", args.group.clone()),
        ("TOPIC_OK", args.topic_ok.clone()),
        ("TOPIC_FAIL", args.topic_fail.clone()),
        ("SOURCE_FORMAT", args.format.clone()),
        ("SCHEMA_REGISTRY_URL", args.registry.clone()),
        ("OUTPUT_FORMAT", args.output_format.clone()),
        // A file named on the command line is where the shell says, not beside the mapping.
        ("OUTPUT_SCHEMA", args.output_schema.as_deref().map(super::formats::command_line_schema)),
        ("REGISTER_SCHEMAS", args.register_schemas.then(|| "true".to_string())),
        ("LAMBDA_ENV", args.env.clone()),
        ("LAMBDA_STAGE", args.stage.clone()),
        ("ENVIRONMENTS_FILE", args.environments.as_ref().map(|p| p.display().to_string())),
        ("WORKER_CONCURRENCY", args.concurrency.map(|n| n.to_string())),
        ("WORKER_MAX_BATCH", args.max_batch.map(|n| n.to_string())),
        ("MAPPING_REFRESH_S", args.mapping_refresh_s.map(|n| n.to_string())),
    ];
    let layers = crate::config::Layers::command_line(flags, "lambda-stream-worker");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    let settings = runtime.block_on(crate::config::ssm::settings_with_parameters(
        |name: &str| layers.get(name),
        crate::config::ssm::lambda_client,
    ))?;
    let group = settings
        .consumer_group
        .clone()
        .ok_or_else(|| CliError::Usage("the consumer group is required: --group or CONSUMER_GROUP".into()))?;
    if settings.source_topics.is_empty() {
        return Err(CliError::Usage(
            "no topics to consume: --topics, SOURCE_TOPICS or `source_topics` in environments.yaml".into(),
        ));
    }
    let (mut pipeline, refreshers) = runtime.block_on(crate::mapping_source::load_pipeline(&settings))?;
    if let Some(n) = settings.worker_concurrency {
        pipeline.threads = n;
    }
    let mut producer = settings.producer.clone();
    producer.transactional_id = args.transactional_id.clone();
    producer.extra.extend(properties(&args.producer_properties, "--producer-property")?);
    let mut options = WorkerOptions::new(producer, settings.source_topics.clone(), group);
    options.exactly_once = args.exactly_once;
    if let Some(n) = settings.worker_max_batch {
        options.max_batch = n;
    }
    options.max_wait = std::time::Duration::from_millis(args.max_wait_ms);
    options.delivery_timeout = std::time::Duration::from_secs(args.delivery_timeout_s);
    options.stats_interval = std::time::Duration::from_secs(args.stats_interval_s);
    options.stall_timeout = args.stall_timeout_s.map(std::time::Duration::from_secs);
    options.consumer_extra = properties(&args.consumer_properties, "--consumer-property")?;
    options.pass_through = args.pass_through;
    options.session_timeout = args.session_timeout_s.map(std::time::Duration::from_secs);
    options.group_protocol =
        crate::worker::GroupProtocol::from_name(&args.group_protocol).expect("clap checked the name");
    if options.group_protocol == crate::worker::GroupProtocol::Consumer && options.session_timeout.is_some() {
        return Err(CliError::Usage(
            "--session-timeout-s is a classic-protocol setting; with --group-protocol consumer the group's \
             consumer.session.timeout.ms on the broker decides (kafka-configs.sh --entity-type groups)"
                .into(),
        ));
    }
    tracing::info!(
        topics = %options.topics.join(","), group = %options.group, exactly_once = options.exactly_once,
        topic_ok = %settings.topic_ok, topic_fail = %settings.topic_fail,
        mapping = %(0..pipeline.route_count()).map(|i| pipeline.route_plan(i).identity()).collect::<Vec<_>>().join(","),
        routes = pipeline.route_count(),
        location = %refreshers.iter().map(|r| r.source.location.to_string()).collect::<Vec<_>>().join(","),
        refresh_s = settings.mapping_refresh_s, "worker starting"
    );
    // The stream consumer spawns its wake-up task on the current runtime.
    let _entered = runtime.enter();
    let listener = match args.metrics_addr {
        Some(addr) => Some(crate::worker::metrics::Listener::bind(addr)?),
        None => None,
    };
    let mut worker = Worker::new(pipeline, options)?;
    watch_for_stalls(worker.heartbeat(), worker.stall_limit());
    if let Some(listener) = listener {
        let addr = listener.addr();
        crate::worker::metrics::serve(listener, worker.metrics_endpoint())?;
        tracing::info!(%addr, "metrics at /metrics, health at /healthz and /readyz");
    }
    for refresher in refreshers {
        runtime.spawn(refresh_mapping(refresher, worker.pipeline()));
    }
    let totals = runtime.block_on(worker.run(crate::worker::shutdown_signal()))?;
    // One machine-readable line on stdout for scripts and tests: the run's accounting.
    println!("{}", serde_json::to_string(&totals).expect("totals serialise"));
    Ok(Outcome::Done)
}

/// Checks the mapping's source every refresh interval and on each SIGHUP; a changed mapping that
/// compiles and passes its tests replaces the worker's between two batches (see
/// `mapping_source`). Runs beside the loop, never inside it.
async fn refresh_mapping(
    refresher: crate::mapping_source::Refresher,
    pipeline: std::sync::Arc<crate::pipeline::Pipeline>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; the mapping is refreshed on its interval only");
            None
        }
    };
    // Zero: SIGHUP only (a period no run outlives).
    let period = if refresher.interval.is_zero() {
        std::time::Duration::from_secs(100 * 365 * 86_400)
    } else {
        refresher.interval
    };
    loop {
        let hung_up = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = hung_up => tracing::info!("SIGHUP: checking the mapping"),
        }
        refresher.refresh(&pipeline).await;
    }
}

/// Exits the process when the worker's loop stays in one step far longer than any of its bounds
/// (a client call that never returns). Nothing is lost: what was not committed is consumed again
/// by the next member, and an open transaction is aborted when the next producer with its id
/// starts. Silence would be worse: a stuck member keeps its partitions and reports nothing.
fn watch_for_stalls(heartbeat: std::sync::Arc<crate::worker::Heartbeat>, limit: std::time::Duration) {
    let watchdog = move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if let Some((step, stalled)) = heartbeat.stalled(limit) {
                tracing::error!(
                    step,
                    seconds = stalled.as_secs(),
                    limit_s = limit.as_secs(),
                    "worker stuck in one step longer than any of its bounds; exiting for a restart"
                );
                std::process::exit(i32::from(Exit::Infrastructure.code()));
            }
        }
    };
    std::thread::Builder::new().name("watchdog".into()).spawn(watchdog).expect("a thread can be spawned");
}
