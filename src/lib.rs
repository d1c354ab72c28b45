//! lambda-stream: a config-driven mapping engine between two Kafka topics.
//!
//! A YAML mapping spec says which fields to take from each JSON record, how to rename, transform and
//! validate them. It is loaded and compiled once; every record then runs through the compiled plan,
//! and the result goes to the *ok* topic or, with every error explained, to the *fail* topic.
//!
//! The engine is the crate `lambda_stream_engine` (`crates/engine`), re-exported here as
//! [`diagnostic`], [`yaml`], [`spec`] and [`plan`]: a crate of its own, it does no I/O and links
//! nothing of Kafka, Lambda, AWS or async runtimes, and Cargo enforces it.
//!
//! Module map, in layers (each uses only those above it in this list; `tests/architecture.rs`
//! checks that there is no cycle). `docs/architecture.md` says why it is shaped so.
//! - [`diagnostic`] — (engine) positions (`line:col`) and located problems shared by loading and
//!   compiling.
//! - [`yaml`] — (engine) YAML with positions and unknown-key checks, for the spec and
//!   `environments.yaml`.
//! - [`spec`] — (engine) the mapping file as written: YAML → spec types with positions; shape
//!   checks only.
//! - [`plan`] — (engine) `compile(&spec) -> Plan` collecting every problem;
//!   `Plan::apply(&[u8]) -> Outcome`, pure and synchronous; expressions (`plan::expr`) for computed
//!   fields, conditions and rules.
//! - [`limits`] — how much of a file is read at most (a mapping, a lookup table, a record).
//! - [`mapping_file`] — a mapping read from disk: its text, and the lookup files next to it, read
//!   for the engine under their rules (inside the mapping's folder, a regular file, bounded).
//! - [`record`] — Lambda Kafka event → inputs (base64, signed header bytes, tombstones), lenient
//!   per record so one bad record never fails a batch.
//! - [`format`] — record formats (JSON, Avro, JSON behind a registry's framing), the registries'
//!   wire framings, schema registries and their cache.
//! - [`destination`] — `(input, outcome)` → a message for the ok topic, one per output the
//!   mapping's `outputs:` chose, or the fail topic.
//! - [`envelope`] — the fail message's JSON envelope and `lambda-stream.error.*` headers: written,
//!   read back for triage, read back for a replay; CloudEvents for the outputs that ask for them.
//! - [`msk_iam`] — SigV4-signed SASL/OAUTHBEARER tokens for MSK IAM authentication.
//! - [`sink`] — where messages go: `sink::kafka::KafkaSink` (with `worker`, the only `rdkafka`
//!   user), memory.
//! - [`pipeline`] — one batch end to end, shared by the Lambda, `process` and the worker.
//! - [`telemetry`] — batch metrics as CloudWatch Embedded Metric Format documents.
//! - [`config`] — settings resolved once: flags over environment over `environments.yaml`.
//! - [`logging`] — log set-up shared by every entry.
//! - [`mapping_source`] — where a mapping comes from (a file, `s3://`), its checked load and its
//!   refresh into a running pipeline, between batches.
//! - [`lambda`] — the AWS Lambda function: the handler, and `lambda::runtime` (the only
//!   `lambda_runtime` import).
//! - [`worker`] — `lambda-stream run`: the same pipeline fed by a Kafka consumer group, committing
//!   offsets only after delivery (or inside a transaction with `--exactly-once`).
//! - [`cli`] — the command line, one module per command.
//!
//! With the `kafka` feature off (the mapping-tools build) `msk_iam`, `mapping_source`, `worker`, `sink::kafka`,
//! `lambda::runtime`, `config::ssm` and `cli::run` are left out: the engine and the local commands
//! remain, and no Kafka, AWS or async runtime crate is compiled.

// `unsafe` is refused everywhere but in the functions that allow it by name, each with the
// argument for its soundness: here, librdkafka's accessors for a consumed record's headers
// (rdkafka's own iterator panics on a header name that is not UTF-8); the engine's crate lists its
// own. Clippy refuses an `unsafe` block without its `SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub use lambda_stream_engine::{diagnostic, plan, spec, yaml};

pub mod cli;
pub mod config;
pub mod destination;
pub mod envelope;
pub mod format;
pub mod lambda;
pub mod limits;
pub mod logging;
pub mod mapping_file;
#[cfg(feature = "kafka")]
pub mod mapping_source;
#[cfg(feature = "kafka")]
pub mod msk_iam;
pub mod pipeline;
pub mod record;
pub mod sink;
pub mod telemetry;
#[cfg(feature = "kafka")]
pub mod worker;
