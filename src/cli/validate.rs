//! `validate-mapping` and `validate-config`: compile-style reports, `--format json`, exit 0 / 1 / 2
//! (3 when an `s3://` mapping's S3 does not answer).
//!
//! Each problem is shown as its one line, `FILE:LINE:COL: error: message` (the form editors, CI
//! logs and `grep` jump to), then the source lines it covers with the offending text underlined,
//! as rustc shows them. The JSON report gives each problem's severity and its start and end.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::error::{CliError, MappingReadError};
use super::exit::{Exit, Outcome};

use super::schema_check::Schemas;
use crate::diagnostic::{Diagnostic, Pos, Severity, SourceFile};
use crate::plan::{self, mapping_tests};

/// `--source-schema` and `--target-schema`, as given.
#[derive(Clone, Copy, Debug, Default)]
pub struct SchemaFlags<'a> {
    pub source: Option<&'a str>,
    pub target: Option<&'a str>,
}

/// How a checker prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// What `validate-mapping` found in one file.
struct FileReport {
    file: String,
    unreadable: Option<MappingReadError>,
    /// The file's text, to show problems in.
    text: String,
    diagnostics: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    fields: usize,
    /// Every topic the mapping's `outputs:` may write to: what its producer must be allowed.
    output_topics: Vec<String>,
    tests: Vec<mapping_tests::SpecTestResult>,
    /// A schema registry the mapping's schema keys name did not answer.
    registry_unreachable: bool,
}

impl FileReport {
    fn failed_tests(&self) -> usize {
        self.tests.iter().filter(|t| t.failure.is_some()).count()
    }
    fn ok(&self) -> bool {
        self.unreadable.is_none() && self.diagnostics.is_empty() && self.failed_tests() == 0
    }
}

fn check_file(path: &Path, schemas: &mut Schemas) -> FileReport {
    let file = path.display().to_string();
    let mut report = FileReport {
        file,
        unreadable: None,
        text: String::new(),
        diagnostics: Vec::new(),
        warnings: Vec::new(),
        fields: 0,
        output_topics: Vec::new(),
        tests: Vec::new(),
        registry_unreachable: false,
    };
    let text = match super::source::read_text(path) {
        Ok(text) => text,
        Err(e) => {
            report.unreadable = Some(e);
            return report;
        }
    };
    // Lookup files are read next to the mapping, as the function reads them.
    let in_s3 = path.to_string_lossy().starts_with("s3://");
    let options = crate::mapping_file::options(path.parent().filter(|_| !in_s3));
    match plan::load_str_in(&text, &options) {
        Ok((spec, plan)) => {
            report.fields = plan.field_count();
            report.output_topics = plan.output_topics().into_iter().map(String::from).collect();
            report.warnings = plan.warnings().to_vec();
            report.tests = mapping_tests::run(&spec, &plan);
            let findings = schemas.check(path, &spec, &plan);
            report.registry_unreachable = findings.unreachable;
            for d in findings.diagnostics {
                match d.severity {
                    Severity::Error => report.diagnostics.push(d),
                    Severity::Warning => report.warnings.push(d),
                }
            }
            report.diagnostics.sort_by_key(|d| d.pos);
            report.warnings.sort_by_key(|d| d.pos);
        }
        Err(diagnostics) => report.diagnostics = diagnostics,
    }
    crate::yaml::fill_ends(&text, &mut report.diagnostics);
    crate::yaml::fill_ends(&text, &mut report.warnings);
    report.text = text;
    report
}

/// A failing embedded test, as a problem at the test.
fn test_failure(t: &mapping_tests::SpecTestResult) -> Option<Diagnostic> {
    let why = t.failure.as_ref()?;
    Some(Diagnostic::new(t.pos, format!("test \"{}\" failed: {why}", t.name)))
}

/// A problem in the JSON report: severity, message, where it starts and ends, and its one line.
fn diagnostic_json(d: &Diagnostic, source: &SourceFile<'_>, file: &str) -> Value {
    let at = |p: Pos| json!({ "line": p.line, "col": p.col });
    json!({
        "severity": d.severity.as_str(), "message": d.message,
        "line": d.pos.line, "col": d.pos.col, "start": at(d.pos), "end": at(source.end_of(d)),
        "rendered": d.render(file),
    })
}

