//! Which family an ISO image belongs to, found from its file layout, and the recipe
//! that makes its kernel find its root once it starts: the kernel and initrd are
//! booted from inside the image, and the arguments point the family's initrd at the
//! image on our HTTP server. Pure: an [`IsoIndex`] and where the image is served in,
//! an [`IsoPlan`] out.
//!
//! Sources of the arguments (each family's own documentation):
//! - live-boot: `man 7 live-boot` (`fetch=URL`: the squashfs is downloaded to RAM and
//!   used as the live medium), Debian live manual, "Netboot".
//! - casper (Ubuntu): `netboot=url url=…iso` is how Ubuntu's own docs PXE-boot a desktop
//!   ISO (help.ubuntu.com "Installation/LocalNet" and the 20.04+ netboot notes); casper
//!   fetches the whole ISO into RAM, so the machine needs RAM above the ISO's size.
//! - Fedora/RHEL live: dracut `man 7 dracut.cmdline` (`root=live:URL` of an ISO or
//!   squashfs image, `rd.live.image`, `rd.neednet=1`, `ip=dhcp`).
//! - Fedora/RHEL installer: Anaconda boot options (`inst.stage2=` a tree: the ISO's
//!   files served as a folder, which is what a mounted image is here).
//! - archiso (Arch, SystemRescue): archiso's `docs/README.bootparams`
//!   (`archisobasedir=`, `archiso_http_srv=URL/`, with `ip=dhcp` for the network hook).
//! - Debian installer: its own isolinux menu line (the netboot initrd fetches the rest
//!   from a mirror; a full netinst/DVD initrd looks for a CD and is not booted this way).

use std::fmt;

use super::index::{self as image, ElTorito, Emulation, IsoIndex};
use super::menu::{self, MenuBoot};

/// What kind of image it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    DebianInstaller,
    LiveBoot,
    Casper,
    FedoraLive,
    FedoraInstaller,
    Archiso,
    Memtest,
    Windows,
    /// None of the above: the kernel and arguments of the image's own menu.
    OwnMenu,
    /// No kernel found: the image is booted whole, if at all.
    Other,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::DebianInstaller => "Debian installer",
            Family::LiveBoot => "Debian live (live-boot)",
            Family::Casper => "Ubuntu (casper)",
            Family::FedoraLive => "Fedora/RHEL live",
            Family::FedoraInstaller => "Fedora/RHEL installer",
            Family::Archiso => "Arch/SystemRescue (archiso)",
            Family::Memtest => "Memtest86+",
            Family::Windows => "Windows installer",
            Family::OwnMenu => "its own boot menu",
            Family::Other => "unrecognised image",
        })
    }
}

/// Why an image is not booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IsoRefusal {
    Windows,
    /// The files are in a UDF file system only (the ISO 9660 tree holds a README).
    UdfOnly,
    /// A floppy-emulation boot image that does not lie inside the image (a broken
    /// catalogue): iPXE's `sanboot` cannot start it and there is nothing for `memdisk`.
    FloppyEmulation,
    NothingToBoot,
}

impl fmt::Display for IsoRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IsoRefusal::Windows => "Windows ISOs need wimboot, which PortaPXE does not have yet",
            IsoRefusal::UdfOnly => {
                "this ISO keeps its files in UDF only: PortaPXE reads their names but cannot serve them from \
                 where they lie (its UDF reader, hadris-udf, gives no file positions); use an ISO 9660 image \
                 of the same system (the ones distributions publish are)"
            }
            IsoRefusal::FloppyEmulation => {
                "this ISO boots a floppy image that its boot catalogue places outside the image"
            }
            IsoRefusal::NothingToBoot => "this ISO has no kernel PortaPXE recognises and no boot record",
        })
    }
}

