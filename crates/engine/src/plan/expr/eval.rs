//! Running compiled expressions over one record's fields.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use super::code::{Code, Func, Lit, MacroKind, Reading, Rounding, rescale};
use super::syntax::BinaryOp;
use crate::plan::json::json_equal;
use crate::plan::numbers::exact_decimal;
use crate::plan::value::{FieldState, Item, Val};

/// A value while an expression runs. Text and JSON borrow from the record or the plan.
#[derive(Clone, Debug)]
pub enum EVal<'s> {
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// An exact decimal.
    Dec(Decimal),
    /// Text.
    Str(Cow<'s, str>),
    /// An instant.
    Time(DateTime<Utc>),
    /// A list the expression built.
    List(Vec<EVal<'s>>),
    /// An array or object from the record (or a `type: any` field).
    Json(&'s Value),
    /// One object of an `items:` field.
    Row(&'s [FieldState<'s>]),
    /// An `items:` field as read, not yet made a list: `size(items)` needs no list.
    Rows(&'s [Box<[FieldState<'s>]>]),
}

/// An expression that cannot give a value for this record (division by zero, an overflow, a value
/// of the wrong kind where the type was only known at run time).
///
/// A message may quote the record's values (`"x41" is not an integer`); such an error also keeps
/// the same message without them, and [`EvalError::message`] is the one place that chooses
/// between the two. There is deliberately no `Display`: every caller must say whether the value
/// it reports on is sensitive.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalError {
    /// Why there is no value.
    pub kind: EvalErrorKind,
    message: String,
    /// `message` without the record's values, when it quotes any.
    without_values: Option<String>,
}

/// Why an expression gave no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// This record's values: a conversion, an overflow, a value too large.
    Value,
    /// The record used up its evaluation budget ([`Budget`]).
    Budget,
    /// A time zone read from the record is not an IANA name.
    Zone,
}

impl EvalErrorKind {
    /// The rule an error of this kind is reported under, when it is not the expression's own.
    pub fn rule(self) -> Option<&'static str> {
        match self {
            EvalErrorKind::Value => None,
            EvalErrorKind::Budget => Some(crate::plan::outcome::BUDGET_RULE),
            EvalErrorKind::Zone => Some(crate::plan::outcome::ZONE_RULE),
        }
    }
}

impl EvalError {
    /// An error whose message quotes nothing from the record.
    pub fn new(message: impl Into<String>) -> EvalError {
        EvalError { kind: EvalErrorKind::Value, message: message.into(), without_values: None }
    }

    /// An error whose message quotes the record's values, with the message to give instead when
    /// they are sensitive.
    pub fn quoting(message: impl Into<String>, without_values: impl Into<String>) -> EvalError {
        EvalError { kind: EvalErrorKind::Value, message: message.into(), without_values: Some(without_values.into()) }
    }

    /// The message, with the record's values left out when they are sensitive: the one point that
    /// every expression error's text passes through on its way to a fail envelope, a log line,
    /// `process` or `explain`.
    pub fn message(&self, sensitive: bool) -> &str {
        match &self.without_values {
            Some(hidden) if sensitive => hidden,
            _ => &self.message,
        }
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(message))
}

/// [`EvalError::quoting`] as a result.
fn fail_quoting<T>(message: impl Into<String>, without_values: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::quoting(message, without_values))
}

/// The most bytes one text an expression builds may hold, and the most items of one list it
/// builds: a record's values (a width, a count, a string doubled field after field) cannot make
/// one allocation large enough to abort the process. Past them the expression fails for this
/// record, like any other value it cannot compute.
pub const MAX_TEXT_BYTES: usize = 8 * 1024 * 1024;
/// See [`MAX_TEXT_BYTES`].
pub const MAX_LIST_ITEMS: usize = 1_000_000;

fn text_too_long<T>(bytes: usize) -> Result<T, EvalError> {
    fail(format!(
        "the text would be {bytes} bytes long, over the {} MiB an expression may build",
        MAX_TEXT_BYTES / (1024 * 1024)
    ))
}

fn checked_text_len(bytes: Option<usize>) -> Result<usize, EvalError> {
    match bytes {
        Some(n) if n <= MAX_TEXT_BYTES => Ok(n),
        Some(n) => text_too_long(n),
        None => text_too_long(usize::MAX),
    }
}

fn sized<'s>(text: String) -> Result<EVal<'s>, EvalError> {
    checked_text_len(Some(text.len()))?;
    Ok(EVal::Str(Cow::Owned(text)))
}

fn checked_list_len(items: usize) -> Result<(), EvalError> {
    if items > MAX_LIST_ITEMS {
        return fail(format!("the list would have {items} items, over the {MAX_LIST_ITEMS} an expression may build"));
    }
    Ok(())
}

/// How much work one record's expressions may do: a step is an item visited by `all`, `exists`,
/// `map` or `filter` or searched by `in`, a function call, or 64 bytes of text a call reads or
/// builds. Nested macros over one large array are quadratic; the budget turns such a record into
/// a failure (rule `budget`) in bounded time instead of a stalled batch.
#[derive(Debug)]
pub struct Budget {
    left: std::cell::Cell<u64>,
    limit: u64,
    refused: std::cell::Cell<bool>,
}

/// The steps a record may take when the mapping does not say (`limits: { steps: … }`).
pub const DEFAULT_STEPS: u64 = 1_000_000;

impl Budget {
    /// A budget of `limit` steps.
    pub fn new(limit: u64) -> Budget {
        Budget { left: std::cell::Cell::new(limit), limit, refused: std::cell::Cell::new(false) }
    }

    /// Takes `steps` from the budget, or fails once it is spent (and from then on).
    #[inline]
    pub fn spend(&self, steps: u64) -> Result<(), EvalError> {
        match self.left.get().checked_sub(steps) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.left.set(0);
                self.refused.set(true);
                Err(EvalError { kind: EvalErrorKind::Budget, message: self.spent_message(), without_values: None })
            }
        }
    }

    /// Steps taken so far.
    pub fn used(&self) -> u64 {
        self.limit - self.left.get()
    }

    /// Whether a step was refused.
    pub fn spent(&self) -> bool {
        self.refused.get()
    }

    /// The message of an expression refused for want of steps.
    pub fn spent_message(&self) -> String {
        format!("the record's expressions took more than {} steps (the mapping's `limits: {{ steps }}`)", self.limit)
    }
}

/// A field's value read into an expression: a list is copied item by item, and costs its length.
#[inline]
fn read_charged<'s>(v: &'s Val<'s>, env: Env<'s>) -> Result<EVal<'s>, EvalError> {
    if let Val::Matches(items) = v {
        env.budget.spend(items.len() as u64)?;
    } else if let Val::LentMatches(items) = v {
        env.budget.spend(items.len() as u64)?;
    }
    Ok(EVal::read(v))
}

/// What a call built costs: a step per 16 bytes of text, a step per item of a list.
#[inline]
fn built<'s>(v: EVal<'s>, env: Env<'s>) -> Result<EVal<'s>, EvalError> {
    match &v {
        EVal::Str(Cow::Owned(s)) => env.budget.spend(s.len() as u64 / 16)?,
        EVal::List(items) => env.budget.spend(items.len() as u64)?,
        _ => {}
    }
    Ok(v)
}

/// What reading a value costs: a step per 64 bytes of text, a step per item of a list or object.
fn size_steps(v: &EVal<'_>) -> u64 {
    (match v {
        EVal::Str(s) => s.len() / 64,
        EVal::List(items) => items.len(),
        EVal::Json(Value::Array(items)) => items.len(),
        EVal::Json(Value::Object(map)) => map.len(),
        EVal::Rows(rows) => rows.len(),
        _ => 0,
    }) as u64
}

/// What an expression reads: the scope's field states and the extractor's slots.
#[derive(Clone, Copy)]
pub struct Env<'s> {
    /// The states of the scope's fields, by index.
    pub fields: &'s [FieldState<'s>],
    /// The extractor's slots, by index.
    pub slots: &'s [Option<Val<'s>>],
    /// The record's evaluation budget, shared by all its expressions.
    pub budget: &'s Budget,
}

