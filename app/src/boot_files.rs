//! The iPXE loaders that came with this installation, found with no setting.
//!
//! Every package puts Debian's `undionly.kpxe`, `ipxe.efi` and `snponly.efi` in a folder at
//! a fixed place relative to the executable (installers/README.md): `boot/` beside it
//! (Windows, the portable Linux archive), `../share/portapxe/boot/` (the .deb, `install.sh`)
//! or `../Resources/boot/` (the macOS app bundle). The engine serves that folder behind the
//! boot root ([`Config::loader_dir`]), so a machine gets a loader even when the chosen
//! folder holds only kernels and ISOs, or when no folder is chosen yet.
//!
//! Owns only the search; reads the disk once, when the CLI or the GUI builds its config.

use std::path::{Path, PathBuf};

use portapxe_engine::config::Config;

/// Where the loaders are, relative to the folder that holds the executable, in the order
/// they are tried.
pub const LOADER_DIRS: [&str; 3] = ["boot", "../share/portapxe/boot", "../Resources/boot"];

/// The packaged loaders; a folder holding any of them is the loader folder.
pub const LOADER_FILES: [&str; 3] = ["undionly.kpxe", "ipxe.efi", "snponly.efi"];

/// The loader folder of the running executable (symbolic links to it resolved, so a
/// `/usr/local/bin/portapxe` link into `/opt/portapxe/` finds `/opt/portapxe/boot`).
pub fn packaged_loader_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    loader_dir_beside(&real_path(exe))
}

/// The loader folder for an executable at `exe`, if one of [`LOADER_DIRS`] holds a loader.
pub fn loader_dir_beside(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    LOADER_DIRS.iter().map(|relative| bin.join(relative)).find(|dir| holds_a_loader(dir)).map(real_path)
}

/// `path` with symbolic links and `..` resolved. Not on Windows: there it would become a
/// `\\?\` path, in which `..` is a name, and installs have no links to resolve.
fn real_path(path: PathBuf) -> PathBuf {
    if cfg!(unix) { path.canonicalize().unwrap_or(path) } else { path }
}

fn holds_a_loader(dir: &Path) -> bool {
    LOADER_FILES.iter().any(|file| dir.join(file).is_file())
}

/// Points `config` at this installation's loaders, unless it already names a loader folder.
pub fn apply(config: &mut Config) {
    if config.loader_dir.is_none() {
        config.loader_dir = packaged_loader_dir();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An install tree: `files` are created (with parents) under a temp folder.
    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        dir
    }

    fn found(dir: &tempfile::TempDir, exe: &str) -> Option<PathBuf> {
        loader_dir_beside(&dir.path().join(exe))
            .map(|found| found.strip_prefix(real_path(dir.path().to_path_buf())).unwrap().to_path_buf())
    }

    #[test]
    fn each_package_layout_is_found() {
        let windows = tree(&["PortaPXE/portapxe.exe", "PortaPXE/boot/ipxe.efi", "PortaPXE/boot/undionly.kpxe"]);
        assert_eq!(found(&windows, "PortaPXE/portapxe.exe"), Some("PortaPXE/boot".into()));
        let deb = tree(&["usr/bin/portapxe", "usr/share/portapxe/boot/snponly.efi"]);
        assert_eq!(found(&deb, "usr/bin/portapxe"), Some("usr/share/portapxe/boot".into()));
        let mac = tree(&["PortaPXE.app/Contents/MacOS/portapxe", "PortaPXE.app/Contents/Resources/boot/ipxe.efi"]);
        assert_eq!(
            found(&mac, "PortaPXE.app/Contents/MacOS/portapxe"),
            Some("PortaPXE.app/Contents/Resources/boot".into())
        );
    }

    #[test]
    fn a_folder_without_loaders_is_not_the_loader_folder() {
        // A development build: target/debug/boot is someone's unrelated folder.
        let dev = tree(&["target/debug/portapxe", "target/debug/boot/notes.txt", "target/share/portapxe/boot/x"]);
        assert_eq!(found(&dev, "target/debug/portapxe"), None);
        // The first layout holding a loader wins.
        let both = tree(&["bin/portapxe", "bin/boot/readme", "share/portapxe/boot/ipxe.efi"]);
        assert_eq!(found(&both, "bin/portapxe"), Some("share/portapxe/boot".into()));
    }

    #[test]
    fn a_loader_folder_already_set_is_kept() {
        let mut config = Config { loader_dir: Some("/mine".into()), ..Config::default() };
        apply(&mut config);
        assert_eq!(config.loader_dir, Some(PathBuf::from("/mine")));
    }
}
