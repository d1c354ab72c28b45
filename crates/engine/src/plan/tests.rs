use serde_json::{Value, json};

use super::*;

fn plan(fields_and_more: &str) -> Plan {
    let text = format!("version: 1\nname: t\n{fields_and_more}");
    match load_str(&text) {
        Ok((_, plan)) => plan,
        Err(diags) => panic!("expected the spec to compile, got {diags:#?}"),
    }
}

fn problems(fields_and_more: &str) -> Vec<String> {
    let text = format!("version: 1\nname: t\n{fields_and_more}");
    match load_str(&text) {
        Ok(_) => panic!("expected the spec to be refused"),
        Err(diags) => diags.iter().map(|d| format!("{}: {}", d.pos, d.message)).collect(),
    }
}

fn apply(plan: &Plan, input: Value) -> Outcome {
    plan.apply(&serde_json::to_vec(&input).unwrap())
}

fn rules_of(outcome: &Outcome) -> Vec<(Option<&str>, &str)> {
    outcome.errors().iter().map(|e| (e.field.as_deref(), e.rule.as_str())).collect()
}

/// A defect of the engine that panics on some record fails that record, stage `internal`, and
/// says so; the caller (a batch, the process) never unwinds.
#[test]
fn a_panic_while_mapping_fails_the_record_instead_of_unwinding() {
    let outcome = guarded(|| panic!("index out of bounds: the len is 3 but the index is 7"));
    let Outcome::Failed(failure) = outcome else { panic!("expected a failed record") };
    assert_eq!(failure.stage, Stage::Internal);
    assert_eq!(failure.errors.len(), 1);
    assert_eq!(failure.errors[0].rule, "panic");
    assert!(failure.errors[0].message.contains("index out of bounds"), "{:?}", failure.errors);
    let formatted = guarded(|| panic!("{}", String::from("a formatted message")));
    assert!(formatted.errors()[0].message.contains("a formatted message"));
    // And nothing is caught where nothing panicked.
    assert!(matches!(guarded(|| Outcome::Dropped), Outcome::Dropped));
}

#[test]
fn plan_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Plan>();
}

