//! [`Shape`]: what a schema says about the records of a topic, in the mapping's own terms.
//!
//! A mapping reads values by path and declares their types; a schema (Avro, JSON Schema,
//! Protobuf) says which paths a record has and what is at each. The engine knows no schema
//! language: a caller turns one into a `Shape` — members by name, each with its kind, whether it
//! may be missing or null, and whether it has a default — and [`super::schema_check`] holds a
//! mapping to it. The kinds are those a value reaches the mapping as: a format's richer types
//! (an exact decimal, a timestamp, bytes) arrive as text in a known form, so each keeps a kind of
//! its own.

use std::fmt;

/// The structure of a value as a schema describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// What the value is.
    pub kind: ShapeKind,
    /// Whether it may be null or missing (an Avro `["null", T]` union, an optional field).
    pub nullable: bool,
}

/// The kinds of value a schema can promise, as they reach a mapping.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeKind {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number, integer or not (a float).
    Number,
    /// `true` or `false`.
    Boolean,
    /// An exact decimal, as its decimal text (`"-12.50"`).
    Decimal,
    /// A date as `YYYY-MM-DD` text.
    Date,
    /// An instant as RFC 3339 text in UTC (`…Z`).
    Datetime,
    /// A date and time of day without a zone, as RFC 3339 text without an offset.
    LocalDatetime,
    /// A time of day as `HH:MM:SS.fff` text.
    Time,
    /// Bytes, as standard base64 text.
    Bytes,
    /// Text that is one of these symbols.
    Enum(Vec<String>),
    /// An object with these members (a record).
    Object(Vec<Member>),
    /// An object with any keys, every value of this shape.
    Map(Box<Shape>),
    /// An array, every item of this shape.
    Array(Box<Shape>),
    /// Any value: the schema does not say (a union of several kinds, a type nested too deep).
    Any,
}

/// One member of an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// What it holds.
    pub shape: Shape,
    /// Whether the schema gives it a default, so that a writer may leave it out.
    pub has_default: bool,
}

impl Shape {
    /// A value of `kind` that is always there.
    pub fn of(kind: ShapeKind) -> Self {
        Shape { kind, nullable: false }
    }

    /// An object of `members`, always there.
    pub fn object(members: Vec<Member>) -> Self {
        Shape::of(ShapeKind::Object(members))
    }

    /// An array of `item`, always there.
    pub fn array(item: Shape) -> Self {
        Shape::of(ShapeKind::Array(Box::new(item)))
    }

    /// The same shape, possibly null or missing.
    pub fn or_null(self) -> Self {
        Shape { nullable: true, ..self }
    }

    /// The member `name`, when this is an object that has it.
    pub fn member(&self, name: &str) -> Option<&Member> {
        match &self.kind {
            ShapeKind::Object(members) => members.iter().find(|m| m.name == name),
            _ => None,
        }
    }
}

impl Member {
    /// A member without a default.
    pub fn new(name: impl Into<String>, shape: Shape) -> Self {
        Member { name: name.into(), shape, has_default: false }
    }

    /// The same member, with a default.
    pub fn with_default(self) -> Self {
        Member { has_default: true, ..self }
    }

    /// Whether a record may leave it out: it may be null, or it has a default.
    pub fn optional(&self) -> bool {
        self.shape.nullable || self.has_default
    }
}

impl ShapeKind {
    /// The kind as messages name it: "text", "an exact decimal (text)"…
    pub fn describe(&self) -> String {
        match self {
            ShapeKind::String => "text".into(),
            ShapeKind::Integer => "an integer".into(),
            ShapeKind::Number => "a number (a float)".into(),
            ShapeKind::Boolean => "a boolean".into(),
            ShapeKind::Decimal => "an exact decimal (as text)".into(),
            ShapeKind::Date => "a date (YYYY-MM-DD text)".into(),
            ShapeKind::Datetime => "a datetime (RFC 3339 text in UTC)".into(),
            ShapeKind::LocalDatetime => "a date and time without a zone (text)".into(),
            ShapeKind::Time => "a time of day (HH:MM:SS text)".into(),
            ShapeKind::Bytes => "bytes (as base64 text)".into(),
            ShapeKind::Enum(symbols) => {
                const SHOWN: usize = 6;
                let mut shown: Vec<&str> = symbols.iter().take(SHOWN).map(String::as_str).collect();
                if symbols.len() > SHOWN {
                    shown.push("…");
                }
                format!("an enum ({})", shown.join(", "))
            }
            ShapeKind::Object(_) => "a record".into(),
            ShapeKind::Map(_) => "a map".into(),
            ShapeKind::Array(_) => "an array".into(),
            ShapeKind::Any => "any value".into(),
        }
    }

    /// Whether values of this kind are text.
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            ShapeKind::String
                | ShapeKind::Decimal
                | ShapeKind::Date
                | ShapeKind::Datetime
                | ShapeKind::LocalDatetime
                | ShapeKind::Time
                | ShapeKind::Bytes
                | ShapeKind::Enum(_)
        )
    }
}

impl fmt::Display for ShapeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