impl<'s> EVal<'s> {
    /// A field's value as an expression sees it.
    pub fn read(value: &'s Val<'s>) -> EVal<'s> {
        match value {
            Val::Raw(s) => EVal::Str(Cow::Borrowed(s)),
            Val::Str(s) => EVal::Str(Cow::Borrowed(s)),
            Val::Json(v) => EVal::from_json(v),
            Val::Written(n) => EVal::from_json(&n.value),
            Val::Matches(items) => EVal::List(items.iter().map(EVal::from_item).collect()),
            Val::LentMatches(items) => EVal::List(items.iter().map(EVal::from_item).collect()),
            Val::MappedItems(rows) => EVal::Rows(&rows.rows),
            // Only in the slot of the `items:` field that maps it, which no expression reads.
            Val::ScannedItems(_) => EVal::Null,
        }
    }

    fn from_item(item: &'s Item<'s>) -> EVal<'s> {
        match item {
            Item::Raw(s) => EVal::Str(Cow::Borrowed(s)),
            Item::Json(v) => EVal::from_json(v),
        }
    }

    /// A JSON value as an expression sees it.
    pub fn from_json(v: &'s Value) -> EVal<'s> {
        match v {
            Value::Null => EVal::Null,
            Value::Bool(b) => EVal::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => EVal::Int(i),
                None => EVal::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => EVal::Str(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => EVal::Json(v),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            EVal::Null => "null",
            EVal::Bool(_) => "a boolean",
            EVal::Int(_) => "an integer",
            EVal::Double(_) => "a float",
            EVal::Dec(_) => "a decimal",
            EVal::Str(_) => "a string",
            EVal::Time(_) => "a datetime",
            EVal::List(_) | EVal::Rows(_) => "a list",
            EVal::Json(Value::Array(_)) => "an array",
            EVal::Json(_) => "an object",
            EVal::Row(_) => "an item object",
        }
    }

    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, EVal::Null)
    }

    /// The value as the JSON it would be written as.
    pub fn to_json(&self) -> Result<Value, EvalError> {
        Ok(match self {
            EVal::Null => Value::Null,
            EVal::Bool(b) => Value::Bool(*b),
            EVal::Int(i) => Value::from(*i),
            EVal::Double(d) => match Number::from_f64(*d) {
                Some(n) => Value::Number(n),
                None => {
                    return fail_quoting(
                        format!("{d} is not a number JSON can hold"),
                        "a float that is not a number JSON can hold",
                    );
                }
            },
            EVal::Dec(d) => Value::String(d.to_string()),
            EVal::Str(s) => Value::String(s.to_string()),
            EVal::Time(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            EVal::List(items) => Value::Array(items.iter().map(EVal::to_json).collect::<Result<_, _>>()?),
            EVal::Json(v) => (*v).clone(),
            EVal::Row(_) | EVal::Rows(_) => return fail("an item object is not a value on its own; take its fields"),
        })
    }

    /// The value for a field's state: `None` for null (the field is absent).
    pub fn into_val(self) -> Result<Option<Val<'static>>, EvalError> {
        Ok(Some(match self {
            EVal::Null => return Ok(None),
            EVal::Str(s) => Val::text(s.into_owned()),
            EVal::Dec(d) => Val::text(d.to_string()),
            EVal::Time(t) => Val::text(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            other => Val::owned(other.to_json()?),
        }))
    }

    /// Text for `string()`, `join()` and lookups.
    fn text(&self) -> Result<Cow<'s, str>, EvalError> {
        Ok(match self {
            EVal::Str(s) => s.clone(),
            EVal::Int(i) => Cow::Owned(itoa::Buffer::new().format(*i).to_owned()),
            EVal::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            other => match other.to_json()? {
                Value::String(s) => Cow::Owned(s),
                v => Cow::Owned(v.to_string()),
            },
        })
    }
}

fn truth(v: &EVal<'_>, what: &str) -> Result<Option<bool>, EvalError> {
    match v {
        EVal::Bool(b) => Ok(Some(*b)),
        EVal::Null => Ok(None),
        other => fail(format!("{what} needs a boolean, found {}", other.kind())),
    }
}

/// What [`Code::quick`] gives: small enough to come back in registers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Quick {
    Int(i64),
    Bool(bool),
    Null,
    /// Not an integer-or-boolean node over plain values, or an error: the general walk decides.
    Slow,
}

impl Quick {
    /// A field's value, when it is an integer, a boolean or null.
    #[inline]
    fn of(value: &Val<'_>) -> Quick {
        let json = match value {
            Val::Json(v) => v.as_ref(),
            // A number kept as the record wrote it (`1.50`) is still that number.
            Val::Written(n) => &n.value,
            _ => return Quick::Slow,
        };
        match json {
            Value::Number(n) => n.as_i64().map_or(Quick::Slow, Quick::Int),
            Value::Bool(b) => Quick::Bool(*b),
            Value::Null => Quick::Null,
            _ => Quick::Slow,
        }
    }
}

/// A string leaf (a constant, a field, a path) as text, without building an [`EVal`]:
/// `Some(None)` for null, `None` when it is not a plain string leaf.
#[inline(always)]
fn text_leaf<'s>(code: &'s Code, env: Env<'s>) -> Option<Option<&'s str>> {
    let value = match code {
        Code::Const(Lit::Str(s)) => return Some(Some(s)),
        Code::Field(i) => match &env.fields[*i] {
            FieldState::Present(v) => v,
            FieldState::Absent => return Some(None),
            FieldState::Failed => return None,
        },
        Code::Slot(i) => match &env.slots[*i] {
            Some(v) => v,
            None => return Some(None),
        },
        _ => return None,
    };
    match value {
        Val::Raw(s) => Some(Some(s)),
        Val::Str(s) => Some(Some(s)),
        _ => None,
    }
}

impl Code {
    /// The fast path for the integer and boolean nodes most rules and computed fields are made
    /// of (`refunded_cents <= captured_cents`, `status == "DECLINED"`, `a - b - c`, `has(x)`).
    /// The general walk returns every value as an [`EVal`] through memory, and moving those
    /// results up the tree cost more than the work at each node; these results travel in
    /// registers. Whatever is not plain here, errors included, gives [`Quick::Slow`] and is
    /// evaluated again by [`Code::eval`]: expressions have no side effects, so the answer is
    /// the same, and an error is rare enough to be worked out twice.
    fn quick(&self, env: Env<'_>) -> Quick {
        match self {
            Code::Const(Lit::Int(i)) => Quick::Int(*i),
            Code::Const(Lit::Bool(b)) => Quick::Bool(*b),
            Code::Const(Lit::Null) => Quick::Null,
            Code::Field(i) => match &env.fields[*i] {
                FieldState::Present(v) => Quick::of(v),
                FieldState::Absent => Quick::Null,
                FieldState::Failed => Quick::Slow,
            },
            Code::Slot(i) => match &env.slots[*i] {
                Some(v) => Quick::of(v),
                None => Quick::Null,
            },
            Code::Not(a) => match a.quick(env) {
                Quick::Bool(b) => Quick::Bool(!b),
                Quick::Null => Quick::Null,
                _ => Quick::Slow,
            },
            Code::And(a, b) => match (a.quick(env), b.quick(env)) {
                (Quick::Bool(false), _) | (Quick::Bool(true) | Quick::Null, Quick::Bool(false)) => Quick::Bool(false),
                (Quick::Bool(true), Quick::Bool(true)) => Quick::Bool(true),
                (Quick::Bool(true) | Quick::Null, Quick::Bool(true) | Quick::Null) => Quick::Null,
                _ => Quick::Slow,
            },
            Code::Or(a, b) => match (a.quick(env), b.quick(env)) {
                (Quick::Bool(true), _) | (Quick::Bool(false) | Quick::Null, Quick::Bool(true)) => Quick::Bool(true),
                (Quick::Bool(false), Quick::Bool(false)) => Quick::Bool(false),
                (Quick::Bool(false) | Quick::Null, Quick::Bool(false) | Quick::Null) => Quick::Null,
                _ => Quick::Slow,
            },
            Code::Has(inner) => match &**inner {
                Code::Field(i) => match &env.fields[*i] {
                    FieldState::Present(v) => Quick::Bool(!v.is_null()),
                    FieldState::Absent => Quick::Bool(false),
                    FieldState::Failed => Quick::Slow,
                },
                Code::Slot(i) => Quick::Bool(env.slots[*i].as_ref().is_some_and(|v| !v.is_null())),
                _ => Quick::Slow,
            },
            Code::Binary(op, a, b) => quick_of_binary(*op, a, b, env),
            Code::Call(Func::Size, args) => match args.as_slice() {
                [Code::Field(i)] => match &env.fields[*i] {
                    FieldState::Present(Val::MappedItems(rows)) => Quick::Int(rows.rows.len() as i64),
                    FieldState::Absent => Quick::Null,
                    _ => Quick::Slow,
                },
                _ => Quick::Slow,
            },
            // `sum(items.map(i, i.field))`: the items' own states, without a list of them.
            Code::Call(Func::Sum, args) => match args.as_slice() {
                [Code::Macro { kind: MacroKind::Map, list, depth, body }] => match (&**list, &**body) {
                    (Code::Field(i), Code::RowField(row, k)) if matches!(**row, Code::Local(d) if d == *depth) => {
                        match &env.fields[*i] {
                            FieldState::Present(Val::MappedItems(rows)) => {
                                if env.budget.spend(rows.rows.len() as u64).is_err() {
                                    return Quick::Slow;
                                }
                                let mut total = 0i64;
                                for row in &rows.rows {
                                    let item = match &row[*k] {
                                        FieldState::Present(v) => Quick::of(v),
                                        _ => Quick::Null,
                                    };
                                    match item {
                                        Quick::Int(n) => match total.checked_add(n) {
                                            Some(t) => total = t,
                                            None => return Quick::Slow,
                                        },
                                        Quick::Null => {}
                                        _ => return Quick::Slow,
                                    }
                                }
                                Quick::Int(total)
                            }
                            FieldState::Absent => Quick::Null,
                            _ => Quick::Slow,
                        }
                    }
                    _ => Quick::Slow,
                },
                _ => Quick::Slow,
            },
            _ => Quick::Slow,
        }
    }

