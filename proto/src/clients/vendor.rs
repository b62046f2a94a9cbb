//! Who made a network card, from its MAC address and the IEEE registry.
//!
//! The registry is compiled in as sorted integer tables by `proto/build.rs`
//! (see there why not the `oui-data` map itself).

use crate::mac::MacAddr;

mod table {
    include!(concat!(env!("OUT_DIR"), "/oui_tables.rs"));
}

static NAMES: &str = include_str!(concat!(env!("OUT_DIR"), "/oui_names.txt"));

/// The organisation the IEEE assigned this MAC's prefix to; the longest
/// registered prefix wins (36-bit blocks inside a 24-bit one, for example).
pub fn vendor(mac: MacAddr) -> Option<&'static str> {
    let bits = mac.0.iter().fold(0u64, |acc, byte| acc << 8 | u64::from(*byte));
    [(&table::OUI_36[..], 36), (&table::OUI_28[..], 28), (&table::OUI_24[..], 24)].into_iter().find_map(
        |(table, prefix_bits)| {
            let key = bits >> (48 - prefix_bits);
            let at = table.binary_search_by_key(&key, |entry| entry.0).ok()?;
            let (_, offset, len) = table[at];
            NAMES.get(offset as usize..offset as usize + len as usize)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_vendors_of_every_prefix_length() {
        assert_eq!(vendor(MacAddr([0x00, 0x00, 0x00, 0x12, 0x34, 0x56])), Some("XEROX CORPORATION"));
        assert_eq!(vendor(MacAddr([0x50, 0xa6, 0xd8, 0, 0, 1])), Some("Apple, Inc."));
        assert_eq!(vendor(MacAddr([0xb8, 0x4c, 0x87, 0x40, 0, 0])), Some("Blum Novotest GmbH"));
        assert_eq!(vendor(MacAddr([0x8c, 0x1f, 0x64, 0xaf, 0xa0, 0])), Some("DATA ELECTRONIC DEVICES, INC"));
        assert_eq!(vendor(MacAddr([0x40, 0xd8, 0x55, 0x0d, 0x70, 0])), Some("Avant Technologies"));
        assert_eq!(vendor(MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])), None, "QEMU's locally administered prefix");
    }

    #[test]
    fn agrees_with_the_registry_crate() {
        for n in 0..5000u32 {
            let mac = MacAddr([(n >> 4) as u8 & 0xfc, (n * 37) as u8, (n * 101) as u8, (n * 13) as u8, 0x10, 0x20]);
            let expected = oui_data::lookup(&mac.to_string()).map(|record| record.organization().trim());
            assert_eq!(vendor(mac), expected, "{mac}");
        }
    }
}
