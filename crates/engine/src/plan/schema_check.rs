//! A mapping held to the schemas of its topics, before it ships: [`check_source`] finds every
//! path it reads that the source schema does not have and every field whose type cannot hold
//! what the schema gives there (after the field's transforms); [`check_target`] finds every
//! target the target schema does not have or types otherwise, and every member the target schema
//! needs that the mapping may leave out.
//!
//! Problems are diagnostics at the mapping's own `line:col`, as the compiler's are: the `source:`
//! step where a path leaves the schema (with the nearest member's name), the `type:` that cannot
//! hold a value, the `$` path of an expression, the `target:` the schema does not take. Paths
//! are followed through `[*]`, `items:` and nested records; a map takes any key, and a value the
//! schema leaves open (`any`) any path below it. The kinds a value can have between transforms
//! are the compiler's own ([`kind_after`]); the schema only says more about the value it starts
//! from.

use super::Plan;
use super::expr::syntax::{self, Ast, AstKind, PathStep};
use super::field::{Field, FieldSource};
use super::path::{self, Segment};
use super::shape::{Member, Shape, ShapeKind};
use super::transform::{Transform, kind_after};
use super::types::{FieldType, Kind};
use crate::diagnostic::{Diagnostic, Diagnostics, Pos, Spanned, one_line, suggestion};
use crate::spec::{FieldSpec, MappingSpec, RuleWhen};

/// What a path finds below a value the schema leaves open.
static ANY: Shape = Shape { kind: ShapeKind::Any, nullable: false };

/// Every problem of `spec`'s reading of records of `shape` (the source schema's record): paths it
/// does not have, types that cannot hold what it has, and (as warnings) `required` fields the
/// schema lets be null. Sorted by position.
pub fn check_source(spec: &MappingSpec, shape: &Shape) -> Vec<Diagnostic> {
    let mut check = SourceCheck { diags: Diagnostics::default() };
    check.fields(&spec.fields, shape, "the record");
    if let Some(drop) = &spec.drop {
        check.expression(drop, shape, "the record");
    }
    for rule in &spec.rules {
        let when = match &rule.when {
            Some(RuleWhen::Expr(text)) => Some(text),
            _ => None,
        };
        for text in rule.check.iter().chain(when) {
            check.expression(text, shape, "the record");
        }
    }
    sorted(check.diags)
}

/// Every problem of `plan`'s output (compiled from `spec`) as records of `shape` (the target
/// schema's record): targets it does not have or types otherwise, and members it needs (neither
/// nullable nor with a default) that the mapping does not always write. Sorted by position.
pub fn check_target(spec: &MappingSpec, plan: &Plan, shape: &Shape) -> Vec<Diagnostic> {
    let anchor =
        spec.target_schema.as_ref().map(|s| s.pos).or(spec.fields.first().map(|f| f.pos)).unwrap_or(Pos::new(1, 1));
    let mut check = TargetCheck { diags: Diagnostics::default() };
    check.scope(&spec.fields, &plan.set.fields, shape, anchor, "");
    sorted(check.diags)
}

fn sorted(diags: Diagnostics) -> Vec<Diagnostic> {
    let (errors, warnings) = diags.into_parts();
    let mut all: Vec<Diagnostic> = errors.into_iter().chain(warnings).collect();
    all.sort_by_key(|d| (d.pos, d.severity));
    all
}

/// One step of a path into a record, as a `source:` or an expression's `$` path writes it.
#[derive(Clone, Copy, Debug)]
enum Step<'p> {
    Key(&'p str),
    Index,
    /// `[*]` or `.*`: every item, every member.
    Each,
}

/// Where a path led.
struct Reached<'s> {
    shape: &'s Shape,
    /// Whether the value, or anything on the way to it, may be null or missing.
    may_be_null: bool,
    /// Whether the path went through a wildcard: it gives every match.
    multi: bool,
}

