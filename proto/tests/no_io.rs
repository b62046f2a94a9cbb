//! This crate is the sans-IO half of PortaPXE: the compiler keeps tokio out (it is not
//! a dependency), and this test keeps out what the standard library could still do —
//! files, sockets, threads, processes, the clock — and any dependency not chosen for
//! pure work. Time, bytes and settings come in as arguments; decisions go out as values.

use std::path::{Path, PathBuf};

/// Dependencies that do no I/O of their own. Adding one means deciding it is pure.
const PURE_DEPENDENCIES: &[&str] =
    &["dhcproto", "serde", "serde_json", "thiserror", "ipnet", "percent-encoding", "etherparse"];

/// What a pure function must not call: it would read the world instead of being told.
const IO_CALLS: &[&str] = &[
    "std::fs",
    "File::open",
    "File::create",
    "OpenOptions",
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "std::thread",
    "std::process",
    "std::env",
    "Instant::now",
    "SystemTime::now",
    "tokio",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names in `[dependencies]` (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.push(name.split('.').next().unwrap_or(name).to_owned());
            }
        }
    }
    names
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// A file's code outside its tests (tests may time themselves) and outside comments.
fn non_test_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_crate_depends_only_on_pure_crates() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let found = dependencies(&manifest);
    assert!(found.len() >= 3, "read too few dependencies ({found:?}): the reader is broken");
    let impure: Vec<_> = found.iter().filter(|name| !PURE_DEPENDENCIES.contains(&name.as_str())).collect();
    assert!(impure.is_empty(), "portapxe-proto must stay sans-IO; move I/O to the engine: {impure:?}");
}

#[test]
fn no_function_here_does_io() {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    assert!(files.len() > 20, "found too few source files ({}): the walk is broken", files.len());
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let code = non_test_code(&std::fs::read_to_string(file).unwrap());
        for call in IO_CALLS.iter().filter(|call| code.contains(*call)) {
            found.push(format!("{} uses {call}", file.strip_prefix(crate_dir()).unwrap_or(file).display()));
        }
    }
    assert!(found.is_empty(), "portapxe-proto must stay sans-IO; pass the value in instead:\n{}", found.join("\n"));
}

#[test]
fn the_checks_see_what_they_look_for() {
    let manifest = "[package]\nname = \"x\"\n[dependencies]\ntokio.workspace = true\nserde = \"1\"\n[dev-dependencies]\nfastrand = \"2\"\n";
    assert_eq!(dependencies(manifest), ["tokio", "serde"]);
    let code = non_test_code("use std::fs;\n// std::thread in a comment\n#[cfg(test)]\nmod tests { Instant::now(); }");
    assert!(code.contains("std::fs") && !code.contains("std::thread") && !code.contains("Instant::now"));
}
