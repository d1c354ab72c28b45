//! The compiled form of expressions: static types, code nodes, built-in functions, lookup tables.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use super::syntax;
use crate::plan::json::CodeTable;

/// A static type, as the checker follows it through an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// `null`.
    Null,
    /// A boolean.
    Bool,
    /// A 64-bit integer.
    Int,
    /// A float.
    Double,
    /// A JSON number of a `type: number` field: an integer or a float.
    Number,
    /// An exact decimal.
    Decimal,
    /// Text.
    String,
    /// A `datetime` field or `timestamp(…)`: compared as instants.
    Timestamp,
    /// A `date` field: `YYYY-MM-DD` text, compared as text (which orders days).
    Date,
    /// A list of values of one type.
    List(Box<Ty>),
    /// One object of an `items:` field.
    Row(Arc<RowShape>),
    /// Known only at run time (`type: any`, `object`, a `$` path).
    Dyn,
}

/// What the compiler knows a string field's values can be, to warn about comparisons that can
/// never hold (`status == "declined"` when `status` is upper-cased, or checked `one_of`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Domain {
    /// The field's unconditional `one_of` list, when every value is a string.
    pub one_of: Option<Vec<String>>,
    /// `Some(true)` when its last transform upper-cases, `Some(false)` when it lower-cases.
    pub upper: Option<bool>,
}

impl Domain {
    /// Why `value` can never be this field's value, if it cannot.
    pub fn excludes(&self, value: &str) -> Option<String> {
        if let Some(list) = &self.one_of
            && !list.iter().any(|v| v == value)
        {
            return Some(format!("it is checked `one_of` [{}]", list.join(", ")));
        }
        match self.upper {
            Some(true) if value.chars().any(char::is_lowercase) => Some("it is upper-cased".into()),
            Some(false) if value.chars().any(char::is_uppercase) => Some("it is lower-cased".into()),
            _ => None,
        }
    }
}

/// The fields of an `items:` field's objects, by name.
#[derive(Debug, PartialEq)]
pub struct RowShape {
    /// Each field's name and type, in spec order.
    pub fields: Vec<(String, Ty)>,
}

impl Ty {
    /// The type as messages name it (`an integer`, `a list of strings`).
    pub fn name(&self) -> String {
        match self {
            Ty::Null => "null".into(),
            Ty::Bool => "a boolean".into(),
            Ty::Int => "an integer".into(),
            Ty::Double => "a float".into(),
            Ty::Number => "a number".into(),
            Ty::Decimal => "a decimal".into(),
            Ty::String => "a string".into(),
            Ty::Timestamp => "a datetime".into(),
            Ty::Date => "a date".into(),
            Ty::List(item) if **item == Ty::Dyn => "a list".into(),
            Ty::List(item) => format!("a list of {}", plural(item)),
            Ty::Row(_) => "an item object".into(),
            Ty::Dyn => "any value".into(),
        }
    }

    /// Whether it is one of the number types.
    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Double | Ty::Number | Ty::Decimal)
    }

    /// Whether a value of this type may be of type `other` (one is `Dyn`, or they agree).
    pub fn fits(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
            (Ty::Number, t) | (t, Ty::Number) => matches!(t, Ty::Int | Ty::Double | Ty::Number),
            (Ty::List(a), Ty::List(b)) => a.fits(b),
            (Ty::Row(a), Ty::Row(b)) => Arc::ptr_eq(a, b),
            (a, b) => a == b,
        }
    }
}

fn plural(item: &Ty) -> String {
    match item {
        Ty::Int => "integers".into(),
        Ty::String => "strings".into(),
        Ty::Decimal => "decimals".into(),
        Ty::Row(_) => "item objects".into(),
        other => format!("values of {}", other.name()),
    }
}

/// A `lookups:` table: codes to values, with an optional default.
#[derive(Debug)]
pub struct LookupTable {
    /// Its name under `lookups:`, for messages.
    pub name: String,
    /// Codes and their values.
    pub values: CodeTable,
    /// The value of a code the table does not hold, if any.
    pub default: Option<Value>,
    /// The type every value (and the default) shares, or `Dyn`.
    pub ty: Ty,
}

/// How `round()` and `to_decimal` round, by CEL-ish names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// To the nearest; a tie to the even neighbour.
    HalfEven,
    /// To the nearest; a tie away from zero.
    HalfUp,
    /// To the nearest; a tie toward zero.
    HalfDown,
    /// Toward zero.
    Down,
    /// Away from zero.
    Up,
    /// Toward negative infinity.
    Floor,
    /// Toward positive infinity.
    Ceiling,
}