/// Follows `steps` into `root`. Where the schema has no such path: which step leaves it, and
/// why. `shown(i)` names the value step `i` is taken in (`the record`, `` `$.order` ``).
fn follow<'s>(
    root: &'s Shape,
    steps: &[Step<'_>],
    shown: impl Fn(usize) -> String,
) -> Result<Reached<'s>, (usize, String)> {
    let mut at = Reached { shape: root, may_be_null: false, multi: false };
    for (i, step) in steps.iter().enumerate() {
        let next = match (step, &at.shape.kind) {
            (_, ShapeKind::Any) => {
                return Ok(Reached {
                    shape: &ANY,
                    multi: at.multi || steps[i..].iter().any(|s| matches!(s, Step::Each)),
                    ..at
                });
            }
            (Step::Key(name), ShapeKind::Object(members)) => match members.iter().find(|m| m.name == *name) {
                Some(member) => &member.shape,
                None => return Err((i, no_member(name, members, &shown(i)))),
            },
            (Step::Key(_), ShapeKind::Map(values)) => values,
            (Step::Index, ShapeKind::Array(item)) => item,
            (Step::Each, ShapeKind::Array(item) | ShapeKind::Map(item)) => {
                at.multi = true;
                item
            }
            (Step::Each, ShapeKind::Object(_)) => {
                at.multi = true;
                &ANY
            }
            (Step::Key(name), other) => {
                return Err((i, format!("{} is {other} in the source schema; it has no member `{name}`", shown(i))));
            }
            (Step::Index | Step::Each, other) => {
                return Err((i, format!("{} is {other} in the source schema, not an array", shown(i))));
            }
        };
        at.may_be_null |= next.nullable;
        at.shape = next;
    }
    Ok(at)
}

fn no_member(name: &str, members: &[Member], place: &str) -> String {
    let names = members.iter().map(|m| m.name.as_str());
    let nearest = suggestion(name, names.clone());
    let listed = if nearest.is_empty() {
        const LISTED: usize = 12;
        let mut listed: Vec<&str> = names.take(LISTED).collect();
        if members.len() > LISTED {
            listed.push("…");
        }
        format!("; its members: {}", listed.join(", "))
    } else {
        nearest
    };
    format!("the source schema has no `{name}` in {place}{listed}")
}

/// The checks of a mapping's reads against the source schema.
struct SourceCheck {
    diags: Diagnostics,
}

impl SourceCheck {
    /// The fields of one scope, reading values of `scope` (the record, or an array's item).
    fn fields(&mut self, fields: &[FieldSpec], scope: &Shape, named: &str) {
        for field in fields {
            self.field(field, scope, named);
        }
    }

    fn field(&mut self, field: &FieldSpec, scope: &Shape, named: &str) {
        for text in field.expr.iter().chain(&field.when).chain(field.validate.iter().filter_map(|s| s.when.as_ref())) {
            self.expression(text, scope, named);
        }
        let Some(source) = &field.source else { return };
        let Some(reached) = self.source(source, scope, named) else { return };
        if let Some(items) = &field.items {
            match (&reached.shape.kind, reached.multi) {
                (ShapeKind::Array(item), false) => {
                    self.fields(&items.value, item, &format!("each item of `{}`", source.value));
                }
                (ShapeKind::Any, _) | (_, true) => self.fields(&items.value, &ANY, "each item"),
                (other, false) => self.diags.push(
                    Diagnostic::new(
                        source.pos,
                        format!(
                            "`items` maps the items of an array, but the source schema gives `{}` as {other}",
                            source.value
                        ),
                    )
                    .spanning(&source.extent),
                ),
            }
        }
        if let Some(required) = field.required.as_ref().filter(|r| r.value)
            && reached.may_be_null
            && !reached.multi
        {
            self.diags.push(Diagnostic::warning(
                required.pos,
                format!("`{}` may be null in the source schema; such records will fail `required`", source.value),
            ));
        }
        if field.items.is_none() {
            self.field_type(field, source, &reached);
        }
    }

