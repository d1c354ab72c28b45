//! The layering of the two crates' sources, checked: no module depends on one that depends back on
//! it, the engine (`crates/engine`: `diagnostic`, `yaml`, `spec`, `plan`) uses no Kafka, Lambda,
//! async or AWS crate and its manifest names none, and each outside service has one door
//! (`rdkafka` only in `sink::kafka` and `worker` with its modules, `lambda_runtime` only in
//! `lambda::runtime`).
//!
//! Dependencies are read from the source text: `crate::a::b`, `super::x` and a parent's uses of its
//! own children (`field::Field` in `plan/mod.rs`), each resolved to the longest module path that
//! exists. The engine's modules keep their names in the package that re-exports them (`plan`,
//! `plan::field`), so the two crates make one graph. Unit-test modules (everything from a file's
//! `#[cfg(test)]` on) and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::util::root;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The engine's sources, a package of its own.
const ENGINE_SRC: &str = "crates/engine/src";

/// Module path (`plan::field`, `plan` for `plan/mod.rs`) → the code of its file, tests excluded,
/// of the crate whose sources are in `src` (relative to the repository's root).
fn modules_of(src: &str) -> BTreeMap<String, String> {
    fn walk(src: &Path, dir: &Path, found: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(src, &path, found);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts == ["lib"] || parts == ["main"] || parts.last().is_some_and(|p| p == "tests") {
                continue; // the crate root, the binary, and unit-test modules kept in their own file
            }
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            let code: String = code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
            found.insert(parts.join("::"), code);
        }
    }
    let src = root().join(src);
    let mut found = BTreeMap::new();
    walk(&src, &src, &mut found);
    found
}

/// Every module of both crates: the package's `src/` and the engine's.
fn modules() -> BTreeMap<String, String> {
    let mut found = modules_of("src");
    found.extend(modules_of(ENGINE_SRC));
    found
}

/// The `a::b::c` path that starts right after `prefix` at each of its occurrences in `code`.
fn paths_after<'c>(code: &'c str, prefix: &str) -> Vec<Vec<&'c str>> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if code[..i].chars().next_back().is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        let end = rest.find(|c: char| !(is_ident(c) || c == ':')).unwrap_or(rest.len());
        found.push(rest[..end].split("::").filter(|s| !s.is_empty()).collect());
    }
    found
}

fn graph(modules: &BTreeMap<String, String>) -> Graph {
    let resolve = |path: &[&str]| -> Option<String> {
        (1..=path.len()).rev().map(|k| path[..k].join("::")).find(|m| modules.contains_key(m))
    };
    let mut graph = Graph::new();
    for (module, code) in modules {
        let own: Vec<&str> = module.split("::").collect();
        let mut deps = BTreeSet::new();
        for path in paths_after(code, "crate::") {
            deps.extend(resolve(&path));
        }
        for path in paths_after(code, "super::") {
            let mut full = own[..own.len() - 1].to_vec();
            full.extend(path);
            deps.extend(resolve(&full));
        }
        let depth = own.len();
        for child in
            modules.keys().filter(|c| c.starts_with(&format!("{module}::")) && c.split("::").count() == depth + 1)
        {
            let name = child.rsplit("::").next().unwrap();
            if !paths_after(code, &format!("{name}::")).is_empty() {
                deps.insert(child.clone());
            }
        }
        deps.remove(module);
        graph.insert(module.clone(), deps);
    }
    graph
}

