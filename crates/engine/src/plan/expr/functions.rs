//! The catalogue of built-in functions: each described once — its parameters and what they take,
//! which must be written as literals, what it gives, a one-line summary and an example.
//!
//! The checker's arity and argument checks, the "did you mean" of an unknown name and the
//! reference's function table (docs/mapping-spec.md, held to this by a test) all come from here;
//! what a function does at run time lives with the evaluator ([`super::eval`]).

use super::code::Ty;

/// What an argument may be, as the checker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// Any value.
    Any,
    /// A string or a date (text).
    Text,
    /// An integer.
    Int,
    /// An integer, a float, a number or a decimal.
    Number,
    /// A number, or text that is parsed as one.
    NumberOrText,
    /// A list.
    List,
    /// A string or a list.
    TextOrList,
    /// A datetime field or `timestamp(…)`, or an RFC 3339 string.
    Instant,
    /// A lookup key: a string, an integer, a boolean or a number.
    Key,
    /// A boolean condition.
    Bool,
}

impl Takes {
    /// Whether a value of type `ty` may be passed.
    pub fn accepts(self, ty: &Ty) -> bool {
        let any_of = |tys: &[Ty]| tys.iter().any(|t| t.fits(ty));
        match self {
            Takes::Any => true,
            Takes::Text => any_of(&[Ty::String, Ty::Date]),
            Takes::Int => any_of(&[Ty::Int]),
            Takes::Number => any_of(&[Ty::Int, Ty::Double, Ty::Number, Ty::Decimal]),
            Takes::NumberOrText => any_of(&[Ty::Int, Ty::Double, Ty::Number, Ty::Decimal, Ty::String]),
            Takes::List => matches!(ty, Ty::List(_) | Ty::Dyn | Ty::Null),
            Takes::TextOrList => matches!(ty, Ty::String | Ty::Date | Ty::List(_) | Ty::Dyn | Ty::Null),
            Takes::Instant => any_of(&[Ty::String, Ty::Timestamp]),
            Takes::Key => any_of(&[Ty::String, Ty::Int, Ty::Bool, Ty::Number]),
            Takes::Bool => any_of(&[Ty::Bool]),
        }
    }

    /// What it takes, as messages and the reference say it.
    pub fn describe(self) -> &'static str {
        match self {
            Takes::Any => "any value",
            Takes::Text => "a string",
            Takes::Int => "an integer",
            Takes::Number => "a number",
            Takes::NumberOrText => "a number or a string",
            Takes::List => "a list",
            Takes::TextOrList => "a string or a list",
            Takes::Instant => "a datetime or an RFC 3339 string",
            Takes::Key => "a string, integer or boolean key",
            Takes::Bool => "a boolean",
        }
    }
}

/// How an argument must be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Any expression.
    Value,
    /// A literal, still passed at run time (`round`'s places).
    Literal,
    /// A literal the compiler consumes: a table name, a regex, a key reference, a pattern, a
    /// rounding mode. It is checked once at load and costs nothing per record.
    Constant,
}

/// One parameter of a built-in function.
#[derive(Debug)]
pub struct Param {
    /// Its name, as the reference shows it.
    pub name: &'static str,
    /// What it takes.
    pub takes: Takes,
    /// How it must be written.
    pub form: Form,
    /// Whether it may be left out.
    pub optional: bool,
    /// The last parameter may repeat (`coalesce(a, b, …)`).
    pub repeats: bool,
}

const fn value(name: &'static str, takes: Takes) -> Param {
    Param { name, takes, form: Form::Value, optional: false, repeats: false }
}
const fn optional(name: &'static str, takes: Takes) -> Param {
    Param { name, takes, form: Form::Value, optional: true, repeats: false }
}
const fn constant(name: &'static str, takes: Takes) -> Param {
    Param { name, takes, form: Form::Constant, optional: false, repeats: false }
}

/// One built-in function.
#[derive(Debug)]
pub struct Function {
    /// Its name in an expression.
    pub name: &'static str,
    /// Other names for the same function (`count` for `size`).
    pub aliases: &'static [&'static str],
    /// Its parameters, in order.
    pub params: &'static [Param],
    /// Only written as a method on a list, with an item name: `items.all(i, …)`.
    pub macro_form: bool,
    /// What it gives, as the reference says it.
    pub gives: &'static str,
    /// What it does, in a sentence.
    pub summary: &'static str,
    /// An expression over the example record of the reference ([`EXAMPLE_RECORD`]) …
    pub example: &'static str,
    /// … and the JSON it gives there.
    pub example_gives: &'static str,
}

