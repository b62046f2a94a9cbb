//! The engine's files import each other in one direction only: this test reads every
//! source file, resolves each `crate::`/`super::`/`self::` path to the file that
//! defines what it names (through the `pub use` re-exports of `mod.rs` and `lib.rs`),
//! and fails on a cycle, naming its files and what ties them.
//!
//! Hand-written rather than built on `syn`: paths are all it needs, and a plain scan
//! of the text keeps this test free of a parser build. Comments and string literals
//! are blanked first, so a path in a doc comment or a message is not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod common {
    pub mod source_scan;
}
use common::source_scan::{blank_comments_and_strings, is_ident, rust_files};

type Module = Vec<String>;

/// One source file: its module path and its text with comments and strings blanked.
struct Source {
    module: Module,
    code: String,
    /// What it re-exports: name → the child module it comes from.
    exports: BTreeMap<String, String>,
}

fn sources(root: &Path) -> Vec<Source> {
    rust_files(root)
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(root).unwrap();
            let mut module: Module =
                relative.with_extension("").iter().map(|part| part.to_string_lossy().into_owned()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let code = blank_comments_and_strings(&std::fs::read_to_string(&path).unwrap());
            let exports = reexports(&code);
            Source { module, code, exports }
        })
        .collect()
}

/// Every path starting at `crate::`, `super::` or `self::` in `code`, as segment lists
/// (a use tree's braces expanded: `crate::a::{b, c::D}` gives `a::b` and `a::c::D`).
fn paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .find(|head| {
                chars[i..].starts_with(&head.chars().collect::<Vec<_>>()) && !is_ident(chars.get(i.wrapping_sub(1)))
            })
            .filter(|_| i == 0 || chars[i - 1] != ':');
        if let Some(head) = starts {
            let first = head.trim_end_matches(':').to_owned();
            let mut at = i + head.len();
            tree(&chars, &mut at, vec![first], &mut found);
            i = at.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// Reads a use tree at `at` after `prefix::`.
fn tree(chars: &[char], at: &mut usize, prefix: Vec<String>, found: &mut Vec<Vec<String>>) {
    skip_space(chars, at);
    if chars.get(*at) == Some(&'{') {
        *at += 1;
        loop {
            skip_space(chars, at);
            match chars.get(*at) {
                Some('}') => {
                    *at += 1;
                    return;
                }
                Some(',') => *at += 1,
                None => return,
                _ => {
                    let before = *at;
                    tree(chars, at, prefix.clone(), found);
                    if *at == before {
                        *at += 1;
                    }
                }
            }
        }
    }
    let start = *at;
    while is_ident(chars.get(*at)) || chars.get(*at) == Some(&'*') {
        *at += 1;
    }
    let segment: String = chars[start..*at].iter().collect();
    if segment.is_empty() {
        found.push(prefix);
        return;
    }
    let mut path = prefix;
    if segment != "self" && segment != "*" {
        path.push(segment);
    }
    if chars.get(*at) == Some(&':') && chars.get(*at + 1) == Some(&':') {
        *at += 2;
        tree(chars, at, path, found);
    } else {
        found.push(path);
    }
}

fn skip_space(chars: &[char], at: &mut usize) {
    while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
        *at += 1;
    }
}

/// What a module file re-exports: name → the child module it comes from.
fn reexports(code: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in code.split(';') {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("pub use ").or_else(|| line.strip_prefix("pub(crate) use ")) else {
            continue;
        };
        // `pub use child::{A, B}` / `pub use self::child::A` / `pub use child::A as B`.
        let rest = rest.trim_start_matches("self::");
        let Some((child, items)) = rest.split_once("::") else { continue };
        if child == "crate" || child == "super" {
            continue;
        }
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item).rsplit("::").next().unwrap_or(item).trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), child.trim().to_owned());
            }
        }
    }
    names
}

/// The code outside inline `mod NAME { … }` blocks, and the code inside them (nested
/// ones included). Braces count exactly: comments and strings are blanked already.
fn split_inline_modules(code: &str) -> (String, String) {
    let (mut outer, mut inner) = (String::new(), String::new());
    let mut rest = code;
    while let Some(start) = inline_module_start(rest) {
        outer.push_str(&rest[..start]);
        let mut depth = 0usize;
        let mut end = rest.len();
        for (offset, c) in rest[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => {
                    end = start + offset + 1;
                    break;
                }
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        inner.push_str(&rest[start..end]);
        rest = &rest[end..];
    }
    outer.push_str(rest);
    (outer, inner)
}

/// Where the first `mod NAME {` in `code` starts.
fn inline_module_start(code: &str) -> Option<usize> {
    let mut search = 0;
    while let Some(found) = code[search..].find("mod ") {
        let at = search + found;
        let rest = &code[at + 4..];
        let name_len = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
        let after = rest[name_len..].trim_start();
        let starts_word = at == 0 || !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if starts_word && name_len > 0 && after.starts_with('{') {
            return Some(at);
        }
        search = at + 4;
    }
    None
}

/// The file (by module path) a path leads to, from a module whose path is `base`
/// without its last segment.
fn resolve(path: &[String], base: &Module, modules: &BTreeMap<Module, &Source>) -> Option<Module> {
    let mut current: Module = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") | Some("super") => {
            let mut parent = base.clone();
            parent.pop();
            if path[0] == "super" {
                parent.pop();
            }
            parent
        }
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().map(String::as_str) == Some("super") {
        current.pop();
        rest = &rest[1..];
    }
    for segment in rest {
        let mut child = current.clone();
        child.push(segment.clone());
        if modules.contains_key(&child) {
            current = child;
            continue;
        }
        // Not a module: an item of `current`, maybe re-exported from one of its children.
        let source = modules.get(&current)?;
        return Some(match source.exports.get(segment) {
            Some(from_child) => {
                let mut child = current.clone();
                child.push(from_child.clone());
                if modules.contains_key(&child) { child } else { current }
            }
            None => current,
        });
    }
    Some(current)
}

