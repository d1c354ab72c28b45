//! `lambda-stream failures --brokers B --topic FAIL [--since 2h|RFC3339] [--until …]`: what failed,
//! by stage, by `field:rule`, by mapping and by source topic, with first and last time seen and one
//! example each — read from the fail topic without a consumer group, committing nothing.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::{BadTime, CliError};
use super::exit::Outcome;
use super::validate::Format;
use crate::envelope::ReadEnvelope;
use crate::plan::FieldError;

/// One row of the triage: a value (a stage, a `field:rule`, …) and the failures that have it.
#[derive(Debug, Default, Serialize)]
pub struct Row {
    pub value: String,
    pub count: u64,
    /// Fail records' timestamps (milliseconds since the epoch), first and last.
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// The first failure with it: where it came from and its first error (values of sensitive
    /// fields were never written into messages).
    pub example: String,
}

/// The whole triage.
#[derive(Debug, Default, Serialize)]
pub struct Triage {
    pub read: u64,
    /// Records that are not lambda-stream fail envelopes (counted, never dropped silently).
    pub not_ours: u64,
    pub not_ours_example: Option<String>,
    pub by_stage: Vec<Row>,
    pub by_rule: Vec<Row>,
    pub by_mapping: Vec<Row>,
    pub by_source_topic: Vec<Row>,
}

#[derive(Default)]
struct Tally {
    rows: [BTreeMap<String, Row>; 4],
}

impl Tally {
    fn add(&mut self, envelope: &ReadEnvelope, timestamp: Option<i64>, partition: i32, offset: i64) {
        // The example is written only for a row's first record: most records add to a row.
        let example = || {
            let first = envelope.errors.first();
            format!(
                "{}-{}@{} (fail {partition}@{offset}): {}",
                envelope.source.topic,
                envelope.source.partition,
                envelope.source.offset.map_or_else(|| "?".into(), |o| o.to_string()),
                first.map_or_else(String::new, |e| format!(
                    "{} {}: {}",
                    e.field.as_deref().unwrap_or("(record)"),
                    e.rule,
                    e.message
                ))
            )
        };
        let rules = crate::plan::distinct_field_rules(envelope.errors.iter().map(FieldError::field_rule));
        let keys: [Vec<String>; 4] = [
            vec![envelope.stage.clone()],
            rules,
            vec![envelope.mapping_identity()],
            vec![envelope.source.topic.clone()],
        ];
        for (rows, values) in self.rows.iter_mut().zip(keys) {
            for value in values {
                let row = match rows.get_mut(&value) {
                    Some(row) => row,
                    None => rows.entry(value.clone()).or_insert(Row { value, example: example(), ..Row::default() }),
                };
                row.count += 1;
                if let Some(t) = timestamp {
                    row.first_seen_ms = Some(row.first_seen_ms.map_or(t, |f| f.min(t)));
                    row.last_seen_ms = Some(row.last_seen_ms.map_or(t, |l| l.max(t)));
                }
            }
        }
    }

    fn finish(self, triage: &mut Triage) {
        let sorted = |rows: BTreeMap<String, Row>| {
            let mut rows: Vec<Row> = rows.into_values().collect();
            rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            rows
        };
        let [stage, rule, mapping, topic] = self.rows;
        triage.by_stage = sorted(stage);
        triage.by_rule = sorted(rule);
        triage.by_mapping = sorted(mapping);
        triage.by_source_topic = sorted(topic);
    }
}

/// A point in time: `2h`, `30m`, `45s`, `1d` ago, or RFC 3339; milliseconds since the epoch.
pub fn parse_time(text: &str, now_ms: i64) -> Result<i64, BadTime> {
    let text = text.trim();
    let units = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)];
    for (suffix, ms) in units {
        if let Some(n) = text.strip_suffix(suffix).and_then(|n| n.parse::<i64>().ok()) {
            return Ok(now_ms - n * ms);
        }
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|source| BadTime { text: text.to_owned(), source })
}

/// Parses `--since` / `--until` values against the time now.
pub(super) fn times_from_now() -> impl Fn(&Option<String>) -> Result<Option<i64>, CliError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    move |t| Ok(t.as_deref().map(|t| parse_time(t, now)).transpose()?)
}

fn time_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "-".into(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The cluster the fail topic lives on, as the readers and the replay's producer reach it.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Bootstrap servers.
    #[arg(long)]
    pub brokers: String,
    /// A librdkafka property for every client of the command, `key=value` (repeatable): TLS
    /// (`security.protocol=ssl`), SASL/SCRAM (`sasl.mechanism=…`, `sasl.username=…`), …
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// MSK IAM authentication (SASL/OAUTHBEARER over TLS), tokens signed for this region with the
    /// default AWS credentials chain.
    #[arg(long, value_name = "REGION")]
    pub msk_iam_region: Option<String>,
}

