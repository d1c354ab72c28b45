use super::*;
use crate::diagnostic::Severity;
use crate::plan::load_str;

fn member(name: &str, kind: ShapeKind) -> Member {
    Member::new(name, Shape::of(kind))
}

/// An order as a schema gives it: one member of every kind.
fn order() -> Shape {
    Shape::object(vec![
        member("id", ShapeKind::String),
        member("amount", ShapeKind::Decimal),
        member("total_cents", ShapeKind::Integer),
        member("weight", ShapeKind::Number),
        member("paid", ShapeKind::Boolean),
        member("status", ShapeKind::Enum(vec!["NEW".into(), "PAID".into()])),
        member("created_at", ShapeKind::Datetime),
        member("day", ShapeKind::Date),
        member("local", ShapeKind::LocalDatetime),
        Member::new("channel", Shape::of(ShapeKind::String).or_null()).with_default(),
        member(
            "customer",
            ShapeKind::Object(vec![
                member("name", ShapeKind::String),
                Member::new("email", Shape::of(ShapeKind::String).or_null()),
            ]),
        ),
        member(
            "lines",
            ShapeKind::Array(Box::new(Shape::object(vec![
                member("sku", ShapeKind::String),
                member("qty", ShapeKind::Integer),
            ]))),
        ),
        member("attrs", ShapeKind::Map(Box::new(Shape::of(ShapeKind::String)))),
        member("extra", ShapeKind::Any),
    ])
}

fn spec_of(fields: &str) -> MappingSpec {
    let text = format!("version: 1\nname: t\n{fields}");
    let (spec, diags) = crate::spec::parse(&text);
    assert!(diags.is_empty(), "{diags:?}");
    spec
}

/// The source check's findings as `line:col: severity: message`.
fn source(fields: &str) -> Vec<String> {
    check_source(&spec_of(fields), &order())
        .iter()
        .map(|d| format!("{}: {}: {}", d.pos, d.severity, d.message))
        .collect()
}

