//! A property over random well-typed expressions: an expression that type-checks never fails at
//! run time on the kind of a value, its value is what exact arithmetic gives, and the type the
//! checker gives a computed field is the type the expressions reading it see.
//!
//! Each case is a chain of three computed fields (`a` over the inputs, `b` also over `a`, `c` over
//! both), generated as trees that know their own type. A tree is rendered as text for the
//! compiler and evaluated by the reference below, with exact integers (`i128`) and exact decimals
//! (a mantissa and a scale). The chain runs twice: field by field as the plan runs it
//! (`Code::value`, the value stored in the field's state, the next field compiled with the type
//! the checker gave the last), and as a real plan over JSON records. Both must agree with each
//! other, and with the reference wherever it can tell exactly what the engine gives: it says
//! "unknown" when a decimal leaves what `rust_decimal` holds exactly (a 96-bit mantissa, 28
//! places), or a quotient does not end within 28 places. Decimal text follows the engine's scale
//! rules: `+` and `-` at the larger scale, `*` at the sum of the scales, `/` at the fewest places
//! that hold the quotient but no fewer than its operands have; zeros included.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::rc::Rc;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};

use super::syntax::PathStep;
use super::{Budget, DEFAULT_STEPS, EVal, Env, EvalError, EvalErrorKind, LookupTable, Names, Ty, compile};
use crate::plan::types::normalize_datetime;
use crate::plan::value::{FieldState, Val};
use crate::plan::{Outcome, load_str};

// ---------------------------------------------------------------------------------------------
// Types and trees

/// The types the generator builds expressions of.
#[derive(Clone, Debug, PartialEq, Eq)]
enum T {
    Int,
    Dec,
    Bool,
    Str,
    Time,
    Date,
    List(Box<T>),
}

impl T {
    fn ty(&self) -> Ty {
        match self {
            T::Int => Ty::Int,
            T::Dec => Ty::Decimal,
            T::Bool => Ty::Bool,
            T::Str => Ty::String,
            T::Time => Ty::Timestamp,
            T::Date => Ty::Date,
            T::List(item) => Ty::List(Box::new(item.ty())),
        }
    }

