//! One ISO image read once: where each file inside it lies (a byte span of the ISO
//! file), its El Torito boot catalogue, and the small menu files the family detection
//! reads. Reading goes through `hadris-iso` (ISO 9660, Rock Ridge, Joliet); this file
//! only walks the tree it gives, bounded, and keeps what serving needs.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hadris_iso::directory::DirectoryRef;
use hadris_iso::file::EntryType;
use hadris_iso::read::IsoImage;
use hadris_iso::types::Endian;
use hadris_iso::volume::VolumeDescriptor;
pub use portapxe_proto::iso::{ElTorito, Emulation, FLOPPY_IMAGE, IsoIndex, Member, SECTOR};

/// More entries than this and the rest of the image is not indexed: real installer
/// images hold a few thousand files; a hostile one could claim millions.
const MAX_ENTRIES: usize = 200_000;
/// Deeper folders are not indexed (a directory that links back to itself would
/// otherwise be walked forever).
const MAX_DEPTH: usize = 24;
/// Menu files (`*.cfg`) larger than this are not read.
const MAX_MENU_TEXT: u64 = 64 * 1024;
/// At most this many menu files are read.
const MAX_MENU_FILES: usize = 64;

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an ISO 9660 image ({reason}): choose the .iso file itself, not a folder or a disk image")]
    NotIso { path: PathBuf, reason: String },
}

/// An ISO image file as it was when it was read: what serving checks before it trusts
/// the index (a file replaced since would put other bytes at the indexed offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

impl ImageStamp {
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        Self { len: metadata.len(), modified: metadata.modified().ok() }
    }
}

/// Reads the index of the ISO image at `path` (blocking: a few hundred small reads).
pub fn read_index(path: &Path) -> Result<(IsoIndex, ImageStamp), IsoError> {
    let open = |source| IsoError::Open { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(open)?;
    let stamp = ImageStamp::of(&file.metadata().map_err(open)?);
    let not_iso = |reason: String| IsoError::NotIso { path: path.to_path_buf(), reason };
    let mut head = vec![0u8; 32 * SECTOR as usize];
    let read = (&file).read(&mut head).unwrap_or(0);
    head.truncate(read);
    let hybrid = head.len() >= 512 && head[510..512] == [0x55, 0xAA];
    let udf = has_udf(&head);
    let image = IsoImage::open(BufReader::new(file)).map_err(|error| not_iso(error.to_string()))?;
    let root = image.root_dirs().try_best_choice().ok_or_else(|| not_iso("it has no directory tree".into()))?;
    let naming = match root.entry_type() {
        EntryType::Joliet { .. } => Naming::Joliet,
        _ if image.supports_rrip() => Naming::RockRidge,
        _ => Naming::Iso9660,
    };
    let mut index = IsoIndex::default();
    (index.hybrid, index.udf) = (hybrid, udf);
    if let Ok(pvd) = image.read_pvd() {
        // Not `to_str`: it panics on bytes that are not UTF-8, and the bytes are the image's.
        let raw = pvd.volume_identifier.as_bytes();
        index.volume_id = String::from_utf8_lossy(raw).trim_matches(|c: char| c == ' ' || c == '\0').to_owned();
    }
    let mut walk = Walk { image: &image, naming, image_len: stamp.len, index: &mut index, entries: 0 };
    walk.folder(root.dir_ref(), "", 0);
    index.el_torito = read_el_torito(&image);
    expose_floppy(&mut index, stamp.len);
    read_menus(path, &mut index);
    expose_boot_programs(path, &mut index);
    // Windows images keep everything but a README in UDF (see `IsoRefusal::UdfOnly`).
    if index.udf && index.len() <= 2 {
        index.udf_only = read_udf_names(path, &mut index.skipped);
    }
    Ok((index, stamp))
}

/// The files of the image's UDF tree, by path (`/`-separated, as UDF names them), read
/// with `hadris-udf`: at most [`MAX_ENTRIES`] entries (folders included) and [`MAX_DEPTH`]
/// levels, each folder read once (a hostile tree whose folders point back at themselves
/// ends there). What cannot be read is said in `skipped`. Blocking.
fn read_udf_names(path: &Path, skipped: &mut Vec<String>) -> Vec<String> {
    let Ok(file) = File::open(path) else { return Vec::new() };
    // The reader is a third party's parser of the image's bytes: a panic in it must cost
    // this list, not the start of serving.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<Vec<String>, String> {
        let udf = hadris_udf::UdfVolume::open(BufReader::new(file)).map_err(|error| error.to_string())?;
        let mut names = Vec::new();
        let (mut entries, mut folders_read) = (0usize, std::collections::HashSet::new());
        let mut todo = vec![(udf.root_dir().map_err(|error| error.to_string())?, String::new(), 0)];
        while let Some((dir, prefix, depth)) = todo.pop() {
            for entry in dir.entries().filter(|entry| !entry.is_parent()) {
                entries += 1;
                if entries > MAX_ENTRIES {
                    return Err(format!("more than {MAX_ENTRIES} entries"));
                }
                let path = format!("{prefix}{}", entry.name());
                let folder = (entry.icb.partition_ref_num, entry.icb.logical_block_num);
                if !entry.is_dir() {
                    names.push(path);
                } else if depth + 1 < MAX_DEPTH && folders_read.insert(folder) {
                    let sub = udf.read_directory(&entry.icb).map_err(|error| format!("{path}/: {error}"))?;
                    todo.push((sub, format!("{path}/"), depth + 1));
                }
            }
        }
        Ok(names)
    }));
    match read {
        Ok(Ok(mut names)) => {
            names.sort();
            names
        }
        Ok(Err(why)) => {
            skipped.push(format!("its UDF tree could not be read: {why}"));
            Vec::new()
        }
        Err(_) => {
            skipped.push("its UDF tree could not be read (the UDF reader failed on it)".into());
            Vec::new()
        }
    }
}