/// What boots. Paths are served paths (the image's mount, then the path inside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsoBoot {
    Linux {
        kernel: String,
        initrds: Vec<String>,
        args: String,
    },
    /// A program for each firmware (Memtest86+: a Linux boot-protocol `.bin` for BIOS, an
    /// EFI program for UEFI).
    Programs {
        bios: Option<String>,
        efi: Option<String>,
        args: String,
    },
    /// The whole image over iPXE's `sanboot` (its own boot loader on an emulated drive).
    Sanboot,
    /// The image's El Torito floppy (served at this path) as a RAM floppy through syslinux's
    /// `memdisk`: BIOS machines only (BIOS update and DOS tool ISOs).
    Memdisk {
        floppy: String,
    },
    Refused(IsoRefusal),
}

/// The family found and what boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoPlan {
    pub family: Family,
    pub boot: IsoBoot,
    /// The image's own signed chain for x64 UEFI, when it has one and its kernel is
    /// what boots: [`plan`] finds it; the engine keeps it only where it is used (see
    /// [`OwnLoader`]).
    pub own_loader: Option<OwnLoader>,
}

/// An image's own signed boot chain for x64 UEFI machines: the shim at the path UEFI
/// boots removable media from (`EFI/BOOT/BOOTX64.EFI`) and the GRUB that shim loads
/// from its own folder (`grubx64.efi`), as served paths. Distribution ISOs whose kernel
/// is signed by their vendor carry one (Ubuntu's is signed for Canonical's kernels,
/// which Debian's shim refuses).
///
/// A machine is handed the image's shim as its DHCP boot file, once: shim fetches its
/// GRUB relative to the boot file, so from inside the image, and that GRUB is meant to
/// read PortaPXE's configuration, which boots the planned entry; its kernel is then
/// checked by the image's own shim. A network build of GRUB (Debian's, seen in the lab)
/// reads `/grub/grub.cfg`; one that reads `grub.cfg` beside itself (Fedora's) is served a
/// redirect there; a CD build that looks only for its medium does not get there, and the
/// engine stops handing out its shim after a while (`next_boot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnLoader {
    pub shim: String,
    pub grub: String,
}

/// Where UEFI looks for an x64 boot program on removable media, and the name shim
/// loads next from the same folder (shim's `DEFAULT_LOADER`).
const REMOVABLE_SHIM_X64: &str = "EFI/BOOT/BOOTX64.EFI";
const SHIM_SECOND_STAGE_X64: &str = "EFI/BOOT/grubx64.efi";

impl fmt::Display for IsoPlan {
    /// "Debian live (live-boot) → live/vmlinuz + fetch squashfs", for the window and the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → ", self.family)?;
        let inside = |path: &str| path.rsplit_once(".iso/").map_or(path, |(_, inside)| inside).to_owned();
        match &self.boot {
            IsoBoot::Linux { kernel, initrds, args } => {
                write!(f, "{}", inside(kernel))?;
                if !initrds.is_empty() {
                    write!(f, " + {}", initrds.iter().map(|path| inside(path)).collect::<Vec<_>>().join(" + "))?;
                }
                if args.contains("fetch=") {
                    write!(f, " + fetch squashfs")?;
                } else if args.contains("url=") || args.contains("root=live:") {
                    write!(f, " + the ISO over HTTP")?;
                }
                if let Some(own) = &self.own_loader {
                    write!(f, "; x64 UEFI through its own {} and GRUB (restarts once)", inside(&own.shim))?;
                }
                Ok(())
            }
            IsoBoot::Programs { bios, efi, .. } => {
                let programs: Vec<String> = bios.iter().chain(efi).map(|path| inside(path)).collect();
                write!(f, "{}", programs.join(" (BIOS) / "))?;
                if bios.is_some() && efi.is_some() {
                    write!(f, " (UEFI)")?;
                }
                Ok(())
            }
            IsoBoot::Sanboot => write!(f, "the whole image (sanboot)"),
            IsoBoot::Memdisk { .. } => write!(f, "its floppy image through memdisk (BIOS machines only)"),
            IsoBoot::Refused(why) => write!(f, "not booted: {why}"),
        }
    }
}

/// Where the image is served and what the user adds.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The image's served path, e.g. `iso/debian-live.iso`: its files are below it.
    pub mount: &'a str,
    /// Where the served namespace is on HTTP, e.g. `http://10.0.0.1` (no trailing slash).
    pub base_url: &'a str,
    /// Extra kernel arguments for every ISO entry (`console=ttyS0`, `nomodeset`).
    pub append: &'a str,
}

