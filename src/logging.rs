//! Log set-up shared by every entry, and the process figures that reports print.

/// Logs as JSON in Lambda (one object per line, CloudWatch-friendly), as text elsewhere.
pub fn init(json_lines: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json_lines {
        builder.json().with_current_span(false).without_time().with_ansi(false).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// The process's peak resident memory in MiB (Linux `VmHWM`), for reports; `None` elsewhere.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