#[test]
fn the_engines_files_import_each_other_without_a_cycle() {
    assert_no_cycle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), "engine");
}

/// The pure crate's files too (the engine depends on it, never the other way: cargo sees to that).
#[test]
fn the_proto_crates_files_import_each_other_without_a_cycle() {
    assert_no_cycle(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/src"), "proto crate");
}

fn assert_no_cycle(root: &Path, what: &str) {
    let sources = sources(root);
    let modules: BTreeMap<Module, &Source> = sources.iter().map(|s| (s.module.clone(), s)).collect();
    let mut edges: BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>> = BTreeMap::new();
    for source in &sources {
        // An inline module (`mod tests { use super::*; }`, last in the file by habit) is
        // a module of its own, one level deeper: there `super::` names the file itself.
        let (outer, inner) = split_inline_modules(&source.code);
        let mut inline = source.module.clone();
        inline.push("inline".into());
        for (code, from) in [(outer.as_str(), &source.module), (inner.as_str(), &inline)] {
            // `self::` is the module itself (`a::b` in `a/b.rs` and `a/b/mod.rs`), `super::` its parent.
            let mut base = from.clone();
            base.push("self".into());
            for path in paths(code) {
                let Some(target) = resolve(&path, &base, &modules) else { continue };
                if &target == from {
                    continue;
                }
                let named = path.last().cloned().unwrap_or_default();
                edges.entry(from.clone()).or_default().entry(target).or_default().insert(named);
            }
        }
    }
    let cycles = find_cycles(&edges);
    let name = |module: &Module| {
        if module.is_empty() { "lib.rs".to_owned() } else { module.join("::") }
    };
    let described: Vec<String> = cycles
        .iter()
        .map(|cycle| {
            let mut text = cycle.iter().map(name).collect::<Vec<_>>().join(" → ");
            for pair in cycle.windows(2) {
                let names = &edges[&pair[0]][&pair[1]];
                text.push_str(&format!("\n    {} takes {:?} from {}", name(&pair[0]), names, name(&pair[1])));
            }
            text
        })
        .collect();
    assert!(described.is_empty(), "the {what}'s files import in a circle:\n  {}", described.join("\n  "));
    assert!(edges.len() > 20, "the scan of the {what} found too few imports ({}): the checker is broken", edges.len());
}

/// Each strongly connected group of files, as one cycle through it (Tarjan's algorithm
/// would give the groups; a search from each file for a way back is plenty at this size).
fn find_cycles(edges: &BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>>) -> Vec<Vec<Module>> {
    let mut cycles: Vec<Vec<Module>> = Vec::new();
    let mut seen: BTreeSet<BTreeSet<Module>> = BTreeSet::new();
    for start in edges.keys() {
        // Breadth-first from `start` back to `start`: the shortest cycle through it.
        let mut parent: BTreeMap<Module, Module> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        let mut back = None;
        while let Some(node) = queue.pop_front() {
            for next in edges.get(&node).into_iter().flat_map(BTreeMap::keys) {
                if next == start {
                    back = Some(node.clone());
                    break;
                }
                if !parent.contains_key(next) {
                    parent.insert(next.clone(), node.clone());
                    queue.push_back(next.clone());
                }
            }
            if back.is_some() {
                break;
            }
        }
        let Some(mut node) = back else { continue };
        let mut cycle = vec![start.clone()];
        while &node != start {
            cycle.push(node.clone());
            node = parent[&node].clone();
        }
        cycle.push(start.clone());
        let last = cycle.len() - 1;
        cycle[1..last].reverse();
        let members: BTreeSet<Module> = cycle.iter().cloned().collect();
        if seen.insert(members) {
            cycles.push(cycle);
        }
    }
    cycles
}

#[test]
fn the_scan_reads_use_trees_and_skips_comments() {
    let code = blank_comments_and_strings(
        "use crate::a::{b::C, d};\n// use crate::x::Y;\nlet s = \"crate::z::W\";\nsuper::e::f();\n",
    );
    let found = paths(&code);
    let want: Vec<Vec<String>> = [vec!["crate", "a", "b", "C"], vec!["crate", "a", "d"], vec!["super", "e", "f"]]
        .iter()
        .map(|p| p.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(found, want);
    let (outer, inner) = split_inline_modules("use crate::a::B;\nmod tests { fn f() { g(); } }\nuse crate::c::D;\n");
    assert_eq!(paths(&outer).len(), 2, "{outer}");
    assert!(inner.starts_with("mod tests {") && inner.ends_with("} }"), "{inner}");
    let lifetimes = blank_comments_and_strings("fn f<'a>(x: &'a str) -> char { 'x' } // crate::q");
    assert!(lifetimes.contains("<'a>") && !lifetimes.contains("'x'") && !lifetimes.contains("crate::q"));
}
