//! An ISO image's index as data: where each file inside it lies (a byte span of the
//! image file), its El Torito boot catalogue, the menu files the family detection
//! reads. The engine's `iso::image` fills it from the image through `hadris-iso`.

use std::collections::{BTreeMap, HashMap};

/// ISO 9660 logical block size (the only one `hadris-iso` reads).
pub const SECTOR: u64 = 2048;
/// Where a file inside the image lies in the image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub offset: u64,
    pub len: u64,
}

/// How the El Torito default (BIOS) entry boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// A boot loader loaded as it is (isolinux, GRUB): what `sanboot` can run.
    NoEmulation,
    /// A floppy image of `len` bytes at sector `lba` (2048-byte sectors): `sanboot`
    /// cannot boot it; `memdisk` can.
    Floppy {
        lba: u32,
        len: u64,
    },
    HardDisk,
}

/// What the image's boot catalogue says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElTorito {
    pub bios: Option<Emulation>,
    /// The catalogue has a UEFI section.
    pub uefi: bool,
}

/// An ISO image's file index. Paths are `/`-separated, without a leading slash, as
/// the image names them (Rock Ridge, else Joliet, else ISO 9660 without `;1`).
#[derive(Debug, Clone, Default)]
pub struct IsoIndex {
    pub volume_id: String,
    files: BTreeMap<String, Member>,
    /// Lower-cased path → path, for names that differ only in case (plain ISO 9660
    /// names are upper case while menus name them in lower case).
    folded: HashMap<String, String>,
    pub el_torito: Option<ElTorito>,
    /// The first sector ends with an MBR boot signature: the image is also a disk image.
    pub hybrid: bool,
    /// The image also has a UDF file system (its volume recognition sequence), which
    /// this index does not read: Windows installers keep their files only there.
    pub udf: bool,
    /// Every file of the image's UDF tree, by path, read only when its ISO 9660 tree holds
    /// next to nothing (Windows' layout): enough to recognise the image; none of them is
    /// served (see `IsoRefusal::UdfOnly`).
    pub udf_only: Vec<String>,
    /// Menu files (`*.cfg`, at most 64 KiB each) by path, for the family detection.
    menus: BTreeMap<String, String>,
    /// Files that were not indexed, and why (for the log).
    pub skipped: Vec<String>,
}

impl IsoIndex {
    /// An index of these files (tests, and virtual members).
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, Member)>) -> Self {
        let mut index = Self::default();
        for (path, member) in files {
            index.insert(path.to_owned(), member);
        }
        index
    }

    /// Adds a file (or replaces one): `path` as the image names it.
    pub fn insert(&mut self, path: String, member: Member) {
        self.folded.insert(path.to_lowercase(), path.clone());
        self.files.insert(path, member);
    }

    /// Adds a menu file's text.
    pub fn add_menu(&mut self, path: &str, text: String) {
        self.menus.insert(path.to_owned(), text);
    }

    /// The file at `path` and its name as the image spells it: exact, else ignoring case.
    pub fn find(&self, path: &str) -> Option<(&str, Member)> {
        let path = path.trim_start_matches('/');
        if let Some((name, member)) = self.files.get_key_value(path) {
            return Some((name.as_str(), *member));
        }
        let name = self.folded.get(&path.to_lowercase())?;
        self.files.get_key_value(name).map(|(name, member)| (name.as_str(), *member))
    }

    pub fn contains(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    /// Every file with where it lies, sorted by path.
    pub fn members(&self) -> impl Iterator<Item = (&str, Member)> {
        self.files.iter().map(|(path, member)| (path.as_str(), *member))
    }

    /// Every file's path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The menu files read from the image, by path.
    pub fn menus(&self) -> impl Iterator<Item = (&str, &str)> {
        self.menus.iter().map(|(path, text)| (path.as_str(), text.as_str()))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Where the El Torito floppy image is served inside its ISO when no file of the image
/// is that floppy (BIOS update and DOS tool ISOs): for `memdisk`.
pub const FLOPPY_IMAGE: &str = "eltorito/floppy.img";
