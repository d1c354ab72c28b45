//! lambda-stream: a config-driven mapping engine between two Kafka topics.
//!
//! A YAML mapping spec says which fields to take from each JSON record, how to rename, transform and
//! validate them. It is loaded and compiled once; every record then runs through the compiled plan,
//! and the result goes to the *ok* topic or, with every error explained, to the *fail* topic.
//!
//! Module map (data flows top to bottom):
//! - [`diagnostic`] — positions (`line:col`) and located problems shared by loading and compiling.
//! - [`spec`] — the mapping file as written: YAML → spec types with positions; shape checks only.
//! - [`plan`] — `compile(&spec) -> Plan` collecting every problem; `Plan::apply(&[u8]) -> Outcome`,
//!   pure and synchronous. Knows nothing of Kafka, Lambda or async runtimes.
//! - [`cli`] — the command line: `validate-mapping`, `process` (the local dry run).

pub mod cli;
pub mod diagnostic;
pub mod plan;
pub mod spec;