    fn list(self) -> T {
        T::List(Box::new(self))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::Rem => "%",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum F {
    Decimal,
    /// The places and the rounding mode, both literals.
    Round(u32, Option<&'static str>),
    Int,
    String,
    Size,
    Sum,
    Min,
    Max,
    Coalesce,
    Timestamp,
    Abs,
}

impl F {
    fn name(self) -> &'static str {
        match self {
            F::Decimal => "decimal",
            F::Round(..) => "round",
            F::Int => "int",
            F::String => "string",
            F::Size => "size",
            F::Sum => "sum",
            F::Min => "min",
            F::Max => "max",
            F::Coalesce => "coalesce",
            F::Timestamp => "timestamp",
            F::Abs => "abs",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum M {
    All,
    Exists,
    Map,
    Filter,
}

/// An expression with the type the generator meant it to have.
#[derive(Clone)]
struct E {
    t: T,
    k: K,
}

#[derive(Clone)]
enum K {
    Field(Rc<str>),
    /// A macro's item, by nesting depth (written `v0`, `v1`).
    Var(usize),
    Null,
    Int(i64),
    Bool(bool),
    Str(&'static str),
    Not(Box<E>),
    Neg(Box<E>),
    And(Box<E>, Box<E>),
    Or(Box<E>, Box<E>),
    Bin(Op, Box<E>, Box<E>),
    Cond(Box<E>, Box<E>, Box<E>),
    List(Vec<E>),
    Index(Box<E>, Box<E>),
    Call(F, Vec<E>),
    Macro(M, Box<E>, usize, Box<E>),
    Has(Rc<str>),
}

fn e(t: T, k: K) -> E {
    E { t, k }
}

fn bx(e: E) -> Box<E> {
    Box::new(e)
}

impl E {
    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match &self.k {
            K::Field(name) => out.push_str(name),
            K::Has(name) => {
                let _ = write!(out, "has({name})");
            }
            K::Var(depth) => {
                let _ = write!(out, "v{depth}");
            }
            K::Null => out.push_str("null"),
            K::Int(i) if *i < 0 => {
                let _ = write!(out, "({i})");
            }
            K::Int(i) => {
                let _ = write!(out, "{i}");
            }
            K::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            K::Str(s) => {
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            K::Not(x) => {
                out.push_str("!(");
                x.write(out);
                out.push(')');
            }
            K::Neg(x) => {
                out.push_str("-(");
                x.write(out);
                out.push(')');
            }
            K::And(x, y) | K::Or(x, y) | K::Bin(_, x, y) => {
                let op = match &self.k {
                    K::And(..) => "&&",
                    K::Or(..) => "||",
                    K::Bin(op, ..) => op.symbol(),
                    _ => unreachable!("matched above"),
                };
                out.push('(');
                x.write(out);
                let _ = write!(out, " {op} ");
                y.write(out);
                out.push(')');
            }
            K::Cond(c, y, n) => {
                out.push('(');
                c.write(out);
                out.push_str(" ? ");
                y.write(out);
                out.push_str(" : ");
                n.write(out);
                out.push(')');
            }
            K::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            K::Index(list, index) => {
                list.write(out);
                out.push('[');
                index.write(out);
                out.push(']');
            }
            K::Call(f, args) => {
                out.push_str(f.name());
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    a.write(out);
                }
                if let F::Round(places, mode) = f {
                    let _ = write!(out, ", {places}");
                    if let Some(mode) = mode {
                        let _ = write!(out, ", \"{mode}\"");
                    }
                }
                out.push(')');
            }
            K::Macro(m, list, depth, body) => {
                list.write(out);
                let name = match m {
                    M::All => "all",
                    M::Exists => "exists",
                    M::Map => "map",
                    M::Filter => "filter",
                };
                let _ = write!(out, ".{name}(v{depth}, ");
                body.write(out);
                out.push(')');
            }
        }
    }

    /// The fields it reads, by name.
    fn reads(&self, out: &mut Vec<Rc<str>>) {
        match &self.k {
            K::Field(n) | K::Has(n) => out.push(n.clone()),
            K::Var(_) | K::Null | K::Int(_) | K::Bool(_) | K::Str(_) => {}
            K::Not(x) | K::Neg(x) => x.reads(out),
            K::And(x, y) | K::Or(x, y) | K::Bin(_, x, y) | K::Index(x, y) | K::Macro(_, x, _, y) => {
                x.reads(out);
                y.reads(out);
            }
            K::Cond(c, y, n) => {
                c.reads(out);
                y.reads(out);
                n.reads(out);
            }
            K::List(items) | K::Call(_, items) => items.iter().for_each(|i| i.reads(out)),
        }
    }
}

impl fmt::Debug for E {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({:?})", self.text(), self.t)
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    Int,
    Str,
    Bool,
    Time,
    Date,
    /// A decimal computed from a string field (`decimal(m1s)`), as a plan holds one.
    Dec,
}

const INPUTS: &[(&str, Input)] = &[
    ("i1", Input::Int),
    ("i2", Input::Int),
    ("s1", Input::Str),
    ("b1", Input::Bool),
    ("t1", Input::Time),
    ("t2", Input::Time),
    ("d1", Input::Date),
    ("d2", Input::Date),
    ("m1", Input::Dec),
];

const COMPUTED: [&str; 3] = ["a", "b", "c"];

impl Input {
    fn t(self) -> T {
        match self {
            Input::Int => T::Int,
            Input::Str => T::Str,
            Input::Bool => T::Bool,
            Input::Time => T::Time,
            Input::Date => T::Date,
            Input::Dec => T::Dec,
        }
    }
}

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    3,
    7,
    10,
    100,
    1000,
    -100,
    255,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
    3_037_000_499,
    -3_037_000_500,
    1 << 62,
];

/// Decimal texts: literals, and the values of the decimal input. All parse exactly.
const DECS: &[&str] = &[
    "0",
    "1",
    "1.5",
    "-2.25",
    "0.001",
    "12.50",
    "1000",
    "-0.10",
    "99999999.99",
    "0.0000000001",
    "123456789012345678.5",
    "-7",
    "0.00",
];

const STRS: &[&str] =
    &["", "a", "abc", "CPF", "ção", "12.50", "7", " 3 ", "-0.001", "2026-11-10", "2026-11-10T02:30:00Z", "x y", "1e3"];

/// Instants a few fractions of a second apart, with offsets and fractions that make their text
/// order differ from their order in time.
const TIMES: &[&str] = &[
    "2026-11-10T02:30:00Z",
    "2026-11-10T02:30:00.5Z",
    "2026-11-10T02:30:00.25+00:00",
    "2026-11-10T03:30:00.1+01:00",
    "2026-11-09T23:30:00-03:00",
    "2026-11-10T02:30:00.000000001Z",
    "2026-11-10T02:29:59.999-00:00",
    "2026-11-10T12:00:00+09:30",
];

/// `timestamp()` literals: the instants above.
const TIME_LITERALS: &[&str] = &[
    "2026-11-10T02:30:00Z",
    "2026-11-10T02:30:00.5Z",
    "2026-11-10T03:30:00.1+01:00",
    "2026-11-09T23:30:00-03:00",
    "2026-11-10T02:30:00.000000001Z",
    "2026-11-10T02:29:59.999-00:00",
];

const DATES: &[&str] = &["2026-11-10", "2026-11-09", "2026-01-31", "2025-12-31"];

const MODES: &[&str] = &["half_even", "half_up", "half_down", "down", "up", "floor", "ceiling"];

/// One record's inputs, in the order of [`INPUTS`]: `None` is missing, `Some(Null)` is null.
type Record = Vec<Option<Value>>;

fn input_value(kind: Input) -> BoxedStrategy<Value> {
    let texts = |pool: &'static [&'static str]| prop::sample::select(pool).prop_map(Value::from).boxed();
    match kind {
        Input::Int => prop_oneof![
            3 => (-1000i64..1000).prop_map(Value::from),
            3 => prop::sample::select(INTS).prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
        ]
        .boxed(),
        Input::Str => texts(STRS),
        Input::Bool => any::<bool>().prop_map(Value::from).boxed(),
        Input::Time => texts(TIMES),
        Input::Date => texts(DATES),
        Input::Dec => texts(DECS),
    }
}

fn record() -> impl Strategy<Value = Record> {
    INPUTS
        .iter()
        .map(|(_, kind)| {
            prop_oneof![
                8 => input_value(*kind).prop_map(Some),
                1 => Just(None),
                1 => Just(Some(Value::Null)),
            ]
        })
        .collect::<Vec<_>>()
}

// ---------------------------------------------------------------------------------------------
// The generator

/// What an expression may name: the fields so far (the computed ones are read more often) and
/// the items of the macros around it.
#[derive(Clone)]
struct Scope {
    fields: Rc<Vec<(Rc<str>, T, bool)>>,
    locals: Rc<Vec<T>>,
}

impl Scope {
    fn inputs() -> Scope {
        let fields = INPUTS.iter().map(|(n, k)| (Rc::from(*n), k.t(), false)).collect();
        Scope { fields: Rc::new(fields), locals: Rc::new(Vec::new()) }
    }

    fn with_field(&self, name: &str, t: T) -> Scope {
        let mut fields = (*self.fields).clone();
        fields.push((Rc::from(name), t, true));
        Scope { fields: Rc::new(fields), locals: self.locals.clone() }
    }

    fn with_local(&self, t: T) -> Scope {
        let mut locals = (*self.locals).clone();
        locals.push(t);
        Scope { fields: self.fields.clone(), locals: Rc::new(locals) }
    }
}

type Gen = BoxedStrategy<E>;

fn lit_int(i: i64) -> E {
    e(T::Int, K::Int(i))
}

fn lit_dec(text: &'static str) -> E {
    e(T::Dec, K::Call(F::Decimal, vec![e(T::Str, K::Str(text))]))
}

/// The smallest expressions of type `t`: fields, macro items, literals.
fn leaf(t: &T, sc: &Scope) -> Gen {
    let mut arms: Vec<(u32, Gen)> = Vec::new();
    for (name, ft, computed) in sc.fields.iter() {
        if ft == t {
            arms.push((if *computed { 16 } else { 2 }, Just(e(t.clone(), K::Field(name.clone()))).boxed()));
        }
    }
    for (depth, lt) in sc.locals.iter().enumerate() {
        if lt == t {
            arms.push((6, Just(e(t.clone(), K::Var(depth))).boxed()));
        }
    }
    let literal = match t {
        T::Int => Some(prop::sample::select(INTS).prop_map(lit_int).boxed()),
        T::Dec => Some(prop::sample::select(DECS).prop_map(lit_dec).boxed()),
        T::Bool => Some(any::<bool>().prop_map(|b| e(T::Bool, K::Bool(b))).boxed()),
        T::Str => Some(prop::sample::select(STRS).prop_map(|s| e(T::Str, K::Str(s))).boxed()),
        T::Time => Some(
            // Now and then a text that is not an instant: a value error.
            prop_oneof![12 => prop::sample::select(TIME_LITERALS), 1 => Just("2026-11-10 02:30")]
                .prop_map(|s| e(T::Time, K::Call(F::Timestamp, vec![e(T::Str, K::Str(s))])))
                .boxed(),
        ),
        T::Date => None,
        T::List(item) => {
            let sc = sc.clone();
            Some(list_literal(item, move |t| leaf(t, &sc)))
        }
    };
    if let Some(literal) = literal {
        arms.push((3, literal));
    }
    Union::new_weighted(arms).boxed()
}

/// `[x, y, z]` of type `List(item)`: one to three items, one of them surely of type `item`, the
/// others possibly integers when `item` is a decimal.
fn list_literal(item: &T, make: impl Fn(&T) -> Gen) -> Gen {
    let t = item.clone();
    let others = if *item == T::Dec { prop_oneof![3 => make(item), 1 => make(&T::Int)].boxed() } else { make(item) };
    (make(item), prop::collection::vec(others, 0..=2))
        .prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            rest
        })
        .prop_shuffle()
        .prop_map(move |items| e(t.clone().list(), K::List(items)))
        .boxed()
}

/// A value that may stand where a `t` is expected: a `t`, an integer for a decimal, or `null`.
fn branch(t: &T, sc: &Scope, d: u32, null: bool) -> Gen {
    let mut arms: Vec<(u32, Gen)> = vec![(4, gen_expr(t.clone(), sc.clone(), d))];
    if *t == T::Dec {
        arms.push((2, gen_expr(T::Int, sc.clone(), d)));
    }
    if null {
        arms.push((1, Just(e(t.clone(), K::Null)).boxed()));
    }
    Union::new_weighted(arms).boxed()
}

type Form = Rc<dyn Fn() -> Gen>;

/// Expressions of type `t` at most `depth` levels deep. Only the form picked is built, so a
/// strategy costs what the tree it makes costs.
fn gen_expr(t: T, sc: Scope, depth: u32) -> Gen {
    if depth == 0 {
        return leaf(&t, &sc);
    }
    let forms = forms(&t, &sc, depth - 1);
    let picks: Vec<usize> = forms.iter().enumerate().flat_map(|(i, (w, _))| std::iter::repeat_n(i, *w)).collect();
    let forms: Vec<Form> = forms.into_iter().map(|(_, f)| f).collect();
    prop::sample::select(picks).prop_flat_map(move |i| forms[i]()).boxed()
}

fn forms(t: &T, sc: &Scope, d: u32) -> Vec<(usize, Form)> {
    let mut forms: Vec<(usize, Form)> = Vec::new();
    macro_rules! form {
        ($w:expr, |$sc:ident, $t:ident| $body:expr) => {{
            let $sc = sc.clone();
            let $t = t.clone();
            let f: Form = Rc::new(move || {
                let $sc = &$sc;
                let $t = &$t;
                let _ = $t;
                $body
            });
            forms.push(($w, f));
        }};
    }
    let g = move |t: T, sc: &Scope| gen_expr(t, sc.clone(), d);
    // The leaf first: shrinking picks the first form.
    form!(3, |sc, t| leaf(t, sc));
    form!(1, |sc, t| cond(t, sc, d));
    form!(1, |sc, t| coalesce(t, sc, d));
    if matches!(t, T::Int | T::Dec | T::Str | T::Time | T::Date) {
        form!(1, |sc, t| (g(t.clone().list(), sc), prop::sample::select(vec![F::Min, F::Max]))
            .prop_map(|(l, f)| e(t_of_list(&l), K::Call(f, vec![l])))
            .boxed());
        form!(1, |sc, t| (g(t.clone().list(), sc), index(sc, d))
            .prop_map(|(l, i)| e(t_of_list(&l), K::Index(bx(l), bx(i))))
            .boxed());
    }
    match t {
        T::Int => {
            form!(4, |sc, _t| (prop::sample::select(vec![Op::Add, Op::Sub, Op::Mul]), g(T::Int, sc), g(T::Int, sc))
                .prop_map(|(op, x, y)| e(T::Int, K::Bin(op, bx(x), bx(y))))
                .boxed());
            form!(2, |sc, _t| (prop::sample::select(vec![Op::Div, Op::Rem]), g(T::Int, sc), g(T::Int, sc))
                .prop_map(|(op, x, y)| e(T::Int, K::Bin(op, bx(x), bx(y))))
                .boxed());
            form!(1, |sc, _t| g(T::Int, sc).prop_map(|x| e(T::Int, K::Neg(bx(x)))).boxed());
            form!(1, |sc, _t| g(T::Int, sc).prop_map(|x| e(T::Int, K::Call(F::Abs, vec![x]))).boxed());
            form!(1, |sc, _t| prop_oneof![
                g(T::Str, sc),
                g(T::Int.list(), sc),
                g(T::Dec.list(), sc),
                g(T::Time.list(), sc)
            ]
            .prop_map(|x| e(T::Int, K::Call(F::Size, vec![x])))
            .boxed());
            form!(1, |sc, _t| g(T::Int.list(), sc).prop_map(|l| e(T::Int, K::Call(F::Sum, vec![l]))).boxed());
            form!(1, |sc, _t| prop_oneof![4 => g(T::Dec, sc), 1 => g(T::Str, sc)]
                .prop_map(|x| e(T::Int, K::Call(F::Int, vec![x])))
                .boxed());
        }
        T::Dec => {
            form!(4, |sc, _t| (
                prop::sample::select(vec![Op::Add, Op::Sub, Op::Mul]),
                g(T::Dec, sc),
                branch(&T::Dec, sc, d, false),
                any::<bool>()
            )
                .prop_map(|(op, x, y, swap)| {
                    let (x, y) = if swap { (y, x) } else { (x, y) };
                    e(T::Dec, K::Bin(op, bx(x), bx(y)))
                })
                .boxed());
            form!(3, |sc, _t| (g(T::Dec, sc), divisor(sc, d))
                .prop_map(|(x, y)| e(T::Dec, K::Bin(Op::Div, bx(x), bx(y))))
                .boxed());
            form!(1, |sc, _t| prop_oneof![4 => g(T::Int, sc), 1 => g(T::Str, sc)]
                .prop_map(|x| e(T::Dec, K::Call(F::Decimal, vec![x])))
                .boxed());
            form!(2, |sc, _t| (
                branch(&T::Dec, sc, d, false),
                prop::sample::select(vec![0u32, 0, 1, 2, 2, 3, 4, 10, 28]),
                prop::option::weighted(0.5, prop::sample::select(MODES))
            )
                .prop_map(|(x, places, mode)| e(T::Dec, K::Call(F::Round(places, mode), vec![x])))
                .boxed());
            form!(1, |sc, _t| g(T::Dec, sc).prop_map(|x| e(T::Dec, K::Neg(bx(x)))).boxed());
            form!(1, |sc, _t| g(T::Dec, sc).prop_map(|x| e(T::Dec, K::Call(F::Abs, vec![x]))).boxed());
            form!(1, |sc, _t| g(T::Dec.list(), sc).prop_map(|l| e(T::Dec, K::Call(F::Sum, vec![l]))).boxed());
        }
        T::Bool => {
            form!(1, |sc, _t| prop::sample::select((*sc.fields).clone())
                .prop_map(|(name, _, _)| e(T::Bool, K::Has(name)))
                .boxed());
            form!(4, |sc, _t| comparison(sc, d));
            form!(1, |sc, _t| (
                prop::sample::select(vec![Op::Eq, Op::Ne]),
                prop_oneof![
                    (g(T::Bool, sc), g(T::Bool, sc)),
                    (g(T::Int.list(), sc), g(T::Int.list(), sc)),
                    (g(T::Dec.list(), sc), g(T::Int.list(), sc)),
                    (g(T::Time.list(), sc), g(T::Time.list(), sc)),
                ]
            )
                .prop_map(|(op, (x, y))| e(T::Bool, K::Bin(op, bx(x), bx(y))))
                .boxed());
            form!(2, |sc, _t| (any::<bool>(), g(T::Bool, sc), g(T::Bool, sc))
                .prop_map(|(and, x, y)| e(T::Bool, if and { K::And(bx(x), bx(y)) } else { K::Or(bx(x), bx(y)) }))
                .boxed());
            form!(1, |sc, _t| g(T::Bool, sc).prop_map(|x| e(T::Bool, K::Not(bx(x)))).boxed());
            form!(1, |sc, _t| prop_oneof![
                (branch(&T::Dec, sc, d, true), prop_oneof![g(T::Int.list(), sc), g(T::Dec.list(), sc)]),
                (g(T::Str, sc), g(T::Str.list(), sc)),
                (g(T::Time, sc), g(T::Time.list(), sc)),
            ]
            .prop_map(|(x, l)| e(T::Bool, K::Bin(Op::In, bx(x), bx(l))))
            .boxed());
            form!(1, |sc, _t| {
                let sc = sc.clone();
                (item_type(), prop::sample::select(vec![M::All, M::Exists]))
                    .prop_flat_map(move |(it, m)| {
                        let depth = sc.locals.len();
                        let inner = sc.with_local(it.clone());
                        (gen_expr(it.list(), sc.clone(), d), gen_expr(T::Bool, inner, d))
                            .prop_map(move |(l, body)| e(T::Bool, K::Macro(m, bx(l), depth, bx(body))))
                    })
                    .boxed()
            });
        }
        T::Str => {
            form!(3, |sc, _t| prop_oneof![
                g(T::Int, sc),
                g(T::Dec, sc),
                g(T::Bool, sc),
                g(T::Str, sc),
                g(T::Time, sc),
                g(T::Date, sc),
                g(T::Int.list(), sc),
                g(T::Dec.list(), sc),
                g(T::Time.list(), sc),
            ]
            .prop_map(|x| e(T::Str, K::Call(F::String, vec![x])))
            .boxed());
            form!(1, |sc, _t| (g(T::Str, sc), g(T::Str, sc))
                .prop_map(|(x, y)| e(T::Str, K::Bin(Op::Add, bx(x), bx(y))))
                .boxed());
        }
        T::Time => {
            form!(1, |sc, _t| g(T::Str, sc).prop_map(|x| e(T::Time, K::Call(F::Timestamp, vec![x]))).boxed());
        }
        T::Date => {}
        T::List(item) => {
            let item = (**item).clone();
            form!(2, |sc, _t| list_literal(&item, |t| gen_expr(t.clone(), sc.clone(), d)));
            form!(1, |sc, t| (g(t.clone(), sc), g(t.clone(), sc))
                .prop_map(|(x, y)| e(x.t.clone(), K::Bin(Op::Add, bx(x), bx(y))))
                .boxed());
            form!(1, |sc, t| {
                let depth = sc.locals.len();
                let T::List(item) = t else { unreachable!("a list type") };
                (g(t.clone(), sc), gen_expr(T::Bool, sc.with_local((**item).clone()), d))
                    .prop_map(move |(l, body)| e(l.t.clone(), K::Macro(M::Filter, bx(l), depth, bx(body))))
                    .boxed()
            });
            form!(1, |sc, t| {
                let sc = sc.clone();
                let t = t.clone();
                item_type()
                    .prop_flat_map(move |source| {
                        let depth = sc.locals.len();
                        let T::List(item) = &t else { unreachable!("a list type") };
                        // The body's own type is the list's item type: no integer for a decimal here.
                        let body = gen_expr((**item).clone(), sc.with_local(source.clone()), d);
                        let t = t.clone();
                        (gen_expr(source.list(), sc.clone(), d), body)
                            .prop_map(move |(l, body)| e(t.clone(), K::Macro(M::Map, bx(l), depth, bx(body))))
                    })
                    .boxed()
            });
        }
    }
    forms
}

fn t_of_list(l: &E) -> T {
    match &l.t {
        T::List(item) => (**item).clone(),
        other => unreachable!("a list, not {other:?}"),
    }
}

fn item_type() -> impl Strategy<Value = T> {
    prop::sample::select(vec![T::Int, T::Dec, T::Str, T::Time])
}

fn index(sc: &Scope, d: u32) -> Gen {
    prop_oneof![3 => prop::sample::select(vec![0i64, 1, 2, -1, 5]).prop_map(lit_int), 1 => gen_expr(T::Int, sc.clone(), d)]
        .boxed()
}

/// What a decimal is divided by: mostly a literal whose quotients end (a power of ten, a power
/// of two or five), sometimes zero, three, or a field.
fn divisor(sc: &Scope, d: u32) -> Gen {
    prop_oneof![
        8 => prop::sample::select(vec![1i64, 2, 4, 5, 8, 10, 20, 25, 100, 1000, 1_000_000, -10]).prop_map(lit_int),
        1 => prop::sample::select(vec![0i64, 3]).prop_map(lit_int),
        1 => leaf(&T::Dec, sc),
        1 => gen_expr(T::Int, sc.clone(), d),
    ]
    .boxed()
}

fn cond(t: &T, sc: &Scope, d: u32) -> Gen {
    let t = t.clone();
    (gen_expr(T::Bool, sc.clone(), d), gen_expr(t.clone(), sc.clone(), d), branch(&t, sc, d, true), any::<bool>())
        .prop_map(move |(c, main, other, swap)| {
            let (y, n) = if swap { (other, main) } else { (main, other) };
            e(t.clone(), K::Cond(bx(c), bx(y), bx(n)))
        })
        .boxed()
}

/// `coalesce(…)`: a `null` literal only first (after a typed argument it makes the call `Dyn`).
fn coalesce(t: &T, sc: &Scope, d: u32) -> Gen {
    let t = t.clone();
    (
        prop::option::weighted(0.2, Just(e(t.clone(), K::Null))),
        gen_expr(t.clone(), sc.clone(), d),
        prop::option::of(branch(&t, sc, d, false)),
        any::<bool>(),
    )
        .prop_map(move |(null, main, other, swap)| {
            let mut args: Vec<E> = null.into_iter().collect();
            match other {
                Some(o) if swap => args.extend([o, main]),
                Some(o) => args.extend([main, o]),
                None => args.extend([main.clone(), main]),
            }
            e(t.clone(), K::Call(F::Coalesce, args))
        })
        .boxed()
}

fn comparison(sc: &Scope, d: u32) -> Gen {
    let g = |t: T| gen_expr(t, sc.clone(), d);
    let ops = prop::sample::select(vec![Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Eq, Op::Ne]);
    let operands = prop_oneof![
        (g(T::Int), g(T::Int)),
        (g(T::Dec), g(T::Dec)),
        (g(T::Dec), g(T::Int)),
        (g(T::Int), g(T::Dec)),
        (g(T::Str), g(T::Str)),
        (g(T::Date), g(T::Date)),
        (g(T::Date), g(T::Str)),
        (g(T::Time), g(T::Time)),
    ];
    (ops, operands).prop_map(|(op, (x, y))| e(T::Bool, K::Bin(op, bx(x), bx(y)))).boxed()
}

/// The types of the computed fields.
fn computed_type() -> impl Strategy<Value = T> {
    prop::sample::select(vec![
        T::Int,
        T::Int,
        T::Dec,
        T::Dec,
        T::Dec,
        T::Bool,
        T::Str,
        T::Time,
        T::Date,
        T::Int.list(),
        T::Dec.list(),
        T::Time.list(),
    ])
}

const DEPTH: u32 = 3;

/// Three computed fields: `a` over the inputs, `b` over them and `a`, `c` over all. A field often
/// has the type of one before it, so that it reads it.
fn chain() -> impl Strategy<Value = Vec<E>> {
    (computed_type(), computed_type(), computed_type(), 0..3usize, 0..3usize).prop_flat_map(|(ta, tb, tc, kb, kc)| {
        let tb = if kb == 0 { ta.clone() } else { tb };
        let tc = match kc {
            0 => ta.clone(),
            1 => tb.clone(),
            _ => tc,
        };
        let s0 = Scope::inputs();
        let s1 = s0.with_field("a", ta.clone());
        let s2 = s1.with_field("b", tb.clone());
        (gen_expr(ta, s0, DEPTH), gen_expr(tb, s1, DEPTH), gen_expr(tc, s2, DEPTH)).prop_map(|(a, b, c)| vec![a, b, c])
    })
}

// ---------------------------------------------------------------------------------------------
// The reference: exact values

/// The largest mantissa of a `rust_decimal`: up to it, at scales up to 28, a decimal is exact.
const MANTISSA_MAX: i128 = (1 << 96) - 1;

/// Why the reference gives no value.
#[derive(Clone, Debug, PartialEq)]
enum Fail {
    /// The engine must fail on this record's values (an overflow, a division by zero).
    Value(String),
    /// The engine may give anything of the right type, or a value error: a decimal left the
    /// digits held exactly, a quotient does not end.
    Unknown(String),
}

fn value_err<X>(why: impl Into<String>) -> Result<X, Fail> {
    Err(Fail::Value(why.into()))
}

fn unknown<X>(why: impl Into<String>) -> Result<X, Fail> {
    Err(Fail::Unknown(why.into()))
}

/// An exact decimal: `m / 10^s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct D {
    m: i128,
    s: u32,
}