impl Function {
    /// How many arguments it takes: at least, at most (`None`: any number).
    pub fn arity(&self) -> (usize, Option<usize>) {
        let least = self.params.iter().filter(|p| !p.optional && !p.repeats).count()
            + usize::from(self.params.iter().any(|p| p.repeats));
        let most = if self.params.iter().any(|p| p.repeats) { None } else { Some(self.params.len()) };
        (least, most)
    }

    /// `name(a, b[, c])`, as the reference writes it.
    pub fn signature(&self) -> String {
        if self.macro_form {
            let [_, item, body] = self.params else { unreachable!("a macro takes a list, an item and a body") };
            return format!("list.{}({}, {})", self.name, item.name, body.name);
        }
        let mut text = format!("{}(", self.name);
        let mut open = 0;
        for (i, p) in self.params.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            if p.optional {
                text.push('[');
                open += 1;
                text.push_str(sep);
            } else {
                text.push_str(sep);
            }
            text.push_str(p.name);
            if p.repeats {
                text.push_str(", …");
            }
        }
        text.push_str(&"]".repeat(open));
        text.push(')');
        text
    }

    /// The parameter argument `i` binds to.
    pub fn param(&self, i: usize) -> Option<&Param> {
        self.params.get(i).or_else(|| self.params.last().filter(|p| p.repeats))
    }
}

/// The record the reference's examples read: the fields an example may name.
pub const EXAMPLE_RECORD: &str = r#"{"name": " Ana Souza ", "email": "Ana@Example.com", "sku": "ab-12", "qty": 3, "price": "12.50", "total_cents": 25990, "weights_g": [10246, 7703], "tags": ["new", "gift"], "at": "2026-11-10T02:30:00Z", "zone": "America/Sao_Paulo", "card": "4111111111111111", "status": null}"#;

/// The fields of [`EXAMPLE_RECORD`] as a mapping declares them.
pub const EXAMPLE_FIELDS: &str = "  - { target: name, source: $.name, type: string }
  - { target: email, source: $.email, type: string }
  - { target: sku, source: $.sku, type: string }
  - { target: qty, source: $.qty, type: integer }
  - { target: price, source: $.price, type: string }
  - { target: total_cents, source: $.total_cents, type: integer }
  - { target: weights_g, source: $.weights_g, type: array }
  - { target: tags, source: $.tags, type: array }
  - { target: at, source: $.at, type: datetime }
  - { target: zone, source: $.zone, type: string }
  - { target: card, source: $.card, type: string }
  - { target: status, source: $.status, type: string }
";

use Takes::{Any, Bool, Instant, Int, Key, List, Number, NumberOrText, Text, TextOrList};