    /// Where a `source:` leads in `scope`; `None` (reported) when the schema has no such path, or
    /// (left to the compiler) when it is not a JSONPath.
    fn source<'v>(&mut self, source: &Spanned<String>, scope: &'v Shape, named: &str) -> Option<Reached<'v>> {
        let text = source.as_str();
        path::parse_source(text).ok()?;
        let (segments, rest) = path::plain_prefix(text);
        let steps: Vec<Step<'_>> = segments
            .iter()
            .map(|(segment, _)| match segment {
                Segment::Key(name) => Step::Key(name),
                Segment::Index(_) => Step::Index,
                Segment::Wildcard => Step::Each,
            })
            .collect();
        let shown = |i: usize| if i == 0 { named.to_owned() } else { format!("`{}`", &text[..segments[i].1]) };
        match follow(scope, &steps, shown) {
            // A query after the plain steps (a filter, a slice): what it finds is not followed.
            Ok(reached) if !rest.is_empty() => Some(Reached { shape: &ANY, multi: true, ..reached }),
            Ok(reached) => Some(reached),
            Err((i, message)) => {
                let chars = |bytes: usize| text[..bytes].chars().count();
                let end = segments.get(i + 1).map_or(text.len() - rest.len(), |s| s.1);
                self.diags.push(
                    Diagnostic::new(source.pos_at(chars(segments[i].1)), format!("`{text}`: {message}"))
                        .until(source.pos_at(chars(end))),
                );
                None
            }
        }
    }

    /// Whether the field's declared type holds what the schema gives at its source, after its
    /// transforms.
    fn field_type(&mut self, field: &FieldSpec, source: &Spanned<String>, reached: &Reached<'_>) {
        let Some((written, ty)) = field.kind.as_ref().and_then(|k| Some((k, FieldType::from_name(&k.value)?))) else {
            return;
        };
        if reached.multi && ty == FieldType::Array {
            return;
        }
        // Steps that do not compile are the compiler's to report; nor is a step the compiler
        // already refuses whatever the schema says.
        let transforms: Vec<Transform> =
            field.transform.iter().filter_map(|s| Transform::compile(s, &mut Diagnostics::default())).collect();
        if transforms.len() != field.transform.len() || kind_after(Kind::Unknown, &transforms).is_err() {
            return;
        }
        let schema = &reached.shape.kind;
        let value = match kind_after(Given::of(schema).kind(), &transforms) {
            Ok(kind) => transforms.last().map_or(Given::of(schema), |last| Given::after(kind, last)),
            Err((i, kind)) => {
                let (transform, step) = (&transforms[i], &field.transform[i]);
                let received = match i {
                    0 => format!("the source schema gives `{}` as {schema}", source.value),
                    _ => format!("receives {} (from `{}`, {schema} in the source schema)", kind.name(), source.value),
                };
                let message =
                    format!("transform `{}` takes {}, but {received}", transform.name(), transform.input_description());
                self.diags.push(Diagnostic::new(step.name.pos, message).spanning(&step.name.extent));
                return;
            }
        };
        self.through_a_float(field, source, schema, &transforms);
        if let Some(hint) = value.refused_by(ty) {
            let given = match transforms.last() {
                None => format!("which the source schema gives as {schema}"),
                Some(last) => format!(
                    "which the source schema gives as {schema} and `{}` makes {}",
                    last.name(),
                    value.kind().name()
                ),
            };
            let message = format!("`type: {}` cannot hold `{}`, {given}{hint}", ty.name(), source.value);
            self.diags.push(Diagnostic::new(written.pos, message).spanning(&written.extent));
        }
    }

    /// A warning where an exact decimal becomes a float: it may be rounded.
    fn through_a_float(
        &mut self,
        field: &FieldSpec,
        source: &Spanned<String>,
        schema: &ShapeKind,
        transforms: &[Transform],
    ) {
        if *schema != ShapeKind::Decimal {
            return;
        }
        if let Some(i) = transforms.iter().position(|t| t.name() == "to_number") {
            let step = &field.transform[i];
            self.diags.push(Diagnostic::warning(
                step.name.pos,
                format!(
                    "`{}` is an exact decimal in the source schema, and `{}` makes it a float, which may round it; \
                     `type: string` keeps it exact",
                    source.value,
                    transforms[i].name()
                ),
            ));
        }
    }

    /// Every `$` path of an expression, in `scope`.
    fn expression(&mut self, text: &Spanned<String>, scope: &Shape, named: &str) {
        let Ok(ast) = syntax::parse(&text.value) else { return };
        let mut paths = Vec::new();
        paths_in(&ast, &mut paths);
        for (at, steps, written) in paths {
            let keyed: Vec<Step<'_>> = steps
                .iter()
                .map(|s| match s {
                    PathStep::Key(name) => Step::Key(name),
                    PathStep::Index(_) => Step::Index,
                })
                .collect();
            let shown = |i: usize| if i == 0 { named.to_owned() } else { format!("`{}`", written_prefix(steps, i)) };
            if let Err((_, message)) = follow(scope, &keyed, shown) {
                let end = at + written.chars().count();
                self.diags.push(
                    Diagnostic::new(
                        text.pos_at(at),
                        format!("in expression `{}`: `{written}`: {message}", one_line(&text.value)),
                    )
                    .until(text.pos_at(end)),
                );
            }
        }
    }
}