fn cycles(graph: &Graph) -> Vec<String> {
    fn visit(node: &str, graph: &Graph, stack: &mut Vec<String>, done: &mut BTreeSet<String>, out: &mut Vec<String>) {
        stack.push(node.to_string());
        for next in &graph[node] {
            if let Some(at) = stack.iter().position(|s| s == next) {
                out.push(format!("{} -> {next}", stack[at..].join(" -> ")));
            } else if !done.contains(next) {
                visit(next, graph, stack, done, out);
            }
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let (mut done, mut out) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        if !done.contains(node) {
            visit(node, graph, &mut Vec::new(), &mut done, &mut out);
        }
    }
    out
}

#[test]
fn the_engine_and_the_package_name_their_modules_apart() {
    let (package, engine) = (modules_of("src"), modules_of(ENGINE_SRC));
    assert!(engine.contains_key("plan::field") && engine.contains_key("spec"), "{:?}", engine.keys());
    assert!(package.contains_key("destination") && !package.contains_key("plan"), "{:?}", package.keys());
    let both: Vec<&String> = package.keys().filter(|m| engine.contains_key(*m)).collect();
    assert!(both.is_empty(), "modules in both crates: {both:?}");
}

/// The dependency names of one `[…dependencies]` table of a Cargo manifest (`dependencies`,
/// `dev-dependencies`): the keys of its lines, up to the next table.
fn manifest_dependencies(manifest: &str, table: &str) -> Vec<String> {
    let header = format!("[{table}]");
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
        } else if inside
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.push(name.trim().to_string());
        }
    }
    names
}

#[test]
fn the_engine_depends_on_no_kafka_lambda_aws_async_command_line_or_logging_crate() {
    let manifest = std::fs::read_to_string(root().join("crates/engine/Cargo.toml")).unwrap();
    let names = manifest_dependencies(&manifest, "dependencies");
    assert!(names.iter().any(|n| n == "serde_json"), "the manifest reader finds the engine's dependencies: {names:?}");
    let forbidden =
        ["rdkafka", "tokio", "aws", "lambda", "clap", "tracing", "mimalloc", "hyper", "futures", "prometheus"];
    let wrong: Vec<&String> = names.iter().filter(|n| forbidden.iter().any(|f| n.contains(f))).collect();
    assert!(wrong.is_empty(), "the engine depends on {wrong:?}");
    assert!(!manifest.contains("[build-dependencies]"), "the engine builds no code of its own (no C)");
}

#[test]
fn the_manifest_reader_finds_a_forbidden_dependency() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\n# a comment = 1\nserde = \"1\"\ntokio = { version = \"1\" }\n\n[dev-dependencies]\nproptest = \"1\"\n";
    assert_eq!(manifest_dependencies(manifest, "dependencies"), ["serde", "tokio"]);
    assert_eq!(manifest_dependencies(manifest, "dev-dependencies"), ["proptest"]);
}

#[test]
fn no_module_depends_on_one_that_depends_back_on_it() {
    let modules = modules();
    assert!(modules.contains_key("plan::field") && modules.contains_key("plan"), "{:?}", modules.keys());
    let graph = graph(&modules);
    assert!(graph["plan"].contains("plan::field"), "the reader finds a parent's use of its child");
    assert!(graph["destination"].contains("plan"), "the reader finds crate:: paths");
    let found = cycles(&graph);
    assert!(found.is_empty(), "dependency cycles in src/ and {ENGINE_SRC}:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_reader_finds_a_cycle_when_there_is_one() {
    let mut modules = BTreeMap::new();
    modules.insert("a".to_string(), "use crate::b::X;".to_string());
    modules.insert("b".to_string(), "fn f() { crate::a::g() }".to_string());
    modules.insert("c".to_string(), "use super::a;".to_string());
    assert_eq!(cycles(&graph(&modules)), vec!["a -> b -> a".to_string()]);
}

#[test]
fn outside_services_each_have_one_door() {
    let modules = modules();
    let uses = |module: &str, krate: &str| !paths_after(&modules[module], &format!("{krate}::")).is_empty();
    let mut wrong = Vec::new();
    for module in modules.keys() {
        let engine = module == "spec" || module == "yaml" || module == "diagnostic" || module.starts_with("plan");
        for krate in ["rdkafka", "lambda_runtime", "tokio", "aws_config", "aws_sdk_ssm", "futures"] {
            if engine && uses(module, krate) {
                wrong.push(format!("the engine's `{module}` uses `{krate}`"));
            }
        }
        if uses(module, "rdkafka") && module != "sink::kafka" && module != "worker" && !module.starts_with("worker::") {
            wrong.push(format!("`{module}` uses rdkafka (only sink::kafka and worker's modules may)"));
        }
        if uses(module, "lambda_runtime") && module != "lambda::runtime" {
            wrong.push(format!("`{module}` uses lambda_runtime (only lambda::runtime may)"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
