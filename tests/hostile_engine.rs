//! The engine's promises under attack: a `sensitive` value never echoed, one record never crashing
//! the process, one mapping never crashing it, nothing silently collapsed. Each case is what an
//! attacker or an unlucky operator would try; docs/development.md lists where each must end.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_stream::destination::{Destination, Router};
use lambda_stream::lambda::Function;
use lambda_stream::pipeline::Pipeline;
use lambda_stream::plan::{self, Outcome, Plan};
use lambda_stream::sink::MemorySink;
use serde_json::{Value, json};

use crate::util::{TempFile, lambda_stream, stderr, stdout};

const CARD: &str = "4111111111111111";

fn load(text: &str) -> Plan {
    match plan::load_str(text) {
        Ok((_, plan)) => plan,
        Err(d) => panic!("the mapping compiles: {d:?}\n{text}"),
    }
}

/// The problems a mapping is refused with, rendered as `validate-mapping` shows them.
fn refused(text: &str) -> Vec<String> {
    match plan::load_str(text) {
        Ok(_) => panic!("the mapping is refused:\n{}", &text[..text.len().min(400)]),
        Err(d) => d.iter().map(|d| d.render("m.yaml")).collect(),
    }
}

fn errors(outcome: &Outcome) -> Vec<(String, String, String)> {
    outcome.errors().iter().map(|e| (e.field.clone().unwrap_or_default(), e.rule.clone(), e.message.clone())).collect()
}

/// The Lambda handler's code over `mapping`, delivering to an in-memory sink.
pub fn function(mapping: &str) -> Function<MemorySink> {
    Function {
        pipeline: Pipeline::new(
            load(mapping),
            Router {
                topic_ok: "ok".into(),
                topic_fail: "fail".into(),
                function_name: "f".into(),
                function_env: "test".into(),
            },
        ),
        sink: MemorySink::default(),
        partial_batch: false,
        delivery_margin: Duration::ZERO,
    }
}

fn event(values: &[&str]) -> String {
    let records: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({"topic": "orders", "partition": 0, "offset": i, "timestamp": 1_764_000_000_000_i64,
                   "timestampType": "CREATE_TIME", "key": BASE64.encode(b"k"), "headers": [],
                   "value": BASE64.encode(v.as_bytes())})
        })
        .collect();
    json!({"eventSource": "aws:kafka", "records": {"orders-0": records}}).to_string()
}

// ---------------------------------------------------------------------------------------------
// A `sensitive` value is never echoed.

/// Every way an expression can fail on a sensitive value: conversions in computed fields, a
/// field's `when`, a validator's `when`, a rule's `check` and `when`, and a chain of computed
/// fields that inherit the sensitivity of what they read.
const SECRET_MAPPING: &str = r#"version: 1
name: secrets
fields:
  - { target: id, source: $.id, type: integer, required: true }
  - { target: card, source: $.card, type: string, sensitive: true }
  - { target: as_int, expr: int(card) }
  - { target: as_decimal, expr: decimal(card) }
  - { target: as_double, expr: double(card) }
  - { target: as_time, expr: timestamp(card) }
  - { target: padded, expr: 'card + "!"' }
  - { target: chained, expr: int(padded) }
  - { target: gated, source: $.id, type: integer, when: 'int(card) > 0' }
  - target: checked
    source: $.id
    type: integer
    validate: [{ range: { min: 0 }, when: 'int(card) > 0' }]
  - { target: amount, source: $.amount, type: integer, sensitive: true, transform: [{ multiply: 1000 }] }
rules:
  - { name: card_is_a_number, check: 'int(card) > 0' }
  - { name: guarded, when: 'double(card) > 0.0', check: 'id > 0' }
"#;

const SECRET_RECORD: &str = r#"{"id": 1, "card": "x4111111111111111", "amount": 92233720368547758}"#;

