//! An ISO entry for tests, here and in the engine (feature `fixtures`).

use crate::config::BootEntry;

use super::{Family, IsoBoot, IsoPlan, IsoPlans, OwnLoader};

/// "Ubuntu", image `u.iso`, a casper plan (`casper/vmlinuz` + `casper/initrd`, `boot=casper`)
/// with the image's own shim and GRUB.
pub fn own_chain_iso() -> (BootEntry, IsoPlans) {
    let entry = BootEntry::Iso {
        name: "Ubuntu".into(),
        image: "u.iso".into(),
        append: String::new(),
        loader: Default::default(),
    };
    let mut isos = IsoPlans::default();
    isos.insert(
        "u.iso".into(),
        IsoPlan {
            family: Family::Casper,
            boot: IsoBoot::Linux {
                kernel: "u.iso/casper/vmlinuz".into(),
                initrds: vec!["u.iso/casper/initrd".into()],
                args: "boot=casper".into(),
            },
            own_loader: Some(OwnLoader {
                shim: "u.iso/EFI/BOOT/BOOTX64.EFI".into(),
                grub: "u.iso/EFI/BOOT/grubx64.efi".into(),
            }),
        },
    );
    (entry, isos)
}
