//! The image a UEFI HTTP boot client gets under the signed chain.
//!
//! Shim fetches GRUB over HTTP from beside itself, but Debian's signed network GRUB has
//! no HTTP: started from an HTTP URL it sits at its prompt and asks for nothing (seen in
//! the lab). UEFI HTTP boot also takes an ISO URL, which the firmware loads as a RAM
//! disk and boots like a CD. So the client gets a small El Torito image holding shim
//! (`EFI/BOOT/BOOTX64.EFI`) and GRUB (`EFI/BOOT/grubx64.efi`) in its FAT boot image, and
//! a `grub/grub.cfg` that brings up the network card and turns to PortaPXE's TFTP for
//! the generated menu, which then boots as over PXE. The server's address is written
//! into that config, so it works beside any DHCP server (proxy mode). Made in memory
//! at start; pure: bytes in, bytes out.

use std::io::{Cursor, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;

use hadris_iso::boot::options::{BootEntryOptions, BootOptions, BootSectionOptions};
use hadris_iso::boot::{EmulationType, PlatformId};
use hadris_iso::read::PathSeparator;
use hadris_iso::write::options::{BaseIsoLevel, CreationFeatures, IsoFormatOptions};
use hadris_iso::write::{File as IsoFile, InputFiles, IsoImageWriter};

/// Where the image is served (root-relative); the firmware tells an ISO by its name.
pub const HTTP_BOOT_IMAGE: &str = "signed-http-boot.iso";

/// The FAT boot image's name inside the ISO.
const BOOT_IMAGE: &str = "efiboot.img";

/// What the FAT image needs beyond the two programs: FAT tables, directories, slack.
const FAT_OVERHEAD: usize = 1 << 20;

/// GRUB's first config, read from the ISO: bring up the card with DHCP (GRUB's own
/// request carries no PXE class; any DHCP server answers it), then read the menu
/// PortaPXE generates from its TFTP, as a PXE-booted GRUB does.
pub fn bootstrap_config(server: Ipv4Addr) -> String {
    format!(
        "# PortaPXE: UEFI HTTP boot through the signed chain. GRUB has no HTTP, so it\n\
         # reads its menu from PortaPXE's TFTP.\n\
         net_bootp\n\
         set portapxe_http_boot=1\n\
         export portapxe_http_boot\n\
         set root=(tftp,{server})\n\
         set prefix=($root)/grub\n\
         configfile $prefix/grub.cfg\n"
    )
}

/// Why the image could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpBootImageError(String);

/// The ISO image holding `shim` and `grub` for a server at `server`.
pub fn http_boot_image(shim: &[u8], grub: &[u8], server: Ipv4Addr) -> Result<Vec<u8>, HttpBootImageError> {
    let fail = |what: &str, err: &dyn std::fmt::Display| HttpBootImageError(format!("{what}: {err}"));
    let fat = fat_image(shim, grub).map_err(|err| fail("the FAT boot image", &err))?;
    let fat_len = fat.len();
    let files = InputFiles {
        path_separator: PathSeparator::ForwardSlash,
        files: vec![
            IsoFile::File { name: Arc::new(BOOT_IMAGE.to_owned()), contents: fat },
            IsoFile::Directory {
                name: Arc::new("grub".to_owned()),
                children: vec![IsoFile::File {
                    name: Arc::new("grub.cfg".to_owned()),
                    contents: bootstrap_config(server).into_bytes(),
                }],
            },
        ],
    };
    let entry = BootEntryOptions {
        boot_image_path: BOOT_IMAGE.to_owned(),
        // Not loaded by a BIOS: UEFI reads the whole FAT image as a partition.
        load_size: None,
        boot_info_table: false,
        grub2_boot_info: false,
        emulation: EmulationType::NoEmulation,
    };
    // The catalogue needs a default entry; the UEFI section is what firmware looks for.
    let boot = BootOptions {
        write_boot_catalog: true,
        default: entry.clone(),
        entries: vec![(BootSectionOptions { platform: PlatformId::UEFI }, entry)],
    };
    let options = IsoFormatOptions {
        volume_name: "PORTAPXE_SIGNED".to_owned(),
        system_id: None,
        volume_set_id: None,
        publisher_id: None,
        preparer_id: None,
        application_id: Some("PortaPXE".to_owned()),
        sector_size: 2048,
        path_separator: PathSeparator::ForwardSlash,
        features: CreationFeatures {
            filenames: BaseIsoLevel::Level1 { supports_lowercase: true, supports_rrip: false },
            long_filenames: true,
            joliet: None,
            rock_ridge: None,
            el_torito: Some(boot),
            hybrid_boot: None,
        },
        strict_charset: false,
    };
    let mut iso = Cursor::new(Vec::with_capacity(fat_len + FAT_OVERHEAD));
    IsoImageWriter::create(&mut iso, files, options).map_err(|err| fail("the ISO image", &err))?;
    Ok(iso.into_inner())
}

/// A FAT file system holding `EFI/BOOT/BOOTX64.EFI` (shim, which the firmware starts
/// from removable media) and `EFI/BOOT/grubx64.efi` (which shim loads from beside it).
fn fat_image(shim: &[u8], grub: &[u8]) -> std::io::Result<Vec<u8>> {
    // Whole 2048-byte sectors, so the ISO holds it without padding inside the partition.
    let len = (shim.len() + grub.len() + FAT_OVERHEAD).div_ceil(2048) * 2048;
    let mut disk = Cursor::new(vec![0u8; len]);
    fatfs::format_volume(&mut disk, fatfs::FormatVolumeOptions::new().volume_label(*b"PORTAPXE   "))?;
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new())?;
        {
            let boot = fs.root_dir().create_dir("EFI")?.create_dir("BOOT")?;
            for (name, bytes) in [("BOOTX64.EFI", shim), ("grubx64.efi", grub)] {
                let mut file = boot.create_file(name)?;
                file.truncate()?;
                file.write_all(bytes)?;
            }
        }
        fs.unmount()?;
    }
    Ok(disk.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_image_holds_shim_and_grub_in_its_boot_image_and_a_config_naming_the_server() {
        let shim = vec![0x5a; 300_000];
        let grub: Vec<u8> = (0..700_000u32).map(|i| i as u8).collect();
        let server = Ipv4Addr::new(10, 77, 0, 1);
        let image = http_boot_image(&shim, &grub, server).unwrap();

        // Read back with the same reader that reads ISOs for serving.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HTTP_BOOT_IMAGE);
        std::fs::write(&path, &image).unwrap();
        let (index, _) = crate::iso::read_index(&path).unwrap();
        let (_, config) = index.find("grub/grub.cfg").expect("grub/grub.cfg");
        let config = &image[config.offset as usize..(config.offset + config.len) as usize];
        assert_eq!(config, bootstrap_config(server).as_bytes());
        assert!(String::from_utf8_lossy(config).contains("set root=(tftp,10.77.0.1)"));
        let catalog = index.el_torito.as_ref().expect("an El Torito catalogue");
        assert!(catalog.uefi, "{catalog:?}");

        // The boot image is a FAT file system with both programs, byte for byte.
        let (_, fat) = index.find(BOOT_IMAGE).expect("the FAT boot image");
        let fat = image[fat.offset as usize..(fat.offset + fat.len) as usize].to_vec();
        let fs = fatfs::FileSystem::new(Cursor::new(fat), fatfs::FsOptions::new()).unwrap();
        for (name, expected) in [("EFI/BOOT/BOOTX64.EFI", &shim), ("EFI/BOOT/grubx64.efi", &grub)] {
            let mut read = Vec::new();
            fs.root_dir().open_file(name).unwrap().read_to_end(&mut read).unwrap();
            assert!(read == *expected, "{name}: {} bytes read, {} written", read.len(), expected.len());
        }
    }
}
