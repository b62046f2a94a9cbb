//! The config's ISO entries, each image read once when serving starts: mounted in the
//! served namespace at a path of its own, and planned (its family and what boots).
//!
//! Owns: where an image is mounted (its root-relative path when it lies in the boot
//! root, else `iso/<file name>`: an ISO picked from anywhere is served where it lies,
//! never copied) and the link from an entry to its plan. Blocking (reads the images).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{BootEntry, Config, IsoLoader};
use crate::iso::{IsoBoot, IsoError, IsoPlan, IsoPlans, Site, plan, read_index};
use crate::served::{MountedImage, Served, ServedItem};
use crate::signature::{KernelRefusal, SecureBootProblem};

/// Where images picked from outside the boot root are mounted.
pub const OUTSIDE_ROOT_FOLDER: &str = "iso";

/// Every ISO entry's image, mounted, and what boots each.
#[derive(Debug, Default)]
pub struct IsoEntries {
    pub mounts: Vec<MountedImage>,
    pub plans: IsoPlans,
}

/// Reads the image of every ISO entry of `config`, for a server whose files are at
/// `base_url` (e.g. `http://10.0.0.1`). Blocking.
pub fn read_all(config: &Config, base_url: &str) -> Result<IsoEntries, IsoError> {
    let mut entries = IsoEntries::default();
    for entry in &config.boot.entries {
        let BootEntry::Iso { image, append, loader, .. } = entry else { continue };
        if entries.plans.get(image).is_some() {
            continue;
        }
        let taken: Vec<&str> = entries.mounts.iter().map(|mounted| mounted.mount.as_str()).collect();
        let mount = mount_path(image, &taken);
        let (mounted, mut planned) = read_one(config, image, append, base_url, mount)?;
        if !uses_own_loader(&mounted, &planned, *loader) {
            planned.own_loader = None;
        }
        entries.mounts.push(mounted);
        entries.plans.insert(image.clone(), planned);
    }
    Ok(entries)
}

/// One image, mounted at `mount`, and what its layout offers to boot (an own signed chain
/// included: [`uses_own_loader`] decides whether it is used). Blocking.
pub fn read_one(
    config: &Config,
    image: &str,
    append: &str,
    base_url: &str,
    mount: String,
) -> Result<(MountedImage, IsoPlan), IsoError> {
    let file = image_file(config, image);
    let (index, stamp) = read_index(&file)?;
    for skipped in &index.skipped {
        tracing::warn!("ISO image {}: not served: {skipped}", file.display());
    }
    let planned = plan(&index, Site { mount: &mount, base_url, append });
    Ok((MountedImage { mount, file, stamp, index: Arc::new(index) }, planned))
}

/// Whether x64 UEFI machines boot `planned`'s kernel through its image's own signed
/// chain: always when the entry says so (`loader = "own"`) and the image has one;
/// otherwise only when Debian's shim would refuse the kernel while the image's shim is
/// signed for the firmware and its vendor certificate names the kernel's signer (an
/// Ubuntu image: Canonical's kernel, Canonical's shim). Predicted from names, like
/// `signature`; the firmware and shim decide at boot. Blocking (reads the image).
pub fn uses_own_loader(mounted: &MountedImage, planned: &IsoPlan, loader: IsoLoader) -> bool {
    let (Some(own), IsoBoot::Linux { kernel, .. }) = (&planned.own_loader, &planned.boot) else { return false };
    match loader {
        IsoLoader::Own => return true,
        IsoLoader::Portapxe => return false,
        IsoLoader::Auto => {}
    }
    let served = Served::default().with_images([mounted.clone()]);
    let reader = |path: &str| match served.lookup(path) {
        Some(ServedItem::InImage(span)) => span.reader().ok(),
        _ => None,
    };
    let signature = |path: &str| reader(path).and_then(|file| crate::signature::read_from(file).ok());
    let Some(kernel) = signature(kernel) else { return false };
    if kernel.trusted_by_debian_shim() {
        return false;
    }
    let shim_trusted = signature(&own.shim).is_some_and(|shim| shim.trusted_by_firmware());
    let vendor = reader(&own.shim).and_then(|file| crate::signature::shim_vendor_certificate(file).ok().flatten());
    shim_trusted && vendor.is_some_and(|vendor| kernel.signed_under(&vendor))
}

/// The image file an entry names: absolute, or relative to the boot root.
pub fn image_file(config: &Config, image: &str) -> PathBuf {
    let path = Path::new(image);
    if path.is_absolute() { path.to_path_buf() } else { config.serving_root().join(image) }
}

