//! Name resolution and type checking: an [`Ast`] becomes [`Code`] with a static [`Ty`], or a list
//! of every problem found, each at its character offset.

use std::sync::Arc;

use super::code::{Code, Domain, Func, Lit, LookupTable, MacroKind, Reading, Rounding, Ty};
use super::functions::{self, Form, Param, Takes};
use super::syntax::{Ast, AstKind, BinaryOp, PathStep, UnaryOp};
use crate::diagnostic::suggestion;

/// What an expression can name: the scope's targets, record paths, lookup tables and secrets.
pub trait Names {
    /// A target of this scope: its field index and static type.
    fn target(&self, name: &str) -> Option<(usize, Ty)>;
    /// Every target name, for suggestions.
    fn target_names(&self) -> Vec<String>;
    /// Why targets cannot be read here, if they cannot (`drop:` runs before any field).
    fn targets_unavailable(&self) -> Option<&'static str> {
        None
    }
    /// Registers a plain path into the record (or the item being mapped) and gives its slot.
    fn path(&mut self, steps: &[PathStep]) -> usize;
    /// The `lookups:` table of this name, if there is one.
    fn lookup(&self, name: &str) -> Option<Arc<LookupTable>>;
    /// The names of every `lookups:` table, for suggestions.
    fn lookup_names(&self) -> Vec<String>;
    /// Resolves a key reference (`env://NAME`) at compile time.
    fn secret(&self, reference: &str) -> Result<Arc<[u8]>, String>;
    /// What a string field's values can be, when the compiler knows.
    fn domain(&self, _index: usize) -> Option<Domain> {
        None
    }
}

/// A checked expression.
#[derive(Debug)]
pub struct Compiled {
    /// The code that evaluates it.
    pub code: Code,
    /// The type of its value.
    pub ty: Ty,
    /// The fields it reads: it is evaluated only when none of them failed.
    pub reads: Vec<usize>,
    /// Things that compile but are surely mistakes (a comparison that can never hold), by offset.
    pub warnings: Vec<(usize, String)>,
    /// The expression as written, for `explain`.
    pub text: String,
    /// Whether it reads a sensitive field (or belongs to one): its error messages then leave the
    /// record's values out. Set once the fields' sensitivity is known.
    pub reads_sensitive: bool,
}

/// Parses and checks `text`; errors are `(character offset, message)`.
pub fn compile(text: &str, names: &mut dyn Names) -> Result<Compiled, Vec<(usize, String)>> {
    let ast = super::syntax::parse(text).map_err(|e| vec![(e.at, e.message)])?;
    let mut checker =
        Checker { names, errors: Vec::new(), reads: Vec::new(), locals: Vec::new(), warnings: Vec::new() };
    let checked = checker.check(&ast);
    match checked {
        Some((code, ty)) if checker.errors.is_empty() => {
            let mut reads = checker.reads;
            reads.sort_unstable();
            reads.dedup();
            Ok(Compiled { code, ty, reads, warnings: checker.warnings, text: text.to_owned(), reads_sensitive: false })
        }
        _ => {
            let mut errors = checker.errors;
            if errors.is_empty() {
                errors.push((0, "the expression cannot be compiled".into()));
            }
            Err(errors)
        }
    }
}

struct Checker<'n> {
    names: &'n mut dyn Names,
    errors: Vec<(usize, String)>,
    reads: Vec<usize>,
    locals: Vec<(String, Ty)>,
    warnings: Vec<(usize, String)>,
}

type Checked = Option<(Code, Ty)>;

/// `a.b.c` as its names, when the node is a plain chain of names.
fn name_chain(ast: &Ast) -> Option<Vec<&str>> {
    match &ast.kind {
        AstKind::Ident(name) => Some(vec![name.as_str()]),
        AstKind::Select(inner, name) => {
            let mut chain = name_chain(inner)?;
            chain.push(name);
            Some(chain)
        }
        _ => None,
    }
}

