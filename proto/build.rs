//! Turns the IEEE OUI registry (from the `oui-data` crate) into plain sorted
//! integer tables plus one string blob, for `clients::vendor`.
//!
//! Used directly, `oui-data`'s map of 59,000 records holds ~170,000 pointers that
//! the loader patches at every start (222,698 relocations, ~8 MB of resident
//! memory before any client is seen). Integers need no patching: the table stays
//! in the file and only the pages a lookup touches are read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let mut names = String::new();
    let mut offsets: HashMap<&str, (u32, u16)> = HashMap::new();
    // Prefix lengths in hex digits: MA-L/CID/IAB-parent 6, MA-M 7, MA-S/IAB 9.
    let mut tables: [Vec<(u64, u32, u16)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for (prefix, record) in oui_data::OUI_ENTRIES.entries() {
        let table = match prefix.len() {
            6 => 0,
            7 => 1,
            9 => 2,
            _ => continue,
        };
        let Ok(key) = u64::from_str_radix(prefix, 16) else { continue };
        let name = record.organization().trim();
        let (offset, len) = *offsets.entry(name).or_insert_with(|| {
            let at = (names.len() as u32, name.len().min(u16::MAX as usize) as u16);
            names.push_str(&name[..at.1 as usize]);
            at
        });
        tables[table].push((key, offset, len));
    }
    let mut code = String::new();
    for (table, name) in tables.iter_mut().zip(["OUI_24", "OUI_28", "OUI_36"]) {
        table.sort_unstable();
        writeln!(code, "pub static {name}: [(u64, u32, u16); {}] = [", table.len()).unwrap();
        for (key, offset, len) in table.iter() {
            writeln!(code, "({key:#x}, {offset}, {len}),").unwrap();
        }
        code.push_str("];\n");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("oui_names.txt"), names).expect("write OUI names");
    std::fs::write(out.join("oui_tables.rs"), code).expect("write OUI tables");
    println!("cargo:rerun-if-changed=build.rs");
}