fn p10(k: u32) -> Option<i128> {
    10_i128.checked_pow(k)
}

impl D {
    fn new(m: i128, s: u32) -> Result<D, Fail> {
        if s > 28 || m.abs() > MANTISSA_MAX {
            return unknown(format!("{} leaves the digits a decimal holds exactly", D { m, s }.text()));
        }
        Ok(D { m, s })
    }

    fn int(i: i64) -> D {
        D { m: i128::from(i), s: 0 }
    }

    /// The mantissa at a scale at least its own.
    fn at(self, s: u32) -> Result<i128, Fail> {
        p10(s - self.s).and_then(|f| self.m.checked_mul(f)).map_or_else(|| unknown("too many digits"), Ok)
    }

    /// The sum at the larger scale (`12.5 + 0.00` is `12.50`).
    fn add(self, o: D) -> Result<D, Fail> {
        let s = self.s.max(o.s);
        D::new(self.at(s)? + o.at(s)?, s)
    }

    fn sub(self, o: D) -> Result<D, Fail> {
        self.add(o.neg())
    }

    /// The product at the sum of the scales (`12.50 * 0` is `0.00`).
    fn mul(self, o: D) -> Result<D, Fail> {
        if self.m == 0 || o.m == 0 {
            return D::new(0, (self.s + o.s).min(28));
        }
        match self.m.checked_mul(o.m) {
            Some(m) => D::new(m, self.s + o.s),
            None => unknown("the product has too many digits"),
        }
    }

