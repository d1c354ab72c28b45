//! Short functions: outside tests, none is over 100 lines but the flat dispatch tables named
//! below, each of which says why in its doc comment. A long function is usually several phases
//! that want names; a new one fails here with where it is.

use std::path::{Path, PathBuf};

use crate::util::root;

/// The functions allowed to be long: one arm per built-in, transform, token or code node.
const DISPATCH_TABLES: [(&str, &str); 5] = [
    ("plan/expr/eval.rs", "call"),
    ("plan/expr/eval.rs", "eval"),
    ("plan/expr/check.rs", "call"),
    ("plan/expr/syntax.rs", "lex"),
    ("plan/transform.rs", "apply"),
];

const MAX_LINES: usize = 100;

/// The line with its strings, characters and comment blanked out, so that braces inside them
/// do not count; `in_string` carries a string that goes on to the next line.
fn code_of(line: &str, in_string: &mut bool) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if *in_string {
            match c {
                '\\' => i += 1,
                '"' => *in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            '/' if chars.get(i + 1) == Some(&'/') => break,
            '"' => *in_string = true,
            // A character literal: `'{'`, `'\''`, `'\u{7b}'`; a lifetime has no closing quote.
            '\'' => {
                let close = chars[i + 1..].iter().take(10).position(|&q| q == '\'');
                match close {
                    Some(n) if n > 0 && (n == 1 || chars[i + 1] == '\\') => i += n + 1,
                    _ => out.push(c),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// `(lines, name, first line)` of every function of the file outside its `#[cfg(test)] mod tests`.
fn functions(text: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| {
            w[0].starts_with("#[cfg(test)]") && w[1].trim_start_matches("pub(crate) ").starts_with("mod tests")
        })
        .unwrap_or(lines.len());
    let mut in_string = false;
    let code: Vec<String> = lines[..end].iter().map(|l| code_of(l, &mut in_string)).collect();
    let mut found = Vec::new();
    for (i, line) in code.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "fn") else { continue };
        if !words[..at].iter().all(|w| ["pub", "pub(crate)", "pub(super)", "const", "async", "unsafe"].contains(w)) {
            continue;
        }
        let Some(name) = words.get(at + 1).map(|w| w.split(['(', '<']).next().unwrap_or_default().to_string()) else {
            continue;
        };
        let (mut depth, mut opened) = (0i32, false);
        for (j, body) in code.iter().enumerate().skip(i) {
            if !opened && body.trim_end().ends_with(';') {
                break;
            }
            for c in body.chars() {
                match c {
                    '{' => (depth, opened) = (depth + 1, true),
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                found.push((j - i + 1, name.clone(), i + 1));
                break;
            }
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "tests.rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_function_outside_tests_is_over_a_hundred_lines_but_the_dispatch_tables() {
    let mut files = Vec::new();
    for dir in ["src", "crates/engine/src"] {
        let dir = root().join(dir);
        if dir.is_dir() {
            sources(&dir, &mut files);
        }
    }
    assert!(files.len() > 50, "the sources were found: {}", files.len());
    let (mut long, mut tables_seen) = (Vec::new(), 0);
    for file in &files {
        let shown = file.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
        // The property test's generators and reference evaluator are test code.
        if shown.ends_with("plan/expr/props.rs") {
            continue;
        }
        for (lines, name, at) in functions(&std::fs::read_to_string(file).unwrap()) {
            if lines <= MAX_LINES {
                continue;
            }
            if DISPATCH_TABLES.iter().any(|(f, n)| shown.ends_with(f) && name == *n) {
                tables_seen += 1;
            } else {
                long.push(format!("{shown}:{at}: `{name}` is {lines} lines"));
            }
        }
    }
    assert!(long.is_empty(), "functions over {MAX_LINES} lines; cut them into phases:\n{}", long.join("\n"));
    assert_eq!(tables_seen, DISPATCH_TABLES.len(), "an exempted dispatch table is short now: take it off the list");
}

#[test]
fn the_reader_measures_a_function_by_its_braces_not_by_those_in_its_text() {
    let text =
        "fn a() {\n    let s = \"}}}\";\n    let c = '}';\n    // }\n}\nfn b<'x>(v: &'x str) -> &'x str {\n    v\n}\n";
    assert_eq!(functions(text), vec![(5, "a".to_string(), 1), (3, "b".to_string(), 6)]);
    let long = format!("fn long() {{\n{}}}\n", "    let x = 1;\n".repeat(MAX_LINES));
    assert!(functions(&long)[0].0 > MAX_LINES, "a long function is found long");
}
