//! The function's settings, read once at cold start.
//!
//! Environment variables (names as the seed project uses them where it has them):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `LAMBDA_NAME` | function name in fail records and logs | `AWS_LAMBDA_FUNCTION_NAME` |
//! | `LAMBDA_ENV` | environment name (`dev`, `prod`, …) | required |
//! | `MSK_SERVERS` | bootstrap servers of the cluster to produce to | required |
//! | `MAPPING_FILE` | the mapping spec | required |
//! | `TOPIC_OK`, `TOPIC_FAIL` | destination topics | required |
//! | `PARTIAL_BATCH_RESPONSE` | `true`: answer `batchItemFailures` instead of failing the batch | `false` |
//! | `KAFKA_LINGER_MS`, `KAFKA_COMPRESSION`, `KAFKA_MESSAGE_TIMEOUT_MS` | producer tuning | 5, lz4, 30000 |
//! | `DELIVERY_MARGIN_MS` | stop waiting for deliveries this long before Lambda's deadline | 1000 |

use std::path::PathBuf;

use crate::sink::ProducerSettings;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing required setting {0} (set the environment variable)")]
    Missing(&'static str),
    #[error("setting {name} has an invalid value {value:?}: {why}")]
    Invalid { name: &'static str, value: String, why: String },
}

#[derive(Clone, Debug)]
pub struct FunctionSettings {
    pub lambda_name: String,
    pub lambda_env: String,
    pub mapping_file: PathBuf,
    pub topic_ok: String,
    pub topic_fail: String,
    pub partial_batch: bool,
    pub producer: ProducerSettings,
    pub delivery_margin_ms: u64,
}

impl FunctionSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|e: std::num::ParseIntError| ConfigError::Invalid {
                    name,
                    value: v,
                    why: e.to_string(),
                }),
            }
        };
        let lambda_name = get("LAMBDA_NAME")
            .or_else(|| get("AWS_LAMBDA_FUNCTION_NAME"))
            .ok_or(ConfigError::Missing("LAMBDA_NAME"))?;
        let partial_batch = match get("PARTIAL_BATCH_RESPONSE").as_deref().map(str::trim) {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "PARTIAL_BATCH_RESPONSE",
                    value: other.into(),
                    why: "expected true or false".into(),
                });
            }
        };
        let mut producer = ProducerSettings::new(required("MSK_SERVERS")?);
        producer.linger_ms = number("KAFKA_LINGER_MS", 5)? as u32;
        producer.message_timeout_ms = number("KAFKA_MESSAGE_TIMEOUT_MS", 30_000)? as u32;
        if let Some(c) = get("KAFKA_COMPRESSION") {
            if !["none", "gzip", "snappy", "lz4"].contains(&c.as_str()) {
                return Err(ConfigError::Invalid {
                    name: "KAFKA_COMPRESSION",
                    value: c,
                    why: "expected none, gzip, snappy or lz4".into(),
                });
            }
            producer.compression = c;
        }
        Ok(FunctionSettings {
            lambda_name,
            lambda_env: required("LAMBDA_ENV")?,
            mapping_file: PathBuf::from(required("MAPPING_FILE")?),
            topic_ok: required("TOPIC_OK")?,
            topic_fail: required("TOPIC_FAIL")?,
            partial_batch,
            producer,
            delivery_margin_ms: number("DELIVERY_MARGIN_MS", 1000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("AWS_LAMBDA_FUNCTION_NAME", "fn"),
        ("LAMBDA_ENV", "dev"),
        ("MSK_SERVERS", "b1:9092"),
        ("MAPPING_FILE", "m.yaml"),
        ("TOPIC_OK", "ok"),
        ("TOPIC_FAIL", "fail"),
    ];

    #[test]
    fn reads_required_settings_with_defaults() {
        let s = FunctionSettings::from_lookup(lookup(BASE)).unwrap();
        assert_eq!(s.lambda_name, "fn");
        assert_eq!(s.producer.brokers, "b1:9092");
        assert!(!s.partial_batch);
        assert_eq!(s.producer.compression, "lz4");
        assert_eq!(s.delivery_margin_ms, 1000);
    }

    #[test]
    fn names_the_missing_or_invalid_setting() {
        let without: Vec<_> = BASE.iter().copied().filter(|(k, _)| *k != "TOPIC_FAIL").collect();
        assert_eq!(FunctionSettings::from_lookup(lookup(&without)).unwrap_err(), ConfigError::Missing("TOPIC_FAIL"));
        let mut bad = BASE.to_vec();
        bad.push(("PARTIAL_BATCH_RESPONSE", "yes please"));
        let e = FunctionSettings::from_lookup(lookup(&bad)).unwrap_err();
        assert!(e.to_string().contains("PARTIAL_BATCH_RESPONSE"), "{e}");
        let mut bad = BASE.to_vec();
        bad.push(("KAFKA_LINGER_MS", "soon"));
        assert!(FunctionSettings::from_lookup(lookup(&bad)).unwrap_err().to_string().contains("KAFKA_LINGER_MS"));
    }
}