impl Checker<'_> {
    fn error(&mut self, at: usize, message: impl Into<String>) -> Checked {
        self.errors.push((at, message.into()));
        None
    }

    fn check(&mut self, ast: &Ast) -> Checked {
        let at = ast.at;
        match &ast.kind {
            AstKind::Null => Some((Code::Const(Lit::Null), Ty::Null)),
            AstKind::Bool(b) => Some((Code::Const(Lit::Bool(*b)), Ty::Bool)),
            AstKind::Int(n) => Some((Code::Const(Lit::Int(*n)), Ty::Int)),
            AstKind::Double(d) => Some((Code::Const(Lit::Double(*d)), Ty::Double)),
            AstKind::Str(s) => Some((Code::Const(Lit::Str(s.clone())), Ty::String)),
            AstKind::List(items) => self.list(items),
            AstKind::Ident(_) | AstKind::Select(..) => match name_chain(ast) {
                Some(chain) => self.resolve(at, &chain),
                None => {
                    let AstKind::Select(inner, name) = &ast.kind else { unreachable!("an Ident is a chain") };
                    let (code, ty) = self.check(inner)?;
                    self.member(at, code, &ty, name)
                }
            },
            AstKind::Path(steps, _) => {
                if steps.is_empty() {
                    return self.error(at, "`$` alone is the whole record; name a field of it, like `$.event_type`");
                }
                let slot = self.names.path(steps);
                Some((Code::Slot(slot), Ty::Dyn))
            }
            AstKind::Index(list, index) => {
                let l = self.check(list);
                let i = self.check(index);
                let ((lc, lt), (ic, it)) = (l?, i?);
                let item = match (&lt, &it) {
                    (Ty::List(item), Ty::Int | Ty::Dyn) => (**item).clone(),
                    (Ty::Dyn, _) => Ty::Dyn,
                    (Ty::List(_), other) => {
                        return self
                            .error(index.at, format!("a list is indexed by an integer, found {}", other.name()));
                    }
                    (other, _) => return self.error(at, format!("only lists can be indexed, found {}", other.name())),
                };
                Some((Code::Index(Box::new(lc), Box::new(ic)), item))
            }
            AstKind::Unary(UnaryOp::Not, inner) => {
                let (code, ty) = self.check(inner)?;
                self.expect_bool(inner.at, &ty, "`!`")?;
                Some((Code::Not(Box::new(code)), Ty::Bool))
            }
            AstKind::Unary(UnaryOp::Neg, inner) => {
                let (code, ty) = self.check(inner)?;
                if !ty.is_numeric() && ty != Ty::Dyn {
                    return self.error(inner.at, format!("`-` takes a number, found {}", ty.name()));
                }
                Some((Code::Neg(Box::new(code)), ty))
            }
            AstKind::Binary(op, left, right) => self.binary(*op, left, right),
            AstKind::Cond(cond, yes, no) => self.cond(cond, yes, no),
            AstKind::Call { receiver, name, args } => {
                let mut all: Vec<&Ast> = Vec::with_capacity(args.len() + 1);
                if let Some(r) = receiver {
                    all.push(r);
                }
                all.extend(args.iter());
                self.call(at, name, &all, receiver.is_some())
            }
        }
    }

    /// A list literal: its items' types joined into one item type (numbers widen).
    fn list(&mut self, items: &[Ast]) -> Checked {
        let checked: Vec<Checked> = items.iter().map(|i| self.check(i)).collect();
        let mut typed = Vec::with_capacity(items.len());
        let mut item_ty: Option<Ty> = None;
        for c in checked {
            let (code, ty) = c?;
            item_ty = Some(match item_ty {
                None => ty.clone(),
                Some(t) if t == ty => t,
                Some(t) if t.is_numeric() && ty.is_numeric() => numeric_join(&t, &ty).unwrap_or(Ty::Dyn),
                Some(_) => Ty::Dyn,
            });
            typed.push((code, ty));
        }
        let item_ty = item_ty.unwrap_or(Ty::Dyn);
        let codes = typed.into_iter().map(|(code, ty)| widened(code, &ty, &item_ty)).collect();
        Some((Code::List(codes), Ty::List(Box::new(item_ty))))
    }

    /// `c ? yes : no`: a boolean condition, and branches that agree on a type.
    fn cond(&mut self, cond: &Ast, yes: &Ast, no: &Ast) -> Checked {
        let c = self.check(cond);
        let y = self.check(yes);
        let n = self.check(no);
        let ((cc, ct), (yc, yt), (nc, nt)) = (c?, y?, n?);
        self.expect_bool(cond.at, &ct, "the condition of `? :`")?;
        let ty = match (&yt, &nt) {
            (a, b) if a == b => a.clone(),
            (Ty::Null, b) => b.clone(),
            (a, Ty::Null) => a.clone(),
            (a, b) if a.is_numeric() && b.is_numeric() => numeric_join(a, b).unwrap_or(Ty::Dyn),
            (a, b) if a.fits(b) => Ty::Dyn,
            (a, b) => {
                return self.error(
                    no.at,
                    format!("the branches of `? :` give {} and {}; they must agree", a.name(), b.name()),
                );
            }
        };
        let (yc, nc) = (widened(yc, &yt, &ty), widened(nc, &nt, &ty));
        Some((Code::Cond(Box::new(cc), Box::new(yc), Box::new(nc)), ty))
    }

    fn expect_bool(&mut self, at: usize, ty: &Ty, what: &str) -> Option<()> {
        if matches!(ty, Ty::Bool | Ty::Dyn | Ty::Null) {
            Some(())
        } else {
            self.error(at, format!("{what} takes a boolean, found {}", ty.name()))?;
            None
        }
    }

    /// A chain of names: a macro variable, else the longest prefix that is a target, then members.
    fn resolve(&mut self, at: usize, chain: &[&str]) -> Checked {
        if let Some(depth) = self.locals.iter().rposition(|(n, _)| n == chain[0]) {
            let mut ty = self.locals[depth].1.clone();
            let mut code = Code::Local(depth);
            for name in &chain[1..] {
                let (c, t) = self.member(at, code, &ty, name)?;
                code = c;
                ty = t;
            }
            return Some((code, ty));
        }
        if let Some(reason) = self.names.targets_unavailable() {
            return self.error(at, format!("`{}` is not available here: {reason}", chain.join(".")));
        }
        for take in (1..=chain.len()).rev() {
            let name = chain[..take].join(".");
            if let Some((index, ty)) = self.names.target(&name) {
                self.reads.push(index);
                let mut code = Reading::wrap(Code::Field(index), &ty);
                let mut ty = ty;
                for member in &chain[take..] {
                    let (c, t) = self.member(at, code, &ty, member)?;
                    code = c;
                    ty = t;
                }
                return Some((code, ty));
            }
        }
        let full = chain.join(".");
        let known = self.names.target_names();
        let hint = suggestion(&full, known.iter().map(String::as_str));
        let hint = if hint.is_empty() && FUNCTIONS_WITHOUT_CALL.contains(&full.as_str()) {
            format!("; `{full}` is a function: call it as `{full}(…)`")
        } else {
            hint
        };
        self.error(at, format!("unknown name `{full}`: not a target of this mapping{hint}"))
    }

    fn member(&mut self, at: usize, code: Code, ty: &Ty, name: &str) -> Checked {
        match ty {
            Ty::Row(shape) => match shape.fields.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    let ty = shape.fields[i].1.clone();
                    Some((Reading::wrap(Code::RowField(Box::new(code), i), &ty), ty))
                }
                None => {
                    let known = shape.fields.iter().map(|(n, _)| n.as_str());
                    let hint = suggestion(name, known.clone());
                    let list: Vec<&str> = known.collect();
                    self.error(at, format!("an item has no field `{name}`{hint}; its fields: {}", list.join(", ")))
                }
            },
            Ty::Dyn | Ty::Null => Some((Code::Member(Box::new(code), name.to_owned()), Ty::Dyn)),
            other => self.error(at, format!("{} has no field `{name}`", other.name())),
        }
    }

    fn binary(&mut self, op: BinaryOp, left: &Ast, right: &Ast) -> Checked {
        let l = self.check(left);
        let r = self.check(right);
        let ((lc, lt), (rc, rt)) = (l?, r?);
        let at = left.at;
        let both = (Box::new(lc), Box::new(rc));
        match op {
            BinaryOp::And | BinaryOp::Or => {
                self.expect_bool(left.at, &lt, &format!("`{}`", op.symbol()))?;
                self.expect_bool(right.at, &rt, &format!("`{}`", op.symbol()))?;
                let code = if op == BinaryOp::And { Code::And(both.0, both.1) } else { Code::Or(both.0, both.1) };
                Some((code, Ty::Bool))
            }
            BinaryOp::Eq | BinaryOp::Ne => {
                if !comparable(&lt, &rt) {
                    return self.error(
                        right.at,
                        format!("`{}` compares {} with {}: they are never equal", op.symbol(), lt.name(), rt.name()),
                    );
                }
                self.never_equal(op, &both.0, &both.1, right.at);
                Some((Code::Binary(op, both.0, both.1), Ty::Bool))
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ordered = match (&lt, &rt) {
                    (Ty::Dyn | Ty::Null, _) | (_, Ty::Dyn | Ty::Null) => true,
                    (a, b) if a.is_numeric() && b.is_numeric() => numeric_join(a, b).is_ok(),
                    (Ty::String | Ty::Date, Ty::String | Ty::Date) => true,
                    (Ty::Timestamp, Ty::Timestamp) => true,
                    _ => false,
                };
                if !ordered {
                    return self
                        .error(right.at, format!("`{}` cannot order {} and {}", op.symbol(), lt.name(), rt.name()));
                }
                Some((Code::Binary(op, both.0, both.1), Ty::Bool))
            }
            BinaryOp::In => {
                match &rt {
                    Ty::List(item) if !comparable(&lt, item) => {
                        return self
                            .error(at, format!("`in` looks for {} in {}: it is never found", lt.name(), rt.name()));
                    }
                    Ty::List(_) | Ty::Dyn => {}
                    other => {
                        return self.error(right.at, format!("`in` takes a list on its right, found {}", other.name()));
                    }
                }
                self.never_equal(op, &both.0, &both.1, right.at);
                Some((Code::Binary(op, both.0, both.1), Ty::Bool))
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => {
                let ty = match (&lt, &rt) {
                    (Ty::Dyn, _) | (_, Ty::Dyn) => Ty::Dyn,
                    (Ty::Null, _) | (_, Ty::Null) => {
                        return self.error(at, format!("`{}` with a literal `null` is always null", op.symbol()));
                    }
                    (Ty::String, Ty::String) if op == BinaryOp::Add => Ty::String,
                    (Ty::List(a), Ty::List(b)) if op == BinaryOp::Add => {
                        if a == b {
                            Ty::List(a.clone())
                        } else {
                            Ty::List(Box::new(Ty::Dyn))
                        }
                    }
                    (a, b) if a.is_numeric() && b.is_numeric() => match numeric_join(a, b) {
                        Ok(t) => t,
                        Err(message) => return self.error(at, message),
                    },
                    (Ty::String, b) | (b, Ty::String) if op == BinaryOp::Add => {
                        return self.error(
                            at,
                            format!("`+` joins two strings, found a string and {}; convert with `string(…)`", b.name()),
                        );
                    }
                    (a, b) => {
                        return self.error(
                            at,
                            format!("`{}` takes numbers, found {} and {}", op.symbol(), a.name(), b.name()),
                        );
                    }
                };
                Some((Code::Binary(op, both.0, both.1), ty))
            }
        }
    }

    /// Warns when a field is compared with text it can never hold: `==` never true, `!=` always.
    fn never_equal(&mut self, op: BinaryOp, left: &Code, right: &Code, at: usize) {
        let (field, texts): (usize, Vec<&str>) = match (left, right) {
            (Code::Field(i), Code::Const(Lit::Str(s))) | (Code::Const(Lit::Str(s)), Code::Field(i)) => {
                (*i, vec![s.as_str()])
            }
            (Code::Field(i), Code::List(items)) if op == BinaryOp::In => {
                let texts: Vec<&str> = items
                    .iter()
                    .filter_map(|c| match c {
                        Code::Const(Lit::Str(s)) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                if texts.len() != items.len() {
                    return;
                }
                (*i, texts)
            }
            _ => return,
        };
        let Some(domain) = self.names.domain(field) else { return };
        let reasons: Vec<(String, &str)> = texts.iter().filter_map(|t| domain.excludes(t).map(|r| (r, *t))).collect();
        if reasons.len() != texts.len() || reasons.is_empty() {
            return;
        }
        let (why, _) = &reasons[0];
        let shown: Vec<String> = texts.iter().map(|t| format!("{t:?}")).collect();
        let verdict = match op {
            BinaryOp::Ne => "is always true",
            _ => "can never be true",
        };
        self.warnings
            .push((at, format!("this comparison {verdict}: the field never equals {} ({why})", shown.join(" or "))));
    }

    /// A function call; `args[0]` is the receiver when `method` (`x.f(a)` is `f(x, a)`).
    ///
    /// Arity, literal forms and argument types come from the function's description in the
    /// [catalogue](super::functions); what is left here is what a description cannot say: the
    /// constants each function resolves at load and the type of its result.
    ///
    /// One arm per built-in: a flat dispatch table, in the evaluator's order.
    fn call(&mut self, at: usize, name: &str, args: &[&Ast], method: bool) -> Checked {
        let shown = if method { format!("`.{name}()`") } else { format!("`{name}()`") };
        let Some(function) = functions::find(name) else {
            let hint = suggestion(name, functions::names());
            let list = functions::names().collect::<Vec<_>>().join(", ");
            let lead = if hint.is_empty() { "; the functions are" } else { " The functions are" };
            return self.error(at, format!("unknown function `{name}`{hint}{lead}: {list}"));
        };
        if function.macro_form {
            return self.macro_call(at, name, args, method);
        }
        let (least, most) = function.arity();
        if args.len() < least || most.is_some_and(|m| args.len() > m) {
            let want = match most {
                Some(m) if m == least => least.to_string(),
                Some(m) => format!("{least} to {m}"),
                None => format!("{least} or more"),
            };
            let given = if method {
                format!("{} (the receiver counts as the first)", args.len())
            } else {
                args.len().to_string()
            };
            return self.error(at, format!("{shown} takes {want} argument(s), given {given}"));
        }
        if function.name == "has" {
            let target = args[0];
            if !matches!(target.kind, AstKind::Ident(_) | AstKind::Select(..) | AstKind::Path(..)) {
                return self.error(target.at, "`has()` tests a field or a path, like `has(decline_code)`");
            }
            let (code, _) = self.check(target)?;
            return Some((Code::Has(Box::new(code)), Ty::Bool));
        }
        // Arguments that must be literals are checked as written; constants are consumed here and
        // never evaluated, the others are compiled as values.
        let param = |i: usize| function.param(i).expect("arity checked");
        let mut constants: Vec<(&Ast, String)> = Vec::new();
        let mut value_args: Vec<(&Ast, &Param)> = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            let p = param(i);
            match (p.form, &a.kind) {
                (Form::Value, _) => value_args.push((a, p)),
                (Form::Constant, AstKind::Str(text)) if p.takes == Takes::Text => constants.push((a, text.clone())),
                (Form::Literal, AstKind::Int(_)) if p.takes == Takes::Int => value_args.push((a, p)),
                _ => {
                    let what = if p.takes == Takes::Int { "an integer literal" } else { "a string literal" };
                    return self.error(a.at, format!("{shown} takes its `{}` as {what}", p.name));
                }
            }
        }
        let mut codes = Vec::with_capacity(value_args.len());
        let mut tys = Vec::with_capacity(value_args.len());
        let mut failed = false;
        for (a, _) in &value_args {
            match self.check(a) {
                Some((c, t)) => {
                    codes.push(c);
                    tys.push(t);
                }
                None => failed = true,
            }
        }
        if failed {
            return None;
        }
        for ((a, p), ty) in value_args.iter().zip(&tys) {
            if !p.takes.accepts(ty) {
                let what = p.takes.describe();
                return self.error(a.at, format!("{shown} takes {what} as `{}`, found {}", p.name, ty.name()));
            }
        }
        let constant = |i: usize| constants[i].1.as_str();
        let (func, ty) = match function.name {
            "lookup" => {
                let table = constant(0);
                let Some(table) = self.names.lookup(table) else {
                    let known = self.names.lookup_names();
                    let hint = suggestion(table, known.iter().map(String::as_str));
                    let list = if known.is_empty() {
                        "none are defined under `lookups:`".to_owned()
                    } else {
                        format!("tables: {}", known.join(", "))
                    };
                    return self.error(constants[0].0.at, format!("unknown lookup table `{table}`{hint}; {list}"));
                };
                let ty = table.ty.clone();
                (Func::Lookup(table), ty)
            }
            "hmac_sha256" => match self.names.secret(constant(0)) {
                Ok(key) => (Func::HmacSha256(key), Ty::String),
                Err(message) => return self.error(constants[0].0.at, message),
            },
            "matches" => match regex::Regex::new(constant(0)) {
                Ok(re) => (Func::Matches(re), Ty::Bool),
                Err(e) => return self.error(constants[0].0.at, format!("invalid regex: {e}")),
            },
            "round" => {
                let mode = match constants.first() {
                    None => Rounding::HalfEven,
                    Some((a, text)) => match Rounding::from_name(text) {
                        Some(m) => m,
                        None => {
                            return self.error(
                                a.at,
                                format!("`round()` takes a rounding mode as a string: {}", Rounding::NAMES.join(", ")),
                            );
                        }
                    },
                };
                if !matches!(args[1].kind, AstKind::Int(n) if (0..=28).contains(&n)) {
                    return self
                        .error(args[1].at, "`round()` takes the number of decimal places as an integer from 0 to 28");
                }
                (Func::Round(mode), Ty::Decimal)
            }
            "local_date" | "local_time" | "local_datetime" | "format_datetime" => {
                let zone_arg = value_args.last().expect("a zone").0;
                let zone = match &zone_arg.kind {
                    AstKind::Str(name) => match name.parse::<chrono_tz::Tz>() {
                        Ok(tz) => Some(tz),
                        Err(_) => {
                            let hint = suggestion(name, chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()));
                            return self.error(
                                zone_arg.at,
                                format!(
                                    "unknown time zone `{name}`{hint}; use an IANA name like \"America/Sao_Paulo\""
                                ),
                            );
                        }
                    },
                    _ => None,
                };
                match function.name {
                    "local_date" => (Func::LocalDate(zone), Ty::Date),
                    "local_time" => (Func::LocalTime(zone), Ty::String),
                    "local_datetime" => (Func::LocalDatetime(zone), Ty::String),
                    _ => match super::code::DatetimePattern::compile(constant(0)) {
                        Ok(pattern) => (Func::FormatDatetime(pattern, zone), Ty::String),
                        Err(message) => return self.error(constants[0].0.at, message),
                    },
                }
            }
            "size" => (Func::Size, Ty::Int),
            "coalesce" => {
                let mut ty = Ty::Null;
                for t in &tys {
                    ty = match (&ty, t) {
                        (Ty::Null, t) => t.clone(),
                        (a, b) if a == b => a.clone(),
                        (a, b) if a.is_numeric() && b.is_numeric() => numeric_join(a, b).unwrap_or(Ty::Dyn),
                        _ => Ty::Dyn,
                    };
                }
                codes = codes.into_iter().zip(&tys).map(|(code, t)| widened(code, t, &ty)).collect();
                (Func::Coalesce, ty)
            }
            "string" => (Func::String, Ty::String),
            "int" => (Func::Int, Ty::Int),
            "double" => (Func::Double, Ty::Double),
            "decimal" => (Func::Decimal, Ty::Decimal),
            "timestamp" => (Func::Timestamp, Ty::Timestamp),
            "abs" => (Func::Abs, tys[0].clone()),
            "lower" => (Func::Lower, Ty::String),
            "upper" => (Func::Upper, Ty::String),
            "trim" => (Func::Trim, Ty::String),
            "sha256" => (Func::Sha256, Ty::String),
            "split" => (Func::Split, Ty::List(Box::new(Ty::String))),
            "join" => (Func::Join, Ty::String),
            "substring" => (Func::Substring, Ty::String),
            "pad_left" | "pad_right" => {
                if let Some((fill, _)) = value_args.get(2)
                    && let AstKind::Str(s) = &fill.kind
                    && s.chars().count() != 1
                {
                    return self.error(fill.at, format!("{shown} fills with one character, found {s:?}"));
                }
                (if function.name == "pad_left" { Func::PadLeft } else { Func::PadRight }, Ty::String)
            }
            "startsWith" => (Func::StartsWith, Ty::Bool),
            "endsWith" => (Func::EndsWith, Ty::Bool),
            "contains" => (Func::Contains, Ty::Bool),
            "replace" => (Func::Replace, Ty::String),
            "mask" => {
                if let Some((with, _)) = value_args.get(3)
                    && let AstKind::Str(s) = &with.kind
                    && s.chars().count() != 1
                {
                    return self.error(with.at, format!("{shown} masks with one character, found {s:?}"));
                }
                (Func::Mask, Ty::String)
            }
            "sum" | "min" | "max" => {
                let item = match &tys[0] {
                    Ty::List(item) => (**item).clone(),
                    _ => Ty::Dyn,
                };
                let numeric = item.is_numeric() || item == Ty::Dyn;
                let ordered = function.name != "sum" && matches!(item, Ty::String | Ty::Date | Ty::Timestamp);
                if !numeric && !ordered {
                    return self.error(
                        value_args[0].0.at,
                        format!("{shown} takes a list of numbers, found {}", tys[0].name()),
                    );
                }
                let f = match function.name {
                    "sum" => Func::Sum,
                    "min" => Func::Min,
                    _ => Func::Max,
                };
                if matches!(f, Func::Sum) && item == Ty::Decimal {
                    // The sum of no decimals starts as the integer 0: a decimal zero, as typed.
                    return Some((Code::Call(Func::Decimal, vec![Code::Call(f, codes)]), item));
                }
                (f, item)
            }
            // A description without its compilation is a defect of the program, refused like a
            // problem of the mapping rather than a panic while loading it.
            other => return self.error(at, format!("`{other}()` is described but cannot be compiled by this build")),
        };
        Some((Code::Call(func, codes), ty))
    }

    /// `list.all(x, p)`, `exists`/`any`, `map`, `filter`: `x` names each item inside the body.
    fn macro_call(&mut self, at: usize, name: &str, args: &[&Ast], method: bool) -> Checked {
        if !method || args.len() != 3 {
            return self.error(at, format!("`{name}` is written `list.{name}(item, expression)`"));
        }
        let (list_code, list_ty) = self.check(args[0])?;
        let item_ty = match &list_ty {
            Ty::List(item) => (**item).clone(),
            Ty::Dyn | Ty::Null => Ty::Dyn,
            other => return self.error(args[0].at, format!("`.{name}()` takes a list, found {}", other.name())),
        };
        let AstKind::Ident(var) = &args[1].kind else {
            return self.error(args[1].at, format!("`.{name}()` names each item first, like `items.{name}(i, …)`"));
        };
        self.locals.push((var.clone(), item_ty));
        let depth = self.locals.len() - 1;
        let body = self.check(args[2]);
        self.locals.pop();
        let (body_code, body_ty) = body?;
        let kind = match name {
            "all" => MacroKind::All,
            "exists" | "any" => MacroKind::Exists,
            "map" => MacroKind::Map,
            _ => MacroKind::Filter,
        };
        let ty = match kind {
            MacroKind::All | MacroKind::Exists => {
                self.expect_bool(args[2].at, &body_ty, &format!("the body of `.{name}()`"))?;
                Ty::Bool
            }
            MacroKind::Filter => {
                self.expect_bool(args[2].at, &body_ty, &format!("the body of `.{name}()`"))?;
                list_ty.clone()
            }
            MacroKind::Map => Ty::List(Box::new(body_ty)),
        };
        Some((Code::Macro { kind, list: Box::new(list_code), depth, body: Box::new(body_code) }, ty))
    }
}