impl ClusterArgs {
    pub fn settings(&self) -> Result<crate::sink::ProducerSettings, CliError> {
        let mut settings = crate::sink::ProducerSettings::new(self.brokers.clone());
        if let Some(region) = &self.msk_iam_region {
            settings.extra.push(("security.protocol".into(), "sasl_ssl".into()));
            settings.extra.push(("sasl.mechanism".into(), "OAUTHBEARER".into()));
            settings.msk_iam_region = Some(region.clone());
        }
        settings.extra.extend(super::run::properties(&self.properties, "--property")?);
        Ok(settings)
    }
}

/// Options of `failures`.
#[derive(Debug, clap::Args)]
pub struct FailuresArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The fail topic.
    #[arg(long)]
    pub topic: String,
    /// From this time: a duration ago (`2h`, `30m`, `1d`) or RFC 3339. Default: the beginning.
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time (same forms). Default: the end of the topic when the read starts.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn failures(args: FailuresArgs) -> Result<Outcome, CliError> {
    let time = times_from_now();
    let range = crate::worker::range::Range {
        since_ms: time(&args.since)?,
        until_ms: time(&args.until)?,
        partition: args.partition,
    };
    let mut tally = Tally::default();
    let mut triage = Triage::default();
    let mut last_progress = std::time::Instant::now();
    let cluster = args.cluster.settings()?;
    let read = crate::worker::range::read_range(
        &cluster,
        &args.topic,
        &range,
        |record| match record.payload.map(ReadEnvelope::parse) {
            Some(Ok(envelope)) => tally.add(&envelope, record.timestamp, record.partition, record.offset),
            other => {
                triage.not_ours += 1;
                if triage.not_ours_example.is_none() {
                    let why = match other {
                        Some(Err(why)) => why.to_string(),
                        _ => "no value".into(),
                    };
                    triage.not_ours_example =
                        Some(format!("partition {} offset {}: {why}", record.partition, record.offset));
                }
            }
        },
        |done, total| {
            if last_progress.elapsed().as_secs() >= 1 || done == total {
                eprintln!("read {done} of {total} records");
                last_progress = std::time::Instant::now();
            }
        },
    )?;
    triage.read = read;
    tally.finish(&mut triage);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&triage).expect("a triage serialises")),
        Format::Text => print!("{}", render(&triage)),
    }
    Ok(Outcome::Done)
}

fn render(t: &Triage) -> String {
    let mut out = format!("{} record(s) read; {} not lambda-stream fail envelopes\n", t.read, t.not_ours);
    if let Some(e) = &t.not_ours_example {
        out.push_str(&format!("  first of those: {e}\n"));
    }
    for (title, rows) in [
        ("stage", &t.by_stage),
        ("field:rule", &t.by_rule),
        ("mapping", &t.by_mapping),
        ("source topic", &t.by_source_topic),
    ] {
        out.push_str(&format!("\nby {title}:\n"));
        for r in rows {
            out.push_str(&format!(
                "  {:>8}  {:<40} {} .. {}\n            e.g. {}\n",
                r.count,
                r.value,
                time_text(r.first_seen_ms),
                time_text(r.last_seen_ms),
                r.example
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_ago_or_rfc3339() {
        let now = 1_796_112_000_000;
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("1d", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_time("2026-12-01T08:00:00Z", now).unwrap(), now);
        assert!(parse_time("yesterday", now).unwrap_err().to_string().contains("RFC 3339"));
    }

    #[test]
    fn envelopes_are_counted_by_stage_rule_mapping_and_topic() {
        let envelope = |topic: &str, rule: &str| {
            ReadEnvelope::parse(
                format!(
                    r#"{{"source":{{"topic":"{topic}","partition":0,"offset":7,"timestamp":1,"key":null,"key_encoding":"utf8"}},"stage":"validate","errors":[{{"field":"doc","rule":"{rule}","message":"m"}}],"mapping":{{"name":"orders","version":"abc"}},"value":"{{}}","value_encoding":"utf8"}}"#
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let mut tally = Tally::default();
        tally.add(&envelope("orders", "cpf"), Some(10), 0, 1);
        tally.add(&envelope("orders", "cpf"), Some(30), 0, 2);
        tally.add(&envelope("payments", "type"), Some(20), 1, 0);
        let mut t = Triage::default();
        tally.finish(&mut t);
        assert_eq!((t.by_rule[0].value.as_str(), t.by_rule[0].count), ("doc:cpf", 2));
        assert_eq!((t.by_rule[0].first_seen_ms, t.by_rule[0].last_seen_ms), (Some(10), Some(30)));
        assert_eq!(t.by_mapping[0].value, "orders@abc");
        assert_eq!(t.by_stage[0].count, 3);
        assert_eq!(t.by_source_topic.len(), 2);
        assert!(t.by_rule[0].example.starts_with("orders-0@7 (fail 0@1): doc cpf: m"), "{}", t.by_rule[0].example);
        assert!(ReadEnvelope::parse(b"not json").is_err());
        assert!(ReadEnvelope::parse(br#"{"stage":"x"}"#).is_err(), "no source: not ours");
    }
}
