//! `process`: the local dry run, on JSON lines or on a saved Lambda Kafka event through the
//! handler's own code (printing routed records, or producing to a real cluster with `--brokers`).

use super::formats::LineFormat;
use crate::format::{BatchSchemas, SourceFormat};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::CliError;
use super::exit::Outcome as Ended;
use crate::plan::{self, Outcome, Plan};

/// Counts for the one-line summary on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub records: usize,
    pub ok: usize,
    pub failed: usize,
    /// Blank lines.
    pub skipped: usize,
    /// Records the mapping's `drop:` chose.
    pub dropped: usize,
}

/// The longest line `process` maps unless told otherwise: far above any Kafka record (brokers
/// refuse messages over 1 MiB by default), low enough that a file that is not JSON lines (one huge
/// line) fails at once with a clear reason.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

impl Tally {
    fn add(&mut self, t: Tally) {
        self.records += t.records;
        self.ok += t.ok;
        self.failed += t.failed;
        self.skipped += t.skipped;
        self.dropped += t.dropped;
    }
}

/// How `process` prints: one route per record, or the messages that would be produced.
pub struct Printing {
    /// `--messages`: topic, key, headers and payload of each message, the fail envelope included.
    pub messages: bool,
    /// `--metrics`: the batch's EMF documents after the records (`process --event`).
    pub metrics: bool,
    pub topic_ok: Option<String>,
    pub topic_fail: Option<String>,
}

impl Printing {
    /// The router of a dry run: the given topic names (`ok`, `fail` by default) and the function
    /// names from the environment, as the fail envelope carries them.
    fn router(&self) -> crate::destination::Router {
        let layers = crate::config::Layers::command_line(Vec::new(), "lambda-stream-local");
        let name = |n: &str| layers.get(n).unwrap_or_default();
        crate::destination::Router {
            topic_ok: self.topic_ok.clone().unwrap_or_else(|| "ok".into()),
            topic_fail: self.topic_fail.clone().unwrap_or_else(|| "fail".into()),
            function_name: name("LAMBDA_NAME"),
            function_env: name("LAMBDA_ENV"),
        }
    }
}

/// Where `process` takes its records from.
pub enum Records {
    /// JSON lines (`-`: standard input), each longer than `max_line_bytes` failing alone.
    Lines { input: PathBuf, max_line_bytes: usize },
    /// A saved Lambda event, printed or (with `brokers`) produced.
    Event { event: PathBuf, brokers: Option<String> },
}

/// `lambda-stream process`.
pub fn run(
    mapping: &Path,
    records: Records,
    printing: &Printing,
    format: &mut LineFormat,
    output: &super::formats::OutputArgs,
) -> Result<Ended, CliError> {
    let (_spec, plan) = super::source::load(mapping)?;
    let topic_ok = printing.topic_ok.clone().unwrap_or_else(|| "ok".into());
    format.output = output.encoder(&plan, &topic_ok, mapping, format)?;
    match records {
        Records::Lines { input, max_line_bytes } => process(plan, &input, max_line_bytes, printing, format)?,
        Records::Event { event, brokers } => process_event(plan, &event, brokers, printing, format)?,
    }
    Ok(Ended::Done)
}

pub fn process(
    plan: Plan,
    input: &Path,
    max_line_bytes: usize,
    printing: &Printing,
    format: &LineFormat,
) -> Result<(), CliError> {
    let shown = input.display().to_string();
    let reader: Box<dyn io::BufRead> = if input == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        let file = std::fs::File::open(input).map_err(|source| CliError::Read { path: shown.clone(), source })?;
        Box::new(io::BufReader::with_capacity(1 << 20, file))
    };
    let started = Instant::now();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let messages = printing.messages.then(|| LineMessages {
        router: printing.router(),
        topic: input.file_name().map_or_else(|| "-".into(), |n| n.to_string_lossy().into_owned()),
    });
    let tally = process_stream(&plan, reader, &shown, max_line_bytes, messages.as_ref(), format, &mut out);
    out.flush()?;
    let tally = tally?;
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { tally.records as f64 / secs } else { 0.0 };
    // ok + failed + skipped = records; blank lines are not records.
    let blank = match tally.skipped {
        0 => String::new(),
        1 => "; 1 blank line ignored".into(),
        n => format!("; {n} blank lines ignored"),
    };
    eprintln!(
        "{} records: {} ok, {} failed, {} skipped (dropped by the mapping){blank}; in {} ({:.0} records/s)",
        tally.records,
        tally.ok,
        tally.failed,
        tally.dropped,
        duration_text(secs),
        rate
    );
    Ok(())
}