/// Names of functions that a user may write without parentheses by mistake.
const FUNCTIONS_WITHOUT_CALL: &[&str] = &["size", "count", "sum", "min", "max", "sha256"];

/// Whether `==` between these types can ever be true.
fn comparable(a: &Ty, b: &Ty) -> bool {
    match (a, b) {
        (Ty::Dyn | Ty::Null, _) | (_, Ty::Dyn | Ty::Null) => true,
        (a, b) if a.is_numeric() && b.is_numeric() => true,
        (Ty::String | Ty::Date, Ty::String | Ty::Date) => true,
        (Ty::List(x), Ty::List(y)) => comparable(x, y),
        (a, b) => a == b,
    }
}

/// `code`, of type `from`, where the checker joined it into a value of type `to`: an integer
/// among decimals (a list item, a branch of `? :`, an argument of `coalesce`) becomes a decimal,
/// so a value typed a decimal is one at run time (its field writes `"2"`, not `2`).
fn widened(code: Code, from: &Ty, to: &Ty) -> Code {
    match (from, to) {
        (Ty::Int, Ty::Decimal) => Code::Call(Func::Decimal, vec![code]),
        _ => code,
    }
}

/// The type of arithmetic between two numeric types: exact decimals never meet floats.
fn numeric_join(a: &Ty, b: &Ty) -> Result<Ty, String> {
    Ok(match (a, b) {
        (Ty::Int, Ty::Int) => Ty::Int,
        (Ty::Decimal, Ty::Int | Ty::Decimal) | (Ty::Int, Ty::Decimal) => Ty::Decimal,
        (Ty::Decimal, _) | (_, Ty::Decimal) => {
            return Err(format!(
                "mixes {} and {}: an exact decimal never meets a float; convert with `decimal(…)` or `double(…)`",
                a.name(),
                b.name()
            ));
        }
        (Ty::Double, _) | (_, Ty::Double) => Ty::Double,
        _ => Ty::Number,
    })
}