/// Every built-in function, in the reference's order.
pub const CATALOGUE: &[Function] = &[
    Function {
        name: "has",
        aliases: &[],
        params: &[value("field", Any)],
        macro_form: false,
        gives: "boolean",
        summary: "whether a field or path is present (not null)",
        example: "has(status)",
        example_gives: "false",
    },
    Function {
        name: "size",
        aliases: &["count"],
        params: &[value("x", TextOrList)],
        macro_form: false,
        gives: "integer",
        summary: "characters of a string, items of a list",
        example: "size(name)",
        example_gives: "11",
    },
    Function {
        name: "coalesce",
        aliases: &[],
        params: &[value("a", Any), Param { name: "b", takes: Any, form: Form::Value, optional: false, repeats: true }],
        macro_form: false,
        gives: "the arguments' type",
        summary: "the first argument that is not null",
        example: "coalesce(status, \"NEW\")",
        example_gives: "\"NEW\"",
    },
    Function {
        name: "string",
        aliases: &[],
        params: &[value("x", Any)],
        macro_form: false,
        gives: "string",
        summary: "the value's text (numbers and booleans as JSON writes them, decimals exactly)",
        example: "string(qty)",
        example_gives: "\"3\"",
    },
    Function {
        name: "int",
        aliases: &[],
        params: &[value("x", NumberOrText)],
        macro_form: false,
        gives: "integer",
        summary: "an integer: a float or a decimal truncated, text parsed; beyond 64 bits is an error",
        example: "int(\"42\") + qty",
        example_gives: "45",
    },
    Function {
        name: "double",
        aliases: &[],
        params: &[value("x", NumberOrText)],
        macro_form: false,
        gives: "float",
        summary: "a float",
        example: "double(qty) / 2.0",
        example_gives: "1.5",
    },
    Function {
        name: "decimal",
        aliases: &[],
        params: &[value("x", NumberOrText)],
        macro_form: false,
        gives: "decimal",
        summary: "an exact decimal from an integer, a float (its shortest text) or a numeric string; a value a decimal cannot hold exactly (more than 28 digits after the point, or beyond 96 bits) is an error, never rounded",
        example: "decimal(price) * qty",
        example_gives: "\"37.50\"",
    },
    Function {
        name: "round",
        aliases: &[],
        params: &[
            value("d", NumberOrText),
            Param { name: "places", takes: Int, form: Form::Literal, optional: false, repeats: false },
            Param { name: "mode", takes: Text, form: Form::Constant, optional: true, repeats: false },
        ],
        macro_form: false,
        gives: "decimal",
        summary: "a decimal with exactly `places` (0–28) digits after the point; modes `half_even` (default), `half_up`, `half_down`, `down`, `up`, `floor`, `ceiling`",
        example: "round(decimal(total_cents) / 100, 1, \"half_up\")",
        example_gives: "\"259.9\"",
    },
    Function {
        name: "abs",
        aliases: &[],
        params: &[value("x", Number)],
        macro_form: false,
        gives: "the argument's type",
        summary: "absolute value",
        example: "abs(qty - 5)",
        example_gives: "2",
    },
    Function {
        name: "timestamp",
        aliases: &[],
        params: &[value("s", Instant)],
        macro_form: false,
        gives: "datetime",
        summary: "an instant from an RFC 3339 string, compared as an instant",
        example: "timestamp(\"2026-11-09T23:30:00-03:00\") == at",
        example_gives: "true",
    },
    Function {
        name: "local_date",
        aliases: &[],
        params: &[value("instant", Instant), value("zone", Text)],
        macro_form: false,
        gives: "date",
        summary: "the calendar day (`YYYY-MM-DD`) the instant falls on in an IANA time zone",
        example: "local_date(at, \"America/Sao_Paulo\")",
        example_gives: "\"2026-11-09\"",
    },
    Function {
        name: "local_time",
        aliases: &[],
        params: &[value("instant", Instant), value("zone", Text)],
        macro_form: false,
        gives: "string",
        summary: "the wall-clock time (`HH:MM:SS`) of the instant in an IANA time zone",
        example: "local_time(at, zone)",
        example_gives: "\"23:30:00\"",
    },
    Function {
        name: "local_datetime",
        aliases: &[],
        params: &[value("instant", Instant), value("zone", Text)],
        macro_form: false,
        gives: "string",
        summary: "the instant as RFC 3339 text with the zone's offset at that instant",
        example: "local_datetime(at, \"Asia/Tokyo\")",
        example_gives: "\"2026-11-10T11:30:00+09:00\"",
    },
    Function {
        name: "format_datetime",
        aliases: &[],
        params: &[value("instant", Instant), constant("pattern", Text), value("zone", Text)],
        macro_form: false,
        gives: "string",
        summary: "the instant in a [strftime pattern](https://docs.rs/chrono/latest/chrono/format/strftime/) (checked at load) in an IANA time zone",
        example: "format_datetime(at, \"%d/%m/%Y %H:%M\", \"Europe/Berlin\")",
        example_gives: "\"10/11/2026 03:30\"",
    },
    Function {
        name: "lower",
        aliases: &[],
        params: &[value("s", Text)],
        macro_form: false,
        gives: "string",
        summary: "lower case (Unicode), as the `lowercase` transform",
        example: "lower(email)",
        example_gives: "\"ana@example.com\"",
    },
    Function {
        name: "upper",
        aliases: &[],
        params: &[value("s", Text)],
        macro_form: false,
        gives: "string",
        summary: "upper case (Unicode), as the `uppercase` transform",
        example: "upper(sku)",
        example_gives: "\"AB-12\"",
    },
    Function {
        name: "trim",
        aliases: &[],
        params: &[value("s", Text)],
        macro_form: false,
        gives: "string",
        summary: "without white space (Unicode) at either end, as the `trim` transform",
        example: "trim(name)",
        example_gives: "\"Ana Souza\"",
    },
    Function {
        name: "split",
        aliases: &[],
        params: &[value("s", Text), value("sep", Text)],
        macro_form: false,
        gives: "list of strings",
        summary: "the parts of `s` between each `sep`",
        example: "split(sku, \"-\")",
        example_gives: "[\"ab\", \"12\"]",
    },
    Function {
        name: "join",
        aliases: &[],
        params: &[value("list", List), optional("sep", Text)],
        macro_form: false,
        gives: "string",
        summary: "one string of the items (scalars as their text), `sep` between them",
        example: "join(tags, \"+\")",
        example_gives: "\"new+gift\"",
    },
    Function {
        name: "substring",
        aliases: &[],
        params: &[value("s", Text), value("start", Int), optional("end", Int)],
        macro_form: false,
        gives: "string",
        summary: "characters `start` to `end` (0-based; out of range is an error)",
        example: "substring(sku, 3)",
        example_gives: "\"12\"",
    },
    Function {
        name: "pad_left",
        aliases: &[],
        params: &[value("s", Text), value("width", Int), optional("fill", Text)],
        macro_form: false,
        gives: "string",
        summary: "padded on the left to `width` characters with `fill` (one character; default a space)",
        example: "pad_left(string(qty), 4, \"0\")",
        example_gives: "\"0003\"",
    },
    Function {
        name: "pad_right",
        aliases: &[],
        params: &[value("s", Text), value("width", Int), optional("fill", Text)],
        macro_form: false,
        gives: "string",
        summary: "padded on the right to `width` characters with `fill` (one character; default a space)",
        example: "pad_right(sku, 6, \".\")",
        example_gives: "\"ab-12.\"",
    },
    Function {
        name: "startsWith",
        aliases: &[],
        params: &[value("s", Text), value("prefix", Text)],
        macro_form: false,
        gives: "boolean",
        summary: "whether `s` starts with `prefix`",
        example: "sku.startsWith(\"ab\")",
        example_gives: "true",
    },
    Function {
        name: "endsWith",
        aliases: &[],
        params: &[value("s", Text), value("suffix", Text)],
        macro_form: false,
        gives: "boolean",
        summary: "whether `s` ends with `suffix`",
        example: "email.endsWith(\".com\")",
        example_gives: "true",
    },
    Function {
        name: "contains",
        aliases: &[],
        params: &[value("s", Text), value("part", Text)],
        macro_form: false,
        gives: "boolean",
        summary: "whether `part` occurs in `s`",
        example: "contains(email, \"@\")",
        example_gives: "true",
    },
    Function {
        name: "matches",
        aliases: &[],
        params: &[value("s", Text), constant("regex", Text)],
        macro_form: false,
        gives: "boolean",
        summary: "whether the regex (a literal, compiled once at load) matches anywhere in `s`",
        example: "matches(sku, \"^[a-z]{2}-[0-9]+$\")",
        example_gives: "true",
    },
    Function {
        name: "replace",
        aliases: &[],
        params: &[value("s", Text), value("from", Text), value("to", Text)],
        macro_form: false,
        gives: "string",
        summary: "every `from` (plain text) replaced by `to`",
        example: "replace(sku, \"-\", \"\")",
        example_gives: "\"ab12\"",
    },
    Function {
        name: "mask",
        aliases: &[],
        params: &[value("s", Text), value("first", Int), value("last", Int), optional("char", Text)],
        macro_form: false,
        gives: "string",
        summary: "keeps the first and last characters and hides the rest, as the `mask` transform",
        example: "mask(card, 0, 4)",
        example_gives: "\"************1111\"",
    },
    Function {
        name: "sha256",
        aliases: &[],
        params: &[value("s", Text)],
        macro_form: false,
        gives: "string",
        summary: "lower-case hex SHA-256 of the text's UTF-8 bytes, as the `sha256` transform",
        example: "sha256(\"abc\")",
        example_gives: "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"",
    },
    Function {
        name: "hmac_sha256",
        aliases: &[],
        params: &[value("s", Text), constant("key", Text)],
        macro_form: false,
        gives: "string",
        summary: "lower-case hex HMAC-SHA256 with the key a reference names (`\"env://NAME\"`: environment variable `NAME`), read once at load; the key never goes in the file",
        example: "size(hmac_sha256(email, \"env://DOC_EXAMPLE_HMAC_KEY\"))",
        example_gives: "64",
    },
    Function {
        name: "lookup",
        aliases: &[],
        params: &[constant("table", Text), value("key", Key)],
        macro_form: false,
        gives: "the table's values' type",
        summary: "the table's value for the key's text, else its default, else null ([Lookups](#lookups))",
        example: "lookup(\"example_sizes\", qty)",
        example_gives: "\"M\"",
    },
    Function {
        name: "sum",
        aliases: &[],
        params: &[value("list", List)],
        macro_form: false,
        gives: "the items' type",
        summary: "the sum of a list of numbers (nulls ignored; `sum([])` is 0)",
        example: "sum(weights_g)",
        example_gives: "17949",
    },
    Function {
        name: "min",
        aliases: &[],
        params: &[value("list", List)],
        macro_form: false,
        gives: "the items' type",
        summary: "the least item of a list of numbers, strings, dates or datetimes (nulls ignored; `min([])` is null)",
        example: "min(weights_g)",
        example_gives: "7703",
    },
    Function {
        name: "max",
        aliases: &[],
        params: &[value("list", List)],
        macro_form: false,
        gives: "the items' type",
        summary: "the greatest item, as `min`",
        example: "max([decimal(price), decimal(\"9.99\")])",
        example_gives: "\"12.50\"",
    },
    Function {
        name: "all",
        aliases: &[],
        params: &[value("list", List), value("item", Any), value("condition", Bool)],
        macro_form: true,
        gives: "boolean",
        summary: "whether every item satisfies the condition",
        example: "weights_g.all(w, w > 0)",
        example_gives: "true",
    },
    Function {
        name: "exists",
        aliases: &["any"],
        params: &[value("list", List), value("item", Any), value("condition", Bool)],
        macro_form: true,
        gives: "boolean",
        summary: "whether some item satisfies the condition (also written `any`)",
        example: "tags.exists(t, t == \"gift\")",
        example_gives: "true",
    },
    Function {
        name: "map",
        aliases: &[],
        params: &[value("list", List), value("item", Any), value("value", Any)],
        macro_form: true,
        gives: "list",
        summary: "a list of the expression's value for each item",
        example: "weights_g.map(w, w / 1000)",
        example_gives: "[10, 7]",
    },
    Function {
        name: "filter",
        aliases: &[],
        params: &[value("list", List), value("item", Any), value("condition", Bool)],
        macro_form: true,
        gives: "list",
        summary: "the items that satisfy the condition",
        example: "weights_g.filter(w, w > 8000)",
        example_gives: "[10246]",
    },
];

