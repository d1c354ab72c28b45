//! Every built-in transform, described once.

use super::{Argument, Key, code, optional, required};
use crate::plan::types::Kind;

/// What a transform takes: the JSON types of the values it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A string.
    Text,
    /// A string or a number.
    TextOrNumber,
    /// A string, a number or a boolean.
    Scalar,
    /// A number.
    Number,
    /// Any value.
    Any,
}

impl Takes {
    /// Whether a value of this static kind may be given (decided at run time when unknown).
    pub fn accepts(self, kind: Kind) -> bool {
        kind == Kind::Unknown
            || match self {
                Takes::Text => kind == Kind::Str,
                Takes::TextOrNumber => matches!(kind, Kind::Str | Kind::Int | Kind::Num),
                Takes::Scalar => matches!(kind, Kind::Str | Kind::Int | Kind::Num | Kind::Bool),
                Takes::Number => matches!(kind, Kind::Int | Kind::Num),
                Takes::Any => true,
            }
    }

    /// As messages say it: "transform `trim` takes a string".
    pub fn describe(self) -> &'static str {
        match self {
            Takes::Text => "a string",
            Takes::TextOrNumber => "a string or a number",
            Takes::Scalar => "a string, number or boolean",
            Takes::Number => "a number",
            Takes::Any => "any value",
        }
    }

    /// As the reference's table says it.
    pub fn reference(self) -> &'static str {
        match self {
            Takes::Text => "string",
            Takes::TextOrNumber => "string, number",
            Takes::Scalar => "string, number, boolean",
            Takes::Number => "number",
            Takes::Any => "any",
        }
    }
}

/// One built-in transform.
#[derive(Debug)]
pub struct TransformDoc {
    /// The transform's name in a `transform:` list.
    pub name: &'static str,
    /// How its argument is written.
    pub argument: Argument,
    /// The values it applies to.
    pub takes: Takes,
    /// What it does, in a sentence.
    pub summary: &'static str,
    /// The step as a mapping writes it in a `transform:` list (`truncate: {max: 3}`) …
    pub example: &'static str,
    /// … a value it is given (JSON) …
    pub example_input: &'static str,
    /// … and the value it gives (JSON).
    pub example_gives: &'static str,
}

const fn keys(keys: &'static [Key]) -> Argument {
    Argument::Keys { keys, at_least_one: false }
}

const NUMBER: Argument = Argument::Value { written: "N", what: "a number" };