    /// A condition's verdict (`when`, `check`, `drop`): `None` when it is null. A value that is
    /// not a boolean is an error that says what it was.
    pub fn condition<'s>(&'s self, env: Env<'s>, locals: &mut Vec<EVal<'s>>) -> Result<Option<bool>, EvalError> {
        match self.quick(env) {
            Quick::Bool(b) => Ok(Some(b)),
            Quick::Null => Ok(None),
            _ => match self.eval(env, locals)? {
                EVal::Bool(b) => Ok(Some(b)),
                EVal::Null => Ok(None),
                other => fail(format!("it gave {}, not a boolean", other.kind())),
            },
        }
    }

    /// The value for a computed field's state: `None` for null (the field is absent).
    pub fn value<'s>(&'s self, env: Env<'s>, locals: &mut Vec<EVal<'s>>) -> Result<Option<Val<'static>>, EvalError> {
        match self.quick(env) {
            Quick::Int(i) => Ok(Some(Val::Json(Cow::Owned(Value::from(i))))),
            Quick::Bool(b) => Ok(Some(Val::Json(Cow::Owned(Value::Bool(b))))),
            Quick::Null => Ok(None),
            Quick::Slow => self.eval(env, locals)?.into_val(),
        }
    }

    /// Why the expression gave null, when a reader of a required field needs more than "null":
    /// a lookup that found no entry names its table and the key (the key unless `sensitive`).
    pub fn why_null<'s>(&'s self, env: Env<'s>, locals: &mut Vec<EVal<'s>>, sensitive: bool) -> Option<String> {
        match self {
            Code::Typed(inner, _) => inner.why_null(env, locals, sensitive),
            Code::Call(Func::Lookup(table), args) => {
                let key = args.first()?.eval(env, locals).ok()?;
                let key = match &key {
                    EVal::Null => return Some(format!("the key of lookup table `{}` is absent", table.name)),
                    k => k.text().ok()?,
                };
                Some(if sensitive {
                    format!(
                        "lookup table `{}` has no entry for the key (value hidden: sensitive field) and no default",
                        table.name
                    )
                } else {
                    format!("lookup table `{}` has no entry for {key:?} and no default", table.name)
                })
            }
            _ => None,
        }
    }

    /// Evaluates the expression over one record.
    ///
    /// One arm per code node: a flat dispatch table, the general walk the fast paths are held to.
    pub fn eval<'s>(&'s self, env: Env<'s>, locals: &mut Vec<EVal<'s>>) -> Result<EVal<'s>, EvalError> {
        Ok(match self {
            Code::Const(lit) => match lit {
                Lit::Null => EVal::Null,
                Lit::Bool(b) => EVal::Bool(*b),
                Lit::Int(i) => EVal::Int(*i),
                Lit::Double(d) => EVal::Double(*d),
                Lit::Str(s) => EVal::Str(Cow::Borrowed(s)),
            },
            Code::Field(i) => match &env.fields[*i] {
                FieldState::Present(v) => read_charged(v, env)?,
                FieldState::Absent => EVal::Null,
                FieldState::Failed => return fail("reads a field that has errors"),
            },
            Code::Typed(inner, reading) => as_read(inner.eval(env, locals)?, reading)?,
            Code::Slot(i) => match &env.slots[*i] {
                Some(v) => read_charged(v, env)?,
                None => EVal::Null,
            },
            Code::Local(depth) => locals[*depth].clone(),
            Code::RowField(row, i) => match row.eval(env, locals)? {
                EVal::Row(fields) => match &fields[*i] {
                    FieldState::Present(v) => EVal::read(v),
                    _ => EVal::Null,
                },
                EVal::Null => EVal::Null,
                other => return fail(format!("expected an item object, found {}", other.kind())),
            },
            Code::Member(inner, name) => match inner.eval(env, locals)? {
                EVal::Json(Value::Object(map)) => map.get(name).map_or(EVal::Null, EVal::from_json),
                EVal::Null => EVal::Null,
                other => return fail(format!("`.{name}` reads a field of an object, found {}", other.kind())),
            },
            Code::Index(list, index) => {
                let l = list.eval(env, locals)?;
                let i = index.eval(env, locals)?;
                let i = match i {
                    EVal::Int(i) => i,
                    EVal::Null => return Ok(EVal::Null),
                    other => return fail(format!("a list index must be an integer, found {}", other.kind())),
                };
                let at = |len: usize| -> Option<usize> {
                    let len = i64::try_from(len).ok()?;
                    let k = if i < 0 { len + i } else { i };
                    (0..len).contains(&k).then_some(k as usize)
                };
                match l {
                    EVal::List(items) => at(items.len()).map_or(EVal::Null, |k| items[k].clone()),
                    EVal::Rows(rows) => at(rows.len()).map_or(EVal::Null, |k| EVal::Row(&rows[k])),
                    EVal::Json(Value::Array(items)) => {
                        at(items.len()).map_or(EVal::Null, |k| EVal::from_json(&items[k]))
                    }
                    EVal::Null => EVal::Null,
                    other => return fail(format!("only lists can be indexed, found {}", other.kind())),
                }
            }
            Code::Not(inner) => match truth(&inner.eval(env, locals)?, "`!`")? {
                Some(b) => EVal::Bool(!b),
                None => EVal::Null,
            },
            Code::Neg(inner) => match inner.eval(env, locals)? {
                EVal::Int(i) => EVal::Int(i.checked_neg().ok_or_else(|| {
                    EvalError::quoting(
                        format!("-({i}) overflows a 64-bit integer"),
                        "the negation overflows a 64-bit integer",
                    )
                })?),
                EVal::Double(d) => EVal::Double(-d),
                // `rust_decimal` keeps a sign on zero, and would write `-0.00`.
                EVal::Dec(d) => EVal::Dec(if d.is_zero() { d.abs() } else { -d }),
                EVal::Null => EVal::Null,
                other => return fail(format!("`-` takes a number, found {}", other.kind())),
            },
            // CEL's logic: a decisive side wins even when the other is null or fails.
            Code::And(a, b) => {
                let left = a.eval(env, locals).and_then(|v| truth(&v, "`&&`"));
                if let Ok(Some(false)) = left {
                    return Ok(EVal::Bool(false));
                }
                let right = b.eval(env, locals).and_then(|v| truth(&v, "`&&`"));
                match (left, right) {
                    (_, Ok(Some(false))) => EVal::Bool(false),
                    (Err(e), _) | (_, Err(e)) => return Err(e),
                    (Ok(Some(true)), Ok(Some(true))) => EVal::Bool(true),
                    _ => EVal::Null,
                }
            }
            Code::Or(a, b) => {
                let left = a.eval(env, locals).and_then(|v| truth(&v, "`||`"));
                if let Ok(Some(true)) = left {
                    return Ok(EVal::Bool(true));
                }
                let right = b.eval(env, locals).and_then(|v| truth(&v, "`||`"));
                match (left, right) {
                    (_, Ok(Some(true))) => EVal::Bool(true),
                    (Err(e), _) | (_, Err(e)) => return Err(e),
                    (Ok(Some(false)), Ok(Some(false))) => EVal::Bool(false),
                    _ => EVal::Null,
                }
            }
            Code::Cond(c, yes, no) => match truth(&c.eval(env, locals)?, "`? :`")? {
                Some(true) => yes.eval(env, locals)?,
                Some(false) => no.eval(env, locals)?,
                None => EVal::Null,
            },
            Code::Binary(op, a, b) => match self.quick(env) {
                Quick::Int(i) => EVal::Int(i),
                Quick::Bool(b) => EVal::Bool(b),
                Quick::Null => EVal::Null,
                Quick::Slow if *op == BinaryOp::In && constant_list(b).is_some() => {
                    // `x in ["A", "B"]`: each constant compared in place, no list built per record
                    // (the steps spent are the same as for the list).
                    let items = constant_list(b).expect("checked");
                    let left = a.eval(env, locals)?;
                    env.budget.spend(2 * items.len() as u64 + size_steps(&left))?;
                    let left = plain(left);
                    let mut found = false;
                    for item in items {
                        if equal(&left, &item.eval(env, locals)?) {
                            found = true;
                            break;
                        }
                    }
                    EVal::Bool(found)
                }
                Quick::Slow => {
                    let left = a.eval(env, locals)?;
                    let right = b.eval(env, locals)?;
                    env.budget.spend(size_steps(&left) + size_steps(&right))?;
                    binary(*op, left, right)?
                }
            },
            Code::List(items) => {
                env.budget.spend(items.len() as u64)?;
                EVal::List(items.iter().map(|c| c.eval(env, locals)).collect::<Result<_, _>>()?)
            }
            Code::Has(inner) => EVal::Bool(!inner.eval(env, locals)?.is_null()),
            Code::Call(func, args) => eval_call(func, args, env, locals)?,
            Code::Macro { kind, list, depth, body } => eval_macro(*kind, list, *depth, body, env, locals)?,
        })
    }
}

