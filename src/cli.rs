//! The command line: argument parsing (clap) and the commands that need no broker.
//!
//! Exit codes follow compiler conventions: 0 success, 1 the input has problems (an invalid mapping,
//! a failing embedded test), 2 usage errors and unreadable files.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::diagnostic::Diagnostic;
use crate::plan::{self, Outcome, Plan, spec_tests};

#[derive(Debug, Parser)]
#[command(name = "lambda-stream", version, about = "Config-driven mapping between two Kafka topics")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check mapping files: compile each one and run its embedded tests.
    ValidateMapping {
        /// Mapping files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check environments files: every environment's settings, and the mapping each one names.
    ValidateConfig {
        /// environments.yaml files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run a mapping locally: on JSON lines (dry run), or on a saved Lambda Kafka event through the
    /// same handler code as the function (dry run, or produced to a real cluster with --brokers).
    Process {
        /// The mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// JSON lines, one record value per line; `-` reads standard input.
        #[arg(long, conflicts_with = "event", required_unless_present = "event")]
        input: Option<PathBuf>,
        /// A Lambda Kafka event (MSK or self-managed), as the function receives it.
        #[arg(long)]
        event: Option<PathBuf>,
        /// Produce to this Kafka cluster instead of printing (with --event).
        #[arg(long, requires_all = ["event", "topic_ok", "topic_fail"])]
        brokers: Option<String>,
        /// Destination topic for mapped records.
        #[arg(long)]
        topic_ok: Option<String>,
        /// Destination topic for failed records.
        #[arg(long)]
        topic_fail: Option<String>,
    },
    /// Run as a Kafka consumer-group worker: consume, map, produce to the ok and fail topics, and
    /// commit offsets only after delivery. Stops cleanly on SIGTERM or Ctrl-C.
    Run(Box<RunArgs>),
}

/// `lambda-stream run`'s flags; each overrides the environment variable in brackets, which
/// overrides `environments.yaml` (used when `--env` or LAMBDA_ENV names an entry).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The mapping file [MAPPING_FILE].
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Bootstrap servers [MSK_SERVERS].
    #[arg(long)]
    pub brokers: Option<String>,
    /// Topics to consume, comma-separated [SOURCE_TOPICS].
    #[arg(long)]
    pub topics: Option<String>,
    /// Consumer group id [CONSUMER_GROUP].
    #[arg(long)]
    pub group: Option<String>,
    /// Destination for mapped records [TOPIC_OK].
    #[arg(long)]
    pub topic_ok: Option<String>,
    /// Destination for failed records [TOPIC_FAIL].
    #[arg(long)]
    pub topic_fail: Option<String>,
    /// Environment (account) in environments.yaml [LAMBDA_ENV].
    #[arg(long)]
    pub env: Option<String>,
    /// Stage under the environment [LAMBDA_STAGE].
    #[arg(long)]
    pub stage: Option<String>,
    /// The environments file [ENVIRONMENTS_FILE] (default ./environments.yaml).
    #[arg(long)]
    pub environments: Option<PathBuf>,
    /// Outputs and offsets commit atomically in one transaction per batch.
    #[arg(long)]
    pub exactly_once: bool,
    /// The producer's transactional.id with --exactly-once (default: unique per process). Give a
    /// restarted instance its old id so it fences the dead one at once.
    #[arg(long, requires = "exactly_once")]
    pub transactional_id: Option<String>,
    /// Threads that map a batch [WORKER_CONCURRENCY] (default: all cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Largest batch [WORKER_MAX_BATCH].
    #[arg(long)]
    pub max_batch: Option<usize>,
    /// Wait this long for a batch to fill once it has a record.
    #[arg(long, default_value_t = 20)]
    pub max_wait_ms: u64,
    /// Give up (exit 1, nothing committed past the stuck records) after deliveries have failed
    /// this long.
    #[arg(long, default_value_t = 120)]
    pub delivery_timeout_s: u64,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 10)]
    pub stats_interval_s: u64,
    /// Exit with status 1 when the loop stays this long in one step (a client call that never
    /// returns), for the supervisor to restart the worker. Default: the longest bound of any
    /// step (the message timeout + 5 s) plus 60 s.
    #[arg(long, value_parser = clap::value_parser!(u64).range(5..))]
    pub stall_timeout_s: Option<u64>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Problems that stop a command (as opposed to records that fail, which are output).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot write output: {0}")]
    Write(#[from] io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    #[error("{0}")]
    Mapping(#[from] plan::LoadError),
    #[error("{0}")]
    Event(#[from] crate::lambda::HandlerError),
    #[error("{0}")]
    Sink(#[from] crate::sink::SinkError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Worker(#[from] crate::worker::WorkerError),
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Mapping(plan::LoadError::Invalid { .. }) => ExitCode::from(1),
            // A worker that stops on an infrastructure failure: a supervisor should restart it.
            CliError::Worker(_) => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        None => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let _ = cmd.print_help();
            ExitCode::from(2)
        }
        Some(Command::ValidateMapping { files, format }) => validate_mapping(&files, format),
        Some(Command::ValidateConfig { files, format }) => validate_config(&files, format),
        Some(Command::Run(args)) => run_worker(*args).unwrap_or_else(|e| {
            tracing::error!(error = %e, "worker stopped");
            eprintln!("lambda-stream: {e}");
            e.exit_code()
        }),
        Some(Command::Process { mapping, input, event, brokers, topic_ok, topic_fail }) => {
            let result = match (input, event) {
                (Some(input), _) => process(&mapping, &input).map(|()| ExitCode::SUCCESS),
                (None, Some(event)) => process_event(&mapping, &event, brokers, topic_ok, topic_fail),
                (None, None) => unreachable!("clap requires --input or --event"),
            };
            result.unwrap_or_else(|e| {
                eprintln!("lambda-stream: {e}");
                e.exit_code()
            })
        }
    }
}

/// What `validate-mapping` found in one file.
struct FileReport {
    file: String,
    unreadable: Option<String>,
    diagnostics: Vec<Diagnostic>,
    fields: usize,
    tests: Vec<spec_tests::SpecTestResult>,
}

impl FileReport {
    fn failed_tests(&self) -> usize {
        self.tests.iter().filter(|t| t.failure.is_some()).count()
    }
    fn ok(&self) -> bool {
        self.unreadable.is_none() && self.diagnostics.is_empty() && self.failed_tests() == 0
    }
}

fn check_file(path: &Path) -> FileReport {
    let file = path.display().to_string();
    let mut report = FileReport { file, unreadable: None, diagnostics: Vec::new(), fields: 0, tests: Vec::new() };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            report.unreadable = Some(e.to_string());
            return report;
        }
    };
    match plan::load_str(&text) {
        Ok((spec, plan)) => {
            report.fields = plan.field_count();
            report.tests = spec_tests::run(&spec, &plan);
        }
        Err(diagnostics) => report.diagnostics = diagnostics,
    }
    report
}