/// A duration as a person reads it: `0.42 ms`, `12.3 ms`, `4.20 s`.
pub fn duration_text(secs: f64) -> String {
    let ms = secs * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{secs:.2} s")
    }
}

/// A record or an event read whole (`explain`, `process --event`), from a file or standard input
/// (`-`), up to [`crate::limits::MAX_RECORD_BYTES`].
pub(super) fn read_input(input: &Path, what: &str) -> Result<Vec<u8>, CliError> {
    let shown = input.display().to_string();
    let read_err = |source| CliError::Read { path: shown.clone(), source };
    let max = crate::limits::MAX_RECORD_BYTES;
    if input == Path::new("-") {
        crate::limits::read_to_limit(io::stdin().lock(), max, what).map_err(read_err)
    } else {
        crate::limits::read_bounded(input, max, what).map_err(read_err)
    }
}

/// Lines are mapped in batches of about this many bytes (or [`BATCH_LINES`] lines): enough for
/// every core to have work, while the input is never held whole.
const BATCH_BYTES: usize = 8 << 20;
const BATCH_LINES: usize = 65_536;

/// A batch of lines read from the input: their bytes one after another, and where each ends.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn lines(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let line = &self.bytes[start..end];
                start = end;
                line
            })
            .collect()
    }
}

/// Reads JSON lines in batches, one line at most `limit` bytes long (a longer one stops the
/// read: the input is not JSON lines). `\r\n` ends a line too; no empty line is read after a final
/// newline.
struct LineBatches<R> {
    reader: R,
    limit: usize,
    /// Lines read so far.
    lines: usize,
    done: bool,
    /// What stopped the read, reported after the lines before it are mapped.
    pending: Option<LineError>,
}

impl<R: io::BufRead> LineBatches<R> {
    /// The next batch (empty at the end of the input), or the read error; a line past the limit
    /// ends the batch before it, and the next call reports it.
    fn next(&mut self, batch: &mut Batch) -> Result<(), LineError> {
        batch.bytes.clear();
        batch.ends.clear();
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        while !self.done && batch.bytes.len() < BATCH_BYTES && batch.ends.len() < BATCH_LINES {
            let start = batch.bytes.len();
            match self.read_line(&mut batch.bytes, start) {
                Ok(true) => batch.ends.push(batch.bytes.len()),
                Ok(false) => self.done = true,
                Err(e) => {
                    batch.bytes.truncate(start);
                    if batch.ends.is_empty() {
                        self.done = true;
                        return Err(e);
                    }
                    // Map what came before it first; the line's error comes with the next batch.
                    self.pending = Some(e);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Appends one line (without its line end) to `into`; `false` at the end of the input.
    fn read_line(&mut self, into: &mut Vec<u8>, start: usize) -> Result<bool, LineError> {
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if available.is_empty() {
                if any {
                    self.lines += 1;
                }
                return Ok(any);
            }
            any = true;
            let (take, end) = match memchr::memchr(b'\n', available) {
                Some(i) => (i, true),
                None => (available.len(), false),
            };
            if into.len() - start + take > self.limit {
                return Err(LineError::Endless { line: self.lines + 1 });
            }
            into.extend_from_slice(&available[..take]);
            self.reader.consume(take + usize::from(end));
            if end {
                if into.last() == Some(&b'\r') {
                    into.pop();
                }
                self.lines += 1;
                return Ok(true);
            }
        }
    }
}

enum LineError {
    Io(io::Error),
    /// A line that runs past the limit: its number (from 1).
    Endless {
        line: usize,
    },
}

/// Maps the JSON lines `reader` gives, a batch at a time, writing each batch's results before the
/// next is read: memory holds one batch, whatever the input's size. A line over `max_line_bytes`
/// fails alone (rule `size`); one that runs past [`crate::limits::MAX_RECORD_BYTES`] (or
/// `max_line_bytes`, if larger) without a line end stops the run, after the lines before it.
pub fn process_stream(
    plan: &Plan,
    reader: impl io::BufRead,
    shown: &str,
    max_line_bytes: usize,
    messages: Option<&LineMessages>,
    format: &LineFormat,
    out: &mut impl Write,
) -> Result<Tally, CliError> {
    let limit = max_line_bytes.max(usize::try_from(crate::limits::MAX_RECORD_BYTES).unwrap_or(usize::MAX));
    let mut lines = LineBatches { reader, limit, lines: 0, done: false, pending: None };
    let mut batch = Batch::default();
    let mut tally = Tally::default();
    loop {
        let first = lines.lines;
        lines.next(&mut batch).map_err(|e| match e {
            LineError::Io(source) => CliError::Read { path: shown.to_owned(), source },
            LineError::Endless { line } => CliError::Input {
                path: shown.to_owned(),
                line,
                message: format!(
                    "the line runs past {} without a line end; the input must be JSON lines, one record per line",
                    crate::limits::size_text(limit as u64)
                ),
            },
        })?;
        if batch.ends.is_empty() {
            return Ok(tally);
        }
        tally.add(process_line_slices(plan, &batch.lines(), first, max_line_bytes, messages, format, out)?);
    }
}

/// The lines of a JSON-lines text (`\r\n` too), without the empty one after a final newline.
pub fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).collect();
    if lines.last() == Some(&&b""[..]) {
        lines.pop();
    }
    lines
}

/// A line over the limit: a record-level failure, never mapped.
fn over_limit(line: &[u8], max_line_bytes: usize) -> Option<plan::Failure> {
    (line.len() > max_line_bytes).then(|| {
        plan::Failure::of_record(
            "size",
            format!(
                "the line is {} bytes, over the limit of {max_line_bytes} (--max-line-bytes); is the input JSON lines, one record per line?",
                line.len()
            ),
        )
    })
}

/// `--messages` on lines: each line is a record of partition 0 of a topic named after the file,
/// at offset line − 1 (what the fail envelope's `source` then shows), routed as the function
/// would route it.
pub struct LineMessages {
    router: crate::destination::Router,
    topic: String,
}

/// How a batch of lines is read: their format, the batch's schemas, and (for a binary format)
/// each line's value, decoded from base64.
struct Reading<'a> {
    format: SourceFormat,
    schemas: &'a BatchSchemas,
    /// Per line of the batch (binary formats only): the value's bytes, or why the line is not one.
    values: &'a [Result<Vec<u8>, String>],
    /// How ok records are written.
    output: &'a crate::format::output::OutputEncoder,
}