    /// The exact quotient with the fewest places, padded to the larger scale of the operands
    /// (what the engine documents: `25990 / 100` is `259.9`, `decimal("1.000") / 2` `0.500`).
    fn div(self, o: D) -> Result<D, Fail> {
        if o.m == 0 {
            return value_err("division by zero");
        }
        let (Some(num), Some(den)) =
            (p10(o.s).and_then(|f| self.m.checked_mul(f)), p10(self.s).and_then(|f| o.m.checked_mul(f)))
        else {
            return unknown("too many digits to divide");
        };
        for k in 0..=28 {
            let Some(n) = p10(k).and_then(|f| num.checked_mul(f)) else { break };
            if n % den == 0 {
                let (q, target) = (n / den, self.s.max(o.s));
                return if k >= target {
                    D::new(q, k)
                } else {
                    match p10(target - k).and_then(|f| q.checked_mul(f)) {
                        Some(m) => D::new(m, target),
                        None => unknown("too many digits"),
                    }
                };
            }
        }
        unknown("the quotient does not end within 28 places")
    }

    fn neg(self) -> D {
        D { m: -self.m, s: self.s }
    }

    fn cmp(self, o: D) -> Ordering {
        // Whole parts, then fractions at 28 places: both fit an i128 whatever the scales.
        let whole = |d: D| d.m / p10(d.s).expect("scale at most 28");
        let frac = |d: D| (d.m % p10(d.s).expect("scale at most 28")) * p10(28 - d.s).expect("at most 28");
        whole(self).cmp(&whole(o)).then(frac(self).cmp(&frac(o)))
    }

