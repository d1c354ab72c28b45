//! The mapping reference runs: every `yaml` block in `docs/mapping-spec.md` is a complete mapping
//! that must compile and whose embedded tests must pass, and every type, transform and validator
//! the compiler knows must have an example there. A reference that drifts from the code fails here.

use lambda_stream::mapping_file;
use lambda_stream::plan::catalogue::{transforms, validators};
use lambda_stream::plan::expr::syntax::{self, Ast, AstKind};
use lambda_stream::plan::{self, expr, mapping_tests, types::FieldType};
use lambda_stream::spec::{FieldSpec, RuleWhen};

use crate::util::root;

/// A `yaml` block of the document: the line its text starts on, and its text.
pub(crate) struct Example {
    pub(crate) line: usize,
    pub(crate) text: String,
}

pub(crate) fn examples(doc: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut current: Option<Example> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(Example { line: i + 2, text: String::new() }),
            (Some(_), "```") => found.push(current.take().unwrap()),
            (Some(example), text) => {
                example.text.push_str(text);
                example.text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```yaml block");
    found
}

#[test]
fn every_example_in_the_mapping_reference_compiles_and_its_tests_pass() {
    let doc = std::fs::read_to_string(root().join("docs/mapping-spec.md")).unwrap();
    let examples = examples(&doc);
    assert!(examples.len() >= 10, "the reference has {} examples", examples.len());
    let mut problems = Vec::new();
    for example in &examples {
        let at = |line: u32| format!("docs/mapping-spec.md:{}", example.line + line as usize - 1);
        // The reference's HMAC example reads its key from `env://DOCUMENT_HASH_KEY`; its lookup
        // files are read from the reference's folder, `docs/`, as a mapping's are from its own.
        let options = plan::CompileOptions {
            lookup_file: mapping_file::lookup_files_in(Some(&root().join("docs"))),
            secret: Box::new(|reference| match reference {
                "env://DOCUMENT_HASH_KEY" => Ok(b"example-key".to_vec()),
                other => plan::env_secret(other),
            }),
        };
        match plan::load_str_in(&example.text, &options) {
            Err(diagnostics) => {
                for d in diagnostics {
                    problems.push(format!("{}:{}: {}", at(d.pos.line), d.pos.col, d.message));
                }
            }
            Ok((spec, compiled)) => {
                if spec.tests.is_empty() {
                    problems.push(format!("{}: an example without `tests:` shows nothing", at(1)));
                }
                for result in mapping_tests::run(&spec, &compiled) {
                    if let Some(why) = result.failure {
                        problems.push(format!("{}: test {:?} failed: {why}", at(result.pos.line), result.name));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "the mapping reference does not run:\n{}", problems.join("\n"));
}

/// Every function called in an expression.
fn calls(ast: &Ast, out: &mut Vec<String>) {
    match &ast.kind {
        AstKind::Call { receiver, name, args } => {
            out.push(name.clone());
            receiver.iter().for_each(|r| calls(r, out));
            args.iter().for_each(|a| calls(a, out));
        }
        AstKind::List(items) => items.iter().for_each(|a| calls(a, out)),
        AstKind::Select(x, _) | AstKind::Unary(_, x) => calls(x, out),
        AstKind::Index(a, b) | AstKind::Binary(_, a, b) => {
            calls(a, out);
            calls(b, out);
        }
        AstKind::Cond(a, b, c) => {
            calls(a, out);
            calls(b, out);
            calls(c, out);
        }
        _ => {}
    }
}

/// Every expression of a field list, items included.
fn field_expressions(fields: &[FieldSpec], out: &mut Vec<String>) {
    for f in fields {
        out.extend(f.expr.iter().chain(&f.when).map(|e| e.value.clone()));
        out.extend(f.validate.iter().filter_map(|s| s.when.as_ref()).map(|e| e.value.clone()));
        if let Some(items) = &f.items {
            field_expressions(&items.value, out);
        }
    }
}

fn fields_of<'a>(fields: &'a [FieldSpec], out: &mut Vec<&'a FieldSpec>) {
    for f in fields {
        out.push(f);
        if let Some(items) = &f.items {
            fields_of(&items.value, out);
        }
    }
}

#[test]
fn every_type_transform_validator_and_function_has_an_example() {
    let doc = std::fs::read_to_string(root().join("docs/mapping-spec.md")).unwrap();
    let (mut types, mut used_transforms, mut used_validators) = (Vec::new(), Vec::new(), Vec::new());
    let mut functions = Vec::new();
    for example in examples(&doc) {
        let (spec, _) = lambda_stream::spec::parse(&example.text);
        let mut all = Vec::new();
        fields_of(&spec.fields, &mut all);
        for field in all {
            types.extend(field.kind.as_ref().map(|k| k.value.clone()));
            used_transforms.extend(field.transform.iter().map(|s| s.name.value.clone()));
            used_validators.extend(field.validate.iter().map(|s| s.name.value.clone()));
        }
        let mut texts = Vec::new();
        field_expressions(&spec.fields, &mut texts);
        texts.extend(spec.drop.iter().map(|d| d.value.clone()));
        for rule in &spec.rules {
            texts.extend(rule.check.iter().map(|c| c.value.clone()));
            if let Some(RuleWhen::Expr(w)) = &rule.when {
                texts.push(w.value.clone());
            }
        }
        for text in texts {
            if let Ok(ast) = syntax::parse(&text) {
                calls(&ast, &mut functions);
            }
        }
    }
    // The function table's own examples run too (`every_function_example_gives_what_the_reference_says`).
    for f in expr::functions::CATALOGUE {
        if let Ok(ast) = syntax::parse(f.example) {
            calls(&ast, &mut functions);
        }
    }
    let missing = |known: &[&str], used: &[String], what: &str| -> Vec<String> {
        known.iter().filter(|n| !used.iter().any(|u| u == *n)).map(|n| format!("{what} {n}")).collect()
    };
    let mut absent = missing(FieldType::NAMES, &types, "type");
    absent.extend(missing(&transforms::names().collect::<Vec<_>>(), &used_transforms, "transform"));
    absent.extend(missing(&validators::names().collect::<Vec<_>>(), &used_validators, "validator"));
    absent.extend(missing(&expr::functions::names().collect::<Vec<_>>(), &functions, "function"));
    assert!(absent.is_empty(), "no example in docs/mapping-spec.md uses: {}", absent.join(", "));
}

/// The reference's table of functions is the catalogue's, row for row: a function cannot be
/// added, renamed or re-described in one place only.
#[test]
fn the_reference_function_table_is_the_catalogue() {
    let doc = std::fs::read_to_string(root().join("docs/mapping-spec.md")).unwrap();
    let table = expr::functions::reference_table();
    assert!(
        doc.contains(&table),
        "docs/mapping-spec.md's function table differs from the catalogue (src/plan/expr/functions.rs); it should read:\n{table}"
    );
}

/// Every function's example in the reference gives what the reference says, on its example record.
#[test]
fn every_function_example_gives_what_the_reference_says() {
    use expr::functions::{CATALOGUE, EXAMPLE_FIELDS, EXAMPLE_RECORD};
    let mut fields = String::from(EXAMPLE_FIELDS);
    for (i, f) in CATALOGUE.iter().enumerate() {
        fields.push_str(&format!("  - {{ target: example_{i}, expr: '{}' }}\n", f.example.replace('\'', "''")));
    }
    let text =
        format!("version: 1\nname: examples\nlookups:\n  example_sizes:\n    values: {{ '3': M }}\nfields:\n{fields}");
    let options = plan::CompileOptions {
        secret: Box::new(|reference: &str| Ok(format!("key for {reference}").into_bytes())),
        ..plan::CompileOptions::default()
    };
    let (_, compiled) = plan::load_str_in(&text, &options).unwrap_or_else(|d| panic!("{d:#?}"));
    let outcome = compiled.apply(EXAMPLE_RECORD.as_bytes());
    let value = outcome.ok_value().unwrap_or_else(|| panic!("{:?}", outcome.errors()));
    for (i, f) in CATALOGUE.iter().enumerate() {
        let expected: serde_json::Value = serde_json::from_str(f.example_gives).unwrap();
        assert_eq!(value[format!("example_{i}")], expected, "`{}` in the reference", f.example);
    }
}

/// The reference's tables of transforms and of validators are the catalogues', row for row.
#[test]
fn the_reference_transform_and_validator_tables_are_the_catalogues() {
    let doc = std::fs::read_to_string(root().join("docs/mapping-spec.md")).unwrap();
    for (table, what) in [(transforms::reference_table(), "transform"), (validators::reference_table(), "validator")] {
        assert!(
            doc.contains(&table),
            "docs/mapping-spec.md's {what} table differs from the catalogue (src/plan/catalogue/{what}s.rs); it should read:\n{table}"
        );
    }
}

/// Every transform's example gives what the reference says: one field per example, of `type: any`
/// so that the value checked is the transform's own.
#[test]
fn every_transform_example_gives_what_the_reference_says() {
    let mut fields = String::new();
    let mut record = serde_json::Map::new();
    for (i, t) in transforms::CATALOGUE.iter().enumerate() {
        fields.push_str(&format!(
            "  - target: example_{i}\n    source: $.example_{i}\n    type: any\n    transform:\n      - {}\n",
            t.example
        ));
        record.insert(format!("example_{i}"), serde_json::from_str(t.example_input).unwrap());
    }
    let text = format!("version: 1\nname: transform-examples\nfields:\n{fields}");
    let (_, compiled) = plan::load_str(&text).unwrap_or_else(|d| panic!("{d:#?}"));
    let outcome = compiled.apply(serde_json::Value::Object(record).to_string().as_bytes());
    let value = outcome.ok_value().unwrap_or_else(|| panic!("{:?}", outcome.errors()));
    for (i, t) in transforms::CATALOGUE.iter().enumerate() {
        let expected: serde_json::Value = serde_json::from_str(t.example_gives).unwrap();
        assert_eq!(value[format!("example_{i}")], expected, "`{}` on {} in the reference", t.example, t.example_input);
    }
}

/// Every validator's example passes the value the reference says passes, and refuses the one it
/// says fails with an error named after the validator: one field per example, of the passing
/// value's type.
#[test]
fn every_validator_example_passes_and_fails_as_the_reference_says() {
    let mut fields = String::new();
    let (mut passing, mut failing) = (serde_json::Map::new(), serde_json::Map::new());
    for (i, v) in validators::CATALOGUE.iter().enumerate() {
        let passes: serde_json::Value = serde_json::from_str(v.example_passes).unwrap();
        let field_type = match &passes {
            serde_json::Value::String(_) => "string",
            serde_json::Value::Number(n) if n.is_i64() => "integer",
            serde_json::Value::Number(_) => "number",
            other => panic!("`{}`: no field type for {other}", v.name),
        };
        fields.push_str(&format!(
            "  - target: example_{i}\n    source: $.example_{i}\n    type: {field_type}\n    validate:\n      - {}\n",
            v.example
        ));
        passing.insert(format!("example_{i}"), passes);
        failing.insert(format!("example_{i}"), serde_json::from_str(v.example_fails).unwrap());
    }
    let text = format!("version: 1\nname: validator-examples\nfields:\n{fields}");
    let (_, compiled) = plan::load_str(&text).unwrap_or_else(|d| panic!("{d:#?}"));
    let passing = serde_json::Value::Object(passing);
    let outcome = compiled.apply(passing.to_string().as_bytes());
    assert_eq!(outcome.ok_value(), Some(passing), "{:?}", outcome.errors());
    let outcome = compiled.apply(serde_json::Value::Object(failing).to_string().as_bytes());
    let refused: Vec<(String, String)> =
        outcome.errors().iter().map(|e| (e.field.clone().unwrap_or_default(), e.rule.clone())).collect();
    let expected: Vec<(String, String)> =
        validators::CATALOGUE.iter().enumerate().map(|(i, v)| (format!("example_{i}"), v.name.to_string())).collect();
    assert_eq!(refused, expected, "each failing example refused once, by its validator");
}