impl Site<'_> {
    fn served(&self, inside: &str) -> String {
        format!("{}/{}", self.mount, inside)
    }

    fn url(&self, inside: &str) -> String {
        let mount = crate::url::url(self.base_url, self.mount);
        if inside.is_empty() {
            mount
        } else {
            format!("{mount}/{}", crate::url::url("", inside).trim_start_matches('/'))
        }
    }

    fn linux(&self, kernel: &str, initrds: &[&str], args: &str) -> IsoBoot {
        IsoBoot::Linux {
            kernel: self.served(kernel),
            initrds: initrds.iter().map(|path| self.served(path)).collect(),
            args: with_append(args, self.append),
        }
    }
}

/// `args` with `append` added before a `---` (Debian's separator between installer
/// and installed-system arguments), else at the end.
fn with_append(args: &str, append: &str) -> String {
    let append = append.trim();
    if append.is_empty() {
        return args.trim().to_owned();
    }
    match args.split_once(" --- ").or_else(|| args.strip_suffix(" ---").map(|head| (head, ""))) {
        Some((head, tail)) => format!("{} {append} --- {}", head.trim(), tail.trim()).trim().to_owned(),
        None if args.trim() == "---" => format!("{append} ---"),
        None => format!("{} {append}", args.trim()).trim().to_owned(),
    }
}

/// The family of `index` and what boots it, served at `site`, with the image's own
/// signed chain when it has one and a kernel of its own boots.
pub fn plan(index: &IsoIndex, site: Site<'_>) -> IsoPlan {
    let mut planned = family_plan(index, &site);
    if matches!(planned.boot, IsoBoot::Linux { .. })
        && let (Some((shim, _)), Some((grub, _))) = (index.find(REMOVABLE_SHIM_X64), index.find(SHIM_SECOND_STAGE_X64))
    {
        planned.own_loader = Some(OwnLoader { shim: site.served(shim), grub: site.served(grub) });
    }
    planned
}