    fn trunc(self) -> Result<i64, Fail> {
        let t = self.m / p10(self.s).expect("scale at most 28");
        i64::try_from(t).map_or_else(|_| value_err("does not fit a 64-bit integer"), Ok)
    }

    /// `round(d, places, mode)`: rounded to `places`, or padded to them.
    fn round(self, places: u32, mode: &str) -> Result<D, Fail> {
        let mut d = self;
        if d.s > places {
            let f = p10(d.s - places).expect("at most 28");
            let (q, r) = (d.m / f, d.m % f);
            let half = (r.abs() * 2).cmp(&f);
            let away = r != 0
                && match mode {
                    "half_even" => half == Ordering::Greater || (half == Ordering::Equal && q % 2 != 0),
                    "half_up" => half != Ordering::Less,
                    "half_down" => half == Ordering::Greater,
                    "down" => false,
                    "up" => true,
                    "floor" => d.m < 0,
                    "ceiling" => d.m > 0,
                    other => unreachable!("rounding mode {other}"),
                };
            d = D { m: if away { q + d.m.signum() } else { q }, s: places };
        }
        if d.s < places {
            match p10(places - d.s).and_then(|f| d.m.checked_mul(f)) {
                Some(m) if m.abs() <= MANTISSA_MAX => d = D { m, s: places },
                _ => return value_err("does not fit the places"),
            }
        }
        D::new(d.m, d.s)
    }

    /// As `rust_decimal` writes it: every digit of the scale.
    fn text(self) -> String {
        let digits = self.m.unsigned_abs().to_string();
        let s = self.s as usize;
        let digits = if digits.len() <= s { format!("{}{digits}", "0".repeat(s + 1 - digits.len())) } else { digits };
        let (whole, frac) = digits.split_at(digits.len() - s);
        let sign = if self.m < 0 { "-" } else { "" };
        if s == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{frac}") }
    }

    /// Plain decimal text (`-12.50`, ` 7 `); other forms `rust_decimal` may read are unknown.
    fn parse(text: &str) -> Result<D, Fail> {
        let t = text.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(whole) && (frac.is_empty() || digits(frac)) && !body.ends_with('.') {
            let all = format!("{whole}{frac}");
            if all.trim_start_matches('0').len() > 28 || frac.len() > 28 {
                return unknown("too many digits");
            }
            let m: i128 = all.parse().expect("digits");
            return D::new(if neg { -m } else { m }, frac.len() as u32);
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b)) {
            return unknown(format!("{t:?} may be a number in another form"));
        }
        value_err(format!("{text:?} is not a decimal number"))
    }
}

impl fmt::Display for D {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

/// A reference value.
#[derive(Clone, Debug, PartialEq)]
enum R {
    Null,
    Int(i64),
    Dec(D),
    Bool(bool),
    Str(String),
    Time(DateTime<Utc>),
    List(Vec<R>),
}

type Res = Result<R, Fail>;

fn instant(text: &str) -> Result<DateTime<Utc>, Fail> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_or_else(|_| value_err(format!("{text:?} is not an RFC 3339 datetime")), Ok)
}

fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl R {
    /// The JSON the value is written as.
    fn json(&self) -> Value {
        match self {
            R::Null => Value::Null,
            R::Int(i) => Value::from(*i),
            R::Dec(d) => Value::from(d.text()),
            R::Bool(b) => Value::from(*b),
            R::Str(s) => Value::from(s.as_str()),
            R::Time(t) => Value::from(time_text(t)),
            R::List(items) => Value::Array(items.iter().map(R::json).collect()),
        }
    }

    /// `string(x)`.
    fn text(&self) -> String {
        match self {
            R::Int(i) => i.to_string(),
            R::Dec(d) => d.text(),
            R::Bool(b) => b.to_string(),
            R::Str(s) => s.clone(),
            R::Time(t) => time_text(t),
            R::List(_) => self.json().to_string(),
            R::Null => unreachable!("string(null) is null"),
        }
    }

    fn dec(&self) -> Option<D> {
        match self {
            R::Int(i) => Some(D::int(*i)),
            R::Dec(d) => Some(*d),
            _ => None,
        }
    }

    /// The value as its static type has it: an integer where a decimal is expected is one.
    fn conform(self, t: &T) -> R {
        match (self, t) {
            (R::Int(i), T::Dec) => R::Dec(D::int(i)),
            (R::List(items), T::List(item)) => R::List(items.into_iter().map(|v| v.conform(item)).collect()),
            (v, _) => v,
        }
    }
}

fn order(a: &R, b: &R) -> Option<Ordering> {
    match (a, b) {
        (R::Int(x), R::Int(y)) => Some(x.cmp(y)),
        (R::Str(x), R::Str(y)) => Some(x.cmp(y)),
        (R::Time(x), R::Time(y)) => Some(x.cmp(y)),
        _ => Some(a.dec()?.cmp(b.dec()?)),
    }
}

fn equal(a: &R, b: &R) -> bool {
    match (a, b) {
        (R::Null, R::Null) => true,
        (R::Null, _) | (_, R::Null) => false,
        (R::Bool(x), R::Bool(y)) => x == y,
        (R::List(x), R::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(i, j)| equal(i, j)),
        _ => order(a, b) == Some(Ordering::Equal),
    }
}

fn int_result(v: i128, op: &str) -> Res {
    i64::try_from(v).map_or_else(|_| value_err(format!("`{op}` overflows")), |i| Ok(R::Int(i)))
}

fn arith(op: Op, l: R, r: R) -> Res {
    Ok(match (l, r) {
        (R::Null, _) | (_, R::Null) => R::Null,
        (R::Int(x), R::Int(y)) => {
            let (x, y) = (i128::from(x), i128::from(y));
            let v = match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div if y == 0 => return value_err("division by zero"),
                Op::Div => x / y,
                Op::Rem if y == 0 => return value_err("division by zero"),
                // CEL's: the remainder of the smallest integer by -1 overflows, as its quotient does.
                Op::Rem if x == i128::from(i64::MIN) && y == -1 => return value_err("`%` overflows"),
                Op::Rem => x % y,
                _ => unreachable!("arithmetic"),
            };
            return int_result(v, op.symbol());
        }
        (R::Str(x), R::Str(y)) if op == Op::Add => R::Str(x + &y),
        (R::List(mut x), R::List(y)) if op == Op::Add => {
            x.extend(y);
            R::List(x)
        }
        (l, r) => {
            let (Some(x), Some(y)) = (l.dec(), r.dec()) else { panic!("the generator made {l:?} {op:?} {r:?}") };
            R::Dec(match op {
                Op::Add => x.add(y)?,
                Op::Sub => x.sub(y)?,
                Op::Mul => x.mul(y)?,
                Op::Div => x.div(y)?,
                _ => unreachable!("decimal arithmetic"),
            })
        }
    })
}

/// What an expression reads: the fields (an unknown field's value is `Err`) and macro items.
struct Cx {
    fields: HashMap<Rc<str>, Result<R, ()>>,
}

fn truth(v: Res) -> Result<Option<bool>, Fail> {
    match v? {
        R::Bool(b) => Ok(Some(b)),
        R::Null => Ok(None),
        other => panic!("the generator made a condition of {other:?}"),
    }
}

/// CEL's logic: a decisive side (`false` for `&&`) wins over null and errors on the other.
fn logic(decisive: bool, x: &E, y: &E, cx: &Cx, locals: &mut Vec<R>) -> Res {
    let l = truth(eval(x, cx, locals));
    if l == Ok(Some(decisive)) {
        return Ok(R::Bool(decisive));
    }
    let r = truth(eval(y, cx, locals));
    Ok(match (l, r) {
        (_, Ok(Some(b))) if b == decisive => R::Bool(decisive),
        (Err(Fail::Unknown(w)), _) | (_, Err(Fail::Unknown(w))) => return Err(Fail::Unknown(w)),
        (Err(f), _) | (_, Err(f)) => return Err(f),
        (Ok(Some(_)), Ok(Some(_))) => R::Bool(!decisive),
        _ => R::Null,
    })
}

