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
    /// Dry run: map JSON lines through a mapping and print where each record would go.
    Process {
        /// The mapping file.
        #[arg(long)]
        mapping: PathBuf,
        /// JSON lines, one record value per line; `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
    },
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
    #[error("{0}")]
    Mapping(#[from] plan::LoadError),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Mapping(plan::LoadError::Invalid { .. }) => ExitCode::from(1),
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
        Some(Command::Process { mapping, input }) => match process(&mapping, &input) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lambda-stream: {e}");
                e.exit_code()
            }
        },
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
    if let Err(e) = written.and_then(|()| out.flush()) {
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
