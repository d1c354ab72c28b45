//! Compiling the fields of one scope — the record, or each item of an `items:` field — with the
//! expressions that tie them together: computed values, conditions, conditional validators.
//!
//! Types flow between fields: a computed field without a `type:` takes its expression's type, and
//! expressions reading it see that type. The compiler infers those types first (a few passes over
//! the expressions, each seeing the types the last one found), then compiles every field for good,
//! then orders the fields that read others so each comes after what it reads, refusing cycles.

use std::collections::HashMap;
use std::sync::Arc;

use super::expr::syntax::PathStep;
use super::expr::{self, Compiled, Domain, LookupTable, Names, RowShape, Ty};
use super::field::{Extras, Field, FieldSet, FieldSource, SourcePaths, compile_field};
use super::output::OutputTree;
use super::path::Segment;
use super::types::FieldType;
use crate::diagnostic::one_line;
use crate::diagnostic::{Diagnostic, Diagnostics, Severity, Spanned};
use crate::spec::{FieldSpec, NodeKind};

/// What every scope of a mapping shares.
pub(super) struct Context<'c> {
    pub(super) lookups: &'c HashMap<String, Arc<LookupTable>>,
    pub(super) secret: &'c SharedSecret<'c>,
}

/// What the compiler knows about a field's possible values, from its spec.
pub(super) fn domain_of(spec: &FieldSpec) -> Option<Domain> {
    let one_of = spec
        .validate
        .iter()
        .filter(|s| s.when.is_none() && s.name.value == "one_of")
        .find_map(|s| s.arg.as_ref())
        .and_then(|n| match &n.kind {
            NodeKind::Seq(items) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>(),
            _ => None,
        });
    let upper = match spec.transform.last().map(|s| s.name.as_str()) {
        Some("uppercase") => Some(true),
        Some("lowercase") => Some(false),
        _ => None,
    };
    (one_of.is_some() || upper.is_some()).then_some(Domain { one_of, upper })
}

/// A key reference → the key, shared by every expression that uses it.
pub(super) type SharedSecret<'a> = dyn Fn(&str) -> Result<Arc<[u8]>, String> + 'a;

/// The static type expressions see for a field of this declared type.
pub(super) fn ty_of(field_type: FieldType) -> Ty {
    match field_type {
        FieldType::String => Ty::String,
        FieldType::Integer => Ty::Int,
        FieldType::Number => Ty::Number,
        FieldType::Boolean => Ty::Bool,
        FieldType::Datetime => Ty::Timestamp,
        FieldType::Date => Ty::Date,
        FieldType::Decimal => Ty::Decimal,
        FieldType::Array => Ty::List(Box::new(Ty::Dyn)),
        FieldType::Object | FieldType::Any => Ty::Dyn,
    }
}

/// The field type a computed value of this static type is written as.
fn field_type_of(ty: &Ty) -> FieldType {
    match ty {
        Ty::Int => FieldType::Integer,
        Ty::Double | Ty::Number => FieldType::Number,
        Ty::Decimal | Ty::String => FieldType::String,
        Ty::Bool => FieldType::Boolean,
        Ty::Timestamp => FieldType::Datetime,
        Ty::Date => FieldType::Date,
        Ty::List(_) => FieldType::Array,
        Ty::Null | Ty::Row(_) | Ty::Dyn => FieldType::Any,
    }
}

/// The type the readers of a computed field without a `type:` see. It is the expression's own
/// type (a decimal stays a decimal, a datetime an instant) when the field's value is the
/// expression's value; a transform or a `default:` may put something else there, so then readers
/// see the type the field is written as.
fn read_type(spec: &FieldSpec, computed: Ty) -> Ty {
    if spec.transform.is_empty() && spec.default.is_none() { computed } else { ty_of(field_type_of(&computed)) }
}

/// Whether a declared type can hold what an expression computes.
fn holds(declared: FieldType, computed: &Ty) -> bool {
    match (declared, computed) {
        (FieldType::Any, _) | (_, Ty::Dyn | Ty::Null) => true,
        (FieldType::String, Ty::String | Ty::Decimal | Ty::Date | Ty::Timestamp) => true,
        (FieldType::Number, t) => matches!(t, Ty::Int | Ty::Double | Ty::Number),
        (FieldType::Decimal, t) => matches!(t, Ty::Int | Ty::Decimal),
        (t, c) => t == field_type_of(c),
    }
}