fn eval(e: &E, cx: &Cx, locals: &mut Vec<R>) -> Res {
    let v = match &e.k {
        K::Field(name) | K::Has(name) => {
            let v = cx.fields[name].clone().map_or_else(|()| unknown(format!("`{name}` is unknown")), Ok)?;
            if matches!(e.k, K::Has(_)) { R::Bool(v != R::Null) } else { v }
        }
        K::Var(depth) => locals[*depth].clone(),
        K::Null => R::Null,
        K::Int(i) => R::Int(*i),
        K::Bool(b) => R::Bool(*b),
        K::Str(s) => R::Str((*s).to_owned()),
        K::Not(x) => match truth(eval(x, cx, locals))? {
            Some(b) => R::Bool(!b),
            None => R::Null,
        },
        K::Neg(x) => match eval(x, cx, locals)? {
            R::Int(i) => int_result(-i128::from(i), "-")?,
            R::Dec(d) => R::Dec(d.neg()),
            R::Null => R::Null,
            other => panic!("the generator negated {other:?}"),
        },
        K::And(x, y) => logic(false, x, y, cx, locals)?,
        K::Or(x, y) => logic(true, x, y, cx, locals)?,
        K::Bin(op, x, y) => {
            let l = eval(x, cx, locals)?;
            let r = eval(y, cx, locals)?;
            match op {
                Op::Eq => R::Bool(equal(&l, &r)),
                Op::Ne => R::Bool(!equal(&l, &r)),
                Op::In => match r {
                    R::Null => R::Null,
                    R::List(items) => R::Bool(items.iter().any(|i| equal(&l, i))),
                    other => panic!("the generator made `in` {other:?}"),
                },
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    if l == R::Null || r == R::Null {
                        R::Null
                    } else {
                        let ord = order(&l, &r).unwrap_or_else(|| panic!("the generator ordered {l:?} and {r:?}"));
                        R::Bool(match op {
                            Op::Lt => ord.is_lt(),
                            Op::Le => ord.is_le(),
                            Op::Gt => ord.is_gt(),
                            _ => ord.is_ge(),
                        })
                    }
                }
                _ => arith(*op, l, r)?,
            }
        }
        K::Cond(c, y, n) => match truth(eval(c, cx, locals))? {
            Some(true) => eval(y, cx, locals)?,
            Some(false) => eval(n, cx, locals)?,
            None => R::Null,
        },
        K::List(items) => R::List(items.iter().map(|i| eval(i, cx, locals)).collect::<Result<_, _>>()?),
        K::Index(l, i) => {
            let l = eval(l, cx, locals)?;
            let i = eval(i, cx, locals)?;
            match (l, i) {
                (_, R::Null) | (R::Null, _) => R::Null,
                (R::List(items), R::Int(i)) => {
                    let len = items.len() as i64;
                    let k = if i < 0 { len + i } else { i };
                    if (0..len).contains(&k) { items[k as usize].clone() } else { R::Null }
                }
                other => panic!("the generator indexed {other:?}"),
            }
        }
        K::Call(f, args) => {
            let args: Vec<R> = args.iter().map(|a| eval(a, cx, locals)).collect::<Result<_, _>>()?;
            call(*f, args)?
        }
        K::Macro(m, list, depth, body) => match eval(list, cx, locals)? {
            R::Null => R::Null,
            R::List(items) => {
                let mut out = Vec::new();
                let mut verdict = *m == M::All;
                for item in items {
                    assert_eq!(locals.len(), *depth, "macro items by depth");
                    locals.push(item);
                    let result = eval(body, cx, locals);
                    let item = locals.pop().expect("pushed above");
                    match m {
                        M::Map => out.push(result?),
                        M::Filter => {
                            if truth(result)? == Some(true) {
                                out.push(item);
                            }
                        }
                        M::All => {
                            if truth(result)? != Some(true) {
                                verdict = false;
                                break;
                            }
                        }
                        M::Exists => {
                            if truth(result)? == Some(true) {
                                verdict = true;
                                break;
                            }
                        }
                    }
                }
                match m {
                    M::Map | M::Filter => R::List(out),
                    M::All | M::Exists => R::Bool(verdict),
                }
            }
            other => panic!("the generator made a macro over {other:?}"),
        },
    };
    Ok(v.conform(&e.t))
}

fn call(f: F, args: Vec<R>) -> Res {
    if f == F::Coalesce {
        return Ok(args.into_iter().find(|a| *a != R::Null).unwrap_or(R::Null));
    }
    if args.contains(&R::Null) {
        return Ok(R::Null);
    }
    let mut args = args.into_iter();
    let x = args.next().expect("one argument");
    Ok(match (f, x) {
        (F::Decimal, R::Str(s)) => R::Dec(D::parse(&s)?),
        (F::Decimal, x) => R::Dec(x.dec().expect("a number")),
        (F::Round(places, mode), x) => {
            let d = match x {
                R::Str(s) => D::parse(&s)?,
                x => x.dec().expect("a number"),
            };
            R::Dec(d.round(places, mode.unwrap_or("half_even"))?)
        }
        (F::Int, R::Int(i)) => R::Int(i),
        (F::Int, R::Dec(d)) => R::Int(d.trunc()?),
        (F::Int, R::Str(s)) => match s.trim().parse::<i64>() {
            Ok(i) => R::Int(i),
            Err(_) => return value_err(format!("{s:?} is not an integer")),
        },
        (F::String, x) => R::Str(x.text()),
        (F::Size, R::Str(s)) => R::Int(s.chars().count() as i64),
        (F::Size, R::List(items)) => R::Int(items.len() as i64),
        (F::Sum, R::List(items)) => {
            let mut total = R::Int(0);
            for item in items.into_iter().filter(|i| *i != R::Null) {
                total = arith(Op::Add, total, item)?;
            }
            total
        }
        (F::Min | F::Max, R::List(items)) => {
            let mut best: Option<R> = None;
            for item in items.into_iter().filter(|i| *i != R::Null) {
                best = Some(match best {
                    None => item,
                    Some(b) => {
                        let ord = order(&item, &b).expect("ordered items");
                        let better = if f == F::Min { ord.is_lt() } else { ord.is_gt() };
                        if better { item } else { b }
                    }
                });
            }
            best.unwrap_or(R::Null)
        }
        (F::Timestamp, R::Str(s)) => R::Time(instant(&s)?),
        (F::Timestamp, R::Time(t)) => R::Time(t),
        (F::Abs, R::Int(i)) => int_result(i128::from(i).abs(), "abs")?,
        (F::Abs, R::Dec(d)) => R::Dec(D { m: d.m.abs(), s: d.s }),
        (f, x) => panic!("the generator called {f:?} on {x:?}"),
    })
}

// ---------------------------------------------------------------------------------------------
// Running the engine

/// The names an expression sees: the inputs, then the computed fields compiled so far.
struct Scopes {
    fields: Vec<(String, Ty)>,
}

impl Names for Scopes {
    fn target(&self, name: &str) -> Option<(usize, Ty)> {
        self.fields.iter().position(|(n, _)| n == name).map(|i| (i, self.fields[i].1.clone()))
    }

    fn target_names(&self) -> Vec<String> {
        self.fields.iter().map(|(n, _)| n.clone()).collect()
    }

    fn path(&mut self, _steps: &[PathStep]) -> usize {
        unreachable!("the generated expressions read no `$` paths")
    }

    fn lookup(&self, _name: &str) -> Option<Arc<LookupTable>> {
        None
    }

    fn lookup_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn secret(&self, _reference: &str) -> Result<Arc<[u8]>, String> {
        Err("no keys here".into())
    }
}

/// Whether the engine's value is of the kind its static type promises.
fn fits(v: &EVal<'_>, t: &T) -> bool {
    match (v, t) {
        (EVal::Null, _)
        | (EVal::Int(_), T::Int)
        | (EVal::Dec(_), T::Dec)
        | (EVal::Bool(_), T::Bool)
        | (EVal::Str(_), T::Str | T::Date)
        | (EVal::Time(_), T::Time) => true,
        (EVal::List(items), T::List(item)) => items.iter().all(|v| fits(v, item)),
        (EVal::Json(Value::Array(items)), T::List(item)) => items.iter().all(|v| fits(&EVal::from_json(v), item)),
        _ => false,
    }
}

/// The messages of errors that come from a record's values, not from the kinds of values.
const VALUE_ERRORS: &[&str] = &[
    "overflows",
    "division by zero",
    "is not a decimal number",
    "is not an integer",
    "is not an RFC 3339 datetime",
    "does not fit",
];