impl Reading<'_> {
    /// The value of line `index` of the batch, or the failure of a line that is not one.
    fn value<'l>(&'l self, line: &'l [u8], index: usize) -> Result<&'l [u8], plan::Failure> {
        match self.values.get(index) {
            None => Ok(line),
            Some(Ok(value)) => Ok(value),
            Some(Err(why)) => Err(plan::Failure::of_record("base64", why.clone())),
        }
    }
}

impl LineMessages {
    fn route(
        &self,
        plan: &Plan,
        line: &[u8],
        offset: usize,
        max_line_bytes: usize,
        reading: &Reading<'_>,
        index: usize,
    ) -> crate::destination::Routed {
        use crate::record::{Input, Payload, Source};
        let topic = &self.topic;
        let source = Source {
            topic: topic.clone(),
            partition: 0,
            offset: Some(offset as i64),
            group: format!("{topic}-0"),
            ..Source::default()
        };
        let failed = |failure| {
            crate::destination::Routed::Message(self.router.fail_message(Some(plan), &source, failure, Some(line)))
        };
        if let Some(failure) = over_limit(line, max_line_bytes) {
            return failed(failure);
        }
        let value = match reading.value(line, index) {
            Ok(value) => value,
            Err(failure) => return failed(failure),
        };
        let input = Input { source: source.clone(), payload: Payload::Value(value.to_vec()) };
        let routed = self.router.route_format(plan, &input, reading.format, reading.schemas);
        if reading.output.is_json() {
            return routed;
        }
        crate::pipeline::encode_ok(routed, reading.output, &self.router, plan, &input, reading.format)
    }
}

/// Maps every line of a text held in memory, using all cores, and writes the results in input order.
pub fn process_lines(
    plan: &Plan,
    text: &[u8],
    max_line_bytes: usize,
    messages: Option<&LineMessages>,
    out: &mut impl Write,
) -> Result<Tally, CliError> {
    process_line_slices(plan, &split_lines(text), 0, max_line_bytes, messages, &LineFormat::json(), out)
}

