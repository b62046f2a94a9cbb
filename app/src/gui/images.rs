//! Adding boot images: what a picked or dropped file is (kernel, initrd, ISO, iPXE
//! script, BIOS or UEFI loader), judged by its name, and where it goes in the
//! config. Pure: it never opens the file; validation later checks it exists.

use std::path::{Component, Path, PathBuf};

use portapxe_engine::config::{BootEntry, Config};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Kernel,
    Initrd,
    Iso,
    IpxeScript,
    BiosLoader,
    UefiX64Loader,
    UefiIa32Loader,
    UefiArm64Loader,
}

/// What a file is, by its name; `None` when the name says nothing we know.
pub fn classify(path: &Path) -> Option<ImageKind> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let kind = match ext.as_str() {
        "iso" => ImageKind::Iso,
        "ipxe" => ImageKind::IpxeScript,
        "kpxe" | "pxe" | "0" | "lkrn" | "com" => ImageKind::BiosLoader,
        "efi" if name.contains("arm64") || name.contains("aa64") => ImageKind::UefiArm64Loader,
        "efi" if name.contains("ia32") || name.contains("i386") => ImageKind::UefiIa32Loader,
        "efi" => ImageKind::UefiX64Loader,
        _ if name.starts_with("vmlinuz") || name.starts_with("bzimage") || name.starts_with("linux") => {
            ImageKind::Kernel
        }
        _ if name.starts_with("initrd")
            || name.starts_with("initramfs")
            || name.ends_with(".cpio")
            || name.ends_with(".cpio.gz")
            || name.ends_with(".cpio.xz") =>
        {
            ImageKind::Initrd
        }
        _ => return None,
    };
    Some(kind)
}

/// `file` as a path inside `root` (forward slashes, as TFTP and HTTP clients name it).
pub fn relative_to_root(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// What adding some files did, in words for the window.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AddReport {
    pub added: Vec<String>,
    pub problems: Vec<String>,
}

/// Adds `files` to `config`: a kernel starts a Linux entry that the initrds given
/// with it (or after it) join; loaders become the per-architecture defaults. With
/// no boot folder yet, the first file's folder becomes it.
pub fn add_files(config: &mut Config, files: &[PathBuf]) -> AddReport {
    let mut report = AddReport::default();
    if config.root.as_os_str().is_empty()
        && let Some(parent) = files.first().and_then(|f| f.parent())
    {
        config.root = parent.to_path_buf();
        report.added.push(format!("boot folder {}", parent.display()));
    }
    let mut classified: Vec<(ImageKind, String, &PathBuf)> = Vec::new();
    for file in files {
        let Some(kind) = classify(file) else {
            report.problems.push(format!(
                "{}: not a kind of file PortaPXE knows by its name (kernel vmlinuz*, initrd*, .iso, .ipxe, \
                 .kpxe/.pxe BIOS loader, .efi UEFI loader)",
                file.display()
            ));
            continue;
        };
        // An ISO is served from where it lies (mounted by its absolute path), never copied.
        let relative = match relative_to_root(&config.root, file) {
            None if kind == ImageKind::Iso && file.is_absolute() => Some(file.display().to_string()),
            relative => relative,
        };
        let Some(relative) = relative else {
            report.problems.push(format!(
                "{} is outside the boot folder {}: copy it there, or choose another boot folder",
                file.display(),
                config.root.display()
            ));
            continue;
        };
        classified.push((kind, relative, file));
    }
    // Kernels first, so initrds dropped together with one join it.
    classified.sort_by_key(|(kind, ..)| *kind != ImageKind::Kernel);
    let boot = &mut config.boot;
    for (kind, relative, file) in classified {
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| relative.clone());
        match kind {
            ImageKind::Kernel => {
                let name = unique_name(&boot.entries, &kernel_title(&relative));
                boot.entries.push(BootEntry::Linux {
                    name,
                    kernel: relative.clone(),
                    initrd: Vec::new(),
                    cmdline: String::new(),
                });
                report.added.push(format!("kernel {relative}"));
            }
            ImageKind::Initrd => {
                let last_linux = boot.entries.iter_mut().rev().find_map(|entry| match entry {
                    BootEntry::Linux { initrd, .. } => Some(initrd),
                    _ => None,
                });
                match last_linux {
                    Some(initrd) => {
                        initrd.push(relative.clone());
                        report.added.push(format!("initrd {relative}"));
                    }
                    None => report.problems.push(format!("{relative}: an initrd needs a kernel; add the kernel first")),
                }
            }
            ImageKind::Iso => {
                let name = unique_name(&boot.entries, &stem);
                boot.entries.push(BootEntry::Iso {
                    name,
                    image: relative.clone(),
                    append: String::new(),
                    loader: Default::default(),
                });
                report.added.push(format!("ISO {relative}"));
            }
            ImageKind::IpxeScript => {
                boot.ipxe_script = Some(relative.clone());
                report.added.push(format!("iPXE script {relative} (given to iPXE instead of the menu)"));
            }
            ImageKind::BiosLoader => {
                boot.bios_file = Some(relative.clone());
                report.added.push(format!("BIOS loader {relative}"));
            }
            ImageKind::UefiX64Loader => {
                boot.uefi_x64_file = Some(relative.clone());
                report.added.push(format!("UEFI x64 loader {relative}"));
            }
            ImageKind::UefiIa32Loader => {
                boot.uefi_ia32_file = Some(relative.clone());
                report.added.push(format!("UEFI IA32 loader {relative}"));
            }
            ImageKind::UefiArm64Loader => {
                boot.uefi_arm64_file = Some(relative.clone());
                report.added.push(format!("UEFI ARM64 loader {relative}"));
            }
        }
    }
    report
}