fn is_value_error(e: &EvalError) -> bool {
    e.kind == EvalErrorKind::Value && VALUE_ERRORS.iter().any(|p| e.message(false).contains(p))
}

/// A computed field's state in the reference.
#[derive(Clone, Debug, PartialEq)]
enum Expected {
    /// Its value (`Null`: absent).
    Is(R),
    /// It fails with a value error.
    Fails,
    /// The reference cannot tell.
    Unknown,
}

fn input_state(kind: Input, v: &Option<Value>) -> (FieldState<'static>, R) {
    let Some(v) = v.as_ref().filter(|v| !v.is_null()) else { return (FieldState::Absent, R::Null) };
    let text = || v.as_str().expect("a text input").to_owned();
    match kind {
        Input::Int => (FieldState::Present(Val::owned(v.clone())), R::Int(v.as_i64().expect("an integer"))),
        Input::Bool => (FieldState::Present(Val::owned(v.clone())), R::Bool(v.as_bool().expect("a boolean"))),
        Input::Str | Input::Date => (FieldState::Present(Val::text(text())), R::Str(text())),
        Input::Time => {
            let stored = normalize_datetime(&text()).expect("a datetime input").into_owned();
            (FieldState::Present(Val::text(stored)), R::Time(instant(&text()).expect("a datetime input")))
        }
        Input::Dec => {
            let stored = rust_decimal::Decimal::from_str_exact(&text()).expect("a decimal input").to_string();
            (FieldState::Present(Val::text(stored)), R::Dec(D::parse(&text()).expect("a decimal input")))
        }
    }
}

fn record_json(record: &Record) -> Value {
    let mut map = Map::new();
    for ((name, _), v) in INPUTS.iter().zip(record) {
        if let Some(v) = v {
            map.insert((*name).to_owned(), v.clone());
        }
    }
    Value::Object(map)
}

fn mapping(chain: &[E]) -> String {
    let mut text = String::from("version: 1\nname: t\nfields:\n");
    for (name, kind) in INPUTS {
        let line = match kind {
            Input::Dec => format!(
                "  - {{ target: {name}s, source: $.{name}, type: string }}\n  - {{ target: {name}, expr: 'decimal({name}s)' }}\n"
            ),
            _ => {
                let ty = match kind {
                    Input::Int => "integer",
                    Input::Str => "string",
                    Input::Bool => "boolean",
                    Input::Time => "datetime",
                    Input::Date => "date",
                    Input::Dec => unreachable!("above"),
                };
                format!("  - {{ target: {name}, source: $.{name}, type: {ty} }}\n")
            }
        };
        text.push_str(&line);
    }
    for (name, e) in COMPUTED.iter().zip(chain) {
        let _ = writeln!(text, "  - target: {name}\n    expr: '{}'", e.text().replace('\'', "''"));
    }
    text
}

fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok { Ok(()) } else { Err(TestCaseError::fail(message())) }
}

fn shown(v: &Result<Option<Val<'_>>, EvalError>) -> String {
    match v {
        Ok(Some(v)) => v.to_value().to_string(),
        Ok(None) => "null".into(),
        Err(e) => format!("error: {}", e.message(false)),
    }
}

/// What the cases exercised, so that the property cannot hold by testing nothing: a generator
/// whose expressions all gave null, or all left the digits the reference follows, would pass.
#[derive(Debug, Default)]
struct Coverage {
    /// Computed fields the reference gave an exact value other than null, by type.
    values: HashMap<String, usize>,
    nulls: usize,
    /// Computed fields that fail on their values, as the reference says they must.
    value_errors: usize,
    unknown: usize,
    /// Evaluations of `b` and `c` that read an earlier computed field.
    chained: usize,
    mapped: usize,
    failed: usize,
}

/// Compiles the chain field by field, runs it over each record as the plan does and through a
/// real plan, and holds both to the reference.
fn run(chain: &[E], records: &[Record], cov: &mut Coverage) -> Result<(), TestCaseError> {
    let mut names = Scopes { fields: INPUTS.iter().map(|(n, k)| ((*n).to_owned(), k.t().ty())).collect() };
    let mut compiled = Vec::new();
    for (name, e) in COMPUTED.iter().zip(chain) {
        let text = e.text();
        let c = compile(&text, &mut names)
            .map_err(|errors| TestCaseError::fail(format!("`{name}: {text}` is refused: {errors:?}")))?;
        check(c.ty == e.t.ty(), || {
            format!("`{name}: {text}`: the checker says {:?}, the generator meant {:?}", c.ty, e.t)
        })?;
        let mut reads = Vec::new();
        e.reads(&mut reads);
        let mut reads: Vec<usize> =
            reads.iter().map(|r| names.fields.iter().position(|(n, _)| **n == **r).expect("a known field")).collect();
        reads.sort_unstable();
        reads.dedup();
        check(c.reads == reads, || format!("`{name}: {text}` reads {:?}, the checker says {:?}", reads, c.reads))?;
        names.fields.push(((*name).to_owned(), c.ty.clone()));
        compiled.push(c);
    }
    let spec = mapping(chain);
    let plan = match load_str(&spec) {
        Ok((_, plan)) => plan,
        Err(diags) => {
            return Err(TestCaseError::fail(format!(
                "the mapping is refused:\n{spec}\n{:?}",
                diags.iter().map(|d| &d.message).collect::<Vec<_>>()
            )));
        }
    };

    for record in records {
        let input = record_json(record);
        let mut states: Vec<FieldState<'static>> = Vec::new();
        let mut cx = Cx { fields: HashMap::new() };
        for ((name, kind), v) in INPUTS.iter().zip(record) {
            let (state, r) = input_state(*kind, v);
            states.push(state);
            cx.fields.insert(Rc::from(*name), Ok(r));
        }
        let mut expected: Vec<Expected> = Vec::new();
        for ((name, e), c) in COMPUTED.iter().zip(chain).zip(&compiled) {
            let text = e.text();
            let mut reads = Vec::new();
            e.reads(&mut reads);
            let known = |r: &Rc<str>| match COMPUTED.iter().position(|n| **n == **r) {
                Some(i) => expected[i].clone(),
                None => Expected::Is(R::Null),
            };
            let want = if reads.iter().any(|r| known(r) == Expected::Unknown) {
                Expected::Unknown
            } else if reads.iter().any(|r| known(r) == Expected::Fails) {
                // Not evaluated: it reads a field with errors.
                Expected::Is(R::Null)
            } else {
                match eval(e, &cx, &mut Vec::new()) {
                    Ok(r) => Expected::Is(r),
                    Err(Fail::Value(_)) => Expected::Fails,
                    Err(Fail::Unknown(_)) => Expected::Unknown,
                }
            };
            match &want {
                Expected::Is(R::Null) => cov.nulls += 1,
                Expected::Is(_) => *cov.values.entry(format!("{:?}", e.t)).or_default() += 1,
                Expected::Fails => cov.value_errors += 1,
                Expected::Unknown => cov.unknown += 1,
            }
            if reads.iter().any(|r| COMPUTED.contains(&&**r)) {
                cov.chained += 1;
            }
            let what = || format!("`{name}: {text}` over {input}");

            let state = if c.reads.iter().any(|&i| states[i] == FieldState::Failed) {
                check(want == Expected::Is(R::Null) || want == Expected::Unknown, || {
                    format!("{}: not evaluated (it reads a failed field), the reference gives {want:?}", what())
                })?;
                FieldState::Absent
            } else {
                let budget = Budget::new(DEFAULT_STEPS);
                let env = Env { fields: &states, slots: &[], budget: &budget };
                let general = c.code.eval(env, &mut Vec::new());
                match &general {
                    Ok(v) => check(fits(v, &e.t), || format!("{}: gave {v:?}, which is not {:?}", what(), e.t))?,
                    Err(err) => check(is_value_error(err), || {
                        format!("{}: failed on a type at run time: {}", what(), err.message(false))
                    })?,
                }
                let general = general.and_then(EVal::into_val);
                let budget = Budget::new(DEFAULT_STEPS);
                let env = Env { fields: &states, slots: &[], budget: &budget };
                let value = c.code.value(env, &mut Vec::new());
                check(value == general, || {
                    format!("{}: the fast path gives {}, the general walk {}", what(), shown(&value), shown(&general))
                })?;
                match &want {
                    Expected::Is(r) => {
                        let got = value.as_ref().map(|v| v.as_ref().map_or(Value::Null, Val::to_value));
                        check(got.as_ref().ok() == Some(&r.json()), || {
                            format!("{}: the engine gives {}, exactly it is {}", what(), shown(&value), r.json())
                        })?;
                    }
                    Expected::Fails => check(value.is_err(), || {
                        format!("{}: the engine gives {}, but it should fail on the values", what(), shown(&value))
                    })?,
                    Expected::Unknown => {}
                }
                match value {
                    Ok(Some(v)) => FieldState::Present(v),
                    Ok(None) => FieldState::Absent,
                    Err(_) => FieldState::Failed,
                }
            };
            states.push(state);
            cx.fields.insert(
                Rc::from(*name),
                match &want {
                    Expected::Is(r) => Ok(r.clone()),
                    Expected::Fails => Ok(R::Null),
                    Expected::Unknown => Err(()),
                },
            );
            expected.push(want);
        }

        // The plan gives what the fields gave one by one.
        let outcome = plan.apply(&serde_json::to_vec(&input).expect("JSON"));
        let sim = &states[INPUTS.len()..];
        let failed: Vec<&str> =
            COMPUTED.iter().zip(sim).filter(|(_, s)| **s == FieldState::Failed).map(|(n, _)| *n).collect();
        let program = || format!("{}\nover {input}", chain.iter().map(E::text).collect::<Vec<_>>().join("\n"));
        match &outcome {
            Outcome::Mapped(_) => {
                cov.mapped += 1;
                let out = outcome.ok_value().expect("mapped");
                check(failed.is_empty(), || format!("{}: the plan maps it, but {failed:?} failed", program()))?;
                for (name, state) in COMPUTED.iter().zip(sim) {
                    let want = match state {
                        FieldState::Present(v) => Some(v.to_value()),
                        _ => None,
                    };
                    check(out.get(*name) == want.as_ref(), || {
                        format!(
                            "{}: the plan writes {name} = {:?}, field by field it is {want:?}",
                            program(),
                            out.get(*name)
                        )
                    })?;
                }
            }
            Outcome::Failed(f) => {
                cov.failed += 1;
                let errors: Vec<(Option<&str>, &str, &str)> =
                    f.errors.iter().map(|e| (e.field.as_deref(), e.rule.as_str(), e.message.as_str())).collect();
                let mut fields: Vec<&str> = errors.iter().filter_map(|(f, ..)| *f).collect();
                fields.sort_unstable();
                check(errors.iter().all(|(_, rule, _)| *rule == "expr") && fields == failed, || {
                    format!("{}: the plan fails with {errors:?}, field by field {failed:?} failed", program())
                })?;
            }
            Outcome::Dropped => return Err(TestCaseError::fail(format!("{}: dropped", program()))),
        }
    }
    Ok(())
}

