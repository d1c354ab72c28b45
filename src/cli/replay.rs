//! `lambda-stream replay --brokers B --from FAIL --mapping M --topic-ok OK --topic-fail FAIL2`: the
//! records of a fail topic rebuilt from their envelopes and run through a (fixed) mapping again
//! (see `worker::replay`), with a summary per old `field:rule`.

use std::path::PathBuf;

use super::error::CliError;
use super::exit::{INTERRUPTED, Outcome};
use super::failures::ClusterArgs;
use super::validate::Format;

/// Options of `replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The fail topic to replay.
    #[arg(long)]
    pub from: String,
    /// The mapping to replay through (a file or s3://).
    #[arg(long)]
    pub mapping: PathBuf,
    /// Where records that now map go.
    #[arg(long)]
    pub topic_ok: String,
    /// Where records that still fail go (not --from, unless --allow-same-topic).
    #[arg(long)]
    pub topic_fail: String,
    /// Consumer group (default `lambda-stream-replay-<from>-<mapping name>`).
    #[arg(long)]
    pub group: Option<String>,
    /// From this time (`2h`, `1d` ago, or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only records whose errors include this `field:rule`.
    #[arg(long = "where", value_name = "FIELD:RULE")]
    pub only_rule: Option<String>,
    /// Produce and commit nothing: per old `field:rule`, how many records would now pass.
    #[arg(long)]
    pub dry_run: bool,
    /// Records per batch: each batch is delivered, then its offsets committed.
    #[arg(long, default_value_t = crate::worker::replay::DEFAULT_MAX_BATCH as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch: u64,
    /// Allow --topic-fail to be --from (a replay then reads what it writes only after it ends).
    #[arg(long)]
    pub allow_same_topic: bool,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The schema registry that fail records in a registry's format (`value_format` in their
    /// envelope: avro, json-schema) name their schemas in: a Confluent-compatible one's URL, or
    /// `glue`, `glue:REGION`, a Glue registry's ARN (env SCHEMA_REGISTRY_URL).
    #[arg(long)]
    pub registry: Option<String>,
    /// Or one Avro schema file to read every such record with.
    #[arg(long, conflicts_with = "registry")]
    pub schema: Option<PathBuf>,
}

/// `lambda-stream replay`.
pub fn replay(args: ReplayArgs) -> Result<Outcome, CliError> {
    if args.topic_fail == args.from && !args.allow_same_topic {
        return Err(CliError::Usage(format!(
            "--topic-fail is --from (`{}`): a replay would feed itself; give another fail topic, or --allow-same-topic",
            args.from
        )));
    }
    let (_, plan) = super::source::load(&args.mapping)?;
    if plan.output_topics().contains(&args.from.as_str()) && !args.allow_same_topic {
        return Err(CliError::Usage(format!(
            "the mapping's outputs write to --from (`{}`): a replay would feed itself; give the output another topic, or --allow-same-topic",
            args.from
        )));
    }
    let time = super::failures::times_from_now();
    let group = args.group.clone().unwrap_or_else(|| format!("lambda-stream-replay-{}-{}", args.from, plan.name()));
    let cluster = args.cluster.settings()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = crate::worker::replay::ReplayOptions {
        cluster: cluster.clone(),
        from: args.from.clone(),
        group,
        since_ms: time(&args.since)?,
        until_ms: time(&args.until)?,
        only_rule: args.only_rule.clone(),
        dry_run: args.dry_run,
        max_batch: args.max_batch as usize,
        stop: std::sync::Arc::clone(&stop),
    };
    let router = crate::destination::Router {
        topic_ok: args.topic_ok.clone(),
        topic_fail: args.topic_fail.clone(),
        function_name: "lambda-stream-replay".into(),
        function_env: String::new(),
    };
    let mut pipeline = crate::pipeline::Pipeline::new(plan, router);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    let registry =
        args.registry.clone().or_else(|| std::env::var("SCHEMA_REGISTRY_URL").ok().filter(|u| !u.is_empty()));
    let formats = super::formats::FormatArgs {
        format: crate::format::SourceFormat::Json,
        registry: if args.schema.is_some() { None } else { registry },
        schema: args.schema.clone(),
    };
    if let Some(schemas) = super::formats::schemas_of(&formats, &runtime)? {
        pipeline = pipeline.with_schemas(schemas);
    }
    let sink = if args.dry_run { None } else { Some(crate::sink::kafka::KafkaSink::new(&cluster)?) };
    runtime.spawn(stop_on_signal(stop));
    let mut last = std::time::Instant::now();
    let report = runtime.block_on(crate::worker::replay::replay(
        &options,
        std::sync::Arc::new(pipeline),
        sink.as_ref(),
        |r| {
            if last.elapsed().as_secs() >= 1 {
                eprintln!("read {} records: {} now ok, {} still failing", r.read, r.now_ok, r.still_failing);
                last = std::time::Instant::now();
            }
        },
    ))?;
    for warning in &report.warnings {
        eprintln!("lambda-stream: warning: {warning}");
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).expect("a report serialises")),
        Format::Text => {
            let what = if args.dry_run { "would be" } else { "are" };
            println!(
                "{} read: {} {what} ok now, {} still failing, {} skipped; {} not ours; {} not selected",
                report.read, report.now_ok, report.still_failing, report.skipped, report.not_ours, report.not_selected
            );
            if report.already_delivered > 0 {
                println!("{} delivered by the interrupted run before (not sent again)", report.already_delivered);
            }
            for (rule, o) in &report.by_old_rule {
                let news: Vec<String> = o.new_errors.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
                println!(
                    "  {rule}: {} pass, {} still fail{}",
                    o.now_ok,
                    o.still_failing,
                    if news.is_empty() { String::new() } else { format!(" ({})", news.join(", ")) }
                );
            }
        }
    }
    if report.interrupted {
        eprintln!("lambda-stream: interrupted; what was read is delivered and committed: run it again to resume");
        return Ok(Outcome::Interrupted);
    }
    Ok(Outcome::Done)
}

/// The first SIGINT or SIGTERM asks the replay to stop after the batches in flight are delivered
/// and committed; a second one stops the process at once (what was not committed is replayed by
/// the next run, which does not send again what it finds delivered).
async fn stop_on_signal(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        if n > 0 {
            eprintln!("lambda-stream: stopped at once");
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!(
            "lambda-stream: stopping after the batches in flight are delivered and committed (again to stop at once)"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