/// The `$` paths of an expression: where each starts, its steps, and its text.
fn paths_in<'a>(ast: &'a Ast, out: &mut Vec<(usize, &'a [PathStep], &'a str)>) {
    match &ast.kind {
        AstKind::Path(steps, text) => out.push((ast.at, steps, text)),
        AstKind::List(items) => items.iter().for_each(|a| paths_in(a, out)),
        AstKind::Call { receiver, args, .. } => {
            receiver.iter().for_each(|r| paths_in(r, out));
            args.iter().for_each(|a| paths_in(a, out));
        }
        AstKind::Select(x, _) | AstKind::Unary(_, x) => paths_in(x, out),
        AstKind::Index(a, b) | AstKind::Binary(_, a, b) => {
            paths_in(a, out);
            paths_in(b, out);
        }
        AstKind::Cond(a, b, c) => {
            paths_in(a, out);
            paths_in(b, out);
            paths_in(c, out);
        }
        AstKind::Null
        | AstKind::Bool(_)
        | AstKind::Int(_)
        | AstKind::Double(_)
        | AstKind::Str(_)
        | AstKind::Ident(_) => {}
    }
}

/// `$.a.b` for the first `n` steps.
fn written_prefix(steps: &[PathStep], n: usize) -> String {
    let mut out = String::from("$");
    for step in &steps[..n] {
        match step {
            PathStep::Key(name) => {
                out.push('.');
                out.push_str(name);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// What a field's value is, as far as the schema and the transforms say: the compiler's [`Kind`],
/// and for text, the form the schema promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Given {
    Text(Form),
    Int,
    Num,
    Bool,
    Obj,
    Arr,
    Unknown,
}

/// What a text is known to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Any text.
    Plain,
    Decimal,
    Date,
    Datetime,
    LocalDatetime,
    Time,
    Bytes,
    Enum,
}

impl Given {
    /// A value as the schema gives it.
    fn of(kind: &ShapeKind) -> Self {
        match kind {
            ShapeKind::String => Given::Text(Form::Plain),
            ShapeKind::Decimal => Given::Text(Form::Decimal),
            ShapeKind::Date => Given::Text(Form::Date),
            ShapeKind::Datetime => Given::Text(Form::Datetime),
            ShapeKind::LocalDatetime => Given::Text(Form::LocalDatetime),
            ShapeKind::Time => Given::Text(Form::Time),
            ShapeKind::Bytes => Given::Text(Form::Bytes),
            ShapeKind::Enum(_) => Given::Text(Form::Enum),
            ShapeKind::Integer => Given::Int,
            ShapeKind::Number => Given::Num,
            ShapeKind::Boolean => Given::Bool,
            ShapeKind::Object(_) | ShapeKind::Map(_) => Given::Obj,
            ShapeKind::Array(_) => Given::Arr,
            ShapeKind::Any => Given::Unknown,
        }
    }

    /// A value of static kind `kind` that `last` produced: text it parsed is in the form it
    /// writes, other text is any text.
    fn after(kind: Kind, last: &Transform) -> Self {
        match kind {
            Kind::Str => Given::Text(match last.name() {
                "parse_datetime" => Form::Datetime,
                "parse_date" => Form::Date,
                "to_decimal" => Form::Decimal,
                _ => Form::Plain,
            }),
            Kind::Int => Given::Int,
            Kind::Num => Given::Num,
            Kind::Bool => Given::Bool,
            Kind::Obj => Given::Obj,
            Kind::Arr => Given::Arr,
            Kind::Unknown => Given::Unknown,
        }
    }

    /// The compiler's kind of it.
    fn kind(self) -> Kind {
        match self {
            Given::Text(_) => Kind::Str,
            Given::Int => Kind::Int,
            Given::Num => Kind::Num,
            Given::Bool => Kind::Bool,
            Given::Obj => Kind::Obj,
            Given::Arr => Kind::Arr,
            Given::Unknown => Kind::Unknown,
        }
    }

    /// `None` when a field of type `ty` holds the value; otherwise what to do about it (`""` when
    /// there is nothing to say beyond the type). Text of any form is held by `datetime` and
    /// `date` (it is checked on every record, as a JSON record's text is); text of a known other
    /// form is not.
    fn refused_by(self, ty: FieldType) -> Option<&'static str> {
        use FieldType as T;
        use Form as F;
        match (ty, self) {
            (T::Any, _) | (_, Given::Unknown) => None,
            (T::String, Given::Text(_)) => None,
            (T::String, Given::Int | Given::Num | Given::Bool) => Some("; convert it with `to_string`"),
            (T::Integer, Given::Int) => None,
            (T::Integer, Given::Num) => Some(
                "; a number may have a fraction: declare `type: number`, or convert it with `to_integer`, which refuses one",
            ),
            (T::Decimal, Given::Text(F::Decimal | F::Plain) | Given::Int) => None,
            (T::Integer, Given::Text(F::Decimal)) => {
                Some("; an exact decimal arrives as text: declare `type: decimal` to keep it exact")
            }
            (T::Number, Given::Text(F::Decimal)) => Some(
                "; an exact decimal arrives as text: declare `type: decimal` to keep it exact, or convert it with `to_number` (a float, which may round it)",
            ),
            (T::Integer, Given::Text(F::Plain | F::Enum)) => Some("; convert it with `to_integer`"),
            (T::Number, Given::Int | Given::Num) => None,
            (T::Number, Given::Text(F::Plain | F::Enum)) => Some("; convert it with `to_number`"),
            (T::Boolean, Given::Bool) => None,
            (T::Datetime, Given::Text(F::Datetime | F::Plain)) => None,
            (T::Datetime, Given::Text(F::LocalDatetime)) => Some(
                "; it has no zone: read it with `parse_datetime: {format: '%Y-%m-%dT%H:%M:%S%.f', zone: …}`, or declare `type: string`",
            ),
            (T::Date, Given::Text(F::Date | F::Plain)) => None,
            (T::Object, Given::Obj) | (T::Array, Given::Arr) => None,
            _ => Some(""),
        }
    }
}

/// The checks of a mapping's output against the target schema.
struct TargetCheck {
    diags: Diagnostics,
}

/// Why a field may be left out of a record, if it may.
fn may_be_absent(field: &Field) -> Option<&'static str> {
    if field.when.is_some() {
        return Some("it has a `when`");
    }
    let always = field.required || field.default.is_some() || matches!(field.source, FieldSource::Const(_));
    (!always).then_some("it is not `required` and has no `default`")
}