/// The promise of the checker, over random chains of computed fields and random records. Run by
/// hand rather than by `proptest!` to look at what the cases covered afterwards; failures are
/// kept in `proptest-regressions/` as `proptest!` keeps them.
#[test]
fn well_typed_expressions_run_as_typed_and_exactly() {
    let config = ProptestConfig { cases: 512, source_file: Some(file!()), ..ProptestConfig::default() };
    let cases = config.cases as usize;
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let cov = std::cell::RefCell::new(Coverage::default());
    let strategy = (chain(), prop::collection::vec(record(), 1..=4));
    if let Err(e) = runner.run(&strategy, |(chain, records)| run(&chain, &records, &mut cov.borrow_mut())) {
        panic!("{e}");
    }
    let cov = cov.into_inner();
    let exact: usize = cov.values.values().sum();
    let all = exact + cov.nulls + cov.value_errors + cov.unknown;
    assert!(all >= cases * 3, "{cov:?}");
    assert!(exact * 2 >= all, "most fields have a value to compare: {cov:?}");
    assert!(cov.unknown * 10 <= all, "the reference follows most values exactly: {cov:?}");
    for t in [T::Int, T::Dec, T::Bool, T::Str, T::Time, T::Date, T::Int.list(), T::Dec.list(), T::Time.list()] {
        let n = cov.values.get(&format!("{t:?}")).copied().unwrap_or(0);
        assert!(n * 100 >= all, "values of {t:?}: {cov:?}");
    }
    assert!(cov.value_errors * 50 >= all && cov.nulls * 50 >= all, "{cov:?}");
    assert!(cov.chained * 5 >= all, "fields read computed fields: {cov:?}");
    assert!(cov.mapped * 5 >= cases && cov.failed * 20 >= cases, "{cov:?}");
}

// ---------------------------------------------------------------------------------------------
// Cases the property found, fixed

/// What the checker types a decimal is a decimal at run time, also where an integer is joined
/// with decimals (a list, `? :`, `coalesce`, the sum of no decimals): its field writes decimal
/// text, and never fails on its own type.
#[test]
fn an_integer_joined_with_decimals_is_a_decimal() {
    let spec = r#"version: 1
name: t
fields:
  - { target: i, source: $.i, type: integer }
  - { target: b, source: $.b, type: boolean }
  - { target: list, expr: '[decimal("1.5"), i]' }
  - { target: either, expr: 'b ? decimal("1.5") : i' }
  - { target: first, expr: 'coalesce(i, decimal("1.5"))' }
  - { target: none, expr: 'sum([decimal("1.5")].filter(x, x > 2))' }
  - { target: most, expr: 'max([decimal("1.5"), i])' }
  - { target: text, expr: 'string([decimal("1.5"), i])' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"i": 2, "b": false}"#);
    let expected = serde_json::json!({
        "i": 2, "b": false,
        "list": ["1.5", "2"], "either": "2", "first": "2", "none": "0", "most": "2", "text": "[\"1.5\",\"2\"]",
    });
    assert_eq!(out.ok_value(), Some(expected), "{:?}", out.errors());
}

/// A zero with places is rounded and padded like any other decimal: `round()` and the
/// `to_decimal` transform give it the places asked for instead of failing.
#[test]
fn a_zero_with_places_takes_more_places() {
    let spec = r#"version: 1
name: t
fields:
  - { target: price, source: $.price, type: string, transform: [{ to_decimal: { scale: 3 } }] }
  - { target: rounded, expr: 'round(decimal("0.00"), 3)' }
  - { target: negative, expr: 'round(decimal("-0.0"), 2, "floor")' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"price": "0.00"}"#);
    let expected = serde_json::json!({"price": "0.000", "rounded": "0.000", "negative": "0.00"});
    assert_eq!(out.ok_value(), Some(expected), "{:?}", out.errors());
}

/// `+` joins lists however they were made: a list literal, a list computed into a field, an
/// array of the record.
#[test]
fn lists_read_from_fields_join() {
    let spec = r#"version: 1
name: t
fields:
  - { target: tags, source: $.tags, type: array }
  - { target: counts, expr: '[1, 2]' }
  - { target: twice, expr: 'counts + counts' }
  - { target: more, expr: 'tags + ["x"]' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"tags": ["a", "b"]}"#);
    let expected = serde_json::json!({
        "tags": ["a", "b"], "counts": [1, 2], "twice": [1, 2, 1, 2], "more": ["a", "b", "x"],
    });
    assert_eq!(out.ok_value(), Some(expected), "{:?}", out.errors());
}

/// A zero has no sign, whatever its places: negating one gives it back, as `-0` is the integer 0.
#[test]
fn a_negated_decimal_zero_is_zero() {
    let spec = r#"version: 1
name: t
fields:
  - { target: m, source: $.m, type: string }
  - { target: negated, expr: '-(decimal(m))' }
  - { target: text, expr: 'string(-decimal(m))' }
"#;
    let (_, plan) = load_str(spec).unwrap_or_else(|d| panic!("{d:?}"));
    let out = plan.apply(br#"{"m": "0.00"}"#);
    assert_eq!(out.ok_value(), Some(serde_json::json!({"m": "0.00", "negated": "0.00", "text": "0.00"})));
    let out = plan.apply(br#"{"m": "-1.50"}"#);
    assert_eq!(out.ok_value(), Some(serde_json::json!({"m": "-1.50", "negated": "1.50", "text": "1.50"})));
}
