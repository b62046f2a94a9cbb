//! The config's ISO entries, each image read once when serving starts: mounted in the
//! served namespace at a path of its own, and planned (its family and what boots).
//!
//! Owns: where an image is mounted (its root-relative path when it lies in the boot
//! root, else `iso/<file name>`: an ISO picked from anywhere is served where it lies,
//! never copied) and the link from an entry to its plan. Blocking (reads the images).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{BootEntry, Config};
use crate::iso::{IsoBoot, IsoError, IsoPlan, IsoPlans, Site, plan, read_index};
use crate::served::{MountedImage, Served, ServedItem};

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
        let BootEntry::Iso { image, append, .. } = entry else { continue };
        if entries.plans.get(image).is_some() {
            continue;
        }
        let taken: Vec<&str> = entries.mounts.iter().map(|mounted| mounted.mount.as_str()).collect();
        let mount = mount_path(image, &taken);
        let (mounted, planned) = read_one(config, image, append, base_url, mount)?;
        entries.mounts.push(mounted);
        entries.plans.insert(image.clone(), planned);
    }
    Ok(entries)
}

/// One image, mounted at `mount`. Blocking.
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
pub fn kernel_refusal(served: &Served, planned: &IsoPlan) -> Option<String> {
    let IsoBoot::Linux { kernel, .. } = &planned.boot else { return None };
    let Some(ServedItem::InImage(span)) = served.lookup(kernel) else { return None };
    let signature = crate::signature::read_from(span.reader().ok()?).ok()?;
    crate::signature::secure_boot_refusal_reason(&signature)
}

/// Why an ISO plan cannot boot with Secure Boot on, in words for the Boot images list.
pub fn secure_boot_problem(planned: Option<&IsoPlan>, kernel_refusal: Option<String>) -> Option<String> {
    use crate::signature::needs_secure_boot_off;
    match planned.map(|planned| &planned.boot) {
        Some(IsoBoot::Linux { .. }) => kernel_refusal.map(|why| needs_secure_boot_off(&why)),
        Some(IsoBoot::Programs { .. }) => Some(needs_secure_boot_off("its program is not signed")),
        Some(IsoBoot::Refused(_)) => None,
        Some(IsoBoot::Memdisk { .. }) => Some("boots only on BIOS machines (a floppy image through memdisk)".into()),
        Some(IsoBoot::Sanboot) | None => {
            Some(needs_secure_boot_off("the ISO boots whole through iPXE (sanboot), which is not signed"))
        }
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
}
