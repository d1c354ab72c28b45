use super::bytes::{first_special_of_16, swar_first_special_of_16};
use super::keys::{key_words, key_words_at, same_bytes, short_key};
use super::scanner::short_decimal;
use super::trie::TrieNode;
use super::*;
use crate::plan::path::parse_source;
use serde_json::Value;
use serde_json::json;

/// Scans and turns every slot into a plain `Value` for comparisons.
fn values(x: &Extractor, bytes: &[u8]) -> Vec<Option<Value>> {
    x.scan(bytes).unwrap().into_iter().map(|v| v.map(Val::into_value)).collect()
}

fn extractor(paths: &[&str]) -> (Extractor, Vec<usize>) {
    let mut x = Extractor::default();
    let slots = paths.iter().map(|p| x.add(&parse_source(p).unwrap().prefix)).collect();
    x.finish();
    (x, slots)
}

#[test]
fn special_bytes_are_found_at_every_offset() {
    for len in 0..40 {
        let plain = "a".repeat(len);
        assert_eq!(special_byte_offset(plain.as_bytes()), len);
        for at in 0..len {
            for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                let mut bytes = plain.clone().into_bytes();
                bytes[at] = special;
                assert_eq!(special_byte_offset(&bytes), at, "{special:#x} at {at} of {len}");
            }
        }
    }
    // Bytes just above the specials are not special; non-ASCII bytes are (checked as UTF-8).
    assert_eq!(special_byte_offset("#]!\x20cao~\x7f".as_bytes()), "#]!\x20cao~\x7f".len());
    assert_eq!(special_byte_offset("#]!\x20ção".as_bytes()), 4);
}

#[test]
fn the_vector_and_portable_scans_agree_with_a_byte_loop() {
    // Every byte value at every position of blocks around the 16-byte boundary, on a
    // background of high bytes (signed-compare mistakes would show there).
    for background in [b'a', 0x80, 0xff, 0x20] {
        for len in [15, 16, 17, 31, 32, 33, 48] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![background; len];
                    bytes[at] = b;
                    let naive = bytes
                        .iter()
                        .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))
                        .unwrap_or(len);
                    assert_eq!(special_byte_offset(&bytes), naive, "{b:#x} at {at} of {len} on {background:#x}");
                    assert_eq!(swar_special_byte_offset(&bytes), naive);
                }
            }
        }
    }
}

#[test]
fn key_index_finds_every_key_and_only_those() {
    // Keys of every length, short and long (over 16 bytes only the first and last 8 are in
    // the words); a large node (probed) and small ones (one probe).
    let names: Vec<String> = (0..300)
        .map(|i| format!("k{i}"))
        .chain((0..50).map(|i| format!("medium_{i:03}")))
        .chain((0..50).map(|i| format!("a_rather_long_field_name_{i}_of_the_record")))
        .chain(["".into(), "a".into(), "ab".into(), "abcdefgh".into(), "abcdefghijklmnop".into()])
        .collect();
    let small: Vec<String> = ["id", "number", "status", "created_at", "a_rather_long_field_name_of_the_order", "x", ""]
        .map(String::from)
        .into();
    for (names, one_probe) in [(&names, false), (&small, true), (&names[..40].to_vec(), true)] {
        let mut node = TrieNode::default();
        for n in names {
            node.keys.push((n.as_str().into(), TrieNode::default()));
        }
        node.build_key_table();
        assert_eq!(node.one_probe, one_probe, "{} keys", names.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(node.find_key(n), Some(i), "{n}");
            // Read from inside a record too: with 16 bytes to read past the key, and without.
            let record = format!("{{\"{n}\":1,\"padding\":\"................\"}}");
            assert_eq!(node.find_key_at(record.as_bytes(), 2, n.len()), Some(i), "{n} in a record");
            let at_end = format!("\"{n}");
            assert_eq!(node.find_key_at(at_end.as_bytes(), 1, n.len()), Some(i), "{n} at the end");
        }
        for missing in ["k300", "b", "k-1", "abc", "K1", "medium_050", "abcdefgi", "abcdefghijklmnoq", "ids"] {
            assert_eq!(node.find_key(missing), None, "{missing}");
        }
        // A key that differs from a registered one in any single byte is not found.
        for name in names.iter().filter(|n| !n.is_empty()) {
            for at in 0..name.len() {
                let mut changed = name.clone().into_bytes();
                changed[at] = b'#';
                let changed = String::from_utf8(changed).unwrap();
                assert_eq!(node.find_key(&changed), None, "{name} with byte {at} changed");
            }
        }
    }
    assert_eq!(TrieNode::default().find_key("x"), None);
}