pub fn validate_mapping(files: &[PathBuf], format: Format) -> ExitCode {
    let reports: Vec<FileReport> = files.iter().map(|f| check_file(f)).collect();
    let tests_run: usize = reports.iter().map(|r| r.tests.len()).sum();
    let tests_failed: usize = reports.iter().map(FileReport::failed_tests).sum();
    let all_ok = reports.iter().all(FileReport::ok);
    let unreadable = reports.iter().any(|r| r.unreadable.is_some());
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Text => write_text_report(&mut out, &reports, tests_run, tests_failed),
        Format::Json => write_json_report(&mut out, &reports, all_ok, tests_run, tests_failed),
    };
    checker_exit(written.and_then(|()| out.flush()), unreadable, all_ok)
}

fn write_text_report(
    out: &mut impl Write,
    reports: &[FileReport],
    tests_run: usize,
    tests_failed: usize,
) -> io::Result<()> {
    for r in reports {
        if let Some(e) = &r.unreadable {
            writeln!(out, "{}: error: cannot read file: {e}", r.file)?;
            continue;
        }
        for d in &r.diagnostics {
            writeln!(out, "{}", d.render(&r.file))?;
        }
        for t in &r.tests {
            if let Some(why) = &t.failure {
                writeln!(out, "{}:{}:{}: error: test \"{}\" failed: {why}", r.file, t.pos.line, t.pos.col, t.name)?;
            }
        }
        if r.diagnostics.is_empty() {
            let passed = r.tests.len() - r.failed_tests();
            let verdict = if r.ok() { "ok" } else { "FAILED" };
            writeln!(out, "{}: {verdict} ({} fields, {passed}/{} tests passed)", r.file, r.fields, r.tests.len())?;
        } else {
            writeln!(out, "{}: {} problem(s); the mapping is refused", r.file, r.diagnostics.len())?;
        }
    }
    let bad = reports.iter().filter(|r| !r.ok()).count();
    writeln!(
        out,
        "{} file(s) checked, {bad} with problems; {tests_run} test(s) run, {tests_failed} failed",
        reports.len()
    )
}

