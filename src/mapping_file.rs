//! A mapping read from disk: its text, bounded in size, and the lookup files it names, read from
//! its folder. The engine ([`plan`]) reads no file: this is where the program gives it the text and
//! the lookup files' bytes, under the rules a lookup file is held to (inside the mapping's folder,
//! a regular file, at most [`MAX_LOOKUP_BYTES`]).

use std::path::{Component, Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::limits::{MAX_LOOKUP_BYTES, MAX_MAPPING_BYTES, read_bounded, read_text_bounded};
use crate::plan::{self, CompileOptions, LookupFile, LookupResolver, Plan};
use crate::spec::MappingSpec;

/// A mapping file that could not be turned into a plan.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read mapping file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("mapping file {path} is invalid:\n{}", render_all(path, diagnostics))]
    Invalid { path: String, diagnostics: Vec<Diagnostic> },
}

fn render_all(path: &str, diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(|d| d.render(path)).collect::<Vec<_>>().join("\n")
}

/// Reads, parses and compiles a mapping file; its lookup files are read from its folder.
pub fn load_file(path: &Path) -> Result<(MappingSpec, Plan), LoadError> {
    let shown = path.display().to_string();
    let text = read_text_bounded(path, MAX_MAPPING_BYTES, "a mapping")
        .map_err(|source| LoadError::Io { path: shown.clone(), source })?;
    plan::load_str_in(&text, &options(path.parent()))
        .map_err(|diagnostics| LoadError::Invalid { path: shown, diagnostics })
}

/// Parses and compiles mapping text that has no folder of its own (read from S3, or given as
/// text): its lookup files are read from the working directory.
pub fn load_str(text: &str) -> Result<(MappingSpec, Plan), Vec<Diagnostic>> {
    plan::load_str_in(text, &options(None))
}

/// Compile options whose lookup files are read from `base_dir` (the mapping file's folder; without
/// one, the working directory) and whose keys are read from the environment.
pub fn options(base_dir: Option<&Path>) -> CompileOptions {
    CompileOptions { lookup_file: lookup_files_in(base_dir), ..CompileOptions::default() }
}

/// Reads a lookup table's `file:` from `base_dir` (the working directory without one): a regular
/// file inside that folder, of at most [`MAX_LOOKUP_BYTES`].
pub fn lookup_files_in(base_dir: Option<&Path>) -> LookupResolver {
    let base_dir = base_dir.map(Path::to_path_buf);
    Box::new(move |file| {
        let (read, shown) = lookup_file(base_dir.as_deref(), file)?;
        read_lookup_file(&read, &shown)
    })
}

/// Where a lookup table's `file:` is read from: the path to read (links resolved) and the path
/// as messages show it (the folder joined with the name as written).
///
/// The name is relative to the mapping's folder (`base_dir`; without one, a mapping given as text
/// or read from S3, the working directory: the function's package) and must stay inside it, so a
/// mapping names only files published with it: an absolute path is refused, so is a `..` that
/// climbs out of the folder, and so is a name that resolves outside it through a symlink.
fn lookup_file(base_dir: Option<&Path>, file: &str) -> Result<(PathBuf, PathBuf), String> {
    let folder = match base_dir {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = Path::new(file);
    let mut depth = 0usize;
    for component in name.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(format!(
                    "`file: {file}` is an absolute path; a lookup file is named relative to the mapping's folder and lies inside it"
                ));
            }
            Component::CurDir => {}
            Component::ParentDir if depth == 0 => {
                return Err(format!(
                    "`file: {file}` leaves the mapping's folder; a lookup file lies inside the folder of the mapping that reads it"
                ));
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
        }
    }
    let shown = if folder == Path::new(".") { name.to_path_buf() } else { folder.join(name) };
    // A name that does not resolve is left to the read, which says why it cannot.
    let Ok(resolved) = std::fs::canonicalize(&shown) else { return Ok((shown.clone(), shown)) };
    let inside = std::fs::canonicalize(folder).is_ok_and(|folder| resolved.starts_with(folder));
    if !inside {
        return Err(format!(
            "`file: {file}` resolves to {} (through a symlink), outside the mapping's folder; a lookup file lies inside the folder of the mapping that reads it",
            resolved.display()
        ));
    }
    // The resolved path is read: the name cannot be pointed elsewhere between check and read.
    Ok((resolved, shown))
}