/// Every built-in transform, in the reference's order (which is also the order the unknown-name
/// message lists them in).
pub const CATALOGUE: &[TransformDoc] = &[
    TransformDoc {
        name: "trim",
        argument: Argument::None,
        takes: Takes::Text,
        summary: "removes white space (Unicode) at either end",
        example: "trim",
        example_input: r#""  Ana Souza ""#,
        example_gives: r#""Ana Souza""#,
    },
    TransformDoc {
        name: "lowercase",
        argument: Argument::None,
        takes: Takes::Text,
        summary: "lower case (Unicode)",
        example: "lowercase",
        example_input: r#""Ana@Example.COM""#,
        example_gives: r#""ana@example.com""#,
    },
    TransformDoc {
        name: "uppercase",
        argument: Argument::None,
        takes: Takes::Text,
        summary: "upper case (Unicode)",
        example: "uppercase",
        example_input: r#""são paulo""#,
        example_gives: r#""SÃO PAULO""#,
    },
    TransformDoc {
        name: "digits_only",
        argument: Argument::None,
        takes: Takes::Text,
        summary: "keeps the ASCII digits, drops everything else",
        example: "digits_only",
        example_input: r#""123.456.789-09""#,
        example_gives: r#""12345678909""#,
    },
    TransformDoc {
        name: "replace",
        argument: keys(&[required("pattern", "REGEX"), required("with", "TEXT")]),
        takes: Takes::Text,
        summary: "regex replace-all: every match of `pattern` replaced by `with`, which may use groups, `$1` / `${name}` (`$$` is a `$`)",
        example: r"replace: {pattern: '^(\d{4})-(\d{2})$', with: '$2/$1'}",
        example_input: r#""2026-11""#,
        example_gives: r#""11/2026""#,
    },
    TransformDoc {
        name: "truncate",
        argument: keys(&[required("max", "N")]),
        takes: Takes::Text,
        summary: "at most `max` characters (`max` a positive integer)",
        example: "truncate: {max: 3}",
        example_input: r#""çãoxyz""#,
        example_gives: r#""ção""#,
    },
    TransformDoc {
        name: "map",
        argument: keys(&[required("values", "{FROM: TO}"), optional("default", "VALUE")]),
        takes: Takes::Scalar,
        summary: "looks up the value's text in `values` (`1` → `\"1\"`); unmatched and no `default` → error `map`",
        example: "map: {values: {C: CREDIT, D: DEBIT}, default: OTHER}",
        example_input: r#""C""#,
        example_gives: r#""CREDIT""#,
    },
    TransformDoc {
        name: "to_integer",
        argument: Argument::None,
        takes: Takes::TextOrNumber,
        summary: "an integer from text (white space around it allowed) or a whole number (`42.0` → 42); `\"4.5\"`, `4.5` or a value beyond a signed 64-bit integer → error `to_integer`",
        example: "to_integer",
        example_input: r#"" 1520 ""#,
        example_gives: "1520",
    },
    TransformDoc {
        name: "to_number",
        argument: Argument::None,
        takes: Takes::TextOrNumber,
        summary: "a number from text (`\"12\"` stays an integer); `inf`, `NaN` refused",
        example: "to_number",
        example_input: r#""12.50""#,
        example_gives: "12.5",
    },
    TransformDoc {
        name: "to_string",
        argument: Argument::None,
        takes: Takes::Any,
        summary: "a number as the record writes it (`1.50` stays `\"1.50\"`), booleans as JSON text, objects and arrays as compact JSON",
        example: "to_string",
        example_input: "884213",
        example_gives: r#""884213""#,
    },
    TransformDoc {
        name: "multiply",
        argument: NUMBER,
        takes: Takes::Number,
        summary: "integer × integer stays an integer (overflow → error `multiply`), else a float",
        example: "multiply: 100",
        example_input: "12",
        example_gives: "1200",
    },
    TransformDoc {
        name: "divide",
        argument: NUMBER,
        takes: Takes::Number,
        summary: "exact integer ÷ integer stays an integer, else a float; `divide: 0` is a compile error",
        example: "divide: 100",
        example_input: "25990",
        example_gives: "259.9",
    },
    TransformDoc {
        name: "to_decimal",
        argument: keys(&[required("scale", "2"), optional("rounding", "half_even")]),
        takes: Takes::TextOrNumber,
        summary: "an exact decimal string with exactly `scale` (0–28) digits after the point (`\"12.5\"` → `\"12.50\"`); `rounding` as in [`round()`](#functions), default `half_even`; never through a float",
        example: "to_decimal: {scale: 2, rounding: half_up}",
        example_input: r#""12.345""#,
        example_gives: r#""12.35""#,
    },
    TransformDoc {
        name: "parse_datetime",
        argument: keys(&[required("format", "'%d/%m/%Y %H:%M:%S'"), optional("zone", "America/Sao_Paulo")]),
        takes: Takes::Text,
        summary: "local date and time in a [strftime format](https://docs.rs/chrono/latest/chrono/format/strftime/) in an IANA `zone` → RFC 3339 UTC; a format with `%z` needs no zone (see below)",
        example: "parse_datetime: {format: '%d/%m/%Y %H:%M:%S', zone: America/Sao_Paulo}",
        example_input: r#""01/11/2026 10:15:00""#,
        example_gives: r#""2026-11-01T13:15:00Z""#,
    },
    TransformDoc {
        name: "parse_date",
        argument: keys(&[required("format", "'%Y%m%d'")]),
        takes: Takes::Text,
        summary: "a date in a format → `YYYY-MM-DD`; a year outside 0000–9999 is an error",
        example: "parse_date: {format: '%Y%m%d'}",
        example_input: r#""20261103""#,
        example_gives: r#""2026-11-03""#,
    },
    TransformDoc {
        name: "sha256",
        argument: Argument::None,
        takes: Takes::Text,
        summary: "lower-case hex SHA-256 of the text's UTF-8 bytes",
        example: "sha256",
        example_input: r#""abc""#,
        example_gives: r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#,
    },
    TransformDoc {
        name: "mask",
        argument: keys(&[optional("keep_first", "N"), optional("keep_last", "N"), optional("with", "'*'")]),
        takes: Takes::Text,
        summary: "keeps the first `keep_first` and last `keep_last` characters (default 0) and replaces the rest with `with` (one character, default `*`); a value too short to hide anything between them is masked whole",
        example: "mask: {keep_first: 6, keep_last: 4}",
        example_input: r#""4111111111111111""#,
        example_gives: r#""411111******1111""#,
    },
];

/// The transform a name calls.
pub fn find(name: &str) -> Option<&'static TransformDoc> {
    CATALOGUE.iter().find(|t| t.name == name)
}

/// Every transform's name, in the catalogue's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|t| t.name)
}

/// The reference's table of transforms, as docs/mapping-spec.md holds it.
pub fn reference_table() -> String {
    let mut table =
        String::from("| transform | argument | takes | does | example: value → result |\n|---|---|---|---|---|\n");
    for t in CATALOGUE {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {}: {} → {} |\n",
            t.name,
            t.argument.reference(),
            t.takes.reference(),
            t.summary,
            code(t.example),
            code(t.example_input),
            code(t.example_gives)
        ));
    }
    table
}
