//! The names a fail record carries: its headers, and a record's position as text.

/// What every header a fail record adds begins with; a replay leaves those out.
pub const ERROR_HEADER_PREFIX: &str = "lambda-stream.error.";
pub const HEADER_STAGE: &str = "lambda-stream.error.stage";
pub const HEADER_TOPIC: &str = "lambda-stream.error.topic";
pub const HEADER_PARTITION: &str = "lambda-stream.error.partition";
pub const HEADER_OFFSET: &str = "lambda-stream.error.offset";
pub const HEADER_MESSAGE: &str = "lambda-stream.error.message";
pub const HEADER_MAPPING: &str = "lambda-stream.error.mapping";
/// On ok records: the mapping that made it, `name@version`.
pub const HEADER_OK_MAPPING: &str = "lambda-stream.mapping";
/// On every produced message, ok and fail: a stable id of the source record it came from, the
/// same on every retry, redelivery and replay of that record, so a consumer can drop the
/// duplicates at-least-once delivery brings (docs/operations.md).
pub const HEADER_ID: &str = "lambda-stream.id";

/// `topic/partition/offset` (`?` for an unknown offset), written without the formatting
/// machinery: a replay writes two for every record.
pub fn position(topic: &str, partition: i32, offset: Option<i64>) -> String {
    let mut digits = itoa::Buffer::new();
    let mut text = String::with_capacity(topic.len() + 24);
    text.push_str(topic);
    text.push('/');
    text.push_str(digits.format(partition));
    text.push('/');
    text.push_str(offset.map_or("?", |o| digits.format(o)));
    text
}