#[test]
fn expression_errors_on_a_sensitive_value_leave_it_out_everywhere_in_the_outcome() {
    let plan = load(SECRET_MAPPING);
    let outcome = plan.apply(SECRET_RECORD.as_bytes());
    let errors = errors(&outcome);
    // Each expression did fail, so each had a message to leak the value into.
    for (field, rule) in [
        ("as_int", "expr"),
        ("as_decimal", "expr"),
        ("as_double", "expr"),
        ("as_time", "expr"),
        ("chained", "expr"),
        ("gated", "when"),
        ("checked", "when"),
        ("amount", "multiply"),
    ] {
        assert!(errors.iter().any(|(f, r, _)| f == field && r == rule), "{field}:{rule} in {errors:?}");
    }
    for (field, rule, message) in &errors {
        assert!(!message.contains(CARD), "{field}:{rule} quotes the card: {message}");
        assert!(!message.contains("92233720368547758"), "{field}:{rule} quotes the amount: {message}");
    }
    assert!(errors.iter().any(|(_, _, m)| m.contains("value hidden")), "{errors:?}");
    // The computed fields read a sensitive field, so their own values are sensitive too.
    let hidden = plan.sensitive_targets();
    for target in ["card", "as_int", "padded", "chained", "amount"] {
        assert!(hidden.contains(&target), "{target} in {hidden:?}");
    }
    assert!(!hidden.contains(&"id"), "{hidden:?}");
}