/// The function a name (or an alias) calls.
pub fn find(name: &str) -> Option<&'static Function> {
    CATALOGUE.iter().find(|f| f.name == name || f.aliases.contains(&name))
}

/// Every name a call can use, aliases included: for suggestions and the schema.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
}

/// The reference's table of functions, as docs/mapping-spec.md holds it.
pub fn reference_table() -> String {
    let mut table = String::from("| function | gives | what | example → result |\n|---|---|---|---|\n");
    for f in CATALOGUE {
        let mut names = format!("`{}`", f.signature());
        for alias in f.aliases {
            names.push_str(&format!(" (`{alias}`)"));
        }
        table.push_str(&format!(
            "| {names} | {} | {} | `{}` → `{}` |\n",
            f.gives,
            f.summary,
            f.example.replace('|', "\\|"),
            f.example_gives
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_signatures_read_as_the_reference_writes_them() {
        let all: Vec<&str> = names().collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(all.len(), unique.len(), "a name is described twice");
        assert_eq!(find("round").unwrap().signature(), "round(d, places[, mode])");
        assert_eq!(find("coalesce").unwrap().signature(), "coalesce(a, b, …)");
        assert_eq!(find("any").unwrap().signature(), "list.exists(item, condition)");
        assert_eq!(find("mask").unwrap().arity(), (3, Some(4)));
        assert_eq!(find("coalesce").unwrap().arity(), (2, None));
    }
}
