//! The mapping engine of lambda-stream: a YAML mapping spec, compiled once into an immutable plan
//! that maps JSON records to JSON records.
//!
//! It does no I/O and knows nothing of Kafka, Lambda, async runtimes, AWS, the command line or
//! logging: its caller hands it the mapping's text (and, through [`plan::CompileOptions`], the
//! bytes of the lookup files a mapping names and the keys it references), and gets back a plan, or
//! every problem with its `line:col`. Being a crate of its own, Cargo enforces this: none of those
//! crates is among its dependencies.
//!
//! Module map, in layers (each uses only those above it in this list):
//! - [`diagnostic`] — positions (`line:col`) and located problems shared by loading and compiling.
//! - [`yaml`] — YAML with positions and unknown-key checks, for the spec and `environments.yaml`.
//! - [`spec`] — the mapping file as written: YAML → spec types with positions; shape checks only.
//! - [`plan`] — `compile(&spec) -> Plan` collecting every problem; `Plan::apply(&[u8]) -> Outcome`,
//!   pure and synchronous; expressions (`plan::expr`) for computed fields, conditions and rules.

// `unsafe` is refused everywhere but in the functions that allow it by name, each with the
// argument for its soundness: the SSE2 read of 16 bytes of a string (string scan and short object
// keys), the scanner's already-checked UTF-8 (an `unsafe fn` whose callers each say which scan
// accepted their range), the output writer's inline copy of short text, and the SSE2 masks that
// delimit an embedded record. Clippy refuses an `unsafe` block without its `SAFETY:` comment.
#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod diagnostic;
pub mod plan;
pub mod spec;
pub mod yaml;