/// [`Code::quick`] of `a op b`.
#[inline]
fn quick_of_binary(op: BinaryOp, a: &Code, b: &Code, env: Env<'_>) -> Quick {
    if matches!(op, BinaryOp::Eq | BinaryOp::Ne)
        && let (Some(x), Some(y)) = (text_leaf(a, env), text_leaf(b, env))
    {
        // Long texts compared inside a macro's loop are work the budget must see;
        // when it is spent, the general walk reports it.
        let longest = x.map_or(0, str::len).max(y.map_or(0, str::len));
        if longest > 64 && env.budget.spend(longest as u64 / 64).is_err() {
            return Quick::Slow;
        }
        return Quick::Bool((x == y) == (op == BinaryOp::Eq));
    }
    // Text, lists and calls are never quick: `"a." + lower(b) + ".c"` is decided at once, not by
    // walking its whole tree again at each level of the general walk.
    if never_quick(a) || never_quick(b) {
        return Quick::Slow;
    }
    quick_binary(op, a.quick(env), b.quick(env))
}

/// An operand [`Code::quick`] always answers `Slow` for.
#[inline]
fn never_quick(code: &Code) -> bool {
    match code {
        Code::Const(Lit::Str(_) | Lit::Double(_)) | Code::List(_) => true,
        Code::Call(func, _) => !matches!(func, Func::Size | Func::Sum),
        _ => false,
    }
}

/// The items of a list literal whose items are all constants.
fn constant_list(code: &Code) -> Option<&[Code]> {
    match code {
        Code::List(items) if items.iter().all(|i| matches!(i, Code::Const(_))) => Some(items),
        _ => None,
    }
}

/// [`binary`] for integers, booleans and nulls; [`Quick::Slow`] for the rest and for errors.
#[inline]
fn quick_binary(op: BinaryOp, a: Quick, b: Quick) -> Quick {
    use Quick::{Bool, Int, Null, Slow};
    match (op, a, b) {
        (_, Slow, _) | (_, _, Slow) | (BinaryOp::In, ..) => Slow,
        (BinaryOp::Eq | BinaryOp::Ne, x, y) => {
            let same = match (x, y) {
                (Int(x), Int(y)) => x == y,
                (Bool(x), Bool(y)) => x == y,
                (Null, Null) => true,
                (Null, _) | (_, Null) => false,
                _ => return Slow,
            };
            Bool(same == (op == BinaryOp::Eq))
        }
        (_, Bool(_), _) | (_, _, Bool(_)) => Slow,
        (_, Null, _) | (_, _, Null) => Null,
        (op, Int(x), Int(y)) => match op {
            BinaryOp::Lt => Bool(x < y),
            BinaryOp::Le => Bool(x <= y),
            BinaryOp::Gt => Bool(x > y),
            BinaryOp::Ge => Bool(x >= y),
            BinaryOp::Add => x.checked_add(y).map_or(Slow, Int),
            BinaryOp::Sub => x.checked_sub(y).map_or(Slow, Int),
            BinaryOp::Mul => x.checked_mul(y).map_or(Slow, Int),
            // Division by zero and overflow: errors, worded by the general walk.
            BinaryOp::Div => x.checked_div(y).map_or(Slow, Int),
            BinaryOp::Rem => x.checked_rem(y).map_or(Slow, Int),
            _ => Slow,
        },
    }
}

/// A function call, kept out of [`Code::eval`] so the recursive walk keeps a small stack frame.
#[inline(never)]
fn eval_call<'s>(
    func: &'s Func,
    args: &'s [Code],
    env: Env<'s>,
    locals: &mut Vec<EVal<'s>>,
) -> Result<EVal<'s>, EvalError> {
    Ok({
        // Arguments on the stack: most calls take one to three, and a `Vec` per call was a
        // large share of an expression's time.
        const INLINE: usize = 4;
        if args.len() <= INLINE {
            let mut values: [EVal<'s>; INLINE] = [const { EVal::Null }; INLINE];
            for (slot, a) in values.iter_mut().zip(args) {
                *slot = a.eval(env, locals)?;
            }
            env.budget.spend(1 + values.iter().map(size_steps).sum::<u64>())?;
            built(call(func, &mut values[..args.len()])?, env)?
        } else {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                values.push(a.eval(env, locals)?);
            }
            env.budget.spend(1 + values.iter().map(size_steps).sum::<u64>())?;
            built(call(func, &mut values)?, env)?
        }
    })
}

/// `all`, `exists`, `map`, `filter`, out of [`Code::eval`] for the same reason.
#[inline(never)]
fn eval_macro<'s>(
    kind: MacroKind,
    list: &'s Code,
    depth: usize,
    body: &'s Code,
    env: Env<'s>,
    locals: &mut Vec<EVal<'s>>,
) -> Result<EVal<'s>, EvalError> {
    Ok({
        let items: Vec<EVal<'s>> = match list.eval(env, locals)? {
            EVal::List(items) => items,
            EVal::Rows(rows) => rows.iter().map(|r| EVal::Row(r)).collect(),
            EVal::Json(Value::Array(items)) => items.iter().map(EVal::from_json).collect(),
            EVal::Null => return Ok(EVal::Null),
            other => return fail(format!("expected a list, found {}", other.kind())),
        };
        env.budget.spend(items.len() as u64)?;
        debug_assert_eq!(locals.len(), depth);
        let mut out = Vec::new();
        let mut verdict = kind == MacroKind::All;
        for item in items {
            env.budget.spend(1)?;
            locals.push(item);
            let result = body.eval(env, locals);
            let item = locals.pop().expect("pushed above");
            let result = result?;
            match kind {
                MacroKind::Map => out.push(result),
                MacroKind::Filter => {
                    if truth(&result, "the body of `.filter()`")? == Some(true) {
                        out.push(item);
                    }
                }
                MacroKind::All => {
                    if truth(&result, "the body of `.all()`")? != Some(true) {
                        verdict = false;
                        break;
                    }
                }
                MacroKind::Exists => {
                    if truth(&result, "the body of `.exists()`")? == Some(true) {
                        verdict = true;
                        break;
                    }
                }
            }
        }
        match kind {
            MacroKind::Map | MacroKind::Filter => EVal::List(out),
            MacroKind::All | MacroKind::Exists => EVal::Bool(verdict),
        }
    })
}

/// A JSON scalar as the matching plain value (arrays and objects stay JSON); items as a list.
fn plain<'s>(v: EVal<'s>) -> EVal<'s> {
    match v {
        EVal::Json(j) if !j.is_array() && !j.is_object() => EVal::from_json(j),
        EVal::Rows(rows) => EVal::List(rows.iter().map(|r| EVal::Row(r)).collect()),
        other => other,
    }
}

