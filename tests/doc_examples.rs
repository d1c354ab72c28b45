//! The mapping reference runs: every `yaml` block in `docs/mapping-spec.md` is a complete mapping
//! that must compile and whose embedded tests must pass, and every type, transform and validator
//! the compiler knows must have an example there. A reference that drifts from the code fails here.

use lambda_stream::plan::{self, spec_tests, transform, types::FieldType, validate};

use crate::util::root;

/// A `yaml` block of the document: the line its text starts on, and its text.
struct Example {
    line: usize,
    text: String,
}

fn examples(doc: &str) -> Vec<Example> {
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
        match plan::load_str(&example.text) {
            Err(diagnostics) => {
                for d in diagnostics {
                    problems.push(format!("{}:{}: {}", at(d.pos.line), d.pos.col, d.message));
                }
            }
            Ok((spec, compiled)) => {
                if spec.tests.is_empty() {
                    problems.push(format!("{}: an example without `tests:` shows nothing", at(1)));
                }
                for result in spec_tests::run(&spec, &compiled) {
                    if let Some(why) = result.failure {
                        problems.push(format!("{}: test {:?} failed: {why}", at(result.pos.line), result.name));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "the mapping reference does not run:\n{}", problems.join("\n"));
}

#[test]
fn every_type_transform_and_validator_has_an_example() {
    let doc = std::fs::read_to_string(root().join("docs/mapping-spec.md")).unwrap();
    let (mut types, mut transforms, mut validators) = (Vec::new(), Vec::new(), Vec::new());
    for example in examples(&doc) {
        let (spec, _) = lambda_stream::spec::parse(&example.text);
        for field in &spec.fields {
            types.extend(field.kind.as_ref().map(|k| k.value.clone()));
            transforms.extend(field.transform.iter().map(|s| s.name.value.clone()));
            validators.extend(field.validate.iter().map(|s| s.name.value.clone()));
        }
    }
    let missing = |known: &[&str], used: &[String], what: &str| -> Vec<String> {
        known.iter().filter(|n| !used.iter().any(|u| u == *n)).map(|n| format!("{what} {n}")).collect()
    };
    let mut absent = missing(FieldType::NAMES, &types, "type");
    absent.extend(missing(transform::NAMES, &transforms, "transform"));
    absent.extend(missing(validate::NAMES, &validators, "validator"));
    assert!(absent.is_empty(), "no example in docs/mapping-spec.md uses: {}", absent.join(", "));
}
