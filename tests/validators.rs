//! The standard validators end to end: `process` on a mapping and JSON lines gives one fail
//! envelope naming each validator as the rule, with a short message that quotes the value unless
//! the field is sensitive; `validate-mapping` refuses a validator on a type it cannot check.

use serde_json::{Value, json};

use crate::util::{TempFile, lambda_stream, stderr, stdout};

const MAPPING: &str = r#"version: 1
name: payer
fields:
  - { target: country, source: $.country, type: string, validate: [country] }
  - { target: currency, source: $.currency, type: string, validate: [currency] }
  - { target: phone, source: $.phone, type: string, validate: [e164] }
  - { target: iban, source: $.iban, type: string, sensitive: true, validate: [iban] }
  - { target: card, source: $.card, type: string, sensitive: true, validate: [luhn] }
  - { target: zone, source: $.zone, type: string, validate: [timezone] }
  - target: state
    source: $.state
    type: string
    validate:
      - one_of: [AC, AL, AP, AM, BA, CE, DF, ES, GO, MA, MT, MS, MG, PA, PB, PR, PE, PI, RJ, RN, RS, RO, RR, SC, SP, SE, TO]
"#;

#[test]
fn process_names_each_standard_validator_and_hides_sensitive_values() {
    let mapping = TempFile::new("payer.yaml", MAPPING.as_bytes());
    let input = [
        json!({"country": "BR", "currency": "BRL", "phone": "+5511987654321", "iban": "BR1800360305000010009795493C1",
               "card": "4111111111111111", "zone": "America/Sao_Paulo", "state": "SP"}),
        json!({"country": "br", "currency": "DEM", "phone": "11 98765-4321", "iban": "BR1900360305000010009795493C1",
               "card": "4111 1111 1111 1111", "zone": "Brasilia", "state": "sp"}),
    ];
    let lines: String = input.iter().map(|v| format!("{v}\n")).collect();
    let data = TempFile::new("in.jsonl", lines.as_bytes());
    let out = lambda_stream(&["process", "--mapping", mapping.arg(), "--input", data.arg()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["route"], "ok");
    assert_eq!(records[0]["value"], input[0]);

    assert_eq!(records[1]["route"], "fail");
    assert_eq!(records[1]["stage"], "validate");
    let errors: Vec<(&str, &str, &str)> = records[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["rule"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    let expected = [
        (
            "country",
            "country",
            "expected an assigned ISO 3166-1 alpha-2 country code in upper case, such as BR (the `uppercase` \
             transform makes it one), found a string \"br\"",
        ),
        (
            "currency",
            "currency",
            "expected a current ISO 4217 currency code in upper case, such as BRL, found a string \"DEM\"",
        ),
        (
            "phone",
            "e164",
            "expected an E.164 phone number: + and 8 to 15 digits, nothing else, found a string \"11 98765-4321\"",
        ),
        (
            "iban",
            "iban",
            "expected an IBAN whose check digits match (ISO 13616 mod 97), found a string (value hidden: sensitive field)",
        ),
        (
            "card",
            "luhn",
            "expected digits only for a Luhn check (the `digits_only` transform removes spaces and hyphens), found a \
             string (value hidden: sensitive field)",
        ),
        (
            "zone",
            "timezone",
            "expected an IANA time zone name such as America/Sao_Paulo (case-sensitive), found a string \"Brasilia\"",
        ),
        ("state", "one_of", "expected one of 27 values (\"AC\", \"AL\", …), found a string \"sp\"; nearest: \"SP\""),
    ];
    assert_eq!(errors, expected);
    let text = stdout(&out);
    assert!(!text.contains("BR19") && !text.contains("4111 1111"), "a sensitive value was quoted: {text}");
}

#[test]
fn validate_mapping_refuses_a_standard_validator_it_cannot_apply() {
    let mapping = TempFile::new(
        "bad.yaml",
        b"version: 1
name: bad
fields:
  - { target: country, source: $.country, type: integer, validate: [country] }
  - { target: iban, source: $.iban, type: string, validate: [ iban: strict ] }
  - { target: zone, source: $.zone, type: string, validate: [ timezon ] }
",
    );
    let out = lambda_stream(&["validate-mapping", mapping.arg()]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out); // the problems are the command's report, on standard output
    let at = |line_col: &str, text: &str| {
        assert!(report.contains(&format!("{}:{line_col}: error: {text}", mapping.arg())), "{report}");
    };
    at("4:69", "validator `country` cannot apply to a field of type `integer`; it checks strings");
    at("5:69", "validator `iban` takes no argument");
    at("6:63", "unknown validator `timezon`; did you mean `timezone`?");
}
