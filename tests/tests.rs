//! Integration tests: one test binary (as ripgrep does), one module per area.

mod cli;
mod golden;
mod hostile;
mod kafka_util;
mod lambda_kafka;
mod lambda_rie;
mod properties;
mod ssm_moto;
mod util;
mod worker;