impl TargetCheck {
    /// The output fields of one scope (the record, or each item of an `items:` field) as values
    /// of `shape`; `anchor` is where a member no field writes is reported, `within` how messages
    /// name the scope (empty for the record).
    fn scope(&mut self, specs: &[FieldSpec], fields: &[Field], shape: &Shape, anchor: Pos, within: &str) {
        // The compiled fields are the spec's, one for one; should they not be, nothing is said.
        if specs.len() != fields.len() {
            return;
        }
        let written: Vec<(&FieldSpec, &Field)> = specs.iter().zip(fields).filter(|(_, f)| f.output).collect();
        for &(spec, field) in &written {
            self.place(spec, field, shape, within);
        }
        self.needed(&written, shape, "", anchor, within);
    }

    /// A field's target: a member of the schema at its dotted path, of a type it takes.
    fn place(&mut self, spec: &FieldSpec, field: &Field, shape: &Shape, within: &str) {
        let Some(target) = &spec.target else { return };
        let mut at = shape;
        let mut done = 0;
        for name in field.target.split('.') {
            let place = if done == 0 { "the record".to_owned() } else { format!("`{}`", &field.target[..done - 1]) };
            done += name.len() + 1;
            at = match &at.kind {
                ShapeKind::Object(members) => match members.iter().find(|m| m.name == name) {
                    Some(member) => &member.shape,
                    None => {
                        let names = members.iter().map(|m| m.name.as_str());
                        let message = format!(
                            "target `{}`{within}: the target schema has no `{name}` in {place}{}",
                            field.target,
                            suggestion(name, names)
                        );
                        self.diags.push(Diagnostic::new(target.pos, message).spanning(&target.extent));
                        return;
                    }
                },
                ShapeKind::Map(_) | ShapeKind::Any => return,
                other => {
                    let message = format!(
                        "target `{}`{within}: {place} is {other} in the target schema, not a record",
                        field.target
                    );
                    self.diags.push(Diagnostic::new(target.pos, message).spanning(&target.extent));
                    return;
                }
            };
        }
        self.fits(spec, field, at, within);
    }

