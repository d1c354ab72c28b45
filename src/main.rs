//! The `lambda-stream` binary: the Lambda function when started by the Lambda runtime
//! (`AWS_LAMBDA_RUNTIME_API` set, no subcommand), the command line otherwise. The mapping-tools
//! build (without the `kafka` feature) is the command line only.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: the worker's loop allocates and frees per record while
/// librdkafka's threads free what it handed over, and glibc's arenas made allocation a quarter
/// of the loop's time (docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    #[cfg(feature = "kafka")]
    let started = std::time::Instant::now();
    let cli = lambda_stream::cli::Cli::parse();
    #[cfg(feature = "kafka")]
    if cli.command.is_none() && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match serve_lambda(started) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lambda-stream: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    lambda_stream::cli::run(cli)
}

#[cfg(feature = "kafka")]
fn serve_lambda(started: std::time::Instant) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(lambda_stream::lambda::runtime::run(started)).map_err(|e| anyhow::anyhow!(e))
}