/// Text from the record as a message quotes it: in quotes, cut after 80 characters (`…`), so a
/// value of megabytes does not become a message of megabytes in every field it fails.
fn shown(text: &str) -> String {
    const QUOTED_CHARS: usize = 80;
    match text.char_indices().nth(QUOTED_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

/// A stored value as the type its readers were checked against (see [`Reading`]). The plan wrote
/// it in that type's own form, so a value that does not read back is a defect of the plan, not of
/// the record; it is still a per-record error rather than a wrong answer.
fn as_read<'s>(value: EVal<'s>, reading: &Reading) -> Result<EVal<'s>, EvalError> {
    Ok(match (value, reading) {
        (EVal::Null, _) => EVal::Null,
        (v @ EVal::Dec(_), Reading::Decimal) | (v @ EVal::Time(_), Reading::Instant) => v,
        (EVal::Str(s), Reading::Decimal) => EVal::Dec(parse_decimal(&s)?),
        (EVal::Int(i), Reading::Decimal) => EVal::Dec(Decimal::from(i)),
        (EVal::Str(s), Reading::Instant) => match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => EVal::Time(t.with_timezone(&Utc)),
            Err(_) => {
                return fail_quoting(
                    format!("{} is not an RFC 3339 datetime", shown(&s)),
                    "a value that is not an RFC 3339 datetime",
                );
            }
        },
        (EVal::List(items), Reading::Items(item)) => {
            EVal::List(items.into_iter().map(|v| as_read(v, item)).collect::<Result<_, _>>()?)
        }
        (EVal::Json(Value::Array(items)), Reading::Items(item)) => {
            EVal::List(items.iter().map(|v| as_read(EVal::from_json(v), item)).collect::<Result<_, _>>()?)
        }
        (other, Reading::Decimal) => return fail(format!("expected a decimal, found {}", other.kind())),
        (other, Reading::Instant) => return fail(format!("expected a datetime, found {}", other.kind())),
        (other, Reading::Items(_)) => return fail(format!("expected a list, found {}", other.kind())),
    })
}

fn dec_of_double(d: f64) -> Result<Decimal, EvalError> {
    // The shortest text that reads back as the same float: `0.1` stays `0.1`, not its binary value.
    let text = format!("{d}");
    exact_decimal(&text).ok_or_else(|| {
        EvalError::quoting(format!("{d} does not fit a decimal exactly"), "a float that does not fit a decimal exactly")
    })
}

fn parse_decimal(s: &str) -> Result<Decimal, EvalError> {
    exact_decimal(s).ok_or_else(|| {
        EvalError::quoting(
            format!("{} is not a decimal number a decimal can hold exactly (at most 28 digits after the point, 96 bits in all)", shown(s)),
            "a string that is not a decimal number a decimal can hold exactly (value hidden: sensitive field)",
        )
    })
}

fn to_decimal(v: &EVal<'_>) -> Result<Decimal, EvalError> {
    match v {
        EVal::Int(i) => Ok(Decimal::from(*i)),
        EVal::Dec(d) => Ok(*d),
        EVal::Double(d) => dec_of_double(*d),
        EVal::Str(s) => parse_decimal(s),
        other => fail(format!("expected a number, found {}", other.kind())),
    }
}

fn overflow(op: BinaryOp) -> EvalError {
    EvalError::new(format!("`{}` overflows", op.symbol()))
}

fn binary<'s>(op: BinaryOp, a: EVal<'s>, b: EVal<'s>) -> Result<EVal<'s>, EvalError> {
    let (a, b) = (plain(a), plain(b));
    match op {
        BinaryOp::Eq => return Ok(EVal::Bool(equal(&a, &b))),
        BinaryOp::Ne => return Ok(EVal::Bool(!equal(&a, &b))),
        BinaryOp::In => {
            return Ok(match &b {
                EVal::Null => EVal::Null,
                EVal::List(items) => EVal::Bool(items.iter().any(|i| equal(&a, i))),
                EVal::Json(Value::Array(items)) => {
                    EVal::Bool(items.iter().any(|i| equal(&a, &plain(EVal::from_json(i)))))
                }
                EVal::Json(Value::Object(map)) => {
                    EVal::Bool(matches!(&a, EVal::Str(k) if map.contains_key(k.as_ref())))
                }
                other => return fail(format!("`in` takes a list on its right, found {}", other.kind())),
            });
        }
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => return compare(op, &a, &b),
        _ => {}
    }
    // A list read from a field (computed, or an array of the record) is still its JSON array.
    let (a, b) = if op == BinaryOp::Add { (as_list(a), as_list(b)) } else { (a, b) };
    Ok(match (a, b) {
        (EVal::Null, _) | (_, EVal::Null) => EVal::Null,
        (EVal::Int(x), EVal::Int(y)) => EVal::Int(
            match op {
                BinaryOp::Add => x.checked_add(y),
                BinaryOp::Sub => x.checked_sub(y),
                BinaryOp::Mul => x.checked_mul(y),
                BinaryOp::Div if y == 0 => return fail("division by zero"),
                BinaryOp::Div => x.checked_div(y),
                BinaryOp::Rem if y == 0 => return fail("remainder of a division by zero"),
                BinaryOp::Rem => x.checked_rem(y),
                _ => unreachable!("arithmetic operators only"),
            }
            .ok_or_else(|| overflow(op))?,
        ),
        (x @ EVal::Dec(_), y @ (EVal::Int(_) | EVal::Dec(_))) | (x @ EVal::Int(_), y @ EVal::Dec(_)) => {
            decimal_arithmetic(op, &x, &y)?
        }
        (EVal::Dec(_), EVal::Double(_)) | (EVal::Double(_), EVal::Dec(_)) => {
            return fail("an exact decimal never meets a float; convert with `decimal(…)` or `double(…)`");
        }
        (x @ (EVal::Int(_) | EVal::Double(_)), y @ (EVal::Int(_) | EVal::Double(_))) => {
            let f = |v: &EVal<'_>| match v {
                EVal::Int(i) => *i as f64,
                EVal::Double(d) => *d,
                _ => unreachable!("matched numbers"),
            };
            let (x, y) = (f(&x), f(&y));
            EVal::Double(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                BinaryOp::Rem => x % y,
                _ => unreachable!("arithmetic operators only"),
            })
        }
        // `a + b + c` grows the first result in place instead of copying it at every `+`.
        (EVal::Str(Cow::Owned(mut x)), EVal::Str(y)) if op == BinaryOp::Add => {
            checked_text_len(x.len().checked_add(y.len()))?;
            x.push_str(&y);
            EVal::Str(Cow::Owned(x))
        }
        (EVal::Str(x), EVal::Str(y)) if op == BinaryOp::Add => {
            checked_text_len(x.len().checked_add(y.len()))?;
            // `a + b + c` grows the text `a + b` built instead of copying it again.
            let mut s = match x {
                Cow::Owned(mut s) => {
                    s.reserve(y.len());
                    s
                }
                Cow::Borrowed(x) => {
                    let mut s = String::with_capacity(x.len() + y.len() + 16);
                    s.push_str(x);
                    s
                }
            };
            s.push_str(&y);
            EVal::Str(Cow::Owned(s))
        }
        (EVal::List(mut x), EVal::List(y)) if op == BinaryOp::Add => {
            checked_list_len(x.len().saturating_add(y.len()))?;
            x.extend(y);
            EVal::List(x)
        }
        (x, y) => return fail(format!("`{}` cannot take {} and {}", op.symbol(), x.kind(), y.kind())),
    })
}

/// `+ - * / %` on exact decimals (an integer operand taken exactly).
fn decimal_arithmetic(op: BinaryOp, x: &EVal<'_>, y: &EVal<'_>) -> Result<EVal<'static>, EvalError> {
    let (x, y) = (to_decimal(x)?, to_decimal(y)?);
    // `rust_decimal` takes a zero operand as having no places (`12.5 + 0.00` is `12.5`,
    // `price * 0` is `0`); amounts keep their places: the larger scale for `+` and `-`,
    // the sum of the scales for `*`, when a decimal can hold that many.
    let places = |r: Decimal, want: u32| match rescale(r, want.min(28), Rounding::HalfEven) {
        Some(padded) if r.scale() < want.min(28) => padded,
        _ => r,
    };
    Ok(EVal::Dec(
        match op {
            BinaryOp::Add => x.checked_add(y).map(|r| places(r, x.scale().max(y.scale()))),
            BinaryOp::Sub => x.checked_sub(y).map(|r| places(r, x.scale().max(y.scale()))),
            BinaryOp::Mul => x.checked_mul(y).map(|r| places(r, x.scale() + y.scale())),
            BinaryOp::Div if y.is_zero() => return fail("division by zero"),
            BinaryOp::Div => x.checked_div(y).map(|d| d.normalize().max_scale_with(x.scale().max(y.scale()))),
            BinaryOp::Rem if y.is_zero() => return fail("remainder of a division by zero"),
            BinaryOp::Rem => x.checked_rem(y),
            _ => unreachable!("arithmetic operators only"),
        }
        .ok_or_else(|| overflow(op))?,
    ))
}

