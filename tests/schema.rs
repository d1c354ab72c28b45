//! `schema/mapping.schema.json` (what editors complete and check with) against the loader: every
//! shipped mapping and every example of the mapping reference is valid under it, every key the
//! loader accepts is in it (and no other), and so is every type, transform, validator and
//! expression function.

use std::collections::BTreeSet;

use lambda_stream::plan::catalogue::{transforms, validators};
use lambda_stream::plan::{expr, types::FieldType};
use lambda_stream::spec;
use serde_json::Value;

use crate::doc_examples::examples;
use crate::util::root;

fn schema() -> Value {
    serde_json::from_str(spec::SCHEMA).expect("the schema is JSON")
}

/// A mapping file as the JSON the schema describes.
fn as_json(text: &str, name: &str) -> Value {
    let mut diags = Vec::new();
    let node = lambda_stream::yaml::load_yaml(text, &mut diags).unwrap_or_else(|| panic!("{name}: {diags:?}"));
    node.to_json().unwrap_or_else(|d| panic!("{name}: {d:?}"))
}

#[test]
fn shipped_mappings_and_the_references_examples_are_valid_under_the_schema() {
    let validator = jsonschema::draft202012::new(&schema()).expect("the schema is a valid draft 2020-12 schema");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(root().join("mappings")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            checked.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    let doc = std::fs::read_to_string(root().join("docs/mapping-spec.md")).unwrap();
    for example in examples(&doc) {
        checked.push((format!("docs/mapping-spec.md:{}", example.line), example.text));
    }
    assert!(checked.len() > 20, "only {} mappings checked", checked.len());
    let mut problems = Vec::new();
    for (name, text) in &checked {
        let instance = as_json(text, name);
        for error in validator.iter_errors(&instance) {
            problems.push(format!("{name}: at {}: {error}", error.instance_path()));
        }
    }
    assert!(problems.is_empty(), "valid mappings the schema refuses:\n{}", problems.join("\n"));
}

#[test]
fn the_schema_refuses_what_the_loader_refuses_by_shape() {
    let validator = jsonschema::draft202012::new(&schema()).unwrap();
    let base = "version: 1\nname: t\nfields:\n  - {target: a, source: $.a";
    for (case, why) in [
        (format!("{base}, type: string, requird: true}}\n"), "an unknown field key"),
        (format!("{base}, type: text}}\n"), "an unknown type"),
        (format!("{base}, type: string, transform: [lowercas]}}\n"), "an unknown transform"),
        (format!("{base}, type: integer, validate: [{{range: {{min: 1, mx: 2}}}}]}}\n"), "an unknown argument"),
        (format!("{base}, type: integer, validate: [{{range: {{}}}}]}}\n"), "a range without bounds"),
        (format!("{base}, type: string}}\nrules:\n  - {{check: a != ''}}\n"), "a rule without a name"),
        ("version: 2\nname: t\nfields: [{target: a, source: $.a, type: string}]\n".to_string(), "another version"),
    ] {
        assert!(!validator.is_valid(&as_json(&case, why)), "the schema accepts {why}:\n{case}");
    }
}

/// The property names the schema gives an object (at a JSON pointer).
fn keys(schema: &Value, pointer: &str) -> BTreeSet<String> {
    let at = schema.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in the schema"));
    at["properties"].as_object().unwrap_or_else(|| panic!("{pointer} has no properties")).keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_key_the_loader_accepts_is_in_the_schema_and_no_other() {
    let s = schema();
    for (pointer, loader) in [
        ("", spec::TOP_KEYS),
        ("/$defs/field", spec::FIELD_KEYS),
        ("/$defs/rule", spec::RULE_KEYS),
        ("/$defs/lookup", spec::LOOKUP_KEYS),
        ("/$defs/rule/properties/when/oneOf/1", spec::WHEN_KEYS),
        ("/$defs/test", spec::TEST_KEYS),
        ("/$defs/outputEntry", spec::OUTPUT_ENTRY_KEYS),
        ("/$defs/test/properties/expect", spec::EXPECT_KEYS),
        ("/$defs/test/properties/expect/properties/fail/items", spec::EXPECTED_ERROR_KEYS),
    ] {
        assert_eq!(keys(&s, pointer), set(loader), "the keys at `{pointer}` differ from the loader's");
    }
}

/// The names a step list of the schema offers: bare names, and the keys of one-name objects.
fn step_names(step: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for choice in step["oneOf"].as_array().unwrap() {
        if let Some(list) = choice["enum"].as_array() {
            names.extend(list.iter().map(|n| n.as_str().unwrap().to_string()));
        }
        if let Some(props) = choice["properties"].as_object() {
            names.extend(props.keys().filter(|k| *k != "when").cloned());
        }
    }
    names
}

#[test]
fn every_type_transform_validator_and_function_is_in_the_schema() {
    let s = schema();
    assert_eq!(step_names(&s["$defs"]["transform"]), set(&transforms::names().collect::<Vec<_>>()), "transforms");
    assert_eq!(step_names(&s["$defs"]["validator"]), set(&validators::names().collect::<Vec<_>>()), "validators");
    let types: BTreeSet<String> = s["$defs"]["field"]["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().into())
        .collect();
    assert_eq!(types, set(FieldType::NAMES), "types");
    let described = s["$defs"]["field"]["properties"]["expr"]["description"].as_str().unwrap();
    let missing: Vec<&str> = expr::functions::names()
        .filter(|f| {
            !described.contains(&format!(" {f},"))
                && !described.contains(&format!(" {f} "))
                && !described.contains(&format!(" {f}."))
        })
        .collect();
    assert!(missing.is_empty(), "functions the schema's expression description leaves out: {missing:?}");
}

#[test]
fn the_schema_command_prints_the_schema() {
    let out = crate::util::lambda_stream(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), schema());
}

/// The schema's forms of a step's argument are the catalogue's: a step without one is a bare name
/// (or `null` beside `when:`), one value is not a mapping, and an argument mapping has exactly the
/// catalogue's keys, requires its required ones and, when at least one is needed, at least one.
#[test]
fn every_step_argument_in_the_schema_is_the_catalogues() {
    use lambda_stream::plan::catalogue::Argument;
    let s = schema();
    let steps = transforms::CATALOGUE
        .iter()
        .map(|t| ("transform", t.name, &t.argument))
        .chain(validators::CATALOGUE.iter().map(|v| ("validator", v.name, &v.argument)));
    let mut problems = Vec::new();
    for (kind, name, argument) in steps {
        let choices = s["$defs"][kind]["oneOf"].as_array().unwrap();
        let bare = choices.iter().any(|c| c["enum"].as_array().is_some_and(|e| e.iter().any(|n| n == name)));
        let forms: Vec<&Value> = choices.iter().filter_map(|c| c["properties"].get(name)).collect();
        let mut problem = |what: String| problems.push(format!("{kind} `{name}`: {what}"));
        if bare != (*argument == Argument::None) {
            problem(format!("a bare name in the schema: {bare}"));
        }
        if forms.is_empty() && *argument != Argument::None {
            problem("no argument in the schema".into());
        }
        for form in forms {
            match argument {
                Argument::None if form["type"] != "null" => problem(format!("an argument in the schema: {form}")),
                Argument::Value { .. } if form["type"] == "object" || form["type"] == "null" => {
                    problem(format!("not one value in the schema: {form}"))
                }
                Argument::Keys { keys, at_least_one } => {
                    let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
                    let required: Vec<&str> = keys.iter().filter(|k| k.required).map(|k| k.name).collect();
                    let listed = |v: &Value| -> BTreeSet<String> {
                        v.as_array().into_iter().flatten().map(|n| n.as_str().unwrap().to_string()).collect()
                    };
                    let schema_keys: BTreeSet<String> =
                        form["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
                    if form["type"] != "object" || form["additionalProperties"] != false {
                        problem(format!("not a closed mapping in the schema: {form}"));
                    }
                    if schema_keys != set(&names) {
                        problem(format!("keys {schema_keys:?} in the schema, {names:?} in the catalogue"));
                    }
                    if listed(&form["required"]) != set(&required) {
                        problem(format!("requires {} in the schema, {required:?} in the catalogue", form["required"]));
                    }
                    if *at_least_one != (form["minProperties"] == 1) {
                        problem(format!("minProperties {} in the schema", form["minProperties"]));
                    }
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "the schema's step arguments differ from the catalogue:\n{}", problems.join("\n"));
}
