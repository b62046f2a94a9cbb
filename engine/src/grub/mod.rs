//! GRUB for the signed chain: the configuration text is pure (`portapxe_proto::grub`,
//! re-exported here); `http_boot` makes the El Torito image UEFI HTTP boot clients get
//! (shim and GRUB in a FAT boot image, with `fatfs` and `hadris-iso`).

mod http_boot;

pub use http_boot::{HTTP_BOOT_IMAGE, HttpBootImageError, http_boot_image};
pub use portapxe_proto::grub::*;