fn family_plan(index: &IsoIndex, site: &Site<'_>) -> IsoPlan {
    let find = |path: &str| index.find(path).map(|(name, _)| name.to_owned());
    let first = |candidates: &[&str]| candidates.iter().find_map(|path| find(path));
    let under = |folder: &str, starts: &str| {
        index.paths().find(|path| {
            path.to_lowercase()
                .strip_prefix(&format!("{folder}/"))
                .is_some_and(|name| name.starts_with(starts) && !name.contains('/'))
        })
    };
    let (menus, menu_args) = menu_boots(index);
    let args_for = |kernel: &str| menu_args(kernel).unwrap_or_default();
    let planned = |family, boot| IsoPlan { family, boot, own_loader: None };

    let in_udf = |path: &str| index.udf_only.iter().any(|name| name.eq_ignore_ascii_case(path));
    if find("sources/boot.wim").is_some()
        || (find("bootmgr").is_some() && find("sources/install.wim").is_some())
        || in_udf("sources/boot.wim")
    {
        return planned(Family::Windows, IsoBoot::Refused(IsoRefusal::Windows));
    }
    // Windows images since Vista put a README in their ISO 9660 tree and everything
    // else in UDF (Rufus's iso.c and pycdlib issue 22 describe the same).
    if index.udf && index.len() <= 2 {
        return planned(Family::Other, IsoBoot::Refused(IsoRefusal::UdfOnly));
    }
    if index.volume_id.starts_with("MT86PLUS") || index.paths().any(|path| path.to_lowercase().contains("memtest")) {
        let bios = index
            .paths()
            .find(|path| {
                let lower = path.to_lowercase();
                lower.ends_with(".bin") && (lower.contains("memtest") || lower.ends_with(".img.bin"))
            })
            .map(|path| site.served(path));
        let efi = first(&["EFI/BOOT/bootx64.efi"])
            .or_else(|| index.paths().find(|path| path.to_lowercase().ends_with("memtest86+x64.efi")).map(String::from))
            .map(|path| site.served(&path));
        if bios.is_some() || efi.is_some() {
            return planned(Family::Memtest, IsoBoot::Programs { bios, efi, args: site.append.trim().to_owned() });
        }
    }
    if let (Some(kernel), Some(initrd)) =
        (first(&["linux", "install.amd/vmlinuz"]), first(&["initrd.gz", "install.amd/initrd.gz"]))
    {
        let args = args_for(&kernel);
        return planned(Family::DebianInstaller, site.linux(&kernel, &[&initrd], &args));
    }
    if let Some(squashfs) = find("live/filesystem.squashfs")
        && let (Some(kernel), Some(initrd)) = (under("live", "vmlinuz"), under("live", "initrd"))
    {
        let extras = live_extras(&args_for(kernel), site.append);
        let args = format!("boot=live components fetch={} {extras}", site.url(&squashfs));
        return planned(Family::LiveBoot, site.linux(kernel, &[initrd], &args));
    }
    if let (Some(kernel), Some(initrd)) = (under("casper", "vmlinuz"), under("casper", "initrd")) {
        // cloud-config-url=/dev/null: Ubuntu's netboot guide adds it, or cloud-init takes
        // `url=` for its own and downloads the ISO a second time.
        let args = format!("boot=casper netboot=url url={} ip=dhcp cloud-config-url=/dev/null", site.url(""));
        return planned(Family::Casper, site.linux(kernel, &[initrd], &args));
    }
    let fedora_kernel = first(&["images/pxeboot/vmlinuz", "isolinux/vmlinuz"]);
    let fedora_initrd = first(&["images/pxeboot/initrd.img", "isolinux/initrd.img"]);
    if let (Some(kernel), Some(initrd)) = (&fedora_kernel, &fedora_initrd) {
        if find("LiveOS/squashfs.img").is_some() {
            let args = format!("root=live:{} rd.live.image rd.neednet=1 ip=dhcp", site.url(""));
            return planned(Family::FedoraLive, site.linux(kernel, &[initrd], &args));
        }
        if find("images/install.img").is_some() {
            let args = format!("inst.stage2={}/ ip=dhcp", site.url(""));
            return planned(Family::FedoraInstaller, site.linux(kernel, &[initrd], &args));
        }
    }
    if let Some((base, kernel, initrd)) = archiso(index) {
        let args = format!("archisobasedir={base} archiso_http_srv={}/ ip=dhcp", site.url(""));
        return planned(Family::Archiso, site.linux(&kernel, &[&initrd], &args));
    }
    if let Some(boot) = menus.into_iter().next() {
        let initrds: Vec<&str> = boot.initrds.iter().map(String::as_str).collect();
        return planned(Family::OwnMenu, site.linux(&boot.kernel, &initrds, &boot.args));
    }
    let boot = match index.el_torito {
        Some(ElTorito { bios: Some(Emulation::Floppy { lba, len }), .. }) if !index.hybrid => {
            // The catalogue's floppy, whether a file of the image names it or not.
            let at = u64::from(lba) * image::SECTOR;
            let floppy = index
                .paths()
                .find(|path| index.find(path).is_some_and(|(_, member)| member.offset == at && member.len == len));
            match floppy {
                Some(path) => IsoBoot::Memdisk { floppy: site.served(path) },
                None => IsoBoot::Refused(IsoRefusal::FloppyEmulation),
            }
        }
        Some(_) => IsoBoot::Sanboot,
        None if index.hybrid => IsoBoot::Sanboot,
        None => IsoBoot::Refused(IsoRefusal::NothingToBoot),
    };
    planned(Family::Other, boot)
}