/// Where an image is mounted: its own root-relative path (`/` separators), or
/// `iso/<file name>` for one outside the root, made unique against `taken`.
pub fn mount_path(image: &str, taken: &[&str]) -> String {
    if !Path::new(image).is_absolute()
        && let Ok(relative) = crate::paths::normalise(image)
    {
        return relative.as_str().to_owned();
    }
    let name = Path::new(image).file_name().and_then(|name| name.to_str()).unwrap_or("image.iso");
    let first = format!("{OUTSIDE_ROOT_FOLDER}/{name}");
    if !taken.contains(&first.as_str()) {
        return first;
    }
    (2..)
        .map(|n| format!("{OUTSIDE_ROOT_FOLDER}/{n}/{name}"))
        .find(|path| !taken.contains(&path.as_str()))
        .unwrap_or(first)
}

/// Why shim would refuse the kernel an ISO plan boots (read from its signature inside
/// the image), or `None`: it accepts it, or the plan boots no kernel. Blocking.
pub fn kernel_refusal(served: &Served, planned: &IsoPlan) -> Option<KernelRefusal> {
    let IsoBoot::Linux { kernel, .. } = &planned.boot else { return None };
    let Some(ServedItem::InImage(span)) = served.lookup(kernel) else { return None };
    let signature = crate::signature::read_from(span.reader().ok()?).ok()?;
    crate::signature::refusal(&signature)
}

