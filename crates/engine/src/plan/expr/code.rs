//! The compiled form of expressions: static types, code nodes, built-in functions, lookup tables.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use super::syntax;
use crate::plan::json::CodeTable;

/// A static type, as the checker follows it through an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Null,
    Bool,
    Int,
    Double,
    /// A JSON number of a `type: number` field: an integer or a float.
    Number,
    Decimal,
    String,
    /// A `datetime` field or `timestamp(…)`: compared as instants.
    Timestamp,
    /// A `date` field: `YYYY-MM-DD` text, compared as text (which orders days).
    Date,
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
    pub fields: Vec<(String, Ty)>,
}

impl Ty {
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
    pub values: CodeTable,
    pub default: Option<Value>,
    /// The type every value (and the default) shares, or `Dyn`.
    pub ty: Ty,
}

/// How `round()` and `to_decimal` round, by CEL-ish names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    HalfEven,
    HalfUp,
    HalfDown,
    Down,
    Up,
    Floor,
    Ceiling,
}

impl Rounding {
    pub const NAMES: &'static [&'static str] = &["half_even", "half_up", "half_down", "down", "up", "floor", "ceiling"];

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
    Index(Box<Code>, Box<Code>),
    Not(Box<Code>),
    Neg(Box<Code>),
    And(Box<Code>, Box<Code>),
    Or(Box<Code>, Box<Code>),
    Cond(Box<Code>, Box<Code>, Box<Code>),
    Binary(syntax::BinaryOp, Box<Code>, Box<Code>),
    List(Vec<Code>),
    Has(Box<Code>),
    Call(Func, Vec<Code>),
    /// `list.all(x, p)` and friends: `body` sees the item as `Local(depth)`.
    Macro {
        kind: MacroKind,
        list: Box<Code>,
        depth: usize,
        body: Box<Code>,
    },
}

/// How a field's stored value becomes the type its readers were checked against. A field's
/// state holds what will be written (a decimal as its exact text, a datetime as RFC 3339);
/// every expression that reads it sees the number or the instant, so `a_kg >= b_kg` compares
/// numbers, not text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reading {
    Decimal,
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
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacroKind {
    All,
    Exists,
    Map,
    Filter,
}

/// Built-in functions, resolved at compile time (with their constant arguments).
#[derive(Debug)]
pub enum Func {
    Size,
    Coalesce,
    String,
    Int,
    Double,
    Decimal,
    Timestamp,
    Round(Rounding),
    Abs,
    Lower,
    Upper,
    Trim,
    Split,
    Join,
    Substring,
    PadLeft,
    PadRight,
    StartsWith,
    EndsWith,
    Contains,
    Matches(regex::Regex),
    Replace,
    Mask,
    Sha256,
    HmacSha256(Arc<[u8]>),
    Lookup(Arc<LookupTable>),
    Sum,
    Min,
    Max,
    /// The zone when it was written as a literal (resolved at load); else read per record.
    LocalDate(Option<chrono_tz::Tz>),
    LocalTime(Option<chrono_tz::Tz>),
    LocalDatetime(Option<chrono_tz::Tz>),
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

    pub fn items(&self) -> &[chrono::format::Item<'static>] {
        &self.0
    }
}
