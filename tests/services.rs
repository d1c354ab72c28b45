//! Integration tests against real services: the local Apache Kafka broker (`scripts/kafka/run`),
//! AWS's Lambda Runtime Interface Emulator (`scripts/install-rie`) and moto in server mode.
//! `scripts/test` starts them and runs this binary (`cargo test --test services`); a missing
//! service fails these tests, it never skips them.

mod avro_output;
mod cli_kafka;
mod emulator;
mod kafka_util;
mod lambda_kafka;
mod lambda_rie;
mod outputs;
mod playground_browser;
mod registry_avro;
mod registry_protobuf;
mod s3_moto;
mod schema_registry;
mod ssm_moto;
mod util;
mod worker;