/// Names an expression of a scope can use.
pub(super) struct ScopeNames<'x, 'e> {
    pub(super) targets: &'x HashMap<&'x str, usize>,
    pub(super) tys: &'x [Ty],
    pub(super) paths: &'x mut SourcePaths<'e>,
    pub(super) ctx: &'x Context<'x>,
    /// Set for `drop:`, which runs before any field.
    pub(super) no_targets: Option<&'static str>,
    /// Per field, what its values can be (for warnings).
    pub(super) domains: &'x [Option<Domain>],
}

impl Names for ScopeNames<'_, '_> {
    fn target(&self, name: &str) -> Option<(usize, Ty)> {
        if self.no_targets.is_some() {
            return None;
        }
        self.targets.get(name).map(|&i| (i, self.tys[i].clone()))
    }

    fn target_names(&self) -> Vec<String> {
        self.targets.keys().map(|k| k.to_string()).collect()
    }

    fn targets_unavailable(&self) -> Option<&'static str> {
        self.no_targets
    }

    fn path(&mut self, steps: &[PathStep]) -> usize {
        let segments: Vec<Segment> = steps
            .iter()
            .map(|s| match s {
                PathStep::Key(k) => Segment::Key(k.clone().into_boxed_str()),
                PathStep::Index(i) => Segment::Index(*i),
            })
            .collect();
        self.paths.add(&segments).0
    }

    fn lookup(&self, name: &str) -> Option<Arc<LookupTable>> {
        self.ctx.lookups.get(name).cloned()
    }

    fn lookup_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.ctx.lookups.keys().cloned().collect();
        names.sort();
        names
    }

    fn secret(&self, reference: &str) -> Result<Arc<[u8]>, String> {
        (self.ctx.secret)(reference)
    }

    fn domain(&self, index: usize) -> Option<Domain> {
        self.domains.get(index).cloned().flatten()
    }
}

/// Compiles an expression written at `text.pos`, reporting each problem where it was written in
/// the file (on its own line in a multi-line scalar), underlining the token it is at.
pub(super) fn compile_expression(
    text: &Spanned<String>,
    names: &mut ScopeNames<'_, '_>,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    // Once for every problem of the expression: each quotes it, and finds the token it is at.
    let quoted = one_line(&text.value);
    let ascii = text.value.is_ascii();
    let located = |at: usize, message: &str| {
        // The text from the token on, up to a bound: a longer token is underlined that far.
        let rest: std::borrow::Cow<'_, str> = if ascii {
            let rest = text.value.get(at..).unwrap_or_default();
            rest[..rest.len().min(TOKEN_CHARS)].into()
        } else {
            text.value.chars().skip(at).take(TOKEN_CHARS).collect::<String>().into()
        };
        let end = at + expr::syntax::token_len(&rest, 0);
        Diagnostic::new(text.pos_at(at), format!("in expression `{quoted}`: {message}")).until(text.pos_at(end))
    };
    match expr::compile(&text.value, names) {
        Ok(c) => {
            for (at, message) in &c.warnings {
                diags.push(Diagnostic { severity: Severity::Warning, ..located(*at, message) });
            }
            Some(c)
        }
        Err(errors) => {
            diags.extend(errors.iter().map(|(at, message)| located(*at, message)));
            None
        }
    }
}

/// The most characters of a token a diagnostic underlines.
const TOKEN_CHARS: usize = 4096;

/// A boolean condition (`when:`, a rule's `check`).
pub(super) fn compile_condition(
    text: &Spanned<String>,
    what: &str,
    names: &mut ScopeNames<'_, '_>,
    diags: &mut Diagnostics,
) -> Option<Compiled> {
    let compiled = compile_expression(text, names, diags)?;
    if !matches!(compiled.ty, Ty::Bool | Ty::Dyn | Ty::Null) {
        diags.push(
            Diagnostic::new(
                text.pos,
                format!(
                    "{what} is a condition, but `{}` gives {}, not a boolean",
                    one_line(&text.value),
                    compiled.ty.name()
                ),
            )
            .spanning(&text.extent),
        );
        return None;
    }
    Some(compiled)
}