/// The image's own live-boot arguments that still hold over the network (Clonezilla's
/// `ocs_live_*`, `locales=`, `keyboard-layouts=`, GParted's `username=`…): all but the
/// ones about where the medium is, and an empty `ip=`, which Clonezilla's menus use to
/// keep the network down (its grub.cfg says so) and which would stop `fetch=`.
/// An argument the entry's `append` sets again is dropped from the image's own, so the
/// kernel line names it once, with the entry's value: Clonezilla's client reads only one
/// `ocs_live_run` (which one depends on how GRUB quoted them).
fn live_extras(menu_args: &str, append: &str) -> String {
    let set_by_append: Vec<&str> =
        append.split_whitespace().filter_map(|word| word.split_once('=').map(|(key, _)| key)).collect();
    let dropped = |word: &&str| {
        let key = word.split('=').next().unwrap_or(word);
        (word.contains('=') && set_by_append.contains(&key))
            || matches!(
                key,
                "boot" | "components" | "fetch" | "httpfs" | "ftpfs" | "live-media" | "live-media-path" | "findiso"
            )
            || *word == "ip="
            || *word == "---"
    };
    menu_args.split_whitespace().filter(|word| !dropped(word)).collect::<Vec<_>>().join(" ")
}

/// `<base>/boot/x86_64/vmlinuz*` with an initramfs beside it and `<base>/x86_64/` holding
/// the root image (`airootfs.sfs`): archiso's layout (`arch`, SystemRescue's `sysresccd`).
fn archiso(index: &IsoIndex) -> Option<(String, String, String)> {
    let kernel = index.paths().find(|path| {
        let parts: Vec<&str> = path.split('/').collect();
        parts.len() == 4 && parts[1] == "boot" && parts[2] == "x86_64" && parts[3].starts_with("vmlinuz")
    })?;
    let base = kernel.split('/').next()?;
    let folder = format!("{base}/boot/x86_64/");
    let initrd = index
        .paths()
        .find(|path| path.strip_prefix(&folder).is_some_and(|name| name.ends_with(".img") && !name.contains('/')))?;
    let has_root = index.paths().any(|path| path.starts_with(&format!("{base}/x86_64/")) && path.ends_with(".sfs"));
    has_root.then(|| (base.to_owned(), kernel.to_owned(), initrd.to_owned()))
}