fn write_json_report(
    out: &mut impl Write,
    reports: &[FileReport],
    all_ok: bool,
    tests_run: usize,
    tests_failed: usize,
) -> io::Result<()> {
    let files: Vec<_> = reports
        .iter()
        .map(|r| {
            json!({
                "file": r.file,
                "ok": r.ok(),
                "error": r.unreadable,
                "fields": r.fields,
                "diagnostics": r.diagnostics.iter().map(|d| json!({
                    "line": d.pos.line, "col": d.pos.col, "severity": "error", "message": d.message,
                    "rendered": d.render(&r.file),
                })).collect::<Vec<_>>(),
                "tests": r.tests.iter().map(|t| json!({
                    "name": t.name, "line": t.pos.line, "col": t.pos.col,
                    "passed": t.failure.is_none(), "message": t.failure,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = json!({ "ok": all_ok, "files": files, "tests": { "run": tests_run, "failed": tests_failed } });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

/// The checkers' exit code: 2 when output failed or a file was unreadable, 1 for problems, else 0.
fn checker_exit(written: io::Result<()>, unreadable: bool, all_ok: bool) -> ExitCode {
    if let Err(e) = written {
        eprintln!("lambda-stream: cannot write output: {e}");
        return ExitCode::from(2);
    }
    if unreadable {
        ExitCode::from(2)
    } else if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `validate-config`: the same conventions as `validate-mapping` (problems as FILE:LINE:COL, exit
/// 0 / 1 / 2, `--format json`).
pub fn validate_config(files: &[PathBuf], format: Format) -> ExitCode {
    use crate::config::environments;
    let mut unreadable = false;
    let mut reports = Vec::new();
    for path in files {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                unreadable = true;
                reports.push(
                    json!({"file": shown, "ok": false, "error": e.to_string(), "environments": [], "diagnostics": []}),
                );
                continue;
            }
        };
        let (parsed, diags) = environments::parse(&text);
        let mut located: Vec<environments::Located> =
            diags.into_iter().map(|d| environments::Located { file: path.clone(), diagnostic: d }).collect();
        for env in &parsed.environments {
            environments::check(env, path, &mut located);
        }
        let names: Vec<String> = parsed.environments.iter().map(|e| e.name()).collect();
        let rendered: Vec<serde_json::Value> = located
            .iter()
            .map(|l| {
                let file = l.file.display().to_string();
                json!({"file": file, "line": l.diagnostic.pos.line, "col": l.diagnostic.pos.col, "severity": "error",
                       "message": l.diagnostic.message, "rendered": l.diagnostic.render(&file)})
            })
            .collect();
        reports.push(json!({"file": shown, "ok": located.is_empty(), "error": null, "environments": names, "diagnostics": rendered}));
    }
    let all_ok = reports.iter().all(|r| r["ok"] == true);
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &json!({"ok": all_ok, "files": reports}))
            .map_err(io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Text => (|| {
            for r in &reports {
                if let Some(e) = r["error"].as_str() {
                    writeln!(out, "{}: error: cannot read file: {e}", r["file"].as_str().unwrap_or_default())?;
                    continue;
                }
                for d in r["diagnostics"].as_array().into_iter().flatten() {
                    writeln!(out, "{}", d["rendered"].as_str().unwrap_or_default())?;
                }
                let envs = r["environments"].as_array().map_or(0, Vec::len);
                let problems = r["diagnostics"].as_array().map_or(0, Vec::len);
                let verdict = if problems == 0 { "ok".to_string() } else { format!("{problems} problem(s)") };
                writeln!(
                    out,
                    "{}: {verdict} ({envs} environment(s) and their mappings checked)",
                    r["file"].as_str().unwrap_or_default()
                )?;
            }
            Ok(())
        })(),
    };
    checker_exit(written.and_then(|()| out.flush()), unreadable, all_ok)
}

/// Counts for the one-line summary on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub records: usize,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn process(mapping: &Path, input: &Path) -> Result<(), CliError> {
    let (_spec, plan) = plan::load_file(mapping)?;
    let text = read_input(input)?;
    let started = Instant::now();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let tally = process_lines(&plan, &text, &mut out)?;
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { tally.records as f64 / secs } else { 0.0 };
    eprintln!(
        "{} records: {} ok, {} failed, {} skipped (blank lines) in {:.1} ms ({:.0} records/s)",
        tally.records,
        tally.ok,
        tally.failed,
        tally.skipped,
        secs * 1000.0,
        rate
    );
    Ok(())
}

fn read_input(input: &Path) -> Result<Vec<u8>, CliError> {
    let shown = input.display().to_string();
    let read_err = |source| CliError::Read { path: shown.clone(), source };
    if input == Path::new("-") {
        let mut buf = Vec::new();
        io::stdin().lock().read_to_end(&mut buf).map_err(read_err)?;
        Ok(buf)
    } else {
        std::fs::read(input).map_err(read_err)
    }
}

/// Maps every line, using all cores, and writes the results in input order.
pub fn process_lines(plan: &Plan, text: &[u8], out: &mut impl Write) -> Result<Tally, CliError> {
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
    let lines = match lines.last() {
        Some([]) => &lines[..lines.len() - 1],
        _ => &lines[..],
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(lines.len().div_ceil(256)).max(1);
    let chunk = lines.len().div_ceil(workers).max(1);
    let rendered: Vec<(Vec<u8>, Tally)> = std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .enumerate()
            .map(|(i, part)| scope.spawn(move || render_chunk(plan, part, i * chunk)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("mapping never panics")).collect()
    });
    let mut tally = Tally::default();
    for (bytes, t) in rendered {
        out.write_all(&bytes)?;
        tally.records += t.records;
        tally.ok += t.ok;
        tally.failed += t.failed;
        tally.skipped += t.skipped;
    }
    Ok(tally)
}

/// A failed record in the dry run's output; a struct so `route` comes first.
#[derive(serde::Serialize)]
struct FailLine<'a> {
    route: &'static str,
    line: usize,
    stage: plan::Stage,
    errors: &'a [plan::FieldError],
}

fn render_chunk(plan: &Plan, lines: &[&[u8]], first_index: usize) -> (Vec<u8>, Tally) {
    let mut out = Vec::with_capacity(lines.len() * 512);
    let mut tally = Tally::default();
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            tally.skipped += 1;
            continue;
        }
        tally.records += 1;
        let line_no = first_index + i + 1;
        match plan.apply(line) {
            Outcome::Mapped(m) => {
                tally.ok += 1;
                out.extend_from_slice(format!(r#"{{"route":"ok","line":{line_no}"#).as_bytes());
                if let Some(key) = &m.key {
                    out.extend_from_slice(br#","key":"#);
                    serde_json::to_writer(&mut out, &String::from_utf8_lossy(key)).expect("in-memory write");
                }
                out.extend_from_slice(br#","value":"#);
                out.extend_from_slice(&m.value);
                out.extend_from_slice(b"}\n");
            }
            Outcome::Failed(f) => {
                tally.failed += 1;
                let doc = FailLine { route: "fail", line: line_no, stage: f.stage, errors: &f.errors };
                serde_json::to_writer(&mut out, &doc).expect("in-memory write");
                out.push(b'\n');
            }
        }
    }
    (out, tally)
}

/// `process --event`: the Lambda handler's code on a saved event.
pub fn process_event(
    mapping: &Path,
    event: &Path,
    brokers: Option<String>,
    topic_ok: Option<String>,
    topic_fail: Option<String>,
) -> Result<ExitCode, CliError> {
    use crate::lambda::Function;
    use crate::pipeline::Pipeline;
    use crate::route::Router;
    use crate::sink::{KafkaSink, MemorySink, ProducerSettings};

    crate::lambda::init_logging(false, "error");
    let (_, plan) = plan::load_file(mapping)?;
    let text = read_input(event)?;
    let payload: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| CliError::Event(crate::record::EventError::NotJson(e).into()))?;
    let router = Router {
        topic_ok: topic_ok.unwrap_or_else(|| "ok".into()),
        topic_fail: topic_fail.unwrap_or_else(|| "fail".into()),
        function_name: std::env::var("LAMBDA_NAME").unwrap_or_else(|_| "lambda-stream-local".into()),
        function_env: std::env::var("LAMBDA_ENV").unwrap_or_else(|_| "local".into()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let pipeline = Pipeline::new(plan, router);
    let margin = std::time::Duration::ZERO;
    match brokers {
        None => {
            let function =
                Function { pipeline, sink: MemorySink::default(), partial_batch: false, delivery_margin: margin };
            let report = runtime.block_on(function.run_event(payload, deadline))?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            for routed in &report.routed {
                out.write_all(&render_routed(routed))?;
            }
            out.flush()?;
            let s = &report.summary;
            eprintln!(
                "{} records: {} ok, {} failed, {} skipped (tombstones) in {} ms",
                s.received, s.ok, s.failed, s.skipped, s.duration_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(brokers) => {
            let sink = KafkaSink::new(&ProducerSettings::new(brokers))?;
            let function = Function { pipeline, sink, partial_batch: false, delivery_margin: margin };
            let started = Instant::now();
            let response = runtime.block_on(function.handle(payload, deadline))?;
            println!("{response}");
            let peak = crate::lambda::peak_rss_mib().map(|m| format!(", peak RSS {m:.1} MiB")).unwrap_or_default();
            eprintln!("delivered in {:.1} ms{peak}", started.elapsed().as_secs_f64() * 1000.0);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn properties(list: &[String], flag: &str) -> Result<Vec<(String, String)>, CliError> {
    list.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(CliError::Usage(format!("{flag} expects KEY=VALUE, found {p:?}"))),
        })
        .collect()
}

/// `lambda-stream run`: settings from flags, the environment and (with an environment named)
/// `environments.yaml`, `parameter://` values from SSM; then the worker until a stop signal.
pub fn run_worker(args: RunArgs) -> Result<ExitCode, CliError> {
    use crate::worker::{Worker, WorkerOptions};

    crate::lambda::init_logging(args.json_logs, "info");
    let flags: Vec<(&str, Option<String>)> = vec![
        ("MAPPING_FILE", args.mapping.as_ref().map(|p| p.display().to_string())),
        ("MSK_SERVERS", args.brokers.clone()),
        ("SOURCE_TOPICS", args.topics.clone()),
        ("TOPIC_OK", args.topic_ok.clone()),
        ("TOPIC_FAIL", args.topic_fail.clone()),
        ("LAMBDA_ENV", args.env.clone()),
        ("LAMBDA_STAGE", args.stage.clone()),
        ("ENVIRONMENTS_FILE", args.environments.as_ref().map(|p| p.display().to_string())),
    ];
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let flag = |name: &str| flags.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone());
    let named_env = flag("LAMBDA_ENV").or_else(|| env("LAMBDA_ENV"));
    let get = |name: &str| -> Option<String> {
        if let Some(v) = flag(name).or_else(|| env(name)) {
            return Some(v);
        }
        match name {
            // Without a named environment the file is not read: flags and variables only.
            "ENVIRONMENTS_FILE" if named_env.is_none() => Some("none".into()),
            "LAMBDA_ENV" => Some("local".into()),
            "LAMBDA_NAME" => Some("lambda-stream-worker".into()),
            _ => None,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    let settings =
        runtime.block_on(crate::config::ssm::settings_with_parameters(&get, crate::config::ssm::lambda_client))?;
    let group = args
        .group
        .clone()
        .or_else(|| env("CONSUMER_GROUP"))
        .ok_or_else(|| CliError::Usage("the consumer group is required: --group or CONSUMER_GROUP".into()))?;
    if settings.source_topics.is_empty() {
        return Err(CliError::Usage(
            "no topics to consume: --topics, SOURCE_TOPICS or `source_topics` in environments.yaml".into(),
        ));
    }
    let (_, plan) = plan::load_file(&settings.mapping_file)?;
    let mut pipeline = crate::pipeline::Pipeline::new(
        plan,
        crate::route::Router {
            topic_ok: settings.topic_ok.clone(),
            topic_fail: settings.topic_fail.clone(),
            function_name: settings.lambda_name.clone(),
            function_env: settings.lambda_env.clone(),
        },
    );
    let number = |flag: Option<usize>, var: &str| -> Result<Option<usize>, CliError> {
        match flag.map(Ok).or_else(|| env(var).map(|v| v.parse::<usize>())) {
            None => Ok(None),
            Some(Ok(n)) if n > 0 => Ok(Some(n)),
            Some(_) => Err(CliError::Usage(format!("{var} must be a positive number"))),
        }
    };
    if let Some(n) = number(args.concurrency, "WORKER_CONCURRENCY")? {
        pipeline.threads = n;
    }
    let mut producer = settings.producer.clone();
    producer.transactional_id = args.transactional_id.clone();
    producer.extra.extend(properties(&args.producer_properties, "--producer-property")?);
    let mut options = WorkerOptions::new(producer, settings.source_topics.clone(), group);
    options.exactly_once = args.exactly_once;
    if let Some(n) = number(args.max_batch, "WORKER_MAX_BATCH")? {
        options.max_batch = n;
    }
    options.max_wait = std::time::Duration::from_millis(args.max_wait_ms);
    options.delivery_timeout = std::time::Duration::from_secs(args.delivery_timeout_s);
    options.stats_interval = std::time::Duration::from_secs(args.stats_interval_s);
    options.stall_timeout = args.stall_timeout_s.map(std::time::Duration::from_secs);
    options.consumer_extra = properties(&args.consumer_properties, "--consumer-property")?;
    options.pass_through = args.pass_through;
    tracing::info!(
        topics = %options.topics.join(","), group = %options.group, exactly_once = options.exactly_once,
        topic_ok = %settings.topic_ok, topic_fail = %settings.topic_fail, mapping = %settings.mapping_file.display(),
        "worker starting"
    );
    // The stream consumer spawns its wake-up task on the current runtime.
    let _entered = runtime.enter();
    let mut worker = Worker::new(pipeline, options)?;
    watch_for_stalls(worker.heartbeat(), worker.stall_limit());
    let totals = runtime.block_on(worker.run(crate::worker::shutdown_signal()))?;
    // One machine-readable line on stdout for scripts and tests: the run's accounting.
    println!("{}", serde_json::to_string(&totals).expect("totals serialise"));
    Ok(ExitCode::SUCCESS)
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
                std::process::exit(1);
            }
        }
    };
    std::thread::Builder::new().name("watchdog".into()).spawn(watchdog).expect("a thread can be spawned");
}

/// One dry-run line: route, source position, key, destination, and value or errors.
pub fn render_routed(routed: &crate::route::Routed) -> Vec<u8> {
    use crate::route::{Route, Routed, text_or_base64};
    use serde_json::value::RawValue;

    #[derive(serde::Serialize)]
    struct Line<'a> {
        route: &'a str,
        topic: &'a str,
        partition: i32,
        offset: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        errors: Option<Vec<plan::FieldError>>,
    }

    let line = match routed {
        Routed::Skipped(o) => serde_json::to_vec(&Line {
            route: "skip",
            topic: &o.topic,
            partition: o.partition,
            offset: o.offset,
            key: None,
            to: None,
            value: None,
            stage: None,
            errors: None,
        }),
        Routed::Message(m) => {
            let (value, stage, errors) = match m.route {
                // The mapped bytes as they are: spec order preserved.
                Route::Ok => (serde_json::from_slice::<&RawValue>(&m.payload).ok(), None, None),
                Route::Fail => {
                    #[derive(serde::Deserialize)]
                    struct Envelope {
                        stage: String,
                        errors: Vec<plan::FieldError>,
                    }
                    let envelope: Option<Envelope> = serde_json::from_slice(&m.payload).ok();
                    let (stage, errors) = envelope.map(|e| (e.stage, e.errors)).unzip();
                    (None, stage, errors)
                }
            };
            serde_json::to_vec(&Line {
                route: if m.route == Route::Ok { "ok" } else { "fail" },
                topic: &m.origin.topic,
                partition: m.origin.partition,
                offset: m.origin.offset,
                key: m.key.as_deref().map(|k| text_or_base64(k).0),
                to: Some(&m.topic),
                value,
                stage,
                errors,
            })
        }
    };
    let mut line = line.expect("a dry-run line always serialises");
    line.push(b'\n');
    line
}