#[test]
fn a_mapping_that_reads_what_the_schema_has_is_clean() {
    let found = source(
        "fields:
  - { target: id, source: $.id, type: string, required: true }
  - { target: cents, source: $.total_cents, type: number }
  - { target: amount, source: $.amount, type: string }
  - { target: status, source: $.status, type: string }
  - { target: at, source: $.created_at, type: datetime }
  - { target: at_text, source: $.created_at, type: string }
  - { target: day, source: $.day, type: date }
  - { target: name, source: $.customer.name, type: string }
  - { target: skus, source: '$.lines[*].sku', type: array }
  - { target: first_qty, source: '$.lines[0].qty', type: integer }
  - { target: color, source: $.attrs.color, type: string }
  - { target: deep, source: $.extra.a.b, type: integer }
  - { target: id_number, source: $.id, type: integer, transform: [trim, to_integer] }
  - { target: grams, source: $.weight, type: integer, transform: [{multiply: 1000}, to_integer] }
  - { target: big, type: boolean, expr: '$.total_cents > 100 && $.customer.name != \"\"' }
  - target: lines
    source: $.lines
    items:
      - { target: sku, source: $.sku, type: string, required: true }
      - { target: qty, source: $.qty, type: integer }
drop: $.status == 'NEW'
",
    );
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn a_misspelt_source_is_an_error_at_the_step_with_the_nearest_member() {
    let spec = spec_of("fields:\n  - target: name\n    source: $.customer.nmae\n    type: string\n");
    let found = check_source(&spec, &order());
    assert_eq!(found.len(), 1, "{found:?}");
    // `$.customer.nmae` starts at column 13 of line 5; `.nmae` at column 23.
    assert_eq!((found[0].pos, found[0].end), (Pos::new(5, 23), Some(Pos::new(5, 28))));
    assert_eq!(
        found[0].message,
        "`$.customer.nmae`: the source schema has no `nmae` in `$.customer`; did you mean `name`?"
    );
    let at_root = source("fields:\n  - { target: x, source: $.totl_cents, type: integer }\n");
    assert_eq!(
        at_root,
        [
            "4:27: error: `$.totl_cents`: the source schema has no `totl_cents` in the record; did you mean `total_cents`?"
        ]
    );
    let far = source("fields:\n  - { target: x, source: $.zzz, type: integer }\n");
    assert!(far[0].contains("has no `zzz` in the record; its members: id, amount, total_cents,"), "{far:?}");
}

#[test]
fn a_step_into_a_value_that_has_none_is_an_error() {
    let found = source(
        "fields:\n  - { target: x, source: $.id.first, type: string }\n  - { target: y, source: '$.customer[0]', type: string }\n  - { target: z, source: $.attrs.any_key.deeper, type: string }\n",
    );
    assert_eq!(
        found,
        [
            "4:30: error: `$.id.first`: `$.id` is text in the source schema; it has no member `first`",
            "5:37: error: `$.customer[0]`: `$.customer` is a record in the source schema, not an array",
            "6:41: error: `$.attrs.any_key.deeper`: `$.attrs.any_key` is text in the source schema; it has no member `deeper`",
        ]
    );
}

#[test]
fn a_type_that_cannot_hold_the_schemas_value_is_an_error_unless_a_transform_converts_it() {
    let found = source(
        "fields:
  - { target: a, source: $.id, type: integer }
  - { target: b, source: $.total_cents, type: string }
  - { target: c, source: $.weight, type: integer }
  - { target: d, source: $.day, type: datetime }
  - { target: e, source: $.local, type: datetime }
  - { target: f, source: $.amount, type: number }
  - { target: g, source: $.total_cents, type: string, transform: [to_string] }
  - { target: h, source: $.id, type: integer, transform: [to_integer] }
  - { target: i, source: $.local, type: datetime, transform: [{parse_datetime: {format: '%Y-%m-%dT%H:%M:%S%.f', zone: UTC}}] }
",
    );
    let expected = [
        "4:38: error: `type: integer` cannot hold `$.id`, which the source schema gives as text; convert it with `to_integer`",
        "5:47: error: `type: string` cannot hold `$.total_cents`, which the source schema gives as an integer; convert it with `to_string`",
        "6:42: error: `type: integer` cannot hold `$.weight`, which the source schema gives as a number (a float); a number may have a fraction: declare `type: number`, or convert it with `to_integer`, which refuses one",
        "7:39: error: `type: datetime` cannot hold `$.day`, which the source schema gives as a date (YYYY-MM-DD text)",
        "8:41: error: `type: datetime` cannot hold `$.local`, which the source schema gives as a date and time without a zone (text); it has no zone: read it with `parse_datetime: {format: '%Y-%m-%dT%H:%M:%S%.f', zone: …}`, or declare `type: string`",
        "9:42: error: `type: number` cannot hold `$.amount`, which the source schema gives as an exact decimal (as text); an exact decimal arrives as text: declare `type: decimal` to keep it exact, or convert it with `to_number` (a float, which may round it)",
    ];
    assert_eq!(found, expected);
}

#[test]
fn a_transform_that_cannot_take_the_schemas_value_is_an_error_at_the_step() {
    let found = source(
        "fields:\n  - { target: a, source: $.total_cents, type: string, transform: [trim] }\n  - { target: b, source: $.amount, type: number, transform: [to_number] }\n",
    );
    assert_eq!(
        found,
        [
            "4:67: error: transform `trim` takes a string, but the source schema gives `$.total_cents` as an integer",
            "5:62: warning: `$.amount` is an exact decimal in the source schema, and `to_number` makes it a float, which may round it; `type: string` keeps it exact",
        ]
    );
}

#[test]
fn a_required_field_the_schema_lets_be_null_is_a_warning() {
    let found = source(
        "fields:\n  - { target: c, source: $.channel, type: string, required: true }\n  - { target: e, source: $.customer.email, type: string, required: true }\n  - { target: n, source: $.customer.name, type: string, required: true }\n",
    );
    assert_eq!(
        found,
        [
            "4:61: warning: `$.channel` may be null in the source schema; such records will fail `required`",
            "5:68: warning: `$.customer.email` may be null in the source schema; such records will fail `required`",
        ]
    );
    let spec = spec_of("fields:\n  - { target: c, source: $.channel, type: string, required: true }\n");
    assert!(check_source(&spec, &order()).iter().all(|d| d.severity == Severity::Warning));
}

#[test]
fn items_and_wildcards_follow_the_arrays_items() {
    let found = source(
        "fields:
  - { target: qtys, source: '$.lines[*].qtx', type: array }
  - target: lines
    source: $.lines
    items:
      - { target: sku, source: $.skux, type: string }
      - { target: qty, source: $.qty, type: string }
      - { target: big, expr: '$.qty > 1 && $.sku != \"\"' }
  - target: bad
    source: $.customer
    items:
      - { target: a, source: $.a, type: string }
",
    );
    assert_eq!(
        found,
        [
            "4:40: error: `$.lines[*].qtx`: the source schema has no `qtx` in `$.lines[*]`; did you mean `qty`?",
            "8:33: error: `$.skux`: the source schema has no `skux` in each item of `$.lines`; did you mean `sku`?",
            "9:45: error: `type: string` cannot hold `$.qty`, which the source schema gives as an integer; convert it with `to_string`",
            "12:13: error: `items` maps the items of an array, but the source schema gives `$.customer` as a record",
        ]
    );
}

#[test]
fn paths_in_expressions_conditions_and_rules_are_checked_too() {
    let found = source(
        "fields:
  - { target: a, expr: '$.customer.nmae', type: string }
  - { target: b, source: $.id, type: string, when: '$.stauts == \"PAID\"' }
drop: $.chanel == 'test'
rules:
  - { name: r, check: '$.total_cents > 0 && $.lines[0].skux != \"\"' }
",
    );
    assert_eq!(
        found,
        [
            "4:25: error: in expression `$.customer.nmae`: `$.customer.nmae`: the source schema has no `nmae` in `$.customer`; did you mean `name`?",
            "5:53: error: in expression `$.stauts == \"PAID\"`: `$.stauts`: the source schema has no `stauts` in the record; did you mean `status`?",
            "6:7: error: in expression `$.chanel == 'test'`: `$.chanel`: the source schema has no `chanel` in the record; did you mean `channel`?",
            "8:45: error: in expression `$.total_cents > 0 && $.lines[0].skux != \"\"`: `$.lines[0].skux`: the source schema has no `skux` in `$.lines[0]`; did you mean `sku`?",
        ]
    );
}

fn target_of(fields: &str, shape: &Shape) -> Vec<String> {
    let text = format!("version: 1\nname: t\n{fields}");
    let (spec, plan) = load_str(&text).unwrap_or_else(|d| panic!("{d:#?}"));
    check_target(&spec, &plan, shape).iter().map(|d| format!("{}: {}: {}", d.pos, d.severity, d.message)).collect()
}

/// A billing record as the target schema wants it.
fn billing() -> Shape {
    Shape::object(vec![
        member("id", ShapeKind::String),
        member("cents", ShapeKind::Integer),
        member("status", ShapeKind::Enum(vec!["NEW".into(), "PAID".into()])),
        Member::new("note", Shape::of(ShapeKind::String).or_null()),
        member("schema", ShapeKind::String).with_default(),
        member(
            "customer",
            ShapeKind::Object(vec![member("name", ShapeKind::String), member("tier", ShapeKind::String)]),
        ),
        member(
            "lines",
            ShapeKind::Array(Box::new(Shape::object(vec![
                member("sku", ShapeKind::String),
                member("qty", ShapeKind::Integer),
            ]))),
        ),
    ])
}

#[test]
fn a_mapping_that_writes_what_the_target_schema_needs_is_clean() {
    let found = target_of(
        "fields:
  - { target: id, source: $.id, type: string, required: true }
  - { target: cents, source: $.c, type: integer, default: 0 }
  - { target: status, const: PAID }
  - { target: note, source: $.n, type: string }
  - { target: customer.name, source: $.name, type: string, required: true }
  - { target: customer.tier, expr: 'customer_name == \"\" ? \"none\" : \"gold\"', required: true }
  - target: lines
    source: $.lines
    required: true
    items:
      - { target: sku, source: $.sku, type: string, required: true }
      - { target: qty, source: $.qty, type: integer, default: 1 }
  - { target: customer_name, source: $.name, type: string, output: false }
",
        &billing(),
    );
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn missing_needed_members_wrong_types_and_unknown_targets_are_errors() {
    let found = target_of(
        "fields:
  - { target: id, source: $.id, type: integer, required: true }
  - { target: cents, source: $.c, type: number, required: true }
  - { target: status, const: LOST }
  - { target: customer.nmae, source: $.name, type: string }
  - { target: customer.tier, source: $.tier, type: string }
  - target: lines
    source: $.lines
    items:
      - { target: qty, source: $.qty, type: integer }
",
        &billing(),
    );
    assert_eq!(
        found,
        [
            "4:5: error: the target schema needs `customer.name` (it is not nullable and has no default), but no field writes it",
            "4:39: error: target `id` is `type: integer`, but the target schema has it as text",
            "5:41: error: target `cents` is `type: number`, but the target schema has it as an integer",
            "6:15: error: target `status` is the const `\"LOST\"`, but the target schema has it as an enum (NEW, PAID)",
            "7:15: error: `customer` may be absent (it is left out of a record when no field under it is present), but the target schema needs it: it is not nullable and has no default",
            "7:15: error: target `customer.nmae`: the target schema has no `nmae` in `customer`; did you mean `name`?",
            "8:15: error: `customer.tier` may be absent (it is not `required` and has no `default`), but the target schema needs it: it is not nullable and has no default",
            "9:13: error: `lines` may be absent (it is not `required` and has no `default`), but the target schema needs it: it is not nullable and has no default",
            "12:7: error: the target schema needs `sku` in each item of `lines` (it is not nullable and has no default), but no field writes it",
            "12:19: error: `qty` in each item of `lines` may be absent (it is not `required` and has no `default`), but the target schema needs it: it is not nullable and has no default",
        ]
    );
}
