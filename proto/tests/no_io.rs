//! This crate is the sans-IO half of PortaPXE: the compiler keeps tokio out (it is not
//! a dependency), and this test keeps out what the standard library could still do —
//! files, sockets, threads, processes, the clock — and any dependency not chosen for
//! pure work. Time, bytes and settings come in as arguments; decisions go out as values.

use std::path::PathBuf;

// Shared with the engine's module-cycle test: the file walk and the blanking of comments
// and literals.
#[path = "../../engine/tests/common/source_scan.rs"]
mod source_scan;
use source_scan::{blank_comments_and_strings, rust_files};

/// Dependencies that do no I/O of their own. Adding one means deciding it is pure.
const PURE_DEPENDENCIES: &[&str] = &[
    "dhcproto",
    "serde",
    "serde_json",
    "thiserror",
    "ipnet",
    "percent-encoding",
    "etherparse",
    "http",
    "httpdate",
    "bytes",
];

/// What a pure function must not call: it would read the world instead of being told.
const IO_CALLS: &[&str] = &[
    // Files, and paths asked about the disk.
    "std::fs",
    "{fs",
    " fs::",
    "File::open",
    "File::create",
    "OpenOptions",
    ".is_file()",
    ".is_dir()",
    ".exists()",
    ".try_exists(",
    ".metadata()",
    ".symlink_metadata()",
    ".canonicalize()",
    ".read_dir(",
    ".read_link(",
    // Sockets and name lookups.
    "UdpSocket",
    "TcpStream",
    "TcpListener",
    "to_socket_addrs",
    // Threads, processes, the environment, the terminal.
    "std::thread",
    "std::process",
    "std::env",
    "println!",
    "eprintln!",
    "stdout()",
    "stderr()",
    "stdin()",
    // The clock.
    "Instant::now",
    "SystemTime::now",
    ".elapsed()",
    "tokio",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names of what the library depends on: `[dependencies]` and the per-target tables
/// (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let manifest: toml::Table = manifest.parse().expect("Cargo.toml is TOML");
    let targets = manifest.get("target").and_then(toml::Value::as_table);
    let tables = std::iter::once(manifest.get("dependencies"))
        .chain(targets.into_iter().flat_map(|targets| targets.values().map(|target| target.get("dependencies"))));
    let mut names: Vec<String> =
        tables.flatten().filter_map(toml::Value::as_table).flat_map(|table| table.keys().cloned()).collect();
    names.sort();
    names
}

/// A file's code outside its test module (tests may time themselves and make files),
/// with comments and literals blanked (a message may name a call). Only a
/// `#[cfg(test)] mod NAME {` ends the scan: a test-only function in the middle of a
/// file does not hide the code after it.
fn non_test_code(text: &str) -> String {
    let blanked = blank_comments_and_strings(text);
    let mut code = Vec::new();
    let mut lines = blanked.lines().peekable();
    while let Some(line) = lines.next() {
        let next = lines.peek().map(|next| next.trim_start()).unwrap_or_default();
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.trim_end().ends_with('{') {
            break;
        }
        code.push(line);
    }
    code.join("\n")
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
    let files = rust_files(&crate_dir().join("src"));
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
    let manifest = "[package]\nname = \"x\"\n[dependencies]\ntokio.workspace = true\nserde = \"1\"\n\
        [dev-dependencies]\nfastrand = \"2\"\n[build-dependencies]\ncc = \"1\"\n\
        [target.'cfg(unix)'.dependencies]\nnix = \"0.30\"\n[dependencies.mio]\nversion = \"1\"\n";
    assert_eq!(dependencies(manifest), ["mio", "nix", "serde", "tokio"]);
    let code = non_test_code(
        "use std::fs;\n// std::thread in a comment\nlet s = \"println!\";\n#[cfg(test)]\nfn helper() {}\n\
         fn after() { p.is_file(); }\n#[cfg(test)]\nmod tests {\n Instant::now();\n}",
    );
    assert!(code.contains("std::fs") && code.contains("is_file"), "code after a test-only function is read: {code}");
    assert!(!code.contains("std::thread") && !code.contains("println!"), "comments and strings are blanked: {code}");
    assert!(!code.contains("Instant::now"), "the test module is left out: {code}");
}
