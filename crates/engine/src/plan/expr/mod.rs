//! Expressions: rules, conditions and computed fields, in a subset of CEL.
//!
//! An expression is parsed once ([`syntax`]), resolved and type-checked against the spec's own
//! targets ([`check`]) — every unknown name, wrong operand and bad argument is a compile error at
//! its column — and kept as a small tree of [`Code`] that [`eval`] walks for each record over the
//! fields already evaluated. Nothing is looked up by name at run time.
//!
//! Absent values are `null`. Arithmetic, comparisons and most functions given a `null` give
//! `null` (so a computed field over an absent input is left out, and a rule comparing an absent
//! value is not judged); `==`, `!=`, `has()`, `coalesce()` and `lookup()` take it as a value.

pub mod check;
pub mod code;
pub mod eval;
pub mod functions;
#[cfg(test)]
mod props;
pub mod syntax;

pub use check::{Compiled, Names, compile};
pub use code::{
    Code, DatetimePattern, Domain, Func, Lit, LookupTable, MacroKind, Reading, Rounding, RowShape, Ty, rescale,
};
pub use eval::{Budget, DEFAULT_STEPS, EVal, Env, EvalError, EvalErrorKind, MAX_LIST_ITEMS, MAX_TEXT_BYTES, hex};