/// Compiles the fields of a scope: the field set (`None` when any field has a problem; all are
/// reported) and the static type of each field, for the expressions outside the scope.
pub(super) fn compile_scope(
    specs: &[FieldSpec],
    paths: &mut SourcePaths<'_>,
    ctx: &Context<'_>,
    diags: &mut Diagnostics,
) -> (Option<FieldSet>, Vec<Ty>) {
    let before = diags.len();
    // Targets by name (the first definition; duplicates are reported elsewhere).
    let mut targets: HashMap<&str, usize> = HashMap::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if let Some(t) = &spec.target {
            targets.entry(t.as_str()).or_insert(i);
        }
    }
    let domains: Vec<Option<Domain>> = specs.iter().map(domain_of).collect();
    // Item scopes first: their shapes are the types of the fields that map them.
    let (mut item_sets, mut tys) = item_scopes(specs, ctx, diags);
    infer_computed_types(specs, &targets, &domains, &mut tys, paths, ctx);
    // Every field, for good.
    let mut fields: Vec<Option<Field>> = Vec::with_capacity(specs.len());
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let mut names =
            ScopeNames { targets: &targets, tys: &tys, paths: &mut *paths, ctx, no_targets: None, domains: &domains };
        let computed = spec.expr.as_ref().and_then(|e| compile_expression(e, &mut names, diags));
        if let (Some(c), Some(kind)) = (&computed, &spec.kind)
            && let Some(declared) = FieldType::from_name(&kind.value)
            && !holds(declared, &c.ty)
        {
            diags.push(Diagnostic::new(
                kind.pos,
                format!("`type: {}` cannot hold what the expression gives: {}", kind.value, c.ty.name()),
            ));
        }
        let when = spec.when.as_ref().and_then(|w| compile_condition(w, "`when`", &mut names, diags));
        let validator_when: Vec<Option<Compiled>> = spec
            .validate
            .iter()
            .map(|step| step.when.as_ref().and_then(|w| compile_condition(w, "`when`", &mut names, diags)))
            .collect();
        for step in &spec.transform {
            if let Some(w) = &step.when {
                diags.push(Diagnostic::new(
                    w.pos,
                    "`when` applies to validators and fields; for a conditional value, compute it with `expr` and `? :`",
                ));
            }
        }
        let mut reads: Vec<usize> = Vec::new();
        for c in computed.iter().chain(&when).chain(validator_when.iter().flatten()) {
            reads.extend(&c.reads);
        }
        reads.sort_unstable();
        reads.dedup();
        deps.push(reads);
        let inferred = computed.as_ref().map(|c| field_type_of(&c.ty));
        let extras = Extras { computed, inferred, when, validator_when, items: item_sets[i].take() };
        fields.push(compile_field(spec, paths, extras, diags));
    }
    // Which fields wait for others: known from the spec, so a cycle is reported with the rest.
    let in_item = matches!(paths, SourcePaths::Item(_));
    let waits: Vec<bool> = specs
        .iter()
        .map(|s| {
            in_item
                || s.expr.is_some()
                || s.when.is_some()
                || s.items.is_some()
                || s.validate.iter().any(|v| v.when.is_some())
        })
        .collect();
    let targets_by_index: Vec<&str> = specs.iter().map(|s| s.target.as_ref().map_or("", |t| t.as_str())).collect();
    let later = evaluation_order(specs, &targets_by_index, &waits, &deps, diags);
    if diags.len() > before || fields.iter().any(Option::is_none) {
        return (None, tys);
    }
    let mut fields: Vec<Field> = fields.into_iter().map(|f| f.expect("checked above")).collect();
    let Some(later) = later else { return (None, tys) };
    follow_sensitivity(&mut fields, &later, specs);
    let output =
        OutputTree::build(fields.iter().enumerate().filter(|(_, f)| f.output).map(|(i, f)| (i, f.target.as_str())));
    (Some(FieldSet { fields, later, output, paths: Vec::new() }), tys)
}