#[test]
fn output_keeps_spec_order_and_nests_dotted_targets() {
    let p = plan(
        "fields:\n  - {target: z, source: $.a, type: integer}\n  - {target: ship_to.state, source: $.s, type: string}\n  - {target: m, source: $.b, type: string}\n  - {target: ship_to.city, source: $.c, type: string}\n",
    );
    let Outcome::Mapped(m) = apply(&p, json!({"a": 1, "s": "SP", "b": "x", "c": "São Paulo", "unused": [1, 2]}))
    else {
        panic!()
    };
    assert_eq!(String::from_utf8(m.value).unwrap(), r#"{"z":1,"ship_to":{"state":"SP","city":"São Paulo"},"m":"x"}"#);
}

#[test]
fn absent_optional_fields_and_empty_objects_are_left_out() {
    let p =
        plan("fields:\n  - {target: a, source: $.a, type: integer}\n  - {target: o.b, source: $.b, type: string}\n");
    let Outcome::Mapped(m) = apply(&p, json!({"a": 1, "b": null})) else { panic!() };
    assert_eq!(m.value, br#"{"a":1}"#);
    let Outcome::Mapped(m) = apply(&p, json!({})) else { panic!() };
    assert_eq!(m.value, b"{}");
}

#[test]
fn missing_null_default_and_required() {
    let p = plan(
        "fields:\n  - {target: a, source: $.a, type: string, default: web, transform: [uppercase]}\n  - {target: b, source: $.b, type: string, required: true}\n",
    );
    assert_eq!(
        apply(&p, json!({"b": "x"})).ok_value(),
        Some(json!({"a": "WEB", "b": "x"})),
        "the default flows through transforms"
    );
    assert_eq!(
        apply(&p, json!({"a": null, "b": "x"})).ok_value(),
        Some(json!({"a": "WEB", "b": "x"})),
        "null counts as missing"
    );
    let failed = apply(&p, json!({"a": "x", "b": null}));
    assert_eq!(rules_of(&failed), vec![(Some("b"), "required")]);
    assert!(failed.errors()[0].message.contains("`$.b` is absent or null"));
}

#[test]
fn type_errors_skip_validators_and_all_errors_are_collected() {
    let p = plan(
        "fields:\n  - {target: n, source: $.n, type: integer, validate: [{range: {min: 1}}]}\n  - {target: s, source: $.s, type: string, validate: [uuid, {length: {max: 3}}]}\n",
    );
    let out = apply(&p, json!({"n": "12", "s": "not-a-uuid"}));
    assert_eq!(rules_of(&out), vec![(Some("n"), "type"), (Some("s"), "uuid"), (Some("s"), "length")]);
    let Outcome::Failed(f) = out else { panic!() };
    assert_eq!(f.stage, Stage::Validate);
}

#[test]
fn wildcard_sources_collect_for_arrays_and_refuse_several_for_scalars() {
    let p = plan(
        "fields:\n  - {target: skus, source: '$.items[*].sku', type: array}\n  - {target: first, source: '$.items[?@.qty > 1].sku', type: string}\n",
    );
    let out = apply(&p, json!({"items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}));
    assert_eq!(out.ok_value(), Some(json!({"skus": ["a", "b"], "first": "b"})));
    let out = apply(&p, json!({"items": [{"sku": "a", "qty": 3}, {"sku": "b", "qty": 2}]}));
    assert_eq!(rules_of(&out), vec![(Some("first"), "type")]);
    assert!(out.errors()[0].message.contains("matched 2 values"), "{}", out.errors()[0].message);
    let out = apply(&p, json!({"items": []}));
    assert_eq!(out.ok_value(), Some(json!({})), "no match is missing");
}

#[test]
fn wildcard_matches_go_through_every_step_as_an_array() {
    let p = plan(
        "fields:\n  - {target: skus, source: '$.items[*].sku', type: array, required: true, validate: [{length: {max: 2}}]}\n  - {target: one, source: '$.one[*].v', type: string}\n  - {target: kinds, source: '$.mixed[*]', type: array}\nrules:\n  - {name: ab, when: {field: skus, equals: [a, b]}, forbid: [one]}\n",
    );
    let input = json!({
        "items": [{"sku": "a"}, {"sku": "q\"é"}],
        "one": [{"v": "only"}],
        "mixed": [1, -2.5, true, null, {"k": ["x"]}, "s"],
    });
    let out = apply(&p, input);
    let Outcome::Mapped(m) = out else { panic!("expected a mapped record, got {:?}", out.errors()) };
    let value: Value = serde_json::from_slice(&m.value).unwrap();
    assert_eq!(value, json!({"skus": ["a", "q\"é"], "one": "only", "kinds": [1, -2.5, true, null, {"k": ["x"]}, "s"]}));

    let out = apply(&p, json!({"items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}));
    assert_eq!(rules_of(&out), vec![(Some("skus"), "length")]);
    assert!(out.errors()[0].message.contains("found 3"), "{}", out.errors()[0].message);
    let out = apply(&p, json!({"items": [{"sku": "a"}, {"sku": "b"}], "one": [{"v": "x"}]}));
    assert_eq!(rules_of(&out), vec![(Some("one"), "ab")], "a rule compares the array with `equals`");
}

#[test]
fn plain_paths_reach_indexes_and_odd_keys() {
    let p = plan(
        "fields:\n  - {target: a, source: '$.items[1].sku', type: string}\n  - {target: b, source: \"$['odd key'].x\", type: integer}\n  - {target: c, source: '$.items[-1].sku', type: string}\n  - {target: d, source: '$.items', type: array}\n",
    );
    let out = apply(&p, json!({"items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}], "odd key": {"x": 5}}));
    assert_eq!(
        out.ok_value(),
        Some(json!({"a": "b", "b": 5, "c": "c", "d": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}))
    );
}

#[test]
fn const_fields_and_keys() {
    let p = plan(
        "key: id\nfields:\n  - {target: id, source: $.id, type: integer, required: true}\n  - {target: schema, const: billing.v1}\n",
    );
    let Outcome::Mapped(m) = apply(&p, json!({"id": 42})) else { panic!() };
    assert_eq!(m.value, br#"{"id":42,"schema":"billing.v1"}"#);
    assert_eq!(m.key.as_deref(), Some(&b"42"[..]));
}

#[test]
fn rules_require_and_forbid_over_output_targets() {
    let p = plan(
        "fields:\n  - {target: status, source: $.status, type: string}\n  - {target: reason, source: $.reason, type: string}\n  - {target: paid_at, source: $.paid_at, type: string}\nrules:\n  - {name: reason_when_cancelled, when: {field: status, equals: CANCELLED}, require: [reason]}\n  - {name: no_reason_otherwise, when: {field: status, in: [PAID, CREATED]}, forbid: [reason]}\n  - {name: paid_needs_status, when: {field: paid_at, present: true}, require: [status]}\n",
    );
    assert!(matches!(apply(&p, json!({"status": "CANCELLED", "reason": "x"})), Outcome::Mapped(_)));
    let out = apply(&p, json!({"status": "CANCELLED"}));
    assert_eq!(rules_of(&out), vec![(Some("reason"), "reason_when_cancelled")]);
    let Outcome::Failed(f) = &out else { panic!() };
    assert_eq!(f.stage, Stage::Rule);
    assert_eq!(
        rules_of(&apply(&p, json!({"status": "PAID", "reason": "x"}))),
        vec![(Some("reason"), "no_reason_otherwise")]
    );
    assert_eq!(rules_of(&apply(&p, json!({"paid_at": "x"}))), vec![(Some("status"), "paid_needs_status")]);
}

#[test]
fn decode_errors_name_no_field() {
    let p = plan("fields:\n  - {target: a, source: $.a, type: integer}\n");
    for bad in [&b"not json"[..], b"[1]", b"42", b"", b"{\"a\":1}{", b"\xff\xfe"] {
        let Outcome::Failed(f) = p.apply(bad) else { panic!("{bad:?} should fail") };
        assert_eq!(f.stage, Stage::Decode);
        assert_eq!(rules_of(&Outcome::Failed(f.clone())), vec![(None, "json")]);
    }
}

#[test]
fn huge_numbers_are_type_errors_not_panics() {
    let p = plan("fields:\n  - {target: a, source: $.a, type: integer}\n  - {target: b, source: $.b, type: number}\n");
    let out = p.apply(br#"{"a": 123456789012345678901234567890, "b": 1e308}"#);
    assert_eq!(rules_of(&out), vec![(Some("a"), "type")]);
    for beyond_i64 in ["9223372036854775808", "18446744073709551615"] {
        let out = p.apply(format!(r#"{{"a": {beyond_i64}, "b": 1}}"#).as_bytes());
        assert_eq!(rules_of(&out), vec![(Some("a"), "type")], "{beyond_i64} is no signed 64-bit integer");
    }
    let to_integer = plan("fields:\n  - {target: a, source: $.a, type: integer, transform: [to_integer]}\n");
    for beyond_i64 in ["9223372036854775808", "\"18446744073709551615\""] {
        let out = to_integer.apply(format!(r#"{{"a": {beyond_i64}}}"#).as_bytes());
        assert_eq!(rules_of(&out), vec![(Some("a"), "to_integer")], "{beyond_i64}");
    }
    let out = p.apply(br#"{"a": 1, "b": 1e999}"#);
    assert_eq!(rules_of(&out), vec![(None, "json")], "serde_json refuses numbers beyond f64");
}

// ---- compile errors: each kind is reported, located, and all are collected ----

#[test]
fn unknown_keys_transforms_validators_and_types() {
    let p = problems(
        "fields:\n  - target: a\n    source: $.a\n    type: strin\n  - target: b\n    source: $.b\n    type: string\n    requird: true\n    transform: [trimm]\n    validate: [emial]\n",
    );
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p[0].starts_with("6:11: unknown type `strin`; did you mean `string`?"), "{p:#?}");
    assert!(p[1].starts_with("10:5: unknown key `requird`"), "{p:#?}");
    assert!(p[2].starts_with("11:17: unknown transform `trimm`; did you mean `trim`?"), "{p:#?}");
    assert!(p[3].starts_with("12:16: unknown validator `emial`; did you mean `email`?"), "{p:#?}");
}

#[test]
fn invalid_regex_and_jsonpath_point_inside_the_value() {
    let p = problems(
        "fields:\n  - target: a\n    source: $.a[?@.x ==]\n    type: string\n  - target: b\n    source: $.b\n    type: string\n    validate: [{pattern: '([A-Z'}]\n",
    );
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with("5:"), "{p:#?}");
    assert!(p[0].contains("invalid JSONPath `$.a[?@.x ==]`"), "{p:#?}");
    assert!(p[1].starts_with("10:27: invalid regex `([A-Z`"), "{p:#?}");
}

#[test]
fn duplicate_and_overlapping_targets() {
    let p = problems(
        "fields:\n  - {target: a.b, source: $.x, type: string}\n  - {target: a.b, source: $.y, type: string}\n  - {target: a.b.c, source: $.z, type: string}\n  - {target: a, source: $.w, type: object}\n  - {target: 'x..y', source: $.v, type: string}\n",
    );
    assert!(p.iter().any(|m| m.starts_with("5:14: duplicate target `a.b` (first defined at 4:14)")), "{p:#?}");
    assert!(p.iter().any(|m| m.starts_with("6:14: target `a.b.c` overlaps `a.b`")), "{p:#?}");
    assert!(p.iter().any(|m| m.starts_with("7:14: target `a` overlaps `a.b`")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("target `x..y` has an empty segment")), "{p:#?}");
}

#[test]
fn a_replacement_naming_a_group_the_pattern_lacks_is_refused_where_it_stands() {
    let p = problems(concat!(
        "fields:\n",
        "  - {target: a, source: $.a, type: string, transform: [{replace: {pattern: '(a)(b)', with: 'x${3}'}}]}\n",
        "  - {target: b, source: $.b, type: string, transform: [{replace: {pattern: '(\\d)', with: '$1T'}}]}\n",
        "  - {target: c, source: $.c, type: string, transform: [{replace: {pattern: '(?<y>\\d+)', with: '$y-$$-${1}'}}]}\n",
    ));
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(
            "4:93: replacement `x${3}` refers to group `${3}`, which the pattern does not have (groups 0 to 2)"
        ),
        "{p:#?}"
    );
    assert!(
        p[1].contains("refers to group `$1T`") && p[1].ends_with("to follow group 1 with `T`, write `${1}T`"),
        "{p:#?}"
    );
    assert!(p[1].starts_with("5:91: "), "{p:#?}");
}

#[test]
fn a_duplicate_target_is_reported_even_when_its_first_definition_has_another_error() {
    let p = problems(
        "fields:\n  - {target: a, source: $.x, type: strin}\n  - {target: a, source: $.y, type: string}\n  - {target: a.b, source: $.z, type: string}\n",
    );
    assert!(p.iter().any(|m| m.starts_with("4:36: unknown type `strin`")), "{p:#?}");
    assert!(p.iter().any(|m| m.starts_with("5:14: duplicate target `a` (first defined at 4:14)")), "{p:#?}");
    assert!(p.iter().any(|m| m.starts_with("6:14: target `a.b` overlaps `a`")), "{p:#?}");
}

#[test]
fn steps_that_cannot_apply_to_the_type() {
    let p = problems(
        "fields:\n  - {target: a, source: $.a, type: string, validate: [{range: {min: 1}}]}\n  - {target: b, source: $.b, type: integer, transform: [trim]}\n  - {target: c, source: $.c, type: string, transform: [to_integer, uppercase]}\n  - {target: d, source: $.d, type: boolean, transform: [{divide: 2}]}\n",
    );
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p[0].contains("validator `range` cannot apply to a field of type `string`"), "{p:#?}");
    assert!(p[1].contains("type `integer` cannot hold a string, which is what `trim` produces"), "{p:#?}");
    assert!(
        p[2].contains("transform `uppercase` takes a string, but receives an integer (the result of `to_integer`)"),
        "{p:#?}"
    );
    assert!(p[3].contains("type `boolean` cannot hold a number"), "{p:#?}");
}

#[test]
fn defaults_and_consts_must_pass_their_own_checks() {
    let p = problems(
        "fields:\n  - {target: a, source: $.a, type: integer, default: many}\n  - {target: b, source: $.b, type: string, default: XX, validate: [{one_of: [web, app]}]}\n  - {target: c, const: 5, type: string}\n  - {target: d, source: $.d, type: string, required: true, default: x}\n",
    );
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p[0].starts_with("4:54: `default` fails its own field's checks (type)"), "{p:#?}");
    assert!(p[1].contains("`default` fails its own field's checks (one_of)"), "{p:#?}");
    assert!(p[2].contains("`const` fails its own field's checks (type)"), "{p:#?}");
    assert!(p[3].contains("is `required` and has a `default`"), "{p:#?}");
}

#[test]
fn rules_and_key_must_name_known_targets() {
    let p = problems(
        "key: order\nfields:\n  - {target: status, source: $.s, type: string}\n  - {target: opt, source: $.o, type: string}\nrules:\n  - {name: r, when: {field: stauts, equals: X}, require: [reason]}\n  - {name: r, when: {field: status}, forbid: [opt]}\n  - {name: s, when: {field: status, equals: X}}\n",
    );
    assert!(p.iter().any(|m| m.starts_with("3:6: `key` names unknown target `order`")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("`when` names unknown target `stauts`; did you mean `status`?")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("`require` names unknown target `reason`")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("duplicate rule name `r`")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("exactly one of `equals`, `in` or `present`, found none")), "{p:#?}");
    assert!(p.iter().any(|m| m.contains("neither `require` nor `forbid`")), "{p:#?}");
}

#[test]
fn optional_key_targets_are_refused() {
    let p = problems("key: id\nfields:\n  - {target: id, source: $.id, type: string}\n");
    assert!(p[0].contains("`key` target `id` may be absent"), "{p:#?}");
}

#[test]
fn problems_are_sorted_by_position() {
    let p =
        problems("fields:\n  - {target: b, source: $.b, type: nope}\n  - {target: a, source: 'bad', type: string}\n");
    assert_eq!(p.len(), 2);
    assert!(p[0].starts_with("4:"), "{p:#?}");
    assert!(p[1].starts_with("5:"), "{p:#?}");
}

#[test]
fn unsupported_version() {
    let (_, diags) = crate::spec::parse("version: 2\nname: t\nfields: [{target: a, const: 1}]\n");
    assert!(diags.is_empty());
    let err = load_str("version: 2\nname: t\nfields: [{target: a, const: 1}]\n").unwrap_err();
    assert_eq!(err[0].to_string(), "1:10: error: unsupported `version: 2`; this program reads version 1");
}

#[test]
fn output_buffers_are_sized_by_earlier_outputs() {
    let p = plan("fields:\n  - {target: a, source: $.a, type: string}\n");
    let long = "x".repeat(5000);
    let inputs = [json!({"a": "short", "pad": "p".repeat(100)}), json!({"a": long}), json!({"a": "s"})];
    let mut outputs = Vec::new();
    for input in &inputs {
        let bytes = serde_json::to_vec(input).unwrap();
        let Outcome::Mapped(m) = p.apply(&bytes) else { panic!("{input}") };
        // At most the input's length, or twice the output when it outgrew its first buffer.
        let bound = bytes.len().max(2 * m.value.len());
        assert!(m.value.capacity() <= bound, "capacity {} for a {}-byte input", m.value.capacity(), bytes.len());
        outputs.push(String::from_utf8(m.value).unwrap());
    }
    assert_eq!(outputs, [r#"{"a":"short"}"#.to_string(), format!(r#"{{"a":"{long}"}}"#), r#"{"a":"s"}"#.into()]);
    // After the first record the buffer starts at the longest output, not at the input's length.
    let bytes = serde_json::to_vec(&json!({"a": "short", "pad": "p".repeat(6000)})).unwrap();
    let Outcome::Mapped(m) = p.apply(&bytes) else { panic!() };
    assert!(m.value.capacity() < bytes.len(), "{} vs {}", m.value.capacity(), bytes.len());
}

mod expressions {
    use super::*;

    fn value_of(expr: &str, input: Value) -> Result<Option<Value>, String> {
        let p = plan(&format!(
            "fields:\n  - {{target: a, source: $.a, type: any}}\n  - {{target: b, source: $.b, type: any}}\n  - target: out\n    expr: '{}'\n",
            expr.replace('\'', "''")
        ));
        match apply(&p, input) {
            Outcome::Mapped(m) => Ok(serde_json::from_slice::<Value>(&m.value).unwrap().get("out").cloned()),
            Outcome::Failed(f) => {
                Err(f.errors.iter().map(|e| format!("{}: {}", e.rule, e.message)).collect::<Vec<_>>().join("; "))
            }
            Outcome::Dropped => Err("dropped".into()),
        }
    }

    #[test]
    fn negating_the_smallest_integer_is_an_overflow_not_a_wrap() {
        let e = value_of("--9223372036854775808", json!({})).unwrap_err();
        assert!(e.contains("overflows"), "{e}");
        assert_eq!(value_of("-(-9223372036854775807)", json!({})), Ok(Some(json!(9223372036854775807_i64))));
    }

    #[test]
    fn absent_inputs_give_null_and_leave_the_field_out() {
        assert_eq!(value_of("a + 1", json!({})), Ok(None));
        assert_eq!(value_of("a + 1", json!({"a": 1})), Ok(Some(json!(2))));
        assert_eq!(value_of("a == null", json!({})), Ok(Some(json!(true))));
        assert_eq!(value_of("has(a)", json!({"a": null})), Ok(Some(json!(false))));
        assert_eq!(value_of("coalesce(a, b, 7)", json!({"b": 3})), Ok(Some(json!(3))));
    }

    #[test]
    fn logic_is_cels_a_decisive_side_wins_over_null_and_errors() {
        assert_eq!(value_of("a > 1 || b", json!({"a": 5})), Ok(Some(json!(true))));
        assert_eq!(value_of("a > 1 && b", json!({"a": 0})), Ok(Some(json!(false))));
        assert_eq!(value_of("b || a > 1", json!({"a": 5})), Ok(Some(json!(true))));
        assert_eq!(value_of("1 / a == 1 || true", json!({"a": 0})), Ok(Some(json!(true))));
        assert_eq!(value_of("b && true", json!({})), Ok(None), "null && true is null");
    }

    #[test]
    fn integers_are_exact_and_failures_are_errors_of_the_field() {
        assert_eq!(
            value_of("a * 2", json!({"a": i64::MAX})).unwrap_err(),
            "expr: could not be computed: `*` overflows"
        );
        assert!(value_of("a / b", json!({"a": 1, "b": 0})).unwrap_err().contains("division by zero"));
        assert_eq!(value_of("7 / 2", json!({})), Ok(Some(json!(3))), "integer division truncates, as in CEL");
        assert_eq!(value_of("-7 % 3", json!({})), Ok(Some(json!(-1))));
        assert_eq!(value_of("a + 0.5", json!({"a": 1})), Ok(Some(json!(1.5))));
    }

    #[test]
    fn decimals_never_go_through_a_float() {
        assert_eq!(value_of("decimal(\"0.1\") + decimal(\"0.2\")", json!({})), Ok(Some(json!("0.3"))));
        assert_eq!(value_of("round(decimal(a) / 100, 2)", json!({"a": 25990})), Ok(Some(json!("259.90"))));
        assert_eq!(value_of("round(decimal(\"2.345\"), 2)", json!({})), Ok(Some(json!("2.34"))), "half_even");
        assert_eq!(value_of("round(decimal(\"2.345\"), 2, \"half_up\")", json!({})), Ok(Some(json!("2.35"))));
        assert_eq!(value_of("round(decimal(\"-2.341\"), 1, \"floor\")", json!({})), Ok(Some(json!("-2.4"))));
        assert_eq!(value_of("round(decimal(\"2.3\"), 0, \"ceiling\")", json!({})), Ok(Some(json!("3"))));
        assert_eq!(value_of("decimal(1) / 3", json!({})), Ok(Some(json!("0.3333333333333333333333333333"))));
        assert_eq!(value_of("decimal(a)", json!({"a": "12.50"})), Ok(Some(json!("12.50"))), "the scale is kept");
        assert!(value_of("decimal(a)", json!({"a": "twelve"})).unwrap_err().contains("not a decimal"));
        // A decimal and a float are refused when the types are known…
        let p =
            problems("fields:\n  - {target: r, source: $.r, type: number}\n  - {target: x, expr: 'decimal(1) + r'}\n");
        assert!(p[0].contains("an exact decimal never meets a float"), "{p:?}");
        // …and fail when they meet at run time.
        assert!(value_of("decimal(1) + a", json!({"a": 0.5})).unwrap_err().contains("never meets a float"));
    }

    #[test]
    fn strings_lists_and_aggregates() {
        assert_eq!(value_of("size(a) + size(b)", json!({"a": "ção", "b": [1, 2]})), Ok(Some(json!(5))));
        assert_eq!(value_of("a in [\"x\", \"y\"]", json!({"a": "y"})), Ok(Some(json!(true))));
        assert_eq!(value_of("a[1] + a[-1]", json!({"a": [1, 2, 3]})), Ok(Some(json!(5))));
        assert_eq!(value_of("a.b.c", json!({"a": {"b": {"c": "deep"}}})), Ok(Some(json!("deep"))));
        assert_eq!(value_of("sum(a) + max(a) - min(a)", json!({"a": [3, 1, 2]})), Ok(Some(json!(8))));
        assert_eq!(
            value_of("sum(a)", json!({"a": ["1.5", 2]})).unwrap_err(),
            "expr: could not be computed: `+` cannot take an integer and a string"
        );
        assert_eq!(value_of("a.map(x, x * 2).filter(x, x > 2)", json!({"a": [1, 2, 3]})), Ok(Some(json!([4, 6]))));
        assert_eq!(value_of("substring(a, 1, 3)", json!({"a": "abcd"})), Ok(Some(json!("bc"))));
        assert!(value_of("substring(a, 1, 9)", json!({"a": "abcd"})).unwrap_err().contains("outside a string of 4"));
        assert_eq!(value_of("mask(a, 2, 2)", json!({"a": "abc"})), Ok(Some(json!("***"))), "too short: masked whole");
    }

    #[test]
    fn fields_are_evaluated_after_what_they_read_and_cycles_are_refused() {
        let p = plan(
            "fields:\n  - {target: c, expr: b * 2}\n  - {target: b, expr: a + 1}\n  - {target: a, source: $.a, type: integer}\n",
        );
        assert_eq!(apply(&p, json!({"a": 1})).ok_value(), Some(json!({"c": 4, "b": 2, "a": 1})));
        let p = problems(
            "fields:\n  - {target: a, expr: b + 1}\n  - {target: b, expr: c + 1}\n  - {target: c, expr: a + 1}\n",
        );
        assert!(p.iter().any(|m| m.contains("cycle: a → b → c → a")), "{p:?}");
        let p = problems("fields:\n  - {target: a, source: $.a, type: integer, when: a > 1}\n");
        assert!(p.iter().any(|m| m.contains("cycle: a → a")), "{p:?}");
    }

    #[test]
    fn a_rule_reading_a_failed_field_is_not_judged() {
        let p = plan(
            "fields:\n  - {target: a, source: $.a, type: integer}\n  - {target: b, source: $.b, type: integer}\nrules:\n  - {name: a_le_b, check: a <= b}\n",
        );
        assert_eq!(rules_of(&apply(&p, json!({"a": 2, "b": 1}))), [(None, "a_le_b")]);
        assert_eq!(rules_of(&apply(&p, json!({"a": "x", "b": 1}))), [(Some("a"), "type")]);
        assert!(matches!(apply(&p, json!({"b": 1})), Outcome::Mapped(_)), "null <= 1 is not judged");
    }

    #[test]
    fn drop_reads_only_the_record_and_is_counted_not_lost() {
        let p =
            plan("drop: $.kind == \"test\"\nfields:\n  - {target: id, source: $.id, type: string, required: true}\n");
        assert_eq!(apply(&p, json!({"kind": "test"})), Outcome::Dropped);
        assert_eq!(rules_of(&apply(&p, json!({"kind": "live"}))), [(Some("id"), "required")]);
        let d = problems("drop: id == \"x\"\nfields:\n  - {target: id, source: $.id, type: string}\n");
        assert!(d[0].contains("`drop` is decided before any field is read"), "{d:?}");
    }

    #[test]
    fn hmac_keys_come_from_the_resolver_never_the_file() {
        let text = "version: 1\nname: t\nfields:\n  - {target: d, source: $.d, type: string}\n  - {target: h, expr: 'hmac_sha256(d, \"env://K\")'}\n";
        let options = CompileOptions {
            secret: Box::new(|r| if r == "env://K" { Ok(b"key".to_vec()) } else { Err("no".into()) }),
            ..CompileOptions::default()
        };
        let (_, p) = load_str_in(text, &options).unwrap();
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style known answer.
        assert_eq!(
            apply(&p, json!({"d": "The quick brown fox jumps over the lazy dog"})).ok_value().unwrap()["h"],
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let refused = load_str(&text.replace("env://K", "env://LAMBDA_STREAM_SURELY_UNSET")).unwrap_err();
        assert!(
            refused[0].message.contains("environment variable `LAMBDA_STREAM_SURELY_UNSET` is not set"),
            "{refused:?}"
        );
        let refused = load_str(&text.replace("env://K", "my-secret")).unwrap_err();
        assert!(refused[0].message.contains("never goes in the mapping"), "{refused:?}");
    }

    #[test]
    fn lookup_files_come_from_the_resolver_and_are_parsed_by_their_extension() {
        let text = "version: 1\nname: t\nlookups:\n  mcc: {file: mcc.csv, default: other}\n  tiers: {file: tiers.json}\nfields:\n  - {target: m, source: $.m, type: any}\n  - {target: t, source: $.t, type: string}\n  - {target: c, expr: 'lookup(\"mcc\", m)'}\n  - {target: tier, expr: 'lookup(\"tiers\", t)'}\n";
        let files = |csv: &'static str| CompileOptions {
            lookup_file: Box::new(move |name| {
                let bytes = match name {
                    "mcc.csv" => csv.as_bytes().to_vec(),
                    "tiers.json" => br#"{"G": "gold", "S": "silver"}"#.to_vec(),
                    _ => return Err(format!("no file {name}")),
                };
                Ok(LookupFile { shown: format!("maps/{name}"), bytes })
            }),
            ..CompileOptions::default()
        };
        let (_, p) = load_str_in(text, &files("mcc,category\n5651,apparel\n5411,grocery\n")).unwrap();
        assert_eq!(
            apply(&p, json!({"m": 5411, "t": "G"})).ok_value().unwrap(),
            json!({"m": 5411, "t": "G", "c": "grocery", "tier": "gold"})
        );
        let refused = load_str_in(text, &files("mcc,category,extra\n5651,apparel,x\n")).unwrap_err();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].message.starts_with("lookup table `mcc`: maps/mcc.csv line 2: expected two columns"),
            "{refused:?}"
        );
        let refused = load_str(text).unwrap_err();
        assert_eq!(refused.len(), 2, "without a resolver no file is read: {refused:?}");
        assert!(refused[0].message.contains("`file: mcc.csv` cannot be read"), "{refused:?}");
    }
}

#[test]
fn a_filter_at_the_root_keeps_the_record_level_checks() {
    let p = plan("fields:\n  - {target: big, source: '$[?@ > 10]', type: array}\n");
    assert_eq!(p.apply(br#"{"a": 5, "b": 20}"#).ok_value(), Some(json!({"big": [20]})));
    let message = |bytes: &[u8]| p.apply(bytes).errors().first().map(|e| e.message.clone()).unwrap_or_default();
    let dup = message(b"{\"a\": 5,\n \"c\": {\"x\": 1, \"x\": 2}}");
    assert!(dup.contains("duplicate key \"x\"") && dup.contains("line 2"), "{dup}");
    let range = message(b"{\"a\": 1,\n  \"b\": 1e999}");
    assert!(range.contains("line 2 column"), "{range}");
    assert!(!range.contains("column 1 "), "the position points at the number, not the record's start: {range}");
}

#[test]
fn comparisons_and_rules_that_can_never_hold_are_warned_about() {
    let p = plan(
        "fields:\n  - {target: status, source: $.s, type: string, transform: [trim, uppercase]}\n  - {target: kind, source: $.k, type: string, validate: [{one_of: [A, B]}]}\n  - {target: x, expr: 'status == \"declined\"'}\n  - {target: y, expr: 'kind in [\"A\", \"Z\"]'}\nrules:\n  - {name: r, when: {field: kind, in: [c, d]}, require: [status]}\n",
    );
    let warnings: Vec<String> = p.warnings().iter().map(|w| format!("{}: {}", w.pos, w.message)).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("6:34:")
            && warnings[0].contains("can never be true")
            && warnings[0].contains("upper-cased"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("this rule can never fire") && warnings[1].contains("one_of"), "{warnings:?}");
    // `kind in ["A", "Z"]` can hold (A): no warning; and warnings never refuse a mapping.
    assert!(matches!(apply(&p, json!({"s": "x", "k": "A"})), Outcome::Mapped(_)));
}

mod items {
    //! An `items:` array is scanned item by item with the item fields' own paths; these cases
    //! pin that it reads what a parsed array would, in every form the array and its items take.
    use super::*;

    const LINES: &str = "fields:
  - target: lines
    source: $.order.lines
    items:
      - {target: sku, source: $.sku, type: string, required: true}
      - {target: amount, source: $.price.amount, type: integer}
      - {target: whole, source: $, type: any}
";

    fn mapped(plan: &Plan, input: &str) -> Value {
        match plan.apply(input.as_bytes()) {
            Outcome::Mapped(m) => serde_json::from_slice(&m.value).unwrap(),
            other => panic!("expected {input} to map, got {:?}", other.errors()),
        }
    }

    #[test]
    fn item_values_are_found_at_every_depth_and_in_every_form() {
        let p = plan(LINES);
        let out = mapped(
            &p,
            r#"{"order": {"lines": [ {"sku": "a\"b", "price": {"amount": 7}, "x": [1, {"y": 2}]} , {"price": {"amount": -3}, "sku": "é"} ]}}"#,
        );
        assert_eq!(
            out["lines"],
            json!([
                {"sku": "a\"b", "amount": 7, "whole": {"sku": "a\"b", "price": {"amount": 7}, "x": [1, {"y": 2}]}},
                {"sku": "é", "amount": -3, "whole": {"price": {"amount": -3}, "sku": "é"}}
            ])
        );
        assert_eq!(mapped(&p, r#"{"order": {"lines": []}}"#)["lines"], json!([]));
    }

    #[test]
    fn items_that_are_not_objects_and_arrays_that_are_not_arrays() {
        let p = plan(LINES);
        let out = apply(&p, json!({"order": {"lines": [{"sku": "a"}, 5]}}));
        assert_eq!(rules_of(&out), vec![(Some("lines[1].sku"), "required")]);
        let out = apply(&p, json!({"order": {"lines": {"sku": "a"}}}));
        assert_eq!(rules_of(&out), vec![(Some("lines"), "type")]);
        assert!(out.errors()[0].message.contains("maps an array, found"), "{:?}", out.errors());
        // null is absent, as for any field.
        let out = apply(&p, json!({"order": {"lines": null}}));
        assert!(matches!(out, Outcome::Mapped(_)), "{:?}", out.errors());
    }

    #[test]
    fn a_key_an_item_field_reads_may_not_repeat_in_an_item() {
        let p = plan(LINES);
        let Outcome::Failed(f) = p.apply(br#"{"order": {"lines": [{"sku": "a", "sku": "b"}]}}"#) else {
            panic!("a repeated key that is read is refused")
        };
        assert_eq!(f.errors[0].rule, "json");
        assert!(f.errors[0].message.contains("duplicate key \"sku\""), "{}", f.errors[0].message);
        // Broken JSON inside the array is refused where it is.
        let Outcome::Failed(f) = p.apply(br#"{"order": {"lines": [{"sku": "a"} {"sku": "b"}]}}"#) else {
            panic!("a missing comma is refused")
        };
        assert!(f.errors[0].message.contains("column 35"), "{}", f.errors[0].message);
    }

    #[test]
    fn the_same_array_read_by_other_fields_too() {
        let p = plan(&format!(
            "{LINES}  - {{target: raw, source: $.order.lines, type: array}}\n  - {{target: first_sku, source: '$.order.lines[0].sku', type: string}}\n  - {{target: order, source: $.order, type: object}}\n  - target: again\n    source: $.order.lines\n    items:\n      - {{target: s, source: $.sku, type: string}}\n"
        ));
        let input = json!({"order": {"lines": [{"sku": "a", "price": {"amount": 1}}, {"sku": "b"}]}});
        let out = mapped(&p, &input.to_string());
        assert_eq!(out["raw"], input["order"]["lines"]);
        assert_eq!(out["first_sku"], json!("a"));
        assert_eq!(out["order"], input["order"]);
        assert_eq!(out["lines"][1], json!({"sku": "b", "whole": {"sku": "b"}}));
        assert_eq!(out["again"], json!([{"s": "a"}, {"s": "b"}]));
    }
}

#[test]
fn an_items_array_also_read_whole_and_by_index_is_scanned_for_each() {
    // No ancestor is parsed whole: the array's node serves the items field, then the others.
    let p = plan(
        "fields:
  - target: lines
    source: $.order.lines
    items:
      - {target: sku, source: $.sku, type: string}
  - {target: raw, source: $.order.lines, type: array}
  - {target: first, source: '$.order.lines[0].sku', type: string}
  - {target: count, expr: size(lines)}
",
    );
    let input = json!({"order": {"lines": [{"sku": "a", "q": 1}, {"sku": "b"}]}});
    let Outcome::Mapped(m) = apply(&p, input.clone()) else { panic!("maps") };
    let out: Value = serde_json::from_slice(&m.value).unwrap();
    assert_eq!(
        out,
        json!({"lines": [{"sku": "a"}, {"sku": "b"}], "raw": input["order"]["lines"], "first": "a", "count": 2})
    );
}

/// A value computed in one field keeps its type in every expression that reads it: decimals
/// compare, add and order as numbers, datetimes as instants; only the written record has text.
#[test]
fn computed_decimals_and_datetimes_keep_their_type_for_their_readers() {
    let p = plan(
        "fields:
  - { target: a_g, source: $.a_g, type: integer, required: true }
  - { target: b_g, source: $.b_g, type: integer, required: true }
  - { target: a_kg, expr: 'round(decimal(a_g) / 1000, 3)' }
  - { target: b_kg, expr: 'round(decimal(b_g) / 1000, 3)' }
  - { target: a_ge_b, expr: 'a_kg >= b_kg' }
  - { target: larger, expr: 'max([a_kg, b_kg])' }
  - { target: smaller, expr: 'min([a_kg, b_kg])' }
  - { target: plus_one, expr: 'a_kg + 1' }
  - { target: both, expr: '[a_kg, b_kg]' }
  - { target: both_max, expr: 'max(both)' }
  - { target: total, expr: 'sum(both) * 2' }
  - { target: first, expr: 'timestamp(f)' }
  - { target: f, source: $.f, type: string }
  - { target: second, source: $.s, type: datetime }
  - { target: first_is_later, expr: 'first > second' }
  - target: parts
    source: $.parts
    items:
      - { target: g, source: $.g, type: integer }
      - { target: kg, expr: 'round(decimal(g) / 1000, 2)' }
      - { target: at, source: $.at, type: datetime }
  - { target: parts_kg, expr: 'sum(parts.map(p, p.kg))' }
  - { target: heaviest, expr: 'max(parts.map(p, p.kg))' }
  - { target: last_at, expr: 'max(parts.map(p, p.at))' }
  - { target: heavier_parts, expr: 'parts_kg > a_kg' }
",
    );
    let out = apply(
        &p,
        json!({
            "a_g": 10246, "b_g": 7703,
            "f": "2026-11-10T02:30:00.5+00:00", "s": "2026-11-10T02:30:00Z",
            // Text order and instant order disagree on both: `.5Z` sorts before `Z`, and `9.5`
            // before `10.25`.
            "parts": [{"g": 10250, "at": "2026-11-10T02:30:00.5Z"}, {"g": 9500, "at": "2026-11-10T02:30:00Z"}]
        }),
    );
    let value = out.ok_value().unwrap_or_else(|| panic!("{:?}", out.errors()));
    assert_eq!(value["a_ge_b"], json!(true), "10.246 kg >= 7.703 kg");
    assert_eq!(value["larger"], json!("10.246"));
    assert_eq!(value["smaller"], json!("7.703"));
    assert_eq!(value["plus_one"], json!("11.246"));
    assert_eq!(value["both"], json!(["10.246", "7.703"]));
    assert_eq!(value["both_max"], json!("10.246"));
    assert_eq!(value["total"], json!("35.898"));
    assert_eq!(value["first_is_later"], json!(true));
    assert_eq!(value["parts_kg"], json!("19.75"));
    assert_eq!(value["heaviest"], json!("10.25"));
    assert_eq!(value["last_at"], json!("2026-11-10T02:30:00.500Z"));
    assert_eq!(value["heavier_parts"], json!(true));
}

/// Readers see the expression's type only when the field's value is the expression's value; a
/// transform or a default makes it the type the field is written as, checked at compile time.
#[test]
fn a_transformed_computed_field_is_read_as_what_it_is_written_as() {
    let errors = problems(
        "fields:\n  - { target: g, source: $.g, type: integer }\n  - { target: kg, expr: 'decimal(g) / 1000', transform: [trim] }\n  - { target: x, expr: 'kg + 1' }\n",
    );
    assert!(errors.iter().any(|e| e.contains("`+` joins two strings, found a string and an integer")), "{errors:?}");
}

/// A JSON number without fraction or exponent is an integer, `-0` included.
#[test]
fn negative_zero_is_the_integer_zero_as_a_leaf_and_nested() {
    let p = plan(
        "fields:\n  - { target: n, source: $.n, type: integer }\n  - { target: m, source: '$.list[0]', type: integer }\n  - { target: list, source: $.list, type: array }\n  - { target: f, source: $.f, type: integer }\n",
    );
    assert_eq!(apply(&p, json!({"n": 0, "list": [0]})).ok_value(), Some(json!({"n": 0, "m": 0, "list": [0]})));
    let raw = br#"{"n": -0, "list": [-0, -0.0]}"#;
    assert_eq!(p.apply(raw).ok_value(), Some(json!({"n": 0, "m": 0, "list": [0, -0.0]})));
    let float = p.apply(br#"{"f": -0.0}"#);
    assert_eq!(rules_of(&float), vec![(Some("f"), "type")], "-0.0 has a fraction: a float");
}

/// An instant on a zone's clock: the date, the time, RFC 3339 with the offset, a pattern; the
/// zone a literal or a field. Around clock changes each instant still has exactly one local
/// time: a skipped hour never appears and a repeated hour appears twice, with two offsets.
#[test]
fn local_dates_and_times_follow_the_zone_through_clock_changes() {
    let p = plan(
        "fields:
  - { target: at, source: $.at, type: datetime }
  - { target: zone, source: $.zone, type: string }
  - { target: sp_date, expr: 'local_date(at, \"America/Sao_Paulo\")' }
  - { target: date, expr: 'local_date(at, zone)' }
  - { target: time, expr: 'local_time(at, zone)' }
  - { target: local, expr: 'local_datetime(at, zone)' }
  - { target: shown, expr: 'format_datetime(at, \"%d/%m/%Y %H:%M %Z\", zone)' }
  - { target: from_text, expr: 'local_date(\"2026-11-10T02:30:00Z\", zone)' }
",
    );
    let local = |at: &str, zone: &str| {
        let out = apply(&p, json!({"at": at, "zone": zone}));
        out.ok_value().unwrap_or_else(|| panic!("{:?}", out.errors()))
    };
    let v = local("2026-11-10T02:30:00Z", "America/Sao_Paulo");
    assert_eq!(v["sp_date"], json!("2026-11-09"));
    assert_eq!(v["date"], json!("2026-11-09"));
    assert_eq!(v["time"], json!("23:30:00"));
    assert_eq!(v["local"], json!("2026-11-09T23:30:00-03:00"));
    assert_eq!(v["shown"], json!("09/11/2026 23:30 -03"));
    assert_eq!(v["from_text"], json!("2026-11-09"));
    // Berlin springs forward at 01:00 UTC on 2026-03-29: 02:00–02:59 local never happens.
    assert_eq!(local("2026-03-29T00:59:59Z", "Europe/Berlin")["local"], json!("2026-03-29T01:59:59+01:00"));
    assert_eq!(local("2026-03-29T01:00:00Z", "Europe/Berlin")["local"], json!("2026-03-29T03:00:00+02:00"));
    // … and falls back at 01:00 UTC on 2026-10-25: 02:30 local happens twice.
    assert_eq!(local("2026-10-25T00:30:00Z", "Europe/Berlin")["local"], json!("2026-10-25T02:30:00+02:00"));
    assert_eq!(local("2026-10-25T01:30:00Z", "Europe/Berlin")["local"], json!("2026-10-25T02:30:00+01:00"));
    assert_eq!(local("2026-10-25T01:30:00Z", "Europe/Berlin")["shown"], json!("25/10/2026 02:30 CET"));
    // São Paulo's daylight saving time (until 2019) began at local midnight: 2018-11-04 had no
    // 00:xx, so the day's first instant is 01:00 local.
    let v = local("2018-11-04T03:00:00Z", "America/Sao_Paulo");
    assert_eq!((v["date"].clone(), v["time"].clone()), (json!("2018-11-04"), json!("01:00:00")));
    assert_eq!(local("2018-11-04T02:59:59Z", "America/Sao_Paulo")["local"], json!("2018-11-03T23:59:59-03:00"));

    // A missing instant gives an absent result; an unknown zone from the record is rule `zone`.
    assert_eq!(
        apply(&p, json!({"zone": "Asia/Tokyo"})).ok_value(),
        Some(json!({"zone": "Asia/Tokyo", "from_text": "2026-11-10"}))
    );
    let bad = apply(&p, json!({"at": "2026-11-10T02:30:00Z", "zone": "Mars/Olympus"}));
    assert_eq!(
        rules_of(&bad),
        vec![
            (Some("date"), "zone"),
            (Some("time"), "zone"),
            (Some("local"), "zone"),
            (Some("shown"), "zone"),
            (Some("from_text"), "zone")
        ]
    );
    assert!(bad.errors()[0].message.contains("\"Mars/Olympus\" is not an IANA time zone"), "{:?}", bad.errors());
}

#[test]
fn zones_and_datetime_patterns_written_in_the_mapping_are_checked_at_load() {
    let errors = problems(
        "fields:\n  - { target: at, source: $.at, type: datetime }\n  - { target: a, expr: 'local_date(at, \"America/Sao_Pablo\")' }\n  - { target: b, expr: 'format_datetime(at, \"%Y-%Q\", \"UTC\")' }\n  - { target: c, expr: 'format_datetime(at, pattern, \"UTC\")' }\n  - { target: pattern, source: $.p, type: string }\n  - { target: d, expr: 'local_time(size(\"x\"), \"UTC\")' }\n",
    );
    let all = errors.join("\n");
    assert!(all.contains("unknown time zone `America/Sao_Pablo`; did you mean `America/Sao_Paulo`?"), "{all}");
    assert!(all.contains("invalid datetime pattern \"%Y-%Q\""), "{all}");
    assert!(all.contains("`format_datetime()` takes its `pattern` as a string literal"), "{all}");
    assert!(
        all.contains("`local_time()` takes a datetime or an RFC 3339 string as `instant`, found an integer"),
        "{all}"
    );
}

/// One behaviour per concept: the `to_decimal` transform and `decimal()` read text the same
/// way, and a value a decimal cannot hold exactly is refused by both, never rounded.
#[test]
fn to_decimal_and_decimal_agree_and_never_round_what_they_cannot_hold() {
    let p = plan(
        "fields:
  - { target: t, source: $.v, type: string, transform: [{ to_decimal: { scale: 2 } }] }
  - { target: s, source: $.v, type: string }
  - { target: f, expr: 'decimal(s)' }
",
    );
    let too_long = apply(&p, json!({"v": "12345678901234567890.123456789012345"}));
    assert_eq!(rules_of(&too_long), vec![(Some("t"), "to_decimal"), (Some("f"), "expr")], "{:?}", too_long.errors());
    for (text, transformed, computed) in [
        ("12.345", "12.34", "12.345"),
        ("1.5e3", "1500.00", "1500"),
        (" 7 ", "7.00", "7"),
        ("-0.005", "0.00", "-0.005"),
    ] {
        let out = apply(&p, json!({"v": text}));
        let v = out.ok_value().unwrap_or_else(|| panic!("{text}: {:?}", out.errors()));
        assert_eq!((v["t"].as_str(), v["f"].as_str()), (Some(transformed), Some(computed)), "{text}");
    }
}

/// Each concept the language has twice, as a transform and as a function, gives the same
/// result: trim, case, mask and the hex of a hash.
#[test]
fn transforms_and_their_functions_agree() {
    let p = plan(
        "fields:
  - { target: s, source: $.s, type: string, output: false }
  - { target: t_trim, source: $.s, type: string, transform: [trim] }
  - { target: f_trim, expr: 'trim(s)' }
  - { target: t_lower, source: $.s, type: string, transform: [lowercase] }
  - { target: f_lower, expr: 'lower(s)' }
  - { target: t_upper, source: $.s, type: string, transform: [uppercase] }
  - { target: f_upper, expr: 'upper(s)' }
  - { target: t_mask, source: $.s, type: string, transform: [{ mask: { keep_first: 1, keep_last: 2, with: '#' } }] }
  - { target: f_mask, expr: 'mask(s, 1, 2, \"#\")' }
  - { target: t_sha, source: $.s, type: string, transform: [sha256] }
  - { target: f_sha, expr: 'sha256(s)' }
",
    );
    for text in [
        "plain",
        "  padded\t",
        "\u{a0}non-breaking\u{2003}",
        "\u{b}vertical tab\u{c}",
        "ÇÃO straße İstanbul ǅ",
        "ab",
        "",
        "日本語テキスト",
    ] {
        let out = apply(&p, json!({"s": text}));
        let v = out.ok_value().unwrap_or_else(|| panic!("{text:?}: {:?}", out.errors()));
        for concept in ["trim", "lower", "upper", "mask", "sha"] {
            assert_eq!(v[format!("t_{concept}")], v[format!("f_{concept}")], "{concept} of {text:?}");
        }
    }
    let errors = problems(
        "fields:\n  - { target: s, source: $.s, type: string }\n  - { target: m, expr: 'mask(s, 1, 1, \"ab\")' }\n",
    );
    assert!(errors[0].contains("`mask()` masks with one character, found \"ab\""), "{errors:?}");
}

/// A required computed field that a lookup leaves empty says which table and which key.
#[test]
fn a_lookup_miss_on_a_required_field_names_the_table_and_the_key() {
    let p = plan(
        "lookups:\n  sizes:\n    values: { '1': S, '2': M }\nfields:\n  - { target: code, source: $.code, type: integer }\n  - { target: size, expr: 'lookup(\"sizes\", code)', required: true }\n  - { target: secret, source: $.secret, type: string, sensitive: true }\n  - { target: hidden, expr: 'lookup(\"sizes\", secret)', required: true, sensitive: true }\n  - { target: sum, expr: 'code + 1', required: true }\n",
    );
    let out = apply(&p, json!({"code": 7, "secret": "4111"}));
    let messages: Vec<&str> = out.errors().iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "required field is missing: `lookup(\"sizes\", code)` gave null: lookup table `sizes` has no entry for \"7\" and no default",
            "required field is missing: `lookup(\"sizes\", secret)` gave null: lookup table `sizes` has no entry for the key (value hidden: sensitive field) and no default",
        ]
    );
    let out = apply(&p, json!({"secret": "1"}));
    let messages: Vec<&str> = out.errors().iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "required field is missing: `lookup(\"sizes\", code)` gave null: the key of lookup table `sizes` is absent",
            "required field is missing: `code + 1` gave null",
        ]
    );
}

/// Amounts keep their places whatever the operands' values: a zero is no exception.
#[test]
fn decimal_arithmetic_keeps_places_with_zero_operands() {
    let p = plan(
        "fields:
  - { target: price, source: $.price, type: string, output: false }
  - { target: times_zero, expr: 'decimal(price) * 0' }
  - { target: plus_zero, expr: 'decimal(\"12.5\") + decimal(\"0.00\")' }
  - { target: zero_minus, expr: 'decimal(\"0.000\") - decimal(price)' }
  - { target: product, expr: 'decimal(price) * decimal(\"0.5\")' }
",
    );
    let out = apply(&p, json!({"price": "12.50"}));
    assert_eq!(
        out.ok_value(),
        Some(json!({"times_zero": "0.00", "plus_zero": "12.50", "zero_minus": "-12.500", "product": "6.250"}))
    );
}

/// A number from the record is quoted in messages as the record writes it.
#[test]
fn messages_quote_numbers_as_the_record_writes_them() {
    let p = plan(
        "fields:\n  - { target: n, source: $.n, type: integer }\n  - { target: q, source: $.q, type: integer }\n  - { target: r, source: $.r, type: number, validate: [{ one_of: [1, 2] }] }\n  - { target: s, source: $.s, type: string, transform: [to_string] }\n  - { target: t, source: $.t, type: number }\n  - { target: big, source: $.big, type: integer }\n",
    );
    let out = p.apply(br#"{"n": 99999999999999999999, "q": 1e3, "r": 2.50}"#);
    let messages: Vec<&str> = out.errors().iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "expected an integer, found a number 99999999999999999999",
            "expected an integer, found a number 1e3",
            "expected one of [1, 2], found a number 2.50"
        ]
    );
    // What is written is unchanged: the value, in JSON's usual form.
    let out = p.apply(br#"{"t": 1.50e1, "big": 1234567890123456789, "s": 1.50}"#);
    assert_eq!(out.ok_value(), Some(json!({"s": "1.50", "t": 15.0, "big": 1234567890123456789_i64})));
}

/// A long value from the record is quoted cut short in an expression's error, and a local date
/// beyond the years a date is written with is an error, not a five-digit date.
#[test]
fn record_text_in_expression_errors_is_cut_and_local_dates_stay_in_range() {
    let p = plan(
        "fields:\n  - { target: zone, source: $.zone, type: string }\n  - { target: at, source: $.at, type: string }\n  - { target: day, expr: 'local_date(at, zone)' }\n",
    );
    let zone = "Z".repeat(100_000);
    let out = apply(&p, json!({"zone": zone, "at": "2026-11-10T02:30:00Z"}));
    let message = &out.errors()[0].message;
    assert!(message.len() < 300, "{} bytes", message.len());
    assert!(message.contains("\"… is not an IANA time zone"), "{message}");
    let out = apply(&p, json!({"zone": "Etc/GMT+12", "at": "0000-01-01T00:00:00+00:00"}));
    assert_eq!(rules_of(&out), vec![(Some("day"), "expr")], "{:?}", out.errors());
    assert!(out.errors()[0].message.contains("outside the years 0000–9999"));
}
