//! Every built-in validator, described once.

use super::{Argument, code, optional};
use crate::plan::types::FieldType;

/// The declared field types a validator can apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppliesTo {
    /// `string`, `datetime` and `date`.
    Text,
    /// Any type but `object` and `array`.
    Scalar,
    /// `integer` and `number`.
    Number,
    /// The text types and `array`.
    TextOrArray,
}

impl AppliesTo {
    /// Whether a field of this declared type can have the validator.
    pub fn fits(self, t: FieldType) -> bool {
        match self {
            AppliesTo::Text => t.is_textual(),
            AppliesTo::Scalar => !matches!(t, FieldType::Object | FieldType::Array),
            AppliesTo::Number => t.is_numeric(),
            AppliesTo::TextOrArray => t.is_textual() || t == FieldType::Array,
        }
    }

    /// As messages say it: "it checks strings and arrays".
    pub fn describe(self) -> &'static str {
        match self {
            AppliesTo::Text => "strings (types string, datetime, date)",
            AppliesTo::Scalar => "strings, numbers and booleans",
            AppliesTo::Number => "integers and numbers",
            AppliesTo::TextOrArray => "strings and arrays",
        }
    }

    /// As the reference's table says it.
    pub fn reference(self) -> &'static str {
        match self {
            AppliesTo::Text => "text types",
            AppliesTo::Scalar => "scalars",
            AppliesTo::Number => "integer, number",
            AppliesTo::TextOrArray => "text types, array",
        }
    }
}

/// One built-in validator.
#[derive(Debug)]
pub struct ValidatorDoc {
    /// The validator's name in a `validate:` list.
    pub name: &'static str,
    /// How its argument is written.
    pub argument: Argument,
    /// The types of field it applies to.
    pub applies_to: AppliesTo,
    /// What passes.
    pub summary: &'static str,
    /// The step as a mapping writes it in a `validate:` list (`length: {min: 3}`) …
    pub example: &'static str,
    /// … a value that passes (JSON; the example's field has this value's type) …
    pub example_passes: &'static str,
    /// … and one that fails, with an error named after the validator.
    pub example_fails: &'static str,
}

const BOUNDS: Argument = Argument::Keys { keys: &[optional("min", "N"), optional("max", "N")], at_least_one: true };

/// A validator without an argument that checks text.
const fn text_check(
    name: &'static str,
    summary: &'static str,
    passes: &'static str,
    fails: &'static str,
) -> ValidatorDoc {
    ValidatorDoc {
        name,
        argument: Argument::None,
        applies_to: AppliesTo::Text,
        summary,
        example: name,
        example_passes: passes,
        example_fails: fails,
    }
}