/// How the chosen directory tree spells names.
#[derive(Clone, Copy)]
enum Naming {
    RockRidge,
    Joliet,
    Iso9660,
}

struct Walk<'a, R: hadris_iso::sync::Read + hadris_iso::sync::Seek> {
    image: &'a IsoImage<R>,
    naming: Naming,
    image_len: u64,
    index: &'a mut IsoIndex,
    entries: usize,
}

impl<R: hadris_iso::sync::Read + hadris_iso::sync::Seek> Walk<'_, R> {
    fn folder(&mut self, folder: DirectoryRef, prefix: &str, depth: usize) {
        let entries = match self.image.open_dir(folder).read_entries() {
            Ok(entries) => entries,
            Err(error) => {
                self.index.skipped.push(format!("{prefix}/: {error}"));
                return;
            }
        };
        for entry in entries {
            if entry.is_special() {
                continue;
            }
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                self.index.skipped.push(format!("{prefix}/: more than {MAX_ENTRIES} entries"));
                return;
            }
            let Some(name) = decode_name(&entry, self.naming) else {
                self.index.skipped.push(format!("{prefix}/: a name that is not a plain file name"));
                continue;
            };
            let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if entry.is_directory() {
                if depth + 1 >= MAX_DEPTH {
                    self.index.skipped.push(format!("{path}/: deeper than {MAX_DEPTH} folders"));
                } else if let Ok(child) = entry.as_dir_ref(self.image) {
                    self.folder(child, &path, depth + 1);
                }
                continue;
            }
            match member_of(&entry, self.image_len) {
                Ok(member) => self.index.insert(path, member),
                Err(why) => self.index.skipped.push(format!("{path}: {why}")),
            }
        }
    }
}

/// A name as the tree spells it; `None` for one that could not be a path component.
fn decode_name(entry: &hadris_iso::read::DirEntry, naming: Naming) -> Option<String> {
    let raw = entry.name();
    let name = match naming {
        Naming::RockRidge => entry.display_name().into_owned(),
        Naming::Joliet => {
            let units: Vec<u16> = raw.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
            strip_version(&String::from_utf16_lossy(&units)).to_owned()
        }
        Naming::Iso9660 => {
            let text = String::from_utf8_lossy(raw);
            strip_version(&text).trim_end_matches('.').to_owned()
        }
    };
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    plain.then_some(name)
}