/// The `items:` fields' own scopes, compiled first: each one's shape (its fields and their types)
/// is the type of the field that maps it. Per field: its item scope, and its type as far as the
/// spec says.
fn item_scopes(
    specs: &[FieldSpec],
    ctx: &Context<'_>,
    diags: &mut Diagnostics,
) -> (Vec<Option<Box<FieldSet>>>, Vec<Ty>) {
    let mut item_sets: Vec<Option<Box<FieldSet>>> = Vec::with_capacity(specs.len());
    let mut tys: Vec<Ty> = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut set = None;
        let ty = if let Some(items) = &spec.items {
            let mut paths = Vec::new();
            let (item_set, item_tys) = compile_scope(&items.value, &mut SourcePaths::Item(&mut paths), ctx, diags);
            set = item_set.map(|mut s| {
                s.paths = paths;
                Box::new(s)
            });
            match &set {
                Some(s) => {
                    let fields = s.fields.iter().zip(item_tys).map(|(f, ty)| (f.target.clone(), ty)).collect();
                    Ty::List(Box::new(Ty::Row(Arc::new(RowShape { fields }))))
                }
                None => Ty::Dyn,
            }
        } else {
            match spec.kind.as_ref().and_then(|k| FieldType::from_name(&k.value)) {
                Some(t) => ty_of(t),
                None => Ty::Dyn,
            }
        };
        item_sets.push(set);
        tys.push(ty);
    }
    (item_sets, tys)
}

/// Computed fields without a `type:` take their expression's type; a few passes let types flow
/// along chains of computed fields. Problems are not reported here: the fields' own compilation
/// reports them once.
fn infer_computed_types(
    specs: &[FieldSpec],
    targets: &HashMap<&str, usize>,
    domains: &[Option<Domain>],
    tys: &mut [Ty],
    paths: &mut SourcePaths<'_>,
    ctx: &Context<'_>,
) {
    let untyped: Vec<usize> =
        (0..specs.len()).filter(|&i| specs[i].expr.is_some() && specs[i].kind.is_none()).collect();
    for _ in 0..=untyped.len().min(8) {
        let mut changed = false;
        for &i in &untyped {
            let text = specs[i].expr.as_ref().expect("filtered on expr");
            let mut names = ScopeNames { targets, tys, paths: &mut *paths, ctx, no_targets: None, domains };
            if let Ok(c) = expr::compile(&text.value, &mut names) {
                let ty = read_type(&specs[i], c.ty);
                if ty != tys[i] {
                    tys[i] = ty;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Sensitivity follows the value: a field computed from a sensitive field is sensitive too, unless
/// it says `sensitive: false` (a hash or a mask of it). Every expression that reads a sensitive
/// field, or belongs to one, leaves the record's values out of its messages, whatever the field
/// declares: `int(card)` failing would otherwise quote the card. `later` is in dependency order,
/// so a chain of computed fields is followed to its end.
fn follow_sensitivity(fields: &mut [Field], later: &[usize], specs: &[FieldSpec]) {
    for &i in later {
        let reads_sensitive = |c: &Compiled, fields: &[Field]| c.reads.iter().any(|&r| fields[r].sensitive);
        let computed_from_secret = match &fields[i].source {
            FieldSource::Computed(c) => reads_sensitive(c, fields),
            _ => false,
        };
        if computed_from_secret && specs[i].sensitive.is_none() {
            fields[i].sensitive = true;
        }
        let own = fields[i].sensitive;
        let flags: Vec<bool> = fields[i].expressions().map(|c| own || reads_sensitive(c, fields)).collect();
        for (c, flag) in fields[i].expressions_mut().zip(flags) {
            c.reads_sensitive = flag;
        }
    }
}

/// The fields evaluated after the plain ones, each after every field it reads; a cycle is an
/// error naming its path.
fn evaluation_order(
    specs: &[FieldSpec],
    targets: &[&str],
    waits: &[bool],
    deps: &[Vec<usize>],
    diags: &mut Diagnostics,
) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; specs.len()];
    let mut order = Vec::new();
    let mut failed = false;
    // Iterative depth-first search: generated mappings can chain many computed fields.
    for root in 0..specs.len() {
        if !waits[root] || marks[root] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = deps[node].get(*next) {
                *next += 1;
                match marks[dep] {
                    Mark::Done => {}
                    Mark::Active => {
                        let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[start..].iter().map(|(n, _)| targets[*n]).collect();
                        cycle.push(targets[dep]);
                        let pos =
                            specs[dep].expr.as_ref().or(specs[dep].when.as_ref()).map_or(specs[dep].pos, |e| e.pos);
                        diags.push(Diagnostic::new(
                            pos,
                            format!(
                                "fields read each other in a cycle: {}; a value cannot depend on itself",
                                cycle.join(" → ")
                            ),
                        ));
                        failed = true;
                    }
                    Mark::New if !waits[dep] => marks[dep] = Mark::Done,
                    Mark::New => {
                        marks[dep] = Mark::Active;
                        stack.push((dep, 0));
                    }
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    if failed {
        return None;
    }
    Some(order)
}
