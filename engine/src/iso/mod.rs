//! ISO images served in place: a file inside an image is a byte span of the image
//! file, served over HTTP (ranges, sendfile) and TFTP straight from it; nothing is
//! extracted or written beside it.
//!
//! Owns: reading an image's index once (`image`, through `hadris-iso`). The image's
//! own boot menus and its family with the recipe that boots it are pure, in
//! `portapxe_proto::iso`.
//! Must not touch: sockets; what is served where is [`crate::served`]'s.

mod image;

pub use image::{ImageStamp, IsoError, read_index};
pub use portapxe_proto::iso::{
    ElTorito, Emulation, FLOPPY_IMAGE, Family, IsoBoot, IsoIndex, IsoPlan, IsoPlans, IsoRefusal, Member, MenuBoot,
    OwnLoader, SECTOR, Site, parse_grub, parse_syslinux, plan,
};

/// Test images made with xorriso (Rock Ridge and Joliet), as distributions make theirs.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    /// An ISO at `dir/name` holding `files` (path inside, content).
    pub fn image(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let tree = dir.join(format!("{name}.tree"));
        for (path, content) in files {
            let path = tree.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let iso = dir.join(name);
        let status = std::process::Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-r", "-J", "-o"])
            .arg(&iso)
            .arg(&tree)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("xorriso (apt-get install xorriso)");
        assert!(status.success(), "xorriso failed");
        std::fs::remove_dir_all(&tree).unwrap();
        iso
    }

    /// `image` mounted at `mount`.
    pub fn mounted(iso: &Path, mount: &str) -> crate::served::MountedImage {
        let (index, stamp) = super::read_index(iso).unwrap();
        crate::served::MountedImage {
            mount: mount.into(),
            file: iso.to_path_buf(),
            stamp,
            index: std::sync::Arc::new(index),
        }
    }
}