/// `< <= > >=` (null when either side is null).
fn compare(op: BinaryOp, a: &EVal<'_>, b: &EVal<'_>) -> Result<EVal<'static>, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(EVal::Null);
    }
    let Some(ord) = order(a, b)? else {
        return fail(format!("`{}` cannot order {} and {}", op.symbol(), a.kind(), b.kind()));
    };
    Ok(EVal::Bool(match op {
        BinaryOp::Lt => ord.is_lt(),
        BinaryOp::Le => ord.is_le(),
        BinaryOp::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    }))
}

/// A JSON array as a list of its items; any other value as it is.
fn as_list(v: EVal<'_>) -> EVal<'_> {
    match v {
        EVal::Json(Value::Array(items)) => EVal::List(items.iter().map(EVal::from_json).collect()),
        other => other,
    }
}

/// A decimal quotient: exact digits, but no more scale than needed (`25990 / 100` is `259.9`).
trait MaxScale {
    fn max_scale_with(self, min_scale: u32) -> Decimal;
}

impl MaxScale for Decimal {
    fn max_scale_with(self, min_scale: u32) -> Decimal {
        if self.scale() >= min_scale {
            self
        } else {
            let mut d = self;
            d.rescale(min_scale);
            d
        }
    }
}

/// Equality as users read it: `1 == 1.0`, decimals equal by value, JSON by JSON equality.
pub fn equal(a: &EVal<'_>, b: &EVal<'_>) -> bool {
    match (a, b) {
        (EVal::Null, EVal::Null) => true,
        (EVal::Null, _) | (_, EVal::Null) => false,
        (EVal::Bool(x), EVal::Bool(y)) => x == y,
        (EVal::Str(x), EVal::Str(y)) => x == y,
        (EVal::Time(x), EVal::Time(y)) => x == y,
        (EVal::Row(x), EVal::Row(y)) => std::ptr::eq(*x, *y),
        (EVal::Json(_), _) | (_, EVal::Json(_)) => {
            let (x, y) = (plain(a.clone()), plain(b.clone()));
            match (&x, &y) {
                (EVal::Json(_), _) | (_, EVal::Json(_)) => match (x.to_json(), y.to_json()) {
                    (Ok(x), Ok(y)) => json_equal(&x, &y),
                    _ => false,
                },
                _ => equal(&x, &y),
            }
        }
        (EVal::List(x), EVal::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(i, j)| equal(i, j)),
        _ => matches!(order(a, b), Ok(Some(Ordering::Equal))),
    }
}

/// Order of two values of the same kind; `None` when they do not order.
fn order(a: &EVal<'_>, b: &EVal<'_>) -> Result<Option<Ordering>, EvalError> {
    Ok(match (a, b) {
        (EVal::Int(x), EVal::Int(y)) => Some(x.cmp(y)),
        (EVal::Int(x), EVal::Double(y)) => (*x as f64).partial_cmp(y),
        (EVal::Double(x), EVal::Int(y)) => x.partial_cmp(&(*y as f64)),
        (EVal::Double(x), EVal::Double(y)) => x.partial_cmp(y),
        (EVal::Dec(_), EVal::Int(_) | EVal::Dec(_) | EVal::Double(_))
        | (EVal::Int(_) | EVal::Double(_), EVal::Dec(_)) => Some(to_decimal(a)?.cmp(&to_decimal(b)?)),
        (EVal::Str(x), EVal::Str(y)) => Some(x.cmp(y)),
        (EVal::Time(x), EVal::Time(y)) => Some(x.cmp(y)),
        (EVal::Json(_), _) | (_, EVal::Json(_)) => {
            let (x, y) = (plain(a.clone()), plain(b.clone()));
            if matches!(x, EVal::Json(_)) || matches!(y, EVal::Json(_)) { None } else { order(&x, &y)? }
        }
        _ => None,
    })
}

fn int_arg(v: &EVal<'_>, what: &str) -> Result<i64, EvalError> {
    match plain(v.clone()) {
        EVal::Int(i) => Ok(i),
        other => fail(format!("{what} must be an integer, found {}", other.kind())),
    }
}

/// `lower()` and `upper()`: ASCII text in place of Unicode's case tables, and text already in
/// the case asked for kept as it is (borrowed from the record when it was).
fn change_case(text: Cow<'_, str>, upper: bool) -> Result<EVal<'_>, EvalError> {
    if !text.is_ascii() {
        return sized(if upper { text.to_uppercase() } else { text.to_lowercase() });
    }
    let wrong_case = |b: &u8| if upper { b.is_ascii_lowercase() } else { b.is_ascii_uppercase() };
    if !text.bytes().any(|b| wrong_case(&b)) {
        return Ok(EVal::Str(text));
    }
    let mut owned = text.into_owned();
    if upper {
        owned.make_ascii_uppercase();
    } else {
        owned.make_ascii_lowercase();
    }
    Ok(EVal::Str(Cow::Owned(owned)))
}

fn str_arg<'s>(v: &EVal<'s>, what: &str) -> Result<Cow<'s, str>, EvalError> {
    match plain(v.clone()) {
        EVal::Str(s) => Ok(s),
        other => fail(format!("{what} must be a string, found {}", other.kind())),
    }
}

/// Lower-case hexadecimal, written straight into a sized string (`hex::encode` collects an
/// iterator of characters, which cost as much as the SHA-256 it printed).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    String::from_utf8(out).expect("hexadecimal digits are ASCII")
}