    /// Whether what a field writes is what the schema's member holds; an `items:` field's items,
    /// each against the member's item.
    fn fits(&mut self, spec: &FieldSpec, field: &Field, member: &Shape, within: &str) {
        if let (Some(items), Some(set)) = (&spec.items, &field.items) {
            match &member.kind {
                ShapeKind::Array(item) => {
                    let within = format!(" in each item of `{}`{within}", field.target);
                    return self.scope(&items.value, &set.fields, item, items.pos, &within);
                }
                ShapeKind::Any => return,
                _ => {}
            }
        }
        let (fits, writes) = match (&field.source, field.ty) {
            (FieldSource::Const(value), FieldType::Any) => {
                (const_fits(value, &member.kind), format!("the const `{}`", one_line(&value.to_string())))
            }
            (_, ty) => (type_fits(ty, &member.kind), format!("`type: {}`", ty.name())),
        };
        if !fits {
            let at = spec.kind.as_ref().or(spec.target.as_ref());
            let message = format!(
                "target `{}`{within} is {writes}, but the target schema has it as {}",
                field.target, member.kind
            );
            if let Some(at) = at {
                self.diags.push(Diagnostic::new(at.pos, message).spanning(&at.extent));
            }
        }
    }

    /// Every member of `shape` the schema needs (neither nullable nor with a default), written
    /// in every record: `prefix` is the dotted path of `shape` in the scope's targets.
    fn needed(&mut self, written: &[(&FieldSpec, &Field)], shape: &Shape, prefix: &str, anchor: Pos, within: &str) {
        let ShapeKind::Object(members) = &shape.kind else { return };
        for member in members {
            let path = format!("{prefix}{}", member.name);
            let inside = format!("{path}.");
            let exact = written.iter().find(|(_, f)| f.target == path);
            let under: Vec<&(&FieldSpec, &Field)> =
                written.iter().filter(|(_, f)| f.target.starts_with(&inside)).collect();
            match (exact, under.first()) {
                (Some((spec, field)), _) => {
                    if let (Some(why), false) = (may_be_absent(field), member.optional()) {
                        self.absent(spec, &path, within, why);
                    }
                }
                (None, Some((first, _))) => {
                    let always = under.iter().any(|(_, f)| may_be_absent(f).is_none());
                    if !always && !member.optional() {
                        self.absent(
                            first,
                            &path,
                            within,
                            "it is left out of a record when no field under it is present",
                        );
                    }
                    self.needed(written, &member.shape, &inside, anchor, within);
                }
                (None, None) if !member.optional() => {
                    let message = format!(
                        "the target schema needs `{path}`{within} (it is not nullable and has no default), but no field writes it"
                    );
                    self.diags.push(Diagnostic::new(anchor, message));
                }
                (None, None) => {}
            }
        }
    }

    fn absent(&mut self, spec: &FieldSpec, path: &str, within: &str, why: &str) {
        let Some(target) = &spec.target else { return };
        let message = format!(
            "`{path}`{within} may be absent ({why}), but the target schema needs it: it is not nullable and has no default"
        );
        self.diags.push(Diagnostic::new(target.pos, message).spanning(&target.extent));
    }
}

/// Whether a field of type `ty` writes what a member of `kind` holds.
fn type_fits(ty: FieldType, kind: &ShapeKind) -> bool {
    use ShapeKind as S;
    match (ty, kind) {
        (_, S::Any) | (FieldType::Any, _) => true,
        (FieldType::String, k) => k.is_text(),
        (FieldType::Datetime, S::Datetime | S::String) | (FieldType::Date, S::Date | S::String) => true,
        (FieldType::Integer, S::Integer | S::Number) | (FieldType::Number, S::Number) => true,
        (FieldType::Boolean, S::Boolean) => true,
        (FieldType::Decimal, S::Decimal | S::Integer) => true,
        (FieldType::Object, S::Object(_) | S::Map(_)) | (FieldType::Array, S::Array(_)) => true,
        _ => false,
    }
}

/// Whether a const value is what a member of `kind` holds: an enum's symbol, a whole number for
/// an integer…
fn const_fits(value: &serde_json::Value, kind: &ShapeKind) -> bool {
    use serde_json::Value as V;
    match (value, kind) {
        (V::String(s), ShapeKind::Enum(symbols)) => symbols.iter().any(|sym| sym == s),
        (V::String(_), k) => k.is_text() || *k == ShapeKind::Any,
        (V::Number(n), ShapeKind::Integer) => n.is_i64() || n.is_u64(),
        (V::Number(_), ShapeKind::Number | ShapeKind::Any) => true,
        (V::Bool(_), ShapeKind::Boolean | ShapeKind::Any) => true,
        (V::Object(_), ShapeKind::Object(_) | ShapeKind::Map(_) | ShapeKind::Any) => true,
        (V::Array(_), ShapeKind::Array(_) | ShapeKind::Any) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