/// The image's own menu entries whose kernel and initrds exist in it (paths resolved
/// to the image's spelling), and a lookup of the menu arguments for a kernel.
fn menu_boots(index: &IsoIndex) -> (Vec<MenuBoot>, impl Fn(&str) -> Option<String>) {
    let mut found = Vec::new();
    for (path, text) in index.menus() {
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        let lower = path.to_lowercase();
        let entries = if lower.contains("grub") { menu::parse_grub(text) } else { menu::parse_syslinux(text) };
        for entry in entries {
            let resolve = |named: &str| {
                let named = named.trim_start_matches('/');
                let beside = if folder.is_empty() { None } else { index.find(&format!("{folder}/{named}")) };
                beside.or_else(|| index.find(named)).map(|(name, _)| name.to_owned())
            };
            let Some(kernel) = resolve(&entry.kernel) else { continue };
            let initrds: Option<Vec<String>> = entry.initrds.iter().map(|initrd| resolve(initrd)).collect();
            if let Some(initrds) = initrds {
                found.push(MenuBoot { kernel, initrds, args: entry.args });
            }
        }
    }
    let by_kernel = found.clone();
    let lookup = move |kernel: &str| by_kernel.iter().find(|boot| boot.kernel == kernel).map(|boot| boot.args.clone());
    (found, lookup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::index::{ElTorito, Member};

    const SITE: Site<'static> = Site { mount: "iso/x.iso", base_url: "http://10.0.0.1", append: "console=ttyS0" };

    fn index(paths: &[&str]) -> IsoIndex {
        let mut offset = 0;
        IsoIndex::from_files(paths.iter().map(|path| {
            offset += 2048;
            (*path, Member { offset, len: 10 })
        }))
    }

    fn linux(plan: &IsoPlan) -> (&str, Vec<&str>, &str) {
        match &plan.boot {
            IsoBoot::Linux { kernel, initrds, args } => {
                (kernel.as_str(), initrds.iter().map(String::as_str).collect(), args.as_str())
            }
            other => panic!("not a Linux boot: {other:?}"),
        }
    }

    #[test]
    fn each_family_is_found_from_its_layout_and_gets_its_kernel_line() {
        let table: &[(&[&str], Family, &str, &str, &str)] = &[
            (
                &["linux", "initrd.gz", "isolinux/isolinux.bin"],
                Family::DebianInstaller,
                "iso/x.iso/linux",
                "iso/x.iso/initrd.gz",
                "console=ttyS0",
            ),
            (
                &["install.amd/vmlinuz", "install.amd/initrd.gz", "pool/main/x.deb"],
                Family::DebianInstaller,
                "iso/x.iso/install.amd/vmlinuz",
                "iso/x.iso/install.amd/initrd.gz",
                "console=ttyS0",
            ),
            (
                &["live/vmlinuz-6.1.0-13-amd64", "live/initrd.img-6.1.0-13-amd64", "live/filesystem.squashfs"],
                Family::LiveBoot,
                "iso/x.iso/live/vmlinuz-6.1.0-13-amd64",
                "iso/x.iso/live/initrd.img-6.1.0-13-amd64",
                "boot=live components fetch=http://10.0.0.1/iso/x.iso/live/filesystem.squashfs console=ttyS0",
            ),
            (
                &["casper/vmlinuz", "casper/initrd", "casper/filesystem.squashfs"],
                Family::Casper,
                "iso/x.iso/casper/vmlinuz",
                "iso/x.iso/casper/initrd",
                "boot=casper netboot=url url=http://10.0.0.1/iso/x.iso ip=dhcp cloud-config-url=/dev/null console=ttyS0",
            ),
            (
                &["images/pxeboot/vmlinuz", "images/pxeboot/initrd.img", "LiveOS/squashfs.img"],
                Family::FedoraLive,
                "iso/x.iso/images/pxeboot/vmlinuz",
                "iso/x.iso/images/pxeboot/initrd.img",
                "root=live:http://10.0.0.1/iso/x.iso rd.live.image rd.neednet=1 ip=dhcp console=ttyS0",
            ),
            (
                &["images/pxeboot/vmlinuz", "images/pxeboot/initrd.img", "images/install.img", ".treeinfo"],
                Family::FedoraInstaller,
                "iso/x.iso/images/pxeboot/vmlinuz",
                "iso/x.iso/images/pxeboot/initrd.img",
                "inst.stage2=http://10.0.0.1/iso/x.iso/ ip=dhcp console=ttyS0",
            ),
            (
                &[
                    "sysresccd/boot/x86_64/vmlinuz",
                    "sysresccd/boot/x86_64/sysresccd.img",
                    "sysresccd/x86_64/airootfs.sfs",
                ],
                Family::Archiso,
                "iso/x.iso/sysresccd/boot/x86_64/vmlinuz",
                "iso/x.iso/sysresccd/boot/x86_64/sysresccd.img",
                "archisobasedir=sysresccd archiso_http_srv=http://10.0.0.1/iso/x.iso/ ip=dhcp console=ttyS0",
            ),
        ];
        for (paths, family, kernel, initrd, args) in table {
            let plan = plan(&index(paths), SITE);
            assert_eq!(plan.family, *family, "{paths:?}");
            assert_eq!(linux(&plan), (*kernel, vec![*initrd], *args), "{paths:?}");
        }
    }

    #[test]
    fn the_debian_installer_keeps_its_own_append_line_with_ours_before_the_separator() {
        let mut image = index(&["linux", "initrd.gz", "isolinux/isolinux.bin", "isolinux/txt.cfg"]);
        image.add_menu(
            "isolinux/txt.cfg",
            "label install\n kernel linux\n append vga=788 initrd=initrd.gz --- quiet\n".into(),
        );
        let plan = plan(&image, SITE);
        assert_eq!(linux(&plan).2, "vga=788 console=ttyS0 --- quiet");
        assert_eq!(plan.to_string(), "Debian installer → linux + initrd.gz");
    }

    #[test]
    fn a_live_images_own_arguments_are_kept_but_for_where_its_medium_is() {
        let mut image =
            index(&["live/vmlinuz", "live/initrd.img", "live/filesystem.squashfs", "syslinux/isolinux.cfg"]);
        // Clonezilla live's menu line (isolinux.cfg), shortened.
        image.add_menu(
            "syslinux/isolinux.cfg",
            "label Clonezilla live\n kernel /live/vmlinuz\n append initrd=/live/initrd.img boot=live union=overlay \
             username=user config components quiet loglevel=0 noswap edd=on nomodeset locales= keyboard-layouts= \
             ocs_live_run=\"ocs-live-general\" ocs_live_extra_param=\"\" ocs_live_batch=\"no\" vga=788 ip= \
             net.ifnames=0 splash i915.blacklist=yes radeonhd.blacklist=yes nouveau.blacklist=yes vmwgfx.enable_fbdev=1\n"
                .into(),
        );
        let plan = plan(&image, SITE);
        let args = linux(&plan).2;
        assert!(
            args.starts_with(
                "boot=live components fetch=http://10.0.0.1/iso/x.iso/live/filesystem.squashfs union=overlay"
            ),
            "{args}"
        );
        assert!(args.contains("ocs_live_run=\"ocs-live-general\""), "{args}");
        assert!(!args.contains(" ip= "), "an empty ip= would keep the network down: {args}");
        assert_eq!(args.matches("boot=").count(), 1, "{args}");
        assert!(args.ends_with("console=ttyS0"), "{args}");

        // A Clonezilla restore puts its own client on the line: the image's goes.
        let append = "console=ttyS0 ocs_live_batch=\"yes\" ocs_live_run=\"ocs-live-get-img 10.0.0.1\"";
        let args = linux(&super::plan(&image, Site { append, ..SITE })).2.to_owned();
        assert_eq!(args.matches("ocs_live_run=").count(), 1, "{args}");
        assert_eq!(args.matches("ocs_live_batch=").count(), 1, "{args}");
        assert!(args.ends_with(append) && args.contains("ocs_live_extra_param=\"\""), "{args}");
    }

    #[test]
    fn names_in_a_url_are_percent_encoded() {
        let site = Site { mount: "iso/my live.iso", ..SITE };
        let plan = plan(&index(&["live/vmlinuz", "live/initrd.img", "live/filesystem.squashfs"]), site);
        assert_eq!(plan.to_string(), "Debian live (live-boot) → live/vmlinuz + live/initrd.img + fetch squashfs");
        assert!(linux(&plan).2.contains("fetch=http://10.0.0.1/iso/my%20live.iso/live/filesystem.squashfs"));
        assert_eq!(linux(&plan).0, "iso/my live.iso/live/vmlinuz", "served paths are not encoded");
    }

    #[test]
    fn memtest_gets_a_program_per_firmware() {
        let mut image = index(&["EFI/BOOT/bootx64.efi", "boot/floppy.img", "boot/floppy.img.bin"]);
        image.volume_id = "MT86PLUS_64".into();
        let plan = plan(&image, SITE);
        assert_eq!(plan.family, Family::Memtest);
        assert_eq!(
            plan.boot,
            IsoBoot::Programs {
                bios: Some("iso/x.iso/boot/floppy.img.bin".into()),
                efi: Some("iso/x.iso/EFI/BOOT/bootx64.efi".into()),
                args: "console=ttyS0".into()
            }
        );
    }

    #[test]
    fn windows_is_refused_with_words_that_say_why() {
        let plan = plan(&index(&["bootmgr", "sources/boot.wim", "sources/install.wim"]), SITE);
        assert_eq!(plan.boot, IsoBoot::Refused(IsoRefusal::Windows));
        assert!(plan.to_string().contains("Windows ISOs need wimboot, which PortaPXE does not have yet"));
    }

    #[test]
    fn an_image_with_its_files_in_udf_only_is_refused_not_sanbooted() {
        let mut image = index(&["README.TXT"]);
        image.udf = true;
        image.el_torito = Some(ElTorito { bios: Some(Emulation::NoEmulation), uefi: true });
        image.udf_only = vec!["casper/vmlinuz".into(), "casper/initrd".into()];
        let refused = plan(&image, SITE);
        assert_eq!(refused.boot, IsoBoot::Refused(IsoRefusal::UdfOnly));
        assert!(refused.to_string().contains("UDF only"), "{refused}");
        // Windows keeps its files in UDF: recognised by them, and told apart.
        image.udf_only = vec!["bootmgr".into(), "SOURCES/BOOT.WIM".into()];
        let windows = plan(&image, SITE);
        assert_eq!((windows.family, windows.boot), (Family::Windows, IsoBoot::Refused(IsoRefusal::Windows)));
    }

    #[test]
    fn an_unknown_image_boots_by_its_own_menu_else_whole_else_not() {
        let mut image = index(&["boot/kernel", "boot/initramfs", "boot/isolinux/isolinux.cfg"]);
        image.add_menu(
            "boot/isolinux/isolinux.cfg",
            "label x\n kernel /boot/kernel\n append initrd=/boot/initramfs rootdelay=5\n".into(),
        );
        let plan = plan(&image, SITE);
        assert_eq!(plan.family, Family::OwnMenu);
        assert_eq!(
            linux(&plan),
            ("iso/x.iso/boot/kernel", vec!["iso/x.iso/boot/initramfs"], "rootdelay=5 console=ttyS0")
        );

        let mut image = index(&["readme.txt"]);
        assert_eq!(super::plan(&image, SITE).boot, IsoBoot::Refused(IsoRefusal::NothingToBoot));
        image.el_torito = Some(ElTorito { bios: Some(Emulation::NoEmulation), uefi: false });
        assert_eq!(super::plan(&image, SITE).boot, IsoBoot::Sanboot);
        let floppy = Emulation::Floppy { lba: 50, len: 1_474_560 };
        image.el_torito = Some(ElTorito { bios: Some(floppy), uefi: false });
        assert_eq!(
            super::plan(&image, SITE).boot,
            IsoBoot::Refused(IsoRefusal::FloppyEmulation),
            "no floppy where the catalogue says"
        );
        image.insert(super::image::FLOPPY_IMAGE.into(), Member { offset: 50 * 2048, len: 1_474_560 });
        let plan = super::plan(&image, SITE);
        assert_eq!(plan.boot, IsoBoot::Memdisk { floppy: "iso/x.iso/eltorito/floppy.img".into() });
        assert_eq!(plan.to_string(), "unrecognised image → its floppy image through memdisk (BIOS machines only)");
    }

    #[test]
    fn appended_arguments_go_before_debians_separator() {
        assert_eq!(with_append("vga=788 --- quiet", "console=ttyS0"), "vga=788 console=ttyS0 --- quiet");
        assert_eq!(with_append("vga=788 ---", "nomodeset"), "vga=788 nomodeset ---");
        assert_eq!(with_append("---", "nomodeset"), "nomodeset ---");
        assert_eq!(with_append("quiet", ""), "quiet");
        assert_eq!(with_append("", " a=b "), "a=b");
    }

    #[test]
    fn an_images_own_shim_and_grub_are_found_only_when_its_own_kernel_boots() {
        // ISO 9660 names in upper case, as plain images spell them; shim asks in lower case.
        let ubuntu = index(&["casper/vmlinuz", "casper/initrd", "EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/GRUBX64.EFI"]);
        let planned = plan(&ubuntu, SITE);
        assert_eq!(
            planned.to_string(),
            "Ubuntu (casper) → casper/vmlinuz + casper/initrd + the ISO over HTTP; \
             x64 UEFI through its own EFI/BOOT/BOOTX64.EFI and GRUB (restarts once)"
        );
        assert_eq!(
            planned.own_loader,
            Some(OwnLoader {
                shim: "iso/x.iso/EFI/BOOT/BOOTX64.EFI".into(),
                grub: "iso/x.iso/EFI/BOOT/GRUBX64.EFI".into()
            })
        );
        let no_grub = index(&["casper/vmlinuz", "casper/initrd", "EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/mmx64.efi"]);
        assert_eq!(plan(&no_grub, SITE).own_loader, None, "a shim with no GRUB beside it");
        let mut memtest = index(&["EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/grubx64.efi", "memtest.bin"]);
        memtest.volume_id = "MT86PLUS_64".into();
        let planned = plan(&memtest, SITE);
        assert!(matches!(planned.boot, IsoBoot::Programs { .. }));
        assert_eq!(planned.own_loader, None, "no kernel of the image's own is booted through PortaPXE's menu");
    }
}
