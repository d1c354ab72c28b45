//! The `lambda-stream` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    lambda_stream::cli::run(lambda_stream::cli::Cli::parse())
}