/// "debian/vmlinuz" → "Linux (debian)"; a kernel at the top → "Linux".
fn kernel_title(relative: &str) -> String {
    match relative.rsplit_once('/') {
        Some((folder, _)) => format!("Linux ({folder})"),
        None => "Linux".to_string(),
    }
}

fn unique_name(entries: &[BootEntry], wanted: &str) -> String {
    let taken = |name: &str| entries.iter().any(|e| e.name() == name);
    if !taken(wanted) {
        return wanted.to_string();
    }
    (2..).map(|n| format!("{wanted} {n}")).find(|name| !taken(name)).unwrap_or_else(|| wanted.to_string())
}

/// Moves entry `index` one place up (`up`) or down; out-of-range moves do nothing.
pub fn move_entry(entries: &mut [BootEntry], index: usize, up: bool) {
    let other = if up { index.checked_sub(1) } else { index.checked_add(1) };
    if let Some(other) = other.filter(|&o| o < entries.len())
        && index < entries.len()
    {
        entries.swap(index, other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_the_kind() {
        let kind = |name: &str| classify(Path::new(name));
        assert_eq!(kind("/srv/debian/vmlinuz-6.1.0-amd64"), Some(ImageKind::Kernel));
        assert_eq!(kind("initrd.img"), Some(ImageKind::Initrd));
        assert_eq!(kind("memtest.ISO"), Some(ImageKind::Iso));
        assert_eq!(kind("menu.ipxe"), Some(ImageKind::IpxeScript));
        assert_eq!(kind("undionly.kpxe"), Some(ImageKind::BiosLoader));
        assert_eq!(kind("ipxe.efi"), Some(ImageKind::UefiX64Loader));
        assert_eq!(kind("snp-arm64.efi"), Some(ImageKind::UefiArm64Loader));
        assert_eq!(kind("notes.txt"), None);
    }

    #[test]
    fn kernel_and_initrd_dropped_together_make_one_entry() {
        let mut config = Config { root: "/srv/pxe".into(), ..Config::default() };
        let report = add_files(
            &mut config,
            &[
                "/srv/pxe/debian/initrd.gz".into(),
                "/srv/pxe/debian/vmlinuz".into(),
                "/tmp/elsewhere.iso".into(),
                "/tmp/elsewhere/vmlinuz".into(),
            ],
        );
        assert_eq!(
            config.boot.entries,
            vec![
                BootEntry::Linux {
                    name: "Linux (debian)".into(),
                    kernel: "debian/vmlinuz".into(),
                    initrd: vec!["debian/initrd.gz".into()],
                    cmdline: String::new(),
                },
                // An ISO is served from where it lies: nothing to copy.
                BootEntry::Iso {
                    name: "elsewhere".into(),
                    image: "/tmp/elsewhere.iso".into(),
                    append: String::new(),
                    loader: Default::default()
                },
            ]
        );
        assert_eq!(report.problems.len(), 1, "only the kernel outside is refused: {report:?}");
        assert!(report.problems[0].contains("outside the boot folder"), "{report:?}");
    }

    #[test]
    fn first_file_sets_an_empty_boot_folder_and_names_stay_unique() {
        let mut config = Config::default();
        add_files(&mut config, &["/srv/isos/a.iso".into()]);
        add_files(&mut config, &["/srv/isos/a.iso".into()]);
        assert_eq!(config.root, PathBuf::from("/srv/isos"));
        let names: Vec<&str> = config.boot.entries.iter().map(BootEntry::name).collect();
        assert_eq!(names, ["a", "a 2"]);
        move_entry(&mut config.boot.entries, 1, true);
        assert_eq!(config.boot.entries[0].name(), "a 2");
        move_entry(&mut config.boot.entries, 0, true);
        assert_eq!(config.boot.entries[0].name(), "a 2");
    }
}