#[test]
fn key_words_read_from_a_record_are_the_key_s_own() {
    let record: Vec<u8> = (0..64u8).map(|i| b'A' + i % 50).collect();
    for start in 0..record.len() {
        for len in 0..=(record.len() - start).min(24) {
            assert_eq!(
                key_words_at(&record, start, len),
                key_words(&record[start..start + len]),
                "{len} bytes at {start}"
            );
        }
    }
}

#[test]
fn short_key_comparison_sees_every_byte() {
    for n in 0..40 {
        let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
        assert!(same_bytes(&a, &a.clone()), "length {n}");
        for at in 0..n {
            let mut b = a.clone();
            b[at] ^= 0x20;
            assert!(!same_bytes(&a, &b), "length {n}, byte {at} differs");
        }
        assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0, "length {n} vs shorter");
    }
}

#[test]
fn captures_only_registered_prefixes() {
    let (x, s) = extractor(&["$.a.b", "$.c[1]", "$.nope"]);
    let slots = values(&x, br#"{"z": [1, {"q": 2}], "a": {"b": "B", "x": 1}, "c": [10, 20, 30]}"#);
    assert_eq!(slots[s[0]], Some(json!("B")));
    assert_eq!(slots[s[1]], Some(json!(20)));
    assert_eq!(slots[s[2]], None);
}

#[test]
fn captured_text_is_the_same_whether_plain_escaped_or_not_text() {
    let (x, s) = extractor(&["$.a", "$.b", "$.c", "$.d", "$.w[*]"]);
    let record = br#"{"a": "plain", "b": "S\u00e3o \"quoted\"", "c": 12, "skipped": "x\ny", "d": {"k": "v"}, "w": ["p", "e\u00e9"]}"#;
    let slots = values(&x, record);
    assert_eq!(slots[s[0]], Some(json!("plain")));
    assert_eq!(slots[s[1]], Some(json!("São \"quoted\"")));
    assert_eq!(slots[s[2]], Some(json!(12)));
    assert_eq!(slots[s[3]], Some(json!({"k": "v"})));
    assert_eq!(slots[s[4]], Some(json!(["p", "eé"])));
    // Plain text is lent from the record, not copied.
    assert!(matches!(x.scan(record).unwrap()[s[0]], Some(Val::Raw("plain"))));
    // An unread string is still checked.
    assert!(x.scan(br#"{"a": "ok", "skipped": "bad \x escape"}"#).is_err());
}

#[test]
fn text_captures_delimit_objects_and_leave_their_contents_to_the_reader() {
    let mut x = Extractor::default();
    let value = x.add_text(&parse_source("$.value").unwrap().prefix);
    let after = x.add(&parse_source("$.after").unwrap().prefix);
    x.finish();
    let text = |record: &str| -> Result<Option<String>, String> {
        let slots = x.scan(record.as_bytes()).map_err(|e| e.to_string())?;
        Ok(slots[value].as_ref().map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| format!("{v:?}"))))
    };
    let embedded = r#"{"a": "}]\"{[", "b": [1, {"c": "\\"}], "é": "ü"}"#;
    let record = format!(r#"{{"value": {embedded}, "after": 7}}"#);
    let slots = x.scan(record.as_bytes()).unwrap();
    assert!(matches!(slots[value], Some(Val::Raw(t)) if t == embedded), "{:?}", slots[value]);
    assert_eq!(slots[after].clone().map(Val::into_value), Some(json!(7)), "the members after it are read");
    // Only delimited: contents that are not JSON are for the reader of the text to refuse.
    assert_eq!(text(r#"{"value": {"a": tru}}"#), Ok(Some(r#"{"a": tru}"#.into())));
    // Other values are checked as any value is.
    assert_eq!(text(r#"{"value": "text"}"#), Ok(Some(r#""text""#.into())));
    assert!(text(r#"{"value": tru}"#).is_err());
    // What cannot be delimited, or is not UTF-8, or breaks the envelope around it, is refused.
    for broken in [r#"{"value": {"a": "b}"#, r#"{"value": {"a": [1}"#, r#"{"value": {"a": 1}}}"#, r#"{"value": [1]] }"#]
    {
        assert!(text(broken).is_err(), "{broken}");
    }
    let mut not_utf8 = br#"{"value": {"a": "x"}}"#.to_vec();
    not_utf8[17] = 0xff;
    assert!(x.scan(&not_utf8).is_err());
}

#[test]
fn a_text_of_given_length_is_taken_without_being_delimited() {
    let mut x = Extractor::default();
    let (value, length) = x.add_text_with_length(
        &parse_source("$.value").unwrap().prefix,
        &parse_source("$.value_length").unwrap().prefix,
    );
    let after = x.add(&parse_source("$.after").unwrap().prefix);
    x.finish();
    let text = |record: &str| -> Result<String, String> {
        let slots = x.scan(record.as_bytes()).map_err(|e| e.to_string())?;
        assert_eq!(slots[after].clone().map(Val::into_value), Some(json!(7)), "{record}");
        match &slots[value] {
            Some(Val::Raw(t)) => Ok((*t).to_owned()),
            other => Err(format!("{other:?}")),
        }
    };
    let envelope =
        |length: &str, embedded: &str| format!(r#"{{"value_length": {length}, "value": {embedded}, "after": 7}}"#);
    // Taken as given: brackets that do not balance show it was not delimited.
    let unbalanced = r#"{"a": [}"#;
    assert_eq!(text(&envelope(&unbalanced.len().to_string(), unbalanced)), Ok(unbalanced.into()));
    assert!(text(&envelope("null", unbalanced)).is_err(), "without a length it is delimited, and fails");
    let embedded = r#"{"a": {"b": "}"}, "c": [1]}"#;
    let n = embedded.len();
    assert_eq!(text(&envelope(&n.to_string(), embedded)), Ok(embedded.into()));
    let record = envelope(&n.to_string(), embedded);
    let length_read = x.scan(record.as_bytes()).unwrap()[length].clone().map(Val::into_value);
    assert_eq!(length_read, Some(json!(n)), "the length is read as a member too");
    // A length that does not end on the closing bracket, or is not a length, is ignored.
    for unusable in [
        (n - 1).to_string(),
        (n + 1).to_string(),
        "100000".into(),
        "-3".into(),
        "1".into(),
        "0".into(),
        r#""27""#.into(),
    ] {
        assert_eq!(text(&envelope(&unusable, embedded)), Ok(embedded.into()), "{unusable}");
    }
    // A wrong length that ends on a closing bracket inside the record: the envelope no longer reads.
    let inner_end = embedded.find(r#""}"}"#).unwrap() + 4;
    assert_eq!(&embedded[..inner_end], r#"{"a": {"b": "}"}"#);
    assert!(text(&envelope(&inner_end.to_string(), embedded)).is_err());
    // After the text: its UTF-8 is still checked.
    let mut not_utf8 = envelope("10", r#"{"a": "x"}"#).into_bytes();
    let at = not_utf8.iter().position(|b| *b == b'x').unwrap();
    not_utf8[at] = 0xff;
    assert!(x.scan(&not_utf8).is_err());
}

/// A seeded xorshift generator: the same random cases on every run.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

#[test]
fn short_keys_are_read_as_the_long_way_reads_them() {
    // Keys of every length up to 20, with a quote, backslash, control or non-ASCII byte at
    // random places, followed by `":` and more: where the short read answers, it finds the
    // key's end and words exactly; it leaves everything else to the long way.
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let (mut short, mut long) = (0, 0);
    for _ in 0..100_000 {
        let len = (next() % 21) as usize;
        let mut key: Vec<u8> = (0..len).map(|_| b'a' + (next() % 26) as u8).collect();
        if len > 0 && next().is_multiple_of(4) {
            key[(next() % len as u64) as usize] = [b'\\', 0x01, 0xc3, b'\t'][(next() % 4) as usize];
        }
        let mut record = b"{\"".to_vec();
        record.extend_from_slice(&key);
        record.extend_from_slice(b"\":1,\"tail\":\"0123456789abcdef\"}");
        let cut = next().is_multiple_of(3).then(|| (next() as usize) % record.len());
        let record = &record[..cut.unwrap_or(record.len())];
        match short_key(record, 2) {
            Some((n, words)) => {
                short += 1;
                assert!(n < 16 && !key[..n].iter().any(|b| matches!(b, b'"' | b'\\') || !(0x20..0x80).contains(b)));
                assert_eq!(n, len, "{:?}", String::from_utf8_lossy(record));
                assert_eq!(words, key_words(&key), "{:?}", String::from_utf8_lossy(&key));
            }
            None => long += 1,
        }
    }
    assert!(short > 30_000 && long > 30_000, "both ways taken: {short} short, {long} long");
    // The portable reading of 16 bytes agrees with the one in use, at every position.
    for _ in 0..20_000 {
        let mut chunk: [u8; 16] = std::array::from_fn(|_| b' ' + (next() % 95) as u8);
        for _ in 0..(next() % 3) {
            chunk[(next() % 16) as usize] = [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff][(next() % 7) as usize];
        }
        let expected = chunk.iter().position(|b| matches!(b, b'"' | b'\\') || !(0x20..0x80).contains(b)).unwrap_or(16);
        assert_eq!(first_special_of_16(&chunk), expected, "{chunk:?}");
        assert_eq!(swar_first_special_of_16(&chunk), expected, "{chunk:?}");
    }
    // At the record's end, or past it: the long way.
    assert_eq!(short_key(br#"{"a":1}"#, 2), None);
    assert_eq!(short_key(b"", usize::MAX), None);
}

#[test]
fn short_decimals_read_as_serde_json_reads_them() {
    // Every length and position of the point, random digits, both signs: the same bits.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    for _ in 0..200_000 {
        let digits = 2 + (next() % 14) as usize;
        let point = 1 + (next() % (digits as u64 - 1)) as usize;
        let mut text: String = (0..digits).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
        if text.starts_with('0') && point > 1 {
            text.replace_range(..1, "1");
        }
        text.insert(point, '.');
        if next().is_multiple_of(2) {
            text.insert(0, '-');
        }
        let expected: f64 = serde_json::from_str(&text).unwrap();
        let fast = short_decimal(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(fast.to_bits(), expected.to_bits(), "{text}");
        checked += 1;
    }
    assert_eq!(checked, 200_000);
    for text in ["-0.0", "0.1", "0.3", "123456789012.345", "12345678901234.5", "-99999999999999.9"] {
        let expected: f64 = serde_json::from_str(text).unwrap();
        assert_eq!(short_decimal(text.as_bytes()).map(f64::to_bits), Some(expected.to_bits()), "{text}");
    }
    // Sixteen digits, an exponent, no fraction (or not JSON): left to serde_json or refused before.
    for text in ["1234567890123.456", "1.5e3", "1e5", "12", "1.", ".5", "-", "1.2.3"] {
        assert_eq!(short_decimal(text.as_bytes()), None, "{text}");
    }
    let (x, s) = extractor(&["$.w"]);
    assert_eq!(values(&x, br#"{"w": 1.25}"#)[s[0]], Some(json!(1.25)));
    assert_eq!(
        values(&x, br#"{"w": -0.0}"#)[s[0]].clone().map(|v| v.as_f64().unwrap().to_bits()),
        Some((-0.0f64).to_bits())
    );
}

#[test]
fn nested_captures_are_derived_from_the_outer_value() {
    let (x, s) = extractor(&["$.a.b", "$.a"]);
    let slots = values(&x, br#"{"a": {"b": 1}}"#);
    assert_eq!(slots[s[1]], Some(json!({"b": 1})));
    assert_eq!(slots[s[0]], Some(json!(1)));
}

#[test]
fn wildcards_collect_every_match_in_order() {
    let (x, s) = extractor(&["$.items[*].sku", "$.o.*", "$.items[0].sku"]);
    let slots = values(&x, br#"{"items": [{"sku": "a"}, {"qty": 1}, {"sku": "c"}], "o": {"x": 1, "y": [2]}}"#);
    assert_eq!(slots[s[0]], Some(json!(["a", "c"])));
    assert_eq!(slots[s[1]], Some(json!([1, [2]])));
    assert_eq!(slots[s[2]], Some(json!("a")), "a wildcard beside an index is served from the materialised array");
    assert!(x.is_multi(s[0]) && x.is_multi(s[1]) && !x.is_multi(s[2]));
    let slots = values(&x, br#"{"items": []}"#);
    assert_eq!(slots[s[0]], None, "no match leaves the slot empty");
}

#[test]
fn values_keep_serde_json_number_semantics() {
    let (x, s) = extractor(&["$.a", "$.b", "$.c", "$.d", "$.e"]);
    let slots = values(
        &x,
        br#"{"a": -42, "b": 18446744073709551615, "c": 123456789012345678901234567890, "d": 1.5e3, "e": "x\"y"}"#,
    );
    assert_eq!(slots[s[0]], Some(json!(-42)));
    assert_eq!(slots[s[1]], Some(json!(u64::MAX)));
    assert_eq!(slots[s[2]], Some(json!(1.2345678901234568e29)));
    assert_eq!(slots[s[3]], Some(json!(1500.0)));
    assert_eq!(slots[s[4]], Some(json!("x\"y")));
    assert!(x.scan(br#"{"a": 1e999}"#).unwrap_err().message.contains("number out of range"));
}

#[test]
fn rejects_what_is_not_json() {
    let (x, _) = extractor(&["$.a"]);
    let cases: &[(&[u8], &str)] = &[
        (b"", "the value is empty"),
        (b"   ", "the value is empty"),
        (b"[1,2]", "expected a JSON object, found an array"),
        (b"\"s\"", "found a string"),
        (b"42", "found a number"),
        (b"null", "expected a JSON object, found null"),
        (b"true", "found a boolean"),
        // Text that only starts like a JSON value is not JSON, and says so where it stops.
        (b"nul", "not JSON: "),
        (b"nope", "not JSON: invalid literal"),
        (b"12ab", "not JSON: text after the value at line 1 column 3"),
        (b"hello world", "not JSON: the text starts `hello world` at line 1 column 1"),
        (b"{\"a\": 1", "unexpected end of input"),
        (b"{\"a\": 1} x", "trailing characters"),
        (b"{\"a\": 01}", "expected `,` or `}`"),
        (b"{\"b\": [1,]}", "expected a JSON value, found `]`"),
        (b"{\"b\": tru}", "invalid literal"),
        (b"{\"b\": \"a\tb\"}", "control character"),
        (b"{\"b\": \"\\x\"}", "invalid escape"),
        (b"{\"b\": \"\\u12\"}", "invalid \\u escape"),
        (b"{\"b\": 1.}", "a digit after the decimal point"),
        (b"{\"b\": -}", "expected a digit"),
        (b"{b: 1}", "expected a string key"),
        (b"{\"b\" 1}", "expected `:`"),
        (b"{\"a\": \"\xff\"}", "invalid UTF-8"),
        (b"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""),
    ];
    for (input, want) in cases {
        let e = x.scan(input).expect_err(&String::from_utf8_lossy(input));
        assert!(e.to_string().contains(want), "{:?}: {e}", String::from_utf8_lossy(input));
    }
    assert!(x.scan(br#"{"a": 1, "b": 2, "b": 3}"#).is_ok(), "duplicates the mapping never reads do not matter");
    assert!(x.scan(b" {\"a\":1} \n").is_ok());
    // A UTF-8 byte-order mark before the value is not part of it.
    assert_eq!(x.scan(b"\xEF\xBB\xBF{\"a\":1}").unwrap()[0], Some(Val::owned(json!(1))));
    assert!(x.scan(b"{\"a\":1}\xEF\xBB\xBF").is_err(), "only at the start");
}

#[test]
fn errors_carry_line_and_column() {
    let (x, _) = extractor(&["$.a"]);
    let e = x.scan(b"{\n  \"a\": 1,\n  \"b\": ?\n}").unwrap_err();
    assert_eq!((e.line, e.column), (3, 8));
}

#[test]
fn nesting_is_limited() {
    let (x, _) = extractor(&["$.a"]);
    let ok = format!("{{\"b\":{}1{}}}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
    assert!(x.scan(ok.as_bytes()).is_ok());
    let deep = format!("{{\"b\":{}1{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(x.scan(deep.as_bytes()).unwrap_err().message.contains("nesting deeper than 128"));
    let hostile = format!("{{\"a\":{}", "[".repeat(1_000_000));
    assert!(x.scan(hostile.as_bytes()).is_err());
}

#[test]
fn escaped_keys_still_match() {
    let (x, s) = extractor(&["$.café", "$['a\"b']"]);
    let slots = values(&x, br#"{"caf\u00e9": 1, "a\"b": 2}"#);
    assert_eq!(slots[s[0]], Some(json!(1)));
    assert_eq!(slots[s[1]], Some(json!(2)), "a double quote inside single quotes needs no escape");
}

#[test]
fn numbers_follow_the_json_number_rules_whether_leaf_or_nested() {
    let (x, s) = extractor(&["$.leaf", "$.nested"]);
    // Without fraction or exponent, an integer (`-0` is 0); with either, a float.
    for (literal, integer) in [
        ("0", Some(0)),
        ("-0", Some(0)),
        ("-1", Some(-1)),
        ("7", Some(7)),
        ("123456789012345678", Some(123456789012345678)),
        ("-123456789012345678", Some(-123456789012345678)),
        ("-0.0", None),
        ("0.0", None),
        ("1e2", None),
        ("1e-0", None),
        ("-0e0", None),
    ] {
        let text = format!(r#"{{"leaf": {literal}, "nested": [{literal}, "-0", {{"k": {literal}}}]}}"#);
        let slots = values(&x, text.as_bytes());
        let leaf = slots[s[0]].clone().expect("the leaf is found");
        let nested = slots[s[1]].clone().expect("the array is found");
        assert_eq!(leaf.as_i64(), integer, "leaf {literal}");
        assert_eq!(nested[0].as_i64(), integer, "in an array: {literal}");
        assert_eq!(nested[2]["k"].as_i64(), integer, "in an object: {literal}");
        assert_eq!(nested[1], Value::from("-0"), "a string is never touched");
        if integer.is_none() {
            let float: f64 = literal.parse().unwrap();
            assert_eq!(leaf.as_f64(), Some(float), "leaf {literal}");
            assert!(leaf.is_f64() && nested[0].is_f64(), "{literal} stays a float");
        }
    }
}

#[test]
fn agrees_with_serde_json_on_what_is_valid() {
    let (x, _) = extractor(&["$.a.b", "$.c[*]"]);
    for text in [
        r#"{"a": {"b": [1, 2.5e-3, -0, "\ud83d\ude00", null, true, false, {}]}, "c": [{"d": []}]}"#,
        r#"{"a": "not an object", "c": 3}"#,
        r#"{"a": {"b": 1}, "c": [1, 2, 3], "z": {"deep": [[[[{"x": "y"}]]]]}}"#,
    ] {
        assert!(serde_json::from_str::<Value>(text).is_ok());
        assert!(x.scan(text.as_bytes()).is_ok(), "{text}");
    }
}