/// Every built-in validator, in the reference's order (which is also the order the unknown-name
/// message lists them in).
pub const CATALOGUE: &[ValidatorDoc] = &[
    ValidatorDoc {
        name: "pattern",
        argument: Argument::Value { written: "REGEX", what: "a string" },
        applies_to: AppliesTo::Text,
        summary: "Rust regex, unanchored `is_match` (anchor it yourself: `'^[A-Z]{2}$'`)",
        example: r"pattern: '^[A-Z]{2}-\d{3}$'",
        example_passes: r#""AB-123""#,
        example_fails: r#""ab-123""#,
    },
    ValidatorDoc {
        name: "one_of",
        argument: Argument::Value { written: "[values]", what: "a list" },
        applies_to: AppliesTo::Scalar,
        summary: "JSON equality (`1` equals `1.0`); values must fit the field's type",
        example: "one_of: [CREATED, PAID]",
        example_passes: r#""PAID""#,
        example_fails: r#""LOST""#,
    },
    ValidatorDoc {
        name: "range",
        argument: BOUNDS,
        applies_to: AppliesTo::Number,
        summary: "inclusive; exact for 64-bit integers",
        example: "range: {min: 1, max: 99}",
        example_passes: "99",
        example_fails: "100",
    },
    ValidatorDoc {
        name: "length",
        argument: BOUNDS,
        applies_to: AppliesTo::TextOrArray,
        summary: "characters of strings, items of arrays, inclusive",
        example: "length: {min: 3, max: 20}",
        example_passes: r#""fine""#,
        example_fails: r#""no""#,
    },
    text_check(
        "email",
        "`local@domain.tld`, ASCII, the pragmatic form a sign-up form accepts",
        r#""ana@example.com""#,
        r#""ana@""#,
    ),
    text_check(
        "uuid",
        "canonical 8-4-4-4-12 hex, any version, either case",
        r#""3f1c2a9e-8b7d-4c6e-9f00-1a2b3c4d5e6f""#,
        r#""3f1c2a9e""#,
    ),
    text_check("datetime", "RFC 3339", r#""2026-11-01T10:01:00-03:00""#, r#""yesterday""#),
    text_check("date", "`YYYY-MM-DD`", r#""1990-04-12""#, r#""1990-13-01""#),
    text_check(
        "cpf",
        "11 digits, check digits must match, all-same-digit refused; `.` `-` `/` punctuation allowed",
        r#""529.982.247-25""#,
        r#""529.982.247-26""#,
    ),
    text_check(
        "cnpj",
        "14 characters with check digits — numeric **and the alphanumeric CNPJ** Receita Federal issues from July 2026 (`12.ABC.345/01DE-35`)",
        r#""12.ABC.345/01DE-35""#,
        r#""11222333000182""#,
    ),
    text_check("cep", "8 digits, optionally `12345-678`", r#""01310-200""#, r#""1310-200""#),
    text_check(
        "country",
        "an assigned ISO 3166-1 alpha-2 code in upper case (`BR`); user-assigned codes such as `XK` (Kosovo) fail",
        r#""BR""#,
        r#""br""#,
    ),
    text_check(
        "currency",
        "a code of ISO 4217 list one in upper case (`BRL`): currencies, funds (`USN`), precious metals (`XAU`) and the special `XDR`, `XTS`, `XXX`; withdrawn codes (`DEM`, `HRK`) fail",
        r#""BRL""#,
        r#""DEM""#,
    ),
    text_check(
        "e164",
        r"an E.164 phone number as sent, `^\+[1-9]\d{7,14}$`: `+`, then 8 to 15 ASCII digits, no spaces or punctuation",
        r#""+5511987654321""#,
        r#""+55 11 98765-4321""#,
    ),
    text_check(
        "iban",
        "ISO 13616: a country in the IBAN registry, that country's length and format, mod-97 check digits; electronic (`DE89370400440532013000`) or print form (`DE89 3704 0044 0532 0130 00`, one space every four characters); country code in upper case",
        r#""DE89 3704 0044 0532 0130 00""#,
        r#""DE88370400440532013000""#,
    ),
    text_check(
        "luhn",
        "ASCII digits only, at least 2, the last a Luhn check digit (payment cards, IMEIs); spaces and hyphens fail, so remove them with `digits_only` first",
        r#""4111111111111111""#,
        r#""4111 1111 1111 1111""#,
    ),
    text_check(
        "timezone",
        "an IANA time zone name spelt as the tz database spells it, case included (`America/Sao_Paulo`, `UTC`): the names the zone transforms and functions accept",
        r#""America/Sao_Paulo""#,
        r#""america/sao_paulo""#,
    ),
];

/// The validator a name calls.
pub fn find(name: &str) -> Option<&'static ValidatorDoc> {
    CATALOGUE.iter().find(|v| v.name == name)
}

/// Every validator's name, in the catalogue's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|v| v.name)
}

/// The reference's table of validators, as docs/mapping-spec.md holds it.
pub fn reference_table() -> String {
    let mut table = String::from(
        "| validator | argument | applies to | accepts | example: passes, fails |\n|---|---|---|---|---|\n",
    );
    for v in CATALOGUE {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {}: {} passes, {} fails |\n",
            v.name,
            v.argument.reference(),
            v.applies_to.reference(),
            v.summary,
            code(v.example),
            code(v.example_passes),
            code(v.example_fails)
        ));
    }
    table
}