/// Maps `lines` (the first of them line `first + 1` of the input), using all cores, and writes the
/// results in input order.
fn process_line_slices(
    plan: &Plan,
    lines: &[&[u8]],
    first: usize,
    max_line_bytes: usize,
    messages: Option<&LineMessages>,
    format: &LineFormat,
    out: &mut impl Write,
) -> Result<Tally, CliError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A binary format's lines are base64: decoded here, once, and their schemas fetched (each id
    // once) before any record is mapped.
    let values: Vec<Result<Vec<u8>, String>> = match format.format {
        SourceFormat::Json => Vec::new(),
        _ => lines.iter().map(|line| format.value_of(line)).collect(),
    };
    let schemas = format.batch_schemas(values.iter().filter_map(|v| v.as_deref().ok()))?;
    let reading = Reading { format: format.format, schemas: &schemas, values: &values, output: &format.output };
    let rendered = crate::pipeline::map_chunks(lines, threads, |at, part| {
        render_chunk(plan, part, first + at, first, max_line_bytes, messages, &reading)
    });
    let mut tally = Tally::default();
    for (bytes, t) in rendered {
        out.write_all(&bytes)?;
        tally.add(t);
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

fn render_chunk(
    plan: &Plan,
    lines: &[&[u8]],
    first_index: usize,
    batch_first: usize,
    max_line_bytes: usize,
    messages: Option<&LineMessages>,
    reading: &Reading<'_>,
) -> (Vec<u8>, Tally) {
    use crate::destination::{Destination, Routed};
    let mut out = Vec::with_capacity(lines.len() * 512);
    let mut tally = Tally::default();
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            tally.skipped += 1;
            continue;
        }
        tally.records += 1;
        let line_no = first_index + i + 1;
        let index = first_index + i - batch_first;
        if let Some(messages) = messages {
            let routed = messages.route(plan, line, line_no - 1, max_line_bytes, reading, index);
            match &routed {
                Routed::Message(m) if m.destination == Destination::Ok => tally.ok += 1,
                Routed::Fanout(_) => tally.ok += 1,
                Routed::Message(_) => tally.failed += 1,
                Routed::Skipped(..) => tally.dropped += 1,
            }
            out.extend_from_slice(&render_message(&routed));
            continue;
        }
        let outcome = match over_limit(line, max_line_bytes) {
            Some(failure) => Outcome::Failed(failure),
            None => match reading.value(line, index) {
                Ok(value) => reading.schemas.apply(plan, reading.format, value, None).outcome,
                Err(failure) => Outcome::Failed(failure),
            },
        };
        // The value as the output writes it (beside the mapped JSON), or the record's failure.
        let (outcome, encoded) = match outcome {
            Outcome::Mapped(m) if !reading.output.is_json() => match reading.output.encode(m.value.clone()) {
                Ok(bytes) => (Outcome::Mapped(m), Some(bytes)),
                Err(failure) => (Outcome::Failed(failure), None),
            },
            other => (other, None),
        };
        match outcome {
            Outcome::Mapped(m) => {
                tally.ok += 1;
                out.extend_from_slice(format!(r#"{{"route":"ok","line":{line_no}"#).as_bytes());
                if let Some(key) = &m.key {
                    out.extend_from_slice(br#","key":"#);
                    serde_json::to_writer(&mut out, &String::from_utf8_lossy(key)).expect("in-memory write");
                }
                out.extend_from_slice(br#","value":"#);
                out.extend_from_slice(&m.value);
                if !m.deliveries.is_empty() {
                    write_outputs(&mut out, plan, &m);
                }
                if let Some(encoded) = encoded {
                    out.extend_from_slice(format!(r#","{}":"#, reading.output.format()).as_bytes());
                    {
                        use base64::Engine as _;
                        let text = base64::engine::general_purpose::STANDARD.encode(encoded);
                        serde_json::to_writer(&mut out, &text).expect("in-memory write");
                    }
                }
                out.extend_from_slice(b"}\n");
            }
            Outcome::Failed(f) => {
                tally.failed += 1;
                let doc = FailLine { route: "fail", line: line_no, stage: f.stage, errors: &f.errors };
                serde_json::to_writer(&mut out, &doc).expect("in-memory write");
                out.push(b'\n');
            }
            Outcome::Dropped => {
                tally.dropped += 1;
                out.extend_from_slice(format!(r#"{{"route":"skip","line":{line_no},"reason":"dropped"}}"#).as_bytes());
                out.push(b'\n');
            }
        }
    }
    (out, tally)
}

/// `,"outputs":[…]`: where the mapping's `outputs:` send a mapped record — each output's name and
/// topic, with its key and value where they are its own (`key:`, `fields:`).
fn write_outputs(out: &mut Vec<u8>, plan: &Plan, mapped: &plan::Mapped) {
    out.extend_from_slice(br#","outputs":["#);
    for (i, delivery) in mapped.deliveries.iter().enumerate() {
        let output = &plan.outputs()[delivery.output];
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"output":"#);
        serde_json::to_writer(&mut *out, output.name()).expect("in-memory write");
        out.extend_from_slice(br#","topic":"#);
        serde_json::to_writer(&mut *out, &output.topics()[delivery.topic]).expect("in-memory write");
        if let Some(key) = &delivery.key {
            out.extend_from_slice(br#","key":"#);
            serde_json::to_writer(&mut *out, &String::from_utf8_lossy(key)).expect("in-memory write");
        }
        if let Some(value) = &delivery.value {
            out.extend_from_slice(br#","value":"#);
            out.extend_from_slice(value);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// `process --event`: the Lambda handler's code on a saved event.
pub fn process_event(
    plan: Plan,
    event: &Path,
    brokers: Option<String>,
    printing: &Printing,
    format: &LineFormat,
) -> Result<(), CliError> {
    use crate::lambda::Function;
    use crate::pipeline::Pipeline;
    use crate::sink::MemorySink;

    crate::logging::init(false, "error");
    let text = read_input(event, "an event")?;
    // Checked as the Lambda runtime checks an event before handing it over: JSON throughout.
    let payload: &serde_json::value::RawValue =
        serde_json::from_slice(&text).map_err(|e| CliError::Event(crate::record::EventError::NotJson(e).into()))?;
    let payload = payload.get();
    // A dry run needs no cluster settings: only the names that go into fail records.
    let router = printing.router();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let mut pipeline =
        Pipeline::new(plan, router).with_format(format.format).with_route_output(0, format.output.clone());
    if let Some(schemas) = &format.schemas {
        pipeline = pipeline.with_schemas(schemas.clone());
    }
    let margin = std::time::Duration::ZERO;
    match brokers {
        None => {
            let function =
                Function { pipeline, sink: MemorySink::default(), partial_batch: false, delivery_margin: margin };
            let started = Instant::now();
            // Schemas from a registry are fetched on an async runtime; everything else is ready.
            #[cfg(feature = "kafka")]
            let report = match format.block_on(function.run_event(payload, deadline)) {
                Some(report) => report?,
                None => run_ready(function.run_event(payload, deadline))?,
            };
            #[cfg(not(feature = "kafka"))]
            let report = run_ready(function.run_event(payload, deadline))?;
            let mut out = io::BufWriter::new(io::stdout().lock());
            for routed in &report.routed {
                if printing.messages {
                    out.write_all(&render_message(routed))?;
                } else {
                    out.write_all(&render_routed(routed))?;
                }
            }
            if printing.metrics {
                let name = function.pipeline.router().function_name.clone();
                let mut settings = crate::telemetry::MetricsSettings::from_env(&name)
                    .unwrap_or(crate::telemetry::MetricsSettings { namespace: "lambda-stream".into(), function: name });
                if settings.function.is_empty() {
                    settings.function = "lambda-stream-local".into();
                }
                let lines = crate::telemetry::emf_lines(&report, &settings, crate::telemetry::BatchContext::default());
                out.write_all(lines.as_bytes())?;
            }
            out.flush()?;
            let s = &report.summary;
            eprintln!(
                "{} records: {} ok, {} failed, {} skipped ({} dropped by the mapping, {} tombstones); in {}",
                s.received,
                s.ok,
                s.failed,
                s.skipped,
                s.dropped,
                s.skipped - s.dropped,
                duration_text(started.elapsed().as_secs_f64())
            );
            Ok(())
        }
        #[cfg(not(feature = "kafka"))]
        Some(_) => Err(CliError::Usage(NO_KAFKA.into())),
        #[cfg(feature = "kafka")]
        Some(brokers) => {
            let sink = crate::sink::kafka::KafkaSink::new(&crate::sink::ProducerSettings::new(brokers))?;
            let function = Function { pipeline, sink, partial_batch: false, delivery_margin: margin };
            let runtime =
                tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
            let started = Instant::now();
            let response = runtime.block_on(function.handle(payload, deadline))?;
            println!("{response}");
            let peak = crate::logging::peak_rss_mib().map(|m| format!(", peak RSS {m:.1} MiB")).unwrap_or_default();
            eprintln!("delivered in {}{peak}", duration_text(started.elapsed().as_secs_f64()));
            Ok(())
        }
    }
}

/// Runs the dry run's batch to its end on this thread. Its sink is memory, which never waits, so
/// one poll finishes it and no async runtime is needed (the mapping-tools build has none).
fn run_ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("a batch delivered to memory never waits"),
    }
}

/// What a mapping-tools build (without the `kafka` feature) says when asked to reach a cluster.
#[cfg(not(feature = "kafka"))]
pub const NO_KAFKA: &str = "this lambda-stream is the mapping-tools build, without Kafka: --brokers needs the full build \
     (`cargo build --release`, see docs/deployment.md)";

/// One dry-run line: route, source position, key, destination, and value or errors.
pub fn render_routed(routed: &crate::destination::Routed) -> Vec<u8> {
    use crate::destination::{Destination, Routed};
    use crate::envelope::text_or_base64;
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
        output: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<plan::Stage>,
        #[serde(skip_serializing_if = "Option::is_none")]
        errors: Option<&'a [plan::FieldError]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<crate::destination::SkipReason>,
    }

    if let Routed::Skipped(o, reason) = routed {
        let mut line = serde_json::to_vec(&Line {
            route: "skip",
            reason: Some(*reason),
            topic: &o.topic,
            partition: o.partition,
            offset: o.offset,
            key: None,
            to: None,
            output: None,
            value: None,
            stage: None,
            errors: None,
        })
        .expect("a dry-run line always serialises");
        line.push(b'\n');
        return line;
    }
    // One line per message: a record fanned out to several outputs has one for each.
    let mut out = Vec::new();
    for m in routed.messages() {
        let value = match m.destination {
            // The mapped bytes as they are: spec order preserved.
            Destination::Ok => serde_json::from_slice::<&RawValue>(&m.payload).ok(),
            Destination::Fail => None,
        };
        let (stage, errors) = m.failure.as_ref().map(|f| (f.stage, f.errors.as_slice())).unzip();
        let line = serde_json::to_vec(&Line {
            route: if m.destination == Destination::Ok { "ok" } else { "fail" },
            topic: &m.origin.topic,
            partition: m.origin.partition,
            offset: m.origin.offset,
            key: m.key.as_deref().map(|k| text_or_base64(k).0),
            to: Some(&m.topic),
            output: m.output.as_deref(),
            value,
            stage,
            errors,
            reason: None,
        });
        out.extend(line.expect("a dry-run line always serialises"));
        out.push(b'\n');
    }
    out
}

/// One routed record as `--messages` prints it: the message exactly as it would be produced —
/// topic, key, headers, payload (JSON as JSON, other bytes as text or base64) — or the skip.
pub fn render_message(routed: &crate::destination::Routed) -> Vec<u8> {
    use crate::destination::Routed;
    use crate::envelope::text_or_base64;
    use serde_json::value::RawValue;
    use serde_json::{Value, json};

    /// The payload's own bytes when it is JSON: the mapped fields keep their spec order.
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Payload<'a> {
        Json(&'a RawValue),
        Bytes(Value),
    }
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Line<'a> {
        Message { topic: &'a str, key: Value, headers: Vec<Value>, payload: Payload<'a> },
        Skipped { skipped: crate::destination::SkipReason, source: Value },
    }
    let bytes = |b: &[u8]| -> Value {
        match text_or_base64(b) {
            (text, "utf8") => Value::String(text),
            (encoded, _) => json!({ "base64": encoded }),
        }
    };
    if let Routed::Skipped(o, reason) = routed {
        let line = Line::Skipped {
            skipped: *reason,
            source: json!({ "topic": o.topic, "partition": o.partition, "offset": o.offset }),
        };
        let mut out = serde_json::to_vec(&line).expect("a message line always serialises");
        out.push(b'\n');
        return out;
    }
    let mut out = Vec::new();
    for m in routed.messages() {
        let line = Line::Message {
            topic: &m.topic,
            key: m.key.as_deref().map_or(Value::Null, bytes),
            headers: m.headers.iter().map(|(name, value)| json!([name, bytes(value)])).collect(),
            payload: match serde_json::from_slice(&m.payload) {
                Ok(raw) => Payload::Json(raw),
                Err(_) => Payload::Bytes(bytes(&m.payload)),
            },
        };
        out.extend(serde_json::to_vec(&line).expect("a message line always serialises"));
        out.push(b'\n');
    }
    out
}