/// A lookup file's bytes, if it is a regular file of at most [`MAX_LOOKUP_BYTES`]; the engine
/// parses them (CSV or JSON).
fn read_lookup_file(path: &Path, shown: &Path) -> Result<LookupFile, String> {
    let shown = shown.display().to_string();
    // Opening a named pipe waits for a writer that may never come: only a file is opened.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(format!("cannot read {shown}: not a file"));
    }
    let bytes =
        read_bounded(path, MAX_LOOKUP_BYTES, "a lookup file").map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(LookupFile { shown, bytes })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::plan::Outcome;

    fn apply(plan: &Plan, input: Value) -> Outcome {
        plan.apply(&serde_json::to_vec(&input).unwrap())
    }

    #[test]
    fn lookup_tables_from_csv_and_json_files_next_to_the_mapping() {
        let dir = std::env::temp_dir().join(format!("lookups-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mcc.csv"), "mcc,category\n5651,apparel\n5411,grocery\n").unwrap();
        std::fs::write(dir.join("tiers.json"), r#"{"G": "gold", "S": "silver"}"#).unwrap();
        let text = "version: 1\nname: t\nlookups:\n  mcc: {file: mcc.csv, default: other}\n  tiers: {file: tiers.json}\nfields:\n  - {target: m, source: $.m, type: any}\n  - {target: t, source: $.t, type: string}\n  - {target: c, expr: 'lookup(\"mcc\", m)'}\n  - {target: tier, expr: 'lookup(\"tiers\", t)'}\n";
        let options = options(Some(&dir));
        let (_, p) = plan::load_str_in(text, &options).unwrap();
        assert_eq!(
            apply(&p, json!({"m": 5411, "t": "G"})).ok_value().unwrap(),
            json!({"m": 5411, "t": "G", "c": "grocery", "tier": "gold"})
        );
        assert_eq!(
            apply(&p, json!({"m": 1, "t": "X"})).ok_value().unwrap(),
            json!({"m": 1, "t": "X", "c": "other"}),
            "no default: absent"
        );
        std::fs::write(dir.join("mcc.csv"), "mcc,category,extra\n5651,apparel,x\n").unwrap();
        let refused = plan::load_str_in(text, &options).unwrap_err();
        assert!(refused[0].message.contains("expected two columns"), "{refused:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A folder `outside/` holding a lookup file, and in it a mapping folder `mapping/` holding
    /// `codes.csv` and `sub/more.csv`; removed when dropped.
    struct LookupFolders {
        root: std::path::PathBuf,
    }

    impl LookupFolders {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let root = std::env::temp_dir().join(format!("lookup-folders-{}-{n}", std::process::id()));
            std::fs::create_dir_all(root.join("mapping/sub")).unwrap();
            std::fs::write(root.join("secret.csv"), "code,value\nS,outside\n").unwrap();
            std::fs::write(root.join("mapping/codes.csv"), "code,value\nA,alpha\n").unwrap();
            std::fs::write(root.join("mapping/sub/more.csv"), "code,value\nB,beta\n").unwrap();
            LookupFolders { root }
        }

        fn folder(&self) -> std::path::PathBuf {
            self.root.join("mapping")
        }

        /// Compiles a mapping in `mapping/` whose table `t` reads `file` (written as given, in
        /// single quotes on line 4, its text starting at column 29): the value of `lookup("t", "A")`.
        fn load(&self, file: &str) -> Result<Value, Vec<Diagnostic>> {
            let text = format!(
                "version: 1\nname: t\nlookups:\n  t: {{default: none, file: '{file}'}}\nfields:\n  - {{target: c, expr: 'lookup(\"t\", \"A\")'}}\n"
            );
            let options = options(Some(&self.folder()));
            let (_, p) = plan::load_str_in(&text, &options)?;
            Ok(apply(&p, json!({})).ok_value().unwrap()["c"].clone())
        }
    }

    impl Drop for LookupFolders {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    /// The one diagnostic of a refused `file:`, at the value's line and column.
    fn refusal(result: Result<Value, Vec<Diagnostic>>) -> String {
        let diagnostics = result.expect_err("the file is refused");
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!((diagnostics[0].pos.line, diagnostics[0].pos.col), (4, 29), "{diagnostics:?}");
        diagnostics[0].message.clone()
    }

    #[test]
    fn a_lookup_file_is_read_from_the_mapping_folder_and_below() {
        let folders = LookupFolders::new();
        assert_eq!(folders.load("codes.csv").unwrap(), "alpha");
        assert_eq!(folders.load("./codes.csv").unwrap(), "alpha");
        assert_eq!(folders.load("sub/more.csv").unwrap(), "none");
        assert_eq!(folders.load("sub/../codes.csv").unwrap(), "alpha", "`..` that stays inside");
        let message = refusal(folders.load("missing.csv"));
        assert!(message.contains("cannot read") && message.contains("missing.csv"), "{message}");
    }

    #[test]
    fn an_absolute_lookup_file_is_refused_at_its_line() {
        let folders = LookupFolders::new();
        for file in ["/etc/passwd".to_owned(), folders.folder().join("codes.csv").display().to_string()] {
            let message = refusal(folders.load(&file));
            assert!(
                message.starts_with("lookup table `t`:") && message.contains("absolute") && message.contains(&file),
                "{message}"
            );
        }
    }

    #[test]
    fn a_lookup_file_outside_the_mapping_folder_is_refused() {
        let folders = LookupFolders::new();
        for file in ["../secret.csv", "sub/../../secret.csv", "../mapping/codes.csv", ".."] {
            let message = refusal(folders.load(file));
            assert!(message.contains("leaves the mapping's folder") && message.contains(file), "{file}: {message}");
        }
        // Without a folder (a mapping given as text, or read from S3), the working directory is
        // the folder: `..` leaves it just the same.
        let text = "version: 1\nname: t\nlookups:\n  t: {file: ../secret.csv}\nfields:\n  - {target: c, expr: 'lookup(\"t\", \"A\")'}\n";
        let refused = load_str(text).unwrap_err();
        assert!(refused[0].message.contains("leaves the mapping's folder"), "{refused:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_the_mapping_folder_to_a_file_outside_is_refused() {
        let folders = LookupFolders::new();
        let folder = folders.folder();
        std::os::unix::fs::symlink(folders.root.join("secret.csv"), folder.join("link.csv")).unwrap();
        std::os::unix::fs::symlink(&folders.root, folder.join("up")).unwrap();
        std::os::unix::fs::symlink("codes.csv", folder.join("inside.csv")).unwrap();
        for file in ["link.csv", "up/secret.csv"] {
            let message = refusal(folders.load(file));
            assert!(message.contains("outside the mapping's folder") && message.contains(file), "{file}: {message}");
        }
        assert_eq!(folders.load("inside.csv").unwrap(), "alpha", "a link to a file inside the folder");
        // The folder itself may be reached through a link.
        let linked = folders.root.join("linked-mapping");
        std::os::unix::fs::symlink(&folder, &linked).unwrap();
        let text = "version: 1\nname: t\nlookups:\n  t: {file: codes.csv}\nfields:\n  - {target: c, expr: 'lookup(\"t\", \"A\")'}\n";
        let options = options(Some(&linked));
        assert!(plan::load_str_in(text, &options).is_ok());
    }
}
