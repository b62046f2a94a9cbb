//! An ISO image's own boot menus (isolinux and GRUB), text from an untrusted image.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = portapxe_engine::iso::parse_syslinux(&text);
    let _ = portapxe_engine::iso::parse_grub(&text);
});