/// Runs a function; a `null` argument gives `null`, except where the function is about nulls.
///
/// One arm per built-in, each a few lines: a flat dispatch table, kept whole so that every
/// function's run-time rule is read in one place (the catalogue describes them, the checker types
/// them in the same order).
fn call<'s>(func: &'s Func, args: &mut [EVal<'s>]) -> Result<EVal<'s>, EvalError> {
    let take = |v: &mut EVal<'s>| plain(std::mem::replace(v, EVal::Null));
    if let (Func::Size, [EVal::Rows(rows)]) = (func, &*args) {
        return Ok(EVal::Int(rows.len() as i64));
    }
    match func {
        Func::Coalesce => return Ok(args.iter_mut().map(take).find(|v| !v.is_null()).unwrap_or(EVal::Null)),
        Func::Lookup(table) => {
            let key = args.first_mut().map_or(EVal::Null, take);
            let found = match &key {
                EVal::Null => None,
                k => table.values.get(k.text()?.as_ref()),
            };
            return Ok(match found.or(table.default.as_ref()) {
                Some(v) => EVal::from_json(v),
                None => EVal::Null,
            });
        }
        _ => {}
    }
    if args.iter().any(EVal::is_null) {
        return Ok(EVal::Null);
    }
    let mut args = args.iter_mut().map(take);
    let mut next = || args.next().expect("arity checked at compile time");
    Ok(match func {
        Func::Size => match next() {
            EVal::Str(s) => EVal::Int(s.chars().count() as i64),
            EVal::List(items) => EVal::Int(items.len() as i64),
            EVal::Json(Value::Array(items)) => EVal::Int(items.len() as i64),
            EVal::Json(Value::Object(map)) => EVal::Int(map.len() as i64),
            other => return fail(format!("`size()` takes a string or a list, found {}", other.kind())),
        },
        Func::String => EVal::Str(next().text()?),
        Func::Int => match next() {
            EVal::Int(i) => EVal::Int(i),
            EVal::Double(d) if d.is_finite() && d.trunc() >= i64::MIN as f64 && d.trunc() < i64::MAX as f64 => {
                EVal::Int(d.trunc() as i64)
            }
            EVal::Dec(d) => EVal::Int(d.trunc().to_i64().ok_or_else(|| {
                EvalError::quoting(
                    format!("{d} does not fit a 64-bit integer"),
                    "a decimal that does not fit a 64-bit integer",
                )
            })?),
            EVal::Str(s) => match s.trim().parse::<i64>() {
                Ok(i) => EVal::Int(i),
                Err(_) => {
                    return fail_quoting(
                        format!("{} is not an integer", shown(&s)),
                        "a string that is not an integer (value hidden: sensitive field)",
                    );
                }
            },
            other => return fail(format!("`int()` cannot convert {}", other.kind())),
        },
        Func::Double => match next() {
            EVal::Int(i) => EVal::Double(i as f64),
            EVal::Double(d) => EVal::Double(d),
            EVal::Dec(d) => EVal::Double(d.to_f64().unwrap_or(f64::NAN)),
            EVal::Str(s) => match s.trim().parse::<f64>() {
                Ok(d) if d.is_finite() => EVal::Double(d),
                _ => {
                    return fail_quoting(
                        format!("{} is not a number", shown(&s)),
                        "a string that is not a number (value hidden: sensitive field)",
                    );
                }
            },
            other => return fail(format!("`double()` cannot convert {}", other.kind())),
        },
        Func::Decimal => EVal::Dec(to_decimal(&next())?),
        Func::Timestamp => match next() {
            EVal::Time(t) => EVal::Time(t),
            EVal::Str(s) => match DateTime::parse_from_rfc3339(&s) {
                Ok(t) => EVal::Time(t.with_timezone(&Utc)),
                Err(_) => {
                    return fail_quoting(
                        format!("{} is not an RFC 3339 datetime", shown(&s)),
                        "a string that is not an RFC 3339 datetime (value hidden: sensitive field)",
                    );
                }
            },
            other => return fail(format!("`timestamp()` takes a string, found {}", other.kind())),
        },
        Func::Round(mode) => {
            let value = to_decimal(&next())?;
            let places = int_arg(&next(), "the number of places")?;
            let places = u32::try_from(places).map_err(|_| EvalError::new("places must be 0 to 28"))?;
            EVal::Dec(rescale(value, places, *mode).ok_or_else(|| {
                EvalError::quoting(
                    format!("{value} does not fit {places} decimal places"),
                    format!("the value does not fit {places} decimal places"),
                )
            })?)
        }
        Func::Abs => match next() {
            EVal::Int(i) => EVal::Int(
                i.checked_abs().ok_or_else(|| EvalError::quoting(format!("abs({i}) overflows"), "abs() overflows"))?,
            ),
            EVal::Double(d) => EVal::Double(d.abs()),
            EVal::Dec(d) => EVal::Dec(d.abs()),
            other => return fail(format!("`abs()` takes a number, found {}", other.kind())),
        },
        // A case change can grow a text (some characters take more bytes in the other case).
        Func::Lower => change_case(str_arg(&next(), "the value")?, false)?,
        Func::Upper => change_case(str_arg(&next(), "the value")?, true)?,
        Func::Trim => match str_arg(&next(), "the value")? {
            Cow::Borrowed(s) => EVal::Str(Cow::Borrowed(s.trim())),
            Cow::Owned(s) => EVal::Str(Cow::Owned(s.trim().to_owned())),
        },
        Func::Split => {
            let s = str_arg(&next(), "the value")?;
            let sep = str_arg(&next(), "the separator")?;
            let parts = if sep.is_empty() { s.chars().count() } else { s.matches(sep.as_ref()).count() + 1 };
            checked_list_len(parts)?;
            if sep.is_empty() {
                EVal::List(s.chars().map(|c| EVal::Str(Cow::Owned(c.to_string()))).collect())
            } else {
                EVal::List(s.split(sep.as_ref()).map(|p| EVal::Str(Cow::Owned(p.to_owned()))).collect())
            }
        }
        Func::Join => {
            let list = match next() {
                EVal::List(items) => items,
                EVal::Json(Value::Array(items)) => items.iter().map(EVal::from_json).collect(),
                other => return fail(format!("`join()` takes a list, found {}", other.kind())),
            };
            let sep = match args.next() {
                Some(s) => str_arg(&s, "the separator")?.into_owned(),
                None => String::new(),
            };
            let parts: Vec<Cow<'_, str>> =
                list.iter().filter(|i| !i.is_null()).map(EVal::text).collect::<Result<_, _>>()?;
            let len = parts.iter().try_fold(sep.len().checked_mul(parts.len().saturating_sub(1)), |total, p| {
                total.and_then(|t| t.checked_add(p.len())).map(Some)
            });
            checked_text_len(len.flatten())?;
            EVal::Str(Cow::Owned(parts.join(&sep)))
        }
        Func::Substring => {
            let s = str_arg(&next(), "the value")?;
            let len = s.chars().count() as i64;
            let start = int_arg(&next(), "the start")?;
            let end = match args.next() {
                Some(e) => int_arg(&e, "the end")?,
                None => len,
            };
            if start < 0 || end < start || end > len {
                return fail_quoting(
                    format!("substring({start}, {end}) is outside a string of {len} characters"),
                    "substring() reaches outside the string",
                );
            }
            // Byte offsets of the characters: text from the record stays borrowed, not copied.
            let byte_at = |chars: i64| s.char_indices().nth(chars as usize).map_or(s.len(), |(at, _)| at);
            let (from, to) = if s.is_ascii() { (start as usize, end as usize) } else { (byte_at(start), byte_at(end)) };
            EVal::Str(match s {
                Cow::Borrowed(text) => Cow::Borrowed(&text[from..to]),
                Cow::Owned(text) => Cow::Owned(text[from..to].to_string()),
            })
        }
        Func::PadLeft | Func::PadRight => {
            let s = str_arg(&next(), "the value")?;
            let width = int_arg(&next(), "the width")?;
            let fill = match args.next() {
                Some(f) => str_arg(&f, "the fill")?.into_owned(),
                None => " ".into(),
            };
            let mut chars = fill.chars();
            let (Some(fill), None) = (chars.next(), chars.next()) else {
                return fail_quoting(
                    format!("the fill must be one character, found {fill:?}"),
                    "the fill must be one character",
                );
            };
            let missing = usize::try_from(width).unwrap_or(0).saturating_sub(s.chars().count());
            if missing == 0 {
                EVal::Str(s)
            } else {
                // Checked before allocating: the width may come from the record.
                let len = checked_text_len(missing.checked_mul(fill.len_utf8()).and_then(|m| m.checked_add(s.len())))?;
                let mut padded = String::with_capacity(len);
                let left = matches!(func, Func::PadLeft);
                if !left {
                    padded.push_str(&s);
                }
                padded.extend(std::iter::repeat_n(fill, missing));
                if left {
                    padded.push_str(&s);
                }
                EVal::Str(Cow::Owned(padded))
            }
        }
        Func::StartsWith | Func::EndsWith | Func::Contains => {
            let s = str_arg(&next(), "the value")?;
            let p = str_arg(&next(), "the argument")?;
            EVal::Bool(match func {
                Func::StartsWith => s.starts_with(p.as_ref()),
                Func::EndsWith => s.ends_with(p.as_ref()),
                _ => s.contains(p.as_ref()),
            })
        }
        Func::Matches(re) => EVal::Bool(re.is_match(&str_arg(&next(), "the value")?)),
        Func::Replace => {
            let s = str_arg(&next(), "the value")?;
            let from = str_arg(&next(), "the text to replace")?;
            let to = str_arg(&next(), "the replacement")?;
            if from.is_empty() {
                EVal::Str(s)
            } else {
                // Checked before replacing: a short text replaced by a long one multiplies the size.
                let growth = to.len().saturating_sub(from.len());
                if growth > 0 {
                    let count = s.matches(from.as_ref()).count();
                    checked_text_len(count.checked_mul(growth).and_then(|g| g.checked_add(s.len())))?;
                }
                EVal::Str(Cow::Owned(s.replace(from.as_ref(), &to)))
            }
        }
        Func::Mask => {
            let s = str_arg(&next(), "the value")?;
            let first = usize::try_from(int_arg(&next(), "the characters kept at the start")?).unwrap_or(0);
            let last = usize::try_from(int_arg(&next(), "the characters kept at the end")?).unwrap_or(0);
            let with = match args.next() {
                Some(m) => {
                    let m = str_arg(&m, "the mask")?;
                    let mut chars = m.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => c,
                        _ => {
                            return fail_quoting(
                                format!("the mask must be one character, found {m:?}"),
                                "the mask must be one character",
                            );
                        }
                    }
                }
                None => '*',
            };
            sized(mask(&s, first, last, with))?
        }
        Func::Sha256 => EVal::Str(Cow::Owned(hex(&Sha256::digest(str_arg(&next(), "the value")?.as_bytes())))),
        Func::HmacSha256(key) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
            mac.update(str_arg(&next(), "the value")?.as_bytes());
            EVal::Str(Cow::Owned(hex(&mac.finalize().into_bytes())))
        }
        Func::Sum | Func::Min | Func::Max => {
            let items: Vec<EVal<'s>> = match next() {
                EVal::List(items) => items.into_iter().map(plain).filter(|v| !v.is_null()).collect(),
                EVal::Json(Value::Array(items)) => items.iter().map(EVal::from_json).filter(|v| !v.is_null()).collect(),
                other => return fail(format!("expected a list, found {}", other.kind())),
            };
            if matches!(func, Func::Sum) {
                let mut total = EVal::Int(0);
                for item in items {
                    total = binary(BinaryOp::Add, total, item)?;
                }
                total
            } else {
                let mut best: Option<EVal<'s>> = None;
                for item in items {
                    best = Some(match best {
                        None => item,
                        Some(b) => {
                            let Some(ord) = order(&item, &b)? else {
                                return fail(format!("cannot order {} and {}", item.kind(), b.kind()));
                            };
                            let better = if matches!(func, Func::Min) { ord.is_lt() } else { ord.is_gt() };
                            if better { item } else { b }
                        }
                    });
                }
                best.unwrap_or(EVal::Null)
            }
        }
        Func::LocalDate(zone) | Func::LocalTime(zone) | Func::LocalDatetime(zone) => {
            let local = in_zone(next(), *zone, next())?;
            EVal::Str(Cow::Owned(match func {
                Func::LocalDate(_) => local.format("%Y-%m-%d").to_string(),
                Func::LocalTime(_) => local.format("%H:%M:%S").to_string(),
                // The zone's own offset, `+00:00` included: `Z` would say the time is UTC, not local.
                _ => local.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            }))
        }
        Func::FormatDatetime(pattern, zone) => {
            let local = in_zone(next(), *zone, next())?;
            let mut text = String::new();
            std::fmt::Write::write_fmt(&mut text, format_args!("{}", local.format_with_items(pattern.items().iter())))
                .map_err(|_| EvalError::new("the datetime cannot be written in this pattern"))?;
            sized(text)?
        }
        Func::Coalesce | Func::Lookup(_) => unreachable!("handled before the null check"),
    })
}