/// `validate-mapping`: each file compiled, its tests run, and held to its schemas (`schemas`:
/// the flags' `--source-schema` and `--target-schema`, as given).
pub fn validate_mapping(files: &[PathBuf], format: Format, schemas: SchemaFlags<'_>) -> Result<Outcome, CliError> {
    let mut schemas = Schemas::from_flags(schemas.source, schemas.target)?;
    let reports: Vec<FileReport> = files.iter().map(|f| check_file(f, &mut schemas)).collect();
    let tests_run: usize = reports.iter().map(|r| r.tests.len()).sum();
    let tests_failed: usize = reports.iter().map(FileReport::failed_tests).sum();
    let all_ok = reports.iter().all(FileReport::ok);
    let unreadable = reports
        .iter()
        .filter_map(|r| r.unreadable.as_ref())
        .map(super::exit::mapping_read)
        .chain(reports.iter().filter(|r| r.registry_unreachable).map(|_| Exit::Infrastructure))
        .max();
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Text => write_text_report(&mut out, &reports, tests_run, tests_failed),
        Format::Json => write_json_report(&mut out, &reports, all_ok, tests_run, tests_failed),
    };
    written.and_then(|()| out.flush())?;
    Ok(checker_outcome(unreadable, all_ok))
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
        let source = SourceFile::new(&r.file, &r.text);
        let failures: Vec<Diagnostic> = r.tests.iter().filter_map(test_failure).collect();
        for d in r.diagnostics.iter().chain(&r.warnings).chain(&failures) {
            writeln!(out, "{}", source.render(d))?;
        }
        if r.diagnostics.is_empty() {
            let passed = r.tests.len() - r.failed_tests();
            let verdict = if r.ok() { "ok" } else { "FAILED" };
            let topics = match &r.output_topics[..] {
                [] => String::new(),
                topics => format!(", writes to {}", topics.join(", ")),
            };
            writeln!(
                out,
                "{}: {verdict} ({} fields, {passed}/{} tests passed{topics})",
                r.file,
                r.fields,
                r.tests.len()
            )?;
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
            let source = SourceFile::new(&r.file, &r.text);
            let diagnostics: Vec<Value> =
                r.diagnostics.iter().chain(&r.warnings).map(|d| diagnostic_json(d, &source, &r.file)).collect();
            json!({
                "file": r.file,
                "ok": r.ok(),
                "error": r.unreadable.as_ref().map(ToString::to_string),
                "fields": r.fields,
                "output_topics": r.output_topics,
                "diagnostics": diagnostics,
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

/// How a checker ended: a file it could not read (or whose S3 did not answer) says so before any
/// problem found in the others, which say so before success.
fn checker_outcome(unreadable: Option<Exit>, all_ok: bool) -> Outcome {
    match unreadable {
        Some(exit) => Outcome::Reported(exit),
        None if all_ok => Outcome::Done,
        None => Outcome::Reported(Exit::Refused),
    }
}

/// `validate-config`: the same conventions as `validate-mapping` (problems as FILE:LINE:COL, exit
/// 0 / 1 / 2, `--format json`).
pub fn validate_config(files: &[PathBuf], format: Format) -> Result<Outcome, CliError> {
    use crate::config::environments;
    let mut unreadable = false;
    // Each file's JSON report, and its problems as the text report shows them.
    let mut reports: Vec<(Value, Vec<String>)> = Vec::new();
    for path in files {
        let shown = path.display().to_string();
        let text = match crate::limits::read_text_bounded(path, crate::limits::MAX_MAPPING_BYTES, "a settings file") {
            Ok(t) => t,
            Err(e) => {
                unreadable = true;
                let report =
                    json!({"file": shown, "ok": false, "error": e.to_string(), "environments": [], "diagnostics": []});
                reports.push((report, Vec::new()));
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
        // The problems are in this file or in the mappings it names: each shown in its own file's text.
        let mut texts: HashMap<PathBuf, String> = HashMap::from([(path.clone(), text)]);
        for l in &located {
            if !texts.contains_key(&l.file) {
                let read = crate::limits::read_text_bounded(&l.file, crate::limits::MAX_MAPPING_BYTES, "a mapping");
                texts.insert(l.file.clone(), read.unwrap_or_default());
            }
        }
        for (file, text) in &texts {
            let mut in_file: Vec<Diagnostic> =
                located.iter().filter(|l| &l.file == file).map(|l| l.diagnostic.clone()).collect();
            crate::yaml::fill_ends(text, &mut in_file);
            for (l, filled) in located.iter_mut().filter(|l| &l.file == file).zip(in_file) {
                l.diagnostic = filled;
            }
        }
        let (mut rendered, mut shown_problems) = (Vec::new(), Vec::new());
        for l in &located {
            let file = l.file.display().to_string();
            let source = SourceFile::new(&file, texts.get(&l.file).map_or("", String::as_str));
            let mut problem = diagnostic_json(&l.diagnostic, &source, &file);
            problem["file"] = json!(file);
            rendered.push(problem);
            shown_problems.push(source.render(&l.diagnostic));
        }
        let report = json!({"file": shown, "ok": located.is_empty(), "error": null, "environments": names, "diagnostics": rendered});
        reports.push((report, shown_problems));
    }
    let all_ok = reports.iter().all(|(r, _)| r["ok"] == true);
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Json => {
            let files: Vec<&Value> = reports.iter().map(|(r, _)| r).collect();
            serde_json::to_writer_pretty(&mut out, &json!({"ok": all_ok, "files": files}))
                .map_err(io::Error::other)
                .and_then(|()| writeln!(out))
        }
        Format::Text => (|| {
            for (r, problems) in &reports {
                if let Some(e) = r["error"].as_str() {
                    writeln!(out, "{}: error: cannot read file: {e}", r["file"].as_str().unwrap_or_default())?;
                    continue;
                }
                for problem in problems {
                    writeln!(out, "{problem}")?;
                }
                let envs = r["environments"].as_array().map_or(0, Vec::len);
                let verdict =
                    if problems.is_empty() { "ok".to_string() } else { format!("{} problem(s)", problems.len()) };
                writeln!(
                    out,
                    "{}: {verdict} ({envs} environment(s) and their mappings checked)",
                    r["file"].as_str().unwrap_or_default()
                )?;
            }
            Ok(())
        })(),
    };
    written.and_then(|()| out.flush())?;
    Ok(checker_outcome(unreadable.then_some(Exit::Usage), all_ok))
}