impl Rounding {
    /// The modes as a mapping writes them.
    pub const NAMES: &'static [&'static str] = &["half_even", "half_up", "half_down", "down", "up", "floor", "ceiling"];

    /// The mode a mapping names, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "half_even" => Rounding::HalfEven,
            "half_up" => Rounding::HalfUp,
            "half_down" => Rounding::HalfDown,
            "down" => Rounding::Down,
            "up" => Rounding::Up,
            "floor" => Rounding::Floor,
            "ceiling" => Rounding::Ceiling,
            _ => return None,
        })
    }

    /// The same mode as `rust_decimal` names it.
    pub fn strategy(self) -> rust_decimal::RoundingStrategy {
        use rust_decimal::RoundingStrategy as S;
        match self {
            Rounding::HalfEven => S::MidpointNearestEven,
            Rounding::HalfUp => S::MidpointAwayFromZero,
            Rounding::HalfDown => S::MidpointTowardZero,
            Rounding::Down => S::ToZero,
            Rounding::Up => S::AwayFromZero,
            Rounding::Floor => S::ToNegativeInfinity,
            Rounding::Ceiling => S::ToPositiveInfinity,
        }
    }
}

/// `d` with exactly `places` digits after the point (rounded, or padded with zeros), or `None`
/// when that does not fit a decimal.
pub fn rescale(d: Decimal, places: u32, rounding: Rounding) -> Option<Decimal> {
    let r = d.round_dp_with_strategy(places, rounding.strategy());
    if r.scale() >= places {
        return Some(r);
    }
    // Padding multiplies the mantissa, never past what a decimal holds (`Decimal::rescale` would
    // silently lose digits past 28). Not with `checked_mul`: a zero times ten is a zero without
    // places, and `0.00` could never be given three.
    let mantissa = r.mantissa().checked_mul(10_i128.checked_pow(places - r.scale())?)?;
    Decimal::try_from_i128_with_scale(mantissa, places).ok()
}

/// A compiled expression node. Names are already resolved to indexes.
#[derive(Debug)]
pub enum Code {
    /// A constant.
    Const(Lit),
    /// A field of the scope (a target), by index.
    Field(usize),
    /// A value stored as text in a field's state but typed otherwise for its readers (a computed
    /// decimal, a datetime), turned back into that type as it is read.
    Typed(Box<Code>, Reading),
    /// A `$` path: an extractor slot.
    Slot(usize),
    /// A macro variable, by nesting depth.
    Local(usize),
    /// A field of an item object, by index.
    RowField(Box<Code>, usize),
    /// `x.name` on a value known only at run time (an object).
    Member(Box<Code>, String),
    /// `list[i]` or `object[key]`.
    Index(Box<Code>, Box<Code>),
    /// `!x`.
    Not(Box<Code>),
    /// `-x`.
    Neg(Box<Code>),
    /// `a && b`.
    And(Box<Code>, Box<Code>),
    /// `a || b`.
    Or(Box<Code>, Box<Code>),
    /// `c ? a : b`.
    Cond(Box<Code>, Box<Code>, Box<Code>),
    /// An arithmetic or comparison operator.
    Binary(syntax::BinaryOp, Box<Code>, Box<Code>),
    /// A list literal.
    List(Vec<Code>),
    /// `has(x)`: whether a value is present (not null).
    Has(Box<Code>),
    /// A built-in function with its arguments.
    Call(Func, Vec<Code>),
    /// `list.all(x, p)` and friends: `body` sees the item as `Local(depth)`.
    Macro {
        /// Which macro.
        kind: MacroKind,
        /// The list it runs over.
        list: Box<Code>,
        /// The nesting depth of its item variable.
        depth: usize,
        /// What it computes for each item.
        body: Box<Code>,
    },
}

/// How a field's stored value becomes the type its readers were checked against. A field's
/// state holds what will be written (a decimal as its exact text, a datetime as RFC 3339);
/// every expression that reads it sees the number or the instant, so `a_kg >= b_kg` compares
/// numbers, not text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    /// A decimal kept as its exact text.
    Decimal,
    /// A datetime kept as RFC 3339 text.
    Instant,
    /// Each item of a list.
    Items(Box<Reading>),
}

impl Reading {
    /// The reading a value of static type `ty` needs, if its stored form is not already it.
    pub fn of(ty: &Ty) -> Option<Reading> {
        match ty {
            Ty::Decimal => Some(Reading::Decimal),
            Ty::Timestamp => Some(Reading::Instant),
            Ty::List(item) => Reading::of(item).map(|r| Reading::Items(Box::new(r))),
            _ => None,
        }
    }

