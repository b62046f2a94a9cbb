//! An ISO image file: its index (through hadris-iso), El Torito catalogue, menus, and
//! the family and plan found from them. The image is written to a file first, because
//! the reader reads files, as serving does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portapxe_engine::iso::{Site, plan, read_index};

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("portapxe-fuzz-{}.iso", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok((index, stamp)) = read_index(&path) {
        for name in index.paths() {
            let (_, member) = index.find(name).expect("a listed path is found");
            assert!(member.offset + member.len <= stamp.len, "{name} lies inside the image");
        }
        let _ = plan(&index, Site { mount: "iso/x.iso", base_url: "http://10.0.0.1", append: "" }).to_string();
    }
});