/// An instant (a datetime, or RFC 3339 text) on the clock of a zone: the one resolved at load, or
/// the IANA name the record gives (an unknown name is an error of rule `zone`).
fn in_zone(
    instant: EVal<'_>,
    zone: Option<chrono_tz::Tz>,
    named: EVal<'_>,
) -> Result<DateTime<chrono_tz::Tz>, EvalError> {
    let instant = match instant {
        EVal::Time(t) => t,
        EVal::Str(s) => match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => {
                return fail_quoting(
                    format!("{} is not an RFC 3339 datetime", shown(&s)),
                    "a string that is not an RFC 3339 datetime (value hidden: sensitive field)",
                );
            }
        },
        other => return fail(format!("expected a datetime, found {}", other.kind())),
    };
    let zone = match (zone, named) {
        (Some(tz), _) => tz,
        (None, EVal::Str(name)) => name.parse::<chrono_tz::Tz>().map_err(|_| EvalError {
            kind: EvalErrorKind::Zone,
            message: format!("{} is not an IANA time zone (like \"America/Sao_Paulo\")", shown(&name)),
            without_values: Some("the value is not an IANA time zone".into()),
        })?,
        (None, other) => return fail(format!("a time zone is a string, found {}", other.kind())),
    };
    let local = instant.with_timezone(&zone);
    // A date or time on a clock is written with a four-digit year, as `type: date` and
    // `datetime` are; an instant near the ends of that range can fall outside it on a zone's clock.
    if !(0..=9999).contains(&chrono::Datelike::year(&local)) {
        return fail("the local date is outside the years 0000–9999");
    }
    Ok(local)
}

/// Keeps the first `first` and last `last` characters and masks the rest. A value too short to
/// hide anything between them is masked whole: a mask never reveals a short secret.
pub fn mask(s: &str, first: usize, last: usize, with: char) -> String {
    let n = s.chars().count();
    if first + last >= n {
        return std::iter::repeat_n(with, n).collect();
    }
    s.chars().enumerate().map(|(i, c)| if i < first || i >= n - last { c } else { with }).collect()
}

#[cfg(test)]
mod tests {
    //! The fast path must give what the general walk gives, for every operator and every kind
    //! of operand it takes, or step aside.
    use super::*;

    const OPS: [BinaryOp; 12] = [
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::In,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Rem,
    ];

    fn leaves() -> Vec<Lit> {
        let mut leaves = vec![Lit::Null, Lit::Bool(true), Lit::Bool(false), Lit::Double(1.0), Lit::Str("7".into())];
        for i in [0, 1, -1, 7, -7, 3, i64::MAX, i64::MIN, i64::MAX - 1] {
            leaves.push(Lit::Int(i));
        }
        leaves
    }

    /// What the general walk makes of `code`, as a `Quick` (`Slow` for errors and other kinds).
    fn general(result: Result<EVal<'_>, EvalError>) -> Quick {
        match result {
            Ok(EVal::Int(i)) => Quick::Int(i),
            Ok(EVal::Bool(b)) => Quick::Bool(b),
            Ok(EVal::Null) => Quick::Null,
            _ => Quick::Slow,
        }
    }

    fn agrees(fast: Quick, general: Quick, what: &str) {
        assert!(fast == Quick::Slow || fast == general, "{what}: fast path {fast:?}, general walk {general:?}");
    }

    #[test]
    fn binary_operators_agree_with_the_general_walk() {
        let budget = Budget::new(DEFAULT_STEPS);
        let env = Env { fields: &[], slots: &[], budget: &budget };
        let mut decided = 0;
        for op in OPS {
            for a in leaves() {
                for b in leaves() {
                    let (x, y) = (Code::Const(a.clone()), Code::Const(b.clone()));
                    let fast = quick_binary(op, x.quick(env), y.quick(env));
                    let slow = general(binary(
                        op,
                        x.eval(env, &mut Vec::new()).unwrap(),
                        y.eval(env, &mut Vec::new()).unwrap(),
                    ));
                    agrees(fast, slow, &format!("{a:?} {} {b:?}", op.symbol()));
                    decided += usize::from(fast != Quick::Slow);
                }
            }
        }
        // The fast path takes the integer, boolean and null cases, not none of them.
        assert!(decided > 500, "only {decided} cases took the fast path");
    }

    #[test]
    fn logic_and_presence_agree_with_the_general_walk() {
        let leaves = || [Lit::Null, Lit::Bool(true), Lit::Bool(false), Lit::Int(1)];
        let fields = [FieldState::Absent, FieldState::Present(Val::Json(Cow::Owned(Value::Null))), FieldState::Failed];
        let budget = Budget::new(DEFAULT_STEPS);
        let env = Env { fields: &fields, slots: &[], budget: &budget };
        let c = |l: &Lit| Box::new(Code::Const(l.clone()));
        for a in leaves() {
            let not = Code::Not(c(&a));
            agrees(not.quick(env), general(not.eval(env, &mut Vec::new())), &format!("!{a:?}"));
            for b in leaves() {
                for code in [Code::And(c(&a), c(&b)), Code::Or(c(&a), c(&b))] {
                    let what = format!("{code:?}");
                    agrees(code.quick(env), general(code.eval(env, &mut Vec::new())), &what);
                }
            }
        }
        for (i, field) in fields.iter().enumerate() {
            let has = Code::Has(Box::new(Code::Field(i)));
            agrees(has.quick(env), general(has.eval(env, &mut Vec::new())), &format!("has on {field:?}"));
        }
    }

    #[test]
    fn text_equality_agrees_with_the_general_walk() {
        let fields = [
            FieldState::Present(Val::Raw("CPF")),
            FieldState::Absent,
            FieldState::Present(Val::Str(Cow::Borrowed("cpf"))),
        ];
        let budget = Budget::new(DEFAULT_STEPS);
        let env = Env { fields: &fields, slots: &[], budget: &budget };
        let operands = || {
            vec![
                Code::Field(0),
                Code::Field(1),
                Code::Field(2),
                Code::Const(Lit::Str("CPF".into())),
                Code::Const(Lit::Null),
            ]
        };
        for op in [BinaryOp::Eq, BinaryOp::Ne] {
            for a in 0..operands().len() {
                for b in 0..operands().len() {
                    let (a, b) = (operands().swap_remove(a), operands().swap_remove(b));
                    let what = format!("{a:?} {} {b:?}", op.symbol());
                    let code = Code::Binary(op, Box::new(a), Box::new(b));
                    let Code::Binary(_, x, y) = &code else { unreachable!() };
                    let slow = general(binary(
                        op,
                        x.eval(env, &mut Vec::new()).unwrap(),
                        y.eval(env, &mut Vec::new()).unwrap(),
                    ));
                    agrees(code.quick(env), slow, &what);
                }
            }
        }
    }
}
