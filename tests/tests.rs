//! Integration tests that need no outside service: one test binary (as ripgrep does), one module
//! per area. `cargo test` runs them. The tests against the real broker, the Lambda Runtime
//! Interface Emulator and moto are the `services` binary, which `scripts/test` runs after starting
//! those services.

mod architecture;
mod cli;
mod doc_examples;
mod exit_codes;
mod formats;
mod function_length;
mod golden;
mod hostile;
mod hostile_engine;
mod hostile_io;
mod parcels;
mod payments;
mod properties;
mod protobuf;
mod routes;
mod schema;
mod schema_checks;
mod util;
mod validators;