/// `NAME;1` → `NAME` (the ISO 9660 file version).
fn strip_version(name: &str) -> &str {
    match name.rsplit_once(';') {
        Some((base, version)) if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// The file's bytes as one span of the image: a file over 4 GiB is several extents,
/// served as one only when they follow each other.
fn member_of(entry: &hadris_iso::read::DirEntry, image_len: u64) -> Result<Member, &'static str> {
    let mut extents = entry.extents();
    let first = extents.next().ok_or("no data")?;
    let offset = (first.sector.0 as u64).checked_mul(SECTOR).ok_or("an offset past any image")?;
    let mut len = u64::from(first.length);
    let mut next_sector = first.sector.0 as u64 + u64::from(first.length).div_ceil(SECTOR);
    for extent in extents {
        if extent.sector.0 as u64 != next_sector {
            return Err("its parts are not one after the other in the image");
        }
        len += u64::from(extent.length);
        next_sector += u64::from(extent.length).div_ceil(SECTOR);
    }
    match offset.checked_add(len) {
        Some(end) if end <= image_len => Ok(Member { offset, len }),
        _ => Err("its data lies past the end of the image"),
    }
}

/// The boot catalogue's default entry and whether a UEFI section follows. `None`
/// without a boot record or with a catalogue that fails its checks.
fn read_el_torito<R: hadris_iso::sync::Read + hadris_iso::sync::Seek>(image: &IsoImage<R>) -> Option<ElTorito> {
    let catalog = image.read_volume_descriptors().find_map(|descriptor| match descriptor {
        Ok(VolumeDescriptor::BootRecord(record)) => Some(record.catalog_ptr.get()),
        _ => None,
    })?;
    let mut sector = [0u8; SECTOR as usize];
    image.read_bytes_at(u64::from(catalog) * SECTOR, &mut sector).ok()?;
    parse_catalog(&sector)
}

/// El Torito 1.0: a validation entry (header 1, key 55 AA at 30), the default entry
/// (boot indicator 88, media type in the low nibble of byte 1), then section headers
/// (90 or 91, platform at byte 1: EF is UEFI) each followed by its entries.
fn parse_catalog(sector: &[u8]) -> Option<ElTorito> {
    if sector.len() < 64 || sector[0] != 1 || sector[30..32] != [0x55, 0xAA] {
        return None;
    }
    let default = &sector[32..64];
    let bios = (default[0] == 0x88 && sector[1] == 0).then(|| match default[1] & 0x0F {
        0 => Emulation::NoEmulation,
        // The media type gives the floppy's size; the sector count is usually just 1.
        media @ 1..=3 => Emulation::Floppy {
            lba: u32::from_le_bytes([default[8], default[9], default[10], default[11]]),
            len: [1_228_800, 1_474_560, 2_949_120][usize::from(media - 1)],
        },
        _ => Emulation::HardDisk,
    });
    let mut uefi = sector[1] == 0xEF && default[0] == 0x88;
    let mut at = 64;
    while at + 32 <= sector.len() {
        let entry = &sector[at..at + 32];
        match entry[0] {
            0x90 | 0x91 => {
                let count = usize::from(u16::from_le_bytes([entry[2], entry[3]]));
                uefi |= entry[1] == 0xEF && count > 0;
                at += 32 * (1 + count);
                if entry[0] == 0x91 {
                    break;
                }
            }
            _ => break,
        }
    }
    Some(ElTorito { bios, uefi })
}

/// A UDF volume recognition sequence (ECMA-167 2/9.1: `NSR02` or `NSR03` in a descriptor
/// from sector 16 on) in the first 32 sectors of an image.
fn has_udf(head: &[u8]) -> bool {
    head.chunks_exact(SECTOR as usize)
        .skip(16)
        .any(|sector| sector[0] == 0 && (&sector[1..6] == b"NSR02" || &sector[1..6] == b"NSR03"))
}

/// Reads the image's small `*.cfg` files (isolinux, syslinux and GRUB menus).
fn read_menus(path: &Path, index: &mut IsoIndex) {
    let wanted: Vec<(String, Member)> = index
        .members()
        .filter(|(name, member)| name.to_lowercase().ends_with(".cfg") && member.len <= MAX_MENU_TEXT)
        .take(MAX_MENU_FILES)
        .map(|(name, member)| (name.to_owned(), member))
        .collect();
    let Ok(mut file) = File::open(path) else { return };
    for (name, member) in wanted {
        let mut text = vec![0u8; member.len as usize];
        let read = file.seek(SeekFrom::Start(member.offset)).and_then(|_| file.read_exact(&mut text));
        if read.is_ok() {
            index.add_menu(&name, String::from_utf8_lossy(&text).into_owned());
        }
    }
}

/// Names the boot catalogue's floppy image [`FLOPPY_IMAGE`], unless a file of the image
/// already is it (Debian's memtest86+ ISO: `boot/floppy.img`) or it does not lie inside
/// the image.
fn expose_floppy(index: &mut IsoIndex, image_len: u64) {
    let Some(ElTorito { bios: Some(Emulation::Floppy { lba, len }), .. }) = index.el_torito else { return };
    let offset = u64::from(lba) * SECTOR;
    if offset.checked_add(len).is_none_or(|end| end > image_len)
        || index.members().any(|(_, member)| member.offset == offset && member.len == len)
        || index.find(FLOPPY_IMAGE).is_some()
    {
        return;
    }
    index.insert(FLOPPY_IMAGE.into(), Member { offset, len });
}

/// Largest floppy image looked into (2.88 MB).
const MAX_FLOPPY: u64 = 2_949_120;

/// A floppy image that holds a Linux boot-protocol program padded with zeros (Debian's
/// memtest86+ ISO: `boot/floppy.img` is `memtest86+x64.bin` padded to 1.44 MB) gets
/// the program beside it as `<image>.bin`, so iPXE can load just the program: a BIOS
/// cannot boot the floppy image itself over the network (`sanboot` cannot emulate a
/// floppy).
fn expose_boot_programs(path: &Path, index: &mut IsoIndex) {
    let floppies: Vec<(String, Member)> = index
        .members()
        .filter(|(name, member)| name.to_lowercase().ends_with(".img") && member.len <= MAX_FLOPPY)
        .take(4)
        .map(|(name, member)| (name.to_owned(), member))
        .collect();
    let Ok(mut file) = File::open(path) else { return };
    for (name, member) in floppies {
        let mut head = [0u8; 0x206];
        if file.seek(SeekFrom::Start(member.offset)).and_then(|_| file.read_exact(&mut head)).is_err() {
            continue;
        }
        if let Some(len) = boot_image_len(&head) {
            index.insert(format!("{name}.bin"), Member { offset: member.offset, len: len.min(member.len) });
        }
    }
}

/// The length of a Linux boot-protocol image (a bzImage, or memtest86+'s `.bin`) from
/// its header, or `None` if `head` (at least 0x206 bytes) is not one: `(setup_sects + 1)
/// × 512 + syssize × 16` (Documentation/arch/x86/boot.rst; 0 setup sectors mean 4).
pub fn boot_image_len(head: &[u8]) -> Option<u64> {
    if head.len() < 0x206 || &head[0x202..0x206] != b"HdrS" {
        return None;
    }
    let setup_sectors = match head[0x1F1] {
        0 => 4,
        count => u64::from(count),
    };
    let syssize = u64::from(u32::from_le_bytes([head[0x1F4], head[0x1F5], head[0x1F6], head[0x1F7]]));
    Some((setup_sectors + 1) * 512 + syssize * 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Windows-like image: a README in ISO 9660, everything else in UDF only
    /// (genisoimage's `-udf` with the rest hidden from the ISO 9660 tree).
    #[test]
    fn files_kept_in_udf_only_are_listed_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("sources")).unwrap();
        std::fs::write(tree.join("README.TXT"), "This disc contains a UDF file system.\n").unwrap();
        std::fs::write(tree.join("bootmgr"), vec![1u8; 3000]).unwrap();
        std::fs::write(tree.join("sources/boot.wim"), vec![2u8; 5000]).unwrap();
        let iso = dir.path().join("win.iso");
        let status = std::process::Command::new("genisoimage")
            .args(["-quiet", "-udf", "-hide", "sources", "-hide", "bootmgr", "-o"])
            .arg(&iso)
            .arg(&tree)
            .status()
            .expect("genisoimage (apt-get install genisoimage)");
        assert!(status.success());
        let (index, _) = read_index(&iso).unwrap();
        assert!(index.udf);
        assert_eq!(index.paths().collect::<Vec<_>>(), ["README.TXT"], "ISO 9660 holds the README only");
        assert_eq!(index.udf_only, ["README.TXT", "bootmgr", "sources/boot.wim"]);
        let planned = crate::iso::plan(&index, crate::iso::Site { mount: "w.iso", base_url: "http://s", append: "" });
        assert_eq!(planned.boot, crate::iso::IsoBoot::Refused(crate::iso::IsoRefusal::Windows));
        // Broken UDF bytes cost the list, with a reason, never the image.
        let mut bytes = std::fs::read(&iso).unwrap();
        for sector in 256..260 {
            bytes[sector * 2048..sector * 2048 + 64].fill(0xA5);
        }
        std::fs::write(&iso, &bytes).unwrap();
        let (index, _) = read_index(&iso).unwrap();
        assert!(index.udf_only.is_empty());
        assert!(index.skipped.iter().any(|why| why.contains("UDF")), "{:?}", index.skipped);
    }

    #[test]
    fn a_catalogue_says_how_the_bios_entry_boots_and_whether_uefi_can() {
        let mut sector = vec![0u8; 2048];
        sector[0] = 1;
        sector[30] = 0x55;
        sector[31] = 0xAA;
        sector[32] = 0x88;
        sector[33] = 2; // 1.44 MB floppy
        sector[64] = 0x91;
        sector[65] = 0xEF;
        sector[66] = 1;
        assert_eq!(
            parse_catalog(&sector),
            Some(ElTorito { bios: Some(Emulation::Floppy { lba: 0, len: 1_474_560 }), uefi: true })
        );
        sector[33] = 0;
        sector[65] = 0;
        assert_eq!(parse_catalog(&sector), Some(ElTorito { bios: Some(Emulation::NoEmulation), uefi: false }));
        sector[31] = 0;
        assert_eq!(parse_catalog(&sector), None, "a catalogue without its key is not trusted");
        assert_eq!(parse_catalog(&[1; 10]), None);
    }

    #[test]
    fn hostile_catalogues_never_panic() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..2000 {
            let mut sector: Vec<u8> = (0..2048)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            sector[0] = 1;
            sector[30] = 0x55;
            sector[31] = 0xAA;
            let _ = parse_catalog(&sector);
        }
    }

    #[test]
    fn a_udf_volume_is_seen_by_its_recognition_sequence() {
        let mut head = vec![0u8; 32 * 2048];
        assert!(!has_udf(&head));
        head[17 * 2048 + 1..17 * 2048 + 6].copy_from_slice(b"NSR03");
        assert!(has_udf(&head));
        assert!(!has_udf(&head[..17 * 2048]), "a short image has none");
        head[17 * 2048 + 1..17 * 2048 + 6].copy_from_slice(b"CD001");
        assert!(!has_udf(&head), "ISO 9660's own descriptors are not UDF");
    }

    #[test]
    fn a_boot_image_length_comes_from_its_header() {
        let mut head = vec![0u8; 0x400];
        head[0x1F1] = 2;
        head[0x1F4..0x1F8].copy_from_slice(&8924u32.to_le_bytes());
        head[0x202..0x206].copy_from_slice(b"HdrS");
        // memtest86+x64.bin 6.10 from Debian: 144,312 bytes, the header says 144,320.
        assert_eq!(boot_image_len(&head), Some(144_320));
        head[0x1F1] = 0;
        assert_eq!(boot_image_len(&head), Some(5 * 512 + 8924 * 16));
        head[0x202] = b'X';
        assert_eq!(boot_image_len(&head), None);
        assert_eq!(boot_image_len(&[0; 16]), None);
    }

    #[test]
    fn an_image_made_by_xorriso_is_indexed_with_each_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = b"label install\n kernel /linux\n append vga=788 initrd=/initrd.gz --- quiet\n";
        let files: [(&str, &[u8]); 4] = [
            ("linux", b"kernel bytes"),
            ("initrd.gz", &[9u8; 5000]),
            ("isolinux/txt.cfg", cfg),
            ("Deep/Name With Spaces.txt", b"x"),
        ];
        let iso = crate::iso::testing::image(dir.path(), "mini.iso", &files);
        let (index, stamp) = read_index(&iso).unwrap();
        let bytes = std::fs::read(&iso).unwrap();
        assert_eq!(stamp.len, bytes.len() as u64);
        for (path, content) in files {
            let (_, member) = index
                .find(path)
                .unwrap_or_else(|| panic!("{path} not indexed: {:?}", index.paths().collect::<Vec<_>>()));
            let start = member.offset as usize;
            assert_eq!(&bytes[start..start + member.len as usize], content, "{path}");
        }
        assert_eq!(index.menus().map(|(path, _)| path).collect::<Vec<_>>(), ["isolinux/txt.cfg"]);
        let planned = crate::iso::plan(&index, crate::iso::Site { mount: "m.iso", base_url: "http://s", append: "" });
        assert_eq!(planned.to_string(), "Debian installer → linux + initrd.gz");
    }

    #[test]
    fn hostile_images_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let iso =
            crate::iso::testing::image(dir.path(), "a.iso", &[("live/vmlinuz", b"k"), ("a/b/c/d.cfg", b"label x")]);
        let original = std::fs::read(&iso).unwrap();
        let mutated = dir.path().join("mutated.iso");
        let mut seed = 0x0bad_cafe_1234_5678u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..(1 + next() % 24) {
                // The volume descriptors and the directories follow sector 16.
                let at = 16 * 2048 + (next() as usize % (bytes.len() - 16 * 2048));
                bytes[at] = next() as u8;
            }
            std::fs::write(&mutated, &bytes).unwrap();
            if let Ok((index, _)) = read_index(&mutated) {
                for path in index.paths() {
                    let (_, member) = index.find(path).unwrap();
                    assert!(member.offset + member.len <= bytes.len() as u64, "{path} lies inside the image");
                }
            }
        }
        std::fs::write(&mutated, b"not an image").unwrap();
        assert!(matches!(read_index(&mutated), Err(IsoError::NotIso { .. })));

        // A volume name that is not UTF-8 (found by the iso_image fuzz target: it panicked).
        let mut bytes = original.clone();
        let volume_id = 16 * 2048 + 40;
        bytes[volume_id..volume_id + 4].copy_from_slice(b"A\xffB ");
        std::fs::write(&mutated, &bytes).unwrap();
        let (index, _) = read_index(&mutated).expect("only the name is odd");
        assert!(index.volume_id.starts_with("A\u{fffd}B"), "{:?}", index.volume_id);
        assert!(index.contains("live/vmlinuz"));
    }

    #[test]
    fn names_lose_their_version_and_lookups_fall_back_to_any_case() {
        assert_eq!(strip_version("VMLINUZ.;1"), "VMLINUZ.");
        assert_eq!(strip_version("a;b"), "a;b");
        let index = IsoIndex::from_files([("CASPER/VMLINUZ", Member { offset: 2048, len: 3 })]);
        assert_eq!(index.find("casper/vmlinuz"), Some(("CASPER/VMLINUZ", Member { offset: 2048, len: 3 })));
        assert_eq!(index.find("/CASPER/VMLINUZ").map(|(name, _)| name), Some("CASPER/VMLINUZ"));
        assert!(!index.contains("casper/initrd"));
    }
}