#[test]
fn rules_that_read_a_sensitive_value_leave_it_out_of_their_messages() {
    let plan = load(
        "version: 1\nname: r\nfields:\n  - { target: card, source: $.card, type: string, sensitive: true }\n\
         rules:\n  - { name: numeric, check: 'int(card) > 0' }\n  - { name: shape, check: 'card.size() == 3' }\n",
    );
    let errors = errors(&plan.apply(br#"{"card": "x4111111111111111"}"#));
    assert_eq!(errors.len(), 2, "{errors:?}");
    for (_, rule, message) in &errors {
        assert!(!message.contains(CARD), "{rule}: {message}");
    }
}

#[test]
fn a_field_declared_not_sensitive_shows_its_value_but_its_expression_errors_still_hide_the_input() {
    let plan = load(
        "version: 1\nname: h\nfields:\n  - { target: card, source: $.card, type: string, sensitive: true }\n\
         \x20 - { target: card_hash, expr: sha256(card), sensitive: false }\n\
         \x20 - { target: last4, expr: 'int(card) % 10000', sensitive: false }\n",
    );
    assert_eq!(plan.sensitive_targets(), vec!["card"]);
    let errors = errors(&plan.apply(br#"{"card": "x4111111111111111"}"#));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(!errors[0].2.contains(CARD), "{errors:?}");
    let explained = serde_json::to_string(&plan.explain(br#"{"card": "4111111111111111"}"#)).unwrap();
    assert!(!explained.contains(CARD), "{explained}");
    // The hash is shown: it was declared safe.
    assert!(explained.contains("card_hash"), "{explained}");
}

#[tokio::test]
async fn the_fail_envelope_and_its_headers_never_carry_a_sensitive_value() {
    let f = function(SECRET_MAPPING);
    let summary = f.handle(&event(&[SECRET_RECORD]), Instant::now() + Duration::from_secs(10)).await.unwrap();
    assert_eq!(summary["failed"], 1, "{summary}");
    let delivered = f.sink.delivered.lock().unwrap();
    let m = &delivered[0];
    assert_eq!(m.destination, Destination::Fail);
    let envelope: Value = serde_json::from_slice(&m.payload).unwrap();
    let errors = envelope["errors"].to_string();
    assert!(!errors.contains(CARD), "{errors}");
    for (name, value) in &m.headers {
        assert!(!String::from_utf8_lossy(value).contains(CARD), "header {name} carries the card");
    }
    let message = m.headers.iter().find(|(k, _)| k == "lambda-stream.error.message").expect("a message header");
    assert!(!message.1.is_empty());
}

#[test]
fn process_and_explain_never_print_a_sensitive_value() {
    let mapping = TempFile::new("secrets.yaml", SECRET_MAPPING.as_bytes());
    let input = TempFile::new("in.jsonl", format!("{SECRET_RECORD}\n").as_bytes());
    let processed = lambda_stream(&["process", "--mapping", mapping.arg(), "--input", input.arg()]);
    let printed = stdout(&processed) + &stderr(&processed);
    assert!(printed.contains("\"route\":\"fail\""), "{printed}");
    assert!(!printed.contains(CARD), "{printed}");
    let record = TempFile::new("record.json", SECRET_RECORD.as_bytes());
    for format in ["text", "json"] {
        let out = lambda_stream(&["explain", "--mapping", mapping.arg(), "--input", record.arg(), "--format", format]);
        let printed = stdout(&out) + &stderr(&out);
        assert!(printed.contains("as_int"), "{format}: {printed}");
        assert!(!printed.contains(CARD), "{format}: {printed}");
    }
}

#[test]
fn a_failing_embedded_test_names_the_difference_without_the_sensitive_value() {
    let mapping = TempFile::new(
        "t.yaml",
        format!(
            "version: 1\nname: t\nfields:\n  - {{ target: card, source: $.card, type: string, sensitive: true }}\n\
             \x20 - {{ target: n, source: $.n, type: integer }}\n\
             tests:\n  - name: wrong card\n    input: {{ card: \"{CARD}\", n: 1 }}\n    expect: {{ ok: {{ card: \"x\", n: 1 }} }}\n\
             \x20 - name: wrong route\n    input: {{ card: \"{CARD}\", n: 1 }}\n    expect: {{ fail: [{{ field: n, rule: type }}] }}\n"
        )
        .as_bytes(),
    );
    let out = lambda_stream(&["validate-mapping", mapping.arg()]);
    let printed = stdout(&out) + &stderr(&out);
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("`card`"), "the difference is named: {printed}");
    assert!(printed.contains("wrong route"), "{printed}");
    // The expected text is the test's own; the card the record held is never printed back.
    assert_eq!(printed.matches(CARD).count(), 0, "{printed}");
}

// ---------------------------------------------------------------------------------------------
// One record cannot crash the process.

#[test]
fn a_pad_width_from_the_record_fails_the_record_instead_of_aborting() {
    let plan = load(
        "version: 1\nname: p\nfields:\n  - { target: w, source: $.w, type: integer }\n\
         \x20 - { target: padded, expr: 'pad_left(\"7\", w, \"0\")' }\n\
         \x20 - { target: wide, expr: 'pad_right(\"7\", w, \"😀\")' }\n",
    );
    for width in ["9223372036854775807", "4611686018427387904", "100000000"] {
        let outcome = plan.apply(format!("{{\"w\": {width}}}").as_bytes());
        let errors = errors(&outcome);
        assert_eq!(errors.len(), 2, "{width}: {errors:?}");
        assert!(errors.iter().all(|(_, rule, m)| rule == "expr" && m.contains("MiB")), "{width}: {errors:?}");
    }
    assert!(matches!(plan.apply(br#"{"w": 5}"#), Outcome::Mapped(_)));
}

#[test]
fn forty_fields_that_each_double_a_string_fail_the_record_within_its_bounds() {
    let mut text = String::from("version: 1\nname: d\nfields:\n  - { target: f0, source: $.s, type: string }\n");
    for i in 1..=40 {
        text.push_str(&format!("  - {{ target: f{i}, expr: 'f{p} + f{p}' }}\n", p = i - 1));
    }
    let plan = load(&text);
    let record = format!("{{\"s\": \"{}\"}}", "x".repeat(1024));
    let outcome = plan.apply(record.as_bytes());
    let errors = errors(&outcome);
    // 1 KiB doubled 14 times is 16 MiB: the first field past the bound fails, and the fields
    // that read it are not computed.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].0.as_str(), errors[0].1.as_str()), ("f14", "expr"), "{errors:?}");
    assert!(errors[0].2.contains("MiB"), "{errors:?}");
}

#[test]
fn replace_join_and_split_are_bounded_too() {
    let plan = load(
        "version: 1\nname: b\nfields:\n  - { target: s, source: $.s, type: string }\n\
         \x20 - { target: big, source: $.big, type: string }\n\
         \x20 - { target: replaced, expr: 's.replace(\"a\", big)' }\n\
         \x20 - { target: joined, expr: '[big, big, big, big, big, big, big, big, big].join(big)' }\n",
    );
    let record = format!("{{\"s\": \"{}\", \"big\": \"{}\"}}", "a".repeat(64), "b".repeat(1024 * 1024));
    let errors = errors(&plan.apply(record.as_bytes()));
    let failed: Vec<&str> = errors.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(failed, ["replaced", "joined"], "{errors:?}");
}

/// 20,000 items, each compared with every other: 400 million steps. The budget stops it.
#[test]
fn a_quadratic_expression_over_a_large_array_fails_with_rule_budget() {
    let plan = load(
        "version: 1\nname: q\nfields:\n  - { target: id, source: $.id, type: integer }\n\
         \x20 - { target: xs, source: $.xs, type: array }\n\
         \x20 - { target: unique, expr: 'xs.all(a, xs.filter(b, b == a).size() == 1)' }\n",
    );
    let items: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let record = format!("{{\"id\": 1, \"xs\": [{}]}}", items.join(","));
    let started = Instant::now();
    let outcome = plan.apply(record.as_bytes());
    let elapsed = started.elapsed();
    let errors = errors(&outcome);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].0.as_str(), errors[0].1.as_str()), ("unique", "budget"), "{errors:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // The same expression on a small array is judged.
    let small = plan.apply(br#"{"id": 1, "xs": [1, 2, 3]}"#);
    assert!(matches!(small, Outcome::Mapped(_)), "{:?}", errors_of(&small));
}

fn errors_of(o: &Outcome) -> Vec<(String, String, String)> {
    errors(o)
}

#[test]
fn the_step_budget_is_set_by_the_mapping() {
    let mapping = |steps: u64| {
        format!(
            "version: 1\nname: s\nlimits: {{ steps: {steps} }}\nfields:\n  - {{ target: xs, source: $.xs, type: array }}\n\
             \x20 - {{ target: n, expr: 'xs.filter(x, x > 1).size()' }}\n"
        )
    };
    let record = br#"{"xs": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}"#;
    let tight = errors(&load(&mapping(5)).apply(record));
    assert_eq!(tight.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(), ["budget"], "{tight:?}");
    assert!(matches!(load(&mapping(1000)).apply(record), Outcome::Mapped(_)));
    let wrong = refused("version: 1\nname: s\nlimits: { steps: 0 }\nfields:\n  - { target: a, source: $.a }\n");
    assert!(wrong.iter().any(|d| d.starts_with("m.yaml:3:") && d.contains("positive")), "{wrong:?}");
}

#[tokio::test]
async fn a_record_over_its_budget_fails_alone_and_the_batch_goes_on() {
    let f = function(
        "version: 1\nname: q\nfields:\n  - { target: xs, source: $.xs, type: array }\n\
         \x20 - { target: unique, expr: 'xs.all(a, xs.filter(b, b == a).size() == 1)' }\n",
    );
    let items: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let heavy = format!("{{\"xs\": [{}]}}", items.join(","));
    let summary = f
        .handle(&event(&[r#"{"xs": [1]}"#, &heavy, r#"{"xs": [2, 3]}"#]), Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((summary["ok"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(1)), "{summary}");
    let delivered = f.sink.delivered.lock().unwrap();
    let failed = delivered.iter().find(|m| m.destination == Destination::Fail).unwrap();
    let envelope: Value = serde_json::from_slice(&failed.payload).unwrap();
    assert_eq!(envelope["errors"][0]["rule"], "budget", "{envelope}");
}

// ---------------------------------------------------------------------------------------------
// One mapping cannot crash the process.

fn with_expr(expr: &str) -> String {
    format!(
        "version: 1\nname: x\nfields:\n  - {{ target: a, source: $.a, type: integer }}\n  - {{ target: b, expr: '{expr}' }}\n"
    )
}

#[test]
fn flat_chains_thousands_long_are_refused_at_their_position() {
    let cases = [
        ("a sum", vec!["a"; 20_000].join(" + ")),
        ("an or-chain", vec!["a > 0"; 20_000].join(" || ")),
        ("a method chain", format!("string(a){}", ".trim()".repeat(5_000))),
        ("a 3,000-term sum", vec!["a"; 3_000].join("+")),
        ("an index chain", format!("[[a]]{}", "[0]".repeat(5_000))),
    ];
    for (what, expr) in cases {
        let problems = refused(&with_expr(&expr));
        assert!(problems.iter().any(|p| p.starts_with("m.yaml:5:") && p.contains("too deep")), "{what}: {problems:?}");
    }
}

/// The tallest expression accepted loads and maps on a 2 MiB thread, the stack of a Lambda
/// runtime's worker thread: whatever validates runs wherever the product runs it.
#[test]
fn the_deepest_accepted_expressions_compile_and_run_on_a_two_mib_stack() {
    let height = lambda_stream::plan::expr::syntax::MAX_HEIGHT;
    let cases = [
        vec!["a"; height].join(" + "),
        format!("string(a){}.size()", ".trim()".repeat(height - 3)),
        format!("{}a{}", "(".repeat(60), " + 1)".repeat(60)),
        format!("{}a > 0{}", "(".repeat(60), " || a > 1)".repeat(60)),
    ];
    for expr in cases {
        let mapping = with_expr(&expr);
        let ran = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let (_, plan) = plan::load_str(&mapping).map_err(|d| format!("{d:?}"))?;
                let outcome = plan.apply(br#"{"a": 1}"#);
                let explained = plan.explain(br#"{"a": 1}"#);
                drop(explained);
                Ok::<_, String>(matches!(outcome, Outcome::Mapped(_)))
            })
            .unwrap()
            .join()
            .expect("no panic");
        assert_eq!(ran, Ok(true), "{}", &expr[..expr.len().min(80)]);
    }
    let one_more = vec!["a"; height + 1].join(" + ");
    assert!(refused(&with_expr(&one_more)).iter().any(|p| p.contains("too deep")));
}

#[test]
fn yaml_nested_twenty_thousand_deep_is_refused_with_its_position() {
    let text = format!("version: 1\nname: y\nfields: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    let problems = refused(&text);
    // Flow collections meet the YAML parser's own recursion limit while it scans ahead; block
    // ones meet ours. Either way: refused at the line, no stack overflow.
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("m.yaml:3:") && (p.contains("nested deeper") || p.contains("recursion limit"))),
        "{problems:?}"
    );
    let block: String = (0..20_000).map(|i| format!("{}- \n", "  ".repeat(i))).collect();
    let problems = refused(&format!("version: 1\nname: y\nfields:\n{block}"));
    assert!(problems.iter().any(|p| p.contains("nested deeper")), "{:?}", &problems[..problems.len().min(3)]);
}

#[test]
fn a_jsonpath_filter_with_thousands_of_nested_parentheses_is_refused() {
    let path = format!("$.a[?{}@.b == 1{}]", "(".repeat(4_000), ")".repeat(4_000));
    let text = format!("version: 1\nname: j\nfields:\n  - {{ target: a, source: '{path}' }}\n");
    let problems = refused(&text);
    assert!(problems.iter().any(|p| p.starts_with("m.yaml:4:") && p.contains("nest deeper")), "{problems:?}");
    // A filter nested a few levels is fine.
    load("version: 1\nname: j\nfields:\n  - { target: a, source: '$.a[?((@.b == 1) && (@.c == 2))]', type: array }\n");
}

#[test]
fn a_large_scalar_aliased_thousands_of_times_is_refused_before_it_is_expanded() {
    let big = "z".repeat(2 * 1024 * 1024);
    let mut text = format!("version: 1\nname: bomb\ndescription: &big {big}\nfields:\n");
    for i in 0..3_000 {
        text.push_str(&format!("  - {{ target: f{i}, const: *big }}\n"));
    }
    let started = Instant::now();
    let problems = refused(&text);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(problems.iter().any(|p| p.contains("aliases expand this file past")), "{problems:?}");
    // A handful of aliases is still read as YAML reads it.
    load(
        "version: 1\nname: ok\nfields:\n  - &f { target: a, source: $.a, type: integer }\n  - { target: b, source: $.a, type: integer }\n",
    );
}

#[test]
fn forty_thousand_sibling_fields_compile() {
    let mut text = String::from("version: 1\nname: wide\nfields:\n");
    for i in 0..40_000 {
        text.push_str(&format!("  - {{ target: f{i}, source: $.f{i}, type: integer }}\n"));
    }
    let plan = load(&text);
    let outcome = plan.apply(br#"{"f0": 1, "f39999": 2}"#);
    let Outcome::Mapped(mapped) = outcome else { panic!("mapped") };
    assert_eq!(serde_json::from_slice::<Value>(&mapped.value).unwrap(), json!({"f0": 1, "f39999": 2}));
}

/// Every problem of an expression is reported, each with the expression quoted: a long one with
/// thousands of problems must not make the report grow with their product.
#[test]
fn an_expression_with_thousands_of_unknown_names_is_refused_with_a_report_of_bounded_size() {
    let names: Vec<String> = (0..5_000).map(|i| format!("x{i}")).collect();
    let text = with_expr(&format!("[{}]", names.join(", ")));
    let started = Instant::now();
    let problems = refused(&text);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(problems.len(), 5_000);
    let longest = problems.iter().map(String::len).max().unwrap();
    assert!(longest < 1_000, "a problem of {longest} bytes");
    assert!(problems[4_999].starts_with("m.yaml:5:"), "{}", problems[4_999]);
    assert!(problems[4_999].contains("unknown name `x4999`"), "{}", problems[4_999]);
    // A short expression is still quoted whole.
    let problems = refused(&with_expr("a + sizee(a)"));
    assert!(problems[0].contains("in expression `a + sizee(a)`: unknown function `sizee`"), "{problems:?}");
}

/// A datetime pattern is written at load, once: one no datetime can be written in (`%#z` only
/// parses) is refused there instead of failing every record.
#[test]
fn a_datetime_pattern_no_datetime_can_be_written_in_is_refused_at_load() {
    let mapping = |pattern: &str| {
        format!(
            "version: 1\nname: p\nfields:\n  - {{ target: at, source: $.at, type: datetime }}\n  - {{ target: shown, expr: 'format_datetime(at, \"{pattern}\", \"UTC\")' }}\n"
        )
    };
    let problems = refused(&mapping("%d/%m %#z"));
    assert!(problems.iter().any(|p| p.starts_with("m.yaml:5:") && p.contains("%#z")), "{problems:?}");
    let plan = load(&mapping("%d/%m %:z"));
    let Outcome::Mapped(m) = plan.apply(br#"{"at": "2026-03-29T01:30:00Z"}"#) else { panic!("mapped") };
    assert_eq!(serde_json::from_slice::<Value>(&m.value).unwrap()["shown"], json!("29/03 +00:00"));
}

/// Every specifier of a datetime pattern is an item held with the plan and text written per
/// record: a pattern of millions of them is refused at load, quickly, without being quoted.
#[test]
fn a_datetime_pattern_of_a_million_specifiers_is_refused_at_load() {
    let pattern = "%c".repeat(1_000_000);
    let text = format!(
        "version: 1\nname: p\nfields:\n  - {{ target: at, source: $.at, type: datetime }}\n  - {{ target: shown, expr: 'format_datetime(at, \"{pattern}\", \"UTC\")' }}\n"
    );
    let started = Instant::now();
    let problems = refused(&text);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(problems.iter().any(|p| p.contains("datetime pattern") && p.contains("at most")), "{:.300?}", problems);
}

/// The same for the format of the `parse_datetime` transform, which every failing record quoted.
#[test]
fn a_parse_datetime_format_of_a_million_specifiers_is_refused_at_load() {
    let format = "%c".repeat(1_000_000);
    let text = format!(
        "version: 1\nname: p\nfields:\n  - target: at\n    source: $.at\n    type: string\n    transform:\n      - parse_datetime: {{ format: '%z {format}' }}\n"
    );
    let started = Instant::now();
    let problems = refused(&text);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(problems.iter().any(|p| p.contains("at most 256 characters")), "{:.300?}", problems);
    assert!(problems.iter().all(|p| p.len() < 1_000), "the format is not quoted whole");
}

/// A long `one_of` names the allowed value nearest to a refused one; the edit distance costs the
/// product of the two lengths, so long allowed values and a record value as long must not make one
/// record take seconds.
#[test]
fn a_long_one_of_of_long_values_judges_a_long_value_quickly() {
    let allowed: Vec<String> = (b'a'..=b'k').map(|c| char::from(c).to_string().repeat(10_000)).collect();
    let mapping = format!(
        "version: 1\nname: o\nfields:\n  - target: s\n    source: $.s\n    type: string\n    validate:\n      - one_of: [{}]\n",
        allowed.join(", ")
    );
    let plan = load(&mapping);
    let record = json!({ "s": "z".repeat(10_000) }).to_string();
    let started = Instant::now();
    let outcome = plan.apply(record.as_bytes());
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let found = errors(&outcome);
    assert_eq!(found.len(), 1, "{found:.300?}");
    assert_eq!(found[0].1, "one_of");
    assert!(found[0].2.starts_with("expected one of 11 values"), "{:.100}", found[0].2);
    // A short value still gets its nearest allowed value.
    let codes = "[AA, BB, CC, DD, EE, FF, GG, HH, II, JJ, KK]";
    let plan = load(&mapping.replace(&format!("[{}]", allowed.join(", ")), codes));
    let found = errors(&plan.apply(br#"{"s": "bb"}"#));
    assert!(found[0].2.ends_with(r#"; nearest: "BB""#), "{found:?}");
}

// ---------------------------------------------------------------------------------------------
// Nothing silently collapsed.

#[test]
fn inline_table_keys_that_read_as_the_same_text_are_refused() {
    for (keys, key) in [("{ 1: a, 1.0: b }", "1"), ("{ 1: a, '1': b }", "1"), ("{ true: a, 'true': b }", "true")] {
        let transform = format!(
            "version: 1\nname: k\nfields:\n  - {{ target: a, source: $.a, transform: [{{ map: {{ values: {keys} }} }}] }}\n"
        );
        let problems = refused(&transform);
        assert!(problems.iter().any(|p| p.contains(&format!("duplicate key `{key}`"))), "{keys}: {problems:?}");
        let lookup = format!(
            "version: 1\nname: k\nlookups:\n  t: {{ values: {keys} }}\nfields:\n  - {{ target: a, expr: 'lookup(\"t\", \"1\")' }}\n"
        );
        let problems = refused(&lookup);
        assert!(problems.iter().any(|p| p.starts_with("m.yaml:4:") && p.contains("duplicate key")), "{problems:?}");
    }
}