/// Why an ISO plan cannot boot with Secure Boot on (for the Boot images list and the log).
pub fn secure_boot_problem(
    planned: Option<&IsoPlan>,
    kernel_refusal: Option<KernelRefusal>,
) -> Option<SecureBootProblem> {
    if planned.is_some_and(|planned| planned.own_loader.is_some()) {
        // Its own shim checks its kernel (see `uses_own_loader`).
        return None;
    }
    match planned.map(|planned| &planned.boot) {
        Some(IsoBoot::Linux { .. }) => kernel_refusal.map(|refusal| SecureBootProblem::Kernel { refusal }),
        Some(IsoBoot::Programs { .. }) => Some(SecureBootProblem::UnsignedProgram),
        Some(IsoBoot::Refused(_)) => None,
        Some(IsoBoot::Memdisk { .. }) => Some(SecureBootProblem::BiosOnly),
        Some(IsoBoot::Sanboot) | None => Some(SecureBootProblem::Sanboot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_in_the_root_keep_their_path_and_others_get_one() {
        assert_eq!(mount_path("isos/debian live.iso", &[]), "isos/debian live.iso");
        assert_eq!(mount_path("\\isos\\x.iso", &[]), "isos/x.iso");
        assert_eq!(mount_path("/home/ann/Downloads/x.iso", &[]), "iso/x.iso");
        assert_eq!(mount_path("/media/stick/x.iso", &["iso/x.iso"]), "iso/2/x.iso");
        assert_eq!(mount_path("/media/other/x.iso", &["iso/x.iso", "iso/2/x.iso"]), "iso/3/x.iso");
    }

    fn workspace_file(relative: &str) -> std::path::PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
        assert!(path.is_file(), "{} is missing: run .ci/install-deps.sh (lab guest, signed loaders)", path.display());
        path
    }

    fn run(program: &str, args: &[&std::ffi::OsStr]) {
        let output = std::process::Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} ({e}): apt-get install sbsigntool openssl"));
        assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// A vendor's CA (self-made, named `name`): its key, and its certificate in PEM and DER.
    fn vendor_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
        let (key, pem, der) = (dir.join("vendor.key"), dir.join("vendor.crt"), dir.join("vendor.der"));
        let subject = format!("/CN={name}");
        let mut args: Vec<&std::ffi::OsStr> =
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", &subject, "-keyout"]
                .map(std::ffi::OsStr::new)
                .to_vec();
        args.extend([key.as_os_str(), "-out".as_ref(), pem.as_os_str()]);
        run("openssl", &args);
        run(
            "openssl",
            &[
                "x509".as_ref(),
                "-in".as_ref(),
                pem.as_os_str(),
                "-outform".as_ref(),
                "DER".as_ref(),
                "-out".as_ref(),
                der.as_os_str(),
            ],
        );
        (key, pem, std::fs::read(der).unwrap())
    }

    /// Debian's shim with its vendor certificate replaced by `der`: a stand-in for another
    /// vendor's shim. Its Microsoft signature no longer matches the bytes, which the
    /// judgement (names only, like the firmware's own prediction here) does not look at.
    fn vendor_shim(der: &[u8]) -> Vec<u8> {
        let mut shim = std::fs::read(workspace_file("target/signed-loaders/shimx64.efi")).unwrap();
        let pe = goblin::pe::PE::parse(&shim).unwrap();
        let section = pe.sections.iter().find(|section| section.name().ok() == Some(".vendor_cert")).unwrap();
        let start = section.pointer_to_raw_data as usize;
        assert!(16 + der.len() <= section.size_of_raw_data as usize);
        let header: Vec<u8> =
            [der.len() as u32, 0, 16, 16 + der.len() as u32].iter().flat_map(|w| w.to_le_bytes()).collect();
        shim[start..start + 16].copy_from_slice(&header);
        shim[start + 16..start + 16 + der.len()].copy_from_slice(der);
        shim
    }

    #[test]
    fn an_images_own_chain_is_used_when_debians_shim_refuses_its_kernel_and_its_own_shim_names_the_signer() {
        let dir = tempfile::tempdir().unwrap();
        let (key, pem, der) = vendor_ca(dir.path(), "PortaPXE Lab Vendor CA");
        let vendor_kernel = dir.path().join("vmlinuz");
        std::fs::copy(workspace_file("target/lab/vmlinuz"), &vendor_kernel).unwrap();
        run("sbattach", &["--remove".as_ref(), vendor_kernel.as_os_str()]);
        run(
            "sbsign",
            &[
                "--key".as_ref(),
                key.as_os_str(),
                "--cert".as_ref(),
                pem.as_os_str(),
                "--output".as_ref(),
                vendor_kernel.as_os_str(),
                vendor_kernel.as_os_str(),
            ],
        );
        let debian_kernel = std::fs::read(workspace_file("target/lab/vmlinuz")).unwrap();
        let debian_shim = std::fs::read(workspace_file("target/signed-loaders/shimx64.efi")).unwrap();
        let grub = std::fs::read(workspace_file("target/signed-loaders/grubx64.efi")).unwrap();
        let config = Config { root: dir.path().to_path_buf(), ..Config::default() };
        let judge = |name: &str, kernel: &[u8], shim: &[u8], loader: IsoLoader| {
            let files: [(&str, &[u8]); 4] = [
                ("linux", kernel),
                ("initrd.gz", b"initrd"),
                ("EFI/BOOT/BOOTX64.EFI", shim),
                ("EFI/BOOT/grubx64.efi", &grub),
            ];
            crate::iso::testing::image(dir.path(), name, &files);
            let (mounted, mut planned) = read_one(&config, name, "", "http://10.0.0.1", format!("iso/{name}")).unwrap();
            if !uses_own_loader(&mounted, &planned, loader) {
                planned.own_loader = None;
            }
            (planned.own_loader.is_some(), secure_boot_problem(Some(&planned), None))
        };
        let vendor_kernel = std::fs::read(&vendor_kernel).unwrap();
        let (used, problem) = judge("vendor.iso", &vendor_kernel, &vendor_shim(&der), IsoLoader::Auto);
        assert!(used, "Debian's shim refuses the kernel, the image's shim names its signer");
        assert_eq!(problem, None, "it boots with Secure Boot on, through its own chain");
        let (used, _) = judge("debian.iso", &debian_kernel, &debian_shim, IsoLoader::Auto);
        assert!(!used, "PortaPXE's chain already boots a Debian kernel: no restart");
        let (used, _) = judge("mismatch.iso", &vendor_kernel, &debian_shim, IsoLoader::Auto);
        assert!(!used, "the image's shim does not name the kernel's signer either");
        let (used, problem) = judge("forced.iso", &debian_kernel, &debian_shim, IsoLoader::Own);
        assert!(used && problem.is_none(), "loader = \"own\" uses it whenever the image has one");
        let files: [(&str, &[u8]); 2] = [("linux", &debian_kernel), ("initrd.gz", b"initrd")];
        crate::iso::testing::image(dir.path(), "plain.iso", &files);
        let (mounted, planned) = read_one(&config, "plain.iso", "", "http://s", "iso/p.iso".into()).unwrap();
        assert_eq!(planned.own_loader, None, "no shim in the image: nothing to use");
        assert!(!uses_own_loader(&mounted, &planned, IsoLoader::Own));
    }
}