    /// `code`, read as `ty`.
    pub fn wrap(code: Code, ty: &Ty) -> Code {
        match Reading::of(ty) {
            Some(reading) => Code::Typed(Box::new(code), reading),
            None => code,
        }
    }
}

/// A constant, owned by the plan.
#[derive(Debug, Clone)]
pub enum Lit {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A string.
    Str(String),
}

/// The list macros: `list.all(x, p)` and the like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacroKind {
    /// `all`: whether `p` holds for every item.
    All,
    /// `exists`: whether `p` holds for any item.
    Exists,
    /// `map`: the list of what the body gives for each item.
    Map,
    /// `filter`: the items for which `p` holds.
    Filter,
}

/// Built-in functions, resolved at compile time (with their constant arguments).
#[derive(Debug)]
pub enum Func {
    /// `size`.
    Size,
    /// `coalesce`.
    Coalesce,
    /// `string`.
    String,
    /// `int`.
    Int,
    /// `double`.
    Double,
    /// `decimal`.
    Decimal,
    /// `timestamp`.
    Timestamp,
    /// `round`, with its rounding mode.
    Round(Rounding),
    /// `abs`.
    Abs,
    /// `lower`.
    Lower,
    /// `upper`.
    Upper,
    /// `trim`.
    Trim,
    /// `split`.
    Split,
    /// `join`.
    Join,
    /// `substring`.
    Substring,
    /// `pad_left`.
    PadLeft,
    /// `pad_right`.
    PadRight,
    /// `starts_with`.
    StartsWith,
    /// `ends_with`.
    EndsWith,
    /// `contains`.
    Contains,
    /// `matches`, with its compiled expression.
    Matches(regex::Regex),
    /// `replace`.
    Replace,
    /// `mask`.
    Mask,
    /// `sha256`.
    Sha256,
    /// `hmac_sha256`, with its key.
    HmacSha256(Arc<[u8]>),
    /// `lookup`, with its table.
    Lookup(Arc<LookupTable>),
    /// `sum`.
    Sum,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// The zone when it was written as a literal (resolved at load); else read per record.
    LocalDate(Option<chrono_tz::Tz>),
    /// `local_time`; the zone as for `LocalDate`.
    LocalTime(Option<chrono_tz::Tz>),
    /// `local_datetime`; the zone as for `LocalDate`.
    LocalDatetime(Option<chrono_tz::Tz>),
    /// `format_datetime`, with its pattern; the zone as for `LocalDate`.
    FormatDatetime(DatetimePattern, Option<chrono_tz::Tz>),
}

/// A strftime pattern, parsed once at load.
#[derive(Debug)]
pub struct DatetimePattern(Vec<chrono::format::Item<'static>>);

/// The most characters a datetime pattern may have. Real patterns have a few dozen; each
/// specifier becomes items held with the plan and text written for every record, so a pattern of
/// millions would hold gigabytes from load on.
pub const MAX_DATETIME_PATTERN_CHARS: usize = 256;

impl DatetimePattern {
    /// Parses `pattern`, or says why it cannot be used.
    pub fn compile(pattern: &str) -> Result<DatetimePattern, String> {
        let chars = pattern.chars().count();
        if chars > MAX_DATETIME_PATTERN_CHARS {
            return Err(format!(
                "the datetime pattern has {chars} characters; a pattern has at most {MAX_DATETIME_PATTERN_CHARS}"
            ));
        }
        let items = chrono::format::StrftimeItems::new(pattern).parse_to_owned().map_err(|_| {
            format!("invalid datetime pattern {pattern:?}: see the strftime specifiers (`%Y-%m-%d %H:%M`)")
        })?;
        // A few specifiers are for reading text only (`%#z`) and fail whatever instant is written:
        // written once here, such a pattern is refused at load instead of failing every record.
        let probe = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH.with_timezone(&chrono_tz::Tz::UTC);
        let mut written = String::new();
        if std::fmt::Write::write_fmt(&mut written, format_args!("{}", probe.format_with_items(items.iter()))).is_err()
        {
            return Err(format!(
                "datetime pattern {pattern:?} cannot be written: a specifier in it only reads text (like `%#z`); see the strftime specifiers"
            ));
        }
        Ok(DatetimePattern(items))
    }

    /// The pattern's parsed items.
    pub fn items(&self) -> &[chrono::format::Item<'static>] {
        &self.0
    }
}
